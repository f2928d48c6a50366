"""The registry agrees with the Functions and modules it names."""

import inspect

import pytest
import torch

import tether
from tether import functional
from tether.neurons import NEURONS, PARAMS


@pytest.mark.parametrize("op", list(NEURONS))
def test_registry_entry_matches_its_function_and_module(op):
    neuron = NEURONS[op]
    function = getattr(functional, neuron.function)
    assert function.OP == op and isinstance(getattr(tether, neuron.module), type)
    assert set(neuron.params) <= set(PARAMS) and neuron.adaptive == ("a" in neuron.states)
    names = list(inspect.signature(function.forward).parameters)
    assert len(names[names.index("x_seq") + 1 : names.index("alpha")]) == len(neuron.arguments)
    x = torch.randn(3, 8) + 0.5
    params = neuron.bench_params(8, torch.Generator().manual_seed(0), requires_grad=False)
    out = function.apply(x, *(params.get(name) for name in neuron.arguments), 2.0)
    assert len(out) == len(neuron.outputs)
    expected = neuron.reference(x, params, 2.0)
    assert torch.equal(out[0], expected.spikes)
