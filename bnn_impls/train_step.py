"""One optimizer step, as a function the harness can time."""

from __future__ import annotations

import contextlib
from typing import Callable, ContextManager, Optional

import torch

from bnn_impls.objective import ElboSpec, LossTerms


def make_train_step(model, impl, spec: ElboSpec, optimizer: torch.optim.Optimizer, *, samples: int,
                    generator: torch.Generator,
                    loss_fn: Optional[Callable[[torch.Tensor, torch.Tensor], LossTerms]] = None,
                    forward_context: Callable[[], ContextManager] = contextlib.nullcontext,
                    ) -> Callable[[torch.Tensor, torch.Tensor], LossTerms]:
    """(x, y) -> detached loss terms after one step. Nothing in it reads a value back to the host,
    so on a GPU the step stays asynchronous and the timer decides where to synchronize.

    `loss_fn` replaces `impl.loss` bound to these arguments (bench.training.levers passes a compiled one);
    `forward_context` is entered around the loss alone (autocast belongs to the forward)."""

    def step(x: torch.Tensor, y: torch.Tensor) -> LossTerms:
        optimizer.zero_grad(set_to_none=True)
        with forward_context():
            if loss_fn is None:
                terms = impl.loss(model, x, y, samples=samples, spec=spec, generator=generator)
            else:
                terms = loss_fn(x, y)
        terms.loss.backward()
        optimizer.step()
        return terms.detach()

    return step


def make_optimizer(model, lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=lr)
