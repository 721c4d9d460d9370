"""bayesify: which parameters get a posterior, how it starts, and what happens to the rest."""

import pytest
import torch
from torch import nn

import bnn_impls as B
from bnn_impls.architectures import lenet5, resnet18, vgg11
from tests.plugins.models import decoder, tiny_cnn


def test_the_mlp_is_bayesify_of_an_mlp_with_the_same_initial_posterior():
    a = B.BayesianMLP((5, 7, 3), generator=torch.Generator().manual_seed(4))
    b = B.bayesify(B.mlp((5, 7, 3)), generator=torch.Generator().manual_seed(4))
    assert type(a) is type(b) is B.BayesianModel
    assert a.param_names == b.param_names == ("0.weight", "0.bias", "2.weight", "2.bias")
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    assert a.layers() == [(0, 1), (2, 3)] and a.sizes == (5, 7, 3)


@pytest.mark.parametrize("factory, weights", [(lenet5, 61706), (lambda: vgg11(width=64), 9225610),
                                              (lambda: resnet18(width=64), 11164362)])
def test_every_linear_and_conv_weight_and_bias_gets_a_posterior(factory, weights):
    module = factory()
    model = B.bayesify(module)
    expected = sum(p.numel() for m in module.modules() if isinstance(m, B.BAYESIAN_LAYER_TYPES)
                   for p in m.parameters(recurse=False))
    assert model.num_weights() == expected == weights
    # BatchNorm's affine stays a point estimate (trained by the same optimizer), its stats stay buffers.
    assert set(model.point_names) == {n for n, _ in module.named_parameters()} - set(model.param_names)
    assert all(n.endswith(("weight", "bias")) for n in model.point_names)
    assert set(model.buffer_names) == {n for n, _ in module.named_buffers()}
    n_params = sum(p.numel() for p in model.parameters())
    assert n_params == 2 * weights + sum(p.numel() for p in model.point)


def test_initial_posterior_is_the_reports_by_default_and_can_be_centred_on_the_module():
    module = tiny_cnn()
    model = B.bayesify(module, generator=torch.Generator().manual_seed(0))
    mu = torch.cat([m.flatten() for m in model.mu])
    rho = torch.cat([r.flatten() for r in model.rho])
    assert mu.min() >= -0.2 and mu.max() <= 0.2 and rho.min() >= -5 and rho.max() <= -4
    centred = B.bayesify(module, centre_on_module=True, generator=torch.Generator().manual_seed(0))
    for name, m in zip(centred.param_names, centred.mu):
        assert torch.equal(m, dict(module.named_parameters())[name])
    assert all(torch.equal(a, b) for a, b in zip(model.rho, centred.rho))  # same rho stream either way


def test_point_parameters_are_trained_by_the_same_optimizer():
    model = B.bayesify(tiny_cnn(), generator=torch.Generator().manual_seed(0))
    spec = B.ElboSpec(B.CategoricalLikelihood(), "sample", B.make_prior("gaussian"), n_train=100)
    opt = B.make_optimizer(model, 1e-2)
    before = [p.detach().clone() for p in model.point]
    step = B.make_train_step(model, B.get_implementation("vmap"), spec, opt, samples=2,
                             generator=torch.Generator().manual_seed(1))
    step(torch.rand(4, 1, 28, 28), torch.randint(0, 10, (4,)))
    assert all(not torch.equal(a, b) for a, b in zip(before, model.point))


def test_batchnorm_running_stats_are_the_mean_of_each_samples_update_in_every_implementation():
    model = B.bayesify(tiny_cnn(), dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = torch.rand(6, 1, 28, 28, dtype=torch.float64)
    noise = model.draw_weight_noise(3, torch.Generator().manual_seed(2))
    # By hand: each sample's batch mean of the BatchNorm input, one momentum update with their average.
    conv = model.skeleton[0]
    batch_means = torch.stack([conv._conv_forward(x, w, b).mean((0, 2, 3))
                               for w, b in zip(*model.weights_from_noise(noise[:2]))])
    expected = 0.9 * torch.zeros(4, dtype=torch.float64) + 0.1 * batch_means.mean(0)
    for impl in ("sequential", "vmap"):
        fresh = B.bayesify(tiny_cnn(), dtype=torch.float64, generator=torch.Generator().manual_seed(0))
        B.get_implementation(impl).predict(fresh, x, samples=3, noise=noise)
        stats = fresh.buffer_dict()
        torch.testing.assert_close(stats["1.running_mean"], expected)
        assert int(stats["1.num_batches_tracked"]) == 1
    fresh.eval()  # in eval mode nothing is written
    B.get_implementation("vmap").predict(fresh, x, samples=3, noise=noise)
    assert int(fresh.buffer_dict()["1.num_batches_tracked"]) == 1


def test_a_module_without_linear_or_conv_layers_is_rejected():
    with pytest.raises(ValueError, match="nothing to make Bayesian"):
        B.bayesify(nn.Sequential(nn.ReLU()))


def test_conv_transpose_is_bayesian_too():
    model = B.bayesify(decoder())
    assert "2.weight" in model.param_names and type(model.bayesian_layers[1].module) is nn.ConvTranspose2d
