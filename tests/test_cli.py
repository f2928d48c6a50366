"""The bench CLI through typer's test runner."""

from pathlib import Path

import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from tether.benchmark.cli import app
from tether.benchmark.runner import COLUMNS
from tether.kernels.hashing import kernel_hash
from tether.tuning.table import load_table

runner = CliRunner()


@pytest.fixture(scope="module")
def quick_csv(tmp_path_factory):
    path = tmp_path_factory.mktemp("bench") / "quick.csv"
    result = runner.invoke(
        app,
        ["run", "--quick", "--impls", "tether,untuned,eager", "--ops", "lif,alif",
         "--shapes", "3x256,5x100", "--out", str(path)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    return path


def test_run_quick_writes_every_column_with_sane_values(quick_csv):
    frame = pd.read_csv(quick_csv)
    assert list(frame.columns) == COLUMNS
    assert len(frame) == 2 * 2 * 2 * 3  # ops x modes x shapes x impls
    assert (frame["ms"] > 0).all() and (frame["gbps"] > 0).all()
    assert (frame["max_error"] <= frame["error_bound"]).all()
    assert (frame[frame["impl"] == "eager"]["speedup_vs_eager"] == 1).all()
    assert frame["commit"].notna().all() and frame["kernel_hash"].str.len().eq(16).all()


def test_run_upserts_rows(quick_csv, tmp_path):
    """Rows of the same key replaced, the others kept as written: a commit that looks like a
    number (``5e63541``, ``0476401``) stays text (it was rewritten as ``inf``, ``476401``)."""
    copy = tmp_path / "again.csv"
    frame = pd.read_csv(quick_csv)
    frame["commit"] = ["5e63541", "0476401"] * (len(frame) // 2)
    frame.to_csv(copy, index=False)
    result = runner.invoke(
        app, ["run", "--impls", "eager", "--ops", "lif", "--modes", "fwd",
              "--shapes", "3x256", "--out", str(copy)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    merged = pd.read_csv(copy, dtype={"commit": str})
    assert len(merged) == len(frame)
    kept = merged["commit"].isin(["5e63541", "0476401"])
    assert kept.sum() == len(frame) - 1, merged["commit"].unique()


def test_plot_writes_pngs(quick_csv, tmp_path):
    result = runner.invoke(app, ["plot", str(quick_csv), "--out-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert len(pngs) == 6 and all(p.stat().st_size > 10_000 for p in tmp_path.glob("*.png"))


def test_gate_passes_on_identical_files(quick_csv):
    result = runner.invoke(app, ["gate", "--baseline", str(quick_csv), "--current", str(quick_csv)])
    assert result.exit_code == 0, result.output
    assert "gate passed" in result.output


def _gate_with_slower_row(quick_csv, tmp_path, slowdown: float, baseline_pct: float):
    """Gate a copy of ``quick_csv`` whose first tether row reached ``baseline_pct`` % of copy
    bandwidth against one where that row is ``slowdown`` times slower."""
    frame = pd.read_csv(quick_csv)
    row = frame.index[frame["impl"] == "tether"][0]
    frame.loc[row, "pct_copy_bw"] = baseline_pct
    baseline = tmp_path / "baseline.csv"
    frame.to_csv(baseline, index=False)
    frame.loc[row, "ms"] *= slowdown
    slower = tmp_path / "slower.csv"
    frame.to_csv(slower, index=False)
    return runner.invoke(app, ["gate", "--baseline", str(baseline), "--current", str(slower)])


def test_gate_fails_on_a_slower_tether_row(quick_csv, tmp_path):
    result = _gate_with_slower_row(quick_csv, tmp_path, 1.2, baseline_pct=60.0)
    assert result.exit_code == 1, result.output
    assert "Regressions" in result.output and "+20.0%" in result.output


def test_gate_allows_overhead_bound_rows_up_to_2x(quick_csv, tmp_path):
    """Below 20% of copy bandwidth a row measures host time, which varies between runs: it
    is reported, and fails only when twice as slow."""
    result = _gate_with_slower_row(quick_csv, tmp_path, 1.5, baseline_pct=5.0)
    assert result.exit_code == 0, result.output
    assert "+50.0%" in result.output and "gate passed" in result.output
    result = _gate_with_slower_row(quick_csv, tmp_path, 2.5, baseline_pct=5.0)
    assert result.exit_code == 1, result.output


def test_gate_reports_missing_rows_and_errors(quick_csv, tmp_path):
    frame = pd.read_csv(quick_csv).astype({"max_error": float})
    frame.loc[frame.index[frame["impl"] == "tether"][0], "max_error"] = 0.5
    changed = tmp_path / "changed.csv"
    frame.iloc[:-1].to_csv(changed, index=False)  # the last row goes missing
    result = runner.invoke(app, ["gate", "--baseline", str(quick_csv), "--current", str(changed)])
    assert result.exit_code == 1, result.output
    assert "only in baseline" in result.output and "error over bound" in result.output
    assert "1 only in baseline" in result.output


@pytest.mark.parametrize(
    "args,message",
    [
        (["run", "--ops", "lstm"], "--ops: unknown"),
        (["models", "--models", "resnet"], "--models: unknown"),
        (["run", "--shapes", "32by8"], "--shapes"),
        (["run", "--impls", "tether", "--device", "tpu"], "--device"),
        (["plot", "missing.csv"], "no such file"),
        (["gate", "--baseline", "missing.csv", "--current", "missing.csv"], "no such file"),
        (["tune", "--grid", "huge"], "--grid" if torch.cuda.is_available() else "GPU"),
    ],
)
def test_bad_arguments_exit_with_a_reason(args, message):
    result = runner.invoke(app, args)
    assert result.exit_code != 0
    assert message in result.output
    assert "Traceback" not in result.output


def test_malformed_csv_is_a_one_line_error(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("op,impl\nlif\x00,\n")
    result = runner.invoke(app, ["gate", "--baseline", str(bad), "--current", str(bad)])
    assert result.exit_code == 2 and "missing columns" in result.output


@pytest.fixture
def sweep_csv(tmp_path):
    """A committed H100 sweep without its capability column (as sweeps written before that
    column), marked as measured on the current kernel so that the test does not depend on
    when the kernel last changed."""
    frame = pd.read_csv("results/nvidia-h100-80gb-hbm3/sweep_grid_lif_fwd_float32.csv")
    path = tmp_path / "sweep.csv"
    frame = frame.drop(columns="capability", errors="ignore")
    frame.assign(kernel_hash=kernel_hash()).to_csv(path, index=False)
    return path


def test_export_merges_sweep_winners_into_a_table(sweep_csv, tmp_path):
    table = tmp_path / "winners.json"
    args = ["export", str(sweep_csv), "--table", str(table)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "capability" in result.output
    result = runner.invoke(app, [*args, "--capability", "9.0"])
    assert result.exit_code == 0, result.output
    entries = load_table(table)
    frame = pd.read_csv(sweep_csv)
    assert len(entries) == frame.groupby(["T", "N"]).ngroups == 24
    assert {(e["gpu"], e["capability"], e["kernel_hash"]) for e in entries} == {
        ("NVIDIA H100 80GB HBM3", "9.0", kernel_hash("fwd"))
    }
    assert all(e["ms"] <= e["default_ms"] for e in entries)
    # what the export moved: the nearest entry of buckets nobody timed (sweep.table_moves)
    moved = [line for line in result.output.splitlines() if "calls moved" in line]
    assert moved[0].strip().startswith("NVIDIA H100 80GB HBM3 lif fwd float32: ")
    assert int(moved[-1].split()[0]) >= 24  # at least the tuned buckets themselves


def test_export_refuses_sweeps_of_another_kernel(sweep_csv, tmp_path):
    stale = tmp_path / "stale.csv"
    pd.read_csv(sweep_csv).assign(kernel_hash="0123456789abcdef").to_csv(stale, index=False)
    table = tmp_path / "winners.json"
    args = ["export", str(stale), "--capability", "9.0", "--table", str(table)]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "re-tune" in result.output and not table.exists()


def test_export_takes_the_capability_from_the_rows(sweep_csv, tmp_path):
    with_capability = tmp_path / "with_capability.csv"
    pd.read_csv(sweep_csv).assign(capability="9.0").to_csv(with_capability, index=False)
    table = tmp_path / "winners.json"
    result = runner.invoke(app, ["export", str(with_capability), "--table", str(table)])
    assert result.exit_code == 0, result.output
    assert {e["capability"] for e in load_table(table)} == {"9.0"}


def test_an_implementation_that_raises_keeps_the_other_rows(tmp_path, monkeypatch):
    """A provider that raises is reported with its traceback and exit 1; the rows of the
    others are still written."""
    from tether.benchmark import providers

    def broken(problem):
        raise RuntimeError("provider exploded")

    monkeypatch.setitem(providers.PROVIDERS, "untuned", broken)
    out = tmp_path / "r.csv"
    result = runner.invoke(
        app,
        ["run", "--quick", "--impls", "eager,untuned", "--ops", "lif", "--modes", "fwd",
         "--shapes", "4x256", "--out", str(out)],
    )  # fmt: skip
    assert result.exit_code == 1
    assert "provider exploded" in result.output and "untuned" in result.output
    frame = pd.read_csv(out)
    assert list(frame["impl"]) == ["eager"]


def test_models_quick_writes_checked_rows_and_plots(tmp_path):
    out = tmp_path / "models.csv"
    args = ["models", "--models", "shd_mlp", "--impls", "tether", "--compiled", "eager"]
    result = runner.invoke(app, [*args, "--quick", "--device", "cpu", "--out", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out)
    assert set(frame["neuron"]) == {"lif", "alif"} and frame["ok"].all()
    assert (frame["ms"] > 0).all() and list(tmp_path.glob("models_quick_*.png"))


def test_model_gate_fails_on_slower_or_mismatched_tether_steps():
    from tether.benchmark.gate import compare_models

    baseline = pd.read_csv(Path(__file__).parents[1] / "results/nvidia-h100-80gb-hbm3/models.csv")
    assert compare_models(baseline, baseline, 0.10) == []
    ok = baseline["ok"].astype(str) == "True"
    tether = baseline.index[(baseline["impl"] == "tether") & ok]
    point = ["model", "neuron", "compiled", "dtype", "layout", "T", "batch"]
    first, second = (tuple(baseline.loc[i, point]) for i in tether[:2])
    in_second = (baseline[point].apply(tuple, axis=1) == second) & (baseline["impl"] != "tether")
    baseline = baseline[~in_second]  # the second point has no peer row: gated in ms
    for i in tether[:2]:  # 20% slower: against the peer's step, or in ms
        slower = baseline.copy()
        slower.loc[i, "ms"] *= 1.2
        assert len(compare_models(baseline, slower, 0.10)) == 1
    drift = baseline.copy()
    drift["ms"] *= 1.2  # the host 20% slower for every run: only rows without a peer fail
    failed = compare_models(baseline, drift, 0.10)
    assert failed and all(f.endswith(" ms") for f in failed) and first != second
    broken = baseline.copy()
    broken.loc[tether[0], "ok"] = False
    assert "no longer matches" in compare_models(baseline, broken, 0.10)[0]


def test_goals_lists_the_open_goals_of_the_committed_results(tmp_path):
    out = tmp_path / "goals.csv"
    result = runner.invoke(app, ["goals", "--unmet", "--out", str(out)])
    assert result.exit_code == 0, result.output
    lines = result.output.strip().splitlines()
    assert lines and all(line.startswith("OPEN #") for line in lines)
    table = pd.read_csv(out)
    assert len(table) > len(lines) and (~table["met"]).sum() == len(lines)
    missing = runner.invoke(app, ["goals", "--results", str(tmp_path / "none")])
    assert missing.exit_code != 0 and "not a folder" in missing.output
