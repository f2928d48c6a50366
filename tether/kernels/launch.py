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
"""

from __future__ import annotations

from collections.abc import Sequence

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


class Launcher:
    """``Launcher(kernel)(grid, args, constexprs, num_warps, num_stages, binaries=None)``.

    ``args``: the kernel's runtime arguments in signature order; ``constexprs``: name ->
    value for every constexpr parameter, in signature order (checked on the first call).
    ``grid``: programs along each of the three axes. The kernel runs on the device of
    ``args[0]``, whichever CUDA device is current.

    ``binaries``: optional, a dict the caller keeps for calls that it knows share one
    specialization (every argument's class as ``arg_class``, the constexprs and launch
    options): the launcher stores the binary there, by device, with its key and constexpr
    values, and such calls skip computing the classes (~0.5 us per argument). With ``check_keys`` set (the test suite
    sets it) the classes are computed anyway and a mismatch raises.
    """

    check_keys = False

    def __init__(self, kernel) -> None:
        self.kernel = kernel
        self.compiled: dict[tuple, object] = {}  # by the full specialization

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
            _, compiled, values = known
            compiled[grid](*args, *values)
            return
        values = tuple(constexprs.values())
        full = (current, num_warps, num_stages, values, tuple(map(arg_class, args)))
        if known is not None and known[0] != full:
            raise RuntimeError("calls that share a binaries dict differ in specialization")
        compiled = self.compiled.get(full)
        if compiled is None:
            names = self.kernel.arg_names[len(args) :]
            if list(constexprs) != names:
                raise ValueError(f"constexprs must be given in signature order {names}")
            compiled = self.compiled[full] = self.kernel[grid](
                *args, **constexprs, num_warps=num_warps, num_stages=num_stages
            )
        else:
            compiled[grid](*args, *values)
        if binaries is not None:
            binaries[current] = (full, compiled, values)
