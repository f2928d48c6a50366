"""Model benchmarks: end-to-end training steps of spiking networks, one row per
(model, neuron, implementation, compiled, dtype, size), upserted into a CSV.

A step is: reset the neuron state, forward under autocast (bf16) or not (fp32), cross-entropy
of the time-mean of the head's logits ``(T, B, classes) -> (B, classes)``, backward,
``SGD(momentum=0.9)`` step. Implementations differ only in the neuron modules
(``model_zoo``: one builder per model) and, for tether, the max-pooling op
(``tether.max_pool2d``: torch's values and gradients, 2-bit window offsets saved). Before timing,
each implementation runs the first step from the weights of tether's model (``copy_layers``)
on the same batch and must give tether's eager loss and tether's spikes in the first neuron
layer (``LOSS_TOL``, ``SPIKE_TOL``); a mismatch is written with ``ok=False`` and no timing.

Neuron semantics, the same everywhere: ``h_t = 0.5 * v_{t-1} + x_t`` (decay 0.5, tau 2),
threshold 1, hard reset to 0 with the reset's spike detached, Arctan surrogate
``alpha / (1 + (alpha*pi*u)^2)`` with tether's alpha 2 (SpikingJelly's ``ATan(4)`` and
snnTorch's ``atan(4)`` are the same function). Peers:

- spikingjelly 2.0: ``LIFNode(tau=2, decay_input=False, v_reset=0, detach_reset=True,
  step_mode="m")`` gives ``h = v - v/tau + x``; its CUDA backend (Triton or CUDA kernels) is
  chosen by SpikingJelly itself, there is no ``backend`` argument in 2.0. PLIF is
  ``ParametricLIFNode``: one learnable decay per layer (tether's: per channel, and a
  learnable threshold). No ALIF.
- snntorch 1.0: ``Leaky(beta=0.5, reset_mechanism="zero")`` looped over T (single-step), the
  membrane carried in float32. With the default ``reset_delay=True`` a spike resets the
  membrane (detached) before the next step's update: tether's hard reset. It fires on
  ``mem > threshold``: its threshold is the float32 just below 1, which fires exactly where
  ``h >= 1`` does. PLIF is ``Leaky`` with a learnable per-channel ``beta`` and
  ``threshold``. No ALIF.

``tether+spikemem``: tether with the forward under ``tether.spike_memory()`` (spikes saved
in 1 bit by the layers that consume them; eager only, inactive in compiled code). Both
tether implementations max-pool with ``tether.max_pool2d`` (the same values and gradients
as torch's, 2-bit window offsets saved instead of int64 indices); peers with torch's.

Columns: ``ms`` median milliseconds per step, the runs of one point (model, size, dtype) timed
in alternation, a few steps each in turn; ``samples_per_s``; ``peak_mem_mb`` the memory
allocated at the peak of one step above what is held between steps (weights, optimizer
state, the batch; NaN on CPU); ``neuron_share`` the neuron kernels' fraction of CUDA kernel
time over a few profiled steps (NaN on CPU and for snnTorch, whose neurons are generic
elementwise kernels); ``loss`` the first step's loss; ``loss_rel_error`` and ``max_error``
(fraction of mismatching spikes of the first neuron layer) against tether eager.
"""

from __future__ import annotations

import contextlib
import importlib.util
import math
import re
import statistics
import time
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
import torch
import torch.nn.functional as F
from torch import nn

from tether.benchmark.measure import FACT_COLUMNS, peak_memory_mb, read_csv, run_facts
from tether.benchmark.model_zoo import (
    SHDMLP,
    Block,
    CifarConv,
    ConvSize,
    MaxPool,
    MLPSize,
    NeuronFactory,
    Pool,
    Spikformer,
    SpikformerSize,
    copy_layers,
    make_batch,
)
from tether.functional.pool import max_pool2d  # 2-bit window offsets, not int64 indices

DECAY, THRESHOLD, ALPHA = 0.5, 1.0, 2.0  # tau = 2; tether's Arctan alpha (peers take 2x)
SEED = 0
TETHER_EAGER = ("tether", False)  # (impl, compiled) of the reference
MAX_COMPILE_STEPS = 64  # torch.compile of a Python loop over more steps takes minutes
MAX_LOOP_STEPS = {"cuda": 1000, "cpu": 256}  # a Python loop over T beyond this: skipped
# First-step agreement with tether eager: relative loss error, and the fraction of spikes of
# the first neuron layer that differ (a membrane within rounding of the threshold may fire in
# one implementation and not in another; bf16 rounds the layers' outputs, so more do).
LOSS_TOL = {"float32": 1e-4, "bfloat16": 2e-2}
SPIKE_TOL = {"float32": 1e-3, "bfloat16": 1e-2}

Size = ConvSize | MLPSize | SpikformerSize


# --- implementations: a neuron factory each ----------------------------------------------


def tether_neuron(features: Sequence[int], kind: str, threshold: float = THRESHOLD) -> nn.Module:
    """tether's module for ``(T, B, *features)``; PLIF on ``(C, H, W)`` is per channel."""
    import tether

    n = math.prod(features)
    common = {"surrogate": tether.Arctan(ALPHA), "detach_reset": True, "stateful": False}
    if kind == "lif":
        return tether.LIF(n, decay=DECAY, threshold=threshold, **common)
    if kind == "plif":
        per_channel = len(features) > 1
        return tether.PLIF(
            features[0] if per_channel else n,
            init_decay=DECAY,
            init_threshold=threshold,
            per_channel=per_channel,
            **common,
        )
    return tether.ALIF(n, decay_v=DECAY, threshold=threshold, **common)


def spikingjelly_neuron(
    features: Sequence[int], kind: str, threshold: float = THRESHOLD
) -> nn.Module:
    """SpikingJelly's multi-step node; ``h = v - v / tau + x`` with ``decay_input=False``."""
    from spikingjelly.activation_based import neuron, surrogate

    node = neuron.ParametricLIFNode if kind == "plif" else neuron.LIFNode
    tau = {"init_tau" if kind == "plif" else "tau": 1.0 / (1.0 - DECAY)}
    return node(
        **tau,
        decay_input=False,
        v_threshold=threshold,
        v_reset=0.0,
        surrogate_function=surrogate.ATan(alpha=2 * ALPHA),
        detach_reset=True,
        step_mode="m",
    )


class SnnTorchLoop(nn.Module):
    """snnTorch's single-step ``Leaky`` over ``(T, B, *features)``, from a zero membrane."""

    def __init__(self, leaky: nn.Module) -> None:
        super().__init__()
        self.leaky = leaky

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        mem = torch.zeros_like(x[0], dtype=torch.float32)
        spikes = []
        for x_t in x:
            spike, mem = self.leaky(x_t, mem)
            spikes.append(spike)
        return torch.stack(spikes)


def snntorch_neuron(features: Sequence[int], kind: str, threshold: float = THRESHOLD) -> nn.Module:
    """``snn.Leaky`` looped over T; PLIF: learnable ``beta`` and ``threshold`` per channel.
    snnTorch fires on ``mem > threshold``: given the float32 just below ``threshold``, that is
    tether's ``h >= threshold`` for a float32 membrane (ties are frequent: attention sums are
    multiples of 1/8, bf16 inputs have 8 bits)."""
    import snntorch as snn
    from snntorch import surrogate

    learn = kind == "plif"
    shape = (features[0], *[1] * (len(features) - 1)) if learn else ()
    below = torch.nextafter(torch.tensor(threshold), torch.tensor(0.0))  # float32
    leaky = snn.Leaky(
        beta=torch.full(shape, DECAY),
        threshold=torch.full(shape, below.item()),
        spike_grad=surrogate.atan(alpha=2 * ALPHA),
        reset_mechanism="zero",
        learn_beta=learn,
        learn_threshold=learn,
    )
    return SnnTorchLoop(leaky)


def reset_states(model: nn.Module) -> None:
    """Call ``reset()`` on every submodule whose class has one (tether's neurons): looked up
    on the class: ``Module.__getattr__`` raises inside for every module without one
    (cifar_conv's 31 modules: 54 us a reset on a CPU before, 21 us since, with the neurons'
    ``reset`` writing only what is set)."""
    for module in model.modules():
        if module is not model and callable(getattr(type(module), "reset", None)):
            module.reset()


def spikingjelly_reset(model: nn.Module) -> None:
    from spikingjelly.activation_based import functional

    functional.reset_net(model)


@dataclass(frozen=True)
class Implementation:
    """How one library builds and resets neurons. ``kernels``: a regex matching the names of
    its neuron kernels in a CUDA profile (None: not attributable). ``loops_over_steps``: its
    neuron is a Python loop over T (``torch.compile`` unrolls it). ``notes``: per neuron
    kind, a semantic difference to tether written into the rows. ``spike_memory``: spikes
    saved in 1 bit (``tether.spike_memory``). ``max_pool``: the function of the models'
    ``model_zoo.Pool`` layers (None: torch's)."""

    neuron: NeuronFactory
    kinds: tuple[str, ...]
    package: str | None = None
    reset: Callable[[nn.Module], None] = reset_states
    kernels: str | None = None
    loops_over_steps: bool = False
    notes: dict[str, str] = field(default_factory=dict)
    spike_memory: bool = False  # the forward runs under tether.spike_memory()
    max_pool: MaxPool | None = None  # the models' max-pooling (None: torch's)


TETHER_KERNELS = r"neuron_(fwd|bwd)_kernel|unpack_spikes_kernel"
IMPLEMENTATIONS: dict[str, Implementation] = {
    "tether": Implementation(
        tether_neuron, ("lif", "plif", "alif"), kernels=TETHER_KERNELS, max_pool=max_pool2d
    ),
    "tether+spikemem": Implementation(
        tether_neuron,
        ("lif", "plif", "alif"),
        kernels=TETHER_KERNELS,
        spike_memory=True,
        max_pool=max_pool2d,
    ),
    "spikingjelly": Implementation(
        spikingjelly_neuron,
        ("lif", "plif"),
        package="spikingjelly",
        reset=spikingjelly_reset,
        # SpikingJelly 2.0's Triton kernels on an H100 (torch.profiler names)
        kernels=r"^_(forward|backward)_kernel$|multistep_p?lif_|\bp?lif_(forward|backward)\b",
        notes={"plif": "ParametricLIFNode: one learnable decay per layer, fixed threshold"},
    ),
    "snntorch": Implementation(
        snntorch_neuron, ("lif", "plif"), package="snntorch", loops_over_steps=True
    ),
}
IMPLS = tuple(IMPLEMENTATIONS)


# --- models ------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    """A builder ``(neuron, kind, size) -> nn.Module``, its neuron kinds, full sizes and the
    ``quick`` ones (seconds on a CPU, tether under the Triton interpreter included)."""

    build: Callable[[NeuronFactory, str, Size], nn.Module]
    kinds: tuple[str, ...]
    sizes: tuple[Size, ...]
    quick: tuple[Size, ...]


TINY_CONV = {"image": 8, "widths": (4, 8, "M", 8, "M")}
MODELS: dict[str, ModelSpec] = {
    "cifar_conv": ModelSpec(
        CifarConv,
        ("plif",),
        (ConvSize(4, 64), ConvSize(8, 64), ConvSize(4, 64, layout="contiguous")),
        (ConvSize(2, 2, **TINY_CONV), ConvSize(2, 2, **TINY_CONV, layout="contiguous")),
    ),
    "shd_mlp": ModelSpec(
        SHDMLP,
        ("lif", "alif"),
        (MLPSize(250, 128), MLPSize(1000, 128)),
        (MLPSize(6, 2, inputs=20, hidden=(16, 16), classes=4),),
    ),
    "spikformer_block": ModelSpec(
        Spikformer,
        ("lif",),
        (SpikformerSize(4, 32),),
        (SpikformerSize(2, 2, tokens=4, dim=8, heads=2, mlp_ratio=2, classes=4),),
    ),
}

KEY = ["model", "neuron", "impl", "compiled", "dtype", "layout", "T", "batch", "size", "device"]
COLUMNS = KEY[:-1] + [
    "ms",
    "samples_per_s",
    "peak_mem_mb",
    "neuron_share",
    "loss",
    "loss_rel_error",
    "max_error",
    "error_bound",
    "ok",
    "note",
    *FACT_COLUMNS,
]


# --- one training step -------------------------------------------------------------------


def build(
    model: str, impl: str, kind: str, size: Size, source: nn.Module, device: torch.device
) -> nn.Module:
    """``impl``'s model with the layers of ``source``, on ``device`` in ``size.layout``."""
    implementation = IMPLEMENTATIONS[impl]
    net = MODELS[model].build(implementation.neuron, kind, size)
    if implementation.max_pool is not None:
        pool_with(net, implementation.max_pool)
    copy_layers(source, net)
    net = net.to(device)
    if size.layout == "channels_last":
        net = net.to(memory_format=torch.channels_last)
    return net


def pool_with(net: nn.Module, max_pool: MaxPool) -> None:
    """Make every ``model_zoo.Pool`` layer of ``net`` pool with ``max_pool``."""
    for pool in net.modules():
        if isinstance(pool, Pool):
            pool.max_pool = max_pool


def training_step(
    net: nn.Module,
    reset: Callable[[nn.Module], None],
    x: torch.Tensor,
    labels: torch.Tensor,
    dtype: str,
    compiled: bool,
    spike_memory: bool = False,
) -> Callable[[], torch.Tensor]:
    """A closure running one step on ``x: (T, B, ...)``; returns the loss (a 0-d tensor).
    ``spike_memory``: the forward under ``tether.spike_memory()``. Compiled code keeps the
    activations' layout (inductor's ``layout_optimization`` off: it would run a contiguous
    model's convs channels_last, whose TF32 sums flip spikes against the eager step)."""
    import tether

    forward = torch.compile(net, options={"layout_optimization": False}) if compiled else net
    optimizer = torch.optim.SGD(net.parameters(), lr=1e-2, momentum=0.9)
    autocast = torch.autocast(x.device.type, torch.bfloat16, enabled=dtype == "bfloat16")

    def step() -> torch.Tensor:
        reset(net)
        optimizer.zero_grad(set_to_none=True)
        memory = tether.spike_memory() if spike_memory else contextlib.nullcontext()
        with autocast, memory:
            logits = forward(x)  # (T, B, classes)
        loss = F.cross_entropy(logits.float().mean(0), labels)
        loss.backward()
        optimizer.step()
        return loss.detach()

    return step


def first_step(net: nn.Module, step: Callable[[], torch.Tensor]) -> tuple[float, torch.Tensor]:
    """Run ``step`` once: its loss and the spikes of ``net``'s first neuron layer."""
    first = next(m for m in net.modules() if isinstance(m, Block)).neuron
    captured = []
    handle = first.register_forward_hook(lambda m, args, out: captured.append(out.detach()))
    try:
        loss = step().item()
    finally:
        handle.remove()
    return loss, captured[0].float()


def time_steps(step: Callable[[], object], device: torch.device, quick: bool) -> float:
    """Median milliseconds per step after warm-up (``quick``: none beyond the checked first
    step): CUDA events around each step on a GPU, ``time.perf_counter`` on a CPU; at least 3
    steps, more within a time budget."""
    warmup, budget_s, max_steps = (0, 0.2, 10) if quick else (3, 2.0, 30)
    for _ in range(warmup):
        step()
    times, deadline = [], time.perf_counter() + budget_s
    while len(times) < 3 or (time.perf_counter() < deadline and len(times) < max_steps):
        times.append(_one_step_ms(step, device))
    return statistics.median(times)


def time_interleaved(
    steps: dict[Hashable, Callable[[], object]],
    device: torch.device,
    rounds: int = 20,
    per_round: int = 3,
) -> dict[Hashable, float]:
    """Median milliseconds per step of each named step, measured in ``rounds`` rounds that
    run ``per_round`` steps of each in turn (the order reversed every other round), so that
    a drift of the host's speed during the run weighs on all of them alike: the fair
    comparison of steps that are bound by host time."""
    names = list(steps)
    for name in names:
        steps[name]()  # warm (after at least one step before: compiles, first calls)
    times: dict[Hashable, list[float]] = {name: [] for name in names}
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            for _ in range(per_round):
                times[name].append(_one_step_ms(steps[name], device))
    return {name: statistics.median(t) for name, t in times.items()}


def _one_step_ms(step: Callable[[], object], device: torch.device) -> float:
    """One step's milliseconds: CUDA events on a GPU, ``time.perf_counter`` on a CPU."""
    if device.type == "cuda":
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        end.synchronize()
        return start.elapsed_time(end)
    start_s = time.perf_counter()
    step()
    return (time.perf_counter() - start_s) * 1e3


def neuron_time_share(kernels: Iterable[tuple[str, float]], pattern: str) -> float:
    """Time of the kernels whose names match ``pattern`` over all: ``(name, time)`` pairs."""
    kernels = list(kernels)
    total = sum(t for _, t in kernels)
    neurons = sum(t for name, t in kernels if re.search(pattern, name))
    return neurons / total if total else math.nan


def profile_kernels(step: Callable[[], object], steps: int = 3) -> list[tuple[str, float]]:
    """``(kernel name, microseconds)`` of every CUDA kernel and copy over ``steps`` steps."""
    from torch.autograd import DeviceType
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        for _ in range(steps):
            step()
        torch.cuda.synchronize()
    return [
        (e.name, e.device_time_total)
        for e in prof.events()
        if e.device_type == DeviceType.CUDA and not e.is_user_annotation
    ]


# --- the matrix --------------------------------------------------------------------------


def skip_reason(
    impl: str, kind: str, compiled: bool, dtype: str, size: Size, device: torch.device
) -> str | None:
    """Why an implementation does not run at this point, or None."""
    spec = IMPLEMENTATIONS[impl]
    if spec.package and importlib.util.find_spec(spec.package) is None:
        return f"{impl} is not installed (pip install '.[compare]')"
    if kind not in spec.kinds:
        return f"{impl} has no {kind}"
    if spec.spike_memory and compiled:
        return "spike memory is inactive in compiled code: the row would be tether's"
    if spec.loops_over_steps:
        if compiled and size.T > MAX_COMPILE_STEPS:
            return f"torch.compile of a {size.T}-step loop takes minutes"
        if size.T > MAX_LOOP_STEPS[device.type]:
            return f"a {size.T}-step Python loop on {device.type} is too slow"
    if dtype not in LOSS_TOL:
        return f"no tolerance for {dtype}"
    return None


def run_point(
    model: str,
    kind: str,
    size: Size,
    dtype: str,
    runs: list[tuple[str, bool]],
    device: torch.device,
    quick: bool,
    on_fail: Callable[[str, Exception], None] | None = None,
) -> list[dict]:
    """One model at one size and dtype: tether eager's first step is the reference (the
    first run, or a step run for that alone when it is not in ``runs``), then each
    ``(impl, compiled)`` is checked against it. The runs that agree are timed together, in
    alternation (``time_interleaved``: the steps are often bound by host time, whose speed
    drifts during a run), then their memory and kernels are measured one by one."""
    torch.manual_seed(SEED)
    torch._dynamo.reset()  # fresh compile caches: every model is a new one
    source = MODELS[model].build(IMPLEMENTATIONS["tether"].neuron, kind, size)
    x, labels = make_batch(model, size, SEED, device)

    def prepare(impl: str, compiled: bool) -> tuple[nn.Module, Callable[[], torch.Tensor]]:
        net = build(model, impl, kind, size, source, device)
        spec = IMPLEMENTATIONS[impl]
        step = training_step(net, spec.reset, x, labels, dtype, compiled, spec.spike_memory)
        return net, step

    reference: tuple[float, torch.Tensor] | None = None
    rows, steps = [], {}
    for impl, compiled in sorted(runs, key=lambda run: run != TETHER_EAGER):
        label = f"{model} {kind} {dtype} T={size.T} B={size.batch} {size.layout} {impl}"
        label += " compiled" if compiled else ""
        try:
            if reference is None and (impl, compiled) != TETHER_EAGER:
                reference = first_step(*prepare(*TETHER_EAGER))
            net, step = prepare(impl, compiled)
            loss, spikes = first_step(net, step)
            if (impl, compiled) == TETHER_EAGER:
                reference = (loss, spikes)
            row = compare(loss, spikes, *reference, dtype)
        except Exception as err:
            if on_fail is None:
                raise
            on_fail(label, err)
            continue
        notes = [IMPLEMENTATIONS[impl].notes.get(kind, "")]
        if row["ok"]:
            steps[len(rows)] = step
        else:
            notes.append("first step differs from tether: not timed")
        rows.append(
            {
                "model": model,
                "neuron": kind,
                "impl": impl,
                "compiled": compiled,
                "dtype": dtype,
                "layout": size.layout,
                "T": size.T,
                "batch": size.batch,
                "size": "quick" if quick else "full",
                **row,
                "note": "; ".join(n for n in notes if n),
            }
        )
        del net, step
    rounds, per_round = (2, 1) if quick else (10, 3)
    for i, ms in time_interleaved(steps, device, rounds, per_round).items():
        row = rows[i]
        row.update(measure(steps[i], ms, IMPLEMENTATIONS[row["impl"]].kernels, size, device))
        if row["neuron_share"] == 0.0:
            row["note"] = "; ".join(
                filter(None, (row["note"], "no neuron kernel matched in the profile"))
            )
    return rows


def compare(
    loss: float, spikes: torch.Tensor, ref_loss: float, ref_spikes: torch.Tensor, dtype: str
) -> dict:
    """The first step against tether eager's: relative loss error, mismatching spikes."""
    loss_error = abs(loss - ref_loss) / max(abs(ref_loss), 1e-12)
    if spikes.shape == ref_spikes.shape:
        max_error = (spikes != ref_spikes).float().mean().item()
    else:
        max_error = 1.0
    ok = loss_error <= LOSS_TOL[dtype] and max_error <= SPIKE_TOL[dtype]
    return {
        "loss": loss,
        "loss_rel_error": loss_error,
        "max_error": max_error,
        "error_bound": SPIKE_TOL[dtype],
        "ok": ok,
        "ms": math.nan,
        "samples_per_s": math.nan,
        "peak_mem_mb": math.nan,
        "neuron_share": math.nan,
    }


def measure(
    step: Callable[[], object], ms: float, kernels: str | None, size: Size, device: torch.device
) -> dict:
    """The columns of a timed step (``ms`` per step): throughput, peak memory and, on a GPU,
    the neuron kernels' share of the kernel time."""
    share = math.nan
    if device.type == "cuda" and kernels is not None:
        share = neuron_time_share(profile_kernels(step), kernels)
    return {
        "ms": ms,
        "samples_per_s": size.batch / ms * 1e3,
        "peak_mem_mb": peak_memory_mb(step, device),
        "neuron_share": share,
    }


def run_models(
    models: list[str],
    impls: list[str],
    dtypes: list[str],
    compiled: list[bool],
    quick: bool,
    device: torch.device,
    out: Path,
    *,
    on_point: Callable[[str], None] | None = None,
    on_skip: Callable[[str], None] | None = None,
    on_fail: Callable[[str, Exception], None] | None = None,
) -> list[dict]:
    """Every (model, neuron kind, size, dtype) x (impl, compiled): check, time, and upsert
    the rows into ``out`` after each point (a run cut short keeps what it measured).
    Skipped combinations leave no row (``on_skip`` hears why); an implementation that raises
    propagates, or with ``on_fail`` is reported there and leaves no row."""
    facts = run_facts(device)
    rows = []
    for model in models:
        spec = MODELS[model]
        for kind in spec.kinds:
            for size in spec.quick if quick else spec.sizes:
                for dtype in dtypes:
                    runs = []
                    for impl in impls:
                        for c in compiled:
                            reason = skip_reason(impl, kind, c, dtype, size, device)
                            if reason is None:
                                runs.append((impl, c))
                            elif on_skip:
                                on_skip(f"skipped {impl} for {model} {kind} T={size.T}: {reason}")
                    if not runs:
                        continue
                    point = run_point(model, kind, size, dtype, runs, device, quick, on_fail)
                    point = [{**row, **facts} for row in point]
                    upsert(out, point)
                    rows += point
                    if on_point:
                        on_point(f"{model} {kind} {dtype} T={size.T} {size.layout}")
    return rows


def upsert(
    path: Path,
    rows: list[dict],
    key: list[str] = KEY,
    columns: list[str] = COLUMNS,
    derive: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
) -> pd.DataFrame:
    """Write ``rows`` into the CSV at ``path``, replacing rows with the same ``key``;
    ``derive`` recomputes columns of the merged table before it is written."""
    new = pd.DataFrame(rows, columns=columns)
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.exists():
        old = read_csv(path)
        keys = set(map(tuple, new[key].astype(str).to_numpy()))
        keep = [tuple(r) not in keys for r in old[key].astype(str).to_numpy()]
        new = pd.concat([old[keep], new], ignore_index=True)[columns]
    if derive is not None:
        new = derive(new)
    new.to_csv(path, index=False, float_format="%.6g")
    return new


# --- plots -------------------------------------------------------------------------------


def plot_models(csv: Path, out_dir: Path) -> list[Path]:
    """Per dtype and size (quick|full): ms per step and peak memory per model point, one bar
    per implementation (hatched: ``torch.compile``); only rows that passed the check.
    Returns the written PNGs (``models_<size>_<dtype>.png``)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from tether.benchmark.plots import COLORS

    frame = read_csv(csv)
    frame = frame[frame["ok"].astype(bool) & frame["ms"].notna()]
    out_dir.mkdir(parents=True, exist_ok=True)
    written = []
    for (size, dtype), data in frame.groupby(["size", "dtype"]):
        data = data.assign(
            point=data["model"] + " " + data["neuron"] + "\nT=" + data["T"].astype(str)
            + " B=" + data["batch"].astype(str) + " " + data["layout"],
            variant=data["impl"] + data["compiled"].map({True: "+compile", False: ""}),
        )  # fmt: skip
        points = sorted(data["point"].unique())
        order = {impl: i for i, impl in enumerate(IMPLS)}
        variants = sorted(
            data["variant"].unique(),
            key=lambda v: (order.get(v.removesuffix("+compile"), len(order)), v),
        )
        width = 0.8 / len(variants)
        fig, axes = plt.subplots(2, 1, figsize=(max(8, 2.2 * len(points)), 8))
        for ax, column, label in zip(
            axes, ("ms", "peak_mem_mb"), ("ms per training step", "peak memory (MiB)")
        ):
            if not data[column].notna().any():
                ax.set_axis_off()
                ax.text(0.5, 0.5, f"{label}: not measured on this device", ha="center")
                continue
            for k, variant in enumerate(variants):
                rows = data[data["variant"] == variant].set_index("point")[column]
                values = [rows.get(p, math.nan) for p in points]
                impl = variant.removesuffix("+compile")
                ax.bar(
                    [i + (k + 0.5) * width - 0.4 for i in range(len(points))],
                    values,
                    width,
                    label=variant,
                    color=COLORS.get(impl),
                    hatch="//" if "+compile" in variant else None,
                    edgecolor="white",
                )
            ax.set_xticks(range(len(points)), points, fontsize=8)
            ax.set_ylabel(label)
            ax.set_yscale("log")
            ax.grid(True, axis="y", alpha=0.3)
            ax.legend(fontsize=8, ncol=len(variants))
        fig.suptitle(f"Training step, {dtype}, {size} sizes, on {data['device'].iloc[0]}")
        fig.tight_layout()
        path = out_dir / f"models_{size}_{dtype}.png"
        fig.savefig(path, dpi=110)
        plt.close(fig)
        written.append(path)
    return written
