"""Benchmark machinery behind ``bench.py``: providers, timing, the bytes model, plots, gate.

The runtime never imports this package; it imports the runtime and the reference.
"""
