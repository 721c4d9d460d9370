"""The subcommands of `bnn-bench` / `run_bench.py`.

Protocol: each module exposes `add_parser(subparsers)` (adds its parser and sets `run` as the
parser's default) and `run(args) -> int` (the exit status). Bad input is raised as
`bench.errors.UsageError`; `bench.cli.main` turns it into one line on stderr and exit status 2.
"""
