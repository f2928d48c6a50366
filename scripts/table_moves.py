"""Which calls a winners-table change moves: ``python scripts/table_moves.py OLD.json
[NEW.json] [--all]`` (NEW: the table in the tree). No GPU needed.

A tune's winners become the nearest entries of buckets nobody timed (``table.planned``):
ALIF fp32 tuned at 32x2^23 and 128x2^22 on the H100 ran 512x8192 1.8x slower than the
default it displaced (README, "tuning"). Before committing a table, list what it moves:
for every GPU, op, direction (bwd, then fwd_train on that backward's layout, and fwd) and
dtype of either table, over T = 2^0..2^12 and N = 2^10..2^26 (the buckets), the calls whose
config differs between the tables, with both configs. Prints a count per key and, with
``--all``, every moved call; exits 0 either way (a report, not a check).

A change of the lookup code moves calls too. Across two trees: ``--dump PICKS.json`` writes
the picks of the tether this process imports, with its own code and table, for every op and
dtype of each GPU of its table (run it from an older tree: ``git archive REV | tar -x -C
old && PYTHONPATH=old python scripts/table_moves.py --dump old.json``; this script uses only
what older trees have); ``--picks OLD.json NEW.json [--all] [--csv OUT.csv]`` compares two
dumps (``results/static/table_moves_7e22200_da79ff8.csv``).
"""

from __future__ import annotations

import argparse
import csv
import dataclasses
import json
import sys

from tether.neurons import OPS
from tether.tuning import table
from tether.tuning.space import DTYPES, KernelConfig

T_BUCKETS = [2**k for k in range(13)]  # sweep.T_BUCKETS, N_BUCKETS (older trees lack them)
N_BUCKETS = [2**k for k in range(10, 27)]


def brief(config: KernelConfig) -> str:
    return (
        f"{config.block}/{config.num_warps} chunk {config.chunk} pack {config.pack_bits} "
        f"prefetch {int(config.prefetch)} lean {config.lean} segments {config.segments}"
    )


def picks() -> list[list]:
    """``[gpu, op, direction, dtype, T, N, config]`` for every GPU of the table this tether
    ships, op, dtype and bucket, as its ``table.planned`` picks them."""
    entries = table.load_table()
    rows = []
    for key in sorted({f"{e['gpu']}|{e['capability']}" for e in entries}):
        name, current = table.gpu_entries(key, entries)
        for op in OPS:
            call = (current, name, op)
            for dtype_name, dtype in DTYPES.items():
                for n_steps in T_BUCKETS:
                    for n_neurons in N_BUCKETS:
                        bwd = table.planned(*call, "bwd", dtype, n_steps, n_neurons)
                        fwd_train = table.planned(*call, "fwd_train", dtype, n_steps, n_neurons,
                                                  bwd)  # fmt: skip
                        fwd = table.planned(*call, "fwd", dtype, n_steps, n_neurons)
                        for direction, config in (("bwd", bwd), ("fwd_train", fwd_train),
                                                  ("fwd", fwd)):  # fmt: skip
                            rows.append([name, op, direction, dtype_name, n_steps, n_neurons,
                                         dataclasses.asdict(config)])  # fmt: skip
    return rows


def compare_picks(old_path: str, new_path: str) -> list[tuple]:
    """``table_moves``' rows for two ``--dump`` files: the calls in both whose config differs."""
    dumps = []
    for path in (old_path, new_path):
        with open(path) as f:
            dumps.append({tuple(row[:6]): KernelConfig(**row[6]) for row in json.load(f)})
    old, new = dumps
    return [(*call, old[call], new[call]) for call in old if call in new and old[call] != new[call]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("old", nargs="?", help="a winners table (or, with --picks, a dump)")
    parser.add_argument("new", nargs="?")
    parser.add_argument("--all", action="store_true", help="print every moved call")
    parser.add_argument("--dump", metavar="PICKS_JSON", help="write this tether's picks")
    parser.add_argument("--picks", action="store_true", help="OLD and NEW are --dump files")
    parser.add_argument("--csv", help="with --picks: the moved calls, a row each")
    args = parser.parse_args(argv)
    if args.dump:
        rows = picks()
        with open(args.dump, "w") as f:
            json.dump(rows, f)
        print(f"{len(rows)} picks written to {args.dump}")
        return 0
    if args.old is None or (args.picks and args.new is None):
        parser.error("OLD is required (and NEW with --picks)")
    from tether.benchmark.sweep import moves_report, runtime_entries, table_moves

    if args.picks:
        moved = compare_picks(args.old, args.new)
    else:
        moved = list(table_moves(runtime_entries(args.old), runtime_entries(args.new)))
    if args.all:
        for gpu, op, direction, dtype, n_steps, n_neurons, was, now in moved:
            print(f"{gpu} {op} {direction} {dtype} {n_steps}x{n_neurons}: "
                  f"{brief(was)} -> {brief(now)}")  # fmt: skip
    if args.csv:
        with open(args.csv, "w", newline="") as f:
            writer = csv.writer(f)
            writer.writerow(["gpu", "op", "direction", "dtype", "T", "N", "old", "new"])
            writer.writerows([*m[:6], brief(m[6]), brief(m[7])] for m in moved)
    print("\n".join(moves_report(moved)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
