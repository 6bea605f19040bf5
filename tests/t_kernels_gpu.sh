#!/usr/bin/env bash
# The CUDA build of the kernels links and starts: on a GPU host it runs every
# GPU-vs-CPU comparison (bin/test-gpu); elsewhere it must say plainly that it
# skipped (exit 77 with the reason), never pass silently.
. "$ROOT/tests/lib.sh"
[ -x "$PREDICTORS_BIN/test-gpu" ] || t_fail "test-gpu not built (nvcc missing?)"
# ASan's shadow gap collides with the CUDA driver's mappings on a real GPU.
out=$(ASAN_OPTIONS=${ASAN_OPTIONS:+$ASAN_OPTIONS:}protect_shadow_gap=0 "$PREDICTORS_BIN/test-gpu" 2>&1)
rc=$?
echo "$out"
if [ $rc = 77 ]; then
    echo "$out" | grep -q "^SKIP test-gpu: no usable GPU" || t_fail "skip without the reason"
    echo "$out" | tail -n 1
    exit 77
fi
exit $rc
