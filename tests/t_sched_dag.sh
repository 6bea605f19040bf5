#!/usr/bin/env bash
# The scheduler end to end on real servers: a fan-out / fan-in DAG through the broker to
# testkit workers completes, each step once, with upstream outputs passed down; its state is
# in PostgreSQL (sched status/runs --json) and Redis (monitoring/REDIS.md keys). Then the bad
# inputs of the issue, each with its clear one-line error and exit status.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sched_lib.sh"
sl_setup dag
cat >"$PIPES/fan.conf" <<'CONF'
[pipeline]
description = fan-out / fan-in
[params]
ms = 200
word = hello
[step.a]
service = echo
param.word = ${word}
[step.b1]
service = sleep
needs = a
param.ms = ${ms}
[step.b2]
service = sleep
needs = a
param.ms = ${ms}
[step.b3]
service = echo
needs = a
[step.c]
service = echo
needs = b1, b2, b3
CONF
sl_broker
sl_worker echo
sl_worker sleep sleep1
sl_worker sleep sleep2
sl_daemon

out=$("$SCHED" enqueue fan --param word=bonjour --wait 2>&1); rc=$?
echo "$out"
[ $rc = 0 ] || t_fail "enqueue --wait exited $rc"
run=$(echo "$out" | sed -n 's/^run \([^ ]*\) enqueued.*/\1/p')
[ -n "$run" ] || t_fail "no run id printed"
echo "$out" | grep -q "^run $run succeeded" || t_fail "no final line"
echo "$out" | grep -Eq "^[0-9:]{8} c +done" || t_fail "plain lines (not a terminal) do not show c done"
for s in a b1 b2 b3 c; do
    [ "$(sl_done_count "$run" $s)" = 1 ] || t_fail "step $s ran $(sl_done_count "$run" $s) times, not once"
done
# Fan-in: c started after the three middle steps finished.
"$SCHED" status "$run" --json >"$T_TMP/status.json" || t_fail "status --json"
$PY - "$T_TMP/status.json" <<'PY' || t_fail "status --json content"
import json, sys
r = json.load(open(sys.argv[1]))
assert r["state"] == "succeeded", r["state"]
steps = {s["name"]: s for s in r["steps"]}
assert all(s["state"] == "done" for s in steps.values())
c = steps["c"]
for m in ("b1", "b2", "b3"):
    assert steps[m]["finished_at"] <= c["started_at"] or steps[m]["finished_at"] <= c["submitted_at"], (m, steps[m], c)
# upstream outputs reach downstream params (echo returns them as outputs)
assert steps["a"]["outputs"]["param.word"] == "bonjour", steps["a"]["outputs"]
assert steps["c"]["outputs"]["param.a.param.word"] == "bonjour", steps["c"]["outputs"]
assert steps["b1"]["metrics"]["slept_ms"] == 200
PY
"$SCHED" runs --json >"$T_TMP/runs.json" || t_fail "runs --json"
$PY -c "
import json; runs = json.load(open('$T_TMP/runs.json'))
assert isinstance(runs, list) and runs[0]['id'] == '$run'
for k in ('id', 'pipeline', 'state', 'started_at', 'finished_at'): assert k in runs[0], k
assert runs[0]['state'] == 'succeeded'" || t_fail "runs --json content"
"$SCHED" status "$run" | grep -q "^  c  *echo  *done" || t_fail "status table"
"$SCHED" logs "$run" | grep -q "submitted to sleep" || t_fail "logs"
# Redis mirrors the run.
[ "$(redis-cli -u "$REDIS_URL" hget "pred:run:$run" state)" = succeeded ] || t_fail "redis run state"
[ "$(redis-cli -u "$REDIS_URL" hget "pred:run:$run:step:b2" state)" = done ] || t_fail "redis step state"
redis-cli -u "$REDIS_URL" zscore pred:runs "$run" | grep -q . || t_fail "redis runs index"
"$SCHED" workers | grep -q "^sleep " || t_fail "sched workers lacks the sleep service"

# ---- bad inputs
sl_expect 2 "unknown pipeline 'nightly' (known: fan)" "$SCHED" enqueue nightly
sl_expect 2 "unknown --param 'speed' (fan takes: ms, word)" "$SCHED" enqueue fan --param speed=3
sl_expect 2 "unknown run 'fan-nope'" "$SCHED" status fan-nope
sl_expect 2 "unknown run 'fan-nope'" "$SCHED" logs fan-nope
sl_expect 2 "unknown run 'fan-nope'" "$SCHED" cancel fan-nope
sl_expect 2 "unknown run 'fan-nope'" "$SCHED" retry fan-nope
sl_expect 1 "only a failed or cancelled run can be retried" "$SCHED" retry "$run"
sl_expect 2 "unknown command 'frobnicate'" "$SCHED" frobnicate
sl_expect 2 "unknown or incomplete option '--colour'" "$SCHED" runs --colour
printf '[step.a]\nservice = echo\nneeds = b\n[step.b]\nservice = echo\nneeds = a\n' >"$PIPES/cycle.conf"
sl_expect 2 "steps form a cycle: a -> b -> a" "$SCHED" enqueue cycle
printf '[step.a]\nservice = echo\nneeds = ghost\n' >"$PIPES/missing.conf"
sl_expect 2 "step 'a' needs 'ghost', which is not a step of missing" "$SCHED" enqueue missing
printf '[pipeline]\nschedule = 0 0 31 2 *\n[step.a]\nservice = echo\n' >"$PIPES/badcron.conf"
sl_expect 2 "schedule '0 0 31 2 \*': field 3 (day of month): day 31 never occurs" "$SCHED" enqueue badcron
printf '[pipeline]\nschedule = 61 * * * *\n[step.a]\nservice = echo\n' >"$PIPES/badcron.conf"
sl_expect 2 "field 1 (minute): 61 is out of range 0-59" "$SCHED" enqueue badcron
"$SCHED" pipelines >"$T_TMP/pipes" 2>&1 && t_fail "sched pipelines succeeded with broken definitions"
grep -q "^cycle .*ERROR.*cycle" "$T_TMP/pipes" || t_fail "pipelines does not show the cycle"
grep -q "^fan .*5 steps" "$T_TMP/pipes" || t_fail "pipelines does not show fan"
for c in enqueue status runs pipelines workers logs pause resume cancel retry dead requeue daemon; do
    "$SCHED" $c --help | grep -q "^usage: sched $c" || t_fail "sched $c --help"
done
"$SCHED" --help | grep -q "^usage: sched" || t_fail "sched --help"
echo "dag ok: $run"
