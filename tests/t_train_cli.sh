#!/usr/bin/env bash
# worker-train from the outside: a host without a GPU refuses to serve train.gpu
# (and train.gpu = require), bad jobs fail with a clear reason and exit status,
# and a job trains the same model twice (same URI) from a dataset file.
. "$ROOT/tests/lib.sh"
W=$PREDICTORS_BIN/worker-train
export PREDICTORS_ARTIFACTS_ROOT=$T_TMP/store

if [ "$("$W" gpu | awk '$1 == "gpus" {print $2}')" = 0 ]; then
    out=$("$W" -s train.gpu --once 2>&1); rc=$?
    [ $rc = 1 ] || t_fail "serving train.gpu without a GPU exited $rc, wanted 1"
    grep -q "no usable GPU" <<<"$out" || t_fail "no reason given: $out"
    out=$(PREDICTORS_TRAIN_GPU=require "$W" --once 2>&1); rc=$?
    [ $rc = 1 ] || t_fail "train.gpu = require without a GPU exited $rc"
    "$W" gpu | grep -q "^service train$" || t_fail "gpu report does not say service train"
fi
out=$(PREDICTORS_TRAIN_GPU=sometimes "$W" --once 2>&1); rc=$?
[ $rc = 1 ] && grep -q "train.gpu" <<<"$out" || t_fail "bad train.gpu accepted (rc $rc): $out"

t_check "synth" "$W" synth --rows 3000 --cols 6 --seed 4 --valid 0.2 --test 0.1 -o "$T_TMP/ds.pdset" >/dev/null
u1=$("$W" fit -f xgboost -d "$T_TMP/ds.pdset" --threads 2 -p rounds=30 2>/dev/null) || t_fail "fit failed"
u2=$("$W" fit -f xgboost -d "$T_TMP/ds.pdset" --threads 2 -p rounds=30 2>/dev/null) || t_fail "fit failed"
[ "$u1" = "$u2" ] || t_fail "same dataset, seed and threads gave two models: $u1 $u2"
"$W" score "${u1#file://}" "$T_TMP/ds.pdset" test | grep -q "^auc 0\.[6-9]" || t_fail "score: no sensible AUC"

# Bad inputs: status 1 (permanent) and the reason on stderr.
expect_fail() {
    local want=$1; shift
    out=$("$W" fit "$@" 2>&1 >/dev/null); rc=$?
    [ $rc = 1 ] || t_fail "fit $* exited $rc, wanted 1"
    grep -q -- "$want" <<<"$out" || t_fail "fit $*: no '$want' in: $out"
}
expect_fail "max_depth: '99'" -f xgboost -d "$T_TMP/ds.pdset" -p max_depth=99
expect_fail "unknown for family rf" -f rf -d "$T_TMP/ds.pdset" -p max_dpeth=3
expect_fail "not one of" -f svm -d "$T_TMP/ds.pdset"
expect_fail "cannot open" -f xgboost -d "$T_TMP/none.pdset"
head -c 5000 "$T_TMP/ds.pdset" > "$T_TMP/cut.pdset"
expect_fail "bad_dataset" -f xgboost -d "$T_TMP/cut.pdset"
# Data-parallel fields (docs/train.md "Several GPUs"): bad values, and GPU-only jobs here.
expect_fail "param rank: 2 is outside 0..1" -f mlp -d "$T_TMP/ds.pdset" -p ranks=2 -p rank=2 -p group=g
expect_fail "param nccl_id: 4 characters, not 256 hex digits" -f mlp -d "$T_TMP/ds.pdset" -p ranks=2 -p rank=1 -p group=g -p nccl_id=abcd
expect_fail "param nccl_id: missing" -f mlp -d "$T_TMP/ds.pdset" -p ranks=2 -p rank=1 -p group=g
expect_fail "NCCL is for mlp and transformer" -f rf -d "$T_TMP/ds.pdset" -p gpus=2
# Built with nvcc, NCCL is linked, and rank 0's first act (making the unique id) runs without a GPU.
if "$W" gpu | grep -q "^nccl [0-9]"; then
    "$W" gpu | grep -q "^nccl_id ok" || t_fail "ncclGetUniqueId failed: $("$W" gpu | grep nccl_id)"
fi
if [ "$("$W" gpu | awk '$1 == "gpus" {print $2}')" = 0 ]; then
    expect_fail "no_gpu.*needs several GPUs" -f mlp -d "$T_TMP/ds.pdset" -p gpus=2
    expect_fail "no_gpu.*rank of an NCCL group" -f mlp -d "$T_TMP/ds.pdset" -p ranks=2 -p rank=0 -p group=g
fi
# precision=bf16 (an MLP with bf16 products): where the CPU has AVX512-BF16 it
# trains deterministically, the artifact records it and scores sensibly;
# elsewhere the job fails permanently saying why. Unknown precisions are refused.
expect_fail "precision: 'fp16'" -f mlp -d "$T_TMP/ds.pdset" -p precision=fp16
netp="hidden=16,16 -p epochs=3 -p batch=256 -p precision=bf16"
if grep -qw avx512_bf16 /proc/cpuinfo; then
    # shellcheck disable=SC2086
    b1=$("$W" fit -f mlp -d "$T_TMP/ds.pdset" --threads 2 -p $netp 2>/dev/null) || t_fail "bf16 fit failed"
    # shellcheck disable=SC2086
    b2=$("$W" fit -f mlp -d "$T_TMP/ds.pdset" --threads 2 -p $netp 2>/dev/null) || t_fail "bf16 fit failed"
    [ "$b1" = "$b2" ] || t_fail "bf16: same dataset, seed and threads gave two models: $b1 $b2"
    grep -aq '"precision": *"bf16"' "${b1#file://}" || t_fail "bf16: the artifact does not record precision"
    "$W" score "${b1#file://}" "$T_TMP/ds.pdset" test | grep -q "^auc 0\.[6-9]" || t_fail "bf16 score: no sensible AUC"
else
    # shellcheck disable=SC2086
    expect_fail "AVX512-BF16" -f mlp -d "$T_TMP/ds.pdset" -p $netp
fi
echo "worker-train: GPU refusal, determinism, bf16 and bad inputs ok"
