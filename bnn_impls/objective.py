"""The ELBO per training example, and what the implementations return."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import torch

from bnn_impls.capabilities import declared
from bnn_impls.names import BnnConfigError


@dataclass(frozen=True)
class ElboSpec:
    """What loss to compute: likelihood, KL estimator and prior, and the data-set size that weighs the KL.

    The KL weight is 1 / n_train on every step (the ELBO divided by N). The reference code let a
    per-batch weight decay to zero after a few hundred batches; here it is a constant by construction.
    """

    likelihood: object
    kl: str
    prior: object
    n_train: int
    n_mc: int = 1

    def __post_init__(self):
        if self.n_train < 1:
            raise ValueError(f"n_train must be >= 1, got {self.n_train}")
        if self.n_mc < 1:
            raise ValueError(f"n_mc must be >= 1, got {self.n_mc}")

    @property
    def kl_weight(self) -> float:
        return 1.0 / self.n_train


@dataclass(frozen=True)
class LossTerms:
    """loss = nll + kl_weight * kl; nll is averaged over samples and examples, kl summed over weights."""

    loss: torch.Tensor
    nll: torch.Tensor
    kl: torch.Tensor
    kl_weight: float

    def detach(self) -> LossTerms:
        return LossTerms(self.loss.detach(), self.nll.detach(), self.kl.detach(), self.kl_weight)


def combine(nll: torch.Tensor, kl: torch.Tensor, spec: ElboSpec) -> LossTerms:
    return LossTerms(loss=nll + spec.kl_weight * kl, nll=nll, kl=kl, kl_weight=spec.kl_weight)


def check_samples(samples: int) -> None:
    if not isinstance(samples, int) or isinstance(samples, bool) or samples < 1:
        raise BnnConfigError(f"samples must be a positive integer, got {samples!r}: pass S >= 1")


class ElboImplementation:
    """The ELBO around an implementation's own (nll, kl) terms, so validation and the KL weight are
    the same code for every implementation. Subclasses define `nll_and_kl` and `predict`."""

    name: str
    default_kl: str
    draws_weights: bool

    def loss(self, model, x: torch.Tensor, y: torch.Tensor, *, samples: int, spec: ElboSpec,
             generator: Optional[torch.Generator] = None, noise: Optional[Sequence[torch.Tensor]] = None) -> LossTerms:
        """`noise` replays exact draws: weight noise (samples, *param) per parameter for weight-sampling
        implementations, activation noise (samples, batch, units) per layer for the LRT."""
        check_samples(samples)
        self._check_spec(spec)
        nll, kl = self.nll_and_kl(model, x, y, samples, spec, generator, noise)
        return combine(nll, kl, spec)

    def _check_spec(self, spec: ElboSpec) -> None:
        """BnnConfigError if this implementation cannot run the spec's (KL estimator, prior), from its own
        declared capabilities; each pair is checked once per object, so the timed step does no lookups."""
        key = (spec.kl, getattr(spec.prior, "name", "gaussian"))
        checked = self.__dict__.setdefault("_checked_specs", set())
        if key not in checked:
            declared(self.name, self).check(*key)
            checked.add(key)

    def draw_step_noise(self, model, samples: int, x: torch.Tensor,
                        generator: Optional[torch.Generator]) -> Optional[list[torch.Tensor]]:
        """Every draw `loss` makes before its KL, made here in the same order and returned in the form
        `loss(noise=...)` replays, so `loss(noise=draw_step_noise(...))` is `loss()` with the same
        generator state. None where the draws interleave with the computation (sequential's loop).
        The `compile` lever draws outside the compiled region with it: a seeded draw inside is a
        graph break, and the backward is then compiled in pieces."""
        return None

    def nll_and_kl(self, model, x, y, samples, spec, generator, noise) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError
