"""ALIF: LIF with an adaptive threshold ``theta_t = threshold + beta * a_{t-1}``."""

from __future__ import annotations

import torch

from tether.functional import core
from tether.reference import NeuronOutput

_NEEDS = core.needs_getter(0, 1, 2, 3, 5, 4, 6, 7)


class ALIFSubFunction(core.NeuronFunction):
    """Multi-step ALIF over ``x_seq: (T, N)``.

    ``apply(x_seq, v_init, a_init, decay_v, decay_a, threshold, beta, alpha,
    surrogate_type=0, soft_reset=False, detach_reset=True, store_traces=True, group_size=1,
    store_state=True)`` returns ``(spikes, v_final, a_final, v_seq, a_seq)``: ``a_seq[t]`` is
    the adaptation ``a_{t-1}`` used at step t; ``v_final``, ``a_final`` are float32 (None with
    ``store_state=False``). The spike feeding
    ``a`` is differentiable; only the membrane reset is detached (``detach_reset``).
    """

    @staticmethod
    def forward(
        ctx,
        x_seq: torch.Tensor,
        v_init: torch.Tensor | None,
        a_init: torch.Tensor | None,
        decay_v: torch.Tensor | float,
        decay_a: torch.Tensor | float,
        threshold: torch.Tensor | float,
        beta: torch.Tensor | float,
        alpha: torch.Tensor | float = 2.0,
        surrogate_type: int = 0,
        soft_reset: bool = False,
        detach_reset: bool = True,
        store_traces: bool = True,
        group_size: int = 1,
        store_state: bool = True,
    ):
        spec = core.NeuronSpec(
            "alif", True, surrogate_type, soft_reset, detach_reset, store_traces,
            group_size, store_state,
        )  # fmt: skip
        params = {"decay_v": decay_v, "threshold": threshold, "decay_a": decay_a, "beta": beta}

        def check() -> None:
            states = {"v_init": v_init, "a_init": a_init}
            core.check_inputs(spec, x_seq, states, params, alpha)

        needs = _NEEDS(ctx.needs_input_grad)
        out = core.forward(ctx, spec, x_seq, v_init, a_init, params, alpha, needs, check)
        return out.spikes, out.v_final, out.a_final, out.h_seq, out.a_seq

    @staticmethod
    def backward(ctx, grad_spikes, grad_v_final, grad_a_final, grad_v_seq, grad_a_seq):
        g = core.backward(
            ctx, NeuronOutput(grad_spikes, grad_v_final, grad_a_final, grad_v_seq, grad_a_seq)
        )
        return (
            g.x, g.v_init, g.a_init, g.decay_v, g.decay_a, g.threshold, g.beta, g.alpha,
            None, None, None, None, None, None,
        )  # fmt: skip
