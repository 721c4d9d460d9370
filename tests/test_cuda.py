"""The equivalences of the CPU suite, on a CUDA device (run with `-m gpu`; skipped without one)."""

import pytest
import torch

import bnn_impls as B

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


def test_sequential_and_vmap_agree_on_cuda_in_float64():
    model = B.BayesianMLP((20, 64, 64, 5), device="cuda", dtype=torch.float64,
                          generator=torch.Generator().manual_seed(0))
    spec = B.ElboSpec(B.CategoricalLikelihood(), "sample", B.make_prior("gaussian"), n_train=1000)
    gen = torch.Generator("cuda").manual_seed(1)
    x = torch.randn(32, 20, device="cuda", dtype=torch.float64, generator=gen)
    y = torch.randint(0, 5, (32,), device="cuda", generator=gen)
    noise = model.draw_weight_noise(4, gen)
    results = []
    for name in ("sequential", "vmap"):
        model.zero_grad(set_to_none=True)
        terms = B.get_implementation(name).loss(model, x, y, samples=4, spec=spec, noise=noise)
        terms.loss.backward()
        results.append((terms.loss.detach(), [p.grad.clone() for p in model.parameters()]))
    torch.testing.assert_close(results[0][0], results[1][0], rtol=1e-5, atol=1e-5)
    for a, b in zip(results[0][1], results[1][1]):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-5)


def test_lrt_matches_weight_sampling_moments_on_cuda():
    model = B.BayesianMLP((3, 6, 2), device="cuda", dtype=torch.float64, generator=torch.Generator().manual_seed(0),
                          init=B.PosteriorInit(rho_low=-1.5, rho_high=-0.5))
    x = torch.tensor([[0.7, -1.2, 0.4]], device="cuda", dtype=torch.float64)
    n = 50_000
    with torch.no_grad():
        lrt = B.get_implementation("vmap_lrt").predict(model, x, samples=n,
                                                       generator=torch.Generator("cuda").manual_seed(1))[:, 0]
        ws = B.get_implementation("vmap").predict(model, x, samples=n,
                                                  generator=torch.Generator("cuda").manual_seed(2))[:, 0]
    se = (lrt.var(0) / n + ws.var(0) / n).sqrt()
    assert torch.all((lrt.mean(0) - ws.mean(0)).abs() < 4 * se)
    torch.testing.assert_close(lrt.var(0), ws.var(0), rtol=0.04, atol=0)


def test_repar_equals_mc_on_cuda():
    model = B.BayesianMLP((10, 30, 3), device="cuda", dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    prior = B.GaussianPrior(0.5)
    values = []
    for fn in (B.mc_kl, B.repar_kl):
        model.zero_grad(set_to_none=True)
        kl = fn(model, prior, 20, torch.Generator("cuda").manual_seed(3))
        kl.backward()
        values.append((kl.detach(), [p.grad.clone() for p in model.parameters()]))
    torch.testing.assert_close(values[0][0], values[1][0])
    for a, b in zip(values[0][1], values[1][1]):
        torch.testing.assert_close(a, b)


def test_training_step_runs_without_host_copies_on_cuda():
    spec = B.TASK_SPECS["regression"]
    data = B.load_dataset("regression", "cuda", torch.float32)
    model = B.BayesianMLP(spec.sizes, device="cuda", generator=torch.Generator().manual_seed(0))
    elbo = B.ElboSpec(spec.likelihood, "closed", B.make_prior("gaussian"), data.n_train)
    gen = torch.Generator("cuda").manual_seed(0)
    step = B.make_train_step(model, B.get_implementation("vmap_lrt"), elbo, B.make_optimizer(model, 1e-3),
                             samples=10, generator=gen)
    batches = B.endless_batches(data, 128, gen)
    step(*next(batches))
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")  # any implicit device->host sync now raises
    try:
        for _ in range(3):
            step(*next(batches))
    finally:
        torch.cuda.set_sync_debug_mode("default")
