"""The outcome of one config: a runs.csv row plus its timed repeats."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

from bench.contract.config import BenchConfig
from bench.contract.provenance import cpu_model, git_commit, now_iso
from bench.contract.schema import RUNS_COLUMNS


@dataclass(frozen=True)
class RunResult:
    row: dict  # keys: a subset of RUNS_COLUMNS; missing ones are written empty
    repeats: tuple = field(default=())  # ((seconds, steps), ...) in the order they were timed
    op_counts: Optional[dict] = None  # ATen operator name -> count in one step (bench/measure/counters.py), for ops.csv
    rounds: tuple = field(default=())  # interleaved rounds (bench/run/rounds.py): the round of each repeat


def config_columns(config: BenchConfig) -> dict:
    """The runs.csv columns that come from the config alone (identical for ok and failed rows)."""
    return {
        "run_id": config.run_id,
        "impl": config.impl,
        "task": config.task,
        "kl": config.kl,
        "prior": config.prior,
        "n_mc": config.n_mc,
        "samples": config.samples,
        "batch_size": config.batch_size,
        "device": config.device,
        "dtype": config.dtype,
        "threads": config.threads,
        "seed": config.seed,
        "warmup_steps": config.warmup_steps,
        "data": config.data,
        "model": config.model,
        "cpu_model": cpu_model(),
        "git_commit": git_commit(),
        "timestamp": now_iso(),
        "prior_sigma": config.prior_sigma,
        "mixture_pi": config.mixture_pi,
        "mixture_sigma1": config.mixture_sigma1,
        "mixture_sigma2": config.mixture_sigma2,
        "step_mode": config.step_mode,
        "precision": config.precision,
        "optimizer": config.optimizer,
        "init": config.init,
        "init_sigma": config.init_sigma,
    }


def failure_result(config: BenchConfig, status: str, message: str) -> RunResult:
    """A final row for a config that did not produce a measurement (oom, timeout, error, skipped)."""
    assert status in ("oom", "timeout", "error", "skipped"), status
    row = config_columns(config)
    row.update(status=status, error=" ".join(str(message).split())[:500], repeats=0)
    return RunResult(row=row, repeats=())


__all__ = ["RunResult", "config_columns", "failure_result", "RUNS_COLUMNS"]
