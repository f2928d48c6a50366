"""What LIF, PLIF and ALIF share: input checks, kernel launchers and the autograd mechanics.

``forward`` and ``backward`` are called by the thin ``NeuronFunction`` classes in ``lif.py``,
``plif.py`` and ``alif.py``. CUDA tensors (and CPU tensors under ``TRITON_INTERPRET=1``) run
the Triton kernels; other tensors, and float64 anywhere, run the eager reference inside the
Function so that its gradients are autograd's. A call costs checks, one dict lookup for its
``Plan``, the output allocations and one launch of a cached binary; ``NeuronFunction.call``
also skips autograd when no graph would be recorded.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from tether.kernels import INTERPRET, neuron_bwd_kernel, neuron_fwd_kernel
from tether.kernels.launch import Launcher
from tether.reference import NeuronOutput, neuron_reference
from tether.surrogates import check_surrogate_id
from tether.tuning import table
from tether.tuning.space import PACK_DTYPES, KernelConfig
from tether.tuning.table import select_config, select_training_configs

KERNEL_DTYPES = (torch.float32, torch.float16, torch.bfloat16)
STATE_PARAMS = ("decay_v", "threshold", "decay_a", "beta")
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
    store_final: bool = True  # write v_final (and a_final); off when the caller drops them


class _InferenceContext:
    """Stands in for autograd's ``ctx`` when no graph is recorded."""

    next_functions = ()

    def __init__(self, function: type, n_inputs: int) -> None:
        self._forward_cls = function
        self.needs_input_grad = (False,) * n_inputs

    def set_materialize_grads(self, value: bool) -> None:
        pass


class NeuronFunction(torch.autograd.Function):
    """Base of the neuron Functions: ``apply`` as any Function, and ``call``."""

    @classmethod
    @torch.compiler.disable  # opaque to torch.compile: Triton launches are not traceable
    def call(cls, *args):
        """``apply(*args)``, but when autograd would record nothing (grad mode off, or no
        tensor input requires grad) the forward runs directly: same outputs, without
        autograd's per-call bookkeeping, which costs more host time than a small layer's
        kernel. The modules call this. Inside a ``torch.compile``d model it is a graph
        break: the neuron runs as its fused kernels, the layers around it compile."""
        if torch.is_grad_enabled() and any(
            isinstance(a, torch.Tensor) and a.requires_grad for a in args
        ):
            return cls.apply(*args)
        return cls.forward(_InferenceContext(cls, len(args)), *args)


class Plan(NamedTuple):
    """What the static facts of a call fix, computed once per distinct call (``forward`` and
    ``backward`` build the keys of ``_PLANS``): the launch config, the grid, the kernel's
    constexprs and, once launched, its compiled binary."""

    config: KernelConfig
    grid: int
    constexprs: dict[str, object]
    strides: tuple[int, ...]  # of the four state parameters: 0 = one value for all neurons
    binaries: dict  # the launcher's compiled kernel for this plan, by device
    bwd_config: KernelConfig | None = None  # training forward: the backward to pair with


class Saved(NamedTuple):
    """What the training forward keeps for the backward."""

    packed: torch.Tensor  # (ceil(T / pack_bits), N) int8|int16|int32
    ckpt_v: torch.Tensor  # (ceil(T / chunk), N) float32
    ckpt_a: torch.Tensor | None


class Grads(NamedTuple):
    x: torch.Tensor | None
    v_init: torch.Tensor | None
    a_init: torch.Tensor | None
    params: dict[str, torch.Tensor | None]
    alpha: torch.Tensor | None


def uses_kernels(x: torch.Tensor) -> bool:
    """CUDA tensors, or CPU tensors under the interpreter, in a kernel dtype."""
    on_kernel_device = x.is_cuda or (INTERPRET and x.device.type == "cpu")
    return on_kernel_device and x.dtype in KERNEL_DTYPES


def _check_tensor(name: str, value: object, device: torch.device) -> torch.Tensor:
    if not isinstance(value, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(value).__name__}")
    if value.device != device:
        raise ValueError(f"{name} is on {value.device}, expected x_seq's device {device}")
    if not value.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got {value.dtype}")
    return value


def check_inputs(
    spec: NeuronSpec,
    x: object,
    states: dict[str, object],
    params: dict[str, object],
    alpha: object,
) -> int:
    """Validate a call; return P, the common length of the vector parameters (1 if none).

    ``states`` and ``params`` map the caller's argument names to values, so errors name
    what the user passed.
    """
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x_seq must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 2:
        raise ValueError(f"x_seq must have shape (T, N), got shape {tuple(x.shape)}")
    if x.shape[0] < 1 or x.shape[1] < 1:
        raise ValueError(f"x_seq must have T >= 1 and N >= 1, got shape {tuple(x.shape)}")
    if x.dtype not in KERNEL_DTYPES + (torch.float64,):
        raise TypeError(f"x_seq must be float32, float16, bfloat16 or float64, got {x.dtype}")
    n_neurons = x.shape[1]
    for name, state in states.items():
        if state is None:
            continue
        _check_tensor(name, state, x.device)
        if tuple(state.shape) != (n_neurons,):
            raise ValueError(
                f"{name} must have shape (N,) = ({n_neurons},) to match x_seq, "
                f"got {tuple(state.shape)}"
            )
    check_surrogate_id(spec.surrogate_type)
    if not isinstance(spec.group_size, int) or spec.group_size < 1:
        raise ValueError(f"group_size must be an int >= 1, got {spec.group_size!r}")
    n_params = 1
    for name, value in {**params, "alpha": alpha}.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            continue
        _check_tensor(name, value, x.device)
        if value.numel() == 1:
            continue
        if name == "alpha":
            raise ValueError(f"alpha must be a float or a one-element tensor, got {value.shape}")
        if value.ndim != 1:
            raise ValueError(f"{name} must be a scalar or a 1-D vector, got shape {value.shape}")
        if n_params not in (1, value.numel()):
            raise ValueError(
                f"{name} has {value.numel()} entries but another parameter has {n_params}: "
                "vector parameters must have one common length"
            )
        n_params = value.numel()
    if n_neurons % (n_params * spec.group_size):
        raise ValueError(
            f"x_seq has N={n_neurons} neurons, not a multiple of the parameter length "
            f"({n_params}) times group_size ({spec.group_size})"
        )
    return n_params


def _param_values(params: dict[str, Param]) -> list[torch.Tensor | float]:
    """The four state parameters (``STATE_PARAMS`` order) as kernel arguments: flat
    contiguous tensors or floats; absent ones are 0.0."""
    values = []
    for name in STATE_PARAMS:
        value = params.get(name, 0.0)
        if isinstance(value, torch.Tensor):
            values.append((value if value.ndim == 1 else value.reshape(-1)).contiguous())
        else:
            values.append(float(value))
    return values


def _param_switches(values: list[torch.Tensor | float]) -> tuple[tuple[int, ...], dict]:
    """The parameters' strides (0: one value for all neurons) and ``*_IS_TENSOR`` constexprs."""
    strides = tuple(int(isinstance(v, torch.Tensor) and v.numel() > 1) for v in values)
    is_tensor = {
        f"{name.upper()}_IS_TENSOR": isinstance(v, torch.Tensor)
        for name, v in zip(STATE_PARAMS, values)
    }
    return strides, is_tensor


def vector_length(params: dict[str, Param] | list[Param]) -> int:
    """P: the length of the vector parameters (1 when all are scalars)."""
    values = params.values() if isinstance(params, dict) else params
    return max((p.numel() for p in values if isinstance(p, torch.Tensor)), default=1)


def _static_class(value: object) -> object:
    """What a cached plan and binary depend on in one input: a tensor's dtype, device, whether
    it has one element and whether its address is 16-byte aligned; else the type."""
    if isinstance(value, torch.Tensor):
        return value.dtype, value.device, value.numel() == 1, value.data_ptr() % 16 == 0
    return type(value)


def _ptr(t: torch.Tensor | None, x: torch.Tensor) -> torch.Tensor:
    """A kernel pointer argument: ``t``, or ``x`` for an unused one (never read)."""
    return x if t is None else t


def _cdiv(a: int, b: int) -> int:
    """Ceiling division on the host (``triton.cdiv`` is a JIT callable: ~9 us a call)."""
    return -(-a // b)


_launch_fwd = Launcher(neuron_fwd_kernel)
_launch_bwd = Launcher(neuron_bwd_kernel)
# Plans of the autograd path, by everything a plan and its binary depend on (``forward`` and
# ``backward`` build the keys): one dict lookup per call. A plan keeps its binary, so the
# key must fix every argument's class (outputs are fresh, hence 16-byte aligned).
_PLANS: dict[tuple, Plan] = {}


def _forward_plan(
    spec: NeuronSpec,
    x: torch.Tensor,
    has_v_init: bool,
    has_a_init: bool,
    values: list,
    config: KernelConfig,
    save_for_backward: bool,
) -> Plan:
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
        "STORE_FINAL": spec.store_final,
        "EVEN_STEPS": x.shape[0] % config.chunk == 0,
        "BLOCK": config.block,
        "CHUNK": config.chunk,
        "PACK_BITS": config.pack_bits,
    }
    return Plan(config, _cdiv(x.shape[1], config.block), constexprs, strides, {})


def _run_forward(
    spec: NeuronSpec,
    x: torch.Tensor,
    v_init: torch.Tensor | None,
    a_init: torch.Tensor | None,
    values: list,
    n_params: int,
    plan: Plan,
    save_for_backward: bool,
    cached: bool = False,
) -> tuple[NeuronOutput, Saved | None]:
    """``cached``: ``plan`` comes from ``_PLANS``, so its calls share one binary."""
    n_steps, n_neurons = x.shape
    config = plan.config
    spikes = torch.empty_like(x)
    h_seq = torch.empty_like(x) if spec.store_traces else None
    a_seq = torch.empty_like(x) if spec.store_traces and spec.adaptive else None
    v_final = a_final = None
    if spec.store_final:
        v_final = torch.empty(n_neurons, device=x.device, dtype=torch.float32)
        a_final = torch.empty_like(v_final) if spec.adaptive else None
    saved = None
    if save_for_backward:
        n_chunks = _cdiv(n_steps, config.chunk)
        saved = Saved(
            packed=torch.empty(
                _cdiv(n_steps, config.pack_bits),
                n_neurons,
                device=x.device,
                dtype=PACK_DTYPES[config.pack_bits],
            ),
            ckpt_v=torch.empty(n_chunks, n_neurons, device=x.device, dtype=torch.float32),
            ckpt_a=torch.empty(n_chunks, n_neurons, device=x.device, dtype=torch.float32)
            if spec.adaptive
            else None,
        )

    args = (
        x,
        spikes,
        _ptr(h_seq, x),
        _ptr(a_seq, x),
        _ptr(v_init, x),
        _ptr(a_init, x),
        _ptr(v_final, x),
        _ptr(a_final, x),
        _ptr(saved and saved.packed, x),
        _ptr(saved and saved.ckpt_v, x),
        _ptr(saved and saved.ckpt_a, x),
        *values,
        *plan.strides,
        n_steps,
        n_neurons,
        spec.group_size,
        n_params,
    )
    binaries = plan.binaries if cached else None
    _launch_fwd(plan.grid, args, plan.constexprs, config.num_warps, config.num_stages, binaries)
    return NeuronOutput(spikes, v_final, a_final, h_seq, a_seq), saved


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
    values = _param_values(params)
    plan = _forward_plan(
        spec, x, v_init is not None, a_init is not None, values, config, save_for_backward
    )
    return _run_forward(spec, x, v_init, a_init, values, n_params, plan, save_for_backward)


def _backward_plan(
    spec: NeuronSpec,
    x: torch.Tensor,
    values: list,
    alpha_is_tensor: bool,
    grad_names: list[str],
    grad_out: NeuronOutput,
    config: KernelConfig,
) -> Plan:
    strides, is_tensor = _param_switches(values)
    rows = {name: i for i, name in enumerate(grad_names)}
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
        "DECAY_V_GRAD_ROW": rows.get("decay_v", -1),
        "THRESHOLD_GRAD_ROW": rows.get("threshold", -1),
        "DECAY_A_GRAD_ROW": rows.get("decay_a", -1),
        "BETA_GRAD_ROW": rows.get("beta", -1),
        "ALPHA_GRAD_ROW": rows.get("alpha", -1),
        "BLOCK": config.block,
        "CHUNK": config.chunk,
        "PACK_BITS": config.pack_bits,
    }
    return Plan(config, _cdiv(x.shape[1], config.block), constexprs, strides, {})


def _run_backward(
    spec: NeuronSpec,
    x: torch.Tensor,
    saved: Saved,
    values: list,
    alpha: torch.Tensor | float,
    n_params: int,
    grad_names: list[str],
    grad_out: NeuronOutput,
    plan: Plan,
    cached: bool = False,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor]:
    """``cached``: ``plan`` comes from ``_PLANS``, so its calls share one binary. The last
    output holds one row of per-neuron gradients per name in ``grad_names``: (R, N)."""
    n_steps, n_neurons = x.shape
    grad_x = torch.empty_like(x)
    grad_v_init = torch.empty(n_neurons, device=x.device, dtype=torch.float32)
    grad_a_init = torch.empty_like(grad_v_init) if spec.adaptive else None
    grad_params = torch.empty(
        max(len(grad_names), 1), n_neurons, device=x.device, dtype=torch.float32
    )

    args = (
        x,
        saved.packed,
        saved.ckpt_v,
        _ptr(saved.ckpt_a, x),
        _ptr(grad_out.spikes, x),
        _ptr(grad_out.h_seq, x),
        _ptr(grad_out.a_seq, x),
        _ptr(grad_out.v_final, x),
        _ptr(grad_out.a_final, x),
        grad_x,
        grad_v_init,
        _ptr(grad_a_init, x),
        grad_params,
        *values,
        alpha,
        *plan.strides,
        n_steps,
        n_neurons,
        spec.group_size,
        n_params,
    )
    config = plan.config
    binaries = plan.binaries if cached else None
    _launch_bwd(plan.grid, args, plan.constexprs, config.num_warps, config.num_stages, binaries)
    return grad_x, grad_v_init, grad_a_init, grad_params


def _grad_names(needs_param_grad: dict[str, bool]) -> list[str]:
    return [name for name in (*STATE_PARAMS, "alpha") if needs_param_grad.get(name)]


def _kernel_alpha(alpha: Param) -> torch.Tensor | float:
    return alpha.reshape(-1) if isinstance(alpha, torch.Tensor) else float(alpha)


def _contiguous_grads(grad_out: NeuronOutput) -> NeuronOutput:
    return NeuronOutput(*(None if g is None else g.contiguous() for g in grad_out))


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
    values, alpha = _param_values(params), _kernel_alpha(alpha)
    grad_out, grad_names = _contiguous_grads(grad_out), _grad_names(needs_param_grad)
    is_tensor = isinstance(alpha, torch.Tensor)
    plan = _backward_plan(spec, x, values, is_tensor, grad_names, grad_out, config)
    *grads, rows = _run_backward(
        spec, x, saved, values, alpha, n_params, grad_names, grad_out, plan
    )
    return (*grads, {name: rows[i] for i, name in enumerate(grad_names)})


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


def forward(
    ctx,
    spec: NeuronSpec,
    x: torch.Tensor,
    v_init: torch.Tensor | None,
    a_init: torch.Tensor | None,
    params: dict[str, Param],
    alpha: Param,
    needs_grad: dict[str, bool],
) -> NeuronOutput:
    """The forward of every neuron Function. ``params`` uses the kernel's names
    (``decay_v, threshold, decay_a, beta``); ``needs_grad`` says which inputs need a
    gradient (keys ``x, v_init, a_init``, the parameter names and ``alpha``)."""
    ctx.set_materialize_grads(False)
    ctx.spec = spec
    if not uses_kernels(x):
        return _reference_forward(ctx, spec, x, v_init, a_init, params, alpha, needs_grad)
    x = x.contiguous()
    v_init = None if v_init is None else v_init.contiguous()
    a_init = None if a_init is None else a_init.contiguous()
    values = _param_values(params)
    n_params = vector_length(values)
    n_steps, n_neurons = x.shape
    # Under no_grad autograd records no graph (no next_functions): nothing to save.
    training = len(getattr(ctx, "next_functions", (None,))) > 0 and any(needs_grad.values())
    untuned = table.is_untuned()
    key = (
        "fwd",
        spec,
        training,
        untuned,
        n_steps,
        n_neurons,
        n_params,
        *map(_static_class, (x, v_init, a_init, *values)),
    )
    plan = _PLANS.get(key)
    if plan is None:
        if training:
            config, bwd_config = select_training_configs(
                spec.op, x.dtype, n_steps, n_neurons, x.device
            )
        else:
            config = select_config(spec.op, "fwd", x.dtype, n_steps, n_neurons, x.device)
            bwd_config = None
        plan = _forward_plan(
            spec, x, v_init is not None, a_init is not None, values, config, training
        )
        plan = _PLANS[key] = plan._replace(bwd_config=bwd_config)
    out, saved = _run_forward(
        spec, x, v_init, a_init, values, n_params, plan, training, cached=True
    )
    if training:
        tensor_params = [
            params[name] for name in STATE_PARAMS if isinstance(params.get(name), torch.Tensor)
        ]
        tensor_alpha = [alpha] if isinstance(alpha, torch.Tensor) else []
        ctx.save_for_backward(x, *saved, *tensor_params, *tensor_alpha)
        ctx.bwd_config = plan.bwd_config
        ctx.param_kinds = {
            name: isinstance(params.get(name), torch.Tensor) for name in STATE_PARAMS
        }
        ctx.float_params = {n: v for n, v in params.items() if not isinstance(v, torch.Tensor)}
        ctx.float_alpha = None if tensor_alpha else alpha
        ctx.n_params = n_params
        ctx.needs_grad = needs_grad
        ctx.state_dtypes = (
            None if v_init is None else v_init.dtype,
            None if a_init is None else a_init.dtype,
        )
    return out


def backward(ctx, grad_out: NeuronOutput) -> Grads:
    """The backward of every neuron Function: gradients for all inputs that need one."""
    spec: NeuronSpec = ctx.spec
    if hasattr(ctx, "reference"):
        return _reference_backward(ctx, grad_out)
    x, packed, ckpt_v, ckpt_a, *rest = ctx.saved_tensors
    params: dict[str, Param] = dict(ctx.float_params)
    for name in STATE_PARAMS:
        if ctx.param_kinds[name]:
            params[name] = rest.pop(0)
    alpha = ctx.float_alpha if ctx.float_alpha is not None else rest.pop(0)
    needs = ctx.needs_grad
    values, kernel_alpha = _param_values(params), _kernel_alpha(alpha)
    grad_out, grad_names = _contiguous_grads(grad_out), _grad_names(needs)
    config = ctx.bwd_config
    key = (
        "bwd",
        spec,
        config,
        *x.shape,
        ctx.n_params,
        tuple(grad_names),
        *map(_static_class, (x, *values, kernel_alpha, *grad_out)),
    )
    plan = _PLANS.get(key)
    if plan is None:
        alpha_is_tensor = isinstance(kernel_alpha, torch.Tensor)
        plan = _PLANS[key] = _backward_plan(
            spec, x, values, alpha_is_tensor, grad_names, grad_out, config
        )
    saved = Saved(packed, ckpt_v, ckpt_a)
    grad_x, grad_v_init, grad_a_init, rows = _run_backward(
        spec, x, saved, values, kernel_alpha, ctx.n_params, grad_names, grad_out, plan, cached=True
    )
    learned = {name: params[name] if name != "alpha" else alpha for name in grad_names}
    grads = reduce_param_grads(rows, learned, ctx.n_params, spec.group_size)
    v_dtype, a_dtype = ctx.state_dtypes
    return Grads(
        x=grad_x if needs["x"] else None,
        v_init=grad_v_init.to(v_dtype) if needs.get("v_init") else None,
        a_init=grad_a_init.to(a_dtype) if needs.get("a_init") else None,
        params={name: grads.get(name) for name in STATE_PARAMS},
        alpha=grads.get("alpha"),
    )


def _reference_forward(ctx, spec, x, v_init, a_init, params, alpha, needs_grad) -> NeuronOutput:
    """Run the eager reference, keeping its graph for ``_reference_backward``."""
    inputs = {"x": x, "v_init": v_init, "a_init": a_init, **params, "alpha": alpha}
    leaves = {
        name: value.detach().requires_grad_(needs_grad.get(name, False))
        for name, value in inputs.items()
        if isinstance(value, torch.Tensor)
    }
    inputs.update(leaves)
    with torch.enable_grad():
        out = neuron_reference(
            inputs["x"],
            inputs["v_init"],
            inputs["decay_v"],
            inputs["threshold"],
            inputs["alpha"],
            spec.surrogate_type,
            spec.soft_reset,
            spec.detach_reset,
            spec.group_size,
            adaptive=spec.adaptive,
            a_init=inputs["a_init"],
            decay_a=inputs.get("decay_a", 0.0),
            beta=inputs.get("beta", 0.0),
        )
    if not spec.store_traces:
        out = out._replace(h_seq=None, a_seq=None)
    if not spec.store_final:
        out = out._replace(v_final=None, a_final=None)
    ctx.reference = (leaves, out)
    return NeuronOutput(*(None if t is None else t.detach() for t in out))


def _reference_backward(ctx, grad_out: NeuronOutput) -> Grads:
    leaves, out = ctx.reference
    pairs = [
        (o, g) for o, g in zip(out, grad_out) if o is not None and g is not None and o.requires_grad
    ]
    wanted = {name: leaf for name, leaf in leaves.items() if leaf.requires_grad}
    grads = dict.fromkeys(wanted)
    if pairs and wanted:
        outputs, grad_outputs = zip(*pairs)
        computed = torch.autograd.grad(
            outputs, list(wanted.values()), grad_outputs, allow_unused=True
        )
        grads = dict(zip(wanted, computed))
    return Grads(
        x=grads.get("x"),
        v_init=grads.get("v_init"),
        a_init=grads.get("a_init"),
        params={name: grads.get(name) for name in STATE_PARAMS},
        alpha=grads.get("alpha"),
    )
