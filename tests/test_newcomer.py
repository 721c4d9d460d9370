"""The newcomer's path (issue 15): flags that mean what they say, a dry run, KL cost against n_mc,
several results directories in one report, prior flags in every row, and the Python entry point."""

import json
import math
import re

import numpy as np
import pandas as pd
import pytest
import torch

import bench.grid.devices
from bench.cli.main import main
from bench.contract.config import BenchConfig
from bench.contract.provenance import cpu_model
from bench.contract.schema import REPEATS_COLUMNS, RUNS_COLUMNS
from bench.contract.store import read_runs

FAKE = ["--target", "tests.fakes:ok"]
TARGET = ["sweep", "--impl", "sequential,vmap_lrt", "--task", "mnist", "--samples", "10"]
RUN_ID = re.compile(r"^\S+-S\d+-n\d+-\S+-[0-9a-f]{8}\s")


@pytest.fixture(autouse=True)
def cpu_only(monkeypatch):
    monkeypatch.setattr(bench.grid.devices, "_cuda_count", lambda: 0)


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def config_lines(stdout: str) -> list[str]:
    return [line for line in stdout.splitlines() if RUN_ID.match(line)]


def assert_one_line_error(err: str, needle: str):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("bnn-bench: error:") and needle in lines[0], err


# ---------------------------------------------------------------------------------------------
# Flags mean what they say, and --dry-run shows it


def test_the_issues_command_lists_exactly_two_configs_and_writes_nothing(capsys, tmp_path):
    out = tmp_path / "out"
    code, stdout, _ = run_cli(capsys, *TARGET, "--dry-run", "--out", str(out), *FAKE)
    assert code == 0
    lines = config_lines(stdout)
    assert len(lines) == 2
    assert "mnist sequential S=10 kl=sample" in lines[0] and "mnist vmap_lrt S=10 kl=closed" in lines[1]
    assert "total: 2 config(s), 2 to run" in stdout and "nothing was measured or written" in stdout
    assert not out.exists()


def test_without_dry_run_it_runs_exactly_those_two(capsys, tmp_path):
    code, stdout, _ = run_cli(capsys, *TARGET, "--dry-run", *FAKE)
    planned = [line.split()[0] for line in config_lines(stdout)]
    out = tmp_path / "out"
    code, _, _ = run_cli(capsys, *TARGET, "--executor", "inline", "--out", str(out), *FAKE)
    assert code == 0
    rows = read_runs(out)
    assert [r["run_id"] for r in rows] == planned
    # the documented defaults for the rest: the task's budget, n_mc 1, gaussian prior, own KL
    assert {(r["kl"], r["n_mc"], r["prior"], r["steps_timed"], r["repeats"]) for r in rows} == {
        ("sample", "1", "gaussian", "5", "3"), ("closed", "1", "gaussian", "5", "3")}
    assert json.loads((out / "meta.json").read_text())["profile"] is None


def test_defaults_of_a_sweep_without_profile_and_with_one(capsys):
    code, stdout, _ = run_cli(capsys, "sweep", "--dry-run", *FAKE)
    lines = config_lines(stdout)
    assert code == 0 and len(lines) == 16 and all(" mnist " in f" {line} " for line in lines)
    assert not any("n_mc=" in line for line in lines)  # no KL-estimator block unless asked for
    code, stdout, _ = run_cli(capsys, "sweep", "--profile", "quick", "--dry-run", *FAKE)
    assert code == 0 and len(config_lines(stdout)) == 44
    # with a profile, flags override its axes in every block (its KL block included)
    code, stdout, _ = run_cli(capsys, "sweep", "--profile", "quick", "--impl", "vmap_lrt", "--samples", "1",
                              "--dry-run", *FAKE)
    assert len(config_lines(stdout)) == 2 + 12


def test_each_task_keeps_its_own_budget_and_flags_override_it():
    from bench.grid.profiles import TASK_BUDGETS, Overrides, flag_grid

    configs = flag_grid(Overrides(tasks=("regression", "mnist"), impls=("vmap",), samples=(1,)))
    by_task = {c.task: c for c in configs}
    assert by_task["regression"].epochs == TASK_BUDGETS["regression"].epochs and by_task["regression"].steps is None
    assert by_task["mnist"].steps == TASK_BUDGETS["mnist"].steps and by_task["mnist"].epochs is None
    assert all(c.steps == 4 and c.repeats == 2 for c in flag_grid(Overrides(tasks=("regression", "mnist"), steps=4,
                                                                            repeats=2)))


def _previous_dir(path, *, step_s=0.1, gap_s=13.0):
    """An earlier run of this machine: the target's two configs, rows `gap_s` apart, 5 steps x 3 repeats + 2 warm-up."""
    path.mkdir()
    start = pd.Timestamp("2026-01-01T00:00:00+00:00")
    rows = []
    for i, (impl, kl) in enumerate((("sequential", "sample"), ("vmap_lrt", "closed"))):
        config = BenchConfig(impl, "mnist", samples=10, kl=kl, steps=5, repeats=3, warmup_steps=2, threads=2)
        rows.append(dict(run_id=config.run_id, impl=impl, task="mnist", kl=kl, prior="gaussian", n_mc=1, samples=10,
                         batch_size=128, device="cpu", device_name=cpu_model(), dtype="float32", threads=2, seed=0,
                         status="ok", repeats=3, warmup_steps=2, steps_timed=5, step_s_median=step_s * (i + 1),
                         steps_per_epoch=469, epoch_s=1.0, timestamp=(start + pd.Timedelta(seconds=gap_s * (i + 1)))
                         .isoformat()))
    pd.DataFrame(rows).reindex(columns=list(RUNS_COLUMNS)).to_csv(path / "runs.csv", index=False)
    pd.DataFrame(columns=list(REPEATS_COLUMNS)).to_csv(path / "repeats.csv", index=False)
    (path / "meta.json").write_text(json.dumps({"start_time": start.isoformat()}))
    return path


def test_dry_run_estimates_from_an_earlier_run_of_this_machine(capsys, tmp_path):
    previous = _previous_dir(tmp_path / "previous")
    code, stdout, _ = run_cli(capsys, *TARGET, "--threads", "2", "--dry-run", "--estimate-from", str(previous), *FAKE)
    assert code == 0
    # steps per config: 3 untimed (graph bytes, FLOPs, final loss) + 2 warm-up + 3 x 5 timed = 20;
    # start-up measured from the rows: gaps of 13 s minus 20 steps of 0.1 s and of 0.2 s -> median 9 s.
    startup = np.median([13 - 20 * 0.1, 13 - 20 * 0.2])
    expected = [20 * 0.1 + startup, 20 * 0.2 + startup]
    lines = config_lines(stdout)
    assert lines[0].endswith(f"~0m{round(expected[0]):02d}s") and lines[1].endswith(f"~0m{round(expected[1]):02d}s")
    assert f"estimated duration: 0m{round(sum(expected)):02d}s" in stdout and f"{startup:.1f} s measured" in stdout


def test_dry_run_ignores_other_machines_and_says_when_it_cannot_estimate(capsys, tmp_path):
    previous = _previous_dir(tmp_path / "previous")
    runs = pd.read_csv(previous / "runs.csv")
    runs["device_name"] = "Some Other CPU"
    runs.to_csv(previous / "runs.csv", index=False)
    code, stdout, _ = run_cli(capsys, *TARGET, "--threads", "2", "--dry-run", "--estimate-from", str(previous), *FAKE)
    assert code == 0 and "estimated duration: unknown" in stdout and "~" not in "".join(config_lines(stdout))


def test_dry_run_on_resume_marks_what_is_done(capsys, tmp_path):
    out = tmp_path / "out"
    assert run_cli(capsys, *TARGET, "--samples", "10", "--impl", "vmap_lrt", "--executor", "inline", "--out", str(out),
                   *FAKE)[0] == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    code, stdout, _ = run_cli(capsys, *TARGET, "--dry-run", "--resume", "--out", str(out), *FAKE)
    assert code == 0 and "total: 2 config(s), 1 to run (1 done)" in stdout and "(done:" in stdout
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before


@pytest.mark.parametrize("args, needle", [
    (["--samples", "0"], "--samples must be integers >= 1"),
    (["--impl", "loop"], "unknown implementation 'loop'"),
    (["--target", "tests.fakes:nope"], "no function 'nope'"),
    (["--estimate-from", "/nonexistent/dir"], "has no runs.csv"),
    (["--prior-sigma", "0"], "--prior-sigma"),
    (["--mixture-pi", "1"], "strictly between 0 and 1"),
    (["--mixture-pi", "0"], "strictly between 0 and 1"),
    (["--mixture-sigma2", "-1"], "--mixture-sigma2"),
    (["--mixture-sigma1", "nan"], "--mixture-sigma1"),
    (["--resume"], "--resume needs --out"),
])
def test_dry_run_refuses_bad_input_like_a_real_run(capsys, tmp_path, args, needle):
    code, _, err = run_cli(capsys, *TARGET, "--dry-run", *FAKE, *args)
    assert code == 2
    assert_one_line_error(err, needle)


def test_dry_run_refuses_an_existing_out_without_resume(capsys, tmp_path):
    (tmp_path / "keep.txt").write_text("precious")
    code, _, err = run_cli(capsys, *TARGET, "--dry-run", "--out", str(tmp_path), *FAKE)
    assert code == 2 and "exists and is not empty" in err
    assert [p.name for p in tmp_path.iterdir()] == ["keep.txt"]


def test_estimate_from_needs_dry_run(capsys, tmp_path):
    code, _, err = run_cli(capsys, *TARGET, "--estimate-from", str(tmp_path), "--out", str(tmp_path / "o"), *FAKE)
    assert code == 2
    assert_one_line_error(err, "--estimate-from only applies to --dry-run")
    assert not (tmp_path / "o").exists()


# ---------------------------------------------------------------------------------------------
# Prior parameters: flags, recorded in every row, reaching the prior


def test_prior_flags_are_recorded_in_every_row(capsys, tmp_path):
    out = tmp_path / "out"
    code, _, _ = run_cli(capsys, "sweep", "--task", "regression", "--impl", "vmap", "--samples", "1,2",
                         "--prior", "gaussian,mixture", "--prior-sigma", "0.5", "--mixture-pi", "0.25",
                         "--mixture-sigma1", "2", "--mixture-sigma2", "0.01", "--executor", "inline",
                         "--out", str(out), *FAKE)
    assert code == 0
    runs = pd.read_csv(out / "runs.csv")
    assert len(runs) == 4 and {"prior_sigma", "mixture_pi", "mixture_sigma1", "mixture_sigma2"} <= set(runs.columns)
    assert (runs["prior_sigma"] == 0.5).all() and (runs["mixture_pi"] == 0.25).all()
    assert (runs["mixture_sigma1"] == 2.0).all() and (runs["mixture_sigma2"] == 0.01).all()


def test_defaults_match_the_priors_and_keep_old_run_ids():
    from bnn_impls.priors import GaussianPrior, ScaleMixturePrior

    config = BenchConfig("vmap", "mnist", samples=2)
    assert config.prior_sigma == GaussianPrior().sigma
    assert (config.mixture_pi, config.mixture_sigma1, config.mixture_sigma2) == (
        ScaleMixturePrior().pi, ScaleMixturePrior().sigma1, ScaleMixturePrior().sigma2)
    assert config.run_id == "mnist-vmap-default-S2-n1-cpu-55dadf5a"  # the first release's id
    assert config.replace(prior_sigma=0.5).run_id != config.run_id


def test_prior_parameters_reach_the_loss():
    from bench import build_training
    from bnn_impls import BnnConfigError

    gaussian = build_training("regression", "vmap_lrt", 1, prior_sigma=0.5)
    assert gaussian.spec.prior.sigma == 0.5
    mixture = build_training("regression", "vmap", 1, prior="mixture", mixture_pi=0.25, mixture_sigma1=2.0,
                             mixture_sigma2=0.01)
    assert (mixture.spec.prior.pi, mixture.spec.prior.sigma1, mixture.spec.prior.sigma2) == (0.25, 2.0, 0.01)
    with pytest.raises(BnnConfigError, match="strictly between 0 and 1"):
        build_training("regression", "vmap", 1, prior="mixture", mixture_pi=1.0)
    with pytest.raises(BnnConfigError, match="must be > 0"):
        build_training("regression", "vmap", 1, prior_sigma=-1.0)
    # a different prior sigma changes the closed-form KL, so the number is really used
    default = build_training("regression", "vmap_lrt", 1)
    x, y = default.data.x_train[:8], default.data.y_train[:8]
    from bnn_impls import get_implementation

    impl = get_implementation("vmap_lrt")
    kl_default = impl.loss(default.model, x, y, samples=1, spec=default.spec, generator=torch.Generator()).kl
    kl_narrow = impl.loss(default.model, x, y, samples=1, spec=gaussian.spec, generator=torch.Generator()).kl
    assert not torch.isclose(kl_default, kl_narrow)


# ---------------------------------------------------------------------------------------------
# The Python entry point


def test_build_training_gives_a_step_that_trains():
    from bench import Training, build_training

    training = build_training("regression", "vmap", 2, seed=3)
    assert isinstance(training, Training) and training.spec.kl == "sample" and training.batch_size == 128
    before = [p.detach().clone() for p in training.model.parameters()]
    terms = training.step()
    assert torch.isfinite(terms.loss) and terms.loss.requires_grad is False
    assert any(not torch.equal(a, b) for a, b in zip(before, training.model.parameters()))
    assert training.epoch() == training.steps_per_epoch == 8


def test_build_training_takes_a_model_with_the_task_of_its_data():
    import bnn_impls as B
    from bench import build_training

    model = B.BayesianMLP((1, 16, 1))
    training = build_training(model, "vmap_lrt", 3, task="regression", kl="repar_exact", n_mc=10)
    assert training.model is model and training.spec.n_mc == 10
    assert torch.isfinite(training.step().loss)
    with pytest.raises(B.BnnConfigError, match="needs task=NAME"):
        build_training(model, "vmap", 1)
    with pytest.raises(B.BnnConfigError, match="unknown option 'sampels'"):
        build_training("regression", "vmap", 1, sampels=3)
    with pytest.raises(B.BnnConfigError, match="needs sampled weights"):
        build_training("regression", "vmap_lrt", 1, kl="sample")


def test_measure_builds_through_build_training_and_final_loss_is_the_extra_steps_loss(monkeypatch):
    """final_loss: the loss of one more step after the repeats, on its own minibatch, before its update."""
    import bench.measure.step
    import bench.training.builder
    from bench import build_training

    calls = []
    real = bench.training.builder.build_training

    def spy(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(bench.training.builder, "build_training", spy)
    config = BenchConfig("vmap", "regression", samples=2, steps=3, repeats=2, warmup_steps=1, threads=1)
    row = bench.measure.step.measure(config).row
    assert calls and calls[0][0] == ("regression", "vmap", 2)

    replay = build_training("regression", "vmap", 2)  # the same seeds: the same draws, step for step
    # graph bytes; FLOPs, operator counts and the ceiling's calls (one step); warm-up; timed
    for _ in range(2 + 1 + 2 * 3):
        replay.step()
    assert row["final_loss"] == pytest.approx(float(replay.step().loss), rel=1e-6)


def test_measure_config_returns_a_whole_row():
    from bench import measure_config
    from bnn_impls import BnnConfigError

    row = measure_config(impl="vmap_lrt", task="regression", samples=1, steps=1, repeats=1, warmup_steps=0,
                         threads=1, prior_sigma=0.5)
    assert list(row) == list(RUNS_COLUMNS) and row["status"] == "ok" and row["prior_sigma"] == 0.5
    assert row["step_s_median"] > 0 and row["graph_bytes"] > 0
    with pytest.raises(BnnConfigError, match="unknown field 'sample'"):
        measure_config(impl="vmap", task="regression", sample=1)
    with pytest.raises(BnnConfigError, match="samples must be >= 1"):
        measure_config(impl="vmap", task="regression", samples=0)


def test_importing_bench_does_not_import_torch():
    import subprocess
    import sys

    code = "import sys, bench, bench.contract.store; sys.exit(1 if 'torch' in sys.modules else 0)"
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# ---------------------------------------------------------------------------------------------
# KL cost against n_mc, and notes only where a figure is expected


def _kl_dir(path, machine="Test CPU", commit="abc", scale=1.0, with_s_sweep=True, failed_n_mc=None):
    """mc, repar, repar_exact at S=1 over n_mc 1, 10, 30, 100 with known per-draw costs; plus S = 1..4 lines."""
    path.mkdir(parents=True)
    rng = np.random.default_rng(0)
    per_draw_s = {"mc": 2e-3, "repar": 5e-4, "repar_exact": 0.0}
    per_draw_bytes = {"mc": 1.5 * 2**20, "repar": 0, "repar_exact": 0}
    runs, reps = [], []

    def add(rid, impl, kl, n_mc, s, step_s, graph, status="ok"):
        runs.append(dict(run_id=rid, impl=impl, task="regression", kl=kl, prior="gaussian", n_mc=n_mc, samples=s,
                         batch_size=128, device="cpu", device_name=machine, dtype="float32", threads=2, status=status,
                         error="" if status == "ok" else "boom", repeats=5 if status == "ok" else 0,
                         step_s_median=step_s if status == "ok" else None, steps_per_epoch=8,
                         epoch_s=step_s * 8 if status == "ok" else None, epoch_measured="false",
                         graph_bytes=graph if status == "ok" else None, git_commit=commit,
                         timestamp=f"2026-01-0{1 if scale == 1.0 else 2}T00:00:00+00:00"))
        if status == "ok":
            for r in range(5):
                reps.append(dict(run_id=rid, repeat=r, seconds=step_s * 5 * rng.lognormal(0, 0.01), steps=5))

    for kl in per_draw_s:
        for n in (1, 10, 30, 100):
            status = "oom" if (kl, n) == failed_n_mc else "ok"
            add(f"kl-{kl}-{n}", "vmap_lrt", kl, n, 1, scale * (0.01 + per_draw_s[kl] * n),
                40 * 2**20 + per_draw_bytes[kl] * n, status)
    if with_s_sweep:
        for impl, slope in (("sequential", 0.01), ("vmap_lrt", 0.004)):
            for s in (1, 2, 3, 4):
                add(f"s-{impl}-{s}", impl, "sample" if impl == "sequential" else "closed", 1, s,
                    scale * (0.005 + slope * s), 1000 * s)
    pd.DataFrame(runs).reindex(columns=list(RUNS_COLUMNS)).to_csv(path / "runs.csv", index=False)
    pd.DataFrame(reps, columns=list(REPEATS_COLUMNS)).to_csv(path / "repeats.csv", index=False)
    return path


def test_kl_cost_is_fitted_per_draw_for_each_estimator(tmp_path):
    from analysis import analyze

    d = _kl_dir(tmp_path / "run")
    report = analyze(d).read_text()
    cost = pd.read_csv(d / "kl_cost.csv")
    time = cost[cost["metric"] == "step_s"].set_index("kl")
    memory = cost[cost["metric"] == "graph_bytes"].set_index("kl")
    assert set(time.index) == set(memory.index) == {"mc", "repar", "repar_exact"}
    assert time.loc["mc", "slope_per_draw"] == pytest.approx(2e-3, rel=0.05)
    assert time.loc["repar", "slope_per_draw"] == pytest.approx(5e-4, rel=0.05)
    assert abs(time.loc["repar_exact", "slope_per_draw"]) < 1e-5
    for kl in time.index:
        assert time.loc[kl, "slope_ci_low"] <= time.loc[kl, "slope_per_draw"] <= time.loc[kl, "slope_ci_high"]
        assert time.loc[kl, "n_points"] == 4
    assert memory.loc["mc", "slope_per_draw"] == pytest.approx(1.5 * 2**20)
    assert memory.loc["repar", "slope_per_draw"] == 0 and pd.isna(memory.loc["repar", "r2"])
    assert "## KL estimators: cost of each extra Monte Carlo draw (n_mc)" in report
    assert "each extra mc draw adds 2 ms per step" in report and "1.5 MiB of saved tensors" in report
    assert "Not fitted" not in report and "did not finish" not in report


def test_notes_appear_only_where_a_figure_is_missing(tmp_path):
    from analysis import analyze

    d = _kl_dir(tmp_path / "run", failed_n_mc=("mc", 30))
    # two of the four mc points lost: mc's per-draw cost cannot be fitted, and the report says why
    runs = pd.read_csv(d / "runs.csv")
    runs.loc[runs["run_id"] == "kl-mc-100", ["status", "step_s_median", "graph_bytes"]] = ["timeout", None, None]
    runs.to_csv(d / "runs.csv", index=False)
    report = analyze(d).read_text()
    notes = [line for line in report.splitlines() if "Not fitted" in line]
    assert len(notes) == 1 and "KL cost of regression vmap_lrt (mc, S=1, cpu)" in notes[0]
    assert "oom, timeout at n_mc 30, 100" in notes[0]
    assert "## Configs that did not finish" in report
    assert set(pd.read_csv(d / "kl_cost.csv")["kl"]) == {"repar", "repar_exact"}


def test_a_failed_row_without_a_batch_size_groups_with_its_siblings(tmp_path):
    """Failed rows of a config at the task's default batch size record none: still one group, one note."""
    from analysis import analyze

    d = _kl_dir(tmp_path / "run")
    runs = pd.read_csv(d / "runs.csv")
    for s in (3, 4):
        runs.loc[runs["run_id"] == f"s-vmap_lrt-{s}", ["status", "step_s_median", "epoch_s", "batch_size"]] = \
            ["timeout", None, None, None]
    runs.to_csv(d / "runs.csv", index=False)
    notes = [line for line in analyze(d).read_text().splitlines() if "Not fitted" in line]
    assert len(notes) == 1 and "only 2 ok value(s) of S out of 4" in notes[0], notes


# ---------------------------------------------------------------------------------------------
# Several directories in one report


def test_two_machines_merge_into_one_report_with_a_machine_column(capsys, tmp_path):
    a = _kl_dir(tmp_path / "a", machine="CPU A")
    b = _kl_dir(tmp_path / "b", machine="GPU B", commit="def", scale=0.5)
    out = tmp_path / "merged"
    code, stdout, _ = run_cli(capsys, "analyze", str(a), str(b), "--out", str(out))
    assert code == 0 and str(out / "report.md") in stdout
    slopes = pd.read_csv(out / "slopes.csv")
    per_machine = slopes.set_index(["machine", "impl"])["slope_s_per_sample"]
    assert per_machine[("CPU A", "vmap_lrt")] == pytest.approx(0.004 * 8, rel=0.01)
    assert per_machine[("GPU B", "vmap_lrt")] == pytest.approx(0.002 * 8, rel=0.01)
    cost = pd.read_csv(out / "kl_cost.csv")
    assert set(cost["machine"]) == {"CPU A", "GPU B"} and len(cost) == 2 * 3 * 2
    speed = pd.read_csv(out / "speedups.csv")
    assert set(speed["machine"]) == {"CPU A", "GPU B"}
    report = (out / "report.md").read_text()
    assert "| machine |" in report.replace("| task | device | machine |", "| machine |")
    assert "Not fitted" not in report
    # each directory keeps its own files
    assert not (a / "report.md").exists() and not (b / "report.md").exists()


def test_the_same_config_by_different_code_is_refused_unless_told_which(capsys, tmp_path):
    a = _kl_dir(tmp_path / "a", commit="abc")
    b = _kl_dir(tmp_path / "b", commit="def", scale=0.5)  # same machine, newer timestamps, other code
    code, _, err = run_cli(capsys, "analyze", str(a), str(b), "--out", str(tmp_path / "m"))
    assert code == 2
    assert_one_line_error(err, "measured by different code")
    assert "--prefer newest" in err and not (tmp_path / "m" / "report.md").exists()

    def vmap_lrt_slope(out):
        slopes = pd.read_csv(out / "slopes.csv")
        return slopes.set_index("impl").loc["vmap_lrt", "slope_s_per_sample"]

    assert run_cli(capsys, "analyze", str(a), str(b), "--out", str(tmp_path / "n"), "--prefer", "newest")[0] == 0
    assert vmap_lrt_slope(tmp_path / "n") == pytest.approx(0.002 * 8, rel=0.01)  # b's rows: the newer ones
    assert run_cli(capsys, "analyze", str(a), str(b), "--out", str(tmp_path / "p"), "--prefer", str(a))[0] == 0
    assert vmap_lrt_slope(tmp_path / "p") == pytest.approx(0.004 * 8, rel=0.01)


def test_the_same_code_twice_keeps_the_newest_and_says_so(capsys, tmp_path):
    a = _kl_dir(tmp_path / "a", commit="abc")
    b = _kl_dir(tmp_path / "b", commit="abc", scale=0.5)
    assert run_cli(capsys, "analyze", str(a), str(b), "--out", str(tmp_path / "m"))[0] == 0
    report = (tmp_path / "m" / "report.md").read_text()
    assert "the newest row of each is used" in report


@pytest.mark.parametrize("args, needle", [
    (["A", "B"], "needs --out DIR"),
    (["A", "--prefer", "newest"], "--prefer only applies to several directories"),
    (["A", "B", "--out", "M", "--prefer", "elsewhere"], "neither 'newest' nor one of the directories"),
])
def test_merge_bad_input_is_one_line(capsys, tmp_path, args, needle):
    a, b = _kl_dir(tmp_path / "a"), _kl_dir(tmp_path / "b", machine="Other")
    argv = [str({"A": a, "B": b, "M": tmp_path / "m"}.get(x, x)) for x in args]
    code, _, err = run_cli(capsys, "analyze", *argv)
    assert code == 2
    assert_one_line_error(err, needle)


def test_an_older_results_directory_still_reads(tmp_path):
    """Columns are only appended: a runs.csv from before the prior columns reads, its new columns empty."""
    from analysis.load import load_results

    d = _kl_dir(tmp_path / "old", with_s_sweep=False)
    runs = pd.read_csv(d / "runs.csv")
    runs[list(RUNS_COLUMNS[: RUNS_COLUMNS.index("prior_sigma")])].to_csv(d / "runs.csv", index=False)
    rows = read_runs(d)
    assert len(rows) == 12 and rows[0]["prior_sigma"] == "" and math.isnan(load_results(d).runs["n_mc"].sum()) is False
