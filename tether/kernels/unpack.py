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

import torch
import triton
import triton.language as tl

from tether.kernels.launch import Launcher

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


def rows_for(pack_bits: int, n_steps: int) -> int:
    """Steps per program: a whole word of ``pack_bits`` steps, or the power of two that
    holds all ``n_steps`` when the sequence is shorter than a word."""
    return min(pack_bits, triton.next_power_of_2(max(n_steps, 1)))


def unpack_spikes(packed: torch.Tensor, spikes: torch.Tensor) -> None:
    """Write ``spikes: (T, N)`` contiguous (float32|float16|bfloat16) from ``packed:
    (ceil(T / W), N)`` int8|int16|int32 (W = 8, 16, 32 bits per word)."""
    n_steps, n_neurons = spikes.shape
    pack_bits = packed.element_size() * 8
    if packed.shape != (triton.cdiv(n_steps, pack_bits), n_neurons):
        raise ValueError(
            f"packed has shape {tuple(packed.shape)}, expected "
            f"{(triton.cdiv(n_steps, pack_bits), n_neurons)} for spikes {tuple(spikes.shape)}"
        )
    rows = rows_for(pack_bits, n_steps)
    block = ELEMENTS_PER_PROGRAM // rows
    grid = packed.shape[0] * triton.cdiv(n_neurons, block)
    if grid == 0:
        return
    constexprs = {"BLOCK": block, "PACK_BITS": pack_bits, "ROWS": rows}
    _launch((grid, 1, 1), (packed, spikes, n_steps, n_neurons), constexprs, NUM_WARPS, 1)
