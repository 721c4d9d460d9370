"""The GPU measurement campaign (run through scripts/gpu_campaign.sh): everything worth measuring on a
lent H100/H200 as ONE prepared device command of at most 9 minutes, in order of value, writing as
it goes. Not part of the library: it drives `run_bench.py` commands.

    scripts/gpu_campaign.sh --stage-data                                  # once, here: MNIST -> .data/mnist
    scripts/gpu_campaign.sh --out results/gpu/DATE-GPU --pack $OUT        # on the device: the campaign
    scripts/gpu_campaign.sh --out results/gpu/DATE-GPU --pack $OUT --total 210   # the rerun: what is left
    scripts/gpu_campaign.sh --dry-run --out /tmp/rehearsal                # the same command on the CPU
    scripts/gpu_campaign.sh --plan                                        # the steps and their estimates

The campaign is one ordered list of steps (the machine and its ceilings, the gpu tests, the report's
grid with and without the best lever, whole epochs, the KL estimators' memory table, profiles).
Each step is `python3 run_bench.py ...` (or pytest, or a script) in a subprocess from the working
tree: the device machine cannot install anything. `--total` bounds the whole command; each step
also has its own cap, so one slow step cannot starve the rest, and each sweep a timeout per config.
A step stopped by a limit gets SIGINT first (a sweep keeps every row it wrote). After every step
the campaign directory is packed into --pack (the device returns files, not folders), so a
command cut off at its limit still returns what it measured. Run again, the command skips the
steps already done (OUT/campaign.csv) and resumes the sweeps it did not finish: that is the rerun.

`--dry-run` is the same list with tiny sizes on the CPU (<= 5 minutes on 2 cores); the CUDA-only
lever is recorded as skipped, with the reason. The estimates (`--plan`) are for an H100/H200;
`ASSUMPTIONS` says what they rest on.
"""

from __future__ import annotations

import argparse
import csv
import datetime as _dt
import os
import shutil
import signal
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from bench.cli.args import positive_float
from bench.contract.errors import UsageError
from bench.contract.provenance import CODE_COMMIT_ENV, CODE_ROOT, git_commit, is_commit_statement
from bench.contract.store import append_csv_row
from bnn_impls.names import IMPLEMENTATIONS

TOTAL_S = 480.0  # one command: 8 min, so a machine start (1-2 min) and a 3-minute rerun fit the 15
RERUN_TOTAL_S = 210.0  # the rerun's --total: what is left of the 15 minutes after the first command
COMMAND_LIMIT_S = 540.0  # what --total may be at most: a device command runs 10 min, and the pack needs a margin
STAGED_DATA = Path(".data") / "mnist"
REFERENCE_DIR = Path("results") / "reference_a100"
LOG_FILE = "campaign.csv"
LOG_COLUMNS = ("step", "priority", "mode", "status", "estimate_s", "wall_s", "returncode", "reason", "started",
               "ended")
IMPLS = IMPLEMENTATIONS  # every implementation of ours, any added later included
PROFILED = ("vmap_lrt", "sequential")

#: The report's Table 2 (A100, seconds per MNIST epoch of 469 steps) at S = 1, 2, 5, 10: the basis
#: of the step estimates; an implementation the report did not time (vmap_flipout) is taken as vmap.
REPORT_MNIST_EPOCH_S = {"sequential": (14.3, 23.0, 49.5, 94.0), "vmap": (15.1, 19.0, 31.7, 52.0),
                        "vmap_lrt": (10.2, 11.0, 13.6, 17.1)}
REPORT_SAMPLES = (1, 2, 5, 10)
MNIST_STEPS_PER_EPOCH = 469
REPORT_TO_H100 = 5.0  # our eager step on an H200 = the report's A100 step / 5 (measured 5.4-6.1, see ASSUMPTIONS)
WORKER_START_S = 6.0  # one process: import torch (CUDA build), CUDA context, data onto the device
PARALLEL_START_S = 20.0  # a warm-rounds sweep starts all its workers at once, on the device's 16 cores
COUNTING_STEPS = 4  # untimed steps per config: FLOPs, operators, graph bytes, the GEMM replay
ASSUMPTIONS = (
    f"MNIST step = the report's A100 Table 2 epoch / {MNIST_STEPS_PER_EPOCH} / {REPORT_TO_H100:g}: on the H200 "
    "(results/gpu/20261204-h200) our eager S=10 steps were 5.4x (sequential, 37.4 ms) and 6.1x (vmap_lrt, "
    "5.98 ms) below the report's; eager steps there are host-bound (the GPU idle 90% of a step)",
    f"{WORKER_START_S:g} s per worker process started alone; {PARALLEL_START_S:g} s for a warm-rounds sweep to start "
    f"all its workers together; {COUNTING_STEPS} untimed counting steps per config",
    "the KL, maxnmc, test and profile steps: their H200 wall times (2026-12-04), rounded up; "
    "a step never runs past its cap, nor a config past its --timeout",
)


@dataclass(frozen=True)
class Step:
    """One command: `python3 run_bench.py ARGV` (kind bench), `-m pytest ARGV` (pytest) or `python3 ARGV`."""

    name: str
    priority: int  # the order of value: 1 tests, 2 the report's grid, 3 KL memory, 4 profiles, 5 extras
    argv: tuple[str, ...]
    estimate_s: float
    cap_s: float
    kind: str = "bench"
    skip_reason: str = ""  # non-empty: recorded as skipped, not run


@dataclass(frozen=True)
class Settings:
    """What differs between the real campaign and its CPU rehearsal."""

    dry_run: bool
    out: Path
    data_dir: Path
    code_commit: str = ""  # --code-commit: given to every step as $BNN_BENCH_CODE_COMMIT

    @property
    def device(self) -> str:
        return "cpu" if self.dry_run else "cuda"


def mnist_step_s(impl: str, samples: int) -> float:
    """Estimated seconds per MNIST step on an H100/H200 (ASSUMPTIONS); S between the report's points interpolates."""
    row = REPORT_MNIST_EPOCH_S.get(impl, REPORT_MNIST_EPOCH_S["vmap"])
    return float(np.interp(samples, REPORT_SAMPLES, row)) / MNIST_STEPS_PER_EPOCH / REPORT_TO_H100


def _sweep(s: Settings, out: str, *args: str, timeout: float) -> tuple[str, ...]:
    return ("sweep", *args, "--device", s.device, "--data-dir", str(s.data_dir), "--out", str(s.out / out),
            "--timeout", f"{timeout:g}", "--resume")


def grid_steps(s: Settings) -> list[Step]:
    """The report's grid (MNIST and regression, S = 1, 2, 5, 10, every implementation) in interleaved
    rounds, eager and with the best GPU lever (CUDA graphs); then whole MNIST epochs at S = 10."""
    samples = (1, 2) if s.dry_run else REPORT_SAMPLES
    steps, repeats = (2, 2) if s.dry_run else (20, 5)
    timing = ("--steps", str(steps), "--repeats", str(repeats), "--rounds", str(repeats),
              "--warmup", "1" if s.dry_run else "10")
    grid = ("--impl", ",".join(IMPLS), "--samples", ",".join(map(str, samples)), *timing)
    timed = sum(mnist_step_s(i, S) for i in IMPLS for S in REPORT_SAMPLES) * (steps * repeats + 10 + COUNTING_STEPS)
    n_configs = len(IMPLS) * len(samples)
    est = PARALLEL_START_S + timed + n_configs * 1.0  # per-repeat round trips and row writes
    cg_skip = "CUDA graphs need a CUDA device" if s.dry_run else ""
    # The rehearsal's epochs are regression's (8 steps): an MNIST epoch on 2 CPU cores takes minutes.
    epoch_grid = (("--task", "regression", "--samples", "2") if s.dry_run else ("--task", "mnist", "--samples", "10"))
    epoch_est = PARALLEL_START_S + sum(mnist_step_s(i, 10) for i in IMPLS) * (4 * MNIST_STEPS_PER_EPOCH + 20)
    return [
        Step("grid mnist eager", 2, _sweep(s, "grid", "--task", "mnist", *grid, timeout=150), est, 150),
        Step("grid mnist cudagraphs", 2, _sweep(s, "grid", "--task", "mnist", *grid, "--step-mode", "cudagraphs",
                                               timeout=150), est + 10, 150, skip_reason=cg_skip),
        Step("grid regression eager", 2, _sweep(s, "grid", "--task", "regression", *grid, timeout=120),
             PARALLEL_START_S + 20, 100),
        Step("epochs mnist eager", 5, _sweep(s, "epochs", "--impl", ",".join(IMPLS), *epoch_grid,
                                             "--epochs", "1", "--repeats", "3", "--rounds", "3", "--warmup", "10",
                                             timeout=150), epoch_est, 200),
    ]


def kl_steps(s: Settings) -> list[Step]:
    """The KL estimators' memory table: graph bytes and time against n_mc on the MLP (MNIST, vmap_lrt)
    and ResNet-18 (synthetic CIFAR-shaped inputs, vmap: weight sampling, exact on conv layers), each
    config in its own process with the whole GPU (direct `mc` ends in an `oom` row); then `mc`'s
    largest n_mc on ResNet-18 within the GPU's memory. `repar` loops over its draws (time grows with
    n_mc; ~18 launches per draw), so it stops where one step passes a few seconds; `repar_exact`
    draws the moments directly and goes to 10^6."""
    # One step per repeat: mc at n_mc = 1000 takes 2.4 s a step on the MLP, 10.6 s on ResNet-18 (H200).
    timing = ("--samples", "1", "--steps", "1", "--repeats", "2" if s.dry_run else "3",
              "--warmup", "1", "--executor", "local")
    if s.dry_run:
        mlp = (("mc,repar", "1,10"), ("repar_exact", "1,1000000"))
        resnet = (("mc,repar", "1,10"), ("repar_exact", "1,1000000"))
        small = ("--batch-size", "4")
        memory = ()  # the CPU's cap is on address space: 2G stops a forked ResNet-18 worker at n_mc = 1
        maxnmc_memory = ("--memory-limit", "4G")
    else:
        mlp = (("mc,repar", "1,10,100,1000,10000"), ("repar_exact", "1,10,100,1000,10000,100000,1000000"))
        resnet = (("mc,repar", "1,10,100"), ("repar_exact", "1,100,10000,1000000"))  # mc's limit: maxnmc
        small = ()
        memory = ("--memory-limit", "1T")  # more than any GPU: the allocator's cap is the whole device
        maxnmc_memory = memory
    steps = []
    for label, task, impl, data, blocks, est in (
            ("mlp", "mnist", "vmap_lrt", (), mlp, 100.0),  # H200: 121 s with 2 steps a repeat, cut at its cap
            ("resnet18", "resnet18", "vmap", ("--data", "synthetic", *small), resnet, 70.0)):  # H200: 60 s
        for kls, n_mc in blocks:
            name = f"kl {label} {'repar_exact' if kls == 'repar_exact' else 'mc,repar'}"
            steps.append(Step(name, 3, _sweep(s, f"kl-{label}", "--task", task, "--impl", impl, *data, "--kl", kls,
                                              "--n-mc", n_mc, *timing, *memory, timeout=60),
                              est if kls != "repar_exact" else 30.0, 120))  # H200: 23 and 28 s
    maxnmc = ("maxnmc", "--task", "resnet18", "--data", "synthetic", *small, "--kl", "mc", "--impl", "vmap",
              *maxnmc_memory, "--growth", "10", "--precision", "0.1", "--device", s.device,
              "--data-dir", str(s.data_dir), "--out", str(s.out / "maxnmc"))
    # ~10 probes; near the limit each fills the GPU's memory first (1000 draws: 126 GiB, 10.6 s a step).
    steps.append(Step("maxnmc resnet18 mc", 3, maxnmc, 120.0, 150))
    return steps


def profile_steps(s: Settings) -> list[Step]:
    """Profiler summaries of MNIST S = 10 steps (S = 2 in the rehearsal), and vmap_lrt as a CUDA graph."""
    common = ("--task", "mnist", "--samples", "2" if s.dry_run else "10", "--device", s.device,
              "--data-dir", str(s.data_dir), "--out", str(s.out / "profile"),
              "--steps", "2" if s.dry_run else "20", "--warmup", "1" if s.dry_run else "5")
    steps = [Step(f"profile {impl}", 4, ("profile", "--impl", impl, *common), WORKER_START_S + 10, 60)
             for impl in PROFILED]
    steps.append(Step("profile vmap_lrt cudagraphs", 4, ("profile", "--impl", "vmap_lrt", "--step-mode",
                                                         "cudagraphs", *common), WORKER_START_S + 10, 60,
                      skip_reason="CUDA graphs need a CUDA device" if s.dry_run else ""))
    return steps


def build_steps(s: Settings) -> list[Step]:
    """The whole campaign in the issue's order of value."""
    machine = Step("machine", 1, (str(CODE_ROOT / "scripts" / "gpu_machine.py"), str(s.out / "machine.json")),
                   10.0, 45, kind="python")
    # A test module that cannot be imported there (a peer missing) must not stop the gpu tests.
    tests = Step("pytest -m gpu", 1, ("-m", "gpu", "-q", "-p", "no:cacheprovider", "-rs",
                                      "--continue-on-collection-errors", f"--junitxml={s.out / 'gpu-tests.xml'}",
                                      "tests/"), 45.0, 150, kind="pytest")  # H200: 39 s, one compile
    grid = grid_steps(s)  # the whole epochs (the last) are an extra: the step grid gives epoch = 469 steps
    regression_cg = Step("grid regression cudagraphs", 5, grid[2].argv + ("--step-mode", "cudagraphs"),
                         PARALLEL_START_S + 20, 100,
                         skip_reason="CUDA graphs need a CUDA device" if s.dry_run else "")
    return [machine, tests, *grid[:-1], *kl_steps(s), *profile_steps(s), grid[-1], regression_cg]


# ---------------------------------------------------------------------------------------------
# Running


def done_steps(out: Path) -> set[tuple[str, str]]:
    path = out / LOG_FILE
    if not path.exists():
        return set()
    with open(path, newline="") as f:
        return {(r["step"], r["mode"]) for r in csv.DictReader(f) if r.get("status") in ("ok", "skipped")}


def _log(out: Path, row: dict) -> None:
    append_csv_row(out / LOG_FILE, row, LOG_COLUMNS)


def _now() -> str:
    return _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")


def command(step: Step) -> list[str]:
    if step.kind == "pytest":
        return [sys.executable, "-m", "pytest", *step.argv]
    if step.kind == "python":
        return [sys.executable, *step.argv]
    return [sys.executable, str(CODE_ROOT / "run_bench.py"), *step.argv]


def step_environment(s: Optional[Settings]) -> dict:
    """Our environment, plus BNN_BENCH_DATA (where the tests' MNIST fixture looks: ../shared does not
    travel) and the stated commit, if any."""
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    if s is not None:
        env["BNN_BENCH_DATA"] = str(s.data_dir)
        if s.code_commit:
            env[CODE_COMMIT_ENV] = s.code_commit
    return env


def _interruptible() -> None:
    """In the step's process, before exec: SIGINT back to its default. A campaign started in the
    background (`cmd &` in a script, `nohup`) inherits SIGINT ignored, Python then leaves it ignored,
    and a step stopped at its cap would sit out the 15 s grace before SIGKILL instead of stopping
    cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_step(step: Step, limit_s: float, s: Optional[Settings] = None) -> tuple[int, bool]:
    """(returncode, stopped_at_limit). The step's output goes to our stdout (the device's log)."""
    cmd = command(step)
    print(f"[campaign] $ {' '.join(cmd)}", flush=True)
    env = step_environment(s)
    child = subprocess.Popen(cmd, cwd=CODE_ROOT, env=env, start_new_session=True, preexec_fn=_interruptible)
    try:
        return child.wait(timeout=max(1.0, limit_s)), False
    except subprocess.TimeoutExpired:
        os.killpg(child.pid, signal.SIGINT)  # a sweep kills its running config and keeps every row it wrote
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
        return child.returncode, True
    except BaseException:
        os.killpg(child.pid, signal.SIGKILL)
        raise


def step_out_dir(step: Step) -> Optional[Path]:
    """The results directory (runs.csv) a sweep or maxnmc step writes, if any; a profile writes none."""
    argv = list(step.argv)
    writes_rows = step.kind == "bench" and argv and argv[0] in ("sweep", "maxnmc") and "--out" in argv
    return Path(argv[argv.index("--out") + 1]) if writes_rows else None


def row_statuses(directory: Optional[Path]) -> dict[str, str]:
    """run_id -> status of a results directory's runs.csv (the last row of a run_id counts); {} if none."""
    path = directory / "runs.csv" if directory is not None else None
    if path is None or not path.is_file():
        return {}
    with open(path, newline="", errors="replace") as f:
        return {r.get("run_id", ""): r.get("status", "") for r in csv.DictReader(f)}


def rows_verdict(before: dict[str, str], after: dict[str, str]) -> tuple[bool, str]:
    """Whether the rows a step wrote are all measurements (ok, or the oom/timeout a memory study
    expects), and their count by status. A sweep exits 0 when every config errs (each error is a
    row), so the exit status alone would call a broken step done."""
    new = [status for run_id, status in after.items() if before.get(run_id) != status]
    counts = {status: new.count(status) for status in sorted(set(new))}
    text = "rows: " + (", ".join(f"{n} {status}" for status, n in counts.items()) or "none new")
    return "error" not in counts, text


def run_campaign(steps: list[Step], s: Settings, total_s: float, after_step=None) -> bool:
    """Run the steps not yet done, each within min(its cap, what is left of total_s); True if all
    finished (ok or skipped). `after_step()` runs after each step (the pack)."""
    s.out.mkdir(parents=True, exist_ok=True)
    mode = "dry-run" if s.dry_run else "cuda"
    done = done_steps(s.out)
    start = time.monotonic()
    complete = True
    for step in steps:
        if (step.name, mode) in done:
            print(f"[campaign] {step.name}: done earlier", flush=True)
            continue
        row = {"step": step.name, "priority": step.priority, "mode": mode, "estimate_s": f"{step.estimate_s:.0f}",
               "started": _now()}
        if step.skip_reason:
            _log(s.out, dict(row, status="skipped", wall_s="0", reason=step.skip_reason, ended=_now()))
            print(f"[campaign] {step.name}: skipped ({step.skip_reason})", flush=True)
            continue
        left = total_s - (time.monotonic() - start)
        if left < 10:
            _log(s.out, dict(row, status="not_run", wall_s="0", reason="--total spent before this step: run the "
                                                                         "command again", ended=_now()))
            complete = False
            continue
        t0 = time.monotonic()
        before = row_statuses(step_out_dir(step))
        returncode, stopped = run_step(step, min(step.cap_s, left), s)
        rows_ok, rows = rows_verdict(before, row_statuses(step_out_dir(step)))
        status = "stopped" if stopped else ("ok" if returncode == 0 and rows_ok else "failed")
        reason = ("stopped at its cap or --total: run the command again to resume" if stopped else
                  f"exit status {returncode}" if returncode != 0 else "" if rows_ok else
                  "configs ended in error rows: fix, then run the command again with the sweep's --retry-errors "
                  "or a fresh --out")
        if step_out_dir(step) is not None:
            reason = f"{reason}; {rows}" if reason else rows
        _log(s.out, dict(row, status=status, wall_s=f"{time.monotonic() - t0:.1f}", returncode=returncode,
                         reason=reason, ended=_now()))
        print(f"[campaign] {step.name}: {status} in {time.monotonic() - t0:.0f} s (estimate "
              f"{step.estimate_s:.0f} s; {time.monotonic() - start:.0f} s of {total_s:.0f} used)", flush=True)
        complete &= status == "ok"
        if after_step is not None:
            after_step()
    return complete


def pack(out: Path, dest: Path) -> Path:
    """The campaign directory as one tar.gz, written beside and renamed (a cut-off pack leaves the last one)."""
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / f"{out.name}.tar.gz"
    partial = path.with_name(path.name + ".partial")
    with tarfile.open(partial, "w:gz") as tar:
        tar.add(out, arcname=out.name)
    os.replace(partial, path)
    return path


def stage_data(source: Optional[str]) -> Path:
    """Copy MNIST (the four files, gz or not) from `source` or $BNN_BENCH_DATA into .data/mnist."""
    from bnn_impls.mnist import ensure_available

    source = source or os.environ.get("BNN_BENCH_DATA")
    if not source:
        raise UsageError("--stage-data needs MNIST: set BNN_BENCH_DATA=DIR or pass --data-dir DIR")
    ensure_available(source, allow_download=False)  # a missing or corrupt source fails here, one line
    dest = CODE_ROOT / STAGED_DATA
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(source, dest)
    ensure_available(str(dest), allow_download=False)
    return dest


def plan_table(steps: list[Step], total_s: float) -> str:
    lines = ["| # | priority | step | estimate | cap |", "| --- | --- | --- | --- | --- |"]
    for i, st in enumerate(steps, 1):
        lines.append(f"| {i} | {st.priority} | {st.name} | {st.estimate_s:.0f} s | {st.cap_s:.0f} s |")
    est = sum(st.estimate_s for st in steps if not st.skip_reason)
    lines.append(f"| | | total | {est / 60:.1f} min | --total {total_s / 60:.1f} min |")
    return "\n".join(lines)


class _Parser(argparse.ArgumentParser):
    """Bad flags are one line on stderr and exit status 2, as for run_bench.py."""

    def error(self, message: str):
        print(f"gpu_campaign: error: {message} (see gpu_campaign.sh --help)", file=sys.stderr)
        raise SystemExit(2)


def _total(text: str) -> float:
    value = positive_float(text)
    if value > COMMAND_LIMIT_S:
        raise argparse.ArgumentTypeError(f"--total {text}: at most {COMMAND_LIMIT_S:g} s, as one device command "
                                         "runs 10 minutes and the pack needs a margin")
    return value


def _settings(args) -> Settings:
    staged = CODE_ROOT / STAGED_DATA
    data_dir = Path(args.data_dir) if args.data_dir else (staged if staged.exists() else
                                                          Path(os.environ.get("BNN_BENCH_DATA", staged)))
    default_out = CODE_ROOT / "results" / "gpu" / ("dry-run" if args.dry_run else "campaign")
    return Settings(dry_run=args.dry_run, out=Path(args.out).resolve() if args.out else default_out,
                    data_dir=data_dir.resolve(), code_commit=(args.code_commit or "").strip())


def main(argv=None) -> int:
    parser = _Parser(prog="gpu_campaign.sh", description=__doc__.split("\n\n")[0], allow_abbrev=False)
    parser.add_argument("--dry-run", action="store_true", help="the same steps on the CPU with tiny sizes")
    parser.add_argument("--out", metavar="DIR", help="campaign directory (default results/gpu/campaign, "
                                                     "or results/gpu/dry-run with --dry-run)")
    parser.add_argument("--data-dir", metavar="DIR", help=f"MNIST (default {STAGED_DATA}, else $BNN_BENCH_DATA)")
    parser.add_argument("--total", type=_total, default=TOTAL_S, metavar="S",
                        help=f"seconds for this command (default {TOTAL_S:g}, at most {COMMAND_LIMIT_S:g})")
    parser.add_argument("--pack", metavar="DIR", help="after each step, write DIR/<out name>.tar.gz of the campaign "
                                                      "directory (the device returns files, not folders)")
    parser.add_argument("--code-commit", metavar="HASH",
                        help="the commit the working tree was copied from (`git rev-parse HEAD` where it was; "
                             "`+dirty` if it had changes), recorded in every row instead of what this checkout's "
                             "git says: a lent device machine's copy has a stale .git")
    parser.add_argument("--stage-data", action="store_true", help=f"copy MNIST into {STAGED_DATA} and exit")
    parser.add_argument("--plan", action="store_true", help="print the steps with their estimates, and exit")
    args = parser.parse_args(argv)
    try:
        if args.stage_data:
            print(f"MNIST staged in {stage_data(args.data_dir)}: pass carry=[\".data\"] to the device run")
            return 0
        settings = _settings(args)
        if args.code_commit is not None and not is_commit_statement(args.code_commit.strip()):
            raise UsageError(f"--code-commit {args.code_commit!r}: give the 40-hex-digit hash `git rev-parse HEAD` "
                             "prints, optionally followed by +dirty")
        if args.plan:
            print(plan_table(build_steps(Settings(False, settings.out, settings.data_dir)), args.total))
            print("\nassumptions:\n" + "\n".join(f"- {a}" for a in ASSUMPTIONS))
            return 0
        if not args.dry_run:
            import torch

            if not torch.cuda.is_available():
                raise UsageError("no CUDA device here: run the campaign on a GPU machine, or rehearse it with "
                                 "--dry-run")
        from bnn_impls.mnist import ensure_available

        ensure_available(str(settings.data_dir), allow_download=False)
        if not args.dry_run and not settings.code_commit:
            print(f"[campaign] warning: no --code-commit: rows will record {git_commit() or 'no commit'}, which "
                  "on a lent machine is its copy's stale .git", flush=True)
    except Exception as e:
        from bnn_impls.mnist import DataError
        from bnn_impls.names import BnnConfigError

        if not isinstance(e, (UsageError, DataError, BnnConfigError)):
            raise
        print(f"gpu_campaign: error: {' '.join(str(e).split())}", file=sys.stderr)
        return 2
    t0 = time.monotonic()
    after = (lambda: print(f"[campaign] packed {pack(settings.out, Path(args.pack))}", flush=True)) if args.pack \
        else None
    complete = run_campaign(build_steps(settings), settings, args.total, after)
    print(f"[campaign] {time.monotonic() - t0:.0f} s; log: {settings.out / LOG_FILE}"
          f"{'' if complete else '; unfinished steps: run the same command again'}", flush=True)
    return 0 if complete else 3


if __name__ == "__main__":
    sys.exit(main())
