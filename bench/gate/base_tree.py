"""The code of another commit, unpacked beside this checkout, for paired timing (bench/gate/paired.py).

`check` times the baseline's commit and this checkout side by side, round by round. `git archive`
gives that commit's files without touching this checkout (no worktree to register or clean up);
where the commit is not in this clone (a shallow CI checkout), the reason says how to get it.
"""

from __future__ import annotations

import contextlib
import io
import shutil
import subprocess
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from bench.contract.provenance import CODE_ROOT
from bench.gate.protocol import UnsupportedTree, WorkerProtocol, tree_protocol


class BaseTreeUnavailable(Exception):
    """The base commit's code cannot be had here; the message says why and what to do."""


@dataclass(frozen=True)
class BaseTree:
    root: Path  # the unpacked files: workers run with it as cwd and first on PYTHONPATH
    commit: str  # the full hash
    protocol: WorkerProtocol  # how to start its workers (bench/gate/protocol.py)


def _git(*args: str, repo: Path) -> subprocess.CompletedProcess:
    try:
        return subprocess.run(["git", *args], cwd=repo, capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BaseTreeUnavailable(f"git failed ({e}): install git or pass --no-paired") from None


def unpack_commit(ref: str, dest: Path, *, repo: Path = CODE_ROOT) -> str:
    """Unpack `ref`'s files into `dest` (created) and return its full hash; BaseTreeUnavailable if
    this clone lacks it. Only the files: `export_commit` also reads how to start the tree's workers."""
    found = _git("rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}", repo=repo)
    if found.returncode != 0:
        shallow = _git("rev-parse", "--is-shallow-repository", repo=repo).stdout.decode().strip() == "true"
        hint = ("this clone is shallow: run `git fetch --unshallow` (or clone with full history)" if shallow
                else "fetch it, or re-record the baseline at a commit of this repository")
        raise BaseTreeUnavailable(f"commit {ref} is not in {repo}: {hint}")
    commit = found.stdout.decode().strip()
    archive = _git("archive", "--format=tar", commit, repo=repo)
    if archive.returncode != 0:
        raise BaseTreeUnavailable(f"git archive {commit[:12]} failed: {archive.stderr.decode().strip()[:200]}")
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(archive.stdout)) as tar:
        tar.extractall(dest, filter="data")
    return commit


def export_commit(ref: str, dest: Path, *, repo: Path = CODE_ROOT) -> BaseTree:
    """Unpack `ref`'s tree into `dest` (created); BaseTreeUnavailable if this clone lacks it or its
    workers cannot be started from here."""
    commit = unpack_commit(ref, dest, repo=repo)
    try:
        protocol = tree_protocol(dest, commit, repo=repo)
    except UnsupportedTree as e:
        raise BaseTreeUnavailable(str(e)) from None
    return BaseTree(dest, commit, protocol)


@contextlib.contextmanager
def temporary_tree(ref: str, *, repo: Path = CODE_ROOT) -> Iterator[BaseTree]:
    """`ref`'s code unpacked in a scratch directory for the block, removed after it."""
    scratch = Path(tempfile.mkdtemp(prefix="bnn-bench-base-"))
    try:
        yield export_commit(ref, scratch / "code", repo=repo)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
