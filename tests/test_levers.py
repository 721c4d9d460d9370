"""Speed levers (bench/training/levers.py): each runs on the CPU or fails with one line naming the fix."""

import pytest
import torch

import bnn_impls as B
from bench.cli.cmd_sweep import grid_from_args
from bench.cli.main import build_parser
from bench.contract.config import BenchConfig
from bench.measure.step import measure
from bench.training.levers import build_optimizer, build_train_steps, check_levers


def _setup(seed=0):
    spec = B.TASK_SPECS["regression"]
    model = B.BayesianMLP((1, 16, 16, 1), generator=torch.Generator().manual_seed(seed))
    elbo = B.ElboSpec(spec.likelihood, "closed", B.make_prior("gaussian"), 1024)
    x = torch.randn(32, 1, generator=torch.Generator().manual_seed(1))
    y = torch.randn(32, 1, generator=torch.Generator().manual_seed(2))
    return model, elbo, x, y


@pytest.mark.parametrize("kwargs,match", [
    (dict(step_mode="cudagraphs"), "cudagraphs needs a CUDA device"),
    (dict(precision="tf32"), "tf32 needs a CUDA device"),
    (dict(step_mode="jit"), "unknown --step-mode 'jit'"),
    (dict(optimizer="sgd"), "unknown --optimizer 'sgd'"),
    (dict(precision="fp8"), "unknown --precision 'fp8'"),
])
def test_levers_that_cannot_run_on_cpu_fail_with_one_line(kwargs, match):
    args = dict(step_mode="eager", precision="fp32", optimizer="adam", device="cpu")
    args.update(kwargs)
    with pytest.raises(B.BnnConfigError, match=match) as info:
        check_levers(**args)
    assert "\n" not in str(info.value)


def test_compile_needs_a_warmup_step_and_precision_needs_float32():
    with pytest.raises(B.BnnConfigError, match="--warmup >= 1"):
        check_levers("compile", "fp32", "adam", "cpu", warmup_steps=0)
    with pytest.raises(B.BnnConfigError, match="--dtype float32"):
        check_levers("eager", "bf16", "adam", "cpu", dtype="float64")


@pytest.mark.parametrize("name,foreach,fused", [
    ("adam", None, None), ("adam_loop", False, None), ("adam_foreach", True, None), ("adam_fused", None, True),
])
def test_optimizer_lever_selects_the_adam_kernel(name, foreach, fused):
    model, *_ = _setup()
    opt = build_optimizer(model, 1e-3, name)
    assert isinstance(opt, torch.optim.Adam)
    assert opt.defaults["foreach"] is foreach
    assert opt.defaults["fused"] is fused
    assert build_optimizer(model, 1e-3, name, capturable=True).defaults["capturable"] is True


@pytest.mark.parametrize("optimizer", ["adam_loop", "adam_foreach", "adam_fused"])
def test_adam_kernels_take_the_same_step(optimizer):
    """Same draws, same gradients: every Adam kernel must land on the same parameters (to rounding)."""
    results = []
    for name in ("adam", optimizer):
        model, elbo, x, y = _setup()
        steps = build_train_steps(model, B.get_implementation("vmap_lrt"), elbo, lr=1e-2, samples=2,
                                  generator=torch.Generator().manual_seed(3), optimizer=name)
        for _ in range(3):
            steps.timed(x, y)
        results.append([p.detach().clone() for p in model.parameters()])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_bf16_autocast_runs_the_forward_in_bfloat16_on_cpu():
    model, elbo, x, y = _setup()
    steps = build_train_steps(model, B.get_implementation("vmap"), elbo, lr=1e-3, samples=2,
                              generator=torch.Generator().manual_seed(0), precision="bf16")
    saved = []
    with torch.autograd.graph.saved_tensors_hooks(lambda t: saved.append(t.dtype) or t, lambda t: t):
        terms = steps.timed(x, y)
    assert torch.isfinite(terms.loss)
    assert torch.bfloat16 in saved  # the forward's matmuls ran in bfloat16 and saved bf16 activations
    assert all(p.dtype == torch.float32 for p in model.parameters())  # master weights and Adam stay fp32
    assert all(p.grad.dtype == torch.float32 for p in model.parameters())


def test_bf16_changes_the_saved_graph_and_the_loss_only_slightly():
    out = {}
    for precision in ("fp32", "bf16"):
        row = measure(BenchConfig(impl="vmap_lrt", task="regression", samples=4, steps=1, repeats=1, warmup_steps=1,
                                  precision=precision)).row
        out[precision] = row
        assert row["precision"] == precision and row["status"] == "ok"
    assert out["bf16"]["graph_bytes"] < out["fp32"]["graph_bytes"]  # bf16 activations saved for backward
    assert out["bf16"]["run_id"] != out["fp32"]["run_id"]


def test_default_levers_keep_the_run_id_of_earlier_releases():
    config = BenchConfig(impl="vmap", task="mnist", samples=2)
    assert config.run_id == BenchConfig(impl="vmap", task="mnist", samples=2, step_mode="eager", precision="fp32",
                                        optimizer="adam").run_id
    assert config.run_id != config.replace(optimizer="adam_fused").run_id


@pytest.mark.slow  # compiling takes about a minute on 2 CPU cores
def test_compile_step_matches_eager_on_cpu():
    """torch.compile of the loss either works here and gives eager's loss, or the test says why it cannot."""
    losses = {}
    for mode in ("eager", "compile"):
        model, elbo, x, y = _setup()
        steps = build_train_steps(model, B.get_implementation("vmap_lrt"), elbo, lr=1e-3, samples=2,
                                  generator=torch.Generator().manual_seed(5), step_mode=mode)
        try:
            losses[mode] = float(steps.timed(x, y).loss)
        except Exception as e:  # no C++ compiler for inductor, say: a clear failure, not a silent fallback
            pytest.skip(f"torch.compile cannot run here: {type(e).__name__}: {str(e).splitlines()[0]}")
    assert losses["compile"] == pytest.approx(losses["eager"], rel=1e-4)


def test_sweep_flags_reach_every_config_and_bad_levers_fail_before_running():
    parser = build_parser()
    args = parser.parse_args(["sweep", "--profile", "paper", "--task", "regression", "--impl", "vmap",
                              "--samples", "1,2", "--device", "cpu", "--precision", "bf16", "--optimizer", "adam_fused",
                              "--steps", "1"])
    configs = grid_from_args(args)
    assert {(c.precision, c.optimizer, c.step_mode) for c in configs} == {("bf16", "adam_fused", "eager")}
    args = parser.parse_args(["sweep", "--profile", "paper", "--task", "regression", "--device", "cpu",
                              "--step-mode", "cudagraphs"])
    with pytest.raises(B.BnnConfigError, match="needs a CUDA device"):
        grid_from_args(args)


def _drawing_up_front():
    """Our implementations that define draw_step_noise (a new one is covered without editing this)."""
    from bnn_impls.objective import ElboImplementation

    return [name for name in B.IMPLEMENTATIONS
            if type(B.get_implementation(name)).draw_step_noise is not ElboImplementation.draw_step_noise]


def test_the_vectorized_implementations_draw_up_front():
    assert {"vmap", "vmap_lrt", "vmap_flipout"} <= set(_drawing_up_front())


@pytest.mark.parametrize("impl_name", _drawing_up_front())
def test_draw_step_noise_makes_the_losss_own_draws(impl_name):
    """The compile lever draws a step's noise outside the compiled loss: that must be the very draws
    (and generator state) the loss would have made itself, or compiling would change the run."""
    model, elbo, x, y = _setup()
    impl = B.get_implementation(impl_name)
    own_gen, outside_gen = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    own = impl.loss(model, x, y, samples=3, spec=elbo, generator=own_gen).loss
    noise = impl.draw_step_noise(model, 3, x, outside_gen)
    outside = impl.loss(model, x, y, samples=3, spec=elbo, generator=outside_gen, noise=noise).loss
    assert torch.equal(own, outside)
    assert torch.equal(own_gen.get_state(), outside_gen.get_state())
    other = impl.loss(model, x, y, samples=3, spec=elbo, noise=impl.draw_step_noise(model, 3, x, own_gen)).loss
    assert not torch.equal(own, other)  # the next draws differ: the comparison can fail


def test_sequential_draws_inside_its_loop_so_compile_keeps_its_draws():
    model, elbo, x, _ = _setup()
    assert B.get_implementation("sequential").draw_step_noise(model, 2, x, torch.Generator()) is None


@pytest.mark.slow  # dynamo traces the loss: about half a minute on 2 CPU cores
def test_the_compiled_vmap_lrt_loss_is_one_graph_with_its_noise_drawn_outside():
    model, elbo, x, y = _setup()
    impl = B.get_implementation("vmap_lrt")
    generator = torch.Generator().manual_seed(0)
    noise = impl.draw_step_noise(model, 2, x, generator)

    def with_noise(x, y, noise):
        return impl.loss(model, x, y, samples=2, spec=elbo, generator=generator, noise=noise).loss

    def drawing(x, y):
        return impl.loss(model, x, y, samples=2, spec=elbo, generator=generator).loss

    with_noise(x, y, noise), drawing(x, y)  # the skeleton is built and cached outside the trace
    assert torch._dynamo.explain(with_noise)(x, y, noise).graph_break_count == 0
    assert torch._dynamo.explain(drawing)(x, y).graph_break_count > 0  # what the lever avoids


@pytest.mark.slow  # compiles two losses: about a minute on 2 CPU cores
def test_compile_noise_script_prints_each_step_against_eager(capsys):
    import importlib.util
    import re
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "compile_noise.py"
    spec = importlib.util.spec_from_file_location("compile_noise", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()
    try:
        assert module.main(["--samples", "1", "--batch", "4", "--rounds", "2", "--steps", "1"]) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    for name in ("eager", "compile, draws inside", "compile, noise passed in"):
        assert f"| {name} |" in out
    assert re.search(r"passed in / draws inside, same round: \d\.\d{3} \[\d\.\d{3}, \d\.\d{3}\]", out)


def _noise_streams_script():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "noise_streams.py"
    spec = importlib.util.spec_from_file_location("noise_streams", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_noise_from_two_streams_is_each_generators_own_draw_in_its_slice():
    from concurrent.futures import ThreadPoolExecutor

    module = _noise_streams_script()
    out = torch.empty(3, 5, 7)  # 105 values: slices of 52 and 53
    with ThreadPoolExecutor(2) as pool:
        module.parallel_normal_(out, [torch.Generator().manual_seed(1), torch.Generator().manual_seed(2)], pool)
    flat = out.view(-1)
    assert torch.equal(flat[:52], torch.empty(52).normal_(generator=torch.Generator().manual_seed(1)))
    assert torch.equal(flat[52:], torch.empty(53).normal_(generator=torch.Generator().manual_seed(2)))


@pytest.mark.slow  # compiles two losses: about a minute on 2 CPU cores
def test_noise_streams_script_prints_draws_and_steps_two_streams_against_one(capsys):
    import re

    threads = torch.get_num_threads()
    try:
        assert _noise_streams_script().main(["--samples", "1", "--batch", "4", "--rounds", "2", "--steps", "1"]) == 0
    finally:
        torch.set_num_threads(threads)
    out = capsys.readouterr().out
    # A ratio and its interval over the rounds, whatever their size: at these tiny shapes the two-stream
    # draw is 5-16x slower (e.g. 11.664 [2.159, 21.170]), and 2 rounds make wide intervals.
    number = r"-?\d+\.\d{3}"
    for what in ("draws", "eager step", "compile step", "vmap_lrt"):  # vmap_lrt: the in-graph RNG's row
        assert re.search(rf"\| {what} \| [\d.]+ \| [\d.]+ \| {number} \[{number}, {number}\] \|", out), what


@pytest.mark.parametrize("impl_name", ["vmap_lrt", "vmap_flipout"])
def test_a_compiled_loss_does_not_depend_on_which_other_models_exist(impl_name):
    """The swapped-skeleton cache was a module-level weak dictionary keyed by models, and torch.compile
    guarded the lookup by the key's position in it: another model collected shifted the positions,
    so the compiled loss recompiled, or (a model collected while a second one's loss compiled, met when
    profiling one compiled lever after another in one process) dynamo failed with an IndexError."""
    import gc

    impl = B.get_implementation(impl_name)
    compiles = []

    def counting_backend(graph_module, example_inputs):
        compiles.append(graph_module)
        return graph_module.forward

    torch._dynamo.reset()
    try:
        other, elbo, x, y = _setup(seed=0)
        impl.loss(other, x, y, samples=2, spec=elbo)  # another model, with its skeleton cached
        model, elbo, x, y = _setup(seed=1)
        noise = impl.draw_step_noise(model, 2, x, torch.Generator().manual_seed(3))
        loss = torch.compile(lambda x, y, noise: impl.loss(model, x, y, samples=2, spec=elbo, noise=noise).loss,
                             backend=counting_backend)
        first = loss(x, y, noise)
        del other
        gc.collect()
        assert torch.equal(loss(x, y, noise), first)
        assert len(compiles) == 1  # the same guards still hold: no recompilation
        assert torch.equal(first, impl.loss(model, x, y, samples=2, spec=elbo, noise=noise).loss)
    finally:
        torch._dynamo.reset()
