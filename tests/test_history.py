"""`history` and `bisect` without timing: the search, change detection, the history store, revisions."""

from __future__ import annotations

import os

import numpy as np
import pytest

from analysis.history_changes import counter_steps, counters_grew, step_between, time_steps
from bench.contract.errors import UsageError
from bench.contract.history_store import (
    HISTORY_FILE,
    HistoryStore,
    format_round_ratios,
    is_commit_hash,
    read_history,
)
from bench.contract.records import RunResult
from bench.gate.bisect_search import BAD, GOOD, SKIP, first_bad_commit
from bench.gate.history import resolve_commit, resolve_revs

# -- the search ---------------------------------------------------------------------------------


def _judge_with_first_bad(first_bad, calls):
    def judge(index):
        calls.append(index)
        return BAD if first_bad is not None and index >= first_bad else GOOD
    return judge


@pytest.mark.parametrize("first_bad", range(16))
def test_the_search_finds_every_first_bad_position_of_16_in_at_most_5_comparisons(first_bad):
    calls = []
    search = first_bad_commit(16, _judge_with_first_bad(first_bad, calls))
    assert search.first_bad == first_bad
    assert calls[0] == 15  # BAD is confirmed first
    assert len(calls) == search.comparisons <= 5


def test_the_search_stops_after_one_comparison_when_bad_is_not_slower():
    calls = []
    search = first_bad_commit(16, _judge_with_first_bad(None, calls))
    assert search.first_bad is None and calls == [15] and search.undecided is None


def test_a_commit_that_cannot_be_judged_is_stepped_around_and_an_unjudgeable_range_reported():
    calls = []

    def judge(index):
        calls.append(index)
        return SKIP if index == 7 else BAD if index >= 9 else GOOD
    search = first_bad_commit(16, judge)
    assert search.first_bad == 9 and calls.count(7) <= 1
    search = first_bad_commit(4, lambda i: BAD if i == 3 else SKIP)
    assert search.first_bad is None and search.undecided == (0, 3)


def test_counters_grew_names_grown_operators_and_ignores_a_pure_decrease():
    good = RunResult(row={"flops_per_step": 1000}, op_counts={"aten.mm.default": 6, "aten.add.Tensor": 4})
    more = RunResult(row={"flops_per_step": 1000}, op_counts={"aten.mm.default": 6, "aten.add.Tensor": 4,
                                                              "aten.nan_to_num.default": 3})
    fewer = RunResult(row={"flops_per_step": 1000}, op_counts={"aten.mm.default": 5, "aten.add.Tensor": 4})
    flops = RunResult(row={"flops_per_step": 1100}, op_counts=dict(good.op_counts))
    assert counters_grew(good, more) == ["aten.nan_to_num.default +3"]
    assert counters_grew(good, fewer) == [] and counters_grew(good, good) == []
    assert counters_grew(good, flops) == ["FLOPs/step +10.0%"]


# -- change detection ---------------------------------------------------------------------------


def _rounds(level, noise, seed, n=12):
    return level * np.random.default_rng(seed).lognormal(0, noise, size=n)


def _history_rows(levels, noise=0.01, ops=None):
    rows = []
    for k, level in enumerate(levels):
        rows.append(dict(run_id="r1", config="regression vmap S=10 cpu", position=str(k), commit=f"{k:07x}abc",
                         status="ok", round_ratios=format_round_ratios(_rounds(level, noise, k)),
                         aten_ops_per_step=str(100 + (ops[k] if ops else 0)), flops_per_step="1000"))
    return rows


def test_a_planted_step_is_found_at_its_commit_and_nowhere_else():
    steps = time_steps(_history_rows([1.0, 1.0, 1.0, 1.10, 1.10, 1.10]))
    assert [(s.position, s.direction) for s in steps] == [(3, "slower")]
    assert steps[0].change.low > 1.05
    faster = time_steps(_history_rows([1.0, 1.0, 0.85, 0.85]))
    assert [(s.position, s.direction) for s in faster] == [(2, "faster")]


def test_a_step_at_the_last_commit_is_found_and_one_odd_commit_is_not_a_step():
    last = time_steps(_history_rows([1.0, 1.0, 1.0, 1.0, 1.12]))
    assert [(s.position, s.direction) for s in last] == [(4, "slower")]
    # This repository's own history (results/cpu/history-main-epyc-20261204): one commit's process
    # read 2.3% slow and the next one's 3.3% fast; compared one to one, a "step" of -5.5%.
    odd = _history_rows([1.004, 0.983, 1.023, 0.967, 0.991, 1.003, 1.035, 0.994], noise=0.012)
    one_to_one = time_steps(odd, window=1)
    assert [s.position for s in one_to_one] and time_steps(odd) == []


def test_noise_within_the_threshold_is_not_a_step():
    assert time_steps(_history_rows([1.0, 1.02, 0.99, 1.03, 1.0, 0.98], noise=0.01)) == []


def test_a_large_move_whose_interval_includes_no_change_is_not_a_step():
    before, after = _rounds(1.0, 0.30, 1, n=4), _rounds(1.12, 0.30, 2, n=4)
    assert step_between(before, after) is None
    assert step_between([1.0] * 12, [1.12] * 12) is not None  # the same move, measured tightly


def test_a_counter_change_names_the_operators_that_changed():
    rows = _history_rows([1.0, 1.0, 1.0], ops=[0, 0, 3])
    ops = {"0": {"aten.mm.default": 6}, "1": {"aten.mm.default": 6},
           "2": {"aten.mm.default": 6, "aten.nan_to_num.default": 3}}
    steps = counter_steps(rows, lambda row: ops[row["position"]])
    assert len(steps) == 1 and steps[0].position == 2
    assert steps[0].operators == (("aten.nan_to_num.default", 3),)
    assert steps[0].counters == (("aten_ops_per_step", "100", "103"),)


# -- the history store --------------------------------------------------------------------------

COMMIT, REFERENCE = "a" * 40, "b" * 40


def _row(run_id="r1", commit=COMMIT, **extra):
    row = dict(position=0, commit=commit, subject="a subject, with a comma", commit_date="2026-12-01T10:00:00+00:00",
               reference=REFERENCE, run_id=run_id, config="regression vmap S=10 cpu", impl="vmap",
               task="regression", samples=10, status="ok", reason="", ratio=1.05, ratio_low=1.01, ratio_high=1.09,
               rounds=12, round_ratios=format_round_ratios([1.0, 1.1]), step_s_median=0.03)
    return dict(row, **extra)


def test_history_rows_round_trip_and_a_commit_is_done_only_with_every_config(tmp_path):
    store = HistoryStore(tmp_path, resume=False)
    store.append_commit([_row("r1"), _row("r2", status="failed", reason="error: no such flag\nat all")])
    store.append_commit([_row("r1", commit="c" * 40)])
    rows = read_history(tmp_path)
    assert [r["run_id"] for r in rows] == ["r1", "r2", "r1"]
    assert rows[0]["subject"] == "a subject, with a comma" and float(rows[0]["ratio"]) == 1.05
    assert rows[1]["reason"] == "error: no such flag at all" and rows[0]["format_version"] == "1"
    assert HistoryStore(tmp_path, resume=True).done_commits(["r1", "r2"]) == {COMMIT}


def test_a_torn_last_line_is_refused_until_resume_cuts_it(tmp_path):
    store = HistoryStore(tmp_path, resume=False)
    store.append_commit([_row("r1")])
    with open(tmp_path / HISTORY_FILE, "ab") as f:
        f.write(b"1,1,cccc")  # a crash mid-append
    with pytest.raises(UsageError, match="torn"):
        read_history(tmp_path)
    resumed = HistoryStore(tmp_path, resume=True)
    assert resumed.repaired == len(b"1,1,cccc") and len(read_history(tmp_path)) == 1


def test_a_stored_commit_that_is_not_a_hash_is_refused(tmp_path):
    store = HistoryStore(tmp_path, resume=False)
    store.append_commit([_row(commit="--upload-pack=touch x")])
    with pytest.raises(UsageError, match="not a commit hash"):
        read_history(tmp_path)
    assert not is_commit_hash("HEAD") and is_commit_hash("abc1234")


# -- revisions ----------------------------------------------------------------------------------


def _git_repo(tmp_path, n=3):
    import subprocess

    repo = tmp_path / "repo"
    repo.mkdir()
    env = dict(os.environ, GIT_AUTHOR_NAME="t", GIT_AUTHOR_EMAIL="t@x", GIT_COMMITTER_NAME="t",
               GIT_COMMITTER_EMAIL="t@x")
    subprocess.run(["git", "init", "-q"], cwd=repo, check=True, env=env)
    for i in range(n):
        (repo / "f.txt").write_text(str(i))
        subprocess.run(["git", "add", "f.txt"], cwd=repo, check=True, env=env)
        subprocess.run(["git", "commit", "-q", "-m", f"commit {i}"], cwd=repo, check=True, env=env)
    return repo


def test_a_range_is_its_first_commit_then_the_first_parent_commits_after_it(tmp_path):
    repo = _git_repo(tmp_path, n=4)
    commits = resolve_revs(["HEAD~2..HEAD"], repo)
    assert len(commits) == 3 and commits[-1] == resolve_commit("HEAD", repo)
    assert commits[0] == resolve_commit("HEAD~2", repo)
    assert resolve_revs(["HEAD~1", "HEAD", "HEAD~1"], repo) == [commits[1], commits[2]]


@pytest.mark.parametrize("rev", ["no-such-branch", "--upload-pack=touch x", "-q", "HEAD~1...HEAD", "", "a\nb"])
def test_bad_revisions_are_refused_in_one_line(tmp_path, rev):
    repo = _git_repo(tmp_path)
    with pytest.raises(UsageError):
        resolve_revs([rev], repo)
    assert not (repo / "x").exists()
