"""`bnn-bench sweep`: measure every config of a grid: the one its flags describe, or a profile with
the flags overriding its axes. `--dry-run` prints the grid (and an estimated duration) instead."""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path
from typing import Optional

from bench.cli.args import (
    nonnegative_float,
    nonnegative_int,
    open_unit_float,
    positive_float,
    positive_int,
    resolve_out,
)
from bench.contract.config import BenchConfig
from bench.contract.errors import UsageError
from bench.contract.schema import RUNS_FILE
from bench.contract.store import final_rows
from bench.grid.checks import check_data, check_models, parse_data_source
from bench.grid.devices import available_devices, check_device
from bench.grid.parse import default_threads, parse_bytes, parse_int_list, parse_name_list
from bench.grid.profiles import (
    FLAG_DEFAULTS,
    PROFILES,
    TASK_BUDGETS,
    Common,
    Overrides,
    build_grid,
    flag_grid,
    get_profile,
)
from bench.run.executors import EXECUTORS
from bench.run.progress import summary_table
from bench.run.rounds import repeats_per_round
from bench.run.sweep import run_sweep
from bench.run.worker import DEFAULT_TARGET, resolve_target

#: Name of a sweep without --profile, in its default --out directory.
FLAG_GRID_NAME = "sweep"


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """Options about where and how configs run (shared with the default job)."""
    parser.add_argument("--out", metavar="DIR", help="results directory (default: results/runs/<profile>-<timestamp>); "
                                                    "must not exist or be empty, unless --resume")
    parser.add_argument("--resume", action="store_true",
                        help="continue --out DIR: run only configs without a final row")
    parser.add_argument("--retry-errors", action="store_true",
                        help="with --resume: also run again the configs whose final row is an error (a missing "
                             "or corrupt data set, a full disk: fixed since); oom and timeout rows stay")
    parser.add_argument("--executor", choices=EXECUTORS, default="local",
                        help="local: a fresh process per config (default); inline: in this process (debugging); "
                             "slurm: one submitit job per config")
    parser.add_argument("--data-dir", metavar="DIR",
                        help="where MNIST is (default: $BNN_BENCH_DATA, ~/.cache/bnn-bench)")
    parser.add_argument("--memory-limit", metavar="BYTES", help="address-space cap per config, e.g. 8G: "
                                                                "a runaway config becomes an oom row")
    # Advanced: the config -> RunResult function the worker calls (tests inject fakes with it).
    parser.add_argument("--target", default=DEFAULT_TARGET, help=argparse.SUPPRESS)


def _description() -> str:
    budgets = "; ".join(f"{task} " + (f"{b.epochs} epoch(s)" if b.epochs else f"{b.steps} steps")
                        + f" x {b.repeats} repeats after {b.warmup} warm-up steps" for task, b in TASK_BUDGETS.items())
    return ("Measure every config of a grid, each in isolation, appending one row per config to "
            "DIR/runs.csv (timed repeats to DIR/repeats.csv, the machine to DIR/meta.json). Without "
            "--profile the grid is the one the flags describe, with defaults for the rest: "
            f"--impl {','.join(FLAG_DEFAULTS.impls)} --task {','.join(FLAG_DEFAULTS.tasks)} "
            f"--samples {','.join(map(str, FLAG_DEFAULTS.samples))}, each implementation's own KL "
            f"estimator, n_mc 1, the gaussian prior, the task's batch size, and per task {budgets}. "
            f"With --profile P ({', '.join(PROFILES)}) each flag "
            "replaces that axis in every block of P. Lists are comma-separated.")


def _add_axes(parser) -> None:
    """The grid's axes, and the prior's parameters recorded in every row."""
    grid = parser.add_argument_group("grid")
    grid.add_argument("--profile", default=None,
                      help=f"one of {', '.join(PROFILES)}; without it, the grid is the one the flags describe")
    grid.add_argument("--impl", metavar="LIST", help="implementations, e.g. sequential,vmap,vmap_lrt")
    grid.add_argument("--task", metavar="LIST", help="tasks: regression, mnist, lenet5, vgg11, resnet18")
    grid.add_argument("--device", metavar="LIST", help="cpu, cuda, cuda:N, mps (default: every device found here)")
    grid.add_argument("--samples", metavar="LIST", help="Monte Carlo samples S: 1,2,5,10 or a range 1:10")
    grid.add_argument("--kl", metavar="LIST", help="KL estimators: sample, closed, mc, repar, repar_exact "
                                                   "(default: each implementation's own)")
    grid.add_argument("--n-mc", metavar="LIST", help="KL draws for mc, repar, repar_exact: e.g. 1,100,1e4 or 1:10")
    grid.add_argument("--prior", metavar="LIST", help="gaussian, mixture (default gaussian)")
    priors = parser.add_argument_group("prior parameters (recorded in every row)")
    priors.add_argument("--prior-sigma", type=positive_float, default=1.0, metavar="S",
                        help="standard deviation of the gaussian prior (default 1)")
    priors.add_argument("--mixture-pi", type=open_unit_float, default=0.5, metavar="P",
                        help="weight of the wide component of the mixture prior, 0 < P < 1 (default 0.5)")
    priors.add_argument("--mixture-sigma1", type=positive_float, default=1.0, metavar="S",
                        help="standard deviation of the mixture's wide component (default 1)")
    priors.add_argument("--mixture-sigma2", type=positive_float, default=math.exp(-6), metavar="S",
                        help="standard deviation of the mixture's narrow component (default e^-6)")


def _add_timing(parser) -> None:
    timing = parser.add_argument_group("timing")
    timing.add_argument("--repeats", type=positive_int, metavar="N", help="timed repeats per config")
    length = timing.add_mutually_exclusive_group()
    length.add_argument("--steps", type=positive_int, metavar="N", help="timed optimizer steps per repeat")
    length.add_argument("--epochs", type=positive_int, metavar="N", help="timed whole epochs per repeat")
    timing.add_argument("--warmup", type=nonnegative_int, metavar="N", help="untimed steps before the first repeat")
    timing.add_argument("--timeout", type=positive_float, metavar="S", help="seconds per config before it is killed "
                                                                            "and recorded as timeout")
    timing.add_argument("--rounds", type=positive_int, metavar="R",
                        help="time the grid in R interleaved rounds: each round times every config once, in a "
                             "seeded shuffled order, its repeats spread over the rounds (default: the profile's; "
                             "ci uses rounds)")
    timing.add_argument("--round-seed", type=nonnegative_int, default=0, metavar="N",
                        help="seed of the rounds' shuffled orders (default 0)")
    timing.add_argument("--round-workers", choices=("warm", "fresh"), default=None,
                        help="rounds: one warm process per config driven round by round, or a fresh process per "
                             "config and round (default: the profile's, else warm; peers uses fresh, as its 36 "
                             "warm workers would not fit in 24 GiB)")
    timing.add_argument("--count-instructions", action="store_true",
                        help="also count one step's CPU instructions with Valgrind's Callgrind (minutes per config)")


def _add_setup(parser) -> None:
    """Threads, batch, seed and dtype; the dry run; the levers; init, data source and model (these last
    four join the setup group, after the levers in --help)."""
    setup = parser.add_argument_group("setup")
    setup.add_argument("--threads", type=positive_int, metavar="N",
                       help=f"torch CPU threads (default {default_threads()})")
    setup.add_argument("--batch-size", type=positive_int, metavar="N", help="minibatch size (default: the task's, 128)")
    setup.add_argument("--seed", type=nonnegative_int, default=0, metavar="N",
                       help="seed of data and weights (default 0)")
    setup.add_argument("--dtype", default="float32", choices=("float32", "float64", "bfloat16"))
    preview = parser.add_argument_group("dry run")
    preview.add_argument("--dry-run", action="store_true",
                         help="print the grid (one line per config with its run_id), the total and an estimated "
                              "duration; write nothing")
    preview.add_argument("--estimate-from", metavar="DIR",
                         help="results directory whose step times the dry run's estimate uses (default: the newest "
                              "rows of this machine found under results/)")
    levers = parser.add_argument_group("levers (one value per sweep; recorded in every row and its run_id)")
    levers.add_argument("--step-mode", default="eager", metavar="MODE",
                        help="eager (default), compile (torch.compile of the loss), cudagraphs (whole step "
                             "captured and replayed; CUDA only)")
    levers.add_argument("--precision", default="fp32", metavar="P",
                        help="fp32 (default), tf32 (TF32 tensor-core matmuls; CUDA only), bf16 (autocast), "
                             "bf16_var (vmap_lrt: only the variance path in bfloat16)")
    levers.add_argument("--optimizer", default="adam", metavar="OPT",
                        help="adam (default: torch's choice of kernel), adam_loop, adam_foreach, adam_fused")
    levers.add_argument("--flush-denormal", action="store_true",
                        help="flush denormal floats to zero in every run's process (x86 FTZ/DAZ): steps on "
                             "denormal values run several times slower on CPUs (recorded: flush_denormal)")
    setup.add_argument("--init", default="report", choices=("report", "fan_in"),
                       help="posterior init (default report: mu U(-0.2, 0.2), rho U(-5, -4))")
    setup.add_argument("--init-sigma", type=nonnegative_float, default=0.0, metavar="S",
                       help="starting sigma = softplus(rho); 0 = the init's default")
    setup.add_argument("--data", default="real", metavar="SOURCE",
                       help="real (the task's data set; default) or synthetic (seeded inputs of the task's shape, "
                            "for timing and memory studies without the data; recorded in the `data` column)")
    setup.add_argument("--model", metavar="MODULE:FACTORY",
                       help="run a user's model factory (returns an nn.Module; its Linear/Conv layers are made "
                            "Bayesian) on the task's data, e.g. bnn_impls.architectures:resnet18")


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("sweep", help="measure every config of a grid, each in its own process",
                                   description=_description())
    _add_axes(parser)
    _add_timing(parser)
    _add_setup(parser)
    add_run_options(parser)
    parser.set_defaults(run=run)
    return parser


def grid_from_args(args) -> list[BenchConfig]:
    """The configs a parsed `sweep` command line asks for; every bad value is a UsageError."""
    profile = get_profile(args.profile) if args.profile is not None else None
    overrides = Overrides(
        impls=parse_name_list(args.impl),
        tasks=parse_name_list(args.task),
        kls=parse_name_list(args.kl),
        priors=parse_name_list(args.prior),
        samples=parse_int_list(args.samples, flag="--samples") if args.samples is not None else None,
        n_mc=parse_int_list(args.n_mc, flag="--n-mc") if args.n_mc is not None else None,
        steps=args.steps, epochs=args.epochs, repeats=args.repeats, warmup=args.warmup, timeout_s=args.timeout,
    )
    devices = parse_name_list(args.device) or available_devices()
    for device in devices:
        check_device(device)
    common = Common(
        devices=devices, threads=args.threads or default_threads(), batch_size=args.batch_size, seed=args.seed,
        dtype=args.dtype, data_dir=args.data_dir,
        memory_limit_bytes=parse_bytes(args.memory_limit) if args.memory_limit else None,
        prior_sigma=args.prior_sigma, mixture_pi=args.mixture_pi, mixture_sigma1=args.mixture_sigma1,
        mixture_sigma2=args.mixture_sigma2,
        step_mode=getattr(args, "step_mode", "eager"), precision=getattr(args, "precision", "fp32"),
        optimizer=getattr(args, "optimizer", "adam"),
        init=args.init, init_sigma=args.init_sigma,
        data=parse_data_source(getattr(args, "data", "real")), model=getattr(args, "model", None),
    )
    configs = flag_grid(overrides, common) if profile is None else build_grid(profile, overrides, common)
    if getattr(args, "count_instructions", False):
        configs = [c.replace(count_instructions=True) for c in configs]
    if getattr(args, "flush_denormal", False):
        configs = [c.replace(flush_denormal=True) for c in configs]
    from bench.training.levers import check_config_levers

    for config in configs:  # a lever that cannot run here fails now, not once per config
        check_config_levers(config)
    check_models(configs)
    return configs


def rounds_from_args(args) -> Optional[int]:
    """--rounds, or the profile's own (ci times in rounds)."""
    if getattr(args, "rounds", None) is not None:
        return args.rounds
    profile = PROFILES.get(getattr(args, "profile", None) or "")
    return profile.rounds if profile else None


def round_workers_from_args(args) -> str:
    """--round-workers, or the profile's own, or warm."""
    if getattr(args, "round_workers", None):
        return args.round_workers
    profile = PROFILES.get(getattr(args, "profile", None) or "")
    return (profile.round_workers if profile else None) or "warm"


def sweep(configs, out: Path, args, profile: str) -> Path:
    """Run the sweep the parsed arguments describe, then print the results table."""
    if args.retry_errors and not args.resume:
        raise UsageError("--retry-errors continues a results directory: add --resume --out DIR")
    resolve_target(args.target)  # a bad --target fails here, not once per config in the children
    rounds = rounds_from_args(args)
    if rounds:  # too few repeats for the rounds: said before the results directory is made
        for config in configs:
            repeats_per_round(config.repeats, rounds)
    if args.target == DEFAULT_TARGET:  # injected targets bring their own (fake) data
        check_data(configs)
    run_sweep(configs, out, executor=args.executor, resume=args.resume, profile=profile,
              argv=getattr(args, "argv", None) or sys.argv, target=args.target, rounds=rounds,
              round_seed=getattr(args, "round_seed", 0), round_workers=round_workers_from_args(args),
              retry_errors=args.retry_errors)
    print()
    print(summary_table(final_rows(out)))
    print(f"\nresults: {out / RUNS_FILE}")
    return out


def run(args) -> int:
    configs = grid_from_args(args)
    name = args.profile or FLAG_GRID_NAME
    if args.dry_run:
        from bench.run.dry_run import dry_run

        print(dry_run(configs, args))
        return 0
    if args.estimate_from:
        raise UsageError("--estimate-from only applies to --dry-run: add --dry-run, or drop --estimate-from")
    sweep(configs, resolve_out(args, name), args, args.profile)
    return 0
