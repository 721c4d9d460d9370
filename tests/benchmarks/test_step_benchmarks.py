"""One training step per implementation, S = 1 and 10, both nets, as a pytest-benchmark suite.

    pytest tests/benchmarks --benchmark-only --benchmark-json=steps.json
    python run_bench.py check old-steps.json steps.json

The timer is torch.utils.benchmark's synchronized clock, so on cuda every round waits for the GPU
before the clock is read; rounds are whole optimizer steps after explicit warm-up rounds.
"""

import pytest
import torch
from torch.utils.benchmark.utils.timer import timer as synchronized_clock

import bnn_impls as B
from tests.conftest import mnist_dir

IMPLS = ["sequential", "vmap", "vmap_lrt"]


def _step(task, impl, samples, device):
    spec = B.TASK_SPECS[task]
    data = B.load_dataset(task, device, torch.float32, data_dir=mnist_dir() if task == "mnist" else None,
                          allow_download=False)
    model = B.BayesianMLP(spec.sizes, device=device, generator=torch.Generator().manual_seed(0))
    elbo = B.ElboSpec(spec.likelihood, B.default_kl(impl), B.make_prior("gaussian"), data.n_train)
    generator = torch.Generator(device).manual_seed(0)
    step = B.make_train_step(model, B.get_implementation(impl), elbo, B.make_optimizer(model, spec.lr),
                             samples=samples, generator=generator)
    batches = B.endless_batches(data, spec.batch_size, generator)
    return lambda: step(*next(batches))


@pytest.mark.benchmark(group="regression", timer=synchronized_clock, disable_gc=True)
@pytest.mark.parametrize("samples", [1, 10])
@pytest.mark.parametrize("impl", IMPLS)
def test_regression_step(benchmark, bench_device, impl, samples):
    one_step = _step("regression", impl, samples, bench_device)
    result = benchmark.pedantic(one_step, rounds=15, warmup_rounds=3)
    assert torch.isfinite(result.loss)


@pytest.mark.benchmark(group="mnist", timer=synchronized_clock, disable_gc=True)
@pytest.mark.parametrize("samples", [1, 10])
@pytest.mark.parametrize("impl", IMPLS)
def test_mnist_step(benchmark, bench_device, impl, samples):
    if mnist_dir() is None:
        pytest.skip("MNIST not found: set BNN_BENCH_DATA to a folder holding MNIST/raw/")
    one_step = _step("mnist", impl, samples, bench_device)
    result = benchmark.pedantic(one_step, rounds=5 if samples == 10 else 10, warmup_rounds=2)
    assert torch.isfinite(result.loss)
