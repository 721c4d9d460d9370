"""Statistics across seeds: a t interval for a mean, and the two one-sided tests (TOST) for
equivalence of two means within a margin. Pure functions of numbers (numpy and scipy only)."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass(frozen=True)
class MeanInterval:
    n: int
    mean: float
    sd: float  # sample standard deviation (n - 1); nan for n < 2
    low: float
    high: float


def t_interval(values, confidence: float = 0.95) -> MeanInterval:
    """Mean with its two-sided t interval (nan bounds with fewer than two values)."""
    x = np.asarray(values, dtype=float)
    x = x[np.isfinite(x)]
    n = len(x)
    if n == 0:
        return MeanInterval(0, math.nan, math.nan, math.nan, math.nan)
    mean = float(x.mean())
    if n < 2:
        return MeanInterval(1, mean, math.nan, math.nan, math.nan)
    sd = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * sd / math.sqrt(n)
    return MeanInterval(n, mean, sd, mean - half, mean + half)


@dataclass(frozen=True)
class Equivalence:
    """TOST of mean(a) - mean(b) against (-margin, +margin) with Welch's standard error."""

    diff: float
    se: float
    df: float
    low: float  # the (1 - 2 alpha) interval of the difference: inside the margin <=> equivalent
    high: float
    p: float  # the larger of the two one-sided p-values
    margin: float
    alpha: float

    @property
    def equivalent(self) -> bool:
        return bool(self.p < self.alpha)


def tost(a, b, margin: float, alpha: float = 0.05) -> Equivalence:
    """Two one-sided Welch t tests: H0 diff <= -margin and H0 diff >= +margin, each at level alpha.
    Each sample keeps its own variance (an implementation's own seed-to-seed spread). Needs >= 2 values
    on each side."""
    if margin <= 0:
        raise ValueError(f"margin must be > 0, got {margin}")
    x, y = (np.asarray(v, dtype=float) for v in (a, b))
    x, y = x[np.isfinite(x)], y[np.isfinite(y)]
    if len(x) < 2 or len(y) < 2:
        raise ValueError(f"TOST needs at least 2 values per side, got {len(x)} and {len(y)}")
    va, vb = x.var(ddof=1) / len(x), y.var(ddof=1) / len(y)
    diff = float(x.mean() - y.mean())
    se = math.sqrt(va + vb)
    if se == 0:
        inside = abs(diff) < margin
        return Equivalence(diff, 0.0, math.inf, diff, diff, 0.0 if inside else 1.0, margin, alpha)
    df = (va + vb) ** 2 / (va**2 / (len(x) - 1) + vb**2 / (len(y) - 1))
    p_low = float(stats.t.sf((diff + margin) / se, df))  # H0: diff <= -margin
    p_high = float(stats.t.cdf((diff - margin) / se, df))  # H0: diff >= +margin
    half = float(stats.t.ppf(1 - alpha, df)) * se
    return Equivalence(diff, se, float(df), diff - half, diff + half, max(p_low, p_high), margin, alpha)
