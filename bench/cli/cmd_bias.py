"""`bnn-bench bias`: each implementation's expected loss and gradient against weight sampling's, on a
model and posterior of the user's choosing (bench/measure/estimator_bias.py, docs/estimators.md)."""

from __future__ import annotations

import argparse
import itertools
import sys

from bench.cli.args import float_list, positive_int, resolve_out
from bench.contract.bias_schema import BIAS_COLUMNS, BIAS_FILE
from bench.contract.errors import UsageError
from bench.contract.files import make_dir
from bench.contract.store import append_csv_row
from bench.grid.checks import check_data, check_models
from bench.grid.devices import check_device
from bench.grid.parse import default_threads, parse_name_list


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "bias", help="expected loss and gradient of each implementation against weight sampling's (exact or not?)",
        description="For each task (or --model) and starting posterior width, estimate the expected NLL and its "
                    "gradient (per layer kind, for mu and rho) of each implementation from GROUPS independent "
                    "estimates of SAMPLES draws on one fixed batch and posterior, beside weight sampling's "
                    "(vmap); write DIR/bias.csv and print the table. An estimator that is exact for the model "
                    "shows |z| <= 4 and excess <= 1.5; `analyze DIR` renders the table in the report.",
    )
    parser.add_argument("--task", default="mnist,lenet5", metavar="LIST",
                        help="tasks: regression, mnist, lenet5, vgg11, resnet18 (default mnist,lenet5)")
    parser.add_argument("--model", metavar="MODULE:FACTORY", help="your own network on the task's data")
    parser.add_argument("--impl", default="sequential,vmap_lrt,vmap_flipout", metavar="LIST",
                        help="implementations to check against vmap (default sequential,vmap_lrt,vmap_flipout)")
    parser.add_argument("--init", default="report", help="posterior init scheme: report, fan_in (default report)")
    parser.add_argument("--init-sigma", default="0,0.1", metavar="LIST",
                        help="starting sigmas, one posterior width each; 0 = the scheme's own (default 0,0.1)")
    parser.add_argument("--groups", type=positive_int, default=40, metavar="K",
                        help="independent estimates per implementation (default 40)")
    parser.add_argument("--samples", type=positive_int, default=25, metavar="S",
                        help="draws per estimate (default 25)")
    parser.add_argument("--batch-size", type=positive_int, default=128, metavar="B",
                        help="examples in the fixed batch (default 128)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the model's init and the draws (default 0)")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--threads", type=positive_int, metavar="N", help=f"torch CPU threads (default "
                                                                          f"{default_threads()})")
    parser.add_argument("--data", default="real", help="real (default) or synthetic inputs of the task's shape")
    parser.add_argument("--data-dir", metavar="DIR", help="where MNIST is (default: $BNN_BENCH_DATA)")
    parser.add_argument("--out", metavar="DIR", help="results directory (default results/runs/bias-<timestamp>)")
    parser.set_defaults(run=run, resume=False)
    return parser


def setups_from_args(args):
    """The (task, width) setups and the implementations, every name checked before anything is built."""
    from bench.contract.config import BenchConfig
    from bench.measure.estimator_bias import BiasSetup
    from bnn_impls.init_schemes import INIT_SCHEMES
    from bnn_impls.names import IMPLEMENTATIONS, TASKS

    tasks, impls = parse_name_list(args.task), parse_name_list(args.impl)
    for task in tasks:
        if task not in TASKS:
            raise UsageError(f"unknown task {task!r}: choose among {', '.join(TASKS)}")
    for impl in impls:
        if impl not in IMPLEMENTATIONS:
            raise UsageError(f"--impl {impl!r}: bias compares this project's estimators, choose among "
                             f"{', '.join(IMPLEMENTATIONS)}")
    if args.init not in INIT_SCHEMES:
        raise UsageError(f"unknown --init {args.init!r}: choose one of {', '.join(INIT_SCHEMES)}")
    sigmas = float_list(args.init_sigma, "--init-sigma")
    if any(s < 0 for s in sigmas):
        raise UsageError("--init-sigma must be >= 0 (0: the scheme's own sigmas)")
    if args.groups < 2:
        raise UsageError("--groups must be at least 2: the standard errors come from the spread across groups")
    check_device(args.device)
    from bench.grid.checks import parse_data_source

    data = parse_data_source(args.data)
    configs = [BenchConfig(impl=impl, task=task, samples=1, device=args.device, model=args.model, data=data,
                           data_dir=args.data_dir) for task, impl in itertools.product(tasks, ("vmap",) + impls)]
    check_models(configs)
    check_data(configs)
    setups = [BiasSetup(task=task, init=args.init, init_sigma=sigma, model=args.model, batch_size=args.batch_size,
                        groups=args.groups, samples=args.samples, seed=args.seed, device=args.device,
                        data_dir=args.data_dir, data_source=data)
              for task, sigma in itertools.product(tasks, sigmas)]
    return setups, impls


def run(args) -> int:
    import dataclasses

    import torch

    from bench.contract import provenance
    from bench.measure.estimator_bias import measure_bias

    setups, impls = setups_from_args(args)
    out = resolve_out(args, "bias")
    make_dir(out)
    threads = args.threads or default_threads()
    torch.set_num_threads(threads)
    stamp = dict(device=args.device, dtype="float32", threads=threads, cpu_model=provenance.cpu_model(),
                 torch_version=torch.__version__, git_commit=provenance.git_commit())
    print(f"{'task':8} {'sigma':>6} {'impl':13} {'group':10} {'z':>7} {'rel_diff':>9} {'floor':>8} "
          f"{'excess':>7}  verdict")
    for setup in setups:
        for row in measure_bias(setup, impls):
            record = dict(dataclasses.asdict(row), task=setup.task, model=setup.model or "", init=setup.init,
                          init_sigma=setup.init_sigma, groups=setup.groups, samples=setup.samples,
                          batch_size=setup.batch_size, seed=setup.seed, timestamp=provenance.now_iso(), **stamp)
            append_csv_row(out / BIAS_FILE, record, BIAS_COLUMNS)
            print(f"{setup.task:8} {setup.init_sigma:6g} {row.impl:13} {row.group:10} {row.z:7.2f} "
                  f"{row.rel_diff:9.4f} {row.noise_floor:8.4f} {row.excess:7.2f}  {row.verdict}", flush=True)
    print(f"\nresults: {out / BIAS_FILE}", file=sys.stderr)
    return 0
