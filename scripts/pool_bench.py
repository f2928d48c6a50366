"""``tether.max_pool2d`` against ``F.max_pool2d`` on a GPU: ``python scripts/pool_bench.py
OUT.csv [MODEL.csv]``. The 2x2 max-pools of cifar_conv at T=4 B=64 (``(256, C, S, S)``:
128x32x32, 256x16x16, 512x8x8), fp32 and bf16, channels_last and contiguous; the forward
alone (inference), forward + backward (training, the gradient given), and the bytes each
saves for its backward. Median of ``triton.testing.do_bench`` (warmed up, random spikes).
``MODEL.csv``: then tether's cifar_conv training step (T=4 B=64, eager, both layouts and
dtypes, with and without spike memory) with either pool, timed in alternation
(``models.time_interleaved``), and its peak memory.

Bytes an input element a kernel must move (2x2, fp32): forward 4 read + 1 written (+ 1/4
offsets: 5.25); backward 1 + 1/4 read + 4 written (5.25). torch's forward also writes 2 B of
int64 indices an input element and its backward reads them.
"""

from __future__ import annotations

import itertools
import sys

import pandas as pd
import torch
import torch.nn.functional as F
import triton.testing

import tether
from tether.benchmark import models
from tether.benchmark.measure import peak_memory_mb, run_facts
from tether.benchmark.model_zoo import ConvSize, make_batch

SHAPES = [(256, 128, 32, 32), (256, 256, 16, 16), (256, 512, 8, 8)]


def saved_bytes(fn, x: torch.Tensor) -> int:
    sizes = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        sizes.append(t.numel() * t.element_size() if t.data_ptr() != x.data_ptr() else 0)
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(x, 2)
    return sum(sizes)


def model_ab(out: str, device: torch.device, facts: dict) -> None:
    """tether's cifar_conv step with torch's pool against tether's, in alternation."""
    rows = []
    pools = {"torch": F.max_pool2d, "tether": tether.max_pool2d}
    for layout, dtype, impl in itertools.product(
        ("channels_last", "contiguous"), ("float32", "bfloat16"), ("tether", "tether+spikemem")
    ):
        size = ConvSize(4, 64, layout=layout)
        spec = models.IMPLEMENTATIONS[impl]
        torch.manual_seed(models.SEED)
        source = models.MODELS["cifar_conv"].build(spec.neuron, "plif", size)
        x, labels = make_batch("cifar_conv", size, models.SEED, device)
        steps = {}
        for name, fn in pools.items():
            net = models.build("cifar_conv", impl, "plif", size, source, device)
            models.pool_with(net, fn)
            steps[name] = models.training_step(
                net, spec.reset, x, labels, dtype, False, spec.spike_memory
            )
        peaks = {name: peak_memory_mb(step, device) for name, step in steps.items()}
        times = models.time_interleaved(steps, device)
        for name in pools:
            rows.append(
                {
                    "impl": impl,
                    "pool": name,
                    "layout": layout,
                    "dtype": dtype,
                    "T": size.T,
                    "batch": size.batch,
                    "ms": times[name],
                    "peak_mem_mb": peaks[name],
                    **facts,
                }  # fmt: skip
            )
            print(rows[-1], flush=True)
    pd.DataFrame(rows).to_csv(out, index=False)


def main(out: str, model_out: str | None = None) -> None:
    device = torch.device("cuda")
    rows, facts = [], run_facts(device)
    impls = {"tether": tether.max_pool2d, "torch": F.max_pool2d}
    for shape, dtype, layout in itertools.product(
        SHAPES, (torch.float32, torch.bfloat16), ("channels_last", "contiguous")
    ):
        fmt = torch.channels_last if layout == "channels_last" else torch.contiguous_format
        x = (torch.rand(shape, device=device) < 0.2).to(dtype).contiguous(memory_format=fmt)
        x.requires_grad_()
        grad = torch.randn(shape[0], shape[1], shape[2] // 2, shape[3] // 2, device=device)
        grad = grad.to(dtype).contiguous(memory_format=fmt)
        for impl, fn in impls.items():
            with torch.no_grad():
                fwd = triton.testing.do_bench(lambda fn=fn, x=x: fn(x, 2), return_mode="median")

            def train(fn=fn, x=x, grad=grad) -> None:
                fn(x, 2).backward(grad)

            fwdbwd = triton.testing.do_bench(train, grad_to_none=[x], return_mode="median")
            rows.append(
                {
                    "impl": impl,
                    "shape": "x".join(map(str, shape)),
                    "dtype": str(dtype)[6:],
                    "layout": layout,
                    "fwd_ms": fwd,
                    "fwdbwd_ms": fwdbwd,
                    "saved_bytes": saved_bytes(fn, x),
                    **facts,
                }  # fmt: skip
            )
            print(rows[-1], flush=True)
    pd.DataFrame(rows).to_csv(out, index=False)
    if model_out:
        model_ab(model_out, device, facts)


if __name__ == "__main__":
    main(*sys.argv[1:3])
