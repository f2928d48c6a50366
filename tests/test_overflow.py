"""A membrane at +inf with hard reset (an inf input, or a finite one overflowing float32): the
spike resets it to 0 whatever it is, on the reference path and the kernels alike; the
gradients are those of ``h * (1 - s)`` on both (issue 14)."""

import pytest
import torch

from tests.helpers import Case

INF = float("inf")
# x: (T=3, N=2) and v_init; the step where neuron 0's membrane is +inf.
INPUTS = {
    "inf-input": ([[0.5, 0.2], [INF, 0.3], [0.5, 0.2]], [0.0, 0.0], 1),
    "overflow": ([[1e38, 0.3], [0.5, 0.2], [0.5, 0.2]], [3e38, 0.0], 0),  # 0.9*3e38 + 1e38
}


def _args(name: str, device: torch.device) -> dict:
    """Leaf float32 tensors requiring grad, by the Functions' argument names."""
    x, v_init, _ = INPUTS[name]
    values = {"x": x, "v_init": v_init, "a_init": [0.0, 0.0], "decay_v": 0.9, "decay_a": 0.8}
    values |= {"threshold": 1.0, "beta": 0.3, "alpha": 2.0}
    return {k: torch.tensor(v, device=device).requires_grad_() for k, v in values.items()}


@pytest.mark.parametrize("detach_reset", [True, False], ids=["detached", "attached"])
@pytest.mark.parametrize("inputs", INPUTS)
@pytest.mark.parametrize("neuron", ["lif", "alif"])
def test_an_infinite_membrane_spikes_and_resets_to_zero(path, neuron, inputs, detach_reset):
    """Forward: a spike at the infinite step, the membrane 0 after it, the same on the path as
    in the definition (``tether.reference``, float32 autograd). Backward: the same gradients,
    NaN where ``dv/ds = -h`` meets the infinite membrane (the reset not detached)."""
    case = Case(neuron=neuron, detach_reset=detach_reset)
    args, ref_args = _args(inputs, path), _args(inputs, torch.device("cpu"))
    out, ref = case.call(args), case.reference(ref_args)
    step = INPUTS[inputs][2]
    assert out["h_seq"][step, 0] == INF and out["spikes"][step, 0] == 1
    assert torch.isfinite(out["v_final"]).all()
    for name in ref:
        torch.testing.assert_close(out[name].cpu(), ref[name])  # a GPU's FMA: 1 ulp

    grads = {name: torch.full_like(ref[name], 0.5) for name in ref}
    names = list(args)
    got = torch.autograd.grad([out[n] for n in ref], [args[n] for n in names],
                              [grads[n].to(path) for n in ref], allow_unused=True)  # fmt: skip
    want = torch.autograd.grad([ref[n] for n in ref], [ref_args[n] for n in names],
                               list(grads.values()), allow_unused=True)  # fmt: skip
    for name, a, b in zip(names, got, want):
        if b is None:
            assert a is None or not a.any(), f"grad {name} should be zero"
            continue
        torch.testing.assert_close(a.cpu(), b, equal_nan=True, msg=f"grad {name}")
    grad_x = dict(zip(names, got))["x"]
    assert torch.isfinite(grad_x[step + 1 :]).all()  # the reset cut the infinite membrane off
    assert torch.isfinite(grad_x).all() == detach_reset
