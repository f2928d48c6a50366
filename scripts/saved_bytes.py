"""What a model's training forward leaves saved for backward, by the op that saved it, on the
CPU: ``python scripts/saved_bytes.py [OUT.csv] [--model cifar_conv] [--impls
tether] [--sizes 0,1]`` (the model benchmark's full sizes; ``--quick``: tiny).

After one forward and loss (fp32, eager), the autograd graph is walked from the loss and
every tensor a node holds for its backward (``_saved_*`` of built-in nodes,
``saved_tensors`` of custom Functions) is counted once, by storage, under the first node
that holds it. Spikes (a tensor living in the storage of a tether neuron's output,
``tether.spike_memory``'s own test, its registration forced on) are counted apart:
``spike_memory`` stores them in 1 bit. Rows: ``impl,T,batch,layout,node,tensors,bytes,
spike_bytes`` and the run's facts (device, versions, commit).

What it leaves out, so it is a lower bound of the GPU's peak: the parameters, their
gradients and the optimizer's momentum, cuDNN's workspace, the backward's transient
buffers and, for tether on the GPU, the neuron's packed spikes (``ceil(T / W)`` words a
neuron, W >= 8 bits: here the CPU reference path runs, which saves no bits). Peers'
kernels do not run on the CPU: SpikingJelly runs its torch backend, whose saves are those
of its Triton one only where the two save alike.
"""

from __future__ import annotations

import argparse
import importlib
from collections import defaultdict
from pathlib import Path
from unittest.mock import patch

import torch

from tether.benchmark import models
from tether.benchmark.measure import run_facts
from tether.benchmark.model_zoo import make_batch
from tether.functional import core


def saved_by_node(loss: torch.Tensor) -> dict[str, list[torch.Tensor]]:
    """Every tensor the graph behind ``loss`` saved, under the name of the node holding it."""
    found: dict[str, list[torch.Tensor]] = defaultdict(list)
    seen, stack = set(), [loss.grad_fn]
    while stack:
        node = stack.pop()
        if node is None or node in seen:
            continue
        seen.add(node)
        values = list(getattr(node, "saved_tensors", ()) or ())
        for name in dir(node):
            if name.startswith("_saved_"):
                value = getattr(node, name)
                values.extend(value if isinstance(value, tuple) else [value])
        found[type(node).__name__].extend(v for v in values if isinstance(v, torch.Tensor))
        stack.extend(next_node for next_node, _ in node.next_functions)
    return found


def measure(impl: str, model: str, size, source: torch.nn.Module) -> list[dict]:
    """One row per saving node type: the tensors, their bytes and the bytes of spikes among
    them."""
    # the module: ``tether.spike_memory`` as an attribute is the function
    memory = importlib.import_module("tether.spike_memory")
    spec = models.IMPLEMENTATIONS[impl]
    net = models.build(
        model, impl, models.MODELS[model].kinds[0], size, source, torch.device("cpu")
    )
    x, labels = make_batch(model, size, models.SEED, torch.device("cpu"))
    spec.reset(net)
    memory._REGISTRY.clear()
    with patch.object(core, "recording", lambda: True):  # spikes registered, nothing packed
        logits = net(x)
    loss = torch.nn.functional.cross_entropy(logits.float().mean(0), labels)
    counted, rows = set(), []
    for node, tensors in sorted(saved_by_node(loss).items()):
        n, nbytes, spike_bytes = 0, 0, 0
        for t in tensors:
            storage = t.untyped_storage()
            key = storage.data_ptr()
            if key in counted or storage.nbytes() == 0:
                continue
            counted.add(key)
            n, nbytes = n + 1, nbytes + storage.nbytes()
            if memory._REGISTRY.get(key) is not None:
                spike_bytes += storage.nbytes()
        if n:
            rows.append({"impl": impl, "T": size.T, "batch": size.batch, "layout": size.layout,
                         "node": node, "tensors": n, "bytes": nbytes,
                         "spike_bytes": spike_bytes})  # fmt: skip
    memory._REGISTRY.clear()
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("out", type=Path, nargs="?")
    parser.add_argument("--model", default="cifar_conv")
    parser.add_argument("--impls", default="tether")
    parser.add_argument("--sizes", default="0,1")
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    spec = models.MODELS[args.model]
    sizes = [spec.quick[0]] if args.quick else [spec.sizes[int(i)] for i in args.sizes.split(",")]
    rows = []
    for size in sizes:
        torch.manual_seed(models.SEED)
        source = spec.build(models.IMPLEMENTATIONS["tether"].neuron, spec.kinds[0], size)
        for impl in args.impls.split(","):
            impl_rows = measure(impl, args.model, size, source)
            rows += impl_rows
            total = sum(r["bytes"] for r in impl_rows) / 2**20
            spikes = sum(r["spike_bytes"] for r in impl_rows) / 2**20
            print(f"{impl:13s} T={size.T} B={size.batch} {size.layout}: {total:9.3f} MB saved, "
                  f"{spikes:9.3f} MB of it spikes")  # fmt: skip
            for r in impl_rows:
                print(f"    {r['node']:40s} {r['tensors']:3d} {r['bytes'] / 2**20:9.3f} MB"
                      f"  spikes {r['spike_bytes'] / 2**20:9.3f}")  # fmt: skip
    if args.out:
        import pandas as pd

        facts = run_facts(torch.device("cpu"))
        pd.DataFrame([{**row, **facts} for row in rows]).to_csv(args.out, index=False)


if __name__ == "__main__":
    main()
