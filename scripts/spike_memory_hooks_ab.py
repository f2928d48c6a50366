"""Is spike memory's step cost the saved-tensor hooks themselves (issue 16)? ``python
scripts/spike_memory_hooks_ab.py [CSV]`` on a GPU (about two minutes; ``--quick``: tiny, CPU;
``--fp32``: fp32 only).

``cifar_conv`` PLIF, T=8, batch 32, channels_last, fp32 and bf16: tether's training step
plain, under a no-op pair of ``saved_tensors_hooks`` (every save goes through Python, nothing
is packed), and under ``tether.spike_memory``; each also with autograd's device threads off
(``set_multithreading_enabled(False)``: the backward, hooks included, on the caller's
thread); and spike memory in parts: ``versioned_hooks`` (no-op hooks that keep and check
the version, as spike memory does for what is not spikes), ``spike_memory_register_only``
(those, and the neurons register their spikes), ``spike_memory_keep`` (spikes registered
and found, every tensor saved as usual) and ``spike_memory_no_unpack`` (no unpack kernels:
timing only). All timed in alternation (``models.time_interleaved``). Rows: ``dtype,variant,ms,
vs_plain``.

``--per-save``: instead, the hooks' own cost per save on this machine's CPU: 20 multiplies
of 64-element tensors (40 saves), forward and backward, plain, under a no-op hook pair and
under tether's (a spike tensor registered, none of these saves one): microseconds per save
over plain, and the Python of one unpack of saved spikes (``unpack_python_us``), each
timed by ``cpu_us`` (in alternation, in this process's CPU time).
"""

from __future__ import annotations

import contextlib
import importlib
import statistics
import sys
import time
from collections.abc import Callable
from unittest.mock import patch

import torch

from tether.benchmark import models
from tether.benchmark.model_zoo import make_batch

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from spike_memory_gpu import KIND, MODEL, sizes  # noqa: E402


def keep_saves(pack: Callable) -> Callable:
    """A pack hook that finds spikes as tether's does, then saves every tensor as usual."""

    def run(self, t: torch.Tensor) -> object:
        pack(self, t)
        return t, t._version

    return run


def variants(step, memory_step):
    memory_module = importlib.import_module("tether.spike_memory")
    memory = memory_module.spike_memory
    keep = keep_saves(memory._pack)

    def under(context, fn):
        def run():
            with context():
                return fn()

        return run

    def null_hooks():
        return torch.autograd.graph.saved_tensors_hooks(lambda t: t, lambda t: t)

    def versioned(t: torch.Tensor) -> tuple:  # spike memory's save of what is not spikes
        return t, t._version

    def versioned_hooks():
        return torch.autograd.graph.saved_tensors_hooks(versioned, memory_module._unpack)

    def one_thread():
        return torch.autograd.set_multithreading_enabled(False)

    def both():
        stack = contextlib.ExitStack()
        stack.enter_context(null_hooks())
        stack.enter_context(one_thread())
        return stack

    return {
        "plain": step,
        "null_hooks": under(null_hooks, step),
        "spike_memory": memory_step,
        "plain_1thread": under(one_thread, step),
        "null_hooks_1thread": under(both, step),
        "spike_memory_1thread": under(one_thread, memory_step),
        # spike memory's parts, each adding to the one before (timing only: no_unpack's
        # gradients are wrong): hooks that save ``(t, version)`` and check it; those and the
        # neurons' registration; and the pack hook's lookup, saving every tensor as usual;
        # everything but the unpacks (kernel, launch, allocation's writes: an unwritten
        # tensor instead)
        "versioned_hooks": under(versioned_hooks, step),
        "spike_memory_register_only": under(
            lambda: patch.object(memory, "_pack", lambda self, t: versioned(t)), memory_step
        ),
        "spike_memory_keep": under(lambda: patch.object(memory, "_pack", keep), memory_step),
        "spike_memory_no_unpack": under(
            lambda: patch.object(memory_module._Bits, "unpack", memory_module._Bits.empty),
            memory_step,
        ),
    }


def per_save() -> None:
    """Print the microseconds per save of a no-op hook pair and of tether's (``--per-save``)."""
    memory_module = importlib.import_module("tether.spike_memory")
    x, w = torch.randn(64, requires_grad=True), torch.randn(64, requires_grad=True)
    saves = 40

    def step() -> None:
        y = x
        for _ in range(saves // 2):
            y = y * w  # saves y and w
        y.sum().backward()

    def under(pack, unpack):
        def run() -> None:
            with torch.autograd.graph.saved_tensors_hooks(pack, unpack):
                step()

        return run

    memory_module.register_spikes(torch.zeros(8, 10), None)  # the registry is not empty
    memory = memory_module.spike_memory()
    runs = {
        "plain": step,
        "no-op hooks": under(lambda t: t, lambda t: t),
        "tether's hooks": under(memory._pack, memory_module._unpack),
    }
    times = cpu_us(runs, 300)
    plain = times.pop("plain")
    for name, us in times.items():
        print(f"{name}: {(us - plain) / saves:.2f} us per save "
              f"(plain step {plain:.1f} us, {saves} saves)")  # fmt: skip
    print(f"one unpack's Python (launch stubbed): {unpack_python_us(memory_module):.2f} us")


def unpack_python_us(memory_module) -> float:
    """The host time of one kernel-path unpack of saved spikes ``(8, 2048)`` (32-bit words)
    beyond its allocation, with the launch stubbed (``host_time_cpu.stub_launches``),
    timed in alternation with the allocation alone."""
    from host_time_cpu import stub_launches

    stub_launches()
    spikes, words = torch.zeros(8, 2048), torch.zeros(1, 2048, dtype=torch.int32)
    memory_module.register_spikes(spikes, words)  # weak references: both kept here
    saved = memory_module.spike_memory()._pack(spikes)

    def one() -> None:
        saved.bits.dense = None  # no live earlier unpack: a fresh one each time
        memory_module._unpack(saved)

    assert saved.bits.plan is not None, "the kernel path: the neuron's words"

    def alloc() -> None:
        torch.empty_strided((8, 2048), (2048, 1))

    times = cpu_us({"unpack": one, "alloc": alloc}, 2000)
    return times["unpack"] - times["alloc"]


def cpu_us(runs: dict[str, Callable[[], object]], calls: int) -> dict[str, float]:
    """Microseconds a call of each of ``runs``: 8 rounds of ``calls`` calls each, the runs in
    alternation, the first round a warm-up; the median of the rest, in this process's CPU
    time (other programs on the machine do not count)."""
    times: dict[str, list[float]] = {name: [] for name in runs}
    for repeat in range(8):
        for name, run in runs.items():
            start = time.process_time()
            for _ in range(calls):
                run()
            if repeat:
                times[name].append((time.process_time() - start) / calls * 1e6)
    return {name: statistics.median(values) for name, values in times.items()}


def model_and_batch(
    size, device: torch.device
) -> tuple[torch.nn.Module, torch.Tensor, torch.Tensor]:
    """The seeded source model (tether's layers, every variant copies them) and a batch."""
    torch.manual_seed(models.SEED)
    source = models.MODELS[MODEL].build(models.IMPLEMENTATIONS["tether"].neuron, KIND, size)
    return (source, *make_batch(MODEL, size, models.SEED, device))


def main() -> None:
    if "--per-save" in sys.argv:
        return per_save()
    quick = "--quick" in sys.argv
    dtypes = ("float32",) if "--fp32" in sys.argv else ("float32", "bfloat16")
    args = [a for a in sys.argv[1:] if a not in ("--quick", "--fp32")]
    device = torch.device("cpu" if quick else "cuda")
    size = sizes(quick, 2 if quick else 32)
    rows = ["dtype,variant,ms,vs_plain"]
    for dtype in dtypes:
        source, x, labels = model_and_batch(size, device)
        steps = []
        for memory in (False, True):
            net = models.build(MODEL, "tether", KIND, size, source, device)
            reset = models.IMPLEMENTATIONS["tether"].reset
            steps.append(models.training_step(net, reset, x, labels, dtype, False, memory))
        runs = variants(*steps)
        for run in runs.values():
            run()
        ms = models.time_interleaved(runs, device, rounds=2 if quick else 30)
        for name, value in ms.items():
            rows.append(f"{dtype},{name},{value:.4f},{value / ms['plain']:.4f}")
            print(rows[-1], flush=True)
    if args:
        with open(args[0], "w") as f:
            print(*rows, sep="\n", file=f)


if __name__ == "__main__":
    main()
