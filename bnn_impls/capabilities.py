"""What an implementation declares about itself, read from the implementation object.

The one source of an implementation's defaults and capabilities, for built-ins, plugins and peers
alike: its `default_kl`, `draws_weights`, and optionally the KL estimators (`kl_estimators`),
tasks (`tasks`) and priors (`priors`) it supports and what its loss weighs the KL by
(`kl_weight`, `loss_note`). Kept apart from the registry so an implementation can check its own
arguments without looking itself up by name.
"""

from __future__ import annotations

from dataclasses import dataclass

from bnn_impls import names
from bnn_impls.names import BnnConfigError

#: What the built-in ELBO weighs the KL by, and how (see objective.ElboSpec).
ELBO_KL_WEIGHT = "1/N"
ELBO_LOSS_NOTE = "mean NLL over samples and examples + KL(sum over weights) / n_train; prior N(0, 1)"


@dataclass(frozen=True)
class Capabilities:
    """What an implementation declares about itself; read by the grid, `measure` and `list`."""

    name: str
    default_kl: str
    draws_weights: bool
    kl_estimators: tuple[str, ...]
    tasks: tuple[str, ...]
    priors: tuple[str, ...]
    kl_weight: str  # what the loss multiplies the KL by, in words ("1/N", "1/batch", ...)
    loss_note: str  # how the loss differs from ours, one line ("" for the ELBO of objective.py)
    trains_own_model: bool  # has `make_training`
    estimator: str = ""  # what its likelihood term estimates, per layer type (docs/estimators.md)

    def check(self, kl: str, prior: str) -> None:
        """BnnConfigError naming the valid choices if this implementation cannot run (kl, prior)."""
        names.check_rules(self.name, kl, prior, draws_weights=self.draws_weights, supported=self.kl_estimators,
                          priors=self.priors)

    def valid_kls(self, prior: str) -> tuple[str, ...]:
        return names.kls_allowed(prior, draws_weights=self.draws_weights, supported=self.kl_estimators)


def declared(name: str, impl) -> Capabilities:
    """The capabilities an implementation object declares; a missing or bad declaration is a BnnConfigError."""
    missing = [a for a in ("default_kl", "draws_weights") if not hasattr(impl, a)]
    if missing:
        raise BnnConfigError(f"implementation {name!r} does not declare {', '.join(missing)}: set them as class "
                             f"attributes (see docs/adding-an-implementation.md)")
    kls = tuple(getattr(impl, "kl_estimators", None) or names.KL_ESTIMATORS)
    tasks = tuple(getattr(impl, "tasks", None) or names.TASKS)
    priors = tuple(getattr(impl, "priors", None) or names.PRIORS)
    caps = Capabilities(name=name, default_kl=impl.default_kl, draws_weights=bool(impl.draws_weights),
                        kl_estimators=kls, tasks=tasks, priors=priors,
                        kl_weight=str(getattr(impl, "kl_weight", ELBO_KL_WEIGHT)),
                        loss_note=str(getattr(impl, "loss_note", "")),
                        trains_own_model=callable(getattr(impl, "make_training", None)),
                        estimator=str(getattr(impl, "estimator_note", "")))
    for kl in kls:
        if kl not in names.KL_ESTIMATORS:
            raise BnnConfigError(f"implementation {name!r} declares unknown KL estimator {kl!r}: "
                                 f"choose among {', '.join(names.KL_ESTIMATORS)}")
    if caps.default_kl not in names.kls_allowed(priors[0], draws_weights=caps.draws_weights, supported=kls):
        raise BnnConfigError(f"implementation {name!r} declares default_kl={caps.default_kl!r}, which it cannot use "
                             f"(draws_weights={caps.draws_weights}, kl_estimators={', '.join(kls)})")
    return caps
