#!/usr/bin/env bash
# discover -> fetch through the real broker and scheduler: worker-discover (built-in catalog,
# no API key) proposes a task, worker-fetch (on the worker runtime) builds its dataset from
# the market bin/marketgen loaded or from Debian's data sets, records it in `datasets`, and
# returns the artifact URI as output "dataset" of the step.
. "$(dirname "$0")/lib.sh"
. "$(dirname "$0")/sched_lib.sh"
sl_setup fetchpipe
sl_broker               #  first, on the port sl_setup just found free
unset ANTHROPIC_API_KEY
export PREDICTORS_FETCH_DEBIAN_DIR=$T_TMP/debian
if ! "$ROOT/deploy/data/fetch-debian-data.sh" --dest $T_TMP/debian >/dev/null 2>$T_TMP/deb.err; then
    echo "skipped: apt-get download failed ($(tail -n 1 $T_TMP/deb.err))"; exit 77
fi
t_check "marketgen" "$PREDICTORS_BIN/marketgen" --db "$DATABASE_URL" --symbols 20 --sectors 4 --days 160
cat >"$PIPES/datastep.conf" <<'CONF'
[pipeline]
description = discover a task and fetch its data
[step.discover]
service = discover
timeout = 5m
[step.fetch]
service = fetch
needs = discover
timeout = 10m
CONF
_sl_start worker-discover "$PREDICTORS_BIN/worker-discover"
_sl_start worker-fetch "$PREDICTORS_BIN/worker-fetch"
sl_daemon
for i in 1 2; do
    out=$("$SCHED" enqueue datastep --wait 2>&1); rc=$?
    echo "$out" | tail -n 3
    [ $rc = 0 ] || { tail -n 30 $T_TMP/log/worker-fetch.log; t_fail "run $i exited $rc"; }
    run=$(echo "$out" | sed -n 's/^run \([^ ]*\) enqueued.*/\1/p')
    "$SCHED" status "$run" --json > $T_TMP/status.json || t_fail "status --json"
    uri=$($PY -c '
import json, sys
r = json.load(open(sys.argv[1]))
step = {s["name"]: s for s in r["steps"]}["fetch"]
print(step["outputs"]["dataset"])' $T_TMP/status.json) || t_fail "no dataset output"
    [ -f "${uri#file://}" ] || t_fail "dataset artifact $uri missing"
    n=$(psql -X -At "$DATABASE_URL" -c "select count(*) from datasets where run = '$run' and step = 'fetch' and artifact_uri = '$uri'")
    [ "$n" = 1 ] || t_fail "no datasets row for run $run"
    $PY - "${uri#file://}" <<'PY' || t_fail "dataset check"
import sys
sys.path.insert(0, "tests"); import pdset, json
d = pdset.load(sys.argv[1])
s = d["splits"]
assert s["train"][1] <= s["valid"][0] <= s["valid"][1] <= s["test"][0], s
print("run dataset:", json.loads(d["meta"])["task"], d["x"].shape, d["task"], s)
PY
done
echo "discover -> fetch through the broker ok"
