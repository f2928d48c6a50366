"""Ahead-of-time compilation of the kernels for a GPU target, without a GPU.

The interpreter accepts code the compiler rejects, so CI compiles the kernels for
``GPUTarget("cuda", 90, 32)``: every switch variant of the neuron kernels and every variant of
the spike unpack kernel (``tether.spike_memory``), the launch configs the runtime can pick
(the defaults and every shipped winner outside the tuning space, and a fixed sample of
the space) and, as a separate job, every config of the space (most winners). Compiling
needs real ``JITFunction``s, so it must run in a process without ``TRITON_INTERPRET``:
``python -m tether.kernels.aot [--configs | --space]`` compiles the switch variants (or
those configs) on every core and prints one JSON object ``{variant id: "ok" | error}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import itertools
import json
import multiprocessing
import os
import random
import re
import sys
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from tether.kernels import pool, unpack
from tether.kernels.neuron import neuron_bwd_kernel, neuron_fwd_kernel
from tether.neurons import NEURONS, PARAMS, NeuronDef
from tether.tuning.space import (
    DTYPES,
    PACK_DTYPES,
    KernelConfig,
    config_space,
    default_config,
    defaults,
    fill_sizes,
    training_forward_config,
)
from tether.tuning.table import TABLE_PATH, load_table

HOPPER = GPUTarget("cuda", 90, 32)
_POINTER_TYPES = {torch.float32: "*fp32", torch.float16: "*fp16", torch.bfloat16: "*bf16"}
_PACK_TYPES = {8: "*i8", 16: "*i16", 32: "*i32"}


# Pointers in the input dtype; every other pointer but the packed spikes is float32.
_IO_POINTERS = {
    "x_ptr", "spikes_ptr", "h_seq_ptr", "a_seq_ptr", "grad_x_ptr",
    "grad_spikes_ptr", "grad_h_ptr", "grad_a_seq_ptr", "out_ptr", "grad_out_ptr",
}  # fmt: skip


def _learns(switches: dict) -> bool:
    """Whether backward ``switches`` write any parameter gradient row."""
    return any(switches[f"{name.upper()}_GRAD_ROW"] >= 0 for name in (*PARAMS, "alpha"))


# When the kernel uses each optional pointer; the runtime passes x for an unused one
# (``plans._ptr``), so it compiles with x's dtype: a branch the switches should compile away
# but do not then fails to type-check, as it would on the GPU.
_USED_IF = {
    "h_seq_ptr": lambda c: c["STORE_H"],
    "a_seq_ptr": lambda c: c["STORE_A"],
    "v_init_ptr": lambda c: c["HAS_V_INIT"],
    "a_init_ptr": lambda c: c["HAS_A_INIT"],
    "v_final_ptr": lambda c: c["STORE_FINAL"],
    "a_final_ptr": lambda c: c["STORE_FINAL"] and c["ADAPTIVE"],
    "packed_ptr": lambda c: c.get("SAVE_FOR_BACKWARD", True),
    "ckpt_v_ptr": lambda c: c.get("SAVE_FOR_BACKWARD", True) and not c.get("V_STARTS_AT_ZERO"),
    "ckpt_a_ptr": lambda c: (
        c.get("SAVE_FOR_BACKWARD", True) and c["ADAPTIVE"] and not c.get("A_STARTS_AT_ZERO")
    ),
    "grad_spikes_ptr": lambda c: c["HAS_GRAD_SPIKES"],
    "grad_h_ptr": lambda c: c["HAS_GRAD_H"],
    "grad_a_seq_ptr": lambda c: c["HAS_GRAD_A_SEQ"],
    "grad_v_final_ptr": lambda c: c["HAS_GRAD_V_FINAL"],
    "grad_a_final_ptr": lambda c: c["HAS_GRAD_A_FINAL"],
    "grad_a_init_ptr": lambda c: c["ADAPTIVE"],
    "grad_params_ptr": _learns,
    "maps_ptr": lambda c: c["SPLIT"] > 0,
    "offsets_ptr": lambda c: c.get("OFFSETS", True),  # max-pool's forward: out stands in
}


def _signature(kernel, dtype: torch.dtype, config: KernelConfig, constexprs: dict) -> dict:
    signature = {}
    for name in kernel.arg_names:
        if name in constexprs:
            signature[name] = "constexpr"
        elif name in _USED_IF and not _USED_IF[name](constexprs):
            signature[name] = _POINTER_TYPES[dtype]
        elif name == "packed_ptr":
            signature[name] = _PACK_TYPES[config.pack_bits]
        elif name == "offsets_ptr":
            signature[name] = "*u8"
        elif name in _IO_POINTERS:
            signature[name] = _POINTER_TYPES[dtype]
        elif name.endswith("_ptr"):
            signature[name] = "*fp32"
        elif name.startswith("n_") and constexprs.get("WIDE"):
            signature[name] = "i64"  # max-pool's sizes of 2^31 elements or more
        elif name.endswith("_stride") or name.startswith("n_") or name == "group_size":
            signature[name] = "i32"
        else:  # decay_v, threshold, decay_a, beta, alpha: pointers when *_IS_TENSOR
            flag = f"{name.upper()}_IS_TENSOR"
            signature[name] = "*fp32" if constexprs.get(flag) else "fp32"
    return signature


def compile_kernel(
    direction: str,
    dtype: torch.dtype,
    config: KernelConfig,
    switches: dict[str, object],
    target: GPUTarget = HOPPER,
    aligned: bool = False,
):
    """Compile the ``direction`` (a key of ``KERNELS``) kernel with ``switches`` (its
    constexprs other than the config's) for ``target``; returns the compiled kernel or
    raises. ``aligned``: pointers and ``n_neurons`` specialized as multiples of 16, as the
    runtime's JIT specializes the usual call (vector loads; a layout like the GPU's)."""
    kernel = KERNELS[direction]
    constexprs = {**switches, **config.constexprs(kernel.arg_names)}
    constexprs = {name: value for name, value in constexprs.items() if name in kernel.arg_names}
    missing = [
        name
        for name, param in zip(kernel.arg_names, kernel.params)
        if param.is_constexpr and name not in constexprs
    ]
    if missing:
        raise ValueError(f"compile_kernel: switches missing for {missing}")
    signature = _signature(kernel, dtype, config, constexprs)
    attrs = {
        (i,): [["tt.divisibility", 16]]
        for i, name in enumerate(kernel.arg_names)
        if aligned and name in signature and name not in constexprs
        and (signature[name].startswith("*") or name == "n_neurons")
    }  # fmt: skip
    source = ASTSource(kernel, signature, constexprs, attrs)
    options = {"num_warps": config.num_warps, "num_stages": config.num_stages}
    return triton.compile(source, target=target, options=options)


def _kernel_neurons() -> list[NeuronDef]:
    """The neurons the kernels tell apart: the first of each (ADAPTIVE, parameters) pair
    (PLIF compiles as LIF with vector parameters)."""
    first: dict[tuple, NeuronDef] = {}
    for neuron in NEURONS.values():
        first.setdefault((neuron.adaptive, neuron.params), neuron)
    return list(first.values())


KERNEL_NEURONS = _kernel_neurons()
WIDEST = max(NEURONS.values(), key=lambda n: len(n.params))  # its switches cover the others'
TUNED_DTYPES = ("float32", "bfloat16")
# Configs drawn from each (direction, dtype) space by --configs (the test command), so that
# it compiles some of every space; the exhaustive job compiles every config of the spaces.
SAMPLE_PER_SPACE = 1


def _is_tensor(neuron: NeuronDef, tensors: bool) -> dict[str, bool]:
    return {f"{name.upper()}_IS_TENSOR": tensors and name in neuron.params for name in PARAMS}


def fwd_switches(neuron: NeuronDef, soft_reset: bool, save: bool, i: int) -> dict:
    """Forward constexprs; ``i`` varies the remaining flags across variants."""
    adaptive = "a" in neuron.states
    return dict(
        **_is_tensor(neuron, i % 2 == 0),
        ADAPTIVE=neuron.adaptive,
        SOFT_RESET=soft_reset,
        HAS_V_INIT=i % 3 != 0,
        HAS_A_INIT=adaptive and i % 3 != 0,
        STORE_H=i % 2 == 1,
        STORE_A=adaptive and i % 2 == 1,
        SAVE_FOR_BACKWARD=save,
        STORE_FINAL=i % 4 != 3,
        EVEN_STEPS=i % 3 == 1,
    )


def bwd_switches(neuron: NeuronDef, soft_reset: bool, detach: bool, surrogate: int, i: int) -> dict:
    """Backward constexprs; ``i`` varies the remaining flags across variants."""
    tensors = i % 2 == 0
    adaptive = "a" in neuron.states
    rows = iter(range(len(PARAMS) + 1))
    grad_rows = {
        f"{name.upper()}_GRAD_ROW": next(rows) if tensors and name in neuron.params else -1
        for name in PARAMS
    }
    return dict(
        **_is_tensor(neuron, tensors),
        ALPHA_IS_TENSOR=tensors,
        ADAPTIVE=neuron.adaptive,
        SOFT_RESET=soft_reset,
        DETACH_RESET=detach,
        SURROGATE=surrogate,
        HAS_GRAD_SPIKES=True,
        HAS_GRAD_H=i % 3 == 0,
        HAS_GRAD_A_SEQ=adaptive and i % 3 == 0,
        HAS_GRAD_V_FINAL=i % 2 == 1,
        HAS_GRAD_A_FINAL=adaptive and i % 2 == 1,
        V_STARTS_AT_ZERO=i % 4 == 2,
        A_STARTS_AT_ZERO=adaptive and i % 4 in (1, 2),
        EVEN_STEPS=False,
        SPLIT=0,
        **grad_rows,
        ALPHA_GRAD_ROW=next(rows) if tensors else -1,
        # not at i=0: config_variant's (the table's); one sum, runs, residues (i % 8 == 6)
        PROGRAM_SUMS=(1, 4, 64)[i // 4 % 3] if tensors and i % 4 == 2 else 0,
        PERIODIC_SUMS=tensors and i % 8 == 6,
        SUM_SEGMENTS=False,  # SPLIT 0 here: the split variants set it
    )


Variant = tuple[str, str, torch.dtype, KernelConfig, dict]
KERNELS = {
    "fwd": neuron_fwd_kernel,
    "bwd": neuron_bwd_kernel,
    "fwd_train": neuron_fwd_kernel,  # the forward of a training step: saves for the backward
    "unpack": unpack.unpack_spikes_kernel,
    "pool_fwd": pool.max_pool_fwd_kernel,
    "pool_bwd": pool.max_pool_bwd_kernel,
}
KERNEL_DIRECTIONS = ("fwd", "bwd")  # the spaces of fwd_train are the forward's, re-chunked


def unpack_variants() -> Iterator[Variant]:
    """The unpack kernel as the runtime launches it: whole words for every packing width and
    spike dtype, and the shorter tiles of sequences shorter than a word (fp32, 32-bit)."""
    cases = [(*case, case[1]) for case in itertools.product(DTYPES.items(), PACK_DTYPES)]
    cases += [(("float32", torch.float32), 32, rows) for rows in (1, 2, 4, 8, 16)]
    for (dtype_name, dtype), pack_bits, rows in cases:
        block = unpack.ELEMENTS_PER_PROGRAM // rows
        config = KernelConfig(block, unpack.NUM_WARPS, 1, 1, pack_bits)
        yield f"unpack-{dtype_name}-{pack_bits}-{rows}", "unpack", dtype, config, {"ROWS": rows}


def pool_variants() -> Iterator[Variant]:
    """The max-pool kernels (``tether.max_pool2d``): each dtype and memory order, 2x2, 2x3
    and 4x5 windows (4, 2 and 1 offsets a byte), 32- and 64-bit offsets, the forward with
    and without window offsets."""
    config = KernelConfig(pool.BLOCK, pool.NUM_WARPS, 1, 1, 32)
    names = list(DTYPES)
    cases = itertools.product(names, (False, True), ((2, 2), (2, 3), (4, 5)), (False, True))
    for i, (dtype_name, channels_last, (kh, kw), wide) in enumerate(cases):
        per_byte = pool.offsets_per_byte((kh, kw))
        common = {"KH": kh, "KW": kw, "CHANNELS_LAST": channels_last, "PER_BYTE": per_byte}
        name = (
            f"{dtype_name}-{'cl' if channels_last else 'c'}-{kh}x{kw}-{'wide' if wide else 'i32'}"
        )
        fwd = {**common, "OFFSETS": i % 2 == 0, "WIDE": wide}
        yield f"pool_fwd-{name}", "pool_fwd", DTYPES[dtype_name], config, fwd
        yield f"pool_bwd-{name}", "pool_bwd", DTYPES[dtype_name], config, {**common, "WIDE": wide}


def switch_variants() -> Iterator[Variant]:
    """Every neuron/reset/detach/surrogate/save combination, dtypes and flags varied, each
    without and with ``PREFETCH`` and once ``LEAN`` (prefetching every other), a quarter
    of them at lean level 2 too (one backward also in 32-step chunks: bit 31 of a word),
    then the unpack and max-pool kernels' variants."""
    names = list(DTYPES)
    families = (
        ("fwd", itertools.product(KERNEL_NEURONS, (False, True), (False, True)), fwd_switches),
        ("bwd", itertools.product(KERNEL_NEURONS, (False, True), (False, True), (0, 1, 2)),
         bwd_switches),
    )  # fmt: skip
    for direction, cases, switches in families:
        for i, (neuron, *flags) in enumerate(cases):
            dtype = DTYPES[names[i % 3]]
            config = default_config(direction, dtype, neuron.op)
            name = f"{direction}-{names[i % 3]}-{neuron.op}-{tuple(flags)}"
            yield name, direction, dtype, config, switches(neuron, *flags, i)
            prefetching = dataclasses.replace(config, prefetch=True)
            yield f"{name}-prefetch", direction, dtype, prefetching, switches(neuron, *flags, i)
            lean = dataclasses.replace(config, prefetch=i % 2 == 0, lean=True)
            yield f"{name}-lean", direction, dtype, lean, switches(neuron, *flags, i)
            if i % 4 == 1:  # lean level 2 (the backward's T a multiple of CHUNK or not)
                leaner = dataclasses.replace(config, prefetch=i % 8 == 1, lean=2)
                flagged = switches(neuron, *flags, i)
                if direction == "bwd":
                    flagged["EVEN_STEPS"] = i % 3 != 0
                yield f"{name}-lean2", direction, dtype, leaner, flagged
                if direction == "bwd" and i == 1:  # a 32-step chunk tests bit 31 (_bit)
                    whole_word = KernelConfig(128, 2, 1, 32, 32, prefetch=False, lean=2)
                    yield f"{name}-lean2-chunk32", direction, dtype, whole_word, flagged
            if direction == "bwd" and i % 3 == 0:  # both passes of a backward in segments
                split = dataclasses.replace(lean, segments=4)
                passes = {**switches(neuron, *flags, i), "SPLIT": 1 + i // 3 % 2,
                          "PROGRAM_SUMS": 0, "PERIODIC_SUMS": False}  # fmt: skip
                passes["SUM_SEGMENTS"] = _learns(passes)  # SPLIT 1 zeroes the counters
                yield f"{name}-split", direction, dtype, split, passes
    yield from unpack_variants()
    yield from pool_variants()


def config_variant(
    direction: str, dtype_name: str, config: KernelConfig, neuron: NeuronDef = WIDEST
) -> Variant:
    """``config`` on ``neuron``'s switches, by default the widest neuron's (forwards save for
    the backward)."""
    if direction == "bwd":  # as the runtime launches it (plans.backward_plan)
        switches = bwd_switches(neuron, False, True, 0, 0)
        split = config.segments > 1
        switches.update(SPLIT=2 if split else 0, SUM_SEGMENTS=split and _learns(switches))
    else:
        switches = fwd_switches(neuron, False, True, 0)
    name = f"{direction}-{dtype_name}-{config}"
    if neuron is not WIDEST:
        name = f"{direction}-{dtype_name}-{neuron.op}-{config}"
    return name, direction, DTYPES[dtype_name], config, switches


def space_variants() -> Iterator[Variant]:
    """Every config of the full and long tuning spaces (tuned dtypes: float32 and
    bfloat16), each once."""
    seen = set()
    for direction, dtype_name in itertools.product(KERNEL_DIRECTIONS, TUNED_DTYPES):
        for size in ("full", "long"):
            for config in config_space(direction, DTYPES[dtype_name], size):
                variant = config_variant(direction, dtype_name, config)
                if variant[0] not in seen:
                    seen.add(variant[0])
                    yield variant


def runtime_variants() -> list[Variant]:
    """The configs the runtime can pick: every default (``space.defaults``), its training
    forward (for few neurons too) and every shipped winner; each once."""
    chosen: dict[str, Variant] = {}

    def add(direction: str, dtype_name: str, config: KernelConfig) -> None:
        variant = config_variant(direction, dtype_name, config)
        chosen.setdefault(variant[0], variant)

    for direction, dtype_name in itertools.product(KERNEL_DIRECTIONS, TUNED_DTYPES):
        dtype = DTYPES[dtype_name]
        for default in defaults(direction, dtype):
            add(direction, dtype_name, default)
            if direction == "bwd":
                for n_neurons in fill_sizes():
                    add("fwd_train", dtype_name, training_forward_config(default, dtype, n_neurons))
    for entry in load_table(TABLE_PATH):
        add(entry["direction"], entry["dtype"], KernelConfig(**entry["config"]))
    return list(chosen.values())


def config_variants() -> list[Variant]:
    """What ``--configs`` (the test command) compiles: the configs the runtime can pick
    (``runtime_variants``) that are not in the tuning space, whose every config the
    exhaustive job compiles (``space_variants``: most winners), plus ``SAMPLE_PER_SPACE``
    configs of each (direction, dtype) space, full and long, drawn with a fixed seed."""
    in_space = {variant[0] for variant in space_variants()}
    chosen = {v[0]: v for v in runtime_variants() if v[0] not in in_space}
    for direction, dtype_name in itertools.product(KERNEL_DIRECTIONS, TUNED_DTYPES):
        dtype = DTYPES[dtype_name]
        for size in ("full", "long"):
            draw = random.Random(f"{direction}-{dtype_name}" + ("-long" if size == "long" else ""))
            for config in draw.sample(config_space(direction, dtype, size), SAMPLE_PER_SPACE):
                variant = config_variant(direction, dtype_name, config)
                chosen.setdefault(variant[0], variant)
    return list(chosen.values())


def compile_variants(variants: list[Variant]) -> dict[str, str]:
    """Compile each variant; ``{id: "ok" | the error}`` (every failure, not just the first)."""
    results = {}
    for name, direction, dtype, config, switches in variants:
        try:
            compile_kernel(direction, dtype, config, switches)
            results[name] = "ok"
        except Exception as err:
            results[name] = f"{type(err).__name__}: {str(err)[-400:]}"
    return results


def compile_in_parallel(variants: list[Variant], jobs: int) -> dict[str, str]:
    """``compile_variants`` over ``jobs`` fresh processes (Triton compiles on one core)."""
    jobs = max(1, min(jobs, len(variants)))
    if jobs == 1:
        return compile_variants(variants)
    shares = [variants[i::jobs] for i in range(jobs)]
    spawn = multiprocessing.get_context("spawn")  # no forked copy of a parent's Triton state
    with ProcessPoolExecutor(jobs, mp_context=spawn) as pool:
        return {k: v for result in pool.map(compile_variants, shares) for k, v in result.items()}


_BLOCKED = re.compile(
    r"#ttg.blocked<\{sizePerThread = \[(\d+), (\d+)\], threadsPerWarp = \[(\d+), \d+\], "
    r"warpsPerCTA = \[(\d+), \d+\]"
)


def tile_layouts() -> dict[str, object]:
    """ALIF's kernels at chunk 8 on the launch shapes of the defaults and winners, fp32 and
    bf16: ``{"DIRECTION-DTYPE-BLOCK-WARPS": [[size_t, size_n, threads_t, warps_t], ...]}`` (the
    2-D blocked layouts of the compiled TTGIR) and ``{"shared-...": bytes of shared memory}``."""
    out: dict[str, object] = {}
    alif = NEURONS["alif"]
    for direction, dtype in itertools.product(("fwd", "bwd"), (torch.float32, torch.bfloat16)):
        switches = (
            fwd_switches(alif, False, True, 0)
            if direction == "fwd"
            else bwd_switches(alif, False, True, 0, 0)
        )
        for block, warps in ((128, 2), (256, 2), (512, 4), (1024, 4), (1024, 8)):
            config = KernelConfig(block, warps, 1, 8, 32)
            kernel = compile_kernel(direction, dtype, config, switches, aligned=True)
            name = f"{direction}-{dtype}-{block}-{warps}"
            out[f"shared-{name}"] = kernel.metadata.shared
            found = _BLOCKED.findall(kernel.asm["ttgir"])
            out[name] = [list(map(int, layout)) for layout in found]
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--configs", action="store_true", help="picks off the space, a sample")
    which.add_argument("--space", action="store_true", help="every config of the space")
    which.add_argument("--layouts", action="store_true", help="the tiles' layouts (JSON)")
    parser.add_argument("--jobs", type=int, default=os.cpu_count(), help="processes")
    args = parser.parse_args(argv)
    if args.layouts:
        json.dump(tile_layouts(), sys.stdout)
        return 0
    if args.space:
        variants = list(space_variants())
    elif args.configs:
        variants = config_variants()
    else:
        variants = list(switch_variants())
    json.dump(compile_in_parallel(variants, args.jobs), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
