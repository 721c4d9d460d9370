"""`bnn-bench profile`: a torch.profiler summary of N training steps of one config (bench/measure/profiler.py)."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.cli.args import nonnegative_int, positive_int
from bench.contract.config import BenchConfig
from bench.contract.errors import UsageError
from bench.grid.checks import check_data, check_models
from bench.grid.devices import check_device
from bench.grid.expand import Axes, expand
from bench.grid.parse import default_threads, parse_int_list


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "profile", help="profiler summary of one config's training step (top kernels, host time, launch gaps)",
        description="Profile STEPS training steps of one config with torch.profiler after WARMUP untimed ones, and "
                    "write DIR/profiles/<run_id>.md (summary), <run_id>_ops.csv (every operator and kernel) and "
                    "append a row to DIR/profiles/summary.csv.",
    )
    parser.add_argument("--task", default="mnist", help="regression, mnist, lenet5, vgg11, resnet18 (default mnist)")
    parser.add_argument("--impl", default="vmap_lrt", help="implementation (default vmap_lrt)")
    parser.add_argument("--samples", default="10", metavar="S", help="Monte Carlo samples S (default 10)")
    parser.add_argument("--kl", help="KL estimator (default: the implementation's own)")
    parser.add_argument("--n-mc", default="1", metavar="N", help="KL draws for mc, repar, repar_exact (default 1)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda, cuda:N (default cpu)")
    parser.add_argument("--steps", type=positive_int, default=20, metavar="N", help="profiled steps (default 20)")
    parser.add_argument("--warmup", type=nonnegative_int, default=5, metavar="N",
                        help="untimed steps first (default 5)")
    parser.add_argument("--threads", type=positive_int, metavar="N",
                        help=f"torch CPU threads (default {default_threads()})")
    parser.add_argument("--step-mode", default="eager", help="eager, compile, cudagraphs")
    parser.add_argument("--precision", default="fp32", help="fp32, tf32, bf16, bf16_var (vmap_lrt)")
    parser.add_argument("--optimizer", default="adam", help="adam, adam_loop, adam_foreach, adam_fused")
    parser.add_argument("--flush-denormal", action="store_true", help="flush denormal floats to zero (CPU)")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="where MNIST is (default: $BNN_BENCH_DATA, ~/.cache/bnn-bench)")
    parser.add_argument("--out", metavar="DIR", required=True, help="results directory; files go to DIR/profiles/")
    parser.set_defaults(run=run)
    return parser


def config_from_args(args) -> BenchConfig:
    """The one config to profile. Its names and combination are checked as a sweep's are (`expand`), and
    it keeps the run_id it has always had here (kl None: the implementation's own, hashed as "default")."""
    check_device(args.device)
    (samples,) = _one(parse_int_list(args.samples, flag="--samples"), "--samples")
    (n_mc,) = _one(parse_int_list(args.n_mc, flag="--n-mc"), "--n-mc")
    expand(Axes(impls=(args.impl,), tasks=(args.task,), samples=(samples,), devices=(args.device,),
                kls=(args.kl,) if args.kl else None, n_mc=(n_mc,)), steps=args.steps)
    try:
        return BenchConfig(impl=args.impl, task=args.task, samples=samples, device=args.device, kl=args.kl, n_mc=n_mc,
                           threads=args.threads or default_threads(), repeats=1, warmup_steps=max(1, args.warmup),
                           steps=args.steps, data_dir=args.data_dir, step_mode=args.step_mode,
                           precision=args.precision, optimizer=args.optimizer,
                           flush_denormal=args.flush_denormal)
    except ValueError as e:
        raise UsageError(f"{e}: fix the matching flag") from None


def _one(values, flag):
    if len(values) != 1:
        raise UsageError(f"{flag} takes one value for a profile, got {len(values)}: profile configs one at a time")
    return values


def run(args) -> int:
    from bench.measure.profiler import profile_config

    config = config_from_args(args)
    check_models([config])
    check_data([config])
    path = profile_config(config, Path(args.out), steps=args.steps, warmup=args.warmup)
    print(path.read_text())
    print(f"profile: {path}")
    return 0
