#!/usr/bin/env bash
# One visit to the GPU machine: `bash scripts/device_suite.sh STAGE...`, outputs under $OUT.
# Stages: tests | bench-lif | bench-compile | tune-lif | tune-rest | bench-tuned
# The machine has torch and Triton; peers travel as wheels in .whl (see the README).
set -uo pipefail
export PYTHONUNBUFFERED=1 OUT=${OUT:-/tmp/out}
mkdir -p "$OUT"
if ls .whl/*.whl >/dev/null 2>&1; then
  python3 -m pip install -q --no-index --no-deps --no-compile --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site:$PWD
else
  export PYTHONPATH=$PWD
fi
status=0
for stage in "$@"; do
  echo "=== $stage"
  case $stage in
    tests)
      python3 -m pytest tests -q -p no:cacheprovider -k "not compile" 2>&1 | tee "$OUT/pytest_gpu.log" | tail -4 || status=1 ;;
    bench-lif)
      python3 bench.py run --ops lif --impls tether,eager,spikingjelly,snntorch --out "$OUT/bench.csv" || status=1 ;;
    bench-compile)
      python3 bench.py run --ops lif --impls compile --shapes 8x1048576,32x1048576,8x8388608,32x8388608 --out "$OUT/bench.csv" || status=1 ;;
    bench-ops)
      python3 bench.py run --ops plif,alif --impls tether,eager --out "$OUT/bench.csv" || status=1 ;;
    tune-lif)
      python3 bench.py tune --ops lif --dtypes float32 --grid standard --no-baselines --out "$OUT/sweep_lif_float32.csv" || status=1
      cp tether/tuning/winners.json "$OUT/" ;;
    tune-rest)
      python3 bench.py tune --ops lif,plif,alif --dtypes bfloat16 --grid quick --space quick --no-baselines --out "$OUT/sweep_bf16.csv" || status=1
      python3 bench.py tune --ops plif,alif --dtypes float32 --grid quick --space quick --no-baselines --out "$OUT/sweep_ops_fp32.csv" || status=1
      cp tether/tuning/winners.json "$OUT/" ;;
    *) echo "unknown stage $stage"; status=1 ;;
  esac
done
exit $status
