import os

import pytest
import torch


def pytest_addoption(parser):
    parser.addoption("--bench-device", default=os.environ.get("BNN_BENCH_DEVICE", "cpu"),
                     help="torch device for the step benchmarks (cpu, cuda, cuda:N)")
    parser.addoption("--bench-threads", type=int, default=2, help="torch.set_num_threads for CPU benchmarks")


@pytest.fixture(scope="session")
def bench_device(request):
    device = request.config.getoption("--bench-device")
    if device.startswith("cuda") and not torch.cuda.is_available():
        pytest.skip("--bench-device cuda asked for, but torch sees no CUDA device")
    torch.set_num_threads(request.config.getoption("--bench-threads"))
    return device
