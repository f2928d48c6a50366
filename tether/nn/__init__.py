"""Neuron modules and the model-wide state helpers."""

from tether.nn.neurons import ALIF, LIF, PLIF, checkpoint_context, detach_net, reset_net

__all__ = ["ALIF", "LIF", "PLIF", "checkpoint_context", "detach_net", "reset_net"]
