"""Test-only plugin: `vmap` doing BNN_BENCH_EXTRA_FLOPS (default 0.02, i.e. 2%) more FLOPs per step.

On its first call it counts the forward pass's FLOPs (torch's FlopCounterMode); a training step is
about three forward passes of matmul work (forward, and two products per layer in backward), so
each later call adds one square matmul of fraction x 3 x forward FLOPs, outside autograd. `check`
must flag the FLOPs counter of `vmap` (its 1% limit), deterministically.
"""

import os

import torch
from torch.utils.flop_counter import FlopCounterMode

from bnn_impls.registry import get_implementation, register_implementation


class ExtraFlopsImplementation:
    def __init__(self, inner, fraction: float):
        self._inner = inner
        self._fraction = fraction
        self._size = None

    def __getattr__(self, name):
        return getattr(self._inner, name)

    def loss(self, model, x, *args, **kwargs):
        if self._size is None:
            with torch.no_grad(), FlopCounterMode(display=False) as counter:
                self._inner.loss(model, x, *args, **kwargs)
            extra = self._fraction * 3 * counter.get_total_flops()
            self._size = max(1, round((extra / 2) ** (1 / 3)))  # an n x n x n matmul is 2 n^3 FLOPs
        with torch.no_grad():
            a = torch.ones(self._size, self._size, dtype=x.dtype, device=x.device)
            (a @ a).sum()
        return self._inner.loss(model, x, *args, **kwargs)


register_implementation(
    "vmap",
    ExtraFlopsImplementation(get_implementation("vmap"), float(os.environ.get("BNN_BENCH_EXTRA_FLOPS", "0.02"))),
    replace=True)
