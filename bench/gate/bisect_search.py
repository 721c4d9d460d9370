"""`run_bench.py bisect`: the first commit between GOOD and BAD where a config got slower (docs/history.md).

The search is a pure function over an injected `judge(index) -> verdict`, so it is tested without
timing; the command line (bench/cli/cmd_bisect.py) judges a commit by one paired run of the config,
the commit's code beside GOOD's, with the gate's verdict rule, or by its deterministic counters
(`measure_counters`: one worker in the commit's unpacked tree, seconds; judged by
analysis/history_changes.py `counters_grew`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional, Sequence

from bench.contract.config import BenchConfig
from bench.contract.records import RunResult
from bench.gate.base_tree import BaseTree
from bench.gate.paired import pair_cpus, tree_side
from bench.run.warm_worker import WarmWorker, WorkerGone, final_result
from bench.run.worker import DEFAULT_TARGET

BAD, GOOD, SKIP = "bad", "good", "skip"


@dataclass
class Search:
    """The state and outcome of one search over `n` commits (oldest first; GOOD itself is not among them)."""

    n: int
    probes: list = field(default_factory=list)  # (index, verdict) in the order judged
    first_bad: Optional[int] = None  # the answer; None: no regression, or undecided (see `undecided`)
    undecided: Optional[tuple] = None  # (low, high): skipped commits left the answer somewhere in here

    @property
    def comparisons(self) -> int:
        return len(self.probes)


def _next_probe(low: int, high: int, skipped: set) -> Optional[int]:
    """The untested index in [low, high) nearest the middle (a skipped one is not asked again)."""
    middle = (low + high) // 2
    for offset in range(high - low):
        for index in (middle - offset, middle + offset):
            if low <= index < high and index not in skipped:
                return index
    return None


def first_bad_commit(n: int, judge: Callable[[int], str], *, confirm: bool = True) -> Search:
    """The first index in 0..n-1 that `judge` calls bad, given that every commit before a bad one is
    good (GOOD is), in ceil(log2 n) judgements plus one: first `judge(n - 1)` (BAD) confirms there is
    a regression at all; without one the search stops there. `judge` answers BAD, GOOD or SKIP (the
    commit cannot be judged: the answer is then reported as a range where it matters)."""
    search = Search(n)
    if n == 0:
        return search
    if confirm:
        verdict = judge(n - 1)
        search.probes.append((n - 1, verdict))
        if verdict != BAD:
            return search
    low, high, skipped = 0, n - 1, set()  # the first bad commit is in [low, high]; high is bad
    while low < high:
        index = _next_probe(low, high, skipped)
        if index is None:
            search.undecided = (low, high)
            return search
        verdict = judge(index)
        search.probes.append((index, verdict))
        if verdict == BAD:
            high = index
        elif verdict == GOOD:
            low = index + 1
        else:
            skipped.add(index)
    search.first_bad = high
    return search


def counting_config(config: BenchConfig) -> BenchConfig:
    """`config` cut to what its counters need: the instrumented steps, no warm-up, one one-step repeat."""
    return config.replace(repeats=1, steps=1, epochs=None, warmup_steps=0)


def measure_counters(tree: BaseTree, config: BenchConfig, *, target: str = DEFAULT_TARGET,
                     plugins: Optional[str] = None, timeout: Optional[float] = None) -> RunResult:
    """One worker of `tree`'s code builds `config`, runs its untimed counting steps and one timed step:
    its row (FLOPs, ATen operators per step, graph bytes) and per-operator counts, in seconds."""
    side = tree_side(tree, plugins=plugins)
    counting = counting_config(config)
    worker = WarmWorker(counting, side.protocol.target(target, timing_only=False), timeout, side.env, cwd=side.cwd,
                        cpus=pair_cpus(counting, 0), module=side.protocol.warm_worker, protocol=side.protocol.version)
    try:
        worker.wait_ready()
        worker.time_repeat()
    except WorkerGone as e:
        return final_result(worker, str(e))
    except BaseException:
        worker.kill()
        worker.close()
        raise
    return final_result(worker)


def probe_order(search: Search, commits: Sequence[str]) -> list[tuple[str, str]]:
    """(commit, verdict) of every probe, in the order judged."""
    return [(commits[i], verdict) for i, verdict in search.probes]


def scratch_dir(out: Path, kind: str, index: int, commit: str) -> Path:
    """Where one probe's results go inside bisect's OUT: probes/<nn>-<kind>-<short hash>."""
    return Path(out) / "probes" / f"{index:02d}-{kind}-{commit[:12]}"
