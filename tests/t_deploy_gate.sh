#!/usr/bin/env bash
# The deploy gate, the registry and the serving pointer on real PostgreSQL and Redis:
# first model promoted over the rules; a worse candidate rejected; a marginal one inside the
# noise rejected although its point estimate beats the margin; a better one promoted with the
# PG aliases, the verified copy and the Redis pointer together; double deploy changes nothing;
# rollback (and a second rollback refused); Redis down during a promotion, then back and
# repaired; bad input refused and recorded: truncated artifact, wrong checksum, different
# rows, NaN metrics, stale production, registry row pointing at a missing artifact.
# The evaluation report is stored as an artifact and its HTML carries every plot.
. "$(dirname "$0")/lib.sh"
t_newdb deploy
command -v redis-server >/dev/null || { echo "skip: no redis-server"; exit 77; }

# Our own Redis, so that we can stop it and start it again.
RPORT=$(t_free_port)
mkdir -p "$T_TMP/redis"
redis_up() {  # a loaded machine can take a while: wait up to 60 s, say why if it never comes
    redis-server --port "$RPORT" --bind 127.0.0.1 --save '' --appendonly no --dir "$T_TMP/redis" \
        --daemonize yes --pidfile "$T_TMP/redis/pid" --logfile "$T_TMP/redis/log" >/dev/null
    local i
    for i in $(seq 600); do redis-cli -p "$RPORT" ping 2>/dev/null | grep -q PONG && return 0; sleep 0.1; done
    tail -5 "$T_TMP/redis/log" >&2
    t_fail "redis-server did not answer on port $RPORT within 60 s"
}
redis_down() {  # returns once the process is gone and its port free (else redis_up may race it)
    local pid i; pid=$(cat "$T_TMP/redis/pid"); kill "$pid"
    for i in $(seq 600); do
        kill -0 "$pid" 2>/dev/null || ss -Hltn "sport = :$RPORT" | grep -q . || return 0
        sleep 0.1
    done
    t_fail "redis did not stop in 60 s"
}
redis_up
t_cleanup "kill \$(cat $T_TMP/redis/pid)"
export REDIS_URL=redis://127.0.0.1:$RPORT/0
export PREDICTORS_ARTIFACTS_ROOT=$T_TMP/artifacts PREDICTORS_DEPLOY_DIR=$T_TMP/deploy
EVAL=$PREDICTORS_BIN/worker-eval
DEPLOY=$PREDICTORS_BIN/worker-deploy
q() { psql -X -q "$DATABASE_URL" -Atc "$1"; }
# On failure, show the registry's story so far (what the lead reads in the test log).
t_fail() {
    echo "t_fail: $*" >&2
    psql -X -q "$DATABASE_URL" -c "select id, run, action, candidate_version, incumbent_version, decision, left (reason, 90) from deploy_decisions order by id" >&2
    redis-cli -p "$RPORT" hgetall "pred:model:spy:production" >&2
    exit 1
}
rget() { redis-cli -p "$RPORT" hget "pred:model:spy:production" "$1"; }

cat >"$T_TMP/gen.py" <<'PY'
import sys, numpy as np
out, n, acc_c, acc_p = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
rng = np.random.default_rng(7)                 # same rows every run
y = rng.integers(0, 2, n)
rule = np.where(rng.random(n) < 0.55, y, 1 - y)
fwd = rng.normal(0, 0.01, n) + 0.003 * (y - 0.5)
def model(acc, seed):
    r = np.random.default_rng(seed)
    right = np.zeros(n, bool); right[r.choice(n, int(round(acc * n)), replace=False)] = True
    pred = np.where(right, y, 1 - y)
    u = r.random(n) * 0.45
    return np.where(pred == 1, 0.5 + u, 0.5 - u - 1e-3)
cols = {"ensemble:ensemble": model(acc_c, int(acc_c * 1000) + 1)}
if acc_p != "-":
    cols["production"] = model(float(acc_p), 99)
with open(out, "w") as f:
    f.write("ts,label,rule,fwd_return," + ",".join(cols) + "\n")
    for i in range(n):
        f.write(f"{1700000000 + 3600 * i},{y[i]},{rule[i]},{fwd[i]!r}," + ",".join(repr(float(c[i])) for c in cols.values()) + "\n")
PY
printf 'rsi_14,0.31\nvolume_surge,0.22\nbb_position,0.12\n' >"$T_TMP/imp.csv"

# evaluate RUN ACC_CANDIDATE ACC_PRODUCTION|- PRODVERSION: a fresh model file, evaluated and stored.
evaluate() {
    local run=$1
    $PY "$T_TMP/gen.py" "$T_TMP/pred$run.csv" 2000 "$2" "$3" || t_fail "gen $run"
    head -c 4096 /dev/urandom >"$T_TMP/model$run.bin"
    "$EVAL" score --predictions "$T_TMP/pred$run.csv" --out "$T_TMP/out$run" --run "$run" --task spy \
        --production-version "${4:-0}" --artifact "ensemble=$T_TMP/model$run.bin" \
        --importance "ensemble=$T_TMP/imp.csv" --store >/dev/null 2>"$T_TMP/eval$run.err" ||
        { cat "$T_TMP/eval$run.err"; t_fail "evaluate run $run"; }
}
# deploy RUN WANT_EXIT: runs the step, keeps its output in $T_TMP/dep.RUN
deploy() {
    "$DEPLOY" deploy --task spy --run "$1" >"$T_TMP/dep.$1" 2>"$T_TMP/dep.$1.err"; local rc=$?
    [ "$rc" = "$2" ] || { cat "$T_TMP/dep.$1" "$T_TMP/dep.$1.err"; t_fail "deploy run $1: exit $rc, wanted $2"; }
}
prod() { q "select version from model_aliases where task = 'spy' and alias = 'production'"; }
expect_refused() {  # RUN PATTERN
    deploy "$1" 3
    grep -q "$2" "$T_TMP/dep.$1" || { cat "$T_TMP/dep.$1"; t_fail "run $1: refusal does not say '$2'"; }
    [ "$(q "select decision from deploy_decisions where task='spy' and run='$1'")" = refused ] || t_fail "run $1: refusal not recorded"
}

# 1. First model: beats the rules (0.62 vs ~0.55) -> v1 promoted.
evaluate 1 0.62 -
deploy 1 0
grep -q "^promoted v1" "$T_TMP/dep.1" || { cat "$T_TMP/dep.1"; t_fail "first model not promoted"; }
[ "$(prod)" = 1 ] || t_fail "production is not v1"
[ "$(rget version)" = 1 ] || t_fail "redis pointer is not v1"
p1=$(rget path); [ -f "$p1" ] || t_fail "deployed copy $p1 missing"
[ "$(sha256sum <"$p1" | cut -d' ' -f1)" = "$(rget sha256)" ] || t_fail "deployed copy's checksum differs from the pointer's"
cmp -s "$p1" "$T_TMP/model1.bin" || t_fail "deployed copy differs from the model"

# The report: stored as an artifact, recorded in PG, every plot in the HTML, offline analysis note.
ruri=$(q "select distinct report_uri from evaluations where run = '1'")
rpath=${ruri#file://}
[ -f "$rpath" ] || t_fail "report artifact $ruri missing"
for plot in plot-roc plot-calibration plot-equity plot-importance; do
    grep -q "<svg id=\"$plot\"" "$rpath" || t_fail "report lacks $plot"
done
grep -q "no analysis" "$rpath" || t_fail "report does not say why there is no analysis"
grep -Eq '<script|src=|href=' "$rpath" && t_fail "report is not self-contained"
[ "$(redis-cli -p "$RPORT" hget pred:eval:spy:last run)" = 1 ] || t_fail "dashboard hash not written"

# 2. Worse than production: rejected, production unchanged, version recorded as rejected.
evaluate 2 0.58 0.62 1
deploy 2 0
grep -q "^rejected v2" "$T_TMP/dep.2" || { cat "$T_TMP/dep.2"; t_fail "worse candidate not rejected"; }
[ "$(prod)" = 1 ] && [ "$(rget version)" = 1 ] || t_fail "worse candidate moved production"

# 3. Marginal: +1.5 points (point estimate above the 1-point margin) but inside the noise.
evaluate 3 0.635 0.62 1
read -r d lo <<<"$(q "select diff, ci_lo from evaluation_comparisons where run='3' and baseline='production'" | tr '|' ' ')"
$PY -c "import sys; d, lo = float('$d'), float('$lo'); sys.exit(0 if d > 0.01 and lo < 0.01 else 1)" ||
    t_fail "run 3 is not marginal (diff $d, lower bound $lo)"
deploy 3 0
grep -q "^rejected v3" "$T_TMP/dep.3" || { cat "$T_TMP/dep.3"; t_fail "marginal candidate not rejected"; }
grep -q "lower bound" "$T_TMP/dep.3" || t_fail "rejection does not name the lower bound"
[ "$(prod)" = 1 ] || t_fail "marginal candidate moved production"

# 4. Better: promoted; PG aliases, deploy copy and Redis pointer move together.
evaluate 4 0.70 0.62 1
deploy 4 0
grep -q "^promoted v4 (production was v1)" "$T_TMP/dep.4" || { cat "$T_TMP/dep.4"; t_fail "better candidate not promoted"; }
[ "$(prod)" = 4 ] || t_fail "production is not v4"
[ "$(q "select version from model_aliases where task='spy' and alias='previous'")" = 1 ] || t_fail "previous is not v1"
[ "$(rget version)" = 4 ] || t_fail "redis pointer is not v4"
[ "$(q "select pending from serving_pointers where task='spy'")" = f ] || t_fail "pointer still pending"
[ "$(rget path)" = "$(q "select deployed_path from model_versions where task='spy' and version=4")" ] || t_fail "pointer and registry disagree"

# Double deploy: nothing changes.
before=$(q "select count(*) from deploy_decisions")/$(q "select count(*) from model_versions")/$(rget generation)
deploy 4 0
grep -q "replay" "$T_TMP/dep.4" || { cat "$T_TMP/dep.4"; t_fail "second deploy did not say it was a replay"; }
after=$(q "select count(*) from deploy_decisions")/$(q "select count(*) from model_versions")/$(rget generation)
[ "$before" = "$after" ] || t_fail "second deploy changed something ($before -> $after)"

# Rollback: back to v1 in PG and Redis, logged; a second rollback is refused, not a flip back.
# (`sched rollback TASK`, the command people type, calls the same lb_registry_rollback.)
"$PREDICTORS_BIN/sched" rollback spy --json >"$T_TMP/rb" 2>&1 || { cat "$T_TMP/rb"; t_fail "sched rollback failed"; }
grep -q '"decision":"rolled_back"' "$T_TMP/rb" || { cat "$T_TMP/rb"; t_fail "sched rollback --json does not say rolled_back"; }
[ "$(prod)" = 1 ] && [ "$(rget version)" = 1 ] || t_fail "rollback did not restore v1"
[ "$(q "select status from model_versions where task='spy' and version=4")" = rolled_back ] || t_fail "v4 not marked rolled back"
[ "$(q "select count(*) from deploy_decisions where action='rollback' and decision='rolled_back'")" = 1 ] || t_fail "rollback not logged"
"$DEPLOY" rollback --task spy >"$T_TMP/rb2" 2>&1; [ $? = 3 ] || { cat "$T_TMP/rb2"; t_fail "second rollback not refused"; }
grep -q "no previous version" "$T_TMP/rb2" || t_fail "second rollback does not say why"
"$PREDICTORS_BIN/sched" rollback spy >/dev/null 2>"$T_TMP/rb2s"; [ $? = 1 ] || t_fail "sched rollback without a previous version did not exit 1"
grep -q "refused: task spy: no previous version" "$T_TMP/rb2s" || { cat "$T_TMP/rb2s"; t_fail "sched rollback refusal unclear"; }

# Stale comparison: evaluated against v4, but production is v1 again.
evaluate 5 0.75 0.62 4
expect_refused 5 "evaluate again"

# Redis down during a promotion: recorded in PG, pointer pending, repaired when Redis is back.
# (Refused candidates get no version: run 6 becomes v5.)
evaluate 6 0.75 0.62 1
redis_down
deploy 6 0
grep -q "^promoted v5" "$T_TMP/dep.6" && grep -q "pointer pending" "$T_TMP/dep.6" || { cat "$T_TMP/dep.6"; t_fail "promotion with Redis down not recorded as pending"; }
[ "$(prod)" = 5 ] || t_fail "promotion with Redis down not in PG"
[ "$(q "select pending from serving_pointers where task='spy'")" = t ] || t_fail "pointer not marked pending"
"$DEPLOY" repair >/dev/null 2>&1 && t_fail "repair claims success while Redis is down"
# A serving deploy worker (its broker need not be up) repairs the pointer soon after Redis returns.
PREDICTORS_DEPLOY_REPAIR_INTERVAL=0.2s "$DEPLOY" -b "tcp://127.0.0.1:$(t_free_port)" >"$T_TMP/serve.log" 2>&1 &
serve_pid=$!
t_cleanup "kill $serve_pid"
sleep 0.5
redis_up
for i in $(seq 600); do [ "$(rget version)" = 5 ] && break; sleep 0.1; done   # up to 60 s under load
[ "$(rget version)" = 5 ] || { tail "$T_TMP/serve.log"; t_fail "the serving deploy worker did not repair the pointer to v5"; }
kill "$serve_pid"; wait "$serve_pid" 2>/dev/null
"$DEPLOY" repair >"$T_TMP/repair" 2>&1 || { cat "$T_TMP/repair"; t_fail "repair reports pointers still pending"; }
grep -q "^0 serving pointers still pending" "$T_TMP/repair" || t_fail "repair output unclear"
[ "$(q "select pending from serving_pointers where task='spy'")" = f ] || t_fail "pointer still pending after repair"

# Bad input. Truncated artifact.
evaluate 7 0.80 0.75 5
f7=$(q "select artifact_uri from evaluations where run='7' and role='candidate'"); f7=${f7#file://}
truncate -s 1000 "$f7"
expect_refused 7 "truncated or corrupt"
# Wrong checksum: same length, other bytes.
evaluate 8 0.80 0.75 5
f8=$(q "select artifact_uri from evaluations where run='8' and role='candidate'"); f8=${f8#file://}
head -c 4096 /dev/urandom >"$f8"
expect_refused 8 "does not match"
# Evaluation that names another hash than its artifact.
evaluate 9 0.80 0.75 5
q "update evaluations set sha256 = repeat('0', 64) where run = '9' and role = 'candidate'"
expect_refused 9 "evaluated as SHA-256"
# Different rows: production scored on another row set.
evaluate 10 0.80 0.75 5
q "update evaluations set rows_sha256 = repeat('e', 64) where run = '10' and policy = 'production'"
expect_refused 10 "different rows"
# NaN metrics.
evaluate 11 0.80 0.75 5
q "update evaluation_comparisons set ci_lo = 'NaN' where run = '11' and baseline = 'production'"
expect_refused 11 "not numbers"
# The production row points at a missing artifact.
evaluate 12 0.80 0.75 5
mv "$(q "select deployed_path from model_versions where task='spy' and version=5")" "$T_TMP/v5.saved"
expect_refused 12 "missing or corrupt artifact"
[ "$(prod)" = 5 ] && [ "$(rget version)" = 5 ] || t_fail "a refusal moved production"
# ... and a rollback whose target is missing.
mv "$T_TMP/v5.saved" "$(q "select deployed_path from model_versions where task='spy' and version=5")"
rm -f "$(q "select deployed_path from model_versions where task='spy' and version=1")"
"$DEPLOY" rollback --task spy >"$T_TMP/rb3" 2>&1; [ $? = 3 ] || { cat "$T_TMP/rb3"; t_fail "rollback to a missing artifact not refused"; }
grep -q "v1 points at a missing" "$T_TMP/rb3" || { cat "$T_TMP/rb3"; t_fail "rollback refusal does not say why"; }
[ "$(prod)" = 5 ] || t_fail "refused rollback moved production"
# No evaluation at all for a run: refused with a clear line.
"$DEPLOY" deploy --task spy --run 99 >/dev/null 2>"$T_TMP/dep.99"; [ $? = 3 ] || t_fail "deploy without evaluation not refused"
grep -q "no evaluated candidate" "$T_TMP/dep.99" || t_fail "missing evaluation not explained"

"$DEPLOY" show --task spy --json | $PY -c "
import json, sys; s = json.load(sys.stdin)
assert s['aliases'] == {'production': 5, 'previous': 1}, s['aliases']
assert [v['status'] for v in s['versions']] == ['promoted', 'rejected', 'rejected', 'rolled_back', 'promoted'], [v['status'] for v in s['versions']]
assert sum(d['decision'] == 'refused' for d in s['decisions']) == 10, [d['decision'] for d in s['decisions']]
" || t_fail "registry contents differ from the story"
echo "deploy gate scenario passed"
