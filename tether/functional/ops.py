"""The neuron ops ``tether::neuron_fwd`` and ``tether::neuron_bwd`` and their implementations.

``neuron_forward`` / ``neuron_backward`` run the Triton kernels on CUDA tensors (and on CPU
tensors under ``TRITON_INTERPRET=1``) and the eager reference elsewhere (and for float64).
The autograd Functions call them directly in eager mode, which costs no dispatcher time;
under ``torch.compile``, ``torch.export`` or any other tracing they call the same code
registered as ``torch.library`` custom ops, with fake implementations giving the output
shapes and strides, so a model with neurons traces into one graph.

Layout: a sequence ``x: (T, *F)`` must be dense with T outermost (contiguous, channels_last
activations viewed as ``(T, B, C, H, W)``, any permutation of the dims after T); the
kernels see the ``(T, N)`` view of its memory (``plans.steps``), so neuron ``n`` is the
``n``-th element of a step in memory order. Outputs take x's strides and states
``x[0]``'s, so nothing is copied; a state or gradient in another layout is copied into x's.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import os
from collections.abc import Iterator

import torch

from tether.functional.plans import (
    GRAD_NAMES,
    STATE_PARAMS,
    NeuronSpec,
    Plan,
    Saved,
    allocate_backward,
    allocate_forward,
    backward_plan,
    flat,
    flat_outputs,
    forward_plan,
    kernel_alpha,
    kernel_params,
    reduce_rows,
    run_backward,
    run_forward,
    step_like,
    steps,
)
from tether.kernels import INTERPRET
from tether.reference import NeuronOutput, neuron_reference
from tether.tuning import table
from tether.tuning.space import PACK_DTYPES, KernelConfig

KERNEL_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
Maybe = torch.Tensor | None
# Plans by everything a plan and its binary depend on: one dict lookup per call. A plan
# keeps its binary, so the key fixes every argument's class (outputs are fresh, aligned).
_PLANS: dict[tuple, Plan] = {}


def uses_kernels(x: torch.Tensor) -> bool:
    """CUDA tensors, or CPU tensors under the interpreter, in a kernel dtype."""
    on_kernel_device = x.is_cuda or (INTERPRET and x.device.type == "cpu")
    return on_kernel_device and x.dtype in KERNEL_DTYPES


def is_dense_steps(x: torch.Tensor) -> bool:
    """Whether ``x: (T, *F)`` is dense in memory with T outermost (some order of F)."""
    expected = 1
    dims = sorted((st, sz) for sz, st in zip(x.shape[1:], x.stride()[1:]) if sz != 1)
    for stride, size in dims:
        if stride != expected:
            return False
        expected *= size
    return x.shape[0] == 1 or x.stride(0) == expected


def _same_layout(t: torch.Tensor, shape, strides) -> bool:
    if t.stride() == strides:
        return True
    return t.shape == shape and all(
        a == b for a, b, size in zip(t.stride(), strides, shape) if size != 1
    )


def seq_like(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A sequence ``t`` shaped like ``x`` with x's strides: itself if it has them, else a
    copy."""
    return (
        t if _same_layout(t, x.shape, x.stride()) else torch.empty_like(x, dtype=t.dtype).copy_(t)
    )


def state_like(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """A state ``t`` shaped like ``x[0]`` with its strides: itself if it has them, else a
    copy."""
    if _same_layout(t, x.shape[1:], x.stride()[1:]):
        return t
    return step_like(x, t.dtype).copy_(t)


def _static_class(value: object) -> object:
    """What a cached plan and binary depend on in one input (beside x's device): a tensor's
    dtype, whether it has one element and whether its address is 16-byte aligned; else the
    type."""
    if isinstance(value, torch.Tensor):
        return value.dtype, value.numel() == 1, value.data_ptr() % 16 == 0
    return type(value)


def signature(value: object) -> object:
    """What the checks, the layout and the plans depend on in one argument as the caller
    gave it: a tensor's shape, strides, dtype, device and 16-byte alignment; else the type."""
    if isinstance(value, torch.Tensor):
        return value.shape, value.stride(), value.dtype, value.device, value.data_ptr() % 16
    return type(value)


def forward_key(spec: NeuronSpec, training: bool, inputs: tuple) -> tuple:
    """A forward's plan key from the caller's ``inputs`` (x, v_init, a_init, the parameters,
    alpha), which fix everything ``neuron_forward`` derives from them (copies to x's layout
    are fresh, so aligned): ``neuron_forward(..., key=forward_key(...))`` skips building its
    own."""
    return ("fwd", spec, training, table.is_untuned(), *map(signature, inputs))


def present(spec: NeuronSpec, training: bool, kernels: bool) -> tuple[bool, ...]:
    """Which of the forward's eight outputs exist: spikes, v_final, a_final, h_seq, a_seq,
    packed, ckpt_v, ckpt_a (the op returns empty tensors for the others)."""
    saving = training and kernels
    final, traces = spec.store_state, spec.store_traces
    adaptive = spec.adaptive
    return (True, final, final and adaptive, traces, traces and adaptive, saving, saving,
            saving and adaptive)  # fmt: skip


def _params(tensors: list[Maybe], floats: list[float]) -> dict[str, torch.Tensor | float]:
    return {n: f if t is None else t for n, t, f in zip(STATE_PARAMS, tensors, floats)}


def _training_config(spec: NeuronSpec, x: torch.Tensor) -> tuple[KernelConfig, KernelConfig]:
    n_steps, n_neurons = x.shape[0], x.numel() // x.shape[0]
    return table.select_training_configs(spec.op, x.dtype, n_steps, n_neurons, x.device)


def _reference(spec: NeuronSpec, x2, v2, a2, params: dict, alpha) -> NeuronOutput:
    """The eager definition over the flat views ``x2: (T, N)``, ``v2, a2: (N,)``."""
    return neuron_reference(
        x2, v2, params["decay_v"], params["threshold"], alpha, spec.surrogate_type,
        spec.soft_reset, spec.detach_reset, spec.group_size, adaptive=spec.adaptive,
        a_init=a2, decay_a=params["decay_a"], beta=params["beta"],
    )  # fmt: skip


def neuron_forward(
    x: torch.Tensor,
    v_init: Maybe,
    a_init: Maybe,
    tensors: list[Maybe],
    floats: list[float],
    spec: NeuronSpec,
    training: bool,
    traced: bool = False,
    key: tuple | None = None,
    kparams: tuple[dict, int] | None = None,
) -> tuple[Maybe, ...]:
    """The forward over ``x: (T, *F)`` (dense, T outermost); ``tensors``/``floats``: the four
    state parameters (``STATE_PARAMS``), a tensor or else the float. Returns the eight
    outputs of ``present`` (None where absent). ``traced``: the body of a ``triton_op``
    (no plan cache: tracing sees fake tensors; the kernel is launched through
    ``wrap_triton``). ``key``: the call's ``forward_key`` (else built here); ``kparams``:
    ``kernel_params(tensors, floats)`` if the caller has it (else built here)."""
    states = [None if s is None else state_like(s, x) for s in (v_init, a_init)]
    plan = None if key is None else _PLANS.get(key)
    if plan is None and not uses_kernels(x):
        out, _ = allocate_forward(spec, x, None, False)
        flat_states = (None if s is None else flat(s) for s in states)
        with torch.no_grad():
            ref = _reference(spec, steps(x), *flat_states, _params(tensors, floats), 1.0)
        for mine, theirs in zip(flat_outputs(out), ref):
            if mine is not None:
                mine.copy_(theirs)
        return (*out, None, None, None)
    if kparams is None:
        kparams = kernel_params(tensors, floats, x.device if traced else None)
    values, n_params = kparams
    n_steps = x.shape[0]
    n_neurons = x.numel() // n_steps
    if key is None and not traced:
        classes = map(_static_class, (x, *states, *values.values()))
        untuned = table.is_untuned()
        key = ("fwd", spec, training, untuned, n_steps, n_neurons, n_params, x.device, *classes)
        plan = _PLANS.get(key)
    if plan is None:
        if training:
            config = _training_config(spec, x)[0]
        else:
            config = table.select_config(spec.op, "fwd", x.dtype, n_steps, n_neurons, x.device)
        has = (s is not None for s in states)
        plan = forward_plan(spec, n_steps, n_neurons, *has, values, n_params, config, training)
        if key is not None:
            _PLANS[key] = plan
    out, saved = allocate_forward(spec, x, plan.config, training)
    run_forward(spec, x, *states, values, plan, out, saved, not traced, traced)
    return (*out, *(saved or (None, None, None)))


def _saved_layout(config: KernelConfig, n_steps: int, packed, n_chunks: int) -> KernelConfig:
    """``config`` with the chunk and packing width that the forward saved in (the same
    unless the table changed between forward and backward, e.g. ``table.untuned()``)."""
    pack_bits = next(b for b, d in PACK_DTYPES.items() if d == packed.dtype)
    chunk = config.chunk
    while -(-n_steps // chunk) > n_chunks:
        chunk *= 2
    while chunk > 1 and -(-n_steps // (chunk // 2)) == n_chunks:
        chunk //= 2
    if (chunk, pack_bits) == (config.chunk, config.pack_bits):
        return config
    return dataclasses.replace(config, chunk=chunk, pack_bits=pack_bits)


# The backward of most calls: the spikes' gradient alone, laid out like x (``_spikes_only``),
# eager, with a float alpha. Its plan is looked up by the forward's key and ``needs`` alone,
# skipping the layout checks and the key of the general case: autograd runs a CUDA backward
# on its device thread, where the same Python takes about twice as long as on the caller's
# (an H200's host at f4db2b2: 109 us against 58 inside the backward,
# ``scripts/host_breakdown.py``).
SPIKES_ONLY = "spikes only"


def _spikes_only(grads: list[Maybe], x: torch.Tensor) -> bool:
    """Whether ``grads`` (of the five outputs) is the spikes' alone, with x's strides and
    dtype and aligned like a fresh tensor: the arguments of the plan that such calls share."""
    spikes, v_final, a_final, h_seq, a_seq = grads
    return (
        v_final is None
        and a_final is None
        and h_seq is None
        and a_seq is None
        and spikes is not None
        and spikes.stride() == x.stride()
        and spikes.dtype == x.dtype
        and spikes.data_ptr() % 16 == 0
    )


def neuron_backward(
    grads: list[Maybe],
    x: torch.Tensor,
    v_init: Maybe,
    a_init: Maybe,
    saved: list[Maybe],
    tensors: list[Maybe],
    floats: list[float],
    alpha: torch.Tensor | float,
    spec: NeuronSpec,
    needs: tuple[bool, ...],
    traced: bool = False,
    key: tuple | None = None,
    kparams: tuple[dict, int] | None = None,
) -> tuple[Maybe, Maybe, Maybe, list[torch.Tensor]]:
    """The backward: ``grads`` of the five outputs (None where unused), the forward's inputs
    and ``saved`` (packed, ckpt_v, ckpt_a). ``needs``: x, v_init, a_init, then
    ``GRAD_NAMES``. Returns grad_x, grad_v_init, grad_a_init (None where not needed) and one
    gradient per needed parameter in ``GRAD_NAMES`` order. ``traced``: as in
    ``neuron_forward``; ``key``: the forward's ``forward_key`` (else built here); ``kparams``:
    the forward's ``kernel_params`` (else built here)."""
    names = _grad_names(tuple(needs))
    spikes_only_key = None  # this call's key of the spikes-only plans, if it is such a call
    eager = key is not None and kparams is not None
    if eager and not isinstance(alpha, torch.Tensor) and _spikes_only(grads, x):
        spikes_only_key = (SPIKES_ONLY, key, table.is_untuned(), needs)
    plan = None if spikes_only_key is None else _PLANS.get(spikes_only_key)
    if plan is not None:
        grad_out = NeuronOutput(*grads)
        values, n_params = kparams
        k_alpha = kernel_alpha(alpha)
    else:
        grads = [
            None if g is None else (seq_like(g, x) if i in (0, 3, 4) else state_like(g, x))
            for i, g in enumerate(grads)
        ]
        if not uses_kernels(x):
            params = _params(tensors, floats)
            return _reference_backward(grads, x, v_init, a_init, params, alpha, spec, needs, names)
        grad_out = NeuronOutput(*grads)
        if kparams is None:
            kparams = kernel_params(tensors, floats, x.device if traced else None)
        values, n_params = kparams
        if traced and not isinstance(alpha, torch.Tensor):
            alpha = torch.full((1,), alpha, dtype=torch.float32, device=x.device)
        k_alpha = kernel_alpha(alpha)
        plan = _backward_plan(spec, x, saved, values, n_params, k_alpha, names, grad_out, needs,
                              traced, key)  # fmt: skip
        if spikes_only_key is not None:
            _PLANS[spikes_only_key] = plan
    outputs = allocate_backward(spec, x, len(names), plan)
    saved = Saved(*saved)
    run_backward(spec, x, saved, values, k_alpha, grad_out, outputs, plan, not traced, traced)
    grad_x, grad_v, grad_a, rows = outputs
    param_grads = []
    if names:
        by_name = {**dict(zip(STATE_PARAMS, tensors)), "alpha": alpha}
        learned = {n: by_name[n] for n in names}
        param_grads = reduce_rows(rows, plan, learned)
    return (
        grad_x if needs[0] else None,
        grad_v.to(v_init.dtype) if needs[1] else None,
        grad_a.to(a_init.dtype) if needs[2] else None,
        param_grads,
    )


def _backward_plan(
    spec: NeuronSpec,
    x: torch.Tensor,
    saved: list[Maybe],
    values: dict[str, object],
    n_params: int,
    k_alpha: torch.Tensor | float,
    names: tuple[str, ...],
    grad_out: NeuronOutput,
    needs: tuple[bool, ...],
    traced: bool,
    key: tuple | None,
) -> Plan:
    """The backward's plan, cached by everything it depends on (``key``: the forward's)."""
    n_steps = x.shape[0]
    n_neurons = x.numel() // n_steps
    packed, ckpt_v, ckpt_a = saved
    # A state without checkpoints started at zero and T <= chunk (``core``): one chunk.
    starts_at_zero = (ckpt_v is None, spec.adaptive and ckpt_a is None)
    n_chunks = 1 if ckpt_v is None else ckpt_v.shape[0]
    layout = (packed.dtype, n_chunks, starts_at_zero)  # what the forward saved
    if key is not None:
        untuned = table.is_untuned()
        key = ("bwd", key, untuned, needs, layout, *map(_static_class, grad_out))
    elif not traced:
        classes = map(_static_class, (x, *values.values(), k_alpha, *grad_out))
        key = ("bwd", spec, n_steps, n_neurons, n_params, names, x.device, layout, *classes)
    plan = _PLANS.get(key)
    if plan is None:
        config = _saved_layout(_training_config(spec, x)[1], n_steps, packed, n_chunks)
        is_tensor = isinstance(k_alpha, torch.Tensor)
        plan = backward_plan(
            spec, n_steps, n_neurons, values, n_params, is_tensor, names, grad_out, config,
            starts_at_zero, program_sums=True,
        )  # fmt: skip
        if key is not None:
            _PLANS[key] = plan
    return plan


@functools.cache
def _grad_names(needs: tuple[bool, ...]) -> tuple[str, ...]:
    """The parameters (``GRAD_NAMES``) that ``needs`` (x, v_init, a_init, then each of
    ``GRAD_NAMES``) asks a gradient of."""
    return tuple(n for n, need in zip(GRAD_NAMES, needs[3:]) if need)


@contextlib.contextmanager
def _without_saved_tensors_hooks() -> Iterator[None]:
    """No saved-tensor hooks inside (``torch.func.vjp`` refuses to run under them, and a
    backward called inside ``tether.spike_memory`` or ``save_on_cpu`` has them); the
    enclosing hooks are restored on exit."""
    autograd = torch._C._autograd
    popped = []
    while (top := autograd._top_saved_tensors_default_hooks(True)) is not None:
        popped.append(top)
        autograd._pop_saved_tensors_default_hooks()
    try:
        yield
    finally:
        for pack, unpack in reversed(popped):
            autograd._push_saved_tensors_default_hooks(pack, unpack)


def _reference_backward(grads, x, v_init, a_init, params, alpha, spec, needs, names):
    """Differentiate the reference forward with ``torch.func.vjp`` (it recomputes: no graph
    is kept between forward and backward, so backward can run any number of times, and it
    works inside the custom op, where autograd does not record)."""
    inputs = {"x": steps(x), "v_init": v_init, "a_init": a_init, **params, "alpha": alpha}
    inputs["v_init"] = None if v_init is None else flat(state_like(v_init, x))
    inputs["a_init"] = None if a_init is None else flat(state_like(a_init, x))
    wanted = dict(zip(("x", "v_init", "a_init", *GRAD_NAMES), needs))
    diff = [n for n, v in inputs.items() if isinstance(v, torch.Tensor) and wanted[n]]
    flat_grads = flat_outputs(NeuronOutput(*grads))
    used = [i for i, g in enumerate(flat_grads) if g is not None]

    def outputs(*values: torch.Tensor) -> tuple[torch.Tensor, ...]:
        given = {**inputs, **dict(zip(diff, values))}
        out = _reference(spec, given["x"], given["v_init"], given["a_init"], given,
                         given["alpha"])  # fmt: skip
        return tuple(out[i] for i in used)

    found = dict.fromkeys(diff)
    if diff and used:
        with _without_saved_tensors_hooks():
            _, vjp = torch.func.vjp(outputs, *(inputs[n] for n in diff))
            found = dict(zip(diff, vjp(tuple(flat_grads[i] for i in used))))

    def laid_out(name: str, sequence: bool, dtype: torch.dtype) -> torch.Tensor:
        """The gradient of a flat leaf, laid out like x (or its steps); zeros if unused."""
        out = torch.empty_like(x, dtype=dtype) if sequence else step_like(x, dtype)
        if found[name] is None:
            return out.zero_()
        (steps(out) if sequence else flat(out)).copy_(found[name])
        return out

    grad_x = laid_out("x", True, x.dtype) if needs[0] else None
    grad_v = laid_out("v_init", False, v_init.dtype) if needs[1] else None
    grad_a = laid_out("a_init", False, a_init.dtype) if needs[2] else None
    by_name = {**params, "alpha": alpha}
    param_grads = [torch.zeros_like(by_name[n]) if found[n] is None else found[n] for n in names]
    return grad_x, grad_v, grad_a, param_grads


# --- the same code as torch.library custom ops, for tracing -------------------------------


def spec_ints(spec: NeuronSpec) -> list[int]:
    """A spec's fields after ``op`` as the ints an op takes."""
    return [int(v) for v in spec[1:]]


def _spec(op: str, ints: list[int]) -> NeuronSpec:
    adaptive, surrogate, soft, detach, traces, group_size, state = ints
    return NeuronSpec(op, bool(adaptive), surrogate, bool(soft), bool(detach), bool(traces),
                      group_size, bool(state))  # fmt: skip


def _filled(outputs, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Absent outputs as empty tensors (an op returns tensors only)."""
    return tuple(x.new_empty(0) if t is None else t for t in outputs)


T8 = tuple[(torch.Tensor,) * 8]  # the forward op's outputs (see ``present``)
Grads4 = tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]
# Traced kernel calls run triton_ops, so that inductor launches the kernels from the compiled
# graph's own code (no Python per call); TETHER_CUSTOM_OPS=1 runs the opaque custom ops
# instead (how the two were compared). The interpreter and the reference run custom ops.
TRITON_OPS = os.environ.get("TETHER_CUSTOM_OPS", "0") in ("", "0")


def traced_ops(x: torch.Tensor) -> tuple:
    """The (forward, backward) ops a traced call on ``x`` records."""
    if TRITON_OPS and not INTERPRET and uses_kernels(x):
        return torch.ops.tether.neuron_fwd_kernels, torch.ops.tether.neuron_bwd_kernels
    return torch.ops.tether.neuron_fwd, torch.ops.tether.neuron_bwd


def _forward_op(x, v_init, a_init, tensors, floats, spec, op, training, traced) -> T8:
    nspec = _spec(op, spec)
    outputs = neuron_forward(x, v_init, a_init, tensors, floats, nspec, training, traced)
    return _filled(outputs, x)


def _backward_op(grads, x, v_init, a_init, saved, tensors, floats, alpha_tensor, alpha_float,
                 spec, op, needs, traced) -> Grads4:  # fmt: skip
    nspec = _spec(op, spec)
    alpha = alpha_float if alpha_tensor is None else alpha_tensor
    saved = [None if s is None or s.numel() == 0 else s for s in saved]
    grad_x, grad_v, grad_a, params = neuron_backward(
        grads, x, v_init, a_init, saved, tensors, floats, alpha, nspec, needs, traced
    )
    # One-neuron-per-entry gradients are rows of one tensor: an op's outputs may not alias.
    params = [p.clone() if p._base is not None else p for p in params]
    return (*_filled((grad_x, grad_v, grad_a), x), params)


def _forward_op_fn(traced: bool):
    """The forward op's function (its annotations are the op's schema)."""

    def forward_op(
        x: torch.Tensor,
        v_init: torch.Tensor | None,
        a_init: torch.Tensor | None,
        tensors: list[torch.Tensor | None],
        floats: list[float],
        spec: list[int],
        op: str,
        training: bool,
    ) -> T8:
        return _forward_op(x, v_init, a_init, tensors, floats, spec, op, training, traced)

    return forward_op


def _backward_op_fn(traced: bool):
    """The backward op's function (its annotations are the op's schema)."""

    def backward_op(
        grads: list[torch.Tensor | None],
        x: torch.Tensor,
        v_init: torch.Tensor | None,
        a_init: torch.Tensor | None,
        saved: list[torch.Tensor | None],
        tensors: list[torch.Tensor | None],
        floats: list[float],
        alpha_tensor: torch.Tensor | None,
        alpha_float: float,
        spec: list[int],
        op: str,
        needs: list[bool],
    ) -> Grads4:
        return _backward_op(grads, x, v_init, a_init, saved, tensors, floats, alpha_tensor,
                            alpha_float, spec, op, needs, traced)  # fmt: skip

    return backward_op


# Opaque ops (``spec``: the ints of ``NeuronSpec`` after ``op``; absent outputs are empty
# tensors), with fake implementations for tracing; and the same code as triton_ops.
neuron_fwd = torch.library.custom_op("tether::neuron_fwd", mutates_args=())(
    _forward_op_fn(traced=False)
)
neuron_bwd = torch.library.custom_op("tether::neuron_bwd", mutates_args=())(
    _backward_op_fn(traced=False)
)
neuron_fwd_kernels = torch.library.triton_op("tether::neuron_fwd_kernels", mutates_args=())(
    _forward_op_fn(traced=True)
)
neuron_bwd_kernels = torch.library.triton_op("tether::neuron_bwd_kernels", mutates_args=())(
    _backward_op_fn(traced=True)
)


@neuron_fwd.register_fake
def _(x, v_init, a_init, tensors, floats, spec, op, training):
    nspec = _spec(op, spec)
    saving = training and uses_kernels(x)
    config = _training_config(nspec, x)[0] if saving else None
    out, saved = allocate_forward(nspec, x, config, saving)
    return _filled((*out, *(saved or (None, None, None))), x)


@neuron_bwd.register_fake
def _(grads, x, v_init, a_init, saved, tensors, floats, alpha_tensor, alpha_float, spec, op,
      needs):  # fmt: skip
    def like(state: Maybe, need: bool) -> torch.Tensor:
        return step_like(x, state.dtype) if need else x.new_empty(0)

    learned = [*tensors, alpha_tensor]
    names = [n for n, need in zip(GRAD_NAMES, needs[3:]) if need]
    params = [learned[GRAD_NAMES.index(n)] for n in names]
    return (
        torch.empty_like(x) if needs[0] else x.new_empty(0),
        like(v_init, needs[1]),
        like(a_init, needs[2]),
        [p.new_empty(p.shape) for p in params],
    )
