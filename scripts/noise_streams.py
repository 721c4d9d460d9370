"""Would drawing a step's noise from two generators at once, one per core, make `vmap_lrt` faster?

torch fills a CPU tensor from one generator serially (mt19937: `uniform_` costs nearly what `normal_`
does), so at 2 threads the noise of a `vmap_lrt` MNIST S = 10 step (2.06 M normals) runs on one
core while the other waits. This lever splits each noise tensor into contiguous halves, each filled
from its own seeded generator in its own thread (torch releases the GIL inside the fill). It would
change which noise a seed gives, so it is measured here before anything is built into the harness.

    python3 scripts/noise_streams.py --rounds 25 --threads 2

One process, interleaved rounds (bench.measure.timing.time_in_rounds, rotating order, 3 calls per
step per round after 2 warm-up calls): the draws alone with one generator and with two; and four
training steps of `vmap_lrt` (MNIST 784-800-800-10 shapes, batch 128, synthetic inputs, Adam), eager
and `torch.compile`d, each with its noise drawn up front from one generator or from two and passed
in (`draw_step_noise`, as the compile lever does). Ratios: two streams over one, same round, median
over rounds with a 95% bootstrap interval over rounds (analysis.peers.round_ratio_interval).

A second table compares the compiled step with its noise passed in against the same loss compiled
with its draws inside and no generator (`generator=None`): the graph then has no break, and
inductor makes the normals itself (its counter-based generator, seeded from torch's global seed,
inside the fused kernels, on every thread) instead of reading a tensor filled serially. That too
would change which noise a seed gives.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
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

STREAMS = 2


def parallel_normal_(out: torch.Tensor, generators, pool: ThreadPoolExecutor) -> torch.Tensor:
    """Fill contiguous `out` with standard normals: slice i of len(generators) from generators[i]."""
    flat = out.view(-1)
    bounds = [flat.numel() * i // len(generators) for i in range(len(generators) + 1)]
    futures = [pool.submit(flat[a:b].normal_, generator=g) for a, b, g in zip(bounds, bounds[1:], generators)]
    for future in futures:
        future.result()
    return out


def make_steps(samples: int, batch: int) -> dict:
    """name -> zero-argument callable; every training step has its own model and generators, seeded alike."""
    impl = B.get_implementation("vmap_lrt")
    x = torch.randn(batch, 784, generator=torch.Generator().manual_seed(1))
    y = torch.randint(0, 10, (batch,), generator=torch.Generator().manual_seed(2))
    pool = ThreadPoolExecutor(STREAMS)

    def model_and_spec():
        model = B.BayesianMLP((784, 800, 800, 10), generator=torch.Generator().manual_seed(0))
        return model, B.ElboSpec(B.CategoricalLikelihood(), impl.default_kl, B.GaussianPrior(1.0), 60_000)

    probe_model, _ = model_and_spec()
    shapes = [tuple(z.shape) for z in impl.draw_step_noise(probe_model, samples, x, torch.Generator().manual_seed(0))]

    def drawer(streams: int):
        generator = torch.Generator().manual_seed(3)
        generators = [torch.Generator().manual_seed(10 + i) for i in range(STREAMS)]
        if streams == 1:
            return lambda model: impl.draw_step_noise(model, samples, x, generator)
        return lambda model: [parallel_normal_(torch.empty(s), generators, pool) for s in shapes]

    one, several = drawer(1), drawer(STREAMS)
    steps = {"draws, 1 stream": lambda: one(probe_model), f"draws, {STREAMS} streams": lambda: several(probe_model)}
    for mode in ("eager", "compile"):
        for streams in (1, STREAMS):
            model, spec = model_and_spec()
            draw = drawer(streams)

            def loss(x, y, noise, model=model, spec=spec):
                return impl.loss(model, x, y, samples=samples, spec=spec, noise=noise)

            loss = torch.compile(loss) if mode == "compile" else loss
            optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

            def step(loss=loss, optimizer=optimizer, draw=draw, model=model):
                noise = draw(model)
                optimizer.zero_grad(set_to_none=True)
                loss(x, y, noise).loss.backward()
                optimizer.step()

            steps[f"{mode}, {streams} stream{'s' if streams > 1 else ''}"] = step
    torch.manual_seed(0)  # inductor's in-graph generator takes its seed from the global one
    model, spec = model_and_spec()
    impl.loss(model, x, y, samples=samples, spec=spec, generator=None)  # builds the skeleton outside the trace
    in_graph = torch.compile(lambda x, y: impl.loss(model, x, y, samples=samples, spec=spec, generator=None))
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step_in_graph():
        optimizer.zero_grad(set_to_none=True)
        in_graph(x, y).loss.backward()
        optimizer.step()

    steps["compile, in-graph RNG"] = step_in_graph
    return steps


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples", type=int, default=10)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--rounds", type=at_least_two, default=25,
                        help="interleaved rounds, at least 2 (the interval is over rounds)")
    parser.add_argument("--steps", type=int, default=3, help="timed calls per step kind per round")
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    steps = make_steps(args.samples, args.batch)
    seconds = {k: np.array(v) for k, v in time_in_rounds(steps, args.rounds, calls=args.steps, order="rotate").items()}
    print(f"{cpu_model()}; torch {torch.__version__}; {args.threads} thread(s); vmap_lrt MNIST shapes, batch "
          f"{args.batch}, S = {args.samples}; {args.rounds} interleaved rounds of {args.steps} calls")
    print()
    print(f"| what | 1 stream ms | {STREAMS} streams ms | {STREAMS} streams / 1, same round [95% CI] |")
    print("| --- | --- | --- | --- |")
    rng = np.random.default_rng(0)
    for what in ("draws", "eager", "compile"):
        one = seconds[f"{what}, 1 stream"]
        two = seconds[f"{what}, {STREAMS} streams"]
        print("| {} | {:.2f} | {:.2f} | {:.3f} [{:.3f}, {:.3f}] |".format(
            what if what == "draws" else f"{what} step", statistics.median(one) * 1e3, statistics.median(two) * 1e3,
            *round_ratio_interval(two / one, rng)))
    passed, inside = seconds["compile, 1 stream"], seconds["compile, in-graph RNG"]
    print()
    print("| compile step | noise passed in ms | in-graph RNG ms | in-graph / passed in, same round [95% CI] |")
    print("| --- | --- | --- | --- |")
    print("| vmap_lrt | {:.2f} | {:.2f} | {:.3f} [{:.3f}, {:.3f}] |".format(
        statistics.median(passed) * 1e3, statistics.median(inside) * 1e3, *round_ratio_interval(inside / passed, rng)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
