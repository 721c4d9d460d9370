"""posteriors (normal-computing): `posteriors.vi.diag` on a plain MLP through `torch.func.functional_call`,
as its docs build it: log posterior = -mean NLL + log N(theta; 0, 1) / N with temperature 1/N, so the
NELBO is ours (sampled KL, weight 1/N, prior N(0, 1)); the S samples go through `torch.func.vmap`
(S > 1), the gradient through `torch.func.grad_and_value`, the update through `torchopt.adam`.
Stick-the-landing gradients (its default). log-sd init -4.5 (sigma ~ 0.011, near our rho init)."""

from __future__ import annotations

import math

import posteriors
import torch
import torchopt
from torch import nn

from bnn_impls.objective import LossTerms, check_samples
from bnn_impls.own_training import Training
from bnn_impls.peers.base import PeerImplementation, build_mlp, data_term, seed_global_rng

INIT_LOG_SD = -4.5


class PosteriorsVI(PeerImplementation):
    name = "posteriors_vi"
    default_kl = "sample"
    kl_estimators = ("sample",)
    kl_weight = "1/N"
    loss_note = ("NELBO as ours (sampled KL, weight 1/N, prior N(0, 1)) with stick-the-landing gradients; "
                 "samples vmapped; log-sd parameterization (not softplus), init -4.5; torchopt Adam")

    def make_training(self, task, data, *, samples, lr, batch_size, seed, generator=None) -> Training:
        check_samples(samples)
        seed_global_rng(seed)
        model = build_mlp(task.sizes, nn.Linear).to(device=data.x_train.device, dtype=data.x_train.dtype)
        nll_of = data_term(task)
        n = data.n_train

        def log_posterior(params, batch):
            x, y = batch
            out = torch.func.functional_call(model, params, (x,))
            return -nll_of(out, y) + posteriors.diag_normal_log_prob(params) / n, out

        transform = posteriors.vi.diag.build(log_posterior, torchopt.adam(lr=lr), temperature=1.0 / n,
                                             n_samples=samples, init_log_sds=INIT_LOG_SD)
        params = {k: v.detach().clone() for k, v in model.named_parameters()}
        state = [transform.init(params)]
        unknown = torch.full((), math.nan)  # the library reports only the NELBO, not its two terms

        def step(x, y) -> LossTerms:
            state[0], _ = transform.update(state[0], (x, y))
            return LossTerms(state[0].nelbo, unknown, unknown, 1.0 / n)

        def predict(x, s):
            check_samples(s)
            with torch.no_grad():
                draws = posteriors.vi.diag.sample(state[0], (s,))
                return torch.stack([torch.func.functional_call(model, {k: v[i] for k, v in draws.items()}, (x,))
                                    for i in range(s)])

        return Training(step=step, model=model, predict=predict, kl_weight=1.0 / n, loss_note=self.loss_note)
