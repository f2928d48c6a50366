"""Launch a ``@triton.jit`` kernel with little host time per call.

``kernel[grid](*args, **constexprs)`` binds and specializes every argument on each call
(~50 for the neuron kernels), which costs more host time than a small neuron layer takes on
the GPU. ``Launcher`` keeps the compiled binary of each specialization and launches it
directly; the first call of a specialization goes through ``kernel[grid]`` (compiling if
needed) and returns what Triton built, so the binary is the one Triton would have picked.

The cache key holds everything Triton specializes on, and more: every constexpr, the
launch options, each tensor's dtype and 16-byte alignment, each int's class (== 1,
divisible by 16, fits in 32 bits) and the type of every other argument. A finer key only
costs an extra first call; it can never pick a binary built for other arguments.
Under ``TRITON_INTERPRET=1`` there is no binary: every call goes through ``kernel[grid]``.

A binary is launched through PyTorch's static CUDA launcher (``direct_launch``: the C++
launcher inductor uses for Triton binaries), which skips Triton's Python around its own
launcher (current device and stream, launch hooks, scratch allocation): ~8 us of host time
a launch on an H100 machine at 83d90fb (LIF fwd+bwd, two launches, 200.5 -> 184.6 us,
``scripts/host_breakdown.py``). A binary it cannot launch goes through Triton's.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch

from tether.kernels import INTERPRET


def arg_class(arg: object) -> object:
    """What Triton can specialize on in one runtime argument."""
    if isinstance(arg, torch.Tensor):
        return arg.dtype, arg.data_ptr() % 16 == 0
    if isinstance(arg, bool):
        return bool
    if isinstance(arg, int):
        return arg == 1, arg % 16 == 0, arg.bit_length() < 32, arg < 0
    return type(arg)


# Triton's scalar types as the static launcher's one-character codes (pointers: "O"); the
# others (booleans, 16-bit floats: Triton packs them its own way) go through Triton.
_TYPE_CODES = {
    "i8": "b", "i16": "h", "i32": "i", "i64": "l", "u8": "B", "u16": "H", "u32": "I",
    "u64": "K", "fp32": "f", "fp64": "d",
}  # fmt: skip


def direct_launch(compiled, n_args: int, device: int) -> Callable | None:
    """``run(grid, args)`` launching Triton's ``compiled`` binary, loaded on CUDA device
    ``device``, on its current stream, with ``args`` (the ``n_args`` runtime arguments
    ``kernel[grid]`` took) through ``torch._C._StaticCudaLauncher``; None if this PyTorch
    has no such launcher or the binary needs what it does not do (clusters, scratch memory,
    PDL, cooperative launch, launch hooks, tensor descriptors). Arguments Triton specialized
    into constants (None, 1) are dropped, as Triton's own launcher does. Launch hooks set
    after this (a profiler's) are not called: set them first, or ``Launcher.direct = False``."""
    launch_kernel = getattr(getattr(torch._C, "_StaticCudaLauncher", None), "_launch_kernel", None)
    meta, src = getattr(compiled, "metadata", None), getattr(compiled, "src", None)
    if launch_kernel is None or meta is None or not hasattr(src, "signature"):
        return None
    import triton

    runtime = triton.knobs.runtime
    hooks = (runtime.launch_enter_hook, runtime.launch_exit_hook)
    if any(h is not None and getattr(h, "calls", True) for h in hooks):  # None or HookChain
        return None
    cluster = getattr(meta, "cluster_dims", (1, 1, 1))
    if getattr(meta, "num_ctas", 1) != 1 or any(d != 1 for d in cluster):
        return None
    if getattr(meta, "launch_pdl", False) or getattr(meta, "launch_cooperative_grid", False):
        return None
    scratch = [n for n in ("global_scratch_size", "profile_scratch_size") if hasattr(meta, n)]
    if any(getattr(meta, name) for name in scratch):
        return None
    names = src.fn.arg_names
    constants = {k[0] if isinstance(k, tuple) else k for k in getattr(src, "constants", {})}
    constants = {names.index(k) if isinstance(k, str) else k for k in constants}
    kept, codes = [], ""
    for i, name in enumerate(names[:n_args]):
        kind = src.signature[name]
        if kind == "constexpr" or i in constants:
            continue
        if not (kind.startswith("*") or kind in _TYPE_CODES):
            return None  # e.g. a tensor descriptor
        kept.append(i)
        codes += "O" if kind.startswith("*") else _TYPE_CODES[kind]
    codes += "O" * len(scratch)  # null scratch pointers
    pad = (None,) * len(scratch)
    function, warps, shared = compiled.function, meta.num_warps, meta.shared
    stream_of = torch._C._cuda_getCurrentRawStream

    def run(grid: tuple[int, int, int], args: Sequence) -> None:
        picked = (*args, *pad) if len(kept) == n_args else (*[args[i] for i in kept], *pad)
        launch_kernel(function, *grid, warps, shared, codes, picked, stream_of(device))

    run.binary = compiled  # holds Triton's binary, whose module owns ``function``
    return run


class Launcher:
    """``Launcher(kernel)(grid, args, constexprs, num_warps, num_stages, binaries=None)``.

    ``args``: the kernel's runtime arguments in signature order; ``constexprs``: name ->
    value for every constexpr parameter, in signature order (checked on the first call).
    ``grid``: programs along each of the three axes. The kernel runs on the device of
    ``args[0]``, whichever CUDA device is current.

    ``binaries``: optional, a dict the caller keeps for calls that it knows share one
    specialization (every argument's class as ``arg_class``, the constexprs and launch
    options): the launcher stores the binary's launch there, by device, with its key, and
    such calls skip computing the classes (~0.5 us per argument). With ``check_keys`` set
    (the test suite sets it) the classes are computed anyway and a mismatch raises.
    ``direct``: launch binaries through ``direct_launch`` where it can (off: through
    Triton's launcher; read when a binary is first launched, and a cached plan keeps the
    launch it got).
    """

    check_keys = False
    direct = True

    def __init__(self, kernel) -> None:
        self.kernel = kernel
        # ``run(grid, args)`` of each binary, by the full specialization
        self.compiled: dict[tuple, Callable] = {}

    def __call__(
        self,
        grid: tuple[int, int, int],
        args: Sequence,
        constexprs: dict[str, object],
        num_warps: int,
        num_stages: int,
        binaries: dict | None = None,
    ) -> None:
        if INTERPRET:
            self.kernel[grid](*args, **constexprs, num_warps=num_warps, num_stages=num_stages)
            return
        current = torch.cuda.current_device()
        device = args[0].device
        if device.index is not None and device.index != current:
            with torch.cuda.device(device):  # Triton launches on the current device
                return self(grid, args, constexprs, num_warps, num_stages, binaries)
        known = None if binaries is None else binaries.get(current)
        if known is not None and not self.check_keys:
            known[1](grid, args)
            return
        values = tuple(constexprs.values())
        classes = tuple(map(arg_class, args))
        full = (current, num_warps, num_stages, values, classes, self.direct)
        if known is not None and known[0] != full:
            raise RuntimeError("calls that share a binaries dict differ in specialization")
        run = self.compiled.get(full)
        if run is None:
            names = self.kernel.arg_names[len(args) :]
            if list(constexprs) != names:
                raise ValueError(f"constexprs must be given in signature order {names}")
            compiled = self.kernel[grid](
                *args, **constexprs, num_warps=num_warps, num_stages=num_stages
            )
            run = self.direct and direct_launch(compiled, len(args), current)
            if not run:

                def run(grid: tuple[int, int, int], args: Sequence) -> None:
                    compiled[grid](*args, *values)

            self.compiled[full] = run
        else:
            run(grid, args)
        if binaries is not None:
            binaries[current] = (full, run)
