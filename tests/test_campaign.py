"""The GPU campaign (scripts/gpu_campaign.py): its plan fits the device budget, every step's command line is
valid, the runner bounds and resumes chunks; the full CPU rehearsal is a slow test."""

import csv
import importlib.util
import sys
import tarfile
from pathlib import Path

import pytest

from bench.cli.cmd_sweep import grid_from_args
from bench.cli.main import build_parser


def _load_campaign():
    """scripts/gpu_campaign.py is a script, not part of the library: loaded from its file."""
    spec = importlib.util.spec_from_file_location("gpu_campaign", Path(__file__).resolve().parents[1] / "scripts"
                                                  / "gpu_campaign.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


C = _load_campaign()


def _settings(tmp_path, dry_run):
    return C.Settings(dry_run=dry_run, out=tmp_path / "campaign", data_dir=tmp_path / "mnist")


def test_every_chunk_fits_nine_minutes_and_the_campaign_fits_35(tmp_path):
    chunks = C.build_chunks(_settings(tmp_path, dry_run=False))
    assert [c.number for c in chunks] == list(range(1, len(chunks) + 1))
    for chunk in chunks:
        assert chunk.estimate_s <= C.CHUNK_BUDGET_S, (chunk.name, chunk.estimate_s)
    core = [c for c in chunks if c.name not in ("conv", "quality")]
    assert sum(c.estimate_s for c in core) <= C.CAMPAIGN_TARGET_S
    # Order of value: the paper grid first, then the memory study, then the levers.
    assert [c.name for c in chunks[:4]] == ["paper_mnist", "paper_regression", "repar", "levers"]


def test_the_estimate_follows_the_report_table_and_the_timeout(tmp_path):
    # vmap_lrt S=10 on MNIST: 17.1 s per A100 epoch / 469 steps / 25.
    assert C.report_step_s("mnist", "vmap_lrt", 10) == pytest.approx(17.1 / 469 / 25)
    assert C.config_estimate_s("mnist", "sequential", 10, steps_timed=10**6, timeout_s=120) == 120


@pytest.mark.parametrize("dry_run", [False, True])
def test_every_sweep_step_is_a_valid_command_line(tmp_path, dry_run):
    parser = build_parser()
    for chunk in C.build_chunks(_settings(tmp_path, dry_run)):
        for step in chunk.steps:
            if step.skip_reason or step.kind != "bench":
                continue
            args = parser.parse_args(list(step.argv))  # a bad flag raises UsageError
            if step.argv[0] == "sweep" and dry_run:
                configs = grid_from_args(args)  # validates names, combinations and levers on this CPU
                assert configs and all(c.device == "cpu" for c in configs)
                assert all(c.steps == 1 and c.repeats == 1 for c in configs), step.name


def test_rehearsal_skips_cuda_only_steps_with_the_reason(tmp_path):
    chunks = C.build_chunks(_settings(tmp_path, dry_run=True))
    skipped = {s.name: s.skip_reason for c in chunks for s in c.steps if s.skip_reason}
    for name in ("lever cudagraphs", "lever tf32", "profile vmap_lrt cudagraphs", "pytest -m gpu"):
        assert skipped[name] == "needs a CUDA device"
    real = {s.name for c in C.build_chunks(_settings(tmp_path, dry_run=False)) for s in c.steps if not s.skip_reason}
    assert {"lever cudagraphs", "lever tf32", "pytest -m gpu"} <= real


def _read_log(out):
    with open(out / C.LOG_FILE, newline="") as f:
        return list(csv.DictReader(f))


def test_runner_stops_a_step_at_the_chunk_budget_and_resumes_only_what_is_left(tmp_path):
    s = _settings(tmp_path, dry_run=True)
    chunk = C.Chunk(1, "t", "test", (
        C.Step("quick", ("-c", "pass"), 1.0, kind="python"),
        C.Step("gpu only", ("list",), 1.0, skip_reason="needs a CUDA device"),
        C.Step("slow", ("-c", "import time; time.sleep(60)"), 1.0, kind="python"),
    ))
    # 7 s: enough to start the slow step (a step starts only with 5 s left) and cut it by the budget.
    assert C.run_chunk(chunk, s, budget_s=7) is False
    log = _read_log(s.out)
    assert [(r["step"], r["status"]) for r in log] == [("quick", "ok"), ("gpu only", "skipped"), ("slow", "budget")]
    assert float(log[2]["wall_s"]) < 45
    # Run again: the finished and skipped steps are not repeated, the cut one is.
    fast = C.Chunk(1, "t", "test", chunk.steps[:2] + (C.Step("slow", ("-c", "pass"), 1.0, kind="python"),))
    assert C.run_chunk(fast, s, budget_s=60) is True
    assert [(r["step"], r["status"]) for r in _read_log(s.out)][3:] == [("slow", "ok")]


def test_pack_writes_one_archive_of_the_campaign_directory(tmp_path):
    out = tmp_path / "h100"
    (out / "paper").mkdir(parents=True)
    (out / "paper" / "runs.csv").write_text("x\n")
    path = C.pack(out, tmp_path / "OUT", out.name)
    with tarfile.open(path) as tar:
        assert "h100/paper/runs.csv" in tar.getnames()


def test_stage_data_refuses_a_missing_source_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("BNN_BENCH_DATA", raising=False)
    assert C.main(["--stage-data", "--data-dir", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gpu_campaign: error:") and "\n" not in err


def test_real_campaign_refuses_to_start_without_cuda(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert C.main(["--chunk", "1", "--out", str(tmp_path / "c")]) == 2
    assert "--dry-run" in capsys.readouterr().err


def test_unknown_chunk_is_a_usage_error(tmp_path, capsys):
    assert C.main(["--dry-run", "--chunk", "9", "--out", str(tmp_path / "c")]) == 2
    assert "unknown --chunk '9'" in capsys.readouterr().err


@pytest.mark.slow
def test_full_rehearsal_runs_every_chunk_on_the_cpu(tmp_path, mnist_data_dir):
    """The whole campaign's code path on the CPU: every step ok, or skipped for a recorded reason."""
    out = tmp_path / "rehearsal"
    code = C.main(["--dry-run", "--out", str(out), "--data-dir", mnist_data_dir, "--budget", "3600",
                   "--pack", str(tmp_path / "packed")])
    log = _read_log(out)
    bad = [r for r in log if r["status"] not in ("ok", "skipped")]
    assert code == 0 and not bad, bad
    assert all(r["reason"] for r in log if r["status"] == "skipped")
    for name in ("paper", "repar", "levers"):
        report = (out / name / "report.md").read_text()
        assert "## Table 2" in report
    assert "## Levers" in (out / "levers" / "report.md").read_text()
    assert (out / "profile" / "profiles" / "summary.csv").exists()
    assert (tmp_path / "packed" / "rehearsal.tar.gz").exists()
