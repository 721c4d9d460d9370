#!/usr/bin/env bash
# CI's performance gate, on its own: re-run the committed baseline's grid on this machine (in its
# interleaved rounds), with the baseline commit's code timed beside this checkout's pair by pair
# in every round, compare with `run_bench.py check`, print the table.
#
#   bash scripts/perf_gate.sh [extra check flags, e.g. --format github --json gate.json]
#
# Exit 0: no regression; 1: a regression; 2: bad input (missing data set, bad baseline, bad flag).
# Environment:
#   BNN_BENCH_DATA       where MNIST is (default ../shared/data/mnist, as in .ci/run)
#   BNN_BENCH_PLUGINS    plugin modules every benchmark process imports (how tests inject regressions)
#   PERF_GATE_BASELINE   the baseline directory (default: of results/baseline/ci-rounds-*, the one
#                        recorded on this CPU model, else the newest)
#   PERF_GATE_BASE_REF   the commit paired with this checkout (default: the baseline's own commit;
#                        a pull request's CI would pass its merge base, e.g. origin/main)
#   PERF_GATE_OUT        where the fresh run goes (default a new temporary directory)
# Time thresholds come from the baseline's thresholds.json (scripts/derive_thresholds.py wrote
# them from reruns of unchanged code); flags given here override them.
set -uo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

baseline=${PERF_GATE_BASELINE:-$("$PY" scripts/pick_baseline.py results/baseline)}
data_dir=${BNN_BENCH_DATA:-../shared/data/mnist}
out=${PERF_GATE_OUT:-$(mktemp -d)/perf-gate}
if [ ! -d "$baseline" ]; then
    echo "perf_gate: baseline $baseline not found: set PERF_GATE_BASELINE to a results directory" >&2
    exit 2
fi
thresholds=()
if [ -f "$baseline/thresholds.json" ]; then
    if ! read -r ratio abs paired < <("$PY" -c 'import json,sys; t=json.load(open(sys.argv[1])); print(t["threshold"], t["abs_threshold"], t.get("paired_threshold", 0.05))' "$baseline/thresholds.json" 2>/dev/null); then
        echo "perf_gate: $baseline/thresholds.json is unreadable: regenerate it with scripts/derive_thresholds.py" >&2
        exit 2
    fi
    thresholds=(--threshold "$ratio" --abs-threshold "$abs" --paired-threshold "$paired")
fi
echo "perf_gate: baseline $baseline, thresholds ${thresholds[*]:-the defaults of check}, plugins '${BNN_BENCH_PLUGINS:-}', fresh run in $out" >&2
base_ref=()
if [ -n "${PERF_GATE_BASE_REF:-}" ]; then
    base_ref=(--base-ref "$PERF_GATE_BASE_REF")
fi
"$PY" run_bench.py check "$baseline" "${thresholds[@]}" "${base_ref[@]}" --data-dir "$data_dir" --out "$out" "$@"
status=$?
case $status in
    0|1|2) exit $status ;;
    *) echo "perf_gate: check failed with status $status" >&2; exit 2 ;;
esac
