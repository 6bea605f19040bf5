#!/usr/bin/env bash
# Our MLP and transformer kernels (bin/kn-tool) side by side with PyTorch 1.13 on
# the CPU: same model, data, batch and threads. Figures go to docs/kernels.md by hand.
#   THREADS (2)  EPOCHS (2)  STEPS (8)  ACT (relu)  ROUNDS (3)
# The two sides alternate for ROUNDS rounds and the summary takes each side's best
# round: on a shared machine other people's work only ever slows a round down.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${PREDICTORS_BIN:-$ROOT/bin}
THREADS=${THREADS:-2} EPOCHS=${EPOCHS:-2} STEPS=${STEPS:-8} ACT=${ACT:-relu} ROUNDS=${ROUNDS:-3}
TMP=$(mktemp -d /tmp/kn-bench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS
# Both sides use OpenMP; on a shared, oversubscribed host spinning workers stall at
# barriers, so both run with sleeping workers (override with OMP_WAIT_POLICY=active).
export OMP_WAIT_POLICY=${OMP_WAIT_POLICY:-passive}
echo "kernels bench $(date -u +%Y-%m-%dT%H:%MZ) on $(uname -n), $(nproc) cores, threads $THREADS, OMP_WAIT_POLICY=$OMP_WAIT_POLICY, load $(cut -d' ' -f1-3 /proc/loadavg)"
PY=$ROOT/tests/bench/kernels_torch.py
/usr/bin/python3 "$PY" data "$TMP/data.bin"
for r in $(seq "$ROUNDS"); do
    "$BIN/kn-tool" bench-mlp "$TMP/data.bin" --threads "$THREADS" --epochs "$EPOCHS" --batch 1024 --act "$ACT" | tee -a "$TMP/log"
    /usr/bin/python3 "$PY" mlp "$TMP/data.bin" "$THREADS" "$EPOCHS" 1024 "$ACT" | tee -a "$TMP/log"
    "$BIN/kn-tool" bench-transformer --threads "$THREADS" --steps "$STEPS" | tee -a "$TMP/log"
    /usr/bin/python3 "$PY" transformer "$THREADS" "$STEPS" | tee -a "$TMP/log"
done
best() { grep "^$1 $2 " "$TMP/log" | sed -n "s|.*: \([0-9]*\) $3.*|\1|p" | sort -n | tail -n 1; }
km=$(best kernels mlp samples/s); tm=$(best pytorch mlp samples/s)
kt=$(best kernels transformer tokens/s); tt=$(best pytorch transformer tokens/s)
auc() { grep "^$1 mlp " "$TMP/log" | sed -n 's/.*val AUC \([0-9.]*\).*/\1/p' | tail -n 1; }
cpu() { grep "^$1 $2 " "$TMP/log" | sed -n "s|.* \([0-9]*\) $3 per CPU-second.*|\1|p" | sort -n | tail -n 1; }
kmc=$(cpu kernels mlp samples); tmc=$(cpu pytorch mlp samples)
ktc=$(cpu kernels transformer tokens); ttc=$(cpu pytorch transformer tokens)
ratio() { awk "BEGIN{printf \"%.2f\", $1/$2}"; }
echo "summary, wall clock (best of $ROUNDS): MLP $km vs PyTorch $tm samples/s = $(ratio $km $tm)x" \
     "(val AUC $(auc kernels) vs $(auc pytorch)); transformer $kt vs PyTorch $tt tokens/s = $(ratio $kt $tt)x"
echo "summary, per CPU-second (best of $ROUNDS): MLP $kmc vs $tmc samples = $(ratio $kmc $tmc)x;" \
     "transformer $ktc vs $ttc tokens = $(ratio $ktc $ttc)x"
if [ -x "$BIN/test-gpu" ]; then
    echo "GPU figures: not measured where there is no GPU; bin/test-gpu says:"
    "$BIN/test-gpu" | tail -n 1 || true
fi
