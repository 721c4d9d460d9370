"""The local reparameterization of one Linear layer as a single autograd node with a hand-written backward.

    out = x mu_w^T + mu_b + sqrt(x^2 var_w^T + var_b + floor) * noise

Written as separate torch operations (`vmap_lrt`'s composite form), autograd records seven nodes
per layer, and its backward makes about seven elementwise passes over the (samples x batch x units)
activations besides the four matmuls: sqrt's and the products' derivatives, x^2's derivative as
two products and a sum, and the sum of the two paths' input gradients. Here the forward keeps
r = noise / sqrt(var) and x^2, and the backward makes two passes:

    g_var = g * r / 2,  grad x = g mu_w + 2 x (g_var var_w) = g mu_w + x * ((g * r) var_w),

with the 1/2 applied to the (units x inputs) weight gradient instead of the activations (a power of
two: exact in any binary float). The matmuls are the same calls with the same shapes, so the FLOPs
and the ceiling do not change; only the elementwise work and autograd's bookkeeping shrink.

Under `torch.vmap` (how `vmap_lrt` runs its samples) the sample dimension is folded into the rows,
so the matmuls are the same single large calls the composite form gets from vmap's batching rules.
An input shared by all samples (vmap's in_dims None, the hoisted first layer) keeps its moments
unbatched: they are computed once, and the backward sums over samples before its matmuls.
"""

from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable


def _rows(t: torch.Tensor) -> torch.Tensor:
    return t.reshape(-1, t.shape[-1])


class _LrtLinear(torch.autograd.Function):
    """x: (..., in); noise: the output's shape (..., out), possibly with leading sample dimensions that
    x lacks (rows shared by the samples). Returns (out, x^2 as the variance path's operand,
    noise / sqrt(var)); the last two only for the backward."""

    @staticmethod
    def forward(x, mu_w, mu_b, var_w, var_b, noise, floor: float, var_dtype: Optional[torch.dtype]):
        x2 = x * x
        lp_w, lp_b = var_w, var_b
        if var_dtype is not None:
            x2, lp_w = x2.to(var_dtype), var_w.to(var_dtype)
            lp_b = None if var_b is None else var_b.to(var_dtype)
        var = F.linear(x2, lp_w, lp_b)
        if var_dtype is not None:
            var = var.to(x.dtype)
        if floor:
            var.add_(floor)
        std = var.sqrt_()
        out = torch.addcmul(F.linear(x, mu_w, mu_b), std, noise)
        return out, x2, noise / std

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, mu_w, _, var_w, _, _, _, var_dtype = inputs
        _, x2, noise_over_std = output
        ctx.mark_non_differentiable(x2, noise_over_std)
        ctx.set_materialize_grads(False)  # the two extra outputs get no gradient: do not fill zeros for them
        ctx.save_for_backward(x, x2, noise_over_std, mu_w, var_w)
        ctx.var_dtype = var_dtype

    @staticmethod
    @once_differentiable  # the saved x^2 and noise / std carry no graph: a second derivative would be wrong
    def backward(ctx, grad_out, _grad_x2, _grad_r):
        if grad_out is None:  # grads are not materialized (setup_context): nothing flowed into the output
            return (None,) * 8
        x, x2, noise_over_std, mu_w, var_w = ctx.saved_tensors
        need = ctx.needs_input_grad
        g_mean, g_var2 = grad_out, grad_out * noise_over_std  # g_var2: twice the variance's gradient
        shared = tuple(range(grad_out.dim() - x.dim()))
        if shared:  # rows shared by the samples: their gradients add up before the matmuls
            g_mean, g_var2 = g_mean.sum(shared), g_var2.sum(shared)
        g_mean, g_var2 = _rows(g_mean), _rows(g_var2)
        lp_var2, lp_w = g_var2, var_w
        if ctx.var_dtype is not None:
            lp_var2, lp_w = g_var2.to(ctx.var_dtype), var_w.to(ctx.var_dtype)
        grad_x = grad_mu_w = grad_mu_b = grad_var_w = grad_var_b = None
        if need[0]:
            x_rows = _rows(x)
            grad_x = g_mean.mm(mu_w).addcmul_(lp_var2.mm(lp_w).to(x.dtype), x_rows).reshape(x.shape)
        if need[1]:
            grad_mu_w = g_mean.t().mm(_rows(x))
        if need[2]:
            grad_mu_b = g_mean.sum(0)
        if need[3]:
            grad_var_w = lp_var2.t().mm(_rows(x2)).to(var_w.dtype).mul_(0.5)
        if need[4]:
            grad_var_b = g_var2.sum(0).mul_(0.5)
        return grad_x, grad_mu_w, grad_mu_b, grad_var_w, grad_var_b, None, None, None

    @staticmethod
    def vmap(info, in_dims, x, mu_w, mu_b, var_w, var_b, noise, floor, var_dtype):
        x_dim, noise_dim = in_dims[0], in_dims[5]
        if any(d is not None for d in in_dims[1:5]):
            # Per-sample moments (not how vmap_lrt calls it): the composite form under vmap.
            return torch.vmap(_composite_with_extras, in_dims=in_dims[:6] + (None, None))(
                x, mu_w, mu_b, var_w, var_b, noise, floor, var_dtype), (0, 0, 0)
        noise = noise.movedim(noise_dim, 0) if noise_dim is not None else noise.expand(info.batch_size, *noise.shape)
        x = x if x_dim is None else x.movedim(x_dim, 0)
        out, x2, r = _LrtLinear.apply(x, mu_w, mu_b, var_w, var_b, noise, floor, var_dtype)
        return (out, x2, r), (0, None if x_dim is None else 0, 0)


def _composite_with_extras(x, mu_w, mu_b, var_w, var_b, noise, floor, var_dtype):
    x2 = x * x
    lp = (x2, var_w, var_b) if var_dtype is None else (
        x2.to(var_dtype), var_w.to(var_dtype), None if var_b is None else var_b.to(var_dtype))
    std = (F.linear(*lp).to(x.dtype) + floor).sqrt()
    return F.linear(x, mu_w, mu_b) + std * noise, lp[0], noise / std


def variance_floor(var_b: Optional[torch.Tensor], dtype: torch.dtype) -> float:
    """Without a bias variance, an output whose inputs are all zero (after a ReLU) has variance
    exactly 0, where sqrt's derivative is infinite: a floor of eps^2 (std ~1e-7 in float32) is far
    below any weight's own noise."""
    return 0.0 if var_b is not None else torch.finfo(dtype).eps ** 2


def lrt_linear(x: torch.Tensor, mu_w: torch.Tensor, mu_b: Optional[torch.Tensor], var_w: torch.Tensor,
               var_b: Optional[torch.Tensor], noise: torch.Tensor,
               var_dtype: Optional[torch.dtype] = None) -> torch.Tensor:
    """A Linear layer's LRT output, mean + sqrt(var) * noise, in one autograd node. x: (..., in);
    noise: the output's shape (..., out). `var_dtype`: the variance path's dtype (None: x's)."""
    if var_dtype == x.dtype:
        var_dtype = None
    out, _, _ = _LrtLinear.apply(x, mu_w, mu_b, var_w, var_b, noise, variance_floor(var_b, x.dtype), var_dtype)
    return out
