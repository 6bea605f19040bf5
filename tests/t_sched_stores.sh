#!/usr/bin/env bash
# PostgreSQL or Redis down at start or going away mid-run: the CLI says so in one line
# (exit 3); the daemon logs one line and waits; the run resumes when the server is back
# with each step done once; Redis being down never stops a run.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sched_lib.sh"
S=$T_TMP/stack
"$ROOT/deploy/stack" up --dir "$S" --fast --random-ports --no-programs >"$T_TMP/stack.log" 2>&1 || { cat "$T_TMP/stack.log"; t_fail "own stack"; }
t_cleanup "$ROOT/deploy/stack down --dir $S"
set -a; . "$S/stack.env"; set +a
sl_setup stores
as_pg() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
pg_ctl=$(ls /usr/lib/postgresql/*/bin/pg_ctl | head -1)
pg_stop() { as_pg "$pg_ctl" -D "$S/pg/data" -m fast -w stop >/dev/null || t_fail "pg stop"; }
restart() { "$ROOT/deploy/stack" up --dir "$S" --fast --no-programs >>"$T_TMP/stack.log" 2>&1 || t_fail "stack up again"; }
redis_stop() {  # returns once the server is gone (else `restart` finds it still running)
    local pid i; pid=$(cat "$S/redis/redis.pid")
    redis-cli -u "$REDIS_URL" shutdown nosave >/dev/null 2>&1
    for i in $(seq 600); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.1; done
    t_fail "redis-server $pid did not exit within 60 s of SHUTDOWN"
}
# wait_for DESC CMD...: until CMD succeeds, up to 60 s (a sanitizer build on a loaded machine)
wait_for() { local d=$1 i; shift; for i in $(seq 600); do "$@" && return 0; sleep 0.1; done; t_fail "$d (waited 60 s)"; }
cat >"$PIPES/pair.conf" <<'CONF'
[params]
ms = 2500
[step.one]
service = sleep
param.ms = ${ms}
[step.two]
service = sleep
needs = one
param.ms = ${ms}
[step.three]
service = echo
needs = two
CONF
sl_broker
sl_worker sleep
sl_worker echo

# ---- PostgreSQL down at start
pg_stop
"$SCHED" runs >"$T_TMP/out" 2>"$T_TMP/err"; rc=$?
[ $rc = 3 ] || t_fail "runs with PostgreSQL down exited $rc, not 3"
grep -q "^sched: error: PostgreSQL unavailable at postgresql://predictors@127.0.0.1:[0-9]*/" "$T_TMP/err" || { cat "$T_TMP/err"; t_fail "no clear error"; }
[ "$(wc -l <"$T_TMP/err")" = 1 ] || t_fail "more than one line"
"$SCHED" enqueue pair >/dev/null 2>&1; [ $? = 3 ] || t_fail "enqueue with PostgreSQL down is not exit 3"
sl_daemon
wait_for "the daemon did not log the PostgreSQL outage" grep -q "postgres unavailable" "$T_TMP/log/daemon.log"
sleep 1.5                   # several more ticks: the outage must still be logged only once
kill -0 "$(cat "$T_TMP/daemon.pid")" || t_fail "the daemon exited with PostgreSQL down"
[ "$(grep -c "postgres unavailable" "$T_TMP/log/daemon.log")" = 1 ] || { cat "$T_TMP/log/daemon.log"; t_fail "the outage was not logged exactly once"; }
restart

# ---- Redis down at start: the run goes on
redis_stop
run=$(sl_enqueue pair --param ms=300) || t_fail "enqueue with Redis down"
sl_wait_run "$run" succeeded 60
grep -q "redis unavailable" "$T_TMP/log/daemon.log" || t_fail "the Redis outage was not logged"
restart

# ---- PostgreSQL goes away mid-run, then Redis
run=$(sl_enqueue pair) || t_fail "enqueue"
wait_for "step one never started" grep -q "job start.*run=$run step=one" "$T_TMP/log/worker-sleep.log"
pg_stop
# Step one finishes while PostgreSQL is away.
one_done() { [ "$(sl_done_count "$run" one)" = 1 ]; }
wait_for "step one did not finish while PostgreSQL was away" one_done
restart
wait_for "step two never started" grep -q "job start.*run=$run step=two" "$T_TMP/log/worker-sleep.log"
redis_stop
sl_wait_run "$run" succeeded 60
restart
for s in one two three; do
    [ "$(sl_done_count "$run" $s)" = 1 ] || t_fail "step $s done $(sl_done_count "$run" $s) times"
done
grep -q "postgres is back" "$T_TMP/log/daemon.log" || t_fail "no 'postgres is back'"
kill -0 "$(cat "$T_TMP/daemon.pid")" || t_fail "the daemon died"
# Redis is written again once it is back, the run that ended while it was away included.
for i in $(seq 300); do     # up to 60 s
    [ "$(redis-cli -u "$REDIS_URL" hget "pred:run:$run" state)" = succeeded ] && break
    sleep 0.2
done
[ "$(redis-cli -u "$REDIS_URL" hget "pred:run:$run" state)" = succeeded ] || t_fail "the run that ended during the Redis outage is not in Redis"
run2=$(sl_enqueue pair --param ms=10) || t_fail "enqueue after the outages"
sl_wait_run "$run2" succeeded 30
for i in $(seq 300); do     # up to 60 s
    [ "$(redis-cli -u "$REDIS_URL" hget "pred:run:$run2" state)" = succeeded ] && break
    sleep 0.2
done
[ "$(redis-cli -u "$REDIS_URL" hget "pred:run:$run2" state)" = succeeded ] || t_fail "Redis not written after it came back"
echo "stores ok"
