"""The neurons capture into CUDA graphs (GPU only): no host synchronisation and no host-side
state per call, so a captured training step replays with new data to the eager result."""

import copy

import pytest
import torch

import tether
from tether.benchmark.providers import capture
from tether.functional import ops
from tether.tuning import table
from tether.tuning.space import KernelConfig

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA graphs need a GPU")

MODULES = {"lif": tether.LIF, "plif": tether.PLIF, "alif": tether.ALIF}
SHAPE = (16, 4, 300)  # (T, B, F): not a multiple of any block size


@pytest.mark.parametrize("stateful,segments", [(True, 1), (False, 1), (True, 4)])
@pytest.mark.parametrize("neuron", list(MODULES))
def test_training_step_replays(monkeypatch, neuron, stateful, segments):
    """Forward and backward captured once; replayed on new input, spikes and the gradients
    of the input and every parameter equal an eager step on that input. ``segments``: the
    backward in 4 time segments (two launches and a maps buffer inside the capture)."""
    if segments > 1:
        config = KernelConfig(64, 1, 1, 2, 32, True, True, segments)
        monkeypatch.setattr(ops, "_PLANS", {})
        monkeypatch.setattr(table, "select_training_configs", lambda *args: (config, config))
    torch.manual_seed(0)
    module = MODULES[neuron](SHAPE[2], stateful=stateful).cuda()
    eager = copy.deepcopy(module)
    x = torch.randn(SHAPE, device="cuda", requires_grad=True)
    weight = torch.randn(SHAPE, device="cuda")

    def step():
        for tensor in (x, *module.parameters()):
            tensor.grad = None  # captured: the replay writes the gradients capture allocated
        module.reset()
        spikes = module(x)
        (spikes * weight).sum().backward()
        return spikes

    graph, spikes = capture(step)
    fresh = torch.randn(SHAPE, device="cuda") * 0.8 + 0.4
    with torch.no_grad():
        x.copy_(fresh)
    graph.replay()

    x_eager = fresh.clone().requires_grad_()
    spikes_eager = eager(x_eager)
    (spikes_eager * weight).sum().backward()
    assert spikes.sum() > 0, "the replay fired no spike: the test would prove nothing"
    torch.testing.assert_close(spikes, spikes_eager, rtol=0, atol=0)
    torch.testing.assert_close(x.grad, x_eager.grad, rtol=1e-5, atol=1e-6)
    for (name, param), reference in zip(module.named_parameters(), eager.parameters()):
        torch.testing.assert_close(param.grad, reference.grad, rtol=1e-4, atol=1e-5, msg=name)


@pytest.mark.parametrize("neuron", list(MODULES))
def test_inference_replays(neuron):
    """A no-grad forward captured once replays on new input to the eager spikes."""
    torch.manual_seed(1)
    module = MODULES[neuron](SHAPE[2], stateful=False).cuda()
    x = torch.randn(SHAPE, device="cuda")

    def step():
        with torch.no_grad():
            return module(x)

    graph, spikes = capture(step)
    x.copy_(torch.randn(SHAPE, device="cuda") * 0.8 + 0.4)
    graph.replay()
    with torch.no_grad():
        expected = module(x)
    assert spikes.sum() > 0
    assert torch.equal(spikes, expected)
