#!/usr/bin/env bash
# worker-fetch end to end against PostgreSQL: bin/marketgen loads a small market with COPY,
# a pattern_training_data task and a CSV task become leak-free datasets (checked with the
# independent reader tests/pdset.py), a replay changes nothing, and every bad input of
# issue 6 that reaches the worker gets a clear, permanent error with nothing half-written.
. "$(dirname "$0")/lib.sh"
t_newdb fetch
B=$PREDICTORS_BIN
export PREDICTORS_ARTIFACTS_ROOT=$T_TMP/artifacts PREDICTORS_SOURCES_FILE_ROOTS=$T_TMP/data
mkdir -p $T_TMP/data
psql() { command psql -X -q -At "$DATABASE_URL" "$@"; }

t_check "marketgen loads" $B/marketgen --db "$DATABASE_URL" --symbols 30 --sectors 5 --days 180
[ "$(psql -c 'select count(*) from market_bars')" = $((32 * 180 * 7)) ] || t_fail "market_bars row count"
events=$(psql -c 'select count(*) from pattern_training_data')
[ "$events" -gt 1000 ] || t_fail "pattern_training_data has $events rows"
$B/marketgen --db "$DATABASE_URL" --symbols 30 --sectors 5 --days 180 2>&1 | grep -q "already loaded" || t_fail "second load is not a no-op"
for n in 1 3; do
    $B/marketgen --db "$DATABASE_URL" --read=$n | grep -q "read $((32 * 180 * 7)) bars of 32 symbols" || t_fail "COPY read on $n connections"
done

cols='"body_to_range_ratio","upper_shadow_ratio","lower_shadow_ratio","volume_surge","rsi_14","bb_position","macd_histogram","adx_strength","vix_level","spy_correlation","sector_momentum","market_breadth","news_present","premarket_gap","unusual_volume","options_activity"'
spec() {  # spec NAME URI FORMAT COLUMNS TIME TARGET FEATURES TYPE METRIC
    cat <<JSON
{"version":1,"name":"$1","hypothesis":"a hypothesis that is long enough","novelty":"new enough here","task_type":"$8",
 "sources":[{"uri":"$2","format":"$3","columns":[$4],"time_column":"$5","size_bytes":1000000}],
 "target":$6,"features":[$7],"metric":"$9","model_families":["xgboost"]}
JSON
}
spec pattern_task pg:pattern_training_data table "\"symbol\",\"ts\",$cols,\"pattern_success\"" ts \
    '{"column":"pattern_success","kind":"class","horizon":0}' "$cols" binary accuracy > $T_TMP/pattern.json
uri=$($B/worker-fetch --task $T_TMP/pattern.json --run run1 2>$T_TMP/fetch1.log) || { cat $T_TMP/fetch1.log; t_fail "pattern task failed"; }
path=${uri#file://}
/usr/bin/python3 - "$path" <<'PY' || t_fail "pattern dataset check"
import sys, numpy as np
sys.path.insert(0, "tests"); import pdset
d = pdset.load(sys.argv[1])
assert d["task"] == "binary" and d["label"] == "pattern_success" and d["x"].shape[1] == 16, d["columns"]
s, ts = d["splits"], d["ts"]
tb, te = s["train"]; vb, ve = s["valid"]; sb, se = s["test"]
assert 0 == tb < te <= vb < ve <= sb < se == len(ts), s
assert (np.diff(ts) >= 0).all()
assert d["embargo_s"] >= d["horizon_s"] >= 4 * 3600, (d["embargo_s"], d["horizon_s"])
assert ts[vb] - ts[te - 1] >= d["embargo_s"] and ts[sb] - ts[ve - 1] >= d["embargo_s"]
assert set(np.unique(d["baseline"])) <= {0.0, 1.0}
assert np.isfinite(d["fwd_return"]).all()
assert ((d["fwd_return"] > 0) == (d["y"] == 1)).all()          # the label is the forward return
assert ts[se - 1] - ts[sb] <= 168 * 3600 and ts[ve - 1] - ts[vb] <= 168 * 3600   # Catalyst windows
print("pattern dataset ok:", d["x"].shape, s)
PY
again=$($B/worker-fetch --task $T_TMP/pattern.json --run run1 2>$T_TMP/fetch2.log)
[ "$again" = "$uri" ] && grep -q replayed $T_TMP/fetch2.log || t_fail "replay changed the dataset"
[ "$(psql -c "select count(*) from datasets where run = 'run1'")" = 1 ] || t_fail "datasets row"

# A CSV source under the file roots.
/usr/bin/python3 -c "
import math
print('date;close;kind')
for i in range(300):
    print('2020-%02d-%02d;%.3f;%s' % (1 + i // 28 % 12, 1 + i % 28, 100 + 5 * math.sin(i / 5), 'ab'[i % 2]))
" > $T_TMP/data/series.csv
spec csv_task "file://$T_TMP/data/series.csv" csv '"date","close","kind"' date \
    '{"column":"close","kind":"direction","horizon":2}' '"ret(close,1)","rsi(close,14)","kind","dow(date)"' binary roc_auc \
    | sed 's/"format":"csv"/"format":"csv","delimiter":";"/' > $T_TMP/csv.json
$B/worker-fetch --task $T_TMP/csv.json --run run2 >/dev/null 2>$T_TMP/csv.log || { cat $T_TMP/csv.log; t_fail "csv task failed"; }

# Bad input: each a permanent failure (exit 1) naming the problem.
expect_fail() {  # expect_fail WHAT SPEC PATTERN
    local out rc
    out=$($B/worker-fetch --task "$2" --run "bad_$1" 2>&1); rc=$?
    [ $rc = 1 ] || { echo "$out"; t_fail "$1: exit $rc, want 1"; }
    grep -q -- "$3" <<<"$out" || { echo "$out"; t_fail "$1: no '$3' in the error"; }
    echo "ok $1: $(grep 'fetch: ' <<<"$out" | tail -n 1)"
}
bad_csv() {  # bad_csv NAME CONTENT-COMMAND PATTERN
    eval "$2" > $T_TMP/data/$1.csv
    sed "s#series.csv#$1.csv#" $T_TMP/csv.json > $T_TMP/$1.json
    expect_fail "$1" $T_TMP/$1.json "$3"
}
bad_csv ragged "printf 'date;close;kind\n2020-01-01;1;a\n2020-01-02;2\n'" "ragged"
bad_csv quotes "printf 'date;close;kind\n2020-01-01;\"1;a\n'" "unbalanced quote"
bad_csv utf8 "printf 'date;close;kind\n2020-01-01;1;\xff\n'" "invalid UTF-8"
bad_csv empty "printf ''" "empty file"
bad_csv header "printf 'date;close;kind\n'" "no data rows"
bad_csv longline "printf 'date;close;kind\n'; head -c 10485760 /dev/zero | tr '\\\\0' 7; printf ';1;a\n'" "record longer than"
bad_csv fewrows "printf 'date;close;kind\n2020-01-01;1;a\n2020-01-02;2;b\n2020-01-03;3;a\n'" "too few rows"
sed "s#$T_TMP/data/series.csv#/etc/hostname#" $T_TMP/csv.json > $T_TMP/outside.json
expect_fail outside_roots $T_TMP/outside.json "file_roots"
sed 's#"uri":"file://[^"]*"#"uri":"https://127.0.0.1:9/x.csv"#' $T_TMP/csv.json > $T_TMP/private.json
expect_fail private_host $T_TMP/private.json "127.0.0.1"
PREDICTORS_FETCH_MIN_TRAIN_ROWS=1000000 expect_fail too_few_rows $T_TMP/pattern.json "too few rows"
psql -c "alter table pattern_training_data rename to ptd_away"
expect_fail missing_table $T_TMP/pattern.json "does not exist"
psql -c "alter table ptd_away rename to pattern_training_data"
spec bars_task pg:market_bars table '"symbol","ts","open","high","low","close","volume"' ts \
    '{"column":"close","kind":"direction","horizon":1}' '"ret(close,1)","zscore(volume,20)"' binary accuracy \
    | sed 's/"time_column":"ts"/"time_column":"ts","where":{"symbol":"SPY"}/' > $T_TMP/bars.json
$B/worker-fetch --task $T_TMP/bars.json --run run3 >/dev/null 2>$T_TMP/bars.log || { cat $T_TMP/bars.log; t_fail "bars task failed"; }
psql -c "update market_bars set close = 'NaN' where ctid = (select ctid from market_bars where symbol = 'SPY' order by ts offset 40 limit 1)"
expect_fail nan_price $T_TMP/bars.json "close is NaN"
psql -c "update market_bars set close = 'Infinity' where close = 'NaN'"
expect_fail inf_price $T_TMP/bars.json "close is infinite"
psql -c "update market_bars set close = 100 where close = 'Infinity'; alter table market_bars alter column volume type text"
expect_fail wrong_type $T_TMP/bars.json "volume.*text"

# Nothing half-written: three datasets recorded, three artifacts stored.
[ "$(psql -c 'select count(*) from datasets')" = 3 ] || t_fail "datasets rows: $(psql -c 'select run from datasets')"
[ "$(find $T_TMP/artifacts -type f | wc -l)" = 3 ] || t_fail "artifacts: $(find $T_TMP/artifacts -type f)"
echo "all fetch scenarios passed"
