"""Implementations by name, and the plugin hook that lets users (and tests) register more.

A plugin is any importable module that calls `register_implementation`; modules listed in the
environment variable BNN_BENCH_PLUGINS (comma-separated) are imported on first lookup, so a
benchmark's child processes see the same registry as the command that started them.

The registered object is the one source of an implementation's defaults and capabilities, for
plugins as for built-ins (`capabilities`): its `default_kl`, `draws_weights`, and optionally the KL
estimators (`kl_estimators`), tasks (`tasks`) and priors (`priors`) it supports and what its loss
weighs the KL by (`kl_weight`, `loss_note`). Peer libraries (`bnn_impls.peers`) are registered the
same way, on first lookup and only where their library imports.
"""

from __future__ import annotations

import importlib
import os
import warnings
from dataclasses import dataclass
from typing import Optional, Protocol

import torch

from bnn_impls.lrt import VmapLRT
from bnn_impls import names, peers
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

    # Optional: an implementation that brings its own model, loss and optimizer (the peer libraries)
    # defines `make_training(task, data, *, samples, lr, batch_size, seed, generator) -> bnn_impls.own_training.Training`,
    # and the harness times its step instead of building the shared BayesianMLP.


#: What the built-in ELBO weighs the KL by, and how (see objective.ElboSpec).
ELBO_KL_WEIGHT = "1/N"
ELBO_LOSS_NOTE = "mean NLL over samples and examples + KL(sum over weights) / n_train; prior N(0, 1)"


@dataclass(frozen=True)
class Capabilities:
    """What an implementation declares about itself; read by the grid, `measure` and `list`."""

    name: str
    default_kl: str
    draws_weights: bool
    kl_estimators: tuple[str, ...]
    tasks: tuple[str, ...]
    priors: tuple[str, ...]
    kl_weight: str  # what the loss multiplies the KL by, in words ("1/N", "1/batch", ...)
    loss_note: str  # how the loss differs from ours, one line ("" for the ELBO of objective.py)
    trains_own_model: bool  # has `make_training`


_REGISTRY: dict[str, Implementation] = {}
_plugins_loaded = False


def _declared(name: str, impl) -> Capabilities:
    """The capabilities an implementation object declares; a missing or bad declaration is a BnnConfigError."""
    missing = [a for a in ("default_kl", "draws_weights") if not hasattr(impl, a)]
    if missing:
        raise BnnConfigError(f"implementation {name!r} does not declare {', '.join(missing)}: set them as class "
                             f"attributes (see README, How to add an implementation)")
    kls = tuple(getattr(impl, "kl_estimators", None) or names.KL_ESTIMATORS)
    tasks = tuple(getattr(impl, "tasks", None) or names.TASKS)
    priors = tuple(getattr(impl, "priors", None) or names.PRIORS)
    caps = Capabilities(name=name, default_kl=impl.default_kl, draws_weights=bool(impl.draws_weights),
                        kl_estimators=kls, tasks=tasks, priors=priors,
                        kl_weight=str(getattr(impl, "kl_weight", ELBO_KL_WEIGHT)),
                        loss_note=str(getattr(impl, "loss_note", "")),
                        trains_own_model=callable(getattr(impl, "make_training", None)))
    for kl in kls:
        if kl not in names.KL_ESTIMATORS:
            raise BnnConfigError(f"implementation {name!r} declares unknown KL estimator {kl!r}: "
                                 f"choose among {', '.join(names.KL_ESTIMATORS)}")
    if caps.default_kl not in names.kls_allowed(priors[0], draws_weights=caps.draws_weights, supported=kls):
        raise BnnConfigError(f"implementation {name!r} declares default_kl={caps.default_kl!r}, which it cannot use "
                             f"(draws_weights={caps.draws_weights}, kl_estimators={', '.join(kls)})")
    return caps


def register_implementation(name: str, impl: Implementation, *, replace: bool = False) -> None:
    if name in _REGISTRY and not replace:
        raise BnnConfigError(f"implementation {name!r} is already registered: pass replace=True to override it")
    _declared(name, impl)  # fail at registration, not in the middle of a sweep
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
        raise BnnConfigError(f"unknown implementation {name!r}: choose one of {', '.join(implementation_names())}") from None


def capabilities(name: str) -> Capabilities:
    return _declared(name, get_implementation(name))


def default_kl(name: str) -> str:
    """The KL estimator an implementation runs when none is asked for: its own declared `default_kl`."""
    return capabilities(name).default_kl


def valid_kl_for(name: str, prior: str) -> tuple[str, ...]:
    caps = capabilities(name)
    return names.kls_allowed(prior, draws_weights=caps.draws_weights, supported=caps.kl_estimators)


def check_combination(name: str, kl: str, prior: str, task: Optional[str] = None) -> None:
    """BnnConfigError naming the valid choices if the implementation cannot run (kl, prior[, task])."""
    caps = capabilities(name)
    names.check_rules(name, kl, prior, draws_weights=caps.draws_weights, supported=caps.kl_estimators,
                      priors=caps.priors)
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


for _impl in (SequentialBBB(), VmapBBB(), VmapLRT()):
    register_implementation(_impl.name, _impl)
