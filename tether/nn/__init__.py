"""Neuron modules, max-pooling and the model-wide state helpers."""

from tether.nn.neurons import ALIF, LIF, PLIF, checkpoint_context, detach_net, reset_net
from tether.nn.pool import MaxPool2d

__all__ = ["ALIF", "LIF", "PLIF", "MaxPool2d", "checkpoint_context", "detach_net", "reset_net"]
