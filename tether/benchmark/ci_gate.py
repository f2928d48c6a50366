"""CI's performance gate: ``python -m tether.benchmark.ci_gate [results/]``.

For every GPU folder under ``results/`` holding ``baseline.csv`` and ``latest.csv``, run the
gate (tolerance 5%), and where it holds ``models_baseline.csv`` and ``models.csv``, the model
steps' gate (10%: a whole step moves more between runs than one kernel); fail when any fails. Print a loud notice when the kernel source changed
after the latest GPU results were recorded (their ``kernel_hash`` differs from the code's).
"""

from __future__ import annotations

import sys
from pathlib import Path

from tether.benchmark.gate import gate, gate_models
from tether.benchmark.runner import RESULTS, read_results
from tether.kernels.hashing import kernel_hash

TOLERANCE = 0.05
MODEL_TOLERANCE = 0.10


def main(results: Path) -> int:
    """0 when every GPU folder's gate passes (or none has a baseline), else 1."""
    folders = sorted(p.parent for p in results.glob("*/latest.csv"))
    if not folders:
        print(f"ci_gate: no results/<gpu>/latest.csv under {results}: nothing to gate")
        return 0
    failed = False
    current = kernel_hash()
    for folder in folders:
        latest, baseline = folder / "latest.csv", folder / "baseline.csv"
        hashes = set(read_results(latest).get("kernel_hash", []))
        if current not in hashes:
            print("!" * 78)
            print(f"NOTICE: the kernels changed after {latest} was measured")
            print(f"  (its kernel_hash {sorted(hashes)} != current {current}):")
            print("  re-run the benchmark on a GPU and commit the new results.")
            print("!" * 78)
        if not baseline.exists():
            print(f"ci_gate: {folder.name}: no baseline.csv, gate skipped")
            continue
        print(f"ci_gate: {folder.name}:")
        failed |= not gate(baseline, latest, TOLERANCE)
        models, models_baseline = folder / "models.csv", folder / "models_baseline.csv"
        if models.exists() and models_baseline.exists():
            failed |= not gate_models(models_baseline, models, MODEL_TOLERANCE)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(Path(sys.argv[1]) if len(sys.argv) > 1 else RESULTS))
