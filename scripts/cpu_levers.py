"""Every speed lever of the CPU step, timed in one interleaved run: how far each brings `vmap_lrt`
(and `vmap_flipout`) towards this machine's matmul ceiling, and what each costs or saves against the
plain eager fp32 step.

    python3 scripts/cpu_levers.py --out results/cpu/levers-<cpu>-2threads-<date> [--rounds 7] [--threads 2]
    python3 scripts/cpu_levers.py --set peers --out results/cpu/peers-levers-<cpu>-2threads-<date>
    python3 scripts/cpu_levers.py --out DIR --time-split vmap_lrt   # and each lever's time split

`--set peers`: the peers profile's S = 10 block (our implementations and every peer library
installed here, `scripts/setup.sh --peers`), plus `vmap_lrt` with the levers that won, in one run.

One sweep (bench/run/sweep.py) of MNIST S = 10 configs in interleaved rounds with warm workers, so
machine drift hits every lever alike; then `analyze` (the ceiling table) and levers.md: per lever,
the median over rounds of its step time over the same implementation's eager fp32 `adam` step in the
same round, with a 95% bootstrap interval over rounds, beside its distance from the ceiling.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.contract.config import BenchConfig  # noqa: E402

#: (label, implementation, lever fields); the first of each implementation is its baseline.
LEVERS = (
    ("eager fp32 adam", "vmap_lrt", {}),
    ("adam_fused", "vmap_lrt", {"optimizer": "adam_fused"}),
    ("adam_foreach", "vmap_lrt", {"optimizer": "adam_foreach"}),
    ("compile", "vmap_lrt", {"step_mode": "compile"}),
    ("compile + adam_fused", "vmap_lrt", {"step_mode": "compile", "optimizer": "adam_fused"}),
    ("bf16 autocast", "vmap_lrt", {"precision": "bf16"}),
    ("bf16 autocast + adam_fused", "vmap_lrt", {"precision": "bf16", "optimizer": "adam_fused"}),
    ("bf16_var (variance path)", "vmap_lrt", {"precision": "bf16_var"}),
    ("bf16_var + adam_fused", "vmap_lrt", {"precision": "bf16_var", "optimizer": "adam_fused"}),
    ("compile + bf16_var + adam_fused", "vmap_lrt", {"step_mode": "compile", "precision": "bf16_var",
                                                      "optimizer": "adam_fused"}),
    ("flush_denormal", "vmap_lrt", {"flush_denormal": True}),
    ("eager fp32 adam", "vmap_flipout", {}),
    ("adam_fused", "vmap_flipout", {"optimizer": "adam_fused"}),
    ("compile + adam_fused", "vmap_flipout", {"step_mode": "compile", "optimizer": "adam_fused"}),
    ("eager fp32 adam", "sequential", {}),
    ("eager fp32 adam", "vmap", {}),
)



def peer_set() -> tuple:
    from bench.grid.profiles import ALL_IMPLS, importable_peers

    ours = tuple(("eager fp32 adam", impl, {}) for impl in ALL_IMPLS)
    winners = (("adam_fused", "vmap_lrt", {"optimizer": "adam_fused"}),
               ("compile + adam_fused", "vmap_lrt", {"step_mode": "compile", "optimizer": "adam_fused"}),
               ("compile + bf16_var + adam_fused", "vmap_lrt", {"step_mode": "compile", "precision": "bf16_var",
                                                               "optimizer": "adam_fused"}))
    # A peer's first row is its own baseline (eager, its own optimizer).
    peers = tuple(("its own step", impl, {}) for impl in importable_peers())
    return ours[:1] + tuple(r for r in ours[1:] if r[1] != "vmap_lrt") + (ours[[r[1] for r in ours].index(
        "vmap_lrt")],) + winners + peers


def lever_rows(which: str) -> tuple:
    return LEVERS if which == "levers" else peer_set()


def configs(args, rows) -> list[BenchConfig]:
    return [BenchConfig(impl=impl, task="mnist", samples=10, threads=args.threads, steps=args.steps,
                        repeats=args.rounds, warmup_steps=args.warmup, data_dir=args.data_dir, **fields)
            for _, impl, fields in rows]


def ratio_over_rounds(ratios: list[float], seed: int = 0) -> tuple[float, float, float]:
    """(median, 95% bootstrap interval over rounds) of per-round ratios: the peers table's statistic."""
    from analysis.peers import round_ratio_interval

    return round_ratio_interval(np.asarray(ratios, dtype=float), np.random.default_rng(seed))


def lever_table(out: Path, grid: list[BenchConfig], rows: tuple) -> str:
    """levers.md: each lever's per-round ratio to its implementation's baseline, and its ceiling."""
    import pandas as pd

    from analysis.ceiling_report import best_ceiling_s, step_over_ceiling

    runs = pd.read_csv(out / "runs.csv", dtype={"ceiling_calls_id": str})  # a digest, never a number
    # Each row against the fastest replay of its own calls in the run (the report's reading).
    runs["best_ceiling_s"], runs["step_over_ceiling"] = best_ceiling_s(runs), step_over_ceiling(runs)
    runs = runs.set_index("run_id")
    reps = pd.read_csv(out / "repeats.csv")
    reps["step_s"] = reps["seconds"] / reps["steps"]
    per_round = reps.groupby(["run_id", "round"])["step_s"].median()
    lines = ["| implementation | lever | step ms | x baseline [95% CI over rounds] | step / ceiling | "
             "ceiling ms | achieved GFLOP/s |", "| --- | --- | --- | --- | --- | --- | --- |"]
    baseline = {}
    for (label, impl, _), config in zip(rows, grid):
        baseline.setdefault(impl, config.run_id)
        row = runs.loc[config.run_id]
        if row["status"] != "ok":
            lines.append(f"| {impl} | {label} | {row['status']}: {str(row['error'])[:80]} | | | | |")
            continue
        mine, base = per_round.loc[config.run_id], per_round.loc[baseline[impl]]
        ratios = [mine[r] / base[r] for r in mine.index if r in base.index]
        ratio, lo, hi = ratio_over_rounds(ratios)
        lines.append(f"| {impl} | {label} | {row['step_s_median'] * 1e3:.1f} | {ratio:.3f} "
                     f"[{lo:.3f}, {hi:.3f}] | {row['step_over_ceiling']:.2f}x | {row['best_ceiling_s'] * 1e3:.1f} | "
                     f"{row['achieved_gflops']:.0f} |")
    return "\n".join(lines) + "\n"


def against_fastest_peer(out: Path, grid: list[BenchConfig], rows: tuple) -> str:
    """Each of our rows against the fastest peer (by median step time), per round, with a bootstrap
    interval over rounds: the peer's time over ours (> 1: ours is faster)."""
    import pandas as pd

    runs = pd.read_csv(out / "runs.csv").set_index("run_id")
    reps = pd.read_csv(out / "repeats.csv")
    reps["step_s"] = reps["seconds"] / reps["steps"]
    per_round = reps.groupby(["run_id", "round"])["step_s"].median()
    peers = [c for (label, _, _), c in zip(rows, grid) if label == "its own step"
             and runs.loc[c.run_id, "status"] == "ok"]
    if not peers:
        return "no peer library ran\n"
    fastest = min(peers, key=lambda c: runs.loc[c.run_id, "step_s_median"])
    lines = [f"Fastest peer: {fastest.impl} ({runs.loc[fastest.run_id, 'step_s_median'] * 1e3:.1f} ms/step).", "",
             "| implementation | lever | fastest peer's time / ours [95% CI over rounds] |", "| --- | --- | --- |"]
    for (label, impl, _), config in zip(rows, grid):
        if label == "its own step" or runs.loc[config.run_id, "status"] != "ok":
            continue
        mine, theirs = per_round.loc[config.run_id], per_round.loc[fastest.run_id]
        ratios = [theirs[r] / mine[r] for r in mine.index if r in theirs.index]
        ratio, lo, hi = ratio_over_rounds(ratios)
        lines.append(f"| {impl} | {label} | {ratio:.2f}x [{lo:.2f}, {hi:.2f}] |")
    return "\n".join(lines) + "\n"


#: Profiled steps per config for `--time-split`, after warm-up steps that include any compilation. Ten,
#: not the default job's four (bench/cli/cmd_default.py): a 4-step profile of one lever read 145 ms
#: against 92 ms timed (levers-time-split-epyc-2threads-20261204), and a vmap_lrt profile is quick to
#: read back.
SPLIT_STEPS, SPLIT_WARMUP = 10, 5


def profile_levers(grid: list[BenchConfig], out: Path, impls: list[str]) -> None:
    """Profile the grid's configs of `impls` into out/profiles/ once every config has been timed (a
    profile never runs beside a timed step). The same configs, so the same run_ids: `analyze` puts each
    split beside its own ceiling."""
    from bench.measure.profiler import profile_config

    for config in (c for c in grid if c.impl in impls):
        profile_config(config, out, steps=SPLIT_STEPS, warmup=SPLIT_WARMUP)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--set", choices=("levers", "peers"), default="levers")
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--data-dir", default=str(ROOT.parent / "shared" / "data" / "mnist"))
    parser.add_argument("--time-split", default="", metavar="IMPLS",
                        help="after the sweep, profile every config of these implementations (comma-separated, "
                             "e.g. vmap_lrt) for the report's time split, each lever its own row beside its "
                             "ceiling: how near each lever could come without elementwise work and Python")
    args = parser.parse_args()
    from bench.cli.cmd_analyze import run_analysis
    from bench.run.sweep import run_sweep

    rows = lever_rows(args.set)
    out, grid = Path(args.out), configs(args, rows)
    run_sweep(grid, out, rounds=args.rounds, round_workers="warm", profile=None, argv=sys.argv)
    profile_levers(grid, out, [impl for impl in args.time_split.split(",") if impl])
    run_analysis(out)
    table = lever_table(out, grid, rows)
    if args.set == "peers":
        table += "\n" + against_fastest_peer(out, grid, rows)
    (out / "levers.md").write_text(table)
    print(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
