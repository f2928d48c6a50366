"""Neuron modules and the model-wide state helpers."""

from tether.nn.neurons import ALIF, LIF, PLIF, detach_net, reset_net

__all__ = ["ALIF", "LIF", "PLIF", "detach_net", "reset_net"]
