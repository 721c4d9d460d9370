"""What a quality run trains: a config's training run from the one builder (ours and the peers'), or a
deterministic baseline net on the same batches, as one epoch function and one predictor."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

import bnn_impls as B
from bench.contract.config import BenchConfig
from bench.contract.quality_schema import BASELINE_TASKS, BASELINES
from bench.quality.evaluate import evaluation_mode
from bench.training.builder import build_config_training, resolve_dtype
from bnn_impls import registry
from bnn_impls.architectures import LeNet5


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


class DropoutLeNet5(LeNet5):
    """LeNet-5 with dropout 0.5 after each hidden fully connected layer's ReLU (the convolutions' outputs
    are max-pooled and left as they are, as in the usual dropout LeNet)."""

    def __init__(self, in_channels: int = 1, num_classes: int = 10):
        super().__init__(in_channels, num_classes)
        self.dropout = torch.nn.Dropout(0.5)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = self.dropout(F.relu(self.fc1(x.flatten(-3))))
        return self.fc3(self.dropout(F.relu(self.fc2(x))))


def baseline_net(name: str, sizes, device, dtype, seed: int) -> torch.nn.Module:
    """The BNN's layers as a plain net (PyTorch's default init): the MLP, with dropout 0.5 after each
    hidden ReLU for `mlp_dropout`; LeNet-5, with dropout after its hidden dense layers for
    `lenet5_dropout`."""
    torch.manual_seed(seed)
    if name in ("lenet5", "lenet5_dropout"):
        net = LeNet5(1, sizes[-1]) if name == "lenet5" else DropoutLeNet5(1, sizes[-1])
        return net.to(device=device, dtype=dtype)
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
    if config.task != BASELINE_TASKS[config.impl]:
        raise B.BnnConfigError(f"baseline {config.impl!r} is for the {BASELINE_TASKS[config.impl]} task, not "
                               f"{config.task!r}: name the baseline of that task")
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

    # Ours evaluate in eval mode (bench/quality/evaluate.py: BatchNorm's running statistics, never updated);
    # a peer library's model is left in the mode its own predict chooses.
    own_model = registry.capabilities(config.impl).trains_own_model
    predict = training.predict if own_model else evaluation_mode(training.predict, training.model)
    return Trainer(predict, run_epoch, training.steps_per_epoch, training.data, training.task,
                   training.kl, training.batch_size, config.lr or training.task.lr,
                   differentiable=training.predict_differentiable)
