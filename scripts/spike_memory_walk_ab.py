"""A prototype for issue 16, not the runtime: spike saves found by walking the autograd graph
instead of global saved-tensor hooks. ``python scripts/spike_memory_walk_ab.py [CSV]`` on a
GPU (about a minute), ``--quick`` on the CPU (tiny model); ``--rounds N``: rounds of
alternation (default 30, 2 with ``--quick``).

``tether.spike_memory`` puts every save of the forward (78 a cifar_conv fp32 step) through a
Python pack hook, and its unpack through a Python hook in the backward, on autograd's device
thread; only the ~5 saves of spikes need it. ``WalkMemory`` lets the neurons register their
spikes as ``spike_memory`` does, and after each module call walks the autograd graph from
the module's outputs (each node once a forward); a saved tensor that is registered spikes
gets a pack/unpack pair of its own (``SavedTensor.register_hooks``, which drops autograd's
reference to the full tensor at once), built from ``tether.spike_memory``'s pieces. Every
other save stays plain. Coverage is narrower: a save by a functional op on spikes outside
every module call is not found.

``cifar_conv`` PLIF, T=8, batch 32, channels_last, fp32 and bf16: the plain step, spike
memory and the walk, timed in alternation (``models.time_interleaved``); each run's
gradients are compared bitwise with the plain step's, its saves stored in 1 bit counted, and
(on a GPU) its peak memory measured. Rows: ``dtype,variant,ms,vs_plain,packed,peak_mb,
bitwise``.
"""

from __future__ import annotations

import argparse
import functools
import importlib
import sys

import torch
from torch.utils._pytree import tree_leaves

import tether
from tether.benchmark import models

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from spike_memory_gpu import KIND, MODEL, sizes  # noqa: E402
from spike_memory_hooks_ab import model_and_batch  # noqa: E402

memory_module = importlib.import_module("tether.spike_memory")


@functools.cache
def _saved_names(node_type: type) -> tuple[str, ...]:
    """The saved-tensor attributes of an autograd node class (``_raw_saved_<name>``)."""
    prefix = "_raw_saved_"
    return tuple(a[len(prefix) :] for a in dir(node_type) if a.startswith(prefix))


def _as_spikes(t: torch.Tensor) -> object | None:
    """``t``'s 1-bit save if it is registered spikes (``spike_memory._pack``'s test)."""
    if type(t) is not torch.Tensor or t.layout != torch.strided:
        return None
    storage = t.untyped_storage()
    entry = memory_module._REGISTRY.get(storage.data_ptr())
    if (
        entry is None
        or t._version != entry.version
        or t.dtype != entry.dtype
        or t.device != entry.device
        or storage.nbytes() != entry.nbytes
        or entry.spikes() is None
    ):
        return None
    bits = entry.get_bits(t)
    return memory_module._Saved(bits, t.shape, t.stride(), t.storage_offset(), entry)


class WalkMemory:
    """``with WalkMemory(): loss = model(x)``: see the module docstring. ``packed`` as in
    ``tether.spike_memory``."""

    def __init__(self) -> None:
        self.packed = 0
        self._seen: dict[int, object] = {}  # nodes walked this forward (kept alive: ids)

    def __enter__(self) -> WalkMemory:
        memory_module._LOCAL.depth = getattr(memory_module._LOCAL, "depth", 0) + 1
        self._handle = torch.nn.modules.module.register_module_forward_hook(self._after)
        return self

    def __exit__(self, *exc: object) -> None:
        self._handle.remove()
        memory_module._LOCAL.depth -= 1
        self._seen.clear()

    def _after(self, module: torch.nn.Module, args: tuple, out: object) -> None:
        if memory_module._REGISTRY:
            self.walk(out)

    def walk(self, out: object) -> None:
        leaves = [out] if isinstance(out, torch.Tensor) else tree_leaves(out)
        stack = [t.grad_fn for t in leaves if isinstance(t, torch.Tensor)]
        while stack:
            node = stack.pop()
            if node is None or id(node) in self._seen:
                continue
            self._seen[id(node)] = node
            for name in _saved_names(type(node)):
                raw = getattr(node, "_raw_saved_" + name)
                # a custom Function's node (tether's own) names its saves saved_tensors
                value = getattr(node, "_saved_" + name, raw)
                if value is raw:
                    value = node.saved_tensors
                pairs = zip(value, raw) if isinstance(value, (list, tuple)) else [(value, raw)]
                for tensor, saved_tensor in pairs:
                    if not isinstance(tensor, torch.Tensor):
                        continue
                    saved = _as_spikes(tensor)
                    if saved is not None:
                        saved_tensor.register_hooks(lambda _, s=saved: s, memory_module._unpack)
                        self.packed += 1
            stack.extend(next_node for next_node, _ in node.next_functions)


def entering(step, factory, variant: str, made: dict):
    """``step`` (a training step that enters ``tether.spike_memory()``) entering
    ``factory()`` instead; ``made[variant]``: the context its last call entered."""

    def make():
        made[variant] = factory()
        return made[variant]

    def run() -> torch.Tensor:
        original = tether.spike_memory
        tether.spike_memory = make
        try:
            return step()
        finally:
            tether.spike_memory = original

    return run


def grads_of(net: torch.nn.Module) -> list[torch.Tensor]:
    return [p.grad.detach().clone() for p in net.parameters()]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("csv", nargs="?", help="write the rows here too")
    parser.add_argument("--quick", action="store_true", help="tiny model on the CPU")
    parser.add_argument("--rounds", type=int, help="rounds of alternation (30; quick: 2)")
    args = parser.parse_args()
    quick = args.quick
    device = torch.device("cpu" if quick else "cuda")
    size = sizes(quick, 2 if quick else 32)
    rows = ["dtype,variant,ms,vs_plain,packed,peak_mb,bitwise"]
    for dtype in ("float32", "bfloat16"):
        source, x, labels = model_and_batch(size, device)
        reset = models.IMPLEMENTATIONS["tether"].reset
        nets, steps, made = {}, {}, {}
        for variant, factory in (
            ("plain", None),
            ("spike_memory", tether.spike_memory),
            ("walk", WalkMemory),
        ):
            net = models.build(MODEL, "tether", KIND, size, source, device)
            step = models.training_step(net, reset, x, labels, dtype, False, factory is not None)
            nets[variant] = net
            steps[variant] = step if factory is None else entering(step, factory, variant, made)
        # one checked step each, from the same weights: gradients against the plain step's
        checked, reference = {}, None
        for variant, step in steps.items():
            if device.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            step()
            cuda = device.type == "cuda"
            mb = torch.cuda.max_memory_allocated() / 2**20 if cuda else float("nan")
            grads = grads_of(nets[variant])
            reference = grads if reference is None else reference
            same = all(torch.equal(a, b) for a, b in zip(grads, reference))
            checked[variant] = (getattr(made.get(variant), "packed", 0), mb, same)
        ms = models.time_interleaved(steps, device, rounds=args.rounds or (2 if quick else 30))
        for variant, value in ms.items():
            packed, mb, same = checked[variant]
            rows.append(f"{dtype},{variant},{value:.4f},{value / ms['plain']:.4f},"
                        f"{packed},{mb:.1f},{same}")  # fmt: skip
            print(rows[-1], flush=True)
    if args.csv:
        with open(args.csv, "w") as f:
            print(*rows, sep="\n", file=f)


if __name__ == "__main__":
    main()
