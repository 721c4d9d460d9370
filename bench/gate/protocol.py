"""How this checkout starts a worker inside another commit's code: the versioned protocol between the
gate and a base worker.

The gate times the baseline commit's code beside this checkout's, so it launches warm workers
(bench/run/warm_worker.py) in trees of other commits, which may be laid out differently. A tree says
how to drive it in `bench/worker_protocol.json` (read as JSON data, never imported):

    {"version": 2, "warm_worker": "bench.run.warm_worker",
     "measure": "bench.measure.step:measure", "timing_only": "bench.measure.step:measure_timing_only"}

Version 1 is every commit from 3c4bc96 (interleaved rounds) to the restructure into subpackages,
which declared nothing: its worker is `python -m bench.rounds`, its measurement
`bench.measure:measure`, and its `measure_timing_only` takes the pacer only from a76d5c6 on
(earlier trees get the full measurement on every generation). The request and pipe are the same in
both; version 2 adds `"protocol"` to the request, which version 1 ignores.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Optional

from bench.contract.provenance import CODE_ROOT
from bench.run import warm_worker
from bench.run.worker import DEFAULT_TARGET, TIMING_ONLY_TARGET

PROTOCOL_FILE = Path("bench") / "worker_protocol.json"
#: The first commit whose measure_timing_only accepts the pacer warm workers pass (protocol 1).
TIMING_ONLY_SINCE = "a76d5c6259c1c80869b2bb7fce63d4df70ca4825"


class UnsupportedTree(Exception):
    """The tree's code cannot be driven by this checkout; the message says why and what to do."""


@dataclass(frozen=True)
class WorkerProtocol:
    version: int
    warm_worker: str  # the module run as `python -m MODULE REQUEST RESULT ANSWER_FD`
    measure: str  # the built-in measurement target
    timing_only: Optional[str]  # the same without its untimed counting steps, where the tree has it

    def target(self, target: str, *, timing_only: bool) -> str:
        """This tree's name for `target` (a target of this checkout): the built-in measurement is
        translated, an injected one (tests' fakes) is the same module path on both sides."""
        if target not in (DEFAULT_TARGET, TIMING_ONLY_TARGET):
            return target
        if (timing_only or target == TIMING_ONLY_TARGET) and self.timing_only:
            return self.timing_only
        return self.measure


CURRENT = WorkerProtocol(warm_worker.PROTOCOL_VERSION, warm_worker.MODULE, DEFAULT_TARGET, TIMING_ONLY_TARGET)


def _is_ancestor(ancestor: str, commit: str, repo: Path) -> bool:
    try:
        done = subprocess.run(["git", "merge-base", "--is-ancestor", ancestor, commit], cwd=repo,
                              capture_output=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def tree_protocol(root: Path, commit: str, *, repo: Path = CODE_ROOT) -> WorkerProtocol:
    """The protocol of the code unpacked at `root` (commit `commit` of `repo`)."""
    declared = Path(root) / PROTOCOL_FILE
    if declared.is_file():
        try:
            fields = json.loads(declared.read_text())
            protocol = WorkerProtocol(int(fields["version"]), str(fields["warm_worker"]), str(fields["measure"]),
                                      fields.get("timing_only"))
        except (ValueError, KeyError, TypeError) as e:
            raise UnsupportedTree(f"{declared} is not a worker protocol ({e}): pair with another commit") from None
        if protocol.version > CURRENT.version:
            raise UnsupportedTree(f"commit {commit[:12]} speaks worker protocol {protocol.version}, newer than this "
                                  f"checkout's {CURRENT.version}: run the gate from a newer checkout")
        return protocol
    if (Path(root) / "bench" / "rounds.py").is_file():
        timing_only = "bench.measure:measure_timing_only" if _is_ancestor(TIMING_ONLY_SINCE, commit, repo) else None
        return WorkerProtocol(1, "bench.rounds", "bench.measure:measure", timing_only)
    raise UnsupportedTree(f"commit {commit[:12]} has no warm workers (older than interleaved rounds, 3c4bc96): "
                          "re-record the baseline at a newer commit")


def declaration() -> dict:
    """What this checkout writes to its own PROTOCOL_FILE (a test keeps the two the same)."""
    return asdict(CURRENT)
