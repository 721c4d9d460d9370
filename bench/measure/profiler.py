"""Where a training step's time goes: torch.profiler over N steps of one config, summarized.

    python3 run_bench.py profile --task mnist --impl vmap_lrt --samples 10 --device cuda --out DIR

Writes under DIR/profiles/: `<run_id>.md` (the summary), `<run_id>_ops.csv` (every operator and
kernel: calls and self time per step) and appends one row to `summary.csv` (one row per profiled
config, so a campaign's profiles compare in one table). Figures, per step:
- wall time (synchronized) and host time: the CPU time inside the step function, i.e. what Python,
  the dispatcher and the kernel launches cost; on a GPU the step is launch-bound when the host
  time is close to the wall time and the device is mostly idle;
- device busy time: the union of kernel, memcpy and memset intervals from the trace (CUDA only);
- launch gaps: device idle time between consecutive device activities within the profiled steps,
  with count, median, 95th percentile and the share of the wall time (CUDA only);
- the top operators and kernels by self device time (CUDA) or self CPU time (CPU).
"""

from __future__ import annotations

import csv
import io
import json
import os
import statistics
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import torch

from bench.contract.config import BenchConfig
from bench.contract.files import make_dir, write_text_atomic
from bench.contract.schema import TIME_SPLIT_COLUMNS, TIME_SPLIT_FILE, TIME_SPLIT_PARTS
from bench.contract.store import append_csv_row
from bench.measure.machine import device_name
from bench.training.builder import build_config_training
from bench.training.levers import check_config_levers

STEP_ANNOTATION = "bnn_bench_step"
#: Trace categories that occupy the GPU.
DEVICE_CATEGORIES = ("kernel", "gpu_memcpy", "gpu_memset")
SUMMARY_FILE = "summary.csv"
SUMMARY_COLUMNS = ("run_id", "task", "impl", "kl", "samples", "n_mc", "device", "device_name", "step_mode",
                   "precision", "optimizer", "steps", "wall_ms_per_step", "host_ms_per_step", "device_busy_ms_per_step",
                   "gap_ms_per_step", "device_idle_share", "kernels_per_step", "aten_calls_per_step",
                   "gap_median_us", "gap_p95_us", "torch_version")


@dataclass(frozen=True)
class DeviceTimeline:
    busy_us: float
    gaps_us: tuple[float, ...]
    activities: int


def device_timeline(trace_events: list[dict], window: tuple[float, float]) -> Optional[DeviceTimeline]:
    """Busy time (union of intervals) and idle gaps between device activities inside `window` (µs)."""
    spans = sorted(
        (float(e["ts"]), float(e["ts"]) + float(e.get("dur", 0.0)))
        for e in trace_events
        if e.get("ph") == "X" and e.get("cat") in DEVICE_CATEGORIES and window[0] <= float(e["ts"]) <= window[1]
    )
    if not spans:
        return None
    busy, gaps = 0.0, []
    start, end = spans[0]
    for s, e in spans[1:]:
        if s > end:
            busy += end - start
            gaps.append(s - end)
            start, end = s, e
        else:
            end = max(end, e)
    busy += end - start
    return DeviceTimeline(busy_us=busy, gaps_us=tuple(gaps), activities=len(spans))


def _percentile(values, q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def _self_device_us(avg) -> float:
    return float(getattr(avg, "self_device_time_total", None) or getattr(avg, "self_cuda_time_total", 0.0) or 0.0)


def _profile_steps(step, inputs, on_cuda: bool, device, activities) -> tuple[object, float]:
    """torch.profiler over `inputs`, one annotated step each; returns the profiler and the wall seconds."""
    def sync():
        if on_cuda:
            torch.cuda.synchronize(device)

    with torch.profiler.profile(activities=activities) as prof:
        sync()
        t0 = time.perf_counter()
        for x, y in inputs:
            with torch.profiler.record_function(STEP_ANNOTATION):
                step(x, y)
        sync()
        wall_s = time.perf_counter() - t0
    return prof, wall_s


def _trace_events(prof) -> list[dict]:
    with tempfile.TemporaryDirectory() as tmp:
        trace_path = os.path.join(tmp, "trace.json")
        prof.export_chrome_trace(trace_path)
        with open(trace_path) as f:
            return json.load(f).get("traceEvents", [])


def _operator_rows(prof, steps: int, on_cuda: bool) -> tuple[list[dict], float, str]:
    """Every operator and kernel per step, ranked by self device time (CUDA) or self CPU time; and the
    ATen calls (nested included) of all steps."""
    averages = [a for a in prof.key_averages() if a.key != STEP_ANNOTATION]
    aten_calls = sum(a.count for a in averages if a.key.startswith("aten::"))
    rows = [{"name": a.key, "calls": a.count, "calls_per_step": a.count / steps,
             "self_cpu_us_per_step": float(a.self_cpu_time_total) / steps,
             "self_device_us_per_step": _self_device_us(a) / steps} for a in averages]
    rank_by = "self_device_us_per_step" if on_cuda else "self_cpu_us_per_step"
    rows.sort(key=lambda r: (r[rank_by], r["self_device_us_per_step"], r["self_cpu_us_per_step"]), reverse=True)
    return rows, aten_calls, rank_by


def _timeline_columns(events: list[dict], steps: int, wall_s: float) -> dict:
    """Device busy time and launch gaps per step, from the trace (CUDA only)."""
    step_spans = [e for e in events if e.get("name") == STEP_ANNOTATION and e.get("ph") == "X"
                  and e.get("cat") in ("user_annotation", "cpu_op")]
    start = min((float(e["ts"]) for e in step_spans), default=float("-inf"))
    # The window starts at the first step's launch and ends at the last device activity (the host
    # runs ahead of the device, so activities of the last steps end after the last step returns).
    timeline = device_timeline(events, (start, float("inf")))
    if timeline is None:
        return {}
    gaps = timeline.gaps_us
    return dict(device_busy_ms_per_step=timeline.busy_us / 1e3 / steps, gap_ms_per_step=sum(gaps) / 1e3 / steps,
                device_idle_share=max(0.0, 1.0 - timeline.busy_us / 1e6 / wall_s),
                kernels_per_step=timeline.activities / steps,
                gap_median_us=statistics.median(gaps) if gaps else 0.0,
                gap_p95_us=_percentile(gaps, 0.95) if gaps else 0.0)


def profile_config(config: BenchConfig, out_dir, *, steps: int = 20, warmup: int = 5, top: int = 15) -> Path:
    """Profile `steps` steps of `config` after `warmup` untimed ones; returns the markdown summary's path.
    The step is the one `sweep` times: built by the one builder, with the config's levers."""
    check_config_levers(config)
    out = make_dir(Path(out_dir) / "profiles")  # an --out that cannot be written fails before minutes of work
    training = build_config_training(config)
    device = torch.device(config.device)
    on_cuda = device.type == "cuda"
    for _ in range(warmup):
        training.step()
    if on_cuda:
        torch.cuda.synchronize(device)
    activities = [torch.profiler.ProfilerActivity.CPU] + ([torch.profiler.ProfilerActivity.CUDA] if on_cuda else [])
    inputs = [next(training.batches) for _ in range(steps)]  # drawn outside the profiled window
    prof, wall_s = _profile_steps(training.train_step, inputs, on_cuda, device, activities)
    events = _trace_events(prof)
    host_us = sum(float(e["dur"]) for e in events if e.get("name") == STEP_ANNOTATION and e.get("ph") == "X"
                  and e.get("cat") in ("user_annotation", "cpu_op"))
    rows, aten_calls, rank_by = _operator_rows(prof, steps, on_cuda)
    summary = {
        "run_id": config.run_id, "task": config.task, "impl": config.impl, "kl": training.kl,
        "samples": config.samples, "n_mc": config.n_mc, "device": config.device,
        "device_name": device_name(config.device), "step_mode": config.step_mode, "precision": config.precision,
        "optimizer": config.optimizer, "steps": steps, "wall_ms_per_step": wall_s * 1e3 / steps,
        "host_ms_per_step": host_us / 1e3 / steps, "aten_calls_per_step": aten_calls / steps,
        "torch_version": torch.__version__,
    }
    if on_cuda:
        summary.update(_timeline_columns(events, steps, wall_s))
    table = io.StringIO()
    writer = csv.DictWriter(table, fieldnames=list(rows[0]) if rows else ["name"])
    writer.writeheader()
    writer.writerows(rows)
    write_text_atomic(out / f"{config.run_id}_ops.csv", table.getvalue())
    append_csv_row(out / SUMMARY_FILE, summary, SUMMARY_COLUMNS)
    split = dict(summary, threads=config.threads, flush_denormal=config.flush_denormal,
                 **time_split(prof.events(), steps, wall_s))
    split = {column: split.get(column) for column in TIME_SPLIT_COLUMNS}
    append_csv_row(Path(out_dir) / TIME_SPLIT_FILE, split, TIME_SPLIT_COLUMNS)
    md = out / f"{config.run_id}.md"
    write_text_atomic(md, render_markdown(summary, rows[:top], rank_by, on_cuda))
    return md


def _fmt(value, digits: int = 3) -> str:
    if value is None or value == "":
        return "n/a"
    if isinstance(value, float):
        return f"{value:.{digits}f}"
    return str(value)


def render_markdown(summary: dict, top_rows: list[dict], rank_by: str, on_cuda: bool) -> str:
    s = summary
    lines = [
        f"# Profile of one training step: {s['task']} {s['impl']} ({s['kl']}) S={s['samples']} on {s['device']}",
        "",
        f"{s['device_name']}; torch {s['torch_version']}; step_mode {s['step_mode']}, precision {s['precision']}, "
        f"optimizer {s['optimizer']}; {s['steps']} steps profiled after warm-up (`{s['run_id']}`).",
        "",
        "| per step | value |",
        "| --- | --- |",
        f"| wall time (synchronized), ms | {_fmt(s['wall_ms_per_step'])} |",
        f"| host time inside the step, ms | {_fmt(s['host_ms_per_step'])} |",
        f"| ATen operator calls (nested included) | {_fmt(s['aten_calls_per_step'], 1)} |",
    ]
    if on_cuda:
        lines += [
            f"| device busy, ms | {_fmt(s.get('device_busy_ms_per_step'))} |",
            f"| device idle between activities (launch gaps), ms | {_fmt(s.get('gap_ms_per_step'))} |",
            f"| device idle share of the wall time | {_fmt(s.get('device_idle_share'))} |",
            f"| device activities (kernels, copies) | {_fmt(s.get('kernels_per_step'), 1)} |",
            f"| gap median / p95, µs | {_fmt(s.get('gap_median_us'), 1)} / {_fmt(s.get('gap_p95_us'), 1)} |",
        ]
    else:
        lines.append("| device timeline | n/a: CPU run, no device trace |")
    what = "self device time" if rank_by == "self_device_us_per_step" else "self CPU time"
    lines += ["", f"## Top {len(top_rows)} operators and kernels by {what}", "",
              "| name | calls per step | self CPU µs per step | self device µs per step |", "| --- | --- | --- | --- |"]
    for r in top_rows:
        name = r["name"].replace("|", "/")
        if len(name) > 90:
            name = name[:87] + "..."
        lines.append(f"| `{name}` | {r['calls_per_step']:.1f} | {r['self_cpu_us_per_step']:.1f} | "
                     f"{r['self_device_us_per_step']:.1f} |")
    return "\n".join(lines) + "\n"


#: ATen operators that are matrix products or convolutions (forward and backward; names without
#: the `aten::` prefix or overload).
MATMUL_CONV_OPS = frozenset({
    "mm", "addmm", "bmm", "baddbmm", "addbmm", "matmul", "dot", "mv", "addmv", "_scaled_mm",
    "convolution", "_convolution", "convolution_backward", "mkldnn_convolution", "_slow_conv2d_forward",
    "_slow_conv2d_backward", "slow_conv3d_forward", "thnn_conv2d", "_nnpack_spatial_convolution",
    "cudnn_convolution", "conv1d", "conv2d", "conv3d", "linear",
})
#: ATen operators that draw random numbers: the weight noise, LRT's per-activation noise, Flipout's signs.
SAMPLING_OPS = frozenset({"normal_", "normal", "uniform_", "bernoulli_", "bernoulli", "random_", "randn",
                          "randn_like", "rand", "rand_like", "randint", "exponential_", "_standard_gamma",
                          "multinomial"})


def _inside_optimizer(event) -> bool:
    parent = event
    while parent is not None:
        if parent.name.startswith("Optimizer."):
            return True
        parent = parent.cpu_parent
    return False


#: The span torch.compile's generated code runs in. Its self time is the graph's own fused kernels
#: (inductor's C++ or Triton elementwise loops and reductions); the matrix products it calls out to
#: are `aten::` children with their own events.
COMPILED_GRAPH_PREFIX = "## Call CompiledFxGraph"


def _part(event) -> str:
    """Which part of the split an event's self time belongs to."""
    if _inside_optimizer(event):
        return "optimizer_ms"
    if event.name.startswith(COMPILED_GRAPH_PREFIX):
        return "elementwise_ms"  # fused by the compiler, but elementwise work all the same, not Python
    if not event.name.startswith("aten::"):
        return "overhead_ms"  # the step's own Python, autograd's engine, record_function spans
    op = event.name[len("aten::"):]
    if op in MATMUL_CONV_OPS:
        return "matmul_conv_ms"
    if op in SAMPLING_OPS:
        return "sampling_ms"
    return "elementwise_ms"


def time_split(events, steps: int, wall_s: float) -> dict:
    """Milliseconds per step by part (TIME_SPLIT_PARTS), from the profiler's CPU events: each event's
    self time goes to one part, the optimizer's whole subtree to `optimizer_ms`, and what no operator
    accounts for (Python between calls, dispatch, the profiler's own cost) to `overhead_ms`, so the
    parts add up to the wall time per step. Device kernels are not split (a GPU run's CPU side is)."""
    parts = dict.fromkeys(TIME_SPLIT_PARTS, 0.0)
    for event in events:
        if getattr(event, "device_type", None) is not None and str(event.device_type) != "DeviceType.CPU":
            continue
        parts[_part(event)] += float(event.self_cpu_time_total) / 1e3 / steps
    wall_ms = wall_s * 1e3 / steps
    measured = sum(v for k, v in parts.items() if k != "overhead_ms")
    parts["overhead_ms"] = max(0.0, wall_ms - measured)
    return dict(parts, wall_ms_per_step=wall_ms)
