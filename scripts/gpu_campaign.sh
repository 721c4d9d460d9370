#!/usr/bin/env bash
# The GPU measurement campaign as one device command of at most 9 minutes (scripts/gpu_campaign.py;
# docs/gpu-campaign.md has the device calls). Runs from the working tree, installs nothing.
#   scripts/gpu_campaign.sh --plan | --stage-data | --dry-run [--out DIR] | --out DIR [--pack DIR] [--total S]
set -euo pipefail
cd "$(dirname "$0")/.."
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}"
exec python3 scripts/gpu_campaign.py "$@"
