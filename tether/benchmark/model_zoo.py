"""The networks of the model benchmarks, one builder per model shared by every implementation.

A builder takes a neuron factory ``neuron(features, kind) -> nn.Module`` (what an
implementation changes, with the function of the max-pool layers: ``Pool.max_pool``) and a
size. Every neuron module maps ``(T, B, *features)`` to spikes of the same shape; everything
else (convolutions, linear layers, batch norms, pooling, attention) is plain PyTorch under
the same parameter names, so the weights of one implementation's model load into another's
(``copy_layers``).

Layers that are not neurons run on ``(T*B, ...)`` and the neurons see ``(T, B, ...)`` views of
their outputs. Every model returns logits per step ``(T, B, classes)``; the loss is the
cross-entropy of their mean over time.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import nn

# (features, kind) -> a module mapping (T, B, *features) to spikes; kind: lif | plif | alif
NeuronFactory = Callable[[Sequence[int], str], nn.Module]
LAYERS = (nn.Conv2d, nn.Linear, nn.BatchNorm1d, nn.BatchNorm2d)  # the weights models share


@dataclass(frozen=True)
class ConvSize:
    """``cifar_conv``: input ``(T, B, 3, image, image)``; ``widths``: conv channels, "M" a
    2x2 max-pool; ``layout``: memory format of the activations (channels_last|contiguous)."""

    T: int
    batch: int
    image: int = 32
    widths: tuple[int | str, ...] = (64, 128, "M", 256, 256, "M", 512, "M")
    classes: int = 10
    layout: str = "channels_last"

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.T, self.batch, 3, self.image, self.image)


@dataclass(frozen=True)
class MLPSize:
    """``shd_mlp``: input ``(T, B, inputs)`` binary spikes (SHD: 700 channels)."""

    T: int
    batch: int
    inputs: int = 700
    hidden: tuple[int, ...] = (512, 512)
    classes: int = 20
    layout: str = "contiguous"

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.T, self.batch, self.inputs)


@dataclass(frozen=True)
class SpikformerSize:
    """``spikformer_block``: input ``(T, B, tokens, dim)``; ``heads`` of ``dim // heads``."""

    T: int
    batch: int
    tokens: int = 64
    dim: int = 384
    heads: int = 12
    mlp_ratio: int = 4
    classes: int = 10
    layout: str = "contiguous"

    @property
    def input_shape(self) -> tuple[int, ...]:
        return (self.T, self.batch, self.tokens, self.dim)


class TokenNorm(nn.BatchNorm1d):
    """BatchNorm1d over the last dim of ``(N, ..., D)``: statistics over everything else."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return super().forward(x.reshape(-1, x.shape[-1])).view(x.shape)


class Block(nn.Module):
    """``layer -> norm -> neuron``: ``(T, B, *in) -> (T, B, *out)`` spikes; the layer and the
    norm run on ``(T*B, *in)``, the neuron on a ``(T, B, *out)`` view of their output."""

    def __init__(self, layer: nn.Module, norm: nn.Module, neuron: nn.Module) -> None:
        super().__init__()
        self.layer, self.norm, self.neuron = layer, norm, neuron

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.norm(self.layer(x.flatten(0, 1)))
        return self.neuron(y.unflatten(0, x.shape[:2]))


def linear_block(neuron: NeuronFactory, kind: str, features: Sequence[int], d_out: int) -> Block:
    """Linear + BatchNorm + neuron on ``(T, B, *features[:-1], d_in)``."""
    out = (*features[:-1], d_out)
    return Block(nn.Linear(features[-1], d_out), TokenNorm(d_out), neuron(out, kind))


# (x: (N, C, H, W), kernel_size) -> (N, C, H // k, W // k): torch's, or tether.max_pool2d
MaxPool = Callable[[torch.Tensor, int], torch.Tensor]


class Pool(nn.Module):
    """2x2 max-pool of ``(T, B, C, H, W)`` spikes by ``max_pool`` (an implementation may set
    its own: ``models.Implementation.max_pool``)."""

    def __init__(self, max_pool: MaxPool = nn.functional.max_pool2d) -> None:
        super().__init__()
        self.max_pool = max_pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.max_pool(x.flatten(0, 1), 2).unflatten(0, x.shape[:2])


class CifarConv(nn.Module):
    """VGG-style spiking conv net: ``[conv3x3 + BN + neuron | maxpool2x2]* -> flatten ->
    linear``; ``x: (T, B, 3, H, W) -> (T, B, classes)``."""

    def __init__(self, neuron: NeuronFactory, kind: str, size: ConvSize) -> None:
        super().__init__()
        layers, channels, side = [], 3, size.image
        for width in size.widths:
            if width == "M":
                layers.append(Pool())
                side //= 2
                continue
            conv = nn.Conv2d(channels, width, 3, padding=1, bias=False)
            layers.append(Block(conv, nn.BatchNorm2d(width), neuron((width, side, side), kind)))
            channels = width
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels * side * side, size.classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        spikes = self.features(x)
        return self.head(spikes.flatten(2))


class SHDMLP(nn.Module):
    """``[linear + BN + neuron]* -> linear`` on ``x: (T, B, inputs) -> (T, B, classes)``."""

    def __init__(self, neuron: NeuronFactory, kind: str, size: MLPSize) -> None:
        super().__init__()
        widths = (size.inputs, *size.hidden)
        self.hidden = nn.Sequential(
            *(linear_block(neuron, kind, (d_in,), d_out) for d_in, d_out in zip(widths, widths[1:]))
        )
        self.head = nn.Linear(widths[-1], size.classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.hidden(x))


class SpikingSelfAttention(nn.Module):
    """Spikformer's SSA: q, k, v spikes from linear + BN + neuron; ``(q k^T) v * scale``
    per head (no softmax: products of spike matrices), a neuron, then linear + BN + neuron.
    ``x: (T, B, N, D)`` spikes -> ``(T, B, N, D)`` spikes."""

    def __init__(self, neuron: NeuronFactory, kind: str, size: SpikformerSize) -> None:
        super().__init__()
        tokens = (size.tokens, size.dim)
        self.heads = size.heads
        self.scale = 0.125  # Spikformer's constant scale
        self.q, self.k, self.v, self.proj = (
            linear_block(neuron, kind, tokens, size.dim) for _ in range(4)
        )
        self.attn_neuron = neuron(tokens, kind)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        def split(t: torch.Tensor) -> torch.Tensor:  # (T, B, N, D) -> (T, B, H, N, D/H)
            return t.unflatten(-1, (self.heads, -1)).transpose(2, 3)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        attended = (q @ k.transpose(-2, -1)) @ v * self.scale
        return self.proj(self.attn_neuron(attended.transpose(2, 3).flatten(-2)))


class Spikformer(nn.Module):
    """Input projection (linear + BN + neuron), one Spikformer block (``x + SSA(x)``, then
    ``x + MLP(x)``, MLP = two linear + BN + neuron), linear head on the mean over tokens.
    ``x: (T, B, N, D) -> (T, B, classes)``."""

    def __init__(self, neuron: NeuronFactory, kind: str, size: SpikformerSize) -> None:
        super().__init__()
        tokens, hidden = (size.tokens, size.dim), size.dim * size.mlp_ratio
        self.embed = linear_block(neuron, kind, tokens, size.dim)
        self.attn = SpikingSelfAttention(neuron, kind, size)
        self.mlp = nn.Sequential(
            linear_block(neuron, kind, tokens, hidden),
            linear_block(neuron, kind, (size.tokens, hidden), size.dim),
        )
        self.head = nn.Linear(size.dim, size.classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.embed(x)
        x = x + self.attn(x)
        x = x + self.mlp(x)
        return self.head(x.mean(2))


def make_batch(
    model: str, size: ConvSize | MLPSize | SpikformerSize, seed: int, device: torch.device
) -> tuple[torch.Tensor, torch.Tensor]:
    """Random input (``size.input_shape``, drawn on the CPU so every device gets the same) and
    labels ``(B,)``. SHD input is binary (10% spikes); images are in ``size.layout``."""
    g = torch.Generator().manual_seed(seed)
    if model == "shd_mlp":
        x = (torch.rand(size.input_shape, generator=g) < 0.1).float()
    else:
        x = torch.randn(size.input_shape, generator=g)
    labels = torch.randint(size.classes, (size.batch,), generator=g)
    x = x.to(device)
    if size.layout == "channels_last":  # (T*B, C, H, W) channels_last, seen as (T, B, ...)
        x = x.flatten(0, 1).to(memory_format=torch.channels_last).unflatten(0, x.shape[:2])
    return x, labels.to(device)


def copy_layers(source: nn.Module, target: nn.Module) -> None:
    """Load every non-neuron layer (``LAYERS``) of ``source`` into the same-named layer of
    ``target``; raises if a name is missing or the architectures differ."""
    targets = dict(target.named_modules())
    copied = 0
    for name, layer in source.named_modules():
        if isinstance(layer, LAYERS):
            if not isinstance(targets.get(name), type(layer)):
                raise ValueError(f"target has no {type(layer).__name__} named {name!r}")
            targets[name].load_state_dict(layer.state_dict())
            copied += 1
    if copied != sum(isinstance(m, LAYERS) for m in targets.values()):
        raise ValueError("target has layers that source lacks")
