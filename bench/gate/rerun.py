"""`check BASELINE` without a candidate: the baseline's grid run again here, in its interleaved rounds,
each config paired with the baseline commit's code where that code can be had (bench/gate/paired.py).
"""

from __future__ import annotations

import contextlib
import dataclasses
import sys
from pathlib import Path
from typing import Optional, Sequence

from bench.contract.errors import UsageError
from bench.contract.store import load_grid, read_meta
from bench.gate.base_tree import BaseTree, BaseTreeUnavailable, temporary_tree
from bench.gate.paired import run_paired_sweep
from bench.grid.checks import check_data
from bench.run.sweep import run_sweep
from bench.run.worker import DEFAULT_TARGET


@dataclasses.dataclass(frozen=True)
class RerunOptions:
    """How `check` re-runs a baseline (its flags)."""

    out: Path
    data_dir: Optional[str] = None
    rounds: Optional[int] = None  # None: the baseline's own
    executor: str = "local"
    paired: bool = True
    base_ref: Optional[str] = None  # None: the commit that recorded the baseline
    base_plugins: Optional[str] = None
    target: Optional[str] = None  # tests inject fake measurements (they bring their own data)
    argv: Sequence[str] = ()


def rerun_baseline(baseline: Path, options: RerunOptions) -> Path:
    """Measure the baseline's grid here into `options.out`; returns it."""
    if not baseline.is_dir():
        raise UsageError(f"{baseline} is not a results directory: re-running needs a baseline written by "
                         "`run_bench.py sweep` (or give CANDIDATE)")
    configs = load_grid(baseline)
    if options.data_dir:
        configs = [dataclasses.replace(c, data_dir=options.data_dir) for c in configs]
    if not options.target:
        check_data(configs)
    meta = read_meta(baseline)
    rounds = options.rounds or meta.get("rounds")
    if rounds is not None and options.executor != "local":
        raise UsageError(f"the baseline was timed in {rounds} interleaved rounds, which need --executor local")
    workers = meta.get("round_workers") or "warm"
    seed = int(meta.get("round_seed") or 0)
    target = options.target or DEFAULT_TARGET
    argv = list(options.argv or sys.argv)
    with contextlib.ExitStack() as stack:
        base = None
        if rounds is not None and workers == "warm" and options.paired:
            base = base_tree(options.base_ref or (meta.get("machine") or {}).get("git_commit"), options.out, stack)
        if base is not None:
            return run_paired_sweep(configs, options.out, base, rounds=rounds, round_seed=seed, target=target,
                                    base_plugins=options.base_plugins, profile="check", argv=argv)
        return run_sweep(configs, options.out, executor=options.executor, profile="check", argv=argv, rounds=rounds,
                         round_seed=seed, round_workers=workers, target=target)


def base_tree(ref, out: Path, stack: contextlib.ExitStack) -> Optional[BaseTree]:
    """The base commit's code for paired timing, unpacked for the life of `stack`; or None with the
    reason on stderr (the run then times this checkout alone and says so)."""
    if not ref:
        print("check: paired timing skipped: the baseline's meta.json names no commit (pass --base-ref)",
              file=sys.stderr)
        return None
    try:
        tree = stack.enter_context(temporary_tree(str(ref)))
    except BaseTreeUnavailable as e:
        print(f"check: paired timing skipped: {e}", file=sys.stderr)
        return None
    print(f"check: timing this checkout beside commit {tree.commit[:12]}'s code, pair by pair in every round "
          f"(out: {out})", file=sys.stderr)
    return tree
