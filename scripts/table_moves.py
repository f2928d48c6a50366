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
import collections
import sys

from tether.tuning import table
from tether.tuning.space import DTYPES, KernelConfig

T_BUCKETS = [2**k for k in range(13)]
N_BUCKETS = [2**k for k in range(10, 27)]


def current(path: str | None) -> list[dict]:
    """The entries of the table at ``path`` (None: the tree's) that the runtime reads
    (``table.gpu_entries``: the current code's), every GPU's."""
    entries = table.load_table(path)
    gpus = sorted({f"{e['gpu']}|{e['capability']}" for e in entries})
    return [e for gpu in gpus for e in table.gpu_entries(gpu, entries)[1]]


def brief(config: KernelConfig) -> str:
    return (
        f"{config.block}/{config.num_warps} chunk {config.chunk} pack {config.pack_bits} "
        f"prefetch {int(config.prefetch)} lean {config.lean} segments {config.segments}"
    )


def moves(old: list[dict], new: list[dict]):
    """(gpu, op, direction, dtype, T, N, old config, new config) for each moved call."""
    keys = sorted({(e["gpu"], e["op"], e["dtype"]) for e in old + new})
    for gpu, op, dtype_name in keys:
        dtype = DTYPES[dtype_name]
        for n_steps in T_BUCKETS:
            for n_neurons in N_BUCKETS:
                plans = []
                for entries in (old, new):
                    bwd = table.planned(entries, gpu, op, "bwd", dtype, n_steps, n_neurons)
                    fwd_train = table.planned(
                        entries, gpu, op, "fwd_train", dtype, n_steps, n_neurons, bwd
                    )
                    fwd = table.planned(entries, gpu, op, "fwd", dtype, n_steps, n_neurons)
                    plans.append({"bwd": bwd, "fwd_train": fwd_train, "fwd": fwd})
                for direction, was in plans[0].items():
                    now = plans[1][direction]
                    if was != now:
                        yield gpu, op, direction, dtype_name, n_steps, n_neurons, was, now


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("old")
    parser.add_argument("new", nargs="?")
    parser.add_argument("--all", action="store_true", help="print every moved call")
    args = parser.parse_args(argv)
    old, new = current(args.old), current(args.new)
    counts = collections.Counter()
    for gpu, op, direction, dtype, n_steps, n_neurons, was, now in moves(old, new):
        counts[gpu, op, direction, dtype] += 1
        if args.all:
            print(f"{gpu} {op} {direction} {dtype} {n_steps}x{n_neurons}: "
                  f"{brief(was)} -> {brief(now)}")  # fmt: skip
    total = len(T_BUCKETS) * len(N_BUCKETS)
    for (gpu, op, direction, dtype), count in sorted(counts.items()):
        print(f"{gpu} {op} {direction} {dtype}: {count} of {total} calls moved")
    print(f"{sum(counts.values())} calls moved" if counts else "no call moved")
    return 0


if __name__ == "__main__":
    sys.exit(main())
