"""One config -> one measured row: build the model and task, warm up, time repeats, record memory.

Pure enough to run anywhere a config can be sent: in the sweep's own process (inline executor),
in a fresh subprocess (local), or on a cluster node (slurm). It never writes files.
"""

from __future__ import annotations

from typing import Callable, Optional, Protocol

import torch

from bench.api import DTYPES, Training, build_training, resolve_dtype, training_options  # noqa: F401 (DTYPES re-exported)
from bench.config import BenchConfig
from bench.counters import count_instructions, count_ops
from bench.flops import count_flops
from bench.gpu_peaks import throughput_columns
from bench.levers import check_config_levers
from bench.memory import CudaPeak, Nvml, cap_cuda_memory, saved_tensor_bytes
from bench.provenance import device_name
from bench.result import RunResult, config_columns
from bench.rss import peak_rss_bytes
from bench.timing import summarize, time_block


class Pacer(Protocol):
    """Paces the timed repeats from outside (bench/rounds.py): blocks until repeat `index` may run,
    and hears its time. Called outside the timed interval."""

    def before_repeat(self, index: int) -> None: ...

    def after_repeat(self, index: int, seconds: float, steps: int) -> None: ...


def build_config_training(config: BenchConfig) -> Training:
    """A config's training run, built through the public `build_training` with the config's threads
    pinned; nothing stepped yet. Shared by `measure` and the counters (bench/counters.py)."""
    torch.set_num_threads(config.threads)
    return build_training(config.task, config.impl, config.samples, **training_options(config))


def measure(config: BenchConfig, *, clock: Optional[Callable[[], float]] = None,
            pacer: Optional[Pacer] = None, count_step_flops: bool = True, final_step: bool = True,
            count_graph_bytes: bool = True) -> RunResult:
    """`clock` replaces the synchronized wall clock (tests inject a fake one). `pacer` (interleaved
    rounds, bench/rounds.py) decides when each repeat runs and hears each one's time.
    `count_step_flops` and `final_step` False skip the FLOP- and operator-counting steps and the step
    that reads the final loss (the memory probes of `maxnmc`, where one step may take minutes);
    `count_graph_bytes` False also skips the step that measures the saved-for-backward bytes."""
    device = torch.device(config.device)
    check_config_levers(config)
    if device.type == "cuda":  # also lifts a cap an earlier config left in this process (inline executor)
        cap_cuda_memory(device, config.memory_limit_bytes)
    training = build_config_training(config)
    one_step = training.step
    steps_per_epoch = training.steps_per_epoch

    # Instrumented steps come first and are not timed: the hooks and the FLOP counter cost time.
    # They run the eager twin of the step: a compiled or replayed step would hide its operators.
    try:
        graph_bytes = saved_tensor_bytes(training.instrumented_step) if count_graph_bytes else None
    except RuntimeError as e:
        # torch.func.grad refuses saved-tensor hooks (posteriors_vi): the figure cannot be taken, so it stays empty.
        if "saved tensor hooks" not in str(e):
            raise
        graph_bytes = None
    flops = count_flops(training.instrumented_step) if count_step_flops else None
    op_counts = count_ops(training.instrumented_step) if count_step_flops else None
    instructions = count_instructions(config) if config.count_instructions else None
    for _ in range(config.warmup_steps):
        one_step()

    if config.epochs is not None:
        steps_per_repeat = config.epochs * steps_per_epoch

        def block():
            for _ in range(config.epochs):
                training.epoch()
    else:
        steps_per_repeat = config.steps

        def block():
            training.steps(config.steps)

    on_cuda = device.type == "cuda"
    cuda_peak = CudaPeak(device) if on_cuda else None
    nvml = Nvml(device) if on_cuda else None
    seconds, energy_mj, nvml_used = [], [], []
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
        if pacer is not None:
            pacer.after_repeat(index, seconds[-1], steps_per_repeat)

    # final_loss: the negative ELBO per training example of one more (untimed) step after the repeats,
    # estimated on that step's minibatch and evaluated before its update; one minibatch, one draw of
    # the noise: a sanity figure, not a converged loss.
    final_loss = float(one_step().loss) if final_step else None
    steps = [steps_per_repeat] * config.repeats
    stats = summarize(seconds, steps, steps_per_epoch, whole_epochs=config.epochs is not None)

    row = config_columns(config)
    row.update(
        kl=training.kl,
        batch_size=training.batch_size,
        device_name=device_name(config.device),
        status="ok",
        error="",
        repeats=config.repeats,
        steps_timed=steps_per_repeat,
        step_s_median=stats.step_s_median,
        step_s_iqr=stats.step_s_iqr,
        step_s_min=stats.step_s_min,
        steps_per_epoch=steps_per_epoch,
        epoch_s=stats.epoch_s,
        epoch_measured=stats.epoch_measured,
        graph_bytes=graph_bytes,
        rss_peak_bytes=peak_rss_bytes(),
        final_loss=final_loss,
        flops_per_step=flops,
        torch_version=torch.__version__,
        kl_weight=training.kl_weight,
        loss_note=training.loss_note,
    )
    row.update(throughput_columns(flops, stats.step_s_median, config.device, row["device_name"]))
    if op_counts is not None:
        row.update(aten_ops_per_step=op_counts.total, alloc_bytes_per_step=op_counts.alloc_bytes)
    if instructions is not None:
        row.update(instructions_per_step=instructions.per_step, instructions_note=instructions.note)
    if on_cuda:
        row.update(peak_allocated_bytes=cuda_peak.allocated, peak_reserved_bytes=cuda_peak.reserved)
        used = [u for u in nvml_used if u is not None]
        if used:
            row["nvml_used_bytes"] = max(used)
        if len(energy_mj) == config.repeats:
            row["energy_j_per_step"] = sum(energy_mj) / 1000.0 / sum(steps)
    return RunResult(row=row, repeats=tuple(zip(seconds, steps)), op_counts=op_counts.ops if op_counts else None)


def measure_timing_only(config: BenchConfig, **measure_args) -> RunResult:
    """`measure` without the untimed instrumented steps (counters, graph bytes, final loss): the
    later rounds of a fresh-worker rounds sweep, whose counters come from the config's first round,
    and the workers of a paired run whose counters nobody reads. `measure_args`: clock, pacer."""
    return measure(config, count_step_flops=False, final_step=False, count_graph_bytes=False, **measure_args)
