#!/usr/bin/env bash
# Stall reasons of the neuron kernels at a long shape: bash scripts/ncu_long.sh OUT.txt [T N].
# Profiles the tuned LIF training step (forward + backward) and the inference forward, fp32,
# after a warm-up; needs ncu on PATH and permission to read the GPU's counters.
set -euo pipefail
out=$1; t=${2:-512}; n=${3:-8192}
ncu --target-processes all -k regex:neuron --launch-skip 6 --launch-count 3 \
  --section SpeedOfLight --section WarpStateStats --section Occupancy --section LaunchStats \
  python3 - "$t" "$n" > "$out" 2>&1 <<'PY'
import sys
import torch
import tether
t, n = int(sys.argv[1]), int(sys.argv[2])
x = torch.randn(t, n, device="cuda", requires_grad=True)
lif = tether.LIF(stateful=False)
for _ in range(3):  # launches: training forward, backward, inference forward; ncu takes the 3rd
    lif(x).sum().backward()
    with torch.no_grad():
        lif(x)
torch.cuda.synchronize()
PY
