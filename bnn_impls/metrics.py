"""Quality of a predictive distribution: pure functions of predictive samples, labels and targets.

A Bayesian net predicts with the mixture over posterior samples: for classification the mean of the
S per-sample softmax vectors, for regression the mixture of S Gaussians N(f_s(x), sigma_lik^2).
Everything here is a function of tensors (no model, no data loading), so each metric is tested
against hand-computed values. Sums over test examples are split into a per-chunk part
(`classification_chunk`, `regression_chunk`: per-example quantities) and a whole-set part, so an
evaluation can stream the test set through in chunks that bound memory.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

ECE_BINS = 15
Z_95 = 1.959963984540054  # the standard normal's 0.975 quantile: a central 95% interval


# ---------------------------------------------------------------------------------------------
# Classification


@dataclass(frozen=True)
class ClassificationChunk:
    """Per-example summaries of S predictive samples: the mixture's probabilities (N, C), its entropy,
    the expected entropy of the samples (aleatoric part) and mutual information (epistemic part)."""

    probs: torch.Tensor
    entropy: torch.Tensor
    expected_entropy: torch.Tensor

    @property
    def mutual_information(self) -> torch.Tensor:
        # H[mean p] >= mean H[p] (concavity); clamp the float round-off that can make it -1e-7.
        return (self.entropy - self.expected_entropy).clamp_min(0.0)


def _entropy_from_log(log_p: torch.Tensor) -> torch.Tensor:
    return -(log_p.exp() * log_p).nan_to_num(0.0).sum(-1)


def classification_chunk(logits: torch.Tensor) -> ClassificationChunk:
    """logits (S, N, C) from S posterior samples -> per-example mixture summaries (computed in float64)."""
    if logits.dim() != 3:
        raise ValueError(f"logits must be (samples, examples, classes), got shape {tuple(logits.shape)}")
    log_p = torch.log_softmax(logits.detach().double(), dim=-1)
    log_mix = torch.logsumexp(log_p, dim=0) - math.log(log_p.shape[0])
    return ClassificationChunk(probs=log_mix.exp(), entropy=_entropy_from_log(log_mix),
                               expected_entropy=_entropy_from_log(log_p).mean(0))


def expected_calibration_error(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = ECE_BINS) -> float:
    """ECE with equal-width confidence bins: sum_b (n_b / N) |accuracy_b - mean confidence_b|.

    Bin b holds confidences in ((b-1)/B, b/B]; a confidence of exactly 0 (impossible for a softmax
    top class, which is >= 1/C) would go to the first bin.
    """
    confidence, predicted = probs.max(-1)
    correct = (predicted == labels).double()
    bins = (torch.ceil(confidence.double() * n_bins).long() - 1).clamp(0, n_bins - 1)
    n = confidence.shape[0]
    conf_sum = torch.bincount(bins, weights=confidence.double(), minlength=n_bins)
    acc_sum = torch.bincount(bins, weights=correct, minlength=n_bins)
    return float((conf_sum - acc_sum).abs().sum() / n)


def classification_metrics(probs: torch.Tensor, labels: torch.Tensor, n_bins: int = ECE_BINS) -> dict:
    """test_error, test_nll (nats per example), ece, brier (sum over classes of squared error, in [0, 2])."""
    probs = probs.double()
    labels = labels.long()
    picked = probs.gather(-1, labels[:, None]).squeeze(-1)
    onehot = torch.nn.functional.one_hot(labels, probs.shape[-1]).double()
    return {
        "test_error": float((probs.argmax(-1) != labels).double().mean()),
        "test_nll": float(-torch.log(picked.clamp_min(torch.finfo(torch.float64).tiny)).mean()),
        "ece": expected_calibration_error(probs, labels, n_bins),
        "brier": float(((probs - onehot) ** 2).sum(-1).mean()),
    }


def top_class_sample_probs(logits: torch.Tensor) -> torch.Tensor:
    """(S, N): each sample's softmax probability of the class the mixture predicts (the report's Figure 6)."""
    p = torch.softmax(logits.detach().double(), dim=-1)
    top = p.mean(0).argmax(-1)
    return p.gather(-1, top.expand(p.shape[0], -1)[..., None]).squeeze(-1)


# ---------------------------------------------------------------------------------------------
# Regression


@dataclass(frozen=True)
class RegressionChunk:
    """Per-example summaries of the mixture of S Gaussians N(f_s, sigma^2): mean, variance, NLL of y."""

    mean: torch.Tensor
    variance: torch.Tensor
    nll: torch.Tensor


def regression_chunk(outputs: torch.Tensor, sigma: float, y=None) -> RegressionChunk:
    """outputs (S, N, 1) or (S, N); y (N, 1) or (N,) or None (no targets: NLL left NaN).

    The mixture's variance is the spread of the sample means plus the likelihood's noise; its NLL
    is -log (1/S) sum_s N(y; f_s, sigma^2), computed with logsumexp.
    """
    f = outputs.detach().double()
    if f.dim() == 3:
        if f.shape[-1] != 1:
            raise ValueError(f"regression outputs must have one output unit, got shape {tuple(outputs.shape)}")
        f = f[..., 0]
    mean = f.mean(0)
    variance = f.var(0, unbiased=False) + sigma**2
    if y is None:
        nll = torch.full_like(mean, float("nan"))
    else:
        y = y.detach().double().reshape(-1)
        log_n = -0.5 * ((y - f) / sigma) ** 2 - math.log(sigma) - 0.5 * math.log(2 * math.pi)
        nll = -(torch.logsumexp(log_n, 0) - math.log(f.shape[0]))
    return RegressionChunk(mean, variance, nll)


def interval_95(mean: torch.Tensor, variance: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The central 95% interval of the moment-matched Gaussian N(mean, variance)."""
    half = Z_95 * variance.sqrt()
    return mean - half, mean + half


def regression_metrics(mean: torch.Tensor, variance: torch.Tensor, nll: torch.Tensor, y: torch.Tensor) -> dict:
    """rmse of the predictive mean, test_nll (mixture NLL, nats per example), coverage95 of the 95% interval."""
    y = y.detach().double().reshape(-1)
    low, high = interval_95(mean, variance)
    return {
        "rmse": float(((mean - y) ** 2).mean().sqrt()),
        "test_nll": float(nll.mean()),
        "coverage95": float(((y >= low) & (y <= high)).double().mean()),
    }


# ---------------------------------------------------------------------------------------------
# Detection


def auroc(in_scores, out_scores) -> float:
    """Area under the ROC curve for telling out-of-distribution (positive) from in-distribution inputs by
    a score that should be higher out of distribution: the Mann-Whitney U statistic over n_in * n_out,
    from average ranks (ties count one half). 0.5 is chance, 1.0 perfect separation."""
    from scipy.stats import rankdata

    a = np.asarray(in_scores, dtype=float).ravel()
    b = np.asarray(out_scores, dtype=float).ravel()
    if a.size == 0 or b.size == 0:
        raise ValueError("AUROC needs at least one in-distribution and one out-of-distribution score")
    if not (np.isfinite(a).all() and np.isfinite(b).all()):
        raise ValueError("AUROC scores must be finite")
    ranks = rankdata(np.concatenate([a, b]))
    u = ranks[a.size:].sum() - b.size * (b.size + 1) / 2
    return float(u / (a.size * b.size))
