"""Shared test machinery: tolerances, random cases and the kernel-vs-reference check."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from tether.functional import ALIFSubFunction, LIFSubFunction, PLIFSubFunction
from tether.reference import neuron_reference

# Relative error bound: max|actual - expected| <= tol * max|expected|. Elementwise tensors
# (spike-independent state, grad_x, grad_v_init) use ELEMENT_TOL; parameter gradients, sums
# over T*N terms with cancellation, use PARAM_TOL. Low precision: the kernel and the
# reference both compute in float32 from the same rounded inputs and round their outputs,
# so they differ by about one unit of the output format.
ELEMENT_TOL = {torch.float32: 1e-5, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}
PARAM_TOL = {torch.float32: 1e-4, torch.float16: 2e-3, torch.bfloat16: 1.6e-2}
MIN_MARGIN = 1e-5  # |h - theta| below this may round either way: such a case is redrawn


def assert_close(actual: torch.Tensor, expected: torch.Tensor, tol: float, what: str) -> None:
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != {expected.shape}"
    actual, expected = actual.double().cpu(), expected.double().cpu()
    scale = expected.abs().max().item() if expected.numel() else 0.0
    error = (actual - expected).abs().max().item() if expected.numel() else 0.0
    assert error <= tol * max(scale, 1e-6), f"{what}: max error {error:.3e} vs scale {scale:.3e}"


@dataclass
class Case:
    """One call of a neuron Function; ``param_mode``: 'float', 'scalar' (0-d tensors),
    'neuron' ((F,) vectors over (T, B*F)) or 'channel' ((C,) vectors, group_size H*W)."""

    neuron: str = "lif"  # lif | plif | alif
    n_steps: int = 33
    batch: int = 2
    features: tuple[int, ...] = (37,)
    dtype: torch.dtype = torch.float32
    surrogate_type: int = 0
    soft_reset: bool = False
    detach_reset: bool = True
    param_mode: str = "scalar"
    trainable_alpha: bool = True
    with_init: bool = True
    grad_outputs: tuple[str, ...] = ("spikes", "v_final", "h_seq", "a_final", "a_seq")
    seed: int = 0
    inputs: dict = field(default_factory=dict)

    @property
    def n_neurons(self) -> int:
        return self.batch * math.prod(self.features)

    @property
    def group_size(self) -> int:
        return math.prod(self.features[1:]) if self.param_mode == "channel" else 1

    def make_inputs(self, device: torch.device, seed: int) -> dict:
        g = torch.Generator().manual_seed(seed)

        def rand(*shape, lo=0.0, hi=1.0):
            return (torch.rand(shape, generator=g, dtype=torch.float64) * (hi - lo) + lo).to(device)

        n_params = {
            "float": None,
            "scalar": (),
            "neuron": (math.prod(self.features),),
            "channel": (self.features[0],),
        }[self.param_mode]

        def param(lo, hi, default):
            if n_params is None:
                return default
            return rand(*n_params, lo=lo, hi=hi) if n_params else rand(lo=lo, hi=hi)

        x = torch.randn(self.n_steps, self.n_neurons, generator=g, dtype=torch.float64)
        inputs = {
            "x": (x * 0.6 + 0.3).to(device),
            "v_init": rand(self.n_neurons, lo=-0.5, hi=0.8) if self.with_init else None,
            "decay_v": param(0.6, 0.95, 0.9),
            "threshold": param(0.7, 1.3, 1.0),
            "alpha": rand(lo=1.5, hi=3.0) if self.trainable_alpha else 2.0,
        }
        if self.neuron == "alif":
            inputs.update(
                a_init=rand(self.n_neurons, lo=0.0, hi=1.0) if self.with_init else None,
                decay_a=param(0.5, 0.95, 0.8),
                beta=param(0.1, 0.6, 0.3),
            )
        return inputs

    def call(self, args: dict):
        """Run the tether Function on prepared ``args`` (see ``prepare``)."""
        x = args["x"]
        switches = (self.surrogate_type, self.soft_reset, self.detach_reset, True, self.group_size)
        if self.neuron == "alif":
            out = ALIFSubFunction.apply(
                x, args["v_init"], args["a_init"], args["decay_v"], args["decay_a"],
                args["threshold"], args["beta"], args["alpha"], *switches,
            )  # fmt: skip
            return dict(zip(("spikes", "v_final", "a_final", "h_seq", "a_seq"), out))
        function = PLIFSubFunction if self.neuron == "plif" else LIFSubFunction
        out = function.apply(
            x, args["v_init"], args["decay_v"], args["threshold"], args["alpha"], *switches
        )
        return dict(zip(("spikes", "v_final", "h_seq"), out))

    def reference(self, args: dict) -> dict:
        """The eager reference on prepared ``args``."""
        extra = {}
        if self.neuron == "alif":
            extra = dict(adaptive=True, a_init=args["a_init"], decay_a=args["decay_a"],
                         beta=args["beta"])  # fmt: skip
        out = neuron_reference(
            args["x"], args["v_init"], args["decay_v"], args["threshold"], args["alpha"],
            self.surrogate_type, self.soft_reset, self.detach_reset, self.group_size, **extra,
        )  # fmt: skip
        return {k: v for k, v in out._asdict().items() if v is not None}

    def prepare(self, inputs: dict, truth: bool) -> dict:
        """Leaf tensors requiring grad: x rounded to the case dtype, parameters to float32,
        exactly as the kernel sees them. ``truth``: the reference's copy, in float64 for
        float32 cases (in the case dtype, float32 state, for low precision, as the kernel)."""
        wide = truth and self.dtype == torch.float32
        out = {}
        for name, value in inputs.items():
            if not isinstance(value, torch.Tensor):
                out[name] = value
                continue
            value = value.to(self.dtype if name == "x" else torch.float32)
            out[name] = (value.double() if wide else value).detach().requires_grad_()
        return out


def margin_ok(case: Case, inputs: dict) -> bool:
    """True when no step of the reference is within MIN_MARGIN of its threshold."""
    with torch.no_grad():
        ref = case.reference(case.prepare(inputs, truth=True))
    theta = case_theta(case, inputs, ref)
    return bool((ref["h_seq"].double() - theta).abs().min() > MIN_MARGIN)


def case_theta(case: Case, inputs: dict, ref: dict) -> torch.Tensor:
    n = torch.arange(case.n_neurons, device=ref["h_seq"].device)

    def per_neuron(p):
        if not isinstance(p, torch.Tensor):
            return torch.tensor(p, dtype=torch.float64)
        if p.numel() == 1:
            return p.double().reshape(())
        return p.double()[(n // case.group_size) % p.numel()]

    theta = per_neuron(inputs["threshold"])
    if case.neuron == "alif":
        theta = theta + per_neuron(inputs["beta"]) * ref["a_seq"].double()
    return theta


def check_against_reference(case: Case, device: torch.device) -> None:
    """Forward: spikes equal, state close. Backward: every input's gradient close."""
    for attempt in range(20):
        inputs = case.make_inputs(device, case.seed * 1000 + attempt)
        if margin_ok(case, inputs):
            break
    else:
        raise AssertionError("no tie-free input found in 20 draws")
    tether_in = case.prepare(inputs, truth=False)
    ref_in = case.prepare(inputs, truth=True)
    out = case.call(tether_in)
    ref = case.reference(ref_in)
    assert out["spikes"].dtype == case.dtype
    assert torch.equal(out["spikes"].cpu().double(), ref["spikes"].cpu().double()), "spikes differ"
    tol = ELEMENT_TOL[case.dtype]
    for name in ("v_final", "a_final", "h_seq", "a_seq"):
        if name in out:
            assert_close(out[name], ref[name], tol, name)

    g = torch.Generator().manual_seed(case.seed + 7)
    names = [name for name in case.grad_outputs if name in out and out[name] is not None]
    grads = {name: torch.randn(ref[name].shape, generator=g, dtype=torch.float64) for name in names}
    differentiable = [k for k, v in tether_in.items() if isinstance(v, torch.Tensor)]
    got = torch.autograd.grad(
        [out[n] for n in names],
        [tether_in[k] for k in differentiable],
        [grads[n].to(device, out[n].dtype) for n in names],
        allow_unused=True,
    )
    want = torch.autograd.grad(
        [ref[n] for n in names],
        [ref_in[k] for k in differentiable],
        [grads[n].to(device, ref[n].dtype) for n in names],
        allow_unused=True,
    )
    for name, a, b in zip(differentiable, got, want):
        if b is None:
            assert a is None or not a.abs().any(), f"grad {name} should be zero"
            continue
        assert a is not None, f"grad {name} missing"
        tol = (
            ELEMENT_TOL[case.dtype] if name in ("x", "v_init", "a_init") else PARAM_TOL[case.dtype]
        )
        assert_close(a, b, tol, f"grad {name}")
