"""Measure `run_bench.py bisect` itself: a scratch clone of this repository gets a branch of N commits on
top of HEAD, each changing a harmless file; at position K one plants a change (a slowdown of one
implementation, an extra ATen operator, or nothing); `bisect` runs from the clone between the branch's
base and its tip, and the found commit, the expected one, the number of comparisons and the wall time
go to OUT/trials.csv (one row per trial, appended) and OUT/summary.md (rewritten).

The real repository gets no branch: everything happens in `git clone` of it in a temporary directory
(removed afterwards; --keep keeps it). The plants are code changes, since a plugin is not per commit:

- slowdown (default): `bnn_impls/vmap.py`'s class gets a `loss` that waits, after each call, for
  FRACTION of that call's own duration (the shortest of the last few, as tests/plugins/slow_vmap.py
  measures it), so vmap's steps get about FRACTION slower whatever the machine;
- `--operator`: its `loss` passes the model's biases through `torch.nan_to_num` (one idle operator per
  layer, as tests/plugins/extra_op.py does): found by counters alone;
- `--none`: nothing planted: bisect must say "no regression".

    python3 scripts/bisect_trials.py results/runs/bisect-trials --position 9
    python3 scripts/bisect_trials.py results/runs/bisect-trials --position 5 --operator
    python3 scripts/bisect_trials.py results/runs/bisect-trials --none
"""

from __future__ import annotations

import argparse
import csv
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
GIT_ENV = dict(os.environ, GIT_AUTHOR_NAME="bisect-trials", GIT_AUTHOR_EMAIL="trials@localhost",
               GIT_COMMITTER_NAME="bisect-trials", GIT_COMMITTER_EMAIL="trials@localhost")
COLUMNS = ("trial", "scenario", "position", "commits", "expected", "found", "correct", "exit_code", "comparisons",
           "wall_s", "command", "clone")
#: The cheap config bisected by default: the ci grid's regression vmap config, one thread.
DEFAULT_CONFIG = ["--profile", "none", "--task", "regression", "--impl", "vmap", "--samples", "10", "--steps", "20",
                  "--repeats", "12", "--rounds", "12", "--threads", "1", "--device", "cpu"]

SLOWDOWN = '''

# -- planted by scripts/bisect_trials.py: vmap's loss waits FRACTION of its own duration -------------
import time as _trial_time  # noqa: E402
from collections import deque as _trial_deque  # noqa: E402

_TRIAL_FRACTION = {fraction!r}
_trial_loss = VmapBBB.loss
_trial_state = {{"last": None, "sleep": 0.0, "steps": _trial_deque(maxlen=7)}}


def _slowed_loss(self, *args, **kwargs):
    now = _trial_time.perf_counter()
    if _trial_state["last"] is not None:
        _trial_state["steps"].append(now - _trial_state["last"] - _trial_state["sleep"])
    pause = _TRIAL_FRACTION * min(_trial_state["steps"]) if _trial_state["steps"] else 0.0
    if pause > 0:
        _trial_time.sleep(pause)
    _trial_state["sleep"] = pause
    _trial_state["last"] = _trial_time.perf_counter() - pause
    return _trial_loss(self, *args, **kwargs)


VmapBBB.loss = _slowed_loss
'''

EXTRA_OP = '''

# -- planted by scripts/bisect_trials.py: one extra (idle) ATen operator per layer -------------------
_trial_loss = VmapBBB.loss


def _extra_op_loss(self, model, *args, **kwargs):
    original = model.weights_from_noise

    def with_extra_op(eps):
        return [torch.nan_to_num(w) if i % 2 == 1 else w for i, w in enumerate(original(eps))]

    model.weights_from_noise = with_extra_op
    try:
        return _trial_loss(self, model, *args, **kwargs)
    finally:
        del model.weights_from_noise


VmapBBB.loss = _extra_op_loss
'''


def git(repo: Path, *args: str) -> str:
    return subprocess.run(["git", *args], cwd=repo, env=GIT_ENV, check=True, capture_output=True,
                          text=True).stdout.strip()


def build_branch(clone: Path, n: int, position: int, plant: str) -> tuple[str, list[str]]:
    """N commits on top of the clone's HEAD; the one at `position` (1-based) also plants `plant`.
    Returns (the base commit, the branch's commits oldest first)."""
    base = git(clone, "rev-parse", "HEAD")
    git(clone, "checkout", "-q", "-b", "bisect-trial")
    commits = []
    target = clone / "bnn_impls" / "vmap.py"
    if plant and "class VmapBBB(" not in target.read_text():
        raise SystemExit(f"{target} has no VmapBBB class: adapt the plant in {__file__}")
    for k in range(1, n + 1):
        note = clone / "scripts" / "bisect_trial_notes.txt"
        note.write_text(f"harmless change {k}\n")
        git(clone, "add", str(note.relative_to(clone)))
        if k == position and plant:
            target.write_text(target.read_text() + plant)
            git(clone, "add", str(target.relative_to(clone)))
        git(clone, "commit", "-q", "-m", f"trial commit {k}" + (" (planted)" if k == position and plant else ""))
        commits.append(git(clone, "rev-parse", "HEAD"))
    return base, commits


def found_commit(stdout: str) -> str:
    for line in stdout.splitlines():
        for marker in ("first bad commit: ", "first commit whose counters grew: "):
            if line.startswith(marker):
                return line[len(marker):].split()[0]
    return ""


def comparisons(out: Path) -> int:
    path = out / "probes.csv"
    if not path.exists():
        return 0
    with open(path, newline="") as f:
        return sum(1 for _ in csv.DictReader(f))


def run_trial(args, results: Path, trial: int) -> dict:
    scenario = "none" if args.none else "operator" if args.operator else f"slow{round(args.fraction * 100)}"
    plant = "" if args.none else EXTRA_OP if args.operator else SLOWDOWN.format(fraction=args.fraction)
    scratch = Path(tempfile.mkdtemp(prefix="bnn-bench-bisect-trial-"))
    clone = scratch / "clone"
    try:
        subprocess.run(["git", "clone", "-q", "--no-hardlinks", str(ROOT), str(clone)], check=True)
        base, commits = build_branch(clone, args.commits, args.position, plant)
        out = (results / f"trial-{trial:03d}-{scenario}-p{args.position}").resolve()
        command = [sys.executable, "run_bench.py", "bisect", base, commits[-1], *(args.config or DEFAULT_CONFIG),
                   "--out", str(out)]
        if args.data_dir:
            command += ["--data-dir", str(Path(args.data_dir).resolve())]
        started = time.monotonic()
        done = subprocess.run(command, cwd=clone, capture_output=True, text=True, env=dict(os.environ))
        wall = time.monotonic() - started
        (results / f"trial-{trial:03d}.log").write_text(done.stdout + "\n--- stderr ---\n" + done.stderr)
        expected = "" if args.none else commits[args.position - 1]
        found = found_commit(done.stdout)
        correct = (done.returncode == 0 and not found) if args.none else (done.returncode == 1 and found == expected)
        return dict(trial=trial, scenario=scenario, position=0 if args.none else args.position, commits=args.commits,
                    expected=expected, found=found, correct=correct, exit_code=done.returncode,
                    comparisons=comparisons(out), wall_s=round(wall, 1), command=" ".join(command),
                    clone=str(clone) if args.keep else "")
    finally:
        if not args.keep:
            shutil.rmtree(scratch, ignore_errors=True)


def write_summary(results: Path) -> None:
    with open(results / "trials.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    lines = ["# bisect trials", "", "| trial | scenario | position | correct | exit | comparisons | wall s |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    lines += [f"| {r['trial']} | {r['scenario']} | {r['position']} | {r['correct']} | {r['exit_code']} | "
              f"{r['comparisons']} | {r['wall_s']} |" for r in rows]
    right = sum(r["correct"] == "True" for r in rows)
    lines += ["", f"{right} of {len(rows)} correct."]
    (results / "summary.md").write_text("\n".join(lines) + "\n")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("results", type=Path, help="directory for trials.csv, summary.md and each trial's bisect OUT")
    parser.add_argument("--position", type=int, default=8, help="1-based position of the planted commit (default 8)")
    parser.add_argument("--commits", type=int, default=16, help="commits on the scratch branch (default 16)")
    parser.add_argument("--fraction", type=float, default=0.10, help="the planted slowdown (default 0.10)")
    what = parser.add_mutually_exclusive_group()
    what.add_argument("--operator", action="store_true", help="plant an extra ATen operator instead")
    what.add_argument("--none", action="store_true", help="plant nothing")
    parser.add_argument("--data-dir", help="passed to bisect (MNIST configs)")
    parser.add_argument("--keep", action="store_true", help="keep the scratch clone")
    parser.epilog = "After --: bisect's grid flags (default: " + " ".join(DEFAULT_CONFIG) + ")"
    argv = sys.argv[1:]
    cut = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:cut])
    args.config = argv[cut + 1:]
    if not 1 <= args.position <= args.commits:
        parser.error(f"--position must be between 1 and --commits ({args.commits})")
    args.results.mkdir(parents=True, exist_ok=True)
    path = args.results / "trials.csv"
    trial = 1
    if path.exists():
        with open(path, newline="") as f:
            trial = 1 + sum(1 for _ in csv.DictReader(f))
    row = run_trial(args, args.results, trial)
    new = not path.exists()
    with open(path, "a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS)
        if new:
            writer.writeheader()
        writer.writerow(row)
    write_summary(args.results)
    print(f"trial {trial}: {row['scenario']} at {row['position']}: found {row['found'][:12] or 'nothing'}, expected "
          f"{row['expected'][:12] or 'nothing'}: {'correct' if row['correct'] else 'WRONG'} "
          f"({row['comparisons']} probes, {row['wall_s']} s, exit {row['exit_code']})")
    return 0 if row["correct"] else 1


if __name__ == "__main__":
    sys.exit(main())
