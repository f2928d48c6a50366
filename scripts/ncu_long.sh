#!/usr/bin/env bash
# Stall reasons of the neuron kernels at one shape: bash scripts/ncu_long.sh OUT.txt [T N
# DTYPE OP] (default 512 8192 float32 lif). Profiles the tuned training step (forward +
# backward) and the inference forward after a warm-up; needs ncu on PATH and permission to
# read the GPU's counters.
set -euo pipefail
out=$1; t=${2:-512}; n=${3:-8192}; dtype=${4:-float32}; op=${5:-lif}
ncu --target-processes all -k regex:neuron --launch-skip 6 --launch-count 3 \
  --section SpeedOfLight --section WarpStateStats --section Occupancy --section LaunchStats \
  --section MemoryWorkloadAnalysis --section SchedulerStats --section ComputeWorkloadAnalysis \
  python3 - "$t" "$n" "$dtype" "$op" > "$out" 2>&1 <<'PY'
import sys
import torch
import tether
t, n, dtype, op = int(sys.argv[1]), int(sys.argv[2]), getattr(torch, sys.argv[3]), sys.argv[4]
x = torch.randn(t, n, device="cuda", dtype=dtype, requires_grad=True)
neuron = {"lif": tether.LIF, "plif": tether.PLIF, "alif": tether.ALIF}[op](stateful=False).cuda()
for _ in range(3):  # launches: training forward, backward, inference forward; ncu takes the 3rd
    neuron(x).sum().backward()
    with torch.no_grad():
        neuron(x)
torch.cuda.synchronize()
PY
