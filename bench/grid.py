"""Turning command-line axes into a list of configs: parsing, validation, expansion.

Pure functions (apart from asking torch which devices exist), so every bad name, count or
combination is rejected as one `UsageError` before a single process starts or a file is written.
"""

from __future__ import annotations

import itertools
import os
import re
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

from bench.config import BenchConfig
from bench.errors import UsageError
from bnn_impls import names

#: Estimators whose cost depends on the number of KL draws; for the others n_mc is meaningless and fixed to 1.
N_MC_ESTIMATORS = ("mc", "repar", "repar_exact")


def parse_int_list(text: str, *, flag: str = "--samples", minimum: int = 1) -> tuple[int, ...]:
    """`"1,2,5,10"` -> (1, 2, 5, 10); `"1:10"` -> 1..10 inclusive; `"1:10:3"` -> (1, 4, 7, 10).

    Integers may be written `1e6` (the repar profile's n_mc go to a million). Order is kept, repeats dropped.
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
            values.extend(range(start, end + 1, step))
        else:
            values.append(_parse_int(part, flag, example))
    too_small = [v for v in values if v < minimum]
    if too_small:
        raise UsageError(f"{flag} must be integers >= {minimum}, got {too_small[0]}: {example}")
    return tuple(dict.fromkeys(values))


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


def parse_bytes(text: str) -> int:
    """`"4G"` -> 4 GiB, `"512M"`, `"1000000"`; binary units (K, M, G, T, optionally followed by B or iB)."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*", text.upper())
    if not match:
        raise UsageError(f"--memory-limit {text!r} is not a size: write bytes or e.g. 512M, 4G")
    value = int(float(match.group(1)) * _BYTE_UNITS[match.group(2)])
    if value <= 0:
        raise UsageError(f"--memory-limit must be positive, got {text!r}")
    return value


def default_threads() -> int:
    """Two threads, the report's CPU setting, unless the machine has fewer cores."""
    return max(1, min(2, os.cpu_count() or 1))


# ---------------------------------------------------------------------------------------------
# Devices


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def _mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def available_devices() -> tuple[str, ...]:
    """Devices the default job runs on: the CPU, plus `cuda` and `mps` where present."""
    found = ["cpu"]
    if _cuda_count() > 0:
        found.append("cuda")
    if _mps_available():
        found.append("mps")
    return tuple(found)


def check_device(device: str) -> str:
    """Return the device name if this machine has it; else a UsageError that says what it does have."""
    here = ", ".join(available_devices())
    if device == "cpu":
        return device
    match = re.fullmatch(r"cuda(?::(\d+))?", device)
    if match:
        count = _cuda_count()
        if count == 0:
            raise UsageError(f"device {device!r} asked for, but torch finds no CUDA device here: use --device {here}")
        if match.group(1) is not None and int(match.group(1)) >= count:
            raise UsageError(f"device {device!r} does not exist: this machine has cuda:0..cuda:{count - 1}")
        return device
    if device == "mps":
        if not _mps_available():
            raise UsageError(f"device 'mps' asked for, but it is not available here: use --device {here}")
        return device
    raise UsageError(f"unknown device {device!r}: choose one of cpu, cuda, cuda:N, mps (found here: {here})")


# ---------------------------------------------------------------------------------------------
# Expansion


def check_implementation(impl: str) -> None:
    """Any registered name (built-in, plugin, or a peer library installed here); a known peer that is not
    installed is an error naming its install command."""
    from bnn_impls.registry import get_implementation

    get_implementation(impl)


@dataclass(frozen=True)
class Axes:
    """One rectangular grid: every combination of these values (kls None: each implementation's default)."""

    impls: tuple[str, ...]
    tasks: tuple[str, ...]
    samples: tuple[int, ...]
    devices: tuple[str, ...] = ("cpu",)
    kls: Optional[tuple[str, ...]] = None
    priors: tuple[str, ...] = ("gaussian",)
    n_mc: tuple[int, ...] = (1,)


def expand(axes: Axes, **fields) -> list[BenchConfig]:
    """Every config of the grid, in task, device, impl, kl, prior, n_mc, samples order, deduplicated by run_id.

    `fields` are the BenchConfig fields shared by every point (repeats, steps, threads, ...).
    n_mc only varies for the estimators that draw it; for the others it is 1, so `--n-mc 1,100`
    does not measure `closed` twice. A bad name or combination raises UsageError.
    """
    from bnn_impls import registry  # the one source of each implementation's default KL and capabilities

    for impl in axes.impls:
        _usage(check_implementation, impl)
    for task in axes.tasks:
        _usage(names.check_task, task)
    for device in axes.devices:
        check_device(device)
    configs: list[BenchConfig] = []
    for task, device, impl in itertools.product(axes.tasks, axes.devices, axes.impls):
        kls = axes.kls if axes.kls is not None else (_usage(registry.default_kl, impl),)
        for kl, prior in itertools.product(kls, axes.priors):
            _usage(registry.check_combination, impl, kl, prior, task)
            n_mcs = axes.n_mc if kl in N_MC_ESTIMATORS else (1,)
            for n_mc, samples in itertools.product(n_mcs, axes.samples):
                try:
                    config = BenchConfig(impl=impl, task=task, samples=samples, device=device, kl=kl,
                                         prior=prior, n_mc=n_mc, **fields)
                except ValueError as e:  # BenchConfig's own checks (repeats >= 1, steps xor epochs, ...)
                    raise UsageError(f"{e}: fix the matching flag") from None
                configs.append(config)
    return dedupe(configs)


def dedupe(configs: Iterable[BenchConfig]) -> list[BenchConfig]:
    """First occurrence of each run_id, order kept (blocks of a profile may overlap)."""
    first: dict[str, BenchConfig] = {}
    for config in configs:
        first.setdefault(config.run_id, config)
    return list(first.values())


def _usage(check, *args) -> None:
    """Run a bnn_impls name check (or lookup), turning its BnnConfigError into the CLI's UsageError."""
    try:
        return check(*args)
    except names.BnnConfigError as e:
        raise UsageError(str(e)) from None
