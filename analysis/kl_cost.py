"""What one more KL draw costs: time per step and autograd memory fitted against n_mc.

Where configs differ only in n_mc (the KL estimators `mc`, `repar`, `repar_exact` at a fixed S),
each metric is fitted as a line against n_mc with the same helper and interval as the per-sample
slopes (`analysis.fit.fit_line`: least squares, 95% t interval from the slope's standard error,
n - 2 degrees of freedom). The slope is the cost of one extra draw: `mc` grows in both time and
memory, `repar` in time only, `repar_exact` in neither.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from analysis.fit import MIN_POINTS, fit_line
from analysis.load import GROUP_KEYS

#: What is fitted against n_mc: (column of runs.csv, name in kl_cost.csv).
METRICS = (("step_s_median", "step_s"), ("graph_bytes", "graph_bytes"))
KL_COST_COLUMNS = ("task", "device", "impl", "kl", "samples", "metric", "slope_per_draw", "slope_ci_low",
                   "slope_ci_high", "intercept", "r2", "n_points", "n_mc_min", "n_mc_max", "prior", "batch_size",
                   "dtype", "machine", "ci_method")


def _keys(frame: pd.DataFrame) -> list[str]:
    return [k for k in GROUP_KEYS if k in frame.columns and k != "n_mc"] + ["samples"]


def _key(values) -> tuple:
    return tuple("" if pd.isna(v) else str(v) for v in values)


def fit_kl_cost(runs: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """One row per (group varying n_mc at fixed S, metric) with >= 3 ok values of n_mc.

    `runs`: every row, ok or not: a group whose grid varied n_mc but kept fewer than 3 ok values
    gets a one-line note saying why it has no fit; groups that never varied n_mc get nothing.
    """
    rows, notes = [], []
    if runs.empty or "n_mc" not in runs.columns:
        return pd.DataFrame(columns=KL_COST_COLUMNS), notes
    keys = _keys(runs)
    for key, group in runs.groupby(keys, dropna=False, sort=False):
        asked = group["n_mc"].nunique()
        if asked < 2:
            continue  # n_mc did not vary here: nothing to fit, nothing anyone expects
        label = dict(zip(keys, key))
        ok = group[group["status"] == "ok"]
        n_ok = ok["n_mc"].nunique()
        what = f"{label['task']} {label['impl']} ({label['kl']}, S={label['samples']}, {label['device']})"
        if n_ok < MIN_POINTS:
            failed = group[group["status"] != "ok"]
            why = (f"; {', '.join(sorted(set(failed['status'])))} "
                   f"at n_mc {', '.join(map(str, sorted(failed['n_mc'])))}" if len(failed) else "")
            notes.append(f"KL cost of {what}: only {n_ok} ok value(s) of n_mc{why}; a fit needs {MIN_POINTS} "
                         "(e.g. --n-mc 1,10,100)")
            continue
        for column, metric in METRICS:
            points = ok[["n_mc", column]].dropna()
            if points["n_mc"].nunique() < MIN_POINTS:
                continue  # e.g. graph_bytes absent from a foreign file: nothing a user asked for
            x, y = points["n_mc"].to_numpy(float), points[column].to_numpy(float)
            flat = bool(np.ptp(y) == 0)  # deterministic and constant (repar's memory): R^2 is undefined
            fit = fit_line(x, y)
            # A constant metric has slope 0 exactly (no scatter, no interval to speak of).
            low, high = (fit.slope, fit.slope) if flat else (fit.ci_low, fit.ci_high)
            rows.append({**label, "metric": metric, "slope_per_draw": fit.slope, "slope_ci_low": low,
                         "slope_ci_high": high, "intercept": fit.intercept,
                         "r2": np.nan if flat else fit.r2, "n_points": fit.n, "n_mc_min": int(x.min()),
                         "n_mc_max": int(x.max()), "ci_method": "t"})
    return pd.DataFrame(rows, columns=KL_COST_COLUMNS), notes


def kl_cost_display(table: pd.DataFrame, with_machine: bool = False) -> pd.DataFrame:
    """kl_cost.csv in readable units: milliseconds per step and MiB of saved tensors per extra draw."""
    shown = []
    scale = {"step_s": (1e3, "ms per step"), "graph_bytes": (1 / 2**20, "MiB saved for backward")}
    for _, r in table.iterrows():
        factor, unit = scale[r["metric"]]
        row = {"task": r["task"], "device": r["device"]}
        if with_machine:
            row["machine"] = r["machine"]
        row.update({"impl": r["impl"], "kl": r["kl"], "S": r["samples"], "metric": unit,
                    "per extra draw": r["slope_per_draw"] * factor, "ci low": r["slope_ci_low"] * factor,
                    "ci high": r["slope_ci_high"] * factor, "at n_mc=0": r["intercept"] * factor, "R²": r["r2"],
                    "n_mc": f"{r['n_mc_min']}..{r['n_mc_max']}", "n_points": r["n_points"]})
        shown.append(row)
    return pd.DataFrame(shown)


def kl_cost_sentences(table: pd.DataFrame) -> list[str]:
    out = []
    group_keys = ["task", "device", "machine", "impl", "kl", "samples"]
    for key, g in table.groupby([k for k in group_keys if k in table.columns], sort=False, dropna=False):
        label = dict(zip([k for k in group_keys if k in table.columns], key))
        parts = []
        for metric, factor, unit in (("step_s", 1e3, "ms per step"),
                                     ("graph_bytes", 1 / 2**20, "MiB of saved tensors")):
            m = g[g["metric"] == metric]
            if len(m):
                r = m.iloc[0]
                parts.append(f"{r['slope_per_draw'] * factor:.3g} {unit} [{r['slope_ci_low'] * factor:.3g}, "
                             f"{r['slope_ci_high'] * factor:.3g}]")
        if parts:
            out.append(f"On {label['task']} ({label['device']}, {label['impl']}, S={label['samples']}), each extra "
                       f"{label['kl']} draw adds {' and '.join(parts)}.")
    return out
