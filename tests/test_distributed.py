"""DistributedDataParallel: two processes (gloo on CPUs, NCCL on two GPUs) train like one.

On a CPU the ranks run the kernels under the interpreter (the environment is inherited), so
these tests cover the kernel path with DDP's gradient hooks and bucketing in CI.
"""

import sys
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

import tether
from tests.helpers import DDP_BACKENDS, torchrun
from tether.benchmark.distributed import leave
from tether.neurons import NEURONS

T, BATCH, FEATURES, HIDDEN, CLASSES = 4, 8, 12, 16, 5


def spiking_mlp(kind: str) -> nn.Module:
    """``Linear -> neuron -> Linear -> neuron`` over ``(T, B, FEATURES)``, seeded weights."""
    torch.manual_seed(0)
    neuron = getattr(tether, NEURONS[kind].module)
    return nn.Sequential(
        nn.Linear(FEATURES, HIDDEN),
        neuron(HIDDEN, stateful=False),
        nn.Linear(HIDDEN, CLASSES),
        neuron(CLASSES, stateful=False),
    )


def global_batch(device: torch.device) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(1)
    x = torch.randn(T, BATCH, FEATURES, generator=g) * 1.5 + 0.5
    return x.to(device), torch.randint(CLASSES, (BATCH,), generator=g).to(device)


def first_step_grads(net: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    """Spike counts as logits; the mean cross-entropy over ``x``'s batch, backward."""
    F.cross_entropy(net(x).sum(0), y).backward()


def rank_grads(cuda: bool, out: str) -> None:
    """One rank (under torchrun): DDP over its share of the global batch; saves its gradients
    per neuron."""
    dist.init_process_group("nccl" if cuda else "gloo", timeout=timedelta(seconds=120))
    rank, world = dist.get_rank(), dist.get_world_size()
    device = torch.device(f"cuda:{rank}" if cuda else "cpu")
    if cuda:
        torch.cuda.set_device(device)
    x, y = global_batch(device)
    share = torch.arange(rank, BATCH, world, device=device)
    for kind in NEURONS:
        model = spiking_mlp(kind).to(device)
        net = nn.parallel.DistributedDataParallel(model, device_ids=[rank] if cuda else None)
        first_step_grads(net, x[:, share], y[share])  # equal shares: DDP's mean is the global
        grads = {name: p.grad.cpu() for name, p in model.named_parameters()}
        torch.save(grads, Path(out) / f"{kind}_{rank}.pt")
    leave()


@DDP_BACKENDS
def test_ddp_first_step_gradients_equal_one_process(cuda, tmp_path):
    """Two ranks, each half of the global batch: every parameter's gradient equals one
    process's on the whole batch, for every neuron (PLIF's and ALIF's parameters included)."""
    world = 2
    torchrun(world, "-m", "tests.test_distributed", str(tmp_path), *(["--cuda"] if cuda else []))
    device = torch.device("cuda:0" if cuda else "cpu")
    x, y = global_batch(device)
    for kind in NEURONS:
        model = spiking_mlp(kind).to(device)
        first_step_grads(model, x, y)
        weights = [p for name, p in model.named_parameters() if name.endswith("weight")]
        assert all(w.grad.abs().sum() > 0 for w in weights)  # gradients reach every layer
        for rank in range(world):
            grads = torch.load(tmp_path / f"{kind}_{rank}.pt")
            for name, p in model.named_parameters():
                torch.testing.assert_close(
                    grads[name], p.grad.cpu(), rtol=1e-5, atol=1e-6, msg=f"{kind} {name}"
                )


def test_ddp_model_benchmark_rows(tmp_path):
    """``torchrun -m tether.benchmark.distributed --quick`` with 1 then 2 processes writes a
    row per world and the 2-process row's scaling efficiency against the 1-process one."""
    out = tmp_path / "ddp.csv"
    for world in (1, 2):
        torchrun(world, "-m", "tether.benchmark.distributed", "--quick", "--models", "shd_mlp",
                 "--impls", "tether", "--out", str(out))  # fmt: skip
    frame = pd.read_csv(out)
    assert sorted(frame["world"]) == [1, 1, 2, 2]  # shd_mlp's LIF and ALIF
    two = frame[frame["world"] == 2]
    one = frame[frame["world"] == 1].set_index("neuron")
    for _, row in two.iterrows():
        expected = row["samples_per_s"] / (2 * one.loc[row["neuron"], "samples_per_s"])
        assert row["efficiency"] == pytest.approx(expected, rel=1e-4)
        assert row["samples_per_s"] == pytest.approx(2 * row["batch"] / row["ms"] * 1e3, rel=1e-4)


if __name__ == "__main__":  # a rank of test_ddp_first_step_gradients_equal_one_process
    rank_grads(cuda="--cuda" in sys.argv, out=sys.argv[1])
