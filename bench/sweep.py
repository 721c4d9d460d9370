"""A sweep: every config of a grid through an executor into a results directory, one row each.

The loop is deliberately dumb: skip what is final, run the rest in order, write each result the
moment it arrives. A config's failure is a row; only Ctrl-C (after the executor killed the running
child) stops the loop, and what was written stays.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Optional, Sequence, Union

from bench.config import BenchConfig
from bench.executors import Executor, make_executor
from bench.machine import machine_info
from bench.progress import Progress
from bench.result import failure_result
from bench.errors import UsageError
from bench.results import ResultsWriter
from bench.rounds import run_rounds
from bench.worker import DEFAULT_TARGET, one_line

if TYPE_CHECKING:
    from bench.base_tree import BaseTree


def run_sweep(
    configs: Sequence[BenchConfig],
    out_dir,
    *,
    executor: Union[str, Executor] = "local",
    resume: bool = False,
    profile: Optional[str] = None,
    argv: Optional[Sequence[str]] = None,
    progress: bool = True,
    target: str = DEFAULT_TARGET,
    rounds: Optional[int] = None,
    round_seed: int = 0,
    round_workers: str = "warm",
    paired: Optional[BaseTree] = None,
    base_plugins: Optional[str] = None,
) -> Path:
    """Run every config without a final row in `out_dir`; returns `out_dir`.

    `executor` is a name (local, inline, slurm; built with `target`) or an Executor instance.
    `rounds`: time the configs in that many interleaved rounds (bench/rounds.py) instead of one
    after another; needs the local executor (each config keeps its own process).
    `paired`: also time every config with the code of another commit (bench/base_tree.py), each
    pair back to back in every round; its rows go to `out_dir/base/` (needs rounds, warm workers,
    no resume). `base_plugins`: what BNN_BENCH_PLUGINS is on that side (default none).
    Raises UsageError before running anything if the directory is unusable (exists without
    `resume`, unwritable, corrupt on resume).
    """
    out_dir = Path(out_dir)
    if rounds is not None and executor != "local":
        raise UsageError("--rounds needs --executor local: each config keeps its own worker process")
    if paired is not None and (rounds is None or round_workers != "warm" or resume):
        raise UsageError("paired timing needs interleaved rounds with warm workers and a fresh directory")
    executor_name = executor if isinstance(executor, str) else type(executor).__name__
    if isinstance(executor, str):  # built first: a bad executor must fail before the directory exists
        executor = make_executor(executor, target=target, folder=out_dir / "slurm")
    writer = ResultsWriter(out_dir, resume=resume)
    meta = writer.start_meta(configs=configs, profile=profile, argv=argv if argv is not None else sys.argv,
                             machine=machine_info(), executor=executor_name)
    done = writer.completed_run_ids()
    todo = [c for c in configs if c.run_id not in done]
    bar = Progress(len(todo), already_done=len(configs) - len(todo), enabled=progress)
    interrupted = True
    if rounds is not None:
        meta = writer.record_rounds(meta, rounds=rounds, seed=round_seed, workers=round_workers)
    try:
        if rounds is not None:
            def write(result):
                writer.append(result)
                bar.update(next(c for c in todo if c.run_id == result.row["run_id"]), result)

            if paired is None:
                run_rounds(todo, rounds, round_seed, workers=round_workers, target=target, write=write)
            else:
                from bench.rounds import paired_worker_settings
                meta = dict(meta, **paired_worker_settings())
                _run_paired(todo, out_dir, paired, rounds, round_seed, target, write, base_plugins, profile, argv)
            todo = []
        for config in todo:
            try:
                result = executor.run(config)
            except Exception as e:  # an executor bug must cost one config, not the sweep
                result = failure_result(config, "error", f"executor failed: {one_line(e)}")
            writer.append(result)
            bar.update(config, result)
        interrupted = False
    finally:
        bar.close()
        writer.finish_meta(meta, interrupted=interrupted)
    return out_dir


def _run_paired(configs, out_dir: Path, paired, rounds, seed, target, write, base_plugins, profile, argv) -> None:
    from bench.rounds import paired_worker_settings, repeats_per_round, run_rounds_paired

    for config in configs:
        repeats_per_round(config.repeats, rounds)
    base_writer = ResultsWriter(out_dir / "base")
    machine = dict(machine_info(), git_commit=paired.commit)
    meta = base_writer.start_meta(configs=configs, profile=profile, argv=argv if argv is not None else sys.argv,
                                  machine=machine, executor="local")
    meta = base_writer.record_rounds(meta, rounds=rounds, seed=seed, workers="warm")
    meta = dict(meta, code_root=str(paired.root), plugins=base_plugins or "", **paired_worker_settings())

    def write_base(result):
        base_writer.append(dataclasses.replace(result, row=dict(result.row, git_commit=paired.commit)))

    interrupted = True
    try:
        run_rounds_paired(configs, rounds, seed, base_root=paired.root, target=target, timeout=None, write=write,
                          write_base=write_base, base_plugins=base_plugins)
        interrupted = False
    finally:
        base_writer.finish_meta(meta, interrupted=interrupted)
