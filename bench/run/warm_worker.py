"""A warm worker: one config's persistent process, timed one repeat at a time over a pipe.

Both ends of its protocol live here (bench/gate/protocol.py versions it, because the gate starts
workers inside other commits' code):

    python -m bench.run.warm_worker REQUEST.json RESULT.json ANSWER_FD

REQUEST holds {"protocol": 2, "config": {...}, "target": "module:function", "parent_pid": N}. The
worker builds its config (counters, warm-up), writes "ready" to ANSWER_FD, then for every "go" on its
stdin times one repeat and answers "done SECONDS STEPS". After its last repeat it writes its whole
result to RESULT (renamed into place) and exits.
"""

from __future__ import annotations

import json
import os
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

from bench.contract.config import BenchConfig
from bench.contract.errors import UsageError
from bench.contract.records import RunResult, failure_result
from bench.run.executors import effective_timeout, kill_group, result_of_exit, timeout_message
from bench.run.worker import (
    DEFAULT_TARGET,
    OWN_PROCESS_GROUP,
    die_with_parent,
    resolve_target,
    run_config,
    write_result,
)

#: The version of the request and pipe protocol above. A request from a newer gate is refused (its
#: row says so) rather than half understood.
PROTOCOL_VERSION = 2
#: What `python -m` runs in a tree of this protocol.
MODULE = "bench.run.warm_worker"


# -- the worker's side -------------------------------------------------------------------------


class PipePacer:
    """The worker's end of the protocol; a bench.measure.step.Pacer."""

    def __init__(self, commands, answers):
        self._commands, self._answers = commands, answers
        self._ready_sent = False

    def _say(self, text: str) -> None:
        self._answers.write(text + "\n")
        self._answers.flush()

    def before_repeat(self, index: int) -> None:
        if not self._ready_sent:
            self._say("ready")
            self._ready_sent = True
        line = self._commands.readline()
        if line.strip() != "go":  # the sweep is gone or gave up on us: stop quietly
            raise SystemExit(0)

    def after_repeat(self, index: int, seconds: float, steps: int) -> None:
        self._say(f"done {seconds!r} {steps}")


def worker_main(argv: Sequence[str]) -> int:
    """The worker process: REQUEST.json RESULT.json ANSWER_FD."""
    request_path, result_path, answer_fd = Path(argv[0]), Path(argv[1]), int(argv[2])
    request = json.loads(request_path.read_text())
    die_with_parent(request.get("parent_pid"), request_path.parent)
    config = BenchConfig.from_dict(request["config"])
    answers = os.fdopen(answer_fd, "w")
    pacer = PipePacer(sys.stdin, answers)
    version = request.get("protocol", PROTOCOL_VERSION)
    try:
        if not isinstance(version, int) or version > PROTOCOL_VERSION:
            raise UsageError(f"worker protocol {version!r} is newer than this tree's {PROTOCOL_VERSION}: "
                             "pair with a newer commit")
        target = resolve_target(request.get("target") or DEFAULT_TARGET)
    except UsageError as e:
        result = failure_result(config, "error", str(e))
    else:
        result = run_config(config, lambda c: target(c, pacer=pacer), isolated=True)
    write_result(result_path, result)
    answers.close()
    return 0


# -- the sweep's side ---------------------------------------------------------------------------


class WorkerGone(Exception):
    """The worker closed its pipe (it exited) or did not answer in time."""


class WarmWorker:
    """The sweep's handle on one warm worker. `module` and `cwd`: where its code is (another commit's
    tree for the base side of a paired run, bench/gate/protocol.py); `cpus`: its CPU affinity."""

    def __init__(self, config: BenchConfig, target: str, timeout: Optional[float], env: dict,
                 cwd: Optional[Path] = None, cpus: Optional[Sequence[int]] = None, module: str = MODULE,
                 protocol: int = PROTOCOL_VERSION):
        self.config = config
        self.timeout = effective_timeout(config, timeout)
        self._work = Path(tempfile.mkdtemp(prefix="bnn-bench-round-"))
        request = self._work / "request.json"
        self.result_path, self.log_path = self._work / "result.json", self._work / "child.log"
        request.write_text(json.dumps({"protocol": protocol, "config": config.to_dict(), "target": target,
                                       "parent_pid": os.getpid()}))
        read_fd, write_fd = os.pipe()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", module, str(request), str(self.result_path), str(write_fd)],
                stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, env=env, pass_fds=(write_fd,),
                text=True, cwd=cwd, **OWN_PROCESS_GROUP,
            )
        os.close(write_fd)
        if cpus:
            # Set while the child is still importing, before torch starts its threads (they inherit it).
            try:
                os.sched_setaffinity(self.process.pid, cpus)
            except (OSError, AttributeError):
                pass
        self._answers = read_fd
        self._buffer = b""

    def _line(self, timeout: Optional[float]) -> str:
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buffer:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self._answers], [], [], wait)
            if not ready:
                raise WorkerGone("timeout")
            chunk = os.read(self._answers, 4096)
            if not chunk:
                raise WorkerGone("exited")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def wait_ready(self) -> None:
        if self._line(self.timeout) != "ready":
            raise WorkerGone("exited")

    def time_repeat(self) -> tuple[float, int]:
        try:
            self.process.stdin.write("go\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            raise WorkerGone("exited") from None
        word, seconds, steps = (self._line(self.timeout).split() + ["", "", ""])[:3]
        if word != "done":
            raise WorkerGone("exited")
        return float(seconds), int(steps)

    def finish(self, reason: str = "") -> RunResult:
        """Wait for the worker's own result (after its last repeat), or turn its end into a row."""
        if reason == "timeout":
            self.kill()
            return failure_result(self.config, "timeout", timeout_message(self.timeout))
        try:
            returncode = self.process.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return failure_result(self.config, "timeout", timeout_message(self.timeout))
        finally:
            kill_group(self.process.pid)
        return result_of_exit(self.config, returncode, self.result_path, self.log_path)

    def kill(self) -> None:
        kill_group(self.process.pid)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def close(self) -> None:
        try:
            os.close(self._answers)
        except OSError:
            pass
        try:
            self.process.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        shutil.rmtree(self._work, ignore_errors=True)


def final_result(worker: WarmWorker, reason: str = "") -> RunResult:
    """The worker's row (its own result, or its failure), its scratch directory removed."""
    try:
        return worker.finish(reason)
    finally:
        worker.close()


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    sys.exit(worker_main(sys.argv[1:]))
