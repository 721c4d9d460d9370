"""A sweep: every config of a grid through an executor into a results directory, one row each.

The loop is deliberately dumb: skip what is final, run the rest in order, write each result the
moment it arrives. A config's failure is a row; only Ctrl-C (after the executor killed the running
child) stops the loop, and what was written stays.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Optional, Sequence, Union

from bench.config import BenchConfig
from bench.executors import Executor, make_executor
from bench.machine import machine_info
from bench.progress import Progress
from bench.result import failure_result
from bench.errors import UsageError
from bench.results import ResultsWriter
from bench.rounds import run_rounds
from bench.worker import DEFAULT_TARGET, one_line


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
) -> Path:
    """Run every config without a final row in `out_dir`; returns `out_dir`.

    `executor` is a name (local, inline, slurm; built with `target`) or an Executor instance.
    `rounds`: time the configs in that many interleaved rounds (bench/rounds.py) instead of one
    after another; needs the local executor (each config keeps its own process).
    Raises UsageError before running anything if the directory is unusable (exists without
    `resume`, unwritable, corrupt on resume).
    """
    out_dir = Path(out_dir)
    if rounds is not None and executor != "local":
        raise UsageError("--rounds needs --executor local: each config keeps its own worker process")
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

            run_rounds(todo, rounds, round_seed, workers=round_workers, target=target, write=write)
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
