"""The variational parameters of a mean-field Gaussian Bayesian MLP, shared by every implementation.

The model holds only (mu, rho) per weight and bias; how samples are drawn and pushed through the
network is the implementation's business. Every implementation runs the same deterministic
skeleton (an `nn.Sequential` of `Linear` and `ReLU` on the meta device) through
`torch.func.functional_call`, so "the same network" is true by construction.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch
from torch import nn
from torch.func import functional_call
import torch.nn.functional as F

from bnn_impls.init_schemes import initialize_, parameter_fan_in


@dataclass(frozen=True)
class PosteriorInit:
    """Initial posterior: mu ~ U(mu_low, mu_high), rho ~ U(rho_low, rho_high) (the report's values)."""

    mu_low: float = -0.2
    mu_high: float = 0.2
    rho_low: float = -5.0
    rho_high: float = -4.0


def build_skeleton(sizes: Sequence[int]) -> nn.Sequential:
    """Linear-ReLU-...-Linear on the meta device: structure only, parameters always supplied."""
    layers: list[nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(nn.Linear(n_in, n_out, device="meta"))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class BayesianMLP(nn.Module):
    """Variational parameters (mu, rho) of every weight and bias; sigma = softplus(rho)."""

    def __init__(
        self,
        sizes: Sequence[int],
        *,
        init=PosteriorInit(),  # or an init_schemes.InitScheme
        device=None,
        dtype=None,
        generator: Optional[torch.Generator] = None,
    ):
        super().__init__()
        if len(sizes) < 2 or any(int(s) < 1 for s in sizes):
            raise ValueError(f"layer sizes must be >= 2 positive integers, got {list(sizes)}")
        self.sizes = tuple(int(s) for s in sizes)
        # Not registered as a submodule: it has no state, and `.to(device)` must not try to move meta tensors.
        object.__setattr__(self, "skeleton", build_skeleton(self.sizes))
        # Parameter order is the skeleton's: "0.weight", "0.bias", "2.weight", ... (ReLUs take indices).
        self.param_names = tuple(name for name, _ in self.skeleton.named_parameters())
        shapes = [p.shape for _, p in self.skeleton.named_parameters()]
        self.mu = nn.ParameterList()
        self.rho = nn.ParameterList()
        factory = dict(device=device, dtype=dtype)
        fan_in = 0
        for shape in shapes:
            mu = torch.empty(shape, **factory)
            rho = torch.empty(shape, **factory)
            # Draw on the CPU with a seeded generator, then move: the same seed gives the same
            # initial posterior on every device, so cpu and cuda rows train the same model.
            cpu_gen = generator if generator is not None and generator.device.type == "cpu" else None
            fan_in = parameter_fan_in(shape, fan_in)
            initialize_(mu, rho, init, fan_in=fan_in, generator=cpu_gen)
            self.mu.append(nn.Parameter(mu))
            self.rho.append(nn.Parameter(rho))

    # -- views of the posterior ---------------------------------------------------------------
    def sigmas(self) -> list[torch.Tensor]:
        return [F.softplus(r) for r in self.rho]

    def num_weights(self) -> int:
        return sum(m.numel() for m in self.mu)

    def layers(self) -> list[tuple[int, int]]:
        """(index of weight, index of bias) in the parameter lists, per linear layer."""
        return [(2 * i, 2 * i + 1) for i in range(len(self.sizes) - 1)]

    # -- sampling ------------------------------------------------------------------------------
    def draw_weight_noise(self, samples: Optional[int], generator: torch.Generator) -> list[torch.Tensor]:
        """Standard normal noise for every parameter: shape (samples, *param) or (*param) when samples is None."""
        lead = () if samples is None else (samples,)
        return [
            torch.randn(lead + tuple(m.shape), generator=generator, device=m.device, dtype=m.dtype) for m in self.mu
        ]

    def weights_from_noise(self, eps: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """w = mu + sigma * eps, broadcasting over any leading sample axes of eps."""
        return [torch.addcmul(m, s, e) for m, s, e in zip(self.mu, self.sigmas(), eps)]

    # -- the deterministic network -------------------------------------------------------------
    def apply_weights(self, weights: Sequence[torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        """The network's output for one weight sample (use torch.func.vmap for many)."""
        return functional_call(self.skeleton, dict(zip(self.param_names, weights)), (x,))
