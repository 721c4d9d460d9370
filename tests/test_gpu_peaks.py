"""MFU columns: known GPUs by name, dense peaks, empty for CPUs and unknown GPUs."""

import pytest

from bench.measure.gpu_peaks import lookup_gpu, throughput_columns


@pytest.mark.parametrize("name,expected", [
    ("NVIDIA H100 80GB HBM3", "H100 SXM5"),
    ("NVIDIA H100 PCIe", "H100 PCIe"),
    ("NVIDIA H100 NVL", "H100 NVL"),
    ("NVIDIA H200", "H200 SXM"),
    ("NVIDIA A100-SXM4-80GB", "A100"),
    ("NVIDIA A100-PCIE-40GB", "A100"),
    ("NVIDIA A10", "A10"),
    ("NVIDIA L4", "L4"),
    ("NVIDIA L40S", "L40S"),
    ("Tesla T4", "T4"),
    ("Tesla V100-SXM2-16GB", "V100 SXM2"),
])
def test_device_names_map_to_the_right_datasheet(name, expected):
    assert lookup_gpu(name).name == expected


def test_unknown_gpus_and_cpus_have_no_peaks():
    assert lookup_gpu("NVIDIA GeForce GTX 1080") is None
    assert lookup_gpu("AMD EPYC 7B13") is None
    assert lookup_gpu(None) is None


def test_mfu_on_an_h100_against_dense_peaks():
    # 10.6 GFLOP in 0.5 ms = 21.2 TFLOP/s; H100 SXM dense: FP32 67, TF32 494.5, BF16 989.5.
    row = throughput_columns(10.6e9, 0.5e-3, "cuda", "NVIDIA H100 80GB HBM3")
    assert row["achieved_tflops"] == pytest.approx(21.2)
    assert row["mfu_fp32"] == pytest.approx(21.2 / 67)
    assert row["mfu_tf32"] == pytest.approx(21.2 / 494.5)
    assert row["mfu_bf16"] == pytest.approx(21.2 / 989.5)


def test_mfu_is_empty_on_cpu_and_unknown_gpus_but_tflops_is_kept():
    assert set(throughput_columns(1e9, 1e-2, "cpu", "NVIDIA H100 80GB HBM3")) == {"achieved_tflops"}
    assert set(throughput_columns(1e9, 1e-2, "cuda", "Some Future GPU")) == {"achieved_tflops"}
    row = throughput_columns(1e9, 1e-2, "cuda", "Tesla T4")
    assert "mfu_fp32" in row and "mfu_tf32" not in row  # T4 has no TF32


@pytest.mark.parametrize("flops,seconds", [(None, 1.0), ("", 1.0), (1e9, None), (1e9, 0.0), (0, 1.0)])
def test_missing_flops_or_time_gives_no_columns(flops, seconds):
    assert throughput_columns(flops, seconds, "cuda", "NVIDIA A100-SXM4-80GB") == {}
