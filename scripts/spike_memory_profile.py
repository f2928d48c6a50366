"""Where spike memory's step time goes (issue 16): ``python scripts/spike_memory_profile.py``
on a GPU (about 2 minutes), ``--quick`` on a CPU (tiny model, no CUDA kernel table).

``cifar_conv`` PLIF, T=8, batch 32, channels_last, fp32 and bf16 (autocast), trained with
tether and with tether under ``tether.spike_memory`` (the model benchmark's step). Writes
under ``--out`` (default ``$OUT``):

- ``profile_summary.csv``: per dtype and impl, ``step_ms`` (median over steps: CUDA events on
  a GPU, as the model benchmark), ``host_ms`` (the host's time inside a step, not waiting
  for the GPU: near ``step_ms`` means host-bound), ``kernel_ms`` (sum of CUDA kernel and
  copy time per step), ``saves``, ``packed`` (saves stored in 1 bit) and ``unpacks``
  (spike tensors unpacked: unpack kernel launches on a GPU) per step;
- ``profile_kernels.csv`` (GPU only): per dtype, the 25 CUDA kernels with the largest time
  per step with or without spike memory: ``us_without``, ``us_with``, ``delta_us``, calls;
- ``profile_cpu_ops.csv``: the same for the host (self CPU time per op, top 25);
- ``profile_hooks.csv``: host microseconds per call of the pack and unpack hooks (a saved
  activation that is not spikes, a parameter) on the device;
- ``trace_<dtype>_<impl>.json.gz``: the profiler traces (chrome://tracing, Perfetto).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
import timeit
from collections import Counter
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import torch
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

import tether
from tether.benchmark import models
from tether.benchmark.model_zoo import ConvSize, make_batch

MODEL, KIND = "cifar_conv", "plif"
IMPLS = ("tether", "tether+spikemem")
DTYPES = ("float32", "bfloat16")
TOP = 25
PROFILED_STEPS = 3
memory_module = sys.modules["tether.spike_memory"]  # the class shadows the module's name


def make_step(size: ConvSize, impl: str, dtype: str, device: torch.device) -> Callable:
    """The model benchmark's training step for ``impl`` (same weights for every impl)."""
    torch.manual_seed(models.SEED)
    source = models.MODELS[MODEL].build(models.IMPLEMENTATIONS["tether"].neuron, KIND, size)
    net = models.build(MODEL, impl, KIND, size, source, device)
    x, labels = make_batch(MODEL, size, models.SEED, device)
    spec = models.IMPLEMENTATIONS[impl]
    return models.training_step(net, spec.reset, x, labels, dtype, False, spec.spike_memory)


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def host_ms(step: Callable, device: torch.device, steps: int = 10) -> float:
    """Median host time inside one step (the GPU drained before each)."""
    times = []
    for _ in range(steps):
        sync(device)
        start = time.perf_counter()
        step()
        times.append((time.perf_counter() - start) * 1e3)
    sync(device)
    return statistics.median(times)


def count_per_step(step: Callable) -> dict[str, int]:
    """Saves, 1-bit saves and spike tensors unpacked in one step (counting wrappers)."""
    counts = Counter()
    pack, fresh = memory_module.spike_memory._pack, memory_module._Bits.unpack_fresh

    def counting_pack(self, t):
        saved = pack(self, t)
        counts["saves"] += 1
        counts["packed"] += type(saved) is not tuple
        return saved

    def counting_fresh(bits):
        counts["unpacks"] += 1
        return fresh(bits)

    memory_module.spike_memory._pack = counting_pack
    memory_module._Bits.unpack_fresh = counting_fresh
    try:
        step()
    finally:
        memory_module.spike_memory._pack = pack
        memory_module._Bits.unpack_fresh = fresh
    return {name: counts[name] for name in ("saves", "packed", "unpacks")}


def profiled(step: Callable, device: torch.device, trace: Path) -> tuple[dict, dict]:
    """Per-step ``{name: (us, calls)}`` of CUDA kernels (empty on a CPU) and of host ops
    (self CPU time) over ``PROFILED_STEPS`` steps; the trace written to ``trace``."""
    activities = [ProfilerActivity.CPU] + [ProfilerActivity.CUDA] * (device.type == "cuda")
    with profile(activities=activities) as prof:
        for _ in range(PROFILED_STEPS):
            step()
        sync(device)
    prof.export_chrome_trace(str(trace))
    kernels, ops = Counter(), Counter()
    kernel_calls, op_calls = Counter(), Counter()
    for event in prof.events():
        if event.device_type == DeviceType.CUDA and not event.is_user_annotation:
            kernels[event.name] += event.device_time_total / PROFILED_STEPS
            kernel_calls[event.name] += 1 / PROFILED_STEPS
    for avg in prof.key_averages():
        if avg.device_type == DeviceType.CPU:
            ops[avg.key] += avg.self_cpu_time_total / PROFILED_STEPS
            op_calls[avg.key] += avg.count / PROFILED_STEPS
    return (
        {k: (kernels[k], kernel_calls[k]) for k in kernels},
        {k: (ops[k], op_calls[k]) for k in ops},
    )


def compare(dtype: str, without: dict, with_: dict, unit: str) -> list[dict]:
    """The ``TOP`` names by their larger time per step, with and without, and the delta."""
    names = sorted(set(without) | set(with_), key=lambda n: -max(without.get(n, (0, 0))[0],
                   with_.get(n, (0, 0))[0]))[:TOP]  # fmt: skip
    rows = []
    for name in names:
        (a, calls_a), (b, calls_b) = without.get(name, (0.0, 0)), with_.get(name, (0.0, 0))
        rows.append({"dtype": dtype, "name": name[:160], f"{unit}_without": round(a, 2),
                     f"{unit}_with": round(b, 2), f"delta_{unit}": round(b - a, 2),
                     "calls_without": round(calls_a, 2), "calls_with": round(calls_b, 2)})  # fmt: skip
    return rows


def hook_costs(device: torch.device) -> list[dict]:
    """Host microseconds per call of the hooks, one spike tensor registered."""
    memory = tether.spike_memory()
    x = torch.randn(2, 3, 8, device=device, requires_grad=True)
    with memory:
        spikes = tether.LIF(stateful=False)(x)  # registered: the look-up is not trivial
    activation, parameter = torch.randn(64, 64, device=device), torch.nn.Parameter(x.detach())
    saved = memory._pack(activation)
    cases = {
        "pack activation": lambda: memory._pack(activation),
        "pack parameter": lambda: memory._pack(parameter),
        "unpack activation": lambda: memory_module._unpack(saved),
        "(t, t._version) alone": lambda: (activation, activation._version),
    }
    rows = []
    for name, call in cases.items():
        best = min(timeit.repeat(call, number=20000, repeat=5)) / 20000
        rows.append({"device": device.type, "call": name, "us": round(best * 1e6, 3)})
    del spikes
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--quick", action="store_true", help="tiny model on the CPU")
    parser.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "results")))
    parser.add_argument("--dtypes", default=",".join(DTYPES))
    args = parser.parse_args()
    start_s = time.perf_counter()
    device = torch.device("cpu" if args.quick else "cuda")
    size = ConvSize(8, 2, **models.TINY_CONV) if args.quick else ConvSize(8, 32)
    args.out.mkdir(parents=True, exist_ok=True)

    summary, kernel_rows, op_rows = [], [], []
    for dtype in args.dtypes.split(","):
        tables = {}
        for impl in IMPLS:
            step = make_step(size, impl, dtype, device)
            for _ in range(3):  # compiles, cuDNN's and the allocator's first calls
                step()
            row = {"dtype": dtype, "impl": impl, "T": size.T, "batch": size.batch,
                   "step_ms": models.time_steps(step, device, args.quick),
                   "host_ms": host_ms(step, device), **count_per_step(step)}  # fmt: skip
            trace = args.out / f"trace_{dtype}_{impl.replace('+', '_')}.json.gz"
            tables[impl] = profiled(step, device, trace)
            row["kernel_ms"] = sum(us for us, _ in tables[impl][0].values()) / 1e3
            summary.append(row)
            print(", ".join(f"{k}={v:.3f}" if isinstance(v, float) else f"{k}={v}"
                            for k, v in row.items()))  # fmt: skip
        if device.type == "cuda":
            kernel_rows += compare(dtype, tables["tether"][0], tables["tether+spikemem"][0], "us")
        op_rows += compare(dtype, tables["tether"][1], tables["tether+spikemem"][1], "us")

    pd.DataFrame(summary).to_csv(args.out / "profile_summary.csv", index=False, float_format="%.4g")
    pd.DataFrame(op_rows).to_csv(args.out / "profile_cpu_ops.csv", index=False)
    if kernel_rows:
        kernels = pd.DataFrame(kernel_rows)
        kernels.to_csv(args.out / "profile_kernels.csv", index=False)
        with pd.option_context("display.width", 200, "display.max_colwidth", 70):
            print(kernels.to_string(index=False))
    pd.DataFrame(hook_costs(device)).to_csv(args.out / "profile_hooks.csv", index=False)
    print(pd.read_csv(args.out / "profile_hooks.csv").to_string(index=False))
    print(f"wrote {args.out}/profile_*.csv and traces in {time.perf_counter() - start_s:.0f} s")


if __name__ == "__main__":
    main()
