"""Interleaved timing rounds: every config timed once per round, in a seeded shuffled order.

On a shared machine the speed drifts over minutes. Timing a config's repeats back to back puts
each config in its own slice of that drift, so two implementations can differ by 20% in one run
and not in the next. Here a sweep of R rounds times every config once per round (its repeats
spread over the rounds), the order shuffled per round with a seed, so drift hits every config
alike; `check` forms each ratio to `sequential` within a round and bootstraps across rounds.

Isolation is kept: each config runs in its own process, so a crash or an OOM costs that config's
row only. Two ways to drive it (`workers`):
- `warm` (default): one worker process per config, started once (build, counters, warm-up), then
  driven round by round over a pipe: "go" -> it times one repeat and answers "done SECONDS STEPS".
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
import json
import os
import random
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Optional, Sequence

from bench.config import BenchConfig
from bench.errors import UsageError
from bench.executors import LocalExecutor, _effective_timeout, _kill_quietly, _timeout_message, child_environment
from bench.provenance import PROJECT_ROOT
from bench.result import RunResult, failure_result
from bench.worker import DEFAULT_TARGET, one_line

ROUND_WORKERS = ("warm", "fresh")
TIMING_ONLY_TARGET = "bench.measure:measure_timing_only"


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


# -- the child side --------------------------------------------------------------------------


class PipePacer:
    """The worker's end of the protocol (see module docstring); a bench.measure.Pacer."""

    def __init__(self, commands, answers):
        self._commands, self._answers = commands, answers
        self._ready_sent = False

    def _say(self, text: str) -> None:
        self._answers.write(text + "\n")
        self._answers.flush()

    def before_repeat(self, index: int) -> None:
        if not self._ready_sent:
            self._say("ready")
            self._ready_sent = True
        line = self._commands.readline()
        if line.strip() != "go":  # the sweep is gone or gave up on us: stop quietly
            raise SystemExit(0)

    def after_repeat(self, index: int, seconds: float, steps: int) -> None:
        self._say(f"done {seconds!r} {steps}")


def worker_main(argv: Sequence[str]) -> int:
    """python -m bench.rounds REQUEST.json RESULT.json ANSWER_FD: a warm round worker."""
    from bench.worker import _die_with_parent, resolve_target, run_config, write_result

    request_path, result_path, answer_fd = Path(argv[0]), Path(argv[1]), int(argv[2])
    request = json.loads(request_path.read_text())
    _die_with_parent(request.get("parent_pid"), request_path.parent)
    config = BenchConfig.from_dict(request["config"])
    answers = os.fdopen(answer_fd, "w")
    pacer = PipePacer(sys.stdin, answers)
    try:
        target = resolve_target(request.get("target") or DEFAULT_TARGET)
    except UsageError as e:
        result = failure_result(config, "error", str(e))
    else:
        result = run_config(config, lambda c: target(c, pacer=pacer), isolated=True)
    write_result(result_path, result)
    answers.close()
    return 0


# -- the sweep side --------------------------------------------------------------------------


class WorkerGone(Exception):
    """The worker closed its pipe (it exited) or did not answer in time."""


class WarmWorker:
    """One config's persistent process (see module docstring)."""

    def __init__(self, config: BenchConfig, target: str, timeout: Optional[float], env: dict,
                 cwd: Optional[Path] = None, cpus: Optional[Sequence[int]] = None):
        self.config = config
        self.timeout = _effective_timeout(config, timeout)
        self._work = Path(tempfile.mkdtemp(prefix="bnn-bench-round-"))
        request = self._work / "request.json"
        self.result_path, self.log_path = self._work / "result.json", self._work / "child.log"
        request.write_text(json.dumps({"config": config.to_dict(), "target": target, "parent_pid": os.getpid()}))
        read_fd, write_fd = os.pipe()
        with open(self.log_path, "wb") as log:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "bench.rounds", str(request), str(self.result_path), str(write_fd)],
                stdin=subprocess.PIPE, stdout=log, stderr=subprocess.STDOUT, env=env, pass_fds=(write_fd,),
                start_new_session=True, text=True, cwd=cwd,
            )
        os.close(write_fd)
        if cpus:
            # Set while the child is still importing, before torch starts its threads (they inherit it).
            try:
                os.sched_setaffinity(self.process.pid, cpus)
            except (OSError, AttributeError):
                pass
        self._answers = read_fd
        self._buffer = b""

    def _line(self, timeout: Optional[float]) -> str:
        deadline = None if timeout is None else time.monotonic() + timeout
        while b"\n" not in self._buffer:
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready, _, _ = select.select([self._answers], [], [], wait)
            if not ready:
                raise WorkerGone("timeout")
            chunk = os.read(self._answers, 4096)
            if not chunk:
                raise WorkerGone("exited")
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        return line.decode()

    def wait_ready(self) -> None:
        if self._line(self.timeout) != "ready":
            raise WorkerGone("exited")

    def time_repeat(self) -> tuple[float, int]:
        try:
            self.process.stdin.write("go\n")
            self.process.stdin.flush()
        except (BrokenPipeError, OSError):
            raise WorkerGone("exited") from None
        word, seconds, steps = (self._line(self.timeout).split() + ["", "", ""])[:3]
        if word != "done":
            raise WorkerGone("exited")
        return float(seconds), int(steps)

    def finish(self, reason: str = "") -> RunResult:
        """Wait for the worker's own result (after its last repeat), or turn its end into a row."""
        if reason == "timeout":
            self.kill()
            return failure_result(self.config, "timeout", _timeout_message(self.timeout))
        try:
            returncode = self.process.wait(timeout=self.timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return failure_result(self.config, "timeout", _timeout_message(self.timeout))
        finally:
            _kill_quietly(self.process.pid)
        return LocalExecutor._result(self.config, returncode, self.result_path, self.log_path)

    def kill(self) -> None:
        _kill_quietly(self.process.pid)
        try:
            self.process.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass

    def close(self) -> None:
        try:
            os.close(self._answers)
        except OSError:
            pass
        try:
            self.process.stdin.close()
        except (BrokenPipeError, OSError):
            pass
        shutil.rmtree(self._work, ignore_errors=True)


def _final(worker: WarmWorker, reason: str = "") -> RunResult:
    try:
        return worker.finish(reason)
    finally:
        worker.close()


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
                write(_final(workers.pop(i), str(e)))
        for r, order in enumerate(round_orders(len(configs), rounds, seed)):
            for i in order:
                if i not in workers:
                    continue
                try:
                    for _ in range(plan[i][r]):
                        workers[i].time_repeat()
                        rounds_of[i].append(r)
                except WorkerGone as e:
                    write(_final(workers.pop(i), str(e)))
        for i in sorted(workers):
            write(_with_rounds(_final(workers.pop(i)), rounds_of[i]))
    finally:
        for worker in workers.values():  # Ctrl-C or a bug: no worker outlives the sweep
            worker.kill()
        for worker in list(workers.values()):
            worker.close()


def base_environment(base_root: Path, env: Optional[dict] = None, plugins: Optional[str] = None) -> dict:
    """The environment of a worker running another checkout's code (`run_rounds_paired`): that tree
    first on PYTHONPATH, this one off it, and only the plugins named for it (a plugin is usually the
    change under test, so by default the base side loads none)."""
    env = dict(os.environ if env is None else env)
    ours = {str(PROJECT_ROOT), str(PROJECT_ROOT.resolve())}
    parts = [str(base_root)] + [p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p and p not in ours]
    env["PYTHONPATH"] = os.pathsep.join(dict.fromkeys(parts))
    env.pop("BNN_BENCH_PLUGINS", None)
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


#: Worker generations of a paired run: the rounds are split into this many blocks, each timed by
#: fresh worker processes (so every worker is replaced this many times less one). Two processes of
#: the same code on the same config differ by a few percent for the life of the process (memory
#: layout; Mytkowicz et al. 2009 saw the same from environment size alone), so one process per side
#: would put that bias straight into candidate/base. Averaging G processes per side shrinks it by
#: sqrt(G); measured on the 2-core CI VM: see README, "The CI gate".
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


def stable_malloc_environment(env: dict) -> dict:
    """`env` with `PAIRED_GLIBC_TUNABLES` added to GLIBC_TUNABLES (a tunable already set there wins)."""
    current = [t for t in env.get("GLIBC_TUNABLES", "").split(":") if t]
    named = {t.split("=", 1)[0] for t in current}
    tunables = current + [f"{k}={v}" for k, v in PAIRED_GLIBC_TUNABLES if k not in named]
    return dict(env, GLIBC_TUNABLES=":".join(tunables))


def paired_worker_settings() -> dict:
    """What every paired worker runs with beyond its config, for both sides' `meta.json`."""
    return {"glibc_tunables": stable_malloc_environment({})["GLIBC_TUNABLES"],
            "pair_pinning": "both sides of a pair on the same CPUs (bench/rounds.py pair_cpus)"}


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


def _timing_only_target(root: Path, target: str) -> str:
    """The target of workers whose counters nobody reads (the base side, later generations): the
    built-in measurement without its untimed counting steps, where that code tree has it."""
    if target != DEFAULT_TARGET:
        return target
    measure_py = Path(root) / "bench" / "measure.py"
    try:
        # Older trees have it without the pacer argument warm workers pass: those take the full target.
        has_it = "def measure_timing_only(config: BenchConfig, **" in measure_py.read_text()
    except OSError:
        has_it = False
    return TIMING_ONLY_TARGET if has_it else target


def run_rounds_paired(configs: Sequence[BenchConfig], rounds: int, seed: int, *, base_root: Path, target: str,
                      timeout: Optional[float], write, write_base, env: Optional[dict] = None,
                      base_plugins: Optional[str] = None, generations: int = PAIRED_GENERATIONS,
                      split: int = PAIRED_SPLIT) -> None:
    """Interleaved rounds in which every config is timed twice, back to back: once by this checkout
    and once by the checkout at `base_root` (the baseline's commit). Both sides of a pair see the
    same seconds of machine drift, so candidate/base per round is stable where either time alone
    is not: the comparison that sees a 10% slowdown on a noisy machine. Workers are warm within a
    generation of rounds and replaced between generations (`PAIRED_GENERATIONS`). `write` gets this
    code's rows (counters from its first generation), `write_base` the base code's (same run ids,
    rounds recorded on both)."""
    envs = {False: stable_malloc_environment(child_environment(env)),
            True: stable_malloc_environment(base_environment(Path(base_root), env, base_plugins))}
    roots = {False: PROJECT_ROOT, True: Path(base_root)}
    later_target = {side: _timing_only_target(roots[side], target) for side in (False, True)}
    timed = [split_repeats(absolute_data_dir(c), split) for c in configs]
    plan = [repeats_per_round(c.repeats, rounds) for c in timed]
    orders = paired_orders(len(configs), rounds, seed)
    parts = {side: {i: [] for i in range(len(configs))} for side in (False, True)}  # base? -> i -> results
    rounds_of = {side: {i: [] for i in range(len(configs))} for side in (False, True)}
    failed = {False: {}, True: {}}  # base? -> i -> the failure row
    live: dict = {}

    def end(side: bool, i: int, reason: str = "") -> None:
        result = _final(live.pop((side, i)), reason)
        if result.row.get("status") == "ok" and not reason:
            parts[side][i].append(result)
        else:
            failed[side][i] = result

    try:
        for g, block in enumerate(generation_blocks(rounds, generations)):
            for i, config in enumerate(timed):
                n = sum(plan[i][r] for r in block)
                cpus = pair_cpus(config, i + g)  # one choice for the pair: both sides run on these
                # Which side's worker starts first alternates over configs and generations.
                for side in ((True, False) if (i + g) % 2 else (False, True)):
                    if i in failed[side] or n == 0:
                        continue
                    # Both sides of the first generation run the counting steps before timing (only
                    # the candidate's counts are kept): a worker that ran them times differently
                    # for the rest of its life, by up to +30% in two CI runs on a contended VM
                    # (README, "The CI gate"); the same history on both sides keeps it out of
                    # candidate/base.
                    worker_target = target if g == 0 else later_target[side]
                    live[(side, i)] = WarmWorker(config.replace(repeats=n), worker_target, timeout, envs[side],
                                                 cwd=None if not side else roots[True], cpus=cpus)
            for key in list(live):
                try:
                    live[key].wait_ready()
                except WorkerGone as e:
                    end(*key, str(e))
            for r in block:
                for i, base_first in orders[r]:
                    for _ in range(plan[i][r]):
                        for side in ((True, False) if base_first else (False, True)):
                            if (side, i) not in live:
                                continue
                            try:
                                live[(side, i)].time_repeat()
                                rounds_of[side][i].append(r)
                            except WorkerGone as e:
                                end(side, i, str(e))
            for key in sorted(live):
                end(*key)
    finally:
        for worker in live.values():  # Ctrl-C or a bug: no worker outlives the sweep
            worker.kill()
        for worker in list(live.values()):
            worker.close()
    for side, out in ((False, write), (True, write_base)):
        for i, config in enumerate(configs):
            if i in failed[side]:
                result = failed[side][i]
                out(dataclasses.replace(result, row=dict(result.row, run_id=config.run_id)))
            elif parts[side][i]:
                merged = merge_round_results(timed[i], parts[side][i])
                merged = dataclasses.replace(merged, row=dict(merged.row, run_id=config.run_id))
                out(dataclasses.replace(merged, rounds=tuple(rounds_of[side][i])))


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
    from bench.timing import summarize  # numpy and torch: only where fresh rounds need it

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


if __name__ == "__main__":
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    sys.exit(worker_main(sys.argv[1:]))
