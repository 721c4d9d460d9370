"""Interleaved timing rounds: every config timed once per round, in a seeded shuffled order.

On a shared machine the speed drifts over minutes. Timing a config's repeats back to back puts
each config in its own slice of that drift, so two implementations can differ by 20% in one run
and not in the next. Here a sweep of R rounds times every config once per round (its repeats
spread over the rounds), the order shuffled per round with a seed, so drift hits every config
alike; `check` forms each ratio to `sequential` within a round and bootstraps across rounds.

Isolation is kept: each config runs in its own process, so a crash or an OOM costs that config's
row only. Two ways to drive it (`workers`):
- `warm` (default): one worker process per config, started once (build, counters, warm-up), then
  driven round by round over a pipe (bench/run/warm_worker.py).
  All workers stay alive (idle, blocked on the pipe) for the whole sweep, so memory is the sum of
  the configs': fine for the small `ci` grid, not meant for `paper`-sized grids.
- `fresh`: a new process per (config, round) through the local executor (start-up, build and
  warm-up paid every round); kept because it isolates rounds completely, and to measure the two.

A config's row (and its repeats and operator counts) is written after its last round, so
`--resume` re-runs every config without a final row from its first round; a config that fails
is written at once and leaves the later rounds.
"""

from __future__ import annotations

import dataclasses
import random
from typing import Optional, Sequence

from bench.contract.config import BenchConfig
from bench.contract.errors import UsageError
from bench.contract.records import RunResult, failure_result
from bench.measure.timing import summarize
from bench.run.executors import LocalExecutor, child_environment
from bench.run.warm_worker import WarmWorker, WorkerGone, final_result
from bench.run.worker import DEFAULT_TARGET, TIMING_ONLY_TARGET, one_line

ROUND_WORKERS = ("warm", "fresh")


def round_orders(n_configs: int, rounds: int, seed: int) -> list[list[int]]:
    """Per round, the order (indices into the grid) in which its configs are timed: each round a
    fresh permutation from a generator seeded by (seed, round), so a run is reproducible and
    rounds differ."""
    orders = []
    for r in range(rounds):
        order = list(range(n_configs))
        random.Random(f"{seed}:{r}").shuffle(order)
        orders.append(order)
    return orders


def repeats_per_round(repeats: int, rounds: int) -> list[int]:
    """A config's repeats spread as evenly as possible over the rounds, earlier rounds first."""
    if repeats < rounds:
        raise UsageError(f"{repeats} repeats cannot fill {rounds} rounds: raise --repeats to at least {rounds} "
                         "or lower --rounds")
    return [repeats // rounds + (1 if r < repeats % rounds else 0) for r in range(rounds)]


def _with_rounds(result: RunResult, rounds: Sequence[int]) -> RunResult:
    if result.row.get("status") != "ok" or len(rounds) != len(result.repeats):
        return result
    return dataclasses.replace(result, rounds=tuple(rounds))


def run_rounds_warm(configs: Sequence[BenchConfig], rounds: int, seed: int, *, target: str,
                    timeout: Optional[float], write, env: Optional[dict] = None) -> None:
    """Time `configs` in interleaved rounds through warm workers; `write(result)` gets each final row."""
    env = child_environment(env)
    plan = [repeats_per_round(c.repeats, rounds) for c in configs]
    workers: dict[int, WarmWorker] = {}
    rounds_of: dict[int, list[int]] = {i: [] for i in range(len(configs))}
    try:
        # Started together (their builds and warm-ups are untimed and may overlap), all ready
        # before the first timed repeat.
        for i, config in enumerate(configs):
            workers[i] = WarmWorker(config, target, timeout, env)
        for i in list(workers):
            try:
                workers[i].wait_ready()
            except WorkerGone as e:
                write(final_result(workers.pop(i), str(e)))
        for r, order in enumerate(round_orders(len(configs), rounds, seed)):
            for i in order:
                if i not in workers:
                    continue
                try:
                    for _ in range(plan[i][r]):
                        workers[i].time_repeat()
                        rounds_of[i].append(r)
                except WorkerGone as e:
                    write(final_result(workers.pop(i), str(e)))
        for i in sorted(workers):
            write(_with_rounds(final_result(workers.pop(i)), rounds_of[i]))
    finally:
        for worker in workers.values():  # Ctrl-C or a bug: no worker outlives the sweep
            worker.kill()
        for worker in list(workers.values()):
            worker.close()


def run_rounds_fresh(configs: Sequence[BenchConfig], rounds: int, seed: int, *, target: str,
                     timeout: Optional[float], write, env: Optional[dict] = None) -> None:
    """The same rounds with a fresh local-executor process per (config, round)."""
    executor = LocalExecutor(target, timeout, env=env)
    # The counters are the same in every round and merge_round_results keeps the first round's:
    # later rounds of the built-in measurement skip those untimed steps (seconds per config).
    later = LocalExecutor(TIMING_ONLY_TARGET if target == DEFAULT_TARGET else target, timeout, env=env)
    plan = [repeats_per_round(c.repeats, rounds) for c in configs]
    parts: dict[int, list[RunResult]] = {i: [] for i in range(len(configs))}
    failed: set[int] = set()
    for r, order in enumerate(round_orders(len(configs), rounds, seed)):
        for i in order:
            if i in failed:
                continue
            config = configs[i]
            try:
                result = (later if parts[i] else executor).run(config.replace(repeats=plan[i][r]))
            except Exception as e:
                result = failure_result(config, "error", f"executor failed: {one_line(e)}")
            if result.row.get("status") != "ok":
                failed.add(i)
                write(dataclasses.replace(result, row=dict(result.row, run_id=config.run_id, repeats=0), repeats=()))
                continue
            parts[i].append(result)
    for i, config in enumerate(configs):
        if i not in failed and parts[i]:
            write(merge_round_results(config, parts[i]))


def merge_round_results(config: BenchConfig, parts: Sequence[RunResult]) -> RunResult:
    """One row from a config's per-round results: repeats concatenated, statistics over all of them,
    counters from the first round (they are the same in every round), peak RSS the largest."""
    repeats = tuple(rep for part in parts for rep in part.repeats)
    rounds = tuple(r for r, part in enumerate(parts) for _ in part.repeats)
    row = dict(parts[0].row)
    seconds, steps = [s for s, _ in repeats], [n for _, n in repeats]
    stats = summarize(seconds, steps, int(row["steps_per_epoch"]), whole_epochs=bool(row.get("epoch_measured")))
    rss = [p.row.get("rss_peak_bytes") for p in parts if p.row.get("rss_peak_bytes") not in (None, "")]
    row.update(run_id=config.run_id, repeats=len(repeats), step_s_median=stats.step_s_median,
               step_s_iqr=stats.step_s_iqr, step_s_min=stats.step_s_min, epoch_s=stats.epoch_s,
               final_loss=next((p.row.get("final_loss") for p in reversed(parts)
                                if p.row.get("final_loss") not in (None, "")), None),
               rss_peak_bytes=max(rss) if rss else None)
    return RunResult(row=row, repeats=repeats, op_counts=parts[0].op_counts, rounds=rounds)


RUNNERS = {"warm": run_rounds_warm, "fresh": run_rounds_fresh}


def run_rounds(configs, rounds: int, seed: int, *, workers: str = "warm", target: str = DEFAULT_TARGET,
               timeout: Optional[float] = None, write, env: Optional[dict] = None) -> None:
    if workers not in RUNNERS:
        raise UsageError(f"unknown --round-workers {workers!r}: choose one of {', '.join(ROUND_WORKERS)}")
    for config in configs:
        repeats_per_round(config.repeats, rounds)  # refuse before anything runs
    RUNNERS[workers](configs, rounds, seed, target=target, timeout=timeout, write=write, env=env)
