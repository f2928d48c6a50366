"""Neuron modules: shapes, state across calls, parameters. Each ``forward`` calls ``.call``
(``apply``, minus autograd's bookkeeping when no graph is recorded).

Input ``x: (T, B, *features)``; output spikes of the same shape and dtype. The membrane
(and ALIF's adaptation) is carried across calls as float32 ``(B*prod(features),)`` so that a
sequence fed in chunks gives the same spikes, state and gradients as fed whole (the state
keeps its autograd graph: call ``reset()`` between independent sequences, or
``detach_state()`` for truncated BPTT). ``stateful=False``: every call starts from zeros and
the kernels skip writing the final state (4 bytes per neuron less).
"""

from __future__ import annotations

import math

import torch
from torch import nn

from tether.functional.alif import ALIFSubFunction
from tether.functional.lif import LIFSubFunction
from tether.functional.plif import PLIFSubFunction
from tether.surrogates import Arctan, Surrogate


class _Neuron(nn.Module):
    """What LIF, PLIF and ALIF modules share: surrogate, state and the input reshape."""

    def __init__(
        self,
        n_neurons: int,
        alpha: float,
        surrogate: Surrogate | None,
        store_traces: bool,
        soft_reset: bool,
        detach_reset: bool,
        track_firing_rate: bool,
        stateful: bool = True,
    ) -> None:
        super().__init__()
        if not isinstance(n_neurons, int) or isinstance(n_neurons, bool) or n_neurons < 1:
            raise ValueError(f"n_neurons must be a positive int, got {n_neurons!r}")
        if surrogate is not None and not isinstance(surrogate, Surrogate):
            raise TypeError(
                f"surrogate must be a tether surrogate (Arctan, Sigmoid, FastSigmoid), "
                f"got {type(surrogate).__name__}"
            )
        self.n_neurons = n_neurons
        self.surrogate = surrogate if surrogate is not None else Arctan(alpha)
        self.store_traces = store_traces
        self.soft_reset = soft_reset
        self.detach_reset = detach_reset
        self.track_firing_rate = track_firing_rate
        self.stateful = stateful  # False: every call starts from zeros, no final state written
        self.v: torch.Tensor | None = None
        self.v_seq: torch.Tensor | None = None
        self.firing_rate: torch.Tensor | None = None

    def reset(self) -> None:
        """Forget the state: the next call starts from zeros."""
        self.v = None
        self.v_seq = None

    def detach_state(self) -> None:
        """Keep the state's values but cut its graph (truncated BPTT)."""
        if self.v is not None:
            self.v = self.v.detach()

    def _group_size(self, features: tuple[int, ...]) -> int:
        """Neurons sharing one parameter entry; checks ``n_neurons`` against the input."""
        if math.prod(features) != self.n_neurons:
            raise ValueError(
                f"input features {features} hold {math.prod(features)} neurons, but "
                f"n_neurons={self.n_neurons}"
            )
        return 1

    def _flatten(self, x: torch.Tensor) -> tuple[torch.Tensor, int]:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"input must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim < 2:
            raise ValueError(f"input must have shape (T, B, ...), got {tuple(x.shape)}")
        group_size = self._group_size(tuple(x.shape[2:]))
        return x.reshape(x.shape[0], -1), group_size

    def _initial(self, state: torch.Tensor | None, x_2d: torch.Tensor) -> torch.Tensor | None:
        if state is not None and state.shape[0] != x_2d.shape[1]:
            raise ValueError(
                f"the carried state has {state.shape[0]} neurons but the input has "
                f"{x_2d.shape[1]} (batch size changed?): call reset() between sequences"
            )
        return state

    def _finish(self, x: torch.Tensor, spikes: torch.Tensor, v_seq: torch.Tensor | None):
        if self.store_traces:
            self.v_seq = v_seq.view(x.shape)
        if self.track_firing_rate:
            self.firing_rate = spikes.detach().float().mean()  # a tensor: no host sync
        return spikes.view(x.shape)

    @property
    def _alpha(self) -> torch.Tensor | float:
        return self.surrogate.alpha

    @property
    def _switches(self) -> tuple:
        return (
            self.surrogate.surrogate_type,
            self.soft_reset,
            self.detach_reset,
            self.store_traces,
        )


class _LIFFamily(_Neuron):
    """LIF and PLIF: one forward, their Function and parameters differ."""

    FUNCTION: type[LIFSubFunction] = LIFSubFunction
    decay: torch.Tensor | float
    threshold: torch.Tensor | float

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_2d, group_size = self._flatten(x)
        spikes, self.v, v_seq = self.FUNCTION.call(
            x_2d,
            self._initial(self.v, x_2d),
            self.decay,
            self.threshold,
            self._alpha,
            *self._switches,
            group_size,
            self.stateful,
        )
        return self._finish(x, spikes, v_seq)


class LIF(_LIFFamily):
    """Leaky integrate-and-fire with fixed ``decay`` and ``threshold`` (see the README)."""

    def __init__(
        self,
        n_neurons: int,
        decay: float = 0.9,
        threshold: float = 1.0,
        alpha: float = 2.0,
        surrogate: Surrogate | None = None,
        store_traces: bool = False,
        soft_reset: bool = False,
        detach_reset: bool = True,
        track_firing_rate: bool = False,
        stateful: bool = True,
    ) -> None:
        super().__init__(
            n_neurons,
            alpha,
            surrogate,
            store_traces,
            soft_reset,
            detach_reset,
            track_firing_rate,
            stateful,
        )
        self.decay = float(decay)
        self.threshold = float(threshold)

    def extra_repr(self) -> str:
        return f"{self.n_neurons}, decay={self.decay}, threshold={self.threshold}"


class PLIF(_LIFFamily):
    """LIF with learnable ``decay`` and ``threshold``: one per neuron (input features hold
    ``n_neurons`` values), or with ``per_channel=True`` one per channel of ``(T, B, C, ...)``
    input (``n_neurons = C``), broadcast over the batch and the trailing dims."""

    FUNCTION = PLIFSubFunction

    def __init__(
        self,
        n_neurons: int,
        init_decay: float = 0.9,
        init_threshold: float = 1.0,
        alpha: float = 2.0,
        surrogate: Surrogate | None = None,
        store_traces: bool = False,
        per_channel: bool = False,
        soft_reset: bool = False,
        detach_reset: bool = True,
        track_firing_rate: bool = False,
        stateful: bool = True,
    ) -> None:
        super().__init__(
            n_neurons,
            alpha,
            surrogate,
            store_traces,
            soft_reset,
            detach_reset,
            track_firing_rate,
            stateful,
        )
        self.per_channel = per_channel
        self.decay = nn.Parameter(torch.full((n_neurons,), float(init_decay)))
        self.threshold = nn.Parameter(torch.full((n_neurons,), float(init_threshold)))

    def _group_size(self, features: tuple[int, ...]) -> int:
        if not self.per_channel:
            return super()._group_size(features)
        if not features or features[0] != self.n_neurons:
            raise ValueError(
                f"per-channel PLIF expects input (T, B, C, ...) with C = n_neurons = "
                f"{self.n_neurons}, got features {features}"
            )
        return math.prod(features[1:])

    def extra_repr(self) -> str:
        return f"{self.n_neurons}, per_channel={self.per_channel}"


class ALIF(_Neuron):
    """Adaptive LIF: ``theta_t = threshold + beta * a_{t-1}``, ``a_t = decay_a*a_{t-1} + s_t``,
    with learnable per-neuron ``decay_v, decay_a, threshold, beta``."""

    def __init__(
        self,
        n_neurons: int,
        decay_v: float = 0.9,
        decay_a: float = 0.9,
        threshold: float = 1.0,
        beta: float = 0.5,
        alpha: float = 2.0,
        surrogate: Surrogate | None = None,
        store_traces: bool = False,
        soft_reset: bool = False,
        detach_reset: bool = True,
        track_firing_rate: bool = False,
        stateful: bool = True,
    ) -> None:
        super().__init__(
            n_neurons,
            alpha,
            surrogate,
            store_traces,
            soft_reset,
            detach_reset,
            track_firing_rate,
            stateful,
        )
        for name, value in (
            ("decay_v", decay_v),
            ("decay_a", decay_a),
            ("threshold", threshold),
            ("beta", beta),
        ):
            setattr(self, name, nn.Parameter(torch.full((n_neurons,), float(value))))
        self.a: torch.Tensor | None = None
        self.a_seq: torch.Tensor | None = None

    def reset(self) -> None:
        super().reset()
        self.a = None
        self.a_seq = None

    def detach_state(self) -> None:
        super().detach_state()
        if self.a is not None:
            self.a = self.a.detach()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x_2d, group_size = self._flatten(x)
        spikes, self.v, self.a, v_seq, a_seq = ALIFSubFunction.call(
            x_2d,
            self._initial(self.v, x_2d),
            self._initial(self.a, x_2d),
            self.decay_v,
            self.decay_a,
            self.threshold,
            self.beta,
            self._alpha,
            *self._switches,
            group_size,
            self.stateful,
        )
        if self.store_traces:
            self.a_seq = a_seq.view(x.shape)
        return self._finish(x, spikes, v_seq)

    def extra_repr(self) -> str:
        return f"{self.n_neurons}"
