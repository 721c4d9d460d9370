"""Test-only plugin: re-registers `vmap` so every loss computation waits first.

Loaded through BNN_BENCH_PLUGINS=tests.plugins.slow_vmap, so every benchmark child process of a
sweep gets the slowed implementation under the unchanged name, which is what `check` must catch.

Two modes:
- BNN_BENCH_SLOW_SECONDS=S (default 0.01 when no fraction is given): a fixed sleep per step.
- BNN_BENCH_SLOW_FRACTION=F: a sleep of F times the step's own (unslowed) duration, so the step
  gets F slower whatever the task, machine or load: the shortest of the last few intervals between
  loss calls, less the sleeps in them. The shortest, because every other interval may span a gap
  between timed repeats (a paired gate alternates repeats of 2-4 steps with the other side's), and
  a gap is always longer than a step; the shortest of a few steps errs low, by a step's own noise.
"""

import os
import time
from collections import deque

from bnn_impls.registry import get_implementation, register_implementation

#: Intervals between loss calls remembered: enough that some are whole steps, not gaps between repeats.
WINDOW = 7


class SlowedImplementation:
    def __init__(self, inner, seconds: float = 0.0, fraction: float = 0.0):
        self._inner = inner
        self._seconds = seconds
        self._fraction = fraction
        self._last_call = None
        self._last_sleep = 0.0
        self._steps = deque(maxlen=WINDOW)

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def _sleep_for(self) -> float:
        if not self._fraction:
            return self._seconds
        now = time.perf_counter()
        if self._last_call is not None:
            self._steps.append(now - self._last_call - self._last_sleep)
        self._last_call = now
        return self._fraction * min(self._steps) if self._steps else 0.0

    def loss(self, *args, **kwargs):
        pause = self._sleep_for()
        if pause > 0:
            time.sleep(pause)
        self._last_sleep = pause
        if self._fraction:
            self._last_call = time.perf_counter() - pause  # the interval starts before the sleep
        return self._inner.loss(*args, **kwargs)


_fraction = float(os.environ.get("BNN_BENCH_SLOW_FRACTION", "0") or 0)
register_implementation(
    "vmap",
    SlowedImplementation(get_implementation("vmap"), float(os.environ.get("BNN_BENCH_SLOW_SECONDS", "0.01")),
                         fraction=_fraction),
    replace=True,
)
