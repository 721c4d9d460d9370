"""Where a config's time or counters changed along a history (docs/history.md): pure functions of the
rows of history.csv (bench/contract/history_store.py) and of each commit's operator counts.

A time step at commit k: ratio_k / ratio_(k-1), each ratio the commit's time over the reference's in
the same rounds, moved beyond the threshold (default the gate's paired threshold, 5%) with a 95%
interval that excludes 1. The interval bootstraps both commits' per-round ratios (each commit's rounds
resampled, analysis/compare_stats.py `change_of_round_ratios`) and the verdict is the gate's rule with
the two-sided alpha of its paired row. A counter change: any of FLOPs, ATen operators, graph bytes or
allocated bytes per step differs between consecutive commits that both ran (exact counts), the
operators whose counts changed named.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Sequence

import numpy as np

from analysis.compare import op_changes
from analysis.compare_stats import Change, change_of_round_ratios, verdict
from bench.contract.history_store import HISTORY_COUNTERS, parse_round_ratios

DEFAULT_THRESHOLD = 0.05  # the gate's paired threshold (check --paired-threshold)
DEFAULT_ALPHA = 0.05


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
               seed: int = 0) -> list[TimeStep]:
    """Every time step of every config, comparing each `ok` commit with the previous `ok` one."""
    rng = np.random.default_rng(seed)
    found = []
    for run_id, group in _by_config(rows).items():
        previous = None
        for row in group:
            if row["status"] != "ok" or not row.get("round_ratios"):
                continue
            if previous is not None:
                step = step_between(parse_round_ratios(previous["round_ratios"]),
                                    parse_round_ratios(row["round_ratios"]), threshold=threshold, alpha=alpha, rng=rng)
                if step is not None:
                    found.append(TimeStep(run_id, row["config"], int(row["position"]), row["commit"],
                                          previous["commit"], step[0], step[1]))
            previous = row
    return found


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


def describe_time_step(step: TimeStep) -> str:
    ch = step.change
    return (f"{step.config}: {step.direction} at {step.commit[:12]} (vs {step.previous[:12]}): "
            f"{ch.point - 1:+.1%} [{ch.low - 1:+.1%}, {ch.high - 1:+.1%}]")


def describe_counter_step(step: CounterStep, limit: int = 4) -> str:
    parts = [f"{c} {float(b):.6g} -> {float(a):.6g}" for c, b, a in step.counters]
    ops = ", ".join(f"{n} {d:+d}" for n, d in step.operators[:limit])
    if len(step.operators) > limit:
        ops += f" (+{len(step.operators) - limit} more)"
    return (f"{step.config}: counters changed at {step.commit[:12]} (vs {step.previous[:12]}): "
            + "; ".join(parts + ([ops] if ops else [])))
