"""Where a neuron call's host time goes: ``python scripts/host_profile.py OUT_DIR``.

For LIF and PLIF at T=8 x N=1024 (GPU work nil, so the time per call is host time), fwd
(no_grad) and fwdbwd (forward + ``autograd.grad``), writes ``host_paths.csv``: microseconds
to enqueue one call on the eager path (the Functions call the implementation directly) and
on the custom-op path (``torch.ops.tether.*``, what tracing records, here forced in eager),
and ``host_profile_<op>_<mode>.txt``: the top of a cProfile of 2000 eager calls.
"""

from __future__ import annotations

import cProfile
import csv
import io
import pstats
import sys
import time
from pathlib import Path

import torch

from tether.functional import LIFSubFunction, PLIFSubFunction, core


def make_call(op: str, mode: str, n_steps: int, n_neurons: int, device: str = "cuda"):
    """One eager LIF or PLIF call (Arctan, hard reset, detached; PLIF's parameters learned)
    on ``(n_steps, n_neurons)``: ``mode`` fwd under ``no_grad``, fwdbwd with ``autograd.grad``."""
    x = torch.randn(n_steps, n_neurons, device=device, requires_grad=mode == "fwdbwd")
    g = torch.randn_like(x)
    if op == "lif":
        args = (x, None, 0.9, 1.0, 2.0, 0, False, True, False, 1, False)
        function, leaves = LIFSubFunction, [x]
    else:
        decay = torch.full((n_neurons,), 0.9, device=device, requires_grad=True)
        threshold = torch.ones(n_neurons, device=device, requires_grad=True)
        args = (x, None, decay, threshold, 2.0, 0, False, True, False, 1, False)
        function, leaves = PLIFSubFunction, [x, decay, threshold]
    if mode == "fwd":

        def call():
            with torch.no_grad():
                function.call(*args)

    else:

        def call():
            spikes = function.call(*args)[0]
            torch.autograd.grad(spikes, leaves, g)

    return call


def per_call_us(call, calls: int = 2000) -> float:
    for _ in range(50):
        call()
    torch.cuda.synchronize()
    start = time.perf_counter()
    for _ in range(calls):
        call()
    elapsed = time.perf_counter() - start
    torch.cuda.synchronize()
    return elapsed / calls * 1e6


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    traced = core._traced
    for op in ("lif", "plif"):
        for mode in ("fwd", "fwdbwd"):
            call = make_call(op, mode, 8, 1024)
            eager_us = per_call_us(call)
            core._traced = lambda x: True  # the custom-op path, as tracing records it
            op_us = per_call_us(call)
            core._traced = traced
            rows.append({"op": op, "mode": mode, "eager_us": eager_us, "custom_op_us": op_us})
            print(rows[-1], flush=True)
            profile = cProfile.Profile()
            profile.enable()
            for _ in range(2000):
                call()
            profile.disable()
            text = io.StringIO()
            pstats.Stats(profile, stream=text).sort_stats("tottime").print_stats(30)
            (out / f"host_profile_{op}_{mode}.txt").write_text(text.getvalue())
    with open(out / "host_paths.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "."))
