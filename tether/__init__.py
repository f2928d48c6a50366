"""tether: fused multi-step spiking neurons (LIF, PLIF, ALIF) in Triton, exact BPTT gradients."""

from tether import functional
from tether.data import rate_encoding
from tether.nn import ALIF, LIF, PLIF
from tether.surrogates import Arctan, FastSigmoid, Sigmoid

__all__ = ["ALIF", "LIF", "PLIF", "Arctan", "FastSigmoid", "Sigmoid", "functional", "rate_encoding"]
__version__ = "0.1.0"
