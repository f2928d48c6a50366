"""Ahead-of-time compilation of the neuron kernels for a GPU target, without a GPU.

The interpreter accepts code the compiler rejects, so CI compiles every kernel variant
(and every config of the tuning space) for ``GPUTarget("cuda", 90, 32)`` with this helper.
"""

from __future__ import annotations

import torch
import triton
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource

from tether.kernels.neuron import neuron_bwd_kernel, neuron_fwd_kernel
from tether.tuning.space import KernelConfig

HOPPER = GPUTarget("cuda", 90, 32)
_POINTER_TYPES = {torch.float32: "*fp32", torch.float16: "*fp16", torch.bfloat16: "*bf16"}
_PACK_TYPES = {8: "*i8", 16: "*i16", 32: "*i32"}


def _signature(kernel, dtype: torch.dtype, config: KernelConfig, constexprs: dict) -> dict:
    io_type = _POINTER_TYPES[dtype]
    signature = {}
    for name in kernel.arg_names:
        if name in constexprs:
            signature[name] = "constexpr"
        elif name == "packed_ptr":
            signature[name] = _PACK_TYPES[config.pack_bits]
        elif name in ("x_ptr", "spikes_ptr", "h_seq_ptr", "a_seq_ptr", "grad_x_ptr") or (
            name.startswith("grad_") and name.endswith("seq_ptr")
        ):
            signature[name] = io_type
        elif name == "grad_spikes_ptr" or name == "grad_h_ptr":
            signature[name] = io_type
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
