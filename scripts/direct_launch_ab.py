"""Model training steps with Triton's launcher against PyTorch's static one
(``Launcher.direct``): ``python scripts/direct_launch_ab.py OUT.csv [ROUNDS]``.

Eager tether steps of cifar_conv (its three sizes) and shd_mlp (LIF and ALIF, T=250), fp32
and bf16, with ``Launcher.direct`` off then on, ROUNDS times (default 2) in alternation;
plans are dropped at each switch (a plan keeps the launch it got). Rows: the model rows of
``tether.benchmark.models`` with ``direct`` and ``round`` columns, impl
``tether@static-launcher`` / ``tether@triton-launcher``.
"""

import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import pandas as pd
import torch

from tether.benchmark import models
from tether.functional import ops
from tether.kernels.launch import Launcher

out = Path(sys.argv[1])
rounds = int(sys.argv[2]) if len(sys.argv) > 2 else 2
models.MODELS["shd_mlp"] = replace(
    models.MODELS["shd_mlp"], sizes=models.MODELS["shd_mlp"].sizes[:1]
)
frames = []
with tempfile.TemporaryDirectory() as tmp:
    for round_ in range(rounds):
        for direct in (False, True):
            Launcher.direct = direct
            ops._PLANS.clear()
            csv = Path(tmp) / f"{round_}_{direct}.csv"
            rows = models.run_models(
                ["cifar_conv", "shd_mlp"], ["tether"], ["float32", "bfloat16"], [False],
                False, torch.device("cuda"), csv,
            )  # fmt: skip
            # impl renamed: these rows are not the model benchmark's (``goals`` reads those)
            impl = "tether@" + ("static" if direct else "triton") + "-launcher"
            frames.append(pd.DataFrame(rows).assign(impl=impl, direct=direct, round=round_))
            for r in rows:
                print(round_, direct, r["model"], r["neuron"], r["dtype"], r["layout"], r["T"],
                      f"{r['ms']:.3f} ms", r["ok"], flush=True)  # fmt: skip
table = pd.concat(frames, ignore_index=True)
table.to_csv(out, index=False, float_format="%.6g")
key = ["model", "neuron", "dtype", "layout", "T", "batch"]
ms = table.groupby([*key, "direct"])["ms"].median().unstack("direct")
ms["direct/triton"] = ms[True] / ms[False]
print(ms.round(4).to_string())
