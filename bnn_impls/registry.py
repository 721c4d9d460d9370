"""Implementations by name, and the plugin hook that lets users (and tests) register more.

A plugin is any importable module that calls `register_implementation`; modules listed in the
environment variable BNN_BENCH_PLUGINS (comma-separated) are imported on first lookup, so a
benchmark's child processes see the same registry as the command that started them.

The registered object is the one source of an implementation's defaults and capabilities, for
plugins as for built-ins (`bnn_impls.capabilities`). Peer libraries (`bnn_impls.peers`) are registered the
same way, on first lookup and only where their library imports.
"""

from __future__ import annotations

import importlib
import os
import warnings
from typing import Optional, Protocol

import torch

from bnn_impls import names, peers
from bnn_impls.capabilities import ELBO_KL_WEIGHT, ELBO_LOSS_NOTE, Capabilities, declared
from bnn_impls.names import BnnConfigError
from bnn_impls.sequential import SequentialBBB
from bnn_impls.vmap import VmapBBB
from bnn_impls.vmap_flipout import VmapFlipout
from bnn_impls.vmap_lrt import VmapLRT

PLUGINS_ENV = "BNN_BENCH_PLUGINS"


class Implementation(Protocol):
    name: str
    default_kl: str
    draws_weights: bool

    def loss(self, model, x, y, *, samples, spec, generator=None, noise=None): ...

    def predict(self, model, x, *, samples, generator=None, noise=None) -> torch.Tensor: ...

    # Optional: an implementation that brings its own model, loss and optimizer (the peer libraries) defines
    # `make_training(task, data, *, samples, lr, batch_size, seed, generator) -> bnn_impls.own_training.Training`,
    # and the harness times its step instead of building the shared BayesianMLP.


_REGISTRY: dict[str, Implementation] = {}
_plugins_loaded = False


def register_implementation(name: str, impl: Implementation, *, replace: bool = False) -> None:
    if name in _REGISTRY and not replace:
        raise BnnConfigError(f"implementation {name!r} is already registered: pass replace=True to override it")
    declared(name, impl)  # fail at registration, not in the middle of a sweep
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


def _load_peer(name: str) -> None:
    """Import and register a peer library's implementation; BnnConfigError naming the install command if absent."""
    if peers.missing_requirement(name) is not None:
        raise BnnConfigError(peers.not_installed_message(name))
    spec = peers.PEERS[name]
    try:
        with warnings.catch_warnings():  # the libraries' own deprecation notices at import say nothing about us
            warnings.simplefilter("ignore", FutureWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            module = importlib.import_module(f"bnn_impls.peers.{spec.module}")
    except Exception as e:  # installed but broken (a dependency missing, a torch it does not support)
        message = " ".join(f"{type(e).__name__}: {e}".split())
        raise BnnConfigError(f"implementation {name!r} ({spec.library}) is installed but does not import here "
                             f"({message}): reinstall it with {spec.install}") from None
    register_implementation(name, getattr(module, spec.cls)(), replace=True)


def implementation_names() -> tuple[str, ...]:
    """Registered implementations (built-ins, plugins) and the peers whose libraries are installed here."""
    _load_plugins()
    return tuple(_REGISTRY) + tuple(p for p in peers.importable_peers() if p not in _REGISTRY)


def get_implementation(name: str) -> Implementation:
    _load_plugins()
    if name not in _REGISTRY and name in peers.PEERS:
        _load_peer(name)
    try:
        return _REGISTRY[name]
    except KeyError:
        raise BnnConfigError(f"unknown implementation {name!r}: "
                             f"choose one of {', '.join(implementation_names())}") from None


def capabilities(name: str) -> Capabilities:
    return declared(name, get_implementation(name))


def default_kl(name: str) -> str:
    """The KL estimator an implementation runs when none is asked for: its own declared `default_kl`."""
    return capabilities(name).default_kl


def valid_kl_for(name: str, prior: str) -> tuple[str, ...]:
    return capabilities(name).valid_kls(prior)


def check_combination(name: str, kl: str, prior: str, task: Optional[str] = None) -> None:
    """BnnConfigError naming the valid choices if the implementation cannot run (kl, prior[, task])."""
    caps = capabilities(name)
    caps.check(kl, prior)
    if task is not None:
        names.check_task(task)
        if task not in caps.tasks:
            raise BnnConfigError(f"implementation {name!r} does not run task {task!r}: it runs {', '.join(caps.tasks)}")


def peer_status() -> dict[str, str]:
    """Every peer in the catalogue -> "" where it imports here, else why not (one line, with the install command)."""
    status = {}
    for name in peers.PEERS:
        try:
            get_implementation(name)
            status[name] = ""
        except BnnConfigError as e:
            status[name] = str(e)
    return status


for _impl in (SequentialBBB(), VmapBBB(), VmapLRT(), VmapFlipout()):
    register_implementation(_impl.name, _impl)


__all__ = ["Capabilities", "ELBO_KL_WEIGHT", "ELBO_LOSS_NOTE", "Implementation", "PLUGINS_ENV", "capabilities",
           "check_combination", "default_kl", "get_implementation", "implementation_names", "peer_status",
           "register_implementation", "valid_kl_for"]
