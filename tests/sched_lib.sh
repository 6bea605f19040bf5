# tests/sched_lib.sh - helpers for the scheduler scenarios (source after tests/lib.sh).
#   sl_setup NAME          fresh database, ports, a pipelines dir ($PIPES), state dir ($STATE)
#   sl_broker              start bin/broker (journal under $T_TMP), wait for its port
#   sl_worker SERVICE      start a bin/worker-testkit for SERVICE; prints its pid into $T_TMP/pids
#   sl_daemon [NAME]       start `sched daemon`; its pid in $T_TMP/NAME.pid (default daemon)
#   sl_wait_run RUN STATE [SECONDS]   wait until the run is in STATE (fails after SECONDS, default 60)
#   sl_expect RC PATTERN CMD...       CMD exits RC and writes exactly one stderr line holding PATTERN
#   sl_runs_done STEP      how many times step STEP of the current run finished ("done") in testkit's log
# Everything started is stopped at exit (by pid, never by name).
SCHED=$PREDICTORS_BIN/sched
sl_setup() {
    t_newdb "$1"
    BROKER_PORT=$(t_free_port)
    EVENTS_PORT=$(t_free_port)
    while [ "$EVENTS_PORT" = "$BROKER_PORT" ]; do EVENTS_PORT=$(t_free_port); done
    export PREDICTORS_BROKER=tcp://127.0.0.1:$BROKER_PORT
    export PREDICTORS_BROKER_BIND=$PREDICTORS_BROKER
    export PREDICTORS_BROKER_EVENTS=tcp://127.0.0.1:$EVENTS_PORT
    export PREDICTORS_BROKER_JOURNAL=$T_TMP/journal
    export PREDICTORS_BROKER_HEARTBEAT=300ms
    export PREDICTORS_BROKER_RETRY_BASE=100ms
    export PREDICTORS_BROKER_RETRY_MAX=500ms
    export PREDICTORS_SCHEDULER_TICK=200ms
    export PREDICTORS_SCHEDULER_WORKER_CHECK=500ms
    export PREDICTORS_WORKER_GRACE=1s
    export PREDICTORS_ARTIFACTS_ROOT=$T_TMP/artifacts
    export PIPES=$T_TMP/pipelines STATE=$T_TMP/state
    export PREDICTORS_SCHEDULER_PIPELINES=$PIPES TESTKIT_STATE=$STATE
    mkdir -p "$PIPES" "$STATE" "$T_TMP/journal" "$T_TMP/log"
}
_sl_start() {  # NAME CMD...
    local name=$1; shift
    "$@" >>"$T_TMP/log/$name.log" 2>&1 &
    local pid=$!
    echo $pid >"$T_TMP/$name.pid"
    t_cleanup "kill -9 $pid"
}
sl_broker() {
    _sl_start broker "$PREDICTORS_BIN/broker"
    local pid i
    pid=$(cat "$T_TMP/broker.pid")
    for i in $(seq 600); do     # a busy machine under ASan: up to 60 s
        ss -Hltn "sport = :$BROKER_PORT" | grep -q . && return 0
        kill -0 "$pid" 2>/dev/null || { cat "$T_TMP/log/broker.log" >&2; t_fail "the broker exited at start"; }
        sleep 0.1
    done
    cat "$T_TMP/log/broker.log" >&2
    t_fail "the broker does not listen on $BROKER_PORT after 60 s"
}
sl_worker() {
    local n=${2:-$1}
    _sl_start "worker-$n" "$PREDICTORS_BIN/worker-testkit" --service "$1"
}
sl_daemon() {
    _sl_start "${1:-daemon}" "$SCHED" daemon
}
sl_state() { "$SCHED" status "$1" --json 2>/dev/null | $PY -c 'import json,sys; print(json.load(sys.stdin)["state"])' 2>/dev/null; }
sl_wait_run() {
    local run=$1 want=$2 limit=${3:-60} i s=""
    for i in $(seq $((limit * 5))); do
        s=$(sl_state "$run")
        [ "$s" = "$want" ] && return 0
        sleep 0.2
    done
    "$SCHED" status "$run" >&2
    t_fail "run $run is '$s', not '$want', after $limit s"
}
# Times step STEP of RUN ran to "done" in the testkit's execution log.
sl_done_count() { grep -c "^$1 $2 .* done\$" "$STATE/executions.log" 2>/dev/null || true; }
sl_enqueue() { "$SCHED" enqueue "$@" --json | $PY -c 'import json,sys; print(json.load(sys.stdin)["id"])'; }

sl_expect() {  # RC PATTERN CMD...
    local want=$1 pattern=$2; shift 2
    "$@" >"$T_TMP/out" 2>"$T_TMP/err"; local rc=$?
    [ $rc = "$want" ] || { cat "$T_TMP/out" "$T_TMP/err"; t_fail "'$*' exited $rc, not $want"; }
    grep -q -- "$pattern" "$T_TMP/err" || { cat "$T_TMP/err"; t_fail "'$*' did not say '$pattern'"; }
    [ "$(wc -l <"$T_TMP/err")" = 1 ] || { cat "$T_TMP/err"; t_fail "'$*' wrote more than one error line"; }
}
