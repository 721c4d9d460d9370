"""`sweep --dry-run`: the grid a sweep would run, one line per config, and how long it would take.

Checks what a real run checks before its first config (the grid, --target, the --out directory,
data sets) but writes nothing. The estimate reuses step times measured earlier *on this machine*:
from `--estimate-from DIR`, else from every results directory under the project's `results/`.
A row counts when its config measures the same thing (task, implementation, KL estimator, prior,
n_mc, S, batch size, dtype, device) and it was measured on the same CPU model or GPU
(`device_name`) with the same threads; the newest such row wins. A config then takes

    step_s_median x (3 + warmup + repeats x steps per repeat) + start-up

(the 3 untimed steps: graph bytes, FLOPs, final loss). Start-up, the process, imports and data
loading of one config, is measured from the source directory itself: the median over its ok rows
of the time between consecutive row timestamps minus the row's own steps. Where that cannot be
measured, `ASSUMED_STARTUP_S` is used and the output says so.
"""

from __future__ import annotations

import datetime as _dt
import statistics
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Sequence

from bench.contract.config import BenchConfig
from bench.contract.errors import UsageError
from bench.contract.meta import read_meta
from bench.contract.provenance import CODE_ROOT
from bench.contract.schema import META_FILE, RUNS_FILE
from bench.contract.store import read_runs
from bench.measure.machine import device_name
from bench.run.progress import config_label, format_duration

#: Per-config process start-up, imports and data loading, in seconds, when no earlier run of this
#: machine lets it be measured. An assumption (a fresh `python -m bench.run.worker` importing torch and
#: loading MNIST took 2-4 s on the 2-core development VM), not a measurement of the machine at hand.
ASSUMED_STARTUP_S = 3.0

#: Untimed steps of every config besides its warm-up: graph bytes, FLOP count, final loss.
EXTRA_STEPS = 3

#: The config fields (as runs.csv columns) that decide whether an earlier row measured the same thing.
MATCH_COLUMNS = ("task", "impl", "kl", "prior", "n_mc", "samples", "batch_size", "dtype", "device", "threads")


@dataclass(frozen=True)
class Source:
    """Earlier rows of this machine, from one results directory."""

    directory: Path
    rows: list  # ok rows of runs.csv, as read_runs gives them
    startup_s: Optional[float]  # measured; None when the directory does not allow it


def _float(text) -> Optional[float]:
    try:
        return float(text) if text not in (None, "") else None
    except (TypeError, ValueError):
        return None


def _time(text: str) -> Optional[_dt.datetime]:
    try:
        return _dt.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        return None


def _key_of_config(config: BenchConfig) -> tuple:
    from bnn_impls import TASK_SPECS, default_kl

    task = TASK_SPECS.get(config.task)
    batch = config.batch_size or (task.batch_size if task else None)
    return (config.task, config.impl, config.kl or default_kl(config.impl), config.prior, str(config.n_mc),
            str(config.samples), str(batch), config.dtype, config.device, str(config.threads))


def _key_of_row(row: dict) -> tuple:
    def num(column):
        value = _float(row.get(column))
        return str(int(value)) if value is not None and value.is_integer() else str(row.get(column, ""))

    return tuple(num(c) if c in ("n_mc", "samples", "batch_size", "threads") else row.get(c, "") for c in MATCH_COLUMNS)


def _row_steps(row: dict) -> Optional[float]:
    """Steps a measured row's config ran in its process (warm-up, timed, and the untimed extras)."""
    repeats, timed = _float(row.get("repeats")), _float(row.get("steps_timed"))
    warmup = _float(row.get("warmup_steps")) or 0.0
    if repeats is None or timed is None:
        return None
    return EXTRA_STEPS + warmup + repeats * timed


def measured_startup(directory: Path, rows: Sequence[dict]) -> Optional[float]:
    """Median over ok rows of (time since the previous row, or the sweep's start) minus the row's own steps."""
    meta_start = None
    if (directory / META_FILE).is_file():
        try:
            meta_start = _time(read_meta(directory).get("start_time"))
        except UsageError:
            meta_start = None
    previous, overheads = meta_start, []
    for row in read_runs(directory):
        stamp = _time(row.get("timestamp"))
        if stamp is None:
            previous = None
            continue
        step_s, steps = _float(row.get("step_s_median")), _row_steps(row)
        if row.get("status") == "ok" and previous is not None and step_s is not None and steps is not None:
            overheads.append((stamp - previous).total_seconds() - step_s * steps)
        previous = stamp
    return max(0.0, statistics.median(overheads)) if overheads else None


def _machine_rows(directory: Path, machine: dict, *, strict: bool) -> Optional[Source]:
    try:
        rows = read_runs(directory)
    except UsageError:
        if strict:
            raise
        return None  # a damaged directory found while searching is skipped, not fatal
    mine = [r for r in rows if r.get("status") == "ok" and machine.get(r.get("device")) == r.get("device_name")]
    if not mine:
        return None
    return Source(directory, mine, measured_startup(directory, rows))


def find_sources(configs: Sequence[BenchConfig], estimate_from: Optional[str], search_root: Path) -> list[Source]:
    """Results directories holding rows of this machine: the one given, or all under `search_root`."""
    machine = {device: device_name(device) for device in {c.device for c in configs}}
    if estimate_from is not None:
        directory = Path(estimate_from)
        if not (directory / RUNS_FILE).is_file():
            raise UsageError(f"--estimate-from {directory} has no {RUNS_FILE}: give a results directory written "
                             "by `run_bench.py sweep`")
        source = _machine_rows(directory, machine, strict=True)
        return [source] if source else []
    if not search_root.is_dir():
        return []
    found = (_machine_rows(p.parent, machine, strict=False) for p in sorted(search_root.rglob(RUNS_FILE)))
    return [s for s in found if s is not None]


@dataclass(frozen=True)
class Estimate:
    seconds: float
    source: Source


def estimate(config: BenchConfig, sources: Sequence[Source],
             steps_per_epoch: Optional[float] = None) -> Optional[Estimate]:
    """Seconds this config would take, from the newest earlier row of the same config on this machine."""
    key = _key_of_config(config)
    best = None
    for source in sources:
        for row in source.rows:
            if _key_of_row(row) == key and _float(row.get("step_s_median")) is not None:
                stamp = row.get("timestamp") or ""
                if best is None or stamp > best[0]:
                    best = (stamp, row, source)
    if best is None:
        return None
    _, row, source = best
    per_epoch = _float(row.get("steps_per_epoch"))
    timed = config.steps if config.steps is not None else config.epochs * (per_epoch or 0)
    steps = EXTRA_STEPS + config.warmup_steps + config.repeats * timed
    startup = source.startup_s if source.startup_s is not None else ASSUMED_STARTUP_S
    return Estimate(_float(row["step_s_median"]) * steps + startup, source)


def _check_out(args) -> set[str]:
    """What a real run refuses about --out, without creating it; the run_ids already done on --resume."""
    from bench.contract.store import completed_run_ids

    if not args.out:
        if args.resume:
            raise UsageError("--resume needs --out DIR: the results directory to continue")
        return set()
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file, not a directory: choose another --out")
    nonempty = out.is_dir() and any(out.iterdir())
    if nonempty and not args.resume:
        raise UsageError(f"--out {out} exists and is not empty: pass --resume to continue it, or choose a new --out")
    return completed_run_ids(out, retry_errors=getattr(args, "retry_errors", False)) if nonempty else set()


def _data_notes(configs: Sequence[BenchConfig], args) -> list[str]:
    from bench.run.worker import DEFAULT_TARGET
    from bnn_impls.mnist import candidate_roots, locate

    if args.target != DEFAULT_TARGET:
        return []
    notes = []
    for data_dir in sorted({c.data_dir or "" for c in configs if c.task == "mnist"}):
        if locate(data_dir or None) is None:
            where = candidate_roots(data_dir or None)[0]
            notes.append(f"note: MNIST is not in {where}: a real run downloads it there first "
                         "(and stops with exit 2 without internet access)")
    return notes


def dry_run(configs: Sequence[BenchConfig], args, *, search_root: Optional[Path] = None) -> str:
    """The text `sweep --dry-run` prints; raises UsageError where a real run would refuse to start."""
    from bench.run.worker import resolve_target

    resolve_target(args.target)
    done = _check_out(args)
    sources = find_sources(configs, getattr(args, "estimate_from", None), search_root or CODE_ROOT / "results")
    width = max((len(c.run_id) for c in configs), default=0)
    lines, total, used, missing = [], 0.0, {}, 0
    for config in configs:
        line = f"{config.run_id:<{width}}  {config_label(config)}"
        if config.run_id in done:
            lines.append(line + "  (done: has a final row in --out, skipped on --resume)")
            continue
        est = estimate(config, sources)
        if est is None:
            missing += 1
        else:
            total += est.seconds
            used[est.source.directory] = est.source
            line += f"  ~{format_duration(est.seconds)}"
        lines.append(line)
    todo = len(configs) - len(done & {c.run_id for c in configs})
    done_note = f" ({len(configs) - todo} done)" if todo < len(configs) else ""
    lines.append(f"total: {len(configs)} config(s), {todo} to run" + done_note)
    if todo and not used:
        lines.append("estimated duration: unknown (no earlier results of this machine for these configs: give "
                     "--estimate-from DIR)")
    elif todo:
        startups = [f"{s.startup_s:.1f} s measured in {s.directory}" if s.startup_s is not None
                    else f"{ASSUMED_STARTUP_S:.1f} s assumed (not measurable from {s.directory})"
                    for s in used.values()]
        partial = f"; {missing} config(s) never measured here are not counted" if missing else ""
        lines.append(f"estimated duration: {'at least ' if missing else ''}{format_duration(total)} (step times of "
                     f"earlier rows of this machine; per-config start-up {', '.join(startups)}{partial})")
    lines += _data_notes(configs, args)
    lines.append("dry run: nothing was measured or written")
    return "\n".join(lines)
