"""Why a compiled model step is slow: ``python scripts/compiled_step_diag.py TAG`` on a GPU.

``cifar_conv`` PLIF, T=4, batch 64, channels_last (the model benchmark's full size), tether
compiled (``torch.compile(net)``), fp32 and bf16: prints one CSV row per dtype with the
median step ms (CUDA events), host ms per step (GPU drained first), Dynamo's graph count,
graph breaks and recompiles, and the CUDA kernels per step with their summed time.
``TAG DTYPES`` (e.g. ``new bfloat16``) for some dtypes; the host's top ops by self CPU time
follow each row. Run it once per tree (``PYTHONPATH=<tree>``) to compare two versions on one machine.
"""

import statistics
import sys
import time

import torch
from torch._dynamo.utils import counters
from torch.autograd import DeviceType
from torch.profiler import ProfilerActivity, profile

from tether.benchmark import models
from tether.benchmark.model_zoo import ConvSize, make_batch


def main(tag: str, dtypes: tuple[str, ...] = ("float32", "bfloat16")) -> None:
    device = torch.device("cuda")
    size = ConvSize(4, 64)
    print("tag,dtype,step_ms,host_ms,graphs,breaks,recompiles,kernels,kernel_ms")
    for dtype in dtypes:
        torch._dynamo.reset()
        counters.clear()
        torch.manual_seed(0)
        neuron = models.IMPLEMENTATIONS["tether"].neuron
        source = models.MODELS["cifar_conv"].build(neuron, "plif", size)
        net = models.build("cifar_conv", "tether", "plif", size, source, device)
        x, labels = make_batch("cifar_conv", size, 0, device)
        spec = models.IMPLEMENTATIONS["tether"]
        step = models.training_step(net, spec.reset, x, labels, dtype, True)
        for _ in range(5):
            step()
        torch.cuda.synchronize()
        step_ms = models.time_steps(step, device, False)
        hosts = []
        for _ in range(10):
            torch.cuda.synchronize()
            start = time.perf_counter()
            step()
            hosts.append((time.perf_counter() - start) * 1e3)
        torch.cuda.synchronize()
        with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
            step()
            torch.cuda.synchronize()
        kernels = [e for e in prof.events() if e.device_type == DeviceType.CUDA]
        kernel_ms = sum(e.device_time_total for e in kernels) / 1e3
        breaks = sum(counters["graph_break"].values())
        print(f"{tag},{dtype},{step_ms:.3f},{statistics.median(hosts):.3f},"
              f"{counters['stats']['unique_graphs']},{breaks},"
              f"{counters['recompiles'].total() if 'recompiles' in counters else 0},"
              f"{len(kernels)},{kernel_ms:.3f}")  # fmt: skip
        names = {}
        for e in kernels:
            names[e.name[:90]] = names.get(e.name[:90], 0) + e.device_time_total
        for name, us in sorted(names.items(), key=lambda kv: -kv[1])[:12]:
            print(f"#   {us:9.1f} us  {name}")
        print("# breaks:", dict(counters["graph_break"]))
        table = prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=25)
        print("\n".join("# " + line[:150] for line in table.splitlines()))


if __name__ == "__main__":
    main(
        sys.argv[1], tuple(sys.argv[2].split(",")) if len(sys.argv) > 2 else ("float32", "bfloat16")
    )
