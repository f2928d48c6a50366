"""tether-bench: benchmark CSVs, plots, tuning and the performance-regression gate.

tether-bench run --quick                 # small sizes; works on a CPU-only machine
tether-bench run --ops lif --impls tether,untuned,eager,compile,spikingjelly,snntorch
tether-bench plot results/<gpu>/latest.csv
tether-bench tune --ops lif --dtypes float32 --grid standard
tether-bench tune --ops lif --grid long --space long   # long sequences over few neurons
tether-bench export results/<gpu>/sweep_*.csv   # merge sweep winners into the table
tether-bench gate --baseline A.csv --current B.csv --tolerance 0.05
"""

from __future__ import annotations

import re
import sys
import traceback
from pathlib import Path
from typing import Annotated

import torch
import typer

from tether.benchmark.shapes import GRIDS, SMALL_SHAPES, STANDARD_SHAPES, format_shapes
from tether.neurons import OPS

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
STANDARD, SMALL = format_shapes(STANDARD_SHAPES), format_shapes(SMALL_SHAPES)


def fail(message: str) -> None:
    """Exit 2 with a one-line reason, no traceback."""
    typer.secho(f"error: {message}", err=True, fg="red")
    raise typer.Exit(2)


def parse_list(value: str, allowed: tuple[str, ...], name: str) -> list[str]:
    """The comma list of option ``--name``, every item one of ``allowed``."""
    items = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [v for v in items if v not in allowed]
    if unknown or not items:
        fail(f"--{name}: unknown {unknown or value!r}; choose from {', '.join(allowed)}")
    return items


def parse_shapes(value: str) -> list[tuple[int, int]]:
    """``"8x1048576,32x1048576"`` -> ``[(8, 1048576), (32, 1048576)]``."""
    shapes = []
    for item in value.split(","):
        match = re.fullmatch(r"\s*(\d+)\s*x\s*(\d+)\s*", item)
        if not match or int(match[1]) < 1 or int(match[2]) < 1:
            fail(f"--shapes: {item!r} is not TxN with positive integers (e.g. 32x8388608)")
        shapes.append((int(match[1]), int(match[2])))
    return shapes


def slug(text: str) -> str:
    """A device name as a folder name: ``"NVIDIA H100 80GB HBM3"`` -> ``nvidia-h100-80gb-hbm3``."""
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def pick_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        fail("--device cuda: no GPU visible")
    if device not in ("cpu", "cuda"):
        fail(f"--device: expected auto, cpu or cuda, got {device!r}")
    return torch.device(device)


@app.command()
def run(
    ops: Annotated[str, typer.Option(help=f"comma list of {', '.join(OPS)}")] = ",".join(OPS),
    modes: Annotated[str, typer.Option(help="fwd (inference), fwdbwd (training)")] = "fwd,fwdbwd",
    dtypes: Annotated[str, typer.Option(help="float32, float16, bfloat16")] = "float32",
    shapes: Annotated[str, typer.Option(help="comma list of TxN")] = STANDARD,
    impls: Annotated[
        str,
        typer.Option(
            help="tether, untuned, graphed, tether-ro, eager, compile, spikingjelly, snntorch"
        ),
    ] = "tether,untuned,eager,compile,spikingjelly,snntorch",
    quick: Annotated[bool, typer.Option(help=f"small shapes ({SMALL}), short timing")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "auto",
    out: Annotated[
        Path | None, typer.Option(help="CSV to write (default results/<device>/latest.csv)")
    ] = None,
) -> None:
    """Check every implementation against the reference, time it, upsert rows into a CSV."""
    from rich.console import Console
    from rich.markup import escape
    from rich.progress import Progress
    from rich.table import Table

    from tether.benchmark.providers import CORE_IMPLS, MODES, PEER_IMPLS
    from tether.benchmark.runner import RESULTS, run_benchmarks, upsert
    from tether.tuning.space import DTYPES

    op_list = parse_list(ops, OPS, "ops")
    mode_list = parse_list(modes, MODES, "modes")
    dtype_list = parse_list(dtypes, tuple(DTYPES), "dtypes")
    impl_list = parse_list(impls, CORE_IMPLS + tuple(PEER_IMPLS), "impls")
    shape_list = parse_shapes(SMALL if quick and shapes == STANDARD else shapes)
    dev = pick_device(device)
    console = Console(stderr=True)
    total = len(op_list) * len(mode_list) * len(dtype_list) * len(shape_list) * len(impl_list)
    skips: list[str] = []
    failures: list[str] = []
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("benchmarking", total=total)

        def advance(label: str) -> None:
            progress.update(task, advance=1, description=label)

        def skipped(reason: str) -> None:
            skips.append(reason)
            progress.update(task, advance=1)

        def failed(label: str, err: Exception) -> None:
            failures.append(label)
            console.print(f"FAILED {escape(label)}:", style="red")
            console.print(escape("".join(traceback.format_exception(err))))
            progress.update(task, advance=1)

        frame = run_benchmarks(
            op_list, mode_list, dtype_list, shape_list, impl_list, dev, quick, advance, skipped,
            failed,
        )  # fmt: skip
    from tether.benchmark.measure import device_name

    path = out or RESULTS / slug(device_name(dev)) / "latest.csv"
    if frame.empty:
        typer.secho(f"error: no row measured (failed: {failures})", err=True)
        raise typer.Exit(1)
    upsert(path, frame)
    table = Table(title=f"{frame['device'].iloc[0]}  (copy {frame['copy_gbps'].iloc[0]:.0f} GB/s)")
    for column in ("op", "mode", "dtype", "T", "N", "impl", "ms", "GB/s", "% copy", "x eager",
                   "x compile", "max err"):  # fmt: skip
        table.add_column(column, justify="right")
    for _, r in frame.iterrows():
        table.add_row(
            r["op"], r["mode"], r["dtype"], str(r["T"]), str(r["N"]), r["impl"],
            f"{r['ms']:.4g}", f"{r['gbps']:.1f}", f"{r['pct_copy_bw']:.1f}",
            f"{r['speedup_vs_eager']:.2f}", f"{r['speedup_vs_compile']:.2f}", f"{r['max_error']:.1e}",
        )  # fmt: skip
    Console(width=200).print(table)
    for reason in sorted(set(skips)):
        console.print(escape(reason), style="yellow")
    console.print(f"wrote {len(frame)} rows to {path}")
    if failures:
        typer.secho(f"error: {len(failures)} failed (tracebacks above): {failures}", err=True)
        raise typer.Exit(1)


@app.command()
def models(
    names: Annotated[
        str, typer.Option("--models", help="cifar_conv, shd_mlp, spikformer_block")
    ] = "cifar_conv,shd_mlp,spikformer_block",
    impls: Annotated[
        str, typer.Option(help="tether, tether+spikemem (spike_memory on), spikingjelly, snntorch")
    ] = "tether,tether+spikemem,spikingjelly,snntorch",
    dtypes: Annotated[str, typer.Option(help="float32, bfloat16 (autocast)")] = "float32",
    compiled: Annotated[str, typer.Option(help="eager, compiled or both")] = "eager,compiled",
    quick: Annotated[bool, typer.Option(help="tiny sizes: runs on a CPU")] = False,
    device: Annotated[str, typer.Option(help="auto, cpu or cuda")] = "auto",
    out: Annotated[
        Path | None, typer.Option(help="CSV to write (default results/<device>/models.csv)")
    ] = None,
    plot: Annotated[bool, typer.Option(help="also draw time and memory PNGs")] = True,
) -> None:
    """Training steps of whole SNNs (forward, loss, backward, optimizer step) side by side:
    every implementation's first step is checked against tether's, then timed."""
    from tether.benchmark.measure import device_name
    from tether.benchmark.models import IMPLS, MODELS, plot_models, run_models
    from tether.benchmark.runner import RESULTS

    model_list = parse_list(names, tuple(MODELS), "models")
    impl_list = parse_list(impls, IMPLS, "impls")
    dtype_list = parse_list(dtypes, ("float32", "bfloat16"), "dtypes")
    modes = parse_list(compiled, ("eager", "compiled"), "compiled")
    dev = pick_device(device)
    path = out or RESULTS / slug(device_name(dev)) / "models.csv"
    failures: list[str] = []

    def failed(label: str, err: Exception) -> None:
        failures.append(label)
        typer.secho(f"FAILED {label}:\n{''.join(traceback.format_exception(err))}", err=True)

    rows = run_models(
        model_list, impl_list, dtype_list, [m == "compiled" for m in modes], quick, dev, path,
        on_point=lambda label: typer.echo(f"done {label}", err=True),
        on_skip=lambda reason: typer.echo(reason, err=True), on_fail=failed,
    )  # fmt: skip
    for r in rows:
        mode = "compiled" if r["compiled"] else "eager"
        typer.echo(
            f"{r['model']:17s} {r['neuron']:5s} {r['impl']:12s} {mode:8s} {r['dtype']:8s} "
            f"{r['layout']:13s} T={r['T']:<5d} {r['ms']:9.3f} ms  {r['peak_mem_mb']:8.1f} MB  "
            f"{'ok' if r['ok'] else 'MISMATCH: ' + r['note']}"
        )
    typer.echo(f"wrote {len(rows)} rows to {path}")
    if plot and rows:
        for png in plot_models(path, path.parent):
            typer.echo(f"wrote {png}")
    if failures or not rows:
        typer.secho(f"error: {len(failures)} failed, {len(rows)} rows: {failures}", err=True)
        raise typer.Exit(1)


@app.command()
def plot(
    csv: Annotated[Path, typer.Argument(help="a results CSV from `run`")],
    out_dir: Annotated[Path | None, typer.Option(help="default: the CSV's folder")] = None,
) -> None:
    """Draw throughput, speedup and %-of-bandwidth PNGs for every op and dtype in CSV."""
    from tether.benchmark.plots import plot_all
    from tether.benchmark.runner import read_results

    try:
        frame = read_results(csv)
    except ValueError as err:
        fail(str(err))
    if frame.empty:
        fail(f"{csv}: no rows to plot")
    for path in plot_all(frame, out_dir or csv.parent, csv.stem):
        typer.echo(f"wrote {path}")


@app.command()
def tune(
    ops: Annotated[str, typer.Option(help=f"comma list of {', '.join(OPS)}")] = "lif",
    directions: Annotated[
        str, typer.Option(help="fwd, bwd, fwd_train (after bwd: it pairs with its winner)")
    ] = "fwd,bwd,fwd_train",
    dtypes: Annotated[str, typer.Option(help="float32, bfloat16, float16")] = "float32",
    grid: Annotated[str, typer.Option(help=f"shape grid: {', '.join(GRIDS)}")] = "standard",
    shapes: Annotated[str | None, typer.Option(help="TxN list instead of --grid")] = None,
    space: Annotated[
        str,
        typer.Option(
            help="config space: full, quick, micro, long, segments, or shipped (each point's "
            "shipped config and its lean-2 twin)"
        ),
    ] = "full",
    baselines: Annotated[bool, typer.Option(help="also time eager and torch.compile")] = True,
    export: Annotated[bool, typer.Option(help="merge winners into the shipped table")] = True,
    out: Annotated[Path | None, typer.Option(help="sweep CSV (default results/<gpu>/)")] = None,
) -> None:
    """Sweep the config space on this GPU through Triton's autotuner; write the sweep CSV and
    export the winners, after each sweep: a ``fwd_train`` sweep pairs with the backward
    configs the table holds by then (with --no-export, those shipped before the run)."""
    import pandas as pd
    from rich.console import Console
    from rich.progress import Progress

    from tether.benchmark.measure import device_name
    from tether.benchmark.runner import RESULTS
    from tether.benchmark.sweep import SHIPPED, export_winners, runtime_entries, sweep, winners
    from tether.tuning.space import DIRECTIONS, DTYPES, SPACE_SIZES
    from tether.tuning.table import TABLE_PATH

    if not torch.cuda.is_available():
        fail("tune needs a GPU: it times kernels on the GPU at hand")
    if space not in (*SPACE_SIZES, SHIPPED):
        fail(f"--space: expected one of {', '.join(SPACE_SIZES)}, {SHIPPED}; got {space!r}")
    if grid not in GRIDS:
        fail(f"--grid: expected one of {', '.join(GRIDS)}, got {grid!r}")
    shape_list = parse_shapes(shapes) if shapes else GRIDS[grid]
    dev = torch.device("cuda")
    path = (
        out
        or RESULTS
        / slug(device_name(dev))
        / f"sweep_{ops.replace(',', '-')}_{dtypes.replace(',', '-')}.csv"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    frames = []
    exported = 0
    before = runtime_entries(TABLE_PATH) if export else []  # the file export writes
    console = Console(stderr=True)
    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("tuning", total=None)
        for op in parse_list(ops, OPS, "ops"):
            for direction in parse_list(directions, DIRECTIONS, "directions"):
                for dtype in parse_list(dtypes, tuple(DTYPES), "dtypes"):
                    frames.append(
                        sweep(op, direction, dtype, shape_list, dev, space, baselines,
                              on_step=lambda s: progress.update(task, description=s))
                    )  # fmt: skip
                    frame = pd.concat(frames, ignore_index=True)
                    frame.to_csv(path, index=False, float_format="%.6g")  # kept if cut short
                    if export:
                        exported += len(export_winners(winners(frames[-1])))
    best = winners(frame)
    console.print(f"wrote {len(frame)} rows to {path}")
    for _, r in best.iterrows():
        typer.echo(
            f"{r['op']:5} {r['direction']:4} {r['dtype']:9} T={r['T']:<5} N={r['N']:<9} "
            f"tuned {r['score']:.4f} ms  default {r['default_score']:.4f} ms  "
            f"block={r['block']} warps={r['num_warps']} stages={r['num_stages']} "
            f"chunk={r['chunk']} pack={r['pack_bits']} prefetch={r['prefetch']} lean={r['lean']}"
        )
    if export:
        typer.echo(f"exported {exported} winners into the table")
        keys = {(r["device"], r["op"], r["dtype"]) for _, r in best.iterrows()}
        _echo_moves(before, runtime_entries(TABLE_PATH), keys)


def _echo_moves(before: list[dict], after: list[dict], keys: set | None = None) -> None:
    """Print the calls an export moved (``sweep.table_moves``): a winner is the nearest
    entry of buckets nobody timed."""
    from tether.benchmark.sweep import moves_report, table_moves

    for line in moves_report(table_moves(before, after, keys)):
        typer.echo(f"  {line}")
    typer.echo("  (python scripts/table_moves.py OLD.json --all lists them)")


@app.command(name="export")
def export_sweeps(
    sweeps: Annotated[list[Path], typer.Argument(help="sweep CSVs written by tune")],
    capability: Annotated[
        str | None, typer.Option(help="compute capability, for CSVs without that column")
    ] = None,
    table: Annotated[Path | None, typer.Option(help="winners JSON (default: shipped)")] = None,
) -> None:
    """Merge the winners of sweep CSVs into the winners table (what tune does at its end):
    for sweeps run where the table could not be written or brought back."""
    from tether.benchmark.measure import read_csv
    from tether.benchmark.sweep import export_winners, runtime_entries, winners
    from tether.tuning.table import TABLE_PATH

    before, keys = runtime_entries(table or TABLE_PATH), set()
    for path in sweeps:
        if not path.exists():
            fail(f"{path}: no such file")
        best = winners(read_csv(path))
        if best.empty:
            fail(f"{path}: no accepted tether rows to export")
        try:
            fresh = export_winners(best, capability, table or TABLE_PATH)
        except ValueError as err:
            fail(f"{path}: {err}")
        typer.echo(f"{path}: exported {len(fresh)} winners")
        keys |= {(e["gpu"], e["op"], e["dtype"]) for e in fresh}
    _echo_moves(before, runtime_entries(table or TABLE_PATH), keys)


@app.command()
def gate(
    baseline: Annotated[Path, typer.Option(help="CSV measured before the change")],
    current: Annotated[Path, typer.Option(help="CSV measured after the change")],
    tolerance: Annotated[float, typer.Option(help="allowed relative slowdown")] = 0.05,
) -> None:
    """Fail (exit 1) when a tether row got slower than tolerance or any error exceeds its bound.

    Rows below 20% of copy bandwidth in the baseline are bound by per-call overhead, which
    moves with the host: they fail only when 2x slower (``tether.benchmark.gate``)."""
    from tether.benchmark.gate import gate as run_gate

    if tolerance < 0:
        fail(f"--tolerance must be >= 0, got {tolerance}")
    try:
        passed = run_gate(baseline, current, tolerance)
    except ValueError as err:
        fail(str(err))
    if not passed:
        raise typer.Exit(1)


@app.command()
def goals(
    results: Annotated[
        Path | None, typer.Option(help="folder of results/<gpu>/ (default: the repo's)")
    ] = None,
    out: Annotated[Path | None, typer.Option(help="CSV to write as well")] = None,
    unmet: Annotated[bool, typer.Option(help="only the goals not met")] = False,
) -> None:
    """Where the open issues' goals stand on the committed results (no GPU): one line per goal,
    GPU and point, with the value, the target, and the CSV and commit it comes from."""
    from tether.benchmark.goals import scores
    from tether.benchmark.runner import RESULTS

    folder = results or RESULTS
    if not folder.is_dir():
        fail(f"--results {folder}: not a folder")
    table = scores(folder)
    if out is not None:
        table.to_csv(out, index=False)
    if unmet:
        table = table[~table["met"]]
    for row in table.itertuples():
        sign = "<=" if row.at_most else ">="
        mark = "met " if row.met else "OPEN"
        note = f" ({row.note})" if row.note else ""
        typer.echo(
            f"{mark} #{row.issue} {row.device}: {row.goal} = {row.value:g} "
            f"(goal {sign} {row.target:g}){note}  [{row.source} @ {row.commit}]"
        )


if __name__ == "__main__":
    sys.exit(app())
