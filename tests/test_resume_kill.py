"""SIGKILL a real sweep at several points, resume it, and check nothing was lost, doubled or torn."""

import collections
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from bench.contract.meta import load_grid
from bench.contract.provenance import CODE_ROOT
from bench.contract.store import read_repeats, read_runs

N_CONFIGS = 8
SWEEP = [sys.executable, str(CODE_ROOT / "run_bench.py"), "sweep", "--profile", "paper", "--task", "regression",
         "--impl", "vmap", "--samples", f"1:{N_CONFIGS}", "--steps", "1", "--repeats", "2",
         "--target", "tests.fakes:slowish_ok"]


def start(out: Path, resume: bool) -> subprocess.Popen:
    return subprocess.Popen(SWEEP + ["--out", str(out)] + (["--resume"] if resume else []),
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)


def rows(out: Path) -> int:
    try:
        return (out / "runs.csv").read_bytes().count(b"\n") - 1
    except FileNotFoundError:
        return 0


def workers_of(pid: int) -> list[int]:
    """The sweep's measuring children (their own sessions, so killing the sweep's group misses them)."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
                cmdline = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid and b"bench.run.worker" in cmdline:
                found.append(int(entry.name))
    return found


def gone(pid: int, within: float = 5.0) -> bool:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                return True
        except FileNotFoundError:
            return True
        time.sleep(0.05)
    return False


def kill_when(proc: subprocess.Popen, out: Path, at_rows: int, extra_delay: float) -> None:
    """SIGKILL the sweep once `at_rows` rows exist (plus a delay that lands inside a running config)."""
    deadline = time.monotonic() + 60
    while rows(out) < at_rows and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(extra_delay)
    assert proc.poll() is None, f"the sweep finished before the kill point: {proc.stderr.read().decode()}"
    children = workers_of(proc.pid)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    # A measuring child outliving its sweep would keep the machine busy under the next run's timings.
    assert all(gone(pid) for pid in children)


def test_sigkill_at_several_points_then_resume_loses_nothing(tmp_path):
    out = tmp_path / "out"
    snapshot = b""
    # (rows that must exist before the kill, delay after that): before any row (mid start-up),
    # right after the first row, and in the middle of a later config.
    for step, (at_rows, delay) in enumerate([(0, 0.3), (1, 0.0), (4, 0.08)]):
        proc = start(out, resume=step > 0)
        kill_when(proc, out, at_rows, delay)
        current = (out / "runs.csv").read_bytes() if (out / "runs.csv").exists() else b""
        assert current.startswith(snapshot), "rows written before a kill changed afterwards"
        read_runs(out)  # every line still parses: raises on a torn or short line
        snapshot = current
    assert 0 < rows(out) < N_CONFIGS, "the kills should have left part of the sweep to resume"

    proc = start(out, resume=True)
    assert proc.wait(timeout=120) == 0, proc.stderr.read().decode()
    assert (out / "runs.csv").read_bytes().startswith(snapshot)

    runs = read_runs(out)
    counts = collections.Counter(r["run_id"] for r in runs)
    grid = [c.run_id for c in load_grid(out)]
    assert len(grid) == N_CONFIGS and counts == collections.Counter(grid)  # each config exactly one final row
    assert all(r["status"] == "ok" for r in runs)
    repeats = collections.Counter(r["run_id"] for r in read_repeats(out))
    assert repeats == collections.Counter({run_id: 2 for run_id in grid})
    meta_resumes = len(__import__("json").loads((out / "meta.json").read_text()).get("resumed_at", []))
    assert meta_resumes >= 2
