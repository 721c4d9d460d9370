"""Priors over every weight and bias: Gaussian, and Blundell et al.'s scale mixture of two Gaussians."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from bnn_impls.names import PRIORS, BnnConfigError

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


def _check_positive(what: str, value: float, flag: str) -> None:
    if not value > 0:  # also rejects nan
        raise BnnConfigError(f"{what} must be > 0, got {value}: e.g. {flag} 1.0")


def normal_log_prob(x: torch.Tensor, mean, std) -> torch.Tensor:
    """Elementwise log N(x; mean, std^2); `std` may be a tensor or a float."""
    log_std = torch.log(std) if isinstance(std, torch.Tensor) else math.log(std)
    return -((x - mean) / std) ** 2 / 2 - log_std - LOG_SQRT_2PI


@dataclass(frozen=True)
class GaussianPrior:
    sigma: float = 1.0
    name: str = "gaussian"

    def __post_init__(self):
        _check_positive("prior sigma", self.sigma, "--prior-sigma")

    def log_prob(self, w: torch.Tensor) -> torch.Tensor:
        return normal_log_prob(w, 0.0, self.sigma)

    def log_prob_sum(self, w: torch.Tensor, start_dim: int = 0) -> torch.Tensor:
        """log p summed over dims from start_dim on. A squared norm reads w once, where the
        elementwise form makes five passes over what may be S copies of every weight."""
        flat = w.flatten(start_dim)
        sq = torch.linalg.vector_norm(flat, dim=-1) ** 2
        return -sq / (2 * self.sigma**2) - flat.shape[-1] * (math.log(self.sigma) + LOG_SQRT_2PI)


@dataclass(frozen=True)
class ScaleMixturePrior:
    """pi N(0, sigma1^2) + (1 - pi) N(0, sigma2^2): Blundell et al. (2015), eq. 7."""

    pi: float = 0.5
    sigma1: float = 1.0
    sigma2: float = math.exp(-6.0)
    name: str = "mixture"

    def __post_init__(self):
        if not 0 < self.pi < 1:
            raise BnnConfigError(f"mixture pi must be strictly between 0 and 1, got {self.pi}: e.g. --mixture-pi 0.5")
        _check_positive("mixture sigma1", self.sigma1, "--mixture-sigma1")
        _check_positive("mixture sigma2", self.sigma2, "--mixture-sigma2")

    def log_prob(self, w: torch.Tensor) -> torch.Tensor:
        # logsumexp keeps the narrow component from underflowing to log(0) for large |w|.
        a = normal_log_prob(w, 0.0, self.sigma1) + math.log(self.pi)
        b = normal_log_prob(w, 0.0, self.sigma2) + math.log1p(-self.pi)
        return torch.logaddexp(a, b)

    def log_prob_sum(self, w: torch.Tensor, start_dim: int = 0) -> torch.Tensor:
        return self.log_prob(w).flatten(start_dim).sum(-1)


def make_prior(name: str, **params):
    """`params`: sigma for gaussian; pi, sigma1, sigma2 for mixture (bench.config.prior_params picks them)."""
    if name == "gaussian":
        return GaussianPrior(**params)
    if name == "mixture":
        return ScaleMixturePrior(**params)
    raise BnnConfigError(f"unknown prior {name!r}: choose one of {', '.join(PRIORS)}")
