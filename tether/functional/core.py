"""The autograd mechanics every neuron Function shares.

The thin ``NeuronFunction`` subclasses in ``lif.py``, ``plif.py`` and ``alif.py`` check
their arguments and call ``forward``/``backward`` here, which run ``ops.neuron_forward`` /
``ops.neuron_backward`` directly in eager mode and the ``tether::neuron_fwd`` /
``tether::neuron_bwd`` custom ops when traced (``torch.compile``, ``torch.export``), so a
model with neurons compiles into one graph. ``NeuronFunction.call`` skips autograd's
bookkeeping when no graph would be recorded.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

import torch

from tether.functional.checks import check_inputs
from tether.functional.ops import (
    forward_key,
    is_dense_steps,
    neuron_backward,
    neuron_forward,
    present,
    spec_ints,
    traced_ops,
    uses_kernels,
)
from tether.functional.plans import (
    GRAD_NAMES,
    STATE_PARAMS,
    NeuronSpec,
    Param,
    kernel_params,
    launch_backward,
    launch_forward,
    reduce_param_grads,
    split_params,
    vector_length,
)
from tether.reference import NeuronOutput
from tether.spike_memory import apply_unhooked, recording, register_spikes

__all__ = [
    "GRAD_NAMES", "STATE_PARAMS", "NeuronFunction", "NeuronOutput", "NeuronSpec", "Param",
    "backward", "check_inputs", "forward", "launch_backward", "launch_forward",
    "reduce_param_grads", "uses_kernels", "vector_length",
]  # fmt: skip


class _InferenceContext:
    """Stands in for autograd's ``ctx`` when no graph is recorded."""

    def __init__(self, n_inputs: int) -> None:
        self.needs_input_grad = (False,) * n_inputs

    def set_materialize_grads(self, value: bool) -> None:
        pass


class NeuronFunction(torch.autograd.Function):
    """Base of the neuron Functions: ``apply`` as any Function, and ``call``."""

    @classmethod
    def call(cls, *args):
        """``apply(*args)``, but when autograd would record nothing (grad mode off, or no
        tensor input requires grad) the forward runs directly: same outputs, without
        autograd's per-call bookkeeping, which costs more host time than a small layer's
        kernel; under ``tether.spike_memory`` its hooks skip the neuron's own saves
        (``apply_unhooked``). The modules call this."""
        if torch.is_grad_enabled():
            for a in args:
                if isinstance(a, torch.Tensor) and a.requires_grad:
                    return apply_unhooked(cls, *args)
        return cls.forward(_InferenceContext(len(args)), *args)


class Grads(NamedTuple):
    """The gradients of ``backward``, in the order of ``forward``'s ``needs`` (None where
    not needed)."""

    x: torch.Tensor | None
    v_init: torch.Tensor | None
    a_init: torch.Tensor | None
    decay_v: torch.Tensor | None  # then GRAD_NAMES
    threshold: torch.Tensor | None
    decay_a: torch.Tensor | None
    beta: torch.Tensor | None
    alpha: torch.Tensor | None


_PADDING = (False,) * 16


def needs_getter(*positions: int | None) -> Callable[[tuple], tuple[bool, ...]]:
    """``forward``'s ``needs`` from ``ctx.needs_input_grad``: ``positions`` gives the argument
    position of x, v_init, a_init and each of ``GRAD_NAMES`` (None: the Function has none)."""
    index = [-1 if p is None else p for p in positions]

    def needs(needs_input_grad: tuple) -> tuple[bool, ...]:
        padded = (*needs_input_grad, *_PADDING)
        return tuple([padded[i] for i in index])

    return needs


# Calls that passed the checks (by ``forward_key``), with whether x is dense with T
# outermost: a call like one seen before skips both.
_CHECKED: dict[tuple, bool] = {}


def _traced(x: torch.Tensor) -> bool:
    """Whether this call is being traced (compile, export, make_fx): then the custom ops
    run, so that tracing sees one opaque node with a fake implementation."""
    return torch.compiler.is_compiling() or type(x) is not torch.Tensor


def forward(
    ctx,
    spec: NeuronSpec,
    x: torch.Tensor,
    v_init: torch.Tensor | None,
    a_init: torch.Tensor | None,
    params: dict[str, Param],
    alpha: Param,
    needs: tuple[bool, ...],
    check: Callable[[], object],
) -> NeuronOutput:
    """The forward of every neuron Function. ``params`` uses the kernel's names
    (``STATE_PARAMS``); ``needs``: whether x, v_init, a_init, then each of ``GRAD_NAMES``
    needs a gradient; ``check()`` validates the call (run once per call signature in eager
    mode). ``x: (T, *F)`` in any layout (copied if it is not dense with T outermost);
    outputs take its strides."""
    ctx.set_materialize_grads(False)
    traced = _traced(x)
    # Under no_grad ``apply`` records no graph (no next_functions): nothing to save.
    training = any(needs) and (traced or len(getattr(ctx, "next_functions", ())) > 0)
    key = None
    if traced:
        check()
        dense = is_dense_steps(x)
    else:
        key = forward_key(spec, training, (x, v_init, a_init, *params.values(), alpha))
        dense = _CHECKED.get(key)
        if dense is None:
            check()
            dense = _CHECKED[key] = is_dense_steps(x)
    if not dense:
        x = x.contiguous()
    if not isinstance(alpha, (float, torch.Tensor)):
        alpha = float(alpha)  # a checked real number: int or numpy
    if isinstance(alpha, float) and not alpha > 0:  # every call: the cached check keys on types
        raise ValueError(f"alpha must be > 0 (a negative one flips the surrogate), got {alpha}")
    tensors, floats = split_params(params)
    if traced:
        fwd_op = traced_ops(x)[0]
        outs = fwd_op(x, v_init, a_init, tensors, floats, spec_ints(spec), spec.op, training)
        outs = [o if keep else None for o, keep in zip(outs, present(spec, training, True))]
    else:
        kparams = kernel_params(tensors, floats)
        outs = neuron_forward(
            x, v_init, a_init, tensors, floats, spec, training, key=key, kparams=kparams
        )
        if training and recording():
            register_spikes(outs[0], outs[5])  # tether.spike_memory: saved in 1 bit
    if training:
        tensor_alpha = alpha if isinstance(alpha, torch.Tensor) else None
        saved = _drop_zero_checkpoints(outs[5:], v_init, a_init)
        ctx.save_for_backward(x, v_init, a_init, *saved, *tensors, tensor_alpha)
        ctx.spec, ctx.floats, ctx.needs, ctx.key = spec, floats, needs, key
        # the backward takes the forward's kernel arguments (the same tensors, which
        # ``saved_tensors`` checks for in-place changes) rather than building them again
        ctx.kparams = None if traced else kparams
        ctx.float_alpha = 0.0 if tensor_alpha is not None else float(alpha)
    return NeuronOutput(*outs[:5])


def _drop_zero_checkpoints(saved: list, v_init, a_init) -> list:
    """``[packed, ckpt_v, ckpt_a]`` without the checkpoints that are a single row of a zero
    initial state (``T <= chunk`` and no ``v_init``/``a_init``: 4 bytes a neuron each, half
    a byte per element at T=8): the backward kernel starts such a state at zero."""
    packed, ckpt_v, ckpt_a = saved
    if packed is None or ckpt_v.shape[0] != 1:
        return saved
    return [packed, ckpt_v if v_init is not None else None, ckpt_a if a_init is not None else None]


def backward(ctx, grad_out: NeuronOutput) -> Grads:
    """The backward of every neuron Function: gradients for all inputs that need one."""
    if torch.is_grad_enabled() and not torch.compiler.is_compiling():
        raise RuntimeError(
            "tether neurons are differentiable once: backward with create_graph=True "
            "(double backward, gradient penalties through a neuron) is not supported"
        )
    x, v_init, a_init, packed, ckpt_v, ckpt_a, *rest = ctx.saved_tensors
    tensors, tensor_alpha = rest[:4], rest[4]
    spec, needs = ctx.spec, ctx.needs
    alpha = ctx.float_alpha if tensor_alpha is None else tensor_alpha
    saved = [packed, ckpt_v, ckpt_a]
    if _traced(x):
        grads = traced_ops(x)[1](
            list(grad_out), x, v_init, a_init, saved, tensors, ctx.floats, tensor_alpha,
            ctx.float_alpha, spec_ints(spec), spec.op, list(needs),
        )  # fmt: skip
    else:
        grads = neuron_backward(
            list(grad_out), x, v_init, a_init, saved, tensors, ctx.floats, alpha, spec, needs,
            key=ctx.key, kparams=ctx.kparams,
        )  # fmt: skip
    grad_x, grad_v, grad_a, param_grads = grads
    learned = iter(param_grads)
    return Grads(
        grad_x if needs[0] else None,
        grad_v if needs[1] else None,
        grad_a if needs[2] else None,
        *[next(learned) if need else None for need in needs[3:]],
    )
