"""A spiking network learns: a short run of examples/train_digits.py for each neuron.

Runs the example's own ``train`` on CPU. Under the test suite's interpreter the Triton
kernels would take minutes here, so CPU tensors take the eager reference path (the kernels
are checked against it in test_kernels.py; on a GPU this test runs the kernels).
"""

import sys
from pathlib import Path

import pytest

from tether.functional import ops
from tether.neurons import OPS

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
from train_digits import Config, train  # noqa: E402

MIN_ACCURACY = 0.80  # chance is 0.10


@pytest.mark.parametrize("neuron", OPS)
def test_short_training_run_learns(monkeypatch, neuron):
    monkeypatch.setattr(ops, "INTERPRET", False)
    result = train(Config(neuron=neuron, n_steps=6, epochs=2, quiet=True))  # 0.91 on CPU
    assert result["test_accuracy"] >= MIN_ACCURACY, result["curve"]
    losses = [r["loss"] for r in result["curve"]]
    assert losses[-1] < losses[0]
