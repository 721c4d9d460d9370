"""Stand-ins for `bench.measure.step:measure` (config -> RunResult) that fail in every way a config can.

Passed to executors by name (`tests.fakes:ok`) or through `--target`; they import nothing heavy,
so a worker running one starts in a fraction of a second.
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import time

from bench.contract.config import BenchConfig
from bench.contract.records import RunResult, config_columns

#: Per-step seconds of the fake repeats: distinct values so a reordering or a lost repeat shows.
STEP_SECONDS = (0.011, 0.013, 0.012, 0.017, 0.010, 0.019, 0.014)


def fake_repeats(config: BenchConfig) -> tuple[tuple[float, int], ...]:
    steps = config.steps or 8 * config.epochs
    return tuple((STEP_SECONDS[i % len(STEP_SECONDS)] * config.samples * steps, steps) for i in range(config.repeats))


def ok(config: BenchConfig) -> RunResult:
    """A plausible measured row, quickly, with values a test can predict from the config."""
    repeats = fake_repeats(config)
    per_step = sorted(s / n for s, n in repeats)
    median = per_step[len(per_step) // 2]
    row = config_columns(config)
    row.update(
        kl=config.kl or "sample", batch_size=config.batch_size or 128, device_name="fake CPU", status="ok", error="",
        repeats=config.repeats, steps_timed=repeats[0][1], step_s_median=median, step_s_iqr=0.0,
        step_s_min=per_step[0], steps_per_epoch=8, epoch_s=median * 8, epoch_measured=config.epochs is not None,
        graph_bytes=1000 * config.samples, final_loss=0.5, torch_version="fake",
    )
    return RunResult(row=row, repeats=repeats)


def slowish_ok(config: BenchConfig) -> RunResult:
    """`ok` after a short sleep, so a test can kill a sweep between rows."""
    time.sleep(0.15)
    return ok(config)


def noisy_ok(config: BenchConfig) -> RunResult:
    """Prints to stdout and stderr like real training code may: the result must not be affected."""
    print("epoch 1 loss 0.5, not a result", flush=True)
    print("a warning on stderr", file=sys.stderr, flush=True)
    return ok(config)


def raises(config: BenchConfig) -> RunResult:
    raise ValueError(f"fake failure for S={config.samples}")


def raises_cuda_oom(config: BenchConfig) -> RunResult:
    raise RuntimeError("CUDA out of memory. Tried to allocate 20.00 GiB")


def sleeps(config: BenchConfig) -> RunResult:
    time.sleep(120)
    return ok(config)


def sleeps_with_grandchild(config: BenchConfig) -> RunResult:
    """Starts a grandchild that would outlive a careless timeout, and records its pid beside the data dir."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    with open(os.path.join(config.data_dir, "grandchild.pid"), "w") as f:
        f.write(str(child.pid))
    time.sleep(120)
    return ok(config)


def allocates(config: BenchConfig) -> RunResult:
    """Allocates until MemoryError; refuses to run without an address-space cap (it would eat the machine)."""
    soft, _ = resource.getrlimit(resource.RLIMIT_AS)
    if soft == resource.RLIM_INFINITY or soft > 8 * 2**30:
        raise RuntimeError("refusing to allocate without an address-space cap: set memory_limit_bytes")
    hoard = []
    while True:
        hoard.append(bytearray(64 * 2**20))


def segfaults(config: BenchConfig) -> RunResult:
    os.kill(os.getpid(), signal.SIGSEGV)
    time.sleep(5)
    raise AssertionError("SIGSEGV did not kill the process")


def sigkilled(config: BenchConfig) -> RunResult:
    """What the kernel's OOM killer looks like from the parent."""
    os.kill(os.getpid(), signal.SIGKILL)
    time.sleep(5)
    raise AssertionError("SIGKILL did not kill the process")


def exits(config: BenchConfig) -> RunResult:
    print("fatal: giving up", file=sys.stderr, flush=True)
    os._exit(3)


def returns_nothing(config: BenchConfig):
    return None


#: `by_samples`: one sweep exercising every outcome, chosen by S.
BY_SAMPLES = {1: ok, 2: raises, 3: sleeps, 4: allocates, 5: segfaults, 6: ok}


def by_samples(config: BenchConfig) -> RunResult:
    return BY_SAMPLES.get(config.samples, ok)(config)


def paced_ok(config: BenchConfig, pacer=None) -> RunResult:
    """`ok`, its repeats paced like bench.measure.step's (interleaved rounds), with operator counts.

    BNN_BENCH_FAKE_SLOW=IMPL makes IMPL's repeats 1.5x slower; BNN_BENCH_FAKE_EXTRA_OP=IMPL gives
    IMPL one more `aten.nan_to_num.default` per step; BNN_BENCH_FAKE_DIE=IMPL kills IMPL's worker
    (SIGKILL, as the OOM killer would) after its first repeat.
    """
    result = ok(config)
    factor = 1.5 if os.environ.get("BNN_BENCH_FAKE_SLOW") == config.impl else 1.0
    repeats = tuple((seconds * factor, steps) for seconds, steps in result.repeats)
    if pacer is not None:
        for i, (seconds, steps) in enumerate(repeats):
            pacer.before_repeat(i)
            pacer.after_repeat(i, seconds, steps)
            if os.environ.get("BNN_BENCH_FAKE_DIE") == config.impl:
                os.kill(os.getpid(), signal.SIGKILL)
    ops = {"aten.mm.default": 6 * config.samples, "aten.add.Tensor": 4 * config.samples}
    if os.environ.get("BNN_BENCH_FAKE_EXTRA_OP") == config.impl:
        ops["aten.nan_to_num.default"] = 1
    return RunResult(row=dict(result.row, aten_ops_per_step=sum(ops.values()), flops_per_step=1000 * config.samples),
                     repeats=repeats, op_counts=ops)
