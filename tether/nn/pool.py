"""``MaxPool2d``: ``torch.nn.MaxPool2d`` over non-overlapping windows saving packed window
offsets for the backward (``tether.max_pool2d``)."""

from __future__ import annotations

import torch
from torch import nn

from tether.functional.pool import kernel_pair, max_pool2d


class MaxPool2d(nn.Module):
    """``(*, C, H, W) -> (*, C, H // KH, W // KW)``: the max of each ``kernel_size`` window
    (stride = kernel_size), as ``torch.nn.MaxPool2d(kernel_size)`` with the same values and
    gradients; its backward keeps 2 bits an output at 2x2 (4 up to 16 elements a window,
    else 8) instead of 64. Leading dims are kept, so
    ``(T, B, C, H, W)`` spikes pool as they are."""

    def __init__(self, kernel_size: int | tuple[int, int] = 2) -> None:
        super().__init__()
        self.kernel_size = kernel_pair(kernel_size, "kernel_size")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return max_pool2d(x, self.kernel_size)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}"
