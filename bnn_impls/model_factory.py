"""The deterministic module of a task, or of a user's factory (`--model package.module:factory`),
made Bayesian: what `bench.measure.step` trains."""

from __future__ import annotations

import importlib
from typing import Callable, Optional

import torch
from torch import nn

from bnn_impls import architectures
from bnn_impls.bayesify import BAYESIAN_LAYER_TYPES, DEFAULT_INIT, BayesianModel, bayesify
from bnn_impls.mlp import BayesianMLP
from bnn_impls.names import BnnConfigError
from bnn_impls.tasks import TaskSpec

FACTORY_EXAMPLE = "bnn_impls.architectures:resnet18"


def resolve_factory(spec: str) -> Callable[[], nn.Module]:
    """`"package.module:factory"` -> the callable; BnnConfigError (one line) when it cannot be."""
    module_name, sep, attr = (spec or "").partition(":")
    if not sep or not module_name or not attr:
        raise BnnConfigError(f"--model {spec!r} is malformed: write package.module:factory, e.g. {FACTORY_EXAMPLE}")
    try:
        module = importlib.import_module(module_name)
    except Exception as e:  # ImportError, or the user's module failing at import
        text = " ".join(str(e).split())
        raise BnnConfigError(f"--model {spec!r}: cannot import {module_name!r} ({type(e).__name__}: {text}): "
                             "put its package on PYTHONPATH or fix the name") from None
    factory = getattr(module, attr, None)
    if not callable(factory):
        raise BnnConfigError(f"--model {spec!r}: {module_name} has no callable {attr!r}: name a function that "
                             "returns an nn.Module")
    return factory


def build_module(task: TaskSpec, model_spec: Optional[str] = None) -> nn.Module:
    """The task's own network, or the factory's (called without arguments)."""
    if model_spec is None:
        if task.architecture is None:
            from bnn_impls.mlp import mlp

            return mlp(task.sizes)
        return getattr(architectures, task.architecture)()
    module = resolve_factory(model_spec)()
    if not isinstance(module, nn.Module):
        raise BnnConfigError(f"--model {model_spec!r} returned {type(module).__name__}, not an nn.Module: "
                             "make the factory return the network")
    return module


def build_model(task: TaskSpec, model_spec: Optional[str] = None, *, device=None, dtype=None,
                generator: Optional[torch.Generator] = None, init=DEFAULT_INIT) -> BayesianModel:
    """The Bayesian model a config trains. The report's MLPs keep their exact construction (and so
    their initial posterior for a seed); everything else goes through `bayesify`."""
    if model_spec is None and task.architecture is None:
        return BayesianMLP(task.sizes, init=init, device=device, dtype=dtype, generator=generator)
    return bayesify(build_module(task, model_spec), init=init, device=device, dtype=dtype, generator=generator)


def check_support(task_name: str, model_spec: Optional[str], impl: str) -> None:
    """BnnConfigError (one line) when the model cannot be trained on the task by `impl`: the factory
    fails (or exits), the module has no layer to make Bayesian, it does not take the task's inputs or
    does not give one output per class, or `impl` has no rule for one of its Bayesian layer types.
    Built and run on the meta device: no memory, no initialization, no arithmetic."""
    from bnn_impls.tasks import TASK_SPECS

    task = TASK_SPECS[task_name]
    if model_spec is None and task.architecture is None:
        return  # the report's MLPs: every implementation runs them
    what = f"--model {model_spec!r}" if model_spec else f"task {task_name!r}"
    try:
        with torch.device("meta"):
            module = build_module(task, model_spec)
    except BnnConfigError:
        raise
    except (Exception, SystemExit) as e:  # the user's factory failed or exited: bad input, said in one line
        text = " ".join(str(e).split())
        raise BnnConfigError(f"{what}: the factory raised {type(e).__name__}: {text[:200]}") from None
    layers = [(path, layer) for path, layer in module.named_modules() if isinstance(layer, BAYESIAN_LAYER_TYPES)]
    if not layers:
        raise BnnConfigError(f"{what} has no Linear or Conv layer to make Bayesian: give a network with at least one")
    _check_shapes(module, task, what)
    if impl == "vmap_lrt":
        from bnn_impls.vmap_lrt import moment_rule

        for path, layer in layers:
            moment_rule(layer, path)
    if impl == "vmap_flipout":
        from bnn_impls.vmap_flipout import flipout_rule

        for path, layer in layers:
            flipout_rule(layer, path)


def _check_shapes(module: nn.Module, task: TaskSpec, what: str) -> None:
    """The module takes a batch of the task's examples and gives one output per class (one for regression)."""
    outputs = task.classes or 1
    try:
        with torch.device("meta"), torch.no_grad():
            out = module(torch.empty(2, *task.example_shape))
    except Exception as e:
        text = " ".join(str(e).split())
        raise BnnConfigError(f"{what} does not take task {task.name!r}'s inputs of shape "
                             f"{tuple(task.example_shape)} ({type(e).__name__}: {text[:150]}): give a network for "
                             "that input, or another --task") from None
    if not isinstance(out, torch.Tensor) or tuple(out.shape) != (2, outputs):
        shape = tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__
        raise BnnConfigError(f"{what} gives outputs of shape {shape} for 2 examples of task {task.name!r}, which "
                             f"needs (2, {outputs}): give a network with {outputs} output(s)")
