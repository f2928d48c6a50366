"""Kernel launches with an explicit config: plans, argument building and the saved layout.

A call's static facts (shapes, dtypes, parameter kinds, switches) fix its ``Plan``: the
config, grid, constexprs and, once launched, the compiled binary. ``ops`` caches plans per
distinct call; the tuner calls ``launch_forward``/``launch_backward`` with each config.
Kernel arguments are built by name and ordered by the kernel's own signature.
"""

from __future__ import annotations

import functools
import math
import operator
from collections.abc import Callable
from typing import NamedTuple

import torch

from tether.kernels import neuron_bwd_kernel, neuron_fwd_kernel
from tether.kernels.launch import Launcher
from tether.reference import NeuronOutput
from tether.tuning.space import PACK_DTYPES, KernelConfig

STATE_PARAMS = ("decay_v", "threshold", "decay_a", "beta")
GRAD_NAMES = (*STATE_PARAMS, "alpha")  # parameters that can take a gradient, in row order
Param = torch.Tensor | float


class NeuronSpec(NamedTuple):
    """The static choices of one call (compile-time switches of the kernels). A named tuple:
    it is part of the per-call cache keys, and tuples hash and compare in C."""

    op: str  # "lif" | "plif" | "alif": the winners-table key
    adaptive: bool
    surrogate_type: int = 0
    soft_reset: bool = False
    detach_reset: bool = True
    store_traces: bool = True
    group_size: int = 1
    store_state: bool = True  # write v_final (and a_final); off when the caller drops them


class Plan(NamedTuple):
    """What the static facts of a call fix, computed once per distinct call."""

    config: KernelConfig
    grid: tuple[int, int, int]  # (blocks, segments, 1)
    constexprs: dict[str, object]
    fixed: dict[str, int]  # runtime arguments it fixes: shape, group size, P, param strides
    binaries: dict  # the launcher's compiled kernel for this plan, by device
    maps: Plan | None = None  # a backward in segments: the launch of their maps, first


class Saved(NamedTuple):
    """What the training forward keeps for the backward."""

    packed: torch.Tensor  # (ceil(T / pack_bits), N) int8|int16|int32
    ckpt_v: torch.Tensor | None  # (ceil(T / chunk), N) float32; None: v started at 0
    ckpt_a: torch.Tensor | None


def cdiv(a: int, b: int) -> int:
    """Ceiling division on the host (``triton.cdiv`` is a JIT callable: ~9 us a call)."""
    return -(-a // b)


def saved_shapes(n_steps: int, n_neurons: int, config: KernelConfig) -> tuple[tuple, tuple]:
    """Shapes of the packed spikes and of each checkpoint tensor for ``config``."""
    return (cdiv(n_steps, config.pack_bits), n_neurons), (cdiv(n_steps, config.chunk), n_neurons)


def split_params(params: dict[str, Param]) -> tuple[list, list[float]]:
    """The four state parameters (``STATE_PARAMS``) as (tensor or None, float) lists, the
    form the ops take; absent ones are 0.0."""
    tensors, floats = [], []
    for name in STATE_PARAMS:
        value = params.get(name, 0.0)
        is_tensor = isinstance(value, torch.Tensor)
        tensors.append(value if is_tensor else None)
        floats.append(0.0 if is_tensor else float(value))
    return tensors, floats


def kernel_params(
    tensors: list[torch.Tensor | None], floats: list[float], device: torch.device | None = None
) -> tuple[dict, int]:
    """The kernel's parameter arguments (flat contiguous tensors, else floats) by name, and
    P, the length of the vector parameters (1 when none). With ``device`` (a traced kernel
    call) floats become one-element float32 tensors there: a compiled graph passes a float
    argument as float64, which the kernels' float32 state does not take."""
    values, n_params = {}, 1
    for name, t, f in zip(STATE_PARAMS, tensors, floats):
        if t is None and device is not None:
            t = torch.full((1,), f, dtype=torch.float32, device=device)
        if t is None:
            values[name] = f
        else:
            values[name] = t = (t if t.ndim == 1 else t.reshape(-1)).contiguous()
            n_params = max(n_params, t.shape[0])
    return values, n_params


def vector_length(params: dict[str, Param]) -> int:
    """P: the length of the vector parameters (1 when all are scalars)."""
    return max((p.numel() for p in params.values() if isinstance(p, torch.Tensor)), default=1)


def _param_switches(values: dict[str, object]) -> tuple[dict[str, int], dict[str, bool]]:
    """The parameters' strides (0: one value for all neurons) and ``*_IS_TENSOR`` constexprs."""
    strides = {
        f"{n}_stride": int(isinstance(v, torch.Tensor) and v.numel() > 1) for n, v in values.items()
    }
    is_tensor = {f"{n.upper()}_IS_TENSOR": isinstance(v, torch.Tensor) for n, v in values.items()}
    return strides, is_tensor


def _plan(
    kernel,
    spec: NeuronSpec,
    config: KernelConfig,
    switches: dict[str, object],
    n_steps: int,
    n_neurons: int,
    n_params: int,
    strides: dict[str, int],
    segments: int = 1,
) -> Plan:
    """A plan for ``kernel`` over ``segments`` of time: its ``switches`` and the config's
    launch constexprs in signature order, and the runtime arguments it fixes (shape, group
    size, P, strides)."""
    launch = config.constexprs(_arg_names(kernel, True))
    constexprs = _constexpr_order(kernel, {**switches, **launch})
    shape = {"n_steps": n_steps, "n_neurons": n_neurons, "group_size": spec.group_size}
    fixed = {**strides, **shape, "n_params": n_params}
    return Plan(config, (cdiv(n_neurons, config.block), segments, 1), constexprs, fixed, {})


@functools.cache
def _arg_names(kernel, constexpr: bool) -> tuple[str, ...]:
    """The kernel's constexpr (or runtime) arguments, in signature order (``kernel.fn``'s
    annotations: the compiled and the interpreted kernel both have them)."""
    hints = kernel.fn.__annotations__
    return tuple(n for n in kernel.arg_names if ("constexpr" in str(hints.get(n))) == constexpr)


def _constexpr_order(kernel, constexprs: dict[str, object]) -> dict[str, object]:
    """``constexprs`` in the kernel's signature order (the launcher passes them by position)."""
    names = _arg_names(kernel, True)
    missing = set(names) ^ set(constexprs)
    if missing:
        raise ValueError(f"constexprs differ from the kernel's: {sorted(missing)}")
    return {name: constexprs[name] for name in names}


_launch_fwd = Launcher(neuron_fwd_kernel)
_launch_bwd = Launcher(neuron_bwd_kernel)


def _ptr(t: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """A pointer argument: ``t``, or ``x`` for an unused one (never read or written)."""
    return x if t is None else t


@functools.cache
def _argument_getter(kernel) -> Callable[[dict], tuple]:
    """``named -> args``: the kernel's runtime arguments in signature order, in one C call."""
    return operator.itemgetter(*_arg_names(kernel, False))


def _launch(
    launcher: Launcher, plan: Plan, named: dict[str, object], cached: bool, traced: bool
) -> None:
    """Launch with the runtime arguments ``named`` by name. ``traced``: inside a
    ``triton_op`` (``ops``), through ``wrap_triton``, so that a compiled graph launches the
    kernel from its own code."""
    args = _argument_getter(launcher.kernel)(named)
    config = plan.config
    if traced:
        kernel = torch.library.wrap_triton(launcher.kernel)
        options = {"num_warps": config.num_warps, "num_stages": config.num_stages}
        kernel[plan.grid](*args, **plan.constexprs, **options)
        return
    binaries = plan.binaries if cached else None
    launcher(plan.grid, args, plan.constexprs, config.num_warps, config.num_stages, binaries)


def forward_plan(
    spec: NeuronSpec,
    n_steps: int,
    n_neurons: int,
    has_v_init: bool,
    has_a_init: bool,
    values: dict[str, object],
    n_params: int,
    config: KernelConfig,
    save_for_backward: bool,
) -> Plan:
    """The plan of a forward over ``(T, N) = (n_steps, n_neurons)`` with vector parameters
    of length ``n_params``."""
    strides, is_tensor = _param_switches(values)
    constexprs = {
        **is_tensor,
        "ADAPTIVE": spec.adaptive,
        "SOFT_RESET": spec.soft_reset,
        "HAS_V_INIT": has_v_init,
        "HAS_A_INIT": has_a_init,
        "STORE_H": spec.store_traces,
        "STORE_A": spec.store_traces and spec.adaptive,
        "SAVE_FOR_BACKWARD": save_for_backward,
        "STORE_FINAL": spec.store_state,
        "EVEN_STEPS": n_steps % config.chunk == 0,
    }
    return _plan(neuron_fwd_kernel, spec, config, constexprs, n_steps, n_neurons, n_params, strides)


def run_forward(
    spec: NeuronSpec,
    x: torch.Tensor,
    v_init: torch.Tensor | None,
    a_init: torch.Tensor | None,
    values: dict[str, object],
    plan: Plan,
    outputs: NeuronOutput,
    saved: Saved | None,
    cached: bool = False,
    traced: bool = False,
) -> None:
    """Launch the forward over ``x: (T, *F)`` dense with T outermost into ``outputs`` (and
    ``saved`` in training) laid out like x (``allocate_forward``): the kernel indexes each
    tensor's memory from its first element. ``cached``: the plan's calls share one binary;
    ``traced``: see ``_launch``."""
    packed, ckpt_v, ckpt_a = saved or (None, None, None)
    named = {
        "x_ptr": x,
        "spikes_ptr": outputs.spikes,
        "h_seq_ptr": _ptr(outputs.h_seq, x),
        "a_seq_ptr": _ptr(outputs.a_seq, x),
        "v_init_ptr": _ptr(v_init, x),
        "a_init_ptr": _ptr(a_init, x),
        "v_final_ptr": _ptr(outputs.v_final, x),
        "a_final_ptr": _ptr(outputs.a_final, x),
        "packed_ptr": _ptr(packed, x),
        "ckpt_v_ptr": _ptr(ckpt_v, x),
        "ckpt_a_ptr": _ptr(ckpt_a, x),
        **values,
        **plan.fixed,
    }
    _launch(_launch_fwd, plan, named, cached, traced)


def step_like(x: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """An empty state laid out like one step of ``x: (T, *F)`` (dense, T outermost)."""
    return torch.empty_strided(x.shape[1:], x.stride()[1:], dtype=dtype, device=x.device)


def steps(t: torch.Tensor) -> torch.Tensor:
    """``t: (T, *F)``, dense with T outermost, as the ``(T, N)`` view of its memory: neuron
    ``n`` is the ``n``-th element of a step in memory order (what the kernels index)."""
    n = t[0].numel()
    return t.as_strided((t.shape[0], n), (n, 1))


def flat(t: torch.Tensor) -> torch.Tensor:
    """A dense state ``t: F`` as the ``(N,)`` view of its memory."""
    return t.as_strided((t.numel(),), (1,))


def allocate_forward(
    spec: NeuronSpec, x: torch.Tensor, config: KernelConfig | None, save_for_backward: bool
) -> tuple[NeuronOutput, Saved | None]:
    """Outputs of a forward over ``x: (T, *F)`` dense with T outermost, in x's layout:
    sequences like x, final states like ``x[0]`` in float32 (float64 for float64 x).
    ``config`` fixes the saved layout in training (None: nothing saved)."""
    state_dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
    final, traces, adaptive = spec.store_state, spec.store_traces, spec.adaptive
    out = NeuronOutput(  # spikes, v_final, a_final, h_seq, a_seq
        torch.empty_like(x),
        step_like(x, state_dtype) if final else None,
        step_like(x, state_dtype) if final and adaptive else None,
        torch.empty_like(x) if traces else None,
        torch.empty_like(x) if traces and adaptive else None,
    )
    saved = None
    if save_for_backward:
        packed, ckpt = saved_shapes(x.shape[0], x.numel() // x.shape[0], config)
        device = x.device
        # torch.empty(*shape) parses faster than torch.empty(shape)
        saved = Saved(
            torch.empty(*packed, dtype=PACK_DTYPES[config.pack_bits], device=device),
            torch.empty(*ckpt, dtype=torch.float32, device=device),
            torch.empty(*ckpt, dtype=torch.float32, device=device) if spec.adaptive else None,
        )
    return out, saved


def flat_outputs(out: NeuronOutput) -> NeuronOutput:
    """The kernel's views of forward outputs: ``(T, N)`` sequences, ``(N,)`` states."""

    def view(t: torch.Tensor | None, sequence: bool) -> torch.Tensor | None:
        return None if t is None else steps(t) if sequence else flat(t)

    spikes, v_final, a_final, h_seq, a_seq = out
    return NeuronOutput(
        view(spikes, True),
        view(v_final, False),
        view(a_final, False),
        view(h_seq, True),
        view(a_seq, True),
    )


def launch_forward(
    spec: NeuronSpec,
    x: torch.Tensor,
    v_init: torch.Tensor | None,
    a_init: torch.Tensor | None,
    params: dict[str, Param],
    n_params: int,
    config: KernelConfig,
    save_for_backward: bool,
) -> tuple[NeuronOutput, Saved | None]:
    """Run the forward kernel with an explicit config on ``x: (T, N)`` contiguous (what the
    tuner times); ``config.chunk`` and ``config.pack_bits`` fix the saved layout that the
    backward must be launched with."""
    values = kernel_params(*split_params(params))[0]
    has_a = a_init is not None
    has_v = v_init is not None
    plan = forward_plan(spec, *x.shape, has_v, has_a, values, n_params, config, save_for_backward)
    out, saved = allocate_forward(spec, x, config, save_for_backward)
    run_forward(spec, x, v_init, a_init, values, plan, out, saved)
    return out, saved


def backward_plan(
    spec: NeuronSpec,
    n_steps: int,
    n_neurons: int,
    values: dict[str, object],
    n_params: int,
    alpha_is_tensor: bool,
    grad_names: tuple[str, ...],
    grad_out: NeuronOutput,
    config: KernelConfig,
    starts_at_zero: tuple[bool, bool] = (False, False),
    program_sums: bool = False,
) -> Plan:
    """The plan of a backward over ``(T, N)``; ``grad_names`` get one row each;
    ``starts_at_zero``: v, a start at zero with no checkpoint saved (T <= chunk).
    ``program_sums``: where neurons of a program share a parameter entry, the rows hold the
    program's sums over them (``program_sums_of``, ``sum_layout``), else one per neuron."""
    strides, is_tensor = _param_switches(values)
    rows = {name: grad_names.index(name) if name in grad_names else -1 for name in GRAD_NAMES}
    constexprs = {
        **is_tensor,
        "ALPHA_IS_TENSOR": alpha_is_tensor,
        "ADAPTIVE": spec.adaptive,
        "SOFT_RESET": spec.soft_reset,
        "DETACH_RESET": spec.detach_reset,
        "SURROGATE": spec.surrogate_type,
        "HAS_GRAD_SPIKES": grad_out.spikes is not None,
        "HAS_GRAD_H": grad_out.h_seq is not None,
        "HAS_GRAD_A_SEQ": grad_out.a_seq is not None,
        "HAS_GRAD_V_FINAL": grad_out.v_final is not None,
        "HAS_GRAD_A_FINAL": grad_out.a_final is not None,
        "V_STARTS_AT_ZERO": starts_at_zero[0],
        "A_STARTS_AT_ZERO": starts_at_zero[1],
        # lean level 2 only: the entries tuned at levels 0-1 keep the code they timed
        "EVEN_STEPS": config.lean >= 2 and n_steps % config.chunk == 0,
        **{f"{name.upper()}_GRAD_ROW": row for name, row in rows.items()},
    }
    segment_chunks, segments = segment_shape(n_steps, config)
    sums, periodic = program_sums_of(n_params, spec.group_size, config.block)
    sums = sums if program_sums and grad_names and segments == 1 else 0
    constexprs.update(PROGRAM_SUMS=sums, PERIODIC_SUMS=bool(sums) and periodic)
    # in segments, the segment of each neuron done last sums the rows: no reduction kernel
    constexprs["SUM_SEGMENTS"] = bool(grad_names) and segments > 1

    def launch(split: int, programs: int) -> Plan:
        """The plan of the launch with switch ``SPLIT=split`` over ``programs`` segments."""
        plan = _plan(neuron_bwd_kernel, spec, config, {**constexprs, "SPLIT": split}, n_steps,
                     n_neurons, n_params, strides, programs)  # fmt: skip
        plan.fixed["n_segment_chunks"] = segment_chunks
        return plan

    if segments == 1:
        return launch(0, 1)
    return launch(2, segments)._replace(maps=launch(1, segments - 1))


def program_sums_of(n_params: int, group_size: int, block: int) -> tuple[int, bool]:
    """(sums, periodic): how a program of ``block`` neurons sums a parameter's gradient over
    the neurons that share an entry of it (neuron n: entry ``(n // group_size) % n_params``),
    in ``sums`` values, fewer than ``block``; (0, False) where no two neurons of a program
    share. Runs of ``gcd(block, group_size)`` neurons (a per-channel parameter of a
    contiguous ``(T, B, C, H, W)`` input: group H*W), or, ``periodic``, residues modulo
    ``n_params * group_size`` where that divides ``block`` (channels_last: C), whichever
    writes fewer; a one-entry parameter: one sum."""
    if n_params == 1:
        return 1, False
    runs = block // math.gcd(block, group_size)
    period = n_params * group_size
    if block % period == 0 and period < runs:
        return period, True
    return (runs, False) if runs < block else (0, False)


def sum_layout(plan: Plan) -> tuple[int, int, int, int]:
    """(width, used, n_params, group_size) of the parameter gradient rows of a backward
    ``plan``: per neuron (N, N, its own), or per ``PROGRAM_SUMS`` sums a program, whose
    entries follow the neurons' rule with the group size in sums; ``used``: the first sums,
    those of runs that hold neurons (the last program's runs past N hold none)."""
    fixed, sums = plan.fixed, plan.constexprs["PROGRAM_SUMS"]
    n_neurons, n_params, group_size = fixed["n_neurons"], fixed["n_params"], fixed["group_size"]
    if not sums:
        return n_neurons, n_neurons, n_params, group_size
    width = plan.grid[0] * sums
    if n_params == 1:
        return width, width, 1, 1
    if plan.constexprs["PERIODIC_SUMS"]:  # sum k of program p: residue k
        return width, width, n_params, group_size
    run = plan.config.block // sums  # sum k of program p: neurons (p * sums + k) * run ...
    return width, -(-n_neurons // run), n_params, group_size // run


def segment_shape(n_steps: int, config: KernelConfig) -> tuple[int, int]:
    """(chunks per segment, segments) of a backward in ``config`` over T = ``n_steps``: at
    most ``config.segments`` of equal length in chunks."""
    n_chunks = cdiv(n_steps, config.chunk)
    per_segment = cdiv(n_chunks, config.segments)
    return per_segment, cdiv(n_chunks, per_segment)


def allocate_backward(
    spec: NeuronSpec, x: torch.Tensor, n_rows: int, plan: Plan
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
    """grad_x like ``x: (T, *F)``, float32 grad_v_init (and grad_a_init) like ``x[0]`` and
    the parameter gradient rows, float32 (None if no rows): per neuron ``(n_rows, N)``, per
    segment and neuron ``(n_rows, S, N)`` for ``plan``'s S segments (``neuron_rows``), or
    per program ``(n_rows, programs * PROGRAM_SUMS)`` (``sum_layout``)."""
    grad_v_init = step_like(x, torch.float32)
    grad_a_init = step_like(x, torch.float32) if spec.adaptive else None
    rows = None
    if n_rows:
        segments = () if plan.maps is None else (plan.grid[1],)
        width = sum_layout(plan)[0]  # the kernel writes every sum of the last program
        rows = torch.empty(n_rows, *segments, width, dtype=torch.float32, device=x.device)
    return torch.empty_like(x), grad_v_init, grad_a_init, rows


def neuron_rows(rows: torch.Tensor) -> torch.Tensor:
    """Parameter gradient rows per neuron ``(R, N)``: per segment, the kernel summed them
    into the first (``SUM_SEGMENTS``)."""
    return rows if rows.dim() == 2 else rows[:, 0]


def reduce_rows(rows: torch.Tensor, plan: Plan, params: dict[str, torch.Tensor]) -> list:
    """The gradient of each of ``params`` from the backward's ``rows`` under ``plan``
    (``allocate_backward``): per neuron, per segment and neuron, or per program."""
    width, used, n_params, group_size = sum_layout(plan)
    rows = neuron_rows(rows)
    if used < width:
        rows = rows[:, :used]
    return [*reduce_param_grads(rows, params, n_params, group_size).values()]


def run_backward(
    spec: NeuronSpec,
    x: torch.Tensor,
    saved: Saved,
    values: dict[str, object],
    alpha: torch.Tensor | float,
    grad_out: NeuronOutput,
    grads: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None],
    plan: Plan,
    cached: bool = False,
    traced: bool = False,
) -> None:
    """Launch the backward over ``x: (T, *F)`` and ``grad_out`` laid out like x (and its
    steps) into ``grads`` (``allocate_backward``'s). ``cached``: the plan's calls share one
    binary; ``traced``: see ``_launch``."""
    grad_x, grad_v_init, grad_a_init, grad_params = grads
    named = {
        "x_ptr": x,
        "packed_ptr": saved.packed,
        "ckpt_v_ptr": _ptr(saved.ckpt_v, x),
        "ckpt_a_ptr": _ptr(saved.ckpt_a, x),
        "grad_spikes_ptr": _ptr(grad_out.spikes, x),
        "grad_h_ptr": _ptr(grad_out.h_seq, x),
        "grad_a_seq_ptr": _ptr(grad_out.a_seq, x),
        "grad_v_final_ptr": _ptr(grad_out.v_final, x),
        "grad_a_final_ptr": _ptr(grad_out.a_final, x),
        "grad_x_ptr": grad_x,
        "grad_v_init_ptr": grad_v_init,
        "grad_a_init_ptr": _ptr(grad_a_init, x),
        "grad_params_ptr": _ptr(grad_params, x),
        **values,
        "alpha": alpha,
        **plan.fixed,
        "maps_ptr": x,
    }
    if plan.maps is not None:  # (MAP_ROWS [+ counters], SEGMENTS, N): the kernel's _segment_carry
        map_rows = (6 if spec.adaptive else 2) + plan.constexprs["SUM_SEGMENTS"]  # + counters
        shape = (map_rows, plan.config.segments, plan.fixed["n_neurons"])
        named["maps_ptr"] = torch.empty(shape, dtype=torch.float32, device=x.device)
        _launch(_launch_bwd, plan.maps, named, cached, traced)
    _launch(_launch_bwd, plan, named, cached, traced)


def kernel_alpha(alpha: Param) -> torch.Tensor | float:
    return alpha.reshape(-1) if isinstance(alpha, torch.Tensor) else float(alpha)


def launch_backward(
    spec: NeuronSpec,
    x: torch.Tensor,
    saved: Saved,
    params: dict[str, Param],
    alpha: Param,
    n_params: int,
    needs_param_grad: dict[str, bool],
    grad_out: NeuronOutput,
    config: KernelConfig,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, dict[str, torch.Tensor]]:
    """Run the backward kernel with an explicit config. ``grad_out`` holds the gradients of
    the forward's outputs (None where unused). Returns grad_x, grad_v_init, grad_a_init and,
    for each parameter in ``needs_param_grad``, its per-neuron gradient summed over time:
    (N,) float32."""
    values, alpha = kernel_params(*split_params(params))[0], kernel_alpha(alpha)
    grad_out = NeuronOutput(*(None if g is None else g.contiguous() for g in grad_out))
    names = tuple(n for n in GRAD_NAMES if needs_param_grad.get(n))
    is_tensor = isinstance(alpha, torch.Tensor)
    plan = backward_plan(spec, *x.shape, values, n_params, is_tensor, names, grad_out, config)
    grads = allocate_backward(spec, x, len(names), plan)
    run_backward(spec, x, saved, values, alpha, grad_out, grads, plan)
    *grads, rows = grads
    rows = None if rows is None else neuron_rows(rows)
    return (*grads, {name: rows[i] for i, name in enumerate(names)})


def reduce_param_grads(
    rows: torch.Tensor,
    params: dict[str, torch.Tensor],
    n_params: int,
    group_size: int,
) -> dict[str, torch.Tensor]:
    """Sum per-neuron gradients ``rows: (R, N)``, one row per entry of ``params`` (in
    order), into each parameter's shape, deterministically, in one reduction: neuron
    ``n`` belongs to entry ``(n // group_size) % n_params`` of a vector parameter."""
    if not params:
        return {}
    if rows.shape[0] != len(params):
        rows = rows[: len(params)]
    if group_size == 1 and n_params == rows.shape[1]:
        totals = rows  # one neuron per entry: nothing to sum
    else:
        totals = rows.view(len(params), -1, n_params, group_size).sum(dim=(1, 3))
    grads = {}
    for total, (name, param) in zip(totals.unbind(), params.items()):
        if param.numel() != n_params:  # a one-element parameter beside vectors
            total = total.sum()
        if total.shape != param.shape:
            total = total.reshape(param.shape)
        grads[name] = total if total.dtype == param.dtype else total.to(param.dtype)
    return grads
