"""LIF: ``LIFSubFunction.apply(x_seq, v_init, decay, threshold, alpha, surrogate_type)``."""

from __future__ import annotations

import torch

from tether.functional import core
from tether.reference import NeuronOutput


class LIFSubFunction(core.NeuronFunction):
    """Multi-step LIF over ``x_seq: (T, N)``; returns ``(spikes, v_final, v_seq)``.

    ``v_init: (N,)`` or None (zeros). ``decay``, ``threshold``: floats, one-element tensors or
    vectors of length P shared by ``group_size`` consecutive neurons (see
    ``tether.reference``). ``alpha``: float or one-element tensor. ``spikes`` and ``v_seq``
    (the membrane before reset, None unless ``store_traces``) have x_seq's dtype; ``v_final``
    is float32, None with ``store_state=False`` (not written: for callers that drop the
    state). Gradients flow to every tensor input, parameters and alpha included.
    """

    OP = "lif"

    @staticmethod
    def forward(
        ctx,
        x_seq: torch.Tensor,
        v_init: torch.Tensor | None,
        decay: torch.Tensor | float,
        threshold: torch.Tensor | float,
        alpha: torch.Tensor | float = 2.0,
        surrogate_type: int = 0,
        soft_reset: bool = False,
        detach_reset: bool = True,
        store_traces: bool = True,
        group_size: int = 1,
        store_state: bool = True,
    ):
        spec = core.NeuronSpec(
            ctx._forward_cls.OP,
            False,
            surrogate_type,
            soft_reset,
            detach_reset,
            store_traces,
            group_size,
            store_state,
        )
        user_params = {"decay": decay, "threshold": threshold}
        core.check_inputs(spec, x_seq, {"v_init": v_init}, user_params, alpha)
        names = ("x", "v_init", "decay_v", "threshold", "alpha")
        out = core.forward(
            ctx,
            spec,
            x_seq,
            v_init,
            None,
            {"decay_v": decay, "threshold": threshold},
            alpha,
            dict(zip(names, ctx.needs_input_grad)),
        )
        return out.spikes, out.v_final, out.h_seq

    @staticmethod
    def backward(ctx, grad_spikes, grad_v_final, grad_v_seq):
        grads = core.backward(ctx, NeuronOutput(grad_spikes, grad_v_final, None, grad_v_seq, None))
        return (
            grads.x,
            grads.v_init,
            grads.params["decay_v"],
            grads.params["threshold"],
            grads.alpha,
            None,
            None,
            None,
            None,
            None,
            None,
        )
