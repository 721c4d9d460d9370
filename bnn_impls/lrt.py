"""`vmap_lrt`: vmap plus the local reparameterization trick (Kingma, Salimans & Welling 2015).

Per layer the pre-activation b = x W^T + c with W ~ N(mu_W, sigma_W^2), c ~ N(mu_c, sigma_c^2)
is Gaussian given x, with mean x mu_W^T + mu_c and variance x^2 (sigma_W^2)^T + sigma_c^2; one
standard normal per unit, per example and per sample replaces a whole weight draw. Weights are
never sampled, so the KL must come from a standalone estimator (closed form by default).
"""

from __future__ import annotations


import torch
import torch.nn.functional as F
from torch.func import vmap

from bnn_impls.kl import standalone_kl
from bnn_impls.model import BayesianMLP
from bnn_impls.objective import ElboImplementation, ElboSpec, check_samples


def layer_moments(x, mu_w, mu_b, var_w, var_b):
    """Mean and variance of one layer's pre-activations given its input."""
    return F.linear(x, mu_w, mu_b), F.linear(x * x, var_w, var_b)


class VmapLRT(ElboImplementation):
    name = "vmap_lrt"
    default_kl = "closed"
    draws_weights = False

    def __init__(self, hoist_first_layer: bool = True):
        # False recomputes the first layer for every sample (the naive form): kept so the
        # saving can be measured rather than assumed.
        self.hoist_first_layer = hoist_first_layer

    def draw_activation_noise(self, model: BayesianMLP, samples: int, batch: int, generator) -> list[torch.Tensor]:
        """One standard normal per sample, example and unit of every layer: (S, B, out) each."""
        mu0 = model.mu[0]
        return [
            torch.randn((samples, batch, n_out), generator=generator, device=mu0.device, dtype=mu0.dtype)
            for n_out in model.sizes[1:]
        ]

    def _outputs(self, model: BayesianMLP, x, samples, generator, noise, sigmas):
        zetas = list(noise) if noise is not None else self.draw_activation_noise(model, samples, x.shape[0], generator)
        layers = model.layers()
        means = [(model.mu[w], model.mu[b]) for w, b in layers]
        variances = [(sigmas[w] ** 2, sigmas[b] ** 2) for w, b in layers]

        # The first layer's moments do not depend on the sample (every sample sees the same x):
        # compute them once per batch, outside the map, and only add per-sample noise.
        if self.hoist_first_layer:
            mean0, var0 = layer_moments(x, *means[0], *variances[0])
            std0 = var0.sqrt()
        else:
            xs = x.expand(samples, *x.shape).contiguous()

        def one_sample(zeta_list, x_s=None):
            if x_s is not None:
                mean, var = layer_moments(x_s, *means[0], *variances[0])
                h = mean + var.sqrt() * zeta_list[0]
            else:
                h = mean0 + std0 * zeta_list[0]
            for (mu_w, mu_b), (var_w, var_b), zeta in zip(means[1:], variances[1:], zeta_list[1:]):
                h = torch.relu(h)
                mean, var = layer_moments(h, mu_w, mu_b, var_w, var_b)
                h = mean + var.sqrt() * zeta
            return h

        if self.hoist_first_layer:
            return vmap(one_sample)(zetas)
        return vmap(one_sample)(zetas, xs)

    def nll_and_kl(self, model: BayesianMLP, x, y, samples, spec: ElboSpec, generator, noise):
        sigmas = model.sigmas()  # once per step: the forward pass and the closed-form KL share it
        out = self._outputs(model, x, samples, generator, noise, sigmas)
        nll = spec.likelihood.nll(out, y).mean()
        return nll, standalone_kl(spec.kl, model, spec.prior, spec.n_mc, generator, sigmas)

    def predict(self, model, x, *, samples, generator=None, noise=None) -> torch.Tensor:
        check_samples(samples)
        return self._outputs(model, x, samples, generator, noise, model.sigmas())
