"""Speedups of each implementation against `sequential`, with bootstrap intervals over repeats.

Both the per-S epoch-time ratio and the slope ratio are resampled the same way: the repeats of every
config are drawn with replacement (seeded, so the table is reproducible), the statistic is
recomputed from the medians, and the 2.5 and 97.5 percentiles bound it. Rows without repeats
(e.g. the report's published means) get the point ratio and empty bounds.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from analysis.fit import MIN_POINTS

BASELINE = "sequential"
SPEEDUP_COLUMNS = ("task", "device", "kl_baseline", "impl", "kl", "samples", "kind", "ratio", "ci_low", "ci_high",
                   "machine")
N_BOOT = 2000


def _resampled_medians(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """N_BOOT medians of `values` resampled with replacement."""
    idx = rng.integers(0, len(values), size=(N_BOOT, len(values)))
    return np.median(values[idx], axis=1)


def _epoch_samples(run_id: str, epoch_s: float, per_run: dict) -> np.ndarray:
    values = per_run.get(run_id)
    return values if values is not None and len(values) else np.array([epoch_s])


def speedup_table(ok_runs: pd.DataFrame, repeat_epochs: pd.DataFrame, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    per_run = ({rid: g["epoch_s"].to_numpy(float) for rid, g in repeat_epochs.groupby("run_id")}
               if len(repeat_epochs) else {})
    rows = []
    if "machine" not in ok_runs.columns:
        ok_runs = ok_runs.assign(machine="")
    for (task, device, machine), group in ok_runs.groupby(["task", "device", "machine"], sort=False, dropna=False):
        base = group[(group["impl"] == BASELINE) & (group["n_mc"].fillna(1) == 1)]
        if base.empty:
            continue
        base = base.drop_duplicates("samples").set_index("samples")
        kl_base = base["kl"].iloc[0]
        for (impl, kl), other in group[group["impl"] != BASELINE].groupby(["impl", "kl"], sort=False):
            other = other[other["n_mc"].fillna(1) == 1].drop_duplicates("samples").set_index("samples")
            common = sorted(set(base.index) & set(other.index))
            boots_b, boots_o = {}, {}
            for s in common:
                b = _epoch_samples(base.loc[s, "run_id"], base.loc[s, "epoch_s"], per_run)
                o = _epoch_samples(other.loc[s, "run_id"], other.loc[s, "epoch_s"], per_run)
                ratio = base.loc[s, "epoch_s"] / other.loc[s, "epoch_s"]
                low = high = np.nan
                if len(b) > 1 and len(o) > 1:
                    boots_b[s], boots_o[s] = _resampled_medians(b, rng), _resampled_medians(o, rng)
                    low, high = np.percentile(boots_b[s] / boots_o[s], [2.5, 97.5])
                rows.append(dict(task=task, device=device, kl_baseline=kl_base, impl=impl, kl=kl, samples=s,
                                 kind="epoch_time", ratio=ratio, ci_low=low, ci_high=high, machine=machine))
            if len(common) >= MIN_POINTS:
                x = np.array(common, dtype=float)
                slope_b = stats.linregress(x, base.loc[common, "epoch_s"].to_numpy(float)).slope
                slope_o = stats.linregress(x, other.loc[common, "epoch_s"].to_numpy(float)).slope
                low = high = np.nan
                if len(boots_b) == len(common):
                    yb = np.stack([boots_b[s] for s in common], axis=1)  # (N_BOOT, len(S))
                    yo = np.stack([boots_o[s] for s in common], axis=1)
                    xc = x - x.mean()
                    sb = (yb - yb.mean(1, keepdims=True)) @ xc / (xc @ xc)
                    so = (yo - yo.mean(1, keepdims=True)) @ xc / (xc @ xc)
                    with np.errstate(divide="ignore", invalid="ignore"):
                        low, high = np.nanpercentile(sb / so, [2.5, 97.5])
                rows.append(dict(task=task, device=device, kl_baseline=kl_base, impl=impl, kl=kl, samples=np.nan,
                                 kind="slope", ratio=slope_b / slope_o, ci_low=low, ci_high=high, machine=machine))
    return pd.DataFrame(rows, columns=SPEEDUP_COLUMNS)
