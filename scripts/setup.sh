#!/usr/bin/env bash
# Installs bnn-bench and what it needs, leaving an importable torch alone.
#
# pyproject asks for a torch range that any recent build satisfies, so pip keeps the torch you have
# (a CUDA build on a GPU host, the CPU build here). Only where no torch imports at all do we pin one
# first: an unpinned torch requirement would pull a multi-GB CUDA build onto a CPU-only machine.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python3}

if ! "$PY" -c "import torch" >/dev/null 2>&1; then
    echo "setup: no importable torch; installing torch==2.13.0 (CPU build)" >&2
    "$PY" -m pip install --quiet "torch==2.13.0"
fi
# Editable, so results and the git commit recorded with them are those of this checkout.
"$PY" -m pip install --quiet --disable-pip-version-check -e ".[test]"
