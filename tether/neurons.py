"""The registry: one ``NeuronDef`` per neuron, what every consumer iterates over (the winners
table, benchmark providers, sweeps, ahead-of-time variants, tests) instead of comparing op
names. Adding a neuron: its equations in ``tether.reference``, a constexpr branch in
``tether.kernels.neuron``, an entry here, the Function and the module.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from tether.reference import NeuronOutput, neuron_reference


@dataclass(frozen=True)
class ParamDef:
    """A kernel parameter: its value where a neuron takes it as a float, the range the
    benchmark draws learnable vectors from, and the wider range tests draw from."""

    value: float
    bench: tuple[float, float]
    test: tuple[float, float]


# Every parameter of the kernels, in their argument order.
PARAMS = {
    "decay_v": ParamDef(0.9, bench=(0.85, 0.95), test=(0.6, 0.95)),
    "threshold": ParamDef(1.0, bench=(0.9, 1.1), test=(0.7, 1.3)),
    "decay_a": ParamDef(0.8, bench=(0.8, 0.95), test=(0.5, 0.95)),
    "beta": ParamDef(0.3, bench=(0.1, 0.3), test=(0.1, 0.6)),
}


@dataclass(frozen=True)
class NeuronDef:
    """One neuron. ``states`` name its state (``v_init``/``v_final`` for ``"v"``);
    ``arguments`` are its Function's positional arguments between ``x_seq`` and ``alpha``;
    ``outputs`` what the Function returns, in order."""

    op: str  # the winners-table key, the CLI's and the CSVs' name
    adaptive: bool  # the kernels' ADAPTIVE switch
    states: tuple[str, ...]
    params: tuple[str, ...]  # kernel parameter names (keys of PARAMS)
    learnable: bool  # parameters are learned vectors (per neuron or channel), not floats
    function: str  # the autograd Function in tether.functional
    module: str  # the nn.Module in tether.nn
    arguments: tuple[str, ...]
    outputs: tuple[str, ...]

    def bench_params(
        self, n_neurons: int, generator: torch.Generator, requires_grad: bool
    ) -> dict[str, torch.Tensor | float]:
        """The benchmark's parameters: ``(N,)`` float32 vectors drawn from each ``bench``
        range when ``learnable``, else each parameter's float value."""
        if not self.learnable:
            return {name: PARAMS[name].value for name in self.params}
        device = generator.device

        def vector(lo: float, hi: float) -> torch.Tensor:
            v = torch.rand(n_neurons, device=device, generator=generator) * (hi - lo) + lo
            return v.requires_grad_(requires_grad)

        return {name: vector(*PARAMS[name].bench) for name in self.params}

    def reference(
        self, x_seq: torch.Tensor, params: dict, alpha: torch.Tensor | float, **switches
    ) -> NeuronOutput:
        """``tether.reference.neuron_reference`` for this neuron: ``x_seq: (T, N)``,
        ``params`` by kernel name, states from ``v_init``/``a_init`` in ``switches``."""
        return neuron_reference(x_seq, alpha=alpha, adaptive=self.adaptive, **params, **switches)


NEURONS: dict[str, NeuronDef] = {
    neuron.op: neuron
    for neuron in (
        NeuronDef(
            op="lif",
            adaptive=False,
            states=("v",),
            params=("decay_v", "threshold"),
            learnable=False,
            function="LIFSubFunction",
            module="LIF",
            arguments=("v_init", "decay_v", "threshold"),
            outputs=("spikes", "v_final", "h_seq"),
        ),
        NeuronDef(
            op="plif",
            adaptive=False,
            states=("v",),
            params=("decay_v", "threshold"),
            learnable=True,
            function="PLIFSubFunction",
            module="PLIF",
            arguments=("v_init", "decay_v", "threshold"),
            outputs=("spikes", "v_final", "h_seq"),
        ),
        NeuronDef(
            op="alif",
            adaptive=True,
            states=("v", "a"),
            params=("decay_v", "threshold", "decay_a", "beta"),
            learnable=True,
            function="ALIFSubFunction",
            module="ALIF",
            arguments=("v_init", "a_init", "decay_v", "decay_a", "threshold", "beta"),
            outputs=("spikes", "v_final", "a_final", "h_seq", "a_seq"),
        ),
    )
}
OPS = tuple(NEURONS)
