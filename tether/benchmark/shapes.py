"""The (T, N) shape sets of benchmarks and sweeps, each defined once.

- ``STANDARD_SHAPES``: what ``tether-bench run`` measures on a GPU and ``tune --grid
  standard`` sweeps: N = 2**20 to 2**23 at T = 8, 32, 128, and long sequences.
- ``SMALL_SHAPES``: ``run --quick``, sizes a CPU-only machine runs in seconds.
- ``QUICK_SHAPES``: ``tune --grid quick``, three points for tuning runs with little GPU time.
- ``FULL_SHAPES``: ``tune --grid full``, T x N over the table's bucket range.
- ``LONG_SHAPES``: ``tune --grid long``, long sequences over few neurons (latency bound):
  T = 512 to 4096 x N = 2**12 to 2**16.
"""

from __future__ import annotations

import itertools

Shape = tuple[int, int]

STANDARD_SHAPES: list[Shape] = [
    (8, 2**20), (32, 2**20), (128, 2**20), (8, 2**23), (32, 2**23), (128, 2**22),
    (512, 8192), (1024, 65536), (2048, 4096),
]  # fmt: skip
SMALL_SHAPES: list[Shape] = [(4, 4096), (16, 4096), (16, 65536)]
QUICK_SHAPES: list[Shape] = [(8, 2**14), (32, 2**20), (32, 2**23)]
MAX_ELEMENTS = 2**29  # per (T, N): inputs, gradients and reference fit an 80 GB GPU
FULL_SHAPES: list[Shape] = [
    (t, n)
    for t, n in itertools.product((1, 4, 16, 64, 256, 1024), (2**10, 2**14, 2**18, 2**22, 2**26))
    if t * n <= MAX_ELEMENTS
]
LONG_SHAPES: list[Shape] = [
    (t, n)
    for t, n in itertools.product((512, 1024, 2048, 4096), (2**12, 2**13, 2**14, 2**16))
    if t * n <= MAX_ELEMENTS
]
GRIDS = {
    "quick": QUICK_SHAPES,
    "standard": STANDARD_SHAPES,
    "full": FULL_SHAPES,
    "long": LONG_SHAPES,
}


def format_shapes(shapes: list[Shape]) -> str:
    """``"8x1048576,32x1048576"``: the CLI's spelling."""
    return ",".join(f"{t}x{n}" for t, n in shapes)
