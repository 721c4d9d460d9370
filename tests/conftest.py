import os
from pathlib import Path

import pytest

SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"


def mnist_dir():
    """The shared MNIST copy (or BNN_BENCH_DATA); None when neither holds the files."""
    from bnn_impls.mnist import locate

    for candidate in (os.environ.get("BNN_BENCH_DATA"), str(SHARED_MNIST)):
        if candidate and locate(candidate) is not None:
            return candidate
    return None


@pytest.fixture
def mnist_data_dir():
    d = mnist_dir()
    if d is None:
        pytest.skip(f"MNIST not found in {SHARED_MNIST} or $BNN_BENCH_DATA")
    return d
