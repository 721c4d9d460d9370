"""Reading and validating a results directory with pandas."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from bench.contract.errors import AnalysisInputError, UsageError
from bench.contract.meta import read_meta
from bench.contract.schema import META_FILE, REPEATS_COLUMNS, RUNS_FILE
from bench.contract.store import check_numeric, read_csv_table, read_repeats, read_runs

#: The columns analysis reads; a file without them is not a bnn-bench results file.
REQUIRED_RUNS_COLUMNS = ("run_id", "impl", "task", "kl", "samples", "device", "status", "epoch_s", "step_s_median")
GROUP_KEYS = ("task", "device", "impl", "kl", "prior", "n_mc", "batch_size", "dtype", "machine")


@dataclass(frozen=True)
class Results:
    directory: Path
    runs: pd.DataFrame
    repeats: pd.DataFrame  # run_id, repeat, seconds, steps: only the repeats that count
    meta: dict
    #: The directories merged into this one (analysis.merge); empty for a single directory.
    sources: tuple = ()

    @property
    def ok(self) -> pd.DataFrame:
        return self.runs[self.runs["status"] == "ok"]


def read_checked_table(path: Path, columns, numeric) -> list[dict]:
    """A results table's rows, read and checked line by line by the store as runs.csv is (header,
    fields, a torn last line, the `numeric` columns parsing as numbers); its error, naming file, line
    and column, becomes analysis's."""
    try:
        rows = read_csv_table(path, columns)
        check_numeric(path, rows, numeric)
    except UsageError as e:
        raise AnalysisInputError(str(e)) from None
    return rows


def _read_csv(path: Path, required) -> pd.DataFrame:
    if not path.is_file():
        raise AnalysisInputError(f"{path} not found: give a results directory written by `run_bench.py sweep`")
    try:
        frame = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise AnalysisInputError(f"{path} is not readable as CSV ({' '.join(str(e).split())}): "
                                 "move it away or re-run the sweep") from None
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise AnalysisInputError(f"{path} lacks column(s) {', '.join(missing)}: it is not a bnn-bench "
                                 f"{path.name}; give a directory written by `run_bench.py sweep`")
    return frame


def load_results(directory) -> Results:
    directory = Path(directory)
    if not directory.is_dir():
        raise AnalysisInputError(f"{directory} is not a directory: give a results directory written by "
                                 "`run_bench.py sweep`")
    if (directory / RUNS_FILE).is_file():
        try:  # the harness's own checks, line by line: header, fields, statuses, numbers, a torn last line
            read_runs(directory)
        except UsageError as e:
            raise AnalysisInputError(str(e)) from None
    runs = _read_csv(directory / RUNS_FILE, REQUIRED_RUNS_COLUMNS)
    # A config run again (maxnmc re-probes one the kernel's OOM killer ended) has several rows: the last counts.
    runs = runs.drop_duplicates("run_id", keep="last").reset_index(drop=True)
    try:
        # The harness's own reader: the same line checks, and the same rule for repeats of a config
        # that was re-run after a crash (only its last `repeats` rows count).
        repeats = pd.DataFrame(read_repeats(directory), columns=list(REPEATS_COLUMNS))
    except UsageError as e:
        raise AnalysisInputError(str(e)) from None
    runs["machine"] = machine_column(runs)
    _fill_failed_batch_size(runs)
    for col in GROUP_KEYS:
        if col not in runs.columns:
            runs[col] = pd.NA
    if "repeats" not in runs.columns:
        runs["repeats"] = 0
    meta = {}
    if (directory / META_FILE).is_file():
        try:
            meta = read_meta(directory)
        except UsageError as e:
            raise AnalysisInputError(str(e)) from None
    return Results(directory, runs, repeats, meta)


def _fill_failed_batch_size(runs: pd.DataFrame) -> None:
    """A failed row of a config left at the task's batch size has none recorded (the child resolves it);
    give it the one batch size its task's ok rows share, so it groups with its siblings."""
    if "batch_size" not in runs.columns or "status" not in runs.columns:
        return
    for task, group in runs.groupby("task"):
        sizes = group.loc[group["status"] == "ok", "batch_size"].dropna().unique()
        missing = (runs["task"] == task) & (runs["status"] != "ok") & runs["batch_size"].isna()
        if len(sizes) == 1 and missing.any():
            runs.loc[missing, "batch_size"] = sizes[0]


def machine_column(runs: pd.DataFrame) -> pd.Series:
    """Where each row was measured: the GPU's or CPU's name (device_name, else cpu_model), else ''."""
    machine = pd.Series("", index=runs.index, dtype=object)
    for column in ("cpu_model", "device_name"):  # the later one wins where present
        if column in runs.columns:
            machine = runs[column].where(runs[column].notna(), machine).astype(str)
    return machine


def repeat_epoch_seconds(results: Results) -> pd.DataFrame:
    """One row per counted repeat with its epoch time: seconds / steps x steps per epoch."""
    if results.repeats.empty or "steps_per_epoch" not in results.runs.columns:
        return pd.DataFrame(columns=["run_id", "epoch_s"])
    spe = results.runs.set_index("run_id")["steps_per_epoch"]
    reps = results.repeats.copy()
    reps["epoch_s"] = reps["seconds"] / reps["steps"] * reps["run_id"].map(spe)
    reps["step_s"] = reps["seconds"] / reps["steps"]
    return reps


def machine_summary(results: Results) -> str:
    """One line naming the machine: GPU or CPU model, threads, torch version."""
    runs = results.runs
    names = sorted({str(n) for n in runs.get("device_name", pd.Series(dtype=str)).dropna()})
    threads = sorted({int(t) for t in runs.get("threads", pd.Series(dtype=float)).dropna()})
    torch_versions = sorted({str(v) for v in runs.get("torch_version", pd.Series(dtype=str)).dropna()})
    parts = [" / ".join(names) or "unknown device"]
    if threads:
        parts.append(f"{', '.join(map(str, threads))} CPU thread(s)")
    if torch_versions:
        parts.append("torch " + ", ".join(torch_versions))
    return ", ".join(parts)
