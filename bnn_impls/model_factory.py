"""The deterministic module of a task, or of a user's factory (`--model package.module:factory`),
made Bayesian: what `bench.measure.step` trains."""

from __future__ import annotations

import importlib
from typing import Callable, Optional

import torch
from torch import nn

from bnn_impls import architectures
from bnn_impls.bayesify import DEFAULT_INIT, BayesianModel, bayesify
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
    """BnnConfigError (one line) when the factory cannot build a module, or when `impl` cannot run one
    of its Bayesian layer types. Built on the meta device: no memory, no initialization cost."""
    from bnn_impls.tasks import TASK_SPECS

    task = TASK_SPECS[task_name]
    if model_spec is None and task.architecture is None:
        return  # the report's MLPs: every implementation runs them
    try:
        with torch.device("meta"):
            module = build_module(task, model_spec)
    except BnnConfigError:
        raise
    except Exception as e:  # the user's factory failed: bad input, said in one line
        text = " ".join(str(e).split())
        raise BnnConfigError(f"--model {model_spec!r}: the factory raised {type(e).__name__}: {text[:200]}") from None
    if impl == "vmap_lrt":
        from bnn_impls.bayesify import BAYESIAN_LAYER_TYPES
        from bnn_impls.vmap_lrt import moment_rule

        for path, layer in module.named_modules():
            if isinstance(layer, BAYESIAN_LAYER_TYPES):
                moment_rule(layer, path)
