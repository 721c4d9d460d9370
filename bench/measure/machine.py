"""The machine a sweep ran on, for meta.json (CPU, memory, GPUs, driver, library versions), and the
name of the device a row was measured on.

Every probe is optional: a missing torch, CUDA or NVML leaves its fields empty instead of failing
a sweep that does not need them.
"""

from __future__ import annotations

import os
import platform
import socket

from bench.contract.provenance import cpu_model, git_commit, total_memory_bytes


def _usable_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))  # what this process may use (containers, taskset)
    except AttributeError:
        return os.cpu_count() or 0


def _torch_info() -> dict:
    try:
        import torch
    except ImportError:
        return {"torch_version": None, "cuda_version": None, "gpus": []}
    gpus = []
    if torch.cuda.is_available():
        for index in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(index)
            gpus.append({"index": index, "name": props.name, "total_memory_bytes": int(props.total_memory)})
    return {"torch_version": torch.__version__, "cuda_version": torch.version.cuda, "gpus": gpus}


def _nvidia_driver() -> str | None:
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            version = pynvml.nvmlSystemGetDriverVersion()
            return version.decode() if isinstance(version, bytes) else version
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # no NVML library, no NVIDIA device, no permission: nothing to report
        return None


def machine_info() -> dict:
    """A JSON-ready description of this machine and software stack."""
    info = {
        "hostname": socket.gethostname(),
        "cpu_model": cpu_model(),
        "cpu_cores": os.cpu_count(),
        "cpu_cores_usable": _usable_cores(),
        "ram_bytes": total_memory_bytes(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "git_commit": git_commit(),
    }
    info.update(_torch_info())
    info["nvidia_driver"] = _nvidia_driver() if info["gpus"] else None
    return info


def device_name(device: str) -> str:
    """Human name of a torch device: the GPU's marketing name, or the CPU model."""
    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(torch.device(device))
    if device == "mps":
        return "Apple MPS (" + platform.machine() + ")"
    return cpu_model()
