"""Modules: shapes, streaming state, reset, parameters, statistics."""

import pytest
import torch

import tether
from tests.conftest import DEVICE


def make(neuron: str, n_neurons: int, **kwargs):
    cls = {"lif": tether.LIF, "plif": tether.PLIF, "alif": tether.ALIF}[neuron]
    return cls(n_neurons, **kwargs).to(DEVICE)


@pytest.mark.parametrize("neuron", ["lif", "plif", "alif"])
def test_chunked_equals_whole(device, neuron):
    """Spikes, final state and all gradients agree when a sequence is fed in chunks."""
    torch.manual_seed(0)
    x = (torch.randn(20, 3, 2, 5, device=device) * 0.6 + 0.4).requires_grad_()
    whole, chunked = make(neuron, 10), make(neuron, 10)
    chunked.load_state_dict(whole.state_dict())
    out_whole = whole(x)
    out_chunked = torch.cat([chunked(x[:7]), chunked(x[7:16]), chunked(x[16:])])
    assert torch.equal(out_whole, out_chunked)
    torch.testing.assert_close(whole.v, chunked.v)
    g = torch.randn_like(out_whole)
    loss_whole = (out_whole * g).sum() + whole.v.sum()
    loss_chunked = (out_chunked * g).sum() + chunked.v.sum()
    grads_whole = torch.autograd.grad(loss_whole, [x, *whole.parameters()])
    grads_chunked = torch.autograd.grad(loss_chunked, [x, *chunked.parameters()])
    for a, b in zip(grads_whole, grads_chunked):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_per_channel_plif_on_conv_maps(device):
    plif = make("plif", 4, per_channel=True)
    x = torch.randn(6, 2, 4, 3, 3, device=device) + 0.5
    out = plif(x)
    assert out.shape == x.shape
    out.sum().backward()
    grad = plif.decay_logit.grad
    assert grad.shape == (4,) and grad.abs().sum() > 0


def test_reset_and_state_shape(device):
    lif = make("lif", 8)
    lif(torch.randn(4, 2, 8, device=device))
    assert lif.v.shape == (2, 8)  # (B, *features), like x[0]
    with pytest.raises(ValueError, match="reset"):
        lif(torch.randn(4, 3, 8, device=device))
    lif.reset()
    assert lif(torch.randn(4, 3, 8, device=device)).shape == (4, 3, 8)


def test_traces_and_firing_rate(device):
    alif = make("alif", 5, store_traces=True, track_firing_rate=True)
    out = alif(torch.randn(7, 2, 5, device=device) + 1.0)
    assert alif.v_seq.shape == out.shape and alif.a_seq.shape == out.shape
    assert alif.firing_rate.ndim == 0 and torch.isclose(alif.firing_rate, out.mean())


def test_trainable_surrogate_alpha_gets_gradient(device):
    lif = make("lif", 6, surrogate=tether.Sigmoid(alpha=3.0, trainable=True))
    lif(torch.randn(5, 2, 6, device=device) + 0.8).sum().backward()
    grad = lif.surrogate.log_alpha.grad
    assert grad is not None and grad != 0


def test_non_contiguous_input(device):
    x = torch.randn(6, 8, 2, device=device).transpose(1, 2)  # (6, 2, 8) non-contiguous
    lif = make("lif", 8)
    out = lif(x)
    lif.reset()
    assert torch.equal(out, lif(x.contiguous()))


def test_bad_inputs_name_the_argument():
    with pytest.raises(ValueError, match="n_neurons"):
        tether.LIF(0)
    with pytest.raises(ValueError, match="n_neurons=4"):
        tether.LIF(4)(torch.randn(3, 2, 5))
    with pytest.raises(ValueError, match="C = n_neurons"):
        tether.PLIF(3, per_channel=True)(torch.randn(3, 2, 4, 2, 2))
    with pytest.raises(TypeError, match="surrogate"):
        tether.LIF(4, surrogate="arctan")
    with pytest.raises(ValueError, match=r"\(T, B, \.\.\.\)"):
        tether.LIF(4)(torch.randn(4))


@pytest.mark.parametrize("grad_mode", ["no_grad", "no_input_requires_grad"])
def test_call_without_a_graph_matches_apply(device, grad_mode):
    """``call`` skips autograd when it would record nothing; the outputs equal ``apply``'s."""
    from tether.functional import ALIFSubFunction

    x = torch.randn(9, 200, device=device) * 0.6 + 0.3
    decay = torch.rand(200, device=device) * 0.1 + 0.85
    args = (x, None, None, decay, 0.9, 1.0, 0.2, 2.0, 0, False, True, True)
    if grad_mode == "no_grad":
        decay.requires_grad_()
        with torch.no_grad():
            called, applied = ALIFSubFunction.call(*args), ALIFSubFunction.apply(*args)
    else:
        called, applied = ALIFSubFunction.call(*args), ALIFSubFunction.apply(*args)
    for c, a in zip(called, applied):
        assert c.grad_fn is None and torch.equal(c, a)


def test_call_with_a_graph_records_it(device):
    x = torch.randn(6, 64, device=device, requires_grad=True)
    spikes, v_final, _ = tether.functional.LIFSubFunction.call(x, None, 0.9, 1.0)
    assert spikes.grad_fn is not None and v_final.grad_fn is not None


@pytest.mark.parametrize("function", ["lif", "alif"])
def test_store_state_false_drops_only_the_final_state(device, function):
    """``store_state=False``: no final state is written or returned; spikes and gradients
    are those of the stateful call."""
    from tether.functional import ALIFSubFunction, LIFSubFunction

    torch.manual_seed(0)
    x = (torch.randn(11, 300, device=device) * 0.6 + 0.3).requires_grad_()

    def call(store_state: bool):
        switches = (2.0, 0, False, True, False, 1, store_state)
        if function == "lif":
            return LIFSubFunction.call(x, None, 0.9, 1.0, *switches)
        return ALIFSubFunction.call(x, None, None, 0.9, 0.8, 1.0, 0.2, *switches)

    stateful, stateless = call(True), call(False)
    finals = (1,) if function == "lif" else (1, 2)
    for i in finals:
        assert stateful[i] is not None and stateless[i] is None
    assert torch.equal(stateful[0], stateless[0])
    g = torch.randn_like(x)
    (grad_stateful,) = torch.autograd.grad(stateful[0], x, g)
    (grad_stateless,) = torch.autograd.grad(stateless[0], x, g)
    assert torch.allclose(grad_stateful, grad_stateless)


def test_stateless_module_starts_every_call_from_zeros(device):
    torch.manual_seed(0)
    x = torch.randn(6, 2, 40, device=device) * 0.6 + 0.5
    stateless = tether.ALIF(40, stateful=False).to(device)
    first, second = stateless(x), stateless(x)
    assert stateless.v is None and stateless.a is None and torch.equal(first, second)
    stateful = tether.ALIF(40).to(device)
    assert torch.equal(stateful(x), first) and stateful.v is not None


@pytest.mark.parametrize("module", ["LIF", "PLIF", "ALIF"])
def test_stateless_call_writes_no_attribute(device, module, monkeypatch):
    """A stateless module's call, and reset() with nothing to forget, set nothing on the
    module: under torch.compile a call's writes would be replayed in Python after every call
    of the graph, and guarded on; models reset every step."""
    neuron = getattr(tether, module)(40, stateful=False).to(device)
    x = torch.randn(6, 2, 40, device=device)
    neuron(x)
    writes = []
    setattr_ = torch.nn.Module.__setattr__
    monkeypatch.setattr(
        type(neuron), "__setattr__", lambda self, k, v: writes.append(k) or setattr_(self, k, v)
    )
    neuron(x)
    neuron.reset()  # nothing to forget
    assert writes == []
    monkeypatch.undo()
    stateful = getattr(tether, module)(40, store_traces=True).to(device)
    stateful(x)
    assert stateful.v is not None and stateful.v_seq is not None  # a stateful call keeps both
    stateful.reset()
    assert stateful.v is None and stateful.v_seq is None
    if module == "ALIF":
        assert stateful.a is None and stateful.a_seq is None
