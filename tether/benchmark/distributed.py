"""Model benchmarks under DistributedDataParallel: one process per GPU (NCCL), or per CPU
process (gloo, ``--quick``).

    torchrun --nproc_per_node=1 -m tether.benchmark.distributed --out models_ddp.csv
    torchrun --nproc_per_node=2 -m tether.benchmark.distributed --out models_ddp.csv

Weak scaling: every rank trains the model benchmarks' step (``models.training_step``) on its
own batch of the model's size, so ``samples_per_s`` counts ``world * batch`` samples and
``efficiency`` is the world's samples/s over ``world`` times the 1-process row's (filled when
that row is in the CSV). World 1 runs the plain model, not DDP-wrapped: the baseline is
single-GPU training as users run it. ``ms`` is the slowest rank's median step.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
from pathlib import Path

import pandas as pd
import torch
import torch.distributed as dist
from torch import nn

from tether.benchmark import models
from tether.benchmark.measure import FACT_COLUMNS, peak_memory_mb, run_facts
from tether.benchmark.model_zoo import make_batch

KEY = ["model", "neuron", "impl", "dtype", "layout", "T", "batch", "size", "world", "device"]
COLUMNS = KEY[:-1] + [
    "ms",
    "samples_per_s",
    "efficiency",
    "peak_mem_mb",
    *FACT_COLUMNS,
]


def rank_step(
    model: str, impl: str, kind: str, size: models.Size, dtype: str, device: torch.device
) -> dict:
    """Time this rank's training step (DDP-wrapped when the world has more than one rank):
    the slowest rank's median ms, this rank's peak memory."""
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(models.SEED)  # the same weights on every rank (DDP also broadcasts them)
    source = models.MODELS[model].build(models.IMPLEMENTATIONS["tether"].neuron, kind, size)
    net: nn.Module = models.build(model, impl, kind, size, source, device)
    if world > 1:
        net = nn.parallel.DistributedDataParallel(
            net, device_ids=[device.index] if device.type == "cuda" else None
        )
    x, labels = make_batch(model, size, models.SEED + rank, device)
    reset = models.IMPLEMENTATIONS[impl].reset
    step = models.training_step(net, reset, x, labels, dtype, compiled=False)
    ms = torch.tensor(models.time_steps(step, device, quick=device.type != "cuda"), device=device)
    dist.all_reduce(ms, op=dist.ReduceOp.MAX)
    return {
        "ms": ms.item(),
        "samples_per_s": world * size.batch / ms.item() * 1e3,
        "peak_mem_mb": peak_memory_mb(step, device),
    }


def with_efficiency(frame: pd.DataFrame) -> pd.DataFrame:
    """Fill ``efficiency``: samples/s over ``world`` x the world-1 row's of the same point."""
    point = [k for k in KEY if k != "world"]
    single = frame[frame["world"] == 1].set_index(point)["samples_per_s"]
    index = pd.MultiIndex.from_frame(frame[point])
    base = single.reindex(index).to_numpy()
    frame = frame.copy()
    frame["efficiency"] = frame["samples_per_s"].to_numpy() / (frame["world"].to_numpy() * base)
    return frame


def upsert(path: Path, rows: list[dict]) -> pd.DataFrame:
    """Upsert ``rows`` into the CSV at ``path`` (``models.upsert``), efficiencies refreshed."""
    return models.upsert(path, rows, KEY, COLUMNS, derive=with_efficiency)


def run(
    names: list[str], impls: list[str], dtypes: list[str], quick: bool, out: Path, sizes: str | None
) -> list[dict]:
    """Every (model, kind, size, dtype, impl) on this rank; rank 0 upserts the rows."""
    rank, world = dist.get_rank(), dist.get_world_size()
    cuda = torch.cuda.is_available() and not quick
    device = torch.device(f"cuda:{int(os.environ.get('LOCAL_RANK', rank))}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    facts = run_facts(device)
    rows = []
    for name in names:
        spec = models.MODELS[name]
        chosen = spec.quick if quick else spec.sizes
        if sizes is not None:
            chosen = tuple(chosen[int(i)] for i in sizes.split(","))
        for kind in spec.kinds:
            for size in chosen:
                for dtype in dtypes:
                    for impl in impls:
                        reason = models.skip_reason(impl, kind, False, dtype, size, device)
                        if reason is not None:
                            if rank == 0:
                                print(f"skipped {impl} {name} {kind}: {reason}", flush=True)
                            continue
                        row = {
                            "model": name, "neuron": kind, "impl": impl, "dtype": dtype,
                            "layout": size.layout, "T": size.T, "batch": size.batch,
                            "size": "quick" if quick else "full", "world": world,
                            "efficiency": math.nan,
                            **rank_step(name, impl, kind, size, dtype, device), **facts,
                        }  # fmt: skip
                        rows.append(row)
                        if rank == 0:
                            frame = upsert(out, [row])
                            done = frame.iloc[-1]
                            print(
                                f"{name} {kind} {impl} {dtype} {size.layout} T={size.T} "
                                f"B={size.batch} x{world}: {row['ms']:.3f} ms, "
                                f"{row['samples_per_s']:.0f} samples/s, "
                                f"efficiency {done['efficiency']:.3f}",
                                flush=True,
                            )
    return rows


def leave() -> None:
    """End this rank's process group once every rank is done. NCCL: destroyed. gloo: the
    process exits at once (``os._exit(0)``, output flushed), skipping the teardown where a
    gloo rank hung now and then on a loaded 2-core CI machine after its work was done."""
    dist.barrier()
    if dist.get_backend() == "nccl":
        dist.destroy_process_group()
        return
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, required=True, help="CSV to upsert rows into")
    parser.add_argument("--models", default="cifar_conv,shd_mlp")
    parser.add_argument("--impls", default="tether,spikingjelly")
    parser.add_argument("--dtypes", default="float32")
    parser.add_argument("--sizes", help="comma list of indexes into the model's sizes")
    parser.add_argument("--quick", action="store_true", help="tiny sizes on CPUs (gloo)")
    args = parser.parse_args(argv)
    for name, value in (("models", args.models), ("impls", args.impls)):
        known = tuple(models.MODELS if name == "models" else models.IMPLEMENTATIONS)
        unknown = set(value.split(",")) - set(known)
        if unknown:
            parser.error(f"--{name}: unknown {sorted(unknown)}; expected some of {known}")
    backend = "nccl" if torch.cuda.is_available() and not args.quick else "gloo"
    dist.init_process_group(backend)
    run(args.models.split(","), args.impls.split(","), args.dtypes.split(","), args.quick,
        args.out, args.sizes)  # fmt: skip
    leave()  # not after an error: that rank exits with it and torchrun stops the others


if __name__ == "__main__":
    main()
