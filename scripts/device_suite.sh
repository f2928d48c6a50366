#!/usr/bin/env bash
# One visit to the GPU machine: `bash scripts/device_suite.sh STAGE...`, outputs under $OUT.
# Stages:
#   tests        the test suite on the GPU, 8 processes (the sm_90 AOT tests need no GPU: in CI)
#   bench        LIF at the six standard shapes: tuned, untuned, eager, compile, peers
#   bench-ops    PLIF and ALIF: tuned, untuned, eager
#   overhead     host time per call (N=1024: the GPU work is negligible)
#   tune-fwd     LIF fp32 forward over the full space at the standard shapes
#   tune-lif     LIF fp32 forward and backward, full space, standard shapes
#   tune-grid    LIF fp32 over the full T x N grid, micro space
#   tune-rest    PLIF/ALIF fp32 and LIF/PLIF/ALIF bf16, quick grid, quick space
#   tune-train   backward with parameter gradients: PLIF fp32 (standard grid + 8x16384) and
#                LIF/PLIF/ALIF bf16 (quick grid), quick space; one call per op
#   tune-grid-fwd, tune-grid-bwd   tune-grid split in two calls (each writes its own CSV)
#   tune-bwd-tables  the full T x N grid (micro space) for the backward tables tune-grid-bwd
#                and tune-tables' first visit left: ALIF fp32, LIF/PLIF/ALIF bf16
#   tune-tables  PLIF/ALIF bf16 backward with gradients (quick grid, quick space), then the
#                full T x N grid (micro space) for every op x direction x dtype but LIF fp32
#   retune-fwd   every forward table again (after a forward-kernel edit: the per-direction
#                hash keeps the backward entries): LIF fp32 standard shapes over the full
#                space, PLIF/ALIF fp32 and all bf16 quick grid, then the full grid (micro)
# The machine has torch and Triton; peers and pytest-xdist travel as wheels in .whl (carried).
# Set TETHER_COMMIT to the commit of the tree: the copy has no .git.
set -uo pipefail
export PYTHONUNBUFFERED=1 OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader
status=0
tune() {  # tune NAME ARGS...: one sweep CSV per call, winners merged into the table
  local name=$1; shift
  python3 bench.py tune "$@" --out "$OUT/sweep_$name.csv" || status=1
  cp tether/tuning/winners.json "$OUT/"
}
for stage in "$@"; do
  echo "=== $stage $(date +%T)"
  case $stage in
    tests)
      python3 -m pytest tests -q -p no:cacheprovider -n 8 -k "not compiles_for_sm90" 2>&1 | tee "$OUT/pytest_gpu.log" | tail -15 || status=1 ;;
    bench)
      python3 bench.py run --ops lif --impls tether,untuned,graphed,eager,spikingjelly,snntorch --out "$OUT/bench.csv" || status=1
      timeout 300 python3 bench.py run --ops lif --impls compile --shapes 8x1048576,32x1048576,8x8388608,32x8388608 --out "$OUT/bench.csv" || status=1 ;;
    bench-ops)
      python3 bench.py run --ops plif,alif --impls tether,untuned,graphed,eager --out "$OUT/bench.csv" || status=1 ;;
    overhead)
      python3 bench.py run --ops lif,plif,alif --impls tether,compile --shapes 8x1024 --out "$OUT/overhead.csv" || status=1 ;;
    tune-fwd)
      tune lif_fwd_float32 --ops lif --directions fwd --dtypes float32 --grid standard --no-baselines ;;
    tune-lif)
      tune lif_float32 --ops lif --dtypes float32 --grid standard --no-baselines ;;
    tune-grid)
      tune grid_lif_float32 --ops lif --dtypes float32 --grid full --space micro --no-baselines ;;
    tune-train)
      tune plif_bwd_float32_grads --ops plif --directions bwd --dtypes float32 --space quick --no-baselines \
        --shapes 8x16384,8x1048576,32x1048576,128x1048576,8x8388608,32x8388608,128x4194304
      for op in lif plif alif; do
        tune ${op}_bwd_bfloat16_grads --ops $op --directions bwd --dtypes bfloat16 --grid quick --space quick --no-baselines
      done ;;
    tune-grid-fwd)
      tune grid_lif_fwd_float32 --ops lif --directions fwd --dtypes float32 --grid full --space micro --no-baselines ;;
    tune-grid-bwd)
      tune grid_lif_bwd_float32 --ops lif --directions bwd --dtypes float32 --grid full --space micro --no-baselines ;;
    tune-tables)
      for op in plif alif; do
        tune ${op}_bwd_bfloat16_grads --ops $op --directions bwd --dtypes bfloat16 --grid quick --space quick --no-baselines
      done
      for dtype in float32 bfloat16; do
        for op in lif plif alif; do
          [ $op-$dtype = lif-float32 ] && continue  # tune-grid-fwd/-bwd
          for dir in fwd bwd; do
            tune grid_${op}_${dir}_${dtype} --ops $op --directions $dir --dtypes $dtype --grid full --space micro --no-baselines
          done
        done
      done ;;
    tune-bwd-tables)
      for op_dtype in alif-float32 lif-bfloat16 plif-bfloat16 alif-bfloat16; do
        op=${op_dtype%-*} dtype=${op_dtype#*-}
        tune grid_${op}_bwd_${dtype} --ops $op --directions bwd --dtypes $dtype --grid full --space micro --no-baselines
      done ;;
    retune-fwd)  # coarse first: a later sweep's winner replaces an earlier one in its bucket
      for dtype in float32 bfloat16; do
        for op in lif plif alif; do
          tune grid_${op}_fwd_${dtype} --ops $op --directions fwd --dtypes $dtype --grid full --space micro --no-baselines
        done
      done
      tune fwd_quick --ops plif,alif --directions fwd --dtypes float32 --grid quick --space quick --no-baselines
      tune fwd_bfloat16 --ops lif,plif,alif --directions fwd --dtypes bfloat16 --grid quick --space quick --no-baselines
      tune lif_fwd_float32 --ops lif --directions fwd --dtypes float32 --grid standard --no-baselines ;;
    tune-rest)
      tune bf16 --ops lif,plif,alif --dtypes bfloat16 --grid quick --space quick --no-baselines
      tune ops_fp32 --ops plif,alif --dtypes float32 --grid quick --space quick --no-baselines ;;
    *) echo "unknown stage $stage"; status=1 ;;
  esac
done
echo "=== done $(date +%T)"
exit $status
