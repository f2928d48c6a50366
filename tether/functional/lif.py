"""LIF: ``LIFSubFunction.apply(x_seq, v_init, decay, threshold, alpha, surrogate_type)``."""

from __future__ import annotations

import torch

from tether.functional import core
from tether.reference import NeuronOutput

_NEEDS = core.needs_getter(0, 1, None, 2, 3, None, None, 4)


def lif_forward(
    op: str,
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
    """The forward of LIF and PLIF (``op``: their winners-table key)."""
    spec = core.NeuronSpec(
        op, False, surrogate_type, soft_reset, detach_reset, store_traces, group_size,
        store_state,
    )  # fmt: skip

    def check() -> None:
        user_params = {"decay": decay, "threshold": threshold}
        core.check_inputs(spec, x_seq, {"v_init": v_init}, user_params, alpha)

    needs = _NEEDS(ctx.needs_input_grad)
    params = {"decay_v": decay, "threshold": threshold}
    out = core.forward(ctx, spec, x_seq, v_init, None, params, alpha, needs, check)
    return out.spikes, out.v_final, out.h_seq


def lif_backward(ctx, grad_spikes, grad_v_final, grad_v_seq):
    g = core.backward(ctx, NeuronOutput(grad_spikes, grad_v_final, None, grad_v_seq, None))
    return g.x, g.v_init, g.decay_v, g.threshold, g.alpha, None, None, None, None, None, None


class LIFSubFunction(core.NeuronFunction):
    """Multi-step LIF over ``x_seq: (T, N)`` or ``(T, *F)``; returns ``(spikes, v_final,
    v_seq)``. ``apply(x_seq, v_init, decay, threshold, alpha=2.0, surrogate_type=0,
    soft_reset=False, detach_reset=True, store_traces=True, group_size=1, store_state=True)``.

    Any layout of ``x_seq`` dense with T outermost is used as it is, and the outputs take its
    strides (``tether.functional.ops``); vector parameters index neurons in memory order.
    ``v_init``: shaped ``x_seq.shape[1:]`` or None (zeros). ``decay``, ``threshold``: floats,
    one-element tensors or vectors of length P shared by ``group_size`` consecutive neurons
    (see ``tether.reference``). ``alpha``: float or one-element tensor. ``spikes`` and
    ``v_seq`` (the membrane before reset, None unless ``store_traces``) have x_seq's dtype;
    ``v_final`` is float32, None with ``store_state=False`` (not written: for callers that
    drop the state). Gradients flow to every tensor input, parameters and alpha included.
    """

    @staticmethod
    def forward(ctx, *args):
        return lif_forward("lif", ctx, *args)

    backward = staticmethod(lif_backward)
