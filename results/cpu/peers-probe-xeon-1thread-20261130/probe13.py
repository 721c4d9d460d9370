# Record of what was run on 2026-11-30 (11:22 UTC) on the 2-vCPU Intel Xeon VM (paths of that machine); kept as evidence, not maintained: it uses the module layout of that time (`bench.api`, now `from bench import measure_config`).
import sys, time
sys.path.insert(0, '/work/main')
from bench.api import measure_config
res = {}
for rnd in range(3):
    for impl in ("vmap_lrt", "torchbnn", "ivon"):
        row = measure_config(impl=impl, task="mnist", samples=10, steps=8, repeats=3, warmup_steps=2, threads=1,
                             data_dir="/work/shared/data/mnist")
        res.setdefault(impl, []).append(row["step_s_median"])
        print(rnd, impl, round(row["step_s_median"] * 1000, 1), "ms", flush=True)
for impl, v in res.items():
    print(impl, [round(x * 1000, 1) for x in v], "ratio to vmap_lrt", [round(a / b, 2) for a, b in zip(v, res["vmap_lrt"])])
