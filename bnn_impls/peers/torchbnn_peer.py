"""torchbnn (Harry24k): `BayesLinear` layers and `BKLLoss`, as its demo trains them: cross-entropy plus
0.01 x the closed-form KL averaged over the parameters (`reduction="mean"`), prior N(0, 0.1^2); with S
samples, the cross-entropy is averaged over S forward passes (the KL is deterministic: once per step); Adam."""

from __future__ import annotations

import torch
import torchbnn

from bnn_impls.objective import LossTerms, check_samples
from bnn_impls.own_training import Training
from bnn_impls.peers.base import PeerImplementation, build_mlp, data_term, seed_global_rng, stacked_predictions

PRIOR_MU, PRIOR_SIGMA = 0.0, 0.1  # torchbnn's demo
KL_FACTOR = 0.01  # the demo's kl_weight, on a KL that BKLLoss("mean") divides by the number of parameters


class TorchBnn(PeerImplementation):
    name = "torchbnn"
    default_kl = "closed"
    kl_estimators = ("closed",)
    kl_weight = "0.01/P"
    loss_note = ("NLL averaged over S samples + 0.01 x closed-form KL / P (BKLLoss mean over the P parameters, "
                 "its demo); prior N(0, 0.1^2); log-sigma init log 0.1")

    def make_training(self, task, data, *, samples, lr, batch_size, seed, generator=None) -> Training:
        check_samples(samples)
        seed_global_rng(seed)
        model = build_mlp(task.sizes, lambda n_in, n_out: torchbnn.BayesLinear(
            prior_mu=PRIOR_MU, prior_sigma=PRIOR_SIGMA, in_features=n_in, out_features=n_out))
        model = model.to(device=data.x_train.device, dtype=data.x_train.dtype)
        kl_loss = torchbnn.BKLLoss(reduction="mean", last_layer_only=False)
        optimizer = torch.optim.Adam(model.parameters(), lr=lr)
        nll_of = data_term(task)
        n_params = sum(p.numel() for p in model.parameters()) // 2  # (mu, log sigma) per weight
        weight = KL_FACTOR / n_params

        def step(x, y) -> LossTerms:
            optimizer.zero_grad(set_to_none=True)
            nll = torch.stack([nll_of(model(x), y) for _ in range(samples)]).mean()
            kl_mean = kl_loss(model).squeeze()
            loss = nll + KL_FACTOR * kl_mean
            loss.backward()
            optimizer.step()
            # Reported as the summed KL and its effective weight, so the columns compare with ours.
            return LossTerms(loss.detach(), nll.detach(), kl_mean.detach() * n_params, weight)

        return Training(step=step, model=model, predict=lambda x, s: stacked_predictions(model, x, s),
                        kl_weight=weight, loss_note=self.loss_note)
