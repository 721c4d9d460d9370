"""On conv nets with BatchNorm, sequential and vmap compute the same loss, gradients and running
statistics for the same injected weight noise; repar equals direct MC on conv weights."""

import pytest
import torch

import bnn_impls as B
from bnn_impls.architectures import lenet5, resnet18


def _loss_grads_buffers(impl, model, spec, x, y, samples, noise):
    start = {k: v.clone() for k, v in model.buffer_dict().items()}
    model.zero_grad(set_to_none=True)
    terms = B.get_implementation(impl).loss(model, x, y, samples=samples, spec=spec,
                                            generator=torch.Generator().manual_seed(7), noise=noise)
    terms.loss.backward()
    after = {k: v.clone() for k, v in model.buffer_dict().items()}
    for k, v in model.buffer_dict().items():  # the next implementation starts from the same stats
        v.copy_(start[k])
    return terms, [p.grad.clone() for p in model.parameters()], after


def _check(factory, shape, samples=2, batch=3, kl="sample"):
    model = B.bayesify(factory(), dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    g = torch.Generator().manual_seed(1)
    x = torch.rand((batch, *shape), dtype=torch.float64, generator=g)
    y = torch.randint(0, 10, (batch,), generator=g)
    spec = B.ElboSpec(B.CategoricalLikelihood(), kl, B.make_prior("gaussian"), n_train=500, n_mc=2)
    noise = model.draw_weight_noise(samples, g)
    seq, seq_g, seq_b = _loss_grads_buffers("sequential", model, spec, x, y, samples, noise)
    vm, vm_g, vm_b = _loss_grads_buffers("vmap", model, spec, x, y, samples, noise)
    for a, b in [(seq.loss, vm.loss), (seq.nll, vm.nll), (seq.kl, vm.kl)]:
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    assert len(seq_g) == len(list(model.parameters()))
    for a, b in zip(seq_g, vm_g):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)
    for name in seq_b:
        torch.testing.assert_close(seq_b[name], vm_b[name], rtol=1e-5, atol=1e-5)
    # Able to fail: other draws give another loss.
    other = _loss_grads_buffers("vmap", model, spec, x, y, samples, model.draw_weight_noise(samples, g))[0]
    assert not torch.allclose(other.loss, vm.loss, rtol=1e-5, atol=1e-5)
    return model, x


def test_sequential_equals_vmap_on_lenet5():
    _check(lenet5, (1, 28, 28))


def test_sequential_equals_vmap_on_a_narrow_resnet18_with_batchnorm():
    # The full architecture (18 layers, BatchNorm, strided 1x1 shortcuts) at 1/8 of the channels: fast.
    model, _ = _check(lambda: resnet18(width=8), (3, 32, 32), kl="closed")
    assert len(model.buffer_names) == 60 and len(model.bayesian_layers) == 21


@pytest.mark.slow
def test_sequential_equals_vmap_on_the_full_resnet18():
    _check(lambda: resnet18(width=64), (3, 32, 32), batch=2)


@pytest.mark.parametrize("n_mc", [1, 4])
def test_repar_equals_direct_mc_on_conv_weights_for_the_same_draws(n_mc):
    model = B.bayesify(lenet5(), dtype=torch.float64, generator=torch.Generator().manual_seed(0),
                       init=B.PosteriorInit(rho_low=-2.0, rho_high=-1.0))
    prior = B.GaussianPrior(sigma=0.5)

    def value_and_grads(fn):
        model.zero_grad(set_to_none=True)
        kl = fn(model, prior, n_mc, torch.Generator().manual_seed(3))
        kl.backward()
        return kl.detach(), [p.grad.clone() for p in model.parameters()]

    mc, mc_g = value_and_grads(B.mc_kl)
    rp, rp_g = value_and_grads(B.repar_kl)
    torch.testing.assert_close(mc, rp, rtol=1e-10, atol=1e-8)
    assert any(m.dim() == 4 for m in model.mu)  # conv weights are among them
    for a, b in zip(mc_g, rp_g):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
    other = B.repar_kl(model, prior, n_mc, torch.Generator().manual_seed(4)).detach()
    assert not torch.isclose(other, mc)


def test_vmap_lrt_trains_a_conv_net_with_batchnorm():
    model = B.bayesify(resnet18(width=4), generator=torch.Generator().manual_seed(0))
    spec = B.ElboSpec(B.CategoricalLikelihood(), "closed", B.make_prior("gaussian"), n_train=100)
    step = B.make_train_step(model, B.get_implementation("vmap_lrt"), spec, B.make_optimizer(model, 1e-2),
                             samples=3, generator=torch.Generator().manual_seed(1))
    x, y = torch.rand(8, 3, 32, 32), torch.randint(0, 10, (8,))
    first = step(x, y).loss
    for _ in range(15):
        last = step(x, y).loss
    assert torch.isfinite(last) and last < first
    assert int(model.buffer_dict()["bn1.num_batches_tracked"]) == 16
