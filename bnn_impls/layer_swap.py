"""Helpers for implementations that run the skeleton with each Bayesian layer swapped for a stand-in
(`vmap_lrt`, `vmap_flipout`): putting a module at a path, and the shapes each Bayesian layer sees."""

from __future__ import annotations

import copy
from typing import Callable, Sequence

import torch
from torch import nn


def set_submodule(root: nn.Module, path: str, module: nn.Module) -> nn.Module:
    """Put `module` at `path` in `root`; the new root (`module` itself for the empty path)."""
    if not path:
        return module
    parent_path, _, name = path.rpartition(".")
    setattr(root.get_submodule(parent_path) if parent_path else root, name, module)
    return root


def layer_io_shapes(skeleton: nn.Module, paths: Sequence[str],
                    x_shape: Sequence[int]) -> list[tuple[torch.Size, torch.Size]]:
    """Per layer path, the (input, output) shapes of that layer for a model input of shape x_shape,
    found by one forward pass on the meta device (nothing computed, nothing allocated)."""
    shapes: dict[str, tuple[torch.Size, torch.Size]] = {}

    def record(path):
        def hook(module, args, out):
            shapes.setdefault(path, (args[0].shape, out.shape))  # returns None: the output is left alone
        return hook

    # A copy: BatchNorm in training mode writes its (meta) running stats, and the hooks must not stay.
    probe = copy.deepcopy(skeleton)
    for p in paths:
        probe.get_submodule(p).register_forward_hook(record(p))
    with torch.no_grad():
        probe(torch.empty(tuple(x_shape), device="meta"))
    return [shapes[p] for p in paths]


class SwappedSkeleton:
    """A model's skeleton with every Bayesian layer replaced by `stand_in(layer)`, and the (input,
    output) shapes of those layers per input shape, found once per shape and mode on the meta device."""

    def __init__(self, model, stand_in: Callable[..., nn.Module]):
        module = copy.deepcopy(model.skeleton)
        for layer in model.bayesian_layers:
            module = set_submodule(module, layer.path, stand_in(layer))
        self.module = module
        self.paths = tuple(layer.path for layer in model.bayesian_layers)
        self._shapes: dict[tuple, list[tuple[torch.Size, torch.Size]]] = {}

    def io_shapes(self, model, x_shape: Sequence[int]) -> list[tuple[torch.Size, torch.Size]]:
        """Per Bayesian layer, the shapes of its input and output for a model input of shape x_shape."""
        key = (tuple(x_shape), model.training)
        if key not in self._shapes:
            self._shapes[key] = layer_io_shapes(model.skeleton, self.paths, x_shape)
        return self._shapes[key]


#: The attribute of a model that holds its swapped skeletons, one per kind of stand-in.
SKELETONS_ATTRIBUTE = "_swapped_skeletons"


def cached_skeleton(model, kind: str, build: Callable[..., SwappedSkeleton]) -> SwappedSkeleton:
    """The model's swapped skeleton of `kind` ("lrt", "flipout"; built by `build(model)` the first
    time), in the model's current train/eval mode.

    The cache lives on the model, not in a module-level weak dictionary keyed by models: torch.compile
    guards a lookup in such a dictionary by the key's position, and a dead model collected while a
    second model's loss compiles shifts the positions under the guard being built (an IndexError
    from dynamo, seen profiling one compiled config after another in one process)."""
    skeletons = model.__dict__.setdefault(SKELETONS_ATTRIBUTE, {})
    found = skeletons.get(kind)
    if found is None:
        found = skeletons[kind] = build(model)
    found.module.train(model.training)
    return found
