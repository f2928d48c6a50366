"""The eager PyTorch definition of every neuron: the truth for tests and the eager baseline.

All neurons step over time ``t = 1..T`` on ``x_seq: (T, N)``; state is carried in float32
(float64 when the input is float64):

    h_t     = decay_v * v_{t-1} + x_t                      membrane before reset (``v_seq``)
    theta_t = threshold + beta * a_{t-1}                   (LIF, PLIF: beta = 0)
    s_t     = 1[h_t >= theta_t]                            surrogate gradient on u_t = h_t - theta_t
    v_t     = h_t * (1 - s_t), 0 where s_t = 1             hard reset (to 0), or
    v_t     = h_t - theta_t * s_t                          soft reset
    a_t     = decay_a * a_{t-1} + s_t                      (ALIF only; ``a_seq`` holds a_{t-1})

A spike resets to 0 whatever ``h_t`` is: an ``h_t`` of +inf (an inf input, or a finite one
overflowing float32) spikes and resets instead of making ``inf * 0 = NaN``; the gradients
are those of ``h_t * (1 - s_t)`` (``HardReset``), as the kernels compute them. With
``detach_reset=True`` the spike in the reset term is a constant for autograd; the spike
that feeds ``a`` is always differentiable. Parameters are Python floats, one-element tensors,
or vectors of length P shared by ``group_size`` consecutive neurons: neuron ``n`` uses entry
``(n // group_size) % P``. With ``x_seq`` the flattening of ``(T, B, C, H, W)`` and
``group_size = H*W``, a length-C vector is per channel; with ``group_size = 1`` and
``P = C*H*W`` it is per neuron, in both cases broadcast over the batch.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from tether.surrogates import SpikeFunction

Param = torch.Tensor | float


class NeuronOutput(NamedTuple):
    """spikes, h_seq, a_seq: (T, N) in the input dtype; v_final, a_final: (N,) state dtype."""

    spikes: torch.Tensor
    v_final: torch.Tensor
    a_final: torch.Tensor | None
    h_seq: torch.Tensor
    a_seq: torch.Tensor | None


class HardReset(torch.autograd.Function):
    """``v = h * (1 - s)``, exactly 0 where ``s == 1`` (an infinite ``h`` included); the
    gradients of ``h * (1 - s)``: ``dv/dh = 1 - s``, ``dv/ds = -h``. ``h, s: (N,)``."""

    @staticmethod
    def forward(h: torch.Tensor, spike: torch.Tensor) -> torch.Tensor:
        return torch.where(spike == 1, 0.0, h * (1 - spike))

    @staticmethod
    def setup_context(ctx, inputs: tuple, output: torch.Tensor) -> None:
        """Separate from ``forward`` for ``torch.func`` (the reference backward's ``vjp``)."""
        ctx.save_for_backward(*inputs)

    @staticmethod
    def backward(ctx, grad_v: torch.Tensor):
        h, spike = ctx.saved_tensors
        grad_spike = -grad_v * h if ctx.needs_input_grad[1] else None
        return grad_v * (1 - spike), grad_spike


def _per_neuron(param: Param, n_neurons: int, group_size: int, dtype, device) -> torch.Tensor:
    """Expand a parameter to (N,) (or leave a scalar as a 0-d/1-element tensor)."""
    if not isinstance(param, torch.Tensor):
        return torch.tensor(float(param), dtype=dtype, device=device)
    param = param.to(dtype)
    if param.numel() == 1:
        return param.reshape(())
    index = (torch.arange(n_neurons, device=device) // group_size) % param.numel()
    return param.reshape(-1)[index]


def neuron_reference(
    x_seq: torch.Tensor,
    v_init: torch.Tensor | None = None,
    decay_v: Param = 0.9,
    threshold: Param = 1.0,
    alpha: Param = 2.0,
    surrogate_type: int = 0,
    soft_reset: bool = False,
    detach_reset: bool = True,
    group_size: int = 1,
    adaptive: bool = False,
    a_init: torch.Tensor | None = None,
    decay_a: Param = 0.9,
    beta: Param = 0.0,
) -> NeuronOutput:
    """Run LIF (``adaptive=False``) or ALIF over ``x_seq: (T, N)`` with plain autograd."""
    n_steps, n_neurons = x_seq.shape
    state_dtype = torch.float64 if x_seq.dtype == torch.float64 else torch.float32
    device = x_seq.device

    def expand(p: Param) -> torch.Tensor:
        return _per_neuron(p, n_neurons, group_size, state_dtype, device)

    decay_v, threshold = expand(decay_v), expand(threshold)
    alpha = alpha if isinstance(alpha, torch.Tensor) else torch.tensor(float(alpha))
    alpha = alpha.to(device=device, dtype=state_dtype)
    zeros = torch.zeros(n_neurons, dtype=state_dtype, device=device)
    v = zeros if v_init is None else v_init.to(state_dtype)
    if adaptive:
        decay_a, beta = expand(decay_a), expand(beta)
        a = zeros if a_init is None else a_init.to(state_dtype)

    spikes, h_seq, a_seq = [], [], []
    for t in range(n_steps):
        h = decay_v * v + x_seq[t].to(state_dtype)
        theta = threshold + beta * a if adaptive else threshold
        spike = SpikeFunction.apply(h - theta, alpha, surrogate_type)
        reset_spike = spike.detach() if detach_reset else spike
        v = h - theta * reset_spike if soft_reset else HardReset.apply(h, reset_spike)
        h_seq.append(h)
        spikes.append(spike)
        if adaptive:
            a_seq.append(a)
            a = decay_a * a + spike
    out_dtype = x_seq.dtype

    def stack(seq: list[torch.Tensor]) -> torch.Tensor:
        return torch.stack(seq).to(out_dtype)

    return NeuronOutput(
        spikes=stack(spikes),
        v_final=v,
        a_final=a if adaptive else None,
        h_seq=stack(h_seq),
        a_seq=stack(a_seq) if adaptive else None,
    )


def lif_reference(
    x_seq: torch.Tensor,
    v_init: torch.Tensor | None = None,
    decay: Param = 0.9,
    threshold: Param = 1.0,
    alpha: Param = 2.0,
    surrogate_type: int = 0,
    soft_reset: bool = False,
    detach_reset: bool = True,
    group_size: int = 1,
) -> NeuronOutput:
    """LIF and PLIF (vector ``decay``/``threshold``): see the module docstring."""
    return neuron_reference(
        x_seq, v_init, decay, threshold, alpha, surrogate_type, soft_reset, detach_reset, group_size
    )


def alif_reference(
    x_seq: torch.Tensor,
    v_init: torch.Tensor | None = None,
    a_init: torch.Tensor | None = None,
    decay_v: Param = 0.9,
    decay_a: Param = 0.9,
    threshold: Param = 1.0,
    beta: Param = 0.5,
    alpha: Param = 2.0,
    surrogate_type: int = 0,
    soft_reset: bool = False,
    detach_reset: bool = True,
    group_size: int = 1,
) -> NeuronOutput:
    """ALIF: adaptive threshold ``theta_t = threshold + beta * a_{t-1}``."""
    return neuron_reference(
        x_seq,
        v_init,
        decay_v,
        threshold,
        alpha,
        surrogate_type,
        soft_reset,
        detach_reset,
        group_size,
        adaptive=True,
        a_init=a_init,
        decay_a=decay_a,
        beta=beta,
    )
