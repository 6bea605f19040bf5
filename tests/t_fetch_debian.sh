#!/usr/bin/env bash
# Real data: deploy/data/fetch-debian-data.sh unpacks msft.csv (r-cran-timeseries, semicolons)
# and seattle-weather.csv (python3-vega-datasets) without installing the packages, and
# worker-fetch builds datasets from debian: sources. Skips when apt-get cannot download.
. "$(dirname "$0")/lib.sh"
t_newdb fetchdeb
export PREDICTORS_ARTIFACTS_ROOT=$T_TMP/artifacts PREDICTORS_FETCH_DEBIAN_DIR=$T_TMP/debian
if ! "$ROOT/deploy/data/fetch-debian-data.sh" --dest $T_TMP/debian > $T_TMP/files 2>$T_TMP/err; then
    echo "skipped: apt-get download failed ($(tail -n 1 $T_TMP/err))"; exit 77
fi
grep -q msft.csv $T_TMP/files || t_fail "msft.csv not unpacked"
msft=$(grep msft.csv $T_TMP/files)
$PREDICTORS_BIN/csvinfo "$msft" > $T_TMP/msft.info || t_fail "csvinfo msft.csv"
grep -q "rows 249, columns 6, delimiter ;" $T_TMP/msft.info || { cat $T_TMP/msft.info; t_fail "msft.csv shape"; }
dpkg -s r-cran-timeseries >/dev/null 2>&1 && echo "note: r-cran-timeseries happens to be installed"
cat > $T_TMP/msft.json <<'JSON'
{"version":1,"name":"msft_close_direction","hypothesis":"momentum and RSI of Microsoft's daily closes say where the next close goes",
 "novelty":"real data from Debian","task_type":"binary",
 "sources":[{"uri":"debian:r-cran-timeseries:/usr/lib/R/site-library/timeSeries/extdata/msft.csv","format":"csv","delimiter":";",
   "columns":["date","open","high","low","close","volume"],"time_column":"date","size_bytes":12000}],
 "target":{"column":"close","kind":"direction","horizon":1},
 "features":["ret(close,1)","rsi(close,14)","vol(close,10)","spread(high,low)","zscore(volume,20)","dow(date)"],
 "metric":"accuracy","model_families":["xgboost"]}
JSON
uri=$($PREDICTORS_BIN/worker-fetch --task $T_TMP/msft.json --run deb1 2>$T_TMP/msft.log) || { cat $T_TMP/msft.log; t_fail "msft task"; }
/usr/bin/python3 - "${uri#file://}" "$msft" <<'PY' || t_fail "msft dataset check"
import sys, numpy as np, pandas as pd
sys.path.insert(0, "tests"); import pdset
d = pdset.load(sys.argv[1])
raw = pd.read_csv(sys.argv[2], sep=";")
close = raw["Close"].to_numpy()
# The last row has no next close; rows inside the two embargo gaps belong to no split.
assert len(raw) - 1 - 2 * 6 <= len(d["y"]) < len(raw), (len(d["y"]), len(raw))
# Labels against pandas: the next close above this one.
want = (close[1:] > close[:-1]).astype(float)
s = d["splits"]
rows = np.r_[s["train"][0]:s["train"][1], s["valid"][0]:s["valid"][1], s["test"][0]:s["test"][1]]
ts = pd.to_datetime(raw.iloc[:, 0]).astype("int64") // 10**9
index = {t: i for i, t in enumerate(ts)}
for r in rows:
    i = index[int(d["ts"][r])]
    assert d["y"][r] == want[i], r
    ret1 = close[i] / close[i - 1] - 1 if i else np.nan
    assert (np.isnan(ret1) and np.isnan(d["x"][r, 0])) or abs(d["x"][r, 0] - ret1) < 1e-6 * max(1, abs(ret1)), r
assert d["ts"][s["valid"][0]] - d["ts"][s["train"][1] - 1] >= d["embargo_s"] >= 86400
print("msft dataset ok:", d["x"].shape, s)
PY
sed -e 's#r-cran-timeseries:/usr/lib/R/site-library/timeSeries/extdata/msft.csv#python3-vega-datasets:/usr/lib/python3/dist-packages/vega_datasets/_data/seattle-weather.csv#' \
    -e 's/"delimiter":";",//' -e 's/"open","high","low","close","volume"/"precipitation","temp_max","temp_min","wind","weather"/' \
    -e 's/"column":"close","kind":"direction","horizon":1/"column":"weather","kind":"class","horizon":1/' \
    -e 's/"task_type":"binary"/"task_type":"multiclass"/' \
    -e 's/"features":\[[^]]*\]/"features":["temp_max","diff(temp_max,1)","weather","month(date)"]/' $T_TMP/msft.json > $T_TMP/seattle.json
$PREDICTORS_BIN/worker-fetch --task $T_TMP/seattle.json --run deb2 >/dev/null 2>$T_TMP/seattle.log || { cat $T_TMP/seattle.log; t_fail "seattle task"; }
grep -q "fetch: 145[0-9] rows" $T_TMP/seattle.log || { cat $T_TMP/seattle.log; t_fail "seattle rows"; }
echo "debian sources ok"
