"""Argument types and defaults the commands share: numbers with their bounds, lists, output paths."""

from __future__ import annotations

import argparse
import datetime as _dt
import math
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


def at_least_two(text: str) -> int:
    """An integer >= 2 (a growth factor: 1 would never grow; rounds an interval is taken over)."""
    value = positive_int(text)
    if value < 2:
        raise argparse.ArgumentTypeError(f"must be >= 2, got {value}")
    return value


def nonnegative_int(text: str) -> int:
    value = int(text) if text.lstrip("-").isdigit() else None
    if value is None or value < 0:
        raise argparse.ArgumentTypeError(f"must be an integer >= 0, got {text!r}")
    return value


def finite_float(text: str) -> float:
    """A number, nan and infinities refused (every float flag is a size, a time or a rate)."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError(f"must be a finite number, got {text}")
    return value


def positive_float(text: str) -> float:
    value = finite_float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def nonnegative_float(text: str) -> float:
    value = finite_float(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def unit_fraction(text: str) -> float:
    """A fraction of a test set: 0 <= E <= 1."""
    value = finite_float(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"must be a fraction between 0 and 1, got {text}: e.g. 0.025")
    return value


def open_unit_float(text: str) -> float:
    """A number strictly between 0 and 1 (a mixture weight)."""
    value = finite_float(text)
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
    """`"1,0.1"` -> (1.0, 0.1): finite numbers, order kept, repeats dropped."""
    try:
        values = tuple(dict.fromkeys(float(p) for p in text.split(",") if p.strip()))
    except ValueError:
        raise UsageError(f"{flag} {text!r} is not a list of numbers: e.g. {flag} 1,0.1") from None
    if not all(math.isfinite(v) for v in values):
        raise UsageError(f"{flag} {text!r} holds nan or an infinity: give finite numbers, e.g. {flag} 1,0.1")
    if not values:
        raise UsageError(f"{flag} is empty: give comma-separated numbers, e.g. {flag} 1,0.1")
    return values
