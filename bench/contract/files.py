"""How every byte the harness writes reaches the disk: appends of whole lines or nothing, and files
replaced whole (the old content or the new one, never half).

A write that fails (a full disk, an exhausted quota, a read-only file system, a file over the size
limit, no permission) becomes `WriteFailed`: one line naming the file, how many bytes it needed and
how many were free, and the fix. An append that got half its bytes out is cut back to where it
started, and a replacement's temporary file is removed, so nothing torn stays behind and the rows
already written stay readable (and `--resume` continues them).
"""

from __future__ import annotations

import errno
import os
from pathlib import Path
from typing import Optional

from bench.contract.errors import UsageError

#: Why a write fails, in words, for the errors a full or locked-down disk gives.
REASONS = {
    errno.ENOSPC: "no space left on its device",
    errno.EDQUOT: "the disk quota is exceeded",
    errno.EROFS: "its file system is read-only",
    errno.EFBIG: "the file would exceed the file system's size limit",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
}
#: The errors that mean the disk (not the data) is the problem: fatal to a sweep, never a config's row.
DISK_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EFBIG})


class WriteFailed(UsageError):
    """A file could not be written; the message is one line naming it and the fix."""


def _size(n: Optional[int]) -> str:
    if n is None:
        return "an unknown amount"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.1f} {unit}"
    return f"{n} bytes"


def free_bytes(path) -> Optional[int]:
    """Bytes an unprivileged writer may still use on the file system holding `path` (or its nearest
    existing parent); None where that cannot be asked."""
    path = Path(path).absolute()
    for candidate in (path, *path.parents):
        if candidate.exists():
            try:
                stats = os.statvfs(candidate)
            except OSError:
                return None
            return stats.f_bavail * stats.f_frsize
    return None


def write_failed(path, needed: Optional[int], error: OSError) -> WriteFailed:
    """The one-line error for a failed write of `needed` bytes to `path`."""
    reason = REASONS.get(error.errno, " ".join(str(error.strerror or error).split()))
    if error.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG):
        return WriteFailed(f"cannot write {path}: {reason} (it needed {_size(needed)}, "
                           f"{_size(free_bytes(path))} free): free some space there or choose another --out")
    return WriteFailed(f"cannot write {path} ({reason}): choose a writable --out")


def _write_all(fd: int, data: bytes) -> None:
    """Every byte of `data` to `fd` (a regular file short-writes only when the disk fills: then the
    next write raises ENOSPC)."""
    done = os.write(fd, data)  # one write: a row is one system call, so a kill between rows cuts none
    view = memoryview(data)
    while done < len(data):
        written = os.write(fd, view[done:])
        if written == 0:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        done += written


def append_lines(path, data: bytes) -> None:
    """Append whole lines, durably (fsync) before returning: all of `data` or nothing. A kill between
    two appends never leaves half a line; a write that fails is cut back to where it started."""
    path = Path(path)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    except OSError as e:
        raise write_failed(path, len(data), e) from None
    try:
        start = os.fstat(fd).st_size
        try:
            _write_all(fd, data)
            os.fsync(fd)
        except OSError as e:
            try:
                os.ftruncate(fd, start)
            except OSError:
                pass
            raise write_failed(path, len(data), e) from None
    finally:
        os.close(fd)


def write_atomic(path, data: bytes) -> None:
    """Replace `path` with `data`: a temporary file beside it, fsync, rename. A reader sees the old or
    the new file; a failure leaves the old one and no temporary file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as e:
        try:
            tmp.unlink()
        except OSError:
            pass
        raise write_failed(path, len(data), e) from None


def write_text_atomic(path, text: str) -> None:
    write_atomic(path, text.encode())


def make_dir(path) -> Path:
    """`path` and its parents, created; WriteFailed (one line) where that cannot be."""
    path = Path(path)
    existing = next((p for p in (path, *path.parents) if p.exists()), None)
    if existing is not None and not existing.is_dir():
        raise UsageError(f"{existing} is a file, not a directory: choose another --out")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise write_failed(path, None, e) from None
    return path


def torn_tail(path) -> int:
    """Bytes after the last newline of `path` (0 where it ends in one, is empty or is missing): what a
    write cut short by a crash left behind."""
    path = Path(path)
    try:
        size = path.stat().st_size
    except FileNotFoundError:
        return 0
    if size == 0:
        return 0
    with open(path, "rb") as f:
        block = 1 << 16
        position = size
        while position > 0:
            start = max(0, position - block)
            f.seek(start)
            chunk = f.read(position - start)
            newline = chunk.rfind(b"\n")
            if newline != -1:
                return size - (start + newline + 1)
            position = start
    return size


def cut_torn_tail(path) -> int:
    """Remove a torn last line (see `torn_tail`) before appending to `path`; returns the bytes removed."""
    extra = torn_tail(path)
    if extra:
        try:
            os.truncate(path, Path(path).stat().st_size - extra)
        except OSError as e:
            raise write_failed(path, 0, e) from None
    return extra
