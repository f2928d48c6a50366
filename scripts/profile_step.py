"""Where a model's training step spends GPU time: ``python scripts/profile_step.py OUT MODEL
IMPL [--compiled] [--dtype bfloat16] [--size INDEX]``.

Profiles 3 steps of one model benchmark (``tether.benchmark.models``, full size ``INDEX``)
after warm-up and writes ``OUT/profile_<model>_<impl>[_compiled]_<dtype>[_size<INDEX>].txt``
(the suffix for sizes other than the first): the kernels
by total CUDA time per step, and the step's wall time; then, from 3 more steps profiled on
the CPU only, the host's side: the CPU ops by inclusive and by self time per step (where a
host-bound step's time goes: the compiled regions, autograd's nodes, the launches).
"""

from __future__ import annotations

import argparse
from collections import defaultdict
from pathlib import Path

import torch

from tether.benchmark import models


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path)
    parser.add_argument("model")
    parser.add_argument("impl")
    parser.add_argument("--compiled", action="store_true")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--size", type=int, default=0)
    args = parser.parse_args()
    device = torch.device("cuda")
    spec = models.MODELS[args.model]
    size, kind = spec.sizes[args.size], spec.kinds[0]
    torch.manual_seed(models.SEED)
    source = spec.build(models.IMPLEMENTATIONS["tether"].neuron, kind, size)
    x, labels = models.make_batch(args.model, size, models.SEED, device)
    net = models.build(args.model, args.impl, kind, size, source, device)
    reset = models.IMPLEMENTATIONS[args.impl].reset
    step = models.training_step(net, reset, x, labels, args.dtype, args.compiled)
    ms = models.time_steps(step, device, quick=False)
    totals: dict[str, float] = defaultdict(float)
    counts: dict[str, int] = defaultdict(int)
    n_steps = 3
    for name, us in models.profile_kernels(step, n_steps):
        totals[name] += us / n_steps
        counts[name] += 1
    lines = [
        f"{args.model} {args.impl} compiled={args.compiled} {args.dtype} {size}: "
        f"{ms:.3f} ms/step; kernels {sum(totals.values()) / 1e3:.3f} ms/step",
        f"{'us/step':>9} {'calls':>6}  kernel",
    ]
    for name, us in sorted(totals.items(), key=lambda kv: -kv[1])[:40]:
        lines.append(f"{us:9.1f} {counts[name] // n_steps:6d}  {name[:150]}")
    lines += cpu_lines(step, n_steps)
    tag = f"{args.model}_{args.impl}{'_compiled' if args.compiled else ''}_{args.dtype}"
    tag += f"_size{args.size}" if args.size else ""
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"profile_{tag}.txt").write_text("\n".join(lines) + "\n")
    print("\n".join(lines[:12]))


def cpu_lines(step, n_steps: int, top: int = 30) -> list[str]:
    """The CPU ops of ``n_steps`` steps, per step: the ``top`` by inclusive time, then by
    self time (microseconds, calls)."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(n_steps):
            step()
        torch.cuda.synchronize()
    events = prof.key_averages()
    lines = []
    for label, attr in (("inclusive", "cpu_time_total"), ("self", "self_cpu_time_total")):
        lines += ["", f"CPU ops by {label} time: {'us/step':>9} {'calls':>6}  op"]
        for e in sorted(events, key=lambda e: -getattr(e, attr))[:top]:
            us, calls = getattr(e, attr) / n_steps, e.count / n_steps
            lines.append(f"{us:9.1f} {calls:6.1f}  {e.key[:150]}")
    return lines


if __name__ == "__main__":
    main()
