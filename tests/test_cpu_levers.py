"""scripts/cpu_levers.py's --time-split: each chosen implementation's lever configs profiled under the
grid's own run_ids (so `analyze` can put each split beside its own ceiling), no other implementation."""

import csv
import importlib.util
from pathlib import Path

import pytest
import torch

from bench.contract.config import BenchConfig
from bench.contract.schema import TIME_SPLIT_FILE

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture()
def cpu_levers():
    spec = importlib.util.spec_from_file_location("cpu_levers", ROOT / "scripts" / "cpu_levers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()
    yield module
    torch.set_num_threads(threads)


def test_time_split_profiles_the_chosen_implementations_under_the_grids_run_ids(cpu_levers, tmp_path):
    grid = [BenchConfig(impl=impl, task="regression", samples=2, threads=1, steps=1, repeats=1, warmup_steps=1,
                        **fields)
            for impl, fields in (("vmap_lrt", {}), ("vmap_lrt", {"optimizer": "adam_fused"}), ("vmap", {}))]
    cpu_levers.profile_levers(grid, tmp_path, ["vmap_lrt"])
    with open(tmp_path / TIME_SPLIT_FILE) as f:
        rows = list(csv.DictReader(f))
    assert [r["run_id"] for r in rows] == [grid[0].run_id, grid[1].run_id]
    assert [r["optimizer"] for r in rows] == ["adam", "adam_fused"]
    cpu_levers.profile_levers(grid, tmp_path / "none", [])
    assert not (tmp_path / "none").exists()
