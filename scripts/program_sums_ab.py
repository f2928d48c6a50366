"""``PROGRAM_SUMS`` A/B on one GPU: ``python scripts/program_sums_ab.py OUT.csv [--dtypes
float32,bfloat16] [--steps 4,8] [--layouts contiguous,channels_last]``.

A per-channel ``tether.PLIF`` (learned decay and threshold, as ``cifar_conv`` builds it) on
``(T, 64, C, H, W)`` input (contiguous or channels_last) at the CIFAR conv net's layer
shapes, forward +
``backward`` of the spikes' gradient captured in a CUDA graph (GPU time only), with the
backward's parameter sums per program (the runtime's choice where a program's neurons share
channels: runs of H*W, residues mod C in channels_last) and per neuron
(``plans.program_sums_of`` patched to none, what the kernel did before), in alternation
(``models.time_interleaved``). Also checks that both give the same gradients (to float
summation order). Rows: ``dtype,layout,T,C,H,W,program_sums,ms,max_rel_diff`` and the run
facts (``program_sums``: the sums a program wrote, 0 per neuron; 0 in both rows where no two
neurons of a program share a channel).
``--quick``: tiny shapes on whatever device (a check that the script runs)."""

from __future__ import annotations

import argparse
import csv
import itertools
from unittest.mock import patch

import torch

import tether
from tether.benchmark import models
from tether.benchmark.measure import run_facts
from tether.benchmark.providers import capture
from tether.functional import ops, plans

# cifar_conv's neuron layers at batch 64: (C, H, W)
LAYERS = ((64, 32, 32), (128, 32, 32), (256, 16, 16), (512, 8, 8))


def step_of(n_steps: int, layer: tuple[int, int, int], dtype, layout: str, device, per_program):
    """A captured (on a GPU) or plain forward + backward: (run, gradients, whether a
    backward plan summed per program)."""
    c = layer[0]
    neuron = tether.PLIF(c, per_channel=True, stateful=False).to(device)
    g = torch.Generator(device=device).manual_seed(0)
    shape = (n_steps, 64 if device.type == "cuda" else 2, *layer)

    def laid_out(t: torch.Tensor) -> torch.Tensor:  # in ``layout``, as the conv net's maps
        if layout == "contiguous":
            return t
        return t.flatten(0, 1).contiguous(memory_format=torch.channels_last).view(t.shape)

    x = torch.randn(shape, device=device, generator=g).mul(0.6).add(0.3).to(dtype)
    x = laid_out(x).requires_grad_()
    grad = laid_out(torch.randn(shape, device=device, generator=g).to(dtype))  # as the spikes
    leaves = [x, *neuron.parameters()]

    groups = plans.program_sums_of if per_program else (lambda *args: (0, False))
    cache: dict = {}  # this variant's plans

    def run():
        with patch.object(plans, "program_sums_of", groups), patch.object(ops, "_PLANS", cache):
            return torch.autograd.grad(neuron(x), leaves, grad)

    if device.type != "cuda":
        outputs = run()
    else:
        replay, outputs = capture(run)
        run = replay.replay
    applied = max(p.constexprs.get("PROGRAM_SUMS", 0) for p in cache.values())
    return run, outputs, applied


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("out")
    parser.add_argument("--dtypes", default="float32,bfloat16")
    parser.add_argument("--steps", default="4,8")
    parser.add_argument("--layouts", default="contiguous,channels_last")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    layers = ((2, 32, 32), (2, 4, 4)) if args.quick else LAYERS
    rows = []
    for dtype_name in args.dtypes.split(","):
        dtype = getattr(torch, dtype_name)
        for layout, n_steps, layer in itertools.product(
            args.layouts.split(","), map(int, args.steps.split(",")), layers
        ):
            runs, grads, applied = {}, {}, {}
            for per_program in (True, False):
                runs[per_program], grads[per_program], applied[per_program] = step_of(
                    n_steps, layer, dtype, layout, device, per_program
                )
            diff = max(
                ((a.float() - b.float()).abs().max() / b.float().abs().max().clamp_min(1e-30))
                .item()
                for a, b in zip(grads[True], grads[False])
            )  # fmt: skip
            times = models.time_interleaved(runs, device, rounds=4 if args.quick else 20)
            for per_program, ms in times.items():
                rows.append({
                    "dtype": dtype_name, "layout": layout, "T": n_steps, "C": layer[0],
                    "H": layer[1], "W": layer[2], "program_sums": applied[per_program],
                    "ms": round(ms, 5), "max_rel_diff": diff, **run_facts(device),
                })  # fmt: skip
            print(dtype_name, layout, n_steps, layer, applied,
                  {k: round(v, 4) for k, v in times.items()}, f"max rel diff {diff:.2e}",
                  flush=True)  # fmt: skip
    with open(args.out, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    main()
