"""Floating-point operations of one training step, counted by PyTorch's own FLOP counter.

`FlopCounterMode` counts the matrix products of forward and backward (2 per multiply-add) as they
are dispatched, vmap-batched ones included; elementwise work (sampling, softplus, the KL sums) is
not counted, so the figure is the matmul work that a tensor-core peak is quoted against.
"""

from __future__ import annotations

from typing import Callable, Optional

from torch.utils.flop_counter import FlopCounterMode


def count_flops(fn: Callable[[], object]) -> Optional[int]:
    try:
        with FlopCounterMode(display=False) as counter:
            fn()
        return int(counter.get_total_flops())
    except Exception:  # an op the counter cannot trace leaves the column empty, never fails the run
        return None
