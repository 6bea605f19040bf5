#!/usr/bin/env bash
# The dashboard in a real browser during a real run: bin/broker, bin/sched daemon, two
# worker-testkit workers and bin/monitor; a pipeline run is enqueued with `sched enqueue`;
# while its long step runs, headless Chromium (Debian's, with the no-network flags) loads the
# page, runs its JavaScript and must show the run, its steps with the running one's progress,
# and the workers. Then again after the run finished. Screenshots go to $T_TMP.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
command -v chromium >/dev/null || { echo "chromium not installed (deploy/deps installs it)"; exit 77; }
BIN=$PREDICTORS_BIN
t_newdb monitor_browser

BROKER_PORT=$(t_free_port); EVENTS_PORT=$(t_free_port); MON_PORT=$(t_free_port)
export PREDICTORS_BROKER=tcp://127.0.0.1:$BROKER_PORT
export PREDICTORS_BROKER_EVENTS=tcp://127.0.0.1:$EVENTS_PORT
export PREDICTORS_BROKER_HEARTBEAT=0.5s
export PREDICTORS_MONITOR_PORT=$MON_PORT PREDICTORS_MONITOR_CATCHUP=0.5s
export PREDICTORS_SCHEDULER_PIPELINES=$T_TMP/pipelines PREDICTORS_SCHEDULER_TICK=0.2s
export PREDICTORS_ARTIFACTS_ROOT=$T_TMP/artifacts TESTKIT_STATE=$T_TMP/testkit
# Our own Redis database number keeps this run's keys apart from other scenarios'.
export REDIS_URL=${REDIS_URL%/*}/7
redis-cli -u "$REDIS_URL" FLUSHDB >/dev/null
mkdir -p "$T_TMP/pipelines" "$T_TMP/artifacts"
# Step work lasts 25 s: Chromium must load the page while it runs, and a loaded machine can
# take 10 s and more to start Chromium.
cat >"$T_TMP/pipelines/demo.conf" <<'EOF'
[pipeline]
description = monitor dashboard scenario: prepare, a long step with progress, finish

[step.prepare]
service = echo
param.what = data

[step.work]
service = sleep
needs = prepare
param.ms = 25000

[step.finish]
service = echo
needs = work
EOF

pids=()
stop_all() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap stop_all EXIT
"$BIN/broker" --bind "$PREDICTORS_BROKER" --events "$PREDICTORS_BROKER_EVENTS" --journal "$T_TMP/journal" \
    >"$T_TMP/broker.log" 2>&1 & pids+=($!)
t_wait_port "$BROKER_PORT" $!
"$BIN/monitor" >"$T_TMP/monitor.log" 2>&1 & pids+=($!)
t_wait_port "$MON_PORT" $!
"$BIN/worker-testkit" -s sleep >"$T_TMP/worker-sleep.log" 2>&1 & pids+=($!); sleep_pid=$!
"$BIN/worker-testkit" -s echo >"$T_TMP/worker-echo.log" 2>&1 & pids+=($!)
"$BIN/sched" daemon >"$T_TMP/sched.log" 2>&1 & pids+=($!)

# The registry's history for one task (three promotions, the last in production), when the
# evaluate/deploy migrations are installed: the page charts it, /metrics exports it.
registry=$(psql -X -qAt "$DATABASE_URL" -c "select to_regclass('model_versions') is not null")
if [ "$registry" = t ]; then
    psql -X -q "$DATABASE_URL" -v ON_ERROR_STOP=1 >/dev/null <<'SQL' || t_fail "cannot write registry rows"
insert into registered_models (task) values ('demo_task');
insert into model_versions (task, version, artifact_uri, sha256, run, family, metrics, status, created_at)
select 'demo_task', v, 'file:///var/artifacts/m' || v, repeat(v::text, 64), 'run-' || v, 'xgboost',
       jsonb_build_object('accuracy', a, 'roc_auc', a + 0.05), 'promoted', now() - (4 - v) * interval '7 days'
from (values (1, 0.55), (2, 0.58), (3, 0.61)) as t (v, a);
insert into model_aliases (task, alias, version) values ('demo_task', 'production', 3), ('demo_task', 'previous', 2);
SQL
fi

run=$("$BIN/sched" enqueue demo --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["id"])') ||
    t_fail "sched enqueue failed: $(tail -5 "$T_TMP/sched.log")"
echo "run $run"
for i in $(seq 200); do
    st=$(psql -X -qAt "$DATABASE_URL" -c "select state from sched_steps where run_id = '$run' and name = 'work'")
    [ "$st" = running ] && break
    sleep 0.1
done
[ "$st" = running ] || t_fail "step work never ran (state '$st'): $(tail -5 "$T_TMP/sched.log")"
sleep 1.5   # a few progress reports

browse() {  # browse NAME: dump the DOM after the page's JavaScript ran, and a screenshot
    local flags=(--headless --no-sandbox --disable-gpu --disable-quic --no-first-run
                 --disable-background-networking --disable-component-update --disable-sync
                 --disable-default-apps --disable-extensions --user-data-dir="$T_TMP/chromium-$1"
                 --virtual-time-budget=3000 --window-size=1400,1800)
    timeout 120 chromium "${flags[@]}" --dump-dom "http://127.0.0.1:$MON_PORT/" >"$T_TMP/$1.html" 2>>"$T_TMP/chromium.log" ||
        t_fail "chromium --dump-dom failed: $(tail -3 "$T_TMP/chromium.log")"
    timeout 120 chromium "${flags[@]}" --screenshot="$T_TMP/$1.png" "http://127.0.0.1:$MON_PORT/" \
        >>"$T_TMP/chromium.log" 2>&1 || t_fail "chromium --screenshot failed"
    [ -s "$T_TMP/$1.png" ] || t_fail "no screenshot $T_TMP/$1.png"
    echo "screenshot: $T_TMP/$1.png"
}
has() { grep -q -- "$2" "$T_TMP/$1.html" || t_fail "$1: page lacks $3 ($2)"; }

browse during
has during "data-loaded=" "the marker that the JavaScript rendered it"
has during "data-run=\"$run\"" "the run"
for s in prepare work finish; do has during "data-step=\"$s\"" "step $s"; done
/usr/bin/python3 - "$T_TMP/during.html" <<'EOF' || t_fail "during: the running step's row is wrong"
import re, sys
html = open(sys.argv[1]).read()
row = re.search(r'<tr data-step="work">(.*?)</tr>', html).group(1)
assert "st-leased" in row or "st-running" in row, row
pct = re.search(r'width: ([0-9.]+)%', row)
assert pct and 0 < float(pct.group(1)) < 100, row          # a partial progress bar
assert re.search(r'<tr data-step="prepare">.*?st-done', html), "prepare not done"
assert re.search(r'<tr data-step="finish">.*?st-waiting', html), "finish not waiting"
EOF
grep -o 'data-worker="[0-9A-Fa-f]*"' "$T_TMP/during.html" | sort -u | wc -l | grep -qx 2 || t_fail "during: not 2 workers"
has during ">sleep<" "the sleep service in queues/workers"
# The runtime names its socket host:pid; the page shows both, and which worker runs the step.
has during "<td>$(hostname)</td>" "the workers' host"
has during "<td>$sleep_pid</td>" "the sleep worker's pid"
has during "on $(hostname):$sleep_pid" "the worker running step work"
has during "predictors\|Predictors" "the title"
if grep -q "no scheduler tables" "$T_TMP/during.html"; then t_fail "dashboard says the scheduler tables are missing"; fi
if [ "$registry" = t ]; then
    has during 'id="registry-chart"' "the registry chart"
    grep -o '<polyline points="[^"]*"' "$T_TMP/during.html" | grep -q ' .* ' || t_fail "chart without a 3-point line"
    has during "demo_task: accuracy 0.6100 (v3)" "the production metric legend"
    curl -s "http://127.0.0.1:$MON_PORT/metrics" | grep -qx 'predictors_production_model_metric{task="demo_task",metric="accuracy"} 0.61' ||
        t_fail "/metrics lacks the production metric"
else
    echo "registry tables not installed: chart not checked"
fi

"$BIN/sched" status "$run" --json >/dev/null
for i in $(seq 900); do     # up to 90 s
    st=$(psql -X -qAt "$DATABASE_URL" -c "select state from sched_runs where id = '$run'")
    [ "$st" = succeeded ] && break
    sleep 0.1
done
[ "$st" = succeeded ] || t_fail "run did not succeed: $st"
sleep 1
browse after
/usr/bin/python3 - "$T_TMP/after.html" "$run" <<'EOF' || t_fail "after: the finished run is not shown as such"
import re, sys
html, run = open(sys.argv[1]).read(), sys.argv[2]
assert re.search(r'data-run="%s".*?st-succeeded' % run, html), "run not succeeded"
for s in ("prepare", "work", "finish"):
    assert re.search(r'<tr data-step="%s">.*?st-done' % s, html), s
assert "done" in html and "leased" in html       # recent events list
EOF
echo "ok: dashboard shows run $run, its steps and workers during and after the run"
