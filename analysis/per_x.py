"""One point per x per series, at the median of the rows that share it, with their spread: the rule
every figure follows. Rows of the same config measured in several runs (a resumed search, merged
directories) or of configs a series does not tell apart would otherwise be joined into vertical
zigzags; drawn this way they are one marker with an error bar (or a band) over their range.

Pure pandas: no matplotlib until `plot_per_x` is handed an axes.
"""

from __future__ import annotations

from typing import Optional, Sequence

import numpy as np
import pandas as pd

COLUMNS = ("median", "low", "high", "n")


def per_x(frame: pd.DataFrame, x: str, y: str, series: Sequence[str] = (), low: Optional[str] = None,
          high: Optional[str] = None) -> pd.DataFrame:
    """Per series (in order of first appearance) and x (ascending): the median of `y`, `low` and `high`,
    and `n`, the number of rows. Rows with a missing x or y are left out.

    `low`/`high`: the spread is the range of the rows' y; where `low` and `high` name columns holding an
    interval per row (a bootstrap interval, quartiles of repeats), the spread is the widest of those
    intervals and the rows' range together, so one row keeps its own interval. A missing interval
    bound counts as the row's y."""
    series = list(series)
    data = frame[series + [x, y]].copy()
    data["_low"] = frame[low] if low is not None else frame[y]
    data["_high"] = frame[high] if high is not None else frame[y]
    # series are numbered before rows are dropped: every y of one frame lists its series in the same order
    data["_order"] = data.groupby(series, sort=False, dropna=False).ngroup() if series else 0
    data = data[data[x].notna() & data[y].notna()]
    data["_low"] = data["_low"].fillna(data[y])
    data["_high"] = data["_high"].fillna(data[y])
    if data.empty:
        return pd.DataFrame(columns=series + [x, *COLUMNS])
    grouped = data.groupby(["_order", x], sort=True)
    out = pd.DataFrame({"median": grouped[y].median(), "low": np.minimum(grouped[y].min(), grouped["_low"].min()),
                        "high": np.maximum(grouped[y].max(), grouped["_high"].max()), "n": grouped[y].size()})
    keys = grouped[series].first() if series else pd.DataFrame(index=out.index)
    out = pd.concat([keys, out], axis=1).reset_index()
    return out[series + [x, *COLUMNS]]


def groups(aggregated: pd.DataFrame, series: Sequence[str]):
    """(key, rows) per series of `per_x`'s output, in its order; key is a tuple (() without series)."""
    if not len(series):
        yield (), aggregated
        return
    for key, rows in aggregated.groupby(list(series), sort=False, dropna=False):
        yield key if isinstance(key, tuple) else (key,), rows


def plot_per_x(ax, points: pd.DataFrame, x: str, fmt: str = "o-", band: bool = False, **style):
    """One series of `per_x`'s output on `ax`: the medians joined by a line, the spread as error bars
    (or a shaded band with `band`); a plain line where every spread is zero. Returns the line."""
    xs, mid = points[x].to_numpy(), points["median"].to_numpy(dtype=float)
    low, high = points["low"].to_numpy(dtype=float), points["high"].to_numpy(dtype=float)
    spread = bool(np.any(high > low))
    if band or not spread:
        (line,) = ax.plot(xs, mid, fmt, **style)
        if spread:
            ax.fill_between(xs, low, high, color=line.get_color(), alpha=0.2, linewidth=0)
        return line
    yerr = np.clip(np.vstack([mid - low, high - mid]), 0, None)
    container = ax.errorbar(xs, mid, yerr=yerr, fmt=fmt, capsize=3, **style)
    return container.lines[0]
