"""`bnn-bench check BASELINE [CANDIDATE]`: did something get slower or hungrier?

CANDIDATE is a results directory or pytest-benchmark JSON file; without it, the baseline's grid
(stored in its meta.json) is run again here and compared. Exit 0: nothing regressed; 1: something
did; 2: bad input, or a paired run whose base side failed on some config. The statistics live in
analysis/compare.py (no torch there).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from analysis.compare_render import FORMATS
from bench.cli.args import default_out_dir, open_unit_float
from bench.contract.errors import UsageError
from bench.contract.files import write_text_atomic
from bench.run.executors import EXECUTORS


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "check", help="compare a candidate run with a baseline; exit 1 on a regression",
        description="Compare CANDIDATE (a results directory or pytest-benchmark JSON) with BASELINE; without "
                    "CANDIDATE, re-run the baseline's grid here first. Compares each implementation's step time "
                    "over sequential's in the same run, absolute step times where the machine fingerprint "
                    "matches, and memory. Exit 0: no regression; 1: a regression; 2: bad input.",
    )
    parser.add_argument("baseline", metavar="BASELINE")
    parser.add_argument("candidate", metavar="CANDIDATE", nargs="?")
    parser.add_argument("--threshold", type=open_unit_float, default=0.10,
                        help="smallest slowdown of a ratio to sequential that counts (default 0.10: 10%%)")
    parser.add_argument("--abs-threshold", type=open_unit_float, default=0.25,
                        help="smallest slowdown of an absolute step time that counts, on the same machine "
                             "(default 0.25: absolute times drift more between runs than ratios)")
    parser.add_argument("--alpha", type=open_unit_float, default=0.05, help="significance level (default 0.05)")
    parser.add_argument("--counter-threshold", type=open_unit_float, default=0.01,
                        help="smallest growth of a deterministic counter (FLOPs, bytes allocated, instructions "
                             "per step) that counts (default 0.01: 1%%); any growth of an operator's count counts")
    parser.add_argument("--paired-threshold", type=open_unit_float, default=0.05,
                        help="smallest slowdown against the base commit's code timed in the same rounds that "
                             "counts (default 0.05; the gate takes it from the baseline's thresholds.json)")
    parser.add_argument("--base-ref", metavar="REF",
                        help="the commit whose code the fresh run is paired with, round by round (default: the "
                             "commit that recorded BASELINE, from its meta.json)")
    parser.add_argument("--no-paired", action="store_true",
                        help="time this checkout only (no base-commit code beside it): about a third of the "
                             "time, but then only the stored ratio and absolute rows judge time, and only on the "
                             "baseline's own machine")
    parser.add_argument("--trust-model", metavar="MODULE:FACTORY", action="append", default=[],
                        help="re-run a baseline whose grid names this model factory: it is imported and called "
                             "(repeat for several); without it such a baseline is refused, since a results "
                             "directory is data and never runs code on its own")
    parser.add_argument("--base-plugins", metavar="MODULES", default="",
                        help="BNN_BENCH_PLUGINS for the base commit's workers (default none: a plugin is "
                             "usually the change under test)")
    parser.add_argument("--format", choices=FORMATS, default="text",
                        help="text (default), markdown (a table for a pull-request comment), github (text plus "
                             "::error annotations for GitHub Actions)")
    parser.add_argument("--json", metavar="FILE",
                        help="also write the comparison as JSON to FILE (docs/results-format.md)")
    parser.add_argument("--rounds", type=int, metavar="R",
                        help="the fresh run's interleaved rounds (default: the baseline's, from its meta.json)")
    parser.add_argument("--out", metavar="DIR",
                        help="where the fresh run goes (default results/runs/check-<timestamp>)")
    parser.add_argument("--executor", choices=EXECUTORS, default="local", help="how the fresh run's configs run")
    parser.add_argument("--data-dir", metavar="DIR", help="where MNIST is, for the fresh run")
    # Advanced: the config -> RunResult function of the fresh run (tests inject fakes, as with sweep).
    parser.add_argument("--target", default=None, help=argparse.SUPPRESS)
    parser.set_defaults(run=run)
    return parser


def fresh_run(baseline: Path, args) -> Path:
    """The baseline's grid measured here (bench/gate/rerun.py), into --out or results/runs/check-*."""
    from bench.gate.rerun import RerunOptions, rerun_baseline

    options = RerunOptions(out=Path(args.out) if args.out else default_out_dir("check"), data_dir=args.data_dir,
                           rounds=args.rounds, executor=args.executor, paired=not args.no_paired,
                           base_ref=args.base_ref, base_plugins=args.base_plugins or None, target=args.target,
                           argv=getattr(args, "argv", None) or sys.argv, trusted_models=tuple(args.trust_model))
    return rerun_baseline(baseline, options)


def _check_writable(path: Path) -> None:
    """--json must be writable before minutes of measuring (and before a verdict), not after."""
    parent = path.parent if str(path.parent) else Path(".")
    if path.is_dir() or not parent.is_dir():
        raise UsageError(f"--json {path}: not a writable file path (is the directory there?): choose another FILE")
    probe = parent / f".{path.name}.{os.getpid()}.probe"
    try:
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as e:
        raise UsageError(f"--json {path}: cannot write there ({e.strerror or e}): choose another FILE") from None


def run(args) -> int:
    from analysis.compare import compare_paths, load_side
    from analysis.compare_render import comparison_json, render

    baseline = Path(args.baseline)
    load_side(baseline)  # a bad baseline fails before anything is measured
    if args.json:
        _check_writable(Path(args.json))
    candidate = Path(args.candidate) if args.candidate else fresh_run(baseline, args)
    comparison = compare_paths(baseline, candidate, threshold=args.threshold, alpha=args.alpha,
                               abs_threshold=args.abs_threshold, counter_threshold=args.counter_threshold,
                               paired_threshold=args.paired_threshold)
    print(render(comparison, args.format))
    if args.json:
        settings = {"threshold": args.threshold, "abs_threshold": args.abs_threshold, "alpha": args.alpha,
                    "paired_threshold": args.paired_threshold,
                    "counter_threshold": args.counter_threshold}
        write_text_atomic(Path(args.json), comparison_json(comparison, baseline=str(baseline), candidate=str(candidate),
                                                   settings=settings) + "\n")
    regressions = comparison.regressions()
    if len(regressions):
        names = sorted(set(regressions["config"]))
        print(f"\nREGRESSION in {len(names)} config(s): {'; '.join(names)}", file=sys.stderr)
        return 1
    unpaired = comparison.unpaired()
    if len(unpaired):
        # A gate that silently times fewer configs than it was asked to is worse than one that stops.
        first = unpaired.iloc[0]
        print(f"\ncheck: the base code did not run {len(unpaired)} config(s), so their time was not compared "
              f"pair by pair ({first['config']}: {first['detail']}): fix the cause in {candidate}/base/runs.csv, "
              "or pass --no-paired to judge against the stored rows only", file=sys.stderr)
        return 2
    print(f"\nno regression (threshold {args.threshold:.0%}, alpha {args.alpha}) against {baseline}")
    return 0
