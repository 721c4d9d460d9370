"""`bnn-bench maxnmc`: the graph-reparameterization memory table (largest n_mc per model and KL
estimator within a memory budget), by bisection over isolated runs; `analyze DIR` renders it."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.cli.args import (
    at_least_two,
    default_out_dir,
    nonnegative_float,
    nonnegative_int,
    positive_float,
    positive_int,
)
from bench.contract.config import BenchConfig
from bench.contract.errors import UsageError
from bench.grid.checks import check_data, check_models, parse_data_source
from bench.grid.devices import check_device
from bench.grid.expand import as_usage_error
from bench.grid.parse import default_threads, parse_bytes, parse_int_list, parse_name_list
from bench.run.executors import EXECUTORS
from bench.run.maxnmc_search import DEFAULT_CAPS, ESTIMATORS, run_maxnmc
from bnn_impls import names, registry

DEFAULT_TASKS = ("lenet5", "vgg11", "resnet18")


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "maxnmc", help="largest n_mc per model and KL estimator within a memory budget (the graph-repar table)",
        description="For each task (model) and KL estimator, find the largest n_mc whose training step fits "
                    "--memory-limit: n_mc = 1, then x GROWTH until a probe runs out of memory or reaches the cap, "
                    "then bisection. Each probe is its own process and one row of DIR/runs.csv (an out-of-memory "
                    "probe is an `oom` row), with its step time and graph_bytes. `analyze DIR` renders the table "
                    "and a figure of time and graph_bytes against n_mc.",
    )
    parser.add_argument("--task", metavar="LIST", default=",".join(DEFAULT_TASKS),
                        help=f"models, as tasks (default {','.join(DEFAULT_TASKS)})")
    parser.add_argument("--kl", metavar="LIST", default=",".join(ESTIMATORS),
                        help="estimators (default mc,repar,repar_exact)")
    parser.add_argument("--impl", default="vmap_lrt", help="implementation of the likelihood term (default vmap_lrt)")
    parser.add_argument("--samples", type=positive_int, default=1, metavar="S",
                        help="weight samples per step (default 1)")
    parser.add_argument("--memory-limit", metavar="BYTES", default="8G",
                        help="the budget per probe (default 8G): the address-space cap of its process on a CPU, "
                             "the CUDA allocator's limit (set_per_process_memory_fraction) on a GPU")
    parser.add_argument("--cap", metavar="KL=N,...", default="",
                        help="largest n_mc tried per estimator (defaults " +
                             ", ".join(f"{k}={v:g}" for k, v in DEFAULT_CAPS.items()) + "), e.g. repar=1000")
    parser.add_argument("--growth", type=at_least_two, default=10,
                        help="factor (>= 2) between probes before the first failure (default 10)")
    parser.add_argument("--precision", type=nonnegative_float, default=0.05,
                        help="stop bisecting when the first failing n_mc is within this fraction of the largest "
                             "fitting one (default 0.05; 0 for the exact integer)")
    parser.add_argument("--steps", type=positive_int, default=1, help="timed steps per repeat (default 1)")
    parser.add_argument("--repeats", type=positive_int, default=1, help="timed repeats (default 1)")
    parser.add_argument("--warmup", type=nonnegative_int, default=0, help="untimed steps before timing (default 0; "
                                                                          "the graph_bytes step comes first anyway)")
    parser.add_argument("--timeout", type=positive_float, metavar="S", help="seconds per probe")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=positive_int, metavar="N")
    parser.add_argument("--batch-size", type=positive_int, metavar="N", help="minibatch size (default: the task's)")
    parser.add_argument("--seed", type=nonnegative_int, default=0)
    parser.add_argument("--dtype", default="float32", choices=("float32", "float64", "bfloat16"))
    parser.add_argument("--data", default="real", metavar="SOURCE", help="real or synthetic (default real)")
    parser.add_argument("--data-dir", metavar="DIR")
    parser.add_argument("--model", metavar="MODULE:FACTORY",
                        help="a user's model factory instead of the task's network")
    parser.add_argument("--out", metavar="DIR", help="results directory (default results/runs/maxnmc-<timestamp>)")
    parser.add_argument("--resume", action="store_true", help="continue --out DIR, reusing the probes it holds")
    parser.add_argument("--executor", choices=EXECUTORS, default="local")
    parser.set_defaults(run=run)
    return parser


def parse_caps(text: str) -> dict:
    caps = dict(DEFAULT_CAPS)
    for part in filter(None, (p.strip() for p in (text or "").split(","))):
        kl, sep, value = part.partition("=")
        if not sep or kl.strip() not in DEFAULT_CAPS:
            raise UsageError(f"--cap {part!r} is malformed: write KL=N with KL one of {', '.join(DEFAULT_CAPS)}, "
                             "e.g. --cap repar=1000")
        caps[kl.strip()] = parse_int_list(value, flag="--cap")[0]
    return caps


def base_config(args, kls) -> BenchConfig:
    for kl in kls:
        as_usage_error(registry.check_combination, args.impl, kl, "gaussian")
        if kl not in ESTIMATORS:
            raise UsageError(f"--kl {kl!r} has no n_mc to search: choose from {', '.join(ESTIMATORS)}")
    check_device(args.device)
    try:
        return BenchConfig(
            impl=args.impl, task="mnist", samples=args.samples, device=args.device, kl=kls[0], n_mc=1,
            batch_size=args.batch_size, dtype=args.dtype, threads=args.threads or default_threads(), seed=args.seed,
            repeats=args.repeats, warmup_steps=args.warmup, steps=args.steps, timeout_s=args.timeout,
            data_dir=args.data_dir, memory_limit_bytes=parse_bytes(args.memory_limit),
            data=parse_data_source(args.data), model=args.model,
        )
    except ValueError as e:
        raise UsageError(f"{e}: fix the matching flag") from None


def run(args) -> int:
    tasks = parse_name_list(args.task)
    kls = parse_name_list(args.kl)
    for task in tasks:
        as_usage_error(names.check_task, task)
    caps = parse_caps(args.cap)
    base = base_config(args, kls)
    probes = [base.replace(task=t, kl=k) for t in tasks for k in kls]
    check_models(probes)
    check_data(probes)
    out = Path(args.out) if args.out else default_out_dir("maxnmc")
    if args.resume and not args.out:
        raise UsageError("--resume needs --out DIR: the results directory to continue")
    found = run_maxnmc(base, tasks, kls, caps, out, executor=args.executor, resume=args.resume,
                       argv=getattr(args, "argv", None) or sys.argv, growth=args.growth, precision=args.precision)
    print()
    for (task, kl), r in found.items():
        bound = f"fails at {r.first_failure}" if r.first_failure else r.stopped_by
        print(f"{task:<10} {kl:<12} max n_mc {r.max_fit:>8}  ({bound}; probes {', '.join(map(str, r.probes))})")
    print(f"\nresults: {out / 'runs.csv'}  (table and figure: bnn-bench analyze {out})")
    return 0
