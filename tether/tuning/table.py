"""The winners table: tuned launch configs per GPU, op, direction, dtype and shape bucket.

The table is ``winners.json`` beside this file (or the file named by ``TETHER_WINNERS``)::

    {"schema": 1, "entries": [{"gpu": "NVIDIA H100 80GB HBM3", "capability": "9.0",
      "op": "lif", "direction": "fwd", "dtype": "float32", "t_bucket": 32,
      "n_bucket": 8388608, "kernel_hash": "...", "config": {...}, "ms": ..., ...}]}

Buckets are the next power of two of T (1..4096) and N (2**10..2**26). A lookup takes the
entry of the same GPU, op, direction and dtype whose bucket is nearest in (log2 T, log2 N)
(unless, from another bucket, it would leave the call's GPU underfilled: ``planned``);
entries whose ``kernel_hash`` differs from the current code of their direction's kernel
(``tether.kernels.hashing.kernel_hash(direction)``) are ignored. With no entry,
``TETHER_AUTOTUNE=1`` tunes the bucket through Triton's autotuner (``tether.tuning.autotune``),
else the heuristic ``default_config`` is used. Lookups are cached per process.

The forward of a training step (``fwd_train``) saves in its backward's layout: its entries
are looked up among those with the backward config's ``chunk`` and ``pack_bits``, and with
none it runs ``training_forward_config`` (no online tuning). The defaults of fp32 calls over
few neurons take smaller blocks (``space.fill_gpu``), and their backward over long T walks
time in segments (``space.in_segments``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import json
import math
import os
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch

from tether.kernels.hashing import kernel_hash
from tether.neurons import OPS
from tether.tuning.space import (
    DIRECTIONS,
    DTYPES,
    MIN_PROGRAMS,
    KernelConfig,
    default_config,
    default_for,
    next_pow2,
    segments_for,
)

SCHEMA = 1
TABLE_PATH = Path(__file__).with_name("winners.json")
T_RANGE = (1, 4096)  # long sequences (SHD, event streams) have their own buckets
N_RANGE = (2**10, 2**26)
REQUIRED = {
    "gpu": str,
    "capability": str,
    "op": str,
    "direction": str,
    "dtype": str,
    "t_bucket": int,
    "n_bucket": int,
    "kernel_hash": str,
    "config": dict,
}


class WinnersTableError(ValueError):
    """The winners table file is malformed."""


def bucket(value: int, lo: int, hi: int) -> int:
    """The next power of two of ``value``, clamped to ``[lo, hi]``."""
    return min(max(next_pow2(value), lo), hi)


def t_bucket(n_steps: int) -> int:
    return bucket(n_steps, *T_RANGE)


def n_bucket(n_neurons: int) -> int:
    return bucket(n_neurons, *N_RANGE)


def validate_table(table: Any, source: str = "winners table") -> list[dict]:
    """Return the entries of a parsed table, or raise ``WinnersTableError`` saying what is wrong."""
    if not isinstance(table, dict) or table.get("schema") != SCHEMA:
        raise WinnersTableError(f"{source}: expected an object with 'schema': {SCHEMA}")
    entries = table.get("entries")
    if not isinstance(entries, list):
        raise WinnersTableError(f"{source}: 'entries' must be a list")
    for i, entry in enumerate(entries):
        if not isinstance(entry, dict):
            raise WinnersTableError(f"{source}: entry {i} is not an object")
        for key, kind in REQUIRED.items():
            if not isinstance(entry.get(key), kind) or isinstance(entry.get(key), bool):
                raise WinnersTableError(
                    f"{source}: entry {i} needs '{key}' of type {kind.__name__}, "
                    f"got {entry.get(key)!r}"
                )
        checks = (
            ("op", OPS),
            ("direction", DIRECTIONS),
            ("dtype", tuple(DTYPES)),
        )
        for key, allowed in checks:
            if entry[key] not in allowed:
                raise WinnersTableError(
                    f"{source}: entry {i} has {key}={entry[key]!r}, expected one of {allowed}"
                )
        try:
            KernelConfig(**entry["config"])
        except (TypeError, ValueError) as err:
            raise WinnersTableError(f"{source}: entry {i} has a bad config: {err}") from None
    return entries


def load_table(path: Path | str | None = None) -> list[dict]:
    """Read and validate a winners file; a missing file is an empty table."""
    path = Path(path or os.environ.get("TETHER_WINNERS") or TABLE_PATH)
    if not path.exists():
        return []
    try:
        table = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise WinnersTableError(f"{path}: not valid JSON: {err}") from None
    return validate_table(table, str(path))


@functools.cache
def _table_entries() -> tuple[dict, ...]:
    return tuple(load_table())


def nearest(
    entries: tuple[dict, ...] | list[dict],
    gpu: str,
    op: str,
    direction: str,
    dtype: str,
    n_steps: int,
    n_neurons: int,
    bwd: KernelConfig | None = None,
) -> dict | None:
    """The entry nearest to (T, N) in (log2 T, log2 N) buckets for this GPU, op, direction
    and dtype; ``fwd_train`` entries only with ``bwd``'s chunk and pack_bits."""
    t_log, n_log = math.log2(t_bucket(n_steps)), math.log2(n_bucket(n_neurons))
    best, best_distance = None, math.inf
    for entry in entries:
        if (entry["gpu"], entry["op"], entry["direction"], entry["dtype"]) != (
            gpu,
            op,
            direction,
            dtype,
        ):
            continue
        layout = entry["config"]["chunk"], entry["config"]["pack_bits"]
        if bwd is not None and layout != (bwd.chunk, bwd.pack_bits):
            continue
        distance = abs(math.log2(entry["t_bucket"]) - t_log) + abs(
            math.log2(entry["n_bucket"]) - n_log
        )
        if distance < best_distance:
            best, best_distance = entry, distance
    return best


def lookup(
    entries: tuple[dict, ...] | list[dict],
    gpu: str,
    op: str,
    direction: str,
    dtype: str,
    n_steps: int,
    n_neurons: int,
    bwd: KernelConfig | None = None,
) -> KernelConfig | None:
    """The config of the ``nearest`` entry, None without one."""
    best = nearest(entries, gpu, op, direction, dtype, n_steps, n_neurons, bwd)
    return None if best is None else KernelConfig(**best["config"])


FAR_NEURONS = 16  # 4 octaves of N: the bucket distance past which a winner is not evidence


def programs(config: KernelConfig, n_neurons: int) -> int:
    """Programs ``config`` launches over ``n_neurons`` rounded up to a power of two (its
    bucket), segments included."""
    return -(-next_pow2(n_neurons) // config.block) * config.segments


def planned(
    entries: tuple[dict, ...] | list[dict],
    gpu: str | None,
    op: str,
    direction: str,
    dtype: torch.dtype,
    n_steps: int,
    n_neurons: int,
    bwd: KernelConfig | None = None,
) -> KernelConfig:
    """The config the runtime runs at (T, N) on the GPU named ``gpu`` whose current entries
    are ``entries`` (``gpu_entries``): the nearest entry, else the default (``default_for``,
    filled to the GPU for few neurons; not with ``gpu`` None, no GPU).

    An entry tuned over ``FAR_NEURONS`` times the call's neurons or more, that would launch
    fewer than ``MIN_PROGRAMS`` programs here and fewer than the default filled to the GPU
    (fp32), gives way to that default: a winner over many neurons leaves a long sequence over
    few to a handful of serial walks (the H100's ALIF fp32 tuned at 32 x 2^23 and 128 x 2^22,
    looked up at 512x8192: 0.144 ms forward+backward against 0.079 for the segmented
    default, ``bench_long_*.csv``). A winner in time segments (a long sequence over few
    neurons) runs only where the default and the winner's block both walk in segments
    (``segments_for``), in the call's number of segments (which every segmented entry has at
    its own bucket); elsewhere the default runs (the H100's one ALIF fp32 backward entry,
    512x8192 in 8 segments, looked up at 1024x65536: 0.754 ms forward+backward against 0.527
    for the default at 6531c2e)."""
    if gpu is not None and "|" in gpu:  # a key matches no entry's name: silently the default
        raise ValueError(f"gpu must be the GPU's name (gpu_entries(key)[0]), got the key {gpu!r}")
    dtype_name = str(dtype).removeprefix("torch.")
    entry = nearest(entries, gpu, op, direction, dtype_name, n_steps, n_neurons, bwd)
    fill = n_neurons if gpu is not None else None
    default = default_for(op, direction, dtype, n_steps, fill, bwd)
    if entry is None:
        return default
    config = KernelConfig(**entry["config"])
    far = entry["n_bucket"] >= FAR_NEURONS * n_bucket(n_neurons)
    few = programs(config, n_neurons) < min(MIN_PROGRAMS, programs(default, n_neurons))
    filled = default != default_for(op, direction, dtype, n_steps, None, bwd)
    if far and few and filled:
        return default
    if config.segments > 1:  # a long-sequence winner: where the default walks in segments,
        segments = segments_for(n_steps, n_neurons, config.block)  # in as many as T, N take
        if default.segments == 1 or segments == 1:
            return default
        return dataclasses.replace(config, segments=segments)
    return config


@functools.cache
def gpu_key(device_index: int) -> str:
    """``"<name>|<major>.<minor>"``: the GPU's name and compute capability."""
    major, minor = torch.cuda.get_device_capability(device_index)
    return f"{torch.cuda.get_device_name(device_index)}|{major}.{minor}"


# (GPU, op, direction, dtype, T and N buckets): the runtime's plans (``functional.core``)
# cache each exact call on top of this, so a lookup here happens once per distinct call
_BY_BUCKET: dict[tuple, KernelConfig] = {}
_untuned = False


@contextlib.contextmanager
def untuned() -> Iterator[None]:
    """Within the block every call runs the default config: how benchmarks time the
    untuned kernel beside the tuned one."""
    global _untuned
    previous, _untuned = _untuned, True
    try:
        yield
    finally:
        _untuned = previous


def is_untuned() -> bool:
    """Whether calls run the default config (inside ``untuned()``)."""
    return _untuned


def select_config(
    op: str, direction: str, dtype: torch.dtype, n_steps: int, n_neurons: int, device: torch.device
) -> KernelConfig:
    """The launch config for one call: the nearest tuned entry; else, with
    ``TETHER_AUTOTUNE=1``, the winner of Triton's autotuner at this shape
    (``tuning.autotune.autotune_online``; never inside CUDA-graph capture or torch.compile
    tracing: there the default runs, with a warning, and the bucket is tuned at its next
    call outside); else the default. Cached per (GPU, op, direction, dtype, bucket)."""
    gpu = _gpu(device)
    if _untuned:
        return default_for(op, direction, dtype, n_steps, _fill_size(gpu, n_neurons))
    key = (gpu, op, direction, dtype, t_bucket(n_steps), n_bucket(n_neurons))
    config = _BY_BUCKET.get(key)
    if config is None:
        config, final = _choose(gpu, op, direction, dtype, n_steps, n_neurons, device)
        if final:
            _BY_BUCKET[key] = config
    return config


def select_training_configs(
    op: str, dtype: torch.dtype, n_steps: int, n_neurons: int, device: torch.device
) -> tuple[KernelConfig, KernelConfig]:
    """(forward, backward) configs of a training call. The forward saves spikes and
    checkpoints in the layout the backward reads (its ``chunk`` and ``pack_bits``): the
    nearest ``fwd_train`` entry tuned for that layout, else ``training_forward_config``
    (its launch shape filled to the GPU for few neurons), the pair the tuner timed for each
    backward config (``sweep``). Inference entries (``fwd``) are not used: a tuned block with the backward's
    chunk can overflow registers (block 2048 x chunk 16 ran 6% slower). Cached per (GPU, op,
    dtype, bucket, layout)."""
    bwd = select_config(op, "bwd", dtype, n_steps, n_neurons, device)
    gpu = _gpu(device)
    if _untuned:
        return default_for(op, "fwd_train", dtype, n_steps, _fill_size(gpu, n_neurons), bwd), bwd
    key = (gpu, op, "fwd_train", dtype, t_bucket(n_steps), n_bucket(n_neurons), bwd)
    fwd = _BY_BUCKET.get(key)
    if fwd is None:
        name, entries = gpu_entries(gpu)
        fwd = planned(entries, name, op, "fwd_train", dtype, n_steps, n_neurons, bwd)
        _BY_BUCKET[key] = fwd
    return fwd, bwd


def autotune_requested() -> bool:
    """Whether ``TETHER_AUTOTUNE`` is set (to anything but 0)."""
    return os.environ.get("TETHER_AUTOTUNE", "0") not in ("", "0")


def tuning_blocked() -> bool:
    """Inside CUDA-graph capture or torch.compile tracing: no kernel may be timed there."""
    return torch.compiler.is_compiling() or (
        torch.cuda.is_available() and torch.cuda.is_current_stream_capturing()
    )


@functools.cache
def _warn_deferred() -> None:
    warnings.warn(
        "TETHER_AUTOTUNE=1: a shape bucket with no tuned config was first met inside CUDA-graph "
        "capture or torch.compile tracing; it runs the default config there (tuning happens "
        "at its first call outside: call the layer once before capturing or compiling)",
        stacklevel=4,
    )


def _gpu(device: torch.device) -> str | None:
    """``gpu_key`` of a CUDA device (its index, else the current one); None elsewhere."""
    if device.type != "cuda":
        return None
    return gpu_key(device.index if device.index is not None else torch.cuda.current_device())


def _fill_size(gpu: str | None, n_neurons: int) -> int | None:
    """The N of the defaults' small-layer rule (``space.fill_gpu``): None off a GPU (the
    interpreter has no SMs to fill, and pays for every program)."""
    return n_neurons if gpu is not None else None


def gpu_entries(
    gpu: str | None, entries: list[dict] | None = None
) -> tuple[str | None, list[dict]]:
    """(name, entries) of the GPU keyed ``gpu`` (``gpu_key``: ``"<name>|<major>.<minor>"``):
    the entries of its compute capability whose ``kernel_hash`` is the current code's, from
    ``entries`` (default: the table file as read once a process); (None, []) for no GPU."""
    if gpu is None:
        return None, []
    name, capability = gpu.split("|")
    current = _table_entries() if entries is None else entries
    return name, [
        e
        for e in current
        if e["capability"] == capability and e["kernel_hash"] == kernel_hash(e["direction"])
    ]


def _choose(gpu, op, direction, dtype, n_steps, n_neurons, device) -> tuple[KernelConfig, bool]:
    """(config, final): final is False for the default used in place of tuning (capture or
    tracing), which the caller must not cache."""
    name, entries = gpu_entries(gpu)
    dtype_name = str(dtype).removeprefix("torch.")
    if (
        gpu is not None
        and autotune_requested()
        and nearest(entries, name, op, direction, dtype_name, n_steps, n_neurons) is None
    ):
        if tuning_blocked():
            _warn_deferred()
            return default_config(direction, dtype, op, n_steps, n_neurons), False
        # imported here: it imports core, which imports this module
        from tether.tuning.autotune import autotune_online

        return autotune_online(op, direction, dtype, n_steps, n_neurons, device), True
    return planned(entries, name, op, direction, dtype, n_steps, n_neurons), True
