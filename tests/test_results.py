"""Claims over the committed GPU results (``results/<gpu>/latest.csv``, the sweeps), checked in CI."""

from pathlib import Path

import pandas as pd
import pytest

RESULTS = sorted((Path(__file__).parents[1] / "results").glob("*/latest.csv"))
POINT = ["op", "mode", "T", "N", "device"]


@pytest.mark.parametrize("path", RESULTS, ids=lambda p: p.parent.name)
def test_no_16_bit_path_is_slower_than_fp32(path):
    """At every benchmarked point with both, tether's 16-bit call is no slower than fp32."""
    rows = pd.read_csv(path)
    rows = rows[rows["impl"] == "tether"]
    fp32 = rows[rows["dtype"] == "float32"].set_index(POINT)["ms"]
    compared = 0
    for dtype in ("bfloat16", "float16"):
        half = rows[rows["dtype"] == dtype].set_index(POINT)["ms"]
        both = pd.concat([fp32.rename("fp32"), half.rename("half")], axis=1, join="inner")
        slower = both[both["half"] > both["fp32"]]
        assert slower.empty, f"{dtype} slower than float32 in {path}:\n{slower}"
        compared += len(both)
    assert compared or not len(rows[rows["dtype"] != "float32"]), "16-bit rows without fp32 ones"


def test_the_small_layer_rule_is_never_slower_on_the_committed_sweeps(monkeypatch):
    """``space.fill_gpu`` against the defaults it replaces, at every committed sweep point
    that timed both (``scripts/fill_eval.py``): never slower, and faster on average."""
    monkeypatch.chdir(Path(__file__).parents[1])
    monkeypatch.syspath_prepend("scripts")
    fill_eval = pytest.importorskip("fill_eval")
    scores = fill_eval.score()
    for filled in ("new_over_best", "new_not_lean_over_best"):  # H100 sweeps predate lean
        both = scores.dropna(subset=["old_over_best", filled])
        assert len(both) >= 10, filled
        slower = both[both[filled] > both["old_over_best"]]
        assert slower.empty, slower
        assert both[filled].mean() < both["old_over_best"].mean()


def test_each_op_has_its_own_bytes_model():
    """``measure.op_bytes``: LIF's is the 20-byte floor; PLIF and ALIF add 4 bytes a neuron
    for each learned parameter per kernel and per gradient; the design adds the bits and
    each state's checkpoints (ALIF fp32 at T=32, chunk 8: 20 + 1.5 + 0.25 + 2 = 23.75)."""
    import torch

    from tether.benchmark.measure import minimal_bytes, op_bytes

    t, n, fp32, bf16 = 32, 2**10, torch.float32, torch.bfloat16
    per = t * n
    assert op_bytes("lif", "fwdbwd", fp32, t, n) == minimal_bytes("fwdbwd", t, n, fp32) == 20 * per
    assert op_bytes("lif", "fwd", bf16, t, n) == 4 * per
    assert op_bytes("plif", "fwdbwd", fp32, t, n) == 20 * per + 2 * 4 * 3 * n
    assert op_bytes("plif", "fwd", fp32, t, n) == 8 * per + 2 * 4 * n
    assert op_bytes("alif", "fwdbwd", fp32, t, n) / per == 21.5
    assert op_bytes("alif", "fwdbwd", fp32, t, n, chunk=8) / per == 23.75
    assert op_bytes("lif", "fwdbwd", bf16, t, n, chunk=16) / per == 10.75
    assert op_bytes("lif", "fwd", fp32, t, n, chunk=16) == 8 * per  # inference saves nothing


def _bench_row(**overrides) -> dict:
    row = {
        "op": "lif", "impl": "graphed", "mode": "fwdbwd", "dtype": "float32", "T": 512,
        "N": 8192, "ms": 0.07, "pct_copy_bw": 50.0, "copy_gbps": 3000.0, "device": "GPU",
        "commit": "new", "timestamp": "2026-12-02T00:00:00+00:00",
    }  # fmt: skip
    return {**row, **overrides}


def test_goals_score_the_newest_row_of_each_measurement(tmp_path):
    from tether.benchmark.goals import scores

    gpu = tmp_path / "gpu"
    gpu.mkdir()
    old = _bench_row(ms=0.2, commit="old", timestamp="2026-12-01T00:00:00+00:00")
    pd.DataFrame([old]).to_csv(gpu / "a_old.csv", index=False)
    pairs = [  # tether rows only: the speed-up pairs them
        _bench_row(op="plif", impl="tether", T=32, N=8388608, ms=ms, dtype=dtype)
        for dtype, ms in (("float32", 1.8), ("bfloat16", 1.0))
    ]
    host = [
        _bench_row(impl=impl, T=8, N=2**20, ms=ms)
        for impl, ms in (("tether-ro", 0.09), ("graphed", 0.08))
    ]
    pd.DataFrame([_bench_row(), *pairs, *host]).to_csv(gpu / "b_new.csv", index=False)
    batch = [
        {"model": "m", "neuron": "plif", "impl": impl, "dtype": dtype, "layout": "cl", "T": 8,
         "device": "GPU", "max_batch": n, "fails": fails, "commit": "c",
         "timestamp": "2026-12-01T00:00:00+00:00"}
        for dtype, impl, n, fails in [
            ("float32", "tether+spikemem", 4095, None), ("float32", "spikingjelly", 2000, 2030),
            ("bfloat16", "tether+spikemem", 4095, None), ("bfloat16", "spikingjelly", 4095, None),
        ]
    ]  # fmt: skip
    pd.DataFrame(batch).to_csv(gpu / "batch.csv", index=False)
    table = scores(tmp_path).set_index("goal")
    fwdbwd = table.loc["LIF fp32 fwd+bwd 512x8192, ms"]
    assert (fwdbwd["value"], fwdbwd["met"], fwdbwd["commit"]) == (0.07, True, "new")
    speedup = table.loc["PLIF bf16 speed-up over fp32 fwd+bwd 32x8388608"]
    assert (speedup["value"], speedup["met"]) == (1.8, True)
    assert "b_new.csv (tether)" == speedup["source"]
    largest = table.loc["m largest batch float32: spike memory / SpikingJelly"]
    assert largest["value"] == round(4095 / 2000, 4) and largest["note"].startswith("at least")
    assert "m largest batch bfloat16: spike memory / SpikingJelly" not in table.index
    compiled = table.loc["LIF fp32 fwd+bwd 8x1048576 reduce-overhead / graphed"]
    assert (compiled["value"], compiled["met"]) == (1.125, True)
    own_model = "PLIF fp32 fwd+bwd 32x8388608, % of copy (own model)"
    assert len(table) == 5 and own_model in table.index  # nothing scored without its rows


def test_goals_pair_model_steps_within_one_run(tmp_path):
    """A model step against another (tether / SpikingJelly, compiled / eager) is a ratio of
    one run's rows, the newest run that has both: never the newest of each (a host-bound
    step moves with the machine)."""
    from tether.benchmark.goals import scores

    def step(impl, compiled, ms, stamp):
        return {"model": "cifar_conv", "neuron": "plif", "impl": impl, "compiled": compiled,
                "dtype": "float32", "layout": "channels_last", "T": 8, "batch": 64,
                "size": "full", "device": "GPU", "ms": ms, "peak_mem_mb": 100.0,
                "commit": stamp[8:10], "timestamp": stamp}  # fmt: skip

    gpu = tmp_path / "gpu"
    gpu.mkdir()
    both = "2026-12-01T00:00:00+00:00"
    rows = [step("tether", False, 10.0, both), step("tether", True, 9.0, both),
            step("spikingjelly", False, 12.0, both)]  # fmt: skip
    pd.DataFrame(rows).to_csv(gpu / "both.csv", index=False)
    later = "2026-12-02T00:00:00+00:00"  # a slower host, compiled and SpikingJelly only
    pd.DataFrame([step("tether", True, 11.0, later), step("spikingjelly", False, 13.0, later)]
                 ).to_csv(gpu / "compiled_only.csv", index=False)  # fmt: skip
    newest = "2026-12-03T00:00:00+00:00"  # eager tether alone
    pd.DataFrame([step("tether", False, 9.5, newest)]).to_csv(gpu / "eager.csv", index=False)
    table = scores(tmp_path).set_index("goal")
    compiled = table.loc["cifar_conv step T=8 B=64 channels_last float32: tether compiled / eager"]
    assert (compiled["value"], compiled["source"]) == (0.9, "both.csv")  # not 11.0 / 9.5
    peer = table.loc["cifar_conv step T=8 B=64 channels_last float32: tether / SpikingJelly"]
    assert (peer["value"], peer["source"]) == (round(10 / 12, 4), "both.csv")  # not 9.5 / 13


def test_goals_cover_every_open_issue_on_the_committed_results():
    from tether.benchmark.goals import scores

    results = Path(__file__).parents[1] / "results"
    table = scores(results)
    for device, rows in table.groupby("device"):
        assert set(rows["issue"]) == {11, 13, 15, 16}, device
    assert table["value"].notna().all()
    for _, row in table.iterrows():
        assert (results / row["device"] / row["source"].split(" (")[0]).is_file()
