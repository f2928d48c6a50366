"""The tuning harness: sweep launch configs on the GPU at hand, reject wrong ones, time the
baselines, write a sweep CSV and export the winners into the table the runtime reads.

For each op x direction x dtype x shape it launches the kernels directly with every config of
``config_space``: ``fwd`` is the inference forward; ``bwd`` is the backward kernel, and its
row also carries the training forward run with that config's ``chunk``/``pack_bits`` (the
layout they share), so the winner minimises ``fwd_train_ms + ms``. A config whose spikes or
gradient differ from the eager reference is recorded as rejected and can never win.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd
import torch

from tether.benchmark.measure import copy_bandwidth_gbps, run_facts, time_ms
from tether.benchmark.providers import MAX_COMPILE_STEPS, PROVIDERS, Problem
from tether.benchmark.runner import error_fraction
from tether.functional import core
from tether.tuning.space import (
    DTYPES,
    KernelConfig,
    config_space,
    default_config,
    training_forward_config,
)
from tether.tuning.table import (
    SCHEMA,
    TABLE_PATH,
    gpu_key,
    kernel_hash,
    load_table,
    n_bucket,
    t_bucket,
)

STANDARD_SHAPES = [(8, 2**20), (32, 2**20), (128, 2**20), (8, 2**23), (32, 2**23), (128, 2**22)]
QUICK_SHAPES = [(8, 2**14), (32, 2**20), (32, 2**23)]
MAX_ELEMENTS = 2**29  # per (T, N): inputs, gradients and reference fit an 80 GB GPU
FULL_SHAPES = [
    (t, n)
    for t, n in itertools.product((1, 4, 16, 64, 256, 1024), (2**10, 2**14, 2**18, 2**22, 2**26))
    if t * n <= MAX_ELEMENTS
]
GRIDS = {"quick": QUICK_SHAPES, "standard": STANDARD_SHAPES, "full": FULL_SHAPES}
# Bytes the kernel itself must move per element, in units of the dtype size:
# fwd reads x, writes spikes; bwd reads x and grad_spikes, writes grad_x.
KERNEL_BYTES = {"fwd": 2, "bwd": 3}
REJECT_BOUND = 1e-3  # as the benchmark's error bound: fraction of elements off


def op_spec(op: str) -> core.NeuronSpec:
    # the path the benchmark times: no traces, no final state
    return core.NeuronSpec(op, adaptive=op == "alif", store_traces=False, store_final=False)


def _launchers(problem: Problem, config: KernelConfig, direction: str):
    """(kernel call to time, its training-forward call or None, outputs for the check)."""
    spec = op_spec(problem.op)
    x = problem.x.detach()
    params = {
        k: (v.detach() if isinstance(v, torch.Tensor) else v) for k, v in problem.params.items()
    }
    n_params = core.vector_length(params)
    if direction == "fwd":

        def forward():
            return core.launch_forward(spec, x, None, None, params, n_params, config, False)

        return forward, None, lambda: (forward()[0].spikes, None)
    train_config = training_forward_config(config)

    def train_forward():
        return core.launch_forward(spec, x, None, None, params, n_params, train_config, True)

    out, saved = train_forward()
    # as in training: a gradient for every tensor parameter (PLIF's and ALIF's are learned);
    # each one adds a per-neuron sum that the backward keeps in registers
    param_grads = {name: isinstance(value, torch.Tensor) for name, value in params.items()}
    grads = core.NeuronOutput(problem.grad, None, None, None, None)

    def backward():
        return core.launch_backward(
            spec, x, saved, params, 2.0, n_params, param_grads, grads, config
        )

    return backward, train_forward, lambda: (out.spikes, backward()[0])


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
    space_configs = config_space(direction, dtype, space)
    facts = {**run_facts(device), "capability": gpu_key(device.index or 0).split("|")[1]}
    copy_gbps = copy_bandwidth_gbps(device, quick=True)
    mode = "fwd" if direction == "fwd" else "fwdbwd"
    rows = []
    for n_steps, n_neurons in shapes:
        problem = Problem.make(op, mode, n_steps, n_neurons, dtype, device)
        truth = PROVIDERS["eager"](problem)()
        elements = n_steps * n_neurons
        default = default_config(direction, dtype, op, n_steps)
        # the default is always timed: the winner is never slower than what it replaces
        configs = space_configs + ([default] if default not in space_configs else [])
        base = {"op": op, "direction": direction, "dtype": dtype_name, "T": n_steps,
                "N": n_neurons, "copy_gbps": copy_gbps, **facts}  # fmt: skip
        for config in configs:
            kernel, train_forward, outputs = _launchers(problem, config, direction)
            error = error_fraction(outputs(), truth, dtype)
            ms = time_ms(kernel, device, quick=True)
            gbps = KERNEL_BYTES[direction] * dtype.itemsize * elements / ms / 1e6
            rows.append(
                {
                    **base,
                    "impl": "tether",
                    **config.as_dict(),
                    "is_default": config == default,
                    "ms": ms,
                    "fwd_train_ms": time_ms(train_forward, device, quick=True)
                    if train_forward
                    else float("nan"),
                    "gbps": gbps,
                    "pct_copy_bw": 100 * gbps / copy_gbps,
                    "max_error": error,
                    "rejected": error > REJECT_BOUND,
                }
            )
            if on_step:
                on_step(f"{op} {direction} {dtype_name} T={n_steps} N={n_neurons} {config}")
        for impl in ("eager", "compile") if baselines else ():
            if impl == "compile" and n_steps > MAX_COMPILE_STEPS:
                continue
            run = PROVIDERS[impl](problem)
            ms = time_ms(run, device, quick=True)
            rows.append({**base, "impl": impl, "mode": mode, "ms": ms, "rejected": False,
                         "max_error": error_fraction(run(), truth, dtype)})  # fmt: skip
        del problem, truth
    return pd.DataFrame(rows)


def winners(frame: pd.DataFrame) -> pd.DataFrame:
    """The fastest accepted config per (op, direction, dtype, T, N), with the default's time."""
    tuned = frame[(frame["impl"] == "tether") & ~frame["rejected"].astype(bool)].copy()
    tuned["score"] = tuned["ms"] + tuned["fwd_train_ms"].fillna(0.0)
    point = ["op", "direction", "dtype", "T", "N"]
    best = tuned.loc[tuned.groupby(point)["score"].idxmin()]
    default = tuned[tuned["is_default"].astype(bool)][point + ["score"]]
    return best.merge(default.rename(columns={"score": "default_score"}), on=point, how="left")


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
        config = KernelConfig(
            int(row["block"]),
            int(row["num_warps"]),
            int(row["num_stages"]),
            int(row["chunk"]),
            int(row["pack_bits"]),
        )
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


ONLINE_CANDIDATES = 16


def autotune_online(
    op: str, direction: str, dtype: torch.dtype, n_steps: int, n_neurons: int, device
) -> KernelConfig:
    """``TETHER_AUTOTUNE=1`` on a GPU with no table entry: time a slice of the space at
    this shape on random data and return the fastest (correctness of every config in the
    space is checked offline, in CI and by ``sweep``)."""
    candidates = [
        c for c in config_space(direction, dtype) if c.num_stages == 1 and c.pack_bits == 32
    ][:ONLINE_CANDIDATES]
    dtype_name = str(dtype).removeprefix("torch.")
    mode = "fwd" if direction == "fwd" else "fwdbwd"
    problem = Problem.make(op, mode, n_steps, n_neurons, DTYPES[dtype_name], device)
    best, best_ms = default_config(direction, dtype, op, n_steps), float("inf")
    for config in candidates:
        kernel, train_forward, _ = _launchers(problem, config, direction)
        ms = time_ms(kernel, device, quick=True)
        if train_forward is not None:
            ms += time_ms(train_forward, device, quick=True)
        if ms < best_ms:
            best, best_ms = config, ms
    return best
