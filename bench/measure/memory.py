"""Memory figures of a training step: bytes saved for backward, CUDA allocator peaks, NVML, RSS.

`graph_bytes` counts the tensors autograd saves for the backward pass, through
`torch.autograd.graph.saved_tensors_hooks`. It measures the algorithm, not the allocator, so it is
deterministic and comparable across devices (the CUDA peak includes workspace and caching).
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable, Optional

import torch


@dataclass
class SavedTensorCounter:
    """Counts each distinct storage saved for backward once (views and re-saves do not double count)."""

    nbytes: int = 0
    _seen: set = field(default_factory=set)

    def pack(self, t: torch.Tensor) -> torch.Tensor:
        storage = t.untyped_storage()
        key = (t.device, storage.data_ptr())
        if key not in self._seen:
            self._seen.add(key)
            self.nbytes += storage.nbytes()
        return t


@contextmanager
def count_saved_tensors():
    counter = SavedTensorCounter()
    with torch.autograd.graph.saved_tensors_hooks(counter.pack, lambda t: t):
        yield counter


def saved_tensor_bytes(fn: Callable[[], object]) -> int:
    """Bytes of distinct tensors saved for backward while `fn` builds its graph."""
    with count_saved_tensors() as counter:
        fn()
    return counter.nbytes


def cap_cuda_memory(device: torch.device, limit_bytes: Optional[int]) -> None:
    """`--memory-limit` on a GPU: the caching allocator refuses allocations beyond `limit_bytes`
    (raising torch.cuda.OutOfMemoryError, an `oom` row); None lifts the cap. The address-space cap
    used on the CPU cannot serve here: CUDA reserves far more virtual memory than it uses and would
    not start."""
    # set_per_process_memory_fraction wants an index: plain "cuda" (no index) means the current device.
    index = device.index if device.index is not None else torch.cuda.current_device()
    total = torch.cuda.get_device_properties(index).total_memory
    fraction = 1.0 if not limit_bytes else min(1.0, limit_bytes / total)
    torch.cuda.set_per_process_memory_fraction(fraction, index)


class CudaPeak:
    """Allocator peaks over measured regions: reset before each region, max over all of them."""

    def __init__(self, device: torch.device):
        self.device = device
        self.allocated = 0
        self.reserved = 0

    @contextmanager
    def region(self):
        torch.cuda.synchronize(self.device)
        torch.cuda.reset_peak_memory_stats(self.device)
        yield
        torch.cuda.synchronize(self.device)
        self.allocated = max(self.allocated, torch.cuda.max_memory_allocated(self.device))
        self.reserved = max(self.reserved, torch.cuda.max_memory_reserved(self.device))


def process_gpu_bytes(processes, pid: int) -> Optional[int]:
    """usedGpuMemory of `pid` among NVML's running-process entries; None if it is not listed or NVML
    cannot tell (it reports an unavailable value as None, or as a huge sentinel on some drivers)."""
    for entry in processes or ():
        if getattr(entry, "pid", None) == pid:
            used = getattr(entry, "usedGpuMemory", None)
            return int(used) if used is not None and 0 <= int(used) < 2**63 - 1 else None
    return None


class Nvml:
    """GPU memory (this process's, see used_bytes) and device-wide energy through NVML; every method
    returns None where NVML is absent."""

    def __init__(self, device: torch.device):
        self.handle = None
        try:
            import pynvml

            pynvml.nvmlInit()
            self._nvml = pynvml
            props = torch.cuda.get_device_properties(device)
            bus_id = getattr(props, "pci_bus_id", None)
            if bus_id is not None:
                self.handle = pynvml.nvmlDeviceGetHandleByPciBusId(
                    f"{props.pci_domain_id:08x}:{props.pci_bus_id:02x}:{props.pci_device_id:02x}.0"
                )
            else:
                self.handle = pynvml.nvmlDeviceGetHandleByIndex(device.index or 0)
        except Exception:  # NVML missing, no permission, unsupported GPU: the columns stay empty
            self.handle = None

    def used_bytes(self) -> Optional[int]:
        """This process's GPU memory as NVML lists it (its CUDA context included); the device-wide
        figure only where NVML lists no entry for this process (a container that hides its pid).
        Per process because interleaved rounds keep one warm worker per config alive on the device:
        device-wide memory would add up every idle worker's context."""
        if self.handle is None:
            return None
        try:
            own = process_gpu_bytes(self._nvml.nvmlDeviceGetComputeRunningProcesses(self.handle), os.getpid())
            return own if own is not None else int(self._nvml.nvmlDeviceGetMemoryInfo(self.handle).used)
        except Exception:
            return None

    def energy_mj(self) -> Optional[int]:
        if self.handle is None:
            return None
        try:
            return int(self._nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle))
        except Exception:
            return None
