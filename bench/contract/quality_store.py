"""A quality results directory: quality.csv and the post-training tables, appended crash-safely.

The same write discipline as runs.csv (bench/contract/store.py): each row group is one write + fsync of
whole lines. The orphan rule lives in `final_attempts`: a config counts once it has a final
quality row, and only the rows of that attempt count, in every table.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Optional, Sequence

from bench.contract.errors import UsageError
from bench.contract.files import append_lines, cut_torn_tail
from bench.contract.meta import finish_meta, read_meta, write_meta
from bench.contract.provenance import now_iso
from bench.contract.quality_schema import QUALITY_COLUMNS, QUALITY_FILE, QUALITY_TABLES
from bench.contract.store import format_line, open_results_dir, read_csv_table


def read_table(out_dir, name: str) -> list[dict]:
    """Every row of one quality table, as {column: text}, validated line by line."""
    return read_csv_table(Path(out_dir) / name, QUALITY_TABLES[name])


def final_attempts(out_dir) -> dict[str, str]:
    """run_id -> the attempt whose final quality row is last in the file (the one that counts)."""
    done = {}
    for row in read_table(out_dir, QUALITY_FILE):
        if row["final"] == "true":
            done[row["run_id"]] = row["attempt"]
    return done


def counted_rows(out_dir, name: str) -> list[dict]:
    """Rows of `name` written by a final attempt of their config (orphans of killed runs dropped)."""
    done = final_attempts(out_dir)
    return [r for r in read_table(out_dir, name) if done.get(r["run_id"]) == r["attempt"]]


def latest_rows(out_dir, name: str) -> list[dict]:
    """Like `counted_rows`, plus, for a config with no final row yet (running, or killed), the rows of
    its latest attempt: the analysis shows a partial curve as partial rather than dropping it."""
    done = final_attempts(out_dir)
    latest = {}
    for row in read_table(out_dir, QUALITY_FILE):
        latest[row["run_id"]] = row["attempt"]
    keep = {run_id: done.get(run_id, attempt) for run_id, attempt in latest.items()}
    return [r for r in read_table(out_dir, name) if keep.get(r["run_id"]) == r["attempt"]]


class QualityWriter:
    """Owns a quality results directory: new, or reopened (validated) with `resume`."""

    def __init__(self, out_dir, *, resume: bool = False):
        self.dir = Path(out_dir)
        nonempty = open_results_dir(self.dir, resume=resume)
        #: {path: bytes removed}: torn last lines (a write a crash cut short) cut off before resuming.
        self.repaired = {}
        for name, columns in QUALITY_TABLES.items():
            path = self.dir / name
            if nonempty and (removed := cut_torn_tail(path)):
                self.repaired[path] = removed
            if path.exists() and path.stat().st_size:
                rows = read_csv_table(path, columns)  # validate before the first append
                del rows
                with open(path, "rb") as f:
                    if f.readline().decode(errors="replace").rstrip("\n") != format_line(columns).decode().rstrip("\n"):
                        raise UsageError(f"{path} was written by an older bnn-bench: choose a new --out")
            else:
                append_lines(path, format_line(columns))

    def completed(self, *, retry_errors: bool = False) -> set[str]:
        """Configs with a final row; with `retry_errors`, not those whose final row is an `error`."""
        errors = set()
        if retry_errors:
            rows = read_table(self.dir, QUALITY_FILE)
            final = {row["run_id"]: row["status"] for row in rows if row["final"] == "true"}
            errors = {run_id for run_id, status in final.items() if status == "error"}
        return set(final_attempts(self.dir)) - errors

    def append(self, name: str, rows: Iterable[dict]) -> None:
        """Rows of one table in one write; keys outside the table's columns are not written."""
        columns = QUALITY_TABLES[name]
        data = b"".join(format_line([row.get(c) for c in columns]) for row in rows)
        if data:
            append_lines(self.dir / name, data)

    def start_meta(self, *, configs, argv: Optional[Sequence[str]], machine: dict, options: dict) -> dict:
        meta_path = self.dir / "meta.json"
        if meta_path.exists():
            meta = read_meta(self.dir)
            meta.setdefault("resumed_at", []).append({"time": now_iso(), "argv": list(argv or [])})
            known = {tuple(sorted(c.items())) for c in meta.get("quality_grid", []) if isinstance(c, dict)}
            meta["quality_grid"] = meta.get("quality_grid", []) + [
                c for c in configs if tuple(sorted(c.items())) not in known]
        else:
            meta = {"machine": machine, "profile": "train", "argv": list(argv or []), "start_time": now_iso(),
                    "end_time": None, "quality_options": options, "quality_grid": list(configs)}
        write_meta(self.dir, meta)
        return meta

    def finish_meta(self, meta: dict, *, interrupted: bool = False) -> None:
        finish_meta(self.dir, meta, interrupted=interrupted)


__all__ = ["QualityWriter", "read_table", "counted_rows", "latest_rows", "final_attempts", "QUALITY_COLUMNS"]
