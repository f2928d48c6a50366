"""PNG figures from a results CSV: throughput vs N, speedup bars, % of copy bandwidth."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

COLORS = {
    "tether": "#d62728",
    "tether+spikemem": "#8c564b",
    "untuned": "#ff9896",
    "eager": "#7f7f7f",
    "compile": "#1f77b4",
    "spikingjelly": "#2ca02c",
    "snntorch": "#9467bd",
}


def _shape_label(row) -> str:
    n = int(row["N"])
    exponent = int(np.log2(n))
    n_text = f"2^{exponent}" if 2**exponent == n else str(n)
    return f"T={int(row['T'])}\nN={n_text}"


def throughput(frame: pd.DataFrame, path: Path, op: str, dtype: str) -> Path:
    """GB/s (minimal-bytes model) against N, one panel per (mode, T), copy bandwidth dashed."""
    data = frame[(frame["op"] == op) & (frame["dtype"] == dtype)]
    modes = sorted(data["mode"].unique())
    steps = sorted(data["T"].unique())
    fig, axes = plt.subplots(
        len(modes), len(steps), figsize=(4 * len(steps), 3.4 * len(modes)), squeeze=False
    )
    for i, mode in enumerate(modes):
        for j, n_steps in enumerate(steps):
            ax = axes[i][j]
            panel = data[(data["mode"] == mode) & (data["T"] == n_steps)]
            for impl, rows in panel.groupby("impl"):
                rows = rows.sort_values("N")
                ax.plot(rows["N"], rows["gbps"], "o-", label=impl, color=COLORS.get(impl))
            if len(panel):
                ax.axhline(panel["copy_gbps"].max(), ls="--", color="k", lw=1, label="copy")
            ax.set_xscale("log", base=2)
            ax.set_yscale("log")
            ax.set_title(f"{op} {mode} {dtype}, T={n_steps}")
            ax.set_xlabel("N (neurons)")
            ax.set_ylabel("GB/s (minimal bytes)")
            ax.grid(True, which="both", alpha=0.3)
    axes[0][0].legend(fontsize=8)
    fig.suptitle(f"Throughput on {data['device'].iloc[0] if len(data) else '?'}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _bars(frame, path, op, dtype, column, ylabel, title, reference_line, log):
    data = frame[(frame["op"] == op) & (frame["dtype"] == dtype)].copy()
    modes = sorted(data["mode"].unique())
    impls = [i for i in COLORS if i in set(data["impl"])]
    fig, axes = plt.subplots(len(modes), 1, figsize=(11, 3.6 * len(modes)), squeeze=False)
    for ax, mode in zip(axes[:, 0], modes):
        panel = data[data["mode"] == mode]
        shapes = panel[["T", "N"]].drop_duplicates().sort_values(["N", "T"])
        x = np.arange(len(shapes))
        width = 0.8 / max(len(impls), 1)
        for k, impl in enumerate(impls):
            values = []
            for _, shape in shapes.iterrows():
                hit = panel[
                    (panel["impl"] == impl)
                    & (panel["T"] == shape["T"])
                    & (panel["N"] == shape["N"])
                ]
                values.append(hit[column].iloc[0] if len(hit) else np.nan)
            ax.bar(x + k * width - 0.4 + width / 2, values, width, label=impl, color=COLORS[impl])
        ax.axhline(reference_line, color="k", lw=1, ls="--")
        ax.set_xticks(x, [_shape_label(s) for _, s in shapes.iterrows()], fontsize=8)
        if log:
            ax.set_yscale("log")
        ax.set_ylabel(ylabel)
        ax.set_title(f"{title}: {op} {mode} {dtype}")
        ax.grid(True, axis="y", alpha=0.3)
        ax.legend(fontsize=8, ncol=len(impls))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def speedup(frame: pd.DataFrame, path: Path, op: str, dtype: str) -> Path:
    return _bars(frame, path, op, dtype, "speedup_vs_eager", "speedup vs eager (x)",
                 "Speedup over the eager loop", 1.0, log=True)  # fmt: skip


def roofline(frame: pd.DataFrame, path: Path, op: str, dtype: str) -> Path:
    return _bars(frame, path, op, dtype, "pct_copy_bw", "% of copy bandwidth",
                 "Distance to the bandwidth limit", 100.0, log=False)  # fmt: skip


def plot_all(frame: pd.DataFrame, out_dir: Path, prefix: str) -> list[Path]:
    """Every figure for every (op, dtype) in the CSV; returns the written paths."""
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for (op, dtype), _ in frame.groupby(["op", "dtype"]):
        stem = f"{prefix}_{op}_{dtype}"
        written.append(throughput(frame, out_dir / f"{stem}_throughput.png", op, dtype))
        written.append(speedup(frame, out_dir / f"{stem}_speedup.png", op, dtype))
        written.append(roofline(frame, out_dir / f"{stem}_roofline.png", op, dtype))
    return written
