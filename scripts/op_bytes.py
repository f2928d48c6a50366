"""Each op's bytes model over committed benchmark rows, no GPU: ``python scripts/op_bytes.py
CSV... [--out OUT.csv]``.

The benchmark's GB/s and % of copy use one model for every op (``minimal_bytes``: 20 bytes
an element fp32 forward+backward, 10 in 16-bit). Issue 15 asks each op on its own: for every
``tether`` and ``graphed`` fwdbwd row, the time on ``measure.op_bytes`` (the op's learned
parameters and their gradients added: PLIF 2, ALIF 4 per neuron) and on tether's design
(also the 1-bit spikes and each state's checkpoint every ``chunk`` steps, written and read
back; ``chunk`` of the backward config the table picks for the row's GPU, op, dtype and
shape now: the rows must be of the current entries), as GB/s and % of the row's copy
bandwidth.
"""

from __future__ import annotations

import argparse

import pandas as pd

from tether.benchmark.measure import op_bytes, read_csv
from tether.tuning import table
from tether.tuning.space import DTYPES


def chunk_of(gpu: str, op: str, dtype_name: str, n_steps: int, n_neurons: int) -> int:
    """The chunk of the backward config the runtime picks there on the GPU named ``gpu``
    (sm_90: ``table.planned`` on the current entries)."""
    name, entries = table.gpu_entries(f"{gpu}|9.0")
    return table.planned(entries, name, op, "bwd", DTYPES[dtype_name], n_steps, n_neurons).chunk


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("csv", nargs="+")
    parser.add_argument("--out")
    args = parser.parse_args()
    frame = pd.concat([read_csv(path) for path in args.csv], ignore_index=True)
    rows = frame[(frame["mode"] == "fwdbwd") & frame["impl"].isin(["tether", "graphed"])]
    out = []
    for row in rows.to_dict("records"):
        n_steps, n_neurons, dtype = int(row["T"]), int(row["N"]), DTYPES[row["dtype"]]
        chunk = chunk_of(row["device"], row["op"], row["dtype"], n_steps, n_neurons)
        seconds = row["ms"] / 1e3
        own = op_bytes(row["op"], "fwdbwd", dtype, n_steps, n_neurons)
        design = op_bytes(row["op"], "fwdbwd", dtype, n_steps, n_neurons, chunk)
        out.append({
            **{k: row[k] for k in ("op", "impl", "dtype", "T", "N", "ms", "device", "commit")},
            "pct_copy_20B": round(100 * row["gbps"] / row["copy_gbps"], 1),
            "bytes_per_element_own": own / (n_steps * n_neurons),
            "pct_copy_own": round(100 * own / seconds / 1e9 / row["copy_gbps"], 1),
            "chunk": chunk,
            "bytes_per_element_design": design / (n_steps * n_neurons),
            "pct_copy_design": round(100 * design / seconds / 1e9 / row["copy_gbps"], 1),
        })  # fmt: skip
    result = pd.DataFrame(out)
    print(result.to_string(index=False))
    if args.out:
        result.to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
