"""Neuron modules."""

from tether.nn.neurons import ALIF, LIF, PLIF

__all__ = ["ALIF", "LIF", "PLIF"]
