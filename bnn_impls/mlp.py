"""The report's model, a mean-field Gaussian Bayesian MLP: one case of `bnn_impls.bayesify`.

`BayesianMLP(sizes)` is `bayesify(mlp(sizes))`: the same parameter object, the same code path
and the same initial posterior for a given seed as every other Bayesian module.
"""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch import nn

from bnn_impls.bayesify import DEFAULT_INIT, BayesianModel, PosteriorInit, bayesify

__all__ = ["BayesianMLP", "BayesianModel", "PosteriorInit", "mlp"]

def mlp(sizes: Sequence[int], device="meta") -> nn.Sequential:
    """Linear-ReLU-...-Linear; on the meta device by default (structure only: bayesify draws the values)."""
    if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
        raise ValueError(f"layer sizes must be >= 2 positive integers, got {list(sizes)}")
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(int(n_in), int(n_out), device=device))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def BayesianMLP(sizes: Sequence[int], *, init: PosteriorInit = DEFAULT_INIT, device=None, dtype=None,
                generator: Optional[torch.Generator] = None) -> BayesianModel:
    """The Bayesian MLP with these layer sizes (input first); `model.sizes` keeps them."""
    model = bayesify(mlp(sizes), init=init, device=device, dtype=dtype, generator=generator)
    model.sizes = tuple(int(s) for s in sizes)
    return model
