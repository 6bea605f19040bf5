#!/usr/bin/python3
"""Evaluation metrics against scikit-learn / scipy on random data, to 1e-9.

Runs `worker-eval score` on random predictions (with ties, a production
column and missing forward returns on untraded rows) and checks every
metric, the reliability bins, the backtest, McNemar's test and the paired
bootstrap (re-implemented here with the same splitmix64 generator) against
independent Python computations.
"""
import json, os, subprocess, sys
import numpy as np
from sklearn import metrics as skm
from sklearn.calibration import calibration_curve
from scipy import stats

BIN = os.environ.get("PREDICTORS_BIN", "bin")
TMP = os.environ.get("T_TMP", "/tmp")
TOL = 1e-9
failures = []


def check(what, got, want, tol=TOL):
    if want is None or (isinstance(want, float) and np.isnan(want)):
        ok = got is None
    else:
        ok = got is not None and abs(got - want) <= tol * max(1.0, abs(want))
    if not ok:
        failures.append(f"{what}: got {got!r}, want {want!r}")


M64 = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


def bootstrap(a, b, rounds, level, seed):
    d = np.asarray(a, float) - np.asarray(b, float)
    n = len(d)
    state = seed
    stats_ = []
    for _ in range(rounds):
        idx = []
        for _ in range(n):
            state, x = splitmix64(state)
            idx.append((x * n) >> 64)
        stats_.append(d[idx].sum() / n)
    stats_ = np.sort(np.array(stats_))
    return d.mean(), np.percentile(stats_, (1 - level) / 2 * 100), np.percentile(stats_, (1 + level) / 2 * 100)


def run_case(seed, n):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    rule = np.where(rng.random(n) < 0.6, y, 1 - y)
    fwd = rng.normal(0.0005, 0.01, n) + 0.004 * (y - 0.5)
    # models: continuous, heavily tied (rounded to 0.1), and a production model
    logit = 1.2 * (y - 0.5) + rng.normal(0, 1, n)
    p_ens = 1 / (1 + np.exp(-logit))
    p_tied = np.round(np.clip(p_ens + rng.normal(0, 0.2, n), 0, 1), 1)
    p_prod = 1 / (1 + np.exp(-(0.6 * (y - 0.5) + rng.normal(0, 1, n))))
    p_prod[:3] = [0.0, 1.0, 0.5]     # extremes: log-loss clipping, threshold tie
    # some forward returns are unknown, on traded and untraded rows alike
    miss = rng.choice(n, 12, replace=False)
    path = os.path.join(TMP, f"pred_{seed}.csv")
    with open(path, "w") as f:
        f.write("ts,label,rule,fwd_return,ensemble:ensemble,tied:xgboost,production\n")
        for i in range(n):
            fr = "" if i in miss else repr(float(fwd[i]))
            f.write(f"{1700000000 + 3600 * i},{y[i]},{rule[i]},{fr},{p_ens[i]!r},{p_tied[i]!r},{p_prod[i]!r}\n")
    out = os.path.join(TMP, f"out_{seed}")
    rounds, level, bseed = 300, 0.9, 12345
    cost, ppy = 0.0007, 1638.0
    r = subprocess.run([f"{BIN}/worker-eval", "score", "--predictions", path, "--out", out,
                        "--production-version", "4",
                        "--set", f"evaluate.bootstrap_rounds={rounds}", "--set", f"evaluate.ci_level={level}",
                        "--set", f"evaluate.seed={bseed}", "--set", f"evaluate.cost={cost}",
                        "--set", f"evaluate.periods_per_year={ppy}"],
                       capture_output=True, text=True)
    if r.returncode != 0:
        failures.append(f"worker-eval score failed: {r.stderr}")
        return
    res = json.load(open(os.path.join(out, "evaluation.json")))
    pols = {p["name"]: p for p in res["policies"]}
    fwd_filled = fwd.copy()
    fwd_filled[miss] = np.nan
    conf = np.maximum(p_ens, 1 - p_ens)
    blend = np.where(conf > 0.8, p_ens, np.where(conf > 0.6, 0.7 * p_ens + 0.3 * rule, rule.astype(float)))
    scores = {"ensemble": p_ens, "tied": p_tied, "production": p_prod, "rules": rule.astype(float), "blend": blend}
    for name, p in scores.items():
        got = pols[name]
        pred = (p >= 0.5).astype(int)
        tn, fp, fn, tp = skm.confusion_matrix(y, pred, labels=[0, 1]).ravel()
        check(f"{seed}/{name} tp", got["confusion"]["tp"], tp)
        check(f"{seed}/{name} fp", got["confusion"]["fp"], fp)
        check(f"{seed}/{name} accuracy", got["accuracy"], skm.accuracy_score(y, pred))
        check(f"{seed}/{name} precision", got["precision"], skm.precision_score(y, pred, zero_division=0))
        check(f"{seed}/{name} recall", got["recall"], skm.recall_score(y, pred, zero_division=0))
        check(f"{seed}/{name} f1", got["f1"], skm.f1_score(y, pred, zero_division=0))
        check(f"{seed}/{name} fpr", got["fpr"], fp / (fp + tn))
        check(f"{seed}/{name} roc_auc", got["roc_auc"], skm.roc_auc_score(y, p))
        check(f"{seed}/{name} log_loss", got["log_loss"], skm.log_loss(y, p))
        check(f"{seed}/{name} brier", got["brier"], skm.brier_score_loss(y, p))
        ft, mp = calibration_curve(y, p, n_bins=10, strategy="uniform")
        bins = [b for b in got["reliability"] if b["count"] > 0]
        if len(bins) != len(ft):
            failures.append(f"{seed}/{name}: {len(bins)} non-empty bins, sklearn has {len(ft)}")
        else:
            for k, b in enumerate(bins):
                check(f"{seed}/{name} bin{k} frac_pos", b["frac_pos"], ft[k])
                check(f"{seed}/{name} bin{k} mean_p", b["mean_p"], mp[k])
        # backtest
        known = np.isfinite(fwd_filled)
        traded = (pred == 1) & known
        net = np.where(traded, np.nan_to_num(fwd_filled) - cost, 0.0)
        eq = np.cumsum(net)
        dd = np.max(np.maximum.accumulate(np.concatenate([[0.0], eq]))[1:] - eq)
        trades = int(traded.sum())
        check(f"{seed}/{name} skipped", got["backtest"]["skipped"], int(((pred == 1) & ~known).sum()))
        bt = got["backtest"]
        check(f"{seed}/{name} trades", bt["trades"], trades)
        check(f"{seed}/{name} total", bt["total"], net.sum())
        check(f"{seed}/{name} sharpe", bt["sharpe"], net.mean() / net.std(ddof=1) * np.sqrt(ppy))
        check(f"{seed}/{name} hit_rate", bt["hit_rate"], (net[traded] > 0).mean() if trades else float("nan"))
        check(f"{seed}/{name} max_drawdown", bt["max_drawdown"], max(dd, 0.0))
    cmps = {(c["candidate"], c["baseline"]): c for c in res["comparisons"]}
    for cand, base in [("ensemble", "production"), ("ensemble", "rules"), ("blend", "rules")]:
        c = cmps.get((cand, base))
        if not c:
            failures.append(f"{seed}: no comparison {cand} vs {base}")
            continue
        ca = ((scores[cand] >= 0.5).astype(int) == y).astype(int)
        cb = ((scores[base] >= 0.5).astype(int) == y).astype(int)
        b = int(((ca == 1) & (cb == 0)).sum())
        cc = int(((ca == 0) & (cb == 1)).sum())
        check(f"{seed} {cand}/{base} mcnemar b", c["mcnemar_b"], b)
        check(f"{seed} {cand}/{base} mcnemar c", c["mcnemar_c"], cc)
        pe = stats.binomtest(min(b, cc), b + cc, 0.5).pvalue if b + cc else 1.0
        check(f"{seed} {cand}/{base} mcnemar exact p", c["mcnemar_p_exact"], pe)
        chi2 = (max(abs(b - cc) - 1, 0) ** 2) / (b + cc) if b + cc else 0.0
        check(f"{seed} {cand}/{base} mcnemar chi2 p", c["mcnemar_p_chi2"], stats.chi2.sf(chi2, 1) if b + cc else 1.0)
        d, lo, hi = bootstrap(ca, cb, rounds, level, bseed)
        check(f"{seed} {cand}/{base} diff", c["diff"], d)
        check(f"{seed} {cand}/{base} ci_lo", c["ci_lo"], lo)
        check(f"{seed} {cand}/{base} ci_hi", c["ci_hi"], hi)
    if cmps[("ensemble", "production")].get("baseline_version") != 4:
        failures.append("production version not carried into the comparison")
    html = open(os.path.join(out, "report.html")).read()
    for plot in ("plot-roc", "plot-calibration", "plot-equity"):
        if f'id="{plot}"' not in html:
            failures.append(f"report.html lacks {plot}")


for seed, n in [(1, 400), (2, 1000), (3, 257)]:
    run_case(seed, n)

# Hand-computed table (the one in lb_metrics_test), through the CSV path.
path = os.path.join(TMP, "hand.csv")
with open(path, "w") as f:
    f.write("ts,label,rule,fwd_return,ensemble\n")
    for i, (yy, pp) in enumerate(zip([1, 1, 0, 1, 0, 1, 0, 0], [0.9, 0.8, 0.6, 0.55, 0.4, 0.3, 0.2, 0.1])):
        f.write(f"{i},{yy},0,0.01,{pp}\n")
r = subprocess.run([f"{BIN}/worker-eval", "score", "--predictions", path, "--out", os.path.join(TMP, "hand")],
                   capture_output=True, text=True)
if r.returncode:
    failures.append(f"hand table: {r.stderr}")
else:
    e = {p["name"]: p for p in json.loads(r.stdout)["policies"]}["ensemble"]
    check("hand accuracy", e["accuracy"], 0.75)
    check("hand auc", e["roc_auc"], 13 / 16)
    check("hand fpr", e["fpr"], 0.25)

# Bad input is refused with where it is.
bad = os.path.join(TMP, "bad.csv")
with open(bad, "w") as f:
    f.write("ts,label,rule,fwd_return,ensemble\n1,1,0,0.01,0.5\n2,0,1,0.02,nan\n")
r = subprocess.run([f"{BIN}/worker-eval", "score", "--predictions", bad, "--out", os.path.join(TMP, "bad")],
                   capture_output=True, text=True)
if r.returncode != 1 or "row 1" not in r.stderr:
    failures.append(f"NaN probability not refused clearly: rc={r.returncode} {r.stderr}")
with open(bad, "w") as f:
    f.write("ts,label,rule,fwd_return,ensemble\n1,1,0,0.01\n")
r = subprocess.run([f"{BIN}/worker-eval", "score", "--predictions", bad, "--out", os.path.join(TMP, "bad")],
                   capture_output=True, text=True)
if r.returncode != 1 or "bad.csv:2" not in r.stderr:
    failures.append(f"ragged row not refused with its line: rc={r.returncode} {r.stderr}")

if failures:
    print("\n".join(failures[:40]))
    print(f"{len(failures)} mismatches")
    sys.exit(1)
print("all metrics match scikit-learn/scipy to 1e-9")
