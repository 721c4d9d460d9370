"""Runs one config and turns whatever happens into a RunResult; also the child process's entry point.

    python -m bench.run.worker REQUEST.json RESULT.json

REQUEST holds the config, the target ("module:function", config -> RunResult) and the parent's pid.
The result goes to a file, not stdout, because measured code may print; it is written to a
temporary name and renamed, so the parent finds a whole result or none.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import shutil
import signal
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Optional

from bench.contract.config import BenchConfig
from bench.contract.errors import UsageError
from bench.contract.records import RunResult, failure_result
from bench.measure.rss import peak_rss_bytes

#: How a worker is started: in a process group of its own (a timeout or Ctrl-C kills it and all it
#: started), but in the sweep's session. Not a session of its own: with the kernel's scheduler
#: autogroups (Linux's default), every session is scheduled as one group, so a worker in a session of
#: its own got a whole group's share of the CPU against the user's other processes, and ran up to 1.7x
#: faster under load than the same config measured in the sweep's own process (`--executor inline`,
#: `train`): measured 2026-12-04 on the 2-vCPU EPYC, results/cpu/inline-vs-worker-epyc-20261204/.
OWN_PROCESS_GROUP = {"process_group": 0} if sys.version_info >= (3, 11) else {"preexec_fn": os.setpgrp}

DEFAULT_TARGET = "bench.measure.step:measure"
#: The same measurement without its untimed counting steps (later rounds, paired workers).
TIMING_ONLY_TARGET = "bench.measure.step:measure_timing_only"

#: Substrings of allocator errors that mean "out of memory" (CUDA's, and the CPU allocator's).
OOM_MESSAGES = ("out of memory", "can't allocate memory", "cannot allocate memory")


def resolve_target(spec: str) -> Callable[[BenchConfig], RunResult]:
    """`"package.module:function"` -> the function; a bad spec is a UsageError naming the format."""
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise UsageError(f"--target {spec!r} is malformed: write module:function, e.g. {DEFAULT_TARGET}")
    try:
        module = importlib.import_module(module_name)
    except ImportError as e:
        raise UsageError(f"--target {spec!r}: cannot import {module_name!r} ({e})") from None
    target = getattr(module, attr, None)
    if not callable(target):
        raise UsageError(f"--target {spec!r}: {module_name} has no function {attr!r}")
    return target


def one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def classify_exception(exc: BaseException) -> tuple[str, str]:
    """(status, message): `oom` for any out-of-memory failure, `error` for everything else."""
    message = one_line(exc)
    # torch.cuda.OutOfMemoryError is matched by name so the CPU-only parent need not import torch.
    is_oom = (
        isinstance(exc, MemoryError)
        or type(exc).__name__ == "OutOfMemoryError"
        or (isinstance(exc, RuntimeError) and any(m in str(exc).lower() for m in OOM_MESSAGES))
    )
    return ("oom" if is_oom else "error"), message


def run_config(config: BenchConfig, target: Callable[[BenchConfig], RunResult], *, isolated: bool = True) -> RunResult:
    """Call the target; exceptions become oom/error rows. Never raises (except KeyboardInterrupt/SystemExit).

    `isolated`: this process exists for this config alone, so it may cap its own address space
    (config.memory_limit_bytes) and report its own peak RSS. The inline executor passes False:
    a cap would stay on the sweep itself, and its RSS mixes every config run so far.
    """
    # On CUDA the cap is the allocator's (bench.measure.memory.cap_cuda_memory, set by the measurement):
    # an address-space cap would stop CUDA from initializing at all.
    on_cuda = str(config.device).startswith("cuda")
    limit = config.memory_limit_bytes if isolated and not on_cuda else None
    previous = _cap_address_space(limit) if limit else None
    failure = None
    try:
        result = target(config)
    except Exception as exc:  # the config failed; the sweep goes on
        failure = classify_exception(exc)
    finally:
        if previous is not None:
            resource.setrlimit(resource.RLIMIT_AS, previous)  # room to build and serialize the row
    # The row is built only here, after the except block has dropped the traceback and with it the
    # failed frames' memory: building it inside, under the cap, could itself run out of memory.
    if failure is not None:
        status, message = failure
        if status == "oom" and limit:
            message += f" (under the address-space cap of {limit / 2**30:.2f} GiB, --memory-limit)"
        result = failure_result(config, status, message)
    elif not isinstance(result, RunResult):
        result = failure_result(config, "error", f"target returned {type(result).__name__}, not a RunResult")
    if isolated and result.row.get("rss_peak_bytes") in (None, ""):
        result = RunResult(row=dict(result.row, rss_peak_bytes=peak_rss_bytes()), repeats=result.repeats,
                           op_counts=result.op_counts, rounds=result.rounds)
    return result


def run_config_job(config_dict: dict, target_spec: str) -> RunResult:
    """Entry point of a submitit job: the job's process is the config's own, as with the local executor."""
    config = BenchConfig.from_dict(config_dict)
    try:
        target = resolve_target(target_spec)
    except UsageError as e:
        return failure_result(config, "error", str(e))
    return run_config(config, target, isolated=True)


def _cap_address_space(limit: int) -> tuple[int, int]:
    """Lower the soft RLIMIT_AS (the hard one stays, so it can be restored); returns the previous limits."""
    previous = resource.getrlimit(resource.RLIMIT_AS)
    hard = previous[1]
    soft = limit if hard == resource.RLIM_INFINITY else min(limit, hard)
    resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
    return previous


# ---------------------------------------------------------------------------------------------
# (De)serialization between the child and the sweep


def _json_default(value):
    if hasattr(value, "item"):  # numpy scalars, 0-d tensors
        return value.item()
    return str(value)


def result_to_json(result: RunResult) -> str:
    return json.dumps({"row": result.row, "repeats": [list(r) for r in result.repeats], "op_counts": result.op_counts,
                       "rounds": list(result.rounds)}, default=_json_default)


def result_from_json(text: str) -> RunResult:
    data = json.loads(text)
    return RunResult(row=data["row"], repeats=tuple((float(s), int(n)) for s, n in data["repeats"]),
                     op_counts=data.get("op_counts"), rounds=tuple(int(r) for r in data.get("rounds") or ()))


def write_result(path: Path, result: RunResult) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(result_to_json(result))
    os.replace(tmp, path)


def _is_alive(pid: int) -> bool:
    """Whether pid runs (a zombie does not: a SIGKILLed sweep stays one until its shell reaps it)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def die_with_parent(parent_pid: Optional[int], work_dir: Path, poll_s: float = 0.2, *, forked: bool = False) -> None:
    """Kill this process group (the config and anything it started) once the sweep is gone.

    A SIGKILLed sweep cannot clean up after itself: a config left running would load the machine
    under the next run's timings, and the sweep's scratch directory for it would stay behind. A
    daemon thread notices the reparenting; it runs even while the main thread is inside a torch op
    (those release the GIL). A worker `forked` from the fork server is not the sweep's child (and
    the server outlives the sweep while it has a worker), so it watches the sweep's pid instead.
    """
    if parent_pid is None:
        return

    def sweep_alive() -> bool:
        return _is_alive(parent_pid) if forked else os.getppid() == parent_pid

    def watch():
        while sweep_alive():
            time.sleep(poll_s)
        shutil.rmtree(work_dir, ignore_errors=True)
        if os.getpgrp() == os.getpid():  # our own group (LocalExecutor starts us as its leader)
            os.killpg(os.getpgrp(), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)

    threading.Thread(target=watch, name="die-with-sweep", daemon=True).start()


def forked_worker(request: str, result: str, log: str, env: dict) -> None:
    """The worker's entry point in a process forked from LocalExecutor's fork server: what
    `python -m bench.run.worker` gets from a fresh exec (its own process group, output to the log, the
    sweep's environment and PYTHONPATH), then the same main."""
    os.setpgid(0, 0)  # its own process group, in the sweep's session (see OWN_PROCESS_GROUP)
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    os.environ.clear()
    os.environ.update(env)
    for path in reversed([p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]):
        if path not in sys.path:
            sys.path.insert(0, path)
    sys.exit(main([request, result], forked=True))


def main(argv=None, forked: bool = False) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2:
        print("usage: python -m bench.run.worker REQUEST.json RESULT.json", file=sys.stderr)
        return 2
    request = json.loads(Path(argv[0]).read_text())
    die_with_parent(request.get("parent_pid"), Path(argv[0]).parent, forked=forked)
    config = BenchConfig.from_dict(request["config"])
    try:
        target = resolve_target(request.get("target") or DEFAULT_TARGET)
    except UsageError as e:
        result = failure_result(config, "error", str(e))
    else:
        result = run_config(config, target, isolated=True)
    write_result(Path(argv[1]), result)
    return 0


if __name__ == "__main__":
    sys.exit(main())
