"""Shared test machinery: tolerances, random cases and the kernel-vs-reference check."""

from __future__ import annotations

import itertools
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch

from tether import functional
from tether.neurons import NEURONS, PARAMS, NeuronDef
from tether.tolerances import TOLERANCES


def cover(*axes: dict[str, object]) -> list:
    """``pytest.param`` rows of the product of ``axes`` (``{id: value}`` each): all of it on
    a GPU; under the interpreter (a second or so a kernel call) the half whose value indices
    sum to an even number, which still holds every pair of values of any two axes (a third
    axis of two or more values sets the parity)."""
    if len(axes) < 3 or any(len(axis) < 2 for axis in axes):
        raise ValueError("cover: three or more axes of two or more values each")
    rows = []
    for picks in itertools.product(*(list(enumerate(axis.items())) for axis in axes)):
        if torch.cuda.is_available() or sum(i for i, _ in picks) % 2 == 0:
            ids, values = zip(*(item for _, item in picks))
            rows.append(pytest.param(*values, id="-".join(ids)))
    return rows


STATE_RANGES = {"v": (-0.5, 0.8), "a": (0.0, 1.0)}  # initial states, by state name
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

    neuron: str = "lif"  # an op of tether.neurons.NEURONS
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

    @property
    def definition(self) -> NeuronDef:
        return NEURONS[self.neuron]

    @property
    def n_neurons(self) -> int:
        return self.batch * math.prod(self.features)

    @property
    def group_size(self) -> int:
        return math.prod(self.features[1:]) if self.param_mode == "channel" else 1

    def make_inputs(self, device: torch.device, seed: int) -> dict:
        """x: (T, N) float64; initial states (N,) (or None); parameters by ``param_mode``
        from each parameter's test range; alpha."""
        g = torch.Generator().manual_seed(seed)

        def rand(*shape, lo=0.0, hi=1.0):
            return (torch.rand(shape, generator=g, dtype=torch.float64) * (hi - lo) + lo).to(device)

        n_params = {
            "float": None,
            "scalar": (),
            "neuron": (math.prod(self.features),),
            "channel": (self.features[0],),
        }[self.param_mode]
        x = torch.randn(self.n_steps, self.n_neurons, generator=g, dtype=torch.float64)
        inputs = {"x": (x * 0.6 + 0.3).to(device)}
        for state in self.definition.states:
            lo, hi = STATE_RANGES[state]
            inputs[f"{state}_init"] = rand(self.n_neurons, lo=lo, hi=hi) if self.with_init else None
        for name in self.definition.params:
            lo, hi = PARAMS[name].test
            inputs[name] = PARAMS[name].value if n_params is None else rand(*n_params, lo=lo, hi=hi)
        inputs["alpha"] = rand(lo=1.5, hi=3.0) if self.trainable_alpha else 2.0
        return inputs

    def call(self, args: dict) -> dict:
        """Run the tether Function on prepared ``args`` (see ``prepare``): outputs by name."""
        neuron = self.definition
        function = getattr(functional, neuron.function)
        switches = (self.surrogate_type, self.soft_reset, self.detach_reset, True, self.group_size)
        arguments = [args[name] for name in neuron.arguments]
        out = function.apply(args["x"], *arguments, args["alpha"], *switches)
        return dict(zip(neuron.outputs, out))

    def reference(self, args: dict) -> dict:
        """The eager reference on prepared ``args``."""
        params = {name: args[name] for name in self.definition.params}
        states = {f"{s}_init": args[f"{s}_init"] for s in self.definition.states}
        out = self.definition.reference(
            args["x"], params, args["alpha"], surrogate_type=self.surrogate_type,
            soft_reset=self.soft_reset, detach_reset=self.detach_reset,
            group_size=self.group_size, **states,
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
    if case.definition.adaptive:
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
    tol = TOLERANCES[case.dtype]
    for name in ("v_final", "a_final", "h_seq", "a_seq"):
        if name in out:
            assert_close(out[name], ref[name], tol.element, name)

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
        elementwise = name == "x" or name.endswith("_init")
        assert_close(a, b, tol.element if elementwise else tol.param, f"grad {name}")


ROOT = Path(__file__).resolve().parents[1]

# DDP tests run on two CPU processes (gloo) everywhere and on two GPUs (NCCL) where there are.
DDP_BACKENDS = pytest.mark.parametrize(
    "cuda",
    [
        False,
        pytest.param(
            True,
            marks=pytest.mark.skipif(torch.cuda.device_count() < 2, reason="needs two GPUs"),
        ),
    ],
    ids=["gloo", "nccl"],
)


def torchrun(world: int, *args: str) -> None:
    """``torchrun --nproc_per_node=world ARGS`` from the repository root in fresh processes
    (none of pytest's state leaks into the ranks, and a hung rank times out instead of
    hanging the run); fails with the ranks' stderr."""
    command = [sys.executable, "-m", "torch.distributed.run", f"--nproc_per_node={world}", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
