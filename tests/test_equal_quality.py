"""Equal quality (slow): sequential, vmap and vmap_lrt, trained on MNIST with one seed and one budget,
reach test errors that agree within the seed-to-seed spread.

How the tolerance was derived. The spread was measured first, with the same budget the test uses
(784-800-800-10, S = 1, batch 128, Adam lr 1e-3, 1 epoch, 1 thread, test error of the mixture over
20 posterior samples): `vmap_lrt` at seeds 0 and 1 (`bnn-bench train --impl vmap_lrt --seed 1
--lr 1e-3 --epochs 1 --test-samples 20`; results/cpu/quality-lr1e-3 for seed 0 at epoch 1: 4.08%,
results/cpu/quality-seeds-lr1e-3 for seed 1: 3.76%). Seed 2 was started but did not finish before the
deadline on the shared 2-core machine: two seeds give a crude spread; add seeds to SEED_ERRORS.
Two independent runs differ by sqrt(2) times one run's standard deviation, so the tolerance on the
difference of two implementations' errors is 3 * sqrt(2) * stdev(SEED_ERRORS): a gap larger than
that is unlikely (< 1% under normality) to be seed noise. `sequential` and `vmap` draw the same
weight noise from the same generator at S = 1, so they differ only by float rounding; `vmap_lrt`
draws activation noise instead, so it is as different from them as another seed is.
"""

import statistics

import pytest

from bench.contract.config import BenchConfig
from bench.contract.quality_schema import QUALITY_FILE
from bench.contract.quality_store import counted_rows
from bench.quality.run import QualityOptions, run_quality

#: Test error after 1 epoch of vmap_lrt at seeds 0 and 1 (measured; see the module docstring).
SEED_ERRORS = (0.0408, 0.0376)
TOLERANCE = 3 * 2**0.5 * statistics.stdev(SEED_ERRORS)  # 0.96 percentage points


@pytest.mark.slow
def test_the_three_implementations_reach_the_same_test_error(mnist_data_dir, tmp_path):
    impls = ("sequential", "vmap", "vmap_lrt")
    configs = [BenchConfig(impl, "mnist", 1, seed=0, lr=1e-3, epochs=1, repeats=1, warmup_steps=0, threads=1,
                           data_dir=mnist_data_dir) for impl in impls]
    run_quality(configs, QualityOptions(test_samples=20, ood=False, fgsm=False), tmp_path / "q", log=lambda s: None)
    rows = counted_rows(tmp_path / "q", QUALITY_FILE)
    assert all(r["status"] == "ok" for r in rows)
    error = {r["impl"]: float(r["test_error"]) for r in rows if r["final"] == "true"}
    assert set(error) == set(impls)
    assert max(error.values()) < 0.06  # all of them learned: a shared failure must not pass as agreement
    for a in impls:
        for b in impls:
            assert abs(error[a] - error[b]) <= TOLERANCE, (error, TOLERANCE)
