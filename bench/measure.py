"""One config -> one measured row: build the model and task, warm up, time repeats, record memory.

Pure enough to run anywhere a config can be sent: in the sweep's own process (inline executor),
in a fresh subprocess (local), or on a cluster node (slurm). It never writes files.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Protocol

import torch

import bnn_impls as B
from bench.config import BenchConfig
from bench.counters import count_instructions, count_ops
from bench.flops import count_flops
from bench.memory import CudaPeak, Nvml, saved_tensor_bytes
from bench.provenance import device_name
from bench.result import RunResult, config_columns
from bench.rss import peak_rss_bytes
from bench.timing import summarize, time_block

DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}


class Pacer(Protocol):
    """Paces the timed repeats from outside (bench/rounds.py): blocks until repeat `index` may run,
    and hears its time. Called outside the timed interval."""

    def before_repeat(self, index: int) -> None: ...

    def after_repeat(self, index: int, seconds: float, steps: int) -> None: ...


def resolve_dtype(name: str) -> torch.dtype:
    try:
        return DTYPES[name]
    except KeyError:
        raise B.BnnConfigError(f"unknown dtype {name!r}: choose one of {', '.join(DTYPES)}") from None


@dataclass(frozen=True)
class Training:
    """A config's training loop, built and ready to step (shared by `measure` and the counters)."""

    kl: str
    batch_size: int
    data: object
    step: Callable
    batches: Iterator
    generator: torch.Generator
    steps_per_epoch: int

    def one_step(self):
        return self.step(*next(self.batches))


def build_training(config: BenchConfig) -> Training:
    """Model, data, optimizer and step function of `config`, seeded; nothing stepped yet."""
    torch.set_num_threads(config.threads)
    device = torch.device(config.device)
    dtype = resolve_dtype(config.dtype)
    B.names.check_task(config.task)
    task = B.TASK_SPECS[config.task]
    kl = config.kl or B.default_kl(config.impl)
    impl = B.get_implementation(config.impl)
    B.check_combination(config.impl, kl, config.prior)
    batch_size = config.batch_size or task.batch_size

    data = B.load_dataset(config.task, device, dtype, data_dir=config.data_dir, seed=config.seed)
    model = B.BayesianMLP(task.sizes, device=device, dtype=dtype, generator=torch.Generator().manual_seed(config.seed))
    elbo = B.ElboSpec(task.likelihood, kl, B.make_prior(config.prior), data.n_train, config.n_mc)
    generator = torch.Generator(device).manual_seed(config.seed)
    step = B.make_train_step(model, impl, elbo, B.make_optimizer(model, config.lr or task.lr),
                             samples=config.samples, generator=generator)
    batches = B.endless_batches(data, batch_size, generator)
    return Training(kl, batch_size, data, step, batches, generator, B.steps_per_epoch(data.n_train, batch_size))


def measure(config: BenchConfig, *, clock: Optional[Callable[[], float]] = None,
            pacer: Optional[Pacer] = None) -> RunResult:
    """`clock` replaces the synchronized wall clock (tests inject a fake one). `pacer` (interleaved
    rounds, bench/rounds.py) decides when each repeat runs and hears each one's time."""
    device = torch.device(config.device)
    training = build_training(config)
    kl, batch_size, data, step, batches = training.kl, training.batch_size, training.data, training.step, training.batches
    generator, steps_per_epoch = training.generator, training.steps_per_epoch
    one_step = training.one_step

    # Instrumented steps come first and are not timed: the hooks and the FLOP counter cost time.
    graph_bytes = saved_tensor_bytes(one_step)
    flops = count_flops(one_step)
    op_counts = count_ops(one_step)
    instructions = count_instructions(config) if config.count_instructions else None
    for _ in range(config.warmup_steps):
        one_step()

    if config.epochs is not None:
        steps_per_repeat = config.epochs * steps_per_epoch

        def block():
            for _ in range(config.epochs):
                for x, y in B.epoch_batches(data, batch_size, generator):
                    step(x, y)
    else:
        steps_per_repeat = config.steps

        def block():
            for x, y in itertools.islice(batches, config.steps):
                step(x, y)

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

    final_loss = float(one_step().loss)
    steps = [steps_per_repeat] * config.repeats
    stats = summarize(seconds, steps, steps_per_epoch, whole_epochs=config.epochs is not None)

    row = config_columns(config)
    row.update(
        kl=kl,
        batch_size=batch_size,
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
    )
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
