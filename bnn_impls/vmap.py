"""`vmap`: all weight samples drawn at once, the forward pass mapped over the sample axis."""

from __future__ import annotations

import torch
from torch.func import vmap

from bnn_impls.bayesify import BayesianModel
from bnn_impls.kl import sample_kl, standalone_kl
from bnn_impls.objective import ElboImplementation, ElboSpec, check_samples


class VmapBBB(ElboImplementation):
    name = "vmap"
    default_kl = "sample"
    draws_weights = True
    estimator_note = "weight sampling, every layer type: one weight draw per sample, shared by the batch"

    def draw_step_noise(self, model, samples, x, generator):
        return model.draw_weight_noise(samples, generator)

    def _outputs(self, model, x, samples, generator, noise):
        eps = list(noise) if noise is not None else self.draw_step_noise(model, samples, x, generator)
        weights = model.weights_from_noise(eps)  # each (S, *param)
        # BatchNorm's running stats: one copy per sample, mapped like the weights (None: nothing written).
        buffers = model.sample_buffers(samples)
        # x is shared by every sample (in_dims None): vmap batches only what depends on the weights.
        out = vmap(model.apply_weights, in_dims=(0, None, None if buffers is None else 0))(weights, x, buffers)
        model.commit_buffers(buffers)
        return eps, weights, out

    def nll_and_kl(self, model: BayesianModel, x, y, samples, spec: ElboSpec, generator, noise):
        eps, weights, out = self._outputs(model, x, samples, generator, noise)
        nll = spec.likelihood.nll(out, y).mean()  # (S, B): every sample sees the same batch size
        if spec.kl == "sample":
            return nll, sample_kl(model, eps, weights, spec.prior)
        return nll, standalone_kl(spec.kl, model, spec.prior, spec.n_mc, generator)

    def predict(self, model, x, *, samples, generator=None, noise=None) -> torch.Tensor:
        check_samples(samples)
        return self._outputs(model, x, samples, generator, noise)[2]
