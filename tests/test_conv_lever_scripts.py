"""The conv measurement scripts (scripts/conv_slopes.py, scripts/channels_last.py) run end to end on a
tiny grid and print one table row per lever with the statistics their READMEs quote."""

import importlib.util
import re
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _keep_threads():
    """The scripts set torch's thread count for the process: give later tests theirs back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _script(name):
    spec = importlib.util.spec_from_file_location(name, ROOT / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _rows(text):
    return [line for line in text.splitlines() if line.startswith("| ") and not line.startswith("| ---")][1:]


def test_conv_slopes_prints_a_fit_and_a_paired_ratio_per_lever(capsys):
    assert _script("conv_slopes").main(["--task", "lenet5", "--batch", "4", "--samples", "1,2,3",
                                        "--rounds", "2", "--threads", "1"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert [r.split(" | ")[0] for r in rows] == ["| sequential fp32", "| vmap_lrt fp32", "| vmap_lrt bf16_var"]
    assert rows[0].endswith("| 1.000 |")  # the reference
    for row in rows[1:]:  # slope [low, high] and a paired ratio [low, high]
        assert len(re.findall(r"\[[-\d.,]+, [-\d.,]+\]", row)) == 2


def test_conv_slopes_refuses_a_grid_without_a_slope():
    with pytest.raises(SystemExit):
        _script("conv_slopes").main(["--samples", "1,2", "--rounds", "2"])


def test_channels_last_prints_each_layout_against_contiguous(capsys):
    assert _script("channels_last").main(["--task", "lenet5", "--batch", "4", "--samples", "1", "--rounds", "2",
                                          "--impls", "vmap_lrt"]) == 0
    rows = _rows(capsys.readouterr().out)
    assert [r.split(" | ")[1] for r in rows] == ["contiguous", "channels_last"]
    assert re.search(r"\| \d+\.\d{3} \[\d+\.\d{3}, \d+\.\d{3}\] \|$", rows[1])
