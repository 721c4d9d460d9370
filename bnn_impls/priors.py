"""Priors over every weight and bias: Gaussian, and Blundell et al.'s scale mixture of two Gaussians."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from bnn_impls.names import PRIORS, BnnConfigError

_LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def normal_log_prob(x: torch.Tensor, mean, std) -> torch.Tensor:
    """Elementwise log N(x; mean, std^2); `std` may be a tensor or a float."""
    log_std = torch.log(std) if isinstance(std, torch.Tensor) else math.log(std)
    return -((x - mean) / std) ** 2 / 2 - log_std - _LOG_SQRT_2PI


@dataclass(frozen=True)
class GaussianPrior:
    sigma: float = 1.0
    name: str = "gaussian"

    def log_prob(self, w: torch.Tensor) -> torch.Tensor:
        return normal_log_prob(w, 0.0, self.sigma)


@dataclass(frozen=True)
class ScaleMixturePrior:
    """pi N(0, sigma1^2) + (1 - pi) N(0, sigma2^2): Blundell et al. (2015), eq. 7."""

    pi: float = 0.5
    sigma1: float = 1.0
    sigma2: float = math.exp(-6.0)
    name: str = "mixture"

    def log_prob(self, w: torch.Tensor) -> torch.Tensor:
        # logsumexp keeps the narrow component from underflowing to log(0) for large |w|.
        a = normal_log_prob(w, 0.0, self.sigma1) + math.log(self.pi)
        b = normal_log_prob(w, 0.0, self.sigma2) + math.log1p(-self.pi)
        return torch.logaddexp(a, b)


def make_prior(name: str, **params):
    if name == "gaussian":
        return GaussianPrior(**params)
    if name == "mixture":
        return ScaleMixturePrior(**params)
    raise BnnConfigError(f"unknown prior {name!r}: choose one of {', '.join(PRIORS)}")
