"""Issue 16, a CPU proxy: spike memory's saved-tensor hooks against hooks attached after the
forward to the saved spikes alone: ``python scripts/spike_memory_posthoc_proxy.py``.

A prototype, not tether's mechanism: after the forward, walk the autograd graph from the
logits, look at every node's saved tensors (``_raw_saved_*``) and give those that are
registered spikes (``spike_memory``'s own test) a hook pair with
``SavedTensor.register_hooks``, which PyTorch allows after the save; the other saves get
no hooks at all (and keep autograd's own in-place check). Tiny cifar_conv (PLIF, T=4,
batch 4, 8x8 images), launches stubbed (``host_time_cpu.stub_launches``: the Python runs,
the kernels do not), one thread; prints the walk's counts and the step's CPU time, us
(median of 5 x 40 steps), plain, under ``spike_memory()`` and with the post-hoc walk, in
two rounds. On the GPU the walk would also drop the backward's unpack hooks of the saves
that are not spikes (autograd's device thread); this proxy runs the backward on the CPU.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(__file__))
import host_time_cpu  # noqa: E402  (sets TRITON_INTERPRET=1)
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

import tether  # noqa: E402
from tether.benchmark import models  # noqa: E402
from tether.benchmark.model_zoo import ConvSize, make_batch  # noqa: E402

memory_module = importlib.import_module("tether.spike_memory")
_SAVED_NAMES: dict[type, list[str]] = {}


def saved_names(node) -> list[str]:
    """The names of a node class's saved tensors (``_raw_saved_<name>``)."""
    names = _SAVED_NAMES.get(type(node))
    if names is None:
        names = [n[len("_raw_saved_") :] for n in dir(node) if n.startswith("_raw_saved_")]
        _SAVED_NAMES[type(node)] = names
    return names


def walk(roots: list, memory, counts: dict[str, int]) -> None:
    """Hook the saved spikes of every node reachable from ``roots``."""
    seen, stack = set(), [r for r in roots if r is not None]
    while stack:
        node = stack.pop()
        if node in seen:
            continue
        seen.add(node)
        counts["nodes"] += 1
        for name in saved_names(node):
            raw = getattr(node, "_raw_saved_" + name)
            python_node = name == "tensors" and hasattr(node, "saved_tensors")
            values = node.saved_tensors if python_node else getattr(node, "_saved_" + name)
            if not isinstance(values, (tuple, list)):
                values, raw = (values,), (raw,)
            for t, saved in zip(values, raw):
                if type(t) is not torch.Tensor:
                    continue
                counts["checked"] += 1
                packed = memory._pack(t)
                if type(packed) is not tuple:  # spikes
                    saved.register_hooks(lambda _, p=packed: p, memory_module._unpack)
                    counts["hooked"] += 1
        stack += [n for n, _ in node.next_functions if n is not None]


def main() -> None:
    torch.set_num_threads(1)
    host_time_cpu.stub_launches()
    size = ConvSize(4, 4, image=8, widths=(8, 16, "M", 16, "M"))
    torch.manual_seed(0)
    spec = models.IMPLEMENTATIONS["tether"]
    source = models.MODELS["cifar_conv"].build(spec.neuron, "plif", size)
    net = models.build("cifar_conv", "tether", "plif", size, source, torch.device("cpu"))
    x, labels = make_batch("cifar_conv", size, 0, torch.device("cpu"))
    memory = tether.spike_memory()
    counts = {"nodes": 0, "checked": 0, "hooked": 0}

    def step(mode: str) -> None:
        spec.reset(net)
        with memory if mode == "hooks" else contextlib.nullcontext():
            if mode == "posthoc":
                memory_module._LOCAL.depth = 1  # the neurons register their spikes
            logits = net(x)
            if mode == "posthoc":
                memory_module._LOCAL.depth = 0
                walk([logits.grad_fn], memory, counts)
        F.cross_entropy(logits.float().mean(0), labels).backward()

    def cpu_us(mode: str, calls: int = 40) -> float:
        times = []
        for _ in range(5):
            start = time.process_time_ns()
            for _ in range(calls):
                step(mode)
            times.append((time.process_time_ns() - start) / calls / 1e3)
        return statistics.median(times)

    modes = ("plain", "hooks", "posthoc")
    for mode in modes:
        step(mode)
    counts.update(nodes=0, checked=0, hooked=0)
    step("posthoc")
    print(f"walk: {counts['nodes']} nodes, {counts['checked']} saved tensors checked, "
          f"{counts['hooked']} hooked")  # fmt: skip
    for round_ in range(2):
        print(round_, *(f"{mode} {cpu_us(mode):.1f}" for mode in modes))


if __name__ == "__main__":
    main()
