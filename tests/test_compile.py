"""Every kernel variant compiles ahead of time for sm_90 (the interpreter is more lenient).

Compilation runs in subprocesses without TRITON_INTERPRET (it needs real JITFunctions).
"""

import pytest

from tether.kernels import aot


@pytest.mark.parametrize("name", [v[0] for v in aot.switch_variants()])
def test_variant_compiles_for_sm90(compiled_switches, name):
    """(Compiled in the background from the start of the session: ``conftest``.)"""
    assert compiled_switches[name] == "ok"


def test_a_thread_holds_whole_time_columns_of_the_tile(compiled_layouts):
    """The ``(chunk, block)`` tiles keep their time axis inside each thread (one thread and
    one warp along time), so a step's row is a register select: the vector-width hint
    ``PER_THREAD`` keeps Triton from taking 8 bf16 neurons a thread where the config has 4
    (bf16 at 256 neurons on 2 warps split time across warps, and ran 3x slower on an H100).
    (``aot.tile_layouts``, compiled in the background: ``conftest``.)"""
    layouts = dict(compiled_layouts)
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
