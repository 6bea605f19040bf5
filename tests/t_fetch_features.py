#!/usr/bin/python3
"""The 16 features, the detector, the rule and the label from bin/marketgen (the C code in
kernels/kn_features.c and workers/fetch/wf_bars.c) against tests/ref_features.py (numpy/pandas),
on a small generated market: every value within 1e-6 relative (plus 1e-9 absolute for
values near zero), pattern bits, signals and labels identical."""
import os, subprocess, sys
import numpy as np, pandas as pd
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ref_features

tmp = os.environ.get("T_TMP", "/tmp")
bin_dir = os.environ.get("PREDICTORS_BIN", "bin")
bars_csv, feat_csv = os.path.join(tmp, "bars.csv"), os.path.join(tmp, "features.csv")
subprocess.run([os.path.join(bin_dir, "marketgen"), "--db", "", "--symbols", "24", "--sectors", "4",
                "--days", "90", "--seed", "7", "--bars-csv", bars_csv, "--features-csv", feat_csv],
               check=True)
bars = pd.read_csv(bars_csv, keep_default_na=False, na_values=[""], float_precision="round_trip")
bars["sector"] = bars["sector"].fillna("")
ours = pd.read_csv(feat_csv, float_precision="round_trip").sort_values(["symbol", "ts"]).reset_index(drop=True)
ref = ref_features.compute(bars, horizon=5).sort_values(["symbol", "ts"]).reset_index(drop=True)
if len(ours) != len(ref) or not (ours.symbol == ref.symbol).all() or not (ours.ts == ref.ts).all():
    sys.exit("t_fail: rows differ: ours %d, reference %d" % (len(ours), len(ref)))
bad = 0
for k in ref_features.FEATURES + ["forward_return"]:
    a, b = ours[k].to_numpy(float), ref[k].to_numpy(float)
    nan_a, nan_b = np.isnan(a), np.isnan(b)
    if (nan_a != nan_b).any():
        i = np.argmax(nan_a != nan_b)
        print("%s: NaN differs at %s %d: ours %r reference %r" % (k, ours.symbol[i], ours.ts[i], a[i], b[i]))
        bad += 1
        continue
    ok = ~nan_a
    err = np.abs(a[ok] - b[ok]) - (1e-6 * np.abs(b[ok]) + 1e-9)
    worst = np.max(np.abs(a[ok] - b[ok]) / (np.abs(b[ok]) + 1e-12)) if ok.any() else 0
    print("%-20s %6d values, %5d NaN, worst relative difference %.2e" % (k, ok.sum(), nan_a.sum(), worst))
    if (err > 0).any():
        i = np.flatnonzero(ok)[np.argmax(err)]
        print("%s: differs at %s %d: ours %r reference %r" % (k, ours.symbol[i], ours.ts[i], a[i], b[i]))
        bad += 1
for k in ("patterns", "rule_signal", "pattern_success"):
    diff = (ours[k].to_numpy() != ref[k].to_numpy())
    print("%-20s %6d differ" % (k, diff.sum()))
    bad += int(diff.any())
# Every feature must have been exercised with real values.
for k in ref_features.FEATURES:
    if ours[k].notna().sum() == 0:
        print("%s: never defined" % k); bad += 1
if (ours.patterns & 15).sum() == 0:
    print("no bullish pattern found"); bad += 1
sys.exit("t_fail: %d columns differ" % bad if bad else 0)
