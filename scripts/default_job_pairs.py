"""Wall time of the default job (`python3 run_bench.py`) at another commit and at this checkout,
run alternately in pairs, so the VM's drift between runs hits both sides alike.

    python3 scripts/default_job_pairs.py --base ada8105 --pairs 3 --out /tmp/default-job-pairs

The base commit's files are unpacked with `git archive` into OUT/base-tree (its own run_bench.py,
workers and reference tables); each run writes its results directory under OUT and its console to
OUT/<side>-<pair>.log. Prints a markdown table: each side's wall times, and per pair this
checkout's wall time over the base's, with the geometric mean and a 95% t interval over pairs (on
the log ratios). `walls.csv` holds every run. The order within a pair alternates (base first in
odd pairs), so neither side always runs on the warmer machine.
"""

from __future__ import annotations

import argparse
import csv
import math
import statistics
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.gate.base_tree import BaseTreeUnavailable, unpack_commit  # noqa: E402


def run_default_job(tree: Path, out: Path, log: Path, data_dir: str) -> tuple[float, int]:
    start = time.perf_counter()
    with open(log, "wb") as f:
        rc = subprocess.run([sys.executable, "run_bench.py", "--out", str(out), "--data-dir", data_dir],
                            cwd=tree, stdout=f, stderr=subprocess.STDOUT).returncode
    return time.perf_counter() - start, rc


def t_interval(logs: list[float]) -> tuple[float, float, float]:
    """Geometric mean ratio and its 95% t interval from per-pair log ratios."""
    from scipy import stats

    mean = statistics.fmean(logs)
    if len(logs) < 2:
        return math.exp(mean), float("nan"), float("nan")
    half = stats.t.ppf(0.975, len(logs) - 1) * statistics.stdev(logs) / math.sqrt(len(logs))
    return math.exp(mean), math.exp(mean - half), math.exp(mean + half)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--base", required=True, help="the commit to compare against (any git ref)")
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--out", type=Path, required=True, help="a new directory")
    parser.add_argument("--data-dir", default=str((ROOT / ".." / "shared" / "data" / "mnist").resolve()))
    args = parser.parse_args(argv)
    if args.pairs < 1:
        parser.error("--pairs must be at least 1")
    if args.out.exists():
        parser.error(f"--out {args.out} exists: name a new directory")
    args.out.mkdir(parents=True)
    try:
        base_commit = unpack_commit(args.base, args.out / "base-tree", repo=ROOT)
    except BaseTreeUnavailable as e:
        parser.error(str(e))
    head = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    trees = {"base": args.out / "base-tree", "head": ROOT}
    rows = []
    for pair in range(1, args.pairs + 1):
        order = ("base", "head") if pair % 2 else ("head", "base")
        for side in order:
            started = datetime.now(timezone.utc).strftime("%H:%M:%S")
            wall, rc = run_default_job(trees[side], args.out / f"{side}-{pair}", args.out / f"{side}-{pair}.log",
                                       args.data_dir)
            rows.append({"pair": pair, "side": side, "started_utc": started, "wall_s": round(wall, 2), "rc": rc})
            print(f"pair {pair} {side}: {wall:.1f} s (rc {rc})", file=sys.stderr, flush=True)
    with open(args.out / "walls.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    wall = {(r["pair"], r["side"]): r["wall_s"] for r in rows}
    logs = [math.log(wall[(p, "head")] / wall[(p, "base")]) for p in range(1, args.pairs + 1)]
    ratio, low, high = t_interval(logs)
    print(f"base {base_commit[:12]}, this checkout {head[:12]}; {args.pairs} pair(s)\n")
    print("| pair | base s | this checkout s | this / base |")
    print("| --- | --- | --- | --- |")
    for p in range(1, args.pairs + 1):
        base, mine = wall[(p, "base")], wall[(p, "head")]
        print(f"| {p} | {base:.1f} | {mine:.1f} | {mine / base:.3f} |")
    print(f"\nmedian wall: base {statistics.median(wall[(p, 'base')] for p in range(1, args.pairs + 1)):.1f} s, "
          f"this checkout {statistics.median(wall[(p, 'head')] for p in range(1, args.pairs + 1)):.1f} s; "
          f"this / base {ratio:.3f} [{low:.3f}, {high:.3f}] (geometric mean, 95% t interval over pairs)")
    return 0 if all(r["rc"] == 0 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
