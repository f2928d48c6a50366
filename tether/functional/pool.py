"""``max_pool2d(x, kernel_size)``: PyTorch's max-pool over non-overlapping windows, saving
window offsets packed in 2 bits an output (2x2) for its backward instead of int64 indices
(``tether/kernels/pool.py``).

PyTorch's ``F.max_pool2d`` is the definition: same outputs and gradients, bitwise. It also
runs where the kernels do not (CPU without the interpreter, float64) and under tracing:
inductor lowers max-pooling to its own kernels, which already save 1-byte offsets.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from tether.functional.ops import uses_kernels
from tether.kernels.pool import max_pool_backward, max_pool_forward
from tether.spike_memory import apply_unhooked

MAX_WINDOW = 256  # elements a window: its offsets are uint8


def kernel_pair(value: int | tuple[int, int], name: str) -> tuple[int, int]:
    """``value`` (an int or a pair of them, each >= 1) as ``(kh, kw)``; else a ValueError
    naming the argument ``name``."""
    pair = (value, value) if isinstance(value, int) and not isinstance(value, bool) else value
    if not (
        isinstance(pair, (tuple, list))
        and len(pair) == 2
        and all(isinstance(k, int) and not isinstance(k, bool) and k >= 1 for k in pair)
    ):
        raise ValueError(f"{name} must be a positive int or a pair of them, got {value!r}")
    return int(pair[0]), int(pair[1])


class MaxPool2dFunction(torch.autograd.Function):
    """``x: (N, C, H, W)`` dense (contiguous or channels_last) -> ``(N, C, H // KH, W // KW)``
    in x's memory order."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, kernel: tuple[int, int], channels_last: bool):
        out, offsets = max_pool_forward(x, kernel, channels_last, offsets=True)
        ctx.save_for_backward(offsets)
        ctx.x_shape, ctx.kernel, ctx.channels_last = x.shape, kernel, channels_last
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out: torch.Tensor):
        (offsets,) = ctx.saved_tensors
        fmt = torch.channels_last if ctx.channels_last else torch.contiguous_format
        grad_out = grad_out.contiguous(memory_format=fmt)
        grad_x = max_pool_backward(grad_out, offsets, ctx.x_shape, ctx.kernel, ctx.channels_last)
        return grad_x, None, None


def max_pool2d(
    x: torch.Tensor,
    kernel_size: int | tuple[int, int] = 2,
    stride: int | tuple[int, int] | None = None,
) -> torch.Tensor:
    """Max-pool ``x: (*, C, H, W)`` (at least 3 dims) over ``kernel_size`` windows ->
    ``(*, C, H // KH, W // KW)``, as ``F.max_pool2d(x, kernel_size)``. ``stride``: None or
    equal to ``kernel_size`` (non-overlapping windows: the only kind with packed offsets
    here). Outputs and gradients take x's memory order (channels_last stays so); an input
    in neither order is copied to a contiguous one."""
    kernel = kernel_pair(kernel_size, "kernel_size")
    if kernel[0] * kernel[1] > MAX_WINDOW:
        raise ValueError(
            f"kernel_size {kernel} has more than {MAX_WINDOW} elements (window offsets are "
            "uint8); use torch.nn.functional.max_pool2d"
        )
    if stride is not None and kernel_pair(stride, "stride") != kernel:
        raise ValueError(
            f"stride must be None or equal to kernel_size {kernel} (non-overlapping "
            f"windows), got {stride!r}; use torch.nn.functional.max_pool2d for others"
        )
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    if x.dim() < 3:
        raise ValueError(f"x must have shape (*, C, H, W), got {tuple(x.shape)}")
    if x.shape[-2] < kernel[0] or x.shape[-1] < kernel[1]:
        raise ValueError(f"x's (H, W) = {tuple(x.shape[-2:])} is smaller than kernel_size {kernel}")
    four = x.dim() == 4  # the usual case: no reshapes
    x4 = x if four else x.reshape(-1, *x.shape[-3:])
    if torch.compiler.is_compiling() or type(x) is not torch.Tensor or not uses_kernels(x):
        out = F.max_pool2d(x4, kernel)
    else:
        contiguous = x4.is_contiguous()
        channels_last = not contiguous and x4.is_contiguous(memory_format=torch.channels_last)
        if not (contiguous or channels_last):
            x4 = x4.contiguous()
        if torch.is_grad_enabled() and x4.requires_grad:
            out = apply_unhooked(MaxPool2dFunction, x4, kernel, channels_last)
        else:
            out = max_pool_forward(x4, kernel, channels_last, offsets=False)[0]
    if four:
        return out
    return out[0] if x.dim() == 3 else out.unflatten(0, x.shape[:-3])
