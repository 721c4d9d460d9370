"""Train one config for E epochs and measure, after every epoch and outside the timed region, how good
the model is; after the last epoch, its uncertainty on shifted and OOD inputs, its accuracy under
FGSM and (regression) its predictive band. Rows go to a quality results directory as they are made.

Timing: each epoch's training steps are one `time_block` (the synchronized clock of
bench/timing.py); evaluation runs after the clock stopped, on its own random stream, so a quality
run trains exactly the model a run without evaluation would (same draws, same steps) and
`train_s` holds training time only. Evaluation streams the test set in chunks of at most
`eval_rows` (samples x examples) rows, which bounds its memory whatever S_test is.
"""

from __future__ import annotations

import dataclasses
import math
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np
import torch
import torch.nn.functional as F

import bnn_impls as B
from bench.build import model_for, prior_for
from bench.config import BenchConfig
from bench.measure import resolve_dtype
from bench.provenance import cpu_model, device_name, git_commit, now_iso
from bench.quality_results import QualityWriter
from bench.quality_schema import (BAND_FILE, BAND_POINTS_FILE, BASELINES, FGSM_FILE, OOD_FILE, OOD_HIST_FILE,
                                  QUALITY_FILE)
from bench.timing import time_block
from bench.worker import classify_exception
from bnn_impls import metrics
from bnn_impls.ood_data import input_sets

FGSM_EPS = (0.0, 0.05, 0.1, 0.15, 0.2)
HIST_BINS = 20
#: Seed offset of the evaluation's random stream, so evaluating never moves the training's draws.
EVAL_SEED_OFFSET = 1_000_003
BAND_POINTS = 200


@dataclass(frozen=True)
class QualityOptions:
    """How a config is evaluated (the config itself says how it is trained)."""

    test_samples: int = 100
    attack_samples: Optional[int] = None  # None: test_samples (gradients through the same MC average)
    eval_rows: int = 50_000
    stop_at_error: Optional[float] = None  # stop after the first epoch at or below this test error
    ood: bool = True
    fgsm: bool = True
    ood_examples: int = 10_000
    allow_download: bool = True
    fgsm_examples: int = 10_000

    def __post_init__(self):
        for name in ("test_samples", "eval_rows", "ood_examples", "fgsm_examples"):
            if getattr(self, name) < 1:
                raise B.BnnConfigError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.attack_samples is not None and self.attack_samples < 1:
            raise B.BnnConfigError(f"attack_samples must be >= 1, got {self.attack_samples}")
        if self.stop_at_error is not None and not 0 <= self.stop_at_error <= 1:
            raise B.BnnConfigError(f"stop_at_error must be a fraction in [0, 1], got {self.stop_at_error}")

    @property
    def attack(self) -> int:
        return self.attack_samples or self.test_samples


def quality_run_id(config: BenchConfig, options: QualityOptions) -> str:
    """The config's run_id, plus what changes the rows: test samples and the early stop."""
    suffix = f"-t{options.test_samples}"
    if options.stop_at_error is not None:
        suffix += f"-stop{options.stop_at_error:g}"
    return config.run_id + suffix


# ---------------------------------------------------------------------------------------------
# Models: the BNN through its implementation, or a deterministic baseline


class BayesPredictor:
    """S predictive samples of a BNN, through the implementation's own vectorized `predict`."""

    def __init__(self, impl, model):
        self.impl, self.model = impl, model

    def __call__(self, x: torch.Tensor, samples: int, generator) -> torch.Tensor:
        return self.impl.predict(self.model, x, samples=samples, generator=generator)


class PointPredictor:
    """A deterministic net (in eval mode: dropout off) as a predictor with one sample."""

    def __init__(self, net: torch.nn.Module):
        self.net = net

    def __call__(self, x: torch.Tensor, samples: int, generator) -> torch.Tensor:
        return self.net(x)[None]


def baseline_net(name: str, sizes, device, dtype, seed: int) -> torch.nn.Module:
    """The BNN's layers as a plain MLP (PyTorch's default init), with dropout 0.5 after each hidden ReLU for `mlp_dropout`."""
    torch.manual_seed(seed)
    layers: list[torch.nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
            if name == "mlp_dropout":
                layers.append(torch.nn.Dropout(0.5))
    return torch.nn.Sequential(*layers).to(device=device, dtype=dtype)


def chunks(n: int, samples: int, eval_rows: int):
    size = max(1, eval_rows // max(1, samples))
    for start in range(0, n, size):
        yield slice(start, min(n, start + size))


# ---------------------------------------------------------------------------------------------
# Evaluations (pure functions of a predictor and tensors)


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


# ---------------------------------------------------------------------------------------------
# One config


@dataclass
class Trainer:
    """What one training epoch and one evaluation need; built by `build_trainer`."""

    predict: Callable
    run_epoch: Callable[[], torch.Tensor]  # trains one epoch, returns the summed loss (a tensor, not read back)
    steps_per_epoch: int
    data: B.Dataset
    task: B.TaskSpec
    kl: str
    batch_size: int
    lr: float


def build_trainer(config: BenchConfig, device, dtype) -> Trainer:
    B.names.check_task(config.task)
    task = B.TASK_SPECS[config.task]
    batch_size = config.batch_size or task.batch_size
    lr = config.lr or task.lr
    data = B.load_dataset(config.task, device, dtype, data_dir=config.data_dir, seed=config.seed)
    generator = torch.Generator(device).manual_seed(config.seed)
    steps = B.steps_per_epoch(data.n_train, batch_size)
    if config.impl in BASELINES:
        if config.task != "mnist":
            raise B.BnnConfigError(f"baseline {config.impl!r} is for the mnist task: drop --baselines for {config.task}")
        net = baseline_net(config.impl, task.sizes, device, dtype, config.seed)
        optimizer = B.make_optimizer(net, lr)

        def run_epoch():
            net.train()
            total = torch.zeros((), device=device)
            for x, y in B.epoch_batches(data, batch_size, generator):
                optimizer.zero_grad(set_to_none=True)
                loss = F.cross_entropy(net(x), y)
                loss.backward()
                optimizer.step()
                total += loss.detach()
            net.eval()
            return total

        return Trainer(PointPredictor(net), run_epoch, steps, data, task, "", batch_size, lr)
    kl = config.kl or B.default_kl(config.impl)
    impl = B.get_implementation(config.impl)
    if B.registry.capabilities(config.impl).trains_own_model:
        return _peer_trainer(config, impl, data, task, generator, steps, kl, batch_size, lr)
    B.check_combination(config.impl, kl, config.prior)
    model = model_for(config, task.sizes, device, dtype)
    elbo = B.ElboSpec(task.likelihood, kl, prior_for(config), data.n_train, config.n_mc)
    step = B.make_train_step(model, impl, elbo, B.make_optimizer(model, lr), samples=config.samples, generator=generator)

    def run_epoch():
        total = torch.zeros((), device=device)
        for x, y in B.epoch_batches(data, batch_size, generator):
            total += step(x, y).loss
        return total

    return Trainer(BayesPredictor(impl, model), run_epoch, steps, data, task, kl, batch_size, lr)


class PeerPredictor:
    """S predictive samples of a peer library's own model, through its `predict` (no gradients: FGSM,
    which differentiates the predictive mean, is not available for peers)."""

    differentiable = False

    def __init__(self, predict):
        self._predict = predict

    def __call__(self, x: torch.Tensor, samples: int, generator) -> torch.Tensor:
        return self._predict(x, samples)


def _peer_trainer(config: BenchConfig, impl, data, task, generator, steps, kl, batch_size, lr) -> Trainer:
    """A peer library trained its own way (its model, loss and optimizer: bnn_impls/own_training.py),
    on the same batches, epochs and evaluation as ours, so its test error sits beside our speed."""
    own = impl.make_training(task, data, samples=config.samples, lr=lr, batch_size=batch_size, seed=config.seed,
                             generator=generator)
    device = data.x_train.device

    def run_epoch():
        total = torch.zeros((), device=device)
        for x, y in B.epoch_batches(data, batch_size, generator):
            total += own.step(x, y).loss
        return total

    return Trainer(PeerPredictor(own.predict), run_epoch, steps, data, task, kl, batch_size, lr)


def base_row(config: BenchConfig, options: QualityOptions, run_id: str, attempt: str) -> dict:
    return {
        "run_id": run_id, "attempt": attempt, "impl": config.impl, "task": config.task, "kl": config.kl,
        "prior": config.prior, "prior_sigma": config.prior_sigma, "init": config.init, "init_sigma": config.init_sigma,
        "n_mc": config.n_mc, "samples": config.samples, "batch_size": config.batch_size, "lr": config.lr,
        "device": config.device, "dtype": config.dtype, "threads": config.threads, "seed": config.seed,
        "epochs": config.epochs, "test_samples": options.test_samples, "stop_at_error": options.stop_at_error,
        "cpu_model": cpu_model(), "torch_version": torch.__version__, "git_commit": git_commit(),
    }


def train_and_evaluate(config: BenchConfig, options: QualityOptions, writer: QualityWriter, *,
                       clock: Optional[Callable[[], float]] = None, log: Callable[[str], None] = lambda s: None) -> None:
    """Train `config` for config.epochs epochs (or to options.stop_at_error), writing rows as it goes.

    A failure (bad config, missing data, out of memory) becomes a final row with its status; the
    rows already written stay.
    """
    run_id = quality_run_id(config, options)
    attempt = f"{now_iso()}-{os.getpid()}"
    base = base_row(config, options, run_id, attempt)
    epoch = 0
    try:
        torch.set_num_threads(config.threads)
        device, dtype = torch.device(config.device), resolve_dtype(config.dtype)
        trainer = build_trainer(config, device, dtype)
        base.update(kl=trainer.kl, batch_size=trainer.batch_size, lr=trainer.lr, device_name=device_name(config.device),
                    steps_per_epoch=trainer.steps_per_epoch)
        eval_gen = torch.Generator(device).manual_seed(config.seed + EVAL_SEED_OFFSET)
        samples = 1 if config.impl in BASELINES else options.test_samples
        data, train_s = trainer.data, 0.0
        for epoch in range(1, config.epochs + 1):
            loss_sum = []
            seconds = time_block(lambda: loss_sum.append(trainer.run_epoch()), clock=clock)
            train_s += seconds
            started = time.perf_counter()
            if config.task == "regression":
                quality = evaluate_regression(trainer.predict, data.x_test, data.y_test, samples, eval_gen,
                                              options.eval_rows, trainer.task.likelihood.sigma)
            else:
                quality = evaluate_classification(trainer.predict, data.x_test, data.y_test, samples, eval_gen,
                                                  options.eval_rows)
            reached = options.stop_at_error is not None and quality.get("test_error", 1.0) <= options.stop_at_error
            last = epoch == config.epochs or reached
            if last:
                post_training(config, options, trainer, writer, dict(base, epoch_done=epoch), samples, eval_gen)
            row = dict(base, status="ok", error="", epoch=epoch, final=last, steps=epoch * trainer.steps_per_epoch,
                       epoch_train_s=seconds, train_s=train_s, eval_s=time.perf_counter() - started,
                       train_loss=float(loss_sum[0]) / trainer.steps_per_epoch, timestamp=now_iso(), **quality)
            writer.append(QUALITY_FILE, [row])
            log(f"{run_id} epoch {epoch}: " + ", ".join(f"{k} {v:.4g}" for k, v in quality.items())
                + f", train {train_s:.1f} s")
            if last:
                return
    except Exception as exc:
        status, message = classify_exception(exc)
        writer.append(QUALITY_FILE, [dict(base, status=status, error=message[:500], epoch=epoch, final=True,
                                          timestamp=now_iso())])
        log(f"{run_id}: {status}: {message}")


def post_training(config, options, trainer: Trainer, writer: QualityWriter, base: dict, samples: int, eval_gen) -> None:
    """OOD, FGSM and the regression band: written before the final quality row (see quality_schema)."""
    data, keep = trainer.data, {k: base[k] for k in ("run_id", "attempt")}
    if config.task == "regression":
        band = regression_band(trainer.predict, data.x_train, samples, eval_gen, options.eval_rows,
                               trainer.task.likelihood.sigma)
        writer.append(BAND_FILE, [dict(keep, **r) for r in band])
        xs, ys = data.x_train[:, 0].double().cpu(), data.y_train[:, 0].double().cpu()
        writer.append(BAND_POINTS_FILE, [dict(keep, x=float(a), y=float(b)) for a, b in zip(xs, ys)])
        return
    ident = {k: base[k] for k in ("run_id", "attempt", "impl", "samples", "seed")}
    if options.ood:
        sets = input_sets(data.x_test, data.y_test, data_dir=config.data_dir, n=options.ood_examples, seed=config.seed,
                          allow_download=options.allow_download)
        rows, hists = ood_rows(trainer.predict, sets, samples, eval_gen, options.eval_rows)
        extra = {"init": base["init"], "prior_sigma": base["prior_sigma"], "test_samples": samples}
        writer.append(OOD_FILE, [dict(ident, **extra, **r) for r in rows])
        writer.append(OOD_HIST_FILE, [dict(keep, **h) for h in hists])
    if options.fgsm and not getattr(trainer.predict, "differentiable", True):
        log_note = f"{config.impl}: FGSM skipped (the library's predict gives no input gradients)"
        print(log_note, file=sys.stderr)
    elif options.fgsm:
        attack = 1 if config.impl in BASELINES else options.attack
        n = min(options.fgsm_examples, data.x_test.shape[0])
        accuracies = fgsm_accuracies(trainer.predict, data.x_test[:n], data.y_test[:n], FGSM_EPS, attack, samples,
                                     eval_gen, options.eval_rows)
        writer.append(FGSM_FILE, [dict(ident, epochs=base.get("epoch_done", config.epochs), attack_samples=attack,
                                       test_samples=samples, eps=eps, n=n, accuracy=acc)
                                  for eps, acc in zip(FGSM_EPS, accuracies)])


def run_quality(configs, options: QualityOptions, out_dir, *, resume: bool = False, argv=None,
                log: Callable[[str], None] = print) -> QualityWriter:
    """Every config without a final row, in order, in this process."""
    from bench.machine import machine_info

    writer = QualityWriter(out_dir, resume=resume)
    meta = writer.start_meta(configs=[c.to_dict() for c in configs], argv=argv, machine=machine_info(),
                             options=dataclasses.asdict(options))
    done = writer.completed()
    interrupted = True
    try:
        for config in configs:
            if quality_run_id(config, options) in done:
                log(f"{quality_run_id(config, options)}: already final, skipped")
                continue
            train_and_evaluate(config, options, writer, log=log)
        interrupted = False
    finally:
        writer.finish_meta(meta, interrupted=interrupted)
    return writer
