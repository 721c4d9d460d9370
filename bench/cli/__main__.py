"""`python -m bench.cli ...`: the same command line as `run_bench.py` and `bnn-bench`."""

import sys

from bench.cli.main import main

sys.exit(main())
