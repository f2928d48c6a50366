"""Host time per call on a GPU: ``python scripts/host_time.py TAG [--quick] >> host.csv``.

For every neuron, fwd and fwdbwd, at T=8 x N=1024 (GPU work nil) and two larger shapes,
prints one CSV row per (op, mode, shape, impl): the time to enqueue 200 calls (no sync), the
wall time with the final sync, and ``triton.testing.do_bench``'s median. Run it once per tree
(``PYTHONPATH=<tree> python scripts/host_time.py <tag>``) to compare two versions of the
host path in the same session; the header is ``tag,op,mode,T,N,impl,enqueue_ms,wall_ms,
do_bench_ms``. ``--quick``: LIF and PLIF, the first two shapes, tether only. Rows with impl
``torch_floor`` time an ``autograd.Function`` that takes x, returns a spike-shaped output,
saves two tensors and does no work (its backward returns an empty gradient): what PyTorch
alone costs per call on this host.
"""

import sys
import time

import torch
import triton

from tether.benchmark.providers import PROVIDERS, Problem
from tether.neurons import OPS


class _Floor(torch.autograd.Function):
    """No work: the outputs and saves of a neuron call, no kernels."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:
        out = torch.empty_like(x)
        ctx.save_for_backward(x, out)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return torch.empty_like(grad)


def floor_call(mode: str, n_steps: int, n_neurons: int, device: torch.device):
    x = torch.randn(n_steps, n_neurons, device=device, requires_grad=mode == "fwdbwd")
    g = torch.randn_like(x)
    if mode == "fwd":

        def call():
            with torch.no_grad():
                return _Floor.apply(x)

        return call
    return lambda: torch.autograd.grad(_Floor.apply(x), [x], g)


def timed(fn) -> tuple[float, float, float]:
    """(enqueue, wall, do_bench median) ms per call."""
    for _ in range(20):
        fn()
    torch.cuda.synchronize()
    calls = 200
    start = time.perf_counter()
    for _ in range(calls):
        fn()
    enqueue = (time.perf_counter() - start) / calls * 1e3
    torch.cuda.synchronize()
    wall = (time.perf_counter() - start) / calls * 1e3
    return enqueue, wall, triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median")


def main(tag: str, quick: bool) -> None:
    device = torch.device("cuda")
    ops = ("lif", "plif") if quick else OPS
    shapes = ((8, 1024), (8, 2**20)) if quick else ((8, 1024), (8, 2**20), (32, 2**20))
    impls = ("tether",) if quick else ("tether", "untuned")
    for op in ops:
        for mode in ("fwd", "fwdbwd"):
            for n_steps, n_neurons in shapes:
                for impl in impls:
                    problem = Problem.make(op, mode, n_steps, n_neurons, torch.float32, device)
                    enqueue, wall, median = timed(PROVIDERS[impl](problem))
                    print(
                        f"{tag},{op},{mode},{n_steps},{n_neurons},{impl},"
                        f"{enqueue:.4f},{wall:.4f},{median:.4f}",
                        flush=True,
                    )
    for mode in ("fwd", "fwdbwd"):
        for n_steps, n_neurons in shapes:
            enqueue, wall, median = timed(floor_call(mode, n_steps, n_neurons, device))
            print(f"{tag},-,{mode},{n_steps},{n_neurons},torch_floor,"
                  f"{enqueue:.4f},{wall:.4f},{median:.4f}", flush=True)  # fmt: skip


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "current", "--quick" in sys.argv)
