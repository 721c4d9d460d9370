"""Does a precision lever change test error? Two `train` directories of the same grid and seeds, one
per precision, compared on final test error: each side's mean with its 95% t interval, and
equivalence by two one-sided Welch tests within a margin fixed before the runs.

    python3 scripts/precision_quality.py BASE_DIR LEVER_DIR [--margin 0.003] > comparison.md

Statistics: analysis/seed_stats.py (the same as `analyze`'s quality-seed tables).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from analysis.seed_stats import t_interval, tost  # noqa: E402


def finals(directory: Path) -> pd.DataFrame:
    quality = pd.read_csv(directory / "quality.csv")
    quality = quality[quality["status"] == "ok"]
    last = quality.sort_values("epoch").groupby("seed").tail(1)
    return last.sort_values("seed")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("base", type=Path)
    parser.add_argument("lever", type=Path)
    parser.add_argument("--margin", type=float, default=0.003, help="equivalence margin on test error (0.003)")
    args = parser.parse_args()
    sides = {args.base.name: finals(args.base), args.lever.name: finals(args.lever)}
    lines = ["| run | seeds | final epoch | mean test error [95% t CI] | mean NLL | mean ECE |",
             "| --- | --- | --- | --- | --- | --- |"]
    for name, frame in sides.items():
        err = t_interval(frame["test_error"])
        lines.append(f"| {name} | {err.n} | {int(frame['epoch'].max())} | {err.mean:.4%} [{err.low:.4%}, "
                     f"{err.high:.4%}] | {frame['test_nll'].mean():.4f} | {frame['ece'].mean():.4f} |")
    (a, fa), (b, fb) = sides.items()
    eq = tost(fb["test_error"], fa["test_error"], args.margin)
    verdict = "equivalent" if eq.equivalent else "not shown equivalent"
    lines += ["", f"{b} - {a}, unpaired: {eq.diff:+.4%}, 90% Welch interval [{eq.low:+.4%}, {eq.high:+.4%}], "
              f"TOST p = {eq.p:.3g} at margin +-{args.margin:.2%}: {verdict}."]
    # The same seed gives both runs the same initial posterior, batches and noise stream: the per-seed
    # differences are the lever's effect with the seed-to-seed spread taken out. TOST against a
    # zero-variance sample of zeros is the paired (one-sample) t TOST: Welch's df becomes n - 1.
    merged = fa.merge(fb, on="seed", suffixes=("_a", "_b"))
    if len(merged) >= 2:
        diffs = (merged["test_error_b"] - merged["test_error_a"]).tolist()
        paired = tost(diffs, [0.0] * len(diffs), args.margin)
        lines.append(f"{b} - {a}, paired by seed ({len(diffs)} seeds): {paired.diff:+.4%}, 90% interval "
                     f"[{paired.low:+.4%}, {paired.high:+.4%}], TOST p = {paired.p:.3g}: "
                     f"{'equivalent' if paired.equivalent else 'not shown equivalent'}.")
    lines += ["",
              "Per seed (test error): " + "; ".join(
                  f"seed {int(s)}: {x:.2%} / {y:.2%}"
                  for s, x, y in zip(fa["seed"], fa["test_error"], fb["test_error"]))]
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
