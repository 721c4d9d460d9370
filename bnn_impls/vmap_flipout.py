"""`vmap_flipout`: vmap over samples plus Flipout (Wen, Vicol, Ba, Tran & Grosse, ICLR 2018).

Per weight sample s, one perturbation dW_s = sigma * eps_s (as `vmap` draws it), and per example n
random signs r_in (one per input channel) and r_out (one per output channel). A Bayesian layer
computes

    out = layer(x, mu_W, mu_b) + r_out * layer(x * r_in, dW_s, db_s)

which for a layer linear in its weights equals layer(x, W_n) with the example's own weights
W_n = mu_W + dW_s * (r_out r_in^T) and bias mu_b + db_s * r_out. The sign flips of a symmetric
perturbation leave its distribution unchanged, so every example's weights are exactly a draw from
the posterior (the estimator is unbiased like weight sampling), while examples in a batch get
decorrelated perturbations (a variance like the LRT's instead of one shared draw). For a
convolution the signs are per channel and broadcast over positions: all positions of one example
share one kernel, as under weight sampling. That is what the LRT's per-position noise gives up.

Cost: two matmuls or convolutions per layer (the mean path, shared by every sample for the first
layer because its input is, and the perturbation path) plus one weight draw per sample and two
sign vectors per example. The KL can reuse the per-sample weights mu + dW_s (true posterior draws),
so the default is the same `sample` estimator that `sequential` and `vmap` use.

`noise` replays exact draws: the weight noise (S, *param) of every parameter (as for `vmap`),
followed by (r_in, r_out) per Bayesian layer, of shapes (S, batch, in_channels) and (S, batch,
out_channels) with entries +-1 (`draw_flipout_noise`).
"""

from __future__ import annotations

from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call, vmap

from bnn_impls.bayesify import BayesianModel
from bnn_impls.kl import sample_kl, standalone_kl
from bnn_impls.layer_swap import SwappedSkeleton, cached_skeleton
from bnn_impls.names import BnnConfigError
from bnn_impls.objective import ElboImplementation, ElboSpec, check_samples

#: (layer, x, weight, bias) -> the layer's output with those weights.
LayerForward = Callable[..., torch.Tensor]


def linear_forward(layer: nn.Linear, x, weight, bias):
    return F.linear(x, weight, bias)


def conv_forward(layer: nn.modules.conv._ConvNd, x, weight, bias):
    """The layer's own stride, padding (and padding mode), dilation and groups. Sign flips of the
    input channels commute with zero padding, and with reflect/replicate/circular padding too (they
    copy values within a channel)."""
    return layer._conv_forward(x, weight, bias)


#: Per layer type: how to run it with given weights, and which axis of its input and output holds the
#: channels the signs multiply (Linear: the last; convolutions: 1, after the batch).
FLIPOUT_RULES: dict[type, tuple[LayerForward, int]] = {
    nn.Linear: (linear_forward, -1),
    nn.Conv1d: (conv_forward, 1),
    nn.Conv2d: (conv_forward, 1),
    nn.Conv3d: (conv_forward, 1),
}


def register_flipout_rule(layer_type: type, forward: LayerForward, channel_dim: int, *, replace: bool = False) -> None:
    """Let vmap_flipout run another layer type that is linear in its weights."""
    if layer_type in FLIPOUT_RULES and not replace:
        raise BnnConfigError(f"a Flipout rule for {layer_type.__name__} is already registered: pass replace=True")
    FLIPOUT_RULES[layer_type] = (forward, channel_dim)


def flipout_rule(layer: nn.Module, path: str = "") -> tuple[LayerForward, int]:
    """The rule of the layer's exact type (a subclass may change the forward, so no isinstance)."""
    rule = FLIPOUT_RULES.get(type(layer))
    if rule is None:
        where = f" (layer {path!r})" if path else ""
        raise BnnConfigError(
            f"vmap_flipout has no rule for the Bayesian layer type {type(layer).__name__}{where}: use the "
            f"sequential or vmap implementation, or register one with bnn_impls.vmap_flipout.register_flipout_rule "
            f"(rules exist for {', '.join(t.__name__ for t in FLIPOUT_RULES)})"
        )
    return rule


def _channel_view(signs: torch.Tensor, like: torch.Tensor, channel_dim: int) -> torch.Tensor:
    """(batch, channels) signs shaped to broadcast over `like`'s other axes (positions, tokens)."""
    shape = [1] * like.dim()
    shape[0] = signs.shape[0]
    shape[channel_dim] = signs.shape[1]
    return signs.reshape(shape)


class _FlipoutLayer(nn.Module):
    """Stands in for one Bayesian layer. Its mean, perturbation and signs are buffers, supplied per
    call through functional_call (the perturbation and signs per sample, under vmap)."""

    def __init__(self, layer: nn.Module, rule: tuple[LayerForward, int]):
        super().__init__()
        object.__setattr__(self, "layer", layer)  # hyper-parameters only; not a submodule
        self.forward_with, self.channel_dim = rule
        for name in ("mu_weight", "mu_bias", "delta_weight", "delta_bias", "sign_in", "sign_out"):
            self.register_buffer(name, None)

    def forward(self, x):
        mean = self.forward_with(self.layer, x, self.mu_weight, self.mu_bias)
        flipped_in = x * _channel_view(self.sign_in, x, self.channel_dim)
        perturbation = self.forward_with(self.layer, flipped_in, self.delta_weight, self.delta_bias)
        return mean + perturbation * _channel_view(self.sign_out, perturbation, self.channel_dim)


def check_flipout_support(model: BayesianModel) -> None:
    """BnnConfigError naming the first Bayesian layer type without a Flipout rule."""
    for layer in model.bayesian_layers:
        flipout_rule(layer.module, layer.path)


def _build_skeleton(model: BayesianModel) -> SwappedSkeleton:
    check_flipout_support(model)
    return SwappedSkeleton(model, lambda layer: _FlipoutLayer(layer.module, flipout_rule(layer.module, layer.path)))


def flipout_skeleton(model: BayesianModel) -> SwappedSkeleton:
    """The skeleton with every Bayesian layer swapped for its Flipout stand-in (cached per model)."""
    return cached_skeleton(model, "flipout", _build_skeleton)


def sign_shapes(model: BayesianModel, x_shape: Sequence[int]) -> list[tuple[int, int, int]]:
    """Per Bayesian layer: (batch, input channels, output channels) for a model input of shape x_shape."""
    io = flipout_skeleton(model).io_shapes(model, x_shape)
    dims = [flipout_rule(layer.module)[1] for layer in model.bayesian_layers]
    return [(i[0], i[d], o[d]) for (i, o), d in zip(io, dims)]


def draw_signs(samples: int, shapes, generator, device, dtype) -> list[torch.Tensor]:
    """Rademacher signs: (S, batch, in) and (S, batch, out) per layer, entries -1 or +1."""
    signs = []
    for batch, n_in, n_out in shapes:
        for n in (n_in, n_out):
            bits = torch.randint(0, 2, (samples, batch, n), generator=generator, device=device)
            signs.append(bits.to(dtype).mul_(2).sub_(1))
    return signs


class VmapFlipout(ElboImplementation):
    name = "vmap_flipout"
    default_kl = "sample"
    draws_weights = True
    estimator_note = "Linear, Conv1d/2d/3d: exact (weight sampling in distribution, examples decorrelated)"

    def draw_flipout_noise(self, model: BayesianModel, samples: int, x, generator) -> list[torch.Tensor]:
        """Everything a step draws: weight noise per parameter, then (r_in, r_out) per Bayesian layer.
        `x`: the input or its shape."""
        x_shape = tuple(x.shape) if isinstance(x, torch.Tensor) else tuple(x)
        mu0 = model.mu[0]
        shapes = sign_shapes(model, x_shape)
        return model.draw_weight_noise(samples, generator) + draw_signs(samples, shapes, generator, mu0.device,
                                                                        mu0.dtype)

    def draw_step_noise(self, model, samples, x, generator):
        return self.draw_flipout_noise(model, samples, x, generator)

    def _outputs(self, model: BayesianModel, x, samples, generator, noise):
        skeleton = flipout_skeleton(model)
        draws = list(noise) if noise is not None else self.draw_step_noise(model, samples, x, generator)
        n_params = len(model.mu)
        eps, signs = draws[:n_params], draws[n_params:]
        if len(signs) != 2 * len(skeleton.paths):
            raise BnnConfigError(f"vmap_flipout noise needs {n_params} weight noises then 2 sign tensors per "
                                 f"Bayesian layer ({2 * len(skeleton.paths)}), got {len(signs)} after the weights")
        sigmas = model.sigmas()
        deltas = [s * e for s, e in zip(sigmas, eps)]  # (S, *param): the per-sample perturbation
        fixed = dict(model.point_parameters())  # shared by every sample
        per_sample_names, per_sample = [], []  # mapped over the sample axis
        for i, layer in enumerate(model.bayesian_layers):
            fixed[f"{layer.path}.mu_weight"] = model.mu[layer.weight]
            per_sample_names += [f"{layer.path}.delta_weight", f"{layer.path}.sign_in", f"{layer.path}.sign_out"]
            per_sample += [deltas[layer.weight], signs[2 * i], signs[2 * i + 1]]
            if layer.bias is not None:
                fixed[f"{layer.path}.mu_bias"] = model.mu[layer.bias]
                per_sample_names.append(f"{layer.path}.delta_bias")
                per_sample.append(deltas[layer.bias])
        buffers = model.sample_buffers(samples)
        if buffers is None:
            fixed.update(model.buffer_dict())

        # x is shared by every sample (in_dims None): the first layer's mean path involves no batched
        # tensor, so vmap computes it once per batch, not once per sample.
        def one_sample(tensors_s, x_s, buffers_s):
            tensors = dict(fixed)
            tensors.update(zip(per_sample_names, tensors_s))
            if buffers_s is not None:
                tensors.update(buffers_s)
            return functional_call(skeleton.module, tensors, (x_s,))

        out = vmap(one_sample, in_dims=(0, None, None if buffers is None else 0))(per_sample, x, buffers)
        model.commit_buffers(buffers)
        return eps, deltas, out

    def nll_and_kl(self, model: BayesianModel, x, y, samples, spec: ElboSpec, generator, noise):
        eps, deltas, out = self._outputs(model, x, samples, generator, noise)
        nll = spec.likelihood.nll(out, y).mean()
        if spec.kl == "sample":
            # mu + dW_s is sample s's weight draw, before any example's sign flips: a posterior draw.
            weights = [m + d for m, d in zip(model.mu, deltas)]
            return nll, sample_kl(model, eps, weights, spec.prior)
        return nll, standalone_kl(spec.kl, model, spec.prior, spec.n_mc, generator)

    def predict(self, model, x, *, samples, generator=None, noise=None) -> torch.Tensor:
        check_samples(samples)
        return self._outputs(model, x, samples, generator, noise)[2]
