"""A results directory is data, and bad input is one line (issue 22): a hostile baseline runs no code,
and each failure the issue found is now one line on stderr naming the fix, exit 2, nothing written."""

from __future__ import annotations

import ast
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import bench.grid.devices
from bench.cli.main import main
from bench.contract.meta import read_meta
from bench.contract.store import final_rows, read_runs
from tests.plugins.models import MARKER_ENV

ROOT = Path(__file__).resolve().parents[1]
MNIST = Path(os.environ.get("BNN_BENCH_DATA", ROOT.parent / "shared" / "data" / "mnist"))
FAKE = ["--target", "tests.fakes:ok"]
SWEEP = ["sweep", "--profile", "paper", "--task", "regression", "--impl", "vmap,vmap_lrt", "--samples", "1,2",
         "--steps", "2", "--repeats", "2", "--executor", "inline", *FAKE]


@pytest.fixture(autouse=True)
def cpu_only(monkeypatch):
    monkeypatch.setattr(bench.grid.devices, "_cuda_count", lambda: 0)


def one_line(err: str, *needles: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and lines[0].startswith(("bnn-bench: error:", "gpu_campaign: error:")), lines[0]
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def run(capsys, *argv) -> tuple[int, str]:
    code = main([str(a) for a in argv])
    return code, capsys.readouterr().err


# ---------------------------------------------------------------------------------------------
# A hostile baseline


@pytest.fixture(scope="module")
def recorded_baseline(tmp_path_factory) -> Path:
    """A baseline timed in rounds by this checkout (fake measurements), recorded once for the module."""
    baseline = tmp_path_factory.mktemp("recorded") / "baseline"
    assert main([str(a) for a in (*SWEEP, "--rounds", "2", "--executor", "local", "--out", baseline)]) == 0
    return baseline


@pytest.fixture
def baseline(recorded_baseline, tmp_path) -> Path:
    """A copy of it to damage."""
    return Path(shutil.copytree(recorded_baseline, tmp_path / "baseline"))


def _edit_meta(directory: Path, **changes) -> None:
    meta = json.loads((directory / "meta.json").read_text())
    for key, value in changes.items():
        if key == "model":
            for config in meta["grid"]:
                config["model"] = value
        elif key == "git_commit":
            meta["machine"]["git_commit"] = value
        else:
            meta[key] = value
    (directory / "meta.json").write_text(json.dumps(meta))


def test_a_baselines_model_factory_is_never_run_on_its_say(tmp_path, capsys, monkeypatch, baseline):
    marker = tmp_path / "marker"
    monkeypatch.setenv(MARKER_ENV, str(marker))
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr("tempfile.tempdir", str(scratch))
    # A module placed inside the results directory, on the path a user might well have.
    (baseline / "boom.py").write_text(f"open({str(marker)!r}, 'w').write('imported')\n"
                                      "def factory():\n    raise SystemExit(5)\n")
    monkeypatch.syspath_prepend(str(baseline))
    for factory in ("tests.plugins.models:hostile", "boom:factory", "tempfile:mkdtemp"):
        _edit_meta(baseline, model=factory)
        code, err = run(capsys, "check", baseline, "--out", tmp_path / f"out-{factory}")
        assert code == 2
        one_line(err, factory, f"--trust-model {factory}")
        assert not marker.exists() and list(scratch.iterdir()) == []  # nothing imported, nothing called
        assert not (tmp_path / f"out-{factory}").exists()
    assert "boom" not in sys.modules


def test_a_trusted_factory_is_checked_like_a_sweeps(tmp_path, capsys, monkeypatch, baseline):
    marker = tmp_path / "marker"
    monkeypatch.setenv(MARKER_ENV, str(marker))
    _edit_meta(baseline, model="tests.plugins.models:hostile")
    code, err = run(capsys, "check", baseline, "--trust-model", "tests.plugins.models:hostile",
                    "--target", "tests.fakes:paced_ok", "--out", tmp_path / "out")
    # Named by the user, it runs, and is checked up front as a sweep's would be (on the meta device).
    assert code == 0 and marker.read_text() == "called"
    marker.unlink()
    code, err = run(capsys, "check", baseline, "--trust-model", "tests.plugins.models:tiny_cnn",
                    "--target", "tests.fakes:paced_ok", "--out", tmp_path / "out2")
    assert code == 2 and not marker.exists()  # trusting another factory does not trust this one
    one_line(err, "--trust-model tests.plugins.models:hostile")


@pytest.mark.parametrize("commit", ["--output=/tmp/x", "HEAD~1", "a76d5c6..HEAD", "xyz", "a" * 41])
def test_a_base_commit_that_is_not_a_hash_is_refused(tmp_path, capsys, commit, baseline):
    _edit_meta(baseline, git_commit=commit)
    code, err = run(capsys, "check", baseline, "--out", tmp_path / "out")
    assert code == 2
    one_line(err, "not a commit hash", "--base-ref")
    assert not (tmp_path / "out").exists()


def test_a_base_commit_that_cannot_be_had_stops_the_check_up_front(tmp_path, capsys, baseline):
    _edit_meta(baseline, git_commit="0" * 40)
    code, err = run(capsys, "check", baseline, "--out", tmp_path / "out")
    assert code == 2
    one_line(err, "cannot pair with base commit", "--no-paired")
    code, err = run(capsys, "check", baseline, "--base-ref", "nonexistent", "--out", tmp_path / "out2")
    assert code == 2
    one_line(err, "nonexistent")


def test_the_code_never_evaluates_unpickles_or_shells_out():
    """Nothing read from a results directory can reach eval, exec, pickle or a shell: none is used at all
    (CIFAR-10's batches are unpickled only after their published md5 matched, in bnn_impls/cifar.py)."""
    found = []
    for path in sorted(p for package in ("bench", "analysis", "bnn_impls") for p in (ROOT / package).rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            if not isinstance(node, ast.Call):
                continue
            call = ast.unparse(node.func)
            if call in ("eval", "exec", "os.system", "os.popen", "compile") or call.startswith(("pickle.", "marshal.")):
                found.append(f"{path.name}: {call}")
            if any(k.arg == "shell" and getattr(k.value, "value", False) is True for k in node.keywords):
                found.append(f"{path.name}: {call}(shell=True)")
    assert found == ["cifar.py: pickle.load"]


# ---------------------------------------------------------------------------------------------
# The failures the issue found, one by one


BAD_FLAGS = [
    (["sweep", "--init-sigma", "nan"], "finite"),
    (["sweep", "--init-sigma", "inf"], "finite"),
    (["train", "--init-sigma", "nan"], "nan or an infinity"),
    (["sweep", "--prior-sigma", "inf"], "finite"),
    (["sweep", "--mixture-sigma2", "inf"], "finite"),
    (["sweep", "--timeout", "inf"], "finite"),
    (["sweep", "--n-mc", "1e30", "--kl", "mc"], "<= 1e+09"),
    (["sweep", "--samples", "1:1000000000"], "more than 10000 values"),
    (["maxnmc", "--precision", "nan"], "finite"),
    (["maxnmc", "--growth", "1"], "must be >= 2"),
    (["sweep", "--memory-limit", "1K"], "below 1G"),
    (["train", "--data", "synthetic"], "unrecognized arguments: --data"),
    (["sweep", "--task", "regression", "--model", "tests.plugins.models:exits"], "SystemExit"),
    (["sweep", "--task", "lenet5", "--model", "tests.plugins.models:no_bayesian_layer"], "no Linear or Conv layer"),
    (["sweep", "--task", "regression", "--model", "bnn_impls.architectures:lenet5"], "does not take task"),
    (["sweep", "--task", "mnist", "--model", "bnn_impls.architectures:resnet18"], "does not take task"),
    (["sweep", "--retry-errors"], "add --resume"),
    (["sweep", "--task", "regression", "--impl", "vmap", "--samples", "1", "--rounds", "5"], "cannot fill 5 rounds"),
    (["bias", "--impl", "bayesian_torch_flipout"], "bias compares this project's estimators"),
    (["bias", "--init-sigma", "-1"], "--init-sigma must be >= 0"),
    (["train", "--task", "resnet18", "--baselines"], "no deterministic baseline exists"),
    (["train", "--task", "mnist", "--impl", "lenet5"], "add lenet5 to --task"),
    (["analyze", "x", "--margin", "0"], "strictly between 0 and 1"),
]


@pytest.mark.parametrize("argv, needle", BAD_FLAGS, ids=[" ".join(a) for a, _ in BAD_FLAGS])
def test_each_bad_flag_is_one_line_and_exit_2(tmp_path, capsys, argv, needle):
    code, err = run(capsys, *argv, "--out", tmp_path / "out")
    assert code == 2
    one_line(err, needle)
    assert not (tmp_path / "out").exists()


def _fake_run(tmp_path, capsys) -> Path:
    out = tmp_path / "run"
    assert run(capsys, *SWEEP, "--out", out)[0] == 0
    return out


@pytest.mark.parametrize("column, value", [("step_s_median", "fast"), ("graph_bytes", "1e3x"), ("samples", "two")])
def test_analyze_names_the_file_line_and_column_of_a_non_numeric_cell(tmp_path, capsys, column, value):
    out = _fake_run(tmp_path, capsys)
    lines = (out / "runs.csv").read_text().split("\n")
    header = lines[0].split(",")
    cells = lines[3].split(",")
    cells[header.index(column)] = value
    lines[3] = ",".join(cells)
    (out / "runs.csv").write_text("\n".join(lines))
    code, err = run(capsys, "analyze", out, "--out", tmp_path / "report")
    assert code == 2
    one_line(err, "runs.csv line 4 is corrupt", f"column {column}", value)
    assert not (tmp_path / "report").exists() or not any((tmp_path / "report").iterdir())


def test_outputs_that_cannot_be_written_are_one_line(tmp_path, capsys):
    out = _fake_run(tmp_path, capsys)
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    for argv, needle in (
        (["analyze", out, "--out", a_file], "is a file"),
        (["analyze", out, "--out", "/proc/bnn-bench-report"], "/proc/bnn-bench-report"),
        (["profile", "--task", "regression", "--out", a_file], "is a file"),
        (["check", out, out, "--json", "/proc/bnn-bench.json"], "--json /proc/bnn-bench.json"),
    ):
        code, err = run(capsys, *argv)
        assert code == 2, argv
        one_line(err, needle)
    assert a_file.read_text() == "x"


def test_a_data_dir_that_is_a_file_is_refused_where_data_is_read(tmp_path, capsys):
    a_file = tmp_path / "a-file"
    a_file.write_text("x")
    code, err = run(capsys, "sweep", "--task", "mnist", "--impl", "vmap", "--samples", "1", "--steps", "1",
                    "--data-dir", a_file, "--out", tmp_path / "o")
    assert code == 2
    one_line(err, "is a file, not a directory")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("content", ["[1, 2]", "\"a string\"", "null", "42"])
def test_resume_with_a_meta_json_that_is_not_an_object(tmp_path, capsys, content):
    out = _fake_run(tmp_path, capsys)
    (out / "meta.json").write_text(content)
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code, err = run(capsys, *SWEEP, "--out", out, "--resume")
    assert code == 2
    one_line(err, "meta.json", "not an object")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.fixture
def corrupt_mnist(tmp_path):
    if not (MNIST / "MNIST" / "raw").is_dir():
        pytest.skip(f"MNIST not found in {MNIST}")
    copy = tmp_path / "mnist"
    shutil.copytree(MNIST, copy)
    images = next((copy / "MNIST" / "raw").glob("train-images-idx3-ubyte*"))
    good = images.read_bytes()
    images.write_bytes(good[: len(good) // 2])  # a download cut short
    return copy, images, good


def test_a_truncated_data_set_stops_the_sweep_before_any_config(tmp_path, capsys, corrupt_mnist):
    copy, images, _ = corrupt_mnist
    code, err = run(capsys, "sweep", "--task", "mnist", "--impl", "vmap", "--samples", "1", "--steps", "1",
                    "--repeats", "1", "--executor", "inline", "--data-dir", copy, "--out", tmp_path / "o")
    assert code == 2
    one_line(err, str(images), "corrupt")
    assert not (tmp_path / "o").exists()


def test_retry_errors_reruns_what_the_environment_broke(tmp_path, capsys):
    out = tmp_path / "o"
    grid = ["sweep", "--profile", "paper", "--task", "regression", "--impl", "vmap", "--samples", "1,2", "--steps",
            "1", "--repeats", "1", "--executor", "inline", "--out", out]
    assert run(capsys, *grid, "--target", "tests.fakes:by_samples")[0] == 0  # S=2 raises: an error row
    assert [r["status"] for r in read_runs(out)] == ["ok", "error"]
    assert run(capsys, *grid, *FAKE, "--resume")[0] == 0
    assert [r["status"] for r in final_rows(out)] == ["ok", "error"]  # --resume alone runs nothing
    assert run(capsys, *grid, *FAKE, "--resume", "--retry-errors")[0] == 0
    assert [r["status"] for r in read_runs(out)] == ["ok", "error", "ok"]
    assert [r["status"] for r in final_rows(out)] == ["ok", "ok"] and len(read_meta(out)["resumed_at"]) == 2


def test_sigterm_keeps_the_rows_and_says_how_to_resume(tmp_path):
    out = tmp_path / "o"
    argv = [sys.executable, str(ROOT / "run_bench.py"), "sweep", "--profile", "paper", "--task", "regression",
            "--impl", "vmap", "--samples", "1,3", "--steps", "1", "--repeats", "1", "--timeout", "60",
            "--executor", "inline", "--target", "tests.fakes:by_samples", "--out", str(out)]
    proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and not ((out / "runs.csv").exists() and len(read_runs(out)) == 1):
        time.sleep(0.2)  # S=1 is written; S=3 sleeps
    proc.send_signal(signal.SIGTERM)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 143
    assert err.strip().splitlines() == ["bnn-bench: terminated (SIGTERM); every row written so far is kept: "
                                        "continue with --resume --out DIR"]
    assert [r["status"] for r in read_runs(out)] == ["ok"] and read_meta(out)["interrupted_at"]


def test_gpu_campaign_total_must_be_a_positive_number_within_one_device_command():
    for total in ("-5", "nan", "0", "9000"):
        done = subprocess.run(["bash", str(ROOT / "scripts" / "gpu_campaign.sh"), "--dry-run", "--total", total],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert done.returncode == 2
        one_line(done.stderr, "--total")


def test_perf_gate_with_an_unknown_base_ref_is_exit_2_up_front(tmp_path):
    env = dict(os.environ, PERF_GATE_BASE_REF="nonexistent", PERF_GATE_OUT=str(tmp_path / "gate"))
    start = time.monotonic()
    done = subprocess.run(["bash", str(ROOT / "scripts" / "perf_gate.sh"), "--target", "tests.fakes:paced_ok"],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-500:]
    errors = [line for line in done.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and "nonexistent" in errors[0] and re.search(r"--no-paired", errors[0])
    assert time.monotonic() - start < 60 and not (tmp_path / "gate").exists()
