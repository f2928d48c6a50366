"""Run the benchmark matrix into long-format rows; write and upsert result CSVs."""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd
import torch

from tether.benchmark.measure import (
    FACT_COLUMNS,
    copy_bandwidth_gbps,
    minimal_bytes,
    peak_memory_mb,
    read_csv,
    run_facts,
    time_ms,
)
from tether.benchmark.providers import PROVIDERS, Problem, eager, skip_reason
from tether.tolerances import TOLERANCES
from tether.tuning.space import DTYPES

RESULTS = Path(__file__).resolve().parents[2] / "results"  # the checkout's results/
KEY = ["op", "impl", "mode", "dtype", "T", "N", "device"]
COLUMNS = KEY[:-1] + [
    "ms",
    "gbps",
    "pct_copy_bw",
    "copy_gbps",
    "speedup_vs_eager",
    "speedup_vs_compile",
    "peak_mem_mb",
    "max_error",
    "error_bound",
    *FACT_COLUMNS,
]


def error_fraction(out, truth, dtype: torch.dtype) -> float:
    """The fraction of output elements off the reference ``truth``: spikes that differ, and
    in training grad_x elements beyond ``TOLERANCES[dtype].element`` (relative to the max).
    A row is accurate when this is at most ``TOLERANCES[dtype].bound``."""
    spikes, grad_x = out
    wrong = (spikes.float() != truth[0].float()).sum().item()
    total = spikes.numel()
    if grad_x is not None:
        ref = truth[1].float()
        scale = ref.abs().max().clamp_min(1e-12)
        wrong += ((grad_x.float() - ref).abs() > TOLERANCES[dtype].element * scale).sum().item()
        total += grad_x.numel()
    return wrong / total


def run_benchmarks(
    ops: Iterable[str],
    modes: Iterable[str],
    dtypes: Iterable[str],
    shapes: Iterable[tuple[int, int]],
    impls: Iterable[str],
    device: torch.device,
    quick: bool = False,
    on_point: Callable[[str], None] | None = None,
    on_skip: Callable[[str], None] | None = None,
    on_fail: Callable[[str, Exception], None] | None = None,
) -> pd.DataFrame:
    """Check each implementation against the eager reference, then time it. An implementation
    that raises propagates, or with ``on_fail`` is reported there and leaves no row (the
    rest of the run goes on)."""
    facts = run_facts(device)
    copy_gbps = copy_bandwidth_gbps(device, quick)
    rows = []
    points = list(itertools.product(ops, modes, dtypes, shapes))
    for op, mode, dtype_name, (n_steps, n_neurons) in points:
        dtype = DTYPES[dtype_name]
        problem = Problem.make(op, mode, n_steps, n_neurons, dtype, device)
        truth = eager(problem)()
        for impl in impls:
            label = f"{op} {mode} {dtype_name} T={n_steps} N={n_neurons} {impl}"
            reason = skip_reason(impl, op, n_steps, device)
            if reason:
                if on_skip:
                    on_skip(f"skipped {impl} for {op}: {reason}")
                continue
            try:
                run = PROVIDERS[impl](problem)
                max_error = error_fraction(run(), truth, dtype)
                ms = time_ms(run, device, quick)
            except Exception as err:
                if on_fail is None:
                    raise
                on_fail(label, err)
                continue
            gbps = minimal_bytes(mode, n_steps, n_neurons, dtype) / ms / 1e6
            rows.append(
                {
                    "op": op,
                    "impl": impl,
                    "mode": mode,
                    "dtype": dtype_name,
                    "T": n_steps,
                    "N": n_neurons,
                    "ms": ms,
                    "gbps": gbps,
                    "pct_copy_bw": 100 * gbps / copy_gbps,
                    "copy_gbps": copy_gbps,
                    "peak_mem_mb": peak_memory_mb(run, device),
                    "max_error": max_error,
                    "error_bound": TOLERANCES[dtype].bound,
                    **facts,
                }
            )
            if on_point:
                on_point(label)
        del problem, truth
    frame = pd.DataFrame(
        rows, columns=[c for c in COLUMNS if c not in ("speedup_vs_eager", "speedup_vs_compile")]
    )
    return add_speedups(frame)


def add_speedups(frame: pd.DataFrame) -> pd.DataFrame:
    """speedup_vs_eager / _vs_compile: the baseline's ms over this row's ms, same point."""
    point = ["op", "mode", "dtype", "T", "N", "device"]
    for baseline in ("eager", "compile"):
        base = frame[frame["impl"] == baseline][point + ["ms"]].rename(columns={"ms": "base"})
        merged = frame.merge(base, on=point, how="left")
        frame[f"speedup_vs_{baseline}"] = (merged["base"] / merged["ms"]).to_numpy()
    return frame[COLUMNS]


def read_results(path: Path) -> pd.DataFrame:
    """Read a results CSV, or raise ValueError saying what is wrong with it."""
    try:
        frame = read_csv(path)
    except FileNotFoundError:
        raise ValueError(f"{path}: no such file") from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise ValueError(f"{path}: not a readable CSV ({str(err).splitlines()[0]})") from None
    missing = [c for c in KEY + ["ms", "max_error", "error_bound"] if c not in frame.columns]
    if missing:
        raise ValueError(f"{path}: missing columns {missing}")
    if frame["ms"].isna().any() or not pd.api.types.is_numeric_dtype(frame["ms"]):
        raise ValueError(f"{path}: column 'ms' must hold numbers")
    return frame


def upsert(path: Path, new: pd.DataFrame) -> pd.DataFrame:
    """Write ``new`` into ``path``, replacing rows with the same key."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        old = read_results(path)
        keys = set(map(tuple, new[KEY].astype(str).to_numpy()))
        keep = [tuple(row) not in keys for row in old[KEY].astype(str).to_numpy()]
        new = add_speedups(pd.concat([old[keep], new], ignore_index=True))
    new.to_csv(path, index=False, float_format="%.6g")
    return new
