"""Profiler summaries (bench/measure/profiler.py) on the CPU, and the launch-gap arithmetic of the CUDA path."""

import csv

import pytest

from bench.cli.main import main
from bench.contract.config import BenchConfig
from bench.measure.profiler import SUMMARY_COLUMNS, device_timeline, profile_config


def test_device_timeline_merges_overlaps_and_measures_gaps():
    events = [
        {"ph": "X", "cat": "kernel", "ts": 100.0, "dur": 10.0},
        {"ph": "X", "cat": "kernel", "ts": 105.0, "dur": 10.0},  # overlaps the first: busy 100..115
        {"ph": "X", "cat": "gpu_memcpy", "ts": 120.0, "dur": 5.0},  # gap 5
        {"ph": "X", "cat": "kernel", "ts": 145.0, "dur": 5.0},  # gap 20
        {"ph": "X", "cat": "cpu_op", "ts": 130.0, "dur": 50.0},  # host work: not device time
        {"ph": "X", "cat": "kernel", "ts": 10.0, "dur": 5.0},  # before the window
    ]
    t = device_timeline(events, (50.0, float("inf")))
    assert t.busy_us == pytest.approx(15 + 5 + 5)
    assert t.gaps_us == (5.0, 20.0)
    assert t.activities == 4
    assert device_timeline([{"ph": "X", "cat": "cpu_op", "ts": 1.0, "dur": 1.0}], (0, 10)) is None


def test_profile_on_cpu_writes_summary_top_ops_and_a_summary_row(tmp_path):
    config = BenchConfig(impl="vmap_lrt", task="regression", samples=2, steps=2, repeats=1, warmup_steps=1)
    md = profile_config(config, tmp_path, steps=2, warmup=1)
    text = md.read_text()
    assert "host time inside the step" in text and "no device trace" in text
    assert "`aten::" in text  # the top operators are named
    with open(tmp_path / "profiles" / f"{config.run_id}_ops.csv", newline="") as f:
        ops = list(csv.DictReader(f))
    assert any(r["name"].startswith("aten::") and float(r["self_cpu_us_per_step"]) > 0 for r in ops)
    profile_config(config.replace(impl="sequential", kl="sample"), tmp_path, steps=2, warmup=1)
    with open(tmp_path / "profiles" / "summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    assert [r["impl"] for r in rows] == ["vmap_lrt", "sequential"] and list(rows[0]) == list(SUMMARY_COLUMNS)
    for r in rows:
        assert 0 < float(r["host_ms_per_step"]) <= float(r["wall_ms_per_step"]) * 1.05
        assert r["device_busy_ms_per_step"] == ""  # CPU: no device timeline
    # The sequential loop dispatches more operators per step than the vectorized LRT at the same S.
    assert float(rows[1]["aten_calls_per_step"]) > float(rows[0]["aten_calls_per_step"])


def test_profile_command_rejects_two_sample_counts_and_cudagraphs_on_cpu(tmp_path, capsys):
    assert main(["profile", "--task", "regression", "--samples", "1,2", "--out", str(tmp_path)]) == 2
    assert "one value" in capsys.readouterr().err
    assert main(["profile", "--task", "regression", "--step-mode", "cudagraphs", "--out", str(tmp_path)]) == 2
    assert "needs a CUDA device" in capsys.readouterr().err
