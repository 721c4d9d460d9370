"""Peak resident memory of this process (standard library only, so the worker can use it before torch loads)."""

from __future__ import annotations

import resource
import sys


def peak_rss_bytes() -> int:
    """Peak resident memory of this process's own address space.

    On Linux this is VmHWM, not ru_maxrss: ru_maxrss survives exec, so a child of a sweep that has
    imported torch (~230 MB) would report at least the sweep's RSS at the moment it was spawned.
    """
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024  # kB
    except (OSError, ValueError, IndexError):
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak if sys.platform == "darwin" else peak * 1024)  # KiB on Linux, bytes on macOS
