"""``SUM_SEGMENTS`` A/B on one GPU: ``python scripts/segment_sums_ab.py OUT.csv [--ops
lif,plif,alif] [--shapes 512x8192,2048x4096]``.

A backward in time segments with learned parameters writes one row of sums a segment; the
segment of each neuron that finishes last now sums them in the kernel (``SUM_SEGMENTS``),
where a ``torch.sum`` over the segments ran after it (one more kernel: 4.6 us of 72 at ALIF
512x8192 on an H100). Each op and shape runs the training call (forward + ``autograd.grad``,
the benchmark's learned per-neuron parameters), captured in a CUDA graph (GPU time only),
``kernel`` as shipped and ``torch`` with the switch off and the sum in torch, checked
against the eager reference, timed in alternation (three rounds, median kept).
"""

from __future__ import annotations

import argparse
import statistics

import pandas as pd
import torch

from tether.benchmark.measure import run_facts, time_ms
from tether.benchmark.providers import Problem, eager, graphed_impl
from tether.benchmark.runner import error_fraction
from tether.functional import ops, plans

ROUNDS = 3


def summed_in_torch(plan):
    """``plan`` with ``SUM_SEGMENTS`` off in both launches (the maps keep no counters)."""
    if plan.maps is None:
        return plan

    def off(p):
        return p._replace(constexprs={**p.constexprs, "SUM_SEGMENTS": False})

    return off(plan)._replace(maps=off(plan.maps))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out")
    parser.add_argument("--ops", default="lif,plif,alif")
    parser.add_argument("--shapes", default="512x8192,2048x4096")
    args = parser.parse_args()
    device = torch.device("cuda")
    facts = run_facts(device)
    original_plan, original_rows = ops.backward_plan, plans.neuron_rows
    rows = []
    for op in args.ops.split(","):
        for shape in args.shapes.split(","):
            n_steps, n_neurons = map(int, shape.split("x"))
            problem = Problem.make(op, "fwdbwd", n_steps, n_neurons, torch.float32, device)
            truth = eager(problem)()
            runs = {}
            for variant in ("kernel", "torch"):
                ops._PLANS.clear()
                if variant == "torch":
                    ops.backward_plan = lambda *a, **k: summed_in_torch(original_plan(*a, **k))
                    plans.neuron_rows = lambda r: r if r.dim() == 2 else r.sum(1)
                try:
                    run = graphed_impl(problem)
                    runs[variant] = (run, error_fraction(run(), truth, torch.float32))
                finally:
                    ops.backward_plan, plans.neuron_rows = original_plan, original_rows
            ops._PLANS.clear()
            times = {name: [] for name in runs}
            for _ in range(ROUNDS):
                for name, (run, _err) in runs.items():
                    times[name].append(time_ms(run, device))
            for name, (_run, err) in runs.items():
                ms = statistics.median(times[name])
                rows.append(dict(op=op, T=n_steps, N=n_neurons, variant=name, ms=ms,
                                 max_error=err, **facts))  # fmt: skip
                print(op, shape, name, f"{ms:.4f} ms", err, flush=True)
            del runs, problem, truth
    pd.DataFrame(rows).to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
