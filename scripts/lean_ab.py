"""The LEAN switch, A/B on one GPU: ``python scripts/lean_ab.py OUT.csv [--levels 0,1]
[--backward | --forward] [--ops lif,plif,alif] [--dtypes float32] [--modes fwd,fwdbwd] [--shapes
512x8192,2048x4096,1024x65536]``.

For each op, dtype, mode and shape, every config the runtime picks (inference forward,
training forward, backward) is run with ``lean`` set to each level, or with ``--backward``
the backward's alone (the forwards as picked), or with ``--forward`` the forwards' alone
(column ``leaned``), captured in a
CUDA graph (``graphed``: the GPU time without host time), checked against the eager
reference and timed with ``measure.time_ms``, the variants in alternation (three rounds,
median kept). The defaults are the long-sequence study of level 1 (``lean_ab_h200.csv``);
level 2 at large N: ``--levels 0,1,2 --backward --modes fwdbwd --dtypes
float32,bfloat16 --shapes 32x8388608,128x4194304``.
"""

from __future__ import annotations

import argparse
import dataclasses
import statistics

import pandas as pd
import torch

from tether.benchmark.measure import copy_bandwidth_gbps, run_facts, time_ms
from tether.benchmark.providers import Problem, eager, graphed_impl
from tether.benchmark.runner import error_fraction
from tether.functional import ops
from tether.tuning import table
from tether.tuning.space import DTYPES

ROUNDS = 3


def patched(level: int, which: str):
    """``table``'s selection with ``lean`` at ``level`` on the configs of ``which`` kernels:
    "all", "backward" (the forwards as picked) or "forward" (inference and training
    forwards; the backward as picked)."""
    select, select_training = table.select_config, table.select_training_configs

    def config(op, direction, *args):
        picked = select(op, direction, *args)
        if which == "all" or (which == "forward" and direction == "fwd"):
            return dataclasses.replace(picked, lean=level)
        return picked

    def training(*args):
        fwd, bwd = select_training(*args)
        if which != "backward":
            fwd = dataclasses.replace(fwd, lean=level)
        if which != "forward":
            bwd = dataclasses.replace(bwd, lean=level)
        return fwd, bwd

    return config, training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out")
    parser.add_argument("--levels", default="0,1")
    which = parser.add_mutually_exclusive_group()
    which.add_argument("--backward", action="store_true", help="the backward's level alone")
    which.add_argument("--forward", action="store_true", help="the forwards' levels alone")
    parser.add_argument("--ops", default="lif,plif,alif")
    parser.add_argument("--dtypes", default="float32")
    parser.add_argument("--modes", default="fwd,fwdbwd")
    parser.add_argument("--shapes", default="512x8192,2048x4096,1024x65536")
    args = parser.parse_args()
    levels = [int(v) for v in args.levels.split(",")]
    leaned = "backward" if args.backward else "forward" if args.forward else "all"
    shapes = [tuple(map(int, s.split("x"))) for s in args.shapes.split(",")]
    device = torch.device("cuda")
    facts = {**run_facts(device), "copy_gbps": copy_bandwidth_gbps(device)}
    originals = table.select_config, table.select_training_configs
    rows = []
    for op in args.ops.split(","):
        for dtype_name in args.dtypes.split(","):
            for mode in args.modes.split(","):
                for n_steps, n_neurons in shapes:
                    dtype = DTYPES[dtype_name]
                    problem = Problem.make(op, mode, n_steps, n_neurons, dtype, device)
                    truth = eager(problem)()
                    runs = {}
                    for level in levels:
                        ops._PLANS.clear()
                        table.select_config, table.select_training_configs = patched(level, leaned)
                        try:
                            run = graphed_impl(problem)
                            runs[level] = (run, error_fraction(run(), truth, dtype))
                        finally:
                            table.select_config, table.select_training_configs = originals
                    times = {level: [] for level in runs}
                    for _ in range(ROUNDS):
                        for level, (run, _err) in runs.items():
                            times[level].append(time_ms(run, device))
                    for level, (_run, err) in runs.items():
                        row = dict(op=op, dtype=dtype_name, mode=mode, T=n_steps, N=n_neurons,
                                   lean=level, leaned=leaned,
                                   ms=statistics.median(times[level]), max_error=err, **facts)  # fmt: skip
                        rows.append(row)
                        print(op, dtype_name, mode, n_steps, n_neurons, level,
                              f"{row['ms']:.4f}", err, flush=True)  # fmt: skip
                    del runs, problem, truth
                    pd.DataFrame(rows).to_csv(args.out, index=False)  # kept if cut short


if __name__ == "__main__":
    main()
