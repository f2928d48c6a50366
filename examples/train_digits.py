"""Train a spiking network on scikit-learn's handwritten digits with tether's neurons.

    python examples/train_digits.py --neuron lif                  # CPU, or --device cuda
    torchrun --nproc_per_node=2 examples/train_digits.py          # DistributedDataParallel

Images (8x8, 1,797 of them, shipped inside scikit-learn) become Bernoulli spike trains over T
steps (``tether.rate_encoding``); ``Linear -> neuron -> Linear -> neuron`` runs over
(T, B, features) and is read out by the mean membrane (or spike counts) of the last layer.
Writes the training curve as CSV and PNG into results/.
"""

from __future__ import annotations

import argparse
import csv
import os
import time
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.distributed as dist
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn
from tqdm import tqdm

import tether
from tether.neurons import NEURONS

RESULTS = Path(__file__).resolve().parents[1] / "results"
SURROGATES = {"arctan": tether.Arctan, "sigmoid": tether.Sigmoid, "fastsigmoid": tether.FastSigmoid}


@dataclass
class Config:
    neuron: str = "lif"
    surrogate: str = "arctan"
    readout: str = "membrane"  # or "counts"
    n_steps: int = 8
    hidden: int = 128
    epochs: int = 15
    batch_size: int = 64
    lr: float = 5e-3
    seed: int = 0
    device: str = "cpu"
    quiet: bool = False


class SpikingMLP(nn.Module):
    """``Linear -> neuron -> Linear -> neuron`` over (T, B, 64) spike trains."""

    def __init__(self, config: Config) -> None:
        super().__init__()
        neuron = getattr(tether, NEURONS[config.neuron].module)
        surrogate = SURROGATES[config.surrogate]
        self.readout = config.readout
        self.fc1 = nn.Linear(64, config.hidden)
        self.sn1 = neuron(config.hidden, surrogate=surrogate(alpha=2.0))
        self.fc2 = nn.Linear(config.hidden, 10)
        self.sn2 = neuron(10, surrogate=surrogate(alpha=2.0), store_traces=True)

    def forward(self, spikes_in: torch.Tensor) -> torch.Tensor:
        """spikes_in: (T, B, 64) -> logits (B, 10)."""
        for layer in (self.sn1, self.sn2):
            layer.reset()
        out = self.sn2(self.fc2(self.sn1(self.fc1(spikes_in))))
        if self.readout == "counts":
            return out.sum(0)
        return self.sn2.v_seq.mean(0)


def load_data(seed: int) -> tuple[torch.Tensor, ...]:
    """Digits scaled to [0, 1]; a fixed 75/25 stratified split."""
    images, labels = load_digits(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(
        images / 16.0, labels, test_size=0.25, random_state=seed, stratify=labels
    )
    as_float = lambda a: torch.tensor(a, dtype=torch.float32)  # noqa: E731
    as_long = lambda a: torch.tensor(a, dtype=torch.long)  # noqa: E731
    return as_float(x_train), as_long(y_train), as_float(x_test), as_long(y_test)


def evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor, config: Config) -> float:
    generator = torch.Generator(device=config.device).manual_seed(config.seed + 1)
    model.eval()
    with torch.no_grad():
        spikes = tether.rate_encoding(x.to(config.device), config.n_steps, generator)
        predictions = model(spikes).argmax(1).cpu()
    model.train()
    return (predictions == y).float().mean().item()


def train(config: Config, first_grads_path: Path | None = None) -> dict:
    """Train and return {"test_accuracy", "seconds", "curve"}; under torchrun, each rank
    takes its share of every global batch and DDP averages the gradients."""
    distributed = dist.is_available() and "WORLD_SIZE" in os.environ
    rank, world = 0, 1
    if distributed:
        dist.init_process_group("nccl" if config.device == "cuda" else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        if config.device == "cuda":
            torch.cuda.set_device(rank)
    device = torch.device(f"cuda:{rank}" if config.device == "cuda" else "cpu")
    config.device = str(device)
    torch.manual_seed(config.seed)
    x_train, y_train, x_test, y_test = load_data(config.seed)
    model = SpikingMLP(config).to(device)
    net = nn.parallel.DistributedDataParallel(model) if distributed else model
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    encoder = torch.Generator(device=device).manual_seed(config.seed)
    shuffler = torch.Generator().manual_seed(config.seed)
    curve, start = [], time.perf_counter()
    for epoch in range(config.epochs):
        order = torch.randperm(len(x_train), generator=shuffler)
        batches = order.split(config.batch_size)
        total_loss = 0.0
        bar = tqdm(
            batches, desc=f"epoch {epoch + 1}/{config.epochs}", disable=config.quiet or rank > 0
        )
        for step, batch in enumerate(bar):
            # Every rank encodes the whole global batch (same generator), then keeps its share:
            # the global batch and its encoding do not depend on the number of ranks.
            spikes = tether.rate_encoding(x_train[batch].to(device), config.n_steps, encoder)
            share = torch.arange(rank, len(batch), world)
            logits = net(spikes[:, share])
            loss = nn.functional.cross_entropy(logits, y_train[batch][share].to(device))
            optimizer.zero_grad()
            (loss * len(share) / len(batch) * world).backward()  # DDP averages: global mean
            if first_grads_path is not None and epoch == 0 and step == 0 and rank == 0:
                torch.save({n: p.grad.cpu() for n, p in model.named_parameters()}, first_grads_path)
            optimizer.step()
            total_loss += loss.item()
        accuracy = evaluate(model, x_test, y_test, config)
        curve.append(
            {"epoch": epoch + 1, "loss": total_loss / len(batches), "test_accuracy": accuracy}
        )
        if not config.quiet and rank == 0:
            print(f"epoch {epoch + 1}: loss {curve[-1]['loss']:.4f}  test accuracy {accuracy:.4f}")
    seconds = time.perf_counter() - start
    if distributed:
        dist.destroy_process_group()
    return {
        "test_accuracy": curve[-1]["test_accuracy"],
        "seconds": seconds,
        "curve": curve,
        "rank": rank,
    }


def write_curve(result: dict, config: Config, stem: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    RESULTS.mkdir(exist_ok=True)
    with open(RESULTS / f"{stem}.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=["epoch", "loss", "test_accuracy"])
        writer.writeheader()
        writer.writerows(result["curve"])
    epochs = [r["epoch"] for r in result["curve"]]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.2))
    ax1.plot(epochs, [r["loss"] for r in result["curve"]], "o-")
    ax1.set(xlabel="epoch", ylabel="training loss", title=f"{config.neuron}, T={config.n_steps}")
    ax2.plot(epochs, [100 * r["test_accuracy"] for r in result["curve"]], "o-", color="C3")
    ax2.set(
        xlabel="epoch",
        ylabel="test accuracy (%)",
        title=f"final {100 * result['test_accuracy']:.1f}%",
    )
    for ax in (ax1, ax2):
        ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(RESULTS / f"{stem}.png", dpi=110)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    defaults = Config()
    parser.add_argument("--neuron", choices=list(NEURONS), default=defaults.neuron)
    parser.add_argument("--surrogate", choices=sorted(SURROGATES), default=defaults.surrogate)
    parser.add_argument("--readout", choices=["membrane", "counts"], default=defaults.readout)
    parser.add_argument("--steps", type=int, default=defaults.n_steps, help="T")
    parser.add_argument("--epochs", type=int, default=defaults.epochs)
    parser.add_argument("--batch-size", type=int, default=defaults.batch_size)
    parser.add_argument("--lr", type=float, default=defaults.lr)
    parser.add_argument("--seed", type=int, default=defaults.seed)
    parser.add_argument("--device", choices=["cpu", "cuda"], default=defaults.device)
    parser.add_argument("--first-grads", type=Path, help="save the first step's gradients here")
    args = parser.parse_args()
    config = Config(
        neuron=args.neuron, surrogate=args.surrogate, readout=args.readout, n_steps=args.steps,
        epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, seed=args.seed, device=args.device,
    )  # fmt: skip
    result = train(config, args.first_grads)
    if result["rank"] == 0:
        print(f"test accuracy {result['test_accuracy']:.4f} in {result['seconds']:.1f} s")
        world = os.environ.get("WORLD_SIZE", "1")
        write_curve(result, config, f"digits_{config.neuron}_{args.device}_x{world}")


if __name__ == "__main__":
    main()
