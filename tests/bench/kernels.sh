#!/usr/bin/env bash
# Our MLP and transformer kernels (bin/kn-tool) side by side with PyTorch 1.13 on
# the CPU: same model, data, batch and threads. Figures go to docs/kernels.md by hand.
#   THREADS (2)  EPOCHS (3)  STEPS (10)  ACT (relu)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
BIN=${PREDICTORS_BIN:-$ROOT/bin}
THREADS=${THREADS:-2} EPOCHS=${EPOCHS:-3} STEPS=${STEPS:-10} ACT=${ACT:-relu}
TMP=$(mktemp -d /tmp/kn-bench.XXXXXX)
trap 'rm -rf "$TMP"' EXIT
export OMP_NUM_THREADS=$THREADS OPENBLAS_NUM_THREADS=$THREADS
echo "== kernels bench $(date -u +%Y-%m-%dT%H:%MZ) on $(uname -n), $(nproc) cores, threads $THREADS (load: $(cut -d' ' -f1-3 /proc/loadavg))"
/usr/bin/python3 "$ROOT/tests/bench/kernels_torch.py" data "$TMP/data.bin"
"$BIN/kn-tool" bench-mlp "$TMP/data.bin" --threads "$THREADS" --epochs "$EPOCHS" --batch 1024 --act "$ACT"
/usr/bin/python3 "$ROOT/tests/bench/kernels_torch.py" mlp "$TMP/data.bin" "$THREADS" "$EPOCHS" 1024 "$ACT"
"$BIN/kn-tool" bench-transformer --threads "$THREADS" --steps "$STEPS"
/usr/bin/python3 "$ROOT/tests/bench/kernels_torch.py" transformer "$THREADS" "$STEPS"
if [ -x "$BIN/test-gpu" ]; then
    echo "GPU: not measured here unless a GPU is present; bin/test-gpu says:"
    "$BIN/test-gpu" | tail -n 1 || true
fi
