"""The conv moment rule gives the output distribution of sampling conv weights (one layer: exact),
for stride, padding, dilation and groups; layer types without a rule are refused in one line."""

import pytest
import torch
from scipy import stats
from torch import nn

import bnn_impls as B
from bnn_impls.vmap_lrt import check_lrt_support, conv_moments

DRAWS = 20_000
WIDE = B.PosteriorInit(rho_low=-1.5, rho_high=-0.5)  # a visible spread


def _one_conv_model(conv: nn.Module, seed=0):
    return B.bayesify(conv, init=WIDE, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))


CONVS = [
    (lambda: nn.Conv2d(2, 4, 3, stride=2, padding=1, groups=2), (1, 2, 5, 5)),
    (lambda: nn.Conv2d(3, 2, 2, dilation=2, padding=1, padding_mode="reflect"), (1, 3, 4, 4)),
    (lambda: nn.Conv1d(2, 3, 3, stride=2, bias=False), (1, 2, 7)),
    (lambda: nn.Conv3d(1, 2, 2), (1, 1, 3, 3, 3)),
]


@pytest.fixture(scope="module", params=range(len(CONVS)), ids=["conv2d-groups-stride", "conv2d-dilation-reflect",
                                                               "conv1d-nobias", "conv3d"])
def draws(request):
    factory, shape = CONVS[request.param]
    model = _one_conv_model(factory())
    x = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        lrt = B.get_implementation("vmap_lrt").predict(model, x, samples=DRAWS,
                                                       generator=torch.Generator().manual_seed(1))
        sampled = B.get_implementation("vmap").predict(model, x, samples=DRAWS,
                                                       generator=torch.Generator().manual_seed(2))
    return model, x, lrt[:, 0].flatten(1), sampled[:, 0].flatten(1)


def test_conv_moments_are_the_closed_form(draws):
    model, x, _, sampled = draws
    layer = model.bayesian_layers[0]
    sig = model.sigmas()
    bias = (model.mu[layer.bias], sig[layer.bias] ** 2) if layer.bias is not None else (None, None)
    mean, var = conv_moments(layer.module, x, model.mu[layer.weight], bias[0], sig[layer.weight] ** 2, bias[1])
    mean, var = mean[0].flatten().detach(), var[0].flatten().detach()
    se = (var / DRAWS).sqrt()
    assert torch.all((sampled.mean(0) - mean).abs() < 4.5 * se)
    torch.testing.assert_close(sampled.var(0), var, rtol=0.06, atol=0)


def test_lrt_and_weight_sampling_agree_in_mean_variance_and_ks(draws):
    _, _, lrt, sampled = draws
    se = (lrt.var(0) / DRAWS + sampled.var(0) / DRAWS).sqrt()
    assert torch.all((lrt.mean(0) - sampled.mean(0)).abs() < 4.5 * se)
    torch.testing.assert_close(lrt.var(0), sampled.var(0), rtol=0.08, atol=0)
    units = range(0, lrt.shape[1], max(1, lrt.shape[1] // 6))
    pvalues = [stats.ks_2samp(lrt[:, u].numpy(), sampled[:, u].numpy()).pvalue for u in units]
    assert min(pvalues) > 0.01 / len(pvalues), pvalues  # Bonferroni over the units tested
    # Power: the same test rejects an LRT whose noise is 20% too wide.
    mean = lrt.mean(0)
    too_wide = mean + 1.2 * (lrt - mean)
    assert stats.ks_2samp(too_wide[:, 0].numpy(), sampled[:, 0].numpy()).pvalue < 0.01


def test_hoisting_the_first_layer_changes_nothing_on_a_conv_net():
    model = B.bayesify(B.architectures.lenet5(), dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = torch.rand(3, 1, 28, 28, dtype=torch.float64)
    lrt = B.get_implementation("vmap_lrt")
    noise = lrt.draw_activation_noise(model, 2, x, torch.Generator().manual_seed(1))
    assert [tuple(n.shape) for n in noise] == [(2, 3, 6, 28, 28), (2, 3, 16, 10, 10), (2, 3, 120), (2, 3, 84),
                                               (2, 3, 10)]
    torch.testing.assert_close(lrt.predict(model, x, samples=2, noise=noise),
                               type(lrt)(hoist_first_layer=False).predict(model, x, samples=2, noise=noise))


def test_a_bayesian_layer_without_a_moment_rule_is_one_line_naming_its_type():
    from tests.plugins.models import decoder

    model = B.bayesify(decoder())
    with pytest.raises(B.BnnConfigError) as info:
        check_lrt_support(model)
    message = str(info.value)
    assert "ConvTranspose2d" in message and "'2'" in message and "\n" not in message
    spec = B.ElboSpec(B.CategoricalLikelihood(), "closed", B.make_prior("gaussian"), n_train=10)
    with pytest.raises(B.BnnConfigError, match="ConvTranspose2d"):
        B.get_implementation("vmap_lrt").loss(model, torch.rand(2, 1, 28, 28), torch.tensor([1, 2]),
                                              samples=2, spec=spec)
    # The weight-sampling implementations run it.
    spec = B.ElboSpec(B.CategoricalLikelihood(), "sample", B.make_prior("gaussian"), n_train=10)
    assert torch.isfinite(B.get_implementation("vmap").loss(model, torch.rand(2, 1, 28, 28), torch.tensor([1, 2]),
                                                            samples=2, spec=spec).loss)
