"""GPU time per kernel of one neuron call, from ``torch.profiler``: ``python
scripts/kernel_times.py OUT.csv [--ops lif,plif,alif] [--shapes 512x8192] [--dtype float32]
[--impls tether,spikingjelly]``.

For each point, the benchmark provider's call (``tether.benchmark.providers``: ``fwd`` under
no_grad, ``fwdbwd`` forward plus ``autograd.grad``) is warmed up, then profiled over 20 calls;
one row per kernel with its mean microseconds per call. The kernel times of a long-sequence
call (issue 13) before and after a change, without the host's time between launches.
"""

from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

import torch

from tether.benchmark import models, providers
from tether.benchmark.measure import run_facts

CALLS = 20


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("--ops", default="lif,plif,alif")
    parser.add_argument("--shapes", default="512x8192,2048x4096,1024x65536")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--impls", default="tether,spikingjelly")
    args = parser.parse_args()
    device, dtype = torch.device("cuda"), getattr(torch, args.dtype)
    rows = []
    for op in args.ops.split(","):
        for shape in args.shapes.split(","):
            n_steps, n_neurons = map(int, shape.split("x"))
            for mode in providers.MODES:
                problem = providers.Problem.make(op, mode, n_steps, n_neurons, dtype, device)
                for impl in args.impls.split(","):
                    if providers.skip_reason(impl, op, n_steps, device) or (
                        impl == "spikingjelly" and op != "lif"
                    ):
                        continue
                    run = providers.PROVIDERS[impl](problem)
                    for _ in range(5):
                        run()
                    per_kernel: dict[str, float] = defaultdict(float)
                    for name, us in models.profile_kernels(run, CALLS):
                        per_kernel[name] += us / CALLS
                    total = sum(per_kernel.values())
                    print(f"{op} {shape} {mode} {impl}: {total:.1f} us of kernels per call")
                    for name, us in sorted(per_kernel.items(), key=lambda kv: -kv[1]):
                        rows.append(
                            {
                                "op": op,
                                "T": n_steps,
                                "N": n_neurons,
                                "dtype": args.dtype,
                                "mode": mode,
                                "impl": impl,
                                "kernel": name[:120],
                                "us": round(us, 2),
                                **run_facts(device),
                            }
                        )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    with args.out.open("w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
