"""Derive the CI gate's time thresholds from reruns of unchanged code on this machine.

    python3 scripts/derive_thresholds.py [--baseline DIR] [--runs N] [--reuse DIR ...] [--factor F]
                                         [--quantile Q] [--out DIR] [--write]

Runs the baseline's grid N more times here (in the baseline's interleaved rounds), or reuses
results directories of such reruns (`--reuse`, e.g. the fresh runs of scripts/gate_trials.py).
Every pair of runs (the baseline included) is compared with `check`'s own statistics, and for
each metric the Q-quantile (default 1.0: the largest) of |log change| over pairs and configs is
taken: the spread unchanged code shows here. The threshold is exp(F x that) - 1 (default F 1.5):
a gate at that threshold would have passed every pair with room to spare. Runs that also timed
the base commit's code in the same rounds (`check`'s paired runs; reruns here pair with
--base-ref, default HEAD, so both sides are the same code) give the paired threshold from each
run's own candidate/base changes. With --write, the
thresholds (and the numbers behind them) go to BASELINE/thresholds.json, which
scripts/perf_gate.sh reads. Deterministic counters need no thresholds from data: they do not move.
"""

from __future__ import annotations

import argparse
import datetime as _dt
import itertools
import json
import math
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

DEFAULT_BASELINE = ROOT / "results" / "baseline" / "ci-rounds-xeon-1thread"
METRICS = {"time / sequential": "threshold", "step time": "abs_threshold", "time / base code": "paired_threshold"}
PAIRED = "time / base code"  # within one run (its own base/): never between two runs


def rerun(baseline: Path, out: Path, base_ref: str | None) -> Path:
    """The baseline's grid measured again into `out`, paired with `base_ref`'s code where given."""
    from bench.gate.rerun import RerunOptions, rerun_baseline

    return rerun_baseline(baseline, RerunOptions(out=out, paired=bool(base_ref), base_ref=base_ref, argv=sys.argv))


def spreads(runs: list[Path]) -> dict[str, list[float]]:
    """|log change| of every timed metric, for every pair of runs and every config."""
    from analysis.compare import compare_paths

    found = {m: [] for m in METRICS}

    def collect(table, metrics):
        for metric in metrics:
            points = table.loc[table["metric"] == metric, "point"].dropna().astype(float)
            found[metric] += [abs(math.log(p)) for p in points if p > 0]

    for a, b in itertools.combinations(runs, 2):
        collect(compare_paths(a, b).table, [m for m in METRICS if m != PAIRED])
    for run in runs:
        if (run / "base" / "runs.csv").is_file():
            collect(compare_paths(run, run).table, [PAIRED])
    return found


def quantile(values: list[float], q: float) -> float:
    values = sorted(values)
    if not values:
        return float("nan")
    position = q * (len(values) - 1)
    low, high = math.floor(position), math.ceil(position)
    return values[low] + (values[high] - values[low]) * (position - low)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, default=DEFAULT_BASELINE)
    parser.add_argument("--runs", type=int, default=0, help="reruns of the baseline's grid to make here")
    parser.add_argument("--reuse", type=Path, nargs="*", default=[], help="results directories of earlier reruns")
    parser.add_argument("--factor", type=float, default=1.5, help="safety factor on the log spread (default 1.5)")
    parser.add_argument("--quantile", type=float, default=1.0, help="quantile of the pairwise spreads (default 1: max)")
    parser.add_argument("--out", type=Path, help="where the reruns go (default a temporary directory)")
    parser.add_argument("--base-ref", default="HEAD",
                        help="the commit reruns made here pair with (default HEAD: unchanged code on both sides; "
                             "'' for unpaired reruns)")
    parser.add_argument("--write", action="store_true", help="write BASELINE/thresholds.json")
    args = parser.parse_args(argv)
    if not (args.baseline / "meta.json").is_file():
        print(f"derive_thresholds: {args.baseline} is not a results directory: give --baseline", file=sys.stderr)
        return 2
    out = args.out or Path(tempfile.mkdtemp(prefix="derive-thresholds-"))
    runs = [args.baseline] + list(args.reuse)
    for i in range(args.runs):
        print(f"rerun {i + 1}/{args.runs} -> {out / f'run{i}'}", file=sys.stderr, flush=True)
        runs.append(rerun(args.baseline, out / f"run{i}", args.base_ref or None))
    if len(runs) < 3:
        print("derive_thresholds: need at least two reruns besides the baseline (--runs or --reuse)", file=sys.stderr)
        return 2
    found = spreads(runs)
    result = {"derived_at": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
              "runs": [str(r) for r in runs], "factor": args.factor, "quantile": args.quantile, "metrics": {}}
    print(f"{len(runs)} runs, {len(runs) * (len(runs) - 1) // 2} pairs")
    print(f"{'metric':<20} {'values':>6} {'median':>8} {'q95':>8} {'max':>8} {'threshold':>10}")
    for metric, key in METRICS.items():
        logs = found[metric]
        if not logs:
            print(f"{metric:<20} no values (no run measured it)")
            continue
        spread = quantile(logs, args.quantile)
        threshold = math.exp(args.factor * spread) - 1
        stats = {"values": len(logs), "median_pct": 100 * (math.exp(quantile(logs, 0.5)) - 1),
                 "q95_pct": 100 * (math.exp(quantile(logs, 0.95)) - 1), "max_pct": 100 * (math.exp(max(logs)) - 1),
                 "threshold": round(threshold, 4)}
        result["metrics"][metric] = stats
        result[key] = min(max(round(threshold, 4), 0.01), 0.99)  # check accepts (0, 1)
        print(f"{metric:<20} {len(logs):>6} {stats['median_pct']:>7.1f}% {stats['q95_pct']:>7.1f}% "
              f"{stats['max_pct']:>7.1f}% {100 * threshold:>9.1f}%")
    if args.write:
        (args.baseline / "thresholds.json").write_text(json.dumps(result, indent=2) + "\n")
        print(f"written: {args.baseline / 'thresholds.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
