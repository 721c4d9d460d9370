#!/usr/bin/env bash
# Installs bnn-bench and what it needs, leaving an importable torch alone.
#   scripts/setup.sh            bnn-bench and its test tools
#   scripts/setup.sh --peers    also the peer libraries it measures (scripts/peers-requirements.txt), each with
#                               --no-deps: their metadata asks for torchvision, which would replace torch
#
# pyproject asks for a torch range that any recent build satisfies, so pip keeps the torch you have
# (a CUDA build on a GPU host, the CPU build here). Only where no torch imports at all do we pin one
# first: an unpinned torch requirement would pull a multi-GB CUDA build onto a CPU-only machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}
PEERS=0
for arg in "$@"; do
    case "$arg" in
        --peers) PEERS=1 ;;
        *) echo "setup: unknown option $arg: use --peers or nothing" >&2; exit 2 ;;
    esac
done

if ! "$PY" -c "import torch" >/dev/null 2>&1; then
    echo "setup: no importable torch; installing torch==2.13.0 (CPU build)" >&2
    "$PY" -m pip install --quiet "torch==2.13.0"
fi
# Editable, so results and the git commit recorded with them are those of this checkout.
"$PY" -m pip install --quiet --disable-pip-version-check -e ".[test]"

if [ "$PEERS" = 1 ]; then
    before=$("$PY" -c "import torch; print(torch.__version__)")
    "$PY" -m pip install --quiet --disable-pip-version-check --no-deps -r scripts/peers-requirements.txt
    after=$("$PY" -c "import torch; print(torch.__version__)")
    if [ "$before" != "$after" ]; then
        echo "setup: torch changed from $before to $after while installing peers: reinstall torch==$before" >&2
        exit 1
    fi
    "$PY" run_bench.py list | sed -n '/^implementations/,/^KL estimators/p' | sed '$d'
fi
