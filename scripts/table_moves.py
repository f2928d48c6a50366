"""Which calls a winners-table change moves: ``python scripts/table_moves.py OLD.json
[NEW.json] [--all]`` (NEW: the table in the tree). No GPU needed.

A tune's winners become the nearest entries of buckets nobody timed (``table.planned``):
ALIF fp32 tuned at 32x2^23 and 128x2^22 on the H100 ran 512x8192 1.8x slower than the
default it displaced (README, "tuning"). Before committing a table, list what it moves:
for every GPU, op, direction (bwd, then fwd_train on that backward's layout, and fwd) and
dtype of either table, over T = 2^0..2^12 and N = 2^10..2^26 (the buckets), the calls whose
config differs between the tables, with both configs. Prints a count per key and, with
``--all``, every moved call; exits 0 either way (a report, not a check).
"""

from __future__ import annotations

import argparse
import sys

from tether.benchmark.sweep import moves_report, runtime_entries, table_moves
from tether.tuning.space import KernelConfig


def brief(config: KernelConfig) -> str:
    return (
        f"{config.block}/{config.num_warps} chunk {config.chunk} pack {config.pack_bits} "
        f"prefetch {int(config.prefetch)} lean {config.lean} segments {config.segments}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("old")
    parser.add_argument("new", nargs="?")
    parser.add_argument("--all", action="store_true", help="print every moved call")
    args = parser.parse_args(argv)
    moved = list(table_moves(runtime_entries(args.old), runtime_entries(args.new)))
    if args.all:
        for gpu, op, direction, dtype, n_steps, n_neurons, was, now in moved:
            print(f"{gpu} {op} {direction} {dtype} {n_steps}x{n_neurons}: "
                  f"{brief(was)} -> {brief(now)}")  # fmt: skip
    print("\n".join(moves_report(moved)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
