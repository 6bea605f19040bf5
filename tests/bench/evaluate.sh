#!/usr/bin/env bash
# Evaluation cost side by side: `worker-eval score` (CSV parse, every metric, reliability bins,
# backtests, 3 paired bootstraps, McNemar, Markdown + HTML report) against the same metrics
# and bootstraps computed with scikit-learn + numpy (vectorised resampling) on the same rows.
# N rows (default 200000), 3 models, BOOT resamples (default 2000, the default setting).
set -euo pipefail
ROOT=${ROOT:-$(cd "$(dirname "$0")/../.." && pwd)}
BIN=${PREDICTORS_BIN:-$ROOT/bin}
N=${N:-200000} BOOT=${BOOT:-2000}
T=$(mktemp -d /tmp/bench-evaluate.XXXXXX); trap 'rm -rf "$T"' EXIT
/usr/bin/python3 - "$T/p.csv" "$N" <<'PY'
import sys, numpy as np
path, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(1)
y = rng.integers(0, 2, n); rule = np.where(rng.random(n) < .55, y, 1 - y)
fwd = rng.normal(0, .01, n)
cols = [1 / (1 + np.exp(-(k * (y - .5) + rng.normal(0, 1, n)))) for k in (1.0, 1.2, 0.8)]
np.savetxt(path, np.column_stack([np.arange(n), y, rule, fwd] + cols), delimiter=",",
           fmt=["%d", "%d", "%d", "%.10g", "%.10g", "%.10g", "%.10g"],
           header="ts,label,rule,fwd_return,xgboost,ensemble,production", comments="")
PY
s=$(date +%s.%N)
"$BIN/worker-eval" score --predictions "$T/p.csv" --out "$T/out" --production-version 1 \
    --set evaluate.bootstrap_rounds=$BOOT >/dev/null
ours=$(echo "$(date +%s.%N) - $s" | bc)
peer=$(/usr/bin/python3 - "$T/p.csv" "$BOOT" <<'PY'
import sys, time, numpy as np, pandas as pd
from sklearn import metrics as m
from sklearn.calibration import calibration_curve
t = time.time()
d = pd.read_csv(sys.argv[1]); B = int(sys.argv[2]); y = d.label.values; n = len(y)
conf = lambda p: np.maximum(p, 1 - p)
pe = d.ensemble.values
pols = {"xgboost": d.xgboost.values, "ensemble": pe, "production": d.production.values,
        "rules": d.rule.values.astype(float),
        "blend": np.where(conf(pe) > .8, pe, np.where(conf(pe) > .6, .7 * pe + .3 * d.rule.values, d.rule.values))}
for p in pols.values():
    pred = p >= .5
    m.accuracy_score(y, pred); m.precision_score(y, pred, zero_division=0); m.recall_score(y, pred, zero_division=0)
    m.f1_score(y, pred, zero_division=0); m.roc_auc_score(y, p); m.log_loss(y, p); m.confusion_matrix(y, pred)
    m.brier_score_loss(y, p); calibration_curve(y, p, n_bins=10); m.roc_curve(y, p)
    net = np.where(pred, d.fwd_return.values - .0005, 0); eq = np.cumsum(net)
rng = np.random.default_rng(0)
for a, b in (("ensemble", "production"), ("ensemble", "rules"), ("blend", "rules")):
    diff = ((pols[a] >= .5) == y).astype(float) - ((pols[b] >= .5) == y).astype(float)
    stats = [diff[rng.integers(0, n, n)].mean() for _ in range(B)]
    np.percentile(stats, [2.5, 97.5])
print(f"{time.time() - t:.2f}")
PY
)
printf '| what (%d rows, 5 policies, 3 paired bootstraps x %d) | seconds |\n|---|---:|\n' "$N" "$BOOT"
printf '| worker-eval score (C, includes CSV parse and both reports) | %.2f |\n' "$ours"
printf '| scikit-learn + numpy, same metrics and bootstraps (no report) | %.2f |\n' "$peer"
# A regression of the same size (column ref): RMSE/MAE/R², direction, backtests, 2 paired
# squared-error bootstraps, scatter and residual plots.
/usr/bin/python3 - "$T/r.csv" "$N" <<'PY'
import sys, numpy as np
path, n = sys.argv[1], int(sys.argv[2])
rng = np.random.default_rng(2)
y = rng.normal(0, .01, n)
cols = [y + rng.normal(0, s, n) for s in (.008, .009)]
np.savetxt(path, np.column_stack([np.arange(n), y, np.zeros(n), y, np.zeros(n)] + cols), delimiter=",",
           fmt=["%d", "%.10g", "%.10g", "%.10g", "%d", "%.10g", "%.10g"],
           header="ts,label,rule,fwd_return,ref,ensemble,production", comments="")
PY
s=$(date +%s.%N)
"$BIN/worker-eval" score --predictions "$T/r.csv" --out "$T/rout" --production-version 1 \
    --set evaluate.bootstrap_rounds=$BOOT >/dev/null
printf '| worker-eval score, a regression (%d rows, 3 policies, 2 squared-error bootstraps) | %.2f |\n' \
    "$N" "$(echo "$(date +%s.%N) - $s" | bc)"
