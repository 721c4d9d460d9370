"""Argument types and defaults the commands share: numbers with their bounds, lists, output paths."""

from __future__ import annotations

import argparse
import datetime as _dt
from pathlib import Path
from typing import Optional

from bench.contract.errors import UsageError

#: Where results go when no --out is given: relative to the working directory.
RUNS_DIR = Path("results") / "runs"


def positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not an integer") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {value}")
    return value


def nonnegative_int(text: str) -> int:
    value = int(text) if text.lstrip("-").isdigit() else None
    if value is None or value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value


def positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def open_unit_float(text: str) -> float:
    """A number strictly between 0 and 1 (a mixture weight)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError(f"must be strictly between 0 and 1, got {text}")
    return value


def default_out_dir(profile: str, now: Optional[_dt.datetime] = None) -> Path:
    """results/runs/<profile>-<YYYYmmdd-HHMMSS>, relative to the working directory (never inside the
    installed package)."""
    stamp = (now or _dt.datetime.now()).strftime("%Y%m%d-%H%M%S")
    return RUNS_DIR / f"{profile}-{stamp}"


def resolve_out(args, profile: str) -> Path:
    if args.out:
        return Path(args.out)
    if args.resume:
        raise UsageError("--resume needs --out DIR: the results directory to continue")
    return default_out_dir(profile)


def float_list(text: str, flag: str) -> tuple[float, ...]:
    try:
        values = tuple(dict.fromkeys(float(p) for p in text.split(",") if p.strip()))
    except ValueError:
        raise UsageError(f"{flag} {text!r} is not a list of numbers: e.g. {flag} 1,0.1") from None
    if not values:
        raise UsageError(f"{flag} is empty: give comma-separated numbers, e.g. {flag} 1,0.1")
    return values
