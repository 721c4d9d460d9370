"""Least-squares slope of epoch time against S, with a 95% confidence interval.

The interval is the classical one from the slope's standard error with n - 2 degrees of freedom
(`ci_method = "t"`), i.e. what `scipy.stats.linregress` reports, made into an interval with the t
quantile. It describes how straight the line is over S; the bootstrap intervals on speedups in
`speedups.py` describe repeat-to-repeat timing noise.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from analysis.load import GROUP_KEYS

SLOPE_COLUMNS = ("task", "device", "impl", "kl", "slope_s_per_sample", "intercept_s", "r2", "slope_ci_low",
                 "slope_ci_high", "n_points", "prior", "n_mc", "batch_size", "dtype", "device_name", "ci_method",
                 "machine")
MIN_POINTS = 3


@dataclass(frozen=True)
class SlopeFit:
    slope: float
    intercept: float
    r2: float
    ci_low: float
    ci_high: float
    n: int


def fit_line(x, y, confidence: float = 0.95) -> SlopeFit:
    x = np.asarray(x, dtype=float)
    y = np.asarray(y, dtype=float)
    if len(x) < MIN_POINTS or len(np.unique(x)) < 2:
        raise ValueError(f"a slope needs at least {MIN_POINTS} points at 2 or more distinct S")
    fit = stats.linregress(x, y)
    half = stats.t.ppf(0.5 + confidence / 2, len(x) - 2) * fit.stderr
    return SlopeFit(float(fit.slope), float(fit.intercept), float(fit.rvalue**2), float(fit.slope - half),
                    float(fit.slope + half), len(x))


def _keys(frame: pd.DataFrame) -> list[str]:
    return [k for k in GROUP_KEYS if k in frame.columns]


def fit_slopes(ok_runs: pd.DataFrame, requested: pd.DataFrame | None = None) -> tuple[pd.DataFrame, list[str]]:
    """One slope per (task, device, impl, kl, prior, n_mc, batch_size, dtype, machine) with >= 3 distinct S.

    Returns the table and one-line notes for the groups a user would expect a slope of but that
    could not be fitted: those whose grid (`requested`: every row, ok or not; default `ok_runs`)
    varied S, but with fewer than 3 ok values. A group at one S (a KL-estimator check at fixed S,
    say) is a point, not a missing line: no note.
    """
    rows, notes = [], []
    keys = _keys(ok_runs)
    requested = ok_runs if requested is None else requested
    asked = {_key(k): g["samples"].nunique() for k, g in requested.groupby(keys, dropna=False, sort=False)}
    fitted = set()
    for key, group in ok_runs.groupby(keys, dropna=False, sort=False):
        label = dict(zip(keys, key))
        n_s = group["samples"].nunique()
        fitted.add(_key(key))
        if n_s < MIN_POINTS:
            if asked.get(_key(key), n_s) >= 2:
                notes.append(f"{_what(label)}: only {n_s} ok value(s) of S out of {asked[_key(key)]}, a slope needs "
                             f"{MIN_POINTS}")
            continue
        fit = fit_line(group["samples"], group["epoch_s"])
        names = group["device_name"].dropna().unique() if "device_name" in group else []
        rows.append({**label, "slope_s_per_sample": fit.slope, "intercept_s": fit.intercept, "r2": fit.r2,
                     "slope_ci_low": fit.ci_low, "slope_ci_high": fit.ci_high, "n_points": fit.n,
                     "device_name": names[0] if len(names) else "", "ci_method": "t"})
    for key, group in requested.groupby(keys, dropna=False, sort=False):
        if _key(key) not in fitted and group["samples"].nunique() >= 2:
            notes.append(f"{_what(dict(zip(keys, key)))}: no config finished ok, "
                         f"a slope needs {MIN_POINTS} values of S")
    table = pd.DataFrame(rows, columns=SLOPE_COLUMNS)
    return table, notes


def _key(values) -> tuple:
    return tuple("" if pd.isna(v) else str(v) for v in values)


def _what(label: dict) -> str:
    return f"{label['task']} {label['impl']} ({label['kl']}, n_mc {label.get('n_mc')}, {label['device']})"
