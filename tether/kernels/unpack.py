"""Unpack bit-packed spikes into a dense tensor: the backward half of ``tether.spike_memory``.

The packed layout is the one the neuron forward kernel writes for its own backward
(``tether/kernels/neuron.py``): spikes ``(T, N)`` row-major are stored as words
``(ceil(T / PACK_BITS), N)`` int8|int16|int32, bit ``t % PACK_BITS`` of word
``(t // PACK_BITS, n)`` being the spike of neuron ``n`` at step ``t``.

Bytes per element: read 1/8 (one bit), write the spike dtype's size (4 fp32, 2 bf16/fp16).
A program unpacks ``ROWS`` steps of ``BLOCK`` neurons, ``ROWS = min(PACK_BITS,
next_pow2(T))``: at T=8 with 32-bit words a 32-row tile would be 3/4 masked.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from tether.kernels.launch import Launcher, arg_class

ELEMENTS_PER_PROGRAM = 4096  # a (ROWS, BLOCK) tile: 32 elements per thread at 4 warps
NUM_WARPS = 4


@triton.jit
def unpack_spikes_kernel(
    packed_ptr,  # (ceil(T / PACK_BITS), N) int8|int16|int32, read
    spikes_ptr,  # (T, N) float32|float16|bfloat16, written: 0.0 or 1.0
    n_steps,
    n_neurons,
    BLOCK: tl.constexpr,
    PACK_BITS: tl.constexpr,
    ROWS: tl.constexpr,  # steps per program: PACK_BITS, or next_pow2(T) when T < PACK_BITS
):
    # One program: one word row (its first ROWS steps) of BLOCK neurons.
    pid = tl.program_id(0)
    n_blocks = tl.cdiv(n_neurons, BLOCK)
    word_row = pid // n_blocks
    n = (pid % n_blocks).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    n_mask = n < n_neurons
    word_offsets = word_row.to(tl.int64) * n_neurons + n
    # Sign extension of int8/int16 words only fills bits >= PACK_BITS, which are not read.
    word = tl.load(packed_ptr + word_offsets, mask=n_mask, other=0).to(tl.int32)
    k = tl.arange(0, ROWS)
    t = word_row * PACK_BITS + k
    bits = (word[None, :] >> k[:, None]) & 1
    # via float32: the interpreter cannot cast integers to bfloat16
    spikes = bits.to(tl.float32).to(spikes_ptr.dtype.element_ty)
    offsets = t[:, None].to(tl.int64) * n_neurons + n[None, :]
    tl.store(spikes_ptr + offsets, spikes, mask=(t[:, None] < n_steps) & n_mask[None, :])


_launch = Launcher(unpack_spikes_kernel)
# One ``Launcher`` binaries dict per specialization (``UnpackPlan.binaries``).
_BINARIES: dict[tuple, dict] = {}


def rows_for(pack_bits: int, n_steps: int) -> int:
    """Steps per program: a whole word of ``pack_bits`` steps, or the power of two that
    holds all ``n_steps`` when the sequence is shorter than a word."""
    return min(pack_bits, triton.next_power_of_2(max(n_steps, 1)))


@dataclass(frozen=True)
class UnpackPlan:
    """The launch that unpacks words ``(ceil(T / W), N)`` into a fresh ``(T, N)`` tensor of
    ``dtype``, built once per words layout, T, N and dtype (``unpack_plan`` caches it) so
    that the backward's unpack costs an allocation and a launch. ``binaries``: shared by the plans of one
    specialization (``Launcher``)."""

    grid: tuple[int, int, int]
    n_steps: int
    n_neurons: int
    constexprs: dict[str, int]
    binaries: dict


def unpack_plan(
    packed: torch.Tensor, n_steps: int, n_neurons: int, dtype: torch.dtype
) -> UnpackPlan:
    """The plan for ``packed: (ceil(T / W), N)`` int8|int16|int32 (W = 8, 16, 32 bits per
    word) into spikes ``(T, N) = (n_steps, n_neurons)`` of ``dtype``; its binaries are those
    of a 16-byte aligned output (a fresh allocation). Plans are cached by what they depend
    on: spike memory asks for one per spike tensor, every training step."""
    aligned = packed.data_ptr() % 16 == 0
    return _plan(packed.dtype, aligned, packed.shape, n_steps, n_neurons, dtype)


@functools.lru_cache(maxsize=1024)
def _plan(
    packed_dtype: torch.dtype,
    aligned: bool,
    packed_shape: torch.Size,
    n_steps: int,
    n_neurons: int,
    dtype: torch.dtype,
) -> UnpackPlan:
    pack_bits = packed_dtype.itemsize * 8
    words = -(-n_steps // pack_bits)
    if packed_shape != (words, n_neurons):
        raise ValueError(
            f"packed has shape {tuple(packed_shape)}, expected {(words, n_neurons)} for "
            f"spikes {(n_steps, n_neurons)}"
        )
    rows = rows_for(pack_bits, n_steps)
    block = ELEMENTS_PER_PROGRAM // rows
    constexprs = {"BLOCK": block, "PACK_BITS": pack_bits, "ROWS": rows}
    classes = ((packed_dtype, aligned), (dtype, True), *map(arg_class, (n_steps, n_neurons)))
    binaries = _BINARIES.setdefault((classes, *constexprs.values()), {})
    grid = (words * -(-n_neurons // block), 1, 1)
    return UnpackPlan(grid, n_steps, n_neurons, constexprs, binaries)


def launch_unpack(plan: UnpackPlan, packed: torch.Tensor, spikes: torch.Tensor) -> None:
    """Run ``plan`` from ``packed`` into ``spikes: (T, N)`` contiguous (an output that is not
    16-byte aligned is another specialization: launched without the plan's binaries)."""
    if plan.grid[0]:
        binaries = plan.binaries if spikes.data_ptr() % 16 == 0 else None
        args = (packed, spikes, plan.n_steps, plan.n_neurons)
        _launch(plan.grid, args, plan.constexprs, NUM_WARPS, 1, binaries)


def unpack_spikes(packed: torch.Tensor, spikes: torch.Tensor) -> None:
    """Write ``spikes: (T, N)`` contiguous (float32|float16|bfloat16) from ``packed:
    (ceil(T / W), N)`` int8|int16|int32 (W = 8, 16, 32 bits per word)."""
    launch_unpack(unpack_plan(packed, *spikes.shape, spikes.dtype), packed, spikes)
