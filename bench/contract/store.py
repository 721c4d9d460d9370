"""A results directory (docs/results-format.md): runs.csv, repeats.csv and meta.json, written crash-safely.

Every row (and every config's group of repeat rows) is one `os.write` on an `O_APPEND` descriptor
followed by fsync, so a sweep killed at any instant leaves whole lines only, and what was written
stays. A config's repeats are written before its runs row: a final runs row implies its repeats
exist; a crash between the two leaves orphan repeats, which `read_repeats` ignores.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Iterable, Optional, Sequence

from bench.contract.config import BenchConfig
from bench.contract.errors import UsageError
from bench.contract.files import append_lines, cut_torn_tail
from bench.contract.meta import finish_meta, merge_grid, read_meta, write_meta
from bench.contract.provenance import now_iso
from bench.contract.records import RunResult
from bench.contract.schema import (
    META_FILE,
    OPS_COLUMNS,
    OPS_FILE,
    REPEATS_COLUMNS,
    REPEATS_FILE,
    RUNS_COLUMNS,
    RUNS_FILE,
    RUNS_NUMERIC_COLUMNS,
    STATUSES,
)

# ---------------------------------------------------------------------------------------------
# Formatting


def format_value(value) -> str:
    """One CSV field: empty for missing, true/false, floats at full (repr) precision, text on one line."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):  # numpy scalars, 0-d tensors
        value = value.item()
        if isinstance(value, bool):
            return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)  # shortest text that reads back to the same float; nan/inf as pandas reads them
    # Newlines inside a quoted field would make one record span two lines, and line-based
    # readers (and the corruption check) rely on one record per line.
    return " ".join(str(value).splitlines())


def format_line(values: Sequence) -> bytes:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerow([format_value(v) for v in values])
    return buffer.getvalue().encode()


def runs_line(row: dict, columns: Sequence[str] = RUNS_COLUMNS) -> bytes:
    """A runs.csv line in schema order; missing columns empty, keys outside the schema not written.

    `columns`: the header of the file appended to (an older file has fewer, see `read_csv_table`)."""
    return format_line([row.get(column) for column in columns])


def repeats_lines(run_id: str, repeats: Iterable, rounds: Sequence[int] = (), *, with_round: bool = True) -> bytes:
    """repeats.csv lines; `round` empty where the repeats were not timed in interleaved rounds.
    `with_round=False` writes the old four columns (appending to a file written before rounds)."""
    repeats = list(repeats)
    rounds = list(rounds) if rounds else [None] * len(repeats)
    return b"".join(format_line((run_id, i, float(seconds), int(steps)) + ((r,) if with_round else ()))
                    for i, ((seconds, steps), r) in enumerate(zip(repeats, rounds)))


def ops_lines(run_id: str, op_counts: dict) -> bytes:
    return b"".join(format_line((run_id, op, int(count))) for op, count in sorted(op_counts.items()))


def _header(path: Path) -> tuple:
    with open(path, newline="") as f:
        return tuple(next(csv.reader([f.readline()]), []))


def append_csv_row(path: Path, row: dict, columns: Sequence[str]) -> None:
    """`row` as one CSV line under `columns` (missing values empty), the header first when the file
    is new: one durable write, as the results files get (logs and summaries beside them)."""
    text = io.StringIO()
    writer = csv.DictWriter(text, fieldnames=list(columns), restval="")
    if not Path(path).exists():
        writer.writeheader()
    writer.writerow(row)
    append_lines(Path(path), text.getvalue().encode())


# ---------------------------------------------------------------------------------------------
# Reading


def _corrupt(path: Path, line: int, why: str) -> UsageError:
    return UsageError(f"{path} line {line} is corrupt ({why}): move it away or start a new --out")


def read_csv_table(path: Path, columns: Sequence[str]) -> list[dict]:
    """Rows of a CSV written by this module, every line checked; a missing or empty file has none.

    A header with fewer of `columns` was written by an earlier version; its rows read with the newer
    columns empty (see `_known_header`)."""
    if not path.exists() or path.stat().st_size == 0:
        return []
    with open(path, "rb") as f:
        raw = f.read()
    try:
        text = raw.decode()
    except UnicodeDecodeError as e:
        line = raw[: e.start].count(b"\n") + 1
        raise _corrupt(path, line, "not UTF-8 text") from None
    lines = text.split("\n")
    if lines[-1] != "":
        raise UsageError(f"{path} line {len(lines)} is torn (it has no newline: a write was cut short): continuing "
                         "the run with --resume removes it, or delete that line")
    lines.pop()
    header = next(csv.reader([lines[0]])) if lines else []
    if not _known_header(header, columns):
        raise _corrupt(path, 1, f"header is not the columns bnn-bench writes in {path.name}: is it a results file "
                                "written by `run_bench.py sweep`?")
    rows = []
    missing = {column: "" for column in columns if column not in header}
    for number, line in enumerate(lines[1:], start=2):
        fields = next(csv.reader([line]), [])
        if len(fields) != len(header):
            raise _corrupt(path, number, f"{len(fields)} fields instead of {len(header)}")
        rows.append({**dict(zip(header, fields)), **missing})
    return rows


#: A header may hold fewer columns than the current schema: a file written by an older version (its
#: rows read with the newer columns empty). Columns are read by name, so their order does not matter
#: (two branches that each appended columns wrote them in different orders). It must hold at least
#: the columns every reader relies on; a column this version does not know is refused.
_MIN_HEADER = {RUNS_COLUMNS: RUNS_COLUMNS.index("repeats") + 1, REPEATS_COLUMNS: 4}  # run_id .. steps


def _known_header(header: Sequence[str], columns: Sequence[str]) -> bool:
    columns = tuple(columns)
    required = columns[:_MIN_HEADER.get(columns, len(columns))]
    return len(set(header)) == len(header) and set(header) <= set(columns) and set(required) <= set(header)


def read_runs(out_dir) -> list[dict]:
    """runs.csv as a list of {column: text}, validated: header, field counts, statuses, repeat counts,
    and every numeric cell (RUNS_NUMERIC_COLUMNS) a number or empty."""
    path = Path(out_dir) / RUNS_FILE
    rows = read_csv_table(path, RUNS_COLUMNS)
    for number, row in enumerate(rows, start=2):
        if row["status"] not in STATUSES:
            raise _corrupt(path, number, f"status {row['status']!r} is not one of {', '.join(STATUSES)}")
        if not row["run_id"]:
            raise _corrupt(path, number, "empty run_id")
        if not row["repeats"].isdigit():
            raise _corrupt(path, number, f"repeats {row['repeats']!r} is not a count")
    check_numeric(path, rows, RUNS_NUMERIC_COLUMNS)
    return rows


def check_numeric(path: Path, rows: Sequence[dict], columns: Sequence[str]) -> None:
    """UsageError naming the file, line and column of the first cell of `columns` that is neither empty
    nor a number (rows as `read_csv_table` returns them: the first is line 2)."""
    for number, row in enumerate(rows, start=2):
        for column in columns:
            if row[column] and not _is_number(row[column]):
                raise _corrupt(path, number, f"column {column}: {row[column][:40]!r} is not a number")


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_repeats(out_dir) -> list[dict]:
    """The repeats that belong to final runs rows: {run_id, repeat (int), seconds (float), steps (int),
    round (int, or None where the repeats were not timed in interleaved rounds)}.

    Orphans are dropped: rows of a run_id without a runs row (killed before it), and, where a
    config was re-run after such a kill, all but the last `repeats` rows of its run_id.
    """
    path = Path(out_dir) / REPEATS_FILE
    raw = read_csv_table(path, REPEATS_COLUMNS)
    by_run: dict[str, list[dict]] = {}
    for number, row in enumerate(raw, start=2):
        try:
            parsed = {"run_id": row["run_id"], "repeat": int(row["repeat"]),
                      "seconds": float(row["seconds"]), "steps": int(row["steps"]),
                      "round": int(row["round"]) if row["round"] != "" else None}
        except ValueError:
            raise _corrupt(path, number, "repeat, seconds, steps or round is not a number") from None
        by_run.setdefault(row["run_id"], []).append(parsed)
    kept = []
    for run in read_runs(out_dir):
        n = int(run["repeats"])
        if n:
            kept += by_run.get(run["run_id"], [])[-n:]
    return kept


def read_ops(out_dir) -> dict[str, dict[str, int]]:
    """ops.csv as {run_id: {operator: count}} for the configs with a final runs row (the last
    group of a run_id counts, as for repeats); empty where the file is absent (older runs)."""
    path = Path(out_dir) / OPS_FILE
    groups: dict[str, list[dict]] = {}
    previous = None
    for number, row in enumerate(read_csv_table(path, OPS_COLUMNS), start=2):
        try:
            count = int(row["count"])
        except ValueError:
            raise _corrupt(path, number, "count is not a number") from None
        if row["run_id"] != previous:  # a new group: a re-run after a crash replaces the earlier one
            groups[row["run_id"]] = []
            previous = row["run_id"]
        groups[row["run_id"]].append({row["op"]: count})
    final = {row["run_id"] for row in read_runs(out_dir)} if groups else set()
    return {run_id: {k: v for d in rows for k, v in d.items()} for run_id, rows in groups.items() if run_id in final}


def final_rows(out_dir) -> list[dict]:
    """The row that counts for each config: its last one (a config run again after an `error`, with
    --retry-errors, has its earlier row above), in the order configs first appear."""
    last = {}
    for row in read_runs(out_dir):
        last.pop(row["run_id"], None)
        last[row["run_id"]] = row
    return list(last.values())


def completed_run_ids(out_dir, *, retry_errors: bool = False) -> set[str]:
    """run_ids that already have a final row: `--resume` does not run them again. With `retry_errors`,
    a config whose row that counts is an `error` (a missing data set, a full /tmp: the environment's
    fault, which the user has fixed) is not complete: it runs again."""
    return {row["run_id"] for row in final_rows(out_dir) if not (retry_errors and row["status"] == "error")}


# ---------------------------------------------------------------------------------------------
# Writing


def open_results_dir(out_dir: Path, *, resume: bool) -> bool:
    """Make `out_dir` ready to write into, refusing (one line) a file, a non-empty directory without
    `resume`, or an unwritable one, before anything is measured. True if it already held files."""
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"--out {out_dir} is a file, not a directory: choose another --out")
    nonempty = out_dir.exists() and any(out_dir.iterdir())
    if nonempty and not resume:
        raise UsageError(f"--out {out_dir} exists and is not empty: pass --resume to continue it, "
                         "or choose a new --out")
    # Create it and a probe file: the only reliable test of writability (permissions lie for root).
    probe = out_dir / f".write-test-{os.getpid()}"
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise UsageError(f"cannot write to --out {out_dir} ({e.strerror or e}): "
                         "choose a writable directory") from None
    return nonempty


class ResultsWriter:
    """Owns one results directory: created fresh, or reopened (validated) for `--resume`.

    Refuses a non-empty directory without `resume`, and an unwritable one, before anything is measured.
    """

    def __init__(self, out_dir, *, resume: bool = False):
        self.dir = Path(out_dir)
        self.runs_path = self.dir / RUNS_FILE
        self.repeats_path = self.dir / REPEATS_FILE
        self.meta_path = self.dir / META_FILE
        self.ops_path = self.dir / OPS_FILE
        nonempty = open_results_dir(self.dir, resume=resume)
        #: True when the directory already held results (a resumed sweep), False for a fresh one.
        self.resumed = nonempty and self.runs_path.exists()
        #: {path: bytes removed}: torn last lines (a write a crash cut short) cut off before resuming.
        self.repaired = {}
        if nonempty:
            for path in (self.runs_path, self.repeats_path, self.ops_path):
                if removed := cut_torn_tail(path):
                    self.repaired[path] = removed
            # Validate everything before the first append, so a corrupt file is never appended to.
            read_repeats(self.dir)
            read_ops(self.dir)
        for path, columns in ((self.runs_path, RUNS_COLUMNS), (self.repeats_path, REPEATS_COLUMNS),
                              (self.ops_path, OPS_COLUMNS)):
            if not path.exists() or path.stat().st_size == 0:
                append_lines(path, format_line(columns))
        # A resumed directory from before columns were appended keeps its own (shorter) header: rows match it.
        self.runs_columns = _header(self.runs_path)
        self._repeats_with_round = "round" in _header(self.repeats_path)

    def completed_run_ids(self, *, retry_errors: bool = False) -> set[str]:
        return completed_run_ids(self.dir, retry_errors=retry_errors)

    def append(self, result: RunResult) -> None:
        """Repeats and operator counts first, then the final runs row: each one write + fsync."""
        run_id = result.row["run_id"]
        if result.repeats:
            append_lines(self.repeats_path, repeats_lines(run_id, result.repeats, result.rounds,
                                                     with_round=self._repeats_with_round))
        if result.op_counts:
            append_lines(self.ops_path, ops_lines(run_id, result.op_counts))
        append_lines(self.runs_path, runs_line(result.row, self.runs_columns))

    # meta.json -----------------------------------------------------------------------------

    def start_meta(self, *, configs: Sequence[BenchConfig], profile: Optional[str], argv: Optional[Sequence[str]],
                   machine: dict, executor: str) -> dict:
        """A fresh meta.json; on resume, the original one with a `resumed_at` entry (and any new configs)."""
        if self.meta_path.exists():
            meta = read_meta(self.dir)
            entry = {"time": now_iso(), "argv": list(argv or []), "executor": executor}
            if machine != meta.get("machine"):  # resumed elsewhere: its rows were measured on another machine
                entry["machine"] = machine
            meta.setdefault("resumed_at", []).append(entry)
            meta["grid"] = merge_grid(meta.get("grid", []), configs)
        else:
            meta = {
                "machine": machine,
                "profile": profile,
                "argv": list(argv or []),
                "executor": executor,
                "start_time": now_iso(),
                "end_time": None,
                "grid": [c.to_dict() for c in configs],
            }
        write_meta(self.dir, meta)
        return meta

    def record_rounds(self, meta: dict, *, rounds: int, seed: int, workers: str) -> dict:
        """How the timing was interleaved, so `check` can re-run a baseline the same way."""
        meta = dict(meta, rounds=rounds, round_seed=seed, round_workers=workers)
        write_meta(self.dir, meta)
        return meta

    def finish_meta(self, meta: dict, *, interrupted: bool = False) -> dict:
        return finish_meta(self.dir, meta, interrupted=interrupted)
