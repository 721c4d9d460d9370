"""sequential and vmap compute the same loss and gradients when fed the same weight draws."""

import pytest
import torch

import bnn_impls as B


def _setup(sizes, likelihood, kl, prior="gaussian", dtype=torch.float64, seed=0):
    model = B.BayesianMLP(sizes, dtype=dtype, generator=torch.Generator().manual_seed(seed))
    spec = B.ElboSpec(likelihood, kl, B.make_prior(prior), n_train=500, n_mc=3)
    return model, spec


def _loss_and_grads(impl_name, model, spec, x, y, samples, noise, gen_seed=7):
    model.zero_grad(set_to_none=True)
    g = torch.Generator().manual_seed(gen_seed)  # used only by standalone KL estimators
    terms = B.get_implementation(impl_name).loss(model, x, y, samples=samples, spec=spec, generator=g, noise=noise)
    terms.loss.backward()
    return terms, [p.grad.clone() for p in model.parameters()]


CASES = [
    ((3, 16, 16, 1), B.GaussianLikelihood(0.1), "sample", "gaussian"),
    ((3, 16, 16, 1), B.GaussianLikelihood(0.1), "sample", "mixture"),
    ((6, 12, 4), B.CategoricalLikelihood(), "sample", "gaussian"),
    ((6, 12, 4), B.CategoricalLikelihood(), "closed", "gaussian"),
    ((6, 12, 4), B.CategoricalLikelihood(), "repar", "gaussian"),
]


@pytest.mark.parametrize("sizes,likelihood,kl,prior", CASES)
@pytest.mark.parametrize("samples", [1, 4])
def test_sequential_and_vmap_agree_on_loss_and_every_gradient(sizes, likelihood, kl, prior, samples):
    model, spec = _setup(sizes, likelihood, kl, prior)
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(9, sizes[0], dtype=torch.float64, generator=gen)
    if isinstance(likelihood, B.CategoricalLikelihood):
        y = torch.randint(0, sizes[-1], (9,), generator=gen)
    else:
        y = torch.randn(9, 1, dtype=torch.float64, generator=gen)
    noise = model.draw_weight_noise(samples, gen)

    seq, seq_grads = _loss_and_grads("sequential", model, spec, x, y, samples, noise)
    vm, vm_grads = _loss_and_grads("vmap", model, spec, x, y, samples, noise)

    for a, b in [(seq.loss, vm.loss), (seq.nll, vm.nll), (seq.kl, vm.kl)]:
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert len(seq_grads) == 4 * (len(sizes) - 1)
    for ga, gb in zip(seq_grads, vm_grads):
        torch.testing.assert_close(ga, gb, rtol=1e-5, atol=1e-5)
    # The check must be able to fail: different draws give a different loss.
    other = _loss_and_grads("vmap", model, spec, x, y, samples, model.draw_weight_noise(samples, gen))[0]
    assert not torch.allclose(other.loss, vm.loss, rtol=1e-5, atol=1e-5)


def test_predict_agrees_between_sequential_and_vmap():
    model, _ = _setup((3, 8, 2), B.CategoricalLikelihood(), "sample")
    x = torch.randn(5, 3, dtype=torch.float64)
    noise = model.draw_weight_noise(6, torch.Generator().manual_seed(3))
    a = B.get_implementation("sequential").predict(model, x, samples=6, noise=noise)
    b = B.get_implementation("vmap").predict(model, x, samples=6, noise=noise)
    assert a.shape == (6, 5, 2)
    torch.testing.assert_close(a, b)


def test_float32_agreement_is_close_too():
    model, spec = _setup((4, 32, 32, 3), B.CategoricalLikelihood(), "sample", dtype=torch.float32)
    x = torch.randn(16, 4)
    y = torch.randint(0, 3, (16,))
    noise = model.draw_weight_noise(3, torch.Generator().manual_seed(0))
    seq, sg = _loss_and_grads("sequential", model, spec, x, y, 3, noise)
    vm, vg = _loss_and_grads("vmap", model, spec, x, y, 3, noise)
    torch.testing.assert_close(seq.loss, vm.loss, rtol=1e-5, atol=1e-4)
    for a, b in zip(sg, vg):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-4)
