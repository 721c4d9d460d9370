"""How far a step is from this machine's matmul limit: its GEMM and convolution calls, each replayed
alone at its own shapes, dtype and threads, and timed.

A CPU has no datasheet peak worth quoting (clocks, AVX frequency offsets and the host's other
tenants decide it), and a square-GEMM figure says little about a 128x784 by 784x800 product. So the
ceiling is measured: one instrumented step records every call of an operator PyTorch's FLOP counter
has a formula for (mm, addmm, bmm, baddbmm, convolution and its backward, ...), with its argument
shapes, strides and dtypes; each distinct call is then run alone on fresh random tensors of the same
layout, warm, in back-to-back blocks, and the fastest block's time per call is taken. The step's ceiling
time is the sum over its calls: what the step would take if it did nothing but its matrix and
convolution work at the rate this machine sustains for those shapes. `fraction_of_ceiling` is that
time over the measured step time (1.0: nothing but matmuls; the rest is elementwise work, sampling,
the optimizer and Python).

The replay runs warm, with the operands in cache where they fit: an upper bound on what the step
can reach, which is what a ceiling is for.
"""

from __future__ import annotations

import hashlib
import time
from collections import Counter
from dataclasses import dataclass
from typing import Callable, Optional

import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import flop_registry

#: How each distinct call is timed: one untimed call, then this many blocks of back-to-back calls,
#: each block long enough to dwarf the clock's resolution; the fastest block gives the time per call.
#: The fastest, not the median: a ceiling is the best rate the machine sustains for that shape, and
#: whatever else runs on a shared machine (the host's other tenants) only ever slows a block.
BLOCKS = 5
MIN_BLOCK_S = 0.004
#: Never more calls than this in one block (tiny GEMMs would otherwise loop for long).
MAX_CALLS_PER_BLOCK = 200
#: The square GEMM of meta.json's reference rate.
REFERENCE_N = 1024

METHOD = (f"each distinct GEMM/convolution call of one instrumented step (the operators torch's FLOP counter "
          f"counts, at their recorded shapes, strides and dtypes) replayed alone on random tensors in this "
          f"process (same threads, device), 1 untimed call then {BLOCKS} blocks of >= {MIN_BLOCK_S * 1e3:g} ms; "
          f"ceiling = sum over the step's calls of the fastest block's time per call")


@dataclass(frozen=True)
class TensorSpec:
    """The layout of a recorded tensor argument: enough to make a stand-in of the same cost."""

    shape: tuple
    stride: tuple
    dtype: torch.dtype
    device: str
    requires_grad: bool = False


@dataclass(frozen=True)
class Call:
    """One recorded operator call, tensors replaced by their specs; `count` calls of it per step."""

    op: object
    args: tuple
    kwargs: tuple
    flops: int


@dataclass(frozen=True)
class Ceiling:
    """The calibrated matmul ceiling of one step."""

    seconds: float  # the step's GEMM/conv calls at the replayed rates
    flops: int  # their FLOPs (those the FLOP counter counts)
    distinct_calls: int
    calls: int
    calls_id: str = ""  # `calls_id` of the calls replayed: rows with the same one replayed the same work

    @property
    def gflops(self) -> float:
        return self.flops / self.seconds / 1e9 if self.seconds > 0 else float("nan")


def _spec(value):
    if isinstance(value, torch.Tensor):
        return TensorSpec(tuple(value.shape), tuple(value.stride()), value.dtype, str(value.device))
    if isinstance(value, list):
        return tuple(_spec(v) for v in value)
    return value


class CallRecorder(TorchDispatchMode):
    """Records the calls of operators with a FLOP formula (as torch's FlopCounterMode counts them)."""

    def __init__(self):
        super().__init__()
        self.calls: Counter = Counter()  # Call -> how many times the step made it

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        packet = func._overloadpacket
        out = func(*args, **kwargs)
        if packet in flop_registry:
            flops = int(flop_registry[packet](*args, **kwargs, out_val=out))
            self.calls[Call(func, tuple(_spec(a) for a in args),
                            tuple(sorted((k, _spec(v)) for k, v in kwargs.items())), flops)] += 1
        return out

    def recorded(self) -> list[tuple[Call, int]]:
        """Each distinct call once, with how many times the step made it."""
        return list(self.calls.items())


def record_calls(step: Callable[[], object]) -> list[tuple[Call, int]]:
    """The GEMM/convolution calls of one run of `step`, each distinct call once with its count."""
    recorder = CallRecorder()
    with recorder:
        step()
    return recorder.recorded()


def _materialize(value, generator: torch.Generator):
    if isinstance(value, TensorSpec):
        # The recorded layout is kept (a transposed view stays transposed, an expanded one keeps its
        # zero strides): the kernel chosen, and its speed, depend on it. The values are drawn into the
        # storage the layout spans, then viewed through it.
        span = 1 + sum((size - 1) * stride for size, stride in zip(value.shape, value.stride)) if all(
            value.shape) else 0
        storage = torch.empty(span, dtype=value.dtype, device=value.device)
        if storage.is_floating_point() and span:
            storage.normal_(generator=generator if storage.device.type == "cpu" else None)
        return storage.as_strided(value.shape, value.stride)
    if isinstance(value, tuple) and any(isinstance(v, TensorSpec) for v in value):
        return [_materialize(v, generator) for v in value]
    return value


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize(torch.device(device))


def time_call(call: Call, *, clock: Callable[[], float] = time.perf_counter) -> float:
    """Seconds of one call of `call` replayed alone, warm: the fastest of `BLOCKS` blocks."""
    generator = torch.Generator().manual_seed(0)
    args = [_materialize(v, generator) for v in call.args]
    kwargs = {k: _materialize(v, generator) for k, v in call.kwargs}
    devices = [v.device for v in (*call.args, *(v for _, v in call.kwargs)) if isinstance(v, TensorSpec)]
    device = devices[0] if devices else "cpu"
    with torch.no_grad():
        _sync(device)
        start = clock()
        call.op(*args, **kwargs)
        _sync(device)
        first = max(clock() - start, 1e-9)
        n = max(1, min(MAX_CALLS_PER_BLOCK, int(MIN_BLOCK_S / first)))
        per_call = []
        for _ in range(BLOCKS):
            _sync(device)
            start = clock()
            for _ in range(n):
                call.op(*args, **kwargs)
            _sync(device)
            per_call.append((clock() - start) / n)
    return min(per_call)


def calls_id(calls: list[tuple[Call, int]]) -> str:
    """A short digest of a step's recorded calls (operator, argument layouts and dtypes, count of
    each), order-free: two configs with the same id replay the very same work, so `analyze` can take
    the fastest of their replays (a host that slowed one replay for seconds cannot make one lever
    look nearer its ceiling than another that runs the same matmuls)."""
    text = "\n".join(sorted(f"{call.op}|{call.args!r}|{call.kwargs!r}|{count}" for call, count in calls))
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def calibrate(calls: list[tuple[Call, int]], *, timer: Callable[[Call], float] = time_call) -> Optional[Ceiling]:
    """The ceiling of a step from its recorded calls; None when it has none (no GEMM or conv)."""
    if not calls:
        return None
    seconds = sum(timer(call) * count for call, count in calls)
    flops = sum(call.flops * count for call, count in calls)
    return Ceiling(seconds=seconds, flops=flops, distinct_calls=len(calls), calls=sum(c for _, c in calls),
                   calls_id=calls_id(calls))


def record_step_calls(step: Callable[[], object]) -> Optional[list[tuple[Call, int]]]:
    """`record_calls`, or None where the step cannot be recorded (the columns stay empty; the run goes on)."""
    try:
        return record_calls(step)
    except (RuntimeError, TypeError, ValueError):
        return None


def calibrate_calls(calls: list[tuple[Call, int]]) -> Optional[Ceiling]:
    """`calibrate`, or None where a call cannot be replayed (the columns stay empty; the run goes on)."""
    try:
        return calibrate(calls)
    except (RuntimeError, TypeError, ValueError):
        return None


def ceiling_columns(ceiling: Optional[Ceiling], step_s: Optional[float], flops_per_step: Optional[int]) -> dict:
    """runs.csv's ceiling columns: the ceiling time, the rate it implies, the step's achieved rate and
    the fraction of the ceiling the step reached (ceiling time / step time)."""
    out: dict = {}
    if flops_per_step and step_s:
        out["achieved_gflops"] = flops_per_step / step_s / 1e9
    if ceiling is None or not step_s:
        return out
    out.update(ceiling_s_per_step=ceiling.seconds, ceiling_gflops=ceiling.gflops,
               fraction_of_ceiling=ceiling.seconds / step_s, ceiling_calls_id=ceiling.calls_id)
    return out


def reference_gemm_gflops(n: int = 1024, dtype: torch.dtype = torch.float32, device: str = "cpu") -> float:
    """Sustained GFLOP/s of one square n x n x n GEMM, timed as `time_call` times a step's calls: the
    machine's headline figure for meta.json, beside the per-step ceilings at the steps' own shapes."""
    spec = TensorSpec((n, n), (n, 1), dtype, device)
    call = Call(torch.ops.aten.mm.default, (spec, spec), (), 2 * n ** 3)
    return call.flops / time_call(call) / 1e9


def calibration_meta(configs) -> dict:
    """meta.json's `ceiling` entry, measured once per sweep (at its end): how per-row ceilings are
    taken, and this machine's square-GEMM rate at each (device, dtype, threads) the grid runs at, so
    two machines' ceilings can be told apart at a glance. The process's thread count is restored afterwards."""
    from bench.measure.numerics import flush_denormal_in_force

    threads_before = torch.get_num_threads()
    reference = []
    try:
        for device, dtype, threads in sorted({(c.device, c.dtype, int(c.threads)) for c in configs}):
            torch.set_num_threads(threads)
            try:
                gflops = reference_gemm_gflops(REFERENCE_N, getattr(torch, dtype), device)
            except (RuntimeError, TypeError, AttributeError) as e:  # no such device here, an odd dtype
                reference.append({"device": device, "dtype": dtype, "threads": threads, "error": str(e)[:200]})
                continue
            reference.append({"device": device, "dtype": dtype, "threads": threads, "n": REFERENCE_N,
                              "gflops": round(gflops, 2)})
    finally:
        torch.set_num_threads(threads_before)
    return {"method": METHOD, "reference_gemm": reference,
            "flush_denormal_in_sweep_process": flush_denormal_in_force()}
