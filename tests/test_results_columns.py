"""Appending columns keeps earlier results directories readable (committed baselines) and resumable."""

from pathlib import Path

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


def test_every_committed_results_directory_reads():
    """What was measured stays readable: every runs.csv (repeats, operator counts, meta and grid beside
    it) and every quality directory committed under results/, whatever version wrote it."""
    from bench.contract.meta import load_grid, read_meta
    from bench.contract.quality_schema import QUALITY_TABLES
    from bench.contract.quality_store import read_table
    from bench.contract.store import read_ops, read_repeats, read_runs

    root = Path(__file__).resolve().parents[1] / "results"
    runs = sorted(root.rglob("runs.csv"))
    assert len(runs) > 100  # the committed runs are there to read
    for path in runs:
        rows = read_runs(path.parent)
        assert all(r["run_id"] and r["status"] for r in rows), path
        read_repeats(path.parent)
        read_ops(path.parent)
        if (path.parent / "meta.json").is_file() and "grid" in read_meta(path.parent):
            assert {c.run_id for c in load_grid(path.parent)} >= {r["run_id"] for r in rows if r["status"] == "ok"} \
                or path.parent.name.startswith(("maxnmc", "check")), path
    for path in sorted(root.rglob("quality.csv")):
        for name in QUALITY_TABLES:
            read_table(path.parent, name)


def test_a_header_in_another_order_reads_by_name_and_an_unknown_column_is_refused(tmp_path):
    from bench.contract.schema import RUNS_COLUMNS
    from bench.contract.store import read_runs

    header = list(RUNS_COLUMNS[:16])
    header[14], header[15] = header[15], header[14]  # error before repeats
    row = {c: "" for c in header} | {"run_id": "a", "status": "ok", "repeats": "1", "error": "none"}
    (tmp_path / "runs.csv").write_text(",".join(header) + "\n" + ",".join(row[c] for c in header) + "\n")
    (read,) = read_runs(tmp_path)
    assert read["error"] == "none" and read["repeats"] == "1" and read["step_s_median"] == ""
    (tmp_path / "runs.csv").write_text(",".join(header + ["surprise"]) + "\n"
                                       + ",".join(row[c] for c in header) + ",x\n")
    with pytest.raises(UsageError, match="line 1 is corrupt"):
        read_runs(tmp_path)
