"""Several results directories as one: a CPU and a GPU run, or two machines, in one report.

Rows keep their machine (`machine`: the GPU's or CPU's name), so the same config measured on two
machines is two rows, fitted and tabled apart. The same config on the same machine in two
directories is one measurement too many:
- measured by the same code (equal `git_commit`): the newest row is kept, and the report says so;
- measured by different code: an error, unless `prefer` says which to keep: `"newest"` (the later
  timestamp) or a directory (its row; where that directory has none of the two, still an error).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import pandas as pd

from analysis.load import Results, load_results
from bench.contract.errors import AnalysisInputError

NEWEST = "newest"


def _text(value) -> str:
    return "" if pd.isna(value) else str(value)


def _choose(rows: pd.DataFrame, prefer: Optional[str], directories: Sequence[Path]) -> int:
    """Index (into `rows`) of the row to keep among the copies of one config on one machine."""
    commits = {_text(c) for c in rows["git_commit"]} if "git_commit" in rows else {""}
    newest = rows["timestamp"].astype(str).idxmax() if "timestamp" in rows else rows.index[-1]
    if len(commits) == 1 or prefer == NEWEST:
        return newest
    if prefer is not None:
        preferred = rows[rows["_source"].map(lambda s: Path(s).resolve()) == Path(prefer).resolve()]
        if len(preferred):
            return preferred.index[-1]
    first = rows.iloc[0]
    where = "; ".join(f"{r['_source']} (commit {_text(r.get('git_commit')) or '?'})" for _, r in rows.iterrows())
    raise AnalysisInputError(
        f"config {first['run_id']} on {first['machine'] or 'an unnamed machine'} was measured by different code in "
        f"{where}: pass --prefer newest, or --prefer DIR naming the directory whose row to keep")


def merge_results(directories: Sequence, prefer: Optional[str] = None) -> Results:
    """One Results from several directories (see the module docstring for duplicates)."""
    directories = [Path(d) for d in directories]
    if prefer not in (None, NEWEST) and Path(prefer).resolve() not in {d.resolve() for d in directories}:
        raise AnalysisInputError(f"--prefer {prefer} is neither 'newest' nor one of the directories given: "
                                 f"choose newest or one of {', '.join(map(str, directories))}")
    loaded = [load_results(d) for d in directories]
    runs = []
    for index, results in enumerate(loaded):
        frame = results.runs.copy()
        frame["_source"], frame["_index"] = str(results.directory), index
        runs.append(frame)
    runs = pd.concat(runs, ignore_index=True, sort=False)

    keep, dropped_same_code = [], 0
    for _, copies in runs.groupby(["run_id", "machine"], sort=False, dropna=False):
        if len(copies) == 1:
            keep.append(copies.index[0])
            continue
        chosen = _choose(copies, prefer, directories)
        commits = {_text(c) for c in copies["git_commit"]} if "git_commit" in copies else {""}
        dropped_same_code += (len(copies) - 1) if len(commits) == 1 else 0
        keep.append(chosen)
    runs = runs.loc[sorted(keep)]

    # A run_id measured on several machines stays one row per machine: give each its own key, so
    # repeats, spreads and speedups join to the right row.
    shared = runs["run_id"].duplicated(keep=False)
    new_ids = runs["run_id"].where(~shared, runs["run_id"] + "@" + runs["_index"].astype(str))
    repeats = []
    for index, results in enumerate(loaded):
        mine = runs[runs["_index"] == index]
        mapping = dict(zip(mine["run_id"], new_ids[mine.index]))
        reps = results.repeats[results.repeats["run_id"].isin(mapping)].copy()
        reps["run_id"] = reps["run_id"].map(mapping)
        repeats.append(reps)
    runs = runs.assign(run_id=new_ids, source=runs["_source"]).drop(columns=["_source", "_index"])
    repeats = pd.concat(repeats, ignore_index=True) if repeats else pd.DataFrame()

    sources = tuple({"directory": str(r.directory), "machine": r.meta.get("machine", {}), "argv": r.meta.get("argv"),
                     "profile": r.meta.get("profile")} for r in loaded)
    profiles = {src["profile"] for src in sources}
    # One profile shared by every source (several `maxnmc` searches, say) keeps its sections.
    meta = {"sources": list(sources), "duplicates_dropped_same_code": dropped_same_code,
            "profile": profiles.pop() if len(profiles) == 1 else None}
    name = Path(" + ".join(d.name for d in directories))
    return Results(name, runs.reset_index(drop=True), repeats, meta, sources)
