"""Implementations a benchmark compares, declared once: tether (tuned), tether untuned (the
default config), tether captured in a CUDA graph (``graphed``: the GPU time without the
host's), tether compiled with ``mode="reduce-overhead"`` (``tether-ro``: inductor and CUDA
graphs, what a compiled training step pays a call), eager, torch.compile of the eager
reference and, when installed, SpikingJelly and snnTorch (LIF only).

Every provider turns a ``Problem`` into a callable that runs one forward (``fwd``, under
``no_grad``) or one forward plus ``torch.autograd.grad`` of the spikes (``fwdbwd``) and
returns ``(spikes, grad_x or None)``, so that each is checked against the reference before
it is timed. Gradients are taken with ``autograd.grad`` (no accumulation into ``.grad``).
"""

from __future__ import annotations

import dataclasses
import importlib.util
from collections.abc import Callable
from dataclasses import dataclass

import torch

from tether import functional
from tether.neurons import NEURONS
from tether.tuning.table import untuned

MODES = ("fwd", "fwdbwd")
CORE_IMPLS = ("tether", "untuned", "graphed", "tether-ro", "eager", "compile")
PEER_IMPLS = {"spikingjelly": "spikingjelly", "snntorch": "snntorch"}
ALPHA = 2.0  # Arctan alpha; SpikingJelly's ATan and snnTorch's atan take 2 * ALPHA
MAX_COMPILE_STEPS = 64  # compiling the unrolled loop beyond this takes minutes

Run = Callable[[], tuple[torch.Tensor, torch.Tensor | None]]


@dataclass
class Problem:
    """Inputs of one benchmark point: ``x, grad: (T, N)`` and the op's parameters."""

    op: str
    mode: str
    x: torch.Tensor
    grad: torch.Tensor
    params: dict[str, torch.Tensor | float]

    @classmethod
    def make(
        cls, op: str, mode: str, n_steps: int, n_neurons: int, dtype: torch.dtype, device
    ) -> Problem:
        """Seeded by the shape; parameters from the registry (``NeuronDef.bench_params``)."""
        g = torch.Generator(device=device).manual_seed(n_steps * 7919 + n_neurons)
        x = torch.randn(n_steps, n_neurons, device=device, generator=g, dtype=torch.float32)
        x = (x * 0.6 + 0.3).to(dtype)
        grad = torch.randn(n_steps, n_neurons, device=device, generator=g).to(dtype)
        train = mode == "fwdbwd"
        params = NEURONS[op].bench_params(n_neurons, g, requires_grad=train)
        return cls(op, mode, x.requires_grad_(train), grad, params)

    @property
    def grad_inputs(self) -> list[torch.Tensor]:
        """x and every parameter that takes a gradient."""
        tensors = [p for p in self.params.values() if isinstance(p, torch.Tensor)]
        return [self.x, *tensors]


def _wrap(problem: Problem, spikes_of: Callable[[], torch.Tensor]) -> Run:
    """fwd: spikes under no_grad; fwdbwd: spikes and autograd.grad w.r.t. x and params."""
    if problem.mode == "fwd":

        def run_fwd():
            with torch.no_grad():
                return spikes_of(), None

        return run_fwd

    def run_fwdbwd():
        spikes = spikes_of()
        grads = torch.autograd.grad(spikes, problem.grad_inputs, problem.grad)
        return spikes.detach(), grads[0]  # detached: the graph dies here

    return run_fwdbwd


def _reference_call(problem: Problem) -> Callable[[torch.Tensor], torch.Tensor]:
    """``x -> spikes`` of the eager reference (from zero state)."""
    neuron, params = NEURONS[problem.op], problem.params
    return lambda x: neuron.reference(x, params, ALPHA).spikes


def eager(problem: Problem) -> Run:
    reference = _reference_call(problem)
    return _wrap(problem, lambda: reference(problem.x))


def compiled(problem: Problem) -> Run:
    reference = torch.compile(_reference_call(problem))
    return _wrap(problem, lambda: reference(problem.x))


# tether's switches after alpha: Arctan, hard reset, detached reset, no traces, group size 1,
# no final state (the baselines return spikes only); initial states are None (zeros)
SWITCHES = (0, False, True, False, 1, False)


def tether_impl(problem: Problem) -> Run:
    neuron, p = NEURONS[problem.op], problem.params
    function = getattr(functional, neuron.function)
    args = (problem.x, *(p.get(name) for name in neuron.arguments), ALPHA)
    return _wrap(problem, lambda: function.call(*args, *SWITCHES)[0])


def compiled_tether(problem: Problem, mode: str = "reduce-overhead") -> Run:
    """tether's call as ``tether_impl`` makes it, compiled whole (``fullgraph``) with
    ``torch.compile(mode=mode)``; the backward is AOTAutograd's compiled one. Each call
    starts a new CUDA-graph step (``cudagraph_mark_step_begin``): the previous call's outputs
    are not read after it."""
    neuron, p = NEURONS[problem.op], problem.params
    function = getattr(functional, neuron.function)

    def call(x, *params):
        return function.call(x, *params, ALPHA, *SWITCHES)[0]

    step = torch.compile(call, mode=mode, fullgraph=True)
    params = [p.get(name) for name in neuron.arguments]

    def spikes():
        torch.compiler.cudagraph_mark_step_begin()
        return step(problem.x, *params)

    return _wrap(problem, spikes)


def untuned_impl(problem: Problem) -> Run:
    """tether with the default config instead of the winners table (``table.untuned``)."""
    tuned = tether_impl(problem)

    def run():
        with untuned():
            return tuned()

    return run


def capture(step: Callable[[], object]) -> tuple[torch.cuda.CUDAGraph, object]:
    """Warm ``step`` up on a side stream (plans, compilation), as PyTorch's capture guide
    asks, then capture one call on the current device: ``(graph, its outputs)``."""
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(2):
            step()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        outputs = step()
    return graph, outputs


def graphed_impl(problem: Problem) -> Run:
    """tether's call captured once in a CUDA graph and replayed: what a training loop under
    CUDA graphs pays (no host time per call). The outputs are the graph's static tensors."""

    # Fresh leaves: an autograd node of a leaf that other runs created on the default stream
    # (and their outputs keep alive) would make the captured backward wait on that stream.
    def fresh(t):
        return t.detach().clone().requires_grad_(t.requires_grad)

    params = {k: fresh(v) if isinstance(v, torch.Tensor) else v for k, v in problem.params.items()}
    run = tether_impl(dataclasses.replace(problem, x=fresh(problem.x), params=params))
    with torch.cuda.device(problem.x.device):
        graph, outputs = capture(run)

    def replay():
        graph.replay()
        return outputs

    return replay


def spikingjelly(problem: Problem) -> Run:
    from spikingjelly.activation_based import neuron, surrogate

    node = neuron.LIFNode(
        tau=1.0 / (1.0 - problem.params["decay_v"]),
        decay_input=False,
        v_threshold=problem.params["threshold"],
        v_reset=0.0,
        surrogate_function=surrogate.ATan(alpha=2 * ALPHA),
        detach_reset=True,
        step_mode="m",
    ).to(problem.x.device)

    def spikes():
        node.reset()
        return node(problem.x)

    return _wrap(problem, spikes)


def snntorch(problem: Problem) -> Run:
    import snntorch as snn
    from snntorch import surrogate

    leaky = snn.Leaky(
        beta=problem.params["decay_v"],
        threshold=problem.params["threshold"],
        spike_grad=surrogate.atan(alpha=2 * ALPHA),
        reset_mechanism="zero",
    ).to(problem.x.device)

    def spikes():
        mem = torch.zeros_like(problem.x[0])
        out = []
        for x_t in problem.x:
            spike, mem = leaky(x_t, mem)
            out.append(spike)
        return torch.stack(out)

    return _wrap(problem, spikes)


PROVIDERS: dict[str, Callable[[Problem], Run]] = {
    "tether": tether_impl,
    "untuned": untuned_impl,
    "graphed": graphed_impl,
    "tether-ro": compiled_tether,
    "eager": eager,
    "compile": compiled,
    "spikingjelly": spikingjelly,
    "snntorch": snntorch,
}


def skip_reason(impl: str, op: str, n_steps: int, device: torch.device) -> str | None:
    """Why an implementation does not run at this point, or None."""
    if impl in ("graphed", "tether-ro") and device.type != "cuda":
        return "CUDA graphs need a CUDA device"
    if impl in PEER_IMPLS:
        if importlib.util.find_spec(PEER_IMPLS[impl]) is None:
            return f"{impl} is not installed (pip install '.[compare]')"
        if op != "lif":
            return f"{impl} has no {op}"
    if impl == "compile" and n_steps > MAX_COMPILE_STEPS:
        return f"torch.compile of a {n_steps}-step loop takes minutes"
    return None
