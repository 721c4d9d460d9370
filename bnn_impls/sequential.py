"""`sequential`: a Python loop over weight samples, the plain Bayes by Backprop of the report."""

from __future__ import annotations

from typing import Optional, Sequence

import torch

from bnn_impls.kl import sample_kl, standalone_kl
from bnn_impls.model import BayesianMLP
from bnn_impls.objective import ElboSpec, LossTerms, check_samples, combine, validate


class SequentialBBB:
    name = "sequential"
    default_kl = "sample"
    draws_weights = True

    def _draw(self, model, s, generator, noise):
        eps = [n[s] for n in noise] if noise is not None else model.draw_weight_noise(None, generator)
        return eps, model.weights_from_noise(eps)

    def loss(
        self,
        model: BayesianMLP,
        x: torch.Tensor,
        y: torch.Tensor,
        *,
        samples: int,
        spec: ElboSpec,
        generator: Optional[torch.Generator] = None,
        noise: Optional[Sequence[torch.Tensor]] = None,
    ) -> LossTerms:
        """`noise`: per parameter, (samples, *shape) standard normals, to replay exact draws."""
        validate(self.name, spec, samples)
        nll = kl = 0.0
        for s in range(samples):
            eps, w = self._draw(model, s, generator, noise)
            nll = nll + spec.likelihood.nll(model.apply_weights(w, x), y).mean()
            if spec.kl == "sample":
                kl = kl + sample_kl(model, eps, w, spec.prior)
        nll = nll / samples
        kl = kl / samples if spec.kl == "sample" else standalone_kl(spec.kl, model, spec.prior, spec.n_mc, generator)
        return combine(nll, kl, spec)

    def predict(self, model, x, *, samples, generator=None, noise=None) -> torch.Tensor:
        check_samples(samples)
        return torch.stack([model.apply_weights(self._draw(model, s, generator, noise)[1], x) for s in range(samples)])
