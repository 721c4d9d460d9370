"""`bnn-bench bisect GOOD BAD`: the first commit after GOOD, up to BAD, where one config got slower.

Counters first: GOOD's and BAD's deterministic counters are measured (seconds each); where BAD's grew
(an operator more, FLOPs up), the search runs on counters alone, exact. Otherwise one paired run of the
config, BAD's code beside GOOD's, confirms a slowdown beyond the threshold (the gate's verdict rule);
then a binary search over the first-parent commits, each probe one paired run, the commit's code
beside GOOD's. Exit 1: a first bad commit found; 0: no regression; 2: bad input (or undecided).
The search itself is bench/gate/bisect_search.py; docs/history.md has the rest.
"""

from __future__ import annotations

import argparse
import contextlib
import sys

from bench.cli.args import open_unit_float, resolve_out
from bench.cli.cmd_history import add_grid_flags, grid_and_rounds, repo_of
from bench.contract.errors import UsageError
from bench.contract.store import append_csv_row, open_results_dir

PROBES_FILE = "probes.csv"
PROBE_COLUMNS = ("probe", "kind", "commit", "subject", "verdict", "change", "low", "high", "detail", "results_dir")


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser(
        "bisect", help="find the first commit between GOOD and BAD where one config got slower",
        description="Find the first first-parent commit after GOOD, up to BAD, where the config the grid flags "
                    "select (exactly one; --config RUN_ID picks one of a profile's) got slower than --threshold, "
                    "in O(log n) paired comparisons with GOOD's code, or by its counters where BAD's grew. Exit 1: "
                    "found (the commit, its subject, the change and its interval printed); 0: no regression; 2: "
                    "bad input.")
    parser.add_argument("good", metavar="GOOD")
    parser.add_argument("bad", metavar="BAD")
    parser.add_argument("--config", metavar="RUN_ID", help="the config of the grid to bisect (its run_id)")
    parser.add_argument("--counter-threshold", type=open_unit_float, default=0.01,
                        help="growth of FLOPs per step that counts as structural (default 0.01); any operator "
                             "whose count grew counts")
    parser.add_argument("--no-counters", action="store_true", help="skip the counters: judge by time only")
    add_grid_flags(parser, "bisect")
    parser.set_defaults(run=run)
    return parser


def select_config(configs, run_id):
    """The one config to bisect; UsageError naming the choices when the flags do not give exactly one."""
    chosen = [c for c in configs if run_id is None or c.run_id == run_id]
    if len(chosen) != 1:
        names = ", ".join(c.run_id for c in (chosen or configs)[:6])
        raise UsageError(f"bisect needs exactly one config, the flags give {len(chosen)} ({names}"
                         f"{' ...' if len(chosen or configs) > 6 else ''}): narrow with --task/--impl/--samples or "
                         "pick one with --config RUN_ID")
    return chosen[0]


class Bisection:
    """One bisect run: the commits, GOOD's unpacked tree, and every probe recorded in OUT/probes.csv."""

    def __init__(self, args, stack: contextlib.ExitStack):
        from bench.gate.history import HistoryPlan, commits_between, reference_tree, resolve_commit

        configs, rounds = grid_and_rounds(args)
        self.config = select_config(configs, args.config)
        self.repo = repo_of(args)
        self.good = resolve_commit(args.good, self.repo)
        self.bad = resolve_commit(args.bad, self.repo)
        self.commits = commits_between(self.good, self.bad, self.repo)
        if not self.commits:
            raise UsageError(f"no first-parent commits after {args.good} up to {args.bad}: is BAD a descendant of "
                             "GOOD?")
        self.out = resolve_out(args, "bisect")
        open_results_dir(self.out, resume=False)
        self.args, self.stack, self.probes = args, stack, 0
        self.plan = HistoryPlan([self.good] + self.commits, self.good, [self.config], rounds, self.out,
                                round_seed=args.round_seed, target=args.target, plugins=args.plugins or None,
                                repo=self.repo, argv=getattr(args, "argv", None) or sys.argv)
        self.good_tree = reference_tree(self.good, self.repo, stack)
        self.measured: dict = {}  # index -> (change, detail) of its timing probe

    def subject(self, commit: str) -> str:
        from bench.gate.history import commit_subject_and_date

        return commit_subject_and_date(commit, self.repo)[0]

    def record(self, kind: str, commit: str, verdict: str, change=None, detail: str = "", results_dir="") -> None:
        self.probes += 1
        subject = self.subject(commit)
        append_csv_row(self.out / PROBES_FILE, dict(
            probe=self.probes, kind=kind, commit=commit, subject=subject, verdict=verdict,
            change="" if change is None else change.point - 1, low="" if change is None else change.low - 1,
            high="" if change is None else change.high - 1, detail=detail, results_dir=str(results_dir)),
            PROBE_COLUMNS)
        interval = "" if change is None else (f" {change.point - 1:+.1%} [{change.low - 1:+.1%}, "
                                              f"{change.high - 1:+.1%}]")
        print(f"bisect: probe {self.probes} ({kind}) {commit[:12]} {subject[:60]}:{interval} {verdict}"
              f"{' (' + detail + ')' if detail else ''}", file=sys.stderr)

    def counters_of(self, commit: str):
        from bench.gate.base_tree import BaseTreeUnavailable, temporary_tree
        from bench.gate.bisect_search import measure_counters

        if commit == self.good:
            return measure_counters(self.good_tree, self.config, target=self.args.target,
                                    plugins=self.args.plugins or None)
        try:
            with temporary_tree(commit, repo=self.repo) as tree:
                return measure_counters(tree, self.config, target=self.args.target, plugins=self.args.plugins or None)
        except BaseTreeUnavailable as e:
            return str(e)

    def time_probe(self, index: int) -> str:
        """One paired run of the config, commit `index`'s code beside GOOD's: bad, good or skip."""
        from analysis.history_rows import paired_verdict
        from bench.gate.bisect_search import BAD, GOOD, SKIP, scratch_dir
        from bench.gate.history import time_commit

        commit = self.commits[index]
        directory = scratch_dir(self.out, "time", self.probes + 1, commit)
        outcome = time_commit(self.plan, index + 1, commit, self.good_tree, out_dir=directory)
        if outcome.unsupported:
            self.record("time", commit, SKIP, detail=outcome.unsupported, results_dir=directory)
            return SKIP
        change, judged, detail = paired_verdict(directory, self.config.run_id, threshold=self.args.threshold,
                                                alpha=self.args.alpha)
        verdict = SKIP if change is None else BAD if judged == "REGRESSION" else GOOD
        self.measured[index] = change
        self.record("time", commit, verdict, change, detail, directory)
        return verdict


def _by_counters(run: Bisection) -> int | None:
    """The counters' search where BAD's counters grew over GOOD's; None where they did not (or could not
    be measured): then time decides."""
    from analysis.history_changes import counters_grew
    from bench.gate.bisect_search import BAD, GOOD, SKIP, first_bad_commit

    good = run.counters_of(run.good)
    bad = run.counters_of(run.bad)
    if any(isinstance(r, str) or r.row.get("status") != "ok" for r in (good, bad)):
        why = next(str(r) if isinstance(r, str) else str(r.row.get("error", "")) for r in (good, bad)
                   if isinstance(r, str) or r.row.get("status") != "ok")
        print(f"bisect: the counters could not be measured on GOOD or BAD ({why[:200]}): judging by time",
              file=sys.stderr)
        return None
    grown = counters_grew(good, bad, run.args.counter_threshold)
    run.record("counters", run.bad, BAD if grown else GOOD, detail="; ".join(grown))
    if not grown:
        return None

    found = {len(run.commits) - 1: grown}

    def judge(index: int) -> str:
        result = run.counters_of(run.commits[index])
        if isinstance(result, str) or result.row.get("status") != "ok":
            why = result if isinstance(result, str) else str(result.row.get("error", ""))
            run.record("counters", run.commits[index], SKIP, detail=why[:200])
            return SKIP
        found[index] = counters_grew(good, result, run.args.counter_threshold)
        run.record("counters", run.commits[index], BAD if found[index] else GOOD, detail="; ".join(found[index]))
        return BAD if found[index] else GOOD

    search = first_bad_commit(len(run.commits), judge, confirm=False)
    if search.first_bad is None:
        return _undecided(run, search)
    commit = run.commits[search.first_bad]
    print(f"\nfirst commit whose counters grew: {commit} {run.subject(commit)}\n  {run.config.run_id}: "
          f"{'; '.join(found[search.first_bad])} against GOOD (exact; {search.comparisons + 2} counter measurements; "
          f"probes in {run.out / PROBES_FILE})")
    return 1


def _undecided(run: Bisection, search) -> int:
    low, high = search.undecided
    print(f"\nbisect: undecided: the first bad commit is one of {run.commits[low][:12]} .. {run.commits[high][:12]}, "
          f"which could not be judged (see {run.out / PROBES_FILE})", file=sys.stderr)
    return 2


def _by_time(run: Bisection) -> int:
    from bench.gate.bisect_search import BAD, first_bad_commit

    search = first_bad_commit(len(run.commits), run.time_probe)
    if not search.probes or search.probes[0][1] != BAD:
        verdict = search.probes[0][1] if search.probes else "skip"
        if verdict == "skip":
            raise UsageError(f"BAD ({run.bad[:12]}) could not be timed beside GOOD: see {run.out / PROBES_FILE}")
        print(f"\nno regression between GOOD ({run.good[:12]}) and BAD ({run.bad[:12]}) for {run.config.run_id} "
              f"(threshold {run.args.threshold:.0%})")
        return 0
    if search.first_bad is None:
        return _undecided(run, search)
    commit = run.commits[search.first_bad]
    change = run.measured.get(search.first_bad)
    text = "" if change is None else f"{change.point - 1:+.1%} [{change.low - 1:+.1%}, {change.high - 1:+.1%}]"
    print(f"\nfirst bad commit: {commit} {run.subject(commit)}\n  {run.config.run_id}: {text} against GOOD's code "
          f"({search.comparisons} paired comparisons; probes in {run.out / PROBES_FILE})")
    return 1


def run(args) -> int:
    with contextlib.ExitStack() as stack:
        bisection = Bisection(args, stack)
        print(f"bisect: {len(bisection.commits)} commit(s) after {bisection.good[:12]} up to {bisection.bad[:12]}, "
              f"config {bisection.config.run_id} (out: {bisection.out})", file=sys.stderr)
        if not args.no_counters:
            found = _by_counters(bisection)
            if found is not None:
                return found
        return _by_time(bisection)
