"""The winners table loader, bucket lookup, stale hashes, defaults and the config space."""

import ast
import itertools
import json
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from tests.conftest import compile_env
from tests.helpers import Case, check_against_reference, margin_ok
from tether.functional import ops
from tether.kernels import aot, hashing, neuron
from tether.neurons import OPS
from tether.tuning import autotune, space, table
from tether.tuning.space import (
    DTYPES,
    KernelConfig,
    config_space,
    default_config,
    training_forward_config,
)

CONFIG = {"block": 512, "num_warps": 4, "num_stages": 1, "chunk": 8, "pack_bits": 16}


def entry(**overrides):
    base = {
        "gpu": "NVIDIA H100 80GB HBM3", "capability": "9.0", "op": "lif", "direction": "fwd",
        "dtype": "float32", "t_bucket": 32, "n_bucket": 2**23,
        "kernel_hash": hashing.kernel_hash("fwd"), "config": dict(CONFIG),
    }  # fmt: skip
    return {**base, **overrides}


def test_shipped_table_is_valid():
    assert isinstance(table.load_table(table.TABLE_PATH), list)


def test_shipped_entries_are_for_the_current_kernel():
    """A kernel edit makes its direction's shipped entries stale: re-tune (or say so) in the
    same change."""
    stale = [
        e for e in table.load_table() if e["kernel_hash"] != hashing.kernel_hash(e["direction"])
    ]
    assert not stale, f"{len(stale)} shipped entries carry another kernel's hash"


def test_shipped_entries_beat_the_default_they_replace():
    """Each entry's time (ms) against the default config's in the same sweep (default_ms)."""
    slower = [e for e in table.load_table() if e["ms"] > e["default_ms"]]
    assert not slower, f"{len(slower)} shipped entries are slower than the default"


def test_kernel_hash_per_direction_covers_what_the_kernel_reaches():
    """An edit to one kernel leaves the other direction's entries valid; an edit to a helper
    both call, or to a module constant, invalidates both; comments change nothing."""
    source = Path(neuron.__file__).read_text()

    def hashes(text):
        return {d: hashing.kernel_code(text, d) for d in ("fwd", "bwd")}

    base = hashes(source)
    assert base["fwd"] != base["bwd"]
    bwd_edit = source.replace(
        "def neuron_bwd_kernel(", "def neuron_bwd_kernel(\n    unused_arg,", 1
    )
    assert hashes(bwd_edit)["fwd"] == base["fwd"] and hashes(bwd_edit)["bwd"] != base["bwd"]
    fwd_edit = source.replace(
        "def neuron_fwd_kernel(", "def neuron_fwd_kernel(\n    unused_arg,", 1
    )
    assert hashes(fwd_edit)["bwd"] == base["bwd"] and hashes(fwd_edit)["fwd"] != base["fwd"]
    helper_edit = source.replace("def _param(value,", "def _param(value, unused_arg,", 1)
    assert all(hashes(helper_edit)[d] != base[d] for d in base)
    constant_edit = source.replace("PI = tl.constexpr(3.141592653589793)", "PI = tl.constexpr(3.0)")
    assert all(hashes(constant_edit)[d] != base[d] for d in base)
    assert hashes(source.replace("import triton\n", "import triton  # a comment\n", 1)) == base


def test_kernel_hash_leaves_out_empty_fields():
    """Newer Pythons add empty fields (``type_params=[]``) to the tree: the hash ignores them."""
    text = hashing._canonical(ast.parse("def f(x):\n    return x"))
    assert text == (
        "Module(body=[FunctionDef(name='f', args=arguments(args=[arg(arg='x')]), "
        "body=[Return(value=Name(id='x', ctx=Load()))])])"
    )


@pytest.mark.parametrize(
    "broken,message",
    [
        ({"schema": 2, "entries": []}, "'schema': 1"),
        ({"schema": 1, "entries": {}}, "'entries' must be a list"),
        ({"schema": 1, "entries": [entry(op="gru")]}, "op='gru'"),
        ({"schema": 1, "entries": [entry(t_bucket="32")]}, "'t_bucket' of type int"),
        ({"schema": 1, "entries": [entry(config={**CONFIG, "chunk": 3})]}, "bad config"),
        ({"schema": 1, "entries": [entry(config={**CONFIG, "pack_bits": 4})]}, "pack_bits"),
    ],
)
def test_malformed_tables_are_rejected_with_a_reason(tmp_path, broken, message):
    path = tmp_path / "winners.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(table.WinnersTableError, match=message):
        table.load_table(path)


def test_invalid_json_is_rejected(tmp_path):
    path = tmp_path / "winners.json"
    path.write_text("{not json")
    with pytest.raises(table.WinnersTableError, match="not valid JSON"):
        table.load_table(path)


def test_buckets_are_clamped_powers_of_two():
    assert [table.t_bucket(t) for t in (1, 5, 32, 33, 2000, 5000)] == [1, 8, 32, 64, 2048, 4096]
    assert table.n_bucket(3) == 2**10 and table.n_bucket(2**23 + 1) == 2**24
    assert table.n_bucket(2**30) == 2**26


def test_lookup_takes_the_nearest_bucket_of_the_same_key():
    near = entry(t_bucket=32, n_bucket=2**20, config={**CONFIG, "block": 256, "num_warps": 2})
    far = entry(t_bucket=1024, n_bucket=2**10, config={**CONFIG, "block": 2048, "num_warps": 8})
    other_op = entry(op="alif", t_bucket=32, n_bucket=2**23)
    entries = [far, near, other_op]
    found = table.lookup(entries, near["gpu"], "lif", "fwd", "float32", 40, 2**21)
    assert found == KernelConfig(**near["config"])
    assert table.lookup(entries, near["gpu"], "plif", "fwd", "float32", 40, 2**21) is None
    assert table.lookup(entries, "NVIDIA A100", "lif", "fwd", "float32", 40, 2**21) is None


def test_stale_entries_are_ignored(tmp_path, monkeypatch):
    path = tmp_path / "winners.json"
    stale = entry(kernel_hash="0" * 16)
    path.write_text(json.dumps({"schema": 1, "entries": [stale]}))
    monkeypatch.setenv("TETHER_WINNERS", str(path))
    table._table_entries.cache_clear()
    h100 = f"{stale['gpu']}|{stale['capability']}"
    try:
        assert table.gpu_entries(h100) == (stale["gpu"], [])
        path.write_text(json.dumps({"schema": 1, "entries": [entry()]}))
        table._table_entries.cache_clear()
        assert table.gpu_entries(h100) == (stale["gpu"], [entry()])
        assert table.gpu_entries(f"{stale['gpu']}|8.0") == (stale["gpu"], [])
    finally:
        table._table_entries.cache_clear()


def test_planned_is_the_nearest_entry_else_the_default_filled_to_a_gpu_only():
    tuned = entry(t_bucket=512, n_bucket=8192, config={**CONFIG, "block": 256, "num_warps": 2})
    gpu, dtype = tuned["gpu"], torch.float32
    assert table.planned([tuned], gpu, "lif", "fwd", dtype, 500, 8192) == KernelConfig(
        **tuned["config"]
    )
    filled = table.planned([tuned], gpu, "plif", "fwd", dtype, 500, 8192)
    assert filled == space.default_config("fwd", dtype, "plif", 500, 8192)
    assert filled != space.default_config("fwd", dtype, "plif", 500)  # smaller block
    assert table.planned([], None, "plif", "fwd", dtype, 500, 8192) == space.default_config(
        "fwd", dtype, "plif", 500
    )
    key = f"{gpu}|{tuned['capability']}"  # gpu_entries' argument, not planned's
    with pytest.raises(ValueError, match="gpu must be the GPU's name"):
        table.planned([tuned], key, "lif", "fwd", dtype, 500, 8192)


def test_a_winner_over_many_neurons_does_not_underfill_a_call_over_few():
    # ALIF fp32 backward tuned at 128 x 2^22 (128 neurons a program) and looked up at
    # 512x8192: 64 programs, where the default walks time in 8 segments of 64-neuron programs
    config = {**CONFIG, "block": 128, "num_warps": 2, "chunk": 16, "pack_bits": 32}
    tuned = entry(op="alif", direction="bwd", t_bucket=128, n_bucket=2**22, config=config)
    gpu, dtype = tuned["gpu"], torch.float32
    default = space.default_for("alif", "bwd", dtype, 512, 8192)
    assert default.segments > 1
    assert table.planned([tuned], gpu, "alif", "bwd", dtype, 512, 8192) == default
    # its own bucket, a near one (under FAR_NEURONS times fewer neurons), and enough programs
    for n_steps, n_neurons in ((128, 2**22), (512, 2**22 // 8), (1024, 2**16)):
        found = table.planned([tuned], gpu, "alif", "bwd", dtype, n_steps, n_neurons)
        assert found == KernelConfig(**config), (n_steps, n_neurons)


def test_a_winner_in_segments_runs_only_where_the_default_walks_in_segments():
    # the H100's lone ALIF fp32 backward entry (512x8192, 8 segments) looked up at
    # 1024x65536 ran 0.754 ms forward+backward against the default's 0.527 (6531c2e)
    config = {**CONFIG, "block": 64, "num_warps": 1, "chunk": 16, "prefetch": True,
              "lean": 2, "segments": 8}  # fmt: skip
    tuned = entry(op="alif", direction="bwd", t_bucket=512, n_bucket=8192, config=config)
    gpu, dtype = tuned["gpu"], torch.float32
    assert table.planned([tuned], gpu, "alif", "bwd", dtype, 512, 8192) == KernelConfig(**config)
    for n_steps, n_neurons in ((1024, 65536), (32, 2**23), (8, 4096)):
        default = space.default_for("alif", "bwd", dtype, n_steps, n_neurons)
        assert default.segments == 1
        assert table.planned([tuned], gpu, "alif", "bwd", dtype, n_steps, n_neurons) == default
    # where the default walks in segments: the winner, in the call's number of segments
    assert space.default_for("alif", "bwd", dtype, 2048, 4096).segments == 16
    found = table.planned([tuned], gpu, "alif", "bwd", dtype, 2048, 4096)
    assert found == KernelConfig(**{**config, "segments": 16})
    # ... unless the winner's block leaves too many programs to split: 512 of 64 neurons
    # at 256x32768, where the default walks 128-neuron programs in 4 segments
    default = space.default_for("alif", "bwd", dtype, 256, 32768)
    assert (default.block, default.segments) == (128, 4)
    assert table.planned([tuned], gpu, "alif", "bwd", dtype, 256, 32768) == default


def test_table_moves_lists_the_calls_a_table_change_moves():
    from tether.benchmark.sweep import N_BUCKETS, T_BUCKETS, moves_report, table_moves

    config = {**CONFIG, "block": 64, "num_warps": 1, "chunk": 16, "pack_bits": 32,
              "prefetch": True, "lean": 2, "segments": 8}  # fmt: skip
    tuned = entry(op="alif", direction="bwd", t_bucket=512, n_bucket=8192, config=config)
    moved = list(table_moves([], [tuned]))
    assert moved and {m[:4] for m in moved} == {(tuned["gpu"], "alif", "bwd", "float32")}
    for *_, n_steps, _, was, now in moved:  # segmented calls only, now at lean 2
        assert n_steps >= 256 and was.segments > 1 and now.segments > 1 and now.lean == 2
    assert (512, 8192) in {(m[4], m[5]) for m in moved}
    report = moves_report(moved)
    total = len(T_BUCKETS) * len(N_BUCKETS)
    assert report[0].endswith(f"bwd float32: {len(moved)} of {total} calls moved")
    assert report[-1] == f"{len(moved)} calls moved" and moves_report([]) == ["no call moved"]


def test_table_moves_picks_compare_two_trees_dumps(monkeypatch, tmp_path):
    """``scripts/table_moves.py --dump`` writes this tether's picks (its code and table);
    ``--picks`` compares two dumps: nothing moved against itself, and the one call whose
    config differs in the other dump, with both configs."""
    monkeypatch.syspath_prepend("scripts")
    import table_moves

    (shipped := tmp_path / "shipped.json").write_text(json.dumps(table_moves.picks()))
    rows = json.loads(shipped.read_text())
    assert table_moves.compare_picks(shipped, shipped) == []
    changed = next(r for r in rows if r[1:4] == ["alif", "bwd", "float32"] and r[4] == 512)
    was = KernelConfig(**changed[6])
    changed[6] = {**changed[6], "lean": 1 - min(was.lean, 1)}
    (other := tmp_path / "other.json").write_text(json.dumps(rows))
    assert table_moves.compare_picks(shipped, other) == [
        (*changed[:6], was, KernelConfig(**changed[6]))
    ]


def test_unknown_gpu_and_cpu_fall_back_to_the_default():
    cpu = torch.device("cpu")
    for direction in ("fwd", "bwd"):
        config = table.select_config("lif", direction, torch.float32, 32, 2**20, cpu)
        assert config == default_config(direction, torch.float32, "lif", 32)
    assert table._choose("NVIDIA Z9|12.0", "lif", "fwd", torch.float32, 32, 2**20, cpu) == (
        default_config("fwd", torch.float32),
        True,
    )


def test_kernel_config_checks_its_fields():
    with pytest.raises(ValueError, match="block must be a power of two"):
        KernelConfig(300, 4, 1, 8, 32)
    with pytest.raises(ValueError, match="chunk .* must divide pack_bits"):
        KernelConfig(512, 4, 1, 16, 8)


@pytest.mark.parametrize("op", OPS)
def test_space_contains_the_defaults(op):
    for direction in ("fwd", "bwd"):
        for dtype in (torch.float32, torch.bfloat16):
            for n_steps in (1, 8, 9, 64, 1024):
                config = default_config(direction, dtype, op, n_steps)
                assert config in config_space(direction, dtype)


def test_default_heuristic_follows_the_sweeps():
    """fp32: forward 256 x 2 warps; backward chunk 8 with parameter-gradient sums (PLIF,
    ALIF: prefetching) or T <= 8, chunk 16 for LIF above; 16-bit I/O: 1024 x 4 warps, chunk
    8; the adaptive backward on 128 x 2 warps, prefetching, in every dtype."""
    fp32, bf16 = torch.float32, torch.bfloat16
    assert default_config("fwd", fp32) == KernelConfig(256, 2, 1, 8, 32)
    assert default_config("bwd", fp32, "lif", 32) == KernelConfig(512, 4, 1, 16, 32)
    assert default_config("bwd", fp32, "lif", 8).chunk == 8
    assert default_config("bwd", fp32, "plif", 128) == KernelConfig(512, 4, 1, 8, 32, True)
    assert default_config("fwd", bf16, "alif", 64) == KernelConfig(1024, 4, 1, 8, 32)
    assert default_config("bwd", bf16, "plif", 64) == KernelConfig(1024, 4, 1, 8, 32)
    for dtype in (fp32, bf16):
        assert default_config("bwd", dtype, "alif", 64) == KernelConfig(128, 2, 1, 8, 32, True)


def test_defaults_fill_the_gpu_for_few_neurons():
    """fp32 defaults that would launch fewer than MIN_PROGRAMS programs step down the ladder,
    prefetching where two tiles fit, and lean; one config a table bucket; 16-bit I/O and
    large N keep the default's shape."""
    fp32, bf16 = torch.float32, torch.bfloat16
    fast = {"prefetch": True, "lean": True}
    assert default_config("bwd", fp32, "lif", 64, 8192) == KernelConfig(64, 1, 1, 16, 32, **fast)
    # the inference forward over T > 16 (a bucket of 32 and up) in prefetched 32-step chunks
    assert default_config("fwd", fp32, "lif", 512, 2**14) == KernelConfig(128, 2, 1, 32, 32, **fast)
    assert default_config("fwd", fp32, "lif", 17, 2**14) == KernelConfig(128, 2, 1, 32, 32, **fast)
    assert default_config("fwd", fp32, "lif", 16, 2**14) == KernelConfig(128, 2, 1, 8, 32, **fast)
    assert default_config("fwd", fp32, "lif", 512, 2**15).chunk == 8  # 256 on 2 warps: as is
    bwd = default_config("bwd", fp32, "lif", 512)
    assert training_forward_config(bwd, fp32, 2**16) == KernelConfig(512, 4, 1, 16, 32, lean=True)
    for n_neurons in (8193, 12000, 16384):  # one bucket
        filled = default_config("bwd", fp32, "lif", 64, n_neurons)
        assert filled == KernelConfig(128, 2, 1, 16, 32, **fast)
    for n_neurons in (2**17, 2**20, 10**7):
        assert training_forward_config(bwd, fp32, n_neurons) == training_forward_config(bwd)
        assert default_config("bwd", fp32, "lif", 512, n_neurons) == bwd
    assert default_config("bwd", bf16, "lif", 512, 8192) == default_config("bwd", bf16, "lif")
    assert training_forward_config(bwd, bf16, 8192) == training_forward_config(bwd)
    for op, direction, n_neurons in itertools.product(OPS, ("fwd", "bwd"), (1, 100, 3000, 9000)):
        for n_steps in (1, 8, 9, 1024):
            config = default_config(direction, fp32, op, n_steps, n_neurons)
            bucket = table.n_bucket(max(n_neurons, 1024))
            assert bucket >= space.MIN_PROGRAMS * config.block or config.block == 64
            # two prefetched tiles fit in registers (the forward's 32-step chunk was measured)
            tile = config.per_thread * config.chunk
            assert config.per_thread >= 2 and (tile <= 32 or direction == "fwd")
            assert config in space.defaults(direction, fp32)  # compiled in CI, timed in tunes


def test_long_backward_defaults_walk_time_in_segments():
    """The fp32 backward over few neurons and long T: 2 neurons a thread in 16-step chunks,
    prefetching, in enough segments for about SEGMENT_PROGRAMS programs (each at least
    MIN_SEGMENT_STEPS long), as every long sweep's winner ran; one walk where the programs
    already fill the GPU, at short T, in 16-bit I/O and off a GPU (no N)."""
    fp32, bf16 = torch.float32, torch.bfloat16
    long = {"prefetch": True, "lean": True}
    for op in OPS:  # the swept long shapes: 8 segments at 512x8192, 16 at 2048x4096
        assert default_config("bwd", fp32, op, 512, 8192) == KernelConfig(
            64, 1, 1, 16, 32, **long, segments=8
        )
        assert default_config("bwd", fp32, op, 2048, 4096) == KernelConfig(
            64, 1, 1, 16, 32, **long, segments=16
        )
        assert default_config("bwd", fp32, op, 1024, 65536).segments == 1  # 512+ programs
        assert default_config("bwd", fp32, op, 2048, 4096 * 64).segments == 1
        assert default_config("bwd", bf16, op, 2048, 4096).segments == 1
        assert default_config("bwd", fp32, op, 2048).segments == 1
        assert default_config("fwd", fp32, op, 2048, 4096).segments == 1
    # T's bucket 128: one walk; 256: 4 segments; ... (N, block): 2 neurons a thread only
    for n_steps, n_neurons, segments in [(128, 1024, 1), (129, 1024, 4), (300, 1024, 8),
                                         (1024, 1024, 16), (4096, 8192, 8), (4096, 16384, 8),
                                         (4096, 32768, 1), (4096, 65536, 1)]:  # fmt: skip
        config = default_config("bwd", fp32, "lif", n_steps, n_neurons)
        assert config.segments == segments, (n_steps, n_neurons)
        programs = -(-table.n_bucket(n_neurons) // config.block) * config.segments
        assert programs <= space.SEGMENT_PROGRAMS or segments == 1
        assert segments == 1 or table.t_bucket(n_steps) >= space.MIN_SEGMENT_STEPS * segments


@pytest.mark.parametrize("n_steps", [5, 40])
@pytest.mark.parametrize("op", OPS)
def test_filled_defaults_match_the_reference(device, monkeypatch, op, n_steps):
    """A GPU without table entries (faked here, so the interpreter runs the same configs)
    runs few neurons on the filled defaults: training (forward, backward, every output and
    gradient) and inference against the reference, and the configs picked are the filled."""
    monkeypatch.setattr(table, "_gpu", lambda device: "NVIDIA Z9|12.0")
    monkeypatch.setattr(table, "_BY_BUCKET", {})
    monkeypatch.setattr(ops, "_PLANS", {})
    picked = []
    select, select_training = table.select_config, table.select_training_configs

    def recording(*args):
        picked.append(select(*args))
        return picked[-1]

    def recording_training(*args):
        picked.extend(select_training(*args))
        return tuple(picked[-2:])

    monkeypatch.setattr(table, "select_config", recording)
    monkeypatch.setattr(table, "select_training_configs", recording_training)
    case = Case(neuron=op, n_steps=n_steps, features=(150,))  # N = 300: 64 on 1 warp
    check_against_reference(case, device)
    inputs = next(i for s in range(20) if margin_ok(case, i := case.make_inputs(device, s)))
    with torch.no_grad():
        spikes = case.call(case.prepare(inputs, truth=False))["spikes"]
    expected = case.reference(case.prepare(inputs, truth=True))["spikes"]
    assert torch.equal(spikes.cpu().double(), expected.cpu().double())
    assert {(c.block, c.num_warps, c.lean) for c in picked} == {(64, 1, True)}
    inference = [c for c in picked if c.chunk == 32]  # the inference forward over T > 16
    assert bool(inference) == (n_steps > 16) and all(c.prefetch for c in inference)


SAMPLE = [config_space("bwd", torch.float32)[i] for i in (0, 7, 19, 33, 47, 59)]


@pytest.mark.parametrize("config", SAMPLE, ids=str)
def test_sampled_configs_match_the_reference(device, monkeypatch, config):
    """A sample of the space, forced as both the forward and the backward config."""
    monkeypatch.setattr(ops, "_PLANS", {})  # plans cache the configs chosen
    monkeypatch.setattr(table, "select_config", lambda *args: config)
    monkeypatch.setattr(table, "select_training_configs", lambda *args: (config, config))
    check_against_reference(Case(neuron="alif", n_steps=21, features=(300,)), device)


@pytest.mark.parametrize("name", [v[0] for v in aot.config_variants()])
def test_runtime_configs_outside_the_space_and_a_sample_compile_for_sm90(compiled_configs, name):
    assert compiled_configs[name] == "ok"


def test_compiled_configs_cover_every_default_and_winner():
    """The test command's compiles and the exhaustive job's, together."""
    names = {v[0] for v in [*aot.config_variants(), *aot.space_variants()]}
    expected = [
        (e["direction"], e["dtype"], KernelConfig(**e["config"]))
        for e in table.load_table(table.TABLE_PATH)
    ]
    for direction, dtype_name in (("fwd", "float32"), ("bwd", "float32"), ("bwd", "bfloat16")):
        expected += [
            (direction, dtype_name, default_config(direction, DTYPES[dtype_name], op, n_steps))
            for op in OPS
            for n_steps in (4, 64)
        ]
    missing = [e for e in expected if aot.config_variant(*e)[0] not in names]
    assert not missing


@pytest.fixture(scope="module")
def compiled_space() -> dict[str, str]:
    """``python -m tether.kernels.aot --space``, on every core."""
    command = [sys.executable, "-m", "tether.kernels.aot", "--space"]
    done = subprocess.run(command, env=compile_env(), capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    return json.loads(done.stdout)


@pytest.mark.exhaustive
@pytest.mark.parametrize("name", [v[0] for v in aot.space_variants()])
def test_every_config_in_the_space_compiles_for_sm90(compiled_space, name):
    assert compiled_space[name] == "ok"


def test_autotune_env_var_tunes_unknown_gpus_once(monkeypatch):
    calls = []

    def fake_autotune(op, direction, dtype, n_steps, n_neurons, device):
        calls.append((op, direction, n_steps, n_neurons))
        return KernelConfig(256, 2, 1, 8, 32)

    monkeypatch.setattr(autotune, "autotune_online", fake_autotune)
    monkeypatch.setenv("TETHER_AUTOTUNE", "1")
    cpu = torch.device("cpu")
    chosen = table._choose("NVIDIA Z9|12.0", "lif", "bwd", torch.float32, 32, 2**20, cpu)
    assert chosen == (KernelConfig(256, 2, 1, 8, 32), True)
    assert calls == [("lif", "bwd", 32, 2**20)]
    monkeypatch.delenv("TETHER_AUTOTUNE")
    assert table._choose("NVIDIA Z9|12.0", "lif", "bwd", torch.float32, 32, 2**20, cpu) == (
        default_config("bwd", torch.float32, "lif", 32),
        True,
    )
