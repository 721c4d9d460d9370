"""A config's time over a range of commits (`run_bench.py history`, docs/history.md): each commit's
code timed beside one reference commit's, pair by pair in interleaved rounds, with the gate's
machinery (bench/gate/paired.py: both trees unpacked from git, each run by its own workers, the same
CPU pinning and malloc settings), so the drift of the machine cancels in commit/reference.

Revisions go to git as arguments (never through a shell), each checked with `rev-parse --verify
--end-of-options`; one that looks like an option is refused before git sees it. The statistics of
the rows are analysis's (the command line joins the two: bench/cli/cmd_history.py).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

from bench.contract.config import BenchConfig
from bench.contract.errors import UsageError
from bench.contract.history_store import commit_results_dir, is_commit_hash
from bench.contract.provenance import CODE_ROOT
from bench.gate.base_tree import BaseTree, BaseTreeUnavailable, temporary_tree
from bench.gate.paired import run_paired_sweep
from bench.run.worker import DEFAULT_TARGET


def git_lines(repo: Path, *args: str) -> list[str]:
    """`git ARGS` in `repo` (an argument list, no shell); its output lines, or UsageError."""
    try:
        done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise UsageError(f"git failed ({e}): is git installed and {repo} a git repository?") from None
    if done.returncode != 0:
        message = " ".join(done.stderr.split())[:200]
        raise UsageError(f"git {args[0]} failed in {repo}: {message or 'exit ' + str(done.returncode)}")
    return [line for line in done.stdout.splitlines() if line.strip()]


def resolve_commit(rev: str, repo: Path) -> str:
    """The full hash of the commit `rev` names; UsageError (one line) for anything else."""
    if not rev or rev.startswith("-") or any(c in rev for c in "\0\n"):
        raise UsageError(f"{rev[:60]!r} is not a revision: give a commit, branch or tag (e.g. HEAD~5)")
    try:
        found = git_lines(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}")
    except UsageError:
        found = []
    if len(found) != 1 or not is_commit_hash(found[0]):
        raise UsageError(f"{rev[:60]!r} names no commit of {repo}: give a commit, branch or tag (git log shows them)")
    return found[0]


def commits_between(old: str, new: str, repo: Path) -> list[str]:
    """The first-parent commits after `old` up to `new` (full hashes, oldest first); both are hashes."""
    listed = git_lines(repo, "rev-list", "--reverse", "--first-parent", f"{old}..{new}", "--")
    bad = [c for c in listed if not is_commit_hash(c)]
    if bad:
        raise UsageError(f"git rev-list gave {bad[0][:60]!r}, not a commit hash")
    return listed


def resolve_revs(revs: Sequence[str], repo: Path) -> list[str]:
    """REVS as commits, oldest first: a range `A..B` is A then the first-parent commits after it up to
    B; otherwise each rev names one commit (in the order given, repeats dropped)."""
    if not revs:
        raise UsageError("give REVS: a range like HEAD~12..HEAD, or commits")
    commits: list[str] = []
    for rev in revs:
        if ".." in rev:
            if "..." in rev or len(revs) != 1:
                raise UsageError(f"{rev!r}: give one range A..B, or a list of commits (not both, and not A...B)")
            old_rev, _, new_rev = rev.partition("..")
            old, new = resolve_commit(old_rev or "HEAD", repo), resolve_commit(new_rev or "HEAD", repo)
            commits = [old] + commits_between(old, new, repo)
        else:
            commits.append(resolve_commit(rev, repo))
    return list(dict.fromkeys(commits))


def commit_subject_and_date(commit: str, repo: Path) -> tuple[str, str]:
    """(subject, committer date in ISO 8601) of a commit hash."""
    if not is_commit_hash(commit):
        raise UsageError(f"{commit[:60]!r} is not a commit hash")
    lines = git_lines(repo, "show", "-s", "--format=%cI%n%s", commit, "--")
    return (lines[1] if len(lines) > 1 else ""), (lines[0] if lines else "")


@dataclass(frozen=True)
class HistoryPlan:
    """What `history` times: each commit of `commits` beside `reference`'s code, the grid `configs`."""

    commits: list
    reference: str
    configs: list
    rounds: int
    out: Path
    round_seed: int = 0
    target: str = DEFAULT_TARGET
    plugins: Optional[str] = None
    repo: Path = CODE_ROOT
    argv: Sequence[str] = field(default_factory=list)


@dataclass(frozen=True)
class CommitOutcome:
    """One commit done: its paired results directory, or why its tree could not be driven."""

    position: int
    commit: str
    results_dir: Path
    unsupported: Optional[str] = None


def reference_tree(ref: str, repo: Path, stack) -> BaseTree:
    try:
        return stack.enter_context(temporary_tree(ref, repo=repo))
    except BaseTreeUnavailable as e:
        raise UsageError(f"cannot unpack the reference commit {ref[:12]}: {e} (choose another --reference)") from None


def time_commit(plan: HistoryPlan, position: int, commit: str, reference: BaseTree, *,
                configs: Optional[Sequence[BenchConfig]] = None, out_dir: Optional[Path] = None) -> CommitOutcome:
    """`commit`'s code beside the reference's, every config of the plan (or `configs`), into a fresh
    paired results directory (OUT/commits/<short hash>, or `out_dir`); one left by a crash before
    its rows were stored is replaced."""
    target_dir = Path(out_dir) if out_dir is not None else commit_results_dir(plan.out, commit)
    if target_dir.exists():
        shutil.rmtree(target_dir)  # a crash's partial run: its commit has no rows in the store
    try:
        with temporary_tree(commit, repo=plan.repo) as tree:
            run_paired_sweep(list(configs if configs is not None else plan.configs), target_dir, reference,
                             rounds=plan.rounds, round_seed=plan.round_seed, target=plan.target,
                             base_plugins=plan.plugins, profile="history", argv=plan.argv, progress=False,
                             candidate=tree)
    except BaseTreeUnavailable as e:
        return CommitOutcome(position, commit, target_dir, unsupported=" ".join(str(e).split()))
    return CommitOutcome(position, commit, target_dir)


def run_history(plan: HistoryPlan, stack, *, done: set, on_commit: Callable[[CommitOutcome], None],
                say: Callable[[str], None] = lambda text: print(text, file=sys.stderr)) -> None:
    """Every commit of the plan not in `done`, in order; `on_commit` stores each as it finishes."""
    reference = reference_tree(plan.reference, plan.repo, stack)
    total = len(plan.commits)
    for position, commit in enumerate(plan.commits):
        if commit in done:
            say(f"history: [{position + 1}/{total}] {commit[:12]} already stored, skipped")
            continue
        subject, _ = commit_subject_and_date(commit, plan.repo)
        say(f"history: [{position + 1}/{total}] {commit[:12]} {subject[:60]}: timing beside {plan.reference[:12]}")
        on_commit(time_commit(plan, position, commit, reference))
