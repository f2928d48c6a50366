"""The tuning harness: sweep launch configs on the GPU at hand through Triton's autotuner,
reject wrong ones, time the baselines, write a sweep CSV and export the winners into the table
the runtime reads.

For each op x direction x dtype x shape every config of ``config_space`` (or, for ``--space
shipped``, of ``shipped_space``: the shipped config and its lean-2 twin) first runs once
against the eager reference: a config whose spikes or gradient differ is recorded as
rejected and pruned from the autotuner, so it can never win. Then the autotuner that
``TETHER_AUTOTUNE=1`` runs (``tether.tuning.autotune.make_tuner``, over the space chosen, its
result cache off: a sweep measures) times the accepted configs that fit the shape; each row
carries its timing (``ms``, NaN for a pruned config). ``fwd`` times the inference forward; ``bwd``
times the training forward in that config's layout (``chunk``/``pack_bits``) and the
backward together, the pair a training step runs, so the winner minimises their sum.
``fwd_train`` then times the training forward's launch shapes alone, saving for the backward
config the runtime picks at that shape (``shipped_config``: the table's entry, so a ``bwd``
sweep exported earlier in the same run, else the default), and checks each through that
backward.
"""

from __future__ import annotations

import collections
import dataclasses
import json
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import pandas as pd
import torch

from tether.benchmark.measure import copy_bandwidth_gbps, run_facts, time_ms
from tether.benchmark.providers import MAX_COMPILE_STEPS, PROVIDERS, Problem
from tether.benchmark.runner import error_fraction
from tether.kernels.hashing import kernel_hash
from tether.tolerances import TOLERANCES
from tether.tuning.autotune import Point, bench, kernel_calls, make_tuner, tune
from tether.tuning.space import DTYPES, KernelConfig, config_space, default_for
from tether.tuning.table import (
    SCHEMA,
    TABLE_PATH,
    gpu_entries,
    gpu_key,
    load_table,
    n_bucket,
    planned,
    t_bucket,
)

# Bytes a timed call must move per element, in units of the dtype size: fwd and fwd_train
# read x, write spikes (2); bwd adds the training forward (2) to the backward's x,
# grad_spikes, grad_x (3).
KERNEL_BYTES = {"fwd": 2, "bwd": 5, "fwd_train": 2}


# ``--space shipped``: at each point, the config the runtime runs there and its lean-2 twin
# (and the default): whether a new level beats each shipped pick, at a few compiles a point.
SHIPPED = "shipped"


def shipped_config(
    op: str,
    direction: str,
    dtype_name: str,
    n_steps: int,
    n_neurons: int,
    device: torch.device,
    bwd: KernelConfig | None = None,
) -> KernelConfig:
    """The config the runtime runs at (T, N) on this GPU (``table.planned``), from the table
    file read afresh (``fwd_train``: an entry of ``bwd``'s layout)."""
    name, entries = gpu_entries(gpu_key(device.index or 0), load_table())
    return planned(entries, name, op, direction, DTYPES[dtype_name], n_steps, n_neurons, bwd)


def shipped_space(direction: str, pick: KernelConfig) -> list[KernelConfig]:
    """``--space shipped`` at one point: the shipped config ``pick`` and the same at
    ``lean`` 2 (not the backward's prefetching 32-step chunk: ~50 s of compile,
    ``space._with_lean_twins``)."""
    if direction == "bwd" and pick.prefetch and pick.chunk > 16:
        return [pick]
    return list(dict.fromkeys([pick, dataclasses.replace(pick, lean=2)]))


def sweep(
    op: str,
    direction: str,
    dtype_name: str,
    shapes: Iterable[tuple[int, int]],
    device: torch.device,
    space: str = "full",
    baselines: bool = True,
    on_step: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """One row per (shape, config) plus eager/compile baseline rows; see the module doc."""
    dtype = DTYPES[dtype_name]
    facts = {**run_facts(device), "capability": gpu_key(device.index or 0).split("|")[1]}
    copy_gbps = copy_bandwidth_gbps(device, quick=True)
    mode = "fwd" if direction == "fwd" else "fwdbwd"
    rows = []
    for n_steps, n_neurons in shapes:
        problem = Problem.make(op, mode, n_steps, n_neurons, dtype, device)
        truth = PROVIDERS["eager"](problem)()
        bwd = None
        if direction == "fwd_train":
            bwd = shipped_config(op, "bwd", dtype_name, n_steps, n_neurons, device)
        default = default_for(op, direction, dtype, n_steps, n_neurons, bwd)
        if space == SHIPPED:
            pick = shipped_config(op, direction, dtype_name, n_steps, n_neurons, device, bwd)
            chosen = shipped_space(direction, pick)
        else:
            chosen = config_space(direction, dtype, space, bwd)
        configs = list(dict.fromkeys([*chosen, default]))
        errors = {}
        for config in configs:
            outputs = kernel_calls(
                op, direction, problem.x, problem.grad, problem.params, config, bwd
            )
            errors[config] = error_fraction(outputs[2](), truth, dtype)
        rejected = frozenset(c for c, e in errors.items() if e > TOLERANCES[dtype].bound)
        point = Point(op, direction, problem.x, problem.grad, problem.params, rejected, bwd)
        if on_step:
            on_step(f"{op} {direction} {dtype_name} T={n_steps} N={n_neurons}: autotuning")
        tuner = make_tuner(direction, dtype, None, False, bwd, extra=configs)  # timed
        timings = tune_timings(point, tuner)
        base = {"op": op, "direction": direction, "dtype": dtype_name, "T": n_steps,
                "N": n_neurons, "copy_gbps": copy_gbps, **facts}  # fmt: skip
        for config in configs:
            ms = timings.get(config, float("nan"))
            gbps = KERNEL_BYTES[direction] * dtype.itemsize * n_steps * n_neurons / ms / 1e6
            rows.append(
                {
                    **base,
                    "impl": "tether",
                    **config.as_dict(),
                    "is_default": config == default,
                    "ms": ms,
                    "gbps": gbps,
                    "pct_copy_bw": 100 * gbps / copy_gbps,
                    "max_error": errors[config],
                    "rejected": config in rejected,
                }
            )
        for impl in ("eager", "compile") if baselines else ():
            if impl == "compile" and n_steps > MAX_COMPILE_STEPS:
                continue
            run = PROVIDERS[impl](problem)
            ms = time_ms(run, device, quick=True)
            rows.append({**base, "impl": impl, "mode": mode, "ms": ms, "rejected": False,
                         "max_error": error_fraction(run(), truth, dtype)})  # fmt: skip
        del problem, truth, point
    return pd.DataFrame(rows)


def tune_timings(point: Point, tuner) -> dict[KernelConfig, float]:
    """Run ``tuner`` (a fresh one, its result cache off) at ``point``: the median ms of every
    config it timed. A bucket that leaves one config is not timed by Triton: it is here."""
    best = tune(point, tuner)
    timings = getattr(tuner, "configs_timings", {})
    timings = {KernelConfig.from_triton(c): t[0] for c, t in timings.items()}
    return timings or {best: bench(lambda: point.run(best), (0.5,))[0]}


def winners(frame: pd.DataFrame) -> pd.DataFrame:
    """The fastest accepted config per (op, direction, dtype, T, N), with the default's time.
    Older sweeps timed a backward's training forward apart (``fwd_train_ms``): it is added."""
    tuned = frame[(frame["impl"] == "tether") & ~frame["rejected"].astype(bool)].copy()
    tuned = tuned[tuned["ms"].notna()]
    tuned["score"] = tuned["ms"] + tuned.get("fwd_train_ms", pd.Series(0.0, tuned.index)).fillna(0)
    point = ["op", "direction", "dtype", "T", "N"]
    best = tuned.loc[tuned.groupby(point)["score"].idxmin()]
    default = tuned[tuned["is_default"].astype(bool)][point + ["score"]]
    return best.merge(default.rename(columns={"score": "default_score"}), on=point, how="left")


def row_config(row: pd.Series) -> KernelConfig:
    """The config of one sweep row (``prefetch``/``lean``/``segments`` absent from sweeps
    written before those fields: off, 1; ``lean`` True/False before its levels: 1/0)."""
    switches = {}
    for name in ("prefetch", "lean"):
        value = row.get(name, 0)
        value = 0 if pd.isna(value) else {"True": 1, "False": 0}.get(value, value)
        switches[name] = int(value) if name == "lean" else bool(value)
    segments = row.get("segments", 1)
    switches["segments"] = 1 if pd.isna(segments) else int(segments)
    ints = (int(row[f]) for f in ("block", "num_warps", "num_stages", "chunk", "pack_bits"))
    return KernelConfig(*ints, **switches)


def export_winners(
    best: pd.DataFrame, capability: str | None = None, path: Path | str = TABLE_PATH
) -> list[dict]:
    """Merge winners (``winners()`` of sweep rows) into the JSON table, replacing entries of
    the same GPU/op/direction/dtype/bucket. The GPU, Triton version and kernel hash come from
    the rows; ``capability`` from their ``capability`` column, or this argument for sweeps
    written before that column existed. Rows measured on another version of the template
    file (their ``kernel_hash``) are refused; entries carry their direction's hash."""
    path = Path(path)
    if "capability" not in best.columns or best["capability"].isna().any():
        if capability is None:
            raise ValueError("the sweep rows have no 'capability' column: pass it (--capability)")
        best = best.assign(capability=capability)
    current = kernel_hash()
    stale = best[best["kernel_hash"] != current]
    if len(stale):
        raise ValueError(
            f"{len(stale)} winners were measured on kernel {stale['kernel_hash'].iloc[0]}, "
            f"not the current {current}: re-tune instead of exporting them"
        )
    fresh = []
    for _, row in best.iterrows():
        config = row_config(row)
        fresh.append(
            {
                "gpu": row["device"],
                "capability": str(row["capability"]),
                "op": row["op"],
                "direction": row["direction"],
                "dtype": row["dtype"],
                "t_bucket": t_bucket(int(row["T"])),
                "n_bucket": n_bucket(int(row["N"])),
                "kernel_hash": kernel_hash(row["direction"]),
                "config": config.as_dict(),
                "ms": round(float(row["score"]), 5),
                "default_ms": round(float(row["default_score"]), 5),
                "triton": str(row["triton"]),
            }
        )

    def key(e):
        return (e["gpu"], e["capability"], e["op"], e["direction"], e["dtype"],
                e["t_bucket"], e["n_bucket"])  # fmt: skip

    entries = load_table(path)
    replaced = {key(e) for e in fresh}
    entries = [e for e in entries if key(e) not in replaced] + fresh
    entries.sort(key=key)
    path.write_text(json.dumps({"schema": SCHEMA, "entries": entries}, indent=1) + "\n")
    return fresh


# The (T, N) buckets ``table_moves`` walks: T = 2^0..2^12, N = 2^10..2^26.
T_BUCKETS = [2**k for k in range(13)]
N_BUCKETS = [2**k for k in range(10, 27)]


def runtime_entries(path: Path | str | None = None) -> list[dict]:
    """The entries of the table at ``path`` (None: the shipped one) that the runtime reads
    (``gpu_entries``: the current code's), every GPU's."""
    entries = load_table(path)
    gpus = sorted({f"{e['gpu']}|{e['capability']}" for e in entries})
    return [e for gpu in gpus for e in gpu_entries(gpu, entries)[1]]


def table_moves(
    old: list[dict], new: list[dict], keys: set[tuple[str, str, str]] | None = None
) -> Iterator[tuple]:
    """(gpu, op, direction, dtype, T, N, old config, new config) for each call whose config
    differs between the tables: every (gpu, op, dtype) of either (or of ``keys``), direction
    (bwd, then fwd_train on that backward's layout, and fwd), over ``T_BUCKETS`` x
    ``N_BUCKETS``. A tune's winners become the nearest entries of buckets nobody timed."""
    found = {(e["gpu"], e["op"], e["dtype"]) for e in old + new}
    for gpu, op, dtype_name in sorted(found if keys is None else found & keys):
        dtype = DTYPES[dtype_name]
        for n_steps in T_BUCKETS:
            for n_neurons in N_BUCKETS:
                plans = []
                for entries in (old, new):
                    bwd = planned(entries, gpu, op, "bwd", dtype, n_steps, n_neurons)
                    fwd_train = planned(entries, gpu, op, "fwd_train", dtype, n_steps, n_neurons,
                                        bwd)  # fmt: skip
                    fwd = planned(entries, gpu, op, "fwd", dtype, n_steps, n_neurons)
                    plans.append({"bwd": bwd, "fwd_train": fwd_train, "fwd": fwd})
                for direction, was in plans[0].items():
                    now = plans[1][direction]
                    if was != now:
                        yield gpu, op, direction, dtype_name, n_steps, n_neurons, was, now


def moves_report(moved: Iterable[tuple]) -> list[str]:
    """A line per (gpu, op, direction, dtype) with the count of ``table_moves`` rows, then
    the total."""
    counts = collections.Counter(tuple(m[:4]) for m in moved)
    total = len(T_BUCKETS) * len(N_BUCKETS)
    lines = [
        f"{gpu} {op} {direction} {dtype}: {count} of {total} calls moved"
        for (gpu, op, direction, dtype), count in sorted(counts.items())
    ]
    return [*lines, f"{sum(counts.values())} calls moved" if counts else "no call moved"]
