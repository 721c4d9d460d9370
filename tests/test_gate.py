"""The CI gate (issue 12): deterministic counters, interleaved rounds, check's formats, perf_gate.sh."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.compare import Side, compare_sides, op_changes
from analysis.compare_render import render
from bench.cli.main import main
from bench.contract.config import BenchConfig
from bench.contract.errors import UsageError
from bench.contract.store import read_ops, read_repeats
from bench.measure.counters import count_instructions, count_ops
from bench.run.rounds import repeats_per_round, round_orders
from bench.run.sweep import run_sweep
from bench.training.builder import build_config_training
from bnn_impls import registry

ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(task="regression", samples=2, threads=1, steps=1, repeats=1)


# -- counters ------------------------------------------------------------------------------------


def _ops(config: BenchConfig):
    training = build_config_training(config)
    training.instrumented_step()  # the counted step is never the first (measure counts after two others)
    return count_ops(training.instrumented_step)


@pytest.mark.parametrize("impl", ["sequential", "vmap", "vmap_lrt"])
def test_counters_are_deterministic(impl):
    config = BenchConfig(impl=impl, **SMALL)
    first, second = _ops(config), _ops(config)
    assert first.total > 50 and first.alloc_bytes > 0
    assert first == second  # every operator's count and the bytes, exactly


def test_an_extra_operator_per_layer_is_counted_and_named(monkeypatch):
    config = BenchConfig(impl="vmap", **SMALL)
    plain = _ops(config)
    monkeypatch.setitem(registry._REGISTRY, "vmap", registry._REGISTRY["vmap"])  # restored after the test
    sys.modules.pop("tests.plugins.extra_op", None)
    importlib.import_module("tests.plugins.extra_op")  # re-registers vmap with nan_to_num per layer
    injected = _ops(config)
    changes = dict(op_changes(plain.ops, injected.ops))
    assert changes["aten.nan_to_num.default"] == 3  # 1-400-400-1: three layers
    assert all(d > 0 for d in changes.values())


def test_instructions_are_skipped_with_a_reason_without_valgrind(monkeypatch):
    monkeypatch.setattr("shutil.which", lambda cmd: None)
    got = count_instructions(BenchConfig(impl="vmap", **SMALL))
    assert got.per_step is None and "valgrind" in got.note
    got = count_instructions(BenchConfig(impl="vmap", device="cuda", **{**SMALL}))
    assert got.per_step is None and "cuda" in got.note


# -- rounds --------------------------------------------------------------------------------------


def test_round_orders_are_seeded_shuffled_permutations():
    orders = round_orders(6, 12, seed=0)
    assert orders == round_orders(6, 12, seed=0)
    assert orders != round_orders(6, 12, seed=1)
    assert all(sorted(o) == list(range(6)) for o in orders)
    assert len({tuple(o) for o in orders}) > 6  # rounds differ from each other
    assert sum(o[0] == 0 for o in orders) < 12  # not the grid order every time


def test_repeats_are_spread_over_rounds():
    assert repeats_per_round(12, 12) == [1] * 12
    assert repeats_per_round(7, 3) == [3, 2, 2]
    with pytest.raises(UsageError, match="raise --repeats"):
        repeats_per_round(2, 3)


def _fake_grid(repeats=4):
    return [BenchConfig(impl=impl, task="regression", samples=2, steps=2, repeats=repeats, timeout_s=60)
            for impl in ("sequential", "vmap", "vmap_lrt")]


@pytest.mark.parametrize("workers", ["warm", "fresh"])
def test_a_rounds_sweep_records_rounds_and_operator_counts(tmp_path, workers):
    out = run_sweep(_fake_grid(), tmp_path / "out", rounds=4, round_seed=3, round_workers=workers,
                    target="tests.fakes:paced_ok", progress=False)
    reps = read_repeats(out)
    assert len(reps) == 12 and sorted(r["round"] for r in reps if r["run_id"] == reps[0]["run_id"]) == [0, 1, 2, 3]
    ops = read_ops(out)
    assert len(ops) == 3 and all(v["aten.mm.default"] == 12 for v in ops.values())
    meta = json.loads((out / "meta.json").read_text())
    assert (meta["rounds"], meta["round_seed"], meta["round_workers"]) == (4, 3, workers)


def test_a_worker_killed_mid_rounds_costs_only_its_row(tmp_path, monkeypatch):
    monkeypatch.setenv("BNN_BENCH_FAKE_DIE", "vmap")
    out = run_sweep(_fake_grid(), tmp_path / "out", rounds=4, target="tests.fakes:paced_ok", progress=False)
    runs = pd.read_csv(out / "runs.csv").set_index("impl")
    assert runs.loc["vmap", "status"] == "oom" and (runs.drop("vmap")["status"] == "ok").all()
    assert len(read_repeats(out)) == 8


def test_files_from_before_the_new_columns_still_read_and_resume(tmp_path):
    """runs.csv without the counter columns and repeats.csv without `round` (as written before them)."""
    from bench.contract.schema import REPEATS_COLUMNS, RUNS_COLUMNS
    from bench.contract.store import ResultsWriter
    from tests.fakes import ok

    out = tmp_path / "old"
    out.mkdir()
    old_runs, old_reps = RUNS_COLUMNS[:36], REPEATS_COLUMNS[:4]
    first, second = _fake_grid()[:2]
    row = ok(first).row
    (out / "runs.csv").write_text(",".join(old_runs) + "\n" + ",".join(str(row.get(c, "")) for c in old_runs) + "\n")
    (out / "repeats.csv").write_text(",".join(old_reps) + "\n" + "".join(
        f"{first.run_id},{i},{s},{n}\n" for i, (s, n) in enumerate(ok(first).repeats)))
    reps = read_repeats(out)
    assert len(reps) == first.repeats and all(r["round"] is None for r in reps)
    writer = ResultsWriter(out, resume=True)  # appended to in their own columns
    writer.append(ok(second))
    assert len(read_repeats(out)) == 2 * first.repeats
    assert (out / "runs.csv").read_text().splitlines()[-1].count(",") == 35


# -- the bootstrap across rounds -------------------------------------------------------------------


def rounds_side(seed: int, slow: str | None = None, factor: float = 1.0, rounds: int = 12) -> Side:
    """Three implementations timed in rounds; each round the whole machine runs at a random speed
    (0.7x to 1.4x: the drift interleaving is for), each repeat has 2% noise of its own."""
    rng = np.random.default_rng(seed)
    base = {"sequential": 0.040, "vmap": 0.033, "vmap_lrt": 0.035}
    speed = rng.uniform(0.7, 1.4, size=rounds)
    rows, times, rnds = [], {}, {}
    for impl, t in base.items():
        label = f"regression {impl} S=10 cpu"
        f = factor if impl == slow else 1.0
        times[label] = t * f * speed * rng.lognormal(0, 0.02, size=rounds)
        rnds[label] = np.arange(rounds)
        rows.append(dict(label=label, task="regression", device="cpu", impl=impl, kl="", prior="gaussian", n_mc=1,
                         samples=10, batch_size=128, dtype="float32", status="ok", graph_bytes=np.nan,
                         peak_allocated_bytes=np.nan, fingerprint=("cpu", "2.13", "2"), torch_version="2.13",
                         aten_ops_per_step=500.0, flops_per_step=1e9))
    return Side(pd.DataFrame(rows).set_index("label"), times, f"rounds-{seed}", rnds)


def _ratio_alarms(comparison):
    reg = comparison.regressions()
    return reg[reg["metric"] == "time / sequential"]


def test_rounds_cancel_machine_drift_and_keep_a_ten_percent_slowdown():
    for i in range(10):
        unchanged = compare_sides(rounds_side(100 + i), rounds_side(200 + i), threshold=0.05)
        assert len(_ratio_alarms(unchanged)) == 0, unchanged.table
        assert (unchanged.table.loc[unchanged.table["metric"] == "time / sequential", "detail"]
                == "bootstrap over rounds").all()
        slow = compare_sides(rounds_side(100 + i), rounds_side(200 + i, slow="vmap", factor=1.10), threshold=0.05)
        assert set(_ratio_alarms(slow)["config"]) == {"regression vmap S=10 cpu"}, slow.table


def test_without_rounds_the_same_drift_is_not_cancelled():
    """The control: the same data with the round index dropped is compared repeat by repeat."""
    wide = []
    for i in range(10):
        a, b = rounds_side(100 + i), rounds_side(200 + i, slow="vmap", factor=1.10)
        a, b = Side(a.configs, a.times, a.source), Side(b.configs, b.times, b.source)
        table = compare_sides(a, b, threshold=0.05).table
        row = table[(table["metric"] == "time / sequential") & (table["config"] == "regression vmap S=10 cpu")]
        wide.append(float(row["high"].iloc[0] - row["low"].iloc[0]))
    assert np.median(wide) > 0.1  # intervals too wide to tell 10% from drift


# -- counters in check, formats -------------------------------------------------------------------


def _with(side: Side, impl: str, **changes) -> Side:
    configs = side.configs.copy()
    for col, value in changes.items():
        configs.loc[configs["impl"] == impl, col] = value
    return Side(configs, side.times, side.source, side.rounds, side.ops)


def test_flops_plus_two_percent_and_an_extra_op_are_regressions_and_named():
    base = rounds_side(1)
    base = Side(base.configs, base.times, base.source, base.rounds,
                {label: {"aten.mm.default": 300, "aten.add.Tensor": 200} for label in base.configs.index})
    more_flops = _with(base, "vmap", flops_per_step=1.02e9)
    reg = compare_sides(base, more_flops).regressions()
    assert list(reg["metric"]) == ["FLOPs / step"] and "vmap " in reg["config"].iloc[0]
    assert compare_sides(base, _with(base, "vmap", flops_per_step=1.005e9)).regressed is False
    ops = dict(base.ops)
    label = "regression vmap_lrt S=10 cpu"
    ops[label] = dict(ops[label], **{"aten.nan_to_num.default": 3})
    extra = _with(Side(base.configs, base.times, base.source, base.rounds, ops), "vmap_lrt", aten_ops_per_step=503.0)
    reg = compare_sides(base, extra).regressions()
    assert list(reg["metric"]) == ["ATen ops / step"] and reg["config"].iloc[0] == label
    assert "aten.nan_to_num.default +3" in reg["change"].iloc[0]
    other_torch = _with(extra, "vmap_lrt", torch_version="2.14")
    row = compare_sides(base, other_torch).table.query("metric == 'ATen ops / step' and config == @label")
    assert row["verdict"].iloc[0] == "info"


def test_formats_markdown_and_github():
    comparison = compare_sides(rounds_side(1), rounds_side(2, slow="vmap", factor=1.5), threshold=0.05)
    md = render(comparison, "markdown").splitlines()
    assert md[0].startswith("**1 config(s) regressed") and md[2].startswith("| config | metric |")
    assert any("**REGRESSION**" in line and "vmap S=10" in line for line in md)
    gh = render(comparison, "github").splitlines()
    errors = [line for line in gh if line.startswith("::error ")]
    assert errors and all("regression vmap S=10 cpu" in e for e in errors)
    assert "::error" not in render(comparison, "text")


# -- the command line and perf_gate.sh ------------------------------------------------------------


@pytest.fixture
def fake_baseline(tmp_path):
    return run_sweep(_fake_grid(), tmp_path / "baseline", rounds=4, target="tests.fakes:paced_ok", progress=False)


@pytest.fixture
def small_fake_baseline(tmp_path):
    """Two configs in two rounds: each perf_gate.sh run below starts a CLI and two workers."""
    return run_sweep(_fake_grid(repeats=2)[:2], tmp_path / "small", rounds=2, target="tests.fakes:paced_ok",
                     progress=False)


def test_check_json_and_exit_codes(fake_baseline, tmp_path, monkeypatch, capsys):
    same = run_sweep(_fake_grid(), tmp_path / "same", rounds=4, target="tests.fakes:paced_ok", progress=False)
    assert main(["check", str(fake_baseline), str(same), "--json", str(tmp_path / "c.json")]) == 0
    doc = json.loads((tmp_path / "c.json").read_text())
    assert doc["format"] == "bnn-bench-check/1" and doc["regressed"] is False and doc["regressions"] == []
    assert {"config", "metric", "verdict", "point", "low", "high", "threshold", "detail"} <= set(doc["rows"][0])
    monkeypatch.setenv("BNN_BENCH_FAKE_EXTRA_OP", "vmap_lrt")
    extra = run_sweep(_fake_grid(), tmp_path / "extra", rounds=4, target="tests.fakes:paced_ok", progress=False)
    assert main(["check", str(fake_baseline), str(extra), "--format", "github",
                 "--json", str(tmp_path / "d.json")]) == 1
    out = capsys.readouterr().out
    assert "::error title=performance regression: regression vmap_lrt" in out and "aten.nan_to_num" in out
    doc = json.loads((tmp_path / "d.json").read_text())
    assert doc["regressed"] is True and doc["regressions"] == ["regression vmap_lrt sample S=2 cpu"]
    assert main(["check", str(fake_baseline), str(same), "--json", str(tmp_path / "no" / "such" / "x.json")]) == 2


def _gate(baseline, tmp_path, *extra, **env):
    environment = dict(os.environ, PERF_GATE_BASELINE=str(baseline), PERF_GATE_OUT=str(tmp_path / f"run{len(env)}"),
                       **env)
    return subprocess.run(["bash", str(ROOT / "scripts" / "perf_gate.sh"), "--target", "tests.fakes:paced_ok", *extra],
                          cwd=ROOT, env=environment, capture_output=True, text=True)


def test_perf_gate_exit_codes(small_fake_baseline, tmp_path):
    fake_baseline = small_fake_baseline
    passed = _gate(fake_baseline, tmp_path)
    assert passed.returncode == 0, passed.stdout + passed.stderr
    # The fake's slowdown is an environment variable, which both sides of a pair would see (in a
    # clean checkout the baseline's commit is HEAD): the stored comparison judges it here, and
    # tests/test_paired_gate.py covers pairs with a base tree that lacks the slowdown.
    slow = _gate(fake_baseline, tmp_path, "--no-paired", BNN_BENCH_FAKE_SLOW="vmap")
    assert slow.returncode == 1 and "regression vmap sample S=2" in slow.stderr, slow.stdout + slow.stderr
    missing = _gate(tmp_path / "nowhere", tmp_path)
    assert missing.returncode == 2 and "not found" in missing.stderr
    bad_flag = _gate(fake_baseline, tmp_path, "--format", "html")
    assert bad_flag.returncode == 2
