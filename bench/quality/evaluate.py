"""Evaluation of a trained model, as pure functions of a predictor and tensors.

A predictor is `(x, samples, generator) -> (samples, batch, ...)` outputs: a BNN's predictive
samples through its implementation, a peer library's, or a deterministic net's single output.
Everything streams the inputs in chunks of at most `eval_rows` (samples x examples) rows, which
bounds evaluation memory whatever S_test is.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F

from bnn_impls import metrics

FGSM_EPS = (0.0, 0.05, 0.1, 0.15, 0.2)
HIST_BINS = 20
BAND_POINTS = 200


def evaluation_mode(predict, module: torch.nn.Module):
    """`predict` run with `module` in eval mode, its mode put back after: BatchNorm normalizes with its
    running statistics (the ones training left) and never updates them, dropout is off. So a test
    example's prediction does not depend on which other examples share its evaluation chunk, and
    evaluating does not change the model that training continues with."""

    def run(x, samples, generator):
        was_training = module.training
        module.eval()
        try:
            return predict(x, samples, generator)
        finally:
            module.train(was_training)

    return run


def chunks(n: int, samples: int, eval_rows: int):
    size = max(1, eval_rows // max(1, samples))
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


def evaluate_classification(predict, x, y, samples: int, generator, eval_rows: int) -> dict:
    with torch.no_grad():
        probs = torch.cat([metrics.classification_chunk(predict(x[s], samples, generator)).probs
                           for s in chunks(x.shape[0], samples, eval_rows)])
    return metrics.classification_metrics(probs, y)


def evaluate_regression(predict, x, y, samples: int, generator, eval_rows: int, sigma: float) -> dict:
    with torch.no_grad():
        parts = [metrics.regression_chunk(predict(x[s], samples, generator), sigma, y[s])
                 for s in chunks(x.shape[0], samples, eval_rows)]
    return metrics.regression_metrics(torch.cat([p.mean for p in parts]), torch.cat([p.variance for p in parts]),
                                      torch.cat([p.nll for p in parts]), y)


def uncertainty(predict, x, samples: int, generator, eval_rows: int):
    """Per-example entropy, mutual information, mixture probabilities and the Figure 6 histogram counts."""
    ent, mi, probs = [], [], []
    hist = np.zeros(HIST_BINS, dtype=np.int64)
    with torch.no_grad():
        for s in chunks(x.shape[0], samples, eval_rows):
            logits = predict(x[s], samples, generator)
            summary = metrics.classification_chunk(logits)
            ent.append(summary.entropy)
            mi.append(summary.mutual_information)
            probs.append(summary.probs)
            top = metrics.top_class_sample_probs(logits).flatten().cpu().numpy()
            hist += np.histogram(top, bins=HIST_BINS, range=(0.0, 1.0))[0]
    return torch.cat(ent).cpu().numpy(), torch.cat(mi).cpu().numpy(), torch.cat(probs), hist


def ood_rows(predict, sets, samples: int, generator, eval_rows: int) -> tuple[list[dict], list[dict]]:
    """One row per set (AUROC of entropy and of MI against the first set, MNIST's test set) and histograms."""
    rows, hists = [], []
    reference = None
    for s in sets:
        if s.images is None:
            rows.append({"set": s.name, "status": "skipped", "reason": s.reason})
            continue
        ent, mi, probs, hist = uncertainty(predict, s.images, samples, generator, eval_rows)
        row = {"set": s.name, "status": "ok", "reason": "", "n": len(ent), "mean_entropy": float(ent.mean()),
               "mean_mi": float(mi.mean()), "mean_top_prob": float(probs.max(-1).values.mean())}
        if s.labels is not None:
            row["accuracy"] = float((probs.argmax(-1).cpu() == s.labels.cpu()).double().mean())
        if reference is None:
            reference = (ent, mi)
        else:
            row["auroc_entropy"] = metrics.auroc(reference[0], ent)
            row["auroc_mi"] = metrics.auroc(reference[1], mi)
        rows.append(row)
        edges = np.linspace(0.0, 1.0, HIST_BINS + 1)
        hists += [{"set": s.name, "bin_low": float(edges[i]), "bin_high": float(edges[i + 1]), "count": int(hist[i])}
                  for i in range(HIST_BINS)]
    return rows, hists


def fgsm_accuracies(predict, x, y, eps_values, attack_samples: int, test_samples: int, generator,
                    eval_rows: int) -> list[float]:
    """Accuracy of the predictive mean at x + eps sign(grad_x NLL(mean)), clamped to [0, 1], per eps.

    The loss is the NLL of the Monte Carlo predictive mean over `attack_samples` draws, so the
    gradient flows through the average (not through one sample); accuracy is then measured with
    `test_samples` fresh draws. One gradient per example serves every eps (one-step FGSM).
    """
    correct = np.zeros(len(eps_values))
    rows = max(attack_samples, test_samples)
    for s in chunks(x.shape[0], rows, eval_rows):
        xs, ys = x[s].detach().clone().requires_grad_(True), y[s]
        with torch.enable_grad():
            log_p = torch.log_softmax(predict(xs, attack_samples, generator), dim=-1)
            log_mean = torch.logsumexp(log_p, dim=0) - math.log(log_p.shape[0])
            loss = F.nll_loss(log_mean, ys, reduction="sum")
            (grad,) = torch.autograd.grad(loss, xs)
        direction = grad.sign()
        with torch.no_grad():
            for i, eps in enumerate(eps_values):
                adv = (xs.detach() + eps * direction).clamp(0.0, 1.0)
                probs = metrics.classification_chunk(predict(adv, test_samples, generator)).probs
                correct[i] += float((probs.argmax(-1) == ys).sum())
    return list(correct / x.shape[0])


def regression_band(predict, x_train, samples: int, generator, eval_rows: int, sigma: float) -> list[dict]:
    """Predictive mean and 95% band on a grid twice as wide as the training inputs, centred on them."""
    low, high = float(x_train.min()), float(x_train.max())
    half = high - low
    grid = torch.linspace(low - half / 2, high + half / 2, BAND_POINTS, dtype=x_train.dtype,
                          device=x_train.device)[:, None]
    with torch.no_grad():
        parts = [metrics.regression_chunk(predict(grid[s], samples, generator), sigma)
                 for s in chunks(grid.shape[0], samples, eval_rows)]
    mean = torch.cat([p.mean for p in parts])
    variance = torch.cat([p.variance for p in parts])
    lower, upper = metrics.interval_95(mean, variance)
    epistemic = (variance - sigma**2).clamp_min(0).sqrt()
    xs = grid[:, 0].double().cpu()
    return [{"x": float(xs[i]), "mean": float(mean[i]), "lower": float(lower[i]), "upper": float(upper[i]),
             "epistemic_sd": float(epistemic[i]), "in_train_range": bool(low <= xs[i] <= high)}
            for i in range(len(xs))]
