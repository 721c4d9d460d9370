"""Command-line values parsed: integer lists and ranges, name lists, byte sizes, the default threads.

Pure functions: every bad value is one `UsageError` naming the fix, before anything runs.
"""

from __future__ import annotations

import os
import re
from typing import Optional

from bench.contract.errors import UsageError

#: The largest integer a list flag takes: n_mc goes to 10^6 in the repar profile; beyond 10^9 no config
#: here could run (and 1e30 would overflow the samplers).
MAX_INT = 10**9
#: The most values a list flag may expand to (a range like 1:1000000000 must not fill the memory).
MAX_VALUES = 10_000


def parse_int_list(text: str, *, flag: str = "--samples", minimum: int = 1, maximum: int = MAX_INT) -> tuple[int, ...]:
    """`"1,2,5,10"` -> (1, 2, 5, 10); `"1:10"` -> 1..10 inclusive; `"1:10:3"` -> (1, 4, 7, 10).

    Integers may be written `1e6` (the repar profile's n_mc go to a million). Order is kept, repeats dropped.
    Every value lies in [minimum, maximum], and a list expands to at most MAX_VALUES values.
    """
    example = f"e.g. {flag} 1,2,5,10 or {flag} 1:10"
    text = (text or "").strip()
    if not text:
        raise UsageError(f"{flag} is empty: give a comma-separated list or a range, {example}")
    values: list[int] = []
    for part in text.split(","):
        part = part.strip()
        if ":" in part:
            bounds = part.split(":")
            if len(bounds) not in (2, 3):
                raise UsageError(f"{flag} range {part!r} is malformed: write START:END or START:END:STEP, {example}")
            start, end, *step = (_parse_int(b, flag, example) for b in bounds)
            step = step[0] if step else 1
            if step < 1 or end < start:
                raise UsageError(f"{flag} range {part!r} is empty: write START:END with START <= END and STEP >= 1")
            _check_bounds((start, end), flag, minimum, maximum, example)
            if (end - start) // step + 1 + len(values) > MAX_VALUES:
                raise UsageError(f"{flag} range {part!r} has more than {MAX_VALUES} values: use a STEP, e.g. "
                                 f"{flag} {start}:{end}:{max(1, (end - start) // 10)}")
            values.extend(range(start, end + 1, step))
        else:
            values.append(_parse_int(part, flag, example))
            _check_bounds(values[-1:], flag, minimum, maximum, example)
    return tuple(dict.fromkeys(values))


def _check_bounds(values, flag: str, minimum: int, maximum: int, example: str) -> None:
    for value in values:
        if value < minimum:
            raise UsageError(f"{flag} must be integers >= {minimum}, got {value}: {example}")
        if value > maximum:
            raise UsageError(f"{flag} must be integers <= {maximum:.0e}, got {value:.3g}: {example}")


def _parse_int(token: str, flag: str, example: str) -> int:
    token = token.strip()
    try:
        return int(token)
    except ValueError:
        pass
    try:
        value = float(token)  # accepts 1e6
    except ValueError:
        value = None
    if value is None or not value.is_integer():
        raise UsageError(f"{flag} value {token!r} is not an integer: {example}")
    return int(value)


def parse_name_list(text: Optional[str]) -> Optional[tuple[str, ...]]:
    """`"vmap, vmap_lrt"` -> ("vmap", "vmap_lrt"); None stays None (the axis is not overridden)."""
    if text is None:
        return None
    items = tuple(dict.fromkeys(p.strip() for p in text.split(",") if p.strip()))
    if not items:
        raise UsageError(f"empty list {text!r}: give comma-separated names, e.g. vmap,vmap_lrt")
    return items


_BYTE_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


#: The smallest --memory-limit a worker can live under: it must import torch and load a task's data.
#: Measured 2026-12-04 (2-vCPU EPYC, torch 2.13.0+cpu): under an address-space cap of 512 MiB `import
#: torch` fails (OpenBLAS cannot allocate its buffers), under 1 GiB it imports.
MIN_MEMORY_LIMIT = 2**30


def parse_bytes(text: str) -> int:
    """`"4G"` -> 4 GiB, `"512M"`, `"1000000"`; binary units (K, M, G, T, optionally followed by B or iB).
    Below MIN_MEMORY_LIMIT no worker could start, so every config would fail: refused up front."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*", text.upper())
    if not match:
        raise UsageError(f"--memory-limit {text!r} is not a size: write bytes or e.g. 512M, 4G")
    value = int(float(match.group(1)) * _BYTE_UNITS[match.group(2)])
    if value < MIN_MEMORY_LIMIT:
        raise UsageError(f"--memory-limit {text!r} is below 1G, less than a worker needs to import torch: "
                         "give at least 1G, e.g. --memory-limit 8G")
    return value


def default_threads() -> int:
    """Two threads, the report's CPU setting, unless the machine has fewer cores."""
    return max(1, min(2, os.cpu_count() or 1))
