"""Triton templates. ``INTERPRET`` is true when ``TRITON_INTERPRET=1`` was set at import."""

import os

from tether.kernels.neuron import neuron_bwd_kernel, neuron_fwd_kernel

INTERPRET = os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")

__all__ = ["INTERPRET", "neuron_bwd_kernel", "neuron_fwd_kernel"]
