"""Named initializations of the variational posterior (mu, rho), one parameter tensor at a time.

- `report` (the default, what the report's timing tables used): mu ~ U(-0.2, 0.2) for every layer
  whatever its width, rho ~ U(-5, -4) (sigma = softplus(rho) between 0.0067 and 0.018). An
  independent review measured that on MNIST 784-800-800-10 this starts at NLL 9.7 (log 10 = 2.3):
  a fixed range is far too wide for an 800-unit fan-in.
- `fan_in`: mu as PyTorch's own `nn.Linear` / `nn.Conv*` draw their weights and biases,
  U(-1/sqrt(fan_in), 1/sqrt(fan_in)) (kaiming_uniform with a = sqrt(5) reduces to this bound),
  and rho constant, chosen so that sigma = softplus(rho) equals a named starting sigma.

`init_sigma` (the config field) is the starting sigma; 0 means "the scheme's default": for
`report` the U(-5, -4) range of rho, for `fan_in` sigma = 0.01 (inside the report's range, so the
two schemes differ in mu only unless a sigma is named). A positive `init_sigma` sets rho to the
constant softplus^-1(init_sigma) under either scheme.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import torch

from bnn_impls.names import BnnConfigError

INIT_SCHEMES = ("report", "fan_in")
#: sigma = softplus(rho) at the start, for `fan_in` when no init_sigma is named.
FAN_IN_DEFAULT_SIGMA = 0.01
REPORT_MU_BOUND = 0.2
REPORT_RHO_RANGE = (-5.0, -4.0)


@dataclass(frozen=True)
class InitScheme:
    """A named posterior initialization; `sigma` 0.0 means the scheme's default (module docstring)."""

    name: str = "report"
    sigma: float = 0.0

    def __post_init__(self):
        if self.name not in INIT_SCHEMES:
            raise BnnConfigError(f"unknown init {self.name!r}: choose one of {', '.join(INIT_SCHEMES)}")
        if not (math.isfinite(self.sigma) and self.sigma >= 0):
            raise BnnConfigError("init_sigma must be a finite number >= 0 (0: the scheme's default), "
                                 f"got {self.sigma!r}")


def inverse_softplus(sigma: float) -> float:
    """rho with softplus(rho) = sigma; written as sigma + log(1 - exp(-sigma)) so small sigmas do not lose digits."""
    if not sigma > 0:
        raise BnnConfigError(f"a starting sigma must be > 0, got {sigma!r}")
    return sigma + math.log(-math.expm1(-sigma))


def _uniform(shape, low: float, high: float, dtype, generator) -> torch.Tensor:
    return torch.empty(shape, dtype=dtype).uniform_(low, high, generator=generator)


def initialize_(mu: torch.Tensor, rho: torch.Tensor, init, *, fan_in: int,
                generator: Optional[torch.Generator] = None) -> None:
    """Fill one parameter's mu and rho in place.

    Draws happen on the CPU with `generator` and are then copied, so one seed gives the same posterior
    on every device. `init` is an `InitScheme`, or the older `model.PosteriorInit` (explicit uniform
    ranges for mu and rho), which is kept working unchanged. `fan_in` is the inputs feeding one
    output unit of the layer the parameter belongs to (a bias takes its weight's).
    """
    shape, dtype = tuple(mu.shape), mu.dtype
    if not isinstance(init, InitScheme):  # PosteriorInit: the same two draws, in the same order, as always
        mu.copy_(_uniform(shape, init.mu_low, init.mu_high, dtype, generator))
        rho.copy_(_uniform(shape, init.rho_low, init.rho_high, dtype, generator))
        return
    if init.name == "report":
        mu.copy_(_uniform(shape, -REPORT_MU_BOUND, REPORT_MU_BOUND, dtype, generator))
    else:
        if fan_in < 1:
            raise BnnConfigError(f"init 'fan_in' needs a positive fan-in, got {fan_in}")
        bound = 1.0 / math.sqrt(fan_in)
        mu.copy_(_uniform(shape, -bound, bound, dtype, generator))
    if init.sigma > 0:
        rho.fill_(inverse_softplus(init.sigma))
    elif init.name == "report":
        rho.copy_(_uniform(shape, *REPORT_RHO_RANGE, dtype, generator))
    else:
        rho.fill_(inverse_softplus(FAN_IN_DEFAULT_SIGMA))


def parameter_fan_in(shape, previous_fan_in: int) -> int:
    """Fan-in for a parameter of this shape: a weight's product of its input dims; a 1-D bias takes its weight's."""
    return math.prod(shape[1:]) if len(shape) > 1 else previous_fan_in
