"""The eager reference: hand-computed steps and gradcheck in float64."""

import math

import pytest
import torch

from tether import reference
from tether.reference import alif_reference, lif_reference
from tether.surrogates import SpikeFunction


def test_lif_steps_by_hand():
    x = torch.tensor([[0.6], [0.6], [0.6], [2.0]])
    out = lif_reference(x, None, decay=0.5, threshold=1.0)
    # h: 0.6, 0.9, 1.05 -> spike, reset to 0, then 2.0 -> spike
    assert out.spikes.flatten().tolist() == [0.0, 0.0, 1.0, 1.0]
    torch.testing.assert_close(out.h_seq.flatten(), torch.tensor([0.6, 0.9, 1.05, 2.0]))
    assert out.v_final.item() == 0.0


def test_soft_reset_subtracts_threshold():
    out = lif_reference(torch.tensor([[1.5], [0.0]]), None, 1.0, 1.0, soft_reset=True)
    torch.testing.assert_close(out.h_seq.flatten(), torch.tensor([1.5, 0.5]))


def test_alif_threshold_adapts():
    x = torch.tensor([[1.2], [1.2], [1.2]])
    out = alif_reference(x, None, None, decay_v=0.0, decay_a=1.0, threshold=1.0, beta=0.5)
    # theta: 1.0 -> spike (a=1), 1.5 -> no spike, 1.5 -> no spike
    assert out.spikes.flatten().tolist() == [1.0, 0.0, 0.0]
    assert out.a_seq.flatten().tolist() == [0.0, 1.0, 1.0]


def _smooth_primitive(u, alpha, surrogate_type):
    """Phi(u; alpha), whose derivatives the surrogate claims to be."""
    if surrogate_type == 0:
        return torch.atan(alpha * math.pi * u) / math.pi
    if surrogate_type == 1:
        return torch.sigmoid(alpha * u)
    return u / (1 + alpha * u.abs())


def _inputs(seed: int, n_steps: int = 6, n: int = 5):
    g = torch.Generator().manual_seed(seed)

    def rand(*shape, lo=0.0, hi=1.0):
        return (
            torch.rand(shape, generator=g, dtype=torch.float64) * (hi - lo) + lo
        ).requires_grad_()

    x = (torch.randn(n_steps, n, generator=g, dtype=torch.float64) * 0.6 + 0.4).requires_grad_()
    params = [rand(n, lo=0.6, hi=0.9) for _ in range(2)] + [rand(n, lo=0.8, hi=1.2), rand(n)]
    alpha = torch.tensor(2.0, dtype=torch.float64, requires_grad=True)
    return x, rand(n), rand(n), *params, alpha


@pytest.mark.parametrize("surrogate_type", [0, 1, 2])
def test_surrogate_is_the_derivative_of_its_primitive(surrogate_type):
    u = torch.linspace(-2, 2, 41, dtype=torch.float64, requires_grad=True)
    alpha = torch.tensor(1.7, dtype=torch.float64, requires_grad=True)
    du, dalpha = torch.autograd.grad(_smooth_primitive(u, alpha, surrogate_type).sum(), [u, alpha])
    sdu, sdalpha = torch.autograd.grad(
        SpikeFunction.apply(u, alpha, surrogate_type).sum(), [u, alpha]
    )
    torch.testing.assert_close(sdu, du)
    torch.testing.assert_close(sdalpha, dalpha)


@pytest.mark.parametrize("surrogate_type", [0, 1, 2])
@pytest.mark.parametrize("soft_reset", [False, True])
def test_reference_gradcheck_with_smooth_spikes(monkeypatch, surrogate_type, soft_reset):
    """gradcheck the whole BPTT graph in float64, with the spike replaced by its smooth
    primitive so that the surrogate is the true derivative: checks every path but the step.
    The reset is not detached here (a detached smooth value would still move numerically);
    ``test_reference_gradcheck_membrane_paths`` covers the detached reset."""

    class SmoothSpike:
        @staticmethod
        def apply(u, alpha, surrogate_type):
            return _smooth_primitive(u, alpha, surrogate_type)

    monkeypatch.setattr(reference, "SpikeFunction", SmoothSpike)

    def run(*args):
        out = alif_reference(*args, surrogate_type, soft_reset, False)
        return out.spikes, out.v_final, out.a_final, out.h_seq, out.a_seq

    torch.autograd.gradcheck(run, _inputs(surrogate_type))


@pytest.mark.parametrize("soft_reset", [False, True])
def test_reference_gradcheck_membrane_paths(soft_reset):
    """With the reset detached, the membrane outputs do not pass through the step: gradcheck
    them as they are (the spike pattern stays fixed under the perturbations)."""
    x, v0, _, decay, _, threshold, _, _ = _inputs(5)

    def run(x, v0, decay, threshold):
        out = lif_reference(x, v0, decay, threshold, 2.0, 0, soft_reset, True)
        return out.v_final, out.h_seq

    torch.autograd.gradcheck(run, (x, v0, decay, threshold))
