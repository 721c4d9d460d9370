"""Test-only plugin: re-registers `vmap` so every loss computation sleeps first.

Loaded through BNN_BENCH_PLUGINS=tests.plugins.slow_vmap, so every benchmark child process of a
sweep gets the slowed implementation under the unchanged name, which is what `check` must catch.
"""

import os
import time

from bnn_impls.registry import get_implementation, register_implementation


class SlowedImplementation:
    def __init__(self, inner, seconds: float):
        self._inner = inner
        self._seconds = seconds

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def loss(self, *args, **kwargs):
        time.sleep(self._seconds)
        return self._inner.loss(*args, **kwargs)


register_implementation(
    "vmap",
    SlowedImplementation(get_implementation("vmap"), float(os.environ.get("BNN_BENCH_SLOW_SECONDS", "0.01"))),
    replace=True,
)
