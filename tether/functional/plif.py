"""PLIF: LIF with learnable vector ``decay`` and ``threshold`` (per neuron or per channel)."""

from tether.functional.lif import LIFSubFunction


class PLIFSubFunction(LIFSubFunction):
    """``PLIFSubFunction.apply(x_seq, v_init, decay, threshold, alpha, surrogate_type,
    soft_reset=False, detach_reset=True, store_traces=True, group_size=1)``.

    As ``LIFSubFunction``; ``decay`` and ``threshold`` are typically ``(P,)`` vectors.
    Per neuron: ``x_seq`` is ``(T, B*P)`` and ``group_size=1``. Per channel of a
    ``(T, B, C, H, W)`` map: ``x_seq`` is its ``(T, B*C*H*W)`` view, ``P = C`` and
    ``group_size = H*W``. Nothing is copied to broadcast; parameter gradients are reduced
    over the batch (and H, W) deterministically. Tuned under its own winners-table key.
    """

    OP = "plif"
