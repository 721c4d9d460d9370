"""Implementations by name, and the plugin hook that lets users (and tests) register more.

A plugin is any importable module that calls `register_implementation`; modules listed in the
environment variable BNN_BENCH_PLUGINS (comma-separated) are imported on first lookup, so a
benchmark's child processes see the same registry as the command that started them.
"""

from __future__ import annotations

import importlib
import os
from typing import Protocol

import torch

from bnn_impls.lrt import VmapLRT
from bnn_impls.names import BnnConfigError
from bnn_impls.sequential import SequentialBBB
from bnn_impls.vmap_bbb import VmapBBB

PLUGINS_ENV = "BNN_BENCH_PLUGINS"


class Implementation(Protocol):
    name: str
    default_kl: str
    draws_weights: bool

    def loss(self, model, x, y, *, samples, spec, generator=None, noise=None): ...

    def predict(self, model, x, *, samples, generator=None, noise=None) -> torch.Tensor: ...


_REGISTRY: dict[str, Implementation] = {}
_plugins_loaded = False


def register_implementation(name: str, impl: Implementation, *, replace: bool = False) -> None:
    if name in _REGISTRY and not replace:
        raise BnnConfigError(f"implementation {name!r} is already registered: pass replace=True to override it")
    _REGISTRY[name] = impl


def _load_plugins() -> None:
    global _plugins_loaded
    if _plugins_loaded:
        return
    _plugins_loaded = True
    for module in filter(None, (m.strip() for m in os.environ.get(PLUGINS_ENV, "").split(","))):
        try:
            importlib.import_module(module)
        except ImportError as e:
            raise BnnConfigError(f"cannot import plugin {module!r} named in {PLUGINS_ENV}: {e}") from None


def implementation_names() -> tuple[str, ...]:
    _load_plugins()
    return tuple(_REGISTRY)


def get_implementation(name: str) -> Implementation:
    _load_plugins()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise BnnConfigError(f"unknown implementation {name!r}: choose one of {', '.join(_REGISTRY)}") from None


for _impl in (SequentialBBB(), VmapBBB(), VmapLRT()):
    register_implementation(_impl.name, _impl)
