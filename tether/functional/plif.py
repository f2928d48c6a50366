"""PLIF: LIF with learnable vector ``decay`` and ``threshold`` (per neuron or per channel)."""

from tether.functional import core
from tether.functional.lif import lif_backward, lif_forward


class PLIFSubFunction(core.NeuronFunction):
    """``PLIFSubFunction.apply(x_seq, v_init, decay, threshold, alpha, surrogate_type,
    soft_reset=False, detach_reset=True, store_traces=True, group_size=1, store_state=True)``.

    As ``LIFSubFunction``; ``decay`` and ``threshold`` are typically ``(P,)`` vectors.
    Per neuron: ``x_seq`` is ``(T, B*P)`` and ``group_size=1``. Per channel of a contiguous
    ``(T, B, C, H, W)`` map: ``P = C`` and ``group_size = H*W`` (channels_last: ``group_size
    = 1``; in general the channel dim's stride). Nothing is copied to broadcast; parameter
    gradients are reduced over the batch (and H, W) deterministically. Tuned under its own
    winners-table key.
    """

    @staticmethod
    def forward(ctx, *args):
        return lif_forward("plif", ctx, *args)

    backward = staticmethod(lif_backward)
