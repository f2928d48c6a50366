"""The registry agrees with the Functions and modules it names."""

import pytest
import torch

import tether
from tether import functional
from tether.neurons import NEURONS, PARAMS


@pytest.mark.parametrize("op", list(NEURONS))
def test_registry_entry_matches_its_function_and_module(op):
    """The Function takes ``arguments`` in order and returns ``outputs``; spikes equal the
    entry's reference."""
    neuron = NEURONS[op]
    assert isinstance(getattr(tether, neuron.module), type)
    assert set(neuron.params) <= set(PARAMS) and neuron.adaptive == ("a" in neuron.states)
    x = torch.randn(3, 8) + 0.5
    params = neuron.bench_params(8, torch.Generator().manual_seed(0), requires_grad=False)
    function = getattr(functional, neuron.function)
    out = function.apply(x, *(params.get(name) for name in neuron.arguments), 2.0)
    assert len(out) == len(neuron.outputs)
    assert torch.equal(out[0], neuron.reference(x, params, 2.0).spikes)
