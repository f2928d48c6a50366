"""The LEAN switch at long sequences, A/B on one GPU: ``python scripts/lean_ab.py OUT.csv``.

For each op and long shape (fp32), every config the runtime picks (inference forward,
training forward, backward) is run as picked and with ``lean`` flipped on, captured in a CUDA
graph (``graphed``: the GPU time without host time), checked against the eager reference and
timed with ``measure.time_ms``, the two variants in alternation (three rounds, median kept).
"""

from __future__ import annotations

import dataclasses
import statistics
import sys

import pandas as pd
import torch

from tether.benchmark.measure import run_facts, time_ms
from tether.benchmark.providers import Problem, eager, graphed_impl
from tether.benchmark.runner import error_fraction
from tether.functional import ops
from tether.tuning import table

SHAPES = ((512, 8192), (2048, 4096), (1024, 65536))
ROUNDS = 3


def patched(lean: bool):
    """``table``'s selection with ``lean`` set on every config it returns."""
    select, select_training = table.select_config, table.select_training_configs

    def config(*args):
        return dataclasses.replace(select(*args), lean=lean)

    def training(*args):
        return tuple(dataclasses.replace(c, lean=lean) for c in select_training(*args))

    return config, training


def main(out: str) -> None:
    device = torch.device("cuda")
    facts = run_facts(device)
    originals = table.select_config, table.select_training_configs
    rows = []
    for op in ("lif", "plif", "alif"):
        for mode in ("fwd", "fwdbwd"):
            for n_steps, n_neurons in SHAPES:
                problem = Problem.make(op, mode, n_steps, n_neurons, torch.float32, device)
                truth = eager(problem)()
                runs = {}
                for lean in (False, True):
                    ops._PLANS.clear()
                    table.select_config, table.select_training_configs = patched(lean)
                    try:
                        run = graphed_impl(problem)
                        runs[lean] = (run, error_fraction(run(), truth, torch.float32))
                    finally:
                        table.select_config, table.select_training_configs = originals
                times = {lean: [] for lean in runs}
                for _ in range(ROUNDS):
                    for lean, (run, _err) in runs.items():
                        times[lean].append(time_ms(run, device))
                for lean, (_run, err) in runs.items():
                    row = dict(op=op, mode=mode, T=n_steps, N=n_neurons, lean=lean,
                               ms=statistics.median(times[lean]), max_error=err, **facts)  # fmt: skip
                    rows.append(row)
                    print(row["op"], mode, n_steps, n_neurons, lean, f"{row['ms']:.4f}", err,
                          flush=True)  # fmt: skip
                del runs, problem, truth
    pd.DataFrame(rows).to_csv(out, index=False)


if __name__ == "__main__":
    main(sys.argv[1])
