#!/usr/bin/env bash
# CURVE end to end with our own programs: a broker with its keys and an allow-list directory,
# bin/worker-testkit and bin/sched (its daemon and its commands) with allowed keys run a small
# pipeline to success; a worker whose key is not allowed never gets a job (the run waits for
# an allowed one); bad key settings each stop a worker or sched with one clear line.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sched_lib.sh"
sl_setup curve
KEYS=$T_TMP/keys ALLOW=$T_TMP/allow
mkdir -p "$KEYS" "$ALLOW"
for k in broker worker sched stranger; do
    "$PREDICTORS_BIN/broker" --keygen "$KEYS/$k" >"$T_TMP/keygen.out" 2>&1 || { cat "$T_TMP/keygen.out"; t_fail "keygen $k"; }
done
cp "$KEYS/worker" "$KEYS/sched" "$ALLOW/"           # public halves only: the stranger is not allowed
export PREDICTORS_BROKER_CURVE_SECRET=$KEYS/broker PREDICTORS_BROKER_CURVE_ALLOW=$ALLOW
export PREDICTORS_SCHEDULER_CURVE_SECRET=$KEYS/sched_secret PREDICTORS_SCHEDULER_CURVE_SERVER=$KEYS/broker
export PREDICTORS_WORKER_CURVE_SERVER=$KEYS/broker
cat >"$PIPES/pair.conf" <<'CONF'
[pipeline]
description = two steps over CURVE
[step.a]
service = echo
param.word = curve
[step.b]
service = sleep
needs = a
param.ms = 100
CONF
sl_broker
grep -q "curve=on" "$T_TMP/log/broker.log" || { cat "$T_TMP/log/broker.log"; t_fail "the broker did not start with CURVE on"; }
PREDICTORS_WORKER_CURVE_SECRET=$KEYS/worker sl_worker echo
PREDICTORS_WORKER_CURVE_SECRET=$KEYS/stranger sl_worker sleep stranger
sl_daemon

# sched's own commands reach the broker with the allowed key: the echo worker is there.
for i in $(seq 150); do
    "$SCHED" workers >"$T_TMP/workers" 2>&1 && grep -q "^echo " "$T_TMP/workers" && break
    sleep 0.2
done
grep -q "^echo " "$T_TMP/workers" || { cat "$T_TMP/workers" "$T_TMP/log/worker-echo.log"; t_fail "no allowed echo worker seen through sched workers"; }
grep -q "curve=" "$T_TMP/log/worker-echo.log" && ! grep -q "curve=off" "$T_TMP/log/worker-echo.log" ||
    t_fail "the worker does not say it uses CURVE"

run=$(sl_enqueue pair) || t_fail "enqueue over CURVE"
[ -n "$run" ] || t_fail "no run id"
# Step a runs on the allowed worker; b waits: its only worker has a key the broker refuses.
for i in $(seq 300); do
    [ "$(sl_done_count "$run" a)" = 1 ] && break
    sleep 0.2
done
[ "$(sl_done_count "$run" a)" = 1 ] || { "$SCHED" status "$run"; t_fail "step a did not run over CURVE"; }
sleep 3
"$SCHED" workers --json >"$T_TMP/w.json" || t_fail "sched workers --json"
$PY - "$T_TMP/w.json" <<'PY' || t_fail "the refused worker is registered"
import json, sys
w = json.load(open(sys.argv[1]))
text = json.dumps(w["workers"])
assert "sleep" not in text, text
PY
[ "$(sl_done_count "$run" b)" = 0 ] || t_fail "a worker with a key not in the allow-list got a job"
[ "$(sl_state "$run")" = running ] || { "$SCHED" status "$run"; t_fail "the run is not waiting (running) for an allowed sleep worker"; }
kill -0 "$(cat "$T_TMP/worker-stranger.pid")" || t_fail "the refused worker exited (it should keep trying)"
grep -q "is our public key in the broker's curve_allow? key=" "$T_TMP/log/worker-stranger.log" ||
    { cat "$T_TMP/log/worker-stranger.log"; t_fail "the refused worker does not name the likely cause"; }
grep -q "curve_allow?" "$T_TMP/log/worker-echo.log" && t_fail "an allowed worker blamed its key"

# An allowed sleep worker joins: the run finishes.
PREDICTORS_WORKER_CURVE_SECRET=$KEYS/worker sl_worker sleep sleep1
sl_wait_run "$run" succeeded 90
[ "$(sl_done_count "$run" b)" = 1 ] || t_fail "step b ran $(sl_done_count "$run" b) times, not once"
grep -q "^$run b " "$STATE/executions.log" || t_fail "no execution of b"

# A sched without keys gets nothing from this broker (exit 3: unavailable).
PREDICTORS_SCHEDULER_CURVE_SECRET= PREDICTORS_SCHEDULER_CURVE_SERVER= PREDICTORS_SCHEDULER_BROKER_TIMEOUT=1s \
    "$SCHED" workers >"$T_TMP/out" 2>&1 && { cat "$T_TMP/out"; t_fail "a plain sched was served by a CURVE broker"; }

# sched with a key the broker does not know: no answer, and the error names the likely cause.
PREDICTORS_SCHEDULER_CURVE_SECRET=$KEYS/stranger PREDICTORS_SCHEDULER_BROKER_TIMEOUT=1s \
    "$SCHED" workers >"$T_TMP/out" 2>&1 && { cat "$T_TMP/out"; t_fail "sched with a refused key was served"; }
grep -q "did not answer .*is our public key in the broker's curve_allow" "$T_TMP/out" ||
    { cat "$T_TMP/out"; t_fail "sched with a refused key does not name the likely cause"; }

# ---- bad key settings: one line each, before anything connects
sl_expect 2 "scheduler.curve_secret=$KEYS/nope: no such file" env PREDICTORS_SCHEDULER_CURVE_SECRET="$KEYS/nope" "$SCHED" workers
sl_expect 2 "scheduler.curve_server is set but scheduler.curve_secret is not" env PREDICTORS_SCHEDULER_CURVE_SECRET= "$SCHED" workers
cp "$KEYS/worker_secret" "$KEYS/loose_secret" && chmod 644 "$KEYS/loose_secret"
sl_expect 1 "worker.curve_secret=$KEYS/loose_secret: mode 644 lets others read this secret key; it must be 0600" \
    env PREDICTORS_WORKER_CURVE_SECRET="$KEYS/loose_secret" "$PREDICTORS_BIN/worker-testkit" --service echo
echo "not a certificate" >"$KEYS/junk"; chmod 600 "$KEYS/junk"
sl_expect 1 "worker.curve_server=$KEYS/junk: not a CURVE certificate" \
    env PREDICTORS_WORKER_CURVE_SECRET="$KEYS/worker" PREDICTORS_WORKER_CURVE_SERVER="$KEYS/junk" "$PREDICTORS_BIN/worker-testkit" --service echo
cp "$KEYS/broker" "$KEYS/pubonly"
sl_expect 1 "worker.curve_secret=$KEYS/pubonly: no secret key" \
    env PREDICTORS_WORKER_CURVE_SECRET="$KEYS/pubonly" "$PREDICTORS_BIN/worker-testkit" --service echo
echo "curve ok: $run"
