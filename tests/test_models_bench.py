"""Model benchmarks (``tether/benchmark/models.py``) at quick sizes on the CPU, tether's
kernels under the Triton interpreter: rows and columns, the first-step check against the
peers (skipped where they are not installed: they come with the ``compare`` extra), a
mismatching implementation reported and not timed, the CSV upsert and the plots."""

from __future__ import annotations

import dataclasses
import functools
import importlib.util
import math

import pandas as pd
import pytest
import torch

from tether.benchmark import models

CPU = torch.device("cpu")
PEERS = ("spikingjelly", "snntorch")


def needs(package: str) -> None:
    if importlib.util.find_spec(package) is None:
        pytest.skip(f"{package} is not installed (pip install '.[compare]')")


INSTALLED = [p for p in PEERS if importlib.util.find_spec(p) is not None]


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory):
    """tether and the installed peers, eager fp32, on every model at its quick sizes (tether
    first: its first step is the reference): (csv path, returned rows)."""
    out = tmp_path_factory.mktemp("models") / "models.csv"
    impls = ["tether", "tether+spikemem", *INSTALLED]
    rows = models.run_models(list(models.MODELS), impls, ["float32"], [False], True, CPU, out)
    return out, rows


def test_tether_rows_for_every_model(quick_run):
    out, rows = quick_run
    frame = pd.read_csv(out)
    assert list(frame.columns) == models.COLUMNS
    assert len(frame) == len(rows)
    assert set(frame["impl"]) == {"tether", "tether+spikemem", *INSTALLED}
    frame = frame[frame["impl"] == "tether"]
    expected = [(name, kind) for name, spec in models.MODELS.items() for kind in spec.kinds
                for _ in spec.quick]  # fmt: skip
    assert sorted(zip(frame["model"], frame["neuron"])) == sorted(expected)
    assert set(frame["layout"]) == {"channels_last", "contiguous"}
    assert frame["ok"].all() and (frame["max_error"] == 0).all()
    assert (frame["ms"] > 0).all() and (frame["samples_per_s"] > 0).all()
    assert frame["peak_mem_mb"].isna().all() and frame["neuron_share"].isna().all()  # CPU
    assert (frame["size"] == "quick").all() and (frame["device"].str.startswith("cpu")).all()


def test_spike_memory_rows_equal_tether(quick_run):
    """``tether+spikemem``: a row per tether row, with tether's first loss and spikes (the
    gradients are bitwise equal: ``tests/test_spike_memory.py``); compiled is skipped."""
    rows = {
        (r["model"], r["neuron"], r["layout"]): r for r in quick_run[1] if r["impl"] == "tether"
    }
    mem = [r for r in quick_run[1] if r["impl"] == "tether+spikemem"]
    assert sorted((r["model"], r["neuron"], r["layout"]) for r in mem) == sorted(rows)
    for row in mem:
        assert row["ok"] and row["max_error"] == 0 and row["ms"] > 0, row
        assert row["loss"] == rows[row["model"], row["neuron"], row["layout"]]["loss"]
    size = models.MLPSize(6, 2)
    assert "inactive" in models.skip_reason("tether+spikemem", "lif", True, "float32", size, CPU)


@pytest.mark.parametrize("peer", PEERS)
def test_peer_first_step_matches_tether(peer, quick_run):
    """From tether's weights, the peer's first loss and first-layer spikes are tether's
    eager ones, on every model."""
    needs(peer)
    rows = [r for r in quick_run[1] if r["impl"] == peer]
    assert {r["model"] for r in rows} == set(models.MODELS)
    for row in rows:
        assert row["ok"], row
        assert row["loss_rel_error"] <= models.LOSS_TOL["float32"]
        assert row["max_error"] <= models.SPIKE_TOL["float32"]
        assert row["ms"] > 0


def test_upsert_replaces_rows_with_the_same_key(quick_run, tmp_path):
    out, rows = quick_run
    path = tmp_path / "models.csv"
    models.upsert(path, [{**row, "commit": "5e63541"} for row in rows])  # text, not 5e63541.0
    merged = models.upsert(path, [{**rows[0], "ms": 123.0}])
    assert len(merged) == len(rows)
    assert (merged["commit"] == "5e63541").sum() == len(rows) - 1
    assert merged[merged["ms"] == 123.0]["model"].tolist() == [rows[0]["model"]]


@pytest.mark.parametrize("base", ["tether", *PEERS])
def test_mismatching_implementation_is_reported_and_not_timed(base, tmp_path, monkeypatch):
    """The same neurons with threshold 1.25: ``ok`` False, errors reported, no timing."""
    if base != "tether":
        needs(base)
    implementation = models.IMPLEMENTATIONS[base]
    wrong = functools.partial(implementation.neuron, threshold=1.25)
    monkeypatch.setitem(
        models.IMPLEMENTATIONS, "wrong", dataclasses.replace(implementation, neuron=wrong)
    )
    rows = models.run_models(["shd_mlp"], ["wrong"], ["float32"], [False], True, CPU,
                             tmp_path / "models.csv")  # fmt: skip
    assert rows
    for row in rows:
        assert not row["ok"]
        assert row["max_error"] > models.SPIKE_TOL["float32"]
        assert row["loss_rel_error"] > models.LOSS_TOL["float32"]
        assert math.isnan(row["ms"]) and "not timed" in row["note"]


def test_tether_models_pool_with_tether_max_pool():
    """tether's models max-pool with ``tether.max_pool2d``; the shared builder's, torch's."""
    import tether
    from tether.benchmark.model_zoo import Pool

    spec = models.MODELS["cifar_conv"]
    size = spec.quick[0]
    source = spec.build(models.IMPLEMENTATIONS["tether"].neuron, "plif", size)
    net = models.build("cifar_conv", "tether+spikemem", "plif", size, source, torch.device("cpu"))
    pools = [m for m in net.modules() if isinstance(m, Pool)]
    assert pools and all(p.max_pool is tether.max_pool2d for p in pools)
    assert all(p.max_pool is torch.nn.functional.max_pool2d
               for p in source.modules() if isinstance(p, Pool))  # fmt: skip


def test_skip_reasons():
    size = models.MLPSize(250, 2)
    assert models.skip_reason("tether", "alif", True, "float32", size, CPU) is None
    if importlib.util.find_spec("spikingjelly"):
        assert "no alif" in models.skip_reason("spikingjelly", "alif", False, "float32", size, CPU)
    if importlib.util.find_spec("snntorch"):
        reason = models.skip_reason("snntorch", "lif", True, "float32", size, CPU)
        assert "torch.compile" in reason


def test_neuron_time_share_counts_matching_kernels():
    kernels = [
        ("neuron_fwd_kernel", 2.0),
        ("void cudnn::ops::nchwToNhwcKernel", 5.0),
        ("neuron_bwd_kernel", 3.0),
        ("_multistep_lif_forward_kernel_static", 4.0),
        ("void lif_backward<float>(float const*)", 6.0),
    ]
    tether, spikingjelly = (models.IMPLEMENTATIONS[i].kernels for i in ("tether", *PEERS[:1]))
    assert models.neuron_time_share(kernels, tether) == pytest.approx(5 / 20)
    assert models.neuron_time_share(kernels, spikingjelly) == pytest.approx(10 / 20)
    assert math.isnan(models.neuron_time_share([], tether))


def test_plot_models_writes_pngs(quick_run, tmp_path):
    out, _ = quick_run
    paths = models.plot_models(out, tmp_path / "plots")
    assert [p.name for p in paths] == ["models_quick_float32.png"]
    assert all(p.stat().st_size > 10_000 for p in paths)
