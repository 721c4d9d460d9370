"""`python run_bench.py ...` runs the `bnn-bench` command line from a plain checkout."""
import sys

from bench.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
