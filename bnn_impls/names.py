"""The names of the results format (docs/results-format.md) and the rules for combining them.

Pure and light on purpose (standard library only, imports nothing of the package) so a command line
can validate a whole grid before any process starts. What each implementation defaults to and
supports is declared by the implementation itself (`bnn_impls.capabilities`); the rules here take
those capabilities as arguments.
"""

from __future__ import annotations

IMPLEMENTATIONS = ("sequential", "vmap", "vmap_lrt", "vmap_flipout")
KL_ESTIMATORS = ("sample", "closed", "mc", "repar", "repar_exact")
TASKS = ("regression", "mnist", "lenet5", "vgg11", "resnet18")
PRIORS = ("gaussian", "mixture")

#: Estimators whose math needs the Gaussian prior (closed form, or the sufficient-statistic rewrite).
GAUSSIAN_PRIOR_ONLY = ("closed", "repar", "repar_exact")
#: Estimators that reuse the likelihood's weight draws, so they need an implementation that draws weights.
NEEDS_WEIGHT_SAMPLES = ("sample",)


class BnnConfigError(ValueError):
    """A wrong name or combination; the message is one line that names the valid choices."""


def _check_name(kind: str, name: str, valid) -> None:
    if name not in valid:
        raise BnnConfigError(f"unknown {kind} {name!r}: choose one of {', '.join(valid)}")


def check_task(name: str) -> None:
    _check_name("task", name, TASKS)


def kls_allowed(prior: str, *, draws_weights: bool, supported=KL_ESTIMATORS) -> tuple[str, ...]:
    """The estimators among `supported` that an implementation with these capabilities can use with `prior`."""
    return tuple(
        kl for kl in KL_ESTIMATORS
        if kl in supported
        and not (kl in NEEDS_WEIGHT_SAMPLES and not draws_weights)
        and not (kl in GAUSSIAN_PRIOR_ONLY and prior != "gaussian")
    )


def check_rules(impl: str, kl: str, prior: str, *, draws_weights: bool, supported=KL_ESTIMATORS,
                priors=PRIORS) -> None:
    """The combination rules, given an implementation's capabilities; BnnConfigError names the valid choices."""
    _check_name("KL estimator", kl, KL_ESTIMATORS)
    _check_name("prior", prior, PRIORS)
    if prior not in priors:
        raise BnnConfigError(f"implementation {impl!r} brings its own prior and runs only with --prior "
                             f"{', '.join(priors)}, not {prior!r}")
    if kl not in supported:
        raise BnnConfigError(f"implementation {impl!r} supports only the KL estimator(s) {', '.join(supported)}, "
                             f"not {kl!r}: leave --kl out (its default) or use one of them")
    if kl in GAUSSIAN_PRIOR_ONLY and prior != "gaussian":
        raise BnnConfigError(
            f"KL estimator {kl!r} needs the gaussian prior, not {prior!r}: use --prior gaussian, "
            f"or one of {', '.join(kls_allowed(prior, draws_weights=draws_weights, supported=supported))} "
            f"with the {prior} prior"
        )
    if kl in NEEDS_WEIGHT_SAMPLES and not draws_weights:
        raise BnnConfigError(
            f"KL estimator {kl!r} needs sampled weights, which {impl!r} never draws: "
            f"use one of {', '.join(kls_allowed(prior, draws_weights=draws_weights, supported=supported))}"
        )
