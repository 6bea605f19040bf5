#!/usr/bin/env bash
# evaluate -> deploy as a pipeline, end to end on real parts: sched daemon, the broker,
# bin/worker-eval and bin/worker-deploy, PostgreSQL and Redis, real xgboost / rf / ensemble
# artifacts. Week 1: the first model beats the rules and is promoted (Redis pointer, deployed
# copy, `sched status` shows the report and the decision). Week 2: the same models against
# production re-scored on the same rows: rejected, production unchanged. A refused deploy
# (no previous version) through `sched rollback` exits 1.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sched_lib.sh"
sl_setup evalpipe
export PREDICTORS_DEPLOY_DIR=$T_TMP/deploy
redis-cli -u "$REDIS_URL" del pred:model:synth:production >/dev/null
put() {  # FILE -> its artifact store URI
    local h; h=$(sha256sum <"$1" | cut -d' ' -f1)
    mkdir -p "$PREDICTORS_ARTIFACTS_ROOT/sha256/${h:0:2}"
    cp "$1" "$PREDICTORS_ARTIFACTS_ROOT/sha256/${h:0:2}/$h"
    echo "file://$PREDICTORS_ARTIFACTS_ROOT/sha256/${h:0:2}/$h"
}
T=$PREDICTORS_BIN/worker-train
"$T" synth --rows 3000 --cols 6 --seed 8 --valid 0.2 --test 0.25 -o "$T_TMP/ds.bin" >/dev/null || t_fail "synth"
D=$(put "$T_TMP/ds.bin")
X=$("$T" fit -f xgboost -d "$D" -p rounds=30 2>/dev/null | tail -1) || t_fail "fit xgboost"
R=$("$T" fit -f rf -d "$D" -p trees=20 -p max_depth=5 2>/dev/null | tail -1) || t_fail "fit rf"
E=$("$T" fit -f ensemble -d "$D" --members "$X,$R" 2>/dev/null | tail -1) || t_fail "fit ensemble"

cat >"$PIPES/evaldeploy.conf" <<'CONF'
[pipeline]
description = evaluate given models against the rules and production, deploy if better
[params]
dataset = none
models = none
task = synth
margin = 0.01
[step.evaluate]
service = evaluate
timeout = 5m
param.dataset = ${dataset}
param.models = ${models}
param.task = ${task}
[step.deploy]
service = deploy
needs = evaluate
timeout = 5m
param.margin = ${margin}
CONF
sl_broker
_sl_start worker-eval "$PREDICTORS_BIN/worker-eval"
_sl_start worker-deploy "$PREDICTORS_BIN/worker-deploy"
sl_daemon

week() {  # N: enqueue, wait, keep `sched status --json` in $T_TMP/status.N
    local out rc run
    out=$("$SCHED" enqueue evaldeploy --param "dataset=$D" --param "models=$X,$R,$E" --wait 2>&1); rc=$?
    [ $rc = 0 ] || { echo "$out"; tail -20 "$T_TMP/log/worker-eval.log" "$T_TMP/log/worker-deploy.log"; t_fail "week $1: run exited $rc"; }
    run=$(echo "$out" | sed -n 's/^run \([^ ]*\) enqueued.*/\1/p')
    "$SCHED" status "$run" --json >"$T_TMP/status.$1" || t_fail "week $1: status --json"
}
week 1
$PY - "$T_TMP/status.1" <<'PY' || t_fail "week 1: status content"
import json, os, sys
r = json.load(open(sys.argv[1]))
steps = {s["name"]: s for s in r["steps"]}
ev, de = steps["evaluate"], steps["deploy"]
assert r["state"] == "succeeded", r["state"]
html = open(ev["outputs"]["report"][len("file://"):]).read()
for plot in ("plot-roc", "plot-calibration", "plot-equity", "plot-importance"):
    assert f'id="{plot}"' in html, plot
assert de["metrics"]["promoted"] == 1 and de["metrics"]["version"] == 1, de["metrics"]
assert os.path.isfile(de["outputs"]["deployed"][len("file://"):]), de["outputs"]
PY
[ "$(redis-cli -u "$REDIS_URL" hget pred:model:synth:production version)" = 1 ] || t_fail "week 1: Redis pointer is not v1"

week 2
$PY - "$T_TMP/status.2" <<'PY' || t_fail "week 2: status content"
import json, sys
r = json.load(open(sys.argv[1]))
steps = {s["name"]: s for s in r["steps"]}
ev, de = steps["evaluate"], steps["deploy"]
assert ev["metrics"]["production_version"] == 1 and ev["metrics"]["vs_production_diff"] == 0, ev["metrics"]
assert de["metrics"]["promoted"] == 0 and de["metrics"]["incumbent"] == 1, de["metrics"]
PY
[ "$(redis-cli -u "$REDIS_URL" hget pred:model:synth:production version)" = 1 ] || t_fail "week 2 moved the pointer"
"$SCHED" rollback synth >/dev/null 2>"$T_TMP/rb"; [ $? = 1 ] || t_fail "rollback without a previous version did not exit 1"
grep -q "no previous version" "$T_TMP/rb" || t_fail "rollback refusal unclear"
echo "evaluate -> deploy pipeline passed"
