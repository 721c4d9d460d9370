"""One config -> one measured row: build the model and task, warm up, time repeats, record memory.

Pure enough to run anywhere a config can be sent: in the sweep's own process (inline executor),
in a fresh subprocess (local), or on a cluster node (slurm). It never writes files.
"""

from __future__ import annotations

import itertools
from typing import Callable, Optional

import torch

import bnn_impls as B
from bnn_impls.models import build_model
from bench.config import BenchConfig
from bench.flops import count_flops
from bench.memory import CudaPeak, Nvml, saved_tensor_bytes
from bench.provenance import device_name
from bench.result import RunResult, config_columns
from bench.rss import peak_rss_bytes
from bench.timing import summarize, time_block

DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}


def resolve_dtype(name: str) -> torch.dtype:
    try:
        return DTYPES[name]
    except KeyError:
        raise B.BnnConfigError(f"unknown dtype {name!r}: choose one of {', '.join(DTYPES)}") from None


def measure(config: BenchConfig, *, clock: Optional[Callable[[], float]] = None, count_step_flops: bool = True,
            final_step: bool = True) -> RunResult:
    """`clock` replaces the synchronized wall clock (tests inject a fake one). `count_step_flops` and
    `final_step` False skip the FLOP-counting step and the step that reads the final loss (the
    memory probes of `maxnmc`, where one step may take minutes)."""
    torch.set_num_threads(config.threads)
    device = torch.device(config.device)
    if device.type == "cuda" and config.memory_limit_bytes:
        # The GPU's budget is the allocator's: an allocation past it raises OutOfMemoryError (an `oom` row).
        total = torch.cuda.get_device_properties(device).total_memory
        torch.cuda.set_per_process_memory_fraction(min(1.0, config.memory_limit_bytes / total), device)
    dtype = resolve_dtype(config.dtype)
    B.names.check_task(config.task)
    task = B.TASK_SPECS[config.task]
    kl = config.kl or B.default_kl(config.impl)
    impl = B.get_implementation(config.impl)
    B.check_combination(config.impl, kl, config.prior)
    batch_size = config.batch_size or task.batch_size

    data = B.load_dataset(config.task, device, dtype, data_dir=config.data_dir, seed=config.seed, data=config.data)
    model = build_model(task, config.model, device=device, dtype=dtype,
                        generator=torch.Generator().manual_seed(config.seed))
    elbo = B.ElboSpec(task.likelihood, kl, B.make_prior(config.prior), data.n_train, config.n_mc)
    generator = torch.Generator(device).manual_seed(config.seed)
    step = B.make_train_step(model, impl, elbo, B.make_optimizer(model, config.lr or task.lr),
                             samples=config.samples, generator=generator)
    batches = B.endless_batches(data, batch_size, generator)
    steps_per_epoch = B.steps_per_epoch(data.n_train, batch_size)

    def one_step():
        return step(*next(batches))

    # Instrumented steps come first and are not timed: the hooks and the FLOP counter cost time.
    graph_bytes = saved_tensor_bytes(one_step)
    flops = count_flops(one_step) if count_step_flops else None
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
    for _ in range(config.repeats):
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

    final_loss = float(one_step().loss) if final_step else None
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
    if on_cuda:
        row.update(peak_allocated_bytes=cuda_peak.allocated, peak_reserved_bytes=cuda_peak.reserved)
        used = [u for u in nvml_used if u is not None]
        if used:
            row["nvml_used_bytes"] = max(used)
        if len(energy_mj) == config.repeats:
            row["energy_j_per_step"] = sum(energy_mj) / 1000.0 / sum(steps)
    return RunResult(row=row, repeats=tuple(zip(seconds, steps)))
