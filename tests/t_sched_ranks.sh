#!/usr/bin/env bash
# Training groups through the real broker and scheduler, without a GPU: a step with ranks = 3 is
# three jobs on the GPU service (grp.gpu); rank 0 hands out its id in its progress, the daemon
# relays it into the bodies of ranks 1 and 2 (testkit's `rank` mode checks it is rank 0's and
# stands in for NCCL's bootstrap); the step is done when every rank is. A CPU worker of the plain
# service never sees a rank job (routing). A rank that dies fails the group, which is submitted
# again; a rank that never arrives makes the others time out, the group is retried, then the
# step fails with the missing rank named - nothing waits forever.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sched_lib.sh"
sl_setup ranks
cat >"$PIPES/grp.conf" <<'CONF'
[pipeline]
description = a three-rank training group
[params]
fail_rank = -1
wait_ms = 8000
[step.prep]
service = echo
[step.train]
service = grp
needs = prep
ranks = 3
attempts = 2
timeout = 5m
param.mode = rank
param.fail_rank = ${fail_rank}
param.wait_ms = ${wait_ms}
[step.after]
service = echo
needs = train
CONF
sl_broker
sl_worker echo
for i in 1 2 3; do sl_worker grp.gpu gpu$i; done
# A CPU worker of the plain service, with its own log: it must never run a rank.
mkdir -p "$T_TMP/cpu"
TESTKIT_STATE=$T_TMP/cpu sl_worker grp cpu
sl_daemon

# ---- a group of three succeeds; every rank ran once, on the GPU service only
out=$("$SCHED" enqueue grp --wait 2>&1); rc=$?
echo "$out"
[ $rc = 0 ] || t_fail "enqueue --wait exited $rc"
run=$(echo "$out" | sed -n 's/^run \([^ ]*\) enqueued.*/\1/p')
for r in 0 1 2; do
    n=$(grep -c "^$run train rank .* rank$r/3 done\$" "$STATE/executions.log")
    [ "$n" = 1 ] || t_fail "rank $r ran $n times, not once"
done
[ ! -s "$T_TMP/cpu/executions.log" ] || t_fail "the CPU worker ran a GPU job: $(cat "$T_TMP/cpu/executions.log")"
"$SCHED" status "$run" --json >"$T_TMP/s1.json" || t_fail "status --json"
$PY - "$T_TMP/s1.json" <<'PY' || t_fail "status content"
import json, sys
r = json.load(open(sys.argv[1]))
steps = {s["name"]: s for s in r["steps"]}
t = steps["train"]
assert r["state"] == "succeeded" and t["state"] == "done", (r["state"], t)
assert t["outputs"]["model"].startswith("testkit://group/" + r["id"] + "/train/1"), t["outputs"]
assert t["metrics"]["ranks"] == 3, t["metrics"]
assert t["ranks"] == 3 and len(t["rank_jobs"]) == 2 and t["group_try"] == 1, t
# the rank 0 output reaches the next step like any output
assert steps["after"]["outputs"]["param.train.model"] == t["outputs"]["model"]
PY
"$SCHED" logs "$run" | grep -q "rank 0 handed out its NCCL id: submitted ranks 1..2 to grp.gpu" || t_fail "no fan-out in the log"
"$SCHED" workers >"$T_TMP/workers" || t_fail "sched workers"
grep -Eq " grp\.gpu +yes " "$T_TMP/workers" || { cat "$T_TMP/workers"; t_fail "sched workers does not mark grp.gpu workers as GPU"; }
grep -Eq " grp +no " "$T_TMP/workers" || { cat "$T_TMP/workers"; t_fail "sched workers does not mark the grp worker as CPU"; }
"$SCHED" workers --json | $PY -c '
import json, sys
w = json.load(sys.stdin)["workers"]
assert any(x["service"] == "grp.gpu" and x["gpu"] is True for x in w)
assert any(x["service"] == "grp" and x["gpu"] is False for x in w)' || t_fail "workers --json gpu"

# ---- rank 2 dies in the first group: the group is submitted again and succeeds
out=$("$SCHED" enqueue grp --param fail_rank=2 --wait 2>&1); rc=$?
echo "$out"
[ $rc = 0 ] || t_fail "a group with a dying rank was not retried to success (exit $rc)"
run2=$(echo "$out" | sed -n 's/^run \([^ ]*\) enqueued.*/\1/p')
"$SCHED" logs "$run2" | grep -q "group failed (rank 2 of 3 failed: dead: rank_died" \
    || { "$SCHED" logs "$run2"; t_fail "the group failure is not logged with the rank"; }
"$SCHED" logs "$run2" | grep -q "submitting the group again (try 2 of 2)" || t_fail "no group resubmission"
# The step's model is the second group's (rank 0 of the first one finished before rank 2 died;
# with NCCL it would have failed in the next all-reduce instead).
"$SCHED" status "$run2" --json | $PY -c '
import json, sys
r = json.load(sys.stdin)
t = {s["name"]: s for s in r["steps"]}["train"]
assert t["submission"] == 2 and t["outputs"]["model"].endswith("/train/2"), t' || t_fail "the retried group's result"

# ---- a rank that never arrives: two GPU workers for three ranks
kill -9 "$(cat "$T_TMP/worker-gpu3.pid")"
sleep 1
start=$(date +%s)
out=$("$SCHED" enqueue grp --param wait_ms=1500 --wait 2>&1); rc=$?
echo "$out"
took=$(( $(date +%s) - start ))
[ $rc = 1 ] || t_fail "a group missing a rank exited $rc, not 1 (failed)"
run3=$(echo "$out" | sed -n 's/^run \([^ ]*\) enqueued.*/\1/p')
"$SCHED" status "$run3" --json | $PY -c '
import json, sys
r = json.load(sys.stdin)
t = {s["name"]: s for s in r["steps"]}["train"]
assert r["state"] == "failed" and t["state"] == "failed", (r["state"], t["state"])
e = t["error"]
assert e["code"] == "rank_failed", t
assert "ranks 2 did not arrive within 1500 ms" in e["message"] and "group tried 2 times" in e["message"], t
assert t["submission"] == 2 and t["group_try"] == 2 and t["ranks"] == 3 and len(t["rank_jobs"]) == 2, t' || { "$SCHED" status "$run3"; t_fail "status of the failed group"; }
"$SCHED" status "$run3" | grep -Eq "^  train +grp +failed +3x2/2 " || { "$SCHED" status "$run3"; t_fail "status does not show the group's tries"; }
# The third rank's job was cancelled, not left queued for a group that is gone.
"$SCHED" workers --json | $PY -c '
import json, sys
q = json.load(sys.stdin)["queues"].get("grp.gpu", {})
assert q.get("queued", 0) == 0 and q.get("delayed", 0) == 0, q' || t_fail "rank jobs left in the queue"
echo "ranks ok: $run $run2 $run3 (missing rank failed the run in ${took}s)"
