#!/usr/bin/env bash
# tests/bench/fetch.sh - the data layer against its Python peers, side by side in one run:
#   1. reading 1,000,000+ rows of market_bars: our binary COPY (1, 2 and 4 connections) vs
#      pandas.read_sql through psycopg2 (what the Catalyst plan uses);
#   2. the 16 features over the same 1,000,000+ bars: kernels/kn_features (workers/fetch/wf_bars) vs the
#      vectorised numpy/pandas implementation in tests/ref_features.py, results compared;
#   3. parsing a 200 MB CSV: lib/lb_csv (bin/csvinfo, 1 thread and every core) vs pandas.read_csv.
# Sections 1 and 3 run each side BENCH_REPS times (default 3), interleaved, and print the best and
# the median of each (the machine may be shared: the spread says how much).
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
echo "$(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) cores ($(sed -n 's/^model name[^:]*: //p' /proc/cpuinfo | head -n 1)),"\
     "$(free -g | awk '/^Mem:/ {print $2}') GiB, load average at start $(cut -d' ' -f1-3 /proc/loadavg)"
SYMBOLS=${BENCH_SYMBOLS:-300} DAYS=${BENCH_DAYS:-504}
echo "market: $SYMBOLS symbols x $DAYS days x 7 hourly bars (+ index and VIX)"
t0=$(date +%s.%N)
"$BIN/marketgen" --db "$DATABASE_URL" --symbols $SYMBOLS --days $DAYS --no-events 2>/dev/null
printf "load with COPY (generate + COPY in): %.1f s\n" "$(echo "$(date +%s.%N) - $t0" | bc)"

# best and median of the numbers on stdin (one a line)
stats() { sort -g | awk '{a[NR]=$1} END {printf "%s %s\n", a[NR], a[int((NR+1)/2)]}'; }
# the same, where smaller is better (seconds): best = smallest
stats_s() { sort -g | awk '{a[NR]=$1} END {printf "%s %s\n", a[1], a[int((NR+1)/2)]}'; }
ratio() { echo "$1 / $2" | bc -l; }
verdict() { if [ "$(echo "$1 >= $2" | bc -l)" = 1 ]; then echo "met"; else echo "**not met**"; fi; }
REPS=${BENCH_REPS:-3}

echo
echo "### 1. read market_bars ($REPS runs each, interleaved; best and median)"
pandas_read() {
    $PY - <<'PY'
import os, time, warnings
import pandas as pd, psycopg2
warnings.simplefilter("ignore")
conn = psycopg2.connect(os.environ["DATABASE_URL"])
t = time.time()
d = pd.read_sql("select * from market_bars order by symbol, ts", conn)
print(int(len(d) / (time.time() - t)))
PY
}
ours_read() { "$BIN/marketgen" --db "$DATABASE_URL" --read=$1 | sed 's/.*: \([0-9]*\) rows\/s/\1/'; }
: >"$W/r.pandas"; : >"$W/r.1"; : >"$W/r.2"; : >"$W/r.4"
for rep in $(seq $REPS); do
    pandas_read >>"$W/r.pandas"
    for n in 1 2 4; do ours_read $n >>"$W/r.$n"; done
done
read pb pm < <(stats <"$W/r.pandas")
printf "| reader | rows/s best | rows/s median | vs pandas (best/best, median/median) | target |\n|---|---|---|---|---|\n"
printf "| pandas.read_sql (psycopg2) | %d | %d | 1.0x | |\n" "$pb" "$pm"
for n in 1 2 4; do
    read b m < <(stats <"$W/r.$n")
    rb=$(ratio "$b" "$pb"); rm_=$(ratio "$m" "$pm")
    target="10x: $(verdict "$rb" 10) (best), $(verdict "$rm_" 10) (median)"
    printf "| binary COPY, %d connection%s | %d | %d | %.1fx / %.1fx | %s |\n" $n "$([ $n = 1 ] || echo s)" \
        "$b" "$m" "$rb" "$rm_" "$target"
done

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
echo "($REPS runs each, interleaved; best and median)"
: >"$W/c.pandas"; : >"$W/c.1"; : >"$W/c.n"
for rep in $(seq $REPS); do
    $PY - "$W/big.csv" >>"$W/c.pandas" <<'PY'
import sys, time
import pandas as pd
t = time.time()
d = pd.read_csv(sys.argv[1])
print("%.3f %d" % (time.time() - t, len(d)))
PY
    "$BIN/csvinfo" --threads 1 "$W/big.csv" | head -n 1 >"$W/line1"
    "$BIN/csvinfo" "$W/big.csv" | head -n 1 >"$W/linen"
    sed -n 's/.*parsed in \([0-9.]*\) s.*/\1/p' "$W/line1" >>"$W/c.1"
    sed -n 's/.*parsed in \([0-9.]*\) s.*/\1/p' "$W/linen" >>"$W/c.n"
done
echo "csvinfo: $(cat "$W/linen")"
threads=$(sed -n 's/.* on \([0-9]*\) threads/\1/p' "$W/linen")
ours_rows=$(sed -n 's/^rows \([0-9]*\),.*/\1/p' "$W/linen")
pandas_rows=$(awk '{print $2; exit}' "$W/c.pandas")
[ "$ours_rows" = "$pandas_rows" ] || echo "ROWS DIFFER: ours $ours_rows, pandas $pandas_rows"
read pb pm < <(cut -d' ' -f1 "$W/c.pandas" | stats_s)
read b1 m1 < <(stats_s <"$W/c.1")
read bn mn < <(stats_s <"$W/c.n")
mb=$(echo "$size / 1000000" | bc -l)
printf "| parser | MB | rows | seconds best | seconds median | MB/s best | vs pandas (best/best, median/median) | target |\n|---|---|---|---|---|---|---|---|\n"
printf "| pandas.read_csv | %.0f | %d | %.2f | %.2f | %.0f | 1.0x | |\n" "$mb" "$pandas_rows" "$pb" "$pm" "$(ratio "$mb" "$pb")"
r1b=$(ratio "$pb" "$b1"); r1m=$(ratio "$pm" "$m1")
printf "| lib/lb_csv, 1 thread | %.0f | %d | %.2f | %.2f | %.0f | %.1fx / %.1fx | 2x: %s (best), %s (median) |\n" \
    "$mb" "$ours_rows" "$b1" "$m1" "$(ratio "$mb" "$b1")" "$r1b" "$r1m" "$(verdict "$r1b" 2)" "$(verdict "$r1m" 2)"
rb=$(ratio "$pb" "$bn"); rm_=$(ratio "$pm" "$mn")
printf "| lib/lb_csv, %d threads | %.0f | %d | %.2f | %.2f | %.0f | %.1fx / %.1fx | 2x: %s (best), %s (median) |\n" \
    "$threads" "$mb" "$ours_rows" "$bn" "$mn" "$(ratio "$mb" "$bn")" "$rb" "$rm_" "$(verdict "$rb" 2)" "$(verdict "$rm_" 2)"
