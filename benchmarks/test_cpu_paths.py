"""pytest-benchmark suite for the CPU paths (the eager reference behind every module on CPU).

    python -m pytest benchmarks --benchmark-autosave
    python -m pytest benchmarks --benchmark-compare --benchmark-compare-fail=median:10%

Not part of the test suite (timings are not assertions); GPU timings live in results/.
"""

import pytest
import torch

import tether
from tether.neurons import NEURONS

MODULES = [neuron.module for neuron in NEURONS.values()]
SHAPES = [(16, 4, 256), (32, 8, 1024)]


@pytest.mark.parametrize("neuron", MODULES)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_forward(benchmark, neuron, shape):
    layer = getattr(tether, neuron)(shape[-1])
    x = torch.randn(*shape) * 0.6 + 0.3

    def forward():
        layer.reset()
        with torch.no_grad():
            return layer(x)

    assert benchmark(forward).shape == x.shape


@pytest.mark.parametrize("neuron", MODULES)
@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
def test_forward_backward(benchmark, neuron, shape):
    layer = getattr(tether, neuron)(shape[-1])
    x = (torch.randn(*shape) * 0.6 + 0.3).requires_grad_()
    grad = torch.randn(*shape)

    def step():
        layer.reset()
        return torch.autograd.grad(layer(x), x, grad)[0]

    assert benchmark(step).shape == x.shape
