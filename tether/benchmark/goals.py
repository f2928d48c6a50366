"""Where the open issues' goals stand on the committed results: ``tether-bench goals``.

Reads every CSV under ``results/<gpu>/`` whose columns are those of a benchmark run
(``tether-bench run``: op, impl, mode, dtype, T, N, ms, ...), of the model benchmarks
(``tether-bench models``: model, impl, compiled, ...), of the paired spike-memory steps or
of the largest-batch search (``scripts/spike_memory_gpu.py``), keeps the newest row of each
measurement (by ``timestamp``; a model step against another, the newest run that has both),
and scores each goal: one row per goal, GPU and point with
the value, the target, whether it is met, and the file and commit the value comes from.
Where a goal has no committed row on a GPU there is no row: the table says what was
measured, not what was not.

Timings are ``graphed`` rows (GPU time, as the issues ask) where there are any, else
``tether`` rows (host time included; at the large shapes the two agree).
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from tether.benchmark.measure import op_bytes, read_csv
from tether.tuning.space import DTYPES

# (a measurement's key, the values read) of each kind of CSV
BENCH = (["op", "impl", "mode", "dtype", "T", "N", "device"], ["ms", "pct_copy_bw", "copy_gbps"])
MODELS = (
    ["model", "neuron", "impl", "compiled", "dtype", "layout", "T", "batch", "size", "device"],
    ["ms", "peak_mem_mb"],
)
PAIRED = (["model", "neuron", "dtype", "impl", "layout", "T", "batch", "device"], ["vs_tether"])
BATCH = (["model", "neuron", "impl", "dtype", "layout", "T", "device"], ["max_batch", "fails"])
LONG_SHAPES = ((512, 8192), (1024, 65536), (2048, 4096))
LARGE = (32, 8388608)


@dataclass(frozen=True)
class Score:
    """One goal at one point: ``value`` against ``target`` (``at_most``: value <= target)."""

    issue: int
    goal: str
    device: str
    value: float
    target: float
    at_most: bool
    source: str
    commit: str
    note: str = ""

    @property
    def met(self) -> bool:
        return self.value <= self.target if self.at_most else self.value >= self.target


def read_csvs(folder: Path) -> dict[str, pd.DataFrame]:
    """Every CSV in ``folder``, by file name: read once, for every kind."""
    return {path.name: read_csv(path) for path in sorted(folder.glob("*.csv"))}


def every(csvs: dict[str, pd.DataFrame], kind: tuple[list[str], list[str]]) -> pd.DataFrame:
    """Every row over the ``csvs`` of this ``kind`` (key and value columns, a ``timestamp``
    and a ``commit``), oldest first, with the file's name as ``source``."""
    key, values = kind
    columns = [*key, *values, "timestamp", "commit"]
    frames = [
        frame.assign(source=name)
        for name, frame in csvs.items()
        if set(columns) <= set(frame.columns)
    ]
    if not frames:
        return pd.DataFrame(columns=[*columns, "source"])
    return pd.concat(frames, ignore_index=True).sort_values("timestamp", kind="stable")


def newest(csvs: dict[str, pd.DataFrame], kind: tuple[list[str], list[str]]) -> pd.DataFrame:
    """The newest row of each measurement (``every``)."""
    rows = every(csvs, kind)
    return rows.drop_duplicates(kind[0], keep="last").reset_index(drop=True)


def _paired(rows: pd.DataFrame, first: str, second: str) -> tuple[pd.Series, pd.Series] | None:
    """The rows of variants ``first`` and ``second`` from the newest run (one timestamp)
    that has both, else None: a host-bound step moves with the machine, so a ratio of two
    runs' steps says nothing."""
    for _, run in reversed(list(rows.groupby("timestamp", sort=True))):
        by_variant = {r["variant"]: r for _, r in run.iterrows()}
        if first in by_variant and second in by_variant:
            return by_variant[first], by_variant[second]
    return None


def _timings(
    bench: pd.DataFrame,
    op: str,
    mode: str,
    dtypes: tuple[str, ...],
    shape,
    impls=("graphed", "tether"),
):
    """The rows of this call in each of ``dtypes``, all of the first of ``impls`` that has
    them all (by default ``graphed``, else ``tether``); None if none has."""
    for impl in impls:
        rows = []
        for dtype in dtypes:
            found = bench[
                (bench["op"] == op) & (bench["impl"] == impl) & (bench["mode"] == mode)
                & (bench["dtype"] == dtype) & (bench["T"] == shape[0])
                & (bench["N"] == shape[1])
            ]  # fmt: skip
            if len(found):
                rows.append(found.iloc[-1])
        if len(rows) == len(dtypes):
            return rows
    return None


def _timing(
    bench: pd.DataFrame, op: str, mode: str, dtype: str, shape, impls=("graphed", "tether")
):
    """The row of this call of the first of ``impls`` that has one, else None."""
    rows = _timings(bench, op, mode, (dtype,), shape, impls)
    return None if rows is None else rows[0]


def _shape(shape: tuple[int, int]) -> str:
    return f"{shape[0]}x{shape[1]}"


def bench_scores(bench: pd.DataFrame, device: str) -> Iterator[Score]:
    """Issues 13 (long sequences) and 15 (ALIF, bf16) on benchmark-run rows."""

    def score(issue, goal, row, value, target, at_most):
        return Score(issue, goal, device, round(float(value), 4), target, at_most,
                     f"{row['source']} ({row['impl']})", str(row["commit"]))  # fmt: skip

    row = _timing(bench, "lif", "fwdbwd", "float32", (512, 8192))
    if row is not None:
        yield score(13, "LIF fp32 fwd+bwd 512x8192, ms", row, row["ms"], 0.08, True)
    row = _timing(bench, "lif", "fwd", "float32", (512, 8192))
    if row is not None:
        yield score(13, "LIF fp32 inference fwd 512x8192, ms", row, row["ms"], 0.03, True)
    row = _timing(bench, "lif", "fwdbwd", "float32", (1024, 65536))
    if row is not None:
        goal = "LIF fp32 fwd+bwd 1024x65536, % of copy (20 B)"
        yield score(13, goal, row, row["pct_copy_bw"], 85.0, False)
    for shape in LONG_SHAPES:
        lif = _timing(bench, "lif", "fwdbwd", "float32", shape)
        for op in ("plif", "alif"):
            row = _timing(bench, op, "fwdbwd", "float32", shape)
            if lif is not None and row is not None:
                goal = f"{op.upper()} / LIF fp32 fwd+bwd {_shape(shape)}, time ratio"
                yield score(13, goal, row, row["ms"] / lif["ms"], 1.3, True)
    for op in ("lif", "plif", "alif"):
        fp32 = _timing(bench, op, "fwdbwd", "float32", LARGE)
        if fp32 is not None:
            own = op_bytes(op, "fwdbwd", DTYPES["float32"], *LARGE)
            pct = 100 * own / (fp32["ms"] / 1e3) / 1e9 / fp32["copy_gbps"]
            goal = f"{op.upper()} fp32 fwd+bwd {_shape(LARGE)}, % of copy (own model)"
            yield score(15, goal, fp32, pct, 90.0, False)
            if op == "alif":
                yield score(15, f"ALIF fp32 fwd+bwd {_shape(LARGE)}, ms", fp32, fp32["ms"],
                            2.1, True)  # fmt: skip
        pair = _timings(bench, op, "fwdbwd", ("float32", "bfloat16"), LARGE)
        if pair is not None:
            goal = f"{op.upper()} bf16 speed-up over fp32 fwd+bwd {_shape(LARGE)}"
            yield score(15, goal, pair[1], pair[0]["ms"] / pair[1]["ms"], 1.8, False)


def model_scores(models: pd.DataFrame, device: str) -> Iterator[Score]:
    """Issues 11 (the conv net against SpikingJelly; compiled against eager) and 16 (peak
    memory with spike memory against SpikingJelly) on model-benchmark rows (``every``):
    each ratio of two rows of one run, the newest run that has both."""
    conv = models[(models["model"] == "cifar_conv") & (models["size"] == "full")]
    conv = conv[conv["ms"].notna()]
    compiled = conv["compiled"].astype(str).str.lower().isin(["true", "1"])
    conv = conv.assign(variant=conv["impl"] + compiled.map({True: " compiled", False: ""}))
    for cell, rows in conv.groupby(["dtype", "layout", "T", "batch"]):
        dtype, layout, n_steps, batch = cell
        where = f"T={n_steps} B={batch} {layout} {dtype}"
        for suffix in ("", " compiled"):
            pair = _paired(rows, "tether" + suffix, "spikingjelly" + suffix)
            if pair is not None:
                tether, peer = pair
                yield Score(11, f"cifar_conv step {where}{suffix}: tether / SpikingJelly",
                            device, round(tether["ms"] / peer["ms"], 4), 1.0, True,
                            tether["source"], str(tether["commit"]))  # fmt: skip
            pair = _paired(rows, "tether+spikemem" + suffix, "spikingjelly" + suffix)
            if pair is not None:
                memory, peer = pair
                yield Score(16, f"cifar_conv peak memory {where}{suffix}: spike memory / "
                            "SpikingJelly", device,
                            round(memory["peak_mem_mb"] / peer["peak_mem_mb"], 4), 0.6, True,
                            memory["source"], str(memory["commit"]))  # fmt: skip
        pair = _paired(rows, "tether compiled", "tether")
        if pair is not None:
            row, eager = pair
            yield Score(11, f"cifar_conv step {where}: tether compiled / eager", device,
                        round(row["ms"] / eager["ms"], 4), 1.0, True, row["source"],
                        str(row["commit"]))  # fmt: skip


def memory_scores(paired: pd.DataFrame, batch: pd.DataFrame, device: str) -> Iterator[Score]:
    """Issue 16: the step with spike memory against the plain one (timed in alternation)
    and the largest batch against SpikingJelly's."""
    for _, row in paired[paired["impl"] == "tether+spikemem"].iterrows():
        goal = f"{row['model']} step {row['dtype']}: spike memory / plain (alternated)"
        yield Score(16, goal, device, round(float(row["vs_tether"]), 4), 1.05, True,
                    row["source"], str(row["commit"]))  # fmt: skip
    for (model, dtype), rows in batch.groupby(["model", "dtype"]):
        by_impl = {r["impl"]: r for _, r in rows.iterrows()}
        memory, peer = by_impl.get("tether+spikemem"), by_impl.get("spikingjelly")
        # no failing batch: the search stopped at its cap, and the largest is a lower bound
        if memory is None or peer is None or pd.isna(peer["fails"]):
            continue  # SpikingJelly's largest is unknown: no ratio
        goal = f"{model} largest batch {dtype}: spike memory / SpikingJelly"
        ratio = memory["max_batch"] / peer["max_batch"]
        note = "at least (the search's cap)" if pd.isna(memory["fails"]) else ""
        yield Score(16, goal, device, round(float(ratio), 4), 1.5, False,
                    memory["source"], str(memory["commit"]), note)  # fmt: skip


def host_scores(bench: pd.DataFrame, device: str) -> Iterator[Score]:
    """Issue 11: LIF forward+backward at T=8, N=2^20 called eagerly (host time included),
    and compiled with ``reduce-overhead`` (``tether-ro``) against ``graphed``."""
    eager, compiled, graphed = (
        _timing(bench, "lif", "fwdbwd", "float32", (8, 2**20), (impl,))
        for impl in ("tether", "tether-ro", "graphed")
    )
    if eager is not None:
        yield Score(11, "LIF fp32 fwd+bwd 8x1048576 eager, ms", device, round(eager["ms"], 4),
                    0.15, True, f"{eager['source']} (tether)", str(eager["commit"]))  # fmt: skip
    if compiled is not None and graphed is not None:
        yield Score(11, "LIF fp32 fwd+bwd 8x1048576 reduce-overhead / graphed", device,
                    round(compiled["ms"] / graphed["ms"], 4), 1.3, True,
                    f"{compiled['source']} (tether-ro)", str(compiled["commit"]))  # fmt: skip


def scores(results: Path) -> pd.DataFrame:
    """Every goal's score on every GPU folder under ``results`` (one holding benchmark
    CSVs), by issue."""
    out = []
    for folder in sorted(p for p in results.iterdir() if p.is_dir()):
        csvs, device = read_csvs(folder), folder.name
        bench = newest(csvs, BENCH)
        found = [
            *bench_scores(bench, device),
            *host_scores(bench, device),
            *model_scores(every(csvs, MODELS), device),
            *memory_scores(newest(csvs, PAIRED), newest(csvs, BATCH), device),
        ]
        out += [score.__dict__ | {"met": score.met} for score in found]
    columns = [
        "issue", "goal", "device", "value", "target", "at_most", "met", "note", "source", "commit"
    ]  # fmt: skip
    frame = pd.DataFrame(out, columns=columns)
    frame = frame[frame["value"].map(math.isfinite)]
    return frame.sort_values(["issue", "device", "goal"], kind="stable").reset_index(drop=True)
