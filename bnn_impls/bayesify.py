"""Any `nn.Module` built from Linear and Conv layers, made Bayesian: the one parameter object every
implementation trains.

`bayesify(module)` gives every weight and bias of the module's Linear, Conv1d/2d/3d and
ConvTranspose1d/2d/3d layers a mean-field Gaussian posterior (mu, rho; sigma = softplus(rho)).
Every other parameter (BatchNorm's affine, a learned scale, ...) stays a point estimate that the
same optimizer trains, and buffers stay buffers. The module itself becomes a skeleton on the meta
device: structure only, run through `torch.func.functional_call` with whatever weights an
implementation supplies, so "the same network" is true by construction for every implementation.

BatchNorm in training mode updates its running statistics in place, which a map over weight
samples cannot do on one shared tensor. The rule, the same for every implementation: within a
step each weight sample updates its own copy of the step-start buffers (`sample_buffers`), and
after the step the model keeps their mean over samples (`commit_buffers`): one momentum update
with the sample-averaged batch statistics, and `num_batches_tracked` + 1 per step. Normalization
itself always uses each sample's own batch statistics, so the loss does not depend on the rule.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Optional, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.func import functional_call

from bnn_impls.init_schemes import initialize_, parameter_fan_in

#: Layer types whose weight and bias get a posterior by default.
BAYESIAN_LAYER_TYPES: tuple[type, ...] = (
    nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d,
)


@dataclass(frozen=True)
class PosteriorInit:
    """Initial posterior: mu ~ U(mu_low, mu_high), rho ~ U(rho_low, rho_high) (the report's values)."""

    mu_low: float = -0.2
    mu_high: float = 0.2
    rho_low: float = -5.0
    rho_high: float = -4.0


#: The report's initial posterior, the default `init` (frozen, so one shared instance is safe).
DEFAULT_INIT = PosteriorInit()


@dataclass(frozen=True)
class BayesianLayer:
    """One Bayesian layer of the skeleton: where it is, what it is, and where its posterior lives."""

    path: str  # module path in the skeleton, e.g. "layer1.0.conv1"
    module: nn.Module  # the skeleton's (meta) layer: its type and hyper-parameters (stride, groups, ...)
    weight: int  # index of the weight in `mu` / `rho`
    bias: Optional[int]  # index of the bias, None for a layer without one


def _stateful_norm(module: nn.Module) -> bool:
    """A normalization layer that writes its running statistics in this mode."""
    return (isinstance(module, nn.modules.batchnorm._NormBase) and module.training
            and module.track_running_stats and module.running_mean is not None)


class BayesianModel(nn.Module):
    """Variational parameters of a module's Linear/Conv layers, its point parameters and its buffers."""

    def __init__(
        self,
        module: nn.Module,
        *,
        init: PosteriorInit = PosteriorInit(),
        centre_on_module: bool = False,
        layer_types: Sequence[type] = BAYESIAN_LAYER_TYPES,
        device=None,
        dtype=None,
        generator: Optional[torch.Generator] = None,
    ):
        super().__init__()
        layer_types = tuple(layer_types)
        bayesian = {}  # parameter name -> (layer path, layer, "weight" | "bias")
        for path, layer in module.named_modules():
            if isinstance(layer, layer_types):
                for kind in ("weight", "bias"):
                    if isinstance(getattr(layer, kind, None), nn.Parameter):
                        bayesian[f"{path}.{kind}" if path else kind] = (path, layer, kind)
        if not bayesian:
            raise ValueError(f"{type(module).__name__} has no layer of type "
                             f"{', '.join(t.__name__ for t in layer_types)}: nothing to make Bayesian")
        params = list(module.named_parameters())
        # Skeleton order: for an MLP "0.weight", "0.bias", "2.weight", ... as before this module existed.
        self.param_names = tuple(name for name, _ in params if name in bayesian)
        self.point_names = tuple(name for name, _ in params if name not in bayesian)
        self.buffer_names = tuple(name for name, _ in module.named_buffers())
        real = dict(params)
        needs_values = (list(self.point_names) + list(self.buffer_names)
                        + (list(self.param_names) if centre_on_module else []))
        on_meta = [n for n in needs_values if dict(module.named_buffers()).get(n, real.get(n)).is_meta]
        if on_meta:
            raise ValueError(f"{on_meta[0]!r} of the module is on the meta device, but its value is needed "
                             "(point parameter, buffer, or centre_on_module): build the module on a real device")

        factory = dict(device=device, dtype=dtype)
        self.mu = nn.ParameterList()
        self.rho = nn.ParameterList()
        cpu_gen = generator if generator is not None and generator.device.type == "cpu" else None
        fan_in = 0
        for name in self.param_names:
            shape = real[name].shape
            mu = torch.empty(shape, **factory)
            rho = torch.empty(shape, **factory)
            # Draw on the CPU with a seeded generator, then move: the same seed gives the same initial
            # posterior on every device. mu's draw is made even when centred, so rho's stream is the same.
            # `init` is a PosteriorInit (explicit ranges) or a named init_schemes.InitScheme (report, fan_in).
            fan_in = parameter_fan_in(shape, fan_in)
            initialize_(mu, rho, init, fan_in=fan_in, generator=cpu_gen)
            if centre_on_module:
                mu.copy_(real[name].detach())
            self.mu.append(nn.Parameter(mu))
            self.rho.append(nn.Parameter(rho))
        self.point = nn.ParameterList(
            nn.Parameter(real[name].detach().to(**factory).clone()) for name in self.point_names
        )
        buffers = dict(module.named_buffers())
        for i, name in enumerate(self.buffer_names):
            value = buffers[name].detach()
            value = value.to(**factory) if value.is_floating_point() else value.to(device=device)
            self.register_buffer(f"skeleton_buffer_{i}", value.clone())

        # Not a registered submodule: it holds no state, and `.to(device)` must not touch its meta tensors.
        object.__setattr__(self, "skeleton", copy.deepcopy(module).to("meta"))
        index = {name: i for i, name in enumerate(self.param_names)}
        modules = dict(self.skeleton.named_modules())
        self.bayesian_layers = tuple(
            BayesianLayer(path, modules[path], index[f"{path}.weight" if path else "weight"],
                          index.get(f"{path}.bias" if path else "bias"))
            for path, _ in module.named_modules() if (f"{path}.weight" if path else "weight") in index
        )
        self.train(module.training)

    def train(self, mode: bool = True) -> BayesianModel:
        super().train(mode)
        self.skeleton.train(mode)  # BatchNorm and Dropout follow the model's mode
        return self

    # -- views of the posterior ---------------------------------------------------------------
    def sigmas(self) -> list[torch.Tensor]:
        return [F.softplus(r) for r in self.rho]

    def num_weights(self) -> int:
        return sum(m.numel() for m in self.mu)

    def layers(self) -> list[tuple[int, Optional[int]]]:
        """(index of weight, index of bias or None) in the parameter lists, per Bayesian layer."""
        return [(layer.weight, layer.bias) for layer in self.bayesian_layers]

    def point_parameters(self) -> dict[str, torch.Tensor]:
        return dict(zip(self.point_names, self.point))

    def buffer_dict(self) -> dict[str, torch.Tensor]:
        return {name: getattr(self, f"skeleton_buffer_{i}") for i, name in enumerate(self.buffer_names)}

    # -- sampling ------------------------------------------------------------------------------
    def draw_weight_noise(self, samples: Optional[int], generator: torch.Generator) -> list[torch.Tensor]:
        """Standard normal noise for every parameter: shape (samples, *param) or (*param) when samples is None."""
        lead = () if samples is None else (samples,)
        return [
            torch.randn(lead + tuple(m.shape), generator=generator, device=m.device, dtype=m.dtype) for m in self.mu
        ]

    def weights_from_noise(self, eps: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        """w = mu + sigma * eps, broadcasting over any leading sample axes of eps."""
        return [torch.addcmul(m, s, e) for m, s, e in zip(self.mu, self.sigmas(), eps)]

    # -- buffers written during a step (BatchNorm in training mode) ----------------------------
    def updates_buffers(self) -> bool:
        return any(_stateful_norm(m) for m in self.skeleton.modules())

    def sample_buffers(self, samples: int) -> Optional[dict[str, torch.Tensor]]:
        """Per-sample copies (samples, *buffer) of the step-start buffers, or None when the forward
        pass writes none (no BatchNorm in training mode): then every sample reads the model's own."""
        if not self.updates_buffers():
            return None
        return {name: b.expand(samples, *b.shape).clone() for name, b in self.buffer_dict().items()}

    def commit_buffers(self, stacked: Optional[dict[str, torch.Tensor]]) -> None:
        """Keep the mean over samples of what each sample wrote (the first, for integer counters)."""
        if stacked is None:
            return
        own = self.buffer_dict()
        with torch.no_grad():
            for name, values in stacked.items():
                own[name].copy_(values.mean(0) if values.is_floating_point() else values[0])

    # -- the deterministic network -------------------------------------------------------------
    def tensors_for(self, weights: Sequence[torch.Tensor], buffers: Optional[dict] = None) -> dict:
        """Everything functional_call needs: the sampled weights, the point parameters, the buffers."""
        tensors = dict(zip(self.param_names, weights))
        if self.point_names:
            tensors.update(zip(self.point_names, self.point))
        if self.buffer_names:
            tensors.update(self.buffer_dict() if buffers is None else buffers)
        return tensors

    def apply_weights(self, weights: Sequence[torch.Tensor], x: torch.Tensor,
                      buffers: Optional[dict] = None) -> torch.Tensor:
        """The network's output for one weight sample (use torch.func.vmap for many). `buffers`: this
        sample's own copy from `sample_buffers` when the forward pass writes them."""
        return functional_call(self.skeleton, self.tensors_for(weights, buffers), (x,))


def bayesify(module: nn.Module, *, init: PosteriorInit = PosteriorInit(), centre_on_module: bool = False,
             layer_types: Sequence[type] = BAYESIAN_LAYER_TYPES, device=None, dtype=None,
             generator: Optional[torch.Generator] = None) -> BayesianModel:
    """The Bayesian version of `module` (see the module docstring). `centre_on_module`: posterior means
    start at the module's own weights (as the graph-reparameterization and bayesian-torch converters
    do) instead of U(init.mu_low, init.mu_high); rho starts from `init` either way."""
    return BayesianModel(module, init=init, centre_on_module=centre_on_module, layer_types=layer_types,
                         device=device, dtype=dtype, generator=generator)
