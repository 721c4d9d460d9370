"""Appending columns keeps earlier results directories readable (committed baselines) and resumable."""

import pytest

from bench.contract.errors import UsageError
from bench.contract.schema import RUNS_COLUMNS
from bench.contract.store import ResultsWriter, read_runs


def _old_dir(tmp_path, drop=2):
    old = RUNS_COLUMNS[:-drop]
    d = tmp_path / "old"
    d.mkdir()
    row = {c: "" for c in old}
    row.update(run_id="r1", impl="vmap", task="mnist", status="ok", repeats="0")
    (d / "runs.csv").write_text(",".join(old) + "\n" + ",".join(row[c] for c in old) + "\n")
    (d / "repeats.csv").write_text("run_id,repeat,seconds,steps\n")
    return d


def test_an_earlier_versions_runs_csv_reads_with_the_new_columns_empty(tmp_path):
    rows = read_runs(_old_dir(tmp_path))
    assert rows[0]["impl"] == "vmap" and rows[0][RUNS_COLUMNS[-1]] == "" and set(rows[0]) == set(RUNS_COLUMNS)


def test_an_earlier_versions_directory_resumes_in_its_own_columns(tmp_path):
    """A resumed old directory gets rows in its own (shorter) header, so every line keeps its field count."""
    from bench.contract.records import RunResult

    d = _old_dir(tmp_path)
    writer = ResultsWriter(d, resume=True)
    row = {c: "" for c in RUNS_COLUMNS}
    row.update(run_id="r2", impl="vmap_lrt", task="mnist", status="skipped", repeats=0)
    writer.append(RunResult(row=row))
    rows = read_runs(d)
    assert [r["run_id"] for r in rows] == ["r1", "r2"]
    header = (d / "runs.csv").read_text().splitlines()[0].split(",")
    assert header == list(RUNS_COLUMNS[:-2])


def test_a_header_that_is_not_a_prefix_is_still_corrupt(tmp_path):
    d = _old_dir(tmp_path)
    (d / "runs.csv").write_text("run_id,task,impl\nr1,mnist,vmap\n")
    with pytest.raises(UsageError, match="header is not the"):
        read_runs(d)
