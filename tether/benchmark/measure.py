"""Timing, the minimal-bytes model, copy bandwidth and the facts every result row carries."""

from __future__ import annotations

import datetime
import os
import statistics
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch
import triton

from tether.kernels.hashing import kernel_hash
from tether.neurons import NEURONS

# Minimal bytes per (step, neuron) element, in units of the I/O dtype's size:
#   fwd    read x, write spikes                                                  = 2
#   fwdbwd fwd (2) + backward reads grad_spikes and writes grad_x (2) + the
#          membrane the surrogate needs, recomputed from x (re-read x: 1)          = 5
# (fp32: 8 and 20 bytes, the model of ../shared/anchors.md). GB/s = this / time.
BYTES_PER_ELEMENT = {"fwd": 2, "fwdbwd": 5}


def minimal_bytes(mode: str, n_steps: int, n_neurons: int, dtype: torch.dtype) -> int:
    return BYTES_PER_ELEMENT[mode] * torch.finfo(dtype).bits // 8 * n_steps * n_neurons


def op_bytes(
    op: str, mode: str, dtype: torch.dtype, n_steps: int, n_neurons: int, chunk: int | None = None
) -> float:
    """The bytes one benchmark call of ``op`` moves on its own model: ``minimal_bytes`` plus
    its learned parameters, 4 bytes a neuron each, read by every kernel and, in training,
    their gradients written (PLIF 2, ALIF 4: the per-neuron vectors of ``bench_params``).
    With ``chunk``, tether's design too: in training, 1 bit a spike written and read back
    and a float32 checkpoint of each state (ALIF 2) every ``chunk`` steps written and read
    back."""
    neuron = NEURONS[op]
    elements = n_steps * n_neurons
    out = minimal_bytes(mode, n_steps, n_neurons, dtype)
    if neuron.learnable:
        reads = 1 if mode == "fwd" else 2
        out += 4 * len(neuron.params) * (reads + (mode != "fwd")) * n_neurons
    if chunk is not None and mode == "fwdbwd":
        out += elements * (2 / 8 + 2 * len(neuron.states) * 4 / chunk)
    return out


def time_ms(fn: Callable[[], object], device: torch.device, quick: bool = False) -> float:
    """Median milliseconds of ``fn``: ``triton.testing.do_bench`` on GPU (warm-up included),
    a wall-clock timer with warm-up and repeats on CPU."""
    if device.type == "cuda":
        warmup, rep = (10, 30) if quick else (25, 100)
        return triton.testing.do_bench(fn, warmup=warmup, rep=rep, return_mode="median")
    fn()  # warm-up: first-call work (allocations, compilation) is not timed
    times = []
    budget = time.perf_counter() + (0.3 if quick else 1.0)
    while len(times) < 3 or (time.perf_counter() < budget and len(times) < 50):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def copy_bandwidth_gbps(device: torch.device, quick: bool = False) -> float:
    """Device-to-device copy bandwidth, bytes read + written per second (GB/s)."""
    n_bytes = (64 if device.type == "cpu" or quick else 1024) * 2**20
    src = torch.empty(n_bytes // 4, device=device).uniform_()
    dst = torch.empty_like(src)
    ms = time_ms(lambda: dst.copy_(src), device, quick)
    return 2 * n_bytes / ms / 1e6


def device_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"cpu ({torch.get_num_threads()} threads)"


def git_commit() -> str:
    """``TETHER_COMMIT`` if set (a copy of the tree on a GPU machine may carry a stale
    ``.git``), else the checkout's commit (``-dirty`` with local changes), else "unknown"."""
    if os.environ.get("TETHER_COMMIT"):
        return os.environ["TETHER_COMMIT"]
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            capture_output=True,
            text=True,
            check=True,
            cwd=Path(__file__).resolve().parent,
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            cwd=Path(__file__).resolve().parent,
        ).stdout.strip()
        return out.stdout.strip() + ("-dirty" if dirty else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


FACT_COLUMNS = ["device", "torch", "triton", "commit", "kernel_hash", "timestamp"]  # run_facts


def read_csv(path: Path) -> pd.DataFrame:
    """A results CSV with ``FACT_COLUMNS`` kept as text: a commit such as ``5e63541`` or a
    hash of digits is not a number (read as one, it was written back as ``inf``)."""
    return pd.read_csv(path, dtype=dict.fromkeys(FACT_COLUMNS, str))


def run_facts(device: torch.device) -> dict[str, str]:
    """Device, versions, commit, kernel-source hash and time: columns of every result row."""
    return {
        "device": device_name(device),
        "torch": torch.__version__,
        "triton": triton.__version__,
        "commit": git_commit(),
        "kernel_hash": kernel_hash(),
        "timestamp": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    }


def peak_memory_mb(fn: Callable[[], object], device: torch.device) -> float:
    """Peak GPU memory allocated during one call, in MiB (NaN on CPU)."""
    if device.type != "cuda":
        return float("nan")
    torch.cuda.synchronize(device)
    base = torch.cuda.memory_allocated(device)
    torch.cuda.reset_peak_memory_stats(device)
    fn()
    torch.cuda.synchronize(device)
    return (torch.cuda.max_memory_allocated(device) - base) / 2**20
