"""Every kernel variant compiles ahead of time for sm_90 (the interpreter is more lenient).

Compilation runs in subprocesses without TRITON_INTERPRET (it needs real JITFunctions).
"""

import json
import os
import subprocess
import sys

import pytest

from tether.kernels import aot


@pytest.mark.parametrize("name", [v[0] for v in aot.switch_variants()])
def test_variant_compiles_for_sm90(compiled_switches, name):
    """(Compiled in the background from the start of the session: ``conftest``.)"""
    assert compiled_switches[name] == "ok"


LAYOUT_CHECK = """
import json, re, torch
from tether.kernels import aot
from tether.neurons import NEURONS
from tether.tuning.space import KernelConfig
out = {}
for direction in ("fwd", "bwd"):
    for dtype in (torch.float32, torch.bfloat16):
        for block, warps in ((128, 2), (256, 2), (512, 4), (1024, 4), (1024, 8)):
            config = KernelConfig(block, warps, 1, 8, 32)
            switches = (aot.fwd_switches(NEURONS["alif"], False, True, 0) if direction == "fwd"
                        else aot.bwd_switches(NEURONS["alif"], False, True, 0, 0))
            kernel = aot.compile_kernel(direction, dtype, config, switches, aligned=True)
            ttgir = kernel.asm["ttgir"]
            out[f"shared-{direction}-{dtype}-{block}-{warps}"] = kernel.metadata.shared
            layouts = re.findall(r"#ttg.blocked<\\{sizePerThread = \\[(\\d+), (\\d+)\\], "
                                 r"threadsPerWarp = \\[(\\d+), \\d+\\], warpsPerCTA = \\[(\\d+), \\d+\\]", ttgir)
            out[f"{direction}-{dtype}-{block}-{warps}"] = [list(map(int, l)) for l in layouts]
print(json.dumps(out))
"""


def test_a_thread_holds_whole_time_columns_of_the_tile():
    """The ``(chunk, block)`` tiles keep their time axis inside each thread (one thread and
    one warp along time), so a step's row is a register select: the vector-width hint
    ``PER_THREAD`` keeps Triton from taking 8 bf16 neurons a thread where the config has 4
    (bf16 at 256 neurons on 2 warps split time across warps, and ran 3x slower on an H100)."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    done = subprocess.run([sys.executable, "-c", LAYOUT_CHECK], env=env, capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    layouts = json.loads(done.stdout.splitlines()[-1])
    shared = {k: layouts.pop(k) for k in list(layouts) if k.startswith("shared-")}
    # The state tiles (ALIF: v and a before each step) take the input tile's layout: a layout
    # of their own made every row move through shared memory, twice a step (a_prev's tile
    # started as zeros, 1 neuron a thread; 1 KiB of shared memory, ~4% of ALIF's bf16 step).
    # At 8 neurons a thread in 16-bit (1024 on 4 warps) the 32-bit stores of a chunk's
    # checkpoint and spike word, and of the final state, take 4 a thread: 4 KiB, once a chunk.
    used = {k for k, size in shared.items() if size}
    assert used <= {f"shared-{d}-torch.bfloat16-1024-4" for d in ("fwd", "bwd")}, shared
    for name, found in layouts.items():
        tiles = [layout for layout in found if layout[1] > 1]  # the vectorized 2-D layouts
        assert tiles, name
        assert all(threads == 1 and warps == 1 for _, _, threads, warps in tiles), (name, found)
