"""Host time per call on a GPU: ``python scripts/host_time.py TAG [--quick] >> host.csv``.

For every neuron, fwd and fwdbwd, at T=8 x N=1024 (GPU work nil) and two larger shapes,
prints one CSV row per (op, mode, shape, impl): the time to enqueue 200 calls (no sync), the
wall time with the final sync, and ``triton.testing.do_bench``'s median. Run it once per tree
(``PYTHONPATH=<tree> python scripts/host_time.py <tag>``) to compare two versions of the
host path in the same session; the header is ``tag,op,mode,T,N,impl,enqueue_ms,wall_ms,
do_bench_ms``. ``--quick``: LIF and PLIF, the first two shapes, tether only.
"""

import sys
import time

import torch
import triton

from tether.benchmark.providers import PROVIDERS, Problem
from tether.neurons import OPS


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
                    fn = PROVIDERS[impl](problem)
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
                    median = triton.testing.do_bench(fn, warmup=25, rep=100, return_mode="median")
                    print(
                        f"{tag},{op},{mode},{n_steps},{n_neurons},{impl},"
                        f"{enqueue:.4f},{wall:.4f},{median:.4f}",
                        flush=True,
                    )


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "current", "--quick" in sys.argv)
