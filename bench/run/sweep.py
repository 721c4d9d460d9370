"""A sweep: every config of a grid through an executor into a results directory, one row each.

The loop is deliberately dumb: skip what is final, run the rest in order, write each result the
moment it arrives. A config's failure is a row; only Ctrl-C (after the executor killed the running
child) stops the loop, and what was written stays.
"""

from __future__ import annotations

import contextlib
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence, Union

from bench.contract.config import BenchConfig
from bench.contract.errors import UsageError
from bench.contract.files import DISK_ERRNOS, write_failed
from bench.contract.records import RunResult, failure_result
from bench.contract.store import ResultsWriter
from bench.measure.ceiling import calibration_meta
from bench.measure.machine import machine_info
from bench.run.executors import Executor, make_executor
from bench.run.progress import Progress
from bench.run.rounds import run_rounds
from bench.run.worker import DEFAULT_TARGET, one_line


@dataclass
class SweepSession:
    """An open results directory: the configs still to run, and where each result goes."""

    writer: ResultsWriter
    meta: dict
    todo: list
    bar: Progress

    def write(self, result: RunResult) -> None:
        """Append one final row (and its repeats and counters), then tell the progress bar."""
        self.writer.append(result)
        config = next((c for c in self.todo if c.run_id == result.row["run_id"]), None)
        if config is not None:
            self.bar.update(config, result)


@contextlib.contextmanager
def sweep_session(configs: Sequence[BenchConfig], out_dir, *, resume: bool, profile: Optional[str],
                  argv: Sequence[str], executor_name: str, progress: bool = True, rounds: Optional[int] = None,
                  round_seed: int = 0, round_workers: str = "warm", retry_errors: bool = False,
                  extra_meta: Optional[dict] = None) -> Iterator[SweepSession]:
    """Open `out_dir` (fresh, or validated for `resume`), record the grid and the machine in meta.json,
    and on leaving record the end time, marking it interrupted where the block did not finish.
    Raises UsageError before anything runs if the directory is unusable."""
    writer = ResultsWriter(Path(out_dir), resume=resume)
    for path, removed in writer.repaired.items():
        print(f"note: {path} ended in a torn line ({removed} bytes, a write a crash cut short): cut off before "
              "resuming", file=sys.stderr)
    meta = writer.start_meta(configs=configs, profile=profile, argv=argv, machine=machine_info(),
                             executor=executor_name)
    done = writer.completed_run_ids(retry_errors=retry_errors)
    todo = [c for c in configs if c.run_id not in done]
    session = SweepSession(writer, meta, todo, Progress(len(todo), already_done=len(configs) - len(todo),
                                                        enabled=progress))
    if rounds is not None:
        session.meta = writer.record_rounds(meta, rounds=rounds, seed=round_seed, workers=round_workers)
    session.meta = dict(session.meta, **(extra_meta or {}))
    interrupted = True
    try:
        yield session
        interrupted = False
        # The machine's matmul rate at the grid's settings, measured once (bench/measure/ceiling.py),
        # at the end: at the start a torch-preloading fork server and the first workers start beside
        # it (two runs of one grid read 104 and 194 GFLOP/s). Each row's own ceiling is measured by
        # its worker at the step's shapes.
        session.meta = dict(session.meta, ceiling=calibration_meta(configs))
    finally:
        session.bar.close()
        writer.finish_meta(session.meta, interrupted=interrupted)


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
    retry_errors: bool = False,
) -> Path:
    """Run every config without a final row in `out_dir`; returns `out_dir`.

    `executor` is a name (local, inline, slurm; built with `target`) or an Executor instance.
    `rounds`: time the configs in that many interleaved rounds (bench/run/rounds.py) instead of one
    after another; needs the local executor (each config keeps its own process). `retry_errors` (with
    `resume`): run again the configs whose final row is an `error`. Timing beside another commit's code
    is bench/gate/paired.py's `run_paired_sweep`.
    """
    out_dir = Path(out_dir)
    if rounds is not None and executor != "local":
        raise UsageError("--rounds needs --executor local: each config keeps its own worker process")
    executor_name = executor if isinstance(executor, str) else type(executor).__name__
    if isinstance(executor, str):  # built first: a bad executor must fail before the directory exists
        executor = make_executor(executor, target=target, folder=out_dir / "slurm")
    with sweep_session(configs, out_dir, resume=resume, profile=profile,
                       argv=list(argv if argv is not None else sys.argv), executor_name=executor_name,
                       progress=progress, rounds=rounds, round_seed=round_seed, round_workers=round_workers,
                       retry_errors=retry_errors) as session:
        if rounds is not None:
            run_rounds(session.todo, rounds, round_seed, workers=round_workers, target=target, write=session.write)
            return out_dir
        for config in session.todo:
            try:
                result = executor.run(config)
            except OSError as e:
                if e.errno in DISK_ERRNOS:  # its scratch files: the disk, not the config, is the problem
                    raise write_failed(e.filename or tempfile.gettempdir(), None, e) from None
                result = failure_result(config, "error", f"executor failed: {one_line(e)}")
            except Exception as e:  # an executor bug must cost one config, not the sweep
                result = failure_result(config, "error", f"executor failed: {one_line(e)}")
            session.write(result)
    return out_dir
