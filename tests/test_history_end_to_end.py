"""`history` and `bisect` end to end, on a scratch git repository holding this project's code, whose
commits plant a slowdown or an extra operator in the fake measurement (tests/fakes.py `paced_ok`:
BNN_BENCH_FAKE_SLOW makes an implementation 1.5x slower, BNN_BENCH_FAKE_EXTRA_OP adds an operator).
Each commit's tree runs its own fakes, so the plant is per commit, as a code change is."""

from __future__ import annotations

import io
import os
import subprocess
import tarfile
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from bench.cli.main import main
from bench.contract.history_store import read_history

ROOT = Path(__file__).resolve().parents[1]
GIT_ENV = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@x", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@x")
GRID = ["--profile", "none", "--task", "regression", "--impl", "sequential,vmap", "--samples", "2", "--steps", "2",
        "--repeats", "4", "--rounds", "4", "--threads", "1", "--device", "cpu", "--target", "tests.fakes:paced_ok"]


def _git(repo, *args):
    return subprocess.run(["git", *args], cwd=repo, check=True, env=GIT_ENV, capture_output=True,
                          text=True).stdout.strip()


def _scratch_repo(tmp_path, plants: dict) -> tuple[Path, list[str]]:
    """HEAD's code in a new repository, then one commit per entry of `plants` (a line appended to
    tests/fakes.py, or None for a harmless change); the commits' hashes, oldest first."""
    try:
        archive = subprocess.run(["git", "archive", "--format=tar", "HEAD", "bench", "bnn_impls", "tests", "analysis",
                                  "run_bench.py", "pyproject.toml"], cwd=ROOT, capture_output=True, check=True)
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: no code to put in a scratch repository")
    repo = tmp_path / "repo"
    repo.mkdir()
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(repo, filter="data")
    _git(repo, "init", "-q")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "the code")
    commits = [_git(repo, "rev-parse", "HEAD")]
    for i, line in enumerate(plants):
        if line is None:
            (repo / "notes.txt").write_text(f"note {i}\n")
            _git(repo, "add", "notes.txt")
        else:
            fakes = repo / "tests" / "fakes.py"
            fakes.write_text(fakes.read_text() + f"\n{line}\n")
            _git(repo, "add", "tests/fakes.py")
        _git(repo, "commit", "-q", "-m", f"change {i + 1}")
        commits.append(_git(repo, "rev-parse", "HEAD"))
    return repo, commits


def _main(args) -> tuple[int, str]:
    out = io.StringIO()
    with redirect_stdout(out):
        code = main(args)
    return code, out.getvalue()


SLOW = "os.environ['BNN_BENCH_FAKE_SLOW'] = 'vmap'"
EXTRA_OP = "os.environ['BNN_BENCH_FAKE_EXTRA_OP'] = 'vmap'"


def test_history_finds_the_planted_step_and_resume_times_nothing_again(tmp_path):
    repo, commits = _scratch_repo(tmp_path, [None, SLOW, None])
    out = tmp_path / "history"
    code, printed = _main(["history", f"{commits[0]}..{commits[-1]}", *GRID, "--repo", str(repo), "--out", str(out)])
    assert code == 0, printed
    rows = read_history(out)
    assert len(rows) == 8 and {r["status"] for r in rows} == {"ok"}
    vmap = {int(r["position"]): float(r["ratio"]) for r in rows if r["impl"] == "vmap"}
    assert vmap == pytest.approx({0: 1.0, 1: 1.0, 2: 1.5, 3: 1.5})
    assert f"slower from {commits[2][:12]} on" in printed and printed.count("slower from") == 1
    assert (out / "history.md").is_file() and list((out / "figures").glob("*.svg"))
    assert (out / "commits" / commits[2][:12] / "base" / "runs.csv").is_file()

    code, printed = _main(["history", f"{commits[0]}..{commits[-1]}", *GRID, "--repo", str(repo), "--out", str(out),
                           "--resume"])
    assert code == 0 and len(read_history(out)) == 8
    code, _ = _main(["history", f"{commits[0]}..{commits[-1]}", *GRID, "--repo", str(repo), "--out", str(out),
                     "--resume", "--reference", commits[1]])
    assert code == 2  # another reference: refused, not mixed into the stored rows
    code, _ = _main(["history", "--report", str(out)])
    assert code == 0


def test_bisect_names_the_slowed_commit_and_says_so_when_nothing_changed(tmp_path):
    repo, commits = _scratch_repo(tmp_path, [None, None, SLOW, None, None])
    grid = [*GRID[:5], "vmap", *GRID[6:]]
    code, printed = _main(["bisect", commits[0], commits[-1], *grid, "--repo", str(repo),
                           "--out", str(tmp_path / "b1")])
    assert code == 1, printed
    assert f"first bad commit: {commits[3]} change 3" in printed and "+50.0%" in printed
    code, printed = _main(["bisect", commits[0], commits[2], *grid, "--repo", str(repo),
                           "--out", str(tmp_path / "b2")])
    assert code == 0 and "no regression" in printed
    code, _ = _main(["bisect", commits[0], commits[-1], *GRID, "--repo", str(repo), "--out", str(tmp_path / "b3")])
    assert code == 2  # two configs: refused


def test_bisect_finds_a_planted_operator_by_counters_alone(tmp_path):
    repo, commits = _scratch_repo(tmp_path, [None, EXTRA_OP, None, None])
    grid = [*GRID[:5], "vmap", *GRID[6:]]
    code, printed = _main(["bisect", commits[0], commits[-1], *grid, "--repo", str(repo),
                           "--out", str(tmp_path / "b")])
    assert code == 1, printed
    assert f"counters grew: {commits[2]}" in printed and "aten.nan_to_num.default +1" in printed
    assert not (tmp_path / "b" / "probes").exists()  # no timing run was needed
