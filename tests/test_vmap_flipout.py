"""vmap_flipout is weight sampling in distribution, for dense and conv layers alike: each example's
output is exactly the layer applied with its own sign-flipped weights; positions within an example
share one kernel (their correlation is weight sampling's, which the conv LRT loses); examples in a
batch are decorrelated; and on LeNet-5 its expected loss and gradient equal weight sampling's, where
the LRT's measurably do not (so the check can fail)."""

import dataclasses

import pytest
import torch
from torch import nn

import bnn_impls as B
from bench.measure.estimator_bias import compare, group_estimates
from bnn_impls.architectures import lenet5

FLIPOUT = B.get_implementation("vmap_flipout")
WIDE = B.PosteriorInit(rho_low=-1.5, rho_high=-0.5)


def _model(module, init=WIDE, seed=0, dtype=torch.float64):
    return B.bayesify(module, init=init, dtype=dtype, generator=torch.Generator().manual_seed(seed))


LAYERS = [
    (lambda: nn.Linear(5, 3), (4, 5)),
    (lambda: nn.Conv2d(2, 4, 3, stride=2, padding=1), (3, 2, 5, 5)),
    (lambda: nn.Conv2d(3, 2, 2, dilation=2, padding=1, padding_mode="reflect"), (3, 3, 4, 4)),
    (lambda: nn.Conv1d(2, 3, 3, stride=2, bias=False), (3, 2, 7)),
    (lambda: nn.Conv3d(1, 2, 2), (2, 1, 3, 3, 3)),
]


@pytest.mark.parametrize("index", range(len(LAYERS)), ids=["linear", "conv2d-stride", "conv2d-reflect", "conv1d",
                                                            "conv3d"])
def test_each_example_is_the_layer_with_its_own_sign_flipped_weights(index):
    factory, shape = LAYERS[index]
    model = _model(factory())
    x = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
    samples = 2
    noise = FLIPOUT.draw_flipout_noise(model, samples, x, torch.Generator().manual_seed(2))
    out = FLIPOUT.predict(model, x, samples=samples, noise=noise)
    layer = model.bayesian_layers[0]
    sig = model.sigmas()
    eps_w, r_in, r_out = noise[layer.weight], noise[len(model.mu)], noise[len(model.mu) + 1]
    assert set(r_in.unique().tolist()) <= {-1.0, 1.0} and r_in.shape == (samples, shape[0], shape[1 if index else -1])
    for s in range(samples):
        for n in range(shape[0]):
            kernel = [1] * (eps_w.dim() - 3)  # eps_w: (S, out, in, *kernel)
            flips = r_out[s, n].reshape([-1, 1] + kernel) * r_in[s, n].reshape([1, -1] + kernel)
            w = model.mu[layer.weight] + sig[layer.weight] * eps_w[s] * flips
            b = None
            if layer.bias is not None:
                b = model.mu[layer.bias] + sig[layer.bias] * noise[layer.bias][s] * r_out[s, n]
            expected = _apply(layer.module, x[n:n + 1], w, b)
            torch.testing.assert_close(out[s, n:n + 1], expected)


def _apply(module, x, w, b):
    if isinstance(module, nn.Linear):
        return nn.functional.linear(x, w, b)
    return module._conv_forward(x, w, b)


def test_grouped_conv_signs_index_input_channels():
    """With groups, the weight's second axis holds in_channels/groups: the signs of group g's channels
    multiply group g's kernels. Checked against the ungrouped layer with block-diagonal weights."""
    conv = nn.Conv2d(4, 4, 1, groups=2, bias=False)
    model = _model(conv)
    x = torch.randn(2, 4, 3, 3, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    noise = FLIPOUT.draw_flipout_noise(model, 1, x, torch.Generator().manual_seed(4))
    out = FLIPOUT.predict(model, x, samples=1, noise=noise)
    sig, mu = model.sigmas()[0], model.mu[0]
    r_in, r_out = noise[1][0], noise[2][0]
    for n in range(2):
        full = torch.zeros(4, 4, 1, 1, dtype=torch.float64)
        for o in range(4):
            g = o // 2
            for i_local in range(2):
                i = g * 2 + i_local
                full[o, i] = mu[o, i_local] + sig[o, i_local] * noise[0][0, o, i_local] * r_out[n, o] * r_in[n, i]
        torch.testing.assert_close(out[0, n], nn.functional.conv2d(x[n:n + 1], full)[0])


def test_with_every_sign_plus_one_flipout_is_vmap_to_rounding():
    """Signs all +1 leave the perturbation unflipped: the loss and gradients must be vmap's for the same
    weight noise (the mean and perturbation paths add up to the sampled weights)."""
    model = _model(lenet5(), init=B.PosteriorInit(), dtype=torch.float64)
    x = torch.rand(6, 1, 28, 28, dtype=torch.float64, generator=torch.Generator().manual_seed(5))
    y = torch.arange(6) % 10
    spec = B.ElboSpec(B.CategoricalLikelihood(), "sample", B.make_prior("gaussian"), n_train=600)
    noise = FLIPOUT.draw_flipout_noise(model, 3, x, torch.Generator().manual_seed(6))
    n = len(model.mu)
    ones = noise[:n] + [torch.ones_like(t) for t in noise[n:]]
    got = FLIPOUT.loss(model, x, y, samples=3, spec=spec, noise=ones)
    want = B.get_implementation("vmap").loss(model, x, y, samples=3, spec=spec, noise=noise[:n])
    torch.testing.assert_close(got.loss, want.loss)
    g1 = torch.autograd.grad(got.loss, list(model.mu) + list(model.rho))
    g2 = torch.autograd.grad(want.loss, list(model.mu) + list(model.rho))
    for a, b in zip(g1, g2):
        torch.testing.assert_close(a, b)


def _perturbations(impl, model, x, draws, seed):
    with torch.no_grad():
        out = B.get_implementation(impl).predict(model, x, samples=draws, generator=torch.Generator().manual_seed(seed))
    return out - out.mean(0)


def _corr(a, b):
    return float((a * b).mean() / (a.std() * b.std()))


def test_examples_in_a_batch_are_decorrelated():
    """Two examples with the same input: under vmap one weight draw serves both (correlation 1); under
    Flipout their perturbations are independent-looking (correlation ~0)."""
    model = _model(nn.Linear(8, 4), dtype=torch.float32)
    x = torch.randn(1, 8, generator=torch.Generator().manual_seed(7)).expand(2, 8).contiguous()
    flip = _perturbations("vmap_flipout", model, x, 8000, 1)
    shared = _perturbations("vmap", model, x, 8000, 1)
    assert _corr(shared[:, 0, 0], shared[:, 1, 0]) > 0.99
    assert abs(_corr(flip[:, 0, 0], flip[:, 1, 0])) < 0.05


def test_positions_within_an_example_share_one_kernel():
    """Neighbouring outputs of a conv on one image: weight sampling correlates them (one kernel for every
    position); Flipout keeps that correlation, the LRT's per-position noise drops it, and so the
    variance of the spatial average is weight sampling's under Flipout and far below it under the LRT."""
    model = _model(nn.Conv2d(3, 4, 3), dtype=torch.float32)
    x = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(8)) + 0.5
    draws = 6000
    ws, flip, lrt = (_perturbations(i, model, x, draws, 2) for i in ("vmap", "vmap_flipout", "vmap_lrt"))
    r_ws = _corr(ws[:, 0, 0, 2, 2], ws[:, 0, 0, 2, 3])
    r_flip = _corr(flip[:, 0, 0, 2, 2], flip[:, 0, 0, 2, 3])
    r_lrt = _corr(lrt[:, 0, 0, 2, 2], lrt[:, 0, 0, 2, 3])
    assert r_ws > 0.3
    assert abs(r_flip - r_ws) < 0.06
    assert abs(r_lrt) < 0.06
    pooled = {k: float(v[:, 0].mean((-1, -2)).var(0).mean()) for k, v in (("ws", ws), ("flip", flip), ("lrt", lrt))}
    assert 0.9 < pooled["flip"] / pooled["ws"] < 1.1
    assert pooled["lrt"] / pooled["ws"] < 0.3


def _lenet_estimates(rho, impls, groups=30, samples=10):
    init = B.PosteriorInit(rho_low=rho[0], rho_high=rho[1])
    model = _model(lenet5(), init=init, dtype=torch.float32, seed=3)
    x = torch.rand(16, 1, 28, 28, generator=torch.Generator().manual_seed(9))
    y = torch.arange(16) % 10
    spec = B.ElboSpec(B.CategoricalLikelihood(), "sample", B.make_prior("gaussian"), n_train=60000)
    out = {}
    for k, impl in enumerate(impls):
        s = dataclasses.replace(spec, kl=B.registry.default_kl(impl))
        out[impl] = group_estimates(B.get_implementation(impl), model, x, y, s, groups=groups, samples=samples,
                                    generator=torch.Generator().manual_seed(100 + k))
    return out


@pytest.fixture(scope="module")
def lenet_wide():
    # The wider posterior of the issue (rho ~ U(-3, -2)), where the LRT's conv bias is large.
    # sequential is left out: with the same noise it is vmap to rounding (tests/test_conv_equivalence.py).
    return _lenet_estimates((-3.0, -2.0), ("vmap", "vmap_flipout", "vmap_lrt"))


def test_expected_loss_and_gradient_equal_weight_sampling_on_lenet5(lenet_wide):
    rows = {r.group: r for r in compare("vmap_flipout", lenet_wide["vmap_flipout"], "vmap", lenet_wide["vmap"])}
    assert abs(rows["loss"].z) <= 4, rows["loss"]
    for group in ("conv mu", "dense mu", "conv rho", "dense rho"):
        assert rows[group].verdict == "agrees", rows[group]


def test_the_bias_check_finds_the_conv_lrt_bias_on_lenet5(lenet_wide):
    """The same check, on the estimator the issue found biased: it must say so (the test above can fail)."""
    rows = {r.group: r for r in compare("vmap_lrt", lenet_wide["vmap_lrt"], "vmap", lenet_wide["vmap"])}
    assert rows["conv mu"].verdict == "differs" and rows["conv mu"].excess > 3, rows["conv mu"]
    assert abs(rows["loss"].z) > 4, rows["loss"]


def test_a_layer_without_a_flipout_rule_is_one_line_naming_its_type():
    class MyLinear(nn.Linear):
        pass

    model = _model(nn.Sequential(MyLinear(3, 2)))
    with pytest.raises(B.BnnConfigError, match="vmap_flipout has no rule for the Bayesian layer type MyLinear"):
        FLIPOUT.predict(model, torch.zeros(1, 3, dtype=torch.float64), samples=1)
