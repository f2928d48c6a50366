"""Launch configurations of the neuron kernels: the tunable space and the untuned default.

A config fixes, for one direction:

- ``block``: neurons per program (a power of two);
- ``num_warps``, ``num_stages``: Triton launch parameters;
- ``chunk``: time steps loaded as one tile, so that ``chunk`` loads are in flight; in training
  it is also the checkpoint interval of the membrane, so the forward and backward of one
  call share it;
- ``pack_bits``: time steps per packed spike word (int8, int16 or int32), a multiple of
  ``chunk``.

The forward of a training step runs with its own block, warps and stages but the backward
config's ``chunk`` and ``pack_bits``, since the backward reads what the forward saved.
"""

from __future__ import annotations

import itertools
from dataclasses import asdict, dataclass

import torch

PACK_DTYPES = {8: torch.int8, 16: torch.int16, 32: torch.int32}
DIRECTIONS = ("fwd", "bwd")


@dataclass(frozen=True)
class KernelConfig:
    """One launch configuration; see the module docstring."""

    block: int
    num_warps: int
    num_stages: int
    chunk: int
    pack_bits: int

    def __post_init__(self) -> None:
        for name in ("block", "num_warps", "chunk"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1 or value & (value - 1):
                raise ValueError(f"KernelConfig.{name} must be a power of two, got {value!r}")
        if not isinstance(self.num_stages, int) or self.num_stages < 1:
            raise ValueError(f"KernelConfig.num_stages must be >= 1, got {self.num_stages!r}")
        if self.pack_bits not in PACK_DTYPES:
            raise ValueError(
                f"KernelConfig.pack_bits must be one of {sorted(PACK_DTYPES)}, "
                f"got {self.pack_bits!r}"
            )
        if self.pack_bits % self.chunk:
            raise ValueError(
                f"KernelConfig.chunk ({self.chunk}) must divide pack_bits ({self.pack_bits})"
            )

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


def default_config(direction: str, dtype: torch.dtype) -> KernelConfig:
    """The untuned heuristic: whole tile columns per thread, 8 steps of loads in flight.

    A thread holds a column of the ``(chunk, block)`` tile when ``block`` covers
    ``32 * num_warps`` threads times the 16-byte vector (4 fp32 or 8 fp16/bf16 values).
    """
    vector = 4 if dtype == torch.float32 else 8
    num_warps = 4
    block = 32 * num_warps * vector
    return KernelConfig(block=block, num_warps=num_warps, num_stages=1, chunk=8, pack_bits=32)


def config_space(direction: str, dtype: torch.dtype) -> list[KernelConfig]:
    """Every config the tuner tries for one direction and dtype."""
    configs = []
    for block, num_warps, num_stages, chunk, pack_bits in itertools.product(
        (256, 512, 1024, 2048), (2, 4, 8), (1, 2, 3), (4, 8, 16), (8, 16, 32)
    ):
        if pack_bits % chunk or block < 32 * num_warps:
            continue
        if block * chunk > 16384:  # register tiles beyond this spill
            continue
        if direction == "fwd" and pack_bits != 32:
            continue  # the training forward takes pack_bits from the backward config
        configs.append(KernelConfig(block, num_warps, num_stages, chunk, pack_bits))
    return configs
