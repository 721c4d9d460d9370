"""The default job (no command): `sweep --profile quick` on every device found here, then `analyze`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.cli.args import resolve_out
from bench.cli.cmd_analyze import run_analysis
from bench.cli.cmd_sweep import add_run_options, sweep
from bench.contract.provenance import CODE_ROOT
from bench.grid.devices import available_devices
from bench.grid.parse import parse_bytes
from bench.grid.profiles import DEFAULT_PROFILE, Common, Overrides, build_grid, get_profile

#: The report's own measurements, shipped with the project, that `analyze` puts beside ours: under the
#: working directory's results/ (a clone), else beside the code (an editable install run elsewhere).
REFERENCE = Path("results") / "reference_a100"


def reference_dir():
    for candidate in (REFERENCE, CODE_ROOT / REFERENCE):
        if candidate.is_dir():
            return candidate
    return None

DESCRIPTION = (
    f"Without a command: measure the {DEFAULT_PROFILE!r} profile on every device found here, each config in "
    "its own process, then analyze it; prints where runs.csv, report.md and the figures are."
)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The default job's options, on the top-level parser (`bnn-bench --out DIR`)."""
    add_run_options(parser)
    parser.set_defaults(run=run)


#: The default job profiles these configs for the report's time split: MNIST at S = 10, one per
#: implementation (the KL block's n_mc variants excluded), each for a few steps after warm-up. Four
#: steps, not more: reading the profile back costs more than taking it (sequential's 8 steps made
#: 94k events, 5.5 s of `key_averages` against 2.5 s profiled, timed by hand on the 2-vCPU EPYC), and a split
#: into five parts of a ~100-250 ms step needs no more than ~1 s of steps.
SPLIT_TASK, SPLIT_SAMPLES, SPLIT_STEPS, SPLIT_WARMUP = "mnist", 10, 4, 2


def profile_time_split(configs, out: Path) -> None:
    """Profile the default job's MNIST S = 10 configs into out/profiles/ (the report's time split).
    A config that fails here costs its bar in the figure, not the job: its sweep row is already written."""
    from bench.measure.profiler import profile_config

    chosen = [c for c in configs if c.task == SPLIT_TASK and c.samples == SPLIT_SAMPLES and c.n_mc == 1]
    for config in chosen:
        try:
            profile_config(config, out, steps=SPLIT_STEPS, warmup=SPLIT_WARMUP)
        except Exception as e:  # noqa: BLE001 - a bug in one profile must not lose the report
            print(f"note: profiling {config.run_id} for the time split failed ({' '.join(str(e).split())[:200]}); "
                  "the report shows the others", file=sys.stderr)
    print(f"profiled {len(chosen)} config(s) for the time split: {out / 'profiles'}", file=sys.stderr)


def run(args) -> int:
    profile = get_profile(DEFAULT_PROFILE)
    memory_limit = parse_bytes(args.memory_limit) if args.memory_limit else None
    common = Common(devices=available_devices(), data_dir=args.data_dir, memory_limit_bytes=memory_limit)
    configs = build_grid(profile, Overrides(), common)
    out = resolve_out(args, profile.name)
    sweep(configs, out, args, profile.name)
    profile_time_split(configs, out)
    report = run_analysis(out, reference_dir=reference_dir())
    print(f"report:  {report}")
    print(f"figures: {Path(report).parent / 'figures'}")
    return 0
