"""Quality across seeds: final test error per configuration with a t interval, equivalence to
`sequential` by two one-sided tests against a margin fixed before the runs, and time to a target
error per seed with intervals across seeds (optionally at a step time timed elsewhere, on a quiet
machine in interleaved rounds, instead of the quality run's own clock). pandas, numpy, scipy only."""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.seed_stats import t_interval, tost
from bench.contract.quality_schema import BASELINES

#: The equivalence margin on final test error, fixed before the runs (issue 24: 0.3 percentage points).
DEFAULT_MARGIN = 0.003
REFERENCE = "sequential"
#: What makes runs replicates of one configuration: everything but the seed (the final epoch included,
#: so only runs with the same budget are pooled).
GROUP_KEYS = ["task", "impl", "kl", "samples", "lr", "init", "init_sigma", "prior_sigma", "test_samples", "epoch"]
#: The same, without the implementation: what two implementations must share to be compared.
SETTING_KEYS = [k for k in GROUP_KEYS if k not in ("impl", "kl")]


def _keys(frame: pd.DataFrame, keys) -> list[str]:
    return [k for k in keys if k in frame.columns]


def seed_summary(finals: pd.DataFrame) -> pd.DataFrame:
    """One row per configuration: seeds, mean final test error, its SD and 95% t interval, mean NLL and ECE."""
    done = finals[finals["finished"]] if "finished" in finals.columns else finals
    if done.empty:
        return pd.DataFrame()
    rows = []
    for key, g in done.groupby(_keys(done, GROUP_KEYS), sort=False, dropna=False):
        err = t_interval(g["test_error"])
        row = dict(zip(_keys(done, GROUP_KEYS), key if isinstance(key, tuple) else (key,)))
        row.update(seeds=err.n, test_error=err.mean, sd=err.sd, ci95_low=err.low, ci95_high=err.high,
                   test_nll=float(g["test_nll"].mean()), ece=float(g["ece"].mean()))
        rows.append(row)
    return pd.DataFrame(rows)


def equivalence_table(finals: pd.DataFrame, margin: float = DEFAULT_MARGIN, alpha: float = 0.05) -> pd.DataFrame:
    """Every Bayesian implementation against `sequential` at the same settings: difference in mean final
    test error, its 90% Welch interval, the TOST p-value and the verdict at +-margin. Each side keeps
    its own seed-to-seed variance."""
    done = finals[finals["finished"]] if "finished" in finals.columns else finals
    if done.empty:
        return pd.DataFrame()
    settings = _keys(done, SETTING_KEYS)
    rows = []
    for key, g in done.groupby(settings, sort=False, dropna=False):
        ref = g[g["impl"] == REFERENCE]["test_error"]
        for impl, h in g[~g["impl"].isin([REFERENCE, *BASELINES])].groupby("impl", sort=False):
            row = dict(zip(settings, key if isinstance(key, tuple) else (key,)))
            row.update(impl=impl, seeds=len(h), reference_seeds=len(ref))
            if len(h) < 2 or len(ref) < 2:
                row.update(verdict=f"needs >= 2 seeds of both {impl} and {REFERENCE}")
            else:
                r = tost(h["test_error"], ref, margin, alpha)
                row.update(diff=r.diff, ci90_low=r.low, ci90_high=r.high, p_tost=r.p, margin=margin,
                           verdict=("equivalent" if r.equivalent else "not shown equivalent")
                           + f" within +-{margin * 100:g} pp")
            rows.append(row)
    return pd.DataFrame(rows)


def step_times_from_sweep(ok_runs: pd.DataFrame) -> pd.DataFrame:
    """Median step seconds per (task, impl, samples) from a sweep's ok rows (n_mc 1 only)."""
    rows = ok_runs
    if "n_mc" in rows.columns:
        rows = rows[rows["n_mc"].fillna(1) == 1]
    return (rows.groupby(["task", "impl", "samples"], as_index=False)["step_s_median"].median()
            .rename(columns={"step_s_median": "timed_step_s"}))


def time_to_target_summary(per_run: pd.DataFrame, step_times: pd.DataFrame | None = None,
                           seed: int = 0) -> pd.DataFrame:
    """From `time_to_accuracy`'s per-run rows: per configuration, the seeds that reached the target,
    epochs to it and its training time (the run's own clock, and at `step_times` when given: steps to
    the target x the timed median step) as means with 95% t intervals across seeds, and the speedup
    over `sequential` (ratio of mean times, 95% bootstrap interval over seeds)."""
    if per_run.empty:
        return pd.DataFrame()
    runs = per_run.copy()
    runs["steps_to_target"] = runs["epoch_reached"] * runs["steps_per_epoch"]
    clock = "time_to_target_s"
    if step_times is not None and len(step_times):
        runs = runs.merge(step_times, on=["task", "impl", "samples"], how="left")
        runs["timed_time_to_target_s"] = runs["steps_to_target"] * runs["timed_step_s"]
        clock = "timed_time_to_target_s"
    keys = _keys(runs, [k for k in GROUP_KEYS if k != "epoch"])
    rng = np.random.default_rng(seed)
    times = {}
    rows = []
    for key, g in runs.groupby(keys, sort=False, dropna=False):
        row = dict(zip(keys, key if isinstance(key, tuple) else (key,)))
        reached = g[g["reached"]]
        epochs, own = t_interval(reached["epoch_reached"]), t_interval(reached["time_to_target_s"])
        row.update(seeds=len(g), reached=len(reached), epochs_mean=epochs.mean, epochs_low=epochs.low,
                   epochs_high=epochs.high, train_s_mean=own.mean, train_s_low=own.low, train_s_high=own.high)
        if clock != "time_to_target_s":
            timed = t_interval(reached[clock])
            row.update(timed_step_ms=float(g["timed_step_s"].iloc[0]) * 1000, timed_s_mean=timed.mean,
                       timed_s_low=timed.low, timed_s_high=timed.high)
        times[tuple(row[k] for k in keys)] = reached[clock].to_numpy(float) if len(reached) == len(g) else None
        rows.append(row)
    table = pd.DataFrame(rows)
    settings = [k for k in keys if k not in ("impl", "kl")]
    reference: dict[tuple, np.ndarray | None] = {}  # settings -> sequential's times (None: ambiguous)
    for key, t in times.items():
        named = dict(zip(keys, key))
        if named["impl"] == REFERENCE:
            where = tuple(named[k] for k in settings)
            reference[where] = None if where in reference else t
    speed, low, high = [], [], []
    for _, row in table.iterrows():
        own = times[tuple(row[k] for k in keys)]
        ref = reference.get(tuple(row[k] for k in settings))
        if row["impl"] == REFERENCE:
            speed.append(1.0), low.append(np.nan), high.append(np.nan)
            continue
        if own is None or ref is None or len(own) < 2 or len(ref) < 2:
            speed.append(np.nan), low.append(np.nan), high.append(np.nan)
            continue
        boot = [rng.choice(ref, len(ref)).mean() / rng.choice(own, len(own)).mean() for _ in range(2000)]
        speed.append(ref.mean() / own.mean())
        lo, hi = np.percentile(boot, [2.5, 97.5])
        low.append(lo), high.append(hi)
    table["speedup_vs_sequential"], table["speedup_low"], table["speedup_high"] = speed, low, high
    return table


def seeds_section(finals: pd.DataFrame, per_run: pd.DataFrame, target: float, margin: float,
                  step_times: pd.DataFrame | None, table) -> tuple[list[str], dict[str, pd.DataFrame]]:
    """The report's across-seeds section (markdown lines, `table` renders a frame) and its tables by
    file name. Empty when no configuration has two finished seeds."""
    summary = seed_summary(finals)
    if summary.empty or summary["seeds"].max() < 2:
        return [], {}
    equivalence = equivalence_table(finals, margin)
    tta = time_to_target_summary(per_run, step_times)
    frames = {"quality_seeds.csv": summary, "equivalence.csv": equivalence, "time_to_target_seeds.csv": tta}
    lines = ["### Across seeds", "",
             "Final test error per configuration over its finished seeds: mean, SD and 95% t interval.", "",
             table(summary.drop(columns=[c for c in ("lr", "init", "prior_sigma") if c in summary.columns]),
                   digits=4), ""]
    if len(equivalence):
        lines += [f"Equivalence to {REFERENCE} (two one-sided Welch t tests, alpha 0.05, margin +-{margin * 100:g} "
                  "percentage points of final test error, fixed before the runs): equivalent when the 90% interval "
                  "of the difference lies inside the margin. Each implementation keeps its own seed-to-seed SD.", "",
                  table(equivalence, digits=4), ""]
    if len(tta):
        timed = "timed_s_mean" in tta.columns
        lines += [f"Time to {target:.2%} test error per seed (first evaluated epoch at or below it), mean and 95% t "
                  "interval over the seeds that reached it; speedup: sequential's mean time over each "
                  "implementation's, 95% bootstrap interval over seeds."
                  + (" `timed_s`: steps to the target x the median step time of the timing run given with "
                     "--step-times (timed apart, in interleaved rounds); `train_s`: the quality run's own clock."
                     if timed else " `train_s`: the quality run's own clock."), "",
                  table(tta, digits=4), ""]
    return lines, frames
