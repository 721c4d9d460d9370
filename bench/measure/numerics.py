"""Numeric state that changes CPU speed: denormal (subnormal) floats and whether they are flushed.

x86 CPUs handle an arithmetic operation on a denormal float in microcode, tens to a hundred times
slower than on a normal one. A Bayes-by-backprop model that fits its data well drives probabilities
and gradients towards zero, into that range: a `vmap_lrt` step trained repeatedly on one MNIST batch
slowed from about 85 ms to 330-360 ms (2-vCPU Xeon, 2 threads, 2026-12-01), and flush-to-zero
(`torch.set_flush_denormal(True)`, the `flush_denormal` lever) halved that. So every row records
whether flushing was in force and what share of the gradient was denormal when timing ended.
"""

from __future__ import annotations

from typing import Iterable, Optional

import torch


def flush_denormal_in_force() -> bool:
    """Whether this thread flushes denormals now, found by computing with one: torch has a setter
    (`set_flush_denormal`) but no getter, and DAZ makes a denormal operand read as zero."""
    tiny = torch.tensor([1e-39], dtype=torch.float32)  # below float32's smallest normal, 1.18e-38
    return float((tiny * 1.0).item()) == 0.0


def denormal_fraction(tensors: Iterable[Optional[torch.Tensor]]) -> Optional[float]:
    """The share of the elements of floating-point `tensors` that are denormal (nonzero and below the
    dtype's smallest normal in magnitude); None when there are none to look at."""
    denormal = total = 0
    with torch.no_grad():
        for tensor in tensors:
            if tensor is None or not tensor.is_floating_point() or tensor.numel() == 0:
                continue
            smallest = torch.finfo(tensor.dtype).tiny
            magnitude = tensor.detach().abs()
            denormal += int(((magnitude < smallest) & (magnitude > 0)).sum())
            total += tensor.numel()
    return denormal / total if total else None


def gradient_denormal_fraction(model: torch.nn.Module) -> Optional[float]:
    """`denormal_fraction` of the gradients the model's parameters hold (those of the last step)."""
    return denormal_fraction(p.grad for p in model.parameters())
