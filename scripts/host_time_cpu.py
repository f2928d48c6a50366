"""Host time per neuron call without a GPU: ``python scripts/host_time_cpu.py [--profile]``.

A CPU proxy of ``scripts/host_time.py``: CPU tensors take the kernel path (as under
``TRITON_INTERPRET=1``) but the launcher's binary is a stub that returns at once, so every
line of tether's Python around the launch runs (checks, plan cache, argument building,
output allocation, the Launcher, autograd's Function machinery and engine, the backward
glue) and the kernel costs nothing. Prints microseconds per call for LIF and PLIF, fwd
(``no_grad``) and fwdbwd (forward + ``torch.autograd.grad``), at T=8 and N=1024, 2^20, and
``torch_floor`` rows (a no-op Function with LIF's arguments, saves and outputs): the
median of several repeats of 2000 calls, garbage collection on as in a normal program. The
clock is the process's CPU time (one thread: CPU autograd runs on the caller's), so that
other programs sharing the CPU do not add their share.
``--profile``: also the top of a cProfile of LIF fwdbwd at N=1024.

Not the GPU's numbers: there, Triton's launcher adds its own Python per launch, CUDA
backward runs on the device's autograd thread, and the host is 2-3x slower. Compare
before/after on one machine.
"""

from __future__ import annotations

import cProfile
import os
import pstats
import statistics
import sys
import time

os.environ["TRITON_INTERPRET"] = "1"  # CPU tensors take the kernel path

import torch  # noqa: E402

from tether.functional import plans  # noqa: E402
from tether.kernels import launch, pool, unpack  # noqa: E402

sys.path.insert(0, os.path.dirname(__file__))
from host_breakdown import _Floor11  # noqa: E402
from host_profile import make_call  # noqa: E402

CALLS = 2000
REPEATS = 7


def _noop(*args: object) -> None:
    """The stub binary's launch: returns at once."""


class _StubBinary:
    """Stands in for a compiled kernel: ``binary[grid](*args)`` does nothing."""

    def __getitem__(self, grid: tuple) -> object:
        return _noop


class _StubKernel:
    """Stands in for a ``@triton.jit`` kernel: ``kernel[grid](...)`` "compiles" a stub."""

    def __init__(self, kernel) -> None:
        self.fn, self.arg_names = kernel.fn, kernel.arg_names

    def __getitem__(self, grid: tuple) -> object:
        return lambda *args, **kwargs: _StubBinary()


def stub_launches() -> None:
    """Launch through the Launcher's compiled-binary path, into stub binaries (the neuron
    kernels, spike memory's unpack and max-pooling)."""
    launch.INTERPRET = False
    torch.cuda.current_device = lambda: 0
    launchers = (plans._launch_fwd, plans._launch_bwd, unpack._launch)
    for launcher in (*launchers, pool._launch_fwd, pool._launch_bwd):
        launcher.kernel = _StubKernel(launcher.kernel)


def floor_call(n_steps: int, n_neurons: int):
    """PyTorch's own floor of a LIF fwdbwd call: a no-op Function with its eleven
    arguments, ten saves and outputs (``host_breakdown._Floor11``)."""
    x = torch.randn(n_steps, n_neurons, requires_grad=True)
    g = torch.randn_like(x)
    args = (None, 0.9, 1.0, 2.0, 0, False, True, False, 1, False)
    return lambda: torch.autograd.grad(_Floor11.apply(x, *args)[0], [x], g)


def per_call_us(call) -> float:
    """Median over ``REPEATS`` of the mean time of ``CALLS`` calls, in microseconds."""
    for _ in range(50):
        call()
    times = []
    for _ in range(REPEATS):
        start = time.process_time_ns()
        for _ in range(CALLS):
            call()
        times.append((time.process_time_ns() - start) / CALLS / 1e3)
    return statistics.median(times)


def main(profile: bool) -> None:
    torch.set_num_threads(1)
    stub_launches()
    print("op,mode,T,N,us_per_call")
    for op in ("lif", "plif"):
        for mode in ("fwd", "fwdbwd"):
            for n_neurons in (1024, 2**20):
                us = per_call_us(make_call(op, mode, 8, n_neurons, "cpu"))
                print(f"{op},{mode},8,{n_neurons},{us:.1f}", flush=True)
    for n_neurons in (1024, 2**20):
        print(f"torch_floor,fwdbwd,8,{n_neurons},{per_call_us(floor_call(8, n_neurons)):.1f}")
    if profile:
        call = make_call("lif", "fwdbwd", 8, 1024, "cpu")
        call()
        profiler = cProfile.Profile()
        profiler.enable()
        for _ in range(CALLS):
            call()
        profiler.disable()
        pstats.Stats(profiler).sort_stats("tottime").print_stats(30)


if __name__ == "__main__":
    main("--profile" in sys.argv)
