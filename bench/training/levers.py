"""Speed levers as recorded config axes: how the training step is run, in which precision, with which Adam.

Each lever is a field of `BenchConfig` (so it is hashed into the run_id and written to runs.csv) and
its default reproduces the plain eager fp32 step with `torch.optim.Adam`'s own choice of kernel:

- `step_mode`: `eager`; `compile` (`torch.compile` of the loss, i.e. forward and, through
  AOTAutograd, backward; the optimizer step stays eager); `cudagraphs` (the whole step, forward,
  backward and Adam, captured once in a CUDA graph and replayed; CUDA only).
- `precision`: `fp32`; `tf32` (float32 matmuls on TF32 tensor cores; CUDA only, since the CPU has
  no such mode to switch); `bf16` (`torch.autocast` to bfloat16 around the loss; backward follows
  the forward's dtypes, parameters and Adam stay float32); `bf16_var` (`vmap_lrt` only: the
  variance path x^2 against sigma^2 in bfloat16, the mean path and everything else float32; CPUs
  with AVX-512-BF16 or AMX run bfloat16 matmuls at up to twice the float32 rate).
- `optimizer`: `adam` (torch's default: foreach on CUDA, a loop over tensors on the CPU),
  `adam_loop` (foreach=False), `adam_foreach` (foreach=True), `adam_fused` (fused=True).

A bad combination is a `BnnConfigError` with one line naming the fix, raised by `check_levers`
before anything is built (the sweep calls it for every config before the first process starts).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable, Optional

import torch

from bnn_impls.names import BnnConfigError
from bnn_impls.objective import LossTerms
from bnn_impls.train_step import make_optimizer, make_train_step

STEP_MODES = ("eager", "compile", "cudagraphs")
PRECISIONS = ("fp32", "tf32", "bf16", "bf16_var")
#: The implementations whose layers have a variance path for `bf16_var` to lower.
VARIANCE_PATH_IMPLS = ("vmap_lrt",)
OPTIMIZERS = ("adam", "adam_loop", "adam_foreach", "adam_fused")

DEFAULT_STEP_MODE, DEFAULT_PRECISION, DEFAULT_OPTIMIZER = "eager", "fp32", "adam"

#: Eager steps run on a side stream before a CUDA graph is captured (PyTorch's capture recipe:
#: lazy state such as Adam's moments and cuBLAS workspaces must exist before capture).
CAPTURE_WARMUP_STEPS = 3


def _is_cuda(device: str) -> bool:
    return str(device).startswith("cuda")


def check_levers(step_mode: str, precision: str, optimizer: str, device: str, *, dtype: str = "float32",
                 warmup_steps: int = 1) -> None:
    """Raise BnnConfigError (one line, naming the fix) for an unknown lever or a combination that cannot run."""
    for value, known, flag in ((step_mode, STEP_MODES, "--step-mode"), (precision, PRECISIONS, "--precision"),
                               (optimizer, OPTIMIZERS, "--optimizer")):
        if value not in known:
            raise BnnConfigError(f"unknown {flag} {value!r}: choose one of {', '.join(known)}")
    if step_mode == "cudagraphs" and not _is_cuda(device):
        raise BnnConfigError(f"--step-mode cudagraphs needs a CUDA device, not {device!r}: use --device cuda "
                             "or --step-mode eager/compile")
    if precision == "tf32" and not _is_cuda(device):
        raise BnnConfigError(f"--precision tf32 needs a CUDA device (the CPU has no TF32 matmul mode), not "
                             f"{device!r}: use --precision fp32 or bf16")
    if precision != "fp32" and dtype != "float32":
        raise BnnConfigError(f"--precision {precision} applies to float32 models, not --dtype {dtype}: "
                             "use --dtype float32")
    if step_mode != "eager" and warmup_steps < 1:
        raise BnnConfigError(f"--step-mode {step_mode} needs --warmup >= 1, or compilation/capture is timed")


def check_config_levers(config) -> None:
    check_levers(config.step_mode, config.precision, config.optimizer, config.device, dtype=config.dtype,
                 warmup_steps=config.warmup_steps)
    if config.precision == "bf16_var" and config.impl not in VARIANCE_PATH_IMPLS:
        raise BnnConfigError(f"--precision bf16_var lowers the local reparameterization's variance path, which "
                             f"{config.impl} does not have: use it with {', '.join(VARIANCE_PATH_IMPLS)}, or "
                             "--precision bf16 (autocast of the whole forward)")


# ---------------------------------------------------------------------------------------------
# Optimizer


def build_optimizer(model, lr: float, optimizer: str, *, capturable: bool = False) -> torch.optim.Optimizer:
    if optimizer == "adam" and not capturable:
        return make_optimizer(model, lr)  # exactly the harness's historical optimizer
    options = {"adam": {}, "adam_loop": {"foreach": False}, "adam_foreach": {"foreach": True},
               "adam_fused": {"fused": True}}[optimizer]
    if capturable:
        options["capturable"] = True  # a CUDA graph replays Adam's step counter on the device
    return torch.optim.Adam(model.parameters(), lr=lr, **options)


# ---------------------------------------------------------------------------------------------
# Precision


@contextlib.contextmanager
def tf32_matmuls():
    """TF32 for float32 matmuls and convolutions for the duration (restored after: the inline
    executor runs many configs in one process)."""
    matmul, cudnn = torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32
    torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
    try:
        yield
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = matmul, cudnn


def step_context(precision: str) -> Callable[[], contextlib.AbstractContextManager]:
    """Around the whole step (TF32 must cover the backward's matmuls too)."""
    return tf32_matmuls if precision == "tf32" else contextlib.nullcontext


def forward_context(precision: str, device: str) -> Callable[[], contextlib.AbstractContextManager]:
    """Around the loss only: autocast is meant for the forward; backward runs in the forward's dtypes."""
    if precision == "bf16":
        device_type = torch.device(device).type
        return lambda: torch.autocast(device_type=device_type, dtype=torch.bfloat16)
    if precision == "bf16_var":
        from bnn_impls.vmap_lrt import variance_dtype

        return lambda: variance_dtype(torch.bfloat16)
    return contextlib.nullcontext


# ---------------------------------------------------------------------------------------------
# The step


@dataclass(frozen=True)
class LeverSteps:
    """`timed`: the step the harness times. `eager`: the same step (same model, optimizer and
    precision) without compilation or graph replay, for the instrumented steps (saved-tensor bytes,
    FLOPs), which must see every operator."""

    timed: Callable[[torch.Tensor, torch.Tensor], LossTerms]
    eager: Callable[[torch.Tensor, torch.Tensor], LossTerms]
    optimizer: Optional[torch.optim.Optimizer] = None  # the one both steps update


def _wrapped(step, context):
    if context is contextlib.nullcontext:
        return step

    def run(x, y):
        with context():
            return step(x, y)

    return run


def build_train_steps(model, impl, spec, *, lr: float, samples: int, generator: torch.Generator,
                      step_mode: str = DEFAULT_STEP_MODE, precision: str = DEFAULT_PRECISION,
                      optimizer: str = DEFAULT_OPTIMIZER, device: str = "cpu") -> LeverSteps:
    check_levers(step_mode, precision, optimizer, device)
    opt = build_optimizer(model, lr, optimizer, capturable=step_mode == "cudagraphs")
    fwd = forward_context(precision, device)
    whole = step_context(precision)

    def loss_fn(x, y):
        return impl.loss(model, x, y, samples=samples, spec=spec, generator=generator)

    eager = make_train_step(model, impl, spec, opt, samples=samples, generator=generator,
                            loss_fn=loss_fn, forward_context=fwd)
    if step_mode == "eager":
        timed = eager
    elif step_mode == "compile":
        timed = make_train_step(model, impl, spec, opt, samples=samples, generator=generator,
                                loss_fn=compiled_loss(model, impl, spec, samples, generator), forward_context=fwd)
    else:
        timed = CudaGraphStep(eager, loss_fn, opt, generator, fwd)
    return LeverSteps(timed=_wrapped(timed, whole), eager=_wrapped(eager, whole), optimizer=opt)


def compiled_loss(model, impl, spec, samples: int, generator: torch.Generator):
    """`torch.compile` of the loss. A seeded draw cannot be traced: each is a graph break, and the
    backward is then compiled in pieces (`vmap_lrt` MNIST: four graphs, one per side of its three
    noise draws). Where the implementation can draw a step's noise up front (`draw_step_noise`, in
    the order its loss would), the noise is drawn eagerly and passed in, so the loss is one graph and
    the run consumes the generator exactly as eager does. Otherwise (sequential's loop, peers) the
    loss is compiled as it is."""
    draw = getattr(impl, "draw_step_noise", None)

    def with_noise(x, y, noise):
        return impl.loss(model, x, y, samples=samples, spec=spec, generator=generator, noise=noise)

    def drawing(x, y):
        return impl.loss(model, x, y, samples=samples, spec=spec, generator=generator)

    compiled_with_noise, compiled_drawing = torch.compile(with_noise), torch.compile(drawing)  # both lazy

    def loss(x, y):
        noise = None if draw is None else draw(model, samples, x, generator)
        return compiled_drawing(x, y) if noise is None else compiled_with_noise(x, y, noise)

    return loss


class CudaGraphStep:
    """The whole step captured once as a CUDA graph, then replayed (PyTorch's whole-network capture).

    Inputs are copied into static buffers before each replay; the returned loss terms are the
    graph's static outputs (read them before the next call). A batch of another shape (an epoch's
    last, partial batch) runs the eager step: shapes are baked into a graph.
    """

    def __init__(self, eager, loss_fn, optimizer, generator: torch.Generator, forward_ctx):
        self.eager = eager
        self.loss_fn = loss_fn
        self.optimizer = optimizer
        self.generator = generator
        self.forward_ctx = forward_ctx
        self.graph = None

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> LossTerms:
        if self.graph is None:
            self._capture(x, y)
        if x.shape != self.static_x.shape or y.shape != self.static_y.shape:
            return self.eager(x, y)
        self.static_x.copy_(x)
        self.static_y.copy_(y)
        self.graph.replay()
        return self.static_terms

    def _capture(self, x: torch.Tensor, y: torch.Tensor) -> None:
        self.static_x, self.static_y = x.clone(), y.clone()
        side = torch.cuda.Stream()
        side.wait_stream(torch.cuda.current_stream())
        with torch.cuda.stream(side):
            for _ in range(CAPTURE_WARMUP_STEPS):
                self.eager(self.static_x, self.static_y)
        torch.cuda.current_stream().wait_stream(side)
        graph = torch.cuda.CUDAGraph()
        default = torch.cuda.default_generators[self.static_x.device.index or 0]
        if self.generator is not None and self.generator is not default:
            if not hasattr(graph, "register_generator_state"):
                raise BnnConfigError("--step-mode cudagraphs needs torch >= 2.5 (CUDAGraph.register_generator_state) "
                                     "for the step's own generator: upgrade torch or use --step-mode eager")
            graph.register_generator_state(self.generator)
        # Gradients must be allocated inside the capture, from the graph's pool; backward then
        # overwrites (not accumulates into) them on every replay.
        self.optimizer.zero_grad(set_to_none=True)
        with torch.cuda.graph(graph):
            with self.forward_ctx():
                terms = self.loss_fn(self.static_x, self.static_y)
            terms.loss.backward()
            self.optimizer.step()
        self.static_terms = terms.detach()
        self.graph = graph
