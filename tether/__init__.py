"""tether: fused multi-step spiking neurons (LIF, PLIF, ALIF) in Triton, exact BPTT gradients."""

from tether.surrogates import Arctan, FastSigmoid, Sigmoid

__all__ = ["Arctan", "FastSigmoid", "Sigmoid"]
__version__ = "0.1.0"
