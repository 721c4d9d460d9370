"""What produced a number: the code's commit, the CPU model, the time. Cheap, standard library only.

`CODE_ROOT` is the directory holding this checkout's packages: where git is asked for the commit
and what worker processes put first on PYTHONPATH. It is never where results go (those are relative
to the working directory).
"""

from __future__ import annotations

import datetime as _dt
import functools
import os
import platform
import re
import subprocess
from pathlib import Path

CODE_ROOT = Path(__file__).resolve().parent.parent.parent


#: The commit a copy of the code came from, stated by whoever copied it: a lent GPU machine gets the
#: working tree with a stale .git (on 2026-12-04 every H200 row read the session's first commit
#: +dirty). Honored only in the form `git rev-parse HEAD` gives, optionally with `+dirty`.
CODE_COMMIT_ENV = "BNN_BENCH_CODE_COMMIT"
_STATED_COMMIT = re.compile(r"[0-9a-f]{40}(\+dirty)?")


def is_commit_statement(value: str) -> bool:
    """Whether `value` is what `git rev-parse HEAD` prints, optionally followed by `+dirty`."""
    return bool(_STATED_COMMIT.fullmatch(value))


def stated_commit() -> str:
    """$BNN_BENCH_CODE_COMMIT when it is a full commit hash (with an optional `+dirty`), else ''."""
    value = os.environ.get(CODE_COMMIT_ENV, "").strip()
    return value if is_commit_statement(value) else ""


@functools.cache
def git_commit() -> str:
    """HEAD of the checkout this code runs from, with `+dirty` when the tree has changes; '' outside git.
    Where $BNN_BENCH_CODE_COMMIT states the commit (stated_commit), that is returned instead."""
    stated = stated_commit()
    if stated:
        return stated
    try:
        head = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=CODE_ROOT, capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return ""
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=CODE_ROOT, capture_output=True, text=True, timeout=10,
        )
        return head.stdout.strip() + ("+dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return ""


@functools.cache
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def now_iso() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def total_memory_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 0
