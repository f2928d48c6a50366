"""The module API a SpikingJelly or snnTorch user expects (issue 14): optional ``n_neurons``,
``reset_net``/``detach_net``, ``tau``, constrained learnable decays and alphas, copies in any
state, errors naming the argument, and forgetting ``reset()``. Tiny shapes; tests taking
``path`` run on the reference path and the kernels (on CPU under the interpreter)."""

import copy
import io
import pickle

import numpy as np
import pytest
import torch
from torch import nn

import tether
from tether.functional import LIFSubFunction

MODULES = {
    "lif": lambda n=None: tether.LIF(n),
    "plif": lambda n=None: tether.PLIF(n),
    "alif": lambda n=None: tether.ALIF(n),
}


def _x(*shape, grad: bool = False, device: torch.device | str = "cpu") -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(*shape, generator=g) * 0.8 + 0.6
    return x.to(device).requires_grad_(grad)


# --- n_neurons optional --------------------------------------------------------------------


@pytest.mark.parametrize("neuron", MODULES)
def test_neurons_without_n_neurons_take_the_input_shape(path, neuron):
    """``n_neurons=None``: LIF takes any shape; PLIF/ALIF create their parameters from the
    first input (uninitialized until then) and then equal a module given ``n_neurons``."""
    lazy, sized = MODULES[neuron]().to(path), MODULES[neuron](6).to(path)
    if neuron != "lif":
        assert lazy.has_uninitialized_params()
    x = _x(3, 2, 2, 3, device=path)
    assert torch.equal(lazy(x), sized(x)) and lazy.n_neurons in (None, 6)
    assert [p.shape for p in lazy.parameters()] == [p.shape for p in sized.parameters()]
    lazy.reset()
    if neuron == "lif":
        assert lazy(_x(2, 1, 5, device=path)).shape == (2, 1, 5)  # no parameter: any shape
        return
    with pytest.raises(ValueError, match="n_neurons=6"):
        lazy(_x(2, 1, 5, device=path))


def test_lazy_per_channel_plif_and_state_dict_into_a_lazy_module(path):
    plif = tether.PLIF(per_channel=True).to(path)
    plif(_x(2, 1, 3, 2, 2, device=path))
    assert plif.n_neurons == 3 and plif.decay.shape == (3,)
    fresh = tether.PLIF(per_channel=True).to(path)
    fresh.load_state_dict(plif.state_dict())
    assert fresh.n_neurons == 3 and torch.equal(fresh.decay_logit, plif.decay_logit)
    x = _x(2, 1, 3, 2, 2, device=path)
    plif.reset()
    assert torch.equal(fresh(x), plif(x))


def test_two_dimensional_input_names_the_module_input_shape():
    with pytest.raises(ValueError, match=r"takes \(T, B, \.\.\.\) input.*x\.unsqueeze\(0\)"):
        tether.LIF(8)(torch.randn(3, 8))


# --- reset_net, detach_net ----------------------------------------------------------------


def test_reset_net_and_detach_net_act_on_every_neuron(path):
    net = nn.Sequential(nn.Linear(4, 4), tether.LIF(), nn.Sequential(tether.ALIF(4))).to(path)
    net(_x(2, 1, 4, grad=True, device=path))
    neurons = [net[1], net[2][0]]
    tether.detach_net(net)
    assert all(m.v is not None and m.v.grad_fn is None for m in neurons)
    assert net[2][0].a.grad_fn is None
    tether.reset_net(net)
    assert all(m.v is None for m in neurons) and net[2][0].a is None


# --- tau ------------------------------------------------------------------------------------


def test_tau_is_one_minus_the_reciprocal_of_the_decay(path):
    x = _x(4, 2, 3, device=path)
    assert tether.LIF(tau=2.0).decay == 0.5
    assert torch.equal(tether.LIF(tau=2.0)(x), tether.LIF(decay=0.5)(x))
    torch.testing.assert_close(tether.PLIF(3, init_tau=4.0).decay, torch.full((3,), 0.75))
    alif = tether.ALIF(3, tau_v=4.0, tau_a=5.0)
    torch.testing.assert_close(alif.decay_v, torch.full((3,), 0.75))
    torch.testing.assert_close(alif.decay_a, torch.full((3,), 0.8))
    assert torch.equal(alif.to(path)(x), tether.ALIF(3, decay_v=0.75, decay_a=0.8).to(path)(x))


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: tether.LIF(decay=0.5, tau=2.0), "decay or tau, not both"),
        (lambda: tether.LIF(tau=1.0), "tau must be > 1"),
        (lambda: tether.PLIF(init_decay=0.5, init_tau=2.0), "init_decay or init_tau"),
        (lambda: tether.PLIF(init_tau=0.5), "init_tau must be > 1"),
        (lambda: tether.ALIF(decay_v=0.5, tau_v=2.0), "decay_v or tau_v, not both"),
        (lambda: tether.ALIF(tau_a=1.0), "tau_a must be > 1"),
    ],
    ids=["lif-both", "lif-tau1", "plif-both", "plif-tau", "alif-v-both", "alif-tau-a"],
)
def test_tau_errors(make, match):
    with pytest.raises(ValueError, match=match):
        make()


# --- constrained learnable decays and alpha -------------------------------------------------


def test_learnable_decays_stay_in_the_unit_interval():
    """Decays are ``sigmoid`` of the raw parameter: a huge step leaves them in (0, 1)."""
    plif, alif = tether.PLIF(3, init_decay=0.8), tether.ALIF(3, decay_v=0.7, decay_a=0.6)
    assert [n for n, _ in plif.named_parameters()] == ["decay_logit", "threshold"]
    torch.testing.assert_close(alif.decay_a, torch.full((3,), 0.6))
    params = [plif.decay_logit, alif.decay_v_logit, alif.decay_a_logit]
    opt = torch.optim.SGD(params, lr=1e3)
    sum(p.sum() for p in params).mul(-1).backward()
    opt.step()
    for decay in (plif.decay, alif.decay_v, alif.decay_a):
        assert ((decay > 0) & (decay <= 1)).all() and decay.grad_fn is not None


def test_state_dicts_with_the_old_parameter_names_load():
    old_plif = {"decay": torch.tensor([0.8, 0.9]), "threshold": torch.ones(2)}
    plif = tether.PLIF(2)
    plif.load_state_dict(old_plif)
    torch.testing.assert_close(plif.decay, old_plif["decay"])
    alif = tether.ALIF(surrogate=tether.Sigmoid(trainable=True))
    old_alif = {"decay_v": torch.full((2,), 0.7), "decay_a": torch.full((2,), 0.6)}
    old_alif |= {"threshold": torch.ones(2), "beta": torch.ones(2)}
    alif.load_state_dict({**old_alif, "surrogate.alpha": torch.tensor(3.0)})
    torch.testing.assert_close(alif.decay_a, old_alif["decay_a"])
    torch.testing.assert_close(alif.surrogate.alpha, torch.tensor(3.0))
    with pytest.raises(ValueError, match=r"decay in the state dict must be in \(0, 1\)"):
        tether.PLIF(2).load_state_dict({**old_plif, "decay": torch.tensor([0.5, 1.1])})


@pytest.mark.parametrize(
    "make,match",
    [
        (lambda: tether.PLIF(init_decay=1.0), r"decay must be in \(0, 1\), got 1.0"),
        (lambda: tether.ALIF(decay_a=0.0), r"decay_a must be in \(0, 1\)"),
        (lambda: tether.Arctan(alpha=-2.0), "alpha must be > 0"),
        (lambda: tether.Sigmoid(alpha=0.0, trainable=True), "alpha must be > 0"),
    ],
    ids=["plif-decay1", "alif-decay0", "alpha-negative", "trainable-alpha-zero"],
)
def test_out_of_range_initial_values_are_rejected(make, match):
    with pytest.raises(ValueError, match=match):
        make()


def test_trainable_alpha_stays_positive():
    surrogate = tether.FastSigmoid(alpha=2.0, trainable=True)
    assert [n for n, _ in surrogate.named_parameters()] == ["log_alpha"]
    surrogate.alpha.backward()
    with torch.no_grad():
        surrogate.log_alpha -= 1e3 * surrogate.log_alpha.grad
    assert surrogate.alpha >= 0


# --- copies in any state -------------------------------------------------------------------


@pytest.mark.parametrize("neuron", MODULES)
def test_copies_after_a_forward_without_reset(path, neuron):
    """deepcopy, pickle, torch.save and state_dict with a carried state that has a graph: the
    copy carries the values, detached; the original still backpropagates."""
    module = MODULES[neuron]().to(path)
    module.store_traces = True
    x = _x(2, 1, 3, grad=True, device=path)
    out = module(x)
    assert module.v.grad_fn is not None
    buffer = io.BytesIO()
    torch.save(module, buffer)
    buffer.seek(0)
    copies = [copy.deepcopy(module), pickle.loads(pickle.dumps(module))]
    copies.append(torch.load(buffer, weights_only=False))
    for clone in copies:
        assert torch.equal(clone.v, module.v) and clone.v.grad_fn is None
        assert clone.v_seq.grad_fn is None
        assert clone.state_dict().keys() == module.state_dict().keys()
    (out.sum() + module.v.sum()).backward()
    assert x.grad is not None


# --- errors naming the argument ------------------------------------------------------------


@pytest.mark.parametrize("shape", [(0, 2, 3), (2, 0, 3)], ids=["T0", "B0"])
def test_empty_module_input_names_the_input(shape):
    with pytest.raises(ValueError, match=r"input must have T >= 1 and B >= 1"):
        tether.LIF()(torch.randn(*shape))


def test_numpy_scalars_are_real_numbers(path):
    x = _x(3, 2, 4, device=path)
    lif = tether.LIF(decay=np.float32(0.5), threshold=np.float64(0.8))
    assert type(lif.decay) is float and torch.equal(lif(x), tether.LIF(decay=0.5, threshold=0.8)(x))
    flat = x.flatten(1)
    numpy_args = LIFSubFunction.apply(flat, None, np.float32(0.5), 1, np.float32(2.0))
    assert torch.equal(numpy_args[0], LIFSubFunction.apply(flat, None, 0.5, 1.0, 2.0)[0])


@pytest.mark.parametrize(
    "make,error,match",
    [
        (lambda: tether.LIF(decay=torch.rand(4)), ValueError, r"tensor of shape \(4,\).*PLIF"),
        (lambda: tether.LIF(threshold="1"), TypeError, "threshold must be a real number"),
        (lambda: tether.ALIF(beta=True), TypeError, "beta must be a real number"),
        (lambda: tether.LIF(decay=1.5), ValueError, r"decay must be in \[0, 1\], got 1.5"),
        (lambda: tether.LIF(threshold=float("nan")), ValueError, "threshold must be finite"),
        (lambda: tether.LIF(soft_reset="no"), TypeError, "soft_reset must be a bool, got 'no'"),
        (lambda: tether.PLIF(per_channel="no"), TypeError, "per_channel must be a bool"),
        (lambda: tether.ALIF(stateful=0), TypeError, "stateful must be a bool, got 0"),
    ],
    ids=[
        "lif-vector-decay",
        "lif-str-threshold",
        "alif-bool-beta",
        "lif-decay-above-1",
        "lif-nan-threshold",
        "lif-str-flag",
        "plif-str-per-channel",
        "alif-int-stateful",
    ],
)
def test_bad_scalars_and_flags_name_the_argument(make, error, match):
    with pytest.raises(error, match=match):
        make()


# --- forgetting reset() --------------------------------------------------------------------


@pytest.mark.parametrize("neuron", MODULES)
def test_forgetting_reset_between_batches_says_call_reset(path, neuron):
    """A second training batch without ``reset()``: the forward (maybe an evaluation) runs;
    the backward reaching the freed state raises naming ``reset()``. With
    ``detach_net`` (or ``reset_net``) in between, training goes on."""
    module = MODULES[neuron]().to(path)
    x = _x(2, 1, 3, grad=True, device=path)
    module(x).sum().backward()
    out = module(x)
    with pytest.raises(RuntimeError, match=r"call reset\(\)"):
        out.sum().backward()
    tether.reset_net(module)
    module(x).sum().backward()
    tether.detach_net(module)
    module(x).sum().backward()


@pytest.mark.parametrize("neuron", MODULES)
def test_training_after_inference_mode_without_reset(path, neuron):
    """A call under ``torch.inference_mode`` leaves a state (and a lazy module's parameters)
    that a training call without ``reset()`` uses as if made under ``no_grad``: the same
    spikes and gradients, on the reference path and the kernels."""
    x = _x(2, 1, 3, device=path)
    inferred, plain = MODULES[neuron]().to(path), MODULES[neuron]().to(path)
    with torch.inference_mode():
        inferred(x)
    with torch.no_grad():
        plain(x)
    outs, grads = [], []
    for module in (inferred, plain):
        x_grad = x.clone().requires_grad_()
        outs.append(module(x_grad))
        outs[-1].sum().backward()
        grads.append([x_grad.grad, *(p.grad for p in module.parameters())])
    assert torch.equal(*outs)
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b)


@pytest.mark.parametrize("neuron", ["lif", "plif", "alif"])
def test_single_steps_equal_the_multi_step_call(path, neuron):
    """``step(x_t)`` over t gives the multi-step call's spikes, final state and gradients."""
    cls = {"lif": tether.LIF, "plif": tether.PLIF, "alif": tether.ALIF}[neuron]
    torch.manual_seed(0)
    whole, stepped = cls(6).to(path), cls(6).to(path)
    stepped.load_state_dict(whole.state_dict())
    x = (torch.randn(5, 2, 6, device=path) * 0.8 + 0.5).requires_grad_()
    out_whole = whole(x)
    out_stepped = torch.stack([stepped.step(x[t]) for t in range(x.shape[0])])
    assert torch.equal(out_whole, out_stepped)
    torch.testing.assert_close(stepped.v, whole.v)
    g = torch.randn_like(out_whole)
    grads_whole = torch.autograd.grad((out_whole * g).sum(), [x, *whole.parameters()])
    grads_step = torch.autograd.grad((out_stepped * g).sum(), [x, *stepped.parameters()])
    for a, b in zip(grads_whole, grads_step):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)


def test_step_needs_state_and_a_tensor():
    with pytest.raises(ValueError, match="stateful=True"):
        tether.LIF(stateful=False).step(torch.randn(2, 3))
    with pytest.raises(ValueError, match=r"step\(\) takes one step"):
        tether.LIF().step(torch.tensor(1.0))
