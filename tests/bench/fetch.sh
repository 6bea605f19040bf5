#!/usr/bin/env bash
# tests/bench/fetch.sh - the data layer against its Python peers, side by side in one run:
#   1. reading 1,000,000+ rows of market_bars: our binary COPY (1 and 2 connections) vs
#      pandas.read_sql through psycopg2 (what the Catalyst plan uses);
#   2. the 16 features over the same 1,000,000+ bars: kernels/kn_features (workers/fetch/wf_bars) vs the
#      vectorised numpy/pandas implementation in tests/ref_features.py, results compared;
#   3. parsing a 200 MB CSV: lib/lb_csv (bin/csvinfo) vs pandas.read_csv.
# Uses a private stack of its own; needs bin/ built (make bench does it).
set -uo pipefail
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${PREDICTORS_BIN:-$ROOT/bin}
PY=/usr/bin/python3
W=$(mktemp -d /tmp/bench-fetch.XXXXXX)
chmod 755 "$W"
trap '"$ROOT/deploy/stack" down --dir "$W/stack" >/dev/null 2>&1; rm -rf "$W"' EXIT
"$ROOT/deploy/stack" up --dir "$W/stack" --fast --random-ports --no-programs >"$W/stack.log" 2>&1 ||
    { cat "$W/stack.log"; exit 1; }
set -a; . "$W/stack/stack.env"; set +a
"$ROOT/deploy/migrate" "$DATABASE_URL" >/dev/null
SYMBOLS=${BENCH_SYMBOLS:-300} DAYS=${BENCH_DAYS:-504}
echo "market: $SYMBOLS symbols x $DAYS days x 7 hourly bars (+ index and VIX)"
t0=$(date +%s.%N)
"$BIN/marketgen" --db "$DATABASE_URL" --symbols $SYMBOLS --days $DAYS --no-events 2>/dev/null
printf "load with COPY (generate + COPY in): %.1f s\n" "$(echo "$(date +%s.%N) - $t0" | bc)"

echo
echo "### 1. read market_bars"
ours1=$("$BIN/marketgen" --db "$DATABASE_URL" --read=1 | sed 's/.*: \([0-9]*\) rows\/s/\1/')
ours2=$("$BIN/marketgen" --db "$DATABASE_URL" --read=2 | sed 's/.*: \([0-9]*\) rows\/s/\1/')
pandas=$($PY - <<'PY'
import os, time, warnings
import pandas as pd, psycopg2
warnings.simplefilter("ignore")
conn = psycopg2.connect(os.environ["DATABASE_URL"])
t = time.time()
d = pd.read_sql("select * from market_bars order by symbol, ts", conn)
print(int(len(d) / (time.time() - t)))
PY
)
printf "| reader | rows/s | vs pandas |\n|---|---|---|\n"
printf "| pandas.read_sql (psycopg2) | %d | 1.0x |\n" "$pandas"
printf "| binary COPY, 1 connection | %d | %.1fx |\n" "$ours1" "$(echo "$ours1 / $pandas" | bc -l)"
printf "| binary COPY, 2 connections | %d | %.1fx |\n" "$ours2" "$(echo "$ours2 / $pandas" | bc -l)"

echo
echo "### 2. the 16 features"
"$BIN/marketgen" --db "" --symbols $SYMBOLS --days $DAYS --bars-csv "$W/bars.csv" --features-csv "$W/ours.csv" \
    2>"$W/features.log" >/dev/null
grep '^features:' "$W/features.log"
ours_s=$(sed -n 's/^features: .* rows out, \([0-9.]*\) s,.*/\1/p' "$W/features.log")
$PY - "$W/bars.csv" "$W/ours.csv" "$ours_s" <<'PY'
import sys, time
import numpy as np, pandas as pd
sys.path.insert(0, "tests")
import ref_features
bars = pd.read_csv(sys.argv[1], keep_default_na=False, na_values=[""], float_precision="round_trip")
bars["sector"] = bars["sector"].fillna("")
t = time.time()
ref = ref_features.compute(bars, horizon=5)
secs = time.time() - t
ours = pd.read_csv(sys.argv[2], float_precision="round_trip").sort_values(["symbol", "ts"]).reset_index(drop=True)
ref = ref.sort_values(["symbol", "ts"]).reset_index(drop=True)
outside = 0
for k in ref_features.FEATURES:
    a, b = ours[k].to_numpy(float), ref[k].to_numpy(float)
    assert (np.isnan(a) == np.isnan(b)).all(), k
    ok = ~np.isnan(a)
    outside += int((np.abs(a[ok] - b[ok]) > 1e-6 * np.abs(b[ok]) + 1e-9).sum())
same = (ours.patterns.to_numpy() == ref.patterns.to_numpy()).all() and (ours.rule_signal.to_numpy() == ref.rule_signal.to_numpy()).all()
n = len(bars)
ours_s = float(sys.argv[3])
print("| implementation | bars | seconds | bars/s | vs numpy/pandas |\n|---|---|---|---|---|")
print("| numpy/pandas (tests/ref_features.py) | %d | %.2f | %.0f | 1.0x |" % (n, secs, n / secs))
print("| C (kernels/kn_features, 2 threads) | %d | %.2f | %.0f | %.1fx |" % (n, ours_s, n / ours_s, secs / ours_s))
print("results: %d rows x 16 features, %d values outside 1e-6 relative + 1e-9 absolute, patterns and signals %s"
      % (len(ours), outside, "identical" if same else "DIFFER"))
PY

echo
echo "### 3. parse a 200 MB CSV"
head -n 1 "$W/bars.csv" > "$W/big.csv"
while [ "$(stat -c %s "$W/big.csv")" -lt 209715200 ]; do tail -n +2 "$W/bars.csv" >> "$W/big.csv"; done
size=$(stat -c %s "$W/big.csv")
ours_line=$("$BIN/csvinfo" "$W/big.csv" | head -n 1)
echo "csvinfo: $ours_line"
ours_s=$(sed -n 's/.*parsed in \([0-9.]*\) s/\1/p' <<<"$ours_line")
$PY - "$W/big.csv" "$ours_s" "$size" <<'PY'
import sys, time
import pandas as pd
t = time.time()
d = pd.read_csv(sys.argv[1])
secs = time.time() - t
ours = float(sys.argv[2]); mb = int(sys.argv[3]) / 1e6
print("| parser | MB | rows | seconds | MB/s | vs pandas |\n|---|---|---|---|---|---|")
print("| pandas.read_csv | %.0f | %d | %.2f | %.0f | 1.0x |" % (mb, len(d), secs, mb / secs))
print("| lib/lb_csv | %.0f | %d | %.2f | %.0f | %.1fx |" % (mb, len(d), ours, mb / ours, secs / ours))
PY
