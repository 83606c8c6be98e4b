"""Print the docs/benchmarks.md tables from benchmarks/results/*.json.

    python -m benchmarks.docs
"""

from __future__ import annotations

import json
import sys

from benchmarks import report
from benchmarks.env import RESULTS


def _load(name: str) -> dict | None:
    path = RESULTS / name
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def main() -> int:
    waves, nodes, rerun = (_load(n) for n in ("wave_verify.json", "node_labels.json", "rerun.json"))
    out = []
    if waves:
        out += ["### Wave verification", "", report.waves_table(waves), "", report.ratios_table(waves), ""]
    if nodes:
        out += ["### Node labels at scale", "", report.nodes_table(nodes), ""]
    if rerun:
        out += ["### Rerun cost", "", report.rerun_table(rerun), ""]
    sys.stdout.write("\n".join(out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
