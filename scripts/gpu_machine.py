"""What the GPU campaign ran on, and the two ceilings its numbers are read against (METHOD.md's
"two numbers first"): `python3 scripts/gpu_machine.py OUT.json`.

Records the GPU (name, memory, multiprocessors, driver, clocks, power limit from nvidia-smi), the
torch / CUDA / cuDNN versions, and measures on the device itself: a device-to-device copy
(bytes read plus written per second) and square matrix products in fp32, TF32 and bf16 (random
inputs, never zeros: a product of zeros ran 13% faster on an H200 here). Each is the median of 10
timed calls after 3 warm-ups, timed with CUDA events. On a machine without CUDA (the campaign's
CPU rehearsal) it records the versions and says why the rest is empty. Written to OUT.json at once.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
from pathlib import Path

NVIDIA_SMI_FIELDS = "name,driver_version,memory.total,clocks.max.sm,clocks.max.mem,power.limit,pstate"
GEMM_N = 8192
COPY_BYTES = 2 << 30  # 2 GiB read + 2 GiB written: far beyond the 60 MB L2


def nvidia_smi() -> dict:
    try:
        done = subprocess.run(["nvidia-smi", f"--query-gpu={NVIDIA_SMI_FIELDS}", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as e:
        return {"error": f"nvidia-smi: {e}"}
    if done.returncode != 0:
        return {"error": f"nvidia-smi exit {done.returncode}: {done.stderr.strip()[:200]}"}
    first = done.stdout.strip().splitlines()[0] if done.stdout.strip() else ""
    return dict(zip(NVIDIA_SMI_FIELDS.split(","), (v.strip() for v in first.split(","))))


def _median_ms(fn, torch, *args) -> float:
    for _ in range(3):
        fn(*args)
    times = []
    for _ in range(10):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        fn(*args)
        end.record()
        end.synchronize()
        times.append(start.elapsed_time(end))
    return statistics.median(times)


def ceilings(torch) -> dict:
    out = {}
    src = torch.randn(COPY_BYTES // 4, device="cuda")
    dst = torch.empty_like(src)
    ms = _median_ms(torch.Tensor.copy_, torch, dst, src)
    out["copy_gb_per_s"] = round(2 * COPY_BYTES / (ms / 1e3) / 1e9, 1)
    src = dst = None  # free 4 GiB before the products
    flops = 2 * GEMM_N**3
    for label, dtype, tf32 in (("fp32", torch.float32, False), ("tf32", torch.float32, True),
                               ("bf16", torch.bfloat16, False)):
        torch.backends.cuda.matmul.allow_tf32 = tf32
        a = torch.randn(GEMM_N, GEMM_N, device="cuda", dtype=dtype)
        b = torch.randn(GEMM_N, GEMM_N, device="cuda", dtype=dtype)
        ms = _median_ms(torch.matmul, torch, a, b)
        out[f"gemm_{label}_tflops"] = round(flops / (ms / 1e3) / 1e12, 1)
    torch.backends.cuda.matmul.allow_tf32 = False
    out["gemm_n"] = GEMM_N
    return out


def main(argv) -> int:
    if len(argv) != 1:
        print("usage: gpu_machine.py OUT.json", file=sys.stderr)
        return 2
    import torch

    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the checkout, as the campaign runs it
    from bench.contract.provenance import git_commit

    facts = {"torch": torch.__version__, "cuda": torch.version.cuda, "python": sys.version.split()[0],
             "cuda_available": torch.cuda.is_available(), "git_commit": git_commit()}
    if torch.cuda.is_available():
        props = torch.cuda.get_device_properties(0)
        facts.update(device=props.name, total_memory_bytes=props.total_memory,
                     multiprocessors=props.multi_processor_count, capability=f"{props.major}.{props.minor}",
                     cudnn=torch.backends.cudnn.version(), nvidia_smi=nvidia_smi())
        Path(argv[0]).write_text(json.dumps(facts, indent=1) + "\n")  # the facts even if a ceiling fails
        facts["ceilings"] = ceilings(torch)
    else:
        facts["ceilings"] = {"skipped": "no CUDA device (a CPU rehearsal)"}
    Path(argv[0]).write_text(json.dumps(facts, indent=1) + "\n")
    print(json.dumps(facts))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
