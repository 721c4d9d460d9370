"""`bnn-bench` / `python run_bench.py`: the command line (docs/usage.md).

Every command module follows one protocol (bench/cli/__init__.py). Bad input, from argparse
or from any command, ends as one line `bnn-bench: error: ...` on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from typing import Optional, Sequence

from bench.cli import (
    cmd_analyze,
    cmd_bias,
    cmd_bisect,
    cmd_check,
    cmd_default,
    cmd_history,
    cmd_list,
    cmd_maxnmc,
    cmd_profile,
    cmd_sweep,
    cmd_train,
)
from bench.contract.errors import AnalysisInputError, UsageError

PROG = "bnn-bench"


class _Parser(argparse.ArgumentParser):
    """argparse, but an error is a UsageError (one line, exit 2 in `main`) instead of usage + exit, and
    no abbreviations: `train --data synthetic` must not be read as `--data-dir synthetic`."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str):
        raise UsageError(f"{message} (see {self.prog} --help)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog=PROG, description=cmd_default.DESCRIPTION,
        epilog="Commands: list, sweep, analyze, check, history, bisect, profile, train, maxnmc, bias; "
               "`bnn-bench COMMAND --help` for each.",
    )
    cmd_default.add_arguments(parser)
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for command in (cmd_list, cmd_sweep, cmd_analyze, cmd_check, cmd_history, cmd_bisect, cmd_profile, cmd_train,
                    cmd_maxnmc, cmd_bias):
        command.add_parser(subparsers)
    return parser


def _usage_errors() -> tuple[type, ...]:
    """The exceptions that mean bad input (the math package's imported only now: `--help` needs no torch)."""
    from bnn_impls.mnist import DataError
    from bnn_impls.names import BnnConfigError

    return (UsageError, AnalysisInputError, BnnConfigError, DataError)


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where the process is, so it unwinds as Ctrl-C does: the running config's worker
    is killed, every row written stays, and meta.json records the interruption."""


def _on_sigterm(signum, frame):
    raise Terminated()


def main(argv: Optional[Sequence[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as e:  # --help exits 0 through argparse
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 2)
    except Exception as e:
        return _bad_input(e)
    args.argv = [PROG] + argv
    in_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.signal(signal.SIGTERM, _on_sigterm) if in_main_thread else None
    try:
        return int(args.run(args) or 0)
    except KeyboardInterrupt as e:
        how, status = ("terminated (SIGTERM)", 143) if isinstance(e, Terminated) else ("interrupted", 130)
        print(f"{PROG}: {how}; every row written so far is kept: continue with --resume --out DIR", file=sys.stderr)
        return status
    except SystemExit as e:  # not argparse's: code the command ran (a --model factory, a plugin) exited
        print(f"{PROG}: error: the command was stopped by sys.exit({e.code!r}) from code it ran (a --model "
              "factory or a plugin?): fix that code", file=sys.stderr)
        return 2
    except Exception as e:
        return _bad_input(e)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _bad_input(e: Exception) -> int:
    """One line on stderr and exit status 2 for bad input; anything else is a bug and raises."""
    if not isinstance(e, _usage_errors()):
        raise e
    message = " ".join(str(e).split())
    print(f"{PROG}: error: {message}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
