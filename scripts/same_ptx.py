"""Whether a kernel edit changed the compiled code: ``python scripts/same_ptx.py REV``.

Compiles ``tether/kernels/neuron.py`` as it is at git revision ``REV`` and as it is now, for
sm_90 (no GPU needed), over the ahead-of-time variants (every switch combination and every
config the runtime can pick: ``tether.kernels.aot``), and compares the PTX with line and
file information left out. A new constexpr switch (e.g. ``PREFETCH``) is compiled at its
default (``--new-switches NAME=VALUE,...``), the value that must reproduce the old code (a
switch the old code has too is compiled at that value on both sides: an edit of the code
under its other value); a new level of a switch (``LEAN`` 2) is left out (``--new-levels
LEAN=1``: the old top level).

Compiled as the runtime's JIT specializes the usual call (16-aligned pointers and N), so
that vector widths and layouts are the GPU's. ``--restamp``: every winners-table entry
measured on the code at ``REV`` (its ``kernel_hash`` is REV's direction hash) whose config
compiles to the same PTX now as then, on its own neuron's switches, gets the current hash:
it timed the same machine code. The others are dropped (they timed code that no longer
exists; their buckets fall back to the nearest entry until tuned again).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from triton.compiler.errors import CompilationError

from tether.kernels import aot, hashing
from tether.neurons import NEURONS
from tether.tuning.space import KernelConfig
from tether.tuning.table import TABLE_PATH

ROOT = Path(__file__).resolve().parents[1]
NOISE = re.compile(r"^\s*(\.loc|\.file|//|\$L__).*$", re.M)
DEBUG = re.compile(r"^\s*\.section\s+\.debug", re.M)  # line tables, file names: to the end
# The entry's parameter declarations: an argument appended to the kernel (e.g. ``maps_ptr``)
# adds a declaration; a variant that reads it shows that in the body (``ld.param``).
PARAMS = re.compile(r"^\s*\.param\s.*$", re.M)


def old_module(rev: str):
    """``neuron.py`` at ``rev``, imported under another name (its source kept for hashing)."""
    source = subprocess.run(["git", "show", f"{rev}:tether/kernels/neuron.py"], cwd=ROOT,
                            check=True, capture_output=True, text=True).stdout  # fmt: skip
    path = Path(tempfile.mkdtemp()) / "old_neuron.py"
    path.write_text(source)
    spec = importlib.util.spec_from_file_location("old_neuron", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module, source


def ptx(direction: str, kernel, variant, extra: dict) -> str:
    _, _, dtype, config, switches = variant
    saved = aot.KERNELS[direction]
    aot.KERNELS[direction] = kernel
    try:
        names = kernel.arg_names
        switches = {**switches, **{k: v for k, v in extra.items() if k in names}}
        compiled = aot.compile_kernel(direction, dtype, config, switches, aligned=True)
    finally:
        aot.KERNELS[direction] = saved
    text = compiled.asm["ptx"]
    debug = DEBUG.search(text)
    kept = PARAMS.sub("", NOISE.sub("", text[: debug.start()] if debug else text))
    return "\n".join(line for line in kept.splitlines() if line.strip())  # blank: a .loc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("rev")
    parser.add_argument("--new-switches", default="", help="NAME=VALUE,... for the new code")
    parser.add_argument(
        "--new-levels", default="", help="NAME=MAX,...: a level switch above MAX has no old code"
    )
    parser.add_argument("--restamp", action="store_true")
    args = parser.parse_args()
    extra = {k: eval(v) for k, v in (kv.split("=") for kv in args.new_switches.split(",") if kv)}  # noqa: S307
    levels = {k: int(v) for k, v in (kv.split("=") for kv in args.new_levels.split(",") if kv)}
    old, source = old_module(args.rev)
    kernels = {"fwd": old.neuron_fwd_kernel, "bwd": old.neuron_bwd_kernel}

    def has_old_code(variant) -> bool:
        """Not a new switch away from its old-code value, nor a level above the old ones."""
        values = {**variant[3].meta(), **variant[4]}
        return all(values.get(name, value) == value for name, value in extra.items()) and all(
            values.get(name, 0) <= top for name, top in levels.items()
        )

    variants = [
        v for v in [*aot.switch_variants(), *aot.runtime_variants(), *aot.config_variants()]
        if v[1] in kernels and has_old_code(v)
    ]  # fmt: skip
    seen, differ, new = set(), [], []
    for variant in variants:
        if variant[0] in seen:
            continue
        seen.add(variant[0])
        direction = variant[1]
        try:
            before = ptx(direction, kernels[direction], variant, extra)
        except CompilationError:  # no old code to compare (nor any entry that timed it)
            new.append(variant[0])
            continue
        after = ptx(direction, aot.KERNELS[direction], variant, extra)
        if before != after:
            differ.append(variant[0])
    print(f"{len(seen)} variants compiled at {args.rev} and now: {len(differ)} differ")
    for name in new:
        print(f"  did not compile at {args.rev}:", name)
    for name in differ[:20]:
        print("  differs:", name)
    if args.restamp:
        table = json.loads(TABLE_PATH.read_text())
        restamped, dropped = 0, []
        for entry_direction in ("fwd", "fwd_train", "bwd"):  # fwd_train: the fwd kernel
            direction = "bwd" if entry_direction == "bwd" else "fwd"
            old_hash = hashing.hashlib.sha256(
                hashing.kernel_code(source, entry_direction).encode()
            ).hexdigest()[:16]
            for entry in table["entries"]:
                if entry["direction"] != entry_direction or entry["kernel_hash"] != old_hash:
                    continue
                config = KernelConfig(**entry["config"])  # on its own neuron's switches
                variant = aot.config_variant(
                    direction, entry["dtype"], config, NEURONS[entry["op"]]
                )
                if variant[0] in differ:
                    dropped.append(entry)
                    continue
                if variant[0] not in seen:
                    seen.add(variant[0])
                    same = ptx(direction, kernels[direction], variant, extra) == ptx(
                        direction, aot.KERNELS[direction], variant, extra
                    )
                    if not same:
                        differ.append(variant[0])
                        dropped.append(entry)
                        continue
                entry["kernel_hash"] = hashing.kernel_hash(entry_direction)
                restamped += 1
        table["entries"] = [e for e in table["entries"] if all(e is not d for d in dropped)]
        TABLE_PATH.write_text(json.dumps(table, indent=1) + "\n")
        print(f"restamped {restamped} entries; dropped {len(dropped)} (their code changed):")
        for e in dropped:
            print(f"  {e['gpu']} {e['op']} {e['direction']} {e['dtype']} T{e['t_bucket']} "
                  f"N{e['n_bucket']} {e['config']}")  # fmt: skip
    return 1 if differ else 0


if __name__ == "__main__":
    sys.exit(main())
