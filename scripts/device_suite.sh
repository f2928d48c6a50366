#!/usr/bin/env bash
# What to measure and tune on a GPU machine: `bash scripts/device_suite.sh STAGE...` runs
# each stage's commands (outputs under $OUT); `--print STAGE...` lists them without running.
# Stages:
#   test            the test suite on the GPU (the sm_90 compile tests need no GPU: in CI),
#                   one line a test into $OUT/tests.log, so a run cut short still names its
#                   failures (an H100 run at 664fb13 cut at 360 s had one, unnamed)
#   bench-lif       LIF at the standard shapes: tuned, untuned, graphed, eager, peers, compile
#   bench-ops       every other neuron: tuned, untuned, graphed, eager
#   bench-overhead  host time per call (N=1024: the GPU work is negligible; N=2^20: issue 11's
#                   eager and reduce-overhead goals), tether, graphed, tether-ro
#   bench-long      the long sequences (512x8192, 1024x65536, 2048x4096), every op, fp32:
#                   tether, graphed, SpikingJelly (torch.compile is skipped beyond T=64)
#   tune-fwd        every forward table: the T x N grid (micro space) per op and dtype, the
#                   quick grid (quick space) per dtype, then LIF fp32 at the standard shapes
#                   (full space); a later sweep's winner replaces an earlier one in its bucket
#   tune-bwd        every backward table (with parameter gradients, as they train), in the
#                   same order; the standard shapes for LIF and PLIF fp32 in the quick space
#   open-rows       the per-call rows of the open goals (issues 11, 13, 15; `tether-bench goals
#                   --unmet`): LIF and ALIF fp32 fwd+bwd at 8x2^20 (eager), 512x8192 and
#                   1024x65536 (graphed), PLIF and ALIF fp32 and bf16 at 32x8388608 (graphed)
#   host-ab         host time of a LIF call with Triton's launcher against the static one
#                   (scripts/host_breakdown.py, ~40 s), then the eager model steps with either
#                   in alternation (scripts/direct_launch_ab.py, ~100 s on an H100)
#   models          the model benchmarks' training steps, fp32 and bf16, eager: tether,
#                   SpikingJelly (cifar_conv, shd_mlp; the CIFAR conv net of issues 11 and 16)
#   spike-memory    issue 16's goals on cifar_conv PLIF T=8 B=32 (scripts/spike_memory_gpu.py,
#                   ~5 minutes on an H100): steps and peak memory of tether, tether+spikemem
#                   and SpikingJelly, the paired step-time cost, the largest batch
#   spike-memory-profile issue 16: where spike memory's step time goes (host, kernels, saves
#                   and unpacks a step, the top kernels and host ops with and without;
#                   scripts/spike_memory_profile.py, ~20 s; on the H100 at daad870 all of it
#                   was host time: 75 saves a step, 2 of them spikes)
#   spike-hooks-ab  issue 16: spike memory's step cost against a no-op pair of saved-tensor
#                   hooks and with single-threaded backward (scripts/spike_memory_hooks_ab.py,
#                   ~2 minutes): is the rest of the cost the hooks themselves, or which of
#                   spike memory's parts (finding the spikes, the unpacks)?
#   pool-ab         tether.max_pool2d against torch's at cifar_conv's pools (fwd, fwd+bwd,
#                   saved bytes), then tether's cifar_conv step with either pool in
#                   alternation, with its peak memory (scripts/pool_bench.py, ~1.5 minutes)
#   profile-compiled issue 11: where the compiled cifar_conv fp32 step's time goes, tether
#                   against SpikingJelly, channels_last (size 0) and contiguous (size 2)
#                   (scripts/profile_step.py; on the H100 at 01588be tether compiled was 0.99x
#                   SpikingJelly channels_last, 1.027x contiguous)
#   pairing-ab      training forwards reused from far buckets (the nearest fwd_train entry of
#                   the backward's layout, at any distance) against the fallback, at the
#                   standard shapes where that happens: LIF and ALIF fp32 (config_ab.py)
#   lean2-ab        the backward at lean levels 0, 1 and 2 (space.py: level 2 cuts the loop's
#                   instructions an element by a third, scripts/sass_count.py), each op and
#                   dtype at 32x8388608 and 128x4194304 (forwards as picked), then every
#                   kernel at levels 1 and 2 at the long shapes, fp32
#   tune-lean2      the backward of every op in bf16 (where lean2-ab found level 2 faster:
#                   instruction-bound) at the large-N standard shapes in the micro space,
#                   whose prefetching configs have lean-2 twins
#   tune-alif-fp32  ALIF fp32 at 32x8388608 and 128x4194304 (issue 15: <= 2.1 ms, 90% of copy
#                   on its own model): backward in the micro space (chunk 16 and lean-2
#                   twins; the H100 runs the untuned default there, chunk 8, level 0), then the
#                   training forward paired with its winner (~2 minutes)
#   program-sums-ab the backward's parameter sums per program against per neuron (799c668),
#                   per-channel PLIF at cifar_conv's layers, contiguous, T=4 and 8, fp32 and
#                   bf16, graphed (scripts/program_sums_ab.py); then cifar_conv compiled, fp32
#                   (issue 11: contiguous tether / SpikingJelly <= 1)
#   tune-shipped    each shipped pick at the long shapes against the same at lean 2 (every op,
#                   fp32: backward, then the training forward paired with its winner, then
#                   the inference forward; `--space shipped`, a few compiles a point)
#   sum-segments-ab the segments' parameter sums in the kernel (SUM_SEGMENTS, 8c45742) against
#                   a torch.sum after it, PLIF and ALIF at 512x8192 and 2048x4096, graphed and
#                   checked against eager; then the long-sequence tests (segments) on the GPU
#   alif16-ab       ALIF's backward at chunk 16 on one neuron a thread (128 on 4 warps, 256 on
#                   8: no spill at levels 0 and 2, sass_count; 2 a thread spills but bf16 at
#                   level 2, also timed) against
#                   the table's chunk-8 pick: 1 B an element of checkpoints less (issue 15).
#                   H100 at 4cc2270 (32x8388608 only): one a thread is 60-240x slower, two
#                   a thread 2.311 ms fp32 / 1.365 bf16 against 2.220 / 1.367 (README)
#   table-ab        a winners-table change, graphed, at the calls it moves (issue 13; the
#                   segmented-winner rule of 1fbce2b/498c666 and the ALIF entries at 512x8192):
#                   every op fp32 under TETHER_WINNERS=$OLD_WINNERS (put the old table in the
#                   tree: `git show REV:tether/tuning/winners.json > old_winners.json`), then
#                   under the shipped table, alternated twice (scripts/table_moves.py --all
#                   lists the moved calls); then the rule's own move at LIF and PLIF 2048x8192
#                   (8 segments from the shape, 16 before from 2048x4096's entry; config_ab.py)
#   tree-ab         an older tree against this one, alternated twice: table-ab's graphed calls
#                   and two short ones (8x4096, 64x8192: 7e22200 -> da79ff8 moves 263 calls, 204
#                   of them the H200's, most at T <= 128 and N <= 8192: results/static/
#                   table_moves_7e22200_da79ff8.csv), then spike memory's
#                   paired cifar_conv steps (scripts/spike_memory_gpu.py
#                   --steps-only, this tree's script on either tether). Put the old tree in
#                   the copy first (`git archive REV | tar -x -C old_tree`, untracked; the
#                   copy has no .git) and name it: OLD_TREE=old_tree OLD_COMMIT=REV
#   long65k-ab      LIF and PLIF fp32 at 1024x65536 (issue 13: 85% of copy; its bucket is
#                   untuned, the table's pick is 512 on 4 warps, 128 programs): the pick
#                   against 512-1024 programs at lean 2 with prefetch, 1 or 2 neurons a
#                   thread (sass_count: 4 a thread and 32-step chunks spill, fp32)
#   fwd-lean-ab     the forwards (inference, and training with the backward as picked) at
#                   lean 0 and 1 at the large-N standard shapes, fp32 and bf16: their spaces
#                   hold no lean configs, and lean 1 cuts the bf16 training forward's
#                   instructions an element by 16-20% (results/static/sass_fwd_train_bf16.csv)
#   fill-ab         the untuned defaults with and without the small-layer rule (space.fill_gpu;
#                   MIN_PROGRAMS=0 turns it off) at few neurons, every op, fp32, fwd and fwdbwd
#   tune-long       long sequences over few neurons (issue 13), fp32, LIF, PLIF and ALIF at
#                   512x8192, 2048x4096, 1024x65536: backward (the long space, segments too), then the
#                   training forward paired with its winner (no inference forward: tune it
#                   with --directions fwd). On the H200 at ff89ce5 LIF and PLIF took ~150 s
#                   each; ALIF's long space ran past 250 s, so ALIF runs --space segments
#                   (its backward only in segments, and the defaults: ~270 s at e241b3c). bf16
#                   doubles it (--dtypes bfloat16); those timings had 2 points, not 3 (the
#                   compiles are shared: a third point adds timing only). On the H100 at
#                   403d506 ALIF at 512x8192 alone ran past 200 s: give ALIF a call of its own
# After a kernel edit, first `python scripts/same_ptx.py REV --restamp` (no GPU: keeps the
# entries whose compiled code is unchanged; a new switch or level: --new-switches NAME=VALUE,
# --new-levels LEAN=1, as at b0ba9c3 and 205db31); then, for what it dropped or when the code of
# every config changed, tune-fwd after a forward edit (the per-direction hash keeps the
# backward entries), tune-bwd after a backward edit. The machine has torch and Triton; peers and
# pytest-xdist travel as wheels in .whl (carried). Set TETHER_COMMIT to the commit of the
# tree: the copy has no .git.
set -uo pipefail
export PYTHONUNBUFFERED=1 OUT=${OUT:-/tmp/out}

OPS=$(python3 -c "from tether.neurons import OPS; print(*OPS)")
OTHERS=$(python3 -c "from tether.neurons import OPS; print(','.join(OPS[1:]))")
DTYPES="float32 bfloat16"
BENCH="python3 bench.py run --out \$OUT/bench.csv"
# the graphed fwd+bwd calls a winners-table change moved (table-ab, tree-ab)
MOVED="--ops ${OPS// /,} --modes fwdbwd --dtypes float32 --impls graphed --shapes 512x8192,2048x4096,2048x8192,256x16384,1024x16384"

plan() {  # plan STAGE: the stage's commands, one a line
  case $1 in
    test)
      echo 'python3 -m pytest tests -v -rfE -p no:cacheprovider -n 16 -k "not compiles_for_sm90" > $OUT/tests.log 2>&1; rc=$?; tail -3 $OUT/tests.log; grep -E "(FAILED|ERROR) " $OUT/tests.log; [ $rc = 0 ]' ;;
    bench-lif)
      echo "$BENCH --ops lif --impls tether,untuned,graphed,eager,spikingjelly,snntorch"
      echo "timeout 300 $BENCH --ops lif --impls compile" ;;
    bench-ops)
      echo "$BENCH --ops $OTHERS --impls tether,untuned,graphed,eager" ;;
    bench-long)
      echo "$BENCH --ops ${OPS// /,} --shapes 512x8192,1024x65536,2048x4096 --impls tether,graphed,spikingjelly" ;;
    bench-overhead)
      echo "python3 bench.py run --ops ${OPS// /,} --impls tether,graphed,tether-ro,compile --shapes 8x1024,8x1048576 --out \$OUT/overhead.csv" ;;
    open-rows)
      echo "python3 bench.py run --ops lif,alif --modes fwdbwd --dtypes float32 --impls tether,graphed --shapes 8x1048576,512x8192,1024x65536 --out \$OUT/open_rows.csv"
      echo "python3 bench.py run --ops plif,alif --modes fwdbwd --dtypes float32,bfloat16 --impls graphed --shapes 32x8388608 --out \$OUT/open_rows.csv" ;;
    host-ab)
      echo "python3 scripts/host_breakdown.py \$OUT/host_breakdown.csv"
      echo "python3 scripts/direct_launch_ab.py \$OUT/direct_launch_ab.csv" ;;
    models)
      echo "python3 bench.py models --models cifar_conv,shd_mlp --impls tether,spikingjelly --dtypes float32,bfloat16 --compiled eager --out \$OUT/models.csv" ;;
    spike-memory)
      echo "python3 scripts/spike_memory_gpu.py --out \$OUT --budget-s 300" ;;
    pool-ab)
      echo "python3 scripts/pool_bench.py \$OUT/pool_bench.csv \$OUT/pool_model_ab.csv" ;;
    spike-memory-profile)
      echo "python3 scripts/spike_memory_profile.py --out \$OUT" ;;
    spike-hooks-ab)
      echo "python3 scripts/spike_memory_hooks_ab.py \$OUT/spike_memory_hooks_ab.csv" ;;
    profile-compiled)
      for size in 0 2; do
        for impl in tether spikingjelly; do
          echo "python3 scripts/profile_step.py \$OUT cifar_conv $impl --compiled --size $size"
        done
      done ;;
    pairing-ab)
      echo "python3 scripts/config_ab.py \$OUT/pairing_ab.csv --ops lif,alif --dtypes float32 --shapes 32x8388608,128x4194304,8x1048576 --configs table,table@fallback" ;;
    lean2-ab)
      echo "python3 scripts/lean_ab.py \$OUT/lean2_ab.csv --levels 0,1,2 --backward --modes fwdbwd --dtypes float32,bfloat16 --shapes 32x8388608,128x4194304"
      echo "python3 scripts/lean_ab.py \$OUT/lean2_ab_long.csv --levels 1,2 --shapes 512x8192,2048x4096,1024x65536" ;;
    fill-ab)
      for programs in 0 128; do
        echo "python3 -c 'import sys, tether.tuning.space as s; s.MIN_PROGRAMS = int(sys.argv[1]); from tether.benchmark.cli import app; app(sys.argv[2:])' $programs run --ops ${OPS// /,} --modes fwd,fwdbwd --impls untuned --dtypes float32 --shapes 512x8192,2048x4096,1024x65536,8x16384,64x16384,256x65536 --out \$OUT/fill_ab_$programs.csv"
      done ;;
    tune-fwd | tune-bwd)
      local dir=${1#tune-}
      for dtype in $DTYPES; do
        for op in $OPS; do
          echo "tune grid_${op}_${dir}_${dtype} --ops $op --directions $dir --dtypes $dtype --grid full --space micro"
        done
        echo "tune quick_${dir}_${dtype} --ops ${OPS// /,} --directions $dir --dtypes $dtype --grid quick --space quick"
      done
      if [ "$dir" = fwd ]; then
        echo "tune standard_fwd_float32 --ops lif --directions fwd --dtypes float32 --grid standard"
      else
        echo "tune standard_bwd_float32 --ops lif,plif --directions bwd --dtypes float32 --grid standard --space quick"
      fi ;;
    tune-lean2)
      for op in $OPS; do
        echo "tune lean2_${op}_bwd_bfloat16 --ops $op --directions bwd --dtypes bfloat16 --shapes 8x1048576,32x1048576,128x1048576,8x8388608,32x8388608,128x4194304 --space micro"
      done ;;
    sum-segments-ab)
      echo "python3 scripts/segment_sums_ab.py \$OUT/segment_sums_ab.csv --ops plif,alif --shapes 512x8192,2048x4096"
      echo "timeout 200 python3 -m pytest tests/test_long_sequences.py -q -n 8 -p no:cacheprovider" ;;
    alif16-ab)
      echo "python3 scripts/config_ab.py \$OUT/alif16_ab.csv --ops alif --dtypes float32,bfloat16 --shapes 32x8388608,128x4194304 --configs table,128/2/8/32/pl2,128/2/16/32/pl2,128/4/16/32/p,128/4/16/32/pl2,256/8/16/32/pl2" ;;
    fwd-lean-ab)
      echo "python3 scripts/lean_ab.py \$OUT/fwd_lean_ab.csv --levels 0,1 --forward --modes fwd,fwdbwd --dtypes float32,bfloat16 --shapes 32x8388608,128x4194304,8x8388608" ;;
    table-ab)
      for round in 1 2; do
        for table in "\${OLD_WINNERS:?set OLD_WINNERS}" tether/tuning/winners.json; do
          echo "TETHER_WINNERS=$table python3 bench.py run $MOVED --out \$OUT/table_ab_\$(basename $table .json)_$round.csv"
        done
      done
      echo "python3 scripts/config_ab.py \$OUT/segments_rule_ab.csv --ops lif,plif --dtypes float32 --shapes 2048x8192 --configs table,64/1/16/32/pl2s16" ;;
    tree-ab)
      local old='(cd "${OLD_TREE:?set OLD_TREE}" && PYTHONPATH=/tmp/site:$PWD TETHER_COMMIT=${OLD_COMMIT:?set OLD_COMMIT}'
      local shapes="$MOVED,8x4096,64x8192"
      local steps="--steps-only --impls tether,tether+spikemem"
      echo "$old python3 -c 'import tether; print(\"old tree:\", tether.__file__)')"
      for round in 1 2; do
        echo "$old python3 bench.py run $shapes --out \$OUT/tree_ab_\${OLD_COMMIT}_$round.csv)"
        echo "python3 bench.py run $shapes --out \$OUT/tree_ab_\${TETHER_COMMIT}_$round.csv"
      done
      for round in 1 2; do
        echo "$old python3 \$OLDPWD/scripts/spike_memory_gpu.py $steps --out \$OUT/tree_ab_sm_\${OLD_COMMIT}_$round)"
        echo "python3 scripts/spike_memory_gpu.py $steps --out \$OUT/tree_ab_sm_\${TETHER_COMMIT}_$round"
      done ;;
    long65k-ab)
      echo "python3 scripts/config_ab.py \$OUT/long65k_ab.csv --ops lif,plif --dtypes float32 --shapes 1024x65536 --configs table,128/2/16/32/pl2,64/1/16/32/pl2,128/4/16/32/pl2,256/8/16/32/pl2" ;;
    program-sums-ab)
      echo "python3 scripts/program_sums_ab.py \$OUT/program_sums_ab.csv"
      echo "python3 bench.py models --models cifar_conv --impls tether,spikingjelly --dtypes float32 --compiled compiled --out \$OUT/models_cifar_compiled.csv" ;;
    tune-alif-fp32)
      echo "tune micro_alif_float32 --ops alif --directions bwd,fwd_train --dtypes float32 --shapes 32x8388608,128x4194304 --space micro" ;;
    tune-shipped)
      echo "tune shipped_long_float32 --ops ${OPS// /,} --directions bwd,fwd_train,fwd --dtypes float32 --shapes 512x8192,2048x4096,1024x65536 --space shipped" ;;
    tune-long)
      for op in $OPS; do
        space=long; [ "$op" = alif ] && space=segments
        echo "tune long_${op}_float32 --ops $op --directions bwd,fwd_train --dtypes float32 --shapes 512x8192,2048x4096,1024x65536 --space $space"
      done ;;
    *) return 1 ;;
  esac
}

tune() {  # tune NAME ARGS...: one sweep CSV per call, winners merged into the table
  local name=$1; shift
  python3 bench.py tune "$@" --no-baselines --out "$OUT/sweep_$name.csv" &&
    cp tether/tuning/winners.json "$OUT/"
}

if [ "${1:-}" = --print ]; then
  shift
  for stage in "$@"; do plan "$stage" || echo "unknown stage $stage"; done
  exit
fi
mkdir -p "$OUT"
source scripts/device_env.sh
nvidia-smi --query-gpu=name,memory.total,clocks.max.sm --format=csv,noheader
status=0
for stage in "$@"; do
  echo "=== $stage $(date +%T)"
  plan "$stage" >/dev/null || { echo "unknown stage $stage"; status=1; continue; }
  mapfile -t commands < <(plan "$stage")
  for command in "${commands[@]}"; do
    echo "--- $command"
    eval "$command" || status=1
  done
done
echo "=== done $(date +%T)"
exit $status
