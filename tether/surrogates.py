"""Surrogate gradients for the Heaviside spike.

The forward pass always emits ``s = 1[u >= 0]`` with ``u = h - theta``. The backward pass
replaces ``ds/du`` by a smooth surrogate ``sigma'(u; alpha)``, the derivative of a smooth
primitive ``Phi(u; alpha)``. A trainable ``alpha`` receives ``dPhi/dalpha``:

==========  ==  ==============================  ===========================  =========================
name        id  ``sigma'(u)``                   primitive ``Phi(u)``         ``dPhi/dalpha``
==========  ==  ==============================  ===========================  =========================
Arctan      0   ``alpha / (1 + (alpha*pi*u)^2)``  ``atan(alpha*pi*u) / pi``  ``u / (1 + (alpha*pi*u)^2)``
Sigmoid     1   ``alpha * sig(alpha*u) * (1 - sig(alpha*u))``  ``sig(alpha*u)``  ``u * sig * (1 - sig)``
FastSigmoid 2   ``1 / (1 + |alpha*u|)^2``       ``u / (1 + alpha*|u|)``      ``-u*|u| / (1 + alpha*|u|)^2``
==========  ==  ==============================  ===========================  =========================

The same formulas are written once more, in Triton, in ``tether/kernels/neuron.py``.
"""

from __future__ import annotations

import math
import numbers

import torch
from torch import nn

from tether.parametrize import POSITIVE, load_legacy, raw_value

ARCTAN, SIGMOID, FAST_SIGMOID = 0, 1, 2
SURROGATE_IDS = {ARCTAN: "Arctan", SIGMOID: "Sigmoid", FAST_SIGMOID: "FastSigmoid"}


def check_surrogate_id(surrogate_type: object) -> int:
    """Return ``surrogate_type`` as an int, or raise naming the argument."""
    if isinstance(surrogate_type, bool) or not isinstance(surrogate_type, int):
        raise TypeError(
            f"surrogate_type must be an int in {sorted(SURROGATE_IDS)}, got {surrogate_type!r}"
        )
    if surrogate_type not in SURROGATE_IDS:
        raise ValueError(
            f"surrogate_type must be one of {SURROGATE_IDS} (id: name), got {surrogate_type}"
        )
    return surrogate_type


def surrogate_grad(
    u: torch.Tensor, alpha: torch.Tensor | float, surrogate_type: int
) -> torch.Tensor:
    """``sigma'(u; alpha)``: the surrogate of ``ds/du``, elementwise."""
    if surrogate_type == ARCTAN:
        return alpha / (1 + (alpha * math.pi * u) ** 2)
    if surrogate_type == SIGMOID:
        sig = torch.sigmoid(alpha * u)
        return alpha * sig * (1 - sig)
    return 1 / (1 + (alpha * u).abs()) ** 2


def surrogate_alpha_grad(
    u: torch.Tensor, alpha: torch.Tensor | float, surrogate_type: int
) -> torch.Tensor:
    """``dPhi/dalpha (u; alpha)``: the derivative of the smooth primitive w.r.t. alpha."""
    if surrogate_type == ARCTAN:
        return u / (1 + (alpha * math.pi * u) ** 2)
    if surrogate_type == SIGMOID:
        sig = torch.sigmoid(alpha * u)
        return u * sig * (1 - sig)
    return -u * u.abs() / (1 + alpha * u.abs()) ** 2


class SpikeFunction(torch.autograd.Function):
    """``s = 1[u >= 0]`` with the surrogate gradient."""

    @staticmethod
    def forward(u: torch.Tensor, alpha: torch.Tensor, surrogate_type: int) -> torch.Tensor:
        return (u >= 0).to(u.dtype)

    @staticmethod
    def setup_context(ctx, inputs: tuple, output: torch.Tensor) -> None:
        """Separate from ``forward`` so that ``torch.func`` transforms (the reference
        backward's ``vjp``) can run it."""
        u, alpha, surrogate_type = inputs
        ctx.save_for_backward(u, alpha)
        ctx.surrogate_type = surrogate_type

    @staticmethod
    def backward(ctx, grad_spike: torch.Tensor):
        u, alpha = ctx.saved_tensors
        grad_u = grad_spike * surrogate_grad(u, alpha, ctx.surrogate_type)
        grad_alpha = None
        if ctx.needs_input_grad[1]:
            grad_alpha = (grad_spike * surrogate_alpha_grad(u, alpha, ctx.surrogate_type)).sum()
            grad_alpha = grad_alpha.reshape(alpha.shape)
        return grad_u, grad_alpha, None


class Surrogate(nn.Module):
    """A surrogate gradient: an id the kernels switch on and a (possibly trainable) ``alpha``.

    ``alpha`` must be > 0 (a negative one flips the gradient's sign). A trainable ``alpha`` is
    stored as the parameter ``log_alpha`` and used as ``alpha = exp(log_alpha)`` (a 0-d
    tensor), so no optimizer step makes it negative; the ``alpha`` property gives the value.
    """

    surrogate_type: int = ARCTAN

    def __init__(self, alpha: float = 2.0, trainable: bool = False) -> None:
        super().__init__()
        if not isinstance(alpha, numbers.Real) or isinstance(alpha, bool):
            raise TypeError(f"alpha must be a float, got {type(alpha).__name__}")
        log_alpha = raw_value("alpha", float(alpha), POSITIVE)
        self.trainable = trainable
        if trainable:
            self.log_alpha = nn.Parameter(torch.tensor(log_alpha))
        else:
            self.fixed_alpha = float(alpha)

    @property
    def alpha(self) -> torch.Tensor | float:
        """The surrogate's ``alpha``: a float, or ``exp(log_alpha)`` when trainable."""
        return self.log_alpha.exp() if self.trainable else self.fixed_alpha

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args) -> None:
        load_legacy(state_dict, prefix, ("alpha",), POSITIVE)
        super()._load_from_state_dict(state_dict, prefix, *args)

    def extra_repr(self) -> str:
        alpha = "trainable" if self.trainable else self.fixed_alpha
        return f"alpha={alpha}"


class Arctan(Surrogate):
    """``sigma'(u) = alpha / (1 + (alpha*pi*u)^2)`` (id 0, the default)."""

    surrogate_type = ARCTAN


class Sigmoid(Surrogate):
    """``sigma'(u) = alpha * sig(alpha*u) * (1 - sig(alpha*u))`` (id 1)."""

    surrogate_type = SIGMOID


class FastSigmoid(Surrogate):
    """``sigma'(u) = 1 / (1 + |alpha*u|)^2`` (id 2)."""

    surrogate_type = FAST_SIGMOID
