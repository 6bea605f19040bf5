#!/usr/bin/env bash
# The catalog path, the embedded default: with no API key and no reachable network, 100
# consecutive discover steps (100 processes, each reading every past task from PostgreSQL)
# give 100 distinct, valid tasks; a replayed step changes nothing; the fixed-fallback bug of
# the seed (the same task every time) cannot happen: when every candidate is tried, the step
# fails saying so.
. "$(dirname "$0")/lib.sh"
t_newdb discover_catalog
BIN=$PREDICTORS_BIN/worker-discover
unset ANTHROPIC_API_KEY PREDICTORS_CONFIG
# Anything that tried the network would fail: no proxy reachable, API base unroutable.
export http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 all_proxy=http://127.0.0.1:9
export PREDICTORS_LLM_BASE_URL=http://127.0.0.1:9

for i in $(seq 1 100); do
    "$BIN" --propose --run "cat-$i" >"$T_TMP/spec.$i" 2>"$T_TMP/err.$i" || { cat "$T_TMP/err.$i"; t_fail "step $i failed"; }
    grep -q "origin=catalog" "$T_TMP/err.$i" || t_fail "step $i did not use the catalog"
done
[ "$(psql -X "$DATABASE_URL" -Atc "select count(*) from tasks where origin = 'catalog'")" = 100 ] || t_fail "not 100 tasks stored"
[ "$(psql -X "$DATABASE_URL" -Atc "select count(distinct fingerprint) || ' ' || count(distinct name) || ' ' || count(distinct run_id) from tasks")" = "100 100 100" ] ||
    t_fail "tasks are not distinct"

# An independent check of every spec (not our C validator): fields, target among the columns,
# feature columns exist, sizes under 1 GiB, sources of the allowed kinds, distinct identities.
cat "$T_TMP"/spec.* | $PY -c '
import json, re, sys
seen = set()
for n, line in enumerate(sys.stdin, 1):
    t = json.loads(line)
    assert t["version"] == 1 and re.fullmatch(r"[a-z0-9_-]{3,64}", t["name"]), t["name"]
    assert 20 <= len(t["hypothesis"]) <= 2000 and 10 <= len(t["novelty"]) <= 1000
    # discover.task_types (default binary,regression): only what the pipeline trains and evaluates
    assert t["task_type"] in ("binary", "regression"), (t["name"], t["task_type"])
    cols = set()
    for s in t["sources"]:
        assert re.match(r"(pg:(market_bars|pattern_training_data)$|debian:[a-z0-9.+-]+:/)", s["uri"]), s["uri"]
        assert 0 < s["size_bytes"] <= 1 << 30
        cols |= set(s["columns"])
    tg = t["target"]
    assert tg["column"] in cols, (t["name"], tg["column"])
    for f in t["features"]:
        for c in re.findall(r"[a-z_][a-z0-9_]*", f.split("(", 1)[-1] if "(" in f else f):
            assert c in cols, (t["name"], f)
    key = (tuple(sorted(json.dumps([s["uri"], s.get("where")]) for s in t["sources"])), tg["column"], tg["kind"],
           tg["horizon"], tg.get("threshold"))
    assert key not in seen, key
    seen.add(key)
assert len(seen) == 100, len(seen)
' || t_fail "a catalog spec fails the independent check"

# A replay of a step returns its task and stores nothing.
"$BIN" --propose --run cat-7 >"$T_TMP/replay" 2>"$T_TMP/replay.err" || t_fail "replay failed"
cmp -s "$T_TMP/replay" "$T_TMP/spec.7" || t_fail "replay gave another task"
[ "$(psql -X "$DATABASE_URL" -Atc "select count(*) from tasks")" = 100 ] || t_fail "replay stored a task"

# discover.task_types narrows what is proposed.
t_newdb discover_catalog_types
for i in 1 2 3 4 5; do
    PREDICTORS_DISCOVER_TASK_TYPES=regression "$BIN" --propose --run "types-$i" >"$T_TMP/type.$i" 2>/dev/null || t_fail "typed step $i failed"
    grep -q '"task_type": *"regression"' "$T_TMP/type.$i" || { cat "$T_TMP/type.$i"; t_fail "discover.task_types=regression gave another type"; }
done

# Exhaustion: with a catalog of only the Debian data sets (no market symbols), mark every
# candidate tried by proposing until the step fails; the failure names the cause.
t_newdb discover_catalog_small
export PREDICTORS_DISCOVER_SYMBOLS=""
n=0
while "$BIN" --propose >/dev/null 2>"$T_TMP/last.err"; do
    n=$((n + 1)); [ $n -lt 400 ] || t_fail "the catalog never ran out"
done
grep -q "catalog_exhausted: the catalog is exhausted: all $n candidates" "$T_TMP/last.err" || { cat "$T_TMP/last.err"; t_fail "no clear exhaustion error"; }
[ $n -ge 100 ] || t_fail "only $n distinct tasks without market symbols"   # binary and regression only (discover.task_types)
echo "catalog ok: 100 distinct tasks, then $n before exhaustion without symbols"
