#!/usr/bin/env bash
# deploy/systemd: every unit passes `systemd-analyze verify` with its programs in place,
# its hardening scores "OK" or better in `systemd-analyze security --offline`, and the
# worker template's start script maps KIND[:GPU][.N] to the right program, service and GPU.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
command -v systemd-analyze >/dev/null || { echo "systemd-analyze not installed"; exit 77; }
SD=$ROOT/deploy/systemd
home=$T_TMP/opt/predictors
mkdir -p "$home/bin" "$home/deploy/systemd" "$T_TMP/units"
for p in broker monitor sched; do ln -s "$PREDICTORS_BIN/$p" "$home/bin/$p"; done
cp "$SD/predictors-worker-start" "$home/deploy/systemd/"
for u in "$SD"/*.service; do
    sed "s#/opt/predictors#$home#g" "$u" >"$T_TMP/units/$(basename "$u")"
done
out=$(cd "$T_TMP/units" && systemd-analyze verify --man=no ./*.service 2>&1) || t_fail "systemd-analyze verify: $out"
[ -z "$out" ] || t_fail "systemd-analyze verify complains: $out"
for u in "$T_TMP"/units/*.service; do
    line=$(systemd-analyze security --offline=yes --no-pager "$u" 2>&1 | tail -n 1)
    echo "$line"
    echo "$line" | grep -Eq ' (OK|SAFE) ' || t_fail "weak hardening: $line"
done
grep -q '^EnvironmentFile=/etc/predictors/predictors.env' "$SD/predictors-monitor.service" || t_fail "monitor reads the env file"
for u in "$SD"/*.service; do
    grep -q '^Restart=on-failure' "$u" || t_fail "$u: no restart on failure"
    grep -q '^StandardError=journal' "$u" || t_fail "$u: not logging to the journal"
    grep -q '^NoNewPrivileges=yes' "$u" || t_fail "$u: no NoNewPrivileges"
done

# The start script: a stand-in worker-train that prints what it was given.
cat >"$home/bin/worker-train" <<'SH'
#!/bin/sh
echo "args=$* gpu=${CUDA_VISIBLE_DEVICES:-none}"
SH
chmod +x "$home/bin/worker-train"
start() { PREDICTORS_HOME=$home "$SD/predictors-worker-start" "$@"; }
[ "$(start train)" = "args= gpu=none" ] || t_fail "train: $(start train)"
[ "$(start train:1)" = "args=--service train.gpu gpu=1" ] || t_fail "train:1: $(start train:1)"
[ "$(start train:0.2)" = "args=--service train.gpu gpu=0" ] || t_fail "train:0.2: $(start train:0.2)"
if start 'train:x' 2>/dev/null; then t_fail "bad GPU index accepted"; fi
if start 'Train' 2>/dev/null; then t_fail "bad kind accepted"; fi
if start 'nosuch' 2>/dev/null; then t_fail "missing program accepted"; fi
out=$(start nosuch 2>&1 || true); echo "$out" | grep -q "no worker program" || t_fail "missing program: no clear error: $out"
echo "ok: units verify, hardening OK, worker@ instances map to programs and GPUs"
