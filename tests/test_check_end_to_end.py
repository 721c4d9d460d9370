"""The real thing: the `ci` grid (regression block) run here, checked against itself and against a
run whose `vmap` sleeps inside every step. Slow (about a minute and a half): `pytest -m slow`."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _run(args, env=None):
    return subprocess.run([sys.executable, "run_bench.py", *args], cwd=ROOT, capture_output=True, text=True,
                          env={**os.environ, **(env or {})}, timeout=600)


def test_unchanged_rerun_passes_and_a_slowed_implementation_fails_by_name(tmp_path):
    base = tmp_path / "base"
    sweep = _run(["sweep", "--profile", "ci", "--task", "regression", "--device", "cpu", "--out", str(base)])
    assert sweep.returncode == 0, sweep.stderr

    gate = ["--threshold", "0.35", "--abs-threshold", "0.5"]  # the CI gate's thresholds (.ci/run)
    again = _run(["check", str(base), *gate, "--out", str(tmp_path / "again")])
    assert again.returncode == 0, again.stdout + again.stderr

    # 30 ms of sleep per step on a ~30 ms step: about twice as slow, well past the gate's 35%.
    slowed = _run(["check", str(base), *gate, "--out", str(tmp_path / "slowed")],
                  env={"BNN_BENCH_PLUGINS": "tests.plugins.slow_vmap", "BNN_BENCH_SLOW_SECONDS": "0.03"})
    assert slowed.returncode == 1, slowed.stdout + slowed.stderr
    last = slowed.stderr.strip().splitlines()[-1]
    assert "REGRESSION" in last and "vmap" in last and "sequential" not in last and "vmap_lrt" not in last
