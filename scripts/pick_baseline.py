"""Print the CI gate's baseline directory: of DIR/ci-rounds-*, the one recorded on this CPU model
(absolute times and ratios to sequential are judged only there), else the most recently recorded.

    python3 scripts/pick_baseline.py results/baseline
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.contract.provenance import cpu_model


def pick(root: Path, model: str) -> Path | None:
    found = []
    for meta_path in sorted(root.glob("ci-rounds-*/meta.json")):
        try:
            meta = json.loads(meta_path.read_text())
        except (OSError, ValueError):
            continue
        found.append((meta.get("machine", {}).get("cpu_model") == model, meta.get("start_time") or "",
                      meta_path.parent))
    return max(found)[2] if found else None


def main(argv) -> int:
    root = Path(argv[0]) if argv else Path("results/baseline")
    chosen = pick(root, cpu_model())
    if chosen is None:
        print(f"pick_baseline: no ci-rounds-* baseline under {root}: record one with "
              "`run_bench.py sweep --profile ci --threads 1 --out results/baseline/ci-rounds-NAME`", file=sys.stderr)
        print(root / "ci-rounds-missing")
        return 0
    print(chosen)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
