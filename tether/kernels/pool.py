"""Max-pooling over non-overlapping ``KH x KW`` windows that saves packed window offsets.

``torch.nn.functional.max_pool2d`` saves int64 indices for its backward: 8 bytes an output,
2 an input element at 2x2, more than the 1-bit spikes being pooled (cifar_conv T=4 B=64:
112 MB of its saved bytes, ``results/static/saved_bytes_cifar_conv.csv``). These kernels
save where in its window each maximum was (``kh * KW + kw``) in as few bits as a window
needs: 2 up to 4 elements (2x2), 4 up to 16, else 8; ``PER_BYTE`` consecutive outputs (in
memory order) a byte, output ``i`` in bits ``(i % PER_BYTE) * bits`` of byte
``i // PER_BYTE``: a 1-D uint8 tensor of ``ceil(n_out / PER_BYTE)`` bytes.

Tensors are ``(N, C, H, W)`` dense in one of two memory orders: contiguous ``(n, c, h, w)``
or channels_last ``(n, h, w, c)``; outputs and gradients take the input's. Bytes an input
element (fp32, 2x2, training): forward read 4, write 1 + 1/16; backward read 1 + 1/16, write
4.
Ties and NaN as PyTorch: the first maximum in row-major window order, a NaN wins (the last).
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass

import torch
import triton
import triton.language as tl

from tether.kernels.launch import Launcher

BLOCK = 1024  # elements a program: 8 a thread at 4 warps
NUM_WARPS = 4


@triton.jit
def _lanes(n_elements, WIDE: tl.constexpr, BLOCK: tl.constexpr):
    """This program's element indices (memory order) and their mask."""
    pid = tl.program_id(0)
    if WIDE:
        i = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    else:
        i = pid * BLOCK + tl.arange(0, BLOCK)
    return i, i < n_elements


@triton.jit
def _position(i, n_channels, n_rows, n_cols, CHANNELS_LAST: tl.constexpr):
    """Element ``i`` of ``(N, C, rows, cols)`` in memory order -> ``(n, c, row, col)``."""
    if CHANNELS_LAST:
        c = i % n_channels
        rest = i // n_channels
        col = rest % n_cols
        rest = rest // n_cols
        row = rest % n_rows
        n = rest // n_rows
    else:
        col = i % n_cols
        rest = i // n_cols
        row = rest % n_rows
        rest = rest // n_rows
        c = rest % n_channels
        n = rest // n_channels
    return n, c, row, col


@triton.jit
def _offset(n, c, row, col, n_channels, n_rows, n_cols, CHANNELS_LAST: tl.constexpr):
    """The memory offset of ``(n, c, row, col)`` in ``(N, C, rows, cols)``."""
    if CHANNELS_LAST:
        return ((n * n_rows + row) * n_cols + col) * n_channels + c
    return ((n * n_channels + c) * n_rows + row) * n_cols + col


@triton.jit
def max_pool_fwd_kernel(
    x_ptr,  # (N, C, H, W) in the memory order CHANNELS_LAST names, read
    out_ptr,  # (N, C, H // KH, W // KW), same order, written: the window maxima
    offsets_ptr,  # (ceil(n_out / PER_BYTE),) uint8, written if OFFSETS (module doc)
    n_out,
    n_channels,
    n_rows,  # H
    n_cols,  # W
    n_rows_out,
    n_cols_out,
    KH: tl.constexpr,
    KW: tl.constexpr,
    CHANNELS_LAST: tl.constexpr,
    OFFSETS: tl.constexpr,
    WIDE: tl.constexpr,  # 64-bit offsets (2^31 elements or more)
    PER_BYTE: tl.constexpr,  # window offsets a byte: 4 (2 bits), 2 (4 bits) or 1
    BLOCK: tl.constexpr,
):
    # One output a lane: the KH * KW elements of its window.
    i, mask = _lanes(n_out, WIDE, BLOCK)
    n, c, ho, wo = _position(i, n_channels, n_rows_out, n_cols_out, CHANNELS_LAST)
    base = _offset(n, c, ho * KH, wo * KW, n_channels, n_rows, n_cols, CHANNELS_LAST)
    row_step = n_cols * n_channels if CHANNELS_LAST else n_cols
    col_step = n_channels if CHANNELS_LAST else 1
    # compared in float32 (exact for every input dtype; the interpreter compares bf16 wrongly)
    best = tl.load(x_ptr + base, mask=mask, other=0.0).to(tl.float32)
    where = tl.zeros([BLOCK], dtype=tl.int32)
    for k in tl.static_range(1, KH * KW):
        offset = base + (k // KW) * row_step + (k % KW) * col_step
        v = tl.load(x_ptr + offset, mask=mask).to(tl.float32)
        take = (v > best) | (v != v)
        best = tl.where(take, v, best)
        where = tl.where(take, k, where)
    tl.store(out_ptr + i, best.to(out_ptr.dtype.element_ty), mask=mask)
    if OFFSETS:
        if PER_BYTE == 1:
            tl.store(offsets_ptr + i, where.to(tl.uint8), mask=mask)
        else:  # PER_BYTE consecutive outputs a byte, output i in bits (i % PER_BYTE) * bits
            fields = tl.reshape(tl.where(mask, where, 0), (BLOCK // PER_BYTE, PER_BYTE))
            shifts = tl.arange(0, PER_BYTE) * (8 // PER_BYTE)
            packed = tl.sum(fields << shifts[None, :], axis=1)
            b, b_mask = _lanes((n_out + PER_BYTE - 1) // PER_BYTE, WIDE, BLOCK // PER_BYTE)
            tl.store(offsets_ptr + b, packed.to(tl.uint8), mask=b_mask)


@triton.jit
def max_pool_bwd_kernel(
    grad_out_ptr,  # like the forward's out, read
    offsets_ptr,  # the forward's offsets, read
    grad_x_ptr,  # like x, written: grad_out at each window's maximum, else 0
    n_in,
    n_channels,
    n_rows,
    n_cols,
    n_rows_out,
    n_cols_out,
    KH: tl.constexpr,
    KW: tl.constexpr,
    CHANNELS_LAST: tl.constexpr,
    WIDE: tl.constexpr,
    PER_BYTE: tl.constexpr,
    BLOCK: tl.constexpr,
):
    # One input element a lane: windows do not overlap, so each gets one output's gradient.
    i, mask = _lanes(n_in, WIDE, BLOCK)
    n, c, h, w = _position(i, n_channels, n_rows, n_cols, CHANNELS_LAST)
    ho = h // KH
    wo = w // KW
    j = _offset(n, c, ho, wo, n_channels, n_rows_out, n_cols_out, CHANNELS_LAST)
    inside = mask & (ho < n_rows_out) & (wo < n_cols_out)  # rows/cols past the last window: 0
    grad = tl.load(grad_out_ptr + j, mask=inside, other=0.0)
    if PER_BYTE == 1:
        where = tl.load(offsets_ptr + j, mask=inside, other=0).to(tl.int32)
    else:
        byte = tl.load(offsets_ptr + j // PER_BYTE, mask=inside, other=0).to(tl.int32)
        shift = ((j % PER_BYTE) * (8 // PER_BYTE)).to(tl.int32)
        where = (byte >> shift) & ((1 << (8 // PER_BYTE)) - 1)
    mine = inside & (where == (h - ho * KH) * KW + (w - wo * KW))
    tl.store(grad_x_ptr + i, tl.where(mine, grad, 0.0).to(grad_x_ptr.dtype.element_ty), mask=mask)


_launch_fwd = Launcher(max_pool_fwd_kernel)
_launch_bwd = Launcher(max_pool_bwd_kernel)


@dataclass(frozen=True)
class PoolPlan:
    """One direction's launch for one input shape (``(N, C, H, W)``), window and memory
    order: the output's shape (``(N, C, H // KH, W // KW)``) and format, the kernel's size
    arguments and constexprs, the grid, and the ``Launcher`` binaries of its specialization
    (with the input's dtype and alignment; outputs are fresh, aligned). Built once
    (``_plan``): a call is then two allocations and a launch."""

    out_shape: tuple[int, int, int, int]
    memory_format: torch.memory_format
    sizes: tuple[int, ...]  # n_elements (outputs, or inputs backward), C, H, W, H_out, W_out
    constexprs: dict
    grid: tuple[int, int, int]
    offset_bytes: int  # the forward's packed offsets
    binaries: dict


@functools.lru_cache(maxsize=1024)
def _plan(
    backward: bool,
    shape: torch.Size,
    kernel: tuple[int, int],
    channels_last: bool,
    offsets: bool,
    classes: tuple,  # the tensor arguments' dtypes and alignments: the binaries' key
) -> PoolPlan:
    n, c, h, w = shape
    out_shape = (n, c, h // kernel[0], w // kernel[1])
    n_elements = math.prod(shape if backward else out_shape)
    constexprs = {"KH": kernel[0], "KW": kernel[1], "CHANNELS_LAST": channels_last}
    if not backward:
        constexprs["OFFSETS"] = offsets
    per_byte = offsets_per_byte(kernel)
    constexprs |= {"WIDE": math.prod(shape) >= 2**31, "PER_BYTE": per_byte, "BLOCK": BLOCK}
    fmt = torch.channels_last if channels_last else torch.contiguous_format
    sizes = (n_elements, c, h, w, *out_shape[2:])
    grid = (triton.cdiv(n_elements, BLOCK), 1, 1)
    offset_bytes = -(-math.prod(out_shape) // per_byte)
    return PoolPlan(out_shape, fmt, sizes, constexprs, grid, offset_bytes, {})


def offsets_per_byte(kernel: tuple[int, int]) -> int:
    """Window offsets a byte: 4 for windows of up to 4 elements, 2 up to 16, else 1."""
    window = kernel[0] * kernel[1]
    return 4 if window <= 4 else 2 if window <= 16 else 1


def max_pool_forward(
    x: torch.Tensor, kernel: tuple[int, int], channels_last: bool, offsets: bool
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """``x: (N, C, H, W)`` dense in the order ``channels_last`` names -> ``(out, offsets)``:
    out ``(N, C, H // KH, W // KW)`` in that order, offsets packed (module doc) or None
    unless asked."""
    classes = (x.dtype, x.data_ptr() % 16 == 0)
    plan = _plan(False, x.shape, kernel, channels_last, offsets, classes)
    out = torch.empty(plan.out_shape, dtype=x.dtype, device=x.device,
                      memory_format=plan.memory_format)  # fmt: skip
    # without offsets the kernel stores none: out stands in for the pointer
    where = torch.empty(plan.offset_bytes, dtype=torch.uint8, device=x.device) if offsets else out
    if plan.sizes[0]:
        args = [x, out, where, *plan.sizes]
        _launch_fwd(plan.grid, args, plan.constexprs, NUM_WARPS, 1, plan.binaries)
    return out, where if offsets else None


def max_pool_backward(
    grad_out: torch.Tensor,
    offsets: torch.Tensor,
    x_shape: torch.Size,
    kernel: tuple[int, int],
    channels_last: bool,
) -> torch.Tensor:
    """The gradient of ``x: x_shape`` from ``grad_out`` (dense in the order ``channels_last``
    names) and the forward's ``offsets``, laid out in that order."""
    classes = (grad_out.dtype, grad_out.data_ptr() % 16 == 0, offsets.data_ptr() % 16 == 0)
    plan = _plan(True, x_shape, kernel, channels_last, True, classes)
    grad_x = torch.empty(x_shape, dtype=grad_out.dtype, device=grad_out.device,
                         memory_format=plan.memory_format)  # fmt: skip
    if plan.sizes[0]:
        args = [grad_out, offsets, grad_x, *plan.sizes]
        _launch_bwd(plan.grid, args, plan.constexprs, NUM_WARPS, 1, plan.binaries)
    return grad_x
