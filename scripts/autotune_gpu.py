"""What ``TETHER_AUTOTUNE=1`` costs and gains on a GPU with no winners-table entry.

For each shape (outer loop), op, dtype and direction, on an empty Triton cache (a fresh
``TRITON_CACHE_DIR``):

- ``first_call_s``: wall time of the first tuned call of the bucket, as the runtime makes it
  (random data, ``triton.autotune`` over the online space, Triton's result cache written). The
  first shape's rows include compiling every config timed; later shapes reuse the binaries,
  as later buckets of one process do.
- ``cache_hit_s``: the same call by a new tuner, as a second process makes it: Triton's result
  cache answers (``same_winner``: it returns the same config).
- ``tuned_ms``, ``default_ms``: the timed call (``fwd``: inference forward; ``bwd``: training
  forward + backward) of the winner and of the default on the same data, ``do_bench`` median.

Rows go to ``$OUT/autotune.csv`` (or ``--out``) as they are measured; no point starts after
``--budget-s`` seconds. On a CPU it runs under ``TRITON_INTERPRET=1`` with tiny shapes
(``--shapes 5x300``): a check of the script, not a measurement.

    python scripts/autotune_gpu.py               # H200: ~4 min, 4 shapes x 3 ops x 2 x 2
"""

from __future__ import annotations

import argparse
import csv
import os
import tempfile
import time
from pathlib import Path

import torch

SHAPES = [(32, 2**20), (128, 2**22), (8, 2**23), (1024, 65536)]  # of STANDARD_SHAPES
COLUMNS = [
    "device", "torch", "triton", "commit", "kernel_hash", "timestamp", "op", "direction",
    "dtype", "T", "N", "t_bucket", "n_bucket", "space", "n_configs", "first_call_s",
    "cache_hit_s", "same_winner", "tuned_ms", "default_ms", "speedup", "tuned_config",
    "default_config",
]  # fmt: skip


def spelled(config) -> str:
    """``block/warps/stages/chunk/pack_bits``."""
    return "/".join(str(v) for v in config.as_dict().values())


def measure(op, direction, dtype, shape, space, device, facts) -> dict:
    """One row: see the module docstring."""
    from tether.benchmark.measure import time_ms
    from tether.tuning import autotune

    def tuned_call(tuner) -> tuple[float, autotune.Point, object]:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        point = autotune.Point.random(op, direction, dtype, *shape, device)
        best = autotune.tune(point, tuner)
        if device.type == "cuda":
            torch.cuda.synchronize()
        return time.perf_counter() - start, point, best

    tuner = autotune.make_tuner(direction, dtype, space, persist=True)
    first_s, point, best = tuned_call(tuner)
    hit_s, _, again = tuned_call(autotune.make_tuner(direction, dtype, space, persist=True))
    n_configs = len(autotune.prune(tuner.configs, {"point": point}, **point.key))
    tuned_ms = time_ms(lambda: point.run(best), device)
    default_ms = time_ms(lambda: point.run(point.default), device)
    return {
        **facts,
        "op": op, "direction": direction, "dtype": point.key["dtype"], "T": shape[0],
        "N": shape[1], "t_bucket": point.key["t_bucket"], "n_bucket": point.key["n_bucket"],
        "space": space, "n_configs": n_configs, "first_call_s": round(first_s, 3),
        "cache_hit_s": round(hit_s, 3), "same_winner": again == best,
        "tuned_ms": round(tuned_ms, 5), "default_ms": round(default_ms, 5),
        "speedup": round(default_ms / tuned_ms, 3), "tuned_config": spelled(best),
        "default_config": spelled(point.default),
    }  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ops", default="lif,plif,alif")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--directions", default="fwd,bwd")
    parser.add_argument("--shapes", default=",".join(f"{t}x{n}" for t, n in SHAPES))
    parser.add_argument("--space", default=None, help="config space (default: the online one)")
    parser.add_argument("--budget-s", type=float, default=240.0)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    # Before the first compile: Triton reads its cache directory when it first needs it.
    os.environ["TRITON_CACHE_DIR"] = tempfile.mkdtemp(prefix="tether-autotune-")

    from tether.benchmark.measure import run_facts
    from tether.tuning.autotune import ONLINE_SPACE
    from tether.tuning.space import DTYPES

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    shapes = [tuple(int(v) for v in s.split("x")) for s in args.shapes.split(",")]
    out = args.out or Path(os.environ.get("OUT", "results")) / "autotune.csv"
    out.parent.mkdir(parents=True, exist_ok=True)
    facts = run_facts(device)
    start = time.perf_counter()
    with out.open("w", newline="") as file:
        writer = csv.DictWriter(file, COLUMNS)
        writer.writeheader()
        for shape in shapes:
            for op in args.ops.split(","):
                for dtype in args.dtypes.split(","):
                    for direction in args.directions.split(","):
                        label = f"{op} {direction} {dtype} {shape[0]}x{shape[1]}"
                        if time.perf_counter() - start > args.budget_s:
                            print(f"skipped (budget): {label}", flush=True)
                            continue
                        row = measure(
                            op, direction, DTYPES[dtype], shape, args.space or ONLINE_SPACE,
                            device, facts,
                        )  # fmt: skip
                        writer.writerow(row)
                        file.flush()
                        print(
                            f"{label}: first {row['first_call_s']} s, hit "
                            f"{row['cache_hit_s']} s, tuned {row['tuned_ms']} ms "
                            f"({row['tuned_config']}), default {row['default_ms']} ms",
                            flush=True,
                        )
                        if device.type == "cuda":
                            torch.cuda.empty_cache()
    print(f"wrote {out} in {time.perf_counter() - start:.0f} s")


if __name__ == "__main__":
    main()
