"""Across-seed quality analysis on hand-made quality rows: the seed summary, the equivalence verdicts,
time to target per seed (own clock and a timed step), and two sequential configs that differ in kl."""

import numpy as np
import pandas as pd
import pytest

from analysis.quality_report import final_metrics, time_to_accuracy
from analysis.quality_seeds import equivalence_table, seed_summary, step_times_from_sweep, time_to_target_summary


def _rows(impl, seed, errors, kl="sample", step_s=0.02, steps=100):
    out = []
    for epoch, err in enumerate(errors, start=1):
        out.append(dict(run_id=f"{impl}-{kl}-{seed}", impl=impl, task="lenet5", kl=kl, samples=1, lr=1e-3,
                        batch_size=128, init="report", init_sigma=0.0, prior_sigma=1.0, seed=seed, device="cpu",
                        threads=1, test_samples=10, stop_at_error=np.nan, status="ok", epoch=epoch,
                        steps_per_epoch=steps, epoch_train_s=step_s * steps, train_s=step_s * steps * epoch,
                        test_error=err, test_nll=0.05, ece=0.01, brier=0.02, rmse=np.nan, coverage95=np.nan,
                        finished=True))
    return out


def _frame(spec):
    rows = []
    for impl, finals in spec.items():
        for seed, final in enumerate(finals):
            rows += _rows(impl, seed, [0.03, 0.016 if impl == "vmap_lrt" else 0.014, final])
    return pd.DataFrame(rows)


QUALITY = _frame({"sequential": [0.0110, 0.0115, 0.0105, 0.0112, 0.0108],
                  "vmap": [0.0111, 0.0113, 0.0107, 0.0110, 0.0109],
                  "vmap_lrt": [0.0150, 0.0155, 0.0148, 0.0152, 0.0149]})


def test_seed_summary_has_five_seeds_and_a_t_interval():
    summary = seed_summary(final_metrics(QUALITY)).set_index("impl")
    assert summary.loc["sequential", "seeds"] == 5
    assert summary.loc["sequential", "test_error"] == pytest.approx(0.0110)
    assert summary.loc["sequential", "ci95_low"] < 0.0110 < summary.loc["sequential", "ci95_high"]


def test_equivalence_verdicts():
    table = equivalence_table(final_metrics(QUALITY), margin=0.003).set_index("impl")
    assert table.loc["vmap", "verdict"].startswith("equivalent")
    assert table.loc["vmap_lrt", "verdict"].startswith("not shown equivalent")
    assert table.loc["vmap_lrt", "diff"] == pytest.approx(0.0041, abs=1e-4)


def test_time_to_target_per_seed_with_own_clock_and_timed_step():
    per_run = time_to_accuracy(QUALITY, 0.015)
    timed = pd.DataFrame({"task": ["lenet5"] * 3, "impl": ["sequential", "vmap", "vmap_lrt"], "samples": [1] * 3,
                          "timed_step_s": [0.010, 0.005, 0.004]})
    table = time_to_target_summary(per_run, timed).set_index("impl")
    assert table.loc["vmap", "reached"] == 5 and table.loc["vmap", "epochs_mean"] == 2
    assert table.loc["vmap", "timed_s_mean"] == pytest.approx(2 * 100 * 0.005)
    assert table.loc["vmap", "speedup_vs_sequential"] == pytest.approx(2.0)
    # vmap_lrt reaches the target at epoch 3 on 3 seeds of 5: no speedup over the seeds that did not
    lrt = table.loc["vmap_lrt"]
    assert lrt["reached"] == 3 and lrt["epochs_mean"] == 3 and np.isnan(lrt["speedup_vs_sequential"])


def test_two_sequential_configs_that_differ_in_kl_do_not_crash_time_to_accuracy():
    rows = _rows("sequential", 0, [0.02, 0.012], kl="sample") + _rows("sequential", 0, [0.02, 0.011], kl="closed")
    rows += _rows("vmap", 0, [0.02, 0.012], kl="sample", step_s=0.01)
    table = time_to_accuracy(pd.DataFrame(rows), 0.015)
    vmap = table[table["impl"] == "vmap"].iloc[0]
    assert vmap["speedup_per_step"] == pytest.approx(2.0)  # matched with the sequential of its own kl


def test_step_times_from_a_sweep_take_the_median_of_n_mc_1_rows():
    ok = pd.DataFrame({"task": ["mnist"] * 3, "impl": ["vmap"] * 3, "samples": [1] * 3, "n_mc": [1, 1, 10],
                       "step_s_median": [0.01, 0.03, 9.0]})
    assert step_times_from_sweep(ok)["timed_step_s"].tolist() == [pytest.approx(0.02)]
