"""`vmap_lrt`: vmap plus the local reparameterization trick (Kingma, Salimans & Welling 2015).

For a layer linear in its weights, b = x W^T + c with W ~ N(mu_W, sigma_W^2), c ~ N(mu_c, sigma_c^2)
is Gaussian given x, with mean x mu_W^T + mu_c and variance x^2 (sigma_W^2)^T + sigma_c^2: one
standard normal per output unit, per example and per sample replaces a whole weight draw. Weights are
never sampled, so the KL must come from a standalone estimator (closed form by default).

For a convolution the same rule gives each output its exact mean conv(x, mu) and variance
conv(x^2, sigma^2) (stride, padding, dilation and groups as the layer's), but it is an
approximation, not the same estimator: under weight sampling all positions share one kernel, so
neighbouring outputs are correlated, while here each position gets its own independent noise. The
variance of anything that sums over positions (pooling) is too small, and the expected loss and
gradient differ from weight sampling's (`bnn-bench bias` measures by how much for a model;
docs/estimators.md). `vmap_flipout` is the exact alternative for convolutions.

Any module works whose Bayesian layers all have a moment rule (`MOMENT_RULES`, extended with
`register_moment_rule`): the skeleton runs through `functional_call` with each Bayesian layer
swapped for its rule plus the sample's noise, and everything else (ReLU, pooling, BatchNorm,
residual sums) as the module wrote it.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from bnn_impls.bayesify import BayesianModel
from bnn_impls.kl import standalone_kl
from bnn_impls.layer_swap import SwappedSkeleton, cached_skeleton
from bnn_impls.names import BnnConfigError
from bnn_impls.objective import ElboImplementation, ElboSpec, check_samples

#: (layer, x, mu_weight, mu_bias, var_weight, var_bias) -> (mean, variance) of the layer's output given x.
MomentRule = Callable[..., tuple[torch.Tensor, torch.Tensor]]


#: The dtype the variance path (x^2 against sigma^2) runs in; None: the model's own. Set only through
#: `variance_dtype` (the `bf16_var` precision lever, bench/training/levers.py).
_VARIANCE_DTYPE: list = [None]


@contextlib.contextmanager
def variance_dtype(dtype):
    """Run the variance path of every moment rule in `dtype` (e.g. torch.bfloat16) inside the block:
    half the layer's matmul work, on operands that only set the noise's scale; the mean path stays in
    the model's dtype. Results come back in the model's dtype."""
    previous = _VARIANCE_DTYPE[0]
    _VARIANCE_DTYPE[0] = dtype
    try:
        yield
    finally:
        _VARIANCE_DTYPE[0] = previous


def _variance_operands(x, var_w, var_b):
    dtype = _VARIANCE_DTYPE[0]
    x2 = x * x
    if dtype is None or dtype == x.dtype:
        return x2, var_w, var_b
    return x2.to(dtype), var_w.to(dtype), None if var_b is None else var_b.to(dtype)


def layer_moments(x, mu_w, mu_b, var_w, var_b):
    """Mean and variance of a Linear layer's pre-activations given its input."""
    return F.linear(x, mu_w, mu_b), F.linear(*_variance_operands(x, var_w, var_b)).to(x.dtype)


def linear_moments(layer: nn.Linear, x, mu_w, mu_b, var_w, var_b):
    return layer_moments(x, mu_w, mu_b, var_w, var_b)


def conv_moments(layer: nn.modules.conv._ConvNd, x, mu_w, mu_b, var_w, var_b):
    """`_conv_forward` applies the layer's own stride, padding (and padding mode), dilation and groups.
    Padding copies or zeroes inputs, so padding x^2 equals squaring the padded x."""
    return layer._conv_forward(x, mu_w, mu_b), layer._conv_forward(*_variance_operands(x, var_w, var_b)).to(x.dtype)


MOMENT_RULES: dict[type, MomentRule] = {
    nn.Linear: linear_moments,
    nn.Conv1d: conv_moments,
    nn.Conv2d: conv_moments,
    nn.Conv3d: conv_moments,
}


def register_moment_rule(layer_type: type, rule: MomentRule, *, replace: bool = False) -> None:
    if layer_type in MOMENT_RULES and not replace:
        raise BnnConfigError(f"a moment rule for {layer_type.__name__} is already registered: pass replace=True")
    MOMENT_RULES[layer_type] = rule


def moment_rule(layer: nn.Module, path: str = "") -> MomentRule:
    """The rule of the layer's exact type (a subclass may change the forward, so no isinstance)."""
    rule = MOMENT_RULES.get(type(layer))
    if rule is None:
        where = f" (layer {path!r})" if path else ""
        raise BnnConfigError(
            f"vmap_lrt has no moment rule for the Bayesian layer type {type(layer).__name__}{where}: use the "
            f"sequential or vmap implementation, or register one with bnn_impls.vmap_lrt.register_moment_rule "
            f"(rules exist for {', '.join(t.__name__ for t in MOMENT_RULES)})"
        )
    return rule


def check_lrt_support(model: BayesianModel) -> None:
    """BnnConfigError naming the first Bayesian layer type without a moment rule."""
    for layer in model.bayesian_layers:
        moment_rule(layer.module, layer.path)


class _LrtLayer(nn.Module):
    """Stands in for one Bayesian layer: its output is mean + sqrt(var) * noise. The moments' inputs
    and the noise are buffers, supplied per call through functional_call."""

    def __init__(self, layer: nn.Module, rule: MomentRule):
        super().__init__()
        object.__setattr__(self, "layer", layer)  # hyper-parameters only; not a submodule
        self.rule = rule
        for name in ("mu_weight", "mu_bias", "var_weight", "var_bias", "noise"):
            self.register_buffer(name, None)

    def forward(self, x):
        mean, var = self.rule(self.layer, x, self.mu_weight, self.mu_bias, self.var_weight, self.var_bias)
        if self.var_bias is None:
            # Without a bias variance, an output whose receptive field is all zeros (after a ReLU, or in
            # the padding) has variance exactly 0, where sqrt's derivative is infinite (NaN gradients).
            # A floor of eps^2 (std ~1e-7 in float32) is far below any weight's own noise.
            var = var + torch.finfo(var.dtype).eps ** 2
        return mean + var.sqrt() * self.noise


def _build_skeleton(model: BayesianModel) -> SwappedSkeleton:
    check_lrt_support(model)
    return SwappedSkeleton(model, lambda layer: _LrtLayer(layer.module, moment_rule(layer.module, layer.path)))


def lrt_skeleton(model: BayesianModel) -> SwappedSkeleton:
    """The skeleton with every Bayesian layer swapped for its moment rule (cached per model)."""
    return cached_skeleton(model, "lrt", _build_skeleton)


class VmapLRT(ElboImplementation):
    name = "vmap_lrt"
    default_kl = "closed"
    draws_weights = False
    estimator_note = ("Linear: exact (output moments); Conv1d/2d/3d: an approximation, per-position noise drops "
                      "the kernel's weight sharing (bnn-bench bias measures it)")

    def __init__(self, hoist_first_layer: bool = True):
        # False recomputes the first layer for every sample (the naive form): kept so the
        # saving can be measured rather than assumed.
        self.hoist_first_layer = hoist_first_layer

    def draw_activation_noise(self, model: BayesianModel, samples: int, x: Union[torch.Tensor, Sequence[int], int],
                              generator) -> list[torch.Tensor]:
        """One standard normal per sample, example and output unit of every Bayesian layer:
        (S, *layer output) each. `x`: the input, its shape, or (for a model whose first operation is
        its first Linear layer, like the MLP) just the batch size."""
        if isinstance(x, int):
            first = model.bayesian_layers[0].module
            if not isinstance(first, nn.Linear):
                raise BnnConfigError("draw_activation_noise needs the input (or its shape) for a model that does "
                                     "not start with a Linear layer: pass x or x.shape")
            x_shape = (x, first.in_features)
        else:
            x_shape = tuple(x.shape) if isinstance(x, torch.Tensor) else tuple(x)
        mu0 = model.mu[0]
        return [
            torch.randn((samples, *shape), generator=generator, device=mu0.device, dtype=mu0.dtype)
            for _, shape in lrt_skeleton(model).io_shapes(model, x_shape)
        ]

    def draw_step_noise(self, model, samples, x, generator):
        return self.draw_activation_noise(model, samples, x, generator)

    def _outputs(self, model: BayesianModel, x, samples, generator, noise, sigmas):
        skeleton = lrt_skeleton(model)
        zetas = list(noise) if noise is not None else self.draw_step_noise(model, samples, x, generator)
        moments = {}
        for layer in model.bayesian_layers:
            w, b = layer.weight, layer.bias
            moments[f"{layer.path}.mu_weight"] = model.mu[w]
            moments[f"{layer.path}.var_weight"] = sigmas[w] ** 2
            if b is not None:
                moments[f"{layer.path}.mu_bias"] = model.mu[b]
                moments[f"{layer.path}.var_bias"] = sigmas[b] ** 2
        fixed = dict(moments)
        fixed.update(model.point_parameters())
        buffers = model.sample_buffers(samples)
        if buffers is None:
            fixed.update(model.buffer_dict())
        paths = skeleton.paths

        # Every sample sees the same x (in_dims None), so whatever precedes the first Bayesian layer,
        # and that layer's two moment convolutions, involve no batched tensor: vmap runs them once per
        # batch, not once per sample, and only the noise is per sample (the first-layer hoisting).
        def one_sample(zeta_list, x_s, buffers_s):
            tensors = dict(fixed)
            tensors.update((f"{p}.noise", z) for p, z in zip(paths, zeta_list))
            if buffers_s is not None:
                tensors.update(buffers_s)
            return functional_call(skeleton.module, tensors, (x_s,))

        buffer_dim = None if buffers is None else 0
        if self.hoist_first_layer:
            out = vmap(one_sample, in_dims=(0, None, buffer_dim))(zetas, x, buffers)
        else:
            xs = x.expand(samples, *x.shape).contiguous()
            out = vmap(one_sample, in_dims=(0, 0, buffer_dim))(zetas, xs, buffers)
        model.commit_buffers(buffers)
        return out

    def nll_and_kl(self, model: BayesianModel, x, y, samples, spec: ElboSpec, generator, noise):
        sigmas = model.sigmas()  # once per step: the forward pass and the closed-form KL share it
        out = self._outputs(model, x, samples, generator, noise, sigmas)
        nll = spec.likelihood.nll(out, y).mean()
        return nll, standalone_kl(spec.kl, model, spec.prior, spec.n_mc, generator, sigmas)

    def predict(self, model, x, *, samples, generator=None, noise=None) -> torch.Tensor:
        check_samples(samples)
        return self._outputs(model, x, samples, generator, noise, model.sigmas())
