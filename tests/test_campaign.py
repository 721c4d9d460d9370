"""The GPU campaign (scripts/gpu_campaign.py): one device command in the issue's order of value, whose
rehearsal is the same command with tiny sizes; every step's command line is valid; the runner bounds
each step and resumes what is left; the full CPU rehearsal is a slow test."""

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

#: Flags whose values may differ between the real campaign and its rehearsal: the sizes, and the
#: memory cap (an allocator cap on a GPU, an address-space cap on the CPU).
SIZE_FLAGS = {"--samples", "--steps", "--repeats", "--rounds", "--warmup", "--n-mc", "--batch-size", "--task",
              "--memory-limit", "--device"}


def _settings(tmp_path, dry_run):
    return C.Settings(dry_run=dry_run, out=tmp_path / "campaign", data_dir=tmp_path / "mnist")


def _flags(argv):
    """{flag: value} of an argv (a flag followed by a non-flag takes it as its value; a bare flag maps to True)."""
    out, i = {}, 1
    while i < len(argv):
        if argv[i].startswith("--") and "=" not in argv[i]:
            has_value = i + 1 < len(argv) and not argv[i + 1].startswith("--")
            out[argv[i]] = argv[i + 1] if has_value else True
            i += 2 if has_value else 1
        else:
            out[argv[i]] = True
            i += 1
    return out


def test_steps_come_in_the_issues_order_of_value_and_fit_one_command_plus_the_rerun(tmp_path):
    steps = C.build_steps(_settings(tmp_path, dry_run=False))
    assert [s.name for s in steps[:3]] == ["machine", "pytest -m gpu", "grid mnist eager"]
    assert [s.priority for s in steps] == sorted(s.priority for s in steps)
    assert C.TOTAL_S + C.RERUN_TOTAL_S <= 13 * 60 and C.TOTAL_S <= C.COMMAND_LIMIT_S <= 9 * 60
    assert all(s.cap_s <= C.TOTAL_S for s in steps)
    by_estimate = sum(s.estimate_s for s in steps if s.priority <= 2)
    assert by_estimate <= C.TOTAL_S, by_estimate  # the tests and the report's grid in the first command
    assert sum(s.estimate_s for s in steps if s.priority <= 4) <= C.TOTAL_S + C.RERUN_TOTAL_S


def test_the_estimate_follows_the_report_table():
    # vmap_lrt S=10 on MNIST: 17.1 s per A100 epoch / 469 steps / 5; S=3 lies between S=2 and S=5.
    assert C.mnist_step_s("vmap_lrt", 10) == pytest.approx(17.1 / 469 / 5)
    assert C.mnist_step_s("sequential", 3) == pytest.approx((23.0 + (49.5 - 23.0) / 3) / 469 / 5)
    assert C.mnist_step_s("vmap_flipout", 1) == C.mnist_step_s("vmap", 1)


def test_the_rehearsal_is_the_same_command_with_tiny_sizes(tmp_path):
    real = C.build_steps(_settings(tmp_path, dry_run=False))
    dry = C.build_steps(_settings(tmp_path, dry_run=True))
    assert [(s.name, s.kind, s.priority) for s in real] == [(s.name, s.kind, s.priority) for s in dry]
    for r, d in zip(real, dry):
        fr, fd = _flags(r.argv), _flags(d.argv)
        differ = {k for k in fr.keys() | fd.keys() if fr.get(k) != fd.get(k)}
        assert differ <= SIZE_FLAGS, (r.name, differ - SIZE_FLAGS)
        assert r.argv[0] == d.argv[0]


@pytest.mark.parametrize("dry_run", [False, True])
def test_every_step_is_a_valid_command_line(tmp_path, dry_run):
    parser = build_parser()
    for step in C.build_steps(_settings(tmp_path, dry_run)):
        if step.kind == "python":
            assert Path(step.argv[0]).exists()
            continue
        if step.kind != "bench":
            continue
        args = parser.parse_args(list(step.argv))  # a bad flag raises UsageError
        if step.argv[0] == "sweep" and dry_run and not step.skip_reason:
            configs = grid_from_args(args)  # validates names, combinations and levers on this CPU
            assert configs and all(c.device == "cpu" for c in configs)
            assert all(c.repeats <= 3 for c in configs), step.name


def test_rehearsal_skips_only_the_cuda_graph_steps_with_the_reason(tmp_path):
    skipped = {s.name: s.skip_reason for s in C.build_steps(_settings(tmp_path, dry_run=True)) if s.skip_reason}
    assert set(skipped) == {"grid mnist cudagraphs", "profile vmap_lrt cudagraphs", "grid regression cudagraphs"}
    assert set(skipped.values()) == {"CUDA graphs need a CUDA device"}
    assert not [s for s in C.build_steps(_settings(tmp_path, dry_run=False)) if s.skip_reason]


def _read_log(out):
    with open(out / C.LOG_FILE, newline="") as f:
        return list(csv.DictReader(f))


def test_runner_caps_each_step_and_the_total_and_resumes_only_what_is_left(tmp_path):
    s = _settings(tmp_path, dry_run=True)
    packed = []
    steps = [
        C.Step("quick", 1, ("-c", "pass"), 1.0, 30, kind="python"),
        C.Step("gpu only", 2, ("list",), 1.0, 30, skip_reason="needs a CUDA device"),
        C.Step("slow", 2, ("-c", "import time; time.sleep(60)"), 1.0, 3, kind="python"),  # cut at its 3 s cap
        C.Step("fails", 3, ("-c", "raise SystemExit(4)"), 1.0, 30, kind="python"),
        C.Step("late", 4, ("-c", "import time; time.sleep(60)"), 1.0, 30, kind="python"),  # cut by --total
    ]
    assert C.run_campaign(steps, s, total_s=16, after_step=lambda: packed.append(1)) is False
    log = _read_log(s.out)
    assert [(r["step"], r["status"]) for r in log] == [("quick", "ok"), ("gpu only", "skipped"), ("slow", "stopped"),
                                                       ("fails", "failed"), ("late", "stopped")]
    assert float(log[2]["wall_s"]) < 15 and log[3]["reason"] == "exit status 4"
    assert len(packed) == 4  # after every step that ran
    # Run again: finished and skipped steps are not repeated; with no time left, a step is not started.
    fixed = [steps[0], steps[1], C.Step("slow", 2, ("-c", "pass"), 1.0, 30, kind="python"),
             C.Step("fails", 3, ("-c", "pass"), 1.0, 30, kind="python"), steps[4]]
    assert C.run_campaign(fixed, s, total_s=12) is False
    assert [(r["step"], r["status"]) for r in _read_log(s.out)][5:] == [("slow", "ok"), ("fails", "ok"),
                                                                         ("late", "stopped")]
    assert C.run_campaign(fixed, s, total_s=5) is False
    assert _read_log(s.out)[-1]["status"] == "not_run"


def test_pack_writes_one_archive_of_the_campaign_directory(tmp_path):
    out = tmp_path / "20261204-h200"
    (out / "grid").mkdir(parents=True)
    (out / "grid" / "runs.csv").write_text("x\n")
    path = C.pack(out, tmp_path / "OUT")
    assert path.name == "20261204-h200.tar.gz" and not list((tmp_path / "OUT").glob("*.partial"))
    with tarfile.open(path) as tar:
        assert "20261204-h200/grid/runs.csv" in tar.getnames()


def test_stage_data_refuses_a_missing_source_in_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("BNN_BENCH_DATA", raising=False)
    assert C.main(["--stage-data", "--data-dir", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gpu_campaign: error:") and "\n" not in err


def test_real_campaign_refuses_to_start_without_cuda(tmp_path, capsys):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    assert C.main(["--out", str(tmp_path / "c")]) == 2
    assert "--dry-run" in capsys.readouterr().err


def test_missing_data_is_one_line_before_any_step(tmp_path, capsys):
    assert C.main(["--dry-run", "--out", str(tmp_path / "c"), "--data-dir", str(tmp_path / "none")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("gpu_campaign: error:") and "\n" not in err
    assert not (tmp_path / "c").exists()


def test_machine_facts_without_cuda_say_why_the_ceilings_are_empty(tmp_path):
    import subprocess

    out = tmp_path / "machine.json"
    done = subprocess.run([sys.executable, str(C.CODE_ROOT / "scripts" / "gpu_machine.py"), str(out)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    import json

    facts = json.loads(out.read_text())
    assert facts["torch"] and "skipped" in facts["ceilings"]


@pytest.mark.slow
def test_full_rehearsal_runs_every_step_on_the_cpu(tmp_path, mnist_data_dir):
    """The whole campaign's code path on the CPU: every step ok, or skipped for a recorded reason."""
    out = tmp_path / "rehearsal"
    code = C.main(["--dry-run", "--out", str(out), "--data-dir", mnist_data_dir, "--total", "540",
                   "--pack", str(tmp_path / "packed")])
    log = _read_log(out)
    bad = [r for r in log if r["status"] not in ("ok", "skipped")]
    assert code == 0 and not bad, bad
    assert all(r["reason"] for r in log if r["status"] == "skipped")
    assert {r["status"] for r in csv.DictReader(open(out / "grid" / "runs.csv"))} == {"ok"}
    maxnmc = list(csv.DictReader(open(out / "maxnmc" / "runs.csv")))
    assert {"ok", "oom"} <= {r["status"] for r in maxnmc}
    assert (out / "profile" / "profiles" / "summary.csv").exists()
    assert (tmp_path / "packed" / "rehearsal.tar.gz").exists()


def test_a_sweep_whose_configs_all_err_is_a_failed_step_not_ok(tmp_path):
    """The first H200 run: every sweep exited 0 with only error rows, and the log said ok."""
    out = tmp_path / "sweep"
    out.mkdir()
    assert C.step_out_dir(C.Step("sweep", 2, ("sweep", "--out", str(out)), 1.0, 30)) == out
    assert C.step_out_dir(C.Step("script", 1, ("x.py", "--out", str(out)), 1.0, 30, kind="python")) is None
    assert C.step_out_dir(C.Step("profile", 4, ("profile", "--out", str(out)), 1.0, 30)) is None
    (out / "runs.csv").write_text("run_id,status\nA,ok\n")
    before = C.row_statuses(out)
    (out / "runs.csv").write_text("run_id,status\nA,ok\nB,error\nC,oom\n")
    ok, text = C.rows_verdict(before, C.row_statuses(out))
    assert not ok and text == "rows: 1 error, 1 oom"
    assert C.rows_verdict(before, {"A": "ok", "C": "oom", "D": "timeout"}) == (True, "rows: 1 oom, 1 timeout")
    assert C.rows_verdict(before, before) == (True, "rows: none new")


def test_code_commit_must_be_a_full_hash_and_reaches_the_steps_only(tmp_path, capsys, monkeypatch):
    import os

    monkeypatch.delenv(C.CODE_COMMIT_ENV, raising=False)
    assert C.main(["--dry-run", "--out", str(tmp_path / "c"), "--code-commit", "abc; ls"]) == 2
    assert "40-hex-digit" in capsys.readouterr().err
    head = "0123456789abcdef0123456789abcdef01234567+dirty"
    s = C.Settings(dry_run=True, out=tmp_path, data_dir=tmp_path / "mnist", code_commit=head)
    env = C.step_environment(s)
    assert env[C.CODE_COMMIT_ENV] == head and env["BNN_BENCH_DATA"] == str(tmp_path / "mnist")
    assert C.CODE_COMMIT_ENV not in os.environ  # the steps get it; this process (and later tests) do not
    assert C.CODE_COMMIT_ENV not in C.step_environment(_settings(tmp_path, dry_run=True))


def test_a_step_stops_at_its_cap_even_when_the_campaign_was_started_with_sigint_ignored():
    """`cmd &` and `nohup` start a process with SIGINT ignored, and its children inherit that: the
    step's SIGINT at its cap must still stop it, not wait out the grace period before SIGKILL."""
    import signal
    import time

    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        start = time.monotonic()
        returncode, stopped = C.run_step(C.Step("slow", 1, ("-c", "import time; time.sleep(60)"), 1.0, 1,
                                                kind="python"), 1.0)
        took = time.monotonic() - start
    finally:
        signal.signal(signal.SIGINT, previous)
    assert stopped and returncode != 0
    assert took < 10, f"stopped after {took:.1f} s: SIGINT was ignored and only the SIGKILL after the grace ended it"
