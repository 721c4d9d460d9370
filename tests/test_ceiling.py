"""The matmul ceiling (bench/measure/ceiling.py), the numeric-state probes (bench/measure/numerics.py),
the profiler's time split, and the report sections that show them (analysis/ceiling_report.py)."""

from __future__ import annotations

import types

import pandas as pd
import pytest
import torch

from analysis.ceiling_report import ceiling_section, ceiling_table, denormal_lines, read_time_split, time_split_section
from analysis.markdown import markdown_table
from bench.contract.config import BenchConfig
from bench.contract.errors import AnalysisInputError
from bench.contract.schema import TIME_SPLIT_COLUMNS, TIME_SPLIT_FILE
from bench.measure.ceiling import (
    Call,
    TensorSpec,
    _materialize,
    calibrate,
    calls_id,
    ceiling_columns,
    record_calls,
    time_call,
)
from bench.measure.flops import count_flops
from bench.measure.numerics import denormal_fraction, flush_denormal_in_force
from bench.measure.profiler import time_split
from bench.training.builder import build_config_training


def _training(impl="vmap", samples=3):
    config = BenchConfig(impl=impl, task="regression", samples=samples, threads=1, data="synthetic")
    return build_config_training(config)


@pytest.mark.parametrize("impl", ["sequential", "vmap", "vmap_lrt", "vmap_flipout"])
def test_recorded_calls_carry_the_flop_counters_total(impl):
    training = _training(impl)
    training.step()
    calls = record_calls(training.instrumented_step)
    assert calls, "a step has matrix products"
    assert sum(call.flops * count for call, count in calls) == count_flops(training.instrumented_step)
    # Sequential repeats the same product once per sample: one distinct call counted S times.
    if impl == "sequential":
        assert max(count for _, count in calls) >= 3


def test_calibrate_sums_each_calls_time_times_its_count():
    spec = TensorSpec((4, 4), (4, 1), torch.float32, "cpu")
    a = Call(torch.ops.aten.mm.default, (spec, spec), (), 128)
    b = Call(torch.ops.aten.mm.default, (spec, TensorSpec((4, 4), (1, 4), torch.float32, "cpu")), (), 128)
    times = {a: 0.002, b: 0.005}
    ceiling = calibrate([(a, 3), (b, 2)], timer=lambda call: times[call])
    assert ceiling.seconds == pytest.approx(3 * 0.002 + 2 * 0.005)
    assert ceiling.flops == 5 * 128 and ceiling.calls == 5 and ceiling.distinct_calls == 2
    assert ceiling.gflops == pytest.approx(640 / 0.016 / 1e9)
    assert calibrate([]) is None
    # The calls id names the work replayed: the same calls in any order, not other counts or layouts.
    assert ceiling.calls_id == calls_id([(b, 2), (a, 3)]) != calls_id([(a, 3), (b, 3)]) != calls_id([(a, 5)])


def test_replayed_tensors_keep_their_recorded_layout():
    generator = torch.Generator().manual_seed(0)
    expanded = _materialize(TensorSpec((5, 3, 4), (0, 4, 1), torch.float32, "cpu"), generator)
    assert expanded.stride() == (0, 4, 1) and torch.equal(expanded[0], expanded[4])
    transposed = _materialize(TensorSpec((3, 4), (1, 3), torch.float32, "cpu"), generator)
    assert transposed.stride() == (1, 3) and transposed.std() > 0.5
    # A batched product with a broadcast (stride 0) operand, as vmap records one, replays.
    call = Call(torch.ops.aten.bmm.default, (TensorSpec((5, 3, 4), (0, 4, 1), torch.float32, "cpu"),
                                             TensorSpec((5, 4, 2), (8, 1, 4), torch.float32, "cpu")), (), 0)
    assert time_call(call) > 0


def test_time_call_uses_the_fastest_block():
    ticks = iter([0.0, 1.0,  # the untimed first call: 1 s, so one call per block
                  0.0, 3.0, 0.0, 1.5, 0.0, 2.0, 0.0, 4.0, 0.0, 2.5])  # blocks of 3, 1.5, 2, 4, 2.5 s
    spec = TensorSpec((2, 2), (2, 1), torch.float32, "cpu")
    call = Call(torch.ops.aten.mm.default, (spec, spec), (), 16)
    assert time_call(call, clock=lambda: next(ticks)) == pytest.approx(1.5)


def test_ceiling_columns():
    ceiling = calibrate([(Call(torch.ops.aten.mm.default, (), (), 10**9), 1)], timer=lambda call: 0.01)
    columns = ceiling_columns(ceiling, step_s=0.04, flops_per_step=10**9)
    assert columns["achieved_gflops"] == pytest.approx(25.0)
    assert columns["ceiling_gflops"] == pytest.approx(100.0)
    assert columns["fraction_of_ceiling"] == pytest.approx(0.25)
    assert ceiling_columns(None, 0.04, 10**9) == {"achieved_gflops": pytest.approx(25.0)}


def test_a_measured_row_has_its_ceiling_and_numeric_state():
    from bench.measure.step import measure_config

    row = measure_config(impl="vmap_lrt", task="regression", samples=2, steps=2, repeats=1, warmup_steps=1,
                         threads=1)
    assert row["ceiling_s_per_step"] > 0 and row["ceiling_gflops"] > 0
    assert row["fraction_of_ceiling"] == pytest.approx(row["ceiling_s_per_step"] / row["step_s_median"])
    assert row["flush_denormal"] is False
    assert row["denormal_grad_fraction"] == 0.0
    same_calls = measure_config(impl="vmap_lrt", task="regression", samples=2, steps=1, repeats=1, warmup_steps=1,
                                threads=1, optimizer="adam_fused")
    assert len(row["ceiling_calls_id"]) == 16 and same_calls["ceiling_calls_id"] == row["ceiling_calls_id"]


def test_flush_denormal_is_a_lever_that_reaches_the_process():
    config = BenchConfig(impl="vmap", task="regression", samples=1, threads=1, flush_denormal=True)
    assert config.run_id != config.replace(flush_denormal=False).run_id
    try:
        build_config_training(config)
        assert flush_denormal_in_force()
        build_config_training(config.replace(flush_denormal=False))
        assert not flush_denormal_in_force()
    finally:
        torch.set_flush_denormal(False)


def test_denormal_fraction_counts_only_denormals():
    values = torch.tensor([1e-39, 1.0, 0.0, -1e-40, 1e-30])
    assert denormal_fraction([values, None]) == pytest.approx(2 / 5)
    assert denormal_fraction([torch.zeros(3, dtype=torch.int64)]) is None


def _event(name, self_us, parent=None):
    return types.SimpleNamespace(name=name, self_cpu_time_total=self_us, cpu_parent=parent, device_type=None)


def test_time_split_assigns_self_times_and_leaves_the_rest_to_overhead():
    step = _event("bnn_bench_step", 100.0)
    adam = _event("Optimizer.step#Adam.step", 300.0, step)
    events = [step, _event("aten::mm", 4000.0, step), _event("aten::addmm", 1000.0, step),
              _event("aten::normal_", 500.0, step), _event("aten::mul", 700.0, step), adam,
              _event("aten::add_", 900.0, adam), _event("MmBackward0", 50.0, step)]
    split = time_split(events, steps=2, wall_s=0.005)
    assert split["matmul_conv_ms"] == pytest.approx(2.5)
    assert split["sampling_ms"] == pytest.approx(0.25)
    assert split["elementwise_ms"] == pytest.approx(0.35)
    assert split["optimizer_ms"] == pytest.approx(0.6)  # Adam's own Python and its add_
    assert split["wall_ms_per_step"] == pytest.approx(2.5)  # 5 ms over 2 steps
    assert split["overhead_ms"] == 0.0  # the operators account for more than the wall time: none left
    roomy = time_split(events, steps=2, wall_s=0.010)
    assert roomy["overhead_ms"] == pytest.approx(5.0 - 2.5 - 0.25 - 0.35 - 0.6)


def test_a_compiled_graphs_fused_kernels_are_elementwise_work_not_python():
    # torch.compile runs its generated kernels inside one span per graph: its self time is the fused
    # elementwise loops (its matmuls are aten:: children), so the compile lever's split must not call
    # it Python; the engine's and dynamo's own spans stay overhead.
    step = _event("bnn_bench_step", 0.0)
    graph = _event("## Call CompiledFxGraph fsuernk556niri2ponb2zcm6nmpbnoccy74sjylbu4u4rcfscq66 ##", 600.0, step)
    events = [step, graph, _event("aten::mm", 2000.0, graph), _event("TorchDynamo Cache Lookup", 100.0, step),
              _event("CompiledFunctionBackward", 50.0, step)]
    split = time_split(events, steps=1, wall_s=0.003)
    assert split["elementwise_ms"] == pytest.approx(0.6)
    assert split["matmul_conv_ms"] == pytest.approx(2.0)
    assert split["overhead_ms"] == pytest.approx(3.0 - 2.6)


def _runs():
    base = dict(task="mnist", device="cpu", kl="closed", n_mc=1, threads=2, status="ok", flops_per_step=1e9)
    rows = [dict(base, impl="vmap_lrt", samples=s, step_s_median=0.1 * s, ceiling_s_per_step=0.05 * s,
                 fraction_of_ceiling=0.5, achieved_gflops=10.0, ceiling_gflops=20.0, denormal_grad_fraction=0.0)
            for s in (1, 10)]
    rows.append(dict(base, impl="sequential", samples=10, step_s_median=2.0, ceiling_s_per_step=0.5,
                     fraction_of_ceiling=0.25, achieved_gflops=0.5, ceiling_gflops=2.0, denormal_grad_fraction=0.3,
                     flush_denormal=False))
    return pd.DataFrame(rows)


def test_ceiling_table_keeps_the_largest_s_and_orders_by_distance():
    table = ceiling_table(_runs())
    assert list(table["impl"]) == ["vmap_lrt", "sequential"]
    assert list(table["S"]) == [10, 10]
    assert list(table["step / ceiling (x)"]) == pytest.approx([2.0, 4.0])
    lines = ceiling_section(_runs(), {"ceiling": {"reference_gemm": [
        {"device": "cpu", "dtype": "float32", "threads": 2, "n": 1024, "gflops": 150.0}]}}, markdown_table)
    text = "\n".join(lines)
    assert "Distance from the matmul ceiling" in text and "150 GFLOP/s" in text
    assert "--flush-denormal" in text and "sequential" in "\n".join(denormal_lines(_runs()))
    assert ceiling_section(_runs().drop(columns=["fraction_of_ceiling"]), {}, markdown_table) == denormal_lines(
        _runs())


def _write_split(directory, wall="10.0"):
    path = directory / TIME_SPLIT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    row = dict.fromkeys(TIME_SPLIT_COLUMNS, "")
    row.update(run_id="r1", task="mnist", impl="vmap_lrt", samples="10", device="cpu", threads="2",
               wall_ms_per_step=wall,
               matmul_conv_ms="6", sampling_ms="1", elementwise_ms="1", optimizer_ms="1", overhead_ms="1")
    path.write_text(",".join(TIME_SPLIT_COLUMNS) + "\n" + ",".join(row[c] for c in TIME_SPLIT_COLUMNS) + "\n")


def test_time_split_is_read_and_rendered(tmp_path):
    _write_split(tmp_path)
    split = read_time_split([tmp_path, tmp_path / "missing"])
    assert len(split) == 1 and split.loc[0, "matmul_conv_ms"] == 6.0
    text = "\n".join(time_split_section(split, markdown_table, None))
    assert "Where a step's time goes" in text and "| mnist | vmap_lrt | 10 |" in text
    assert read_time_split([tmp_path / "missing"]).empty


def test_the_split_says_how_near_the_ceiling_the_step_could_come_without_elementwise_work(tmp_path):
    from analysis.ceiling_report import FLOOR_COLUMN, time_split_table

    _write_split(tmp_path)  # wall 10 ms: matmul 6, RNG 1, elementwise 1, optimizer 1, overhead 1
    split = read_time_split([tmp_path])
    ok = pd.DataFrame({"run_id": ["other", "r1"], "fraction_of_ceiling": [0.9, 0.5]})  # r1: 2.0x its ceiling
    table = time_split_table(split, ok)
    assert table.loc[0, "matmul + RNG + optimizer share"] == pytest.approx(0.8)
    assert table.loc[0, FLOOR_COLUMN] == pytest.approx(2.0 * 0.8)
    assert FLOOR_COLUMN in "\n".join(time_split_section(split, markdown_table, None, ok))
    # No ceiling for the profiled config (another run, a GPU without one): the column is left out.
    assert FLOOR_COLUMN not in time_split_table(split, ok.iloc[:1]).columns
    assert FLOOR_COLUMN not in time_split_table(split).columns
    # On a GPU the split is the host's time, not the kernels': no floor is claimed from it.
    assert FLOOR_COLUMN not in time_split_table(split.assign(device="cuda:0"), ok).columns


def test_rows_of_one_implementation_with_different_levers_are_told_apart(tmp_path):
    from analysis.ceiling_report import time_split_table

    runs = _runs()
    assert "lever" not in ceiling_table(runs).columns  # plain steps (the default job): columns as before
    compiled = runs.iloc[[1]].assign(step_mode="compile", optimizer="adam_fused", fraction_of_ceiling=0.8,
                                     step_s_median=0.625)
    table = ceiling_table(pd.concat([runs.assign(step_mode="eager", optimizer="adam"), compiled],
                                    ignore_index=True))
    assert list(table.columns[:4]) == ["task", "device", "impl", "lever"]
    assert list(zip(table["impl"], table["lever"])) == [
        ("vmap_lrt", "compile+adam_fused"), ("vmap_lrt", "baseline"), ("sequential", "baseline")]
    assert list(table["step / ceiling (x)"]) == pytest.approx([1.25, 2.0, 4.0])

    _write_split(tmp_path)  # its lever cells are empty, as in a file from before levers: the baseline
    split = read_time_split([tmp_path])
    assert "lever" not in time_split_table(split).columns
    both = pd.concat([split, split.assign(run_id="r2", step_mode="compile", optimizer="adam_fused")],
                     ignore_index=True)
    assert list(time_split_table(both)["lever"]) == ["baseline", "compile+adam_fused"]
    flushed = pd.concat([split, split.assign(run_id="r2", flush_denormal="True")], ignore_index=True)
    assert list(time_split_table(flushed)["lever"]) == ["baseline", "flush_denormal"]


def test_a_hostile_time_split_is_one_error_naming_the_file(tmp_path):
    _write_split(tmp_path, wall="__import__('os')")
    with pytest.raises(AnalysisInputError,
                       match=r"time_split.csv line 2 is corrupt \(column wall_ms_per_step: .* is not a number\)"):
        read_time_split([tmp_path])
    _write_split(tmp_path, wall="")
    with pytest.raises(AnalysisInputError, match=r"time_split.csv line 2: wall_ms_per_step is empty"):
        read_time_split([tmp_path])


def test_the_ceiling_is_replayed_in_the_first_repeats_slot(monkeypatch):
    """In interleaved rounds the other workers wait while a repeat is out: a replay there disturbs no
    one's timing and is disturbed by no one."""
    import bench.measure.step as step

    events = []
    monkeypatch.setattr(step, "calibrate_calls", lambda calls: events.append("ceiling"))

    class Pacer:
        def before_repeat(self, index):
            events.append(f"go {index}")

        def after_repeat(self, index, seconds, steps):
            events.append(f"done {index}")

    step.measure(BenchConfig(impl="vmap", task="regression", samples=1, steps=1, repeats=3, warmup_steps=0,
                             threads=1, data="synthetic"), pacer=Pacer())
    assert events == ["go 0", "ceiling", "done 0", "go 1", "done 1", "go 2", "done 2"]
    events.clear()
    step.measure_timing_only(BenchConfig(impl="vmap", task="regression", samples=1, steps=1, repeats=1,
                                         warmup_steps=0, threads=1, data="synthetic"), pacer=Pacer())
    assert events == ["go 0", "done 0"]


def test_bf16_var_lowers_only_the_variance_path():
    from bnn_impls.vmap_lrt import layer_moments, variance_dtype

    g = torch.Generator().manual_seed(0)
    x, mu_w, var_w = (torch.randn(8, 16, generator=g), torch.randn(4, 16, generator=g),
                      torch.rand(4, 16, generator=g) * 0.1)
    mu_b, var_b = torch.randn(4, generator=g), torch.rand(4, generator=g) * 0.1
    mean, var = layer_moments(x, mu_w, mu_b, var_w, var_b)
    with variance_dtype(torch.bfloat16):
        mean16, var16 = layer_moments(x, mu_w, mu_b, var_w, var_b)
    assert torch.equal(mean, mean16) and var16.dtype == torch.float32
    assert not torch.equal(var, var16)
    assert torch.allclose(var, var16, rtol=2e-2)  # bfloat16 keeps about 3 significant digits
    assert torch.equal(layer_moments(x, mu_w, mu_b, var_w, var_b)[1], var)  # the block ended


def test_bf16_var_is_refused_for_an_implementation_without_a_variance_path():
    from bench.training.levers import check_config_levers
    from bnn_impls.names import BnnConfigError

    check_config_levers(BenchConfig(impl="vmap_lrt", task="mnist", samples=1, precision="bf16_var"))
    with pytest.raises(BnnConfigError, match="bf16_var.*vmap_lrt"):
        check_config_levers(BenchConfig(impl="vmap", task="mnist", samples=1, precision="bf16_var"))


def test_rows_that_replayed_the_same_calls_are_read_against_the_fastest_replay():
    """A lever that leaves the matmuls alone (fused Adam, compile) replays the very calls of the plain
    step; a replay the host slowed must not make it look nearer its ceiling. Rows with the same calls
    id, device and threads share the fastest replay; other ids, devices and threads keep their own."""
    from analysis.ceiling_report import FLOOR_COLUMN, best_ceiling_s, time_split_table

    base = dict(task="mnist", device="cpu", impl="vmap_lrt", kl="closed", n_mc=1, samples=10, threads=2,
                status="ok", ceiling_calls_id="abc", achieved_gflops=100.0, cpu_model="AMD EPYC")
    ok = pd.DataFrame([
        dict(base, run_id="plain", step_s_median=0.090, ceiling_s_per_step=0.055, ceiling_gflops=190.0),
        dict(base, run_id="fused", step_s_median=0.085, ceiling_s_per_step=0.070, ceiling_gflops=150.0,
             optimizer="adam_fused", step_mode="compile"),
        dict(base, run_id="bf16", step_s_median=0.070, ceiling_s_per_step=0.040, ceiling_gflops=260.0,
             ceiling_calls_id="def", precision="bf16_var"),
        dict(base, run_id="one-thread", step_s_median=0.150, ceiling_s_per_step=0.050, ceiling_gflops=210.0,
             threads=1),
        dict(base, run_id="other-machine", step_s_median=0.080, ceiling_s_per_step=0.030, ceiling_gflops=350.0,
             cpu_model="Intel Xeon", optimizer="adam_foreach"),
    ])
    ok["fraction_of_ceiling"] = ok["ceiling_s_per_step"] / ok["step_s_median"]
    assert list(best_ceiling_s(ok)) == pytest.approx([0.055, 0.055, 0.040, 0.050, 0.030])
    table = ceiling_table(ok).set_index("lever")
    assert table.loc["compile+adam_fused", "step / ceiling (x)"] == pytest.approx(0.085 / 0.055)  # not 1.21x
    assert table.loc["compile+adam_fused", "ceiling ms"] == pytest.approx(55.0)
    assert table.loc["compile+adam_fused", "ceiling GFLOP/s"] == pytest.approx(150.0 * 0.070 / 0.055)
    assert table.loc["compile+adam_fused", "ceiling replays"] == 2
    assert table.loc["bf16_var", "step / ceiling (x)"] == pytest.approx(0.070 / 0.040)
    assert ceiling_table(ok.drop(columns=["ceiling_calls_id"]))["ceiling ms"].max() == pytest.approx(70.0)
    # The time split's floor reads the same shared ceiling.
    split = pd.DataFrame([dict(run_id="fused", task="mnist", impl="vmap_lrt", samples=10, device="cpu", threads=2,
                               step_mode="compile", precision="fp32", optimizer="adam_fused", flush_denormal="False",
                               wall_ms_per_step=100.0, matmul_conv_ms=70.0, sampling_ms=8.0, elementwise_ms=10.0,
                               optimizer_ms=2.0, overhead_ms=10.0)])
    assert time_split_table(split, ok).loc[0, FLOOR_COLUMN] == pytest.approx(0.085 / 0.055 * 0.8)
