#!/usr/bin/env bash
# Two-GPU visit (nvidia-h200-x2): `bash scripts/two_gpu.sh` writes under $OUT
#   tests.log        the DDP parity (NCCL) and second-GPU tests, pytest summary line
#   digits.csv       examples/train_digits.py per neuron, 1 GPU and torchrun x2: accuracy,
#                    seconds, first-step gradient agreement (max relative difference)
#   models_ddp.csv   `python -m tether.benchmark.distributed` under torchrun x1 and x2
# Set TETHER_COMMIT to the tree's commit (the copy has no .git).
set -uo pipefail
export PYTHONUNBUFFERED=1 OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
source scripts/device_env.sh
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader
status=0

echo "=== tests $(date +%T)"
python3 -m pytest -q -p no:cacheprovider tests/test_distributed.py "tests/test_spike_memory.py::test_ddp_gradients_unchanged" \
  tests/test_launch.py::test_second_gpu_while_the_first_is_current 2>&1 | tee "$OUT/tests.log" ||
  status=1

if [ "${SKIP_DIGITS:-0}" = 1 ]; then echo "=== digits skipped"; else
echo "=== digits $(date +%T)"
echo "neuron,world,test_accuracy,seconds,grad_max_rel_diff" >"$OUT/digits.csv"
for neuron in $(python3 -c "from tether.neurons import OPS; print(*OPS)"); do
  log1=$OUT/digits_${neuron}_x1.log log2=$OUT/digits_${neuron}_x2.log
  python3 examples/train_digits.py --device cuda --neuron "$neuron" \
    --first-grads "$OUT/grads_${neuron}_x1.pt" >"$log1" 2>&1 || status=1
  torchrun --nproc_per_node=2 examples/train_digits.py --device cuda --neuron "$neuron" \
    --first-grads "$OUT/grads_${neuron}_x2.pt" >"$log2" 2>&1 || status=1
  python3 - "$neuron" "$log1" "$log2" >>"$OUT/digits.csv" <<'EOF' || status=1
import os, re, sys, torch
neuron, *logs = sys.argv[1:]
a, b = (torch.load(f"{os.environ['OUT']}/grads_{neuron}_x{w}.pt") for w in (1, 2))
diff = max(((a[k] - b[k]).abs().max() / a[k].abs().max().clamp_min(1e-30)).item() for k in a)
for world, log in zip((1, 2), logs):
    acc, sec = re.search(r"test accuracy ([\d.]+) in ([\d.]+) s", open(log).read()).groups()
    print(f"{neuron},{world},{acc},{sec},{diff:.3g}")
EOF
done
cp results/digits_*_cuda_x*.csv "$OUT/" 2>/dev/null
cat "$OUT/digits.csv"
fi

echo "=== models under DDP $(date +%T)"
for world in 1 2; do
  torchrun --nproc_per_node=$world -m tether.benchmark.distributed --out "$OUT/models_ddp.csv" \
    --models cifar_conv,shd_mlp --sizes 0 --impls tether,spikingjelly \
    --dtypes float32,bfloat16 || status=1
done
cd "$OUT" && rm -f grads_*.pt && tar czf logs.tar.gz --remove-files digits_*.log digits_*_cuda_*.csv 2>/dev/null
echo "=== done $(date +%T)"
exit $status
