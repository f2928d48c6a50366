"""Score the defaults' small-layer rule (``space.fill_gpu``) on the committed sweeps, no GPU:
``python scripts/fill_eval.py [--min-programs 128]``.

For every swept point (op, direction, dtype, T, N) whose default ``fill_gpu`` changes, the
time of the default as it was (no N) and as filled, each over the point's best, where the
sweep timed both configs (else blank). ``fwd_train`` points pair with the sweep's backward
layout; ``bwd`` rows of a sweep time the fixed training forward (1024 on 4 warps) before
each backward config, so their ratios compare backwards alone. Prints a CSV and, per
direction, the geometric mean over the points with both times.
"""

from __future__ import annotations

import argparse
import dataclasses
import glob
import math
import sys

import pandas as pd

from tether.tuning import space
from tether.tuning.space import DTYPES, KernelConfig, default_config, training_forward_config

FIELDS = [f.name for f in dataclasses.fields(KernelConfig)]
DEFAULTS = {"prefetch": False, "lean": 0, "segments": 1}


def configs(frame: pd.DataFrame) -> list[KernelConfig]:
    return [KernelConfig(**{f: type(DEFAULTS.get(f, 0))(r[f]) for f in FIELDS})
            for r in frame[FIELDS].to_dict("records")]  # fmt: skip


def load() -> pd.DataFrame:
    frames = []
    for path in sorted(glob.glob("results/*/sweep*.csv")):
        frame = pd.read_csv(path)
        if "direction" not in frame or "block" not in frame:
            continue
        frame = frame[frame["block"].notna()].copy()
        if "rejected" in frame:
            frame = frame[frame["rejected"] != True]  # noqa: E712 (a column of bools or NaN)
        for name, value in DEFAULTS.items():
            frame[name] = frame[name].fillna(value) if name in frame else value
        frame["device"] = path.split("/")[1]
        frame["file"] = path.split("/")[-1]
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def score() -> pd.DataFrame:
    """One row per swept point whose default the rule changes: old and filled config, each's
    time over the point's best (None where the sweep did not time it)."""
    rows = []
    point = ["device", "file", "op", "direction", "dtype", "T", "N"]
    for key, group in load().groupby(point):
        device, file, op, direction, dtype_name, n_steps, n_neurons = key
        dtype = DTYPES[dtype_name]
        times = dict(zip(configs(group), group["ms"]))
        if direction == "fwd_train":
            layout = configs(group)[0]
            old = training_forward_config(layout)
            new = training_forward_config(layout, dtype, n_neurons)
        else:
            old = default_config(direction, dtype, op, n_steps)
            new = default_config(direction, dtype, op, n_steps, n_neurons)
        if new == old:
            continue
        best = min(times.values())
        plain = dataclasses.replace(new, lean=False)  # as swept before ``lean`` existed
        rows.append({
            **dict(zip(point, key)),
            "old": f"{old.block}/{old.num_warps}", "new": f"{new.block}/{new.num_warps}",
            "old_over_best": round(times[old] / best, 2) if old in times else None,
            "new_over_best": round(times[new] / best, 2) if new in times else None,
            "new_not_lean_over_best": round(times[plain] / best, 2) if plain in times else None,
        })  # fmt: skip
    return pd.DataFrame(rows)


def main(argv: list[str]) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--min-programs", type=int, default=space.MIN_PROGRAMS)
    args = parser.parse_args(argv)
    space.MIN_PROGRAMS = args.min_programs
    table = score()
    print(table.to_csv(index=False), end="")
    for filled in ("new_over_best", "new_not_lean_over_best"):
        both = table.dropna(subset=["old_over_best", filled])
        for direction, group in both.groupby("direction"):
            old, new = (math.exp(group[c].map(math.log).mean()) for c in ("old_over_best", filled))
            print(f"# {filled} {direction}: {len(group)} points, geometric mean over best: "
                  f"old {old:.2f}, filled {new:.2f}", file=sys.stderr)  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1:])
