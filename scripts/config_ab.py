"""Training calls at forced backward configs, on one GPU: ``python scripts/config_ab.py OUT.csv
--ops alif --dtypes float32,bfloat16 --shapes 32x8388608 --configs 256/2/8/32,128/2/8/32``.

For each op, dtype and shape, the forward+backward call (``fwdbwd``) runs at each backward
config ``block/warps/chunk/pack_bits[/p][l][sN]`` (``table``: the table's own pick), its
training forward as the table pairs it (``select_training_configs``; a config suffixed
``@fallback``: the forward of a bucket without a ``fwd_train`` entry,
``training_forward_config``), captured in a CUDA graph (GPU time only), checked against the
eager reference and timed with ``measure.time_ms``, the configs in
alternation (three rounds, median kept). ``pct_copy_bw``: the 20 B/element fp32 model (10 in
16-bit) at the copy bandwidth measured in the same run. Run it on two trees (``PYTHONPATH``)
to compare kernels: rows carry the kernel hash.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import statistics

import pandas as pd
import torch

from tether.benchmark.measure import copy_bandwidth_gbps, run_facts, time_ms
from tether.benchmark.providers import Problem, eager, graphed_impl
from tether.benchmark.runner import error_fraction
from tether.functional import ops
from tether.kernels.hashing import kernel_hash
from tether.tuning import table
from tether.tuning.space import DTYPES, KernelConfig, training_forward_config

ROUNDS = 3


def parse_config(text: str) -> KernelConfig | None:
    """``block/warps/chunk/pack_bits[/flags]`` (one stage; flags ``p``: prefetch, ``l``:
    lean, ``l2``: lean level 2, ``sN``: N segments), or None for ``table``."""
    if text == "table":
        return None
    fields = text.split("/")
    block, warps, chunk, pack_bits = map(int, fields[:4])
    flags = fields[4] if len(fields) > 4 else ""
    segments = re.search(r"s(\d+)", flags)
    lean = re.search(r"l(\d?)", flags)
    level = 0 if lean is None else int(lean.group(1) or 1)
    return KernelConfig(block, warps, 1, chunk, pack_bits, "p" in flags, level,
                        int(segments.group(1)) if segments else 1)  # fmt: skip


def forcing(bwd: KernelConfig | None, fallback: bool = False):
    """``table.select_training_configs`` with the backward config ``bwd`` (None: as is);
    ``fallback``: the training forward of no ``fwd_train`` entry (``training_forward_config``)."""
    select = table.select_training_configs

    def training(op, dtype, n_steps, n_neurons, device):
        fwd, picked = select(op, dtype, n_steps, n_neurons, device)
        if bwd is not None:  # the forward saves in bwd's layout: the table's launch shape
            fwd = dataclasses.replace(fwd, chunk=bwd.chunk, pack_bits=bwd.pack_bits)
            picked = bwd
        if fallback:
            fwd = training_forward_config(picked, dtype, n_neurons)
        return fwd, picked

    return training


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out")
    parser.add_argument("--ops", default="alif")
    parser.add_argument("--dtypes", default="float32")
    parser.add_argument("--shapes", default="32x8388608")
    parser.add_argument("--configs", default="table")
    args = parser.parse_args()
    device = torch.device("cuda")
    facts = {**run_facts(device), "kernel_hash": kernel_hash("bwd")}
    copy_gbps = copy_bandwidth_gbps(device)
    original = table.select_training_configs
    rows = []
    for op in args.ops.split(","):
        for dtype_name in args.dtypes.split(","):
            dtype = DTYPES[dtype_name]
            for shape in args.shapes.split(","):
                n_steps, n_neurons = map(int, shape.split("x"))
                problem = Problem.make(op, "fwdbwd", n_steps, n_neurons, dtype, device)
                truth = eager(problem)()
                runs = {}
                for name in args.configs.split(","):
                    ops._PLANS.clear()
                    config, _, fallback = name.partition("@")
                    table.select_training_configs = forcing(parse_config(config), bool(fallback))
                    try:
                        run = graphed_impl(problem)
                        picked = table.select_training_configs(
                            op, dtype, n_steps, n_neurons, device
                        )
                        runs[name] = (run, error_fraction(run(), truth, dtype), picked)
                    except Exception as err:  # a config that does not compile or fit
                        print(op, dtype_name, shape, name, "failed:", repr(err)[:300])
                    finally:
                        table.select_training_configs = original
                times = {name: [] for name in runs}
                for _ in range(ROUNDS):
                    for name, (run, _err, _picked) in runs.items():
                        times[name].append(time_ms(run, device))
                bytes_moved = 5 * dtype.itemsize * n_steps * n_neurons
                for name, (_run, err, (fwd, bwd)) in runs.items():
                    ms = statistics.median(times[name])
                    gbps = bytes_moved / ms / 1e6
                    row = dict(op=op, dtype=dtype_name, T=n_steps, N=n_neurons, config=name,
                               bwd=str(bwd), fwd_train=str(fwd), ms=ms, gbps=gbps,
                               pct_copy_bw=100 * gbps / copy_gbps, copy_gbps=copy_gbps,
                               max_error=err, **facts)  # fmt: skip
                    rows.append(row)
                    print(op, dtype_name, shape, name, f"{ms:.4f} ms", f"{row['pct_copy_bw']:.1f}%",
                          err, flush=True)  # fmt: skip
                del runs, problem, truth
    pd.DataFrame(rows).to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
