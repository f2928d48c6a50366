"""Timing configs on the GPU at hand, runtime side: the kernel calls the tuner times
(``kernel_calls``, shared with the offline sweep in ``tether.benchmark.sweep``) and
``TETHER_AUTOTUNE=1``'s online tuning, a small timing loop over a slice of the space.
Imports neither pandas nor the benchmark package."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch
import triton.testing

from tether.functional import plans
from tether.neurons import NEURONS
from tether.reference import NeuronOutput
from tether.tuning.space import KernelConfig, config_space, default_config, training_forward_config

ONLINE_CANDIDATES = 16
Call = Callable[[], object]


def op_spec(op: str) -> plans.NeuronSpec:
    """The path the benchmark and the tuner time: no traces, no final state."""
    return plans.NeuronSpec(op, NEURONS[op].adaptive, store_traces=False, store_state=False)


def kernel_calls(
    op: str,
    direction: str,
    x: torch.Tensor,
    grad: torch.Tensor,
    params: dict[str, torch.Tensor | float],
    config: KernelConfig,
) -> tuple[Call, Call | None, Callable[[], tuple]]:
    """(the kernel call to time, its training forward or None, ``() -> (spikes, grad_x or
    None)`` for the accuracy check) on ``x, grad: (T, N)``. ``fwd``: the inference forward;
    ``bwd``: the backward, with a gradient for every tensor parameter as in training, after
    a training forward with ``config``'s layout (``training_forward_config``)."""
    spec = op_spec(op)
    x = x.detach()
    params = {k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in params.items()}
    n_params = plans.vector_length(params)
    if direction == "fwd":

        def forward():
            return plans.launch_forward(spec, x, None, None, params, n_params, config, False)

        return forward, None, lambda: (forward()[0].spikes, None)
    train_config = training_forward_config(config)

    def train_forward():
        return plans.launch_forward(spec, x, None, None, params, n_params, train_config, True)

    out, saved = train_forward()
    param_grads = {name: isinstance(value, torch.Tensor) for name, value in params.items()}
    grads = NeuronOutput(grad, None, None, None, None)

    def backward():
        return plans.launch_backward(
            spec, x, saved, params, 2.0, n_params, param_grads, grads, config
        )

    return backward, train_forward, lambda: (out.spikes, backward()[0])


def _time_ms(fn: Call, device: torch.device) -> float:
    """Milliseconds of ``fn``: ``do_bench``'s median on a GPU; one call elsewhere (the
    interpreter, in tests)."""
    if device.type == "cuda":
        return triton.testing.do_bench(fn, warmup=10, rep=30, return_mode="median")
    start = time.perf_counter()
    fn()
    return 1e3 * (time.perf_counter() - start)


def autotune_online(
    op: str,
    direction: str,
    dtype: torch.dtype,
    n_steps: int,
    n_neurons: int,
    device: torch.device,
) -> KernelConfig:
    """``TETHER_AUTOTUNE=1`` on a GPU with no table entry: time a slice of the space at
    this shape on random data and return the fastest (correctness of every config in the
    space is checked offline, in CI and by the sweep)."""
    candidates = [
        c for c in config_space(direction, dtype) if c.num_stages == 1 and c.pack_bits == 32
    ][:ONLINE_CANDIDATES]
    g = torch.Generator(device=device).manual_seed(0)
    x = (torch.randn(n_steps, n_neurons, device=device, generator=g) * 0.6 + 0.3).to(dtype)
    grad = torch.randn(n_steps, n_neurons, device=device, generator=g).to(dtype)
    params = NEURONS[op].bench_params(n_neurons, g, requires_grad=False)
    best, best_ms = default_config(direction, dtype, op, n_steps), float("inf")
    for config in candidates:
        kernel, train_forward, _ = kernel_calls(op, direction, x, grad, params, config)
        ms = _time_ms(kernel, device)
        if train_forward is not None:
            ms += _time_ms(train_forward, device)
        if ms < best_ms:
            best, best_ms = config, ms
    return best
