"""Neuron modules: shapes, state across calls, parameters. Each ``forward`` calls ``.call``
(``apply``, minus autograd's bookkeeping when no graph is recorded).

Input ``x: (T, B, *features)``; output spikes of the same shape, dtype and strides: a
channels_last conv activation viewed as ``(T, B, C, H, W)`` is used in place and its spikes
come back channels_last (any layout dense with T outermost is; others are copied). The
membrane (and ALIF's adaptation) is carried across calls as float32 ``(B, *features)`` so that a
sequence fed in chunks gives the same spikes, state and gradients as fed whole (the state
keeps its autograd graph: call ``reset()`` between independent sequences, or
``detach_state()`` for truncated BPTT; ``reset_net(model)`` / ``detach_net(model)`` do it for
every neuron of a model). Forgetting ``reset()`` between training batches: the backward that
reaches the freed graph of the carried state raises, asking for ``reset()`` (the forward does
not: it may be an evaluation). ``stateful=False``: every call starts from zeros and the
kernels skip writing the final state (4 bytes per neuron less). Deepcopy and pickling detach
the state. A state left by a call under ``torch.inference_mode`` is copied into a plain tensor
by the next call outside it, so training may follow evaluation without ``reset()``. Under
``torch.utils.checkpoint`` stateful neurons need ``context_fn=checkpoint_context``.

``n_neurons`` is optional: LIF has no per-neuron parameter, and PLIF/ALIF given
``n_neurons=None`` create their parameters on the first call from the input's features
(``torch.nn`` lazy modules: build the optimizer after a first forward, or give ``n_neurons``).
Learnable decays are ``sigmoid`` of a raw parameter (``tether.parametrize``).
"""

from __future__ import annotations

import math
import numbers
import threading
from collections import deque

import torch
from torch import nn
from torch.nn.modules.lazy import LazyModuleMixin

from tether.functional.alif import ALIFSubFunction
from tether.functional.lif import LIFSubFunction
from tether.functional.ops import is_dense_steps
from tether.functional.plif import PLIFSubFunction
from tether.parametrize import UNIT, load_legacy, raw_value
from tether.surrogates import Arctan, Surrogate

_RESET = ("v", "a", "v_seq", "a_seq")  # what reset() forgets (ALIF's a, a_seq: no other)
_STATES = (*_RESET, "firing_rate")  # what a call leaves on the module


# Checkpointed regions (``checkpoint_context``) on this thread, innermost last: each a log
# of the states every neuron call in it started from, by module in call order, and whether
# the region is recomputing (in a backward: autograd's thread, where it enters its context).
_REGIONS = threading.local()


class _Region:
    """A checkpointed region's forward (``recomputing=False``) or recomputation, as a context
    manager that may be entered again (a recomputation can run more than once)."""

    def __init__(self, log: dict, recomputing: bool) -> None:
        self.entry = (log, recomputing)

    def __enter__(self) -> None:
        _REGIONS.__dict__.setdefault("stack", []).append(self.entry)

    def __exit__(self, *exc: object) -> None:
        _REGIONS.stack.pop()


def checkpoint_context() -> tuple[_Region, _Region]:
    """``context_fn`` of ``torch.utils.checkpoint.checkpoint(fn, *args, use_reentrant=False,
    context_fn=tether.checkpoint_context)`` when ``fn`` runs stateful neurons: the forward
    logs the state each neuron call starts from, and the recomputation in the backward starts
    each call from it and leaves the modules' state alone, so that it recomputes the calls
    the forward made (without it a stateful neuron recomputed in a backward raises: its
    carried state has moved on since the forward)."""
    log: dict = {}
    return _Region(log, False), _Region(log, True)


def _shape_of(x: object) -> object:
    return tuple(x.shape) if isinstance(x, torch.Tensor) else type(x).__name__


def _real(name: str, value: object) -> float:
    """A finite real scalar (Python or numpy number, one-element tensor) as a float, or raise
    naming the argument."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(
                f"{name} must be a real number, got a tensor of shape {tuple(value.shape)} "
                "(per-neuron parameters: PLIF, ALIF)"
            )
    elif isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__}")
    if not math.isfinite(value := float(value)):
        raise ValueError(f"{name} must be finite, got {value}")
    return value


def _flag(name: str, value: object) -> bool:
    """A switch: a bool, or raise naming the argument (a string such as 'no' is truthy)."""
    if not isinstance(value, bool):
        raise TypeError(f"{name} must be a bool, got {value!r}")
    return value


def _decay(decay: object, tau: object, default: float, names: tuple[str, str]) -> float:
    """``decay``, or ``1 - 1/tau`` when ``tau`` is given (SpikingJelly's ``tau`` with
    ``decay_input=False``), or ``default``; ``names``: the two arguments' names."""
    decay_name, tau_name = names
    if tau is None:
        return default if decay is None else _real(decay_name, decay)
    if decay is not None:
        raise ValueError(f"give {decay_name} or {tau_name}, not both")
    tau = _real(tau_name, tau)
    if not tau > 1:
        raise ValueError(f"{tau_name} must be > 1 (decay = 1 - 1/{tau_name}), got {tau}")
    return 1 - 1 / tau


class _Neuron(nn.Module):
    """What LIF, PLIF and ALIF modules share: surrogate, state and the input reshape."""

    def __init__(
        self,
        n_neurons: int | None,
        alpha: float,
        surrogate: Surrogate | None,
        store_traces: bool,
        soft_reset: bool,
        detach_reset: bool,
        track_firing_rate: bool,
        stateful: bool = True,
    ) -> None:
        super().__init__()
        if n_neurons is not None and (
            not isinstance(n_neurons, int) or isinstance(n_neurons, bool) or n_neurons < 1
        ):
            raise ValueError(f"n_neurons must be a positive int or None, got {n_neurons!r}")
        if surrogate is not None and not isinstance(surrogate, Surrogate):
            raise TypeError(
                f"surrogate must be a tether surrogate (Arctan, Sigmoid, FastSigmoid), "
                f"got {type(surrogate).__name__}"
            )
        self.n_neurons = n_neurons
        self.surrogate = surrogate if surrogate is not None else Arctan(alpha)
        self.store_traces = _flag("store_traces", store_traces)
        self.soft_reset = _flag("soft_reset", soft_reset)
        self.detach_reset = _flag("detach_reset", detach_reset)
        self.track_firing_rate = _flag("track_firing_rate", track_firing_rate)
        # False: every call starts from zeros, no final state written
        self.stateful = _flag("stateful", stateful)
        self.v: torch.Tensor | None = None
        self.v_seq: torch.Tensor | None = None
        self.firing_rate: torch.Tensor | None = None

    def reset(self) -> None:
        """Forget the state: the next call starts from zeros."""
        self._set_states(**dict.fromkeys(_RESET))

    def _set_states(self, **values: torch.Tensor | None) -> None:
        """Set the state attributes ``values``, writing only those that change from or to a
        tensor: a module's ``__setattr__`` costs microseconds, models reset every step, and
        compiled code replays each write after every graph call (and guards on it). Reads the
        instance dict: ``Module.__getattr__`` raises for LIF's missing ``a``."""
        state = self.__dict__
        for name, value in values.items():
            if value is not None or state.get(name) is not None:
                setattr(self, name, value)

    def detach_state(self) -> None:
        """Keep the state's values but cut its graph (truncated BPTT)."""
        if self.v is not None:
            self.v = self.v.detach()

    def step(self, x: torch.Tensor) -> torch.Tensor:
        """One time step, ``x: (B, ...)`` -> spikes ``(B, ...)``, the state carried to the
        next call: SpikingJelly's single-step mode and snnTorch's per-step call. The same
        spikes, state and gradients as the multi-step call over the whole sequence; each
        call launches the kernels once, so feed whole sequences where you have them."""
        if not self.stateful:
            raise ValueError("step() carries the state between calls: it needs stateful=True")
        if not isinstance(x, torch.Tensor) or x.ndim < 1:
            raise ValueError(f"step() takes one step x: (B, ...), got {_shape_of(x)}")
        return self(x.unsqueeze(0))[0]

    def __getstate__(self) -> dict:
        """For ``copy.deepcopy`` and pickling: the carried state and traces detached (a graph
        is not copied), so a module copies in any state."""
        state = super().__getstate__()
        for name in _STATES:
            if isinstance(state.get(name), torch.Tensor):
                state[name] = state[name].detach()
        return state

    @staticmethod
    def _check_input(x: object) -> None:
        if not isinstance(x, torch.Tensor):
            raise TypeError(f"input must be a torch.Tensor, got {type(x).__name__}")
        if x.ndim < 2:
            raise ValueError(f"input must have shape (T, B, ...), got {tuple(x.shape)}")
        if x.shape[0] == 0 or x.shape[1] == 0:
            raise ValueError(f"input must have T >= 1 and B >= 1, got shape {tuple(x.shape)}")

    def _layout(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (T, B, *features)`` as the Function takes it: as it is when dense with T
        outermost (and B next, when parameters are per neuron), else a contiguous copy."""
        self._check_input(x)
        if self.n_neurons is not None:
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
                f"the input (T, B, *features) has features {features} holding "
                f"{math.prod(features)} neurons, but n_neurons={self.n_neurons}: a module takes "
                "(T, B, ...) input (a 2-D input is (T, B) with no features; one step of "
                "(B, ...): x.unsqueeze(0))"
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
        if state is None:
            return None
        if state.shape != x.shape[1:]:
            raise ValueError(
                f"the carried state has shape {tuple(state.shape)} but the input's steps "
                f"have {tuple(x.shape[1:])} (batch size changed?): call reset() between "
                "sequences"
            )
        if torch.compiler.is_compiling():
            return state
        if state.is_inference() and not torch.is_inference_mode_enabled():
            return state.clone()  # left by a call under inference_mode: autograd may save it
        if state.grad_fn is not None and _graph_freed(state):
            return _FreedGraph.apply(state.detach().requires_grad_())
        return state

    def _start(self, *states: torch.Tensor | None) -> tuple[tuple, bool]:
        """``(states, keep)``: the states this call starts from (the carried ``states``, or
        inside a checkpointed region's recomputation those its forward started from) and
        whether the call keeps its results on the module (not while recomputing)."""
        stack = getattr(_REGIONS, "stack", None)
        if not stack:
            if self.stateful and _in_backward():
                raise RuntimeError(
                    f"a stateful tether {type(self).__name__} ran inside a backward pass "
                    "(recomputed by torch.utils.checkpoint?): its carried state has moved on "
                    "since the forward. Checkpoint with torch.utils.checkpoint.checkpoint(fn, "
                    "*args, use_reentrant=False, context_fn=tether.checkpoint_context), or "
                    "use stateful=False"
                )
            return states, True
        log, recomputing = stack[-1]
        if recomputing:
            return log[self].popleft(), False
        log.setdefault(self, deque()).append(states)
        return states, True

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


def _in_backward() -> bool:
    """Whether this thread runs a backward pass (not under tracing, which has none)."""
    return not torch.compiler.is_compiling() and torch._C._current_graph_task_id() != -1


def _graph_freed(state: torch.Tensor) -> bool:
    """Whether a backward pass freed the graph of the carried ``state`` (its node's saved
    tensors are gone). Reads them raw: unpacking would run saved-tensor hooks, and
    ``torch.utils.checkpoint``'s recompute a checkpointed region to answer."""
    try:
        getattr(state.grad_fn, "_raw_saved_tensors", None)
    except RuntimeError:
        return True
    return False


class _FreedGraph(torch.autograd.Function):
    """Stands for a carried state whose graph a backward pass freed: the forward passes the
    values, and a backward that reaches it (where PyTorch would say "Trying to backward
    through the graph a second time") raises saying what to do."""

    @staticmethod
    def forward(state: torch.Tensor) -> torch.Tensor:
        return state.clone()

    @staticmethod
    def setup_context(ctx, inputs: tuple, output: torch.Tensor) -> None:
        pass

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> None:
        raise RuntimeError(
            "backward through a tether neuron's carried state, whose graph an earlier "
            "backward freed: call reset() (tether.reset_net(model)) between independent "
            "batches, or detach_state() (tether.detach_net(model)) after each backward for "
            "truncated BPTT"
        )


def reset_net(model: nn.Module) -> None:
    """``reset()`` every tether neuron in ``model`` (SpikingJelly's ``functional.reset_net``):
    call it between independent batches."""
    for module in model.modules():
        if isinstance(module, _Neuron):
            module.reset()


def detach_net(model: nn.Module) -> None:
    """``detach_state()`` every tether neuron in ``model``: keep the state's values, cut its
    graph (truncated BPTT over chunks of a long sequence)."""
    for module in model.modules():
        if isinstance(module, _Neuron):
            module.detach_state()


class _LearnableNeuron(LazyModuleMixin, _Neuron):
    """PLIF and ALIF: learnable parameters with one entry per neuron or per channel, created
    from the first input when ``n_neurons`` is None (uninitialized parameters until then, as
    ``nn.LazyLinear``'s). Decays in ``DECAYS`` are stored as logits (``<name>_logit``) and
    read as ``sigmoid`` through properties, so they stay in (0, 1)."""

    DECAYS: tuple[str, ...] = ()
    __getstate__ = _Neuron.__getstate__  # not the lazy mixin's: it keeps the state's graph

    def _create_parameters(self, initial: dict[str, float]) -> None:
        """``initial``: effective initial value by parameter name (decays checked in (0, 1))."""
        self._initial_raw: dict[str, float] = {}
        for name, value in initial.items():
            if name in self.DECAYS:
                name, value = UNIT.raw_name(name), raw_value(name, value, UNIT)
            self._initial_raw[name] = value
        for name in self._initial_raw:
            if self.n_neurons is None:
                setattr(self, name, nn.UninitializedParameter())
            else:
                setattr(self, name, nn.Parameter(torch.empty(self.n_neurons)))
        if self.n_neurons is not None:
            self._fill_parameters()

    def _fill_parameters(self) -> None:
        with torch.no_grad():
            for name, value in self._initial_raw.items():
                getattr(self, name).fill_(value)

    def _neurons_of(self, features: tuple[int, ...]) -> int:
        """The parameter length for input features."""
        return math.prod(features)

    def initialize_parameters(self, x: torch.Tensor) -> None:
        """The lazy modules' hook: create the parameters for the first input's features (plain
        tensors, also when that call runs under ``torch.inference_mode``)."""
        if not self.has_uninitialized_params():
            return
        self._check_input(x)
        self.n_neurons = self._neurons_of(tuple(x.shape[2:]))
        with torch.inference_mode(False):
            for name in self._initial_raw:
                getattr(self, name).materialize((self.n_neurons,))
            self._fill_parameters()

    def _load_from_state_dict(self, state_dict: dict, prefix: str, *args) -> None:
        load_legacy(state_dict, prefix, self.DECAYS, UNIT)
        super()._load_from_state_dict(state_dict, prefix, *args)
        if self.n_neurons is None and not self.has_uninitialized_params():
            self.n_neurons = getattr(self, next(iter(self._initial_raw))).numel()

    def _sigmoid(self, name: str) -> torch.Tensor:
        return torch.sigmoid(getattr(self, UNIT.raw_name(name)))


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
        (v,), keep = self._start(self.v)
        spikes, v, v_seq = self.FUNCTION.call(
            x,
            self._initial(v, x),
            decay,
            threshold,
            self._alpha,
            *self._switches,
            group_size,
            self.stateful,
        )
        if not keep:
            return spikes
        self._set_states(v=v)
        return self._finish(spikes, v_seq)


class LIF(_LIFFamily):
    """Leaky integrate-and-fire with fixed ``decay`` and ``threshold`` (see the README), the
    same for every neuron: any input shape, ``n_neurons`` (optional) only checks it.

    ``decay`` (default 0.9, in [0, 1]) or ``tau`` (``decay = 1 - 1/tau``, SpikingJelly's
    ``LIFNode(tau)`` with ``decay_input=False``); finite real numbers (Python, numpy or
    one-element tensors)."""

    def __init__(
        self,
        n_neurons: int | None = None,
        decay: float | None = None,
        threshold: float = 1.0,
        alpha: float = 2.0,
        surrogate: Surrogate | None = None,
        store_traces: bool = False,
        soft_reset: bool = False,
        detach_reset: bool = True,
        track_firing_rate: bool = False,
        stateful: bool = True,
        tau: float | None = None,
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
        self.decay = _decay(decay, tau, 0.9, ("decay", "tau"))
        if not 0 <= self.decay <= 1:
            raise ValueError(f"decay must be in [0, 1], got {self.decay}")
        self.threshold = _real("threshold", threshold)

    def extra_repr(self) -> str:
        return f"{self.n_neurons}, decay={self.decay}, threshold={self.threshold}"


class PLIF(_LIFFamily, _LearnableNeuron):
    """LIF with learnable ``decay`` and ``threshold``: one per neuron (input features hold
    ``n_neurons`` values), or with ``per_channel=True`` one per channel of ``(T, B, C, ...)``
    input (``n_neurons = C``), broadcast over the batch and the trailing dims.
    ``n_neurons=None``: taken from the first input (build the optimizer after it).

    ``decay = sigmoid(decay_logit)`` stays in (0, 1); ``decay_logit`` is the parameter (the
    ``decay`` property is computed from it). ``init_decay`` (default 0.9, in (0, 1)) or
    ``init_tau`` (> 1, ``init_decay = 1 - 1/init_tau``) set its initial value."""

    FUNCTION = PLIFSubFunction
    DECAYS = ("decay",)

    def __init__(
        self,
        n_neurons: int | None = None,
        init_decay: float | None = None,
        init_threshold: float = 1.0,
        alpha: float = 2.0,
        surrogate: Surrogate | None = None,
        store_traces: bool = False,
        per_channel: bool = False,
        soft_reset: bool = False,
        detach_reset: bool = True,
        track_firing_rate: bool = False,
        stateful: bool = True,
        init_tau: float | None = None,
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
        self.per_channel = _flag("per_channel", per_channel)
        decay = _decay(init_decay, init_tau, 0.9, ("init_decay", "init_tau"))
        threshold = _real("init_threshold", init_threshold)
        self._create_parameters({"decay": decay, "threshold": threshold})

    @property
    def decay(self) -> torch.Tensor:
        """``(n_neurons,)`` ``sigmoid(decay_logit)``, in (0, 1)."""
        return self._sigmoid("decay")

    @property
    def _per_neuron_params(self) -> bool:
        return not self.per_channel

    def _neurons_of(self, features: tuple[int, ...]) -> int:
        if not self.per_channel:
            return super()._neurons_of(features)
        if not features:
            raise ValueError(
                f"per-channel PLIF expects input (T, B, C, ...), got features {features}"
            )
        return features[0]

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


class ALIF(_LearnableNeuron):
    """Adaptive LIF: ``theta_t = threshold + beta * a_{t-1}``, ``a_t = decay_a*a_{t-1} + s_t``,
    with learnable per-neuron ``decay_v, decay_a, threshold, beta`` (``n_neurons=None``: from
    the first input). The decays are ``sigmoid`` of the parameters ``decay_v_logit``,
    ``decay_a_logit``; their initial values are ``decay_v`` (default 0.9, in (0, 1)) or
    ``tau_v`` (> 1, ``decay_v = 1 - 1/tau_v``), and ``decay_a`` (default 0.9) or ``tau_a``."""

    DECAYS = ("decay_v", "decay_a")

    def __init__(
        self,
        n_neurons: int | None = None,
        decay_v: float | None = None,
        decay_a: float | None = None,
        threshold: float = 1.0,
        beta: float = 0.5,
        alpha: float = 2.0,
        surrogate: Surrogate | None = None,
        store_traces: bool = False,
        soft_reset: bool = False,
        detach_reset: bool = True,
        track_firing_rate: bool = False,
        stateful: bool = True,
        tau_v: float | None = None,
        tau_a: float | None = None,
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
        self._create_parameters(
            {
                "decay_v": _decay(decay_v, tau_v, 0.9, ("decay_v", "tau_v")),
                "decay_a": _decay(decay_a, tau_a, 0.9, ("decay_a", "tau_a")),
                "threshold": _real("threshold", threshold),
                "beta": _real("beta", beta),
            }
        )
        self.a: torch.Tensor | None = None
        self.a_seq: torch.Tensor | None = None

    @property
    def decay_v(self) -> torch.Tensor:
        """``(n_neurons,)`` ``sigmoid(decay_v_logit)``, in (0, 1)."""
        return self._sigmoid("decay_v")

    @property
    def decay_a(self) -> torch.Tensor:
        """``(n_neurons,)`` ``sigmoid(decay_a_logit)``, in (0, 1)."""
        return self._sigmoid("decay_a")

    def detach_state(self) -> None:
        super().detach_state()
        if self.a is not None:
            self.a = self.a.detach()

    _per_neuron_params = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x: (T, B, *features)`` -> spikes of the same shape, dtype and strides."""
        x = self._layout(x)
        order = self._in_memory_order
        (v, a), keep = self._start(self.v, self.a)
        spikes, v, a, v_seq, a_seq = ALIFSubFunction.call(
            x,
            self._initial(v, x),
            self._initial(a, x),
            order(self.decay_v, x),
            order(self.decay_a, x),
            order(self.threshold, x),
            order(self.beta, x),
            self._alpha,
            *self._switches,
            1,
            self.stateful,
        )
        if not keep:
            return spikes
        self._set_states(v=v, a=a)
        if self.store_traces:
            self.a_seq = a_seq
        return self._finish(spikes, v_seq)

    def extra_repr(self) -> str:
        return f"{self.n_neurons}"
