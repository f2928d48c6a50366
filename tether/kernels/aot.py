"""Ahead-of-time compilation of the neuron kernels for a GPU target, without a GPU.

The interpreter accepts code the compiler rejects, so CI compiles every kernel variant
(and every config of the tuning space) for ``GPUTarget("cuda", 90, 32)``. Compiling needs
real ``JITFunction``s, so it must run in a process without ``TRITON_INTERPRET``:
``python -m tether.kernels.aot [--space]`` compiles the switch variants (or the tuning
space) and prints one JSON object ``{variant id: "ok" | error}``.
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
from collections.abc import Iterator

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from tether.kernels.neuron import neuron_bwd_kernel, neuron_fwd_kernel
from tether.tuning.space import DTYPES, KernelConfig, config_space, default_config

HOPPER = GPUTarget("cuda", 90, 32)
_POINTER_TYPES = {torch.float32: "*fp32", torch.float16: "*fp16", torch.bfloat16: "*bf16"}
_PACK_TYPES = {8: "*i8", 16: "*i16", 32: "*i32"}


# Pointers in the input dtype; every other pointer but the packed spikes is float32.
_IO_POINTERS = {
    "x_ptr", "spikes_ptr", "h_seq_ptr", "a_seq_ptr", "grad_x_ptr",
    "grad_spikes_ptr", "grad_h_ptr", "grad_a_seq_ptr",
}  # fmt: skip


def _signature(kernel, dtype: torch.dtype, config: KernelConfig, constexprs: dict) -> dict:
    signature = {}
    for name in kernel.arg_names:
        if name in constexprs:
            signature[name] = "constexpr"
        elif name == "packed_ptr":
            signature[name] = _PACK_TYPES[config.pack_bits]
        elif name in _IO_POINTERS:
            signature[name] = _POINTER_TYPES[dtype]
        elif name.endswith("_ptr"):
            signature[name] = "*fp32"
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
):
    """Compile the ``direction`` ("fwd"|"bwd") kernel with ``switches`` (its constexprs
    other than the config's) for ``target``; returns the compiled kernel or raises."""
    kernel = neuron_fwd_kernel if direction == "fwd" else neuron_bwd_kernel
    constexprs = {
        **switches,
        "BLOCK": config.block,
        "CHUNK": config.chunk,
        "PACK_BITS": config.pack_bits,
    }
    missing = [
        name
        for name, param in zip(kernel.arg_names, kernel.params)
        if param.is_constexpr and name not in constexprs
    ]
    if missing:
        raise ValueError(f"compile_kernel: switches missing for {missing}")
    source = ASTSource(kernel, _signature(kernel, dtype, config, constexprs), constexprs)
    options = {"num_warps": config.num_warps, "num_stages": config.num_stages}
    return triton.compile(source, target=target, options=options)


def fwd_switches(adaptive: bool, soft_reset: bool, save: bool, i: int) -> dict:
    """Forward constexprs; ``i`` varies the remaining flags across variants."""
    tensors = i % 2 == 0
    return dict(
        DECAY_V_IS_TENSOR=tensors,
        THRESHOLD_IS_TENSOR=tensors,
        DECAY_A_IS_TENSOR=tensors and adaptive,
        BETA_IS_TENSOR=tensors and adaptive,
        ADAPTIVE=adaptive,
        SOFT_RESET=soft_reset,
        HAS_V_INIT=i % 3 != 0,
        HAS_A_INIT=adaptive and i % 3 != 0,
        STORE_H=i % 2 == 1,
        STORE_A=adaptive and i % 2 == 1,
        SAVE_FOR_BACKWARD=save,
        STORE_FINAL=i % 4 != 3,
        EVEN_STEPS=i % 3 == 1,
    )


def bwd_switches(adaptive: bool, soft_reset: bool, detach: bool, surrogate: int, i: int) -> dict:
    """Backward constexprs; ``i`` varies the remaining flags across variants."""
    tensors = i % 2 == 0
    rows = iter(range(5))
    return dict(
        DECAY_V_IS_TENSOR=tensors,
        THRESHOLD_IS_TENSOR=tensors,
        DECAY_A_IS_TENSOR=tensors and adaptive,
        BETA_IS_TENSOR=tensors and adaptive,
        ALPHA_IS_TENSOR=tensors,
        ADAPTIVE=adaptive,
        SOFT_RESET=soft_reset,
        DETACH_RESET=detach,
        SURROGATE=surrogate,
        HAS_GRAD_SPIKES=True,
        HAS_GRAD_H=i % 3 == 0,
        HAS_GRAD_A_SEQ=adaptive and i % 3 == 0,
        HAS_GRAD_V_FINAL=i % 2 == 1,
        HAS_GRAD_A_FINAL=adaptive and i % 2 == 1,
        DECAY_V_GRAD_ROW=next(rows) if tensors else -1,
        THRESHOLD_GRAD_ROW=next(rows) if tensors else -1,
        DECAY_A_GRAD_ROW=next(rows) if tensors and adaptive else -1,
        BETA_GRAD_ROW=next(rows) if tensors and adaptive else -1,
        ALPHA_GRAD_ROW=next(rows) if tensors else -1,
    )


Variant = tuple[str, str, torch.dtype, KernelConfig, dict]


def switch_variants() -> Iterator[Variant]:
    """Every neuron/reset/detach/surrogate/save combination, dtypes and flags varied."""
    names = list(DTYPES)
    families = (
        ("fwd", itertools.product((False, True), repeat=3), fwd_switches),
        ("bwd", itertools.product((False, True), (False, True), (False, True), (0, 1, 2)),
         bwd_switches),
    )  # fmt: skip
    for direction, cases, switches in families:
        for i, case in enumerate(cases):
            dtype = DTYPES[names[i % 3]]
            config = default_config(direction, dtype)
            yield f"{direction}-{names[i % 3]}-{case}", direction, dtype, config, switches(*case, i)


def space_variants() -> Iterator[Variant]:
    """Every config of the tuning space, on the ALIF variant (the superset of switches)."""
    for direction in ("fwd", "bwd"):
        for dtype_name, dtype in DTYPES.items():
            if dtype_name == "float16":
                continue  # tuned dtypes: float32 and bfloat16
            for config in config_space(direction, dtype):
                switches = (
                    fwd_switches(True, False, True, 0)
                    if direction == "fwd"
                    else bwd_switches(True, False, True, 0, 0)
                )
                yield f"{direction}-{dtype_name}-{config}", direction, dtype, config, switches


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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--space", action="store_true", help="compile the tuning space")
    args = parser.parse_args(argv)
    variants = space_variants() if args.space else switch_variants()
    json.dump(compile_variants(list(variants)), sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
