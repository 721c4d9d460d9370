"""`bnn-bench analyze DIR`: slopes, speedup tables, figures and report.md from a results directory."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Optional



def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "analyze", help="tables, figures and report.md from a results directory",
        description="Per-sample slopes with confidence intervals, speedup tables (beside a reference run's, "
                    "if given), figures and report.md, from a results directory written by `sweep`.",
    )
    parser.add_argument("dir", metavar="DIR", help="results directory (holds runs.csv)")
    parser.add_argument("--reference", metavar="DIR", help="a results directory to compare with (e.g. the report's A100 run)")
    parser.add_argument("--out", metavar="DIR", help="where tables, figures and report.md go (default: DIR)")
    parser.add_argument("--target-error", type=float, metavar="E",
                        help="test error that time to accuracy is measured to, for quality runs (default 0.025)")
    parser.set_defaults(run=run)
    return parser


def run_analysis(results_dir, reference_dir=None, out_dir=None, target_error=None) -> Path:
    """`analysis.analyze`, imported only now: the sweep does not need pandas or matplotlib."""
    import analysis

    extra = {} if target_error is None else {"target_error": target_error}  # only quality runs use it
    return Path(analysis.analyze(Path(results_dir), reference_dir=_path(reference_dir), out_dir=_path(out_dir), **extra))


def _path(value) -> Optional[Path]:
    return Path(value) if value is not None else None


def run(args) -> int:
    if args.target_error is not None and not 0 < args.target_error < 1:
        from bench.errors import UsageError

        raise UsageError(f"--target-error is a fraction of the test set, got {args.target_error}: e.g. 0.025")
    report = run_analysis(args.dir, args.reference, args.out, args.target_error)
    print(f"report: {report}")
    return 0
