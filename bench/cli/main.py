"""`bnn-bench` / `python run_bench.py`: the command line (docs/usage.md).

Every command module follows one protocol (bench/cli/__init__.py). Bad input, from argparse
or from any command, ends as one line `bnn-bench: error: ...` on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import sys
from typing import Optional, Sequence

from bench.cli import cmd_analyze, cmd_check, cmd_default, cmd_list, cmd_maxnmc, cmd_profile, cmd_sweep, cmd_train
from bench.contract.errors import AnalysisInputError, UsageError

PROG = "bnn-bench"


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is a UsageError (one line, exit 2 in `main`) instead of usage + exit."""

    def error(self, message: str):
        raise UsageError(f"{message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG, description=cmd_default.DESCRIPTION,
        epilog="Commands: list, sweep, analyze, check, profile, train, maxnmc; `bnn-bench COMMAND --help` for each.",
    )
    cmd_default.add_arguments(parser)
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for command in (cmd_list, cmd_sweep, cmd_analyze, cmd_check, cmd_profile, cmd_train, cmd_maxnmc):
        command.add_parser(subparsers)
    return parser


def _usage_errors() -> tuple[type, ...]:
    """The exceptions that mean bad input (the math package's imported only now: `--help` needs no torch)."""
    from bnn_impls.mnist import DataError
    from bnn_impls.names import BnnConfigError

    return (UsageError, AnalysisInputError, BnnConfigError, DataError)


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
        args.argv = [PROG] + argv
        return int(args.run(args) or 0)
    except SystemExit as e:  # --help and --version exit 0 through argparse
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; every row written so far is kept: continue with --resume --out DIR",
              file=sys.stderr)
        return 130
    except Exception as e:
        if not isinstance(e, _usage_errors()):
            raise
        message = " ".join(str(e).split())
        print(f"{PROG}: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
