"""Activation checkpointing (``torch.utils.checkpoint``) over neuron modules: stateless ones
as any module, stateful ones with ``context_fn=tether.checkpoint_context`` (else a clear
error: the recomputation would start from the state the forward left)."""

import pytest
import torch
from torch.utils.checkpoint import checkpoint

import tether

NEURONS = {"lif": tether.LIF, "plif": tether.PLIF, "alif": tether.ALIF}


def _train(
    neuron: str, device: torch.device, how: str, stateful: bool = True, memory: bool = False
) -> list:
    """Gradients of every parameter and the input, and the final states, after three
    chunks of a sequence through a block that calls the neuron twice, each call's spikes
    into a linear layer (which saves them), checkpointed ``how`` (``"none"``, ``"context"``,
    ``"plain"``, ``"reentrant"``); ``memory``: inside ``tether.spike_memory``."""
    torch.manual_seed(0)
    linear, head = torch.nn.Linear(16, 32).to(device), torch.nn.Linear(32, 8).to(device)
    module = NEURONS[neuron](32, stateful=stateful).to(device)
    x = torch.randn(8, 4, 16, device=device, requires_grad=True)

    def block(x: torch.Tensor) -> torch.Tensor:
        return head(module(linear(x) * 3)) + head(module(linear(x) * 2))

    loss = 0
    with tether.spike_memory() if memory else torch.enable_grad():
        for _ in range(3):
            if how == "none":
                y = block(x)
            else:
                kwargs = {"context_fn": tether.checkpoint_context} if how == "context" else {}
                y = checkpoint(block, x, use_reentrant=how == "reentrant", **kwargs)
            loss = loss + (y * torch.arange(8.0, device=device)).sum()
    loss.backward()
    states = [module.v, getattr(module, "a", None)]
    learned = (*linear.parameters(), *head.parameters(), *module.parameters(), x)
    return [p.grad for p in learned] + states


def _assert_equal(got: list, expected: list) -> None:
    assert len(got) == len(expected)
    for a, b in zip(got, expected):
        assert (a is None and b is None) or torch.equal(a, b)


@pytest.mark.parametrize("neuron", NEURONS)
def test_checkpointed_stateful_neurons_match_the_plain_run(path, neuron):
    """The recomputation starts each call from the state its forward started from and
    leaves the modules' state alone: gradients and final states bitwise equal."""
    _assert_equal(_train(neuron, path, "context"), _train(neuron, path, "none"))


@pytest.mark.parametrize("reentrant", [False, True], ids=["non-reentrant", "reentrant"])
def test_a_stateful_neuron_recomputed_without_the_context_raises(reentrant):
    how = "reentrant" if reentrant else "plain"
    with pytest.raises(RuntimeError, match="context_fn=tether.checkpoint_context"):
        _train("lif", torch.device("cpu"), how)


@pytest.mark.parametrize("neuron", NEURONS)
def test_stateless_neurons_checkpoint_as_they_are(path, neuron):
    expected = _train(neuron, path, "none", stateful=False)
    _assert_equal(_train(neuron, path, "plain", stateful=False), expected)
    _assert_equal(_train(neuron, path, "context", stateful=False), expected)


@pytest.mark.parametrize("stateful", [False, True], ids=["stateless", "stateful"])
def test_checkpointing_under_torch_compile(stateful):
    """Stateless neurons compile inside a checkpointed region with fullgraph=True; PyTorch
    refuses a region that mutates module state there ("Unsafe side effect"), so a stateful
    one breaks the graph (fullgraph=False) and runs the region eagerly, with the context."""
    torch.manual_seed(0)
    x = torch.randn(8, 4, 16, requires_grad=True)
    linear, module = torch.nn.Linear(16, 32), tether.LIF(32, stateful=stateful)

    def block(x: torch.Tensor) -> torch.Tensor:
        return module(linear(x) * 3)

    def step(x: torch.Tensor) -> torch.Tensor:
        context = {"context_fn": tether.checkpoint_context} if stateful else {}
        return checkpoint(block, x, use_reentrant=False, **context)

    runs = []
    for fn in (torch.compile(step, backend="aot_eager", fullgraph=not stateful), block):
        module.reset()
        linear.weight.grad = None
        sum(fn(x).sum() for _ in range(2)).backward()
        runs.append((linear.weight.grad, module.v))
    (compiled_grad, compiled_v), (grad, v) = runs
    torch.testing.assert_close(compiled_grad, grad)
    assert (v is None) == (not stateful) and (v is None or torch.equal(compiled_v, v))


def test_checkpointing_inside_spike_memory(device):
    """``tether.spike_memory`` around checkpointed regions of stateful neurons: gradients
    and states bitwise those of the plain run (inside a region checkpoint saves nothing;
    outside it the spikes are kept in 1 bit)."""
    expected = _train("lif", device, "none")
    _assert_equal(_train("lif", device, "context", memory=True), expected)
    _assert_equal(_train("lif", device, "none", memory=True), expected)
