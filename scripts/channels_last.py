"""The channels-last lever for conv nets on the CPU (issue 25, item 4): every 4-D posterior tensor
(mu and rho of the convolutions) and the input batch in `torch.channels_last`, against the default
contiguous layout, for `vmap_lrt` and `sequential`, in one interleaved run.

    python3 scripts/channels_last.py --task resnet18 --batch 8 --samples 2 --rounds 7 --threads 1
    python3 scripts/channels_last.py --task lenet5 --batch 32 --samples 10 --rounds 9 --threads 1

Each round times one training step (forward, backward, Adam) of each (implementation, layout) in
alternating order, after two untimed warm-up steps each; the ratio is channels-last over contiguous
of the same implementation in the same round: median over rounds with a 95% bootstrap interval
over rounds (analysis.peers.round_ratio_interval). Synthetic inputs (the layout, not the data, is
under test). The table goes to standard output with the machine, torch and threads above it.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import bnn_impls as B  # noqa: E402
from analysis.peers import round_ratio_interval  # noqa: E402
from bench.cli.args import at_least_two  # noqa: E402
from bench.contract.provenance import cpu_model  # noqa: E402
from bench.measure.timing import time_in_rounds  # noqa: E402
from bnn_impls.model_factory import build_model  # noqa: E402

LAYOUTS = ("contiguous", "channels_last")


def make_step(task: str, impl_name: str, layout: str, batch: int, samples: int):
    """A zero-argument training step of a fresh model (same seed for every layout)."""
    spec_t = B.TASK_SPECS[task]
    model = build_model(spec_t, generator=torch.Generator().manual_seed(0))
    inputs = torch.randn(batch, *spec_t.input_shape, generator=torch.Generator().manual_seed(1))
    labels = torch.randint(0, spec_t.sizes[-1], (batch,), generator=torch.Generator().manual_seed(2))
    if layout == "channels_last":
        with torch.no_grad():
            for p in list(model.mu) + list(model.rho):
                if p.dim() == 4:
                    p.data = p.data.contiguous(memory_format=torch.channels_last)
        inputs = inputs.contiguous(memory_format=torch.channels_last)
    impl = B.get_implementation(impl_name)
    spec = B.ElboSpec(likelihood=spec_t.likelihood, kl=impl.default_kl, prior=B.GaussianPrior(1.0), n_train=50_000)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    generator = torch.Generator().manual_seed(3)

    def step():
        optimizer.zero_grad(set_to_none=True)
        impl.loss(model, inputs, labels, samples=samples, spec=spec, generator=generator).loss.backward()
        optimizer.step()

    return step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="resnet18", choices=("lenet5", "vgg11", "resnet18"))
    parser.add_argument("--impls", default="vmap_lrt,sequential")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--samples", type=int, default=2)
    parser.add_argument("--rounds", type=at_least_two, default=7,
                        help="interleaved rounds, at least 2 (the interval is over rounds)")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    impls = [name.strip() for name in args.impls.split(",") if name.strip()]
    steps = {(impl, layout): make_step(args.task, impl, layout, args.batch, args.samples)
             for impl in impls for layout in LAYOUTS}
    times = time_in_rounds(steps, args.rounds)
    print(f"{cpu_model()}; torch {torch.__version__}; {args.threads} thread(s); {args.task} (synthetic inputs), "
          f"batch {args.batch}, S = {args.samples}; {args.rounds} interleaved rounds")
    print()
    print("| implementation | layout | step ms (median) | channels-last / contiguous [95% CI] |")
    print("| --- | --- | --- | --- |")
    rng = np.random.default_rng(0)
    for impl in impls:
        base = np.array(times[(impl, "contiguous")])
        for layout in LAYOUTS:
            mine = np.array(times[(impl, layout)])
            if layout == "contiguous":
                ratio = "1.000"
            else:
                med, low, high = round_ratio_interval(mine / base, rng)
                ratio = f"{med:.3f} [{low:.3f}, {high:.3f}]"
            print(f"| {impl} | {layout} | {statistics.median(mine) * 1e3:.1f} | {ratio} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
