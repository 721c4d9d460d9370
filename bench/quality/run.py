"""Train one config for E epochs and measure, after every epoch and outside the timed region, how good
the model is; after the last epoch, its uncertainty on shifted and OOD inputs, its accuracy under
FGSM and (regression) its predictive band. Rows go to a quality results directory as they are made.

Timing: each epoch's training steps are one `time_block` (the synchronized clock of
bench/measure/timing.py); evaluation runs after the clock stopped, on its own random stream, so a
quality run trains exactly the model a run without evaluation would (same draws, same steps) and
`train_s` holds training time only.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import time
from dataclasses import dataclass
from typing import Callable, Optional

import torch

import bnn_impls as B
from bench.contract.config import BenchConfig
from bench.contract.files import WriteFailed
from bench.contract.provenance import cpu_model, git_commit, now_iso
from bench.contract.quality_schema import (
    BAND_FILE,
    BAND_POINTS_FILE,
    BASELINES,
    FGSM_FILE,
    OOD_FILE,
    OOD_HIST_FILE,
    QUALITY_FILE,
)
from bench.contract.quality_store import QualityWriter
from bench.measure.machine import device_name, machine_info
from bench.measure.timing import time_block
from bench.quality.evaluate import (
    FGSM_EPS,
    evaluate_classification,
    evaluate_regression,
    fgsm_accuracies,
    ood_rows,
    regression_band,
)
from bench.quality.trainer import Trainer, build_trainer
from bench.run.worker import classify_exception
from bnn_impls.ood_data import input_sets

#: Seed offset of the evaluation's random stream, so evaluating never moves the training's draws.
EVAL_SEED_OFFSET = 1_000_003


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
                       clock: Optional[Callable[[], float]] = None,
                       log: Callable[[str], None] = lambda s: None) -> None:
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
        device = torch.device(config.device)
        trainer = build_trainer(config)
        base.update(kl=trainer.kl, batch_size=trainer.batch_size, lr=trainer.lr, device_name=device_name(config.device),
                    steps_per_epoch=trainer.steps_per_epoch)
        eval_gen = torch.Generator(device).manual_seed(config.seed + EVAL_SEED_OFFSET)
        samples = 1 if config.impl in BASELINES else options.test_samples
        data, train_s = trainer.data, 0.0
        for epoch in range(1, config.epochs + 1):
            loss_sum = []
            seconds = time_block(lambda sums=loss_sum: sums.append(trainer.run_epoch()), clock=clock)
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
            status, error = "ok", ""
            if last:
                try:
                    post_training(config, options, trainer, writer, dict(base, epoch_done=epoch), samples, eval_gen)
                except WriteFailed:
                    raise
                except Exception as exc:  # OOD or FGSM failed: keep this epoch's metrics in the final row
                    status, message = classify_exception(exc)
                    error = f"after training, OOD/FGSM/band failed: {message}"[:500]
                    log(f"{run_id}: {status}: {error}")
            row = dict(base, status=status, error=error, epoch=epoch, final=last, steps=epoch * trainer.steps_per_epoch,
                       epoch_train_s=seconds, train_s=train_s, eval_s=time.perf_counter() - started,
                       train_loss=float(loss_sum[0]) / trainer.steps_per_epoch, timestamp=now_iso(), **quality)
            writer.append(QUALITY_FILE, [row])
            log(f"{run_id} epoch {epoch}: " + ", ".join(f"{k} {v:.4g}" for k, v in quality.items())
                + f", train {train_s:.1f} s")
            if last:
                return
    except WriteFailed:
        raise  # the disk, not the config: the run stops with one line (rows written so far stay)
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
    if options.fgsm and not trainer.differentiable:
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


def run_quality(configs, options: QualityOptions, out_dir, *, resume: bool = False, retry_errors: bool = False,
                argv=None, log: Callable[[str], None] = print) -> QualityWriter:
    """Every config without a final row, in order, in this process."""
    writer = QualityWriter(out_dir, resume=resume)
    for path, removed in writer.repaired.items():
        log(f"note: {path} ended in a torn line ({removed} bytes, a write a crash cut short): cut off before "
            "resuming")
    meta = writer.start_meta(configs=[c.to_dict() for c in configs], argv=argv, machine=machine_info(),
                             options=dataclasses.asdict(options))
    done = writer.completed(retry_errors=retry_errors)
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
