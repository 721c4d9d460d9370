"""The results directory: exact format, crash-safe appends, validation on resume, meta.json."""

import csv
import json

import numpy as np
import pandas as pd
import pytest

from bench.contract.config import BenchConfig
from bench.contract.errors import UsageError
from bench.contract.meta import load_grid, read_meta
from bench.contract.records import failure_result
from bench.contract.schema import REPEATS_COLUMNS, RUNS_COLUMNS
from bench.contract.store import ResultsWriter, completed_run_ids, format_value, read_repeats, read_runs, runs_line
from tests import fakes

CONFIG = BenchConfig("vmap", "regression", samples=2, steps=4, repeats=3)


def make_writer(tmp_path, name="out", **kw):
    return ResultsWriter(tmp_path / name, **kw)


@pytest.mark.parametrize(
    "value, text",
    [(None, ""), (True, "true"), (False, "false"), (0.1, "0.1"), (1 / 3, "0.3333333333333333"), (12, "12"),
     (np.float64(0.25), "0.25"), (np.int64(7), "7"), (np.bool_(True), "true"), ("a\nb", "a b"), (float("nan"), "nan")],
)
def test_format_value(value, text):
    assert format_value(value) == text


def test_runs_line_is_schema_ordered_with_empty_missing_values_and_quoted_commas():
    line = runs_line({"status": "error", "run_id": "r1", "error": "ValueError: a, b", "not_a_column": 5})
    assert line.endswith(b"\n") and line.count(b"\n") == 1
    row = dict(zip(RUNS_COLUMNS, next(csv.reader([line.decode()]))))
    assert len(row) == len(RUNS_COLUMNS) and list(row) == list(RUNS_COLUMNS)
    assert row["run_id"] == "r1" and row["status"] == "error" and row["error"] == "ValueError: a, b"
    assert row["impl"] == "" and row["epoch_s"] == ""


def test_new_directory_gets_headers_and_rows_round_trip_through_pandas(tmp_path):
    writer = make_writer(tmp_path)
    ok = fakes.ok(CONFIG)
    writer.append(ok)
    writer.append(failure_result(CONFIG.replace(samples=5), "oom", "MemoryError"))
    runs = pd.read_csv(tmp_path / "out" / "runs.csv")
    assert tuple(runs.columns) == RUNS_COLUMNS
    assert list(runs["status"]) == ["ok", "oom"]
    assert runs["step_s_median"][0] == ok.row["step_s_median"]  # repr precision: the exact float comes back
    assert not runs["epoch_measured"][0]  # written `false`, read as a boolean
    assert np.isnan(runs["step_s_median"][1]) and runs["error"][1] == "MemoryError"
    repeats = pd.read_csv(tmp_path / "out" / "repeats.csv")
    assert tuple(repeats.columns) == REPEATS_COLUMNS
    assert list(repeats["seconds"]) == [s for s, _ in ok.repeats] and list(repeats["repeat"]) == [0, 1, 2]
    assert set(repeats["run_id"]) == {CONFIG.run_id}
    assert completed_run_ids(tmp_path / "out") == {CONFIG.run_id, CONFIG.replace(samples=5).run_id}


def test_repeats_are_written_before_the_runs_row(tmp_path, monkeypatch):
    import bench.contract.store as results

    order = []
    real = results.append_lines
    monkeypatch.setattr(results, "append_lines", lambda path, data: (order.append(path.name), real(path, data)))
    make_writer(tmp_path).append(fakes.ok(CONFIG))
    assert order[-2:] == ["repeats.csv", "runs.csv"]


def test_each_row_is_a_single_write(tmp_path, monkeypatch):
    import bench.contract.store as results

    writes = []
    real = results.os.write
    monkeypatch.setattr(results.os, "write", lambda fd, data: (writes.append(data), real(fd, data))[1])
    make_writer(tmp_path).append(fakes.ok(CONFIG))
    # headers (runs, repeats, ops), then one write with all three repeats, then one with the runs row
    assert len(writes) == 5 and writes[3].count(b"\n") == 3 and writes[4].count(b"\n") == 1


def test_existing_nonempty_directory_is_refused_without_resume_and_left_untouched(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    with pytest.raises(UsageError, match="pass --resume"):
        ResultsWriter(out)
    assert [p.name for p in out.iterdir()] == ["notes.txt"]


def test_existing_empty_directory_is_used(tmp_path):
    (tmp_path / "out").mkdir()
    make_writer(tmp_path)
    assert (tmp_path / "out" / "runs.csv").read_text() == ",".join(RUNS_COLUMNS) + "\n"


def test_unwritable_out_is_a_usage_error(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(UsageError, match="cannot write to --out"):
        ResultsWriter(tmp_path / "file" / "sub")
    with pytest.raises(UsageError, match="is a file"):
        ResultsWriter(tmp_path / "file")


def test_resume_keeps_rows_and_appends(tmp_path):
    writer = make_writer(tmp_path)
    writer.append(fakes.ok(CONFIG))
    before = (tmp_path / "out" / "runs.csv").read_bytes()
    again = make_writer(tmp_path, resume=True)
    assert again.resumed and again.completed_run_ids() == {CONFIG.run_id}
    again.append(fakes.ok(CONFIG.replace(samples=3)))
    after = (tmp_path / "out" / "runs.csv").read_bytes()
    assert after.startswith(before) and after.count(b"\n") == 3  # header written once


@pytest.mark.parametrize(
    "damage, line, why",
    [
        (lambda text: text + "a,b,c\n", 3, "3 fields"),
        (lambda text: text.replace(",ok,", ",done,"), 2, "status 'done'"),
        (lambda text: text.replace("run_id,impl", "run,impl", 1), 1, "header"),
    ],
)
def test_corrupt_runs_csv_is_refused_on_resume_and_left_untouched(tmp_path, damage, line, why):
    make_writer(tmp_path).append(fakes.ok(CONFIG))
    path = tmp_path / "out" / "runs.csv"
    path.write_text(damage(path.read_text()))
    damaged = path.read_bytes()
    with pytest.raises(UsageError) as e:
        ResultsWriter(tmp_path / "out", resume=True)
    message = str(e.value)
    assert f"runs.csv line {line} is corrupt" in message and why in message and "start a new --out" in message
    assert path.read_bytes() == damaged


def test_a_torn_last_line_is_refused_by_readers_and_cut_off_on_resume(tmp_path):
    """A crash between two writes leaves whole lines; one inside a write (power loss) can leave a torn
    tail: a reader names it and the fix, and resuming cuts it off before the next append."""
    make_writer(tmp_path).append(fakes.ok(CONFIG))
    path = tmp_path / "out" / "runs.csv"
    whole = path.read_bytes()
    path.write_bytes(whole[:-5])
    with pytest.raises(UsageError, match=r"runs.csv line 2 is torn .*--resume removes it"):
        read_runs(tmp_path / "out")
    writer = ResultsWriter(tmp_path / "out", resume=True)
    header, row = whole.split(b"\n")[:2]
    assert writer.repaired == {path: len(row) - 4} and path.read_bytes() == header + b"\n"
    assert writer.completed_run_ids() == set()  # the torn config runs again


def test_corrupt_repeats_csv_is_refused_on_resume(tmp_path):
    make_writer(tmp_path).append(fakes.ok(CONFIG))
    path = tmp_path / "out" / "repeats.csv"
    path.write_text(path.read_text() + f"{CONFIG.run_id},3,fast,4\n")
    with pytest.raises(UsageError, match="repeats.csv line 5 is corrupt"):
        ResultsWriter(tmp_path / "out", resume=True)


def test_read_repeats_drops_orphans_and_keeps_the_last_repeats_of_a_rerun(tmp_path):
    writer = make_writer(tmp_path)
    killed = CONFIG.replace(samples=7)
    # a config killed after its repeats were written, before its runs row: orphans
    import bench.contract.store as results

    results.append_lines(writer.repeats_path, results.repeats_lines(killed.run_id, [(9.0, 4)] * 3))
    results.append_lines(writer.repeats_path, results.repeats_lines(CONFIG.run_id, [(8.0, 4)] * 3))
    # ... then resumed: the config runs again and completes
    writer.append(fakes.ok(CONFIG))
    rows = read_repeats(tmp_path / "out")
    assert [r["seconds"] for r in rows] == [s for s, _ in fakes.ok(CONFIG).repeats]
    assert {r["run_id"] for r in rows} == {CONFIG.run_id} and [r["repeat"] for r in rows] == [0, 1, 2]


def test_read_runs_of_an_empty_or_missing_file(tmp_path):
    assert read_runs(tmp_path) == []
    make_writer(tmp_path)
    assert read_runs(tmp_path / "out") == [] and read_repeats(tmp_path / "out") == []


def test_meta_records_machine_grid_and_resumes(tmp_path):
    writer = make_writer(tmp_path)
    configs = [CONFIG, CONFIG.replace(samples=3)]
    meta = writer.start_meta(configs=configs, profile="quick", argv=["bnn-bench", "sweep"],
                             machine={"cpu_model": "x"}, executor="local")
    writer.finish_meta(meta)
    on_disk = read_meta(tmp_path / "out")
    assert on_disk["profile"] == "quick" and on_disk["argv"] == ["bnn-bench", "sweep"]
    assert on_disk["machine"] == {"cpu_model": "x"} and on_disk["start_time"] and on_disk["end_time"]
    assert load_grid(tmp_path / "out") == configs

    again = make_writer(tmp_path, resume=True)
    extra = CONFIG.replace(samples=9)
    again.start_meta(configs=[CONFIG, extra], profile="quick", argv=["bnn-bench", "sweep", "--resume"],
                     machine={"cpu_model": "y"}, executor="local")
    resumed = read_meta(tmp_path / "out")
    assert resumed["machine"] == {"cpu_model": "x"} and resumed["start_time"] == on_disk["start_time"]
    assert [r["argv"][-1] for r in resumed["resumed_at"]] == ["--resume"]
    assert resumed["resumed_at"][0]["machine"] == {"cpu_model": "y"}  # resumed on another machine: said so
    assert load_grid(tmp_path / "out") == configs + [extra]
    assert not list((tmp_path / "out").glob("*.tmp"))  # atomic write leaves no temporary behind


def test_load_grid_errors_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="not found"):
        load_grid(tmp_path)
    (tmp_path / "meta.json").write_text("{")
    with pytest.raises(UsageError, match="not valid JSON"):
        load_grid(tmp_path)
    (tmp_path / "meta.json").write_text(json.dumps({"grid": [{"impl": "vmap"}]}))
    with pytest.raises(UsageError, match="no usable grid"):
        load_grid(tmp_path)
