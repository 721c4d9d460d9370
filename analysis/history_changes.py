"""Where a config's time or counters changed along a history (docs/history.md): pure functions of the
rows of history.csv (bench/contract/history_store.py) and of each commit's operator counts.

A time step at commit k: the level of commit/reference from k on moved from the level before k beyond
the threshold (default the gate's paired threshold, 5%) with a 95% interval that excludes 1. A level
is the per-round ratios of up to `WINDOW` commits pooled: before k (k-2, k-1) and from k (k, k+1).
One commit against the previous one is not enough: each commit's side runs in its own worker
processes, which differ from another process of the same code by a few percent for their whole life,
and on this repository's own history one commit that changed only `analysis/` read 2.3% slow and the
next 3.3% fast: a "step" of -5.5% [-10.1%, -1.8%] between them. A real step persists, so pooling the
commits on each side keeps it and averages the process bias out. Neighbouring positions that both
see one step (the window straddles it) report it once, where the change is largest. The interval
bootstraps both sides' per-round ratios (analysis/compare_stats.py `change_of_round_ratios`) and the
verdict is the gate's rule with the two-sided alpha of its paired row.

A counter change: any of FLOPs, ATen operators, graph bytes or allocated bytes per step differs
between consecutive commits that both ran (exact counts), the operators whose counts changed named.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from analysis.compare import number_or_none, op_changes
from analysis.compare_stats import Change, change_of_round_ratios, verdict
from bench.contract.history_store import HISTORY_COUNTERS, parse_round_ratios
from bench.contract.records import RunResult

DEFAULT_THRESHOLD = 0.05  # the gate's paired threshold (check --paired-threshold)
DEFAULT_ALPHA = 0.05
#: Commits pooled on each side of a candidate step.
WINDOW = 2


@dataclass(frozen=True)
class TimeStep:
    run_id: str
    config: str
    position: int
    commit: str
    previous: str
    change: Change  # ratio_k / ratio_(k-1)
    direction: str  # "slower" or "faster"


@dataclass(frozen=True)
class CounterStep:
    run_id: str
    config: str
    position: int
    commit: str
    previous: str
    counters: tuple  # ((column, before, after), ...)
    operators: tuple  # ((operator, count change), ...), largest growth first


def step_between(before: Sequence[float], after: Sequence[float], *, threshold: float = DEFAULT_THRESHOLD,
                 alpha: float = DEFAULT_ALPHA, rng=None) -> Optional[tuple[Change, str]]:
    """(change, "slower" or "faster") where `after`'s per-round ratios moved from `before`'s beyond
    `threshold` with an interval excluding 1; None otherwise (or with fewer than two rounds a side)."""
    before, after = np.asarray(before, float), np.asarray(after, float)
    if len(before) < 2 or len(after) < 2:
        return None
    change = change_of_round_ratios(before, after, np.random.default_rng(0) if rng is None else rng)
    judged = verdict(change, threshold, alpha / 2)
    if judged == "REGRESSION" and change.low > 1:
        return change, "slower"
    if judged == "improved" and change.high < 1:
        return change, "faster"
    return None


def _by_config(rows: Sequence[dict]) -> dict[str, list[dict]]:
    """run_id -> its rows in commit order."""
    groups: dict[str, list[dict]] = {}
    for row in sorted(rows, key=lambda r: int(r["position"])):
        groups.setdefault(row["run_id"], []).append(row)
    return groups


def time_steps(rows: Sequence[dict], *, threshold: float = DEFAULT_THRESHOLD, alpha: float = DEFAULT_ALPHA,
               seed: int = 0, window: int = WINDOW) -> list[TimeStep]:
    """Every time step of every config: at each `ok` commit, the pooled per-round ratios of up to
    `window` `ok` commits from it on against those of up to `window` before it; of adjacent positions
    that both see a step in the same direction, the one with the largest change."""
    rng = np.random.default_rng(seed)
    found = []
    for run_id, group in _by_config(rows).items():
        ok = [r for r in group if r["status"] == "ok" and r.get("round_ratios")]
        ratios = [parse_round_ratios(r["round_ratios"]) for r in ok]
        candidates = []
        for i in range(1, len(ok)):
            before = [x for rs in ratios[max(0, i - window):i] for x in rs]
            after = [x for rs in ratios[i:i + window] for x in rs]
            step = step_between(before, after, threshold=threshold, alpha=alpha, rng=rng)
            if step is not None:
                candidates.append((i, TimeStep(run_id, ok[i]["config"], int(ok[i]["position"]), ok[i]["commit"],
                                               ok[i - 1]["commit"], step[0], step[1])))
        found += _strongest_of_runs(candidates)
    return found


def _strongest_of_runs(candidates: list) -> list[TimeStep]:
    """Of consecutive candidate positions with the same direction, the one whose change is largest."""
    kept, run = [], []
    for index, step in candidates:
        if run and (index != run[-1][0] + 1 or step.direction != run[-1][1].direction):
            kept.append(max(run, key=lambda c: abs(np.log(c[1].change.point)))[1])
            run = []
        run.append((index, step))
    if run:
        kept.append(max(run, key=lambda c: abs(np.log(c[1].change.point)))[1])
    return kept


def _counters(row: dict) -> dict:
    return {c: row.get(c, "") for c in HISTORY_COUNTERS if row.get(c, "") != ""}


def counter_steps(rows: Sequence[dict], ops_of: Callable[[dict], dict]) -> list[CounterStep]:
    """Every change of a counter between consecutive commits that both ran a config (status ok or
    base_failed: the commit's own counts exist); `ops_of(row)` gives that row's {operator: count}."""
    found = []
    for run_id, group in _by_config(rows).items():
        previous = None
        for row in group:
            if row["status"] not in ("ok", "base_failed") or not _counters(row):
                continue
            if previous is not None:
                before, after = _counters(previous), _counters(row)
                changed = tuple((c, before[c], after[c]) for c in sorted(set(before) & set(after))
                                if float(before[c]) != float(after[c]))
                operators = tuple(op_changes(ops_of(previous), ops_of(row)))
                if changed or operators:
                    found.append(CounterStep(run_id, row["config"], int(row["position"]), row["commit"],
                                             previous["commit"], changed, operators))
            previous = row
    return found


def counters_grew(good: RunResult, other: RunResult, counter_threshold: float = 0.01) -> list[str]:
    """How `other`'s deterministic counters grew over `good`'s, in words, for `bisect` (empty: they did
    not): every operator whose count changed, by name, where any grew; FLOPs per step beyond
    `counter_threshold`, as the gate judges."""
    changes = sorted(op_changes(good.op_counts or {}, other.op_counts or {}))
    grown = [f"{name} {change:+d}" for name, change in changes] if any(d > 0 for _, d in changes) else []
    flops_base = number_or_none(good.row.get("flops_per_step"))
    flops = number_or_none(other.row.get("flops_per_step"))
    if flops_base and flops and flops > flops_base * (1 + counter_threshold):
        grown.append(f"FLOPs/step {flops / flops_base - 1:+.1%}")
    return grown


def describe_time_step(step: TimeStep) -> str:
    ch = step.change
    return (f"{step.config}: {step.direction} from {step.commit[:12]} on (after {step.previous[:12]}): "
            f"{ch.point - 1:+.1%} [{ch.low - 1:+.1%}, {ch.high - 1:+.1%}]")


def describe_counter_step(step: CounterStep, limit: int = 4) -> str:
    parts = [f"{c} {float(b):.6g} -> {float(a):.6g}" for c, b, a in step.counters]
    ops = ", ".join(f"{n} {d:+d}" for n, d in step.operators[:limit])
    if len(step.operators) > limit:
        ops += f" (+{len(step.operators) - limit} more)"
    return (f"{step.config}: counters changed at {step.commit[:12]} (vs {step.previous[:12]}): "
            + "; ".join(parts + ([ops] if ops else [])))
