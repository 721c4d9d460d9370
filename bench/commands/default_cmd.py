"""The default job (no command): `sweep --profile quick` on every device found here, then `analyze`."""

from __future__ import annotations

import argparse
from pathlib import Path

from bench.commands.analyze_cmd import run_analysis
from bench.commands.sweep_cmd import add_run_options, resolve_out, sweep
from bench.grid import available_devices, parse_bytes
from bench.profiles import DEFAULT_PROFILE, Common, Overrides, build_grid, get_profile
from bench.provenance import PROJECT_ROOT

#: The report's own measurements, shipped with the project, that `analyze` puts beside ours.
REFERENCE_DIR = PROJECT_ROOT / "results" / "reference_a100"

DESCRIPTION = (
    f"Without a command: measure the {DEFAULT_PROFILE!r} profile on every device found here, each config in "
    "its own process, then analyze it; prints where runs.csv, report.md and the figures are."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The default job's options, on the top-level parser (`bnn-bench --out DIR`)."""
    add_run_options(parser)
    parser.set_defaults(run=run)


def run(args) -> int:
    profile = get_profile(DEFAULT_PROFILE)
    memory_limit = parse_bytes(args.memory_limit) if args.memory_limit else None
    common = Common(devices=available_devices(), data_dir=args.data_dir, memory_limit_bytes=memory_limit)
    configs = build_grid(profile, Overrides(), common)
    out = resolve_out(args, profile.name)
    sweep(configs, out, args, profile.name)
    reference = REFERENCE_DIR if REFERENCE_DIR.is_dir() else None
    report = run_analysis(out, reference_dir=reference)
    print(f"report:  {report}")
    print(f"figures: {Path(report).parent / 'figures'}")
    return 0
