"""Executors: config -> RunResult, each config isolated as far as the executor can.

- `LocalExecutor` (the default): a fresh process per config, in its own process group, so the
  allocator and peak RSS start clean and an OOM, a segfault or a hang costs only that config.
  Where the OS has it, the process is forked from a server that has already imported torch
  (multiprocessing's forkserver): `import torch` takes ~3.3 s on a 2-core VM, more than a short
  config's whole measurement, and the default job runs 36 of them. The server only imports; it
  never runs an op, so no thread pool or CUDA context is forked. `BNN_BENCH_WORKER_START=exec`
  (or `start="exec"`) runs `python -m bench.run.worker` from scratch instead.
- `InlineExecutor`: the target called in this process; for tests and debugging.
- `SlurmExecutor`: one submitit job per config, for sweeps larger than one machine.

All of them return a final row for every config; none raises for a config's own failure.
"""

from __future__ import annotations

import json
import math
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Optional, Protocol, Union

from bench.contract.config import BenchConfig
from bench.contract.errors import UsageError
from bench.contract.provenance import CODE_ROOT
from bench.contract.records import RunResult, failure_result
from bench.run.worker import (
    DEFAULT_TARGET,
    OWN_PROCESS_GROUP,
    forked_worker,
    resolve_target,
    result_from_json,
    run_config,
    run_config_job,
)

EXECUTORS = ("local", "inline", "slurm")
WORKER_STARTS = ("forkserver", "exec")
#: What the fork server imports once, before it forks any worker: the slow part of a worker's start.
#: torch._dynamo: 2 s more, pulled in by torch.func. The worker and the default target's modules
#: (bench, bnn_impls): another ~0.14 s per worker on the 2-vCPU EPYC (timed by hand), 44 workers in the default job;
#: importing them runs no torch op and starts no thread (tests/test_executors.py checks), so the
#: server still forks no thread pool. A missing module is skipped by multiprocessing, not an error.
FORKSERVER_PRELOAD = ("torch", "torch._dynamo", "torch.func", "bench.run.worker", DEFAULT_TARGET.partition(":")[0])


def default_worker_start() -> str:
    start = os.environ.get("BNN_BENCH_WORKER_START", "").strip() or "forkserver"
    if start not in WORKER_STARTS:
        raise UsageError(f"BNN_BENCH_WORKER_START={start!r}: choose one of {', '.join(WORKER_STARTS)}")
    if start == "forkserver" and "forkserver" not in multiprocessing.get_all_start_methods():
        return "exec"  # Windows: no fork
    return start


_FORKSERVER = None


def _forkserver_context():
    """The one forkserver context of this process, its preload set before its server starts."""
    global _FORKSERVER
    if _FORKSERVER is None:
        ctx = multiprocessing.get_context("forkserver")
        ctx.set_forkserver_preload(list(FORKSERVER_PRELOAD))
        _FORKSERVER = ctx
    return _FORKSERVER


class Executor(Protocol):
    def run(self, config: BenchConfig) -> RunResult: ...


def timeout_message(seconds: float) -> str:
    return f"exceeded the timeout of {seconds:g} s: raise --timeout, or lower the steps or epochs per repeat"


def effective_timeout(config: BenchConfig, default: Optional[float]) -> Optional[float]:
    return config.timeout_s if config.timeout_s is not None else default


# ---------------------------------------------------------------------------------------------


class InlineExecutor:
    """Runs the target in this process. No isolation: no memory cap, RSS not recorded.

    A timeout is enforced with SIGALRM where that is possible (main thread, Unix); the target is
    interrupted wherever it is, which is fine for tests and debugging, the only uses of this executor.
    """

    def __init__(self, target: Union[str, Callable] = DEFAULT_TARGET, timeout: Optional[float] = None):
        self.target = resolve_target(target) if isinstance(target, str) else target
        self.timeout = timeout

    def run(self, config: BenchConfig) -> RunResult:
        timeout = effective_timeout(config, self.timeout)
        can_alarm = (timeout is not None and hasattr(signal, "setitimer")
                     and threading.current_thread() is threading.main_thread())
        if not can_alarm:
            return run_config(config, self.target, isolated=False)

        def on_alarm(signum, frame):
            raise _InlineTimeout()

        previous = signal.signal(signal.SIGALRM, on_alarm)
        signal.setitimer(signal.ITIMER_REAL, timeout)
        try:
            return run_config(config, self.target, isolated=False)
        except _InlineTimeout:
            return failure_result(config, "timeout", timeout_message(timeout))
        finally:
            signal.setitimer(signal.ITIMER_REAL, 0)
            signal.signal(signal.SIGALRM, previous)


class _InlineTimeout(BaseException):
    """BaseException so the target's (and run_config's) `except Exception` cannot swallow it."""


# ---------------------------------------------------------------------------------------------


def child_environment(base: Optional[dict] = None) -> dict:
    """The parent's environment with the project root first on PYTHONPATH: a plain checkout works
    without installation, and modules beside it (`tests.fakes`) import in the child."""
    env = dict(os.environ if base is None else base)
    parts = [str(CODE_ROOT)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(parts))
    return env


def _last_line(path: Path, limit: int = 300) -> str:
    try:
        lines = [line.strip() for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        return ""
    return lines[-1][:limit] if lines else ""


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return f"signal {number}"


class LocalExecutor:
    """One fresh worker process per config (see module docstring).

    The child's stdout and stderr go to a log file, not the terminal: measured code may print,
    and the progress bar owns the terminal. The log's last line goes into the row of a crash.
    """

    def __init__(self, target: str = DEFAULT_TARGET, timeout: Optional[float] = None, *, env: Optional[dict] = None,
                 kill_grace_s: float = 5.0, start: Optional[str] = None):
        if not isinstance(target, str):
            raise TypeError("LocalExecutor needs the target as 'module:function', importable in the child")
        self.target = target
        self.timeout = timeout
        self.env = child_environment(env)
        self.kill_grace_s = kill_grace_s
        self.start = start or default_worker_start()
        if self.start not in WORKER_STARTS:
            raise UsageError(f"unknown worker start {self.start!r}: choose one of {', '.join(WORKER_STARTS)}")

    def run(self, config: BenchConfig) -> RunResult:
        timeout = effective_timeout(config, self.timeout)
        with tempfile.TemporaryDirectory(prefix="bnn-bench-") as work:
            work = Path(work)
            request, result_path, log_path = work / "request.json", work / "result.json", work / "child.log"
            request.write_text(json.dumps({"config": config.to_dict(), "target": self.target,
                                           "parent_pid": os.getpid()}))
            run = self._run_forked if self.start == "forkserver" else self._run_exec
            returncode = run(request, result_path, log_path, timeout)
            if returncode is None:
                return failure_result(config, "timeout", timeout_message(timeout))
            return result_of_exit(config, returncode, result_path, log_path)

    def _run_exec(self, request: Path, result_path: Path, log_path: Path, timeout: Optional[float]) -> Optional[int]:
        """The worker's exit status, or None after a timeout (the worker and its group killed)."""
        with open(log_path, "wb") as log:
            child = subprocess.Popen(
                [sys.executable, "-m", "bench.run.worker", str(request), str(result_path)],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=self.env,
                **OWN_PROCESS_GROUP,  # a timeout kills it and all it started; the sweep's session (worker.py)
            )
            try:
                return child.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self._kill_group(child)
                return None
            except BaseException:  # Ctrl-C: do not leave the config running behind the sweep
                self._kill_group(child)
                raise
            finally:
                kill_group(child.pid)  # anything the child left running in its group

    def _run_forked(self, request: Path, result_path: Path, log_path: Path, timeout: Optional[float]) -> Optional[int]:
        """As _run_exec, the worker forked from the torch-preloaded server (it makes its own process group)."""
        child = _forkserver_context().Process(
            target=forked_worker, args=(str(request), str(result_path), str(log_path), self.env),
            name="bnn-bench-worker")
        child.start()
        try:
            child.join(timeout)
            if child.exitcode is None:
                self._kill_forked(child)
                return None
            return child.exitcode
        except BaseException:
            self._kill_forked(child)
            raise
        finally:
            kill_group(child.pid)

    def _kill_forked(self, child) -> None:
        kill_group(child.pid)  # its group, once it has made one
        if child.is_alive():
            child.kill()  # it had not: the process itself
        child.join(self.kill_grace_s)

    def _kill_group(self, child: subprocess.Popen) -> None:
        kill_group(child.pid)
        try:
            child.wait(timeout=self.kill_grace_s)
        except subprocess.TimeoutExpired:  # unkillable (D state): do not hang the sweep on it
            pass


def kill_group(pgid: int) -> None:
    try:
        os.killpg(pgid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def result_of_exit(config: BenchConfig, returncode: int, result_path: Path, log_path: Path) -> RunResult:
    """A worker's row from how it ended: its own result file, or its exit status and last log line."""
    if returncode == 0 and result_path.exists():
        try:
            return result_from_json(result_path.read_text())
        except (ValueError, KeyError, TypeError) as e:
            return failure_result(config, "error", f"unreadable result from the worker: {e}")
    if returncode == -signal.SIGKILL:
        # Nobody here sent it (a timeout returns above): on Linux that is the OOM killer.
        return failure_result(config, "oom", "killed by SIGKILL, likely the out-of-memory killer")
    if returncode < 0:
        detail = _last_line(log_path)
        return failure_result(config, "error",
                              f"killed by {_signal_name(-returncode)}" + (f": {detail}" if detail else ""))
    detail = _last_line(log_path)
    return failure_result(config, "error",
                          f"worker exited with status {returncode}" + (f": {detail}" if detail else ""))


# ---------------------------------------------------------------------------------------------


class SlurmExecutor:
    """One submitit job per config; `executor` defaults to `submitit.AutoExecutor(folder)` (Slurm
    where present), tests pass `submitit.LocalExecutor(folder)`. `slurm_params` go to
    `update_parameters` (partition, gpus_per_node, ...). The job runs the worker function in its
    own process, so the isolation is the local executor's."""

    def __init__(self, folder, executor=None, *, target: str = DEFAULT_TARGET, timeout: Optional[float] = None,
                 poll_s: float = 1.0, **slurm_params):
        try:
            import submitit
        except ImportError:
            raise UsageError("the slurm executor needs submitit: pip install 'bnn-bench[slurm]'") from None
        self._submitit = submitit
        self.folder = Path(folder)
        self._executor = executor
        self.slurm_params = slurm_params
        self.target = target
        self.timeout = timeout
        self.poll_s = poll_s
        # The job's interpreter must import `bench` from this checkout (and `tests.fakes` in tests).
        os.environ.update(PYTHONPATH=child_environment()["PYTHONPATH"])

    @property
    def executor(self):
        """Made on first use: AutoExecutor creates its folder, which must not appear before the
        sweep has checked that its results directory is new or resumable."""
        if self._executor is None:
            self._executor = self._submitit.AutoExecutor(folder=str(self.folder))
        if self.slurm_params:
            self._executor.update_parameters(**self.slurm_params)
            self.slurm_params = {}
        return self._executor

    def run(self, config: BenchConfig) -> RunResult:
        timeout = effective_timeout(config, self.timeout)
        if timeout is not None:
            # The scheduler's own limit is a backstop one minute past ours; ours is the one that writes the row.
            self.executor.update_parameters(timeout_min=int(math.ceil(timeout / 60)) + 1)
        job = self.executor.submit(run_config_job, config.to_dict(), self.target)
        # A queued job is not running: the timeout counts from the moment it starts.
        started = None
        try:
            while not job.done():
                if started is None and job.state not in ("PENDING", "UNKNOWN", "QUEUED", "REQUEUED"):
                    started = time.monotonic()
                if timeout is not None and started is not None and time.monotonic() - started > timeout:
                    job.cancel(check=False)
                    return failure_result(config, "timeout", timeout_message(timeout))
                time.sleep(self.poll_s)
            result = job.result()
        except KeyboardInterrupt:
            job.cancel(check=False)
            raise
        except Exception as e:  # the job died (node failure, OOM kill, cancelled): a row, not a crash
            text = " ".join(str(e).split())
            # Slurm reports its memory kills as the job state OUT_OF_MEMORY.
            status = "oom" if any(m in text.lower() for m in ("out of memory", "out_of_memory")) else "error"
            return failure_result(config, status, f"slurm job {job.job_id} failed ({type(e).__name__}): {text[:300]}")
        if not isinstance(result, RunResult):
            return failure_result(config, "error", f"slurm job returned {type(result).__name__}, not a RunResult")
        return result


def make_executor(name: str, *, target: str = DEFAULT_TARGET, timeout: Optional[float] = None,
                  folder=None) -> Executor:
    """The executor a `--executor` name asks for; `folder` is where slurm keeps its job files."""
    if name == "local":
        return LocalExecutor(target, timeout)
    if name == "inline":
        return InlineExecutor(target, timeout)
    if name == "slurm":
        return SlurmExecutor(folder or "slurm", target=target, timeout=timeout)
    raise UsageError(f"unknown executor {name!r}: choose one of {', '.join(EXECUTORS)}")
