"""The hook for implementations that bring their own model, loss and optimizer (the peer libraries).

An implementation with a `make_training(task, data, *, samples, lr, batch_size, seed, generator)` method returns
a `Training`; `bench.measure.step` then times `Training.step` instead of building the shared
`BayesianMLP`, `ElboSpec` and `make_train_step`. Everything else (batches, warm-up, timing,
graph bytes, FLOPs, RSS) is the harness's, so the numbers are comparable with ours.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch

from bnn_impls.objective import LossTerms


@dataclass(frozen=True)
class Training:
    """One optimizer step on (x, y), and what its loss means.

    step: (x, y) -> detached LossTerms of the loss that step minimized (nll, kl as the library computes them).
    predict: (x, samples) -> S predictive outputs, shape (S, B, out), without gradients.
    kl_weight: the factor the library's loss puts on its KL term for this task (None: no explicit KL term).
    """

    step: Callable[[torch.Tensor, torch.Tensor], LossTerms]
    model: torch.nn.Module
    predict: Callable[[torch.Tensor, int], torch.Tensor]
    kl_weight: float | None
    loss_note: str
