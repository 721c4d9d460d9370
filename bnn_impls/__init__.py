"""Bayes by Backprop for mean-field Gaussian networks (any nn.Module of Linear and Conv layers, made
Bayesian by `bayesify`), in interchangeable implementations.

    model = BayesianMLP(TASK_SPECS["mnist"].sizes)       # or bayesify(my_module)
    impl = get_implementation("vmap_lrt")
    spec = ElboSpec(likelihood, kl="closed", prior=make_prior("gaussian"), n_train=60000)
    terms = impl.loss(model, x, y, samples=10, spec=spec, generator=g)
"""

from bnn_impls.bayesify import BAYESIAN_LAYER_TYPES, BayesianModel, bayesify
from bnn_impls.cifar import load_cifar10
from bnn_impls.kl import closed_kl, mc_kl, repar_exact_kl, repar_kl, sample_kl, standalone_kl
from bnn_impls.likelihood import CategoricalLikelihood, GaussianLikelihood
from bnn_impls.mlp import BayesianMLP, PosteriorInit, mlp
from bnn_impls.mnist import DataError, load_mnist
from bnn_impls.model_factory import build_model, build_module
from bnn_impls.names import IMPLEMENTATIONS, KL_ESTIMATORS, PRIORS, TASKS, BnnConfigError
from bnn_impls.objective import ElboSpec, LossTerms
from bnn_impls.priors import GaussianPrior, ScaleMixturePrior, make_prior
from bnn_impls.registry import (
    check_combination,
    default_kl,
    get_implementation,
    implementation_names,
    register_implementation,
)
from bnn_impls.tasks import (
    DATA_SOURCES,
    TASK_SPECS,
    Dataset,
    TaskSpec,
    endless_batches,
    epoch_batches,
    load_dataset,
    steps_per_epoch,
)
from bnn_impls.train_step import make_optimizer, make_train_step

__all__ = [
    "BAYESIAN_LAYER_TYPES",
    "BayesianMLP",
    "BayesianModel",
    "bayesify",
    "BnnConfigError",
    "build_model",
    "build_module",
    "CategoricalLikelihood",
    "check_combination",
    "closed_kl",
    "DATA_SOURCES",
    "DataError",
    "Dataset",
    "default_kl",
    "ElboSpec",
    "endless_batches",
    "epoch_batches",
    "GaussianLikelihood",
    "GaussianPrior",
    "get_implementation",
    "implementation_names",
    "IMPLEMENTATIONS",
    "KL_ESTIMATORS",
    "load_cifar10",
    "load_dataset",
    "load_mnist",
    "LossTerms",
    "make_optimizer",
    "make_prior",
    "make_train_step",
    "mc_kl",
    "mlp",
    "PosteriorInit",
    "PRIORS",
    "register_implementation",
    "repar_exact_kl",
    "repar_kl",
    "sample_kl",
    "ScaleMixturePrior",
    "standalone_kl",
    "steps_per_epoch",
    "TASK_SPECS",
    "TASKS",
    "TaskSpec",
]
