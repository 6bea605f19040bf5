#!/usr/bin/env bash
# `make run`'s script (deploy/run) on a throw-away stack: the stack comes up with the broker
# and the scheduler daemon, `sched enqueue weekly --wait` runs the shipped weekly pipeline,
# and a step whose worker is not running is reported as exactly that (exit 4, the step and
# its service named), never faked. With every worker built (other branches), the same script
# runs the pipeline to the end.
. "$(dirname "$0")/lib.sh"
S=$T_TMP/runstack
t_cleanup "$ROOT/deploy/stack down --dir $S"
unset PREDICTORS_BROKER PREDICTORS_BROKER_BIND PREDICTORS_BROKER_EVENTS PREDICTORS_BROKER_JOURNAL REDIS_URL DATABASE_URL
export PREDICTORS_FETCH_DEBIAN_DIR=$T_TMP/debian
all=1
for w in discover fetch train eval deploy; do [ -x "$PREDICTORS_BIN/worker-$w" ] || all=0; done
# With every worker built, a worker that registers slowly (a sanitizer build on a loaded
# machine) must not count as missing: give them a minute. A worker not built never comes.
[ $all = 1 ] && no_worker=60s || no_worker=4s
for attempt in 1 2; do        # a random port taken meanwhile on a shared machine: once more
    RUN_STACK_DIR=$S RUN_STACK_OPTS="--fast --random-ports" RUN_NO_WORKER_TIMEOUT=$no_worker \
        RUN_MARKET_OPTS="--symbols 20 --sectors 4 --days 160" \
        RUN_PARAMS="transformer_samples=512 transformer_epochs=2" \
        "$ROOT/deploy/run" >"$T_TMP/out" 2>&1
    rc=$?
    grep -q "^stack: error:" "$T_TMP/out" || break
    cat "$T_TMP/out"; echo "(stack did not come up; trying again)"
    "$ROOT/deploy/stack" down --dir "$S" >/dev/null 2>&1; rm -rf "$S"
done
cat "$T_TMP/out"
grep -q "stack: up: redis" "$T_TMP/out" || t_fail "the stack did not come up"
grep -Eq "^ *broker +up" "$T_TMP/out" || t_fail "the broker is not up"
grep -Eq "^ *sched-daemon +up" "$T_TMP/out" || t_fail "the daemon is not up"
grep -q "^== summary" "$T_TMP/out" || t_fail "no summary"
grep -Eq "^  discover +(submitted|running|done|task )" "$T_TMP/out" || t_fail "the summary lacks the discover step"
grep -q "Where to look:" "$T_TMP/out" || t_fail "no pointers"
if [ $all = 1 ]; then
    [ $rc = 0 ] || t_fail "with every worker built the weekly run exited $rc"
    grep -q "run: the weekly pipeline succeeded" "$T_TMP/out" || t_fail "no success line"
else
    [ $rc = 4 ] || t_fail "with workers missing deploy/run exited $rc, not 4"
    grep -Eq "^run weekly-[0-9-]*[0-9a-f]{4} is waiting: step [a-z_]+: no worker for service '[a-z.]+' is running" "$T_TMP/out" ||
        t_fail "the missing worker is not named"
    grep -q "run: not built yet, so their steps will wait:" "$T_TMP/out" || t_fail "missing workers not listed up front"
fi
echo "run ok (exit $rc)"
