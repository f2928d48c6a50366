"""Tuning through Triton's autotuner (``tether.tuning.autotune``): the config space as
``triton.Config``, pruning, the key, Triton's result cache across processes, the explicit
path under the interpreter, no tuning inside capture or compile tracing; on a GPU, the
online winner against the default and against the offline sweep."""

import json
import math
import os
import subprocess
import sys
import textwrap
import warnings

import pytest
import torch
import triton
import triton.testing

import tether
from tether.functional import ops, plans
from tether.kernels import INTERPRET, neuron_bwd_kernel, neuron_fwd_kernel
from tether.neurons import NEURONS, OPS
from tether.tuning import autotune, table
from tether.tuning.space import SPACE_SIZES, KernelConfig, config_space, default_config

gpu = pytest.mark.skipif(not torch.cuda.is_available(), reason="times kernels on a GPU")
UNKNOWN_GPU = "NVIDIA Z9|12.0"  # no table entry: TETHER_AUTOTUNE=1 tunes it


def point(op="lif", direction="fwd", n_steps=32, n_neurons=4096, dtype=torch.float32, **kw):
    """A tuning point on CPU tensors: enough for the key and pruning (no kernel runs; a
    broadcast zero, so that large shapes take no memory)."""
    x = torch.zeros((), dtype=dtype).expand(n_steps, n_neurons)
    params = {name: 0.5 for name in NEURONS[op].params}
    return autotune.Point(op, direction, x, x, params, **kw)


@pytest.mark.parametrize("size", SPACE_SIZES)
@pytest.mark.parametrize("direction", ["fwd", "bwd"])
def test_space_maps_to_triton_configs_of_the_kernel_meta_parameters(direction, size):
    kernel = {"fwd": neuron_fwd_kernel, "bwd": neuron_bwd_kernel}[direction]
    for config in config_space(direction, torch.float32, size):
        triton_config = config.to_triton()
        assert isinstance(triton_config, triton.Config)
        assert set(triton_config.kwargs) <= set(kernel.arg_names)
        assert (triton_config.num_warps, triton_config.num_stages) == (
            config.num_warps,
            config.num_stages,
        )
        assert KernelConfig.from_triton(triton_config) == config


@pytest.mark.parametrize("size", SPACE_SIZES)
@pytest.mark.parametrize("op", OPS)
def test_every_space_holds_the_defaults(op, size):
    """The sweep and the tuner always time the default: the winner is never slower."""
    for direction in ("fwd", "bwd"):
        for dtype in (torch.float32, torch.bfloat16):
            for n_steps in (1, 8, 9, 1024):
                default = default_config(direction, dtype, op, n_steps)
                assert default in config_space(direction, dtype, size)


@pytest.fixture
def fresh_tuning(monkeypatch, tmp_path):
    """An empty Triton cache and a new online tuner, as on a first run on a GPU."""
    monkeypatch.setenv("TRITON_CACHE_DIR", str(tmp_path))
    autotune.online_tuner.cache_clear()
    yield
    autotune.online_tuner.cache_clear()


def pruned(p, direction="bwd", size="full", extra=None):
    """What a tuner of ``p`` keeps: its space and ``extra``, by default the point's default
    (as ``sweep`` builds it)."""
    extra = [p.default] if extra is None else extra
    space = dict.fromkeys([*config_space(direction, torch.float32, size), *extra])
    configs = [c.to_triton() for c in space]
    kept = autotune.prune(configs, {"point": p}, **p.key)
    return [KernelConfig.from_triton(c) for c in kept]


def test_prune_drops_configs_that_cannot_fit_the_bucket_and_keeps_the_default():
    small = point(direction="bwd", n_steps=4, n_neurons=1000)
    kept = pruned(small)
    assert small.default in kept
    others = [c for c in kept if c != small.default]
    assert others and all(c.chunk <= 4 and c.pack_bits <= 8 and c.block <= 1024 for c in others)
    large = point(direction="bwd", n_steps=1024, n_neurons=2**22)
    assert pruned(large) == config_space("bwd", torch.float32)


def test_prune_drops_the_configs_the_accuracy_guard_rejected():
    space = config_space("bwd", torch.float32)
    wrong = frozenset(space[:5])
    kept = pruned(point(direction="bwd", n_steps=64, n_neurons=2**20, rejected=wrong))
    assert kept == space[5:]


def test_key_is_the_buckets_dtype_and_neuron_switches():
    key = point("lif", n_steps=33, n_neurons=5000).key
    assert tuple(key) == autotune.KEY == autotune.Launch.arg_names[1:]
    assert key == point("lif", n_steps=64, n_neurons=8192).key  # the same buckets
    assert key["t_bucket"] == 64 and key["n_bucket"] == 8192 and key["dtype"] == "float32"
    plif, alif = point("plif").key, point("alif").key
    assert (plif["adaptive"], plif["learnable"], alif["adaptive"]) == (False, True, True)
    assert point(dtype=torch.bfloat16).key["dtype"] == "bfloat16"


PERSIST = """
import json, types, torch
import triton.compiler.compiler as compiler
import triton.runtime.autotuner as autotuner
from triton.backends.compiler import GPUTarget
from tether.tuning import autotune

# No GPU here: Triton's cache keys on the target, which a CPU machine has none of.
target = types.SimpleNamespace(get_current_target=lambda: GPUTarget("cuda", 90, 32))
autotuner.driver = types.SimpleNamespace(active=target)
compiler.make_backend = lambda target: types.SimpleNamespace(hash=lambda: "sm90")


class Point(autotune.Point):
    def run(self, config):
        self.last = config


x = torch.zeros(32, 4096)
point = Point("lif", "fwd", x, x, {"decay_v": 0.9, "threshold": 1.0})
timed = []


def bench(call, quantiles):
    call()
    timed.append(point.last)
    return [1.0 / point.last.block + point.last.chunk] * len(quantiles)


autotune.bench = bench
tuner = autotune.make_tuner("fwd", torch.float32, "micro", persist=True)
print(json.dumps([autotune.tune(point, tuner).as_dict(), len(timed)]))
"""


def test_winners_persist_in_tritons_cache_across_processes(tmp_path):
    """A second process reads the first one's winner from Triton's result cache: it times
    nothing."""
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path)
    command = [sys.executable, "-c", textwrap.dedent(PERSIST)]
    runs = [subprocess.run(command, env=env, capture_output=True, text=True) for _ in range(2)]
    for done in runs:
        assert done.returncode == 0, done.stderr[-2000:]
    (first, timed), (second, again) = (json.loads(r.stdout) for r in runs)
    assert first == second == KernelConfig(1024, 4, 1, 8, 32).as_dict()
    assert timed == 6 and again == 0
    assert len(list(tmp_path.rglob("neuron_fwd_kernel.autotune.json"))) == 1


@pytest.mark.skipif(not INTERPRET, reason="the interpreter's path")
def test_under_the_interpreter_the_tuner_runs_the_explicit_config_path(
    device, fresh_tuning, monkeypatch
):
    """Triton's cache is off, and each config runs through plans' explicit launch."""
    launched = []
    launch = plans.launch_forward

    def recording(spec, x, v_init, a_init, params, n_params, config, save):
        launched.append(config)
        return launch(spec, x, v_init, a_init, params, n_params, config, save)

    monkeypatch.setattr(plans, "launch_forward", recording)
    best = autotune.autotune_online("lif", "fwd", torch.float32, 5, 300, device)
    tuner = autotune.online_tuner("fwd", torch.float32, point(n_steps=5, n_neurons=300).default)
    assert not tuner.cache_results
    timed = {KernelConfig.from_triton(c) for c in tuner.configs_timings}
    assert best in timed and timed <= set(launched)
    online = pruned(point(n_steps=5, n_neurons=300), "fwd", autotune.ONLINE_SPACE)
    assert timed == set(online) and point(n_steps=5, n_neurons=300).default in timed


def test_online_autotune_returns_a_config_of_the_space_or_the_default(device, fresh_tuning):
    """The untuned default is always timed (on a GPU a small layer's default is filled to
    the GPU: often outside the space), so it may win."""
    config = autotune.autotune_online("alif", "bwd", torch.float32, 5, 300, device)
    default = point("alif", "bwd", n_steps=5, n_neurons=300).default
    assert config in [*config_space("bwd", torch.float32, autotune.ONLINE_SPACE), default]


def test_the_sweep_drives_the_autotuner_and_a_wrong_config_never_wins(device, monkeypatch):
    """The accuracy guard prunes a config whose spikes differ from the reference: the
    autotuner never times it and the winner is another."""
    pytest.importorskip("pandas")
    from tether.benchmark import sweep

    wrong = KernelConfig(512, 4, 1, 8, 32)
    real = sweep.kernel_calls

    def calls(op, direction, x, grad, params, config, bwd=None):
        kernel, train_forward, outputs = real(op, direction, x, grad, params, config, bwd)
        if config == wrong:
            return kernel, train_forward, lambda: (1 - outputs()[0], None)
        return kernel, train_forward, outputs

    monkeypatch.setattr(sweep, "kernel_calls", calls)
    monkeypatch.setattr(sweep, "gpu_key", lambda index: "cpu|0.0")
    frame = sweep.sweep("lif", "fwd", "float32", [(5, 300)], device, "micro", baselines=False)
    rows = frame.set_index(["block", "num_warps", "chunk"])
    assert rows.loc[(512, 4, 8), "rejected"] and math.isnan(rows.loc[(512, 4, 8), "ms"])
    timed = rows[rows["ms"].notna()]
    # chunk 16 does not fit T = 5; the default over N = 300 (64 on 1 warp) is timed too
    assert len(timed) == 3 and not timed["rejected"].any()
    assert timed["is_default"].sum() == 1 and (64, 1, 8) in timed.index
    best = sweep.winners(frame).iloc[0]
    assert (best["block"], best["num_warps"]) in {(256, 2), (1024, 4), (64, 1)}


@pytest.mark.parametrize("inside", ["capture", "compile"])
def test_no_tuning_inside_capture_or_compile_tracing(monkeypatch, inside):
    """There the default runs with one warning and is not kept: the bucket tunes at its
    next call outside."""
    tuned = []
    winner = KernelConfig(2048, 8, 1, 8, 32)
    monkeypatch.setattr(autotune, "autotune_online", lambda *args: tuned.append(args) or winner)
    monkeypatch.setattr(table, "gpu_key", lambda index: UNKNOWN_GPU)
    monkeypatch.setattr(table, "_BY_BUCKET", {})
    monkeypatch.setenv("TETHER_AUTOTUNE", "1")
    table._warn_deferred.cache_clear()
    cuda = torch.device("cuda", 0)  # never touched: the GPU's name is patched

    def select():
        return table.select_config("lif", "fwd", torch.float32, 32, 2**20, cuda)

    with monkeypatch.context() as inner:
        if inside == "capture":
            inner.setattr(torch.cuda, "is_available", lambda: True)
            inner.setattr(torch.cuda, "is_current_stream_capturing", lambda: True)
        else:
            inner.setattr(torch.compiler, "is_compiling", lambda: True)
        with pytest.warns(UserWarning, match="TETHER_AUTOTUNE=1"):
            assert select() == default_config("fwd", torch.float32, "lif", 32)
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # once
            assert select() == default_config("fwd", torch.float32, "lif", 32)
    assert not tuned
    assert select() == winner and len(tuned) == 1
    assert select() == winner and len(tuned) == 1


def timed_configs(direction: str, p: autotune.Point) -> dict[KernelConfig, float]:
    """What the online tuner of ``direction`` (fp32) for ``p``'s default timed at its last
    tuning: config -> ms."""
    timings = autotune.online_tuner(direction, torch.float32, p.default).configs_timings
    return {
        KernelConfig.from_triton(c): t[0] if isinstance(t, list | tuple) else t
        for c, t in timings.items()
    }


# Which config is faster is for the sweeps' CSVs (do_bench medians of one config differ by
# up to 13% between runs on an H100): these tests check what the tuner returns for what it
# measured, not a timing.
@gpu
@pytest.mark.parametrize("direction", ["fwd", "bwd"])
def test_online_winner_is_the_fastest_config_timed_and_the_default_was_timed(
    fresh_tuning, direction
):
    device = torch.device("cuda")
    best = autotune.autotune_online("plif", direction, torch.float32, 32, 2**20, device)
    p = autotune.Point.random("plif", direction, torch.float32, 32, 2**20, device)
    timings = timed_configs(direction, p)
    assert p.default in timings and len(timings) > 1
    assert timings[best] == min(timings.values())


@gpu
@pytest.mark.parametrize("direction", ["fwd", "bwd"])
def test_online_and_offline_sweep_time_the_same_configs(fresh_tuning, direction):
    """The same autotuner and space: the sweep times what the online tuner times (nothing
    is rejected for LIF fp32), and both winners are among them."""
    from tether.benchmark.sweep import row_config, sweep, winners

    device = torch.device("cuda")
    shape = (32, 2**20)
    frame = sweep("lif", direction, "float32", [shape], device, autotune.ONLINE_SPACE, False)
    assert not frame["rejected"].any()
    timed = frame[frame["ms"].notna()]
    offline = {row_config(r) for _, r in timed.iterrows()}
    online = autotune.autotune_online("lif", direction, torch.float32, *shape, device)
    p = autotune.Point.random("lif", direction, torch.float32, *shape, device)
    assert set(timed_configs(direction, p)) == offline
    assert online in offline and row_config(winners(frame).iloc[0]) in offline


@gpu
def test_no_tuning_inside_cuda_graph_capture(fresh_tuning, monkeypatch):
    monkeypatch.setenv("TETHER_AUTOTUNE", "1")
    monkeypatch.setattr(table, "gpu_key", lambda index: UNKNOWN_GPU)
    monkeypatch.setattr(table, "_BY_BUCKET", {})
    monkeypatch.setattr(ops, "_PLANS", {})
    tuned = []
    monkeypatch.setattr(autotune, "autotune_online", lambda *args: tuned.append(args))
    table._warn_deferred.cache_clear()
    module = tether.LIF(300).cuda()
    x = torch.randn(16, 4, 300, device="cuda")
    with torch.no_grad():
        with table.untuned():
            module(x)  # compiles the default config outside the capture
        module.reset()
        graph = torch.cuda.CUDAGraph()
        with pytest.warns(UserWarning, match="TETHER_AUTOTUNE=1"), torch.cuda.graph(graph):
            module(x)
    graph.replay()
    assert not tuned
