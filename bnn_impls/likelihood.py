"""Per-example negative log-likelihoods of the two tasks."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F


@dataclass(frozen=True)
class GaussianLikelihood:
    """y ~ N(f(x), sigma^2) with sigma fixed (not learned)."""

    sigma: float = 0.1
    name: str = "gaussian"

    def nll(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        """Per-example NLL, shape out.shape[:-1] (leading sample axes kept)."""
        z = (out - y) / self.sigma
        return (0.5 * z**2).sum(-1) + out.shape[-1] * (math.log(self.sigma) + 0.5 * math.log(2 * math.pi))


@dataclass(frozen=True)
class CategoricalLikelihood:
    """y ~ Categorical(softmax(f(x)))."""

    name: str = "categorical"

    def nll(self, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        lead = out.shape[:-1]
        targets = y.expand(lead) if y.dim() < len(lead) else y
        return F.cross_entropy(out.reshape(-1, out.shape[-1]), targets.reshape(-1), reduction="none").reshape(lead)
