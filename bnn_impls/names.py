"""The names of contract.md and the rules for combining them.

Light on purpose (no torch import) so a command line can validate a whole grid before any
process starts; the registry in `bnn_impls.registry` maps the same names to code.
"""

from __future__ import annotations

IMPLEMENTATIONS = ("sequential", "vmap", "vmap_lrt")
KL_ESTIMATORS = ("sample", "closed", "mc", "repar", "repar_exact")
TASKS = ("regression", "mnist", "lenet5", "vgg11", "resnet18")
PRIORS = ("gaussian", "mixture")

#: As in the report: the weight-sampling implementations use Blundell's sampled KL, the LRT the closed form.
DEFAULT_KL = {"sequential": "sample", "vmap": "sample", "vmap_lrt": "closed"}

#: Estimators whose math needs the Gaussian prior (closed form, or the sufficient-statistic rewrite).
GAUSSIAN_PRIOR_ONLY = ("closed", "repar", "repar_exact")
#: Estimators that reuse the likelihood's weight draws, so they need an implementation that draws weights.
NEEDS_WEIGHT_SAMPLES = ("sample",)
#: Implementations that never materialize weight samples.
NO_WEIGHT_SAMPLES = ("vmap_lrt",)


class BnnConfigError(ValueError):
    """A wrong name or combination; the message is one line that names the valid choices."""


def _check_name(kind: str, name: str, valid) -> None:
    if name not in valid:
        raise BnnConfigError(f"unknown {kind} {name!r}: choose one of {', '.join(valid)}")


def check_implementation(name: str, extra=()) -> None:
    _check_name("implementation", name, tuple(IMPLEMENTATIONS) + tuple(n for n in extra if n not in IMPLEMENTATIONS))


def check_task(name: str) -> None:
    _check_name("task", name, TASKS)


def default_kl(impl: str) -> str:
    return DEFAULT_KL.get(impl, "closed")


def valid_kl_for(impl: str, prior: str) -> tuple[str, ...]:
    """The KL estimators that make sense for this implementation and prior."""
    valid = []
    for kl in KL_ESTIMATORS:
        if kl in NEEDS_WEIGHT_SAMPLES and impl in NO_WEIGHT_SAMPLES:
            continue
        if kl in GAUSSIAN_PRIOR_ONLY and prior != "gaussian":
            continue
        valid.append(kl)
    return tuple(valid)


def check_combination(impl: str, kl: str, prior: str) -> None:
    """Raise BnnConfigError naming the valid choices if (impl, kl, prior) does not go together."""
    _check_name("KL estimator", kl, KL_ESTIMATORS)
    _check_name("prior", prior, PRIORS)
    if kl in GAUSSIAN_PRIOR_ONLY and prior != "gaussian":
        raise BnnConfigError(
            f"KL estimator {kl!r} needs the gaussian prior, not {prior!r}: use --prior gaussian, "
            f"or one of {', '.join(valid_kl_for(impl, prior))} with the {prior} prior"
        )
    if kl in NEEDS_WEIGHT_SAMPLES and impl in NO_WEIGHT_SAMPLES:
        raise BnnConfigError(
            f"KL estimator {kl!r} needs sampled weights, which {impl!r} never draws: "
            f"use one of {', '.join(valid_kl_for(impl, prior))}"
        )
