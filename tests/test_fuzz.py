"""Seeded fuzzing of the command line (issue 22): generated bad command lines and corrupted results files,
run in this process through `bench.cli.main.main`. Every case must end in one line on stderr and exit
status 2: no traceback, no output directory created, no results file changed."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

import bench.grid.devices
from bench.cli.main import main

SEED = 20261204
N_COMMAND_LINES = 120
N_CORRUPTIONS = 40

# Values no flag of that kind accepts.
BAD_INT = ["0", "-1", "1.5", "abc", "", "nan", "inf", "1e30", "9" * 40, "0x10"]
BAD_NONNEG_INT = ["-1", "1.5", "abc", "", "nan", "-0.5", "1e400"]
BAD_INT_LIST = ["0", "-1", "1.5", "abc", "", ",", "1:", ":5", "5:1", "1:2:0", "1:10:2:3", "1e30", "1:1000000000",
                "nan", "inf"]
BAD_POS_FLOAT = ["0", "-1", "nan", "inf", "-inf", "abc", "", "1e400"]
BAD_UNIT_OPEN = ["0", "1", "-0.1", "1.5", "nan", "inf", "abc"]
BAD_UNIT = ["-0.1", "1.5", "nan", "inf", "abc"]
BAD_NONNEG_FLOAT = ["-1", "nan", "inf", "abc", ""]
BAD_NAME = ["nope", "", ",", "vmap;rm -rf /", "../etc", "VMAP", "vmap,nope"]
BAD_DEVICE = ["tpu", "cuda", "cuda:0", "cuda:x", "mps", "cpu:1", ""]
BAD_BYTES = ["1K", "512M", "0", "-1G", "4X", "G", "", "1.5.5G"]
BAD_MODEL = ["nosuchmodule:f", "bnn_impls.architectures:nope", "noseparator", ":f", "os:", "os:getcwd",
             "tests.plugins.models:not_a_module", "tests.plugins.models:exits",
             "tests.plugins.models:no_bayesian_layer"]

SWEEP_FLAGS = {
    "--samples": BAD_INT_LIST, "--n-mc": BAD_INT_LIST, "--repeats": BAD_INT, "--steps": BAD_INT, "--epochs": BAD_INT,
    "--warmup": BAD_NONNEG_INT, "--timeout": BAD_POS_FLOAT, "--prior-sigma": BAD_POS_FLOAT,
    "--mixture-pi": BAD_UNIT_OPEN, "--mixture-sigma1": BAD_POS_FLOAT, "--mixture-sigma2": BAD_POS_FLOAT,
    "--threads": BAD_INT, "--batch-size": BAD_INT, "--seed": BAD_NONNEG_INT, "--dtype": BAD_NAME, "--impl": BAD_NAME,
    "--task": BAD_NAME, "--kl": BAD_NAME, "--prior": BAD_NAME, "--device": BAD_DEVICE, "--profile": BAD_NAME,
    "--init": BAD_NAME, "--init-sigma": BAD_NONNEG_FLOAT, "--data": BAD_NAME, "--memory-limit": BAD_BYTES,
    "--step-mode": BAD_NAME, "--precision": BAD_NAME, "--optimizer": BAD_NAME, "--rounds": BAD_INT,
    "--round-workers": BAD_NAME, "--executor": BAD_NAME, "--model": BAD_MODEL, "--round-seed": BAD_NONNEG_INT,
}
TRAIN_FLAGS = {
    "--impl": BAD_NAME, "--task": BAD_NAME, "--samples": BAD_INT_LIST, "--seed": ["-1", "abc", "", "1.5"],
    "--init": BAD_NAME, "--init-sigma": ["-1", "nan", "inf", "abc", ""], "--prior-sigma": ["0", "-1", "nan", "abc"],
    "--kl": BAD_NAME, "--prior": BAD_NAME, "--epochs": BAD_INT, "--lr": BAD_POS_FLOAT, "--batch-size": BAD_INT,
    "--stop-at-error": BAD_UNIT, "--device": BAD_DEVICE, "--threads": BAD_INT, "--dtype": BAD_NAME,
    "--test-samples": BAD_INT, "--attack-samples": BAD_INT, "--ood-examples": BAD_INT, "--fgsm-examples": BAD_INT,
    "--eval-rows": BAD_INT,
}
MAXNMC_FLAGS = {
    "--task": BAD_NAME, "--kl": ["closed", "sample", "nope", ""], "--impl": BAD_NAME, "--samples": BAD_INT,
    "--memory-limit": BAD_BYTES, "--cap": ["mc", "mc=", "mc=0", "nope=10", "mc=abc", "mc=1e30"],
    "--growth": ["0", "1", "-2", "abc", "2.5"], "--precision": BAD_NONNEG_FLOAT, "--steps": BAD_INT,
    "--repeats": BAD_INT, "--warmup": BAD_NONNEG_INT, "--timeout": BAD_POS_FLOAT, "--device": BAD_DEVICE,
    "--threads": BAD_INT, "--batch-size": BAD_INT, "--seed": BAD_NONNEG_INT, "--data": BAD_NAME,
    "--model": BAD_MODEL, "--executor": BAD_NAME,
}
PROFILE_FLAGS = {
    "--task": BAD_NAME, "--impl": BAD_NAME, "--samples": ["0", "1,2", "abc", ""], "--kl": BAD_NAME,
    "--n-mc": ["0", "1,2", "abc"], "--device": BAD_DEVICE, "--steps": BAD_INT, "--warmup": BAD_NONNEG_INT,
    "--threads": BAD_INT, "--step-mode": BAD_NAME, "--precision": BAD_NAME, "--optimizer": BAD_NAME,
}
COMMANDS = {"sweep": SWEEP_FLAGS, "train": TRAIN_FLAGS, "maxnmc": MAXNMC_FLAGS, "profile": PROFILE_FLAGS}


@pytest.fixture(autouse=True)
def cpu_only(monkeypatch):
    monkeypatch.setattr(bench.grid.devices, "_cuda_count", lambda: 0)


def bad_command_lines(rng: random.Random, n: int) -> list[list[str]]:
    """`n` command lines, each with at least one bad value (or an unknown flag, a missing value)."""
    lines = []
    for _ in range(n):
        command = rng.choice(list(COMMANDS))
        flags = COMMANDS[command]
        picked = rng.sample(sorted(flags), k=rng.choice((1, 1, 2)))
        argv = [command]
        for flag in picked:
            argv += [flag, rng.choice(flags[flag])]
        kind = rng.random()
        if kind < 0.08:
            argv.append(rng.choice(["--bogus", "--sampels", "--out-dir", "-x"]))
        elif kind < 0.12:
            argv.append(rng.choice(sorted(flags)))  # a flag without its value
        lines.append(argv)
    return lines


def one_line_exit_2(capsys, argv) -> str:
    try:
        code = main(argv)
    except BaseException as e:  # noqa: BLE001 - the point: nothing may escape
        pytest.fail(f"{argv}: raised {type(e).__name__}: {e}")
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2 and len(lines) == 1 and lines[0].startswith("bnn-bench: error: "), (argv, code, err)
    assert "Traceback" not in err
    return lines[0]


def test_generated_bad_command_lines_are_one_line_and_exit_2(tmp_path, capsys):
    rng = random.Random(SEED)
    cases = bad_command_lines(rng, N_COMMAND_LINES)
    assert len(cases) >= 100
    for i, argv in enumerate(cases):
        out = tmp_path / f"out-{i}"
        one_line_exit_2(capsys, argv + ["--out", str(out)])
        assert not out.exists(), argv


@pytest.fixture(scope="module")
def results_dir(tmp_path_factory) -> Path:
    """A small, valid results directory (fake measurements), made once."""
    out = tmp_path_factory.mktemp("fuzz") / "run"
    argv = ["sweep", "--profile", "paper", "--task", "regression", "--impl", "sequential,vmap", "--samples", "1,2",
            "--steps", "2", "--repeats", "2", "--executor", "inline", "--target", "tests.fakes:paced_ok",
            "--out", str(out)]
    assert main(argv) == 0
    return out


def _cells(line: str) -> list[str]:
    return line.split(",")


def corrupt(directory: Path, rng: random.Random) -> str:
    """Damage one file of `directory` in a way no version of bnn-bench writes; returns what was done."""
    name = rng.choice(["runs.csv", "repeats.csv", "ops.csv", "meta.json"])
    path = directory / name
    if name == "meta.json":
        how = rng.choice(["list", "string", "truncated", "not utf-8", "nested"])
        path.write_bytes({"list": b"[1, 2, 3]\n", "string": b'"meta"\n', "truncated": path.read_bytes()[:17],
                          "not utf-8": b"\xff\xfe{}", "nested": b"[" * 100000}[how])
        return f"{name}: {how}"
    lines = path.read_text().split("\n")[:-1]
    header, rows = _cells(lines[0]), lines[1:]
    how = rng.choice(["text in a number", "extra field", "missing field", "unknown column", "not utf-8",
                      "status", "empty run_id"] if name == "runs.csv" else
                     ["text in a number", "extra field", "missing field", "unknown column", "not utf-8"])
    row = rng.randrange(len(rows))
    cells = _cells(rows[row])
    if how == "text in a number":
        numeric = {"runs.csv": ["samples", "repeats", "step_s_median", "graph_bytes", "epoch_s", "n_mc"],
                   "repeats.csv": ["repeat", "seconds", "steps"], "ops.csv": ["count"]}[name]
        column = rng.choice(numeric)
        cells[header.index(column)] = rng.choice(["fast", "1e3x", "one", "--", "0x", "12;"])
    elif how == "extra field":
        cells.append("surplus")
    elif how == "missing field":
        cells.pop(rng.randrange(len(cells)))
    elif how == "status":
        cells[header.index("status")] = rng.choice(["done", "OK", "", "running"])
    elif how == "empty run_id":
        cells[header.index("run_id")] = ""
    if how == "unknown column":
        header[rng.randrange(len(header))] = "surprise"
        lines[0] = ",".join(header)
    elif how != "not utf-8":
        rows[row] = ",".join(cells)
        lines[1:] = rows
    text = ("\n".join(lines) + "\n").encode()
    if how == "not utf-8":
        cut = rng.randrange(len(lines[0]) + 1, len(text) - 1)
        text = text[:cut] + b"\xc3\x28" + text[cut:]
    path.write_bytes(text)
    return f"{name}: {how} (row {row + 2})"


def test_corrupted_results_files_are_one_line_and_exit_2_and_left_untouched(results_dir, tmp_path, capsys):
    rng = random.Random(SEED + 1)
    for i in range(N_CORRUPTIONS):
        damaged = Path(shutil.copytree(results_dir, tmp_path / f"d{i}"))
        what = corrupt(damaged, rng)
        before = {p.name: p.read_bytes() for p in damaged.iterdir()}
        for argv in (["analyze", str(damaged), "--out", str(tmp_path / f"report-{i}")],
                     ["check", str(damaged), str(results_dir)],
                     ["sweep", "--profile", "paper", "--task", "regression", "--impl", "sequential,vmap", "--samples",
                      "1,2", "--steps", "2", "--repeats", "2", "--executor", "inline", "--target",
                      "tests.fakes:paced_ok", "--out", str(damaged), "--resume"]):
            if what.startswith("ops.csv") and argv[0] == "analyze":
                continue  # analyze does not read operator counts
            one_line_exit_2(capsys, argv)
        after = {p.name: p.read_bytes() for p in damaged.iterdir()}
        assert after == before, what
