"""Paired timing (issue 12): the fresh run times the baseline commit's code beside this checkout,
pair by pair in every round, and `check` judges candidate/base per round."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.compare import Side, compare_paths, compare_sides
from bench.contract.config import BenchConfig
from bench.contract.meta import read_meta
from bench.contract.store import read_repeats
from bench.gate.base_tree import BaseTree, BaseTreeUnavailable, export_commit
from bench.gate.paired import PAIRED_SPLIT, base_environment, paired_orders, run_paired_sweep, split_repeats

ROOT = Path(__file__).resolve().parents[1]


def _has_git_head() -> bool:
    try:
        return subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True).returncode == 0
    except OSError:
        return False


needs_git = pytest.mark.skipif(not _has_git_head(), reason="not a git checkout: the base commit cannot be exported")


def test_paired_orders_time_every_config_once_per_round_and_vary_which_side_goes_first():
    orders = paired_orders(6, 12, seed=3)
    assert orders == paired_orders(6, 12, seed=3)
    for order in orders:
        assert sorted(i for i, _ in order) == list(range(6))
    firsts = [base_first for order in orders for _, base_first in order]
    assert 0.3 < np.mean(firsts) < 0.7


def test_base_environment_puts_the_base_tree_first_and_drops_this_checkouts_plugins(tmp_path):
    env = base_environment(tmp_path, {"PYTHONPATH": f"{ROOT}:/elsewhere",
                                      "BNN_BENCH_PLUGINS": "tests.plugins.slow_vmap"})
    assert env["PYTHONPATH"].split(":") == [str(tmp_path), "/elsewhere"]
    assert "BNN_BENCH_PLUGINS" not in env
    assert base_environment(tmp_path, {}, plugins="my.plugin")["BNN_BENCH_PLUGINS"] == "my.plugin"


@needs_git
def test_export_commit_unpacks_the_tree_and_names_a_missing_commit(tmp_path):
    tree = export_commit("HEAD", tmp_path / "code")
    assert (tree.root / "bench").is_dir() and len(tree.commit) == 40 and tree.protocol.version >= 1
    with pytest.raises(BaseTreeUnavailable, match="not in"):
        export_commit("0" * 40, tmp_path / "missing")


@needs_git
def test_default_job_pairs_names_a_missing_base_commit_in_one_line(tmp_path, capsys):
    """scripts/default_job_pairs.py unpacks its base as the gate does (unpack_commit), errors included."""
    import importlib.util

    path = Path(__file__).resolve().parents[1] / "scripts" / "default_job_pairs.py"
    spec = importlib.util.spec_from_file_location("default_job_pairs", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with pytest.raises(SystemExit) as exit_info:
        module.main(["--base", "0" * 40, "--out", str(tmp_path / "pairs")])
    assert exit_info.value.code == 2
    assert "is not in" in capsys.readouterr().err


def _paired_side(seed: int, factor: float, rounds: int = 12):
    """Candidate and base-code sides of one paired run: each round the machine runs at a random
    speed (0.6x to 1.5x) that both sides of a pair share, and each repeat has 3% noise of its own."""
    rng = np.random.default_rng(seed)
    speed = rng.uniform(0.6, 1.5, size=rounds)
    sides = []
    for f in (factor, 1.0):
        rows, times, rnds = [], {}, {}
        for impl, t in {"sequential": 0.040, "vmap": 0.033}.items():
            label = f"regression {impl} S=10 cpu"
            times[label] = t * (f if impl == "vmap" else 1.0) * speed * rng.lognormal(0, 0.03, size=rounds)
            rnds[label] = np.arange(rounds)
            rows.append(dict(label=label, task="regression", device="cpu", impl=impl, kl="", prior="gaussian",
                             n_mc=1, samples=10, batch_size=128, dtype="float32", status="ok",
                             fingerprint=("cpu", "2.13", "1"), torch_version="2.13", git_commit="abc123"))
        sides.append(Side(pd.DataFrame(rows).set_index("label"), times, "paired", rnds))
    return sides


def _paired_rows(comparison):
    t = comparison.table
    return t[t["metric"] == "time / base code"]


def test_pairs_cancel_drift_that_hides_a_ten_percent_slowdown_from_the_stored_comparison():
    for i in range(10):
        cand, base_code = _paired_side(i, 1.10)
        stored, _ = _paired_side(100 + i, 1.0)
        comparison = compare_sides(stored, cand, threshold=0.3, abs_threshold=0.5, base_code=base_code,
                                   paired_threshold=0.05)
        assert list(comparison.regressions()["metric"]) == ["time / base code"]
        assert list(comparison.regressions()["config"]) == ["regression vmap S=10 cpu"]
        assert "abc123" in _paired_rows(comparison)["detail"].iloc[0]
        old_rows = comparison.table[comparison.table["metric"].isin(["time / sequential", "step time"])]
        assert len(old_rows) and (old_rows["verdict"] == "info").all()  # the pairs judge time
        cand, base_code = _paired_side(i, 1.0)
        comparison = compare_sides(stored, cand, threshold=0.3, abs_threshold=0.5, base_code=base_code,
                                   paired_threshold=0.05)
        assert not comparison.regressed and len(_paired_rows(comparison)) == 2


def _fake_grid():
    return [BenchConfig(impl=impl, task="regression", samples=2, steps=2, repeats=4, threads=1)
            for impl in ("sequential", "vmap", "vmap_lrt")]


@pytest.fixture
def base_without_slowdown(tmp_path):
    """HEAD's code, whose fakes never honour BNN_BENCH_FAKE_SLOW: the change under test is the
    candidate's slowdown, absent from the base commit."""
    if not _has_git_head():
        pytest.skip("not a git checkout: the base commit cannot be exported")
    tree = export_commit("HEAD", tmp_path / "base-code")
    fakes = tree.root / "tests" / "fakes.py"
    fakes.write_text(fakes.read_text() + "\nos.environ.pop('BNN_BENCH_FAKE_SLOW', None)\n")
    return tree


def test_a_paired_sweep_writes_both_sides_in_the_same_rounds_and_check_names_the_slowed_one(
        tmp_path, monkeypatch, base_without_slowdown):
    monkeypatch.setenv("BNN_BENCH_FAKE_SLOW", "vmap")
    out = run_paired_sweep(_fake_grid(), tmp_path / "out", base_without_slowdown, rounds=4, round_seed=1,
                           target="tests.fakes:paced_ok", progress=False)
    cand_reps, base_reps = read_repeats(out), read_repeats(out / "base")
    timed = sum(split_repeats(c, PAIRED_SPLIT).repeats for c in _fake_grid())
    assert len(cand_reps) == len(base_reps) == timed == 24  # 4 repeats of 2 steps each cut in two, x3
    assert sorted((r["run_id"], r["round"]) for r in base_reps) == sorted((r["run_id"], r["round"]) for r in cand_reps)
    assert read_meta(out / "base")["machine"]["git_commit"] == base_without_slowdown.commit
    assert "glibc.malloc.mmap_threshold" in read_meta(out / "base")["glibc_tunables"]
    for key in ("glibc_tunables", "pair_pinning"):
        assert read_meta(out)[key] == read_meta(out / "base")[key]
    comparison = compare_paths(out, out, paired_threshold=0.05)
    paired = _paired_rows(comparison)
    assert len(paired) == 3
    assert list(comparison.regressions()["config"]) == ["regression vmap sample S=2 cpu"]
    assert paired.loc[paired["config"] == "regression vmap sample S=2 cpu", "point"].iloc[0] == pytest.approx(1.5)


def test_paired_sweep_refuses_repeats_that_cannot_fill_its_rounds(tmp_path):
    from bench.contract.errors import UsageError
    from bench.gate.protocol import CURRENT

    tree = BaseTree(tmp_path, "0" * 40, CURRENT)
    with pytest.raises(UsageError, match="cannot fill 6 rounds"):
        run_paired_sweep(_fake_grid(), tmp_path / "out", tree, rounds=6, target="tests.fakes:paced_ok", progress=False)
    assert not (tmp_path / "out").exists()


def test_generations_split_the_rounds_into_contiguous_blocks():
    from bench.gate.paired import generation_blocks
    assert generation_blocks(12, 3) == [range(0, 4), range(4, 8), range(8, 12)]
    assert generation_blocks(2, 3) == [range(0, 1), range(1, 2)]
    assert [len(b) for b in generation_blocks(10, 3)] == [3, 4, 3]


def test_a_tree_declares_its_worker_protocol_and_older_trees_are_recognised(tmp_path):
    import json

    from bench.gate.protocol import CURRENT, PROTOCOL_FILE, UnsupportedTree, declaration, tree_protocol
    from bench.run.worker import DEFAULT_TARGET, TIMING_ONLY_TARGET

    # This checkout's declaration is what its code does (so another checkout drives it right).
    assert json.loads((ROOT / PROTOCOL_FILE).read_text()) == declaration()
    assert tree_protocol(ROOT, "HEAD") == CURRENT
    # A tree of the flat layout (protocol 1): its own module and targets; timing-only only from a76d5c6 on.
    old = tmp_path / "old"
    (old / "bench").mkdir(parents=True)
    (old / "bench" / "rounds.py").write_text("")
    v1 = tree_protocol(old, "a76d5c6259c1c80869b2bb7fce63d4df70ca4825")
    assert (v1.version, v1.warm_worker, v1.measure) == (1, "bench.rounds", "bench.measure:measure")
    assert v1.target(DEFAULT_TARGET, timing_only=True) == "bench.measure:measure_timing_only"
    assert v1.target(DEFAULT_TARGET, timing_only=False) == "bench.measure:measure"
    if _has_git_head():
        before = tree_protocol(old, "3c4bc96e2fc44c0ef5c6cb57312f6763cd50bc07")  # no pacer in its timing-only
        assert before.timing_only is None and before.target(DEFAULT_TARGET, timing_only=True) == "bench.measure:measure"
    # Injected targets (tests' fakes) are the same module path on both sides; the built-ins translate.
    assert v1.target("tests.fakes:paced_ok", timing_only=True) == "tests.fakes:paced_ok"
    assert CURRENT.target(DEFAULT_TARGET, timing_only=True) == TIMING_ONLY_TARGET
    with pytest.raises(UnsupportedTree, match="older than interleaved rounds"):
        tree_protocol(tmp_path / "empty", "0" * 40)
    newer = tmp_path / "newer"
    (newer / "bench").mkdir(parents=True)
    (newer / PROTOCOL_FILE).write_text(json.dumps(dict(declaration(), version=CURRENT.version + 1)))
    with pytest.raises(UnsupportedTree, match="newer than this checkout"):
        tree_protocol(newer, "0" * 40)
    (newer / PROTOCOL_FILE).write_text("{not json")
    with pytest.raises(UnsupportedTree, match="not a worker protocol"):
        tree_protocol(newer, "0" * 40)


def test_timing_only_measurement_is_paced_and_skips_the_counters():
    from bench.measure.step import measure_timing_only

    heard = []

    class Pacer:
        def before_repeat(self, index):
            heard.append(("go", index))

        def after_repeat(self, index, seconds, steps):
            heard.append(("done", index, steps))

    config = BenchConfig(impl="vmap", task="regression", samples=2, steps=2, repeats=2, warmup_steps=1, threads=1)
    result = measure_timing_only(config, pacer=Pacer())
    assert [h[0] for h in heard] == ["go", "done", "go", "done"] and len(result.repeats) == 2
    assert result.row.get("flops_per_step") in (None, "") and result.op_counts is None


def test_split_repeats_keeps_the_steps_timed():
    config = BenchConfig(impl="vmap", task="mnist", samples=2, steps=10, repeats=12)
    cut = split_repeats(config, 5)
    assert (cut.repeats, cut.steps) == (60, 2) and cut.repeats * cut.steps == config.repeats * config.steps
    assert split_repeats(config.replace(steps=3), 5).steps == 1


def test_the_gate_picks_the_baseline_recorded_on_this_cpu_model_else_the_newest(tmp_path):
    import json as _json
    import sys as _sys
    _sys.path.insert(0, str(ROOT / "scripts"))
    from pick_baseline import pick

    for name, model, start in (("ci-rounds-a", "AMD EPYC", "2026-11-25"), ("ci-rounds-b", "Intel Xeon", "2026-11-20"),
                               ("ci-rounds-c", "Other", "2026-11-30")):
        (tmp_path / name).mkdir()
        (tmp_path / name / "meta.json").write_text(_json.dumps({"machine": {"cpu_model": model}, "start_time": start}))
    (tmp_path / "ci-rounds-corrupt").mkdir()
    (tmp_path / "ci-rounds-corrupt" / "meta.json").write_text("{")
    assert pick(tmp_path, "Intel Xeon").name == "ci-rounds-b"
    assert pick(tmp_path, "Unknown CPU").name == "ci-rounds-c"
    assert pick(tmp_path / "nothing", "Intel Xeon") is None


def test_gate_trials_judge_the_combined_injection_only_when_both_are_caught_and_nothing_else():
    import sys as _sys
    _sys.path.insert(0, str(ROOT / "scripts"))
    from gate_trials import judge

    def row(config, metric, detail=""):
        return {"config": config, "metric": metric, "verdict": "REGRESSION", "detail": detail}

    slow = row("mnist vmap sample S=2 cpu", "time / base code")
    op = row("mnist sequential sample S=2 cpu", "ATen ops / step", "aten.nan_to_num.default +3")
    assert judge("slow10_extra_op", [slow, op])[0]
    assert not judge("slow10_extra_op", [op])[0]  # the slowdown missed
    assert not judge("slow10_extra_op", [slow, dict(op, detail="aten.add.Tensor +3")])[0]  # op not named
    assert not judge("slow10_extra_op", [slow, op, row("mnist vmap_lrt closed S=2 cpu", "time / base code")])[0]
    assert judge("uniform_load", [row("mnist vmap sample S=2 cpu", "step time")])[0]
    assert not judge("uniform_load", [slow])[0]


@needs_git
def test_a_temporary_tree_is_removed_after_its_block():
    from bench.gate.base_tree import temporary_tree

    with temporary_tree("HEAD") as tree:
        assert (tree.root / "bench").is_dir() and tree.protocol.version >= 1
    assert not tree.root.exists() and not tree.root.parent.exists()


def test_a_config_whose_base_side_failed_is_reported_unpaired_and_judged_as_without_pairs():
    cand, base_code = _paired_side(0, 1.0)
    stored, _ = _paired_side(100, 1.0)
    label = "regression vmap S=10 cpu"
    configs = base_code.configs.copy()
    configs.loc[label, "status"] = "error"
    configs.loc[label, "error"] = "DataError: MNIST not found in ../shared/data/mnist/MNIST/raw"
    times = {k: v for k, v in base_code.times.items() if k != label}
    broken = Side(configs, times, "paired", {k: v for k, v in base_code.rounds.items() if k != label})
    comparison = compare_sides(stored, cand, threshold=0.3, abs_threshold=0.5, base_code=broken,
                               paired_threshold=0.05)
    unpaired = comparison.unpaired()
    assert list(unpaired["config"]) == [label] and "DataError" in unpaired["detail"].iloc[0]
    rows = comparison.table[comparison.table["config"] == label]
    # Same machine fingerprint on both sides: the stored ratio is judged again, not shown as info.
    assert rows.loc[rows["metric"] == "time / sequential", "verdict"].iloc[0] != "info"
    other = comparison.table[comparison.table["config"] == "regression sequential S=10 cpu"]
    assert other.loc[other["metric"] == "step time", "verdict"].iloc[0] == "info"  # still paired


def test_relative_data_paths_become_absolute_for_workers_started_elsewhere(tmp_path, monkeypatch):
    from bench.gate.paired import absolute_data_dir

    monkeypatch.chdir(tmp_path)
    config = BenchConfig(impl="vmap", task="mnist", samples=2, data_dir="../shared/data/mnist")
    assert absolute_data_dir(config).data_dir == str(tmp_path.parent / "shared" / "data" / "mnist")
    assert absolute_data_dir(config).run_id == config.run_id  # where the data is does not change the run
    assert absolute_data_dir(config.replace(data_dir="/data/mnist")).data_dir == "/data/mnist"
    env = base_environment(tmp_path / "code", {"BNN_BENCH_DATA": "data/mnist"})
    assert env["BNN_BENCH_DATA"] == str(tmp_path / "data" / "mnist")


def test_check_stops_with_exit_2_when_the_base_code_failed_on_a_config(tmp_path, capsys):
    """The CI run of 2026-11-30 whose base side could not find MNIST passed with those configs
    unpaired; now the gate says so and fails."""
    if not _has_git_head():
        pytest.skip("not a git checkout: the base commit cannot be exported")
    from bench.cli.main import main

    tree = export_commit("HEAD", tmp_path / "base-code")
    fakes = tree.root / "tests" / "fakes.py"
    fakes.write_text(fakes.read_text() + "\nos.environ['BNN_BENCH_FAKE_DIE'] = 'vmap'\n")
    out = run_paired_sweep(_fake_grid(), tmp_path / "out", tree, rounds=4, round_seed=1,
                           target="tests.fakes:paced_ok", progress=False)
    assert main(["check", str(out), str(out)]) == 2
    err = capsys.readouterr().err
    assert "did not run 1 config(s)" in err and "regression vmap sample S=2 cpu" in err and "--no-paired" in err


def test_paired_workers_get_stable_malloc_settings_without_overriding_the_users():
    from bench.gate.paired import PAIRED_GLIBC_TUNABLES, stable_malloc_environment

    env = stable_malloc_environment({"PATH": "/bin"})
    assert env["GLIBC_TUNABLES"] == ":".join(f"{k}={v}" for k, v in PAIRED_GLIBC_TUNABLES)
    mine = stable_malloc_environment({"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=0:glibc.cpu.x86_shstk=off"})
    parts = mine["GLIBC_TUNABLES"].split(":")
    assert "glibc.malloc.trim_threshold=0" in parts and "glibc.cpu.x86_shstk=off" in parts
    assert "glibc.malloc.mmap_threshold=33554432" in parts and len(parts) == 3


def test_both_sides_first_generation_runs_the_counting_steps_and_start_order_alternates(monkeypatch, tmp_path):
    """A worker's history changes how fast it times (docs/ci-gate.md): both sides of a pair
    must have the same one, and neither side always starts its workers first."""
    import bench.gate.paired as paired
    from bench.gate.protocol import CURRENT
    from bench.run.worker import DEFAULT_TARGET, TIMING_ONLY_TARGET
    from tests.fakes import ok

    started, pinned = [], []
    monkeypatch.setattr(paired.os, "sched_getaffinity", lambda pid: {0, 1}, raising=False)

    class FakeWorker:
        def __init__(self, config, target, timeout, env, cwd=None, cpus=None, module=None, protocol=None):
            self.config, self.side = config, cwd is not None
            started.append((config.impl, self.side, target, env["GLIBC_TUNABLES"]))
            pinned.append((config.impl, tuple(cpus or ())))

        def wait_ready(self):
            pass

        def time_repeat(self):
            return 0.1, 1

        def finish(self, reason=""):
            return ok(self.config)

        def close(self):
            pass

    monkeypatch.setattr(paired, "WarmWorker", FakeWorker)
    rows = []
    paired.run_rounds_paired(_fake_grid(), 6, 0, base=BaseTree(ROOT, "0" * 40, CURRENT), target=DEFAULT_TARGET,
                             timeout=None, write=rows.append, write_base=rows.append, generations=3)
    assert len(started) == 3 * 3 * 2 and len(rows) == 6
    per_generation = [started[k:k + 6] for k in range(0, 18, 6)]
    assert {t for _, _, t, _ in per_generation[0]} == {DEFAULT_TARGET}  # both sides count in generation 0
    assert {t for g in per_generation[1:] for _, _, t, _ in g} == {TIMING_ONLY_TARGET}
    firsts = [g[k][1] for g in per_generation for k in range(0, 6, 2)]  # base side first?
    assert 0 < sum(firsts) < len(firsts)
    assert all("glibc.malloc.mmap_threshold" in tunables for *_, tunables in started)
    # Both sides of a pair on the same CPU (threads=1 of 2), configs and generations rotating over both.
    assert all(pinned[k] == pinned[k + 1] for k in range(0, len(pinned), 2))
    assert {cpus for _, cpus in pinned} == {(0,), (1,)}


def test_pair_cpus_rotate_over_the_usable_cpus_and_leave_whole_machine_configs_unpinned():
    from bench.gate.paired import pair_cpus

    one = BenchConfig(impl="vmap", task="regression", samples=2, threads=1)
    assert [pair_cpus(one, slot, [2, 5, 7]) for slot in range(4)] == [[2], [5], [7], [2]]
    two = one.replace(threads=2)
    assert pair_cpus(two, 1, [0, 1, 2, 3]) == [2, 3] and pair_cpus(two, 1, [0, 1]) is None
    assert pair_cpus(one, 0, []) is None
