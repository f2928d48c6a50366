"""Neuron modules: shapes, state across calls, parameters. Each ``forward`` calls ``.call``
(``apply``, minus autograd's bookkeeping when no graph is recorded).

Input ``x: (T, B, *features)``; output spikes of the same shape, dtype and strides: a
channels_last conv activation viewed as ``(T, B, C, H, W)`` is used in place and its spikes
come back channels_last (any layout dense with T outermost is; others are copied). The
membrane (and ALIF's adaptation) is carried across calls as float32 ``(B, *features)`` so that a
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
from tether.functional.ops import is_dense_steps
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

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (T, B, *features)`` as the Function takes it: as it is when dense with T
        outermost (and B next, when parameters are per neuron), else a contiguous copy."""
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"input must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim < 2:
            raise ValueError(f"input must have shape (T, B, ...), got {tuple(x.shape)}")
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"input must have T >= 1 and B >= 1, got shape {tuple(x.shape)}")
        self._check_features(tuple(x.shape[2:]))
        per_neuron = self._per_neuron_params
        batch_outer = x.shape[1] == 1 or x.stride(1) == math.prod(x.shape[2:])
        if not is_dense_steps(x) or (per_neuron and not batch_outer):
            x = x.contiguous()
        return x

    _per_neuron_params = False  # parameters with one entry per feature (PLIF, ALIF)

    def _check_features(self, features: tuple[int, ...]) -> None:
        if math.prod(features) != self.n_neurons:
            raise ValueError(
                f"input features {features} hold {math.prod(features)} neurons, but "
                f"n_neurons={self.n_neurons}"
            )

    @staticmethod
    def _in_memory_order(param: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        """A per-neuron parameter ``(prod(features),)`` in the memory order of x's feature
        dims (the kernels index neurons in memory order): a small copy unless row-major."""
        features = x.shape[2:]
        order = sorted(range(len(features)), key=lambda d: -x.stride(2 + d))
        if order == sorted(order):
            return param
        return param.view(features).permute(order).reshape(-1)

    def _initial(self, state: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor | None:
        if state is not None and state.shape != x.shape[1:]:
            raise ValueError(
                f"the carried state has shape {tuple(state.shape)} but the input's steps "
                f"have {tuple(x.shape[1:])} (batch size changed?): call reset() between "
                "sequences"
            )
        return state

    def _finish(self, spikes: torch.Tensor, v_seq: torch.Tensor | None) -> torch.Tensor:
        if self.store_traces:
            self.v_seq = v_seq
        if self.track_firing_rate:
            self.firing_rate = spikes.detach().float().mean()  # a tensor: no host sync
        return spikes

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

    def _params(self, x: torch.Tensor) -> tuple[object, object, int]:
        """decay, threshold and group size for the Function."""
        return self.decay, self.threshold, 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (T, B, *features)`` -> spikes of the same shape, dtype and strides."""
        x = self._layout(x)
        decay, threshold, group_size = self._params(x)
        spikes, self.v, v_seq = self.FUNCTION.call(
            x,
            self._initial(self.v, x),
            decay,
            threshold,
            self._alpha,
            *self._switches,
            group_size,
            self.stateful,
        )
        return self._finish(spikes, v_seq)


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

    @property
    def _per_neuron_params(self) -> bool:
        return not self.per_channel

    def _check_features(self, features: tuple[int, ...]) -> None:
        if not self.per_channel:
            return super()._check_features(features)
        if not features or features[0] != self.n_neurons:
            raise ValueError(
                f"per-channel PLIF expects input (T, B, C, ...) with C = n_neurons = "
                f"{self.n_neurons}, got features {features}"
            )

    def _params(self, x: torch.Tensor) -> tuple[object, object, int]:
        if not self.per_channel:
            order = self._in_memory_order
            return order(self.decay, x), order(self.threshold, x), 1
        # Channel of the neuron at memory position m: (m // stride_C) % C, in any layout.
        group_size = x.stride(2) if self.n_neurons > 1 else 1
        return self.decay, self.threshold, group_size

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

    _per_neuron_params = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (T, B, *features)`` -> spikes of the same shape, dtype and strides."""
        x = self._layout(x)
        order = self._in_memory_order
        spikes, self.v, self.a, v_seq, a_seq = ALIFSubFunction.call(
            x,
            self._initial(self.v, x),
            self._initial(self.a, x),
            order(self.decay_v, x),
            order(self.decay_a, x),
            order(self.threshold, x),
            order(self.beta, x),
            self._alpha,
            *self._switches,
            1,
            self.stateful,
        )
        if self.store_traces:
            self.a_seq = a_seq
        return self._finish(spikes, v_seq)

    def extra_repr(self) -> str:
        return f"{self.n_neurons}"
