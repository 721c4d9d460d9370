#!/usr/bin/env python3
"""Step time of the same config measured in the sweep's own process (`--executor inline`, what `train`
and the Python API do) and in a worker process (`--executor local`), interleaved in rounds, quiet and
under a competing load started in the same session (two `yes` processes: load about 3 on 2 cores).

    python3 scripts/inline_vs_worker.py --out results/cpu/inline-vs-worker-NAME [--rounds 3] [--data-dir DIR]

Writes OUT/steps.csv (one row per measurement) and OUT/README-table.md (median per cell and the
inline/worker ratio), and prints the table. Each measurement is one `run_bench.py sweep` of one config
(MNIST, S = 10, 4 steps x 3 repeats after the default warm-up).
"""

from __future__ import annotations

import argparse
import csv
import itertools
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
IMPLS = ("sequential", "vmap_lrt")
THREADS = (1, 2)
#: inline: the sweep's own process; local: a worker forked from the torch-preloaded server (the
#: default); exec: a worker started as a fresh `python -m bench.run.worker` (BNN_BENCH_WORKER_START=exec).
MODES = ("inline", "local", "exec")


def measure(impl: str, threads: int, mode: str, data_dir: str) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        argv = [sys.executable, str(ROOT / "run_bench.py"), "sweep", "--profile", "paper", "--task", "mnist",
                "--impl", impl, "--samples", "10", "--steps", "4", "--repeats", "3", "--threads", str(threads),
                "--executor", "inline" if mode == "inline" else "local", "--data-dir", data_dir, "--out", str(out)]
        env = dict(os.environ, BNN_BENCH_WORKER_START="exec" if mode == "exec" else "forkserver")
        subprocess.run(argv, cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        with open(out / "runs.csv", newline="") as f:
            row = next(csv.DictReader(f))
        if row["status"] != "ok":
            raise RuntimeError(f"{impl} {threads} {mode}: {row['status']} {row['error']}")
        return float(row["step_s_median"])


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--data-dir", default=os.environ.get("BNN_BENCH_DATA", "../shared/data/mnist"))
    parser.add_argument("--modes", default=",".join(MODES), help=f"which of {', '.join(MODES)} (default all)")
    parser.add_argument("--threads", default=",".join(map(str, THREADS)), help="thread counts (default 1,2)")
    parser.add_argument("--loads", default="quiet,load", help="quiet, load or both (default)")
    args = parser.parse_args(argv)
    modes = tuple(args.modes.split(","))
    threads_list = tuple(int(t) for t in args.threads.split(","))
    loads = tuple(args.loads.split(","))
    args.out.mkdir(parents=True, exist_ok=True)
    rows = []
    for load in loads:
        competing = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(2 if load == "load" else 0)]
        try:
            for r in range(args.rounds):
                cells = list(itertools.product(IMPLS, threads_list, modes))
                if r % 2:
                    cells.reverse()  # which mode goes first alternates: drift hits both alike
                for impl, threads, mode in cells:
                    step = measure(impl, threads, mode, args.data_dir)
                    rows.append({"load": load, "round": r, "impl": impl, "threads": threads, "mode": mode,
                                 "step_ms": round(step * 1e3, 2), "loadavg_1min": round(os.getloadavg()[0], 2)})
                    print(rows[-1], flush=True)
        finally:
            for p in competing:
                p.kill()
                p.wait()
    with open(args.out / "steps.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| load | impl | threads | " + " | ".join(f"{m} ms" for m in modes) + " | "
             + " | ".join(f"{m} / {modes[0]}" for m in modes[1:]) + " |", "|---" * (3 + 2 * len(modes) - 1) + "|"]
    for load, impl, threads in itertools.product(loads, IMPLS, threads_list):
        med = {m: statistics.median(x["step_ms"] for x in rows if (x["load"], x["impl"], x["threads"], x["mode"])
                                    == (load, impl, threads, m)) for m in modes}
        lines.append(f"| {load} | {impl} | {threads} | " + " | ".join(f"{med[m]:.1f}" for m in modes) + " | "
                     + " | ".join(f"{med[m] / med[modes[0]]:.3f}" for m in modes[1:]) + " |")
    table = "\n".join(lines) + "\n"
    (args.out / "README-table.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
