"""The README's "Coming from SpikingJelly / snnTorch": its ported examples run, and the
equivalences its table states hold against the installed libraries (skipped without them)."""

import re
from pathlib import Path

import pytest
import torch

import tether

README = Path(__file__).resolve().parents[1] / "README.md"
EXAMPLES = re.findall(r"<!-- ported-example -->\n```python\n(.*?)```", README.read_text(), re.S)


def test_the_readme_has_both_ported_examples():
    assert len(EXAMPLES) == 2


@pytest.mark.parametrize("index", range(len(EXAMPLES)), ids=["spikingjelly", "snntorch"])
def test_ported_example_runs(index):
    exec(compile(EXAMPLES[index], f"README.md ported example {index}", "exec"), {})


def _x(grad: bool = True) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return (torch.randn(12, 2, 16, generator=g) * 0.7 + 0.4).requires_grad_(grad)


def _assert_same(theirs: torch.Tensor, ours: torch.Tensor, x_theirs, x_ours) -> None:
    assert torch.equal(theirs, ours)
    theirs.sum().backward()
    ours.sum().backward()
    torch.testing.assert_close(x_ours.grad, x_theirs.grad, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("soft", [False, True], ids=["hard", "soft"])
@pytest.mark.parametrize("surrogate", ["ATan", "Sigmoid"])
def test_spikingjelly_lif_node_equals_tether_lif(soft, surrogate):
    """``LIFNode(tau=2, decay_input=False)`` = ``LIF(tau=2, detach_reset=False)`` with
    ``ATan()`` = ``Arctan(1.0)`` and the default ``Sigmoid()`` = ``Sigmoid(4.0)``;
    ``v_reset=None`` = ``soft_reset=True``."""
    neuron = pytest.importorskip("spikingjelly.activation_based.neuron")
    from spikingjelly.activation_based import surrogate as sj_surrogate

    node = neuron.LIFNode(
        tau=2.0,
        decay_input=False,
        step_mode="m",
        v_reset=None if soft else 0.0,
        surrogate_function=getattr(sj_surrogate, surrogate)(),
    )
    ours = {"ATan": tether.Arctan(1.0), "Sigmoid": tether.Sigmoid(4.0)}[surrogate]
    lif = tether.LIF(tau=2.0, surrogate=ours, detach_reset=False, soft_reset=soft)
    x_theirs, x_ours = _x(), _x()
    _assert_same(node(x_theirs), lif(x_ours), x_theirs, x_ours)


def test_snntorch_zero_reset_leaky_equals_tether_lif():
    """``Leaky(beta=0.9, reset_mechanism="zero")`` stepped over time = ``LIF(decay=0.9,
    alpha=1.0)``: spikes, membranes (``v_seq``) and input gradients."""
    snn = pytest.importorskip("snntorch")
    leaky = snn.Leaky(beta=0.9, reset_mechanism="zero")
    x_theirs, x_ours = _x(), _x()
    mem, spikes, mems = leaky.init_leaky(), [], []
    for step in x_theirs:
        spk, mem = leaky(step, mem)
        spikes.append(spk)
        mems.append(mem)
    lif = tether.LIF(decay=0.9, alpha=1.0, store_traces=True)
    ours = lif(x_ours)
    torch.testing.assert_close(lif.v_seq, torch.stack(mems).detach())
    _assert_same(torch.stack(spikes), ours, x_theirs, x_ours)
