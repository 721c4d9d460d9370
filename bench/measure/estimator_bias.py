"""How far an implementation's expected loss and gradient lie from weight sampling's, on one model.

Every implementation estimates the same expected negative log-likelihood E_q[NLL(w)] and its gradient;
`sequential` and `vmap` by sampling whole weights, `vmap_flipout` with sign-flipped perturbations,
`vmap_lrt` from each output's moments. Whether an estimator is unbiased for a given model is measured
here, not assumed: each implementation's NLL and its gradient with respect to every variational
parameter are averaged over `groups` independent estimates of `samples` draws each, on one fixed
batch and one fixed posterior, and compared with the reference's (weight sampling, `vmap`):

- loss: z = (mean - mean_ref) / sqrt(se^2 + se_ref^2), standard errors across groups;
- gradient, per layer kind (conv, dense) and parameter (mu, rho): rel_diff = |E g - E g_ref| / |E g_ref|
  and its noise floor sqrt(sum(se^2 + se_ref^2)) / |E g_ref|, the relative difference two unbiased
  estimators show from noise alone (the expected squared norm of a difference of independent means is
  the sum of their variances). `excess` = rel_diff / noise_floor is about 1 for an unbiased estimator.

The KL term is left out on purpose: it does not depend on the likelihood estimator, and the
implementations' default KL estimators differ (closed form for `vmap_lrt`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from bnn_impls.bayesify import BayesianModel

#: excess above which a gradient difference is called a bias, and |z| above which a loss difference is.
#: Under no bias, excess is 1 +- about 1/sqrt(2 * parameters), so 1.5 is many standard deviations out
#: for any layer of more than a few dozen weights; |z| > 4 happens by chance about once in 16,000.
EXCESS_LIMIT = 1.5
Z_LIMIT = 4.0


@dataclass(frozen=True)
class GroupEstimates:
    """K independent estimates, each the mean over `samples` draws: the NLL (K,) and, per parameter
    group name ("conv mu", "dense rho", ...), the flattened gradient (K, parameters)."""

    nll: torch.Tensor
    grads: dict[str, torch.Tensor]
    samples: int


@dataclass(frozen=True)
class BiasRow:
    """One implementation against the reference on one parameter group (`group` "loss" for the NLL)."""

    impl: str
    reference: str
    group: str
    parameters: int
    draws: int
    mean: float  # the NLL, or |E g|
    reference_mean: float
    z: float  # loss only (nan for gradients)
    rel_diff: float  # gradients only (nan for the loss)
    noise_floor: float
    excess: float
    verdict: str  # "agrees" or "differs"


def parameter_groups(model: BayesianModel) -> dict[str, list[torch.Tensor]]:
    """The variational parameters by layer kind and by mean or scale: "conv mu", "conv rho", "dense mu", ..."""
    groups: dict[str, list[torch.Tensor]] = {}
    for layer in model.bayesian_layers:
        kind = "dense" if isinstance(layer.module, torch.nn.Linear) else "conv"
        for index in (layer.weight, layer.bias):
            if index is None:
                continue
            groups.setdefault(f"{kind} mu", []).append(model.mu[index])
            groups.setdefault(f"{kind} rho", []).append(model.rho[index])
    return groups


def group_estimates(implementation, model: BayesianModel, x, y, spec, *, groups: int, samples: int,
                    generator: torch.Generator) -> GroupEstimates:
    """`groups` independent (NLL, gradient of the NLL) estimates, each over `samples` draws."""
    params = parameter_groups(model)
    flat = [p for ps in params.values() for p in ps]
    nlls, grads = [], {name: [] for name in params}
    for _ in range(groups):
        terms = implementation.loss(model, x, y, samples=samples, spec=spec, generator=generator)
        gs = torch.autograd.grad(terms.nll, flat, allow_unused=True)
        nlls.append(terms.nll.detach())
        start = 0
        for name, ps in params.items():
            parts = [torch.zeros_like(p) if g is None else g for p, g in zip(ps, gs[start:start + len(ps)])]
            grads[name].append(torch.cat([g.reshape(-1) for g in parts]).detach())
            start += len(ps)
    return GroupEstimates(torch.stack(nlls).double(), {n: torch.stack(g).double() for n, g in grads.items()}, samples)


def _mean_se(values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean over the first axis and its standard error (unbiased variance / K)."""
    k = values.shape[0]
    return values.mean(0), values.var(0, unbiased=True).div(k).sqrt()


def compare(impl: str, estimate: GroupEstimates, reference_name: str, reference: GroupEstimates) -> list[BiasRow]:
    """The loss row and one row per parameter group."""
    draws = estimate.nll.shape[0] * estimate.samples
    m, se = _mean_se(estimate.nll)
    mr, ser = _mean_se(reference.nll)
    z = float((m - mr) / torch.sqrt(se**2 + ser**2)) if float(se**2 + ser**2) > 0 else 0.0
    rows = [BiasRow(impl, reference_name, "loss", 0, draws, float(m), float(mr), z, math.nan, math.nan, math.nan,
                    "agrees" if abs(z) <= Z_LIMIT else "differs")]
    for name, g in estimate.grads.items():
        mean, se = _mean_se(g)
        mean_r, se_r = _mean_se(reference.grads[name])
        norm_r = float(mean_r.norm())
        diff = float((mean - mean_r).norm())
        floor = float(torch.sqrt((se**2 + se_r**2).sum()))
        rel, rel_floor = (diff / norm_r, floor / norm_r) if norm_r > 0 else (math.nan, math.nan)
        excess = diff / floor if floor > 0 else (0.0 if diff == 0 else math.inf)
        rows.append(BiasRow(impl, reference_name, name, g.shape[1], draws, float(mean.norm()), norm_r, math.nan, rel,
                            rel_floor, excess, "agrees" if excess <= EXCESS_LIMIT else "differs"))
    return rows


@dataclass(frozen=True)
class BiasSetup:
    """One model and posterior to measure: a task (or a --model factory on its data), its init, one batch."""

    task: str
    init: str = "report"
    init_sigma: float = 0.0  # 0: the init scheme's own sigmas
    model: str | None = None
    batch_size: int = 128
    groups: int = 40
    samples: int = 25
    seed: int = 0
    device: str = "cpu"
    dtype: str = "float32"
    data_dir: str | None = None
    data_source: str = "real"


def measure_bias(setup: BiasSetup, impls, reference: str = "vmap") -> list[BiasRow]:
    """Every implementation of `impls` against `reference` on one fixed posterior and batch. The model is
    built once (the builder's seeded init); each implementation draws from its own seeded generator."""
    import dataclasses

    from bench.training.builder import build_training
    from bnn_impls import get_implementation, registry

    training = build_training(setup.task, reference, samples=1, init=setup.init, init_sigma=setup.init_sigma,
                              model_factory=setup.model, device=setup.device, dtype=setup.dtype, seed=setup.seed,
                              data_dir=setup.data_dir, data_source=setup.data_source)
    x = training.data.x_train[: setup.batch_size]
    y = training.data.y_train[: setup.batch_size]

    def estimates(impl: str, stream: int) -> GroupEstimates:
        spec = dataclasses.replace(training.spec, kl=registry.default_kl(impl))
        generator = torch.Generator(x.device).manual_seed(setup.seed * 1000 + stream)
        return group_estimates(get_implementation(impl), training.model, x, y, spec, groups=setup.groups,
                               samples=setup.samples, generator=generator)

    ref = estimates(reference, 0)
    rows: list[BiasRow] = []
    for stream, impl in enumerate(impls, start=1):
        rows += compare(impl, estimates(impl, stream), reference, ref)
    return rows
