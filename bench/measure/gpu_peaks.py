"""Datasheet peaks of known GPUs and the throughput columns measured against them (MFU).

`flops_per_step` counts the matrix products of a step (bench/measure/flops.py), the work a tensor-core
peak is quoted for, so `achieved_tflops = flops_per_step / step_s_median / 1e12` and
`mfu_<precision> = achieved_tflops / peak`. Every peak is the DENSE figure (NVIDIA quotes TF32,
BF16 and FP16 tensor rates "with sparsity", twice the dense rate; the datasheets' footnotes say so,
and the dense value is half the quoted one). Unknown GPUs and CPUs get empty MFU columns: a guessed
peak would be a made-up number.

Sources (NVIDIA product datasheets, as published on nvidia.com):
- H100 SXM5 / PCIe / NVL: "NVIDIA H100 Tensor Core GPU" datasheet (2023/2024): FP32 67 / 51 / 60 TFLOPS;
  TF32 tensor 989 / 756 / 835 (sparse); BF16 tensor 1979 / 1513 / 1671 (sparse).
- H200 SXM / NVL: "NVIDIA H200 Tensor Core GPU" datasheet (2024): FP32 67 / 60; TF32 989 / 835 (sparse);
  BF16 1979 / 1671 (sparse).
- A100 40GB and 80GB, SXM4 and PCIe: "NVIDIA A100 Tensor Core GPU" datasheet (2021): FP32 19.5;
  TF32 156 (dense; 312 sparse); BF16 312 (dense; 624 sparse).
- L4: "NVIDIA L4 Tensor Core GPU" datasheet (2023): FP32 30.3; TF32 120 (sparse); BF16 242 (sparse).
- L40S: "NVIDIA L40S" datasheet (2023): FP32 91.6; TF32 366 (sparse); BF16 733 (sparse).
- L40: "NVIDIA L40" datasheet (2022): FP32 90.5; TF32 181 (sparse); BF16 362 (sparse).
- A10: "NVIDIA A10 Tensor Core GPU" datasheet (2021): FP32 31.2; TF32 125 (sparse); BF16 250 (sparse).
- V100 SXM2 / PCIe: "NVIDIA V100 Tensor Core GPU" datasheet (2020): FP32 15.7 / 14 (no TF32 or BF16).
- T4: "NVIDIA T4" datasheet (2019): FP32 8.1 (no TF32 or BF16).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Optional


@dataclass(frozen=True)
class GpuPeaks:
    name: str
    fp32_tflops: float  # non-tensor FP32 (CUDA cores)
    tf32_tflops: Optional[float]  # dense TF32 tensor; None where the GPU has no TF32
    bf16_tflops: Optional[float]  # dense BF16 tensor; None where the GPU has no BF16
    source: str


def _dense(sparse: float) -> float:
    return sparse / 2


_H100 = "NVIDIA H100 Tensor Core GPU datasheet"
_H200 = "NVIDIA H200 Tensor Core GPU datasheet"
_A100 = "NVIDIA A100 Tensor Core GPU datasheet"

#: (pattern searched in torch.cuda.get_device_name(), peaks). First match wins, so the more specific
#: names come first ("H100 PCIe" before "H100"; "L40S" before "L40" before "L4"; "A100" is not "A10").
KNOWN_GPUS: tuple[tuple[str, GpuPeaks], ...] = (
    (r"H100.*PCIe", GpuPeaks("H100 PCIe", 51.0, _dense(756), _dense(1513), _H100)),
    (r"H100.*NVL", GpuPeaks("H100 NVL", 60.0, _dense(835), _dense(1671), _H100)),
    (r"H100", GpuPeaks("H100 SXM5", 67.0, _dense(989), _dense(1979), _H100)),  # "NVIDIA H100 80GB HBM3"
    (r"H200.*NVL", GpuPeaks("H200 NVL", 60.0, _dense(835), _dense(1671), _H200)),
    (r"H200", GpuPeaks("H200 SXM", 67.0, _dense(989), _dense(1979), _H200)),
    (r"A100", GpuPeaks("A100", 19.5, 156.0, 312.0, _A100)),  # same rates for 40/80 GB, SXM4/PCIe
    (r"L40S", GpuPeaks("L40S", 91.6, _dense(366), _dense(733), "NVIDIA L40S datasheet")),
    (r"L40\b", GpuPeaks("L40", 90.5, _dense(181), _dense(362), "NVIDIA L40 datasheet")),
    (r"\bL4\b", GpuPeaks("L4", 30.3, _dense(120), _dense(242), "NVIDIA L4 Tensor Core GPU datasheet")),
    (r"\bA10\b", GpuPeaks("A10", 31.2, _dense(125), _dense(250), "NVIDIA A10 Tensor Core GPU datasheet")),
    (r"V100.*PCIE", GpuPeaks("V100 PCIe", 14.0, None, None, "NVIDIA V100 Tensor Core GPU datasheet")),
    (r"V100", GpuPeaks("V100 SXM2", 15.7, None, None, "NVIDIA V100 Tensor Core GPU datasheet")),
    (r"\bT4\b", GpuPeaks("T4", 8.1, None, None, "NVIDIA T4 datasheet")),
)


def lookup_gpu(device_name: Optional[str]) -> Optional[GpuPeaks]:
    """Peaks of a GPU by its torch device name; None for a CPU or a GPU not in the table."""
    if not device_name:
        return None
    for pattern, peaks in KNOWN_GPUS:
        if re.search(pattern, device_name, flags=re.IGNORECASE):
            return peaks
    return None


def _positive(value) -> Optional[float]:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if value > 0 else None


def throughput_columns(flops_per_step, step_s_median, device: str, device_name: Optional[str]) -> dict:
    """`achieved_tflops` wherever FLOPs and a time exist; `mfu_*` only on a CUDA device in the table."""
    flops, seconds = _positive(flops_per_step), _positive(step_s_median)
    if flops is None or seconds is None:
        return {}
    achieved = flops / seconds / 1e12
    row = {"achieved_tflops": achieved}
    peaks = lookup_gpu(device_name) if str(device).startswith("cuda") else None
    if peaks is not None:
        for column, peak in (("mfu_fp32", peaks.fp32_tflops), ("mfu_tf32", peaks.tf32_tflops),
                             ("mfu_bf16", peaks.bf16_tflops)):
            if peak:
                row[column] = achieved / peak
    return row
