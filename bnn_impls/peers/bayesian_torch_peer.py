"""bayesian-torch (Intel Labs): `dnn_to_bnn` turns our deterministic MLP into `LinearReparameterization`
or `LinearFlipout` layers; the loss is its MNIST example's: S forward passes, cross-entropy of the
logits averaged over the samples, plus the closed-form KL (`get_kl_loss`, averaged over the S passes)
divided by the batch size; Adam.

What that KL is, in bayesian-torch 0.5.0: each layer's `kl_div` returns the MEAN of the elementwise
KL over a tensor, and `get_kl_loss` sums those means over the tensors (each weight and each bias).
So a weight in a tensor of n elements enters the loss with weight 1 / (batch * n), not 1/N as in our
ELBO: for the MNIST MLP's first weight matrix 1 / (128 * 627,200), about 1/1,300 of ours, and for the
last bias 1 / (128 * 10), about 47 times ours. The step also calls `get_kl_loss` once per sample, so
the closed-form KL is computed S times per step (about half of its S = 10 step on the CPU here)."""

from __future__ import annotations

import torch
from bayesian_torch.models.dnn_to_bnn import dnn_to_bnn, get_kl_loss
from torch import nn

from bnn_impls.objective import LossTerms, check_samples
from bnn_impls.own_training import Training
from bnn_impls.peers.base import PeerImplementation, build_mlp, data_term, seed_global_rng, stacked_predictions

#: The prior and posterior initialization of bayesian-torch's README (`const_bnn_prior_parameters`).
PRIOR = {"prior_mu": 0.0, "prior_sigma": 1.0, "posterior_mu_init": 0.0, "posterior_rho_init": -3.0,
         "moped_enable": False, "moped_delta": 0.5}


class _BayesianTorch(PeerImplementation):
    layer_type: str
    default_kl = "closed"
    kl_estimators = ("closed",)
    kl_weight = "1/(batch*n_tensor)"
    loss_note = ("NLL of the logits averaged over S samples (its MNIST example) + sum over tensors of the MEAN "
                 "closed-form KL, / batch size: a weight in a tensor of n elements weighs 1/(B*n), not ours 1/N; "
                 "the KL is recomputed once per sample; prior N(0, 1); rho init -3")

    def make_training(self, task, data, *, samples, lr, batch_size, seed, generator=None) -> Training:
        check_samples(samples)
        seed_global_rng(seed)
        model = build_mlp(task.sizes, nn.Linear)
        dnn_to_bnn(model, dict(PRIOR, type=self.layer_type))
        model = model.to(device=data.x_train.device, dtype=data.x_train.dtype)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        nll_of = data_term(task)

        def step(x, y) -> LossTerms:
            optimizer.zero_grad(set_to_none=True)
            outputs, kls = [], []
            for _ in range(samples):
                outputs.append(model(x))
                kls.append(get_kl_loss(model))
            nll = nll_of(torch.mean(torch.stack(outputs), dim=0), y)
            kl = torch.mean(torch.stack(kls), dim=0)
            weight = 1.0 / x.shape[0]
            loss = nll + kl * weight
            loss.backward()
            optimizer.step()
            return LossTerms(loss.detach(), nll.detach(), kl.detach(), weight)

        return Training(step=step, model=model, predict=lambda x, s: stacked_predictions(model, x, s),
                        kl_weight=1.0 / batch_size, loss_note=self.loss_note)


class BayesianTorchReparam(_BayesianTorch):
    name = "bayesian_torch_reparam"
    layer_type = "Reparameterization"


class BayesianTorchFlipout(_BayesianTorch):
    name = "bayesian_torch_flipout"
    layer_type = "Flipout"
