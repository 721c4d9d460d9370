"""The local reparameterization trick gives the same output distribution as sampling weights.

For a single input example the match is exact at every depth: each layer's pre-activations given
its input are Gaussian with the moments LRT uses, and units do not share weights.
"""

import pytest
import torch
from scipy import stats

import bnn_impls as B

DRAWS = 20_000


@pytest.fixture(scope="module")
def outputs():
    model = B.BayesianMLP((3, 6, 2), dtype=torch.float64, generator=torch.Generator().manual_seed(0),
                          init=B.PosteriorInit(rho_low=-1.5, rho_high=-0.5))  # wide posterior: a visible spread
    x = torch.tensor([[0.7, -1.2, 0.4]], dtype=torch.float64)
    with torch.no_grad():
        lrt = B.get_implementation("vmap_lrt").predict(model, x, samples=DRAWS,
                                                       generator=torch.Generator().manual_seed(1))
        weights = B.get_implementation("vmap").predict(model, x, samples=DRAWS,
                                                       generator=torch.Generator().manual_seed(2))
    return model, x, lrt[:, 0, :], weights[:, 0, :]


def test_first_layer_moments_match_the_closed_form(outputs):
    model, x, _, _ = outputs
    sig = model.sigmas()
    mean = x @ model.mu[0].T + model.mu[1]
    var = (x**2) @ (sig[0] ** 2).T + sig[1] ** 2
    w = model.mu[0] + sig[0] * torch.randn((DRAWS, *model.mu[0].shape), dtype=torch.float64,
                                           generator=torch.Generator().manual_seed(5))
    b = model.mu[1] + sig[1] * torch.randn((DRAWS, *model.mu[1].shape), dtype=torch.float64,
                                           generator=torch.Generator().manual_seed(6))
    pre = torch.einsum("i,sji->sj", x[0], w) + b
    se_mean = (var / DRAWS).sqrt()
    assert torch.all((pre.mean(0) - mean[0]).abs() < 4 * se_mean[0])
    torch.testing.assert_close(pre.var(0), var[0], rtol=0.05, atol=0)


def test_output_means_and_variances_match(outputs):
    _, _, lrt, weights = outputs
    # Difference of two independent means: standard error from both samples' variances.
    se = (lrt.var(0) / DRAWS + weights.var(0) / DRAWS).sqrt()
    assert torch.all((lrt.mean(0) - weights.mean(0)).abs() < 4 * se)
    # Sample variances from 2e4 draws agree within a few percent.
    torch.testing.assert_close(lrt.var(0), weights.var(0), rtol=0.06, atol=0)


def test_output_distributions_pass_a_two_sample_ks_test(outputs):
    _, _, lrt, weights = outputs
    for unit in range(lrt.shape[1]):
        assert stats.ks_2samp(lrt[:, unit].numpy(), weights[:, unit].numpy()).pvalue > 0.01


def test_a_wrong_variance_would_fail_the_ks_test(outputs):
    _, _, lrt, weights = outputs
    # The same test rejects an LRT whose noise is 20% too wide: the check has power.
    mean = lrt.mean(0)
    too_wide = mean + 1.2 * (lrt - mean)
    assert stats.ks_2samp(too_wide[:, 0].numpy(), weights[:, 0].numpy()).pvalue < 0.01


def test_hoisting_the_first_layer_changes_nothing():
    model = B.BayesianMLP((4, 5, 3), dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    x = torch.randn(7, 4, dtype=torch.float64)
    lrt = B.get_implementation("vmap_lrt")
    noise = lrt.draw_activation_noise(model, 3, 7, torch.Generator().manual_seed(1))
    hoisted = lrt.predict(model, x, samples=3, noise=noise)
    naive = type(lrt)(hoist_first_layer=False).predict(model, x, samples=3, noise=noise)
    torch.testing.assert_close(hoisted, naive)
