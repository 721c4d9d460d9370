#!/usr/bin/env bash
# Record of what was run on 2026-11-30 (11:15-11:20 UTC) on the 2-vCPU Intel Xeon VM (paths of that machine); kept as evidence, not maintained: it uses the module layout of that time.
# Issue 11 step-time check on this machine: train (default env), train with OMP_NUM_THREADS=1, sweep; alternated twice.
cd /work/main
export BNN_BENCH_DATA=/work/shared/data/mnist
CPU=${CPU:-1}
for i in 1 2; do
  taskset -c $CPU python3 run_bench.py train --impl vmap_lrt --samples 1 --epochs 1 --threads 1 --test-samples 20 --no-ood --no-fgsm --no-download --out /tmp/g/sc/train$i > /tmp/g/sc/train$i.log 2>&1
  OMP_NUM_THREADS=1 taskset -c $CPU python3 run_bench.py train --impl vmap_lrt --samples 1 --epochs 1 --threads 1 --test-samples 20 --no-ood --no-fgsm --no-download --out /tmp/g/sc/trainomp$i > /tmp/g/sc/trainomp$i.log 2>&1
  taskset -c $CPU python3 run_bench.py sweep --impl vmap_lrt --task mnist --samples 1 --threads 1 --steps 200 --repeats 3 --warmup 5 --device cpu --out /tmp/g/sc/sweep$i > /tmp/g/sc/sweep$i.log 2>&1
done
echo done
