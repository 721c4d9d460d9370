"""Timing a block of training steps, and the statistics of its repeats.

The clock is `torch.utils.benchmark`'s own: it synchronizes the accelerator before reading
`perf_counter`, so queued GPU work is inside the interval. `benchmark.Timer` itself does not fit:
its `timeit` runs the statement at least twice more as warm-up, which for a block of whole epochs
of a stateful training loop would triple the cost and train the model between repeats unseen.
The harness warms up once, explicitly, before the first repeat. Tests inject a fake clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np
from torch.utils.benchmark.utils.timer import timer as synchronized_clock


def time_block(fn: Callable[[], object], *, clock: Optional[Callable[[], float]] = None) -> float:
    """Seconds one call of `fn` takes, the device synchronized at both ends (unless a fake clock is given)."""
    clock = clock or synchronized_clock
    start = clock()
    fn()
    return float(clock() - start)


@dataclass(frozen=True)
class RepeatStats:
    step_s_median: float
    step_s_iqr: float
    step_s_min: float
    epoch_s: float
    epoch_measured: bool


def summarize(seconds: Sequence[float], steps: Sequence[int], steps_per_epoch: int, whole_epochs: bool) -> RepeatStats:
    """Median, IQR and minimum of per-step time over repeats, and the epoch time.

    With whole epochs timed, the epoch time is the median over repeats of the measured epoch time;
    otherwise it is extrapolated as median step time x steps per epoch (and flagged as such).
    """
    if len(seconds) == 0 or len(seconds) != len(steps):
        raise ValueError("need one step count per timed repeat, and at least one repeat")
    per_step = np.asarray(seconds, dtype=float) / np.asarray(steps, dtype=float)
    q25, median, q75 = np.percentile(per_step, [25, 50, 75])
    if whole_epochs:
        epochs = np.asarray(steps, dtype=float) / steps_per_epoch
        epoch_s = float(np.median(np.asarray(seconds, dtype=float) / epochs))
    else:
        epoch_s = float(median * steps_per_epoch)
    return RepeatStats(float(median), float(q75 - q25), float(per_step.min()), epoch_s, whole_epochs)
