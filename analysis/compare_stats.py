"""The statistics of the regression check, pure functions of arrays: bootstrapped changes of medians,
of ratios and of per-round ratios, and the verdict rule (asv's `continuous`: large and significant)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

N_BOOT = 4000


def boot_medians(values: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    idx = rng.integers(0, len(values), size=(N_BOOT, len(values)))
    return np.median(values[idx], axis=1)


@dataclass(frozen=True)
class Change:
    point: float  # candidate / baseline (> 1: slower)
    low: float
    high: float
    p_slower: float  # one-sided p-value of "not slower"
    p_faster: float


def change_of_medians(base: np.ndarray, cand: np.ndarray, rng) -> Change:
    point = np.median(cand) / np.median(base)
    boot = boot_medians(cand, rng) / boot_medians(base, rng)
    return change_from_boot(point, boot)


def change_of_ratios(base_num, base_den, cand_num, cand_den, rng) -> Change:
    """Change of (num / den) between the runs: (cand_num/cand_den) / (base_num/base_den)."""
    point = (np.median(cand_num) / np.median(cand_den)) / (np.median(base_num) / np.median(base_den))
    boot = (boot_medians(cand_num, rng) / boot_medians(cand_den, rng)) / (
        boot_medians(base_num, rng) / boot_medians(base_den, rng))
    return change_from_boot(point, boot)


def round_ratios(num: np.ndarray, num_rounds: np.ndarray, den: np.ndarray, den_rounds: np.ndarray) -> np.ndarray:
    """Per round, median(num) / median(den) over that round's repeats; rounds missing on either side dropped."""
    common = sorted(set(num_rounds.tolist()) & set(den_rounds.tolist()))
    return np.array([np.median(num[num_rounds == r]) / np.median(den[den_rounds == r]) for r in common], float)


def change_of_round_ratios(base: np.ndarray, cand: np.ndarray, rng) -> Change:
    """Change of the median per-round ratio, each side's rounds resampled (they are the independent units)."""
    point = np.median(cand) / np.median(base)
    boot = boot_medians(cand, rng) / boot_medians(base, rng)
    return change_from_boot(point, boot)


def change_from_boot(point: float, boot: np.ndarray) -> Change:
    low, high = np.percentile(boot, [2.5, 97.5])
    # One-sided bootstrap p-values, with the +1 correction so p is never exactly 0.
    p_slower = (np.sum(boot <= 1.0) + 1) / (len(boot) + 1)
    p_faster = (np.sum(boot >= 1.0) + 1) / (len(boot) + 1)
    return Change(float(point), float(low), float(high), float(p_slower), float(p_faster))


def verdict(change: Change, threshold: float, alpha: float, extra_p_slower: float = 0.0,
            extra_p_faster: float = 0.0) -> str:
    if change.point > 1 + threshold and max(change.p_slower, extra_p_slower) < alpha:
        return "REGRESSION"
    if change.point < 1 / (1 + threshold) and max(change.p_faster, extra_p_faster) < alpha:
        return "improved"
    return "ok"
