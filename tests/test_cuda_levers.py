"""Speed levers on a CUDA device (run with `-m gpu`; skipped without one): each runs through measure()
and records its row; a CUDA graph replays real training steps; the memory cap turns into oom rows."""

import math

import pytest
import torch

import bnn_impls as B
from bench.contract.config import BenchConfig
from bench.measure.step import measure
from bench.training.levers import build_train_steps

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.mark.parametrize("levers", [
    dict(step_mode="cudagraphs"), dict(step_mode="compile"), dict(precision="tf32"), dict(precision="bf16"),
    dict(optimizer="adam_fused"), dict(optimizer="adam_loop"), dict(optimizer="adam_foreach"),
])
def test_every_lever_measures_on_cuda(levers):
    row = measure(BenchConfig(impl="vmap_lrt", task="regression", samples=4, device="cuda", steps=5, repeats=2,
                              warmup_steps=2, **levers)).row
    assert row["status"] == "ok" and math.isfinite(row["final_loss"])
    assert all(row[k] == v for k, v in levers.items())
    assert row["achieved_tflops"] > 0
    assert row["flops_per_step"] > 0 and row["graph_bytes"] > 0  # counted on the eager twin


def test_cuda_graph_replays_train_the_model():
    spec = B.TASK_SPECS["regression"]
    data = B.load_dataset("regression", "cuda", torch.float32)
    model = B.BayesianMLP(spec.sizes, device="cuda", generator=torch.Generator().manual_seed(0))
    elbo = B.ElboSpec(spec.likelihood, "closed", B.make_prior("gaussian"), data.n_train)
    gen = torch.Generator("cuda").manual_seed(0)
    steps = build_train_steps(model, B.get_implementation("vmap_lrt"), elbo, lr=1e-2, samples=4, generator=gen,
                              step_mode="cudagraphs", device="cuda")
    x, y = data.x_train[:128], data.y_train[:128]
    first = float(steps.timed(x, y).loss)
    before = [p.detach().clone() for p in model.parameters()]
    losses = [float(steps.timed(x, y).loss) for _ in range(50)]
    assert all(math.isfinite(v) for v in losses)
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))  # replays update parameters
    assert sum(losses[-10:]) / 10 < first  # and they train


def test_memory_limit_on_cuda_makes_direct_mc_an_oom_row(mnist_data_dir):
    from bench.run.worker import run_config

    # MNIST from the fixture: on the H200 (2026-12-04) the default cache was empty and the row was a
    # DataError, not the oom this test is about.
    config = BenchConfig(impl="vmap_lrt", task="mnist", samples=1, device="cuda", kl="mc", n_mc=10_000, steps=1,
                         repeats=1, warmup_steps=0, memory_limit_bytes=2 * 2**30, data_dir=mnist_data_dir)
    try:
        result = run_config(config, measure, isolated=False)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
    assert result.row["status"] == "oom", result.row.get("error")
