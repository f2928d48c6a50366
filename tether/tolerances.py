"""How close a kernel's outputs must be to the reference, per I/O dtype: one table for the
tests, the benchmark's accuracy column and the sweep's rejection of wrong configs.

Errors are relative to the reference's largest magnitude: ``|actual - expected| <= tol *
max|expected|``. ``element`` bounds elementwise tensors (state, traces, grad_x, grad of the
initial state); ``param`` bounds parameter gradients, sums over T*N terms with cancellation.
In 16-bit I/O the kernel and the reference both compute in float32 from the same rounded
inputs and round their outputs, so they differ by about one unit of the output format.
``bound``: the fraction of output elements (spikes, and grad_x in training) a benchmark or
sweep row may have beyond ``element``; not zero, since a membrane within rounding of the
threshold may fire in one implementation and not in another.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Tolerance:
    element: float
    param: float
    bound: float


TOLERANCES = {
    torch.float32: Tolerance(element=1e-5, param=1e-4, bound=1e-3),
    torch.float16: Tolerance(element=2e-3, param=2e-3, bound=1e-3),
    torch.bfloat16: Tolerance(element=1.6e-2, param=1.6e-2, bound=1e-3),
}
