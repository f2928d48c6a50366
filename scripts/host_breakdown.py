"""Where a neuron call's host time goes on a GPU: ``python scripts/host_breakdown.py [CSV]``.

LIF fp32 at T=8, N=1024 (no GPU work to speak of), each piece enqueued 2000 times, us per
call (median of 5 repeats): PyTorch's own floor (a no-op ``autograd.Function`` with a
neuron call's inputs, outputs and saves), tether's forward under ``no_grad`` and with a
graph recorded, forward + ``autograd.grad``, the backward glue called directly on the main
thread (``ops.neuron_backward``, no autograd engine), forward + backward with autograd's
device threads off (the backward on the caller's thread), one launch of the forward binary
through ``Launcher`` and through Triton's own ``kernel[grid]``. Then a cProfile of the
single-threaded forward + backward and of the recorded forward; the median time inside
tether's backward on the engine's device thread and on the caller's thread; and the
forward, forward + backward and single-threaded forward + backward with Triton's launcher
(``Launcher.direct`` off) and the static one. Rows: ``piece,us_per_call`` (to CSV if given).
"""

from __future__ import annotations

import cProfile
import pstats
import statistics
import sys
import time

import torch

from tether.functional import LIFSubFunction, ops, plans
from tether.kernels import launch

T, N, CALLS, REPEATS = 8, 1024, 2000, 5


class _Floor(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, v_init, decay, threshold, alpha):
        out = torch.empty_like(x)
        ctx.save_for_backward(x, out)
        return out, torch.empty_like(x[0]), torch.empty_like(x)

    @staticmethod
    def backward(ctx, g_spikes, g_v, g_h):
        return torch.empty_like(g_spikes), None, None, None, None


class _Floor11(torch.autograd.Function):
    """The floor with LIFSubFunction's eleven arguments and ten saves."""

    @staticmethod
    def forward(ctx, x, *rest):
        ctx.set_materialize_grads(False)
        out = torch.empty_like(x)
        ctx.save_for_backward(x, None, None, out, out, None, None, None, None, None)
        return out, torch.empty_like(x[0]), torch.empty_like(x)

    @staticmethod
    def backward(ctx, g_spikes, g_v, g_h):
        x, *_ = ctx.saved_tensors
        return (torch.empty_like(g_spikes),) + (None,) * 10


def us_per_call(fn) -> float:
    for _ in range(50):
        fn()
    torch.cuda.synchronize()
    times = []
    for _ in range(REPEATS):
        start = time.perf_counter()
        for _ in range(CALLS):
            fn()
        times.append((time.perf_counter() - start) / CALLS * 1e6)
        torch.cuda.synchronize()
    return statistics.median(times)


def main(out_path: str | None) -> None:
    device = torch.device("cuda")
    x = torch.randn(T, N, device=device, requires_grad=True)
    grad = torch.randn_like(x)
    args = (x, None, 0.9, 1.0, 2.0)

    def fwd_nograd():
        with torch.no_grad():
            return LIFSubFunction.call(*args)

    def fwd_graph():
        return LIFSubFunction.apply(*args)

    def fwdbwd():
        return torch.autograd.grad(LIFSubFunction.apply(*args)[0], [x], grad)

    def floor_fwdbwd():
        return torch.autograd.grad(_Floor.apply(*args)[0], [x], grad)

    def floor11_fwdbwd():
        return torch.autograd.grad(
            _Floor11.apply(*args, 0, False, True, True, 1, True)[0], [x], grad
        )

    def single_thread(fn):
        def call():
            with torch.autograd.set_multithreading_enabled(False):
                return fn()

        return call

    def floor_fwd_graph():
        return _Floor.apply(*args)

    # The backward glue on the main thread, from one recorded forward's saved tensors.
    spec = plans.NeuronSpec("lif", False, 0, False, True, True, 1, True)
    tensors, floats = plans.split_params({"decay_v": 0.9, "threshold": 1.0})
    outs = ops.neuron_forward(x.detach(), None, None, tensors, floats, spec, True)
    saved = list(outs[5:])
    needs = [True, False, False, False, False, False, False, False]

    def direct_backward():
        grads = [grad, None, None, None, None]
        return ops.neuron_backward(grads, x.detach(), None, None, saved, tensors, floats, 2.0,
                                   spec, needs)  # fmt: skip

    def direct_forward():
        return ops.neuron_forward(x.detach(), None, None, tensors, floats, spec, True)

    fwd_args = None

    def capture(launcher_self, grid, launch_args, constexprs, *rest, **kw):
        nonlocal fwd_args
        fwd_args = (grid, launch_args, constexprs, *rest)

    original = plans.Launcher.__call__
    plans.Launcher.__call__ = capture
    try:
        direct_forward()
    finally:
        plans.Launcher.__call__ = original
    grid, launch_args, constexprs, warps, stages, binaries = fwd_args
    launcher = plans._launch_fwd

    def launcher_only():
        launcher(grid, launch_args, constexprs, warps, stages, binaries)

    def triton_launch():
        launcher.kernel[grid](*launch_args, **constexprs, num_warps=warps, num_stages=stages)

    pieces = {
        "floor_fwd_graph": floor_fwd_graph,
        "floor_fwdbwd": floor_fwdbwd,
        "tether_fwd_nograd": fwd_nograd,
        "tether_fwd_graph": fwd_graph,
        "tether_fwdbwd": fwdbwd,
        "floor11_fwdbwd": floor11_fwdbwd,
        "floor_fwdbwd_1thread": single_thread(floor_fwdbwd),
        "tether_fwdbwd_1thread": single_thread(fwdbwd),
        "direct_forward": direct_forward,
        "direct_backward": direct_backward,
        "launcher_only": launcher_only,
        "triton_launch": triton_launch,
    }
    rows = [f"{name},{us_per_call(fn):.2f}" for name, fn in pieces.items()]
    # The time spent inside tether's backward (the Function's, run by the engine), on the
    # engine's device thread and on the caller's thread.
    inside = []
    original_backward = LIFSubFunction.backward

    def timed_backward(ctx, *grads):
        start = time.perf_counter()
        result = original_backward(ctx, *grads)
        inside.append(time.perf_counter() - start)
        return result

    LIFSubFunction.backward = staticmethod(timed_backward)
    try:
        for name, fn in (
            ("inside_backward", fwdbwd),
            ("inside_backward_1thread", single_thread(fwdbwd)),
        ):
            inside.clear()
            us_per_call(fn)
            rows.append(f"{name},{statistics.median(inside) * 1e6:.2f}")
    finally:
        LIFSubFunction.backward = staticmethod(original_backward)
    # Triton's launcher against the static one (``Launcher.direct``), fresh plans each
    for direct in (False, True):
        launch.Launcher.direct = direct
        ops._PLANS.clear()
        for name in ("tether_fwd_nograd", "tether_fwdbwd", "tether_fwdbwd_1thread"):
            rows.append(f"{name}_direct{int(direct)},{us_per_call(pieces[name]):.2f}")
    print("piece,us_per_call", *rows, sep="\n", flush=True)
    if out_path:
        with open(out_path, "w") as f:
            print(f"# {torch.cuda.get_device_name()} torch {torch.__version__}", file=f)
            print("piece,us_per_call", *rows, sep="\n", file=f)
    for name in ("tether_fwdbwd_1thread", "tether_fwd_graph"):
        fn = pieces[name]
        profile = cProfile.Profile()
        profile.enable()
        for _ in range(CALLS):
            fn()
        profile.disable()
        torch.cuda.synchronize()
        print(f"--- cProfile {name}, {CALLS} calls")
        pstats.Stats(profile).sort_stats("tottime").print_stats(18)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else None)
