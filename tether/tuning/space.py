"""Launch configurations of the neuron kernels: the tunable space and the untuned default.

A config fixes, for one direction:

- ``block``: neurons per program (a power of two);
- ``num_warps``, ``num_stages``: Triton launch parameters;
- ``chunk``: time steps loaded as one tile, so that ``chunk`` loads are in flight; in training
  it is also the checkpoint interval of the membrane, so the forward and backward of one
  call share it;
- ``pack_bits``: time steps per packed spike word (int8, int16 or int32), a multiple of
  ``chunk``;
- ``prefetch``: the kernels load the next chunk's tiles (the backward: the previous chunk's)
  before computing the current one, so the loads are in flight during its compute, at twice
  the tile registers. Off in every entry written before the switch existed.
- ``segments``: the backward only. Above 1 it walks time in up to that many segments at
  once (one program per block and segment), for long sequences over few neurons, where one
  program's serial walk over all T is the bound. A first launch computes each segment's
  effect on the adjoints it hands back (an affine map: the reverse step is affine in them),
  the second starts each segment from the maps of the later ones and runs it as usual.
  Twice the backward's reads; 1 everywhere else.
- ``lean``: the kernels' step in fewer instructions, a level. 1 (``True``): addresses
  advanced a step at a time, rows taken from a tile without an add, spike bits set and
  tested by a select of a scalar mask. 2: also, with ``prefetch``, two chunks an iteration,
  so that the tiles in flight alternate between two register sets instead of being copied;
  and in the backward the surrogate's reciprocal as ``rsqrt(x)**2`` (2 instructions, not 8:
  relative error under 3e-7), each chunk's spike word shifted once so that a step tests a
  constant mask, and no per-step bounds checks when T is a multiple of ``chunk`` (``python
  scripts/sass_count.py`` counts the backward's instructions a step). At long T over few
  neurons a warp is alone on its scheduler and issues an instruction every ~2 cycles, so the
  instruction count is the time; at large N the 16-bit and ALIF backwards issue about as
  long as they move bytes. 0 (``False``) in every entry written before level 1 existed, at
  most 1 before level 2 (their code is unchanged).

The forward of a training step (direction ``fwd_train``) takes ``chunk`` and
``pack_bits`` from the backward config, since the backward reads what it saved; its launch
shape (``block``, ``num_warps``, ``num_stages``, ``prefetch``) is tuned for that backward
config (``config_space("fwd_train", ..., bwd=...)``), and without an entry it is
``training_forward_config``: 1024 neurons on 4 warps, smaller for few neurons (``fill_gpu``).
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Collection
from dataclasses import asdict, dataclass

import torch
import triton

from tether.neurons import NEURONS

PACK_DTYPES = {8: torch.int8, 16: torch.int16, 32: torch.int32}
LEAN_LEVELS = (0, 1, 2)
# The I/O dtypes of the kernels, by the names tables, CSVs and the CLI use.
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# Table directions: the inference forward, the backward, the forward of a training step.
DIRECTIONS = ("fwd", "bwd", "fwd_train")


@dataclass(frozen=True)
class KernelConfig:
    """One launch configuration; see the module docstring."""

    block: int
    num_warps: int
    num_stages: int
    chunk: int
    pack_bits: int
    prefetch: bool = False
    lean: int = 0  # a level, 0-2 (tables and sweeps before level 2 hold False/True)
    segments: int = 1

    def __post_init__(self) -> None:
        for name in ("block", "num_warps", "chunk", "segments"):
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
        if not isinstance(self.prefetch, bool):
            raise ValueError(f"KernelConfig.prefetch must be a bool, got {self.prefetch!r}")
        if not isinstance(self.lean, int) or self.lean not in LEAN_LEVELS:
            raise ValueError(f"KernelConfig.lean must be one of {LEAN_LEVELS}, got {self.lean!r}")
        object.__setattr__(self, "lean", int(self.lean))  # True -> 1: one spelling a level
        if self.pack_bits % self.chunk:
            raise ValueError(
                f"KernelConfig.chunk ({self.chunk}) must divide pack_bits ({self.pack_bits})"
            )

    @property
    def per_thread(self) -> int:
        """Neurons per thread (``block / (32 * num_warps)``, at least 1): the kernels' vector
        width hint, so that a thread holds whole columns of the ``(chunk, block)`` tile."""
        return max(1, self.block // (32 * self.num_warps))

    def as_dict(self) -> dict[str, int | bool]:
        return asdict(self)

    def meta(self) -> dict[str, int | bool]:
        """The kernels' launch constexprs: ``BLOCK``, ``CHUNK``, ``PACK_BITS``, ``PER_THREAD``,
        ``PREFETCH``, ``LEAN``, and ``SEGMENTS`` above 1 (the backward's alone; its plans
        pass 1 otherwise)."""
        meta = {
            "BLOCK": self.block,
            "CHUNK": self.chunk,
            "PACK_BITS": self.pack_bits,
            "PER_THREAD": self.per_thread,
            "PREFETCH": self.prefetch,
            "LEAN": self.lean,
        }
        if self.segments > 1:
            meta["SEGMENTS"] = self.segments
        return meta

    def constexprs(self, names: Collection[str]) -> dict[str, int | bool]:
        """The launch constexprs a kernel with constexpr parameters ``names`` takes:
        ``meta()``, with ``SEGMENTS`` (1 too) where the kernel has it."""
        meta = {"SEGMENTS": self.segments, **self.meta()}
        return {name: value for name, value in meta.items() if name in names}

    def to_triton(self) -> triton.Config:
        """This config as Triton's autotuner takes it: ``meta()`` and the launch options."""
        return triton.Config(self.meta(), num_warps=self.num_warps, num_stages=self.num_stages)

    @classmethod
    def from_meta(cls, meta: dict, num_warps: int, num_stages: int) -> KernelConfig:
        """The inverse of ``meta()`` with the launch options."""
        return cls(
            meta["BLOCK"], num_warps, num_stages, meta["CHUNK"], meta["PACK_BITS"],
            meta["PREFETCH"], meta["LEAN"], meta.get("SEGMENTS", 1),
        )  # fmt: skip

    @classmethod
    def from_triton(cls, config: triton.Config) -> KernelConfig:
        """The inverse of ``to_triton``."""
        return cls.from_meta(config.kwargs, config.num_warps, config.num_stages)


def default_config(
    direction: str,
    dtype: torch.dtype,
    op: str = "lif",
    n_steps: int = 32,
    n_neurons: int | None = None,
) -> KernelConfig:
    """The untuned heuristic, from the H100 sweeps in ``results/`` (LIF, PLIF and ALIF over
    the T x N grid and the standard shapes; 52 forward and 42 backward points with T*N >=
    2**22, geometric mean of time / best).

    A thread must hold whole columns of the ``(chunk, block)`` tile, or the row selects
    cross warps: configs with fewer than 4 neurons per thread ran 2-4x slower.

    - fp32 forward: 256 neurons on 2 warps, chunk 8: 2.3% above the best on average, against
      12% for 1024 on 4 warps (up to 3.6x at small N).
    - fp32 backward: 512 neurons on 4 warps. Chunk 8 where the backward keeps parameter
      gradient sums in registers (``learnable`` neurons, PLIF and ALIF: chunk 16 ran 1.5-2x
      slower) or T <= 8 (a 16-step tile would be mostly masked); chunk 16 for the others
      above (LIF: half the membrane checkpoints, 8-12% faster than chunk 8 from T = 16).
    - 16-bit I/O: 8 values per 16-byte vector, so 4 warps need 1024 neurons; chunk 16 at
      this width ran 6x slower (the bf16 sweep). The backward of adaptive neurons (ALIF: a
      second state tile and four parameter sums) on 256 neurons on 2 warps, 4 a thread in
      8-byte vectors: 2.07 ms against 3.37 for 1024 on 4 warps at 32 x 2^23 on an H100
      (``sweep_bwd_bfloat16_32x8388608.csv``; it needs the kernels' vector-width hint).
    - ``prefetch`` in the backward of learnable neurons: their parameter sums keep a warp
      computing long enough that the next chunk's loads, issued ahead, hide under it. ALIF
      (every dtype) on 128 neurons on 2 warps: fp32 forward+backward 1.57 ms against 2.34 for
      the previous default (256 x 2 warps, no prefetch), bf16 1.17 against 1.76; PLIF fp32
      1.46 against 1.55 (H200, 32 x 2^23, ``config_ab_*.csv``).
    - ``n_neurons`` (N of the call): an fp32 config that would launch fewer than
      ``MIN_PROGRAMS`` programs takes a smaller block (``fill_gpu``); the inference forward
      filled to 2 neurons a thread walks T > 16 in prefetched 32-step chunks, the best
      forward of every long sweep (LIF, PLIF, ALIF at 512x8192 and 2048x4096, H100 and
      H200: 1.00-1.01x of the best, against 1.78-2.14x for chunk 8).
    - The fp32 backward filled to 2 neurons a thread walks long T in time segments
      (``in_segments``), as every long sweep's winner did.
    """
    if direction == "bwd" and NEURONS[op].adaptive:
        config = KernelConfig(block=128, num_warps=2, num_stages=1, chunk=8, pack_bits=32,
                              prefetch=True)  # fmt: skip
    elif dtype != torch.float32:
        config = KernelConfig(block=1024, num_warps=4, num_stages=1, chunk=8, pack_bits=32)
    elif direction == "fwd":
        config = fill_gpu(KernelConfig(256, 2, 1, 8, 32), dtype, n_neurons)
        if config.per_thread <= 2 and n_steps > 16:  # filled, T's bucket 32 and up
            return dataclasses.replace(config, chunk=32, prefetch=True)
        return config
    else:
        learnable = NEURONS[op].learnable
        chunk = 8 if learnable or n_steps <= 8 else 16  # T > 8: buckets of 16 up
        config = KernelConfig(block=512, num_warps=4, num_stages=1, chunk=chunk, pack_bits=32,
                              prefetch=learnable)  # fmt: skip
    config = fill_gpu(config, dtype, n_neurons)
    if direction == "bwd":
        return in_segments(config, dtype, n_steps, n_neurons)
    return config


def training_forward_config(
    bwd: KernelConfig, dtype: torch.dtype = torch.float32, n_neurons: int | None = None
) -> KernelConfig:
    """The untuned forward of a training step, paired with the backward config ``bwd``: it
    saves in ``bwd``'s layout (chunk, pack_bits) with 1024 neurons on 4 warps, the launch
    shape every backward config was timed with (``sweep``), in every dtype; for fp32 with
    fewer than ``MIN_PROGRAMS`` programs over ``n_neurons``, a smaller block (``fill_gpu``)."""
    config = KernelConfig(
        block=1024, num_warps=4, num_stages=1, chunk=bwd.chunk, pack_bits=bwd.pack_bits
    )
    return fill_gpu(config, dtype, n_neurons)


def default_for(
    op: str,
    direction: str,
    dtype: torch.dtype,
    n_steps: int,
    n_neurons: int | None,
    bwd: KernelConfig | None = None,
) -> KernelConfig:
    """The config the runtime runs untuned at (T, N): ``training_forward_config`` of ``bwd``
    (``fwd_train``), else ``default_config``; ``n_neurons`` None: not filled to a GPU (the
    interpreter). Every tuning run times it."""
    if direction == "fwd_train":
        return training_forward_config(bwd, dtype, n_neurons)
    return default_config(direction, dtype, op, n_steps, n_neurons)


# Few neurons a call (long sequences, small layers): a block of 1024 neurons launches N/1024
# programs, 8 at N=8192 on 132 SMs, and each program's serial walk over T is then the time.
# An fp32 default below MIN_PROGRAMS programs steps down FILL_LADDER (2 neurons a thread at
# the end) with prefetch where the two tiles fit (PREFETCH_TILE) and lean: the shape of every
# long-sequence winner (``python scripts/fill_eval.py`` scores the rule on the committed
# sweeps). The runtime applies it on GPUs only (``table``). Not 16-bit I/O: fewer than 8
# values a thread ran 3-5x slower on the H200 at every N swept (LIF bf16 forward at
# 512x8192: 0.221 ms on 256/2 against 0.064 on 1024/4,
# ``results/nvidia-h200/sweep_fwd_bfloat16_standard.csv``).
FILL_LADDER = ((1024, 4), (512, 4), (256, 2), (128, 2), (64, 1))
MIN_PROGRAMS = 128


def fill_sizes() -> tuple[int | None, ...]:
    """An N on each rung of ``FILL_LADDER`` (N = MIN_PROGRAMS * block gives that block's
    rung), and None (no N: the default's own shape)."""
    return (None, *(MIN_PROGRAMS * block for block, _ in FILL_LADDER))


def next_pow2(value: int) -> int:
    """The smallest power of two >= ``value`` (1 for ``value`` <= 1): the table's buckets."""
    return 1 << max(int(value) - 1, 0).bit_length()


def fill_gpu(config: KernelConfig, dtype: torch.dtype, n_neurons: int | None) -> KernelConfig:
    """``config`` (fp32, on ``FILL_LADDER``) with the largest smaller block of the ladder that
    launches at least ``MIN_PROGRAMS`` programs over ``n_neurons`` rounded up to a power of
    two (the table's bucket: one config a bucket), the ladder's last if none does, with
    prefetch and lean; else ``config`` itself."""
    shape = config.block, config.num_warps
    if n_neurons is None or dtype != torch.float32 or shape not in FILL_LADDER:
        return config
    n_bucket = next_pow2(n_neurons)
    rung = FILL_LADDER.index(shape)
    while rung + 1 < len(FILL_LADDER) and n_bucket < MIN_PROGRAMS * FILL_LADDER[rung][0]:
        rung += 1
    block, num_warps = FILL_LADDER[rung]
    if block == config.block:
        return config
    filled = dataclasses.replace(config, block=block, num_warps=num_warps, lean=True)
    return dataclasses.replace(filled, prefetch=filled.per_thread * filled.chunk <= PREFETCH_TILE)


# The untuned backward of a long sequence over few neurons walks time in segments: every
# long sweep's winner (LIF, PLIF on the H100 at 01588be; LIF, PLIF, ALIF on the H200 at
# ff89ce5/e241b3c) ran 2 neurons a thread in chunks of 16, in 8 segments at 512x8192 and 16
# at 2048x4096, and in one at 1024x65536 (more segments: 1.29-1.44x of the best there):
# enough segments to bring the programs to about SEGMENT_PROGRAMS, each segment at least
# MIN_SEGMENT_STEPS long. At 512x8192 and 2048x4096 the single walk the defaults ran was
# 1.26-2.28x of the best (``scripts/fill_eval.py`` scores the rule on the committed sweeps).
SEGMENT_PROGRAMS = 1024
MIN_SEGMENT_STEPS = 64


def segments_for(n_steps: int, n_neurons: int, block: int) -> int:
    """The most of ``SEGMENTS`` (else 1) that keeps ``ceil(N / block) * segments`` within
    ``SEGMENT_PROGRAMS`` and ``MIN_SEGMENT_STEPS`` steps a segment, over T and N rounded up
    to powers of two (the table's buckets: one config a bucket)."""
    t_bucket, programs = next_pow2(n_steps), -(-next_pow2(n_neurons) // block)
    fits = [
        s for s in SEGMENTS
        if programs * s <= SEGMENT_PROGRAMS and t_bucket >= MIN_SEGMENT_STEPS * s
    ]  # fmt: skip
    return max(fits, default=1)


def in_segments(
    config: KernelConfig, dtype: torch.dtype, n_steps: int, n_neurons: int | None
) -> KernelConfig:
    """The fp32 backward ``config`` filled to 2 neurons a thread (``fill_gpu``'s last rungs),
    in ``segments_for`` segments of 16-step chunks with prefetch and lean where that is above
    1; else ``config``. ``n_neurons`` None: not on a GPU, as is."""
    if n_neurons is None or dtype != torch.float32 or config.per_thread > 2:
        return config
    segments = segments_for(n_steps, n_neurons, config.block)
    if segments == 1:
        return config
    lean = max(config.lean, 1)  # ALIF's default needs no fill at 128 a block: not lean
    return dataclasses.replace(config, chunk=16, prefetch=True, lean=lean, segments=segments)


# (block, num_warps) with 4 to 16 neurons per thread: the range where the tile's time axis
# stays inside a thread (the heuristic's sweeps, at T*N >= 2**22).
BLOCK_WARPS = [
    (block, warps)
    for block in (256, 512, 1024, 2048)
    for warps in (2, 4, 8)
    if 4 <= block // (32 * warps) <= 16
]


QUICK_BLOCK_WARPS = [(256, 2), (512, 4), (1024, 4), (1024, 8), (2048, 8)]
MICRO_BLOCK_WARPS = [(256, 2), (512, 4), (1024, 4)]
# The backward also tries 2 neurons a thread (more warps an SM for the adaptive neuron's
# second state tile) and ``prefetch`` where a thread's tile is at most PREFETCH_TILE values
# (two chunks of tiles in registers; ALIF's 4 x 8 spilled). At 32 x 2^23 on an H200
# (``scripts/config_ab.py``, ``results/nvidia-h200/config_ab_*.csv``) prefetch took ALIF fp32
# forward+backward from 2.34 to 1.57 ms (128 on 2 warps, chunk 8) and PLIF from 1.55 to 1.45.
BWD_BLOCK_WARPS = [(128, 2)]
PREFETCH_TILE = 32
# Long sequences over few neurons: N / block programs must cover the SMs (T=512, N=8192: a
# block of 64 gives 128 programs, 256 only 32). Fewer than 4 neurons per thread puts the
# tile's time axis across threads (row selects become shuffles): slower at large N, but
# here the chain of each program is the bound, so the GPU decides. One neuron a thread
# (32 on 1 warp) left the space: 3-20x slower than the best in every long sweep, H100 and
# H200, every op and direction (``results/*/sweep_long_*.csv``; cause unknown: its sm_90
# layouts keep whole time columns in a thread, with no shared memory or spills).
LONG_BLOCK_WARPS = [(64, 1), (128, 1), (128, 2), (256, 2)]
# The backward in time segments (``segments``): 2 neurons a thread, chunks 8 and 16, prefetch.
# H200, LIF fp32 forward+backward at 512x8192 (``results/nvidia-h200/split_explore.csv``):
# 64 on 1 warp in 8 segments 0.056 ms against 0.139 for the tuned single walk; 32 on 1 warp
# (1 a thread) ran 10x slower in segments, as without (see LONG_BLOCK_WARPS).
SEGMENT_BLOCK_WARPS = [(64, 1), (128, 2)]
SEGMENTS = (4, 8, 16)
SPACE_SIZES = ("full", "quick", "micro", "long", "segments")


def config_space(
    direction: str, dtype: torch.dtype, size: str = "full", bwd: KernelConfig | None = None
) -> list[KernelConfig]:
    """Every config the tuner tries for one direction and dtype. ``size="quick"``: a slice
    (one stage, chunks 8 and 16); ``"micro"``: the three (block, warps) pairs that won on an
    H100, chunks 8 and 16, 32-step words — for tuning runs with little GPU time; ``"long"``:
    for long sequences over few neurons, small blocks on 1-2 warps, chunks 8 to 32, with and
    without ``prefetch``, 32-step words, the backward also in ``SEGMENTS``, plus the defaults;
    ``"segments"``: the long space, its backward only in segments (and the defaults): a
    long-sequence tuning run with little GPU time (ALIF's long-space tune ran past 250 s).

    The forward sweeps ``num_stages`` 1 and 2 and packs 32 steps per word; the backward
    sweeps the packing width and runs one stage (its loop carries no loads across iterations
    to pipeline), and adds ``BWD_BLOCK_WARPS`` and ``prefetch`` (see there). Each
    prefetching config of a space has its ``lean`` 2 twin (``_with_lean_twins``).
    ``fwd_train`` needs ``bwd``, the backward config it saves for: the forward space's
    launch shapes with ``bwd``'s chunk and pack_bits, and ``training_forward_config``.
    """
    if size not in SPACE_SIZES:
        raise ValueError(f"size must be one of {SPACE_SIZES}, got {size!r}")
    if direction == "fwd_train":
        if bwd is None:
            raise ValueError("config_space('fwd_train') needs the backward config (bwd=)")
        shapes = dict.fromkeys(
            dataclasses.replace(c, chunk=bwd.chunk, pack_bits=bwd.pack_bits)
            for c in [training_forward_config(bwd), *config_space("fwd", dtype, size)]
        )
        return [c for c in shapes if c.block * c.chunk <= 16384]
    if size == "long":
        return _long_space(direction, dtype)
    if size == "segments":  # the long space's backward in segments, and the defaults
        long = _long_space(direction, dtype)
        if direction != "bwd":
            return long
        return list(dict.fromkeys([c for c in long if c.segments > 1] + defaults(direction, dtype)))
    full = size == "full"
    configs = []
    stages = (1, 2) if direction == "fwd" and full else (1,)
    packs = (32,) if direction == "fwd" or size == "micro" else (8, 16, 32)
    chunks = (4, 8, 16) if full else (8, 16)
    if full and direction == "fwd":
        chunks += (32,)  # a whole 32-step word of loads in flight (small blocks only)
    pairs = {"full": BLOCK_WARPS, "quick": QUICK_BLOCK_WARPS, "micro": MICRO_BLOCK_WARPS}[size]
    prefetch = (False,)
    if direction == "bwd":
        pairs = [*pairs, *BWD_BLOCK_WARPS]
        prefetch = (False, True)
    for (block, num_warps), num_stages, chunk, pack_bits, ahead in itertools.product(
        pairs, stages, chunks, packs, prefetch
    ):
        if pack_bits % chunk or block * chunk > 16384:  # larger tiles spill registers
            continue
        config = KernelConfig(block, num_warps, num_stages, chunk, pack_bits, ahead)
        if not ahead or config.per_thread * chunk <= PREFETCH_TILE:
            configs.append(config)
    return _with_lean_twins(direction, configs)


def _with_lean_twins(direction: str, configs: list[KernelConfig]) -> list[KernelConfig]:
    """``configs``, each one with prefetch followed by its lean-2 twin (two chunks an
    iteration, so no tile copies; the backward's level 2 also drops instructions without
    prefetch), but for the backward's 32-step chunks (~50 s of compile for two unrolled
    chunks)."""
    out = []
    for config in configs:
        out.append(config)
        if config.prefetch and config.lean < 2 and (config.chunk <= 16 or direction != "bwd"):
            out.append(dataclasses.replace(config, lean=2))
    return list(dict.fromkeys(out))


def _long_space(direction: str, dtype: torch.dtype) -> list[KernelConfig]:
    """``config_space(size="long")``: ``LONG_BLOCK_WARPS`` x chunks 8, 16 (and 32 forward) x
    prefetch off and on, one stage, 32-step words, all ``lean``; the backward also in
    ``SEGMENTS`` on ``SEGMENT_BLOCK_WARPS`` (chunks 8 and 16, prefetch); then the direction's
    ``defaults`` (every op, every T regime and small-layer rung), so that the tuner always
    times them. The backward's 32-step chunk compiles in ~25 s (the unrolled recompute and
    reverse step), 5x the 16-step one: only one such config, 64 neurons on a warp with
    prefetch (the 16-step winner's shape)."""
    chunks = (8, 16, 32) if direction == "fwd" else (8, 16)
    configs = [
        KernelConfig(block, num_warps, 1, chunk, 32, prefetch, lean=True)
        for (block, num_warps), chunk, prefetch in itertools.product(
            LONG_BLOCK_WARPS, chunks, (False, True)
        )
    ]
    if direction == "bwd":
        configs.append(KernelConfig(64, 1, 1, 32, 32, True, lean=True))
        configs += [
            KernelConfig(block, num_warps, 1, chunk, 32, True, True, segments)
            for (block, num_warps), chunk, segments in itertools.product(
                SEGMENT_BLOCK_WARPS, (8, 16), SEGMENTS
            )
        ]
    return _with_lean_twins(direction, list(dict.fromkeys(configs + defaults(direction, dtype))))


def defaults(direction: str, dtype: torch.dtype) -> list[KernelConfig]:
    """Every default of the direction: each op, T in each of its regimes (<= 8, <= 16,
    above, and long enough for each number of ``SEGMENTS``), and each rung of the
    small-layer rule (``fill_sizes``) and the smallest N bucket (the most segments)."""
    steps = (1, 16, 32, *(MIN_SEGMENT_STEPS * s for s in SEGMENTS))
    configs = itertools.product(NEURONS, steps, (*fill_sizes(), 1024))
    return list(dict.fromkeys(default_config(direction, dtype, *c) for c in configs))
