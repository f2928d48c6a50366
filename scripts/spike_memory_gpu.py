"""Spike memory on the CIFAR-shaped conv model (issue 16): ``python scripts/spike_memory_gpu.py``
on a GPU (about 5 minutes on an H100), ``--quick`` on a CPU (tiny model, seconds).

1. Steps: tether, tether+spikemem (``tether.spike_memory``) and SpikingJelly on
   ``cifar_conv`` PLIF, T=8, batch 32, channels_last, fp32 and bf16 (autocast): the model
   benchmark's rows (first step checked against tether, then ms per step and peak memory)
   into ``$OUT/spike_memory_steps.csv``.
   The runs are timed in alternation (``models.run_point``: the step is bound by host time,
   which drifts over a run); tether's with and without spike memory go to
   ``$OUT/spike_memory_paired.csv`` with ``vs_tether``, the step-time cost.
2. Largest batch: for each implementation and dtype, the largest batch whose two training
   steps run without CUDA OOM (grow from the measured memory per sample, then bisect to
   ``RESOLUTION``), within a share of the time budget; into
   ``$OUT/spike_memory_max_batch.csv``: ``max_batch`` fits, ``fails`` the smallest batch
   seen to fail (``max_batch + 1`` when the search converged exactly), ``exact`` whether
   they are within the resolution. Batches are capped where the first activation
   ``T*B*64*32*32`` would pass 2^31 elements (int32 indexing in peers' kernels).
``--quick``: the tiny model on the CPU, where nothing runs out of memory: batches above
``QUICK_LIMIT`` count as not fitting, so that the search itself runs. ``--steps-only``: part 1
alone (``device_suite.sh tree-ab`` runs it against an older tree's tether).
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import os
import time
from pathlib import Path

import pandas as pd
import torch

from tether.benchmark import models
from tether.benchmark.measure import run_facts
from tether.benchmark.model_zoo import ConvSize, make_batch

MODEL, KIND = "cifar_conv", "plif"
IMPLS = ("tether", "tether+spikemem", "spikingjelly")
DTYPES = ("float32", "bfloat16")
RESOLUTION = 0.02  # bisect until the bracket is within 2% of the fitting batch
QUICK_LIMIT = 9  # --quick: larger batches count as out of memory


def sizes(quick: bool, batch: int) -> ConvSize:
    if quick:
        return ConvSize(2, batch, **models.TINY_CONV)
    return ConvSize(8, batch)


def batch_cap(size: ConvSize) -> int:
    """The largest batch whose first activation has fewer than 2^31 elements."""
    first = next(w for w in size.widths if w != "M")
    return (2**31 - 1) // (size.T * first * size.image * size.image)


def fits(impl: str, dtype: str, size: ConvSize, device: torch.device, quick: bool) -> bool:
    """Whether two training steps of ``impl`` at ``size`` run without running out of memory."""
    if quick and size.batch > QUICK_LIMIT:
        return False
    spec = models.IMPLEMENTATIONS[impl]
    try:
        torch.manual_seed(models.SEED)
        source = models.MODELS[MODEL].build(models.IMPLEMENTATIONS["tether"].neuron, KIND, size)
        net = models.build(MODEL, impl, KIND, size, source, device)
        x, labels = make_batch(MODEL, size, models.SEED, device)
        step = models.training_step(net, spec.reset, x, labels, dtype, False, spec.spike_memory)
        for _ in range(2):  # the second step also holds the optimizer's momentum
            step()
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return True
    except torch.cuda.OutOfMemoryError:
        return False
    except RuntimeError as err:  # cuDNN's allocation failures, or a peer's kernel at scale
        print(f"{impl} {dtype} batch {size.batch}: {str(err)[:300]}: counted as not fitting")
        return False
    finally:
        net = step = x = source = None
        gc.collect()
        if device.type == "cuda":
            torch.cuda.empty_cache()


def largest_batch(
    impl: str, dtype: str, start: int, device: torch.device, quick: bool, budget_s: float
) -> dict:
    """Grow from ``start`` (a guess) by 25% until a batch fails, then bisect; stops at the
    resolution, the cap or the time budget."""
    deadline = time.perf_counter() + budget_s
    cap = batch_cap(sizes(quick, 1))
    good, bad, probes = 0, cap + 1, 0
    batch = max(1, min(start, cap))
    while bad - good > max(1, int(RESOLUTION * good)) and time.perf_counter() < deadline:
        probes += 1
        if fits(impl, dtype, sizes(quick, batch), device, quick):
            good = batch
            batch = min(cap, max(batch + 1, int(batch * 1.25))) if bad > cap else (good + bad) // 2
        else:
            bad = batch
            batch = max(1, good and (good + bad) // 2 or batch // 2)
    return {
        "max_batch": good,
        "fails": bad if bad <= cap else None,
        "exact": bad - good <= max(1, int(RESOLUTION * good)),
        "cap": cap,
        "probes": probes,
        "seconds": round(budget_s - (deadline - time.perf_counter()), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny model on the CPU")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "results")))
    parser.add_argument("--budget-s", type=float, default=300.0, help="for the whole script")
    parser.add_argument("--impls", default=",".join(IMPLS))
    parser.add_argument("--dtypes", default=",".join(DTYPES))
    parser.add_argument("--steps-only", action="store_true", help="no largest-batch search")
    args = parser.parse_args()
    start_s = time.perf_counter()
    device = torch.device("cpu" if args.quick else "cuda")
    impls = [i for i in args.impls.split(",") if i in models.IMPLEMENTATIONS]
    impls = [
        i for i in impls if importlib.util.find_spec(models.IMPLEMENTATIONS[i].package or "torch")
    ]
    dtypes = args.dtypes.split(",")
    args.out.mkdir(parents=True, exist_ok=True)
    facts = run_facts(device)

    # 1. step time and peak memory at the benchmark's size
    size = sizes(args.quick, 2 if args.quick else 32)
    rows = []
    for dtype in dtypes:
        runs = [(impl, False) for impl in impls]
        point = models.run_point(MODEL, KIND, size, dtype, runs, device, args.quick,
                                 on_fail=lambda label, err: print("FAILED", label, repr(err)))  # fmt: skip
        rows += [{**row, **facts} for row in point]
        for row in point:
            print(f"{dtype:8s} {row['impl']:16s} {row['ms']:9.3f} ms {row['peak_mem_mb']:9.1f} MB "
                  f"ok={row['ok']}")  # fmt: skip
    steps = pd.DataFrame(rows, columns=models.COLUMNS)
    steps.to_csv(args.out / "spike_memory_steps.csv", index=False, float_format="%.6g")

    # 1b. the step-time cost: run_point timed the point's runs in alternation
    pair = steps[steps["impl"].isin(("tether", "tether+spikemem")) & steps["ok"].astype(bool)]
    tether_ms = pair[pair["impl"] == "tether"].set_index("dtype")["ms"]
    paired = pair.assign(vs_tether=pair["ms"] / pair["dtype"].map(tether_ms))
    if {"tether", "tether+spikemem"} <= set(pair["impl"]):
        paired.to_csv(args.out / "spike_memory_paired.csv", index=False, float_format="%.6g")

    # 2. the largest batch, the time left shared between the searches
    searches = [] if args.steps_only else [(impl, dtype) for dtype in dtypes for impl in impls]
    total_mb = (
        torch.cuda.get_device_properties(device).total_memory / 2**20
        if device.type == "cuda"
        else None
    )
    found = []
    for i, (impl, dtype) in enumerate(searches):
        left = args.budget_s - (time.perf_counter() - start_s)
        measured = steps[(steps["impl"] == impl) & (steps["dtype"] == dtype)]["peak_mem_mb"]
        per_sample = measured.iloc[0] / size.batch if len(measured) else float("nan")
        start = int(0.9 * total_mb / per_sample) if total_mb and per_sample > 0 else 2 * size.batch
        result = largest_batch(impl, dtype, start, device, args.quick, left / (len(searches) - i))
        found.append({"model": MODEL, "neuron": KIND, "impl": impl, "dtype": dtype,
                      "layout": size.layout, "T": size.T, "total_mem_mb": total_mb, **result,
                      **facts})  # fmt: skip
        print(f"{dtype:8s} {impl:16s} largest batch {result}")
        pd.DataFrame(found).to_csv(args.out / "spike_memory_max_batch.csv", index=False)

    # summary: the goals
    for dtype in dtypes:
        by = steps[steps["dtype"] == dtype].set_index("impl")
        best = {r["impl"]: r["max_batch"] for r in found if r["dtype"] == dtype}
        if found and {"tether", "tether+spikemem", "spikingjelly"} <= set(by.index):
            mem, plain, sj = (by.loc[i] for i in ("tether+spikemem", "tether", "spikingjelly"))
            cost = paired[(paired["dtype"] == dtype) & (paired["impl"] == "tether+spikemem")]
            cost = list(cost["vs_tether"])
            print(f"{dtype}: peak spikemem/SJ {mem.peak_mem_mb / sj.peak_mem_mb:.3f} (goal <= 0.6), "
                  f"step spikemem/tether {cost[0] if cost else mem.ms / plain.ms:.3f} (goal <= 1.05), largest batch "
                  f"spikemem/SJ {best.get('tether+spikemem', 0) / max(best.get('spikingjelly', 0), 1):.2f}"
                  " (goal >= 1.5)")  # fmt: skip
    written = ["spike_memory_steps.csv"] + ["spike_memory_max_batch.csv"] * bool(found)
    print(f"wrote {', '.join(str(args.out / name) for name in written)}"
          f" in {time.perf_counter() - start_s:.0f} s")  # fmt: skip


if __name__ == "__main__":
    main()
