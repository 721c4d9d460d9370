"""Appending columns keeps earlier results directories readable (committed baselines), not resumable."""

import pytest

from bench.errors import UsageError
from bench.results import ResultsWriter, read_runs
from bench.schema import RUNS_COLUMNS


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


def test_an_earlier_versions_directory_is_not_resumed(tmp_path):
    with pytest.raises(UsageError, match="earlier bnn-bench.*start a new --out"):
        ResultsWriter(_old_dir(tmp_path), resume=True)


def test_a_header_that_is_not_a_prefix_is_still_corrupt(tmp_path):
    d = _old_dir(tmp_path)
    (d / "runs.csv").write_text("run_id,task,impl\nr1,mnist,vmap\n")
    with pytest.raises(UsageError, match="header is not the"):
        read_runs(d)
