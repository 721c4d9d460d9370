"""The command line: bad input is one line and exit 2 with nothing written; good input runs sweeps."""

import io
import json
import re
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pandas as pd
import pytest

import bench.grid.devices
from bench.cli.main import main
from bench.contract.provenance import CODE_ROOT
from bench.contract.store import read_repeats, read_runs

FAKE = ["--target", "tests.fakes:ok"]
SMALL = ["--profile", "paper", "--task", "regression", "--impl", "vmap,vmap_lrt", "--samples", "1,2",
         "--steps", "2", "--repeats", "2"]


@pytest.fixture(autouse=True)
def cpu_only(monkeypatch):
    """Every test sees a machine without CUDA, whatever it runs on."""
    monkeypatch.setattr(bench.grid.devices, "_cuda_count", lambda: 0)


@pytest.fixture
def fake_analysis(monkeypatch):
    """An `analysis` package stand-in: records its calls, writes report.md, rejects a directory without runs.csv."""
    from bench.contract.errors import AnalysisInputError

    module = types.ModuleType("analysis")
    module.calls = []

    def analyze(results_dir, reference_dir=None, out_dir=None):
        module.calls.append((Path(results_dir), reference_dir, out_dir))
        if not (Path(results_dir) / "runs.csv").exists():
            raise AnalysisInputError(f"{results_dir} has no runs.csv: pass a directory written by sweep")
        report = Path(out_dir or results_dir) / "report.md"
        report.write_text("# report\n")
        return report

    module.analyze, module.AnalysisInputError = analyze, AnalysisInputError
    monkeypatch.setitem(sys.modules, "analysis", module)
    return module


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(err: str, needle: str):
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("bnn-bench") and "error" in lines[0] and needle in lines[0], lines[0]
    assert "Traceback" not in err


# ---------------------------------------------------------------------------------------------
# Bad input


@pytest.mark.parametrize(
    "args, needle",
    [
        (["--impl", "loop"], "unknown implementation 'loop'"),
        (["--task", "cifar"], "unknown task 'cifar'"),
        (["--kl", "exact"], "unknown KL estimator 'exact'"),
        (["--device", "tpu"], "unknown device 'tpu'"),
        (["--device", "cuda"], "no CUDA device"),
        (["--device", "cpu,cuda:1"], "no CUDA device"),
        (["--samples", "0"], "--samples must be integers >= 1"),
        (["--samples", "1:x"], "'x' is not an integer"),
        (["--samples", "1,,2"], "is not an integer"),
        (["--n-mc", "0"], "--n-mc must be integers >= 1"),
        (["--impl", "vmap_lrt", "--kl", "sample"], "needs sampled weights"),
        (["--kl", "closed", "--prior", "mixture"], "needs the gaussian prior"),
        (["--steps", "3", "--epochs", "1"], "not allowed with argument"),
        (["--repeats", "0"], "--repeats"),
        (["--timeout", "-1"], "--timeout"),
        (["--profile", "fast"], "unknown profile 'fast'"),
        (["--memory-limit", "lots"], "--memory-limit 'lots' is not a size"),
        (["--target", "tests.fakes:nope"], "no function 'nope'"),
        (["--executor", "ssh"], "invalid choice"),
    ],
)
def test_sweep_bad_input_is_one_line_exit_2_and_writes_nothing(capsys, tmp_path, args, needle):
    out = tmp_path / "out"
    code, _, err = run_cli(capsys, "sweep", "--out", str(out), *FAKE, *args)
    assert code == 2
    assert_one_line_error(err, needle)
    assert not out.exists()


def test_unknown_command_and_missing_argument_are_exit_2(capsys):
    code, _, err = run_cli(capsys, "frobnicate")
    assert code == 2 and "invalid choice" in err and len(err.strip().splitlines()) == 1
    code, _, err = run_cli(capsys, "analyze")
    assert code == 2 and "DIR" in err and len(err.strip().splitlines()) == 1


def test_resume_needs_out(capsys):
    code, _, err = run_cli(capsys, "sweep", "--resume", *FAKE)
    assert code == 2
    assert_one_line_error(err, "--resume needs --out")


def test_existing_nonempty_out_without_resume_is_refused_untouched(capsys, tmp_path):
    (tmp_path / "keep.txt").write_text("precious")
    code, _, err = run_cli(capsys, "sweep", *SMALL, *FAKE, "--executor", "inline", "--out", str(tmp_path))
    assert code == 2
    assert_one_line_error(err, "exists and is not empty: pass --resume")
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"] and (tmp_path / "keep.txt").read_text() == "precious"


def test_unwritable_out_is_refused(capsys, tmp_path):
    # Tests run as root, for whom permissions do not stop a write; a path under a file always fails.
    (tmp_path / "somefile").write_text("x")
    code, _, err = run_cli(capsys, "sweep", *SMALL, *FAKE, "--out", str(tmp_path / "somefile" / "sub"))
    assert code == 2
    assert_one_line_error(err, "cannot write to --out")
    assert (tmp_path / "somefile").read_text() == "x"


def test_corrupt_runs_csv_on_resume_is_refused_untouched(capsys, tmp_path):
    out = tmp_path / "out"
    assert run_cli(capsys, "sweep", *SMALL, *FAKE, "--executor", "inline", "--out", str(out))[0] == 0
    runs = out / "runs.csv"
    lines = runs.read_text().split("\n")
    lines[3] = lines[3].replace(",ok,", ",done,")  # a row in the middle that no version wrote
    runs.write_text("\n".join(lines))
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code, _, err = run_cli(capsys, "sweep", *SMALL, *FAKE, "--executor", "inline", "--out", str(out), "--resume")
    assert code == 2
    assert_one_line_error(err, "runs.csv line 4 is corrupt")
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


def test_resume_cuts_a_torn_last_line_and_runs_that_config_again(capsys, tmp_path):
    out = tmp_path / "out"
    assert run_cli(capsys, "sweep", *SMALL, *FAKE, "--executor", "inline", "--out", str(out))[0] == 0
    runs = out / "runs.csv"
    whole = runs.read_text().split("\n")
    runs.write_bytes(runs.read_bytes()[:-10])  # a crash cut the last row short
    code, _, err = run_cli(capsys, "sweep", *SMALL, *FAKE, "--executor", "inline", "--out", str(out), "--resume")
    assert code == 0 and "runs.csv ended in a torn line" in err and "cut off before resuming" in err
    rows = read_runs(out)
    assert len(rows) == 4 and {r["status"] for r in rows} == {"ok"}  # the torn config ran again, nothing garbled
    assert runs.read_text().split("\n")[:4] == whole[:4]


def test_analysis_input_error_is_exit_2(capsys, tmp_path, fake_analysis):
    code, _, err = run_cli(capsys, "analyze", str(tmp_path))
    assert code == 2
    assert_one_line_error(err, "has no runs.csv")


def test_bad_input_from_a_real_process_has_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, str(CODE_ROOT / "run_bench.py"), "sweep", "--samples", "0",
                           "--out", str(tmp_path / "o")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip() == "bnn-bench: error: --samples must be integers >= 1, got 0: e.g. --samples 1,2,5,10 " \
                                  "or --samples 1:10"
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------------------------
# Good input


@pytest.mark.parametrize("command", [[], ["list"], ["sweep"], ["analyze"], ["check"]])
def test_help_exits_0(capsys, command):
    code, out, _ = run_cli(capsys, *command, "--help")
    assert code == 0 and "usage: bnn-bench" in out


def test_list_names_everything(capsys):
    code, out, _ = run_cli(capsys, "list")
    assert code == 0
    for name in ("sequential", "vmap", "vmap_lrt", "sample", "closed", "repar_exact", "784-800-800-10", "1-400-400-1",
                 "quick", "paper", "repar", "ci"):
        assert name in out
    assert re.search(r"vmap_lrt\s+closed", out) and out.strip().endswith("cpu")


def test_sweep_writes_one_row_per_config_and_prints_a_table(capsys, tmp_path):
    out = tmp_path / "out"
    code, stdout, _ = run_cli(capsys, "sweep", *SMALL, *FAKE, "--executor", "inline", "--out", str(out))
    assert code == 0
    runs = pd.read_csv(out / "runs.csv")
    assert list(zip(runs["impl"], runs["kl"], runs["samples"])) == [
        ("vmap", "sample", 1), ("vmap", "sample", 2), ("vmap_lrt", "closed", 1), ("vmap_lrt", "closed", 2)]
    assert (runs["status"] == "ok").all() and (runs["repeats"] == 2).all()
    assert len(read_repeats(out)) == 8
    meta = json.loads((out / "meta.json").read_text())
    assert meta["profile"] == "paper" and meta["argv"][:2] == ["bnn-bench", "sweep"] and len(meta["grid"]) == 4
    assert meta["machine"]["cpu_model"] and meta["end_time"]
    assert "step ms" in stdout and stdout.count("regression") >= 4 and str(out / "runs.csv") in stdout

    # resuming a finished sweep runs nothing and rewrites nothing
    before = (out / "runs.csv").read_bytes()
    code, stdout, _ = run_cli(capsys, "sweep", *SMALL, *FAKE, "--executor", "inline", "--out", str(out), "--resume")
    assert code == 0 and (out / "runs.csv").read_bytes() == before and "4 configs already have a final row" in stdout


def test_failing_configs_become_rows_and_the_sweep_goes_on(capsys, tmp_path):
    """One sweep of real child processes: ok, raises, exceeds --timeout, runs out of memory, segfaults, ok."""
    out = tmp_path / "out"
    code, stdout, _ = run_cli(capsys, "sweep", "--profile", "paper", "--task", "regression", "--impl", "vmap",
                              "--samples", "1:6", "--steps", "1", "--repeats", "2", "--timeout", "1",
                              "--memory-limit", "1G", "--target", "tests.fakes:by_samples", "--out", str(out))
    assert code == 0
    rows = read_runs(out)
    assert [r["status"] for r in rows] == ["ok", "error", "timeout", "oom", "error", "ok"]
    assert "ValueError" in rows[1]["error"] and "SIGSEGV" in rows[4]["error"] and "MemoryError" in rows[3]["error"]
    assert "[6/6]" in stdout  # plain progress lines when stdout is not a terminal


@pytest.mark.skipif(shutil.which("sbatch") is not None, reason="would submit real Slurm jobs")
def test_slurm_executor_from_the_command_line(capsys, tmp_path):
    """Without Slurm, submitit's AutoExecutor runs jobs locally: the whole path, folder handling included."""
    pytest.importorskip("submitit")
    out = tmp_path / "out"
    args = ["--profile", "paper", "--task", "regression", "--impl", "vmap", "--samples", "1,2", "--steps", "1",
            "--repeats", "2", *FAKE, "--executor", "slurm", "--out", str(out)]
    assert run_cli(capsys, "sweep", *args)[0] == 0
    assert [r["status"] for r in read_runs(out)] == ["ok", "ok"] and len(read_repeats(out)) == 4
    assert (out / "slurm").is_dir()


def test_sweep_without_out_uses_a_timestamped_directory(capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # results go under the working directory, never beside the code
    assert run_cli(capsys, "sweep", *SMALL, *FAKE, "--executor", "inline")[0] == 0
    (made,) = (tmp_path / "results" / "runs").iterdir()
    assert re.fullmatch(r"paper-\d{8}-\d{6}", made.name) and len(read_runs(made)) == 4


def test_default_job_sweeps_quick_then_analyzes(capsys, tmp_path, fake_analysis):
    out = tmp_path / "out"
    code, stdout, _ = run_cli(capsys, "--out", str(out), "--executor", "inline", *FAKE)
    assert code == 0
    rows = read_runs(out)
    assert (len(rows) == 44 and {r["task"] for r in rows} == {"regression", "mnist"}
            and {r["device"] for r in rows} == {"cpu"})
    assert json.loads((out / "meta.json").read_text())["profile"] == "quick"
    assert [call[0] for call in fake_analysis.calls] == [out]
    assert str(out / "report.md") in stdout and str(out / "runs.csv") in stdout and "figures" in stdout


def test_analyze_passes_its_arguments(capsys, tmp_path, fake_analysis):
    (tmp_path / "runs.csv").write_text("")
    (tmp_path / "a").mkdir()
    code, stdout, _ = run_cli(capsys, "analyze", str(tmp_path), "--reference", "ref", "--out", str(tmp_path / "a"))
    assert code == 0 and fake_analysis.calls == [(tmp_path, Path("ref"), tmp_path / "a")]
    assert stdout.strip() == f"report: {tmp_path / 'a' / 'report.md'}"


def test_ctrl_c_is_exit_130_with_a_hint(capsys, tmp_path, monkeypatch):
    import bench.cli.cmd_sweep as sweep_cmd

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(sweep_cmd, "run_sweep", interrupted)
    code, _, err = run_cli(capsys, "sweep", *SMALL, *FAKE, "--out", str(tmp_path / "o"))
    assert code == 130 and "--resume" in err and "Traceback" not in err


# ---------------------------------------------------------------------------------------------
# What a sweep shows


class _Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_is_a_bar_on_a_terminal_and_plain_lines_otherwise():
    from bench.contract.config import BenchConfig
    from bench.contract.records import failure_result
    from bench.run.progress import Progress
    from tests import fakes

    config = BenchConfig("vmap", "mnist", samples=10, kl="sample", steps=5, repeats=3)
    failed = config.replace(samples=2)
    outcomes = [(config, fakes.ok(config)), (failed, failure_result(failed, "oom", "MemoryError"))]

    terminal = _Terminal()
    bar = Progress(2, stream=terminal)
    for c, result in outcomes:
        bar.update(c, result)
    bar.close()
    shown = terminal.getvalue()
    # tqdm redraws in place (\r) and shows the last result beside the count
    assert "2/2" in shown and "\r" in shown and "mnist vmap S=2 kl=sample: oom: MemoryError" in shown

    log = io.StringIO()
    plain = Progress(2, stream=log)
    for c, result in outcomes:
        plain.update(c, result)
    lines = log.getvalue().splitlines()
    assert len(lines) == 2 and "\r" not in log.getvalue()
    assert lines[0].startswith("[1/2] mnist vmap S=10 kl=sample: 120.0 ms/step") and "ETA" in lines[0]
    assert lines[1].startswith("[2/2] mnist vmap S=2 kl=sample: oom: MemoryError")


def test_summary_table_formats_units():
    from bench.run.progress import summary_table

    rows = [{"task": "mnist", "impl": "vmap", "kl": "sample", "n_mc": "1", "samples": "10", "device": "cpu",
             "status": "ok", "step_s_median": "0.0412", "epoch_s": "19.31", "graph_bytes": str(3 * 2**20)},
            {"task": "mnist", "impl": "vmap", "kl": "sample", "n_mc": "1", "samples": "20", "device": "cpu",
             "status": "oom", "step_s_median": "", "epoch_s": "", "graph_bytes": ""}]
    header, rule, ok, oom = summary_table(rows).splitlines()
    assert header.split() == ["task", "impl", "kl", "n_mc", "S", "device", "status", "step", "ms", "epoch", "s",
                              "graph", "MB"]
    assert ok.split()[-3:] == ["41.20", "19.310", "3.0"] and oom.split()[-1] == "oom"


def test_missing_mnist_is_one_line_and_exit_2_before_anything_runs(tmp_path, monkeypatch, capsys):
    from bench.cli.main import main

    monkeypatch.setenv("BNN_BENCH_DATA", "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr("bnn_impls.mnist.MIRRORS", ())  # no download attempt: the test must not use a network
    out = tmp_path / "out"
    assert main(["sweep", "--task", "mnist", "--out", str(out)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "MNIST not found" in err[0] and "--data-dir" in err[0]
    assert not out.exists()
