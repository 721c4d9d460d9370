"""The command line, on top of everything else: one module per command (`cmd_*.py`), each with
`add_parser(subparsers)` and `run(args) -> exit status`; `main` turns bad input into one line on
stderr and exit status 2."""
