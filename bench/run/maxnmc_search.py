"""The graph-reparameterization memory table: per model and KL estimator, the largest n_mc whose
training step fits a memory budget, found by isolated runs (one process per probe, so each failure
is an `oom` row and costs nothing else).

The search is pure (`search_max_n_mc` takes a `fits(n)` callback): n = 1, then n x `growth` until a
probe fails or the cap is reached, then bisection on a log scale between the last fit and the first
failure until they are within `precision` (relative) of each other. Every probe is a row of
runs.csv with its step time and graph_bytes, so the same rows give time and memory against n_mc.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

from bench.contract.config import BenchConfig
from bench.contract.records import RunResult, failure_result
from bench.contract.store import ResultsWriter, read_runs
from bench.measure.machine import machine_info
from bench.run.executors import make_executor
from bench.run.worker import one_line

#: The worker target of every probe: a measured step without the FLOP-counting and final-loss steps.
PROBE_TARGET = "bench.run.maxnmc_search:measure_probe"

#: Default caps on the search. `repar` loops over its n_mc draws (time linear in n_mc), so 10^4 is
#: where a probe stops being affordable on a CPU; `repar_exact` costs the same at any n_mc, so its
#: cap is the repar profile's largest n_mc; `mc`'s graph grows with n_mc and meets the budget first.
DEFAULT_CAPS = {"mc": 10**4, "repar": 10**4, "repar_exact": 10**6}
ESTIMATORS = tuple(DEFAULT_CAPS)


#: The error text of a probe the kernel's OOM killer ended (bench.run.executors): the machine ran out of
#: RAM, which says nothing about the probe's budget (other processes hold the rest), so it is no
#: `oom` for the search: the probe is tried again, and if the kernel kills it again the search stops.
SYSTEM_KILL = "killed by SIGKILL"


def search_status(row: dict) -> str:
    """The status the search acts on: "oom" only for a failure under the probe's own budget."""
    status = row.get("status", "error")
    if status == "oom" and SYSTEM_KILL in str(row.get("error", "")):
        return "killed"
    return status


def measure_probe(config: BenchConfig) -> RunResult:
    from bench.measure.step import measure

    return measure(config, count_step_flops=False, final_step=False)


@dataclass(frozen=True)
class SearchResult:
    max_fit: int  # largest n_mc that fitted; 0 when n_mc = 1 did not
    first_failure: Optional[int]  # smallest n_mc found not to fit; None when the cap fitted
    stopped_by: str  # "oom" (bracketed), "cap" (the cap fitted), or the status that ended it (timeout, error)
    probes: tuple[int, ...]


def search_max_n_mc(fits: Callable[[int], str], cap: int, *, growth: int = 10, precision: float = 0.05) -> SearchResult:
    """`fits(n)` returns a row status: "ok" fits, "oom" does not, anything else stops the search there."""
    if cap < 1 or growth < 2 or precision < 0:
        raise ValueError("cap >= 1, growth >= 2 and precision >= 0 are required")
    probes: list[int] = []

    def probe(n: int) -> str:
        probes.append(n)
        return fits(n)

    lo, n = 0, 1
    while True:
        status = probe(n)
        if status != "ok":
            if status != "oom":
                return SearchResult(lo, None, status, tuple(probes))
            hi = n
            break
        lo = n
        if n >= cap:
            return SearchResult(lo, None, "cap", tuple(probes))
        n = min(cap, n * growth)
    while lo >= 1 and hi - lo > 1 and hi > lo * (1 + precision):
        mid = min(hi - 1, max(lo + 1, round(math.sqrt(lo * hi))))
        status = probe(mid)
        if status == "ok":
            lo = mid
        elif status == "oom":
            hi = mid
        else:
            return SearchResult(lo, hi, status, tuple(probes))
    return SearchResult(lo, hi, "oom", tuple(probes))


def run_maxnmc(base: BenchConfig, tasks: Sequence[str], estimators: Sequence[str], caps: dict, out_dir, *,
               executor: str = "local", resume: bool = False, argv=None, growth: int = 10, precision: float = 0.05,
               retries: int = 1,
               report: Optional[Callable[[str], None]] = None) -> dict:
    """Search every (task, estimator); rows go to out_dir/runs.csv. Returns {(task, kl): SearchResult}.

    A probe killed by the kernel's OOM killer (the machine's RAM, not the budget) is run again up to
    `retries` times; if it is killed every time the search of that pair stops there ("killed").

    `base` carries what every probe shares (impl, samples, steps, memory limit, ...). On --resume a
    probe whose run_id already has a final row is not run again: its recorded status is reused.
    """
    out_dir = Path(out_dir)
    report = report or (lambda line: print(line, flush=True))  # progress, line by line, even into a log file
    runner = make_executor(executor, target=PROBE_TARGET, folder=out_dir / "slurm")
    writer = ResultsWriter(out_dir, resume=resume)
    configs = [base.replace(task=t, kl=k, n_mc=1) for t in tasks for k in estimators]
    meta = writer.start_meta(configs=configs, profile="maxnmc", argv=argv or [], machine=machine_info(),
                             executor=executor)
    # A probe the kernel killed is not reused: it is probed again.
    recorded = {row["run_id"]: search_status(row) for row in read_runs(out_dir)} if resume else {}
    recorded = {run_id: status for run_id, status in recorded.items() if status != "killed"}
    found = {}
    interrupted = True
    try:
        for task in tasks:
            for kl in estimators:
                def fits(n: int, task=task, kl=kl) -> str:
                    config = base.replace(task=task, kl=kl, n_mc=n)
                    if config.run_id in recorded:
                        return recorded[config.run_id]
                    for _attempt in range(1 + retries):
                        try:
                            result = runner.run(config)
                        except Exception as e:  # an executor bug costs this probe, not the table
                            result = failure_result(config, "error", f"executor failed: {one_line(e)}")
                        writer.append(result)
                        status = search_status(result.row)
                        if status != "killed":
                            break
                    recorded[config.run_id] = status
                    step = result.row.get("step_s_median")
                    report(f"{task:<10} {kl:<12} n_mc={n:<8} {status:<7}"
                           + (f" step {step:.3g} s, graph {result.row.get('graph_bytes', 0) / 2**20:.1f} MiB"
                              if status == "ok" else ""))
                    return status

                found[(task, kl)] = search_max_n_mc(fits, caps[kl], growth=growth, precision=precision)
                r = found[(task, kl)]
                report(f"{task:<10} {kl:<12} max n_mc {r.max_fit}"
                       + (f" (n_mc {r.first_failure}: {r.stopped_by})" if r.first_failure else f" ({r.stopped_by})"))
        interrupted = False
    finally:
        writer.finish_meta(meta, interrupted=interrupted)
    return found
