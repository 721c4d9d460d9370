"""Estimators of KL(q(w | mu, sigma) || p(w)), summed over every weight and bias.

All estimators return a scalar whose gradient flows into mu and rho. They differ in variance,
in which priors they support, and in how their cost grows with the number of Monte Carlo draws:

- `sample`: log q(w) - log p(w) on the weight draws the likelihood used (Blundell et al. 2015).
- `closed`: the analytic Gaussian-to-Gaussian KL.
- `mc`: `n_mc` fresh draws, differentiable through every draw, so the autograd graph (and memory)
  grows linearly with `n_mc`.
- `repar`: graph reparameterization (Nazarovs et al., UAI 2021). With w = mu + sigma * eps and a
  Gaussian prior, the Monte Carlo average of log q(w) - log p(w) depends on the draws only through
  the per-weight statistics mean(eps) and mean(eps^2). Those are accumulated over `n_mc` detached
  draws, then enter one differentiable expression: memory independent of `n_mc`.
- `repar_exact`: the same expression, with the two statistics drawn from their exact joint law
  instead of looping: mean(eps) ~ N(0, 1/n), and n*mean(eps^2) - n*mean(eps)^2 ~ chi2(n - 1),
  independent of it (Cochran's theorem for i.i.d. normals). Time and memory independent of `n_mc`.
"""

from __future__ import annotations

import math
from typing import Callable, Optional, Sequence

import torch

from bnn_impls.bayesify import BayesianModel
from bnn_impls.gamma import sample_chi2
from bnn_impls.names import GAUSSIAN_PRIOR_ONLY, BnnConfigError
from bnn_impls.priors import LOG_SQRT_2PI, GaussianPrior


def _require_gaussian(prior, estimator: str) -> float:
    if not isinstance(prior, GaussianPrior):
        raise BnnConfigError(
            f"KL estimator {estimator!r} needs the gaussian prior, got {getattr(prior, 'name', prior)!r}: "
            "use --prior gaussian, or the 'sample' or 'mc' estimator"
        )
    return prior.sigma


def sample_kl(model: BayesianModel, eps: Sequence[torch.Tensor], weights: Sequence[torch.Tensor],
              prior) -> torch.Tensor:
    """log q(w) - log p(w) for w = mu + sigma * eps, summed over parameters and averaged over any
    leading sample axis.

    log q(w) is written in terms of eps: -log sigma - eps^2/2 - log sqrt(2 pi). That is the same value
    as the density at w, and the same total derivative in mu and rho (the terms through w and through
    theta cancel to this), but it reads no S-sized tensor for the gradient: only log p(w) does.
    """
    lead = weights[0].dim() - model.mu[0].dim()  # 0 for one sample, 1 for a (S, ...) stack
    log_sigma_sum = sum(torch.log(s).sum() for s in model.sigmas())
    per_sample = sum(
        0.5 * torch.linalg.vector_norm(e.detach().flatten(lead), dim=-1) ** 2 + prior.log_prob_sum(w, lead)
        for e, w in zip(eps, weights)
    )
    n_weights = model.num_weights()
    return (-log_sigma_sum - n_weights * LOG_SQRT_2PI - per_sample).mean()


def closed_kl(model: BayesianModel, prior, sigmas: Optional[Sequence[torch.Tensor]] = None) -> torch.Tensor:
    """Sum over weights of log(sigma_p / sigma) + (sigma^2 + mu^2) / (2 sigma_p^2) - 1/2.

    Written as sums (of log sigma, and two squared norms) rather than elementwise and then summed:
    the same value in three reads of each tensor instead of seven. `sigmas` lets a caller that has
    already computed softplus(rho) for its forward pass reuse it.
    """
    sigma_p = _require_gaussian(prior, "closed")
    sigmas = model.sigmas() if sigmas is None else sigmas
    total = 0.0
    for mu, sigma in zip(model.mu, sigmas):
        sq = torch.linalg.vector_norm(sigma) ** 2 + torch.linalg.vector_norm(mu) ** 2
        total = total + sq / (2 * sigma_p**2) - torch.log(sigma).sum() + mu.numel() * (math.log(sigma_p) - 0.5)
    return total


def mc_kl(model: BayesianModel, prior, n_mc: int, generator: torch.Generator) -> torch.Tensor:
    """Direct Monte Carlo: every draw stays in the autograd graph (memory grows with n_mc)."""
    total = 0.0
    for _ in range(n_mc):
        eps = model.draw_weight_noise(None, generator)
        total = total + sample_kl(model, eps, model.weights_from_noise(eps), prior)
    return total / n_mc


def _kl_from_moments(model: BayesianModel, sigma_p: float, moments) -> torch.Tensor:
    """Mean over draws of log q(w) - log p(w), given per-weight mean(eps) and mean(eps^2).

    log q(w) = -log sigma - eps^2/2 - c;  log p(w) = -log sigma_p - (mu + sigma eps)^2 / (2 sigma_p^2) - c.
    """
    total = 0.0
    for mu, sigma, (m1, m2) in zip(model.mu, model.sigmas(), moments):
        per_weight = (
            math.log(sigma_p)
            - torch.log(sigma)
            - 0.5 * m2
            + (mu**2 + 2 * mu * sigma * m1 + sigma**2 * m2) / (2 * sigma_p**2)
        )
        total = total + per_weight.sum()
    return total


def repar_moments(model: BayesianModel, n_mc: int,
                  generator: torch.Generator) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """mean(eps), mean(eps^2) per weight over n_mc draws, accumulated without a graph.

    The draws are consumed in the same order as `mc_kl`'s, so the same generator state gives the
    same draws to both (that is how the equality test feeds them identical noise).
    """
    with torch.no_grad():
        sums = [(torch.zeros_like(m), torch.zeros_like(m)) for m in model.mu]
        for _ in range(n_mc):
            for (s1, s2), eps in zip(sums, model.draw_weight_noise(None, generator)):
                s1.add_(eps)
                s2.addcmul_(eps, eps)
        return [(s1 / n_mc, s2 / n_mc) for s1, s2 in sums]


def exact_moments(model: BayesianModel, n_mc: int,
                  generator: torch.Generator) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """(mean(eps), mean(eps^2)) drawn from their exact joint law for n_mc i.i.d. standard normals.

    The chi-square terms of every parameter come from one draw (bnn_impls.gamma, public ops and the
    caller's generator), split per parameter: one sampler call per step, however many layers.
    """
    with torch.no_grad():
        m1s = [torch.randn(m.shape, generator=generator, device=m.device, dtype=m.dtype) / math.sqrt(n_mc)
               for m in model.mu]
        if n_mc == 1:
            return [(m1, m1 * m1) for m1 in m1s]  # chi2(0) is the point mass at 0: mean(eps^2) = eps^2
        mu0 = model.mu[0]
        chi2 = sample_chi2(n_mc - 1, (model.num_weights(),), generator=generator, device=mu0.device, dtype=mu0.dtype)
        parts = chi2.split([m.numel() for m in model.mu])
        return [(m1, m1 * m1 + part.view(m1.shape) / n_mc) for m1, part in zip(m1s, parts)]


def repar_kl(model: BayesianModel, prior, n_mc: int, generator: torch.Generator) -> torch.Tensor:
    return _kl_from_moments(model, _require_gaussian(prior, "repar"), repar_moments(model, n_mc, generator))


def repar_exact_kl(model: BayesianModel, prior, n_mc: int, generator: torch.Generator) -> torch.Tensor:
    return _kl_from_moments(model, _require_gaussian(prior, "repar_exact"), exact_moments(model, n_mc, generator))


#: Estimators that do not reuse the likelihood's weight draws: (model, prior, n_mc, generator) -> scalar.
STANDALONE_ESTIMATORS: dict[str, Callable] = {
    "closed": lambda model, prior, n_mc, generator, sigmas=None: closed_kl(model, prior, sigmas),
    "mc": mc_kl,
    "repar": repar_kl,
    "repar_exact": repar_exact_kl,
}


def standalone_kl(name: str, model: BayesianModel, prior, n_mc: int, generator: Optional[torch.Generator],
                  sigmas: Optional[Sequence[torch.Tensor]] = None) -> torch.Tensor:
    """`sigmas`: softplus(rho) already computed this step; only the closed form can reuse it."""
    if name in GAUSSIAN_PRIOR_ONLY:
        _require_gaussian(prior, name)
    try:
        estimator = STANDALONE_ESTIMATORS[name]
    except KeyError:
        raise BnnConfigError(
            f"KL estimator {name!r} is not a standalone estimator: choose one of {', '.join(STANDALONE_ESTIMATORS)}"
        ) from None
    if name == "closed":
        return estimator(model, prior, n_mc, generator, sigmas)
    return estimator(model, prior, n_mc, generator)
