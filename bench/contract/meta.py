"""meta.json: what a results directory was asked to run, on which machine and code, and when; replaced
whole on every write (bench/contract/files.py), read back only as JSON data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Sequence

from bench.contract.config import BenchConfig
from bench.contract.errors import UsageError
from bench.contract.files import WriteFailed, write_atomic
from bench.contract.provenance import now_iso
from bench.contract.schema import META_FILE


def write_meta(out_dir, meta: dict) -> None:
    """Atomically (write a temporary file, fsync, rename): a reader sees the old or the new meta, never half."""
    write_atomic(Path(out_dir) / META_FILE, (json.dumps(meta, indent=2, default=str) + "\n").encode())


def read_meta(out_dir) -> dict:
    path = Path(out_dir) / META_FILE
    try:
        with open(path) as f:
            meta = json.load(f)
    except FileNotFoundError:
        raise UsageError(f"{path} not found: is {out_dir} a results directory written by `bnn-bench sweep`?") \
            from None
    except json.JSONDecodeError as e:
        raise UsageError(f"{path} is not valid JSON ({e.msg} at line {e.lineno}): "
                         "move it away or re-run the sweep") from None
    except (OSError, UnicodeDecodeError, RecursionError) as e:
        raise UsageError(f"{path} cannot be read ({type(e).__name__}: {' '.join(str(e).split())[:100]}): "
                         "move it away or re-run the sweep") from None
    if not isinstance(meta, dict):
        raise UsageError(f"{path} holds a JSON {type(meta).__name__}, not an object: it was not written by "
                         "bnn-bench; move it away or re-run the sweep")
    return meta


def finish_meta(out_dir, meta: dict, *, interrupted: bool = False) -> dict:
    """Record the end time (and that the run was interrupted). Where the run already stopped on an
    error (a full disk, Ctrl-C), failing to write this too must not replace that error: the first is
    what the user needs, and meta.json keeps its previous, whole version."""
    meta = dict(meta, end_time=now_iso())
    if interrupted:
        meta["interrupted_at"] = meta["end_time"]
    try:
        write_meta(out_dir, meta)
    except WriteFailed:
        if not interrupted:
            raise
    return meta


def load_grid(out_dir) -> list[BenchConfig]:
    """The configs a sweep was asked to run, as recorded in meta.json (so `check` can re-run exactly them)."""
    meta = read_meta(out_dir)
    try:
        return [BenchConfig.from_dict(d) for d in meta["grid"]]
    except (KeyError, TypeError, ValueError) as e:
        raise UsageError(f"{Path(out_dir) / META_FILE} has no usable grid ({e}): re-run the sweep") from None


def merge_grid(recorded: list[dict], configs: Sequence[BenchConfig]) -> list[dict]:
    """The recorded grid plus any config it lacks (a resume with more flags), order kept."""
    known = {BenchConfig.from_dict(d).run_id for d in recorded}
    return list(recorded) + [c.to_dict() for c in configs if c.run_id not in known]
