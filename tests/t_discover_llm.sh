#!/usr/bin/env bash
# worker-discover's LLM path against a local server speaking the Anthropic Messages API's real
# request, response and error shapes (tests/fake_anthropic.py): success with a forced tool call,
# 429 with retry-after, 529 and 500 with backoff, 401 and 400 permanent, malformed JSON, a
# schema-violating spec corrected once, invalid twice, duplicates and near-duplicates re-asked,
# an SSRF source refused, the feasibility probe (oversize, HTML, redirect into the private
# network, HEAD refused), structured output; the API key never reaches logs, PostgreSQL or Redis.
. "$(dirname "$0")/lib.sh"
t_newdb discover_llm
BIN=$PREDICTORS_BIN/worker-discover
KEY="sk-ant-api03-TESTKEY-$$-SECRETSECRETSECRET"

$PY "$ROOT/tests/fake_anthropic.py" "$T_TMP/port" &
fake=$!
t_cleanup "kill $fake"
for i in $(seq 600); do     # up to 60 s on a loaded machine; at once if it died
    [ -s "$T_TMP/port" ] && break
    kill -0 "$fake" 2>/dev/null || t_fail "the fake server exited at start"
    sleep 0.1
done
PORT=$(cat "$T_TMP/port") || t_fail "fake server did not start"
FAKE=http://127.0.0.1:$PORT

export ANTHROPIC_API_KEY=$KEY
export PREDICTORS_LLM_BASE_URL=$FAKE PREDICTORS_LLM_MODEL=claude-test-model
export PREDICTORS_DISCOVER_BACKOFF=0.05s PREDICTORS_DISCOVER_BACKOFF_MAX=1s PREDICTORS_DISCOVER_RETRIES=2
unset PREDICTORS_CONFIG

script() { curl -sf -X POST --data-binary "$1" "$FAKE/_script" >/dev/null || t_fail "cannot set script"; }
reset() { curl -sf -X POST "$FAKE/_reset" >/dev/null || t_fail "cannot reset"; }
log() { curl -sf "$FAKE/_log"; }
nreq() { log | $PY -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
# pyq EXPR: evaluates EXPR with L = the request log
pyq() { log | $PY -c "import json,sys; L=json.load(sys.stdin); print($1)"; }
ALL_ERR=$T_TMP/all.err
: >"$ALL_ERR"
# run NAME [env...]: one step; stdout in $T_TMP/NAME.out, stderr in $T_TMP/NAME.err, rc in $rc
run() {
    local name=$1; shift
    LAST=$name
    env "$@" "$BIN" --propose --run "run-$name" >"$T_TMP/$name.out" 2>"$T_TMP/$name.err"
    rc=$?
    cat "$T_TMP/$name.err" >>"$ALL_ERR"
}
expect_rc() { [ "$rc" = "$1" ] || { cat "$T_TMP/$LAST.err"; t_fail "$LAST: exit $rc, wanted $1"; }; }
expect_err() { grep -q -- "$1" "$T_TMP/$LAST.err" || { cat "$T_TMP/$LAST.err"; t_fail "$LAST: stderr lacks '$1'"; }; }

# spec NAME HYPOTHESIS [URI] [HORIZON] [TARGET]: a task spec as JSON
spec() {
    $PY - "$@" <<'EOF'
import json, sys
a = sys.argv[1:] + [None] * 5
name, hyp = a[0], a[1]
uri = a[2] or "debian:python3-vega-datasets:/usr/lib/python3/dist-packages/vega_datasets/_data/seattle-weather.csv"
horizon = int(a[3] or 1)
target = a[4] or "temp_max"
print(json.dumps({"version": 1, "name": name, "hypothesis": hyp, "novelty": "not tried before by anyone here",
    "task_type": "binary", "sources": [{"uri": uri, "format": "csv",
    "columns": ["date", "precipitation", "temp_max", "temp_min", "wind", "weather"], "time_column": "date",
    "size_bytes": 47838}], "target": {"column": target, "kind": "direction", "horizon": horizon},
    "features": ["temp_max", "ret(wind,3)", "month(date)"], "metric": "roc_auc",
    "model_families": ["xgboost", "mlp"]}))
EOF
}
tool() { echo "{\"tool_input\": $1}"; }

A=$(spec warm_days "Warm afternoons in Seattle come in runs: today's high and the wind predict whether tomorrow is warmer.")

# ---- 1. success through a forced tool call
reset; script "[$(tool "$A")]"
run ok; expect_rc 0
grep -q '"name":"warm_days"' "$T_TMP/ok.out" || t_fail "ok: spec not printed"
[ "$(nreq)" = 1 ] || t_fail "ok: $(nreq) requests"
[ "$(pyq 'L[0]["headers"]["x-api-key"] == "'"$KEY"'"')" = True ] || t_fail "x-api-key not sent"
[ "$(pyq 'L[0]["headers"]["anthropic-version"]')" = 2023-06-01 ] || t_fail "anthropic-version not sent"
[ "$(pyq 'L[0]["headers"]["content-type"]')" = application/json ] || t_fail "content-type"
[ "$(pyq 'L[0]["body"]["model"]')" = claude-test-model ] || t_fail "model id not from configuration"
[ "$(pyq 'L[0]["body"]["tool_choice"]')" = "{'type': 'tool', 'name': 'propose_task'}" ] || t_fail "tool not forced"
[ "$(pyq 'L[0]["body"]["tools"][0]["input_schema"]["properties"]["target"]["type"]')" = object ] || t_fail "schema"
[ "$(pyq '"novel" in L[0]["body"]["system"]')" = True ] || t_fail "system prompt"
[ "$(pyq '"No task has been tried yet" in L[0]["body"]["messages"][0]["content"]')" = True ] || t_fail "history (empty)"
[ "$(psql -X "$DATABASE_URL" -Atc "select origin || ' ' || name from tasks where run_id = 'run-ok'")" = "llm warm_days" ] ||
    t_fail "task not stored with its run"

# replay of the same (run, step): no API call, same task
reset
run ok; expect_rc 0
expect_err "replayed"
[ "$(nreq)" = 0 ] || t_fail "replay called the API"

# ---- 2. 429 with retry-after, then success; the history now lists warm_days
B=$(spec rainy_wind "Gusty days bring rain in Seattle: wind speed above its weekly mean predicts whether the high temperature rises." "" 2)
reset; script "[{\"status\":429,\"error_type\":\"rate_limit_error\",\"message\":\"Number of request tokens has exceeded your per-minute rate limit\",\"headers\":{\"retry-after\":\"1\"}}, $(tool "$B")]"
run r429; expect_rc 0
[ "$(nreq)" = 2 ] || t_fail "429: $(nreq) requests"
expect_err "429 rate_limit_error: Number of request tokens"
expect_err "retry 1 of 2 in 1.00 s"
[ "$(pyq '"warm_days" in L[0]["body"]["messages"][0]["content"]')" = True ] || t_fail "history not sent"

# ---- 3. 529 then 500, then success
C=$(spec cold_nights "Clear nights cool Seattle fast: a low minimum temperature today predicts a rising high over three days." "" 3)
reset; script "[{\"status\":529,\"error_type\":\"overloaded_error\",\"message\":\"Overloaded\"},{\"status\":500,\"error_type\":\"api_error\",\"message\":\"Internal server error\"}, $(tool "$C")]"
run r5xx; expect_rc 0
[ "$(nreq)" = 3 ] || t_fail "5xx: $(nreq) requests"
expect_err "529 overloaded_error"; expect_err "500 api_error"

# ---- 4. 401: permanent at once, the API's message, the key redacted even when echoed
reset; script '[{"status":401,"error_type":"authentication_error","message":"invalid x-api-key {key}"}]'
run r401; expect_rc 1
[ "$(nreq)" = 1 ] || t_fail "401 was retried"
expect_err "llm_error: API answered 401 authentication_error: invalid x-api-key"
grep -q "TESTKEY" "$T_TMP/r401.err" && t_fail "401: the key appears in the error"

# 400 and 403 are permanent too
reset; script '[{"status":403,"error_type":"permission_error","message":"Your API key does not have permission"}]'
run r403; expect_rc 1; [ "$(nreq)" = 1 ] || t_fail "403 was retried"
reset; script '[{"status":400,"error_type":"invalid_request_error","message":"max_tokens: too large"}]'
run r400; expect_rc 1; expect_err "400 invalid_request_error: max_tokens"

# ---- 5. malformed JSON bodies: retried, then a transient failure (exit 75)
reset; script '[{"raw":"{\"type\":\"message\",\"content\":["},{"raw":"<html>oops"},{"raw":"not json"}]'
run garbage; expect_rc 75
[ "$(nreq)" = 3 ] || t_fail "malformed: $(nreq) requests"
expect_err "malformed reply"; expect_err "gave up after 3 attempts"
# retries exhausted on 529 is transient as well
reset; script '[{"status":529,"error_type":"overloaded_error","message":"Overloaded"},{"status":529,"error_type":"overloaded_error","message":"Overloaded"},{"status":529,"error_type":"overloaded_error","message":"Overloaded"}]'
run r529; expect_rc 75; expect_err "llm_unavailable"

# ---- 6. a spec that violates the schema, corrected once
BAD=$(spec bad_target "Snowfall follows the wind, a hypothesis whose target column does not exist here." "" 1 snowfall)
D=$(spec wind_shift "After a windy day the next day's high temperature tends to rise as fronts pass through Seattle." "" 5)
reset; script "[$(tool "$BAD"), $(tool "$D")]"
run fixed; expect_rc 0
[ "$(nreq)" = 2 ] || t_fail "correction: $(nreq) requests"
[ "$(pyq 'L[1]["body"]["messages"][2]["content"][0]["type"]')" = tool_result ] || t_fail "no tool_result"
[ "$(pyq 'L[1]["body"]["messages"][2]["content"][0]["is_error"]')" = True ] || t_fail "tool_result not is_error"
[ "$(pyq '"target.column: '"'"'snowfall'"'"' is not among the columns" in L[1]["body"]["messages"][2]["content"][0]["content"]')" = True ] ||
    t_fail "the validation error was not sent back"
[ "$(psql -X "$DATABASE_URL" -Atc "select count(*) from discover_attempts where run_id = 'run-fixed' and outcome = 'invalid' and output like '%snowfall%'")" = 1 ] ||
    t_fail "invalid output not recorded"

# ---- 7. invalid twice: the step fails with both texts
BAD2=$(spec "Bad Name" "A spec whose name breaks the rules, to be refused a second time round.")
reset; script "[$(tool "$BAD"), $(tool "$BAD2")]"
run twice; expect_rc 1
expect_err "invalid_output: the model's spec failed validation twice. First: target.column: 'snowfall'"
expect_err "After correction: name: 'Bad Name' may hold only"

# ---- 8. an exact duplicate (same sources, target, horizon as warm_days) and a near-duplicate
DUP=$(spec warm_days_again "Completely different words about something that is, in fact, the very same prediction problem.")
NEAR=$(spec warm_days_h9 "Warm afternoons in Seattle come in runs: today's high and the wind predict whether tomorrow is warmer." "" 9)
E=$(spec rain_memory "Seattle's dry spells end abruptly: wind anomalies predict the high temperature's direction a week ahead." "" 7)
reset; script "[$(tool "$DUP"), $(tool "$NEAR"), $(tool "$E")]"
run novel; expect_rc 0
[ "$(nreq)" = 3 ] || t_fail "novelty: $(nreq) requests"
grep -q '"name":"rain_memory"' "$T_TMP/novel.out" || t_fail "novelty: wrong task accepted"
[ "$(pyq '"duplicate: same sources, target and horizon as past task '"'"'warm_days'"'"'" in L[1]["body"]["messages"][-1]["content"][0]["content"]')" = True ] ||
    t_fail "duplicate reason not sent back"
[ "$(pyq '"near-duplicate" in L[2]["body"]["messages"][-1]["content"][0]["content"]')" = True ] ||
    t_fail "near-duplicate reason not sent back"
# ... and with only duplicates the step fails, saying why (discover.attempts = 2)
reset; script "[$(tool "$DUP"), $(tool "$NEAR")]"
run onlydups PREDICTORS_DISCOVER_ATTEMPTS=2; expect_rc 1
expect_err "not_novel: no novel task after 2 proposals"

# ---- 9. SSRF: a source on a private address is refused and sent back
SSRF=$(spec meta "Cloud metadata predicts the weather, or so a confused model might claim in its proposal." "https://169.254.169.254/latest/meta-data.csv")
SSRF2=$(spec lan "Data from the operator's own network is not allowed as a source of any proposed task." "https://10.0.0.8/data.csv" 4)
reset; script "[$(tool "$SSRF"), $(tool "$SSRF2")]"
run ssrf; expect_rc 1
expect_err "resolves to 169.254.169.254, a private, loopback"
expect_err "resolves to 10.0.0.8"

# ---- 10. feasibility probe (local data URLs need allow_http/allow_private here, so a redirect
# is shown refused for its scheme; lb_netpolicy's selftest covers redirect targets' addresses)
P="PREDICTORS_SOURCES_ALLOW_HTTP=true PREDICTORS_SOURCES_ALLOW_PRIVATE=true"
HUGE=$(spec huge "A two-gigabyte file is far beyond what a weekly task may download, so it is refused." "$FAKE/data/huge.csv" 11)
HTML=$(spec html "A web page is not a data set, however interesting its prose might be for the weather." "$FAKE/data/page.html" 12)
reset; script "[$(tool "$HUGE"), $(tool "$HTML")]"
run probe1 $P; expect_rc 1
expect_err "is 2147483648 bytes, over the"; expect_err "serves an HTML page"
REDIR=$(spec redir "A redirect to a local file must be caught before anything is read from it, like any other." "$FAKE/data/redirect-file" 13)
NOHEAD=$(spec nohead "A server that refuses HEAD still tells the size through a one-byte ranged GET of the file." "$FAKE/data/nohead.csv" 14)
reset; script "[$(tool "$REDIR"), $(tool "$NOHEAD")]"
run probe2 $P; expect_rc 0
[ "$(pyq '"redirect to file:///etc/passwd: '"'"'file:///etc/passwd'"'"' is not an http(s) URL" in L[1]["body"]["messages"][-1]["content"][0]["content"]')" = True ] ||
    t_fail "redirect to a file: URL not caught"
grep -q '"name":"nohead"' "$T_TMP/probe2.out" || t_fail "ranged GET probe not accepted"

# ---- 11. structured output (output_config json_schema), the object as text
F=$(spec text_out "Temperature swings in Seattle follow the season: the month and recent change tell tomorrow's direction." "" 15)
reset; script "[{\"text\": $($PY -c 'import json,sys; print(json.dumps(sys.argv[1]))' "$F")}]"
run structured PREDICTORS_DISCOVER_OUTPUT=json_schema; expect_rc 0
[ "$(pyq 'L[0]["body"]["output_config"]["format"]["type"]')" = json_schema ] || t_fail "output_config not sent"
[ "$(pyq '"tools" in L[0]["body"]')" = False ] || t_fail "tools sent with structured output"

# ---- 12. no key: the catalog; a key file with loose permissions is refused
run nokey ANTHROPIC_API_KEY=; expect_rc 0; expect_err "origin=catalog"
echo "$KEY" >"$T_TMP/key"; chmod 644 "$T_TMP/key"
run loosekey ANTHROPIC_API_KEY= PREDICTORS_DISCOVER_API_KEY_FILE="$T_TMP/key"; expect_rc 1
expect_err "bad_key_file: discover.api_key_file $T_TMP/key: must be a regular file readable by its owner only (mode is 0644"
chmod 600 "$T_TMP/key"
reset; script "[$(tool "$(spec from_file "With the key read from a 0600 file the call carries it in its header and nowhere else." "" 16)")]"
run keyfile ANTHROPIC_API_KEY= PREDICTORS_DISCOVER_API_KEY_FILE="$T_TMP/key"; expect_rc 0
[ "$(pyq 'L[0]["headers"]["x-api-key"] == "'"$KEY"'"')" = True ] || t_fail "key file not used"

# ---- 13. a pg: source must name columns its table has (the table as fetch's migration makes it)
psql -X -q "$DATABASE_URL" -c "create table if not exists market_bars (symbol text, ts timestamptz,
    open float8, high float8, low float8, close float8, volume float8, primary key (symbol, ts))"
PGSPEC=$($PY - <<'EOF'
import json
def spec(name, cols, feats):
    return {"version": 1, "name": name, "hypothesis": "SPY's hourly momentum and its RSI predict the next bar's direction.",
            "novelty": "first market-table task here", "task_type": "binary",
            "sources": [{"uri": "pg:market_bars", "format": "table", "columns": cols, "time_column": "ts",
                         "where": {"symbol": "SPY"}, "size_bytes": 1 << 20}],
            "target": {"column": "close", "kind": "direction", "horizon": 1}, "features": feats,
            "metric": "accuracy", "model_families": ["xgboost"]}
print(json.dumps([{"tool_input": spec("spy_rsi", ["symbol", "ts", "close", "rsi"], ["rsi"])},
                  {"tool_input": spec("spy_mom", ["symbol", "ts", "close"], ["ret(close,5)", "rsi(close,14)"])}]))
EOF
)
reset; script "$PGSPEC"
run pgcols; expect_rc 0
[ "$(pyq '"sources[0].columns[3]: '"'"'rsi'"'"' is not a column of table market_bars" in L[1]["body"]["messages"][-1]["content"][0]["content"]')" = True ] ||
    t_fail "a missing table column was not caught"
grep -q '"name":"spy_mom"' "$T_TMP/pgcols.out" || t_fail "pg task not accepted after correction"

# ---- the key never appears in logs, PostgreSQL or Redis
grep -q "TESTKEY" "$ALL_ERR" && { grep "TESTKEY" "$ALL_ERR" | head -3; t_fail "the API key appears in a log"; }
pg_dump --data-only "$DATABASE_URL" | grep -q "TESTKEY" && t_fail "the API key appears in PostgreSQL"
if [ -n "${REDIS_URL:-}" ]; then
    redis-cli -u "$REDIS_URL" --scan | while read -r k; do redis-cli -u "$REDIS_URL" --raw dump "$k"; done | grep -aq "TESTKEY" &&
        t_fail "the API key appears in Redis"
fi
echo "discover llm ok"
