"""`bnn-bench history REVS`: how each config's time and counters moved over a range of commits.

Each commit's code is timed beside one reference commit's, pair by pair in interleaved rounds
(bench/gate/history.py, with the gate's machinery), into OUT/commits/<short hash>/; one row per
(commit, config) goes to OUT/history.csv (bench/contract/history_store.py) the moment the commit is
done, so `--resume` continues a killed run. Then the steps along the history are found
(analysis/history_changes.py), printed, and written to OUT/history.md and OUT/history.html.
docs/history.md has the whole story.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from pathlib import Path

from bench.cli.args import open_unit_float, resolve_out
from bench.cli.cmd_sweep import _add_axes, _add_setup, _add_timing, add_run_options, grid_from_args, rounds_from_args
from bench.contract.errors import UsageError
from bench.contract.files import write_text_atomic
from bench.contract.history_store import HISTORY_FORMAT_VERSION, HistoryStore, commit_results_dir, read_history
from bench.contract.provenance import CODE_ROOT
from bench.contract.store import open_results_dir
from bench.grid.checks import check_data
from bench.run.rounds import repeats_per_round
from bench.run.worker import DEFAULT_TARGET, resolve_target

DEFAULT_PROFILE = "ci"
NO_PROFILE = "none"


def add_grid_flags(parser: argparse.ArgumentParser, name: str) -> None:
    """The grid flags `sweep` takes (its own parsers: one grammar for a grid), run options, the repository."""
    _add_axes(parser)
    _add_timing(parser)
    _add_setup(parser)
    add_run_options(parser)
    parser.set_defaults(profile=DEFAULT_PROFILE)
    parser.add_argument("--repo", metavar="DIR", help="the git repository whose commits are timed (default: this "
                                                      "checkout's)")
    parser.add_argument("--plugins", metavar="MODULES", default="",
                        help="BNN_BENCH_PLUGINS for both sides' workers (default none)")
    parser.add_argument("--threshold", type=open_unit_float, default=0.05,
                        help="smallest change of time relative to the reference that counts (default 0.05, the "
                             "gate's paired threshold)")
    parser.add_argument("--alpha", type=open_unit_float, default=0.05,
                        help="significance level (two-sided, as the gate's paired row; default 0.05)")
    parser.epilog = (f"--profile defaults to {DEFAULT_PROFILE}; --profile {NO_PROFILE} takes the grid from the "
                     "flags alone, as sweep without --profile does. Results go to --out (default "
                     f"results/runs/{name}-<time>).")


def grid_and_rounds(args) -> tuple[list, int]:
    """The configs and rounds the flags ask for; what a paired run cannot do is refused here."""
    for flag, given in (("--dry-run", args.dry_run), ("--estimate-from", args.estimate_from),
                        ("--retry-errors", args.retry_errors), ("--executor", args.executor != "local"),
                        ("--round-workers fresh", args.round_workers == "fresh")):
        if given:
            raise UsageError(f"{flag} does not apply here: commits are timed in pairs by warm workers; drop it")
    if args.profile == NO_PROFILE:
        args.profile = None
    configs = grid_from_args(args)
    rounds = rounds_from_args(args) or max(2, min(c.repeats for c in configs))
    for config in configs:
        repeats_per_round(config.repeats, rounds)
    resolve_target(args.target)
    if args.target == DEFAULT_TARGET:
        check_data(configs)
    return configs, rounds


def repo_of(args) -> Path:
    repo = Path(args.repo).resolve() if args.repo else CODE_ROOT
    if not repo.is_dir():
        raise UsageError(f"--repo {repo} is not a directory: give a git repository")
    return repo


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "history", help="time every commit of a range beside one reference commit; find where each config moved",
        description="Time each commit of REVS (a range A..B: A and the first-parent commits after it up to B; or a "
                    "list of commits) beside the reference commit's code, pair by pair in interleaved rounds, over "
                    "a grid (default the ci profile). Writes OUT/history.csv (one row per commit and config), "
                    "OUT/commits/<hash>/ (each commit's paired results), OUT/history.md and OUT/history.html, and "
                    "prints where a config's time relative to the reference stepped, or its counters changed.")
    parser.add_argument("revs", metavar="REVS", nargs="*")
    parser.add_argument("--reference", metavar="REF", help="the commit every commit is paired with (default: the "
                                                          "oldest of REVS)")
    parser.add_argument("--report", metavar="OUT", help="only re-render OUT/history.md from a stored history (no "
                                                       "timing)")
    add_grid_flags(parser, "history")
    parser.set_defaults(run=run)
    return parser


def _settings(plan) -> dict:
    return {"format_version": HISTORY_FORMAT_VERSION, "reference": plan.reference, "rounds": plan.rounds,
            "round_seed": plan.round_seed, "run_ids": sorted(c.run_id for c in plan.configs),
            "grid": [c.to_dict() for c in plan.configs], "commits": list(plan.commits), "argv": list(plan.argv)}


def _check_resumable(stored: dict, wanted: dict, out: Path) -> None:
    for key, what in (("format_version", "history format"), ("reference", "reference commit"),
                      ("run_ids", "grid"), ("rounds", "rounds"), ("round_seed", "round seed")):
        if stored.get(key) != wanted[key]:
            raise UsageError(f"--resume {out}: its {what} differs from this command's: give the flags it was "
                             f"started with (its history.json), or a new --out")


def _open_store(plan, out: Path, resume: bool) -> tuple[HistoryStore, set]:
    open_results_dir(out, resume=resume)
    store = HistoryStore(out, resume=resume)
    if store.repaired:
        print(f"note: {out}/history.csv ended in a torn line ({store.repaired} bytes): cut off", file=sys.stderr)
    wanted = _settings(plan)
    stored = store.read_meta()
    if stored is not None:
        _check_resumable(stored, wanted, out)
        wanted["commits"] = list(dict.fromkeys(list(stored.get("commits", [])) + wanted["commits"]))
    store.write_meta(wanted)
    return store, (store.done_commits(wanted["run_ids"]) if resume else set())


def _store_commit(store: HistoryStore, plan, outcome) -> None:
    from analysis.history_rows import commit_rows, unsupported_rows
    from bench.gate.history import commit_subject_and_date

    subject, date = commit_subject_and_date(outcome.commit, plan.repo)
    common = dict(position=outcome.position, commit=outcome.commit, subject=subject, commit_date=date,
                  reference=plan.reference)
    configs = [c.to_dict() | {"run_id": c.run_id} for c in plan.configs]
    if outcome.unsupported:
        rows = unsupported_rows(common, configs, outcome.unsupported)
    else:
        rows = commit_rows(outcome.results_dir, common, configs, out_dir=plan.out)
    store.append_commit(rows)
    for row in rows:
        ratio = (f"{float(row['ratio']):.3f} [{float(row['ratio_low']):.3f}, {float(row['ratio_high']):.3f}]"
                 if row["status"] == "ok" else f"{row['status']}: {str(row.get('reason', ''))[:100]}")
        print(f"  {outcome.commit[:12]} {row['config']}: {ratio}", file=sys.stderr)


def render_report(out: Path, *, threshold: float, alpha: float) -> tuple[list, list]:
    """history.md (and history.html where analysis/html_page.py exists) from the stored rows; the changes."""
    from analysis.history_changes import counter_steps, describe_counter_step, describe_time_step, time_steps
    from analysis.history_report import history_markdown
    from bench.contract.store import read_ops

    rows = read_history(out)
    if not rows:
        raise UsageError(f"{out}/history.csv holds no rows: run `history REVS --out {out}` first")
    ops_cache: dict = {}

    def ops_of(row: dict) -> dict:
        directory = commit_results_dir(out, row["commit"])  # from the hex-checked hash, not a stored path
        if directory not in ops_cache:
            ops_cache[directory] = read_ops(directory) if directory.is_dir() else {}
        return ops_cache[directory].get(row["run_id"], {})

    steps = time_steps(rows, threshold=threshold, alpha=alpha)
    counters = counter_steps(rows, ops_of)
    reference = rows[0]["reference"]
    markdown = history_markdown(rows, steps, counters, out, threshold=threshold, reference=reference)
    write_text_atomic(out / "history.md", markdown + "\n")
    try:
        from analysis.html_page import write_html_page
    except ImportError:
        print("note: analysis/html_page.py is missing here: no history.html", file=sys.stderr)
    else:
        write_html_page(out / "history.md", out / "history.html", "Performance history")
    print("\nchanges:" if steps or counters else "\nno change detected")
    for text in [describe_time_step(s) for s in steps] + [describe_counter_step(s) for s in counters]:
        print(f"  {text}")
    print(f"\nhistory: {out / 'history.csv'}; report: {out / 'history.md'}")
    return steps, counters


def run(args) -> int:
    if args.report:
        render_report(Path(args.report), threshold=args.threshold, alpha=args.alpha)
        return 0
    from bench.gate.history import HistoryPlan, resolve_commit, resolve_revs, run_history

    configs, rounds = grid_and_rounds(args)
    repo = repo_of(args)
    commits = resolve_revs(args.revs, repo)
    reference = resolve_commit(args.reference, repo) if args.reference else commits[0]
    out = resolve_out(args, "history")
    plan = HistoryPlan(commits, reference, configs, rounds, out, round_seed=args.round_seed, target=args.target,
                       plugins=args.plugins or None, repo=repo, argv=getattr(args, "argv", None) or sys.argv)
    store, done = _open_store(plan, out, args.resume)
    print(f"history: {len(commits)} commit(s) x {len(configs)} config(s), each beside {reference[:12]}'s code in "
          f"{rounds} rounds (out: {out})", file=sys.stderr)
    with contextlib.ExitStack() as stack:
        run_history(plan, stack, done=done, on_commit=lambda outcome: _store_commit(store, plan, outcome))
    render_report(out, threshold=args.threshold, alpha=args.alpha)
    return 0
