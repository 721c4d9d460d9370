"""`sequential`: a Python loop over weight samples, the plain Bayes by Backprop of the report."""

from __future__ import annotations

import torch

from bnn_impls.bayesify import BayesianModel
from bnn_impls.kl import sample_kl, standalone_kl
from bnn_impls.objective import ElboImplementation, ElboSpec, check_samples


class SequentialBBB(ElboImplementation):
    name = "sequential"
    default_kl = "sample"
    draws_weights = True
    estimator_note = "weight sampling, every layer type: one weight draw per sample, shared by the batch"

    def _draw(self, model, s, generator, noise):
        eps = [n[s] for n in noise] if noise is not None else model.draw_weight_noise(None, generator)
        return eps, model.weights_from_noise(eps)

    @staticmethod
    def _sample_buffers(buffers, s):
        return None if buffers is None else {name: b[s] for name, b in buffers.items()}

    def nll_and_kl(self, model: BayesianModel, x, y, samples, spec: ElboSpec, generator, noise):
        nll = kl = 0.0
        buffers = model.sample_buffers(samples)  # BatchNorm's running stats: one copy per sample
        for s in range(samples):
            eps, w = self._draw(model, s, generator, noise)
            nll = nll + spec.likelihood.nll(model.apply_weights(w, x, self._sample_buffers(buffers, s)), y).mean()
            if spec.kl == "sample":
                kl = kl + sample_kl(model, eps, w, spec.prior)
        model.commit_buffers(buffers)
        nll = nll / samples
        kl = kl / samples if spec.kl == "sample" else standalone_kl(spec.kl, model, spec.prior, spec.n_mc, generator)
        return nll, kl

    def predict(self, model, x, *, samples, generator=None, noise=None) -> torch.Tensor:
        check_samples(samples)
        buffers = model.sample_buffers(samples)
        out = torch.stack([model.apply_weights(self._draw(model, s, generator, noise)[1], x,
                                               self._sample_buffers(buffers, s)) for s in range(samples)])
        model.commit_buffers(buffers)
        return out
