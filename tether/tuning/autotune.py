"""Tuning through Triton's autotuner, runtime side: ``TETHER_AUTOTUNE=1``'s online tuning and
the timing of the offline sweep (``tether.benchmark.sweep``) run the same ``triton.autotune``.

- Configs: ``config_space`` as ``triton.Config`` lists (``KernelConfig.to_triton``: the
  kernels' ``BLOCK``, ``CHUNK``, ``PACK_BITS``, ``PREFETCH``, ``num_warps``, ``num_stages``).
  ``fwd_train`` (the forward of a training step) is tuned for one backward config ``bwd``:
  its space has ``bwd``'s chunk and pack_bits (offline only: the sweep).
- Pruning (``prune``): configs that cannot fit the shape bucket, and the configs the offline
  accuracy guard rejected; the untuned default always stays, so the winner is never a config
  slower than the default by the tuner's own timing.
- Key (``KEY``): the GPU, dtype, T and N buckets, the neuron's switches and the kernel hash.
- Persistence: Triton's own result cache (``cache_results``, in ``TRITON_CACHE_DIR``), so a
  second process reads the winner instead of tuning again.

The autotuner wraps ``Launch``, not the ``@triton.jit`` kernel: a backward config fixes the
layout its training forward saves (``chunk``, ``pack_bits``), so each config needs inputs of
its own, and every launch goes through ``tether.functional.plans`` with explicit constexprs,
the path the runtime runs. ``Launch.fn`` is the direction's kernel: Triton keys its result
cache by that kernel's source. The runtime never launches through the autotuner: it takes
the winner into its plan. Imports neither pandas nor the benchmark package.
"""

from __future__ import annotations

import functools
import inspect
import time
from collections.abc import Callable, Sequence

import torch
import triton
import triton.testing

from tether.functional import plans
from tether.kernels import INTERPRET, neuron_bwd_kernel, neuron_fwd_kernel
from tether.kernels.hashing import kernel_hash
from tether.neurons import NEURONS
from tether.reference import NeuronOutput
from tether.tuning.space import KernelConfig, config_space, default_for, training_forward_config
from tether.tuning.table import gpu_key, n_bucket, t_bucket

ONLINE_SPACE = "micro"  # what TETHER_AUTOTUNE=1 tries: `tether-bench tune --space micro`
KEY = ("gpu", "dtype", "t_bucket", "n_bucket", "adaptive", "learnable", "kernel_hash")
KERNELS = {"fwd": neuron_fwd_kernel, "bwd": neuron_bwd_kernel, "fwd_train": neuron_fwd_kernel}
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
    bwd: KernelConfig | None = None,
) -> tuple[Call, Call | None, Callable[[], tuple]]:
    """(the kernel call to time, its training forward or None, ``() -> (spikes, grad_x or
    None)`` for the accuracy check) on ``x, grad: (T, N)``. ``fwd``: the inference forward;
    ``bwd``: the backward, with a gradient for every tensor parameter as in training, after
    a training forward with ``config``'s layout (``training_forward_config``);
    ``fwd_train``: the training forward in ``config``, checked through the backward in
    ``bwd`` that reads what it saved."""
    spec = op_spec(op)
    x = x.detach()
    params = {k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in params.items()}
    n_params = plans.vector_length(params)
    if direction == "fwd":

        def forward():
            return plans.launch_forward(spec, x, None, None, params, n_params, config, False)

        return forward, None, lambda: (forward()[0].spikes, None)
    if direction == "bwd":
        train_config, bwd = training_forward_config(config, x.dtype, x.shape[1]), config
    else:
        train_config = config

    def train_forward():
        return plans.launch_forward(spec, x, None, None, params, n_params, train_config, True)

    out, saved = train_forward()
    param_grads = {name: isinstance(value, torch.Tensor) for name, value in params.items()}
    grads = NeuronOutput(grad, None, None, None, None)

    def backward():
        return plans.launch_backward(spec, x, saved, params, 2.0, n_params, param_grads, grads, bwd)

    if direction == "fwd_train":
        return train_forward, None, lambda: (out.spikes, backward()[0])
    return backward, train_forward, lambda: (out.spikes, backward()[0])


class Point:
    """One tuning point: ``op`` and ``direction`` on ``x, grad: (T, N)``, and the configs the
    accuracy guard ``rejected`` (offline; online checks none). ``run(config)`` is the call
    the tuner times: the inference forward (``fwd``), the training forward and the backward
    in that config's layout (``bwd``), or the training forward alone, saving for the
    backward config ``bwd`` (``fwd_train``)."""

    def __init__(
        self,
        op: str,
        direction: str,
        x: torch.Tensor,
        grad: torch.Tensor,
        params: dict[str, torch.Tensor | float],
        rejected: frozenset[KernelConfig] = frozenset(),
        bwd: KernelConfig | None = None,
    ) -> None:
        self.op, self.direction, self.x, self.grad, self.params = op, direction, x, grad, params
        self.rejected, self.bwd = rejected, bwd
        n_steps, n_neurons = x.shape
        self.default = default_for(op, direction, x.dtype, n_steps, n_neurons, bwd)
        device = x.device
        neuron = NEURONS[op]
        self.key = {
            "gpu": gpu_key(device.index) if device.type == "cuda" else "cpu",  # a tensor's: indexed
            "dtype": str(x.dtype).removeprefix("torch."),
            "t_bucket": t_bucket(n_steps),
            "n_bucket": n_bucket(n_neurons),
            "adaptive": neuron.adaptive,
            "learnable": neuron.learnable,
            "kernel_hash": kernel_hash(),
        }
        self._config: KernelConfig | None = None
        self._calls: tuple[Call, Call | None] | None = None

    @classmethod
    def random(
        cls,
        op: str,
        direction: str,
        dtype: torch.dtype,
        n_steps: int,
        n_neurons: int,
        device: torch.device,
    ) -> Point:
        """A point on random data of the benchmark's distribution (what online tuning times)."""
        g = torch.Generator(device=device).manual_seed(0)
        x = (torch.randn(n_steps, n_neurons, device=device, generator=g) * 0.6 + 0.3).to(dtype)
        grad = torch.randn(n_steps, n_neurons, device=device, generator=g).to(dtype)
        params = NEURONS[op].bench_params(n_neurons, g, requires_grad=False)
        return cls(op, direction, x, grad, params)

    def run(self, config: KernelConfig) -> None:
        """One timed call of ``config`` (its calls are built on the first, and only the
        latest config's outputs are kept)."""
        if config != self._config:
            self._calls = None  # the previous config's outputs go first
            kernel, train_forward, _ = kernel_calls(
                self.op, self.direction, self.x, self.grad, self.params, config, self.bwd
            )
            self._config, self._calls = config, (kernel, train_forward)
        kernel, train_forward = self._calls
        if train_forward is not None:
            train_forward()
        kernel()


class Launch:
    """What ``triton.autotune`` wraps: ``run(point, **key, **meta)`` runs ``point`` with the
    config in ``meta``. ``fn``: the direction's kernel (Triton's result cache keys on it)."""

    arg_names = ("point", *KEY)

    def __init__(self, direction: str) -> None:
        self.fn = KERNELS[direction]

    def run(self, point: Point, **meta) -> None:
        point.run(KernelConfig.from_meta(meta, meta["num_warps"], meta["num_stages"]))


def prune(configs: Sequence[triton.Config], named_args: dict, **key) -> list[triton.Config]:
    """Triton's ``early_config_prune``: drop the configs that cannot fit the bucket — a time
    tile (``chunk``) or spike word (``pack_bits``) longer than T, a block wider than N (each
    down to the space's smallest) — and those the accuracy guard rejected; keep the
    default."""
    point: Point = named_args["point"]
    space = [KernelConfig.from_triton(c) for c in configs]
    t, n = key["t_bucket"], key["n_bucket"]
    max_chunk = max(t, min(c.chunk for c in space))
    max_pack = max(t, min(c.pack_bits for c in space))
    max_block = max(n, min(c.block for c in space))
    kept = []
    for config, kernel_config in zip(configs, space):
        if kernel_config in point.rejected:
            continue
        fits = (
            kernel_config.chunk <= max_chunk
            and kernel_config.pack_bits <= max_pack
            and kernel_config.block <= max_block
        )
        if fits or kernel_config == point.default:
            kept.append(config)
    return kept


def bench(kernel_call: Call, quantiles: Sequence[float]) -> list[float]:
    """The tuner's timer, milliseconds at ``quantiles``: on a GPU, ``kernel_call`` captured in
    a CUDA graph and its replay timed by ``triton.testing.do_bench`` (L2 flushed between
    replays): GPU time without the host's launch path, which at long T over few neurons
    (20 us kernels) is longer than the kernels and made the tuner time the host. Elsewhere
    (the interpreter, in CI) one wall-clock call, which only exercises the path."""
    if torch.cuda.is_available() and not INTERPRET:
        kernel_call()  # compiles and plans outside the capture
        graph = torch.cuda.CUDAGraph()
        with torch.cuda.graph(graph):
            kernel_call()
        return triton.testing.do_bench(graph.replay, warmup=10, rep=30, quantiles=quantiles)
    start = time.perf_counter()
    kernel_call()
    return [1e3 * (time.perf_counter() - start)] * len(quantiles)


def make_tuner(
    direction: str,
    dtype: torch.dtype,
    space: str | None,
    persist: bool,
    bwd: KernelConfig | None = None,
    extra: Sequence[KernelConfig] = (),
):
    """A ``triton.autotune`` over ``config_space(direction, dtype, space, bwd)`` (none for
    ``space=None``) and ``extra`` (a point's default, where the space lacks it);
    ``persist``: Triton's result cache on (off under the interpreter, where Triton turns it
    off)."""
    options = {"do_bench": bench, "cache_results": persist}
    accepted = inspect.signature(triton.autotune).parameters
    spaced = config_space(direction, dtype, space, bwd) if space is not None else []
    configs = dict.fromkeys([*spaced, *extra])
    return triton.autotune(
        [c.to_triton() for c in configs],
        key=list(KEY),
        prune_configs_by={"early_config_prune": prune},
        **{name: value for name, value in options.items() if name in accepted},
    )(Launch(direction))


@functools.cache
def online_tuner(direction: str, dtype: torch.dtype, default: KernelConfig):
    """The process's tuner of ``TETHER_AUTOTUNE=1`` for points whose default is ``default``
    (timed beside the space; Triton keeps its winners by key)."""
    return make_tuner(direction, dtype, ONLINE_SPACE, True, extra=(default,))


def tune(point: Point, tuner) -> KernelConfig:
    """The winner of ``tuner`` at ``point``: tuned once per key, or read from Triton's cache."""
    tuner.run(point, **point.key)
    return KernelConfig.from_triton(tuner.best_config)


def autotune_online(
    op: str,
    direction: str,
    dtype: torch.dtype,
    n_steps: int,
    n_neurons: int,
    device: torch.device,
) -> KernelConfig:
    """``TETHER_AUTOTUNE=1`` on a GPU with no table entry: the autotuner's winner at this
    shape on random data (correctness of every config in the space is checked offline, in
    CI and by the sweep)."""
    point = Point.random(op, direction, dtype, n_steps, n_neurons, device)
    return tune(point, online_tuner(direction, dtype, point.default))
