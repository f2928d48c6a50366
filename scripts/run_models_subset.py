"""Device-visit driver: ``python scripts/run_models_subset.py OUT.csv MODEL SIZES IMPLS DTYPES
COMPILED [KINDS]`` runs ``tether.benchmark.models.run_models`` on a subset of a model's full sizes
(SIZES: comma list of indexes into ``MODELS[MODEL].sizes``; COMPILED: 0, 1 or 0,1)."""

import sys
from dataclasses import replace
from pathlib import Path

import torch

from tether.benchmark import models

out, model, sizes, impls, dtypes, compiled = sys.argv[1:7]
spec = models.MODELS[model]
kinds = tuple(sys.argv[7].split(",")) if len(sys.argv) > 7 else spec.kinds
models.MODELS[model] = replace(
    spec, sizes=tuple(spec.sizes[int(i)] for i in sizes.split(",")), kinds=kinds
)
rows = models.run_models(
    [model], impls.split(","), dtypes.split(","), [c == "1" for c in compiled.split(",")],
    False, torch.device("cuda"), Path(out), on_point=print, on_skip=print,
    on_fail=lambda point, err: print("FAIL", point, repr(err)[:400]),
)  # fmt: skip
for r in rows:
    print(r["model"], r["neuron"], r["impl"], r["compiled"], r["dtype"], r["layout"], r["T"],
          f"{r['ms']:.3f} ms", f"{r['peak_mem_mb']:.0f} MB", f"share {r['neuron_share']:.3f}",
          r["ok"], r.get("note", ""))  # fmt: skip
