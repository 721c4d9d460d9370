"""One config -> one measured row: build the training run, count its untimed steps, time the repeats,
record memory.

Pure enough to run anywhere a config can be sent: in the sweep's own process (inline executor),
in a fresh subprocess (local), or on a cluster node (slurm). It never writes files.

    from bench import measure_config
    row = measure_config(impl="vmap_lrt", task="mnist", samples=10, steps=5, repeats=3)
    print(row["step_s_median"], row["graph_bytes"])
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Callable, Optional, Protocol

import torch
from torch.utils.flop_counter import FlopCounterMode

from bench.contract.config import BenchConfig
from bench.contract.records import RunResult, config_columns
from bench.contract.schema import RUNS_COLUMNS
from bench.measure.ceiling import CallRecorder, Ceiling, calibrate_calls, ceiling_columns, record_step_calls
from bench.measure.counters import Instructions, OpCountingMode, OpCounts, count_instructions, count_ops
from bench.measure.flops import count_flops
from bench.measure.gpu_peaks import throughput_columns
from bench.measure.machine import device_name
from bench.measure.memory import CudaPeak, Nvml, cap_cuda_memory, saved_tensor_bytes
from bench.measure.numerics import flush_denormal_in_force, gradient_denormal_fraction
from bench.measure.rss import peak_rss_bytes
from bench.measure.timing import summarize, time_block
from bench.training.builder import Training, build_config_training
from bench.training.levers import check_config_levers
from bnn_impls.names import BnnConfigError


class Pacer(Protocol):
    """Paces the timed repeats from outside (bench/run/rounds.py): blocks until repeat `index` may run,
    and hears its time. Called outside the timed interval."""

    def before_repeat(self, index: int) -> None: ...

    def after_repeat(self, index: int, seconds: float, steps: int) -> None: ...


@dataclass(frozen=True)
class Counts:
    """What the untimed instrumented steps found (None: not taken, or not takeable for this config)."""

    graph_bytes: Optional[int] = None
    flops: Optional[int] = None
    ops: Optional[OpCounts] = None
    instructions: Optional[Instructions] = None
    gemm_calls: Optional[list] = None  # the step's GEMM/conv calls, replayed for the ceiling (ceiling.py)


@dataclass(frozen=True)
class Timed:
    """The timed repeats, and what the device reported around them."""

    seconds: list
    steps_per_repeat: int
    cuda_peak: Optional[CudaPeak] = None
    nvml_used: tuple = ()
    energy_mj: tuple = ()
    denormal_grad_fraction: Optional[float] = None  # of the last timed step's gradients


def count_steps(config: BenchConfig, training: Training, *, flops_and_ops: bool = True,
                graph_bytes: bool = True) -> Counts:
    """Instrumented steps come first and are not timed: the hooks and the FLOP counter cost time.
    They run the eager twin of the step: a compiled or replayed step would hide its operators."""
    graph = None
    if graph_bytes:
        try:
            graph = saved_tensor_bytes(training.instrumented_step)
        except RuntimeError as e:
            # torch.func.grad refuses saved-tensor hooks (posteriors_vi): the figure cannot be taken, so it stays empty.
            if "saved tensor hooks" not in str(e):
                raise
    flops = ops = calls = None
    if flops_and_ops:
        together = counted_together(training.instrumented_step)
        if together is not None:
            flops, ops, calls = together
        else:  # one step per counter, each with its own fallback: a counter that fails costs only its column
            flops = count_flops(training.instrumented_step)
            ops = count_ops(training.instrumented_step)
            calls = record_step_calls(training.instrumented_step)
    instructions = count_instructions(config) if config.count_instructions else None
    return Counts(graph, flops, ops, instructions, calls)


def counted_together(step: Callable[[], object]) -> Optional[tuple[int, OpCounts, list]]:
    """The FLOPs, the operator counts and the ceiling's GEMM/conv calls of one run of `step`, the three
    dispatch modes nested: each passes every operator on to the next, so each sees what it would
    alone, and the config pays one instrumented step instead of three (in the default job, two
    steps of each of its 44 configs). None if any of them fails: the caller then counts one mode per
    step, where a failure costs only that mode's column."""
    flop_counter, op_counter, recorder = FlopCounterMode(display=False), OpCountingMode(), CallRecorder()
    try:
        with flop_counter, op_counter, recorder:
            step()
    except Exception:  # noqa: BLE001 - retried one counter at a time, each with its own handling
        return None
    return int(flop_counter.get_total_flops()), op_counter.counts(), recorder.recorded()


def time_repeats(config: BenchConfig, training: Training, *, clock=None, pacer: Optional[Pacer] = None,
                 after_first: Optional[Callable[[], None]] = None,
                 after_last: Optional[Callable[[], None]] = None) -> Timed:
    """`config.repeats` timed blocks of `steps` steps (or whole epochs), paced from outside if asked.
    `after_first` and `after_last` run after the first and the last repeat, untimed, but before the
    pacer hears of that repeat: in interleaved rounds every other config's worker is then waiting, so
    they run on a quiet machine and slow no one's repeat. After the first repeat the machine is
    quietest (every worker started, none yet ending); after the last, nothing timed follows."""
    if config.epochs is not None:
        steps_per_repeat = config.epochs * training.steps_per_epoch

        def block():
            for _ in range(config.epochs):
                training.epoch()
    else:
        steps_per_repeat = config.steps

        def block():
            training.steps(config.steps)

    device = torch.device(config.device)
    on_cuda = device.type == "cuda"
    cuda_peak = CudaPeak(device) if on_cuda else None
    nvml = Nvml(device) if on_cuda else None
    seconds, energy_mj, nvml_used = [], [], []
    denormal = None
    for index in range(config.repeats):
        if pacer is not None:
            pacer.before_repeat(index)
        if on_cuda:
            with cuda_peak.region():
                e0 = nvml.energy_mj()
                seconds.append(time_block(block, clock=clock))
                e1 = nvml.energy_mj()
            if e0 is not None and e1 is not None:
                energy_mj.append(e1 - e0)
            nvml_used.append(nvml.used_bytes())
        else:
            seconds.append(time_block(block, clock=clock))
        if index == 0 and after_first is not None:
            after_first()
        if index == config.repeats - 1:
            denormal = gradient_denormal_fraction(training.model)  # the last timed step's, before anything else
            if after_last is not None:
                after_last()
        if pacer is not None:
            pacer.after_repeat(index, seconds[-1], steps_per_repeat)
    return Timed(seconds, steps_per_repeat, cuda_peak, tuple(nvml_used), tuple(energy_mj), denormal)


def measured_row(config: BenchConfig, training: Training, counts: Counts, timed: Timed,
                 final_loss: Optional[float], ceiling: Optional[Ceiling] = None) -> dict:
    """The runs.csv row of a measured config (columns: bench/contract/schema.py)."""
    steps = [timed.steps_per_repeat] * config.repeats
    stats = summarize(timed.seconds, steps, training.steps_per_epoch, whole_epochs=config.epochs is not None)
    row = config_columns(config)
    row.update(
        kl=training.kl, batch_size=training.batch_size, device_name=device_name(config.device), status="ok",
        error="", repeats=config.repeats, steps_timed=timed.steps_per_repeat, step_s_median=stats.step_s_median,
        step_s_iqr=stats.step_s_iqr, step_s_min=stats.step_s_min, steps_per_epoch=training.steps_per_epoch,
        epoch_s=stats.epoch_s, epoch_measured=stats.epoch_measured, graph_bytes=counts.graph_bytes,
        rss_peak_bytes=peak_rss_bytes(), final_loss=final_loss, flops_per_step=counts.flops,
        torch_version=torch.__version__, kl_weight=training.kl_weight, loss_note=training.loss_note,
    )
    row.update(throughput_columns(counts.flops, stats.step_s_median, config.device, row["device_name"]))
    row.update(ceiling_columns(ceiling, stats.step_s_median, counts.flops),
               flush_denormal=flush_denormal_in_force(), denormal_grad_fraction=timed.denormal_grad_fraction)
    if counts.ops is not None:
        row.update(aten_ops_per_step=counts.ops.total, alloc_bytes_per_step=counts.ops.alloc_bytes)
    if counts.instructions is not None:
        row.update(instructions_per_step=counts.instructions.per_step, instructions_note=counts.instructions.note)
    if timed.cuda_peak is not None:
        row.update(peak_allocated_bytes=timed.cuda_peak.allocated, peak_reserved_bytes=timed.cuda_peak.reserved)
        used = [u for u in timed.nvml_used if u is not None]
        if used:
            row["nvml_used_bytes"] = max(used)
        if len(timed.energy_mj) == config.repeats:
            row["energy_j_per_step"] = sum(timed.energy_mj) / 1000.0 / sum(steps)
    return row


def measure(config: BenchConfig, *, clock: Optional[Callable[[], float]] = None,
            pacer: Optional[Pacer] = None, count_step_flops: bool = True, final_step: bool = True,
            count_graph_bytes: bool = True) -> RunResult:
    """`clock` replaces the synchronized wall clock (tests inject a fake one). `pacer` (interleaved
    rounds, bench/run/rounds.py) decides when each repeat runs and hears each one's time.
    `count_step_flops` and `final_step` False skip the FLOP- and operator-counting steps and the step
    that reads the final loss (the memory probes of `maxnmc`, where one step may take minutes);
    `count_graph_bytes` False also skips the step that measures the saved-for-backward bytes."""
    device = torch.device(config.device)
    check_config_levers(config)
    if device.type == "cuda":  # also lifts a cap an earlier config left in this process (inline executor)
        cap_cuda_memory(device, config.memory_limit_bytes)
    training = build_config_training(config)
    counts = count_steps(config, training, flops_and_ops=count_step_flops, graph_bytes=count_graph_bytes)
    for _ in range(config.warmup_steps):
        training.step()
    # The ceiling's replay (of the calls the counting steps recorded: no training step is taken) runs
    # in the first repeat's slot, after its timing and before the pacer is told: no other config is
    # timed meanwhile, and in interleaved rounds every worker has started and none is ending (in the
    # last round, finished workers exit beside the next config's repeat, which scattered replays of
    # one step's calls by 2x). The final step takes the last repeat's slot: after the pacer is told,
    # the next config's repeat starts.
    after: dict = {}

    def after_first() -> None:
        if counts.gemm_calls is not None:
            after["ceiling"] = calibrate_calls(counts.gemm_calls)

    def after_last() -> None:
        # final_loss: the negative ELBO per training example of one more (untimed) step after the
        # repeats, estimated on that step's minibatch and evaluated before its update; one minibatch,
        # one draw of the noise: a sanity figure, not a converged loss.
        if final_step:
            after["final_loss"] = float(training.step().loss)

    timed = time_repeats(config, training, clock=clock, pacer=pacer, after_first=after_first, after_last=after_last)
    row = measured_row(config, training, counts, timed, after.get("final_loss"), after.get("ceiling"))
    steps = [timed.steps_per_repeat] * config.repeats
    return RunResult(row=row, repeats=tuple(zip(timed.seconds, steps)),
                     op_counts=counts.ops.ops if counts.ops else None)


def measure_timing_only(config: BenchConfig, **measure_args) -> RunResult:
    """`measure` without the untimed instrumented steps (counters, graph bytes, final loss): the
    later rounds of a fresh-worker rounds sweep, whose counters come from the config's first round,
    and the workers of a paired run whose counters nobody reads. `measure_args`: clock, pacer."""
    return measure(config, count_step_flops=False, final_step=False, count_graph_bytes=False, **measure_args)


def measure_config(**fields) -> dict:
    """Measure one config in this process and return its runs.csv row ({column: value}, every column).

    `fields` are `BenchConfig`'s (impl, task, samples, steps or epochs, repeats, device, kl, n_mc,
    prior and its parameters, threads, ...). Unlike a sweep, a failure raises instead of becoming a
    row. Note that it pins `torch.set_num_threads(threads)` (default 2) for this process, as a sweep does.
    """
    known = {f.name for f in dataclasses.fields(BenchConfig)}
    unknown = sorted(set(fields) - known)
    if unknown:
        raise BnnConfigError(f"unknown field {unknown[0]!r} for measure_config: choose from {', '.join(sorted(known))}")
    try:
        config = BenchConfig(**fields)
    except (TypeError, ValueError) as e:
        raise BnnConfigError(" ".join(str(e).split())) from None
    row = measure(config).row
    return {column: row.get(column) for column in RUNS_COLUMNS}
