"""The model and prior a config names, built the same way by every command that trains one."""

from __future__ import annotations

import torch

import bnn_impls as B
from bench.config import BenchConfig
from bnn_impls.init_schemes import InitScheme


def prior_for(config: BenchConfig):
    """The config's prior: `prior_sigma` is sigma_p of the gaussian prior; the mixture has its own scales."""
    if config.prior == "gaussian":
        if not config.prior_sigma > 0:
            raise B.BnnConfigError(f"prior_sigma must be > 0, got {config.prior_sigma!r}: pass e.g. --prior-sigma 0.1")
        return B.make_prior("gaussian", sigma=float(config.prior_sigma))
    if config.prior_sigma != 1.0:
        raise B.BnnConfigError(f"prior_sigma applies to the gaussian prior only, not {config.prior!r}: "
                               "leave --prior-sigma at 1 or use --prior gaussian")
    return B.make_prior(config.prior)


def init_for(config: BenchConfig) -> InitScheme:
    return InitScheme(config.init, float(config.init_sigma))


def model_for(config: BenchConfig, sizes, device, dtype) -> B.BayesianMLP:
    """The initial posterior: seeded on the CPU, so every device starts from the same one."""
    return B.BayesianMLP(sizes, init=init_for(config), device=device, dtype=dtype,
                         generator=torch.Generator().manual_seed(config.seed))
