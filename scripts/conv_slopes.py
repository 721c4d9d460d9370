"""Per-sample slope of a conv net's epoch time for `sequential`, `vmap_lrt` and `vmap_lrt` with its
variance path in bfloat16 (`bf16_var`), timed in one interleaved run (issue 25's conv target).

    python3 scripts/conv_slopes.py --task resnet18 --batch 8 --samples 1,2,5,10 --rounds 5 --threads 1

Each round times one training step (forward, backward, Adam) of every (lever, S) in alternating
order, after two untimed warm-up steps each, in this one process (synthetic inputs). Epoch time is
the step time times the real data set's steps per epoch (50,000 / batch for CIFAR-10).

Two statistics per lever:
- the report's fit (analysis.fit.fit_line): the least-squares slope of the median epoch time
  against S, with its 95% t interval (n - 2 degrees of freedom), as in slopes.csv;
- paired by round: in each round, the lever's least-squares slope over the sequential slope of the
  same round, median over rounds with a 95% bootstrap interval over rounds
  (analysis.peers.round_ratio_interval), so drift between rounds cancels.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bnn_impls as B  # noqa: E402
from analysis.fit import fit_line  # noqa: E402
from analysis.peers import round_ratio_interval  # noqa: E402
from bench.contract.provenance import cpu_model  # noqa: E402
from bench.measure.timing import time_in_rounds  # noqa: E402
from bnn_impls.model_factory import build_model  # noqa: E402
from bnn_impls.tasks import DATASET_SIZES, steps_per_epoch  # noqa: E402
from bnn_impls.vmap_lrt import variance_dtype  # noqa: E402

#: (label, implementation, context around the loss); the first is the reference of the paired ratio.
LEVERS = (
    ("sequential fp32", "sequential", contextlib.nullcontext),
    ("vmap_lrt fp32", "vmap_lrt", contextlib.nullcontext),
    ("vmap_lrt bf16_var", "vmap_lrt", lambda: variance_dtype(torch.bfloat16)),
)


def make_step(task: str, impl_name: str, context, batch: int, samples: int):
    spec_t = B.TASK_SPECS[task]
    model = build_model(spec_t, generator=torch.Generator().manual_seed(0))
    inputs = torch.randn(batch, *spec_t.input_shape, generator=torch.Generator().manual_seed(1))
    labels = torch.randint(0, spec_t.sizes[-1], (batch,), generator=torch.Generator().manual_seed(2))
    impl = B.get_implementation(impl_name)
    n_train = DATASET_SIZES[spec_t.dataset][0]
    spec = B.ElboSpec(likelihood=spec_t.likelihood, kl=impl.default_kl, prior=B.GaussianPrior(1.0), n_train=n_train)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(3)

    def step():
        optimizer.zero_grad(set_to_none=True)
        with context():
            loss = impl.loss(model, inputs, labels, samples=samples, spec=spec, generator=generator).loss
        loss.backward()
        optimizer.step()

    return step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="resnet18", choices=("lenet5", "vgg11", "resnet18"))
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--samples", default="1,2,5,10")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    samples = sorted({int(s) for s in args.samples.split(",")})
    if len(samples) < 3 or args.rounds < 2:
        parser.error("a slope needs at least 3 values of --samples, and the interval at least 2 --rounds")
    torch.set_num_threads(args.threads)
    spec_t = B.TASK_SPECS[args.task]
    per_epoch = steps_per_epoch(DATASET_SIZES[spec_t.dataset][0], args.batch)
    # Every model lives for the whole run (a few hundred MB each for ResNet-18); a step's activations
    # are freed when it ends, so one step's peak is added at a time.
    keys = [(label, s) for s in samples for label, _, _ in LEVERS]
    impls = {label: (impl, ctx) for label, impl, ctx in LEVERS}
    steps = {(label, s): make_step(args.task, *impls[label], args.batch, s) for label, s in keys}
    seconds = time_in_rounds(steps, args.rounds)
    print(f"{cpu_model()}; torch {torch.__version__}; {args.threads} thread(s); {args.task} (synthetic inputs), "
          f"batch {args.batch}, {per_epoch} steps per epoch; S = {samples}; {args.rounds} interleaved rounds")
    print()
    print("| lever | " + " | ".join(f"S={s} step s" for s in samples)
          + " | slope s/sample/epoch [95% t CI] | R² | slope / sequential's, paired by round [95% CI] |")
    print("| --- | " + " | ".join("---" for _ in samples) + " | --- | --- | --- |")
    rng = np.random.default_rng(0)
    x = np.array(samples, dtype=float)
    per_round = {label: np.array([np.polyfit(x, [seconds[(label, s)][r] * per_epoch for s in samples], 1)[0]
                                  for r in range(args.rounds)]) for label in impls}
    reference = LEVERS[0][0]
    for label in impls:
        medians = [statistics.median(seconds[(label, s)]) for s in samples]
        fit = fit_line(x, np.array(medians) * per_epoch)
        if label == reference:
            paired = "1.000"
        else:
            med, low, high = round_ratio_interval(per_round[label] / per_round[reference], rng)
            paired = f"{med:.3f} [{low:.3f}, {high:.3f}]"
        print(f"| {label} | " + " | ".join(f"{m:.3f}" for m in medians)
              + f" | {fit.slope:,.0f} [{fit.ci_low:,.0f}, {fit.ci_high:,.0f}] | {fit.r2:.4f} | {paired} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
