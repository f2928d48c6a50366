"""tether: fused multi-step spiking neurons (LIF, PLIF, ALIF) in Triton, exact BPTT gradients."""

from tether import functional
from tether.data import rate_encoding
from tether.functional.pool import max_pool2d
from tether.nn import ALIF, LIF, PLIF, MaxPool2d, checkpoint_context, detach_net, reset_net
from tether.spike_memory import spike_memory
from tether.surrogates import Arctan, FastSigmoid, Sigmoid

__all__ = [
    "ALIF", "LIF", "PLIF", "Arctan", "FastSigmoid", "MaxPool2d", "Sigmoid",
    "checkpoint_context", "detach_net", "functional", "max_pool2d", "rate_encoding",
    "reset_net", "spike_memory",
]  # fmt: skip
__version__ = "0.1.0"
