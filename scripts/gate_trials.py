"""Measures the CI gate itself: false alarms on unchanged code, and what it catches.

    python3 scripts/gate_trials.py [--trials N] [--scenarios a,b,...] [--out DIR] [--load-procs K]

Each trial is one real `bash scripts/perf_gate.sh` (a fresh run of the baseline's grid here,
compared with `check`), with a regression injected through BNN_BENCH_PLUGINS:

| scenario      | injected                                                  | the gate must                      |
| unchanged     | nothing                                                   | pass (exit 0)                      |
| slow10        | tests.plugins.slow_vmap, BNN_BENCH_SLOW_FRACTION=0.10      | flag vmap's time / sequential      |
| extra_op      | tests.plugins.extra_op: torch.nan_to_num per layer (vmap) | flag vmap's ATen ops, name the op  |
| extra_flops   | tests.plugins.extra_flops: +2% FLOPs (vmap)               | flag vmap's FLOPs / step           |
| uniform_load  | K `yes > /dev/null` processes during the run              | no time-ratio alarm                |
| slow10_extra_op | slow10 on vmap and extra_op on sequential, together     | flag both, name the op, nothing else |

Writes DIR/trials.csv (one row per trial: exit status, wall time, load average, regressed rows)
and DIR/summary.md, and prints the summary. The fresh runs stay in DIR/<scenario>-<i>/run, so
scripts/derive_thresholds.py --reuse can use the unchanged ones.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

SCENARIOS = {
    "unchanged": {},
    "slow10": {"BNN_BENCH_PLUGINS": "tests.plugins.slow_vmap", "BNN_BENCH_SLOW_FRACTION": "0.10"},
    "extra_op": {"BNN_BENCH_PLUGINS": "tests.plugins.extra_op"},
    "extra_flops": {"BNN_BENCH_PLUGINS": "tests.plugins.extra_flops", "BNN_BENCH_EXTRA_FLOPS": "0.02"},
    "uniform_load": {},
    # Both injections at once, on different implementations: each must be caught, and named, while
    # the other is present, and nothing else flagged (half the machine time of two scenarios).
    "slow10_extra_op": {"BNN_BENCH_PLUGINS": "tests.plugins.slow_vmap,tests.plugins.extra_op",
                        "BNN_BENCH_SLOW_FRACTION": "0.10", "BNN_BENCH_EXTRA_OP_IMPL": "sequential"},
}


#: The time comparisons that are ratios (drift cancels in them): to sequential, and to the base
#: commit's code timed in the same rounds.
TIME_RATIOS = ("time / sequential", "time / base code")


def is_impl(config: str, impl: str) -> bool:
    return f" {impl} " in f" {config} "


def is_vmap(config: str) -> bool:
    return is_impl(config, "vmap")


def judge(scenario: str, rows: list[dict]) -> tuple[bool, str]:
    """(the gate did what it must in this scenario, a few words why)."""
    regressed = [r for r in rows if r["verdict"] == "REGRESSION"]
    ratio_alarms = [r for r in regressed if r["metric"] in TIME_RATIOS]
    others = sorted({r["config"] for r in regressed if not is_vmap(r["config"])})
    if scenario == "unchanged":
        return not regressed, f"{len(regressed)} alarm(s)"
    if scenario == "uniform_load":
        return not ratio_alarms, f"{len(ratio_alarms)} ratio alarm(s), {len(regressed) - len(ratio_alarms)} other"
    if scenario == "slow10_extra_op":
        time_hits = [r for r in ratio_alarms if is_vmap(r["config"])]
        op_hits = [r for r in regressed if r["metric"] == "ATen ops / step" and is_impl(r["config"], "sequential")]
        named = bool(op_hits) and all("aten.nan_to_num" in (r["detail"] or "") for r in op_hits)
        stray = [r for r in regressed if r not in time_hits and r not in op_hits]
        return bool(time_hits) and named and not stray, (
            f"slow10 {'caught' if time_hits else 'MISSED'} ({len(time_hits)} vmap time row(s)); extra_op "
            f"{'caught and named' if named else 'MISSED'} ({len(op_hits)} sequential config(s)); "
            f"{len(stray)} other alarm(s)")
    metrics = {"slow10": TIME_RATIOS, "extra_op": ("ATen ops / step",), "extra_flops": ("FLOPs / step",)}[scenario]
    hits = [r for r in regressed if r["metric"] in metrics and is_vmap(r["config"])]
    named = scenario != "extra_op" or all("aten.nan_to_num" in (r["detail"] or "") for r in hits)
    ok = bool(hits) and named
    return ok, f"{len(hits)} vmap config(s) flagged{'' if named else ' (op not named)'}" + (
        f"; also flagged: {', '.join(others)}" if others else "")


def run_trial(scenario: str, index: int, out: Path, load_procs: int) -> dict:
    trial = out / f"{scenario}-{index}"
    trial.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PERF_GATE_OUT=str(trial / "run"), **SCENARIOS[scenario])
    if scenario in ("unchanged", "uniform_load"):
        env.pop("BNN_BENCH_PLUGINS", None)
    load = []
    if scenario == "uniform_load":
        load = [subprocess.Popen(["yes"], stdout=subprocess.DEVNULL) for _ in range(load_procs)]
    load_before = os.getloadavg()[0]
    start = time.monotonic()
    try:
        with open(trial / "gate.log", "w") as log:
            status = subprocess.call(["bash", str(ROOT / "scripts" / "perf_gate.sh"), "--json",
                                      str(trial / "gate.json")],
                                     cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    finally:
        for p in load:
            p.kill()
            p.wait()
    wall = time.monotonic() - start
    rows = json.loads((trial / "gate.json").read_text())["rows"] if (trial / "gate.json").is_file() else []
    ok, why = judge(scenario, rows) if rows else (False, f"no comparison (exit {status}, see {trial / 'gate.log'})")
    regressed = [f"{r['config']}: {r['metric']} {r['change']}" for r in rows if r["verdict"] == "REGRESSION"]
    return {"scenario": scenario, "trial": index, "exit": status, "ok": ok, "why": why, "wall_s": round(wall, 1),
            "load_1min_before": round(load_before, 2), "load_1min_after": round(os.getloadavg()[0], 2),
            "regressed": " | ".join(regressed)}


def summary(results: list[dict]) -> str:
    lines = ["| scenario | trials | as required | exits | median wall s | load (1 min) |", "|---|---|---|---|---|---|"]
    for scenario in dict.fromkeys(r["scenario"] for r in results):
        rs = [r for r in results if r["scenario"] == scenario]
        exits = {}
        for r in rs:
            exits[r["exit"]] = exits.get(r["exit"], 0) + 1
        walls = sorted(r["wall_s"] for r in rs)
        loads = [r["load_1min_before"] for r in rs]
        lines.append(f"| {scenario} | {len(rs)} | {sum(r['ok'] for r in rs)} | "
                     f"{', '.join(f'{k}: {v}' for k, v in sorted(exits.items()))} | {walls[len(walls) // 2]} | "
                     f"{min(loads):.1f}-{max(loads):.1f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=10)
    parser.add_argument("--scenarios", default=",".join(SCENARIOS))
    parser.add_argument("--out", type=Path,
                        default=ROOT / "results" / "runs" / f"gate-trials-{time.strftime('%Y%m%d-%H%M%S')}")
    parser.add_argument("--load-procs", type=int, default=2, help="competing `yes` processes in uniform_load")
    parser.add_argument("--interleave", action="store_true",
                        help="run trial 1 of every scenario, then trial 2, ... (so machine load hits all alike)")
    args = parser.parse_args(argv)
    scenarios = [s.strip() for s in args.scenarios.split(",") if s.strip()]
    unknown = [s for s in scenarios if s not in SCENARIOS]
    if unknown:
        print(f"gate_trials: unknown scenario(s) {', '.join(unknown)}: choose from {', '.join(SCENARIOS)}",
              file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    plan = ([(s, i) for i in range(args.trials) for s in scenarios] if args.interleave
            else [(s, i) for s in scenarios for i in range(args.trials)])
    results = []
    path = args.out / "trials.csv"
    for scenario, i in plan:
        result = run_trial(scenario, i, args.out, args.load_procs)
        results.append(result)
        print(f"{scenario} #{i}: exit {result['exit']}, {'as required' if result['ok'] else 'NOT as required'} "
              f"({result['why']}), {result['wall_s']} s, load {result['load_1min_before']}", flush=True)
        with open(path, "w", newline="") as f:  # rewritten after every trial: a kill loses nothing
            writer = csv.DictWriter(f, fieldnames=list(result))
            writer.writeheader()
            writer.writerows(results)
    text = summary(results)
    (args.out / "summary.md").write_text(text + "\n")
    print(text)
    print(f"\ntrials: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
