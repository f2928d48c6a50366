"""Long sequences over few neurons (issue 13): PREFETCH (the next chunk's loads in flight
while a chunk computes) and LEAN (fewer instructions a step) against the reference and
against the kernels without them, the long space and grid, and the tuned training forward."""

import dataclasses
import json

import pytest
import torch

from tests.helpers import Case, check_against_reference, cover
from tether.benchmark.shapes import GRIDS, MAX_ELEMENTS
from tether.functional import ops, plans
from tether.kernels import hashing
from tether.neurons import NEURONS
from tether.tuning import autotune, table
from tether.tuning.space import (
    LONG_BLOCK_WARPS,
    KernelConfig,
    config_space,
    default_config,
    default_for,
    training_forward_config,
)

PARAM_MODE = {"lif": "scalar", "plif": "neuron", "alif": "neuron"}
# small blocks: fewer neurons than threads x 4, so the tile's time axis spreads over threads
SMALL = KernelConfig(block=32, num_warps=1, num_stages=1, chunk=8, pack_bits=32)


def force(monkeypatch, config: KernelConfig) -> None:
    """Every call runs ``config``, forward and backward."""
    monkeypatch.setattr(ops, "_PLANS", {})  # plans cache the configs chosen
    monkeypatch.setattr(table, "select_config", lambda *args: config)
    monkeypatch.setattr(table, "select_training_configs", lambda *args: (config, config))


# (prefetch, lean level); level 2 without prefetch: test_prefetch_configs_match_the_reference
SWITCHES = [(False, 0), (True, 0), (False, 1), (True, 1), (True, 2)]
SWITCH_IDS = ["plain", "prefetch", "lean", "prefetch-lean", "prefetch-lean2"]


@pytest.mark.parametrize(
    "n_steps,neuron,switches",
    cover(
        {str(t): t for t in (1, 8, 21, 32)},  # a step, a chunk, 3 with a tail, 4
        {op: op for op in ("lif", "plif", "alif")},
        dict(zip(SWITCH_IDS, SWITCHES)),
    ),
)
def test_prefetch_matches_the_reference(device, monkeypatch, n_steps, neuron, switches):
    """T=1 (no next chunk at all), a multiple of CHUNK (EVEN_STEPS) and not, an odd and an
    even count of chunks (lean 2 with prefetch walks two an iteration); N=70 (a partial last
    block of 32); every output gradient. ``switches``: (prefetch, lean)."""
    prefetch, lean = switches
    force(monkeypatch, dataclasses.replace(SMALL, prefetch=prefetch, lean=lean))
    case = Case(neuron=neuron, n_steps=n_steps, features=(35,), param_mode=PARAM_MODE[neuron])
    check_against_reference(case, device)


@pytest.mark.parametrize(
    "config",
    [
        KernelConfig(64, 1, 1, 16, 32, True),
        KernelConfig(128, 2, 1, 32, 32, True, lean=True),
        KernelConfig(256, 2, 2, 4, 16, True),
        KernelConfig(64, 1, 1, 8, 16, False, lean=True),
        KernelConfig(128, 2, 1, 4, 8, True, lean=2),
        KernelConfig(64, 1, 1, 16, 16, False, lean=2),
        KernelConfig(64, 1, 1, 32, 32, False, lean=2),  # bit 31 of a word: the sign
    ],
    ids=str,
)
def test_prefetch_configs_match_the_reference(device, monkeypatch, config):
    """Other chunks and packing widths, spikes' gradient alone, soft reset, no detach."""
    force(monkeypatch, config)
    case = Case(
        neuron="alif", n_steps=37, features=(150,), param_mode="neuron", soft_reset=True,
        detach_reset=False, grad_outputs=("spikes",),
    )  # fmt: skip
    check_against_reference(case, device)


@pytest.mark.parametrize("surrogate", [0, 1, 2])
@pytest.mark.parametrize("neuron", ["plif", "alif"])
def test_lean_2_without_prefetch_matches_the_reference(device, monkeypatch, neuron, surrogate):
    """Level 2 on one chunk an iteration, T a multiple of the chunk (no bounds checks), each
    surrogate's reciprocal."""
    force(monkeypatch, KernelConfig(32, 1, 1, 8, 32, False, lean=2))
    case = Case(neuron=neuron, n_steps=32, features=(35,), param_mode=PARAM_MODE[neuron],
                surrogate_type=surrogate)  # fmt: skip
    check_against_reference(case, device)


@pytest.mark.parametrize("neuron", ["lif", "alif"])
def test_prefetch_gives_the_same_bits(device, monkeypatch, neuron):
    """The switches move loads and address arithmetic, not the neuron's: outputs and
    gradients are equal (``torch.equal``: a zero's sign aside, ``x + 0.0`` against ``x``).
    Not lean 2: its reciprocal is another rounding (within the reference's tolerance)."""
    case = Case(neuron=neuron, n_steps=29, features=(40,), param_mode=PARAM_MODE[neuron])
    inputs = case.make_inputs(device, 3)
    results = []
    for prefetch, lean in SWITCHES[:4]:
        force(monkeypatch, dataclasses.replace(SMALL, prefetch=prefetch, lean=lean))
        args = case.prepare(inputs, truth=False)
        out = case.call(args)
        leaves = [v for v in args.values() if isinstance(v, torch.Tensor)]
        loss = sum((o.double() * (i + 1)).sum() for i, o in enumerate(out.values()))
        results.append([*out.values(), *torch.autograd.grad(loss, leaves, allow_unused=True)])
    for other in results[1:]:
        for a, b in zip(results[0], other):
            assert (a is None and b is None) or torch.equal(a, b)


@pytest.mark.parametrize(
    "neuron,switches,segments",
    cover(
        {op: op for op in ("lif", "plif", "alif")},
        {"plain": (False, 0), "both": (True, 1), "lean2": (True, 2)},
        {"2": 2, "4": 4},
    ),
)
def test_segments_match_the_reference(device, monkeypatch, neuron, switches, segments):
    """The backward in time segments (maps, then segments from the maps of the later ones):
    T=37 in chunks of 8 is 5 chunks, so 2 segments of 3 and 2 chunks, or 3 of 2, 2 and 1;
    every output gradient, the final states' too, and every parameter's. ``switches``:
    (prefetch, lean)."""
    prefetch, lean = switches
    force(monkeypatch, dataclasses.replace(SMALL, prefetch=prefetch, lean=lean, segments=segments))
    case = Case(neuron=neuron, n_steps=37, features=(35,), param_mode=PARAM_MODE[neuron])
    check_against_reference(case, device)


@pytest.mark.parametrize("soft_reset,detach_reset", [(True, False), (False, False)])
def test_segments_match_the_reference_without_detach(device, monkeypatch, soft_reset, detach_reset):
    """The reset's gradient adds the maps' cross terms (ALIF: a 2x2 map a segment)."""
    force(monkeypatch, KernelConfig(64, 1, 1, 4, 32, True, True, segments=8))
    case = Case(
        neuron="alif", n_steps=30, features=(150,), param_mode="neuron", soft_reset=soft_reset,
        detach_reset=detach_reset,
    )  # fmt: skip
    check_against_reference(case, device)


@pytest.mark.parametrize(
    "case",
    [
        Case(neuron="plif", n_steps=37, features=(4, 3, 3), param_mode="channel"),
        Case(neuron="alif", n_steps=37, features=(35,), param_mode="neuron", dtype=torch.bfloat16),
        Case(neuron="lif", n_steps=64, features=(35,), surrogate_type=2, with_init=False),
    ],
    ids=["plif-channel", "alif-bf16", "lif-no-init"],
)
@pytest.mark.parametrize("lean", [1, 2])
def test_segments_with_channel_parameters_16_bit_and_zero_state(device, monkeypatch, case, lean):
    """Per-channel sums over segments and groups; 16-bit I/O; states from zero (T=64: 8
    chunks in 4 equal segments)."""
    force(monkeypatch, KernelConfig(32, 1, 1, 8, 32, True, lean, segments=4))
    check_against_reference(case, device)


def test_segment_plan_launches_maps_then_segments():
    spec = autotune.op_spec("alif")
    values, n_params = {"decay_v": 0.5, "threshold": 1.0, "decay_a": 0.9, "beta": 0.1}, 1
    outputs = ops.NeuronOutput(torch.ones(1), None, None, None, None)
    config = KernelConfig(64, 1, 1, 8, 32, True, True, segments=4)
    plan = plans.backward_plan(spec, 100, 1000, values, n_params, False, (), outputs, config)
    # 13 chunks: 4 segments of 4, 4, 4 and 1 chunks; the first segment's map is not needed
    assert plans.segment_shape(100, config) == (4, 4)
    assert plan.grid == (16, 4, 1) and plan.constexprs["SPLIT"] == 2
    assert plan.maps.grid == (16, 3, 1) and plan.maps.constexprs["SPLIT"] == 1
    assert plan.fixed["n_segment_chunks"] == plan.maps.fixed["n_segment_chunks"] == 4
    whole = plans.backward_plan(spec, 8, 1000, values, n_params, False, (), outputs, config)
    assert whole.maps is None and whole.grid == (16, 1, 1) and whole.constexprs["SPLIT"] == 0


def test_entries_without_prefetch_lean_or_segments_load_with_them_off():
    entry = {"block": 512, "num_warps": 4, "num_stages": 1, "chunk": 8, "pack_bits": 32}
    assert KernelConfig(**entry).prefetch is False and KernelConfig(**entry).lean == 0
    assert KernelConfig(**entry).as_dict() == {
        **entry, "prefetch": False, "lean": 0, "segments": 1
    }  # fmt: skip
    # lean is a level; tables and sweeps written before level 2 hold booleans
    assert KernelConfig(**entry, lean=True) == KernelConfig(**entry, lean=1)
    assert type(KernelConfig(**entry, lean=True).lean) is int
    for config in (
        KernelConfig(64, 1, 1, 16, 32, True),
        KernelConfig(64, 1, 1, 16, 32, True, True),
        KernelConfig(64, 1, 1, 16, 32, True, True, 8),
        KernelConfig(64, 1, 1, 16, 32, True, 2, 8),
    ):
        assert KernelConfig.from_triton(config.to_triton()) == config
    with pytest.raises(ValueError, match="prefetch must be a bool"):
        KernelConfig(64, 1, 1, 16, 32, 1)
    for level in ("yes", 3, 1.0):
        with pytest.raises(ValueError, match=r"lean must be one of \(0, 1, 2\)"):
            KernelConfig(64, 1, 1, 16, 32, True, level)
    with pytest.raises(ValueError, match="segments must be a power of two"):
        KernelConfig(64, 1, 1, 16, 32, True, True, 3)


@pytest.mark.parametrize("direction", ["fwd", "bwd"])
def test_long_space_has_small_blocks_with_and_without_prefetch(direction):
    space = config_space(direction, torch.float32, "long")
    assert len(space) == len(set(space))
    small = [c for c in space if (c.block, c.num_warps) in LONG_BLOCK_WARPS]
    assert {(c.block, c.num_warps) for c in small} == set(LONG_BLOCK_WARPS)
    assert {c.chunk for c in small} == {8, 16, 32} and {c.prefetch for c in small} == {False, True}
    if direction == "bwd":  # one 32-step backward chunk: 25 s of compile each
        assert [c for c in small if c.chunk == 32] == [KernelConfig(64, 1, 1, 32, 32, True, True)]
    defaults = {default_config(direction, torch.float32, op, 512) for op in NEURONS}
    assert defaults <= set(space)  # the tuner always times the defaults
    assert not any(d.lean for d in defaults)
    assert all(
        c.pack_bits == 32 and c.num_stages == 1 and c.lean for c in small if c not in defaults
    )


def test_long_grid_spans_long_sequences_within_the_memory_bound():
    grid = GRIDS["long"]
    assert {t for t, _ in grid} == {512, 1024, 2048, 4096}
    assert {n for _, n in grid} == {2**12, 2**13, 2**14, 2**16}
    assert all(t * n <= MAX_ELEMENTS for t, n in grid) and (512, 8192) in grid
    assert table.t_bucket(4096) == 4096 and table.t_bucket(3000) == 4096


def test_training_forward_space_keeps_the_backward_layout():
    bwd = KernelConfig(512, 4, 1, 16, 16)
    space = config_space("fwd_train", torch.float32, "long", bwd=bwd)
    assert space[0] == training_forward_config(bwd)  # the fallback is always timed
    assert all((c.chunk, c.pack_bits) == (16, 16) for c in space)
    assert {c.prefetch for c in space} == {False, True}
    with pytest.raises(ValueError, match="needs the backward config"):
        config_space("fwd_train", torch.float32, "long")


def gpu_entry(direction, config, t_bucket=512, n_bucket=8192):
    return {
        "gpu": "NVIDIA H100 80GB HBM3", "capability": "9.0", "op": "lif",
        "direction": direction, "dtype": "float32", "t_bucket": t_bucket,
        "n_bucket": n_bucket, "kernel_hash": hashing.kernel_hash(direction),
        "config": config.as_dict(),
    }  # fmt: skip


@pytest.fixture
def on_h100(monkeypatch, tmp_path):
    """``write(entries)``: a winners table, and calls that look up on an H100."""
    path = tmp_path / "winners.json"
    monkeypatch.setenv("TETHER_WINNERS", str(path))
    monkeypatch.setattr(table, "_gpu", lambda device: "NVIDIA H100 80GB HBM3|9.0")
    monkeypatch.setattr(table, "_BY_BUCKET", {})

    def write(entries):
        path.write_text(json.dumps({"schema": 1, "entries": entries}))
        table._table_entries.cache_clear()
        table._BY_BUCKET.clear()

    yield write
    table._table_entries.cache_clear()


def test_training_forward_takes_its_entry_for_the_backward_layout(on_h100):
    cpu = torch.device("cpu")
    bwd = KernelConfig(64, 1, 1, 16, 32, True)
    fwd = KernelConfig(128, 1, 1, 16, 32, True)
    other_layout = KernelConfig(32, 1, 1, 8, 32, True)
    on_h100([gpu_entry("bwd", bwd), gpu_entry("fwd_train", fwd)])
    assert table.select_training_configs("lif", torch.float32, 500, 8192, cpu) == (fwd, bwd)
    # an entry tuned for another layout is never used: the fixed shape runs instead
    on_h100([gpu_entry("bwd", bwd), gpu_entry("fwd_train", other_layout)])
    got = table.select_training_configs("lif", torch.float32, 500, 8192, cpu)
    assert got == (training_forward_config(bwd, torch.float32, 8192), bwd)
    on_h100([gpu_entry("bwd", bwd)])  # no entry: today's fixed launch shape
    got = table.select_training_configs("lif", torch.float32, 500, 8192, cpu)
    assert got == (training_forward_config(bwd, torch.float32, 8192), bwd)
    with table.untuned():
        fwd_untuned, bwd_untuned = table.select_training_configs(
            "lif", torch.float32, 500, 8192, cpu
        )
    assert fwd_untuned == training_forward_config(bwd_untuned, torch.float32, 8192)


def test_the_sweep_tunes_the_training_forward_for_the_paired_backward(
    device, monkeypatch, tmp_path
):
    """fwd_train: the backward's layout, every config checked through that backward, the
    fallback timed, and the winner exported as a fwd_train entry with the forward's hash."""
    pytest.importorskip("pandas")
    from tether.benchmark import sweep

    monkeypatch.setattr(sweep, "gpu_key", lambda index: "cpu|0.0")
    monkeypatch.setenv("TETHER_WINNERS", str(tmp_path / "none.json"))  # no backward entry
    monkeypatch.setattr(autotune, "gpu_key", lambda index: "cpu|0.0")
    frame = sweep.sweep("alif", "fwd_train", "float32", [(21, 70)], device, "long", False)
    bwd = default_config("bwd", torch.float32, "alif", 21)
    assert set(zip(frame["chunk"], frame["pack_bits"])) == {(bwd.chunk, bwd.pack_bits)}
    assert not frame["rejected"].any() and frame["is_default"].sum() == 1
    best = sweep.winners(frame)
    assert best["ms"].notna().all()
    frame = frame.assign(device="NVIDIA H100 80GB HBM3", capability="9.0")
    fresh = sweep.export_winners(sweep.winners(frame), path=tmp_path / "w.json")
    assert fresh[0]["direction"] == "fwd_train"
    assert fresh[0]["kernel_hash"] == hashing.kernel_hash("fwd")
    # the switches travel with the winner: a lean winner is exported lean
    best = sweep.winners(frame.assign(lean=True))
    fresh = sweep.export_winners(best, path=tmp_path / "lean.json")
    assert fresh[0]["config"]["lean"] == 1
    assert fresh[0]["config"]["prefetch"] is bool(best.iloc[0]["prefetch"])


def test_the_shipped_space_times_the_shipped_config_and_its_lean_2_twin(
    device, monkeypatch, tmp_path
):
    """``--space shipped``: at each point, the table's config there, the same at lean 2 and
    the default, and nothing else; for ``fwd_train``, those of the paired backward's layout."""
    pytest.importorskip("pandas")
    from tether.benchmark import sweep

    monkeypatch.setattr(sweep, "gpu_key", lambda index: "NVIDIA H100 80GB HBM3|9.0")
    monkeypatch.setattr(autotune, "gpu_key", lambda index: "NVIDIA H100 80GB HBM3|9.0")
    bwd = KernelConfig(32, 1, 1, 8, 32, True, lean=1)
    fwd = KernelConfig(64, 1, 1, 8, 32, False)
    path = tmp_path / "winners.json"
    entries = [gpu_entry("bwd", bwd, 16, 64), gpu_entry("fwd_train", fwd, 16, 64)]
    path.write_text(json.dumps({"schema": 1, "entries": entries}))
    monkeypatch.setenv("TETHER_WINNERS", str(path))
    for direction, pick, paired in (("bwd", bwd, None), ("fwd_train", fwd, bwd)):
        frame = sweep.sweep("lif", direction, "float32", [(16, 70)], device, sweep.SHIPPED, False)
        default = default_for("lif", direction, torch.float32, 16, 70, paired)
        timed = {sweep.row_config(row) for _, row in frame.iterrows()}
        assert timed == {pick, dataclasses.replace(pick, lean=2), default}
        assert not frame["rejected"].any() and frame["ms"].notna().all()


@pytest.mark.parametrize(
    "direction,size",
    [("bwd", "micro"), ("bwd", "quick"), ("bwd", "long"), ("bwd", "segments"), ("fwd", "long")],
)
def test_spaces_try_lean_2_beside_each_prefetching_config(direction, size):
    """Level 2 is tuned, not assumed: each twin sits beside its prefetching config (the
    backward's 32-step chunks aside: compile time)."""
    space = config_space(direction, torch.float32, size)
    longest = 16 if direction == "bwd" else 32
    twins = [c for c in space if c.lean == 2]
    assert twins and all(c.prefetch and c.chunk <= longest for c in twins)
    assert all(any(dataclasses.replace(t, lean=level) in space for level in (0, 1)) for t in twins)
    prefetching = [c for c in space if c.prefetch and c.chunk <= longest]
    if size == "segments":  # the configs in segments, and the defaults as they are
        prefetching = [c for c in prefetching if c.segments > 1]
    assert all(dataclasses.replace(c, lean=2) in twins for c in prefetching)


def test_ab_scripts_set_the_lean_level(monkeypatch):
    """``config_ab.py`` reads ``l2``; ``lean_ab.py --backward`` sets the backward's level
    alone, ``--forward`` the forwards' (inference and training), neither every config's."""
    monkeypatch.syspath_prepend("scripts")
    import config_ab
    import lean_ab

    assert config_ab.parse_config("128/2/8/32/pl2") == KernelConfig(128, 2, 1, 8, 32, True, 2)
    assert config_ab.parse_config("64/1/16/32/ls8").lean == 1
    assert config_ab.parse_config("256/2/8/32/p").lean == 0
    fwd, bwd = KernelConfig(64, 1, 1, 8, 32, True, 1), KernelConfig(128, 2, 1, 8, 32, True)
    monkeypatch.setattr(table, "select_config", lambda *args: fwd)
    monkeypatch.setattr(table, "select_training_configs", lambda *args: (fwd, bwd))
    config, training = lean_ab.patched(2, "backward")
    assert config("lif", "fwd") == fwd and training() == (fwd, dataclasses.replace(bwd, lean=2))
    config, training = lean_ab.patched(0, "all")
    assert config("lif", "fwd").lean == 0 and [c.lean for c in training()] == [0, 0]
    config, training = lean_ab.patched(2, "forward")
    assert config("lif", "fwd").lean == 2 and config("lif", "bwd") == fwd
    assert training() == (dataclasses.replace(fwd, lean=2), bwd)


def test_sass_count_takes_the_longest_backward_branch_as_the_chunk_loop(monkeypatch):
    """``scripts/sass_count.py`` counts the body of the loop that its longest backward branch
    closes (an inner loop or a forward branch is not the chunk loop)."""
    monkeypatch.syspath_prepend("scripts")
    import sass_count

    sass = "\n".join(
        f"        /*{at:04x}*/                   {text} ;"
        for at, text in [
            (0x00, "MOV R1, c[0x0][0x28]"),
            (0x10, "FFMA R2, R3, R4, R5"),  # the chunk loop starts here
            (0x20, "@P0 BRA 0x60"),  # forward
            (0x30, "FADD R2, R2, R3"),  # an inner loop
            (0x40, "@P1 BRA 0x30"),
            (0x50, "STG.E desc[UR4][R6.64], R2"),
            (0x60, "@P2 BRA 0x10"),  # closes the chunk loop
            (0x70, "EXIT"),
        ]
    )
    loop = sass_count.chunk_loop(sass)
    assert len(loop) == 6 and loop[0].startswith("FFMA") and loop[-1].startswith("@P2 BRA")


def test_sass_count_counts_given_configs(monkeypatch, tmp_path):
    """``--configs``: each given config (config_ab's notation) for each op and dtype asked,
    at levels 0, 1 and 2, instead of the table's picks."""
    monkeypatch.syspath_prepend("scripts")
    import sass_count

    counted = []

    def count(direction, op, dtype_name, config, n_steps):
        counted.append((direction, op, dtype_name, config, n_steps))
        return {"op": op, "instructions_per_element": 1.0, "registers": 1}

    monkeypatch.setattr(sass_count, "count", count)
    monkeypatch.setattr(sass_count, "picks", lambda *shape: pytest.fail("the table was read"))
    out = tmp_path / "sass.csv"
    argv = ["sass_count.py", str(out), "--configs", "128/4/16/32/p,64/1/8/32", "--ops", "alif"]
    monkeypatch.setattr("sys.argv", [*argv, "--dtypes", "bfloat16", "--shapes", "32x1024"])
    assert sass_count.main() == 0
    given = [KernelConfig(128, 4, 1, 16, 32, True), KernelConfig(64, 1, 1, 8, 32)]
    assert counted == [
        ("bwd", "alif", "bfloat16", dataclasses.replace(config, lean=level), 32)
        for config in given
        for level in (0, 1, 2)
    ]
    assert out.read_text().count("given") == 6


def test_the_interpreters_cover_holds_every_pair_of_values(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    axes = [{str(i): i for i in range(n)} for n in (4, 3, 5, 2)]
    rows = [row.values for row in cover(*axes)]
    assert len(rows) == 4 * 3 * 5 * 2 // 2
    for a, b in [(0, 1), (0, 2), (0, 3), (1, 2), (1, 3), (2, 3)]:
        pairs = {(row[a], row[b]) for row in rows}
        assert len(pairs) == len(axes[a]) * len(axes[b]), (a, b)
    with pytest.raises(ValueError, match="three or more axes"):
        cover({"a": 1, "b": 2}, {"c": 3, "d": 4})


FLOATS = {"decay_v": 0.5, "threshold": 1.0, "decay_a": 0.9, "beta": 0.1}  # plan arguments


@pytest.mark.parametrize(
    ("case", "sums"),
    [
        (Case(neuron="plif", n_steps=20, features=(3, 4, 8), param_mode="channel"), (1, False)),
        (Case(neuron="alif", n_steps=20, features=(2, 8, 8), param_mode="channel"), (1, False)),
        (Case(neuron="alif", n_steps=9, features=(35,), param_mode="scalar"), (1, False)),
        (Case(neuron="plif", n_steps=12, features=(3, 4, 4), param_mode="channel"), (2, False)),
        (Case(neuron="alif", n_steps=12, features=(3, 2, 4), param_mode="channel"), (4, False)),
        (Case(neuron="plif", n_steps=12, batch=5, features=(8,), param_mode="neuron"), (8, True)),
        (Case(neuron="alif", n_steps=9, batch=3, features=(16,), param_mode="neuron"), (16, True)),
        (
            Case(neuron="plif", n_steps=9, batch=5, features=(4, 1, 2), param_mode="channel"),
            (8, True),
        ),
    ],
    ids=[
        "plif-a-program-an-entry",
        "alif-two-programs-an-entry",
        "alif-one-entry",
        "plif-runs-of-16",
        "alif-runs-of-8-last-program-half",
        "plif-residues-mod-8",
        "alif-residues-mod-16",
        "plif-residues-mod-8-over-channels-of-2",
    ],  # fmt: skip
)
def test_parameter_sums_per_program_match_the_reference(device, monkeypatch, case, sums):
    """Programs of 32 neurons sum the neurons that share a parameter entry in the kernel:
    the whole program (per channel over H*W = 32 and 64, one-entry parameters over 35
    neurons, the last program part-masked), runs of H*W = 16 and 8 (two and four sums a
    program, the last program half past the neurons), residues mod 8 and 16 (per-feature
    parameters over (B, F), as channels_last over C) and mod 8 over 4 channels of H*W = 2:
    gradients as the reference's."""
    force(monkeypatch, SMALL)
    n_params = case.n_neurons // case.batch if case.param_mode == "neuron" else 1
    if case.param_mode == "channel":
        n_params = case.features[0]
    spec = autotune.op_spec(case.neuron)._replace(group_size=case.group_size)
    plan = plans.backward_plan(
        spec, case.n_steps, case.n_neurons, FLOATS, n_params, True, ("decay_v",),
        ops.NeuronOutput(torch.ones(1), None, None, None, None), SMALL, program_sums=True,
    )  # fmt: skip
    assert (plan.constexprs["PROGRAM_SUMS"], plan.constexprs["PERIODIC_SUMS"]) == sums
    ran = []  # the Functions' backward plans: each one's switches
    allocate = ops.allocate_backward
    monkeypatch.setattr(
        ops,
        "allocate_backward",
        lambda spec, x, n_rows, plan: (
            ran.append((plan.constexprs["PROGRAM_SUMS"], plan.constexprs["PERIODIC_SUMS"]))
            or allocate(spec, x, n_rows, plan)
        ),
    )
    check_against_reference(case, device)
    assert ran and all(r == sums for r in ran)


def test_parameter_sums_stay_per_neuron_where_no_two_neurons_of_a_program_share():
    """Per-neuron parameters over more neurons than a block, segments and explicit-config
    launches (``program_sums`` not asked) keep one sum a neuron; runs and residues take
    whichever writes fewer sums."""
    spec, out = autotune.op_spec("plif"), ops.NeuronOutput(torch.ones(1), None, None, None, None)

    def sums(n_steps, n_params, group_size, config=SMALL):
        grouped = spec._replace(group_size=group_size)
        plan = plans.backward_plan(grouped, n_steps, 64 * 8, FLOATS, n_params, True,
                                   ("decay_v",), out, config, program_sums=True)  # fmt: skip
        return plan.constexprs["PROGRAM_SUMS"], plan.constexprs["PERIODIC_SUMS"]

    assert sums(8, 1, 1) == sums(8, 8, 64) == sums(8, 16, 32) == (1, False)
    assert sums(8, 32, 16) == (2, False)  # 16-neuron runs: two entries a 32-neuron program
    assert sums(8, 2, 8) == (4, False)  # runs of 8 (4 sums) before residues mod 16 (16)
    assert sums(8, 4, 1) == (4, True)  # residues mod 4 before runs of 1 (no sum)
    assert sums(8, 64 * 8, 1) == (0, False)  # one entry a neuron
    assert sums(8, 3, 1) == (0, False)  # a period of 3 neurons: no program shares evenly
    assert sums(512, 1, 1, dataclasses.replace(SMALL, segments=8)) == (0, False)  # segments
    plan = plans.backward_plan(spec, 8, 512, FLOATS, 1, True, ("decay_v",), out, SMALL)
    assert not plan.constexprs["PROGRAM_SUMS"]  # launch_backward: program_sums not asked
