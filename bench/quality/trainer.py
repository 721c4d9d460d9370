"""What a quality run trains: a config's training run from the one builder (ours and the peers'), or a
deterministic baseline net on the same batches, as one epoch function and one predictor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

import bnn_impls as B
from bench.contract.config import BenchConfig
from bench.contract.quality_schema import BASELINES
from bench.training.builder import build_config_training, resolve_dtype


@dataclass(frozen=True)
class Trainer:
    """What one training epoch and one evaluation need; built by `build_trainer`."""

    predict: Callable  # (x, samples, generator) -> (samples, batch, ...) outputs
    run_epoch: Callable[[], torch.Tensor]  # trains one epoch, returns the summed loss (a tensor, not read back)
    steps_per_epoch: int
    data: B.Dataset
    task: B.TaskSpec
    kl: str
    batch_size: int
    lr: float
    differentiable: bool = True  # the predictor gives input gradients (FGSM); a peer's does not


def baseline_net(name: str, sizes, device, dtype, seed: int) -> torch.nn.Module:
    """The BNN's layers as a plain MLP (PyTorch's default init), with dropout 0.5 after each hidden ReLU
    for `mlp_dropout`."""
    torch.manual_seed(seed)
    layers: list[torch.nn.Module] = []
    for i, (n_in, n_out) in enumerate(zip(sizes[:-1], sizes[1:])):
        layers.append(torch.nn.Linear(n_in, n_out))
        if i < len(sizes) - 2:
            layers.append(torch.nn.ReLU())
            if name == "mlp_dropout":
                layers.append(torch.nn.Dropout(0.5))
    return torch.nn.Sequential(*layers).to(device=device, dtype=dtype)


def baseline_trainer(config: BenchConfig) -> Trainer:
    """A deterministic net trained with cross-entropy on the config's batches; evaluated in eval mode
    (dropout off) as a predictor with one sample."""
    B.names.check_task(config.task)
    task = B.TASK_SPECS[config.task]
    if config.task != "mnist":
        raise B.BnnConfigError(f"baseline {config.impl!r} is for the mnist task: drop --baselines for {config.task}")
    device, dtype = torch.device(config.device), resolve_dtype(config.dtype)
    batch_size, lr = config.batch_size or task.batch_size, config.lr or task.lr
    data = B.load_dataset(config.task, device, dtype, data_dir=config.data_dir, seed=config.seed)
    generator = torch.Generator(device).manual_seed(config.seed)
    net = baseline_net(config.impl, task.sizes, device, dtype, config.seed)
    optimizer = B.make_optimizer(net, lr)

    def run_epoch():
        net.train()
        total = torch.zeros((), device=device)
        for x, y in B.epoch_batches(data, batch_size, generator):
            optimizer.zero_grad(set_to_none=True)
            loss = F.cross_entropy(net(x), y)
            loss.backward()
            optimizer.step()
            total += loss.detach()
        net.eval()
        return total

    return Trainer(lambda x, samples, generator: net(x)[None], run_epoch,
                   B.steps_per_epoch(data.n_train, batch_size), data, task, "", batch_size, lr)


def build_trainer(config: BenchConfig) -> Trainer:
    """The config's trainer: a baseline net, or its training run from the one builder (so `train`
    runs every task, model, prior, lever and peer that `sweep` does)."""
    if config.impl in BASELINES:
        return baseline_trainer(config)
    training = build_config_training(config)
    device = training.data.x_train.device

    def run_epoch():
        total = torch.zeros((), device=device)
        for x, y in B.epoch_batches(training.data, training.batch_size, training.generator):
            total += training.train_step(x, y).loss
        return total

    return Trainer(training.predict, run_epoch, training.steps_per_epoch, training.data, training.task,
                   training.kl, training.batch_size, config.lr or training.task.lr,
                   differentiable=training.predict_differentiable)
