"""The one builder: a task (or a model) and an implementation in, a ready training run out.

    from bench import build_training
    training = build_training("mnist", "vmap_lrt", samples=10)   # model, data, ELBO, Adam, generator
    terms = training.step()                                        # one optimizer step on the next minibatch

Every command stands on it: `sweep` and `check` measure `build_config_training(config)`, `train`
trains and evaluates it, `profile` profiles it, `maxnmc` probes it, and a peer library's own
model, loss and optimizer come back through the same `Training`.
"""

from __future__ import annotations

import itertools
import math
from dataclasses import dataclass
from typing import Callable, Iterator, Optional, Union

import torch

import bnn_impls as B
from bench.contract.config import BenchConfig, prior_params
from bench.training.levers import build_train_steps, check_levers
from bnn_impls import registry
from bnn_impls.init_schemes import InitScheme
from bnn_impls.model_factory import build_model

#: Every option `build_training` takes, with its default (None: the task's or implementation's own).
TRAINING_OPTIONS = {
    "device": "cpu",
    "dtype": "float32",
    "kl": None,  # the implementation's default estimator
    "prior": "gaussian",
    "n_mc": 1,
    "batch_size": None,  # the task's
    "lr": None,  # the task's
    "seed": 0,
    "data_dir": None,  # MNIST: --data-dir, $BNN_BENCH_DATA, ~/.cache/bnn-bench
    "prior_sigma": 1.0,
    "mixture_pi": 0.5,
    "mixture_sigma1": 1.0,
    "mixture_sigma2": math.exp(-6),
    "task": None,  # with a model instead of a task name: the task whose data, likelihood and defaults to use
    "data": None,  # a bnn_impls.Dataset to train on instead of the task's own
    "data_source": "real",  # or "synthetic": seeded inputs of the task's shape (the config's `data`)
    "model_factory": None,  # "package.module:factory" run on the task's data (the config's `model`)
    # Speed levers (bench/training/levers.py): how the step runs, in which precision, with which Adam kernel.
    "step_mode": "eager",
    "precision": "fp32",
    "optimizer": "adam",
    # Posterior initialization (bnn_impls/init_schemes.py): the report's, or from each layer's fan-in.
    "init": "report",
    "init_sigma": 0.0,  # starting sigma; 0: the scheme's default
}

DTYPES = {"float32": torch.float32, "float64": torch.float64, "bfloat16": torch.bfloat16}


def resolve_dtype(name) -> torch.dtype:
    if isinstance(name, torch.dtype):
        return name
    try:
        return DTYPES[name]
    except KeyError:
        raise B.BnnConfigError(f"unknown dtype {name!r}: choose one of {', '.join(DTYPES)}") from None


@dataclass(frozen=True)
class Training:
    """Everything one training run needs, built and wired: call `step()` to train one minibatch."""

    model: torch.nn.Module
    optimizer: Optional[torch.optim.Optimizer]  # None for a peer library that steps its own
    spec: Optional[B.ElboSpec]  # likelihood, KL estimator, prior object, n_train, n_mc (None for a peer)
    data: B.Dataset
    task: B.TaskSpec
    impl: str
    samples: int
    batch_size: int
    generator: torch.Generator  # every draw of the run (batches, weight and KL noise) comes from it
    train_step: Callable[[torch.Tensor, torch.Tensor], B.LossTerms]  # (x, y) -> detached loss terms
    batches: Iterator[tuple[torch.Tensor, torch.Tensor]]  # endless on-device minibatches
    eager_step: Optional[Callable[[torch.Tensor, torch.Tensor], B.LossTerms]] = None  # the un-compiled twin
    kl: str = ""  # the KL estimator's name (a peer's own KL is recorded under its declared default)
    kl_weight: Optional[float] = None  # the factor the loss puts on the KL (1/N for ours)
    loss_note: str = ""  # how the loss differs from our ELBO ("" for ours)
    # (x, samples, generator) -> (samples, batch, ...) predictive outputs: the implementation's own
    # vectorized `predict` on this model, or a peer library's. `predict_differentiable` False: no
    # input gradients through it (a peer's predict), so FGSM cannot attack it.
    predict: Optional[Callable[[torch.Tensor, int, Optional[torch.Generator]], torch.Tensor]] = None
    predict_differentiable: bool = True

    def step(self) -> B.LossTerms:
        """Draw the next minibatch and take one optimizer step on it; returns the (detached) loss terms
        that step computed before its update."""
        return self.train_step(*next(self.batches))

    def instrumented_step(self) -> B.LossTerms:
        """One step through the eager twin of the step (the same step unless a lever compiles or
        replays it): what the operator, memory and FLOP counters must see."""
        return (self.eager_step or self.train_step)(*next(self.batches))

    def steps(self, n: int) -> None:
        """`n` optimizer steps on the next `n` minibatches."""
        for x, y in itertools.islice(self.batches, n):
            self.train_step(x, y)

    def epoch(self) -> int:
        """One pass over a fresh permutation of the training set; returns the number of steps taken."""
        n = 0
        for x, y in B.epoch_batches(self.data, self.batch_size, self.generator):
            self.train_step(x, y)
            n += 1
        return n

    @property
    def steps_per_epoch(self) -> int:
        return B.steps_per_epoch(self.data.n_train, self.batch_size)


def _check_options(options: dict) -> None:
    unknown = sorted(set(options) - set(TRAINING_OPTIONS))
    if unknown:
        raise B.BnnConfigError(f"unknown option {unknown[0]!r} for build_training: choose from "
                               f"{', '.join(TRAINING_OPTIONS)}")


def _build_model(task: B.TaskSpec, *, device: torch.device, dtype: torch.dtype, seed: int,
                 init: str = "report", init_sigma: float = 0.0, factory: Optional[str] = None) -> torch.nn.Module:
    """The variational model for a task: the one place a model is made from a task, so a branch that
    makes other networks Bayesian replaces only this. The CPU generator makes the initial posterior
    the same on every device."""
    return build_model(task, factory, device=device, dtype=dtype, generator=torch.Generator().manual_seed(seed),
                       init=InitScheme(init, float(init_sigma)))


def build_training(task_or_model: Union[str, torch.nn.Module], impl: str, samples: int, **options) -> Training:
    """A ready training run of `impl` with `samples` weight samples per step.

    `task_or_model`: a task name (`regression`, `mnist`), or a model built already (then `task=NAME`
    says whose data, likelihood, learning rate and batch size to use). Options and defaults:
    `TRAINING_OPTIONS` (device, dtype, kl, prior, n_mc, batch_size, lr, seed, data_dir, the prior
    parameters, data). Bad names and combinations raise `BnnConfigError` with a one-line message.
    """
    _check_options(options)
    opts = {**TRAINING_OPTIONS, **options}
    if isinstance(task_or_model, str):
        task_name, model = task_or_model, None
        if opts["task"] not in (None, task_name):
            raise B.BnnConfigError(f"task {task_or_model!r} given twice with task={opts['task']!r}: pass one")
    else:
        task_name, model = opts["task"], task_or_model
        if task_name is None:
            raise B.BnnConfigError("build_training(model, ...) needs task=NAME: the data set, likelihood and "
                                   f"defaults come from a task ({', '.join(B.TASKS)})")
    B.names.check_task(task_name)
    task = B.TASK_SPECS[task_name]
    device = torch.device(opts["device"])
    dtype = resolve_dtype(opts["dtype"])
    implementation = B.get_implementation(impl)
    kl = opts["kl"] or registry.default_kl(impl)
    registry.check_combination(impl, kl, opts["prior"], task=task_name)
    B.objective.check_samples(samples)
    prior = B.make_prior(opts["prior"], **prior_params(opts["prior"], sigma=opts["prior_sigma"], pi=opts["mixture_pi"],
                                                       sigma1=opts["mixture_sigma1"], sigma2=opts["mixture_sigma2"]))
    batch_size = opts["batch_size"] or task.batch_size
    seed = opts["seed"]

    data = opts["data"]
    if data is None:
        data = B.load_dataset(task_name, device, dtype, data_dir=opts["data_dir"], seed=seed,
                              data=opts["data_source"])
    generator = torch.Generator(device).manual_seed(seed)
    if registry.capabilities(impl).trains_own_model:
        # A peer library: its own model, loss and optimizer (bnn_impls.own_training); timed the same way.
        own = implementation.make_training(task, data, samples=samples, lr=opts["lr"] or task.lr,
                                           batch_size=batch_size, seed=seed, generator=generator)
        return Training(model=own.model, optimizer=None, spec=None, data=data, task=task, impl=impl,
                        samples=samples, batch_size=batch_size, generator=generator, train_step=own.step,
                        batches=B.endless_batches(data, batch_size, generator), kl=kl,
                        kl_weight=own.kl_weight, loss_note=own.loss_note,
                        predict=lambda x, n, gen: own.predict(x, n), predict_differentiable=False)
    if model is None:
        model = _build_model(task, device=device, dtype=dtype, seed=seed, init=opts["init"],
                             init_sigma=opts["init_sigma"], factory=opts["model_factory"])
    spec = B.ElboSpec(task.likelihood, kl, prior, data.n_train, opts["n_mc"])
    check_levers(opts["step_mode"], opts["precision"], opts["optimizer"], str(device),
                 dtype=opts["dtype"] if isinstance(opts["dtype"], str) else "float32")
    lever_steps = build_train_steps(model, implementation, spec, lr=opts["lr"] or task.lr, samples=samples,
                                    generator=generator, step_mode=opts["step_mode"], precision=opts["precision"],
                                    optimizer=opts["optimizer"], device=str(device))
    optimizer, train_step = lever_steps.optimizer, lever_steps.timed
    return Training(model=model, optimizer=optimizer, spec=spec, data=data, task=task, impl=impl, samples=samples,
                    batch_size=batch_size, generator=generator, train_step=train_step, eager_step=lever_steps.eager,
                    batches=B.endless_batches(data, batch_size, generator), kl=kl, kl_weight=spec.kl_weight,
                    loss_note=registry.capabilities(impl).loss_note,
                    predict=lambda x, n, gen: implementation.predict(model, x, samples=n, generator=gen))


def training_options(config: BenchConfig) -> dict:
    """The `build_training` options a config stands for."""
    options = {name: getattr(config, name) for name in TRAINING_OPTIONS if hasattr(config, name)}
    # The config names its data source and model factory `data` and `model`; here `data` is a Dataset.
    options.pop("data", None)
    options.update(data_source=config.data, model_factory=config.model)
    return options


def build_config_training(config: BenchConfig) -> Training:
    """A config's training run, built through `build_training` with the config's threads pinned;
    nothing stepped yet. What every command that trains a config calls."""
    torch.set_num_threads(config.threads)
    # Set either way: an inline executor runs many configs in one process, and the flag is per process.
    torch.set_flush_denormal(bool(config.flush_denormal))
    return build_training(config.task, config.impl, config.samples, **training_options(config))


__all__ = ["TRAINING_OPTIONS", "Training", "build_config_training", "build_training", "training_options"]
