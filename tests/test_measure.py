"""Timing statistics and the measured row, with a fake clock so the expected numbers are exact."""

import numpy as np
import pytest

from bench.contract.config import BenchConfig
from bench.contract.schema import RUNS_COLUMNS
from bench.measure.step import measure
from bench.measure.timing import summarize, time_in_rounds


class FakeClock:
    """Each timed repeat reads the clock twice (start, end); repeat k lasts durations[k] seconds."""

    def __init__(self, durations):
        self.durations = list(durations)
        self.calls = 0
        self.now = 100.0

    def __call__(self):
        if self.calls % 2 == 1:
            self.now += self.durations[self.calls // 2]
        self.calls += 1
        return self.now


def test_summarize_median_iqr_min_and_extrapolated_epoch():
    seconds = [1.0, 2.0, 3.0, 4.0, 10.0]
    stats = summarize(seconds, [10] * 5, steps_per_epoch=50, whole_epochs=False)
    assert stats.step_s_median == pytest.approx(0.3)
    assert stats.step_s_iqr == pytest.approx(0.4 - 0.2)
    assert stats.step_s_min == pytest.approx(0.1)
    assert stats.epoch_s == pytest.approx(0.3 * 50) and stats.epoch_measured is False


def test_summarize_whole_epochs_uses_measured_epochs_not_extrapolation():
    # two epochs per repeat of 8 steps each: epoch time = seconds / 2
    stats = summarize([4.0, 5.0, 6.0], [16, 16, 16], steps_per_epoch=8, whole_epochs=True)
    assert stats.epoch_s == pytest.approx(2.5) and stats.epoch_measured is True
    assert stats.step_s_median == pytest.approx(5.0 / 16)


def test_summarize_rejects_mismatched_inputs():
    with pytest.raises(ValueError):
        summarize([1.0], [1, 2], 10, False)


def test_measure_with_fake_clock_reports_exact_repeat_statistics():
    clock = FakeClock([0.30, 0.10, 0.20, 0.50])
    result = measure(BenchConfig("vmap", "regression", samples=2, steps=5, repeats=4, warmup_steps=1), clock=clock)
    assert clock.calls == 8
    assert [s for s, _ in result.repeats] == pytest.approx([0.30, 0.10, 0.20, 0.50])
    assert [n for _, n in result.repeats] == [5, 5, 5, 5]
    row = result.row
    per_step = np.array([0.30, 0.10, 0.20, 0.50]) / 5
    assert row["step_s_median"] == pytest.approx(np.median(per_step))
    assert row["step_s_iqr"] == pytest.approx(np.percentile(per_step, 75) - np.percentile(per_step, 25))
    assert row["step_s_min"] == pytest.approx(0.02)
    assert row["steps_per_epoch"] == 8  # 1,024 points in batches of 128
    assert row["epoch_s"] == pytest.approx(np.median(per_step) * 8) and row["epoch_measured"] is False
    assert row["status"] == "ok" and row["kl"] == "sample" and row["batch_size"] == 128
    assert set(row) <= set(RUNS_COLUMNS)


def test_measure_whole_epochs_with_fake_clock():
    clock = FakeClock([1.6, 2.0, 1.8])
    result = measure(BenchConfig("vmap_lrt", "regression", samples=1, epochs=1, repeats=3, warmup_steps=0), clock=clock)
    assert [n for _, n in result.repeats] == [8, 8, 8]
    assert result.row["epoch_s"] == pytest.approx(1.8) and result.row["epoch_measured"] is True
    assert result.row["kl"] == "closed"


def test_measure_records_provenance_and_memory_on_cpu():
    row = measure(BenchConfig("sequential", "regression", samples=2, steps=2, repeats=2, warmup_steps=1, threads=1)).row
    assert row["threads"] == 1 and row["seed"] == 0 and row["torch_version"] and row["device_name"]
    assert row["graph_bytes"] > 0 and row["flops_per_step"] > 0 and row["rss_peak_bytes"] > 0
    assert np.isfinite(row["final_loss"])
    # CUDA and NVML figures do not apply on the CPU: absent (written empty), never zero
    for col in ("peak_allocated_bytes", "peak_reserved_bytes", "nvml_used_bytes", "energy_j_per_step"):
        assert col not in row


def test_graph_bytes_grow_with_samples_for_weight_sampling():
    small = measure(BenchConfig("vmap", "regression", samples=1, steps=1, repeats=1, warmup_steps=0)).row
    large = measure(BenchConfig("vmap", "regression", samples=4, steps=1, repeats=1, warmup_steps=0)).row
    assert large["graph_bytes"] > 2 * small["graph_bytes"]


def test_nvml_memory_is_this_process_entry_not_the_device_total():
    from types import SimpleNamespace as NS

    from bench.measure.memory import process_gpu_bytes

    entries = [NS(pid=11, usedGpuMemory=5 << 30), NS(pid=12, usedGpuMemory=700 << 20)]
    assert process_gpu_bytes(entries, 12) == 700 << 20
    assert process_gpu_bytes(entries, 13) is None  # not listed: the caller falls back to the device figure
    assert process_gpu_bytes([NS(pid=12, usedGpuMemory=None)], 12) is None
    assert process_gpu_bytes([NS(pid=12, usedGpuMemory=2**64 - 1)], 12) is None  # NVML's "not available"
    assert process_gpu_bytes(None, 12) is None


def test_a_stated_commit_replaces_what_a_stale_checkout_reports(monkeypatch):
    """The H200's copy of the tree had a stale .git: every row read the session's first commit +dirty."""
    from bench.contract import provenance
    from bench.gate.paired import base_environment

    head = "0123456789abcdef0123456789abcdef01234567"
    for value, stated in ((head, head), (head + "+dirty", head + "+dirty"), ("abc123", ""), ("x" * 40, ""),
                          (head + "; rm -rf /", ""), ("", "")):
        monkeypatch.setenv(provenance.CODE_COMMIT_ENV, value)
        assert provenance.stated_commit() == stated, value
    monkeypatch.setenv(provenance.CODE_COMMIT_ENV, head)
    provenance.git_commit.cache_clear()
    try:
        assert provenance.git_commit() == head
    finally:
        provenance.git_commit.cache_clear()
    # The base side of a paired run runs another tree: the stated commit must not travel to it.
    assert provenance.CODE_COMMIT_ENV not in base_environment(provenance.CODE_ROOT)


class _TickClock:
    """A fake clock that advances only when a step runs: each call of step k costs k + 1 seconds."""

    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_time_in_rounds_warms_up_orders_rounds_and_divides_by_calls():
    clock, log = _TickClock(), []

    def step(k):
        def run():
            log.append(k)
            clock.now += k + 1
        return run

    steps = {k: step(k) for k in range(3)}
    seconds = time_in_rounds(steps, 3, calls=2, warmup=1, clock=clock)
    assert log[:3] == [0, 1, 2]  # one untimed warm-up call each
    timed = log[3:][::2]  # each step runs twice in a row per round
    assert timed == [0, 1, 2, 2, 1, 0, 0, 1, 2]  # alternating order
    assert seconds == {0: [1.0] * 3, 1: [2.0] * 3, 2: [3.0] * 3}  # per call, not per block
    log.clear()
    time_in_rounds(steps, 3, warmup=0, order="rotate", clock=clock)
    assert log == [0, 1, 2, 1, 2, 0, 2, 0, 1]
    with pytest.raises(ValueError, match="order"):
        time_in_rounds(steps, 1, order="shuffle", clock=clock)


# -- the counters' one instrumented step ------------------------------------------------------------


def _counted_apart(training):
    """What `count_steps` measured before the three counters shared a step: one step per counter."""
    from bench.measure.ceiling import record_step_calls
    from bench.measure.counters import count_ops
    from bench.measure.flops import count_flops

    return (count_flops(training.instrumented_step), count_ops(training.instrumented_step),
            record_step_calls(training.instrumented_step))


@pytest.mark.parametrize("impl,task", [("sequential", "regression"), ("vmap", "regression"),
                                       ("vmap_lrt", "regression"), ("vmap_flipout", "regression"),
                                       ("vmap_lrt", "lenet5"), ("sequential", "lenet5")])
def test_counting_in_one_step_finds_what_one_step_per_counter_found(impl, task):
    from bench.measure.step import counted_together
    from bench.training.builder import build_config_training

    config = BenchConfig(impl=impl, task=task, samples=3, threads=1, data="synthetic", batch_size=4)
    together, apart = build_config_training(config), build_config_training(config)
    together.step(), apart.step()  # as in measure: the saved-bytes step comes first (Adam's state made)
    flops, ops, calls = counted_together(together.instrumented_step)
    flops_apart, ops_apart, calls_apart = _counted_apart(apart)
    assert flops == flops_apart > 0
    assert ops == ops_apart and ops.total > 50  # every operator's count and the allocated bytes
    assert sorted(calls, key=repr) == sorted(calls_apart, key=repr) and calls


def test_a_counter_that_fails_in_the_shared_step_costs_only_its_own_column(monkeypatch):
    from bench.measure import ceiling
    from bench.measure.step import count_steps
    from bench.training.builder import build_config_training

    config = BenchConfig(impl="vmap", task="regression", samples=2, threads=1, data="synthetic")
    expected = _counted_apart(build_config_training(config))

    def broken(self, func, types, args=(), kwargs=None):  # fails at the step's first matrix product
        if func._overloadpacket in ceiling.flop_registry:
            raise RuntimeError("this operator cannot be recorded")
        return func(*args, **(kwargs or {}))

    monkeypatch.setattr(ceiling.CallRecorder, "__torch_dispatch__", broken)
    counts = count_steps(config, build_config_training(config), graph_bytes=False)
    assert counts.flops == expected[0] and counts.ops == expected[1]
    assert counts.gemm_calls is None
