"""The history store `run_bench.py history` writes (docs/history.md): OUT/history.csv, one row per
(commit, config), and OUT/history.json, what the rows were measured with (for `--resume`).

Standard library only, so `analysis/` reads it without torch. A commit's rows are appended in one
write (bench/contract/files.py), so a commit is in the file whole or not at all; a torn last line (a
crash mid-write) is cut off before resuming. A history store is data: a commit hash read back is
checked to be hex before anything uses it, and nothing read from it is run.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Optional, Sequence

from bench.contract.errors import UsageError
from bench.contract.files import append_lines, cut_torn_tail, write_text_atomic
from bench.contract.store import check_numeric, format_line, read_csv_table

HISTORY_FILE = "history.csv"
HISTORY_META = "history.json"
#: Bumped when a column changes meaning or is removed; rows of another version are refused.
HISTORY_FORMAT_VERSION = 1
#: Where each commit's paired results directory goes, inside the history's OUT.
COMMITS_DIR = "commits"

#: ok: both sides ran; failed: the commit's code did not run the config (its reason); unsupported:
#: its tree cannot be driven (no warm workers, a newer worker protocol); base_failed: the commit ran
#: it but the reference's code did not, so there is no ratio.
HISTORY_STATUSES = ("ok", "failed", "unsupported", "base_failed")

HISTORY_COLUMNS = (
    "format_version",
    "position",  # 0 = the oldest commit of the range
    "commit",  # full hash
    "subject",
    "commit_date",  # committer date, ISO 8601
    "reference",  # the commit every commit was paired with (full hash)
    "run_id",
    "config",  # a readable label of the config
    "impl",
    "task",
    "samples",
    "status",
    "reason",
    "ratio",  # median over rounds of (commit's time / reference's time) in the same round
    "ratio_low",  # its 95% bootstrap interval (rounds resampled)
    "ratio_high",
    "rounds",  # rounds the ratio is over
    "round_ratios",  # the per-round ratios, space-separated (change detection bootstraps them)
    "step_s_median",  # the commit's own median step time (absolute: drifts with the machine)
    "reference_step_s_median",
    "flops_per_step",
    "aten_ops_per_step",
    "graph_bytes",
    "alloc_bytes_per_step",
    "results_dir",  # the commit's paired results directory, relative to OUT (its ops.csv names operators)
)
HISTORY_NUMERIC_COLUMNS = ("format_version", "position", "samples", "ratio", "ratio_low", "ratio_high", "rounds",
                           "step_s_median", "reference_step_s_median", "flops_per_step", "aten_ops_per_step",
                           "graph_bytes", "alloc_bytes_per_step")
#: The counters of a row, compared commit to commit (exact: the same code gives the same counts).
HISTORY_COUNTERS = ("flops_per_step", "aten_ops_per_step", "graph_bytes", "alloc_bytes_per_step")

_HEX = re.compile(r"[0-9a-f]{7,40}")


def is_commit_hash(text: str) -> bool:
    """A hex commit hash (7 to 40 digits, lower case): what a stored commit must be before use."""
    return bool(_HEX.fullmatch(text or ""))


def short_hash(commit: str) -> str:
    if not is_commit_hash(commit):
        raise UsageError(f"{commit[:60]!r} is not a commit hash")
    return commit[:12]


def commit_results_dir(out_dir, commit: str) -> Path:
    """OUT/commits/<short hash>: the commit's paired results directory (base/ inside it)."""
    return Path(out_dir) / COMMITS_DIR / short_hash(commit)


def format_round_ratios(values: Sequence[float]) -> str:
    return " ".join(repr(float(v)) for v in values)


def parse_round_ratios(text: str) -> list[float]:
    return [float(v) for v in (text or "").split()]


def history_lines(rows: Sequence[dict]) -> bytes:
    """`rows` as history.csv lines (missing columns empty, the format version filled in)."""
    return b"".join(format_line([dict(row, format_version=HISTORY_FORMAT_VERSION).get(c) for c in HISTORY_COLUMNS])
                    for row in rows)


class HistoryStore:
    """OUT/history.csv and OUT/history.json: opened fresh or, with `resume`, validated and repaired."""

    def __init__(self, out_dir, *, resume: bool):
        self.dir = Path(out_dir)
        self.path = self.dir / HISTORY_FILE
        self.meta_path = self.dir / HISTORY_META
        self.repaired = cut_torn_tail(self.path) if resume else 0
        read_history(self.dir)  # a corrupt store is never appended to
        if not self.path.exists() or self.path.stat().st_size == 0:
            append_lines(self.path, format_line(HISTORY_COLUMNS))

    def append_commit(self, rows: Sequence[dict]) -> None:
        """All of one commit's rows, in one durable write: the commit is in the file whole or not at all."""
        if rows:
            append_lines(self.path, history_lines(rows))

    def done_commits(self, run_ids: Sequence[str]) -> set[str]:
        """Commits with a row for every one of `run_ids`."""
        have: dict[str, set] = {}
        for row in read_history(self.dir):
            have.setdefault(row["commit"], set()).add(row["run_id"])
        return {commit for commit, ids in have.items() if set(run_ids) <= ids}

    def read_meta(self) -> Optional[dict]:
        return read_history_meta(self.dir)

    def write_meta(self, meta: dict) -> None:
        write_text_atomic(self.meta_path, json.dumps(meta, indent=2, sort_keys=True) + "\n")


def read_history_meta(out_dir) -> Optional[dict]:
    path = Path(out_dir) / HISTORY_META
    if not path.exists():
        return None
    try:
        meta = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        raise UsageError(f"{path} is not readable JSON ({e}): start a new --out") from None
    if not isinstance(meta, dict):
        raise UsageError(f"{path} is not a history's settings: start a new --out")
    return meta


def read_history(out_dir) -> list[dict]:
    """history.csv as a list of {column: text}, every line checked: the header, the format version,
    statuses, numbers, and every commit a hex hash."""
    path = Path(out_dir) / HISTORY_FILE
    rows = read_csv_table(path, HISTORY_COLUMNS)
    for number, row in enumerate(rows, start=2):
        why = None
        if row["format_version"] != str(HISTORY_FORMAT_VERSION):
            why = (f"format version {row['format_version']!r}, this version reads {HISTORY_FORMAT_VERSION}: "
                   "re-run the history into a new --out")
        elif row["status"] not in HISTORY_STATUSES:
            why = f"status {row['status']!r} is not one of {', '.join(HISTORY_STATUSES)}"
        elif not (is_commit_hash(row["commit"]) and is_commit_hash(row["reference"])):
            why = "commit or reference is not a commit hash"
        elif not row["run_id"]:
            why = "empty run_id"
        if why:
            raise UsageError(f"{path} line {number} is corrupt ({why}): move it away or start a new --out")
    check_numeric(path, rows, HISTORY_NUMERIC_COLUMNS)
    return rows
