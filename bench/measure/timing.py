"""Timing a block of training steps, and the statistics of its repeats.

The clock is `torch.utils.benchmark`'s own: it synchronizes the accelerator before reading
`perf_counter`, so queued GPU work is inside the interval. `benchmark.Timer` itself does not fit:
its `timeit` runs the statement at least twice more as warm-up, which for a block of whole epochs
of a stateful training loop would triple the cost and train the model between repeats unseen.
The harness warms up once, explicitly, before the first repeat. Tests inject a fake clock.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Hashable, Mapping, Optional, Sequence

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


#: How `time_in_rounds` orders the steps of a round.
ROUND_ORDERS = ("alternate", "rotate")


def time_in_rounds(steps: Mapping[Hashable, Callable[[], object]], rounds: int, *, calls: int = 1, warmup: int = 2,
                   order: str = "alternate", clock: Optional[Callable[[], float]] = None) -> dict:
    """Seconds per call of each step, one value per round, for variants of a step compared in one
    process (the scripts that time a lever beside its baseline). Every step is first called `warmup`
    times untimed; then each round times every step `calls` times, in the mapping's order and
    reversed on odd rounds (`alternate`) or started one step later each round (`rotate`), so drift
    within the run reaches every step alike and ratios formed within a round cancel it. The sweep's
    own rounds (bench/run/rounds.py) keep each config in its own process instead."""
    if order not in ROUND_ORDERS:
        raise ValueError(f"order must be one of {ROUND_ORDERS}, not {order!r}")
    keys = list(steps)
    for key in keys:
        for _ in range(warmup):
            steps[key]()
    seconds = {key: [] for key in keys}
    for r in range(rounds):
        if order == "alternate":
            round_keys = keys if r % 2 == 0 else keys[::-1]
        else:
            round_keys = keys[r % len(keys):] + keys[:r % len(keys)]
        for key in round_keys:
            def block(step=steps[key]):
                for _ in range(calls):
                    step()

            seconds[key].append(time_block(block, clock=clock) / calls)
    return seconds
