"""Paired timing: every config timed twice per round, back to back, by this checkout and by another
commit's code (bench/gate/base_tree.py), so both sides of a pair see the same seconds of machine
drift. candidate/base per round is then stable where either time alone is not: the comparison that
sees a 10% slowdown on a noisy 2-core VM (analysis/compare.py judges it; docs/ci-gate.md has the
measurements behind every choice below).
"""

from __future__ import annotations

import dataclasses
import os
import random
import sys
from pathlib import Path
from typing import Optional, Sequence

from bench.contract.config import BenchConfig
from bench.contract.provenance import CODE_COMMIT_ENV, CODE_ROOT
from bench.contract.records import RunResult
from bench.contract.store import ResultsWriter
from bench.gate.base_tree import BaseTree
from bench.gate.protocol import CURRENT, WorkerProtocol
from bench.measure.machine import machine_info
from bench.run.executors import child_environment
from bench.run.rounds import merge_round_results, repeats_per_round, round_orders
from bench.run.sweep import sweep_session
from bench.run.warm_worker import WarmWorker, WorkerGone, final_result
from bench.run.worker import DEFAULT_TARGET

#: Worker generations of a paired run: the rounds are split into this many blocks, each timed by
#: fresh worker processes (so every worker is replaced this many times less one). Two processes of
#: the same code on the same config differ by a few percent for the life of the process (memory
#: layout; Mytkowicz et al. 2009 saw the same from environment size alone), so one process per side
#: would put that bias straight into candidate/base. Averaging G processes per side shrinks it by
#: sqrt(G); measured on the 2-core CI VM: see docs/ci-gate.md.
PAIRED_GENERATIONS = 3
#: Each of a config's timed repeats becomes this many shorter ones, the two sides alternating
#: (ABAB...): candidate/base then cancels drift on the scale of a fraction of a second rather
#: than of a whole repeat.
PAIRED_SPLIT = 5

#: glibc malloc settings of both sides' workers in a paired run: big blocks come from the heap
#: (up to glibc's 32 MiB ceiling) and the heap is never trimmed back to the kernel. With glibc's
#: defaults a `regression` S=10 step page-faulted 1,000 to 2,400 times, by how far the allocator's
#: self-tuning thresholds had moved in that process (its history), and with these 0 to 1 times
#: (measured 2026-11-30, Xeon VM). Page faults are the part of a step a busy host slows most: the two
#: CI runs that flagged unchanged code had the regressed side's regression configs up to 39% slower
#: for a whole worker generation.
PAIRED_GLIBC_TUNABLES = (("glibc.malloc.mmap_threshold", "33554432"),
                         ("glibc.malloc.trim_threshold", "4294967296"))

CANDIDATE, BASE = False, True  # the two sides of a pair: this checkout, the base commit's code


def base_environment(base_root: Path, env: Optional[dict] = None, plugins: Optional[str] = None) -> dict:
    """The environment of a worker running another checkout's code: that tree first on PYTHONPATH,
    this one off it, and only the plugins named for it (a plugin is usually the change under test, so
    by default the base side loads none)."""
    env = dict(os.environ if env is None else env)
    ours = {str(CODE_ROOT), str(CODE_ROOT.resolve())}
    parts = [str(base_root)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p not in ours]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(parts))
    env.pop("BNN_BENCH_PLUGINS", None)
    env.pop(CODE_COMMIT_ENV, None)  # a commit stated for our code is not the base tree's
    if plugins:
        env["BNN_BENCH_PLUGINS"] = plugins
    # That worker runs in the other tree's directory: a relative data path would point elsewhere.
    if env.get("BNN_BENCH_DATA"):
        env["BNN_BENCH_DATA"] = os.path.abspath(env["BNN_BENCH_DATA"])
    return env


def absolute_data_dir(config: BenchConfig) -> BenchConfig:
    """`config` with its data directory made absolute against this process's directory, so a worker
    started in another directory (the base side of a paired run) reads the same files. Measured: a
    CI run passing `--data-dir ../shared/data/mnist` left every MNIST config of the base side on
    `DataError`, and those configs unpaired."""
    if config.data_dir and not os.path.isabs(config.data_dir):
        return config.replace(data_dir=os.path.abspath(config.data_dir))
    return config


def paired_orders(n_configs: int, rounds: int, seed: int) -> list[list[tuple[int, bool]]]:
    """Per round, (config, base first?) in timing order: configs shuffled as in `round_orders`, and
    which side of a pair goes first drawn per (round, config), so neither side always runs on the
    warmer (or colder) cache."""
    return [[(i, random.Random(f"{seed}:{r}:{i}:side").random() < 0.5) for i in order]
            for r, order in enumerate(round_orders(n_configs, rounds, seed))]


def stable_malloc_environment(env: dict) -> dict:
    """`env` with `PAIRED_GLIBC_TUNABLES` added to GLIBC_TUNABLES (a tunable already set there wins)."""
    current = [t for t in env.get("GLIBC_TUNABLES", "").split(":") if t]
    named = {t.split("=", 1)[0] for t in current}
    tunables = current + [f"{k}={v}" for k, v in PAIRED_GLIBC_TUNABLES if k not in named]
    return dict(env, GLIBC_TUNABLES=":".join(tunables))


def paired_worker_settings() -> dict:
    """What every paired worker runs with beyond its config, for both sides' `meta.json`."""
    return {"glibc_tunables": stable_malloc_environment({})["GLIBC_TUNABLES"],
            "pair_pinning": "both sides of a pair on the same CPUs (bench/gate/paired.py pair_cpus)"}


def pair_cpus(config: BenchConfig, slot: int, available: Optional[Sequence[int]] = None) -> Optional[list[int]]:
    """The CPUs both sides of one config's pair are pinned to: `config.threads` of the usable ones,
    rotated by `slot` (config and generation) so configs spread over the machine; None (no pinning)
    where the config wants them all. Unpinned, the scheduler kept each side's workers on their own
    vCPU: sampled under load on the 2-vCPU CI VM, the base code's workers ran 63% of the time on
    CPU 0 and this checkout's 64% on CPU 1, so a host that slows one vCPU slowed one side."""
    if available is None:
        available = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    available = list(available)
    threads = max(1, int(config.threads))
    if not available or threads >= len(available):
        return None
    return [available[(slot * threads + k) % len(available)] for k in range(threads)]


def split_repeats(config: BenchConfig, split: int) -> BenchConfig:
    """`config` with each repeat cut into `split` shorter ones (the same steps in all)."""
    split = max(1, min(split, config.steps))
    return config.replace(repeats=config.repeats * split, steps=max(1, config.steps // split))


def generation_blocks(rounds: int, generations: int) -> list[range]:
    """The rounds each generation of workers times: contiguous, as even as possible."""
    generations = max(1, min(generations, rounds))
    edges = [round(g * rounds / generations) for g in range(generations + 1)]
    return [range(edges[g], edges[g + 1]) for g in range(generations)]


@dataclasses.dataclass(frozen=True)
class Side:
    """How one side's workers start: environment, working directory, protocol of its code tree."""

    env: dict
    cwd: Optional[Path]
    protocol: WorkerProtocol


class PairedRun:
    """The state of one paired run across its generations of workers (see `run_rounds_paired`)."""

    def __init__(self, configs: Sequence[BenchConfig], rounds: int, seed: int, sides: dict, target: str,
                 timeout: Optional[float], split: int):
        self.configs = list(configs)
        self.timed = [split_repeats(absolute_data_dir(c), split) for c in configs]
        self.plan = [repeats_per_round(c.repeats, rounds) for c in self.timed]
        self.orders = paired_orders(len(configs), rounds, seed)
        self.sides, self.target, self.timeout = sides, target, timeout
        n = range(len(configs))
        self.parts = {side: {i: [] for i in n} for side in sides}  # side -> config -> per-generation results
        self.rounds_of = {side: {i: [] for i in n} for side in sides}
        self.failed: dict = {side: {} for side in sides}  # side -> config -> its failure row
        self.live: dict = {}  # (side, config) -> WarmWorker

    def end(self, side: bool, i: int, reason: str = "") -> None:
        result = final_result(self.live.pop((side, i)), reason)
        if result.row.get("status") == "ok" and not reason:
            self.parts[side][i].append(result)
        else:
            self.failed[side][i] = result

    def start_generation(self, g: int, block: range) -> None:
        for i, config in enumerate(self.timed):
            n = sum(self.plan[i][r] for r in block)
            cpus = pair_cpus(config, i + g)  # one choice for the pair: both sides run on these
            # Which side's worker starts first alternates over configs and generations.
            for side in ((BASE, CANDIDATE) if (i + g) % 2 else (CANDIDATE, BASE)):
                if i in self.failed[side] or n == 0:
                    continue
                # Both sides of the first generation run the counting steps before timing (only the
                # candidate's counts are kept): a worker that ran them times differently for the rest
                # of its life, by up to +30% in two CI runs on a contended VM (docs/ci-gate.md); the
                # same history on both sides keeps it out of candidate/base.
                how = self.sides[side]
                target = how.protocol.target(self.target, timing_only=g > 0)
                self.live[(side, i)] = WarmWorker(config.replace(repeats=n), target, self.timeout, how.env,
                                                  cwd=how.cwd, cpus=cpus, module=how.protocol.warm_worker,
                                                  protocol=how.protocol.version)
        for key in list(self.live):
            try:
                self.live[key].wait_ready()
            except WorkerGone as e:
                self.end(*key, str(e))

    def time_block(self, block: range) -> None:
        for r in block:
            for i, base_first in self.orders[r]:
                for _ in range(self.plan[i][r]):
                    for side in ((BASE, CANDIDATE) if base_first else (CANDIDATE, BASE)):
                        if (side, i) not in self.live:
                            continue
                        try:
                            self.live[(side, i)].time_repeat()
                            self.rounds_of[side][i].append(r)
                        except WorkerGone as e:
                            self.end(side, i, str(e))
        for key in sorted(self.live):
            self.end(*key)

    def stop(self) -> None:
        """Ctrl-C or a bug: no worker outlives the sweep."""
        for worker in self.live.values():
            worker.kill()
        for worker in list(self.live.values()):
            worker.close()

    def results(self, side: bool) -> list[RunResult]:
        """One row per config of `side`: its failure, or its generations merged (run ids of the grid)."""
        out = []
        for i, config in enumerate(self.configs):
            if i in self.failed[side]:
                result = self.failed[side][i]
                out.append(dataclasses.replace(result, row=dict(result.row, run_id=config.run_id)))
            elif self.parts[side][i]:
                merged = merge_round_results(self.timed[i], self.parts[side][i])
                merged = dataclasses.replace(merged, row=dict(merged.row, run_id=config.run_id))
                out.append(dataclasses.replace(merged, rounds=tuple(self.rounds_of[side][i])))
        return out


def tree_side(tree: BaseTree, env: Optional[dict] = None, plugins: Optional[str] = None) -> Side:
    """How a worker of another commit's unpacked code starts (either side of a pair)."""
    return Side(stable_malloc_environment(base_environment(Path(tree.root), env, plugins)), Path(tree.root),
                tree.protocol)


def run_rounds_paired(configs: Sequence[BenchConfig], rounds: int, seed: int, *, base: BaseTree, target: str,
                      timeout: Optional[float], write, write_base, env: Optional[dict] = None,
                      base_plugins: Optional[str] = None, generations: int = PAIRED_GENERATIONS,
                      split: int = PAIRED_SPLIT, candidate: Optional[BaseTree] = None,
                      candidate_plugins: Optional[str] = None) -> None:
    """Interleaved rounds in which every config is timed by this checkout (or by `candidate`'s code,
    another unpacked commit, as `history` and `bisect` do) and by `base`'s code, back to back. Workers
    are warm within a generation of rounds and replaced between generations (`PAIRED_GENERATIONS`).
    `write` gets the candidate's rows (counters from its first generation), `write_base` the base
    code's (same run ids, rounds recorded on both)."""
    here = Side(stable_malloc_environment(child_environment(env)), None, CURRENT)
    sides = {CANDIDATE: here if candidate is None else tree_side(candidate, env, candidate_plugins),
             BASE: tree_side(base, env, base_plugins)}
    run = PairedRun(configs, rounds, seed, sides, target, timeout, split)
    try:
        for g, block in enumerate(generation_blocks(rounds, generations)):
            run.start_generation(g, block)
            run.time_block(block)
    finally:
        run.stop()
    for result in run.results(CANDIDATE):
        write(result)
    for result in run.results(BASE):
        write_base(result)


def run_paired_sweep(configs: Sequence[BenchConfig], out_dir, base: BaseTree, *, rounds: int, round_seed: int = 0,
                     target: str = DEFAULT_TARGET, base_plugins: Optional[str] = None, profile: Optional[str] = None,
                     argv: Optional[Sequence[str]] = None, progress: bool = True,
                     candidate: Optional[BaseTree] = None) -> Path:
    """A sweep of `configs` into a fresh `out_dir`, every config paired with `base`'s code in every
    round; the base code's rows go to `out_dir/base/` (same run ids, `git_commit` the base's). With
    `candidate`, that unpacked commit's code is the other side (its rows' `git_commit` its own), not
    this checkout; both trees' workers then load the same plugins, `base_plugins`."""
    out_dir = Path(out_dir)
    argv = list(argv if argv is not None else sys.argv)
    for config in configs:
        repeats_per_round(config.repeats, rounds)  # refuse before anything runs
    extra = paired_worker_settings()
    if candidate is not None:  # meta.json names the code that was timed, not this checkout
        extra.update(machine=dict(machine_info(), git_commit=candidate.commit), code_root=str(candidate.root),
                     worker_protocol=candidate.protocol.version)
    with sweep_session(configs, out_dir, resume=False, profile=profile, argv=argv, executor_name="local",
                       progress=progress, rounds=rounds, round_seed=round_seed, round_workers="warm",
                       extra_meta=extra) as session:
        base_writer = ResultsWriter(out_dir / "base")
        meta = base_writer.start_meta(configs=configs, profile=profile, argv=argv,
                                      machine=dict(machine_info(), git_commit=base.commit), executor="local")
        meta = base_writer.record_rounds(meta, rounds=rounds, seed=round_seed, workers="warm")
        meta = dict(meta, code_root=str(base.root), plugins=base_plugins or "", worker_protocol=base.protocol.version,
                    **paired_worker_settings())

        def write_base(result: RunResult) -> None:
            base_writer.append(dataclasses.replace(result, row=dict(result.row, git_commit=base.commit)))

        interrupted = True
        try:
            write = session.write
            if candidate is not None:
                def write(result: RunResult) -> None:
                    session.write(dataclasses.replace(result, row=dict(result.row, git_commit=candidate.commit)))
            run_rounds_paired(session.todo, rounds, round_seed, base=base, target=target, timeout=None,
                              write=write, write_base=write_base, base_plugins=base_plugins, candidate=candidate,
                              candidate_plugins=base_plugins)
            interrupted = False
        finally:
            base_writer.finish_meta(meta, interrupted=interrupted)
    return out_dir
