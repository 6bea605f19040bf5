#!/usr/bin/env bash
# A daemon killed with -9 mid-run and started again finishes the run, each step done once;
# a worker stopped with SIGTERM mid-job hands the job back and another worker finishes it;
# a failing step is retried by the broker, then fails the run with its error shown by
# `sched status`; `sched retry` runs it again from the failed step only.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sched_lib.sh"
sl_setup resume
cat >"$PIPES/chain.conf" <<'CONF'
[params]
ms = 700
[step.s1]
service = sleep
param.ms = ${ms}
[step.s2]
service = sleep
needs = s1
param.ms = ${ms}
[step.s3]
service = sleep
needs = s2
param.ms = ${ms}
[step.s4]
service = echo
needs = s3
CONF
cat >"$PIPES/flaky.conf" <<'CONF'
[params]
times = 3
[step.first]
service = echo
[step.flaky]
service = fail
needs = first
attempts = 2
param.times = ${times}
param.code = disk_on_fire
[step.last]
service = echo
needs = flaky
CONF
sl_broker
sl_worker echo
sl_worker sleep sleep1
sl_worker fail
sl_daemon

# ---- kill -9 the daemon while s2 runs, start it again
run=$(sl_enqueue chain) || t_fail "enqueue chain"
s2_in_flight() { "$SCHED" status "$run" --json | $PY -c 'import json,sys; s={x["name"]:x["state"] for x in json.load(sys.stdin)["steps"]}; sys.exit(0 if s["s2"] in ("submitted","running") else 1)'; }
for i in $(seq 300); do s2_in_flight && break; sleep 0.1; done
s2_in_flight || t_fail "s2 never in flight"
kill -9 "$(cat "$T_TMP/daemon.pid")"
echo "daemon killed while s2 was in flight"
sleep 2                                   # s2 finishes in the broker meanwhile
sl_daemon daemon2
sl_wait_run "$run" succeeded 60
for s in s1 s2 s3 s4; do
    [ "$(sl_done_count "$run" $s)" = 1 ] || t_fail "step $s ran $(sl_done_count "$run" $s) times after the daemon's kill -9"
done
n=$(psql -X "$DATABASE_URL" -Atc "select count(*) from sched_log where run_id = '$run' and message like 'submitted%'")
[ "$n" = 4 ] || t_fail "$n submissions for 4 steps"

# ---- SIGTERM a worker mid-job: it hands the job back; another worker finishes it
run=$(sl_enqueue chain --param ms=4000) || t_fail "enqueue chain 2"
for i in $(seq 200); do
    grep -q "job start.*run=$run step=s1" "$T_TMP/log/worker-sleep1.log" && break
    sleep 0.1
done
grep -q "job start.*run=$run step=s1" "$T_TMP/log/worker-sleep1.log" || t_fail "s1 never started"
sl_worker sleep sleep2
kill -TERM "$(cat "$T_TMP/worker-sleep1.pid")"
sl_wait_run "$run" succeeded 90
grep -q "stopping: waiting up to" "$T_TMP/log/worker-sleep1.log" || t_fail "worker did not log its graceful stop"
grep -q "^$run s1 .* retry\$" "$STATE/executions.log" || t_fail "s1 was not handed back as retry"
[ "$(sl_done_count "$run" s1)" = 1 ] || t_fail "s1 done $(sl_done_count "$run" s1) times"

# ---- failing step: retried by the broker, then the run fails with the error shown
run=$(sl_enqueue flaky) || t_fail "enqueue flaky"
sl_wait_run "$run" failed 60
"$SCHED" status "$run" >"$T_TMP/status" || t_fail "status"
cat "$T_TMP/status"
grep -q "^  flaky .*failed .*2/2 .*disk_on_fire" "$T_TMP/status" || t_fail "status does not show the failed step with its attempts and error"
grep -q "^error: step flaky failed: .*disk_on_fire: delivery 2 of $run/flaky fails as asked" "$T_TMP/status" || t_fail "status lacks the run error"
grep -q "^  last .*waiting" "$T_TMP/status" || t_fail "the step after the failure ran"
[ "$(grep -c "^$run flaky .* retry\$" "$STATE/executions.log")" = 2 ] || t_fail "flaky was not tried twice"
# ---- the dead job is in the broker's dead letters; requeueing it revives the step and the run
job=$("$SCHED" status "$run" --json | $PY -c 'import json,sys; print([s for s in json.load(sys.stdin)["steps"] if s["name"]=="flaky"][0]["job"])')
"$SCHED" dead >"$T_TMP/dead" || t_fail "sched dead"
grep -q "^$job .*disk_on_fire" "$T_TMP/dead" || { cat "$T_TMP/dead"; t_fail "sched dead does not list $job with its error"; }
"$SCHED" requeue "$job" >"$T_TMP/requeue" || t_fail "requeue"
grep -q "^run $run waits for it again" "$T_TMP/requeue" || { cat "$T_TMP/requeue"; t_fail "requeue did not revive the run"; }
sl_wait_run "$run" succeeded 60
[ "$(sl_done_count "$run" first)" = 1 ] || t_fail "requeue ran the done step again"
[ "$(sl_done_count "$run" flaky)" = 1 ] || t_fail "flaky not done once after requeue"
"$SCHED" requeue "$job" 2>"$T_TMP/err"; [ $? = 2 ] || t_fail "requeue of a finished job is not exit 2"
"$SCHED" requeue 0123456789abcdef0123456789abcdef 2>"$T_TMP/err"; [ $? = 2 ] || t_fail "requeue of an unknown job is not exit 2"
grep -q "unknown job" "$T_TMP/err" || t_fail "requeue error"

# ---- sched retry: from the failed step; done steps are not run again
run=$(sl_enqueue flaky) || t_fail "enqueue flaky 2"
sl_wait_run "$run" failed 60
"$SCHED" enqueue flaky --wait >/dev/null 2>&1 && t_fail "enqueue --wait exited 0 for a failed run"
"$SCHED" retry "$run" || t_fail "retry"
sl_wait_run "$run" succeeded 60
[ "$(sl_done_count "$run" first)" = 1 ] || t_fail "retry ran the done step again"
[ "$(sl_done_count "$run" flaky)" = 1 ] || t_fail "flaky not done once"
[ "$(sl_done_count "$run" last)" = 1 ] || t_fail "last not done once"
"$SCHED" logs "$run" | grep -q "retried by sched retry" || t_fail "logs lack the retry"

# ---- cancel a running run: its job is cancelled in the broker
run=$(sl_enqueue chain --param ms=3000) || t_fail "enqueue chain 3"
sleep 1
"$SCHED" cancel "$run" || t_fail "cancel"
sl_wait_run "$run" cancelled 60
for i in $(seq 300); do     # up to 60 s
    [ "$("$SCHED" status "$run" --json | $PY -c 'import json,sys; print(sum(s["state"] in ("submitted","running","waiting") for s in json.load(sys.stdin)["steps"]))')" = 0 ] && break
    sleep 0.2
done
"$SCHED" status "$run" --json | $PY -c 'import json,sys; r=json.load(sys.stdin); assert all(s["state"] in ("cancelled","done") for s in r["steps"]), r["steps"]' || t_fail "steps not cancelled"
echo "resume ok"
