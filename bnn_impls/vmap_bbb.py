"""`vmap`: all weight samples drawn at once, the forward pass mapped over the sample axis."""

from __future__ import annotations

from typing import Optional, Sequence

import torch
from torch.func import vmap

from bnn_impls.kl import sample_kl, standalone_kl
from bnn_impls.model import BayesianMLP
from bnn_impls.objective import ElboSpec, LossTerms, check_samples, combine, validate


class VmapBBB:
    name = "vmap"
    default_kl = "sample"
    draws_weights = True

    def _outputs(self, model, x, samples, generator, noise):
        eps = list(noise) if noise is not None else model.draw_weight_noise(samples, generator)
        weights = model.weights_from_noise(eps)  # each (S, *param)
        # x is shared by every sample (in_dims None): vmap batches only what depends on the weights.
        out = vmap(model.apply_weights, in_dims=(0, None))(weights, x)
        return eps, weights, out

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
        validate(self.name, spec, samples)
        eps, weights, out = self._outputs(model, x, samples, generator, noise)
        nll = spec.likelihood.nll(out, y).mean()  # (S, B): every sample sees the same batch size
        if spec.kl == "sample":
            kl = sample_kl(model, eps, weights, spec.prior)
        else:
            kl = standalone_kl(spec.kl, model, spec.prior, spec.n_mc, generator)
        return combine(nll, kl, spec)

    def predict(self, model, x, *, samples, generator=None, noise=None) -> torch.Tensor:
        check_samples(samples)
        return self._outputs(model, x, samples, generator, noise)[2]
