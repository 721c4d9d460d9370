"""`check BASELINE` without a candidate: the baseline's grid run again here, in its interleaved rounds,
each config paired with the baseline commit's code (bench/gate/paired.py).

A baseline is data, often someone else's (a pull request's, a colleague's run): what it names is
never run on its own say. A model factory recorded in its grid is imported and called only when the
user names that same factory (`--trust-model`); the base commit it records must be a commit hash, is
exported with git as an argument (never through a shell), and one that cannot be had stops the
check up front (exit 2) rather than letting it time this checkout alone.
"""

from __future__ import annotations

import contextlib
import dataclasses
import re
import sys
from pathlib import Path
from typing import Optional, Sequence

from bench.contract.errors import UsageError
from bench.contract.meta import load_grid, read_meta
from bench.gate.base_tree import BaseTree, BaseTreeUnavailable, temporary_tree
from bench.gate.paired import run_paired_sweep
from bench.grid.checks import check_data, check_models
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
    trusted_models: tuple = ()  # model factories ("module:function") the user allows the grid to run


def rerun_baseline(baseline: Path, options: RerunOptions) -> Path:
    """Measure the baseline's grid here into `options.out`; returns it."""
    if not baseline.is_dir():
        raise UsageError(f"{baseline} is not a results directory: re-running needs a baseline written by "
                         "`run_bench.py sweep` (or give CANDIDATE)")
    configs = load_grid(baseline)
    check_trusted(configs, options.trusted_models, baseline)
    if options.data_dir:
        configs = [dataclasses.replace(c, data_dir=options.data_dir) for c in configs]
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
        if rounds is not None and workers == "warm" and options.paired:  # a git export: cheap, so first
            ref = options.base_ref or recorded_commit(meta, baseline)
            base = base_tree(ref, options.out, stack)
        check_models(configs)  # imports and calls only factories the user trusts (checked above)
        if not options.target:
            check_data(configs)
        if base is not None:
            return run_paired_sweep(configs, options.out, base, rounds=rounds, round_seed=seed, target=target,
                                    base_plugins=options.base_plugins, profile="check", argv=argv)
        return run_sweep(configs, options.out, executor=options.executor, profile="check", argv=argv, rounds=rounds,
                         round_seed=seed, round_workers=workers, target=target)


def check_trusted(configs, trusted, baseline: Path) -> None:
    """UsageError unless every model factory the grid names is one the user trusts by name."""
    for factory in sorted({c.model for c in configs if c.model}):
        if factory not in trusted:
            raise UsageError(f"{baseline}'s grid names the model factory {factory!r}, which re-running it would "
                             f"import and call: pass --trust-model {factory} if you trust that code, or compare "
                             "two existing runs (check BASELINE CANDIDATE)")


def recorded_commit(meta: dict, baseline: Path) -> str:
    """The commit that recorded the baseline, as its meta.json says: a hex hash (a trailing `+dirty`,
    uncommitted changes at the time, is dropped with a note), never anything git could read as an
    option or a range."""
    commit = str((meta.get("machine") or {}).get("git_commit") or "")
    if not commit:
        raise UsageError(f"{baseline}/meta.json names no commit to pair with: pass --base-ref REF, or --no-paired "
                         "to time this checkout alone")
    hash_part, _, dirty = commit.partition("+")
    if not re.fullmatch(r"[0-9a-f]{7,40}", hash_part) or dirty not in ("", "dirty"):
        raise UsageError(f"{baseline}/meta.json names the base commit {commit[:60]!r}, which is not a commit hash: "
                         "pass --base-ref REF, or --no-paired")
    if dirty:
        print(f"check: the baseline was recorded with uncommitted changes on {hash_part[:12]}: pairing with that "
              "commit's code as committed", file=sys.stderr)
    return hash_part


def base_tree(ref: str, out: Path, stack: contextlib.ExitStack) -> BaseTree:
    """The base commit's code for paired timing, unpacked for the life of `stack`. One that cannot be
    had is a UsageError: a gate that quietly timed this checkout alone would judge nothing by pairs."""
    try:
        tree = stack.enter_context(temporary_tree(str(ref)))
    except BaseTreeUnavailable as e:
        raise UsageError(f"cannot pair with base commit {ref}: {e} (or pass --no-paired)") from None
    print(f"check: timing this checkout beside commit {tree.commit[:12]}'s code, pair by pair in every round "
          f"(out: {out})", file=sys.stderr)
    return tree
