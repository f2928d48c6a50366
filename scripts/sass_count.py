"""Instructions a neuron step issues, without a GPU: ``python scripts/sass_count.py OUT.csv
[--shapes 32x8388608,...] [--directions bwd,fwd_train] [--configs 128/4/16/32/p,...
--ops alif --dtypes float32]``.

Compiles the kernels for sm_90 (as ``tether.kernels.aot``, the runtime's usual 16-aligned
specialization) on the benchmark's switches (Arctan, hard reset, detached reset, a float
alpha, the spikes' gradient alone; PLIF's and ALIF's parameters learned), at each op's and
dtype's configs as the runtime picks them at each shape on the H100 and the H200 (``table``:
the nearest entry, else the default; ``--configs``: those instead, in ``config_ab.py``'s
notation, for ``--ops`` and ``--dtypes``), each at lean levels 0, 1 and 2, disassembles them
(``cuobjdump -sass``) and counts the instructions of the chunk loop (the longest backward
branch) per element: the loop body's length over the elements an iteration walks
(``chunk`` steps of ``block / (32 * warps)`` neurons a thread, two chunks with lean 2 and
prefetch). Also the registers a thread and its stack (``cuobjdump -res-usage``: above 0,
spilled registers) and the loop's mix.

Why: at large N the 16-bit and ALIF backwards issue about as long as they move bytes (an
H200 issues ~1.0e12 warp instructions a second: 45 instructions an element over 2^28
elements is 0.37 ms; their bytes take 0.4-0.8 ms), and at long T over few neurons a warp
alone on its scheduler takes the instruction count as its time. A static count, not a
time: the GPU decides what it buys (``device_suite.sh lean2-ab``).
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
from config_ab import parse_config  # this folder: run as a script, or on sys.path

from tether.benchmark.measure import run_facts
from tether.kernels import aot
from tether.neurons import NEURONS, PARAMS
from tether.tuning import table
from tether.tuning.space import DTYPES, KernelConfig

BIN = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin")
GPUS = ("NVIDIA H100 80GB HBM3|9.0", "NVIDIA H200|9.0")  # table.gpu_key
ADDRESS = re.compile(r"^\s+/\*([0-9a-f]{4,})\*/\s+(.*?);")


def switches(direction: str, op: str, config: KernelConfig, n_steps: int) -> dict:
    """The constexprs of ``direction`` for the benchmark's call of ``op`` (module docstring):
    a training forward saves for the backward and keeps no final state; a backward in
    segments is counted in its second pass (``SPLIT=2``, the one that writes grad_x; with
    learned parameters it sums the segments' rows, ``SUM_SEGMENTS``)."""
    neuron = NEURONS[op]
    even = n_steps % config.chunk == 0
    if direction == "fwd_train":
        out = aot.fwd_switches(neuron, soft_reset=False, save=True, i=0)
        out.update(
            {f"{name.upper()}_IS_TENSOR": neuron.learnable and name in neuron.params
             for name in PARAMS},
            HAS_V_INIT=False, HAS_A_INIT=False, STORE_H=False, STORE_A=False,
            STORE_FINAL=False, EVEN_STEPS=even,
        )  # fmt: skip
        return out
    out = aot.bwd_switches(neuron, soft_reset=False, detach=True, surrogate=0, i=0)
    if not neuron.learnable:  # float parameters, no parameter gradients
        out.update({k: False for k in out if k.endswith("_IS_TENSOR")})
        out.update({k: -1 for k in out if k.endswith("_GRAD_ROW")})
    out.update(
        ALPHA_IS_TENSOR=False, ALPHA_GRAD_ROW=-1, HAS_GRAD_H=False, HAS_GRAD_A_SEQ=False,
        HAS_GRAD_V_FINAL=False, HAS_GRAD_A_FINAL=False, V_STARTS_AT_ZERO=False,
        A_STARTS_AT_ZERO=False, EVEN_STEPS=config.lean >= 2 and even,
        SPLIT=2 if config.segments > 1 else 0,
        SUM_SEGMENTS=neuron.learnable and config.segments > 1,  # as plans.backward_plan
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


def count(direction: str, op: str, dtype_name: str, config: KernelConfig, n_steps: int) -> dict:
    """One row: instructions an element, the loop's mix, registers."""
    kernel = aot.compile_kernel(
        "bwd" if direction == "bwd" else "fwd", DTYPES[dtype_name], config,
        switches(direction, op, config, n_steps), aligned=True,
    )  # fmt: skip
    loop = chunk_loop(disassemble(kernel.asm["cubin"], "-sass"))
    usage = disassemble(kernel.asm["cubin"], "-res-usage")
    registers, stack = re.search(r"REG:(\d+)", usage), re.search(r"STACK:(\d+)", usage)
    opcodes = collections.Counter(
        re.sub(r"^@!?U?P\w+\s+", "", text).split()[0].split(".")[0] for text in loop
    )
    chunks = 2 if config.lean >= 2 and config.prefetch else 1
    elements = chunks * config.chunk * config.per_thread
    return {
        "direction": direction, "op": op, "dtype": dtype_name, **config.as_dict(),
        "loop_instructions": len(loop), "elements_per_iteration": elements,
        "instructions_per_element": round(len(loop) / elements, 1),
        "registers": int(registers.group(1)) if registers else None,
        "stack_bytes": int(stack.group(1)) if stack else None,  # > 0: registers spilled
        "mix": " ".join(f"{k}:{v}" for k, v in opcodes.most_common(12)),
    }  # fmt: skip


def picks(n_steps: int, n_neurons: int) -> list[tuple[str, str, str, KernelConfig, KernelConfig]]:
    """(source, op, dtype, training forward, backward) at (T, N) for every op and tuned dtype
    on each GPU, as the runtime picks them there (``table.planned`` on the current entries);
    "default" where a GPU has no entry of the op and dtype."""
    out = []
    for gpu in GPUS:
        name, entries = table.gpu_entries(gpu)
        for op in NEURONS:
            for dtype_name in aot.TUNED_DTYPES:
                dtype = DTYPES[dtype_name]
                tuned = table.lookup(entries, name, op, "bwd", dtype_name, n_steps, n_neurons)
                bwd = table.planned(entries, name, op, "bwd", dtype, n_steps, n_neurons)
                fwd = table.planned(entries, name, op, "fwd_train", dtype, n_steps, n_neurons, bwd)
                out.append((name if tuned else "default", op, dtype_name, fwd, bwd))
    return list(dict.fromkeys(out))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out")
    parser.add_argument("--shapes", default="32x8388608")
    parser.add_argument("--directions", default="bwd")
    parser.add_argument("--configs", help="block/warps/chunk/pack_bits[/flags],... (config_ab)")
    parser.add_argument("--ops", default=",".join(NEURONS))
    parser.add_argument("--dtypes", default=",".join(aot.TUNED_DTYPES))
    args = parser.parse_args()
    facts = {**run_facts(torch.device("cpu")), "target": "sm_90 (cuobjdump)"}
    rows = []
    for shape in args.shapes.split(","):
        n_steps, n_neurons = map(int, shape.split("x"))
        if args.configs:
            configs = [parse_config(text) for text in args.configs.split(",")]
            cases = [
                ("given", op, dtype_name, config, config)
                for op in args.ops.split(",")
                for dtype_name in args.dtypes.split(",")
                for config in configs
            ]
        else:
            cases = picks(n_steps, n_neurons)
        for source, op, dtype_name, fwd, bwd in cases:
            for direction in args.directions.split(","):
                pick = bwd if direction == "bwd" else fwd
                for level in (0, 1, 2):
                    config = dataclasses.replace(pick, lean=level)
                    counted = count(direction, op, dtype_name, config, n_steps)
                    row = {"pick": source, "T": n_steps, "N": n_neurons, **counted, **facts}
                    rows.append(row)
                    print(source, shape, direction, op, dtype_name, config,
                          row["instructions_per_element"], row["registers"], flush=True)  # fmt: skip
    with open(args.out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return 0


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    sys.exit(main())
