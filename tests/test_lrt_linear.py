"""The fused LRT Linear node (bnn_impls/lrt_linear.py) computes what the composite of torch operations
computes: the same loss and the same gradient of every parameter, on the paths vmap_lrt takes (the
hoisted first layer, batched layers, no bias variance, the bf16 variance path) and outside vmap."""

import contextlib

import pytest
import torch
from torch import nn

import bnn_impls as B
import bnn_impls.vmap_lrt as V
from bnn_impls.lrt_linear import lrt_linear

LRT = B.get_implementation("vmap_lrt")


def _spec(likelihood=None):
    return B.ElboSpec(likelihood=likelihood or B.CategoricalLikelihood(), kl="closed", prior=B.GaussianPrior(1.0),
                      n_train=1000)


def _loss_and_grads(model, impl, x, y, noise, form, spec):
    model.zero_grad(set_to_none=True)
    with form():
        terms = impl.loss(model, x, y, samples=noise[0].shape[0], spec=spec, noise=noise)
    terms.loss.backward()
    return terms.loss.detach(), [p.grad.clone() for p in model.parameters()]


def _fused_uses_the_node(model, impl, x, y, noise, spec):
    """The fused run really goes through the custom node (else the comparison compares a form with itself)."""
    seen = set()
    loss = impl.loss(model, x, y, samples=noise[0].shape[0], spec=spec, noise=noise).loss
    stack = [loss.grad_fn]
    while stack:
        fn = stack.pop()
        if fn is not None and fn not in seen:
            seen.add(fn)
            stack.extend(f for f, _ in fn.next_functions)
    return "_LrtLinearBackward" in {type(fn).__name__ for fn in seen}


@pytest.mark.parametrize("hoist", [True, False])
@pytest.mark.parametrize("samples", [1, 4])
def test_fused_and_composite_agree_on_loss_and_every_gradient(hoist, samples):
    model = B.BayesianMLP((6, 9, 7, 3), dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = torch.randn(5, 6, dtype=torch.float64)
    y = torch.randint(0, 3, (5,))
    impl = type(LRT)(hoist_first_layer=hoist)
    noise = impl.draw_activation_noise(model, samples, 5, torch.Generator().manual_seed(1))
    assert _fused_uses_the_node(model, impl, x, y, noise, _spec())
    fused = _loss_and_grads(model, impl, x, y, noise, contextlib.nullcontext, _spec())
    composite = _loss_and_grads(model, impl, x, y, noise, V.composite_linear, _spec())
    torch.testing.assert_close(fused[0], composite[0], rtol=1e-13, atol=0)
    for g_fused, g_composite in zip(fused[1], composite[1]):
        torch.testing.assert_close(g_fused, g_composite, rtol=1e-12, atol=1e-15)


def test_a_wrong_backward_would_fail_the_comparison(monkeypatch):
    """The comparison has power: a fused backward off by the factor 1/2 on the variance weights fails it."""
    from bnn_impls import lrt_linear as module

    model = B.BayesianMLP((4, 5, 2), dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x, y = torch.randn(3, 4, dtype=torch.float64), torch.randint(0, 2, (3,))
    noise = LRT.draw_activation_noise(model, 2, 3, torch.Generator().manual_seed(1))
    composite = _loss_and_grads(model, LRT, x, y, noise, V.composite_linear, _spec())
    original = module._LrtLinear.backward

    def halved(ctx, *grads):
        out = list(original(ctx, *grads))
        if out[3] is not None:
            out[3] = out[3] * 2
        return tuple(out)

    monkeypatch.setattr(module._LrtLinear, "backward", staticmethod(halved))
    fused = _loss_and_grads(model, LRT, x, y, noise, contextlib.nullcontext, _spec())
    with pytest.raises(AssertionError):
        for g_fused, g_composite in zip(fused[1], composite[1]):
            torch.testing.assert_close(g_fused, g_composite, rtol=1e-12, atol=1e-15)


def test_a_linear_layer_without_bias_gets_the_variance_floor_in_both_forms():
    module = nn.Sequential(nn.Linear(4, 6, bias=False), nn.ReLU(), nn.Linear(6, 1, bias=False))
    model = B.bayesify(module, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = torch.randn(5, 4, dtype=torch.float64)
    x[0] = 0.0  # an all-zero input: variance 0 before the floor, a NaN gradient without it
    y = torch.randn(5, 1, dtype=torch.float64)
    spec = _spec(B.GaussianLikelihood(0.5))
    noise = LRT.draw_activation_noise(model, 3, x, torch.Generator().manual_seed(1))
    fused = _loss_and_grads(model, LRT, x, y, noise, contextlib.nullcontext, spec)
    composite = _loss_and_grads(model, LRT, x, y, noise, V.composite_linear, spec)
    torch.testing.assert_close(fused[0], composite[0], rtol=1e-13, atol=0)
    for g_fused, g_composite in zip(fused[1], composite[1]):
        assert torch.isfinite(g_fused).all()
        torch.testing.assert_close(g_fused, g_composite, rtol=1e-12, atol=1e-15)


def test_the_bf16_variance_path_agrees_to_bfloat16_precision():
    model = B.BayesianMLP((20, 30, 30, 4), generator=torch.Generator().manual_seed(0))
    x, y = torch.randn(16, 20), torch.randint(0, 4, (16,))
    noise = LRT.draw_activation_noise(model, 5, 16, torch.Generator().manual_seed(1))
    with V.variance_dtype(torch.bfloat16):
        fused = _loss_and_grads(model, LRT, x, y, noise, contextlib.nullcontext, _spec())
        composite = _loss_and_grads(model, LRT, x, y, noise, V.composite_linear, _spec())
    exact = _loss_and_grads(model, LRT, x, y, noise, V.composite_linear, _spec())
    torch.testing.assert_close(fused[0], composite[0], rtol=1e-4, atol=0)
    for g_fused, g_composite, g_exact in zip(fused[1], composite[1], exact[1]):
        # Both round the variance path to bfloat16 (8 bits), at different points: each is as close to
        # the float32 gradient as the other, within a few bfloat16 roundings.
        scale = g_exact.norm()
        assert (g_fused - g_exact).norm() < 0.05 * scale
        assert (g_fused - g_composite).norm() < 0.05 * scale


def test_lrt_linear_outside_vmap_matches_finite_differences():
    torch.manual_seed(0)
    x = torch.randn(2, 3, 4, dtype=torch.float64, requires_grad=True)
    mu_w = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    mu_b = torch.randn(5, dtype=torch.float64, requires_grad=True)
    var_w = torch.rand(5, 4, dtype=torch.float64).add(0.1).requires_grad_()
    var_b = torch.rand(5, dtype=torch.float64).add(0.1).requires_grad_()
    noise = torch.randn(2, 3, 5, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda *a: lrt_linear(*a, noise), (x, mu_w, mu_b, var_w, var_b))
    expected = x @ mu_w.T + mu_b + ((x * x) @ var_w.T + var_b).sqrt() * noise
    torch.testing.assert_close(lrt_linear(x, mu_w, mu_b, var_w, var_b, noise), expected)


def test_per_sample_weights_under_vmap_take_the_composite_rule():
    """vmap over the moments too (not how vmap_lrt calls it) gives each sample its own layer."""
    torch.manual_seed(0)
    x = torch.randn(3, 4, dtype=torch.float64)
    mu_w, var_w = torch.randn(2, 5, 4, dtype=torch.float64), torch.rand(2, 5, 4, dtype=torch.float64)
    mu_b, var_b = torch.randn(2, 5, dtype=torch.float64), torch.rand(2, 5, dtype=torch.float64)
    noise = torch.randn(2, 3, 5, dtype=torch.float64)
    batched = torch.vmap(lrt_linear, in_dims=(None, 0, 0, 0, 0, 0))(x, mu_w, mu_b, var_w, var_b, noise)
    for s in range(2):
        torch.testing.assert_close(batched[s], lrt_linear(x, mu_w[s], mu_b[s], var_w[s], var_b[s], noise[s]))


def test_a_second_derivative_is_refused_rather_than_wrong():
    x = torch.randn(3, 4, dtype=torch.float64, requires_grad=True)
    w = torch.randn(5, 4, dtype=torch.float64, requires_grad=True)
    out = lrt_linear(x, w, None, torch.rand(5, 4, dtype=torch.float64), None, torch.randn(3, 5, dtype=torch.float64))
    (g,) = torch.autograd.grad(out.sum(), x, create_graph=True)
    with pytest.raises(RuntimeError):
        g.sum().backward()


def test_prediction_is_the_same_in_both_forms():
    model = B.BayesianMLP((4, 5, 3), dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = torch.randn(7, 4, dtype=torch.float64)
    noise = LRT.draw_activation_noise(model, 3, 7, torch.Generator().manual_seed(1))
    with V.composite_linear():
        composite = LRT.predict(model, x, samples=3, noise=noise)
    torch.testing.assert_close(LRT.predict(model, x, samples=3, noise=noise), composite)
