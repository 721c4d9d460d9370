"""The devices this machine has, and a device name checked against them."""

from __future__ import annotations

import re

from bench.contract.errors import UsageError


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
