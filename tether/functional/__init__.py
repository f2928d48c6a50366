"""Autograd Functions of the neurons: ``lif.LIFSubFunction``, ``plif.PLIFSubFunction``,
``alif.ALIFSubFunction``."""

from tether.functional.alif import ALIFSubFunction
from tether.functional.lif import LIFSubFunction
from tether.functional.plif import PLIFSubFunction

__all__ = ["ALIFSubFunction", "LIFSubFunction", "PLIFSubFunction"]
