"""`bnn-bench train`: train configs for E epochs, measuring quality after every epoch (quality.csv),
then uncertainty on OOD inputs, FGSM robustness and the regression band (docs/quality.md)."""

from __future__ import annotations

import argparse
import itertools
import sys

from bench.cli.args import float_list, positive_float, positive_int, resolve_out, unit_fraction
from bench.contract.config import BenchConfig
from bench.contract.errors import UsageError
from bench.contract.quality_schema import BASELINE_TASKS, BASELINES, QUALITY_FILE
from bench.grid.checks import check_data, check_models
from bench.grid.devices import check_device
from bench.grid.expand import Axes, expand
from bench.grid.parse import default_threads, parse_int_list, parse_name_list
from bnn_impls.init_schemes import INIT_SCHEMES

DEFAULT_EPOCHS = 20


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "train", help="train configs for E epochs and measure test quality after every epoch",
        description="Train every config of a grid for --epochs epochs in this process; after each epoch, outside "
                    "the timed region, evaluate the predictive mixture over --test-samples posterior samples "
                    "(classification: test error, NLL, ECE, Brier; regression: RMSE, NLL, 95%% coverage) and append "
                    "a row to DIR/quality.csv with the training wall time so far. After the last epoch: OOD "
                    "uncertainty (ood.csv), FGSM accuracy (fgsm.csv) for MNIST, the predictive band for regression.",
    )
    grid = parser.add_argument_group("grid (comma-separated lists; every combination is trained)")
    grid.add_argument("--impl", metavar="LIST", default="vmap_lrt",
                      help=f"implementations, and/or the baselines {', '.join(BASELINES)} (default vmap_lrt)")
    grid.add_argument("--task", metavar="LIST", default="mnist",
                      help="regression, mnist, lenet5, vgg11, resnet18 (default mnist)")
    grid.add_argument("--samples", metavar="LIST", default="1", help="training samples S (default 1)")
    grid.add_argument("--seed", metavar="LIST", default="0",
                      help="seeds (default 0); several measure seed-to-seed spread")
    grid.add_argument("--init", metavar="LIST", default="report",
                      help=f"posterior init: {', '.join(INIT_SCHEMES)} (default report)")
    grid.add_argument("--init-sigma", metavar="LIST", default="0", help="starting sigma; 0 = the scheme's default")
    grid.add_argument("--prior-sigma", metavar="LIST", default="1", help="sigma of the gaussian prior (default 1)")
    grid.add_argument("--kl", help="KL estimator (default: each implementation's own)")
    grid.add_argument("--prior", default="gaussian", help="gaussian, mixture")
    grid.add_argument("--baselines", action="store_true",
                      help="also train each task's deterministic baselines, without and with dropout (mnist: "
                           "mlp, mlp_dropout; lenet5: lenet5, lenet5_dropout), same epochs, lr and batch, per seed")
    train = parser.add_argument_group("training")
    train.add_argument("--epochs", type=positive_int, default=DEFAULT_EPOCHS, help=f"epochs (default {DEFAULT_EPOCHS})")
    train.add_argument("--lr", type=positive_float, help="Adam learning rate (default: the task's)")
    train.add_argument("--batch-size", type=positive_int, help="minibatch size (default: the task's, 128)")
    train.add_argument("--stop-at-error", type=unit_fraction, metavar="E",
                       help="stop a config after the first epoch with test error <= E (time-to-accuracy runs)")
    train.add_argument("--device", default="cpu")
    train.add_argument("--threads", type=positive_int, help=f"torch CPU threads (default {default_threads()})")
    train.add_argument("--dtype", default="float32", choices=("float32", "float64", "bfloat16"))
    train.add_argument("--precision", default="fp32", choices=("fp32", "bf16", "bf16_var"),
                       help="the training step's precision lever (docs/measuring.md); evaluation runs in --dtype")
    evaluation = parser.add_argument_group("evaluation")
    evaluation.add_argument("--test-samples", type=positive_int, default=100,
                            help="posterior samples per prediction (default 100)")
    evaluation.add_argument("--attack-samples", type=positive_int, help="samples in the MC average FGSM differentiates "
                                                                         "(default: --test-samples)")
    evaluation.add_argument("--ood-examples", type=positive_int, default=10000,
                            help="examples per OOD set (default 10000)")
    evaluation.add_argument("--fgsm-examples", type=positive_int, default=10000,
                            help="MNIST test examples attacked (default 10000, the whole test set)")
    evaluation.add_argument("--eval-rows", type=positive_int, default=50000,
                            help="samples x examples per evaluation chunk: bounds evaluation memory (default 50000)")
    evaluation.add_argument("--no-ood", action="store_true", help="skip the OOD evaluation")
    evaluation.add_argument("--no-fgsm", action="store_true", help="skip the FGSM evaluation")
    evaluation.add_argument("--no-download", action="store_true", help="never try to download FashionMNIST / KMNIST")
    parser.add_argument("--out", metavar="DIR", help="results directory (default results/runs/train-<timestamp>)")
    parser.add_argument("--resume", action="store_true",
                        help="continue --out DIR: configs with a final row are skipped")
    parser.add_argument("--retry-errors", action="store_true",
                        help="with --resume: also train again the configs whose final row is an error")
    parser.add_argument("--data-dir", metavar="DIR", help="where MNIST (and FashionMNIST, KMNIST) are")
    parser.set_defaults(run=run)
    return parser


def configs_from_args(args) -> list[BenchConfig]:
    """The grid `train` trains, expanded by the sweep's own `expand` (so every name and combination is
    checked the same way), in task, implementation, S, seed, init, init sigma, prior sigma order; the
    deterministic baselines after them."""
    impls, tasks, inits = parse_name_list(args.impl), parse_name_list(args.task), parse_name_list(args.init)
    baselines = [i for i in impls if i in BASELINES] + (
        [b for t in tasks for b in BASELINES if BASELINE_TASKS[b] == t] if args.baselines else [])
    impls = tuple(i for i in impls if i not in BASELINES)
    for init in inits:
        if init not in INIT_SCHEMES:
            raise UsageError(f"unknown --init {init!r}: choose one of {', '.join(INIT_SCHEMES)}")
    check_device(args.device)
    samples = parse_int_list(args.samples, flag="--samples")
    seeds = parse_int_list(args.seed, flag="--seed", minimum=0)
    init_sigmas = float_list(args.init_sigma, "--init-sigma")
    prior_sigmas = float_list(args.prior_sigma, "--prior-sigma")
    if any(s < 0 for s in init_sigmas) or any(s <= 0 for s in prior_sigmas):
        raise UsageError("--init-sigma must be >= 0 and --prior-sigma > 0")
    common = dict(threads=args.threads or default_threads(), batch_size=args.batch_size, lr=args.lr, dtype=args.dtype,
                  data_dir=args.data_dir, epochs=args.epochs, repeats=1, warmup_steps=0,
                  precision=getattr(args, "precision", "fp32"))
    axes = Axes(impls=impls, tasks=tasks, samples=samples, devices=(args.device,),
                kls=(args.kl,) if args.kl else None, priors=(args.prior,))
    configs = []
    for seed, init, init_sigma, prior_sigma in itertools.product(seeds, inits, init_sigmas, prior_sigmas):
        configs += expand(axes, seed=seed, init=init, init_sigma=init_sigma, prior_sigma=prior_sigma, **common)
    configs.sort(key=lambda c: (tasks.index(c.task), impls.index(c.impl), samples.index(c.samples),
                                seeds.index(c.seed), inits.index(c.init), init_sigmas.index(c.init_sigma),
                                prior_sigmas.index(c.prior_sigma)))
    if args.baselines and not baselines:
        raise UsageError(f"--baselines: no deterministic baseline exists for task(s) {', '.join(tasks)}: "
                         f"they exist for {', '.join(dict.fromkeys(BASELINE_TASKS.values()))}")
    for baseline in dict.fromkeys(baselines):
        if BASELINE_TASKS[baseline] not in tasks:
            raise UsageError(f"baseline {baseline!r} is the {BASELINE_TASKS[baseline]} task's network: add "
                             f"{BASELINE_TASKS[baseline]} to --task")
    for seed, baseline in itertools.product(seeds, dict.fromkeys(baselines)):
        configs.append(BenchConfig(impl=baseline, task=BASELINE_TASKS[baseline], samples=1, seed=seed,
                                   device=args.device, prior=args.prior, **dict(common, precision="fp32")))
    from bench.training.levers import check_config_levers

    for config in configs:  # as sweep does: a lever that cannot run fails now (main.py: one line, exit 2)
        check_config_levers(config)
    return configs


def options_from_args(args):
    from bench.quality.run import QualityOptions

    return QualityOptions(test_samples=args.test_samples, attack_samples=args.attack_samples,
                          eval_rows=args.eval_rows, stop_at_error=args.stop_at_error, ood=not args.no_ood,
                          fgsm=not args.no_fgsm, ood_examples=args.ood_examples, allow_download=not args.no_download,
                          fgsm_examples=args.fgsm_examples)


def run(args) -> int:
    configs = configs_from_args(args)
    options = options_from_args(args)
    out = resolve_out(args, "train")
    if args.retry_errors and not args.resume:
        raise UsageError("--retry-errors continues a results directory: add --resume --out DIR")
    check_models(configs)
    check_data(configs)  # a missing or unreadable data set stops here, before any config trains
    from bench.quality.run import run_quality

    run_quality(configs, options, out, resume=args.resume, retry_errors=args.retry_errors,
                argv=getattr(args, "argv", None) or sys.argv, log=lambda line: print(line, flush=True))
    print(f"\nresults: {out / QUALITY_FILE}")
    return 0
