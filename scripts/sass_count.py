"""Instructions a backward step issues, without a GPU: ``python scripts/sass_count.py OUT.csv``.

Compiles the backward kernel for sm_90 (as ``tether.kernels.aot``, the runtime's usual
16-aligned specialization) on the benchmark's switches (Arctan, hard reset, detached reset,
a float alpha, the spikes' gradient alone; PLIF's and ALIF's parameters learned), at each
op's and dtype's shipped pick at T=32, N=2^23 on the H100 and the H200 (``table``), each
at lean levels 0, 1 and 2, disassembles it (``cuobjdump -sass``) and counts the
instructions of its chunk loop (the longest backward branch) per element: the loop body's
length over the elements an iteration walks (``chunk`` steps of ``block / (32 * warps)``
neurons a thread, two chunks with lean 2 and prefetch). Also the registers a thread
(``cuobjdump -res-usage``) and the loop's instruction mix.

Why: at large N the 16-bit and ALIF backwards issue about as long as they move bytes (an
H200 issues ~1.0e12 warp instructions a second: 45 instructions an element over 2^28
elements is 0.37 ms; their bytes take 0.4-0.8 ms), so each instruction a step counts. A
static count, not a time: the GPU decides what it buys (``device_suite.sh lean2-ab``).
"""

from __future__ import annotations

import argparse
import collections
import csv
import dataclasses
import os
import re
import subprocess
import sys
import tempfile

import torch
import triton

from tether.benchmark.measure import run_facts
from tether.kernels import aot
from tether.neurons import NEURONS
from tether.tuning import table
from tether.tuning.space import DTYPES, KernelConfig, default_config

BIN = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin")
GPUS = ("NVIDIA H100 80GB HBM3", "NVIDIA H200")
T, N = 32, 2**23
ADDRESS = re.compile(r"^\s+/\*([0-9a-f]{4,})\*/\s+(.*?);")


def switches(op: str, even_steps: bool) -> dict:
    """The backward's constexprs for the benchmark's call of ``op`` (module docstring)."""
    neuron = NEURONS[op]
    out = aot.bwd_switches(neuron, soft_reset=False, detach=True, surrogate=0, i=0)
    if not neuron.learnable:  # float parameters, no parameter gradients
        out.update({k: False for k in out if k.endswith("_IS_TENSOR")})
        out.update({k: -1 for k in out if k.endswith("_GRAD_ROW")})
    out.update(
        ALPHA_IS_TENSOR=False, ALPHA_GRAD_ROW=-1, HAS_GRAD_H=False, HAS_GRAD_A_SEQ=False,
        HAS_GRAD_V_FINAL=False, HAS_GRAD_A_FINAL=False, V_STARTS_AT_ZERO=False,
        A_STARTS_AT_ZERO=False, EVEN_STEPS=even_steps,
    )  # fmt: skip
    return out


def disassemble(cubin: bytes, *flags: str) -> str:
    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        return subprocess.run(
            [os.path.join(BIN, "cuobjdump"), *flags, f.name],
            check=True, capture_output=True, text=True,
        ).stdout  # fmt: skip


def chunk_loop(sass: str) -> list[str]:
    """The instructions between the longest backward branch's target and the branch."""
    code = [(int(m.group(1), 16), m.group(2)) for m in map(ADDRESS.match, sass.splitlines()) if m]
    spans = [
        (at - int(target.group(1), 16), int(target.group(1), 16), at)
        for at, text in code
        if (target := re.search(r"BRA\s+0x([0-9a-f]+)", text)) and int(target.group(1), 16) < at
    ]
    _, start, end = max(spans)
    return [text for at, text in code if start <= at <= end]


def count(op: str, dtype_name: str, config: KernelConfig) -> dict:
    """One row: instructions an element, the loop's mix, registers."""
    even = config.lean >= 2 and T % config.chunk == 0
    kernel = aot.compile_kernel("bwd", DTYPES[dtype_name], config, switches(op, even), aligned=True)
    loop = chunk_loop(disassemble(kernel.asm["cubin"], "-sass"))
    registers = re.search(r"REG:(\d+)", disassemble(kernel.asm["cubin"], "-res-usage"))
    opcodes = collections.Counter(
        re.sub(r"^@!?U?P\w+\s+", "", text).split()[0].split(".")[0] for text in loop
    )
    chunks = 2 if config.lean >= 2 and config.prefetch else 1
    elements = chunks * config.chunk * config.per_thread
    return {
        "op": op, "dtype": dtype_name, **config.as_dict(), "loop_instructions": len(loop),
        "elements_per_iteration": elements,
        "instructions_per_element": round(len(loop) / elements, 1),
        "registers": int(registers.group(1)) if registers else None,
        "mix": " ".join(f"{k}:{v}" for k, v in opcodes.most_common(12)),
    }  # fmt: skip


def picks() -> list[tuple[str, str, str, KernelConfig]]:
    """(gpu, op, dtype, backward config) at T x N for every op and tuned dtype: the table's
    entry of each GPU, else the default."""
    out = []
    entries = table.load_table(table.TABLE_PATH)
    for gpu in GPUS:
        for op in NEURONS:
            for dtype_name in aot.TUNED_DTYPES:
                found = [
                    e for e in entries
                    if (e["gpu"], e["op"], e["direction"], e["dtype"]) == (gpu, op, "bwd", dtype_name)
                    and (e["t_bucket"], e["n_bucket"]) == (T, N)
                ]  # fmt: skip
                config = (
                    KernelConfig(**found[0]["config"]) if found
                    else default_config("bwd", DTYPES[dtype_name], op, T, N)
                )  # fmt: skip
                out.append((gpu if found else "default", op, dtype_name, config))
    return list(dict.fromkeys(out))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out")
    args = parser.parse_args()
    facts = {**run_facts(torch.device("cpu")), "target": "sm_90 (cuobjdump)"}
    rows = []
    for source, op, dtype_name, pick in picks():
        for level in (0, 1, 2):
            config = dataclasses.replace(pick, lean=level)
            row = {"pick": source, **count(op, dtype_name, config), **facts}
            rows.append(row)
            print(source, op, dtype_name, config, row["instructions_per_element"],
                  row["registers"], flush=True)  # fmt: skip
    with open(args.out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return 0


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    sys.exit(main())
