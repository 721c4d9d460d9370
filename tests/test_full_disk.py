"""A full disk at every write site: one line and exit 2, no temporary file, no torn row, and `--resume`
finishes what was started (issue 22).

Every byte the harness writes goes through `bench.contract.files._write_all`. Each test first counts
the calls a clean run makes, then runs again once per call with that call failing (ENOSPC), half of
its bytes written first where that can tear a line: every write site fails once.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

import pytest

import bench.contract.files as files
import bench.grid.devices
from bench.cli.main import main
from bench.contract.meta import read_meta
from bench.contract.quality_schema import QUALITY_FILE, QUALITY_TABLES
from bench.contract.quality_store import counted_rows, read_table
from bench.contract.store import final_rows, read_ops, read_repeats, read_runs

FAKE = ["--target", "tests.fakes:ok"]
SWEEP = ["sweep", "--profile", "paper", "--task", "regression", "--impl", "vmap,vmap_lrt", "--samples", "1,2",
         "--steps", "2", "--repeats", "2", "--executor", "inline", *FAKE]
TRAIN = ["train", "--task", "regression", "--impl", "vmap", "--samples", "1,2", "--epochs", "1", "--test-samples",
         "2", "--threads", "1", "--no-ood", "--no-fgsm"]


@pytest.fixture(autouse=True)
def cpu_only(monkeypatch):
    monkeypatch.setattr(bench.grid.devices, "_cuda_count", lambda: 0)


class Disk:
    """Counts the calls to _write_all, and fails the one numbered `fail_at` (1-based) with ENOSPC after
    writing half its bytes (`torn`) or none."""

    def __init__(self, monkeypatch, fail_at=None, torn=True):
        self.calls, self.fail_at, self.torn = 0, fail_at, torn
        self.real = files._write_all
        monkeypatch.setattr(files, "_write_all", self)

    def __call__(self, fd, data):
        self.calls += 1
        if self.calls == self.fail_at:
            if self.torn and len(data) > 1:
                os.write(fd, data[: len(data) // 2])
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return self.real(fd, data)


def _one_line_full_disk(err: str) -> None:
    lines = [line for line in err.splitlines() if line.strip() and not line.startswith("note:")]
    assert len(lines) == 1, err
    assert lines[0].startswith("bnn-bench: error: cannot write ") and "no space left" in lines[0], lines[0]
    assert "needed" in lines[0] and "free" in lines[0]


def _no_temporary_files(root: Path) -> None:
    assert [p.name for p in root.rglob("*") if p.name.endswith(".tmp") or ".write-test-" in p.name] == []


def _clean_count(monkeypatch, argv) -> int:
    disk = Disk(monkeypatch)
    assert main(argv) == 0
    monkeypatch.setattr(files, "_write_all", disk.real)
    return disk.calls


def test_a_sweep_survives_a_full_disk_at_every_write_site(tmp_path, monkeypatch, capsys):
    sites = _clean_count(monkeypatch, SWEEP + ["--out", str(tmp_path / "clean")])
    assert sites >= 10  # 3 headers, meta.json (start, finish), 4 configs x (repeats, runs)
    expected = {r["run_id"] for r in read_runs(tmp_path / "clean")}
    capsys.readouterr()
    for k in range(1, sites + 1):
        out = tmp_path / f"fail-{k}"
        Disk(monkeypatch, fail_at=k, torn=k % 2 == 1)
        assert main(SWEEP + ["--out", str(out)]) == 2, f"write {k}"
        _one_line_full_disk(capsys.readouterr().err)
        _no_temporary_files(out)
        if (out / "runs.csv").exists() and (out / "meta.json").exists():  # what was written reads whole
            read_runs(out), read_repeats(out), read_ops(out)
        monkeypatch.setattr(files, "_write_all", Disk(monkeypatch).real)
        resume = SWEEP + ["--out", str(out)] + (["--resume"] if out.exists() and any(out.iterdir()) else [])
        assert main(resume) == 0, f"resume after write {k}: {capsys.readouterr().err}"
        rows = final_rows(out)
        assert {r["run_id"] for r in rows} == expected and {r["status"] for r in rows} == {"ok"}, f"write {k}"
        assert len(read_runs(out)) == len(expected) and read_meta(out)["end_time"]
        capsys.readouterr()


def test_train_survives_a_full_disk_at_every_write_site(tmp_path, monkeypatch, capsys):
    sites = _clean_count(monkeypatch, TRAIN + ["--out", str(tmp_path / "clean")])
    assert sites >= len(QUALITY_TABLES) + 4
    def counted(directory):
        return sorted((r["run_id"], r["epoch"], r["status"], r["final"]) for r in counted_rows(directory, QUALITY_FILE))

    expected = counted(tmp_path / "clean")
    assert len(expected) == 2 and {e[2] for e in expected} == {"ok"}
    capsys.readouterr()
    for k in range(1, sites + 1):
        out = tmp_path / f"fail-{k}"
        Disk(monkeypatch, fail_at=k, torn=k % 2 == 0)
        assert main(TRAIN + ["--out", str(out)]) == 2, f"write {k}"
        _one_line_full_disk(capsys.readouterr().err)
        _no_temporary_files(out)
        monkeypatch.setattr(files, "_write_all", Disk(monkeypatch).real)
        assert main(TRAIN + ["--out", str(out), "--resume"]) == 0, f"resume after write {k}"
        assert counted(out) == expected, f"write {k}"
        for name in QUALITY_TABLES:
            read_table(out, name)
        capsys.readouterr()


def test_analyze_survives_a_full_disk_at_every_write_site(tmp_path, monkeypatch, capsys):
    results = tmp_path / "results"
    assert main(SWEEP + ["--out", str(results)]) == 0
    sites = _clean_count(monkeypatch, ["analyze", str(results), "--out", str(tmp_path / "clean")])
    assert sites >= 5  # three tables, figures, report.md
    capsys.readouterr()
    for k in range(1, sites + 1):
        out = tmp_path / f"fail-{k}"
        Disk(monkeypatch, fail_at=k, torn=False)
        assert main(["analyze", str(results), "--out", str(out)]) == 2, f"write {k}"
        _one_line_full_disk(capsys.readouterr().err)
        _no_temporary_files(out)
    monkeypatch.setattr(files, "_write_all", Disk(monkeypatch).real)


def test_check_json_and_maxnmc_on_a_full_disk(tmp_path, monkeypatch, capsys):
    run = tmp_path / "run"
    assert main(SWEEP + ["--out", str(run)]) == 0
    Disk(monkeypatch, fail_at=1)
    assert main(["check", str(run), str(run), "--json", str(tmp_path / "check.json")]) == 2
    _one_line_full_disk(capsys.readouterr().err)
    assert not (tmp_path / "check.json").exists()
    _no_temporary_files(tmp_path)
    Disk(monkeypatch, fail_at=4)  # after the three headers: the first meta.json
    argv = ["maxnmc", "--task", "regression", "--impl", "vmap", "--kl", "repar_exact", "--cap", "repar_exact=10",
            "--executor", "inline", "--batch-size", "16", "--out", str(tmp_path / "mx")]
    assert main(argv) == 2
    _one_line_full_disk(capsys.readouterr().err)
    _no_temporary_files(tmp_path / "mx")


def test_a_failed_append_is_cut_back_to_whole_lines(tmp_path, monkeypatch):
    path = tmp_path / "rows.csv"
    files.append_lines(path, b"a,b\n")
    Disk(monkeypatch, fail_at=1, torn=True)
    with pytest.raises(files.WriteFailed, match=r"rows.csv: no space left .* needed 8 bytes"):
        files.append_lines(path, b"1,2\n3,4\n")
    assert path.read_bytes() == b"a,b\n"


def test_a_failed_replacement_keeps_the_old_file_and_leaves_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "meta.json"
    files.write_atomic(path, b"{}\n")
    Disk(monkeypatch, fail_at=1, torn=True)
    with pytest.raises(files.WriteFailed, match="no space left"):
        files.write_atomic(path, b'{"a": 1}\n')
    assert path.read_bytes() == b"{}\n" and [p.name for p in tmp_path.iterdir()] == ["meta.json"]


@pytest.mark.parametrize("code, words", [(errno.EDQUOT, "quota"), (errno.EROFS, "read-only"),
                                         (errno.EFBIG, "size limit"), (errno.EACCES, "permission denied")])
def test_each_disk_error_is_named(tmp_path, code, words):
    message = str(files.write_failed(tmp_path / "x.csv", 10, OSError(code, os.strerror(code))))
    assert "\n" not in message and words in message and str(tmp_path / "x.csv") in message


def test_torn_tail_finds_what_follows_the_last_newline(tmp_path):
    path = tmp_path / "t"
    for content, torn in ((b"", 0), (b"a\n", 0), (b"a\nbc", 2), (b"abc", 3), (b"x" * 70000 + b"\n" + b"y" * 5, 5)):
        path.write_bytes(content)
        assert files.torn_tail(path) == torn
    assert files.cut_torn_tail(path) == 5 and path.read_bytes().endswith(b"x\n")
    assert files.torn_tail(tmp_path / "missing") == 0
