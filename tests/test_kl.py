"""The KL estimators agree with each other, with the closed form, and keep their memory promises."""

import math

import numpy as np
import pytest
import torch
from scipy import stats

import bnn_impls as B
from bench.measure.memory import saved_tensor_bytes


def _model(sizes=(5, 20, 3), seed=0, dtype=torch.float64):
    # A posterior away from the prior, so the KL is not near zero and gradients are informative.
    return B.BayesianMLP(sizes, dtype=dtype, generator=torch.Generator().manual_seed(seed),
                         init=B.PosteriorInit(rho_low=-2.0, rho_high=-1.0))


PRIOR = B.GaussianPrior(sigma=0.5)


def _value_and_grads(fn, model):
    model.zero_grad(set_to_none=True)
    kl = fn()
    kl.backward()
    return kl.detach(), [p.grad.clone() for p in model.parameters()]


@pytest.mark.parametrize("n_mc", [1, 5, 50])
def test_repar_equals_direct_mc_in_value_and_gradient_for_the_same_draws(n_mc):
    model = _model()
    mc, mc_g = _value_and_grads(lambda: B.mc_kl(model, PRIOR, n_mc, torch.Generator().manual_seed(3)), model)
    rp, rp_g = _value_and_grads(lambda: B.repar_kl(model, PRIOR, n_mc, torch.Generator().manual_seed(3)), model)
    torch.testing.assert_close(mc, rp, rtol=1e-10, atol=1e-8)
    for a, b in zip(mc_g, rp_g):
        torch.testing.assert_close(a, b, rtol=1e-9, atol=1e-9)
    other = B.repar_kl(model, PRIOR, n_mc, torch.Generator().manual_seed(4)).detach()
    assert not torch.isclose(other, mc)  # other draws, other value: the comparison can fail


@pytest.mark.parametrize("n", [2, 10, 1000])
def test_exact_moments_have_the_loops_distribution(n):
    model = B.BayesianMLP((400, 5), dtype=torch.float64)  # 2,005 independent weights per call
    loop = B.kl.repar_moments(model, n, torch.Generator().manual_seed(0))
    exact = B.kl.exact_moments(model, n, torch.Generator().manual_seed(1))
    for which, name in ((0, "mean"), (1, "mean-square")):
        a = torch.cat([m[which].flatten() for m in loop]).numpy()
        b = torch.cat([m[which].flatten() for m in exact]).numpy()
        assert stats.ks_2samp(a, b).pvalue > 0.01, name
    # The spread term n*m2 - n*m1^2 is chi2(n-1) in both.
    spread = torch.cat([(n * m2 - n * m1**2).flatten() for m1, m2 in exact]).numpy()
    assert stats.kstest(spread, stats.chi2(n - 1).cdf).pvalue > 0.01


def test_exact_moments_reject_a_wrong_law():
    # Power check: dropping the chi2 term (m2 = m1^2) is detected by the same test at n = 10.
    model = B.BayesianMLP((400, 5), dtype=torch.float64)
    loop = B.kl.repar_moments(model, 10, torch.Generator().manual_seed(0))
    exact = B.kl.exact_moments(model, 10, torch.Generator().manual_seed(1))
    a = torch.cat([m2.flatten() for _, m2 in loop]).numpy()
    wrong = torch.cat([(m1**2).flatten() for m1, _ in exact]).numpy()
    assert stats.ks_2samp(a, wrong).pvalue < 0.01


@pytest.mark.parametrize("name", ["mc", "repar", "repar_exact", "sample"])
def test_monte_carlo_estimators_average_to_the_closed_form(name):
    model = _model(sizes=(4, 6, 2))
    closed = B.closed_kl(model, PRIOR).item()
    gen = torch.Generator().manual_seed(11)
    with torch.no_grad():
        if name == "sample":
            draws = []
            for _ in range(400):
                eps = model.draw_weight_noise(None, gen)
                draws.append(B.sample_kl(model, eps, model.weights_from_noise(eps), PRIOR).item())
        else:
            draws = [B.standalone_kl(name, model, PRIOR, 4, gen).item() for _ in range(400)]
    mean, se = np.mean(draws), np.std(draws, ddof=1) / math.sqrt(len(draws))
    assert abs(mean - closed) < 4 * se, (mean, closed, se)
    assert se > 0  # a Monte Carlo estimator that never varies would make this test vacuous


def test_sample_kl_equals_the_density_ratio_at_w_in_value_and_gradient():
    # The eps form of log q must be Blundell's log q(w) - log p(w) evaluated at w, gradient included.
    model = _model(sizes=(3, 4, 2))
    prior = B.ScaleMixturePrior()
    eps = model.draw_weight_noise(None, torch.Generator().manual_seed(0))

    def direct():
        w = model.weights_from_noise(eps)
        return sum((torch.distributions.Normal(m, s).log_prob(wi) - prior.log_prob(wi)).sum()
                   for m, s, wi in zip(model.mu, model.sigmas(), w))

    ref, ref_g = _value_and_grads(direct, model)
    got, got_g = _value_and_grads(lambda: B.sample_kl(model, eps, model.weights_from_noise(eps), prior), model)
    torch.testing.assert_close(got, ref)
    for a, b in zip(got_g, ref_g):
        torch.testing.assert_close(a, b)


def test_closed_form_matches_an_independent_formula():
    model = _model()
    mu = torch.cat([m.flatten() for m in model.mu])
    sd = torch.cat([s.flatten() for s in model.sigmas()])
    q = torch.distributions.Normal(mu, sd)
    p = torch.distributions.Normal(torch.zeros_like(mu), torch.full_like(mu, PRIOR.sigma))
    torch.testing.assert_close(B.closed_kl(model, PRIOR), torch.distributions.kl_divergence(q, p).sum())


def _graph_bytes(name, n_mc, model):
    return saved_tensor_bytes(lambda: B.standalone_kl(name, model, PRIOR, n_mc, torch.Generator().manual_seed(0)))


@pytest.mark.parametrize("name", ["repar", "repar_exact"])
def test_repar_saved_bytes_do_not_grow_with_n_mc(name):
    model = _model(sizes=(20, 50, 10), dtype=torch.float32)
    one, thousand = _graph_bytes(name, 1, model), _graph_bytes(name, 1000, model)
    assert one > 0
    assert abs(thousand - one) <= 0.05 * one, (one, thousand)


def test_direct_mc_saved_bytes_grow_with_n_mc():
    model = _model(sizes=(20, 50, 10), dtype=torch.float32)
    one, hundred = _graph_bytes("mc", 1, model), _graph_bytes("mc", 100, model)
    assert hundred > 20 * one, (one, hundred)
