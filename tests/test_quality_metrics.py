"""Quality metrics against hand-computed values; init schemes; OOD input sets."""

import math

import numpy as np
import pytest
import torch

import bnn_impls as B
from bench.contract.config import BenchConfig
from bnn_impls import metrics
from bnn_impls.init_schemes import FAN_IN_DEFAULT_SIGMA, InitScheme, inverse_softplus
from bnn_impls.ood_data import invert, rotate


def test_mixture_probabilities_entropy_and_mutual_information_by_hand():
    # Two samples that disagree completely on one example and agree on the other.
    big = 50.0
    logits = torch.tensor([[[big, 0.0], [big, 0.0]], [[0.0, big], [big, 0.0]]])  # (S=2, N=2, C=2)
    c = metrics.classification_chunk(logits)
    torch.testing.assert_close(c.probs, torch.tensor([[0.5, 0.5], [1.0, 0.0]], dtype=torch.float64))
    torch.testing.assert_close(c.entropy, torch.tensor([math.log(2), 0.0], dtype=torch.float64), atol=1e-12, rtol=0)
    # Each sample is certain: no aleatoric part, all of the first example's entropy is epistemic.
    torch.testing.assert_close(c.mutual_information, torch.tensor([math.log(2), 0.0], dtype=torch.float64),
                               atol=1e-12, rtol=0)


def test_error_nll_brier_and_ece_by_hand():
    probs = torch.tensor([[0.9, 0.1], [0.6, 0.4], [0.3, 0.7], [0.2, 0.8]], dtype=torch.float64)
    labels = torch.tensor([0, 1, 1, 1])
    m = metrics.classification_metrics(probs, labels)
    assert m["test_error"] == pytest.approx(0.25)
    assert m["test_nll"] == pytest.approx(-(math.log(0.9) + math.log(0.4) + math.log(0.7) + math.log(0.8)) / 4)
    assert m["brier"] == pytest.approx((2 * 0.01 + 2 * 0.36 + 2 * 0.09 + 2 * 0.04) / 4)
    # Confidences 0.9, 0.6, 0.7, 0.8 fall in four different 1/15-wide bins, each with one example:
    # ECE = mean |correct - confidence| = (0.1 + 0.6 + 0.3 + 0.2) / 4.
    assert m["ece"] == pytest.approx((0.1 + 0.6 + 0.3 + 0.2) / 4)


def test_ece_pools_examples_of_one_bin():
    # 0.80 and 0.81 share the bin (0.8, 0.8667]; 0.80 is the upper edge of (0.7333, 0.8].
    probs = torch.tensor([[0.81, 0.19], [0.82, 0.18], [0.80, 0.20]], dtype=torch.float64)
    labels = torch.tensor([0, 1, 0])
    ece = metrics.expected_calibration_error(probs, labels, n_bins=15)
    expected = (2 / 3) * abs(0.5 - 0.815) + (1 / 3) * abs(1.0 - 0.80)
    assert ece == pytest.approx(expected)


def test_top_class_sample_probabilities_follow_the_mixtures_choice():
    logits = torch.log(torch.tensor([[[0.6, 0.4]], [[0.1, 0.9]]]))  # mixture (0.35, 0.65): class 1
    torch.testing.assert_close(metrics.top_class_sample_probs(logits),
                               torch.tensor([[0.4], [0.9]], dtype=torch.float64))


def test_regression_mixture_nll_variance_and_coverage_by_hand():
    sigma = 0.5
    outputs = torch.tensor([[[0.0], [1.0]], [[2.0], [1.0]]])  # (S=2, N=2, 1)
    y = torch.tensor([[1.0], [1.0]])
    c = metrics.regression_chunk(outputs, sigma, y)
    torch.testing.assert_close(c.mean, torch.tensor([1.0, 1.0], dtype=torch.float64))
    torch.testing.assert_close(c.variance, torch.tensor([1.0 + 0.25, 0.25], dtype=torch.float64))
    def normal(d):
        return math.exp(-0.5 * (d / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi))
    assert float(c.nll[0]) == pytest.approx(-math.log(0.5 * normal(1.0) + 0.5 * normal(1.0)))
    assert float(c.nll[1]) == pytest.approx(-math.log(normal(0.0)))
    m = metrics.regression_metrics(c.mean, c.variance, c.nll, torch.tensor([1.0, 2.5]))
    assert m["rmse"] == pytest.approx(math.sqrt((0 + 1.5**2) / 2))
    # 2.5 lies 1.5 / 0.5 = 3 sd from the second mean: outside; the first target is at its mean: inside.
    assert m["coverage95"] == 0.5


def test_the_95_interval_covers_95_percent_of_its_own_gaussian():
    g = torch.Generator().manual_seed(0)
    y = torch.randn(200_000, generator=g, dtype=torch.float64) * 2.0 + 3.0
    low, high = metrics.interval_95(torch.full_like(y, 3.0), torch.full_like(y, 4.0))
    assert float(((y >= low) & (y <= high)).double().mean()) == pytest.approx(0.95, abs=0.003)


def test_auroc_by_hand_with_ties_and_against_pairwise_counting():
    assert metrics.auroc([1, 2, 3], [4, 5]) == 1.0
    assert metrics.auroc([4, 5], [1, 2, 3]) == 0.0
    # in {1, 2}, out {2, 3}: pairs (1<2), (1<3), (2=2: one half), (2<3) -> 3.5 / 4.
    assert metrics.auroc([1, 2], [2, 3]) == pytest.approx(3.5 / 4)
    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 20, 300), rng.integers(5, 25, 200)
    pairwise = ((b[None, :] > a[:, None]) + 0.5 * (b[None, :] == a[:, None])).mean()
    assert metrics.auroc(a, b) == pytest.approx(pairwise)
    with pytest.raises(ValueError):
        metrics.auroc([], [1.0])


def test_report_init_is_unchanged_and_fan_in_follows_pytorch_bounds():
    sizes = (784, 300, 200, 10)
    old = B.BayesianMLP(sizes, generator=torch.Generator().manual_seed(3))
    new = B.BayesianMLP(sizes, init=InitScheme("report"), generator=torch.Generator().manual_seed(3))
    for a, b in zip(old.parameters(), new.parameters()):
        assert torch.equal(a, b)
    fan = B.BayesianMLP(sizes, init=InitScheme("fan_in"), generator=torch.Generator().manual_seed(3))
    for (w, b), fan_in in zip(fan.layers(), sizes[:-1]):
        bound = 1 / math.sqrt(fan_in)
        for index in (w, b):
            assert fan.mu[index].abs().max() <= bound
            assert fan.mu[index].abs().max() > 0.9 * bound  # the whole range is used, not a narrower one
        torch.testing.assert_close(fan.sigmas()[w], torch.full_like(fan.mu[w], FAN_IN_DEFAULT_SIGMA))
    named = B.BayesianMLP((3, 4, 2), init=InitScheme("report", 0.05), generator=torch.Generator().manual_seed(0))
    for s in named.sigmas():
        torch.testing.assert_close(s, torch.full_like(s, 0.05))
    assert inverse_softplus(1e-6) == pytest.approx(math.log(math.expm1(1e-6)), rel=1e-9)


def test_bad_init_names_and_sigmas_are_config_errors():
    with pytest.raises(B.BnnConfigError, match="unknown init"):
        InitScheme("xavier")
    with pytest.raises(B.BnnConfigError, match="init_sigma"):
        InitScheme("fan_in", -1.0)


def test_new_config_fields_at_their_defaults_keep_the_run_id():
    base = BenchConfig("vmap", "mnist", 2)
    assert base.replace(prior_sigma=1.0, init="report", init_sigma=0.0).run_id == base.run_id
    ids = {base.run_id, base.replace(prior_sigma=0.1).run_id, base.replace(init="fan_in").run_id,
           base.replace(init_sigma=0.02).run_id}
    assert len(ids) == 4


def test_rotations_and_inversion():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(5, 784, generator=g)
    square = x.reshape(5, 28, 28)
    torch.testing.assert_close(rotate(x, 180).reshape(5, 28, 28), square.flip(1).flip(2))
    torch.testing.assert_close(rotate(x, 90), torch.rot90(square, 1, dims=(1, 2)).reshape(5, 784))
    # Resampling by 90 degrees through the general path lands on the same pixels (up to interpolation round-off).
    from bnn_impls import ood_data

    resampled = rotate(x, 89.9999)
    interior = torch.zeros(28, 28, dtype=torch.bool)
    interior[1:-1, 1:-1] = True
    assert (resampled.reshape(5, 28, 28) - rotate(x, 90).reshape(5, 28, 28))[:, interior].abs().max() < 1e-3
    assert ood_data.rotate(x, 0).equal(x)
    torch.testing.assert_close(invert(x), 1 - x)
