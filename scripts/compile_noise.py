"""Does drawing the noise outside the compiled loss make `--step-mode compile` faster? One process,
three steps of the same implementation and task, timed in interleaved rounds:

- `eager`: the plain step;
- `compile, draws inside`: `torch.compile` of the loss as it is (a graph break at each seeded draw),
  the compile lever before `draw_step_noise`;
- `compile, noise passed in`: the compile lever now (bench/training/levers.py `compiled_loss`).

    python3 scripts/compile_noise.py --impl vmap_lrt --samples 10 --rounds 25 --threads 2

Each round runs each step `--steps` times in a rotating order (after two warm-up calls each, so
compilation is not timed); the ratio is a step's time over the eager step's in the same round, median
over rounds with a 95% bootstrap interval over rounds (analysis.peers.round_ratio_interval). MNIST
784-800-800-10 shapes, batch 128, synthetic inputs, Adam.
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
from bench.training.levers import compiled_loss  # noqa: E402


def make_steps(impl_name: str, samples: int, batch: int) -> dict:
    """name -> zero-argument training step; each has its own model and generator, seeded alike."""
    impl = B.get_implementation(impl_name)
    x = torch.randn(batch, 784, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 10, (batch,), generator=torch.Generator().manual_seed(2))
    steps = {}
    for name in ("eager", "compile, draws inside", "compile, noise passed in"):
        model = B.BayesianMLP((784, 800, 800, 10), generator=torch.Generator().manual_seed(0))
        spec = B.ElboSpec(B.CategoricalLikelihood(), impl.default_kl, B.GaussianPrior(1.0), 60_000)
        generator = torch.Generator().manual_seed(3)

        def drawing(x, y, model=model, spec=spec, generator=generator):
            return impl.loss(model, x, y, samples=samples, spec=spec, generator=generator)

        loss = {"eager": drawing, "compile, draws inside": torch.compile(drawing),
                "compile, noise passed in": compiled_loss(model, impl, spec, samples, generator)}[name]
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

        def step(loss=loss, optimizer=optimizer):
            optimizer.zero_grad(set_to_none=True)
            loss(x, y).loss.backward()
            optimizer.step()

        steps[name] = step
    return steps


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--impl", default="vmap_lrt", choices=("vmap", "vmap_lrt", "vmap_flipout"))
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=at_least_two, default=25,
                        help="interleaved rounds, at least 2 (the interval is over rounds)")
    parser.add_argument("--steps", type=int, default=3, help="timed steps per step kind per round")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    steps = make_steps(args.impl, args.samples, args.batch)
    names = list(steps)
    seconds = time_in_rounds(steps, args.rounds, calls=args.steps, order="rotate")
    print(f"{cpu_model()}; torch {torch.__version__}; {args.threads} thread(s); {args.impl} MNIST shapes, "
          f"batch {args.batch}, S = {args.samples}; {args.rounds} interleaved rounds of {args.steps} steps")
    print()
    print("| step | ms (median) | over eager, same round [95% CI] |")
    print("| --- | --- | --- |")
    rng = np.random.default_rng(0)
    eager = np.array(seconds["eager"])
    for name in names:
        mine = np.array(seconds[name])
        ratio = "1.000" if name == "eager" else "{:.3f} [{:.3f}, {:.3f}]".format(
            *round_ratio_interval(mine / eager, rng))
        print(f"| {name} | {statistics.median(mine) * 1e3:.1f} | {ratio} |")
    inside, passed = np.array(seconds["compile, draws inside"]), np.array(seconds["compile, noise passed in"])
    print()
    print("noise passed in / draws inside, same round: {:.3f} [{:.3f}, {:.3f}]".format(
        *round_ratio_interval(passed / inside, rng)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
