"""blitz (piEsposito): a `@variational_estimator` module of `BayesianLinear` layers trained with
`sample_elbo(x, y, criterion, sample_nbr=S, complexity_cost_weight=1/N)`, as its MNIST example does:
per sample, the NLL plus log q(w) - log p(w) on that sample's weights (a sampled KL), averaged over
S; default prior N(0, 0.1^2) (its scale mixture with pi = 1), rho init -7; Adam."""

from __future__ import annotations

import torch
from blitz.modules import BayesianLinear
from blitz.utils import variational_estimator
from torch import nn

from bnn_impls.objective import LossTerms, check_samples
from bnn_impls.own_training import Training
from bnn_impls.peers.base import PeerImplementation, build_mlp, data_term, seed_global_rng, stacked_predictions


@variational_estimator
class BlitzMLP(nn.Module):
    def __init__(self, sizes):
        super().__init__()
        self.net = build_mlp(sizes, BayesianLinear)

    def forward(self, x):
        return self.net(x)


class Blitz(PeerImplementation):
    name = "blitz"
    default_kl = "sample"
    kl_estimators = ("sample",)
    kl_weight = "1/N"
    loss_note = ("ELBO/N as ours (sampled KL, weight 1/N, NLL averaged over S); prior N(0, 0.1^2) "
                 "(scale mixture, pi = 1); rho init -7")

    def make_training(self, task, data, *, samples, lr, batch_size, seed, generator=None) -> Training:
        check_samples(samples)
        seed_global_rng(seed)
        model = BlitzMLP(task.sizes).to(device=data.x_train.device, dtype=data.x_train.dtype)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        nll_of = data_term(task)
        weight = 1.0 / data.n_train
        nlls: list[torch.Tensor] = []

        def criterion(out, y):  # records each sample's NLL so the step can report the NLL and KL apart
            nll = nll_of(out, y)
            nlls.append(nll.detach())
            return nll

        def step(x, y) -> LossTerms:
            nlls.clear()
            optimizer.zero_grad(set_to_none=True)
            loss = model.sample_elbo(inputs=x, labels=y, criterion=criterion, sample_nbr=samples,
                                     complexity_cost_weight=weight)
            loss.backward()
            optimizer.step()
            nll = torch.stack(nlls).mean()
            loss = loss.detach()
            return LossTerms(loss, nll, (loss - nll) / weight, weight)

        return Training(step=step, model=model, predict=lambda x, s: stacked_predictions(model, x, s),
                        kl_weight=weight, loss_note=self.loss_note)
