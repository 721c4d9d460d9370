"""IVON (`ivon-opt`, Shen et al. 2024; the successor of VOGN): natural-gradient variational learning
inside the optimizer. The model is a plain MLP of `nn.Linear`; per step, S times
`with optimizer.sampled_params(train=True)`: forward, the mean NLL, backward; then `optimizer.step()`
(its README's loop). No KL term in the loss: the Gaussian prior (precision ess x weight_decay) enters
the update in closed form with weight 1/ess = 1/N. IVON has its own optimizer, so lr is IVON's
(its README's 0.1, hess_init 1), not the task's Adam lr."""

from __future__ import annotations

import ivon
import torch
from torch import nn

from bnn_impls.objective import LossTerms, check_samples
from bnn_impls.own_training import Training
from bnn_impls.peers.base import PeerImplementation, build_mlp, data_term, seed_global_rng

IVON_LR = 0.1


class Ivon(PeerImplementation):
    name = "ivon"
    default_kl = "closed"
    kl_estimators = ("closed",)
    kl_weight = "1/N"
    loss_note = ("IVON optimizer (lr 0.1, ess N, weight decay 1e-4 = prior precision), not Adam: loss = NLL "
                 "averaged over S samples, KL in closed form inside the update; one backward per sample")

    def make_training(self, task, data, *, samples, lr, batch_size, seed, generator=None) -> Training:
        check_samples(samples)
        seed_global_rng(seed)
        model = build_mlp(task.sizes, nn.Linear).to(device=data.x_train.device, dtype=data.x_train.dtype)
        optimizer = ivon.IVON(model.parameters(), lr=IVON_LR, ess=data.n_train)
        nll_of = data_term(task)
        zero = torch.zeros((), device=data.x_train.device, dtype=data.x_train.dtype)

        def step(x, y) -> LossTerms:
            nlls = []
            for _ in range(samples):
                with optimizer.sampled_params(train=True):
                    optimizer.zero_grad(set_to_none=False)  # IVON reads p.grad of every parameter
                    nll = nll_of(model(x), y)
                    nll.backward()
                nlls.append(nll.detach())
            optimizer.step()
            nll = torch.stack(nlls).mean()
            return LossTerms(nll, nll, zero, 1.0 / data.n_train)

        def predict(x, s):
            check_samples(s)
            outs = []
            with torch.no_grad():
                for _ in range(s):
                    with optimizer.sampled_params():
                        outs.append(model(x))
            return torch.stack(outs)

        return Training(step=step, model=model, predict=predict, kl_weight=1.0 / data.n_train,
                        loss_note=self.loss_note)
