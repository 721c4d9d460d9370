"""bnn_impls.gamma: exact chi-square and gamma draws from public ops and the caller's generator."""

import numpy as np
import pytest
import torch
from scipy import stats

from bnn_impls import gamma as G
from bnn_impls.gamma import sample_chi2, sample_gamma

N = 100_000


@pytest.mark.parametrize("df", [1, 2, 10, 1000, 1e6])
def test_chi2_draws_pass_a_ks_test_against_scipy(df):
    x = sample_chi2(df, (N,), generator=torch.Generator().manual_seed(0)).double().numpy()
    assert stats.kstest(x, stats.chi2(df).cdf).pvalue > 0.01
    assert np.isfinite(x).all() and (x > 0).all()


@pytest.mark.parametrize("df", [10, 1e6])
def test_the_ks_test_can_fail(df):
    # Power check: the same test rejects a law a little off (a shifted mean by a tenth of an sd).
    x = sample_chi2(df, (N,), generator=torch.Generator().manual_seed(0)).double().numpy()
    shifted = x + 0.1 * np.sqrt(2 * df)
    assert stats.kstest(shifted, stats.chi2(df).cdf).pvalue < 0.01


@pytest.mark.parametrize("alpha", [0.3, 0.5, 1.0, 7.5])
def test_gamma_draws_in_float64_pass_a_ks_test(alpha):
    x = sample_gamma(alpha, (N,), generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    assert x.dtype == torch.float64
    assert stats.kstest(x.numpy(), stats.gamma(alpha).cdf).pvalue > 0.01


def test_rejected_draws_are_redrawn_until_none_is_left(monkeypatch):
    calls = []
    original = G._candidates

    def counting(d, c, n, *args):
        values, ok = original(d, c, n, *args)
        calls.append((n, int((~ok).sum())))
        return values, ok

    monkeypatch.setattr(G, "_candidates", counting)
    x = sample_gamma(1.0, (50_000,), generator=torch.Generator().manual_seed(2))
    assert len(calls) >= 2 and calls[0][1] > 0  # alpha = 1 rejects a few percent: the redraw path ran
    assert calls[1][0] == G._OVERSAMPLE * calls[0][1] + G._MARGIN
    assert torch.isfinite(x).all() and (x > 0).all()


def test_same_generator_state_gives_the_same_draws_and_shape_is_kept():
    a = sample_chi2(5, (3, 4), generator=torch.Generator().manual_seed(3))
    b = sample_chi2(5, (3, 4), generator=torch.Generator().manual_seed(3))
    c = sample_chi2(5, (3, 4), generator=torch.Generator().manual_seed(4))
    assert a.shape == (3, 4) and a.dtype == torch.float32 and torch.equal(a, b) and not torch.equal(a, c)


def test_bad_parameters_are_refused():
    with pytest.raises(ValueError, match="alpha"):
        sample_gamma(0.0, (3,))
    with pytest.raises(ValueError, match="degrees of freedom"):
        sample_chi2(-1, (3,))


def test_repar_exact_does_not_call_the_private_sampler(monkeypatch):
    import bnn_impls as B

    def forbidden(*args, **kwargs):
        raise AssertionError("torch._standard_gamma called")

    monkeypatch.setattr(torch, "_standard_gamma", forbidden)
    model = B.BayesianMLP((6, 4, 2))
    moments = B.kl.exact_moments(model, 50, torch.Generator().manual_seed(0))
    assert all(m1.shape == m2.shape == mu.shape for (m1, m2), mu in zip(moments, model.mu))


@pytest.mark.gpu
def test_chi2_on_cuda_uses_the_device_generator():
    if not torch.cuda.is_available():
        pytest.skip("no CUDA device")
    g = torch.Generator("cuda").manual_seed(0)
    x = sample_chi2(10, (N,), generator=g)
    assert x.device.type == "cuda"
    assert stats.kstest(x.double().cpu().numpy(), stats.chi2(10).cdf).pvalue > 0.01
