#!/usr/bin/python3
"""worker-train's xgboost and rf models are bit-identical to python3-xgboost's
with the same parameters on the same rows, and our scoring of a model artifact
matches python's predictions bit for bit."""
import os
import subprocess
import sys

import numpy as np
import xgboost as xgb

sys.path.insert(0, os.path.join(os.environ["ROOT"], "tests"))
import train_ref  # noqa: E402

BIN = os.environ["PREDICTORS_BIN"]
TMP = os.environ.get("T_TMP") or "/tmp"
store = os.path.join(TMP, "store")
env = dict(os.environ, PREDICTORS_ARTIFACTS_ROOT=store)
ds = os.path.join(TMP, "ds.pdset")
subprocess.run([f"{BIN}/worker-train", "synth", "--rows", "6000", "--cols", "8", "--seed", "3",
                "--valid", "0.2", "--test", "0.1", "-o", ds], check=True, stdout=subprocess.DEVNULL)
d = train_ref.read_dataset(ds)
(tb, te), (vb, ve), (sb, se) = d["splits"]
dtrain = xgb.DMatrix(d["x"][tb:te], label=d["y"][tb:te])
dvalid = xgb.DMatrix(d["x"][vb:ve], label=d["y"][vb:ve])


def fit(family, hp):
    args = [f"{BIN}/worker-train", "fit", "-f", family, "-d", ds, "--threads", "2", "--seed", "9"]
    for k, v in hp.items():
        args += ["-p", f"{k}={v}"]
    out = subprocess.run(args, env=env, check=True, capture_output=True, text=True).stdout
    uri = out.strip().splitlines()[-1]
    path = uri[len("file://"):]
    header, blobs = train_ref.read_model(path)
    return path, header, blobs["xgboost.ubj"]


failures = 0
cases = [("xgboost", dict(rounds=80, max_depth=4, eta=0.2, early_stopping_rounds=8)),
         ("xgboost", dict(rounds=30, subsample=0.7, colsample_bytree=0.8, early_stopping_rounds=0)),
         ("rf", dict(trees=25, max_depth=7))]
for family, hp in cases:
    path, header, ours = fit(family, hp)
    p = train_ref.xgb_params(family, 2, 9, **{k: v for k, v in hp.items()
                                              if k not in ("rounds", "early_stopping_rounds")})
    rounds = hp.get("rounds", 1) if family == "xgboost" else 1
    esr = hp.get("early_stopping_rounds", 20) if family == "xgboost" else None
    bst = xgb.train(p, dtrain, rounds, evals=[(dtrain, "train"), (dvalid, "valid")],
                    early_stopping_rounds=esr or None, verbose_eval=False)
    if esr:
        bst = bst[: bst.best_iteration + 1]
        assert header["metrics"]["best_iteration"] == bst.num_boosted_rounds() - 1, \
            (header["metrics"]["best_iteration"], bst.num_boosted_rounds())
    for attr in list(bst.attributes()):
        bst.set_attr(**{attr: None})
    bst.feature_names = d["names"]
    theirs = bytes(bst.save_raw("ubj"))
    same = theirs == ours
    # Our scorer on the test split against python's predictions of the same model.
    preds = os.path.join(TMP, "preds.f32")
    subprocess.run([f"{BIN}/worker-train", "score", path, ds, "test", preds], check=True,
                   stdout=subprocess.DEVNULL)
    mine = np.fromfile(preds, dtype="<f4")
    ref = bst.predict(xgb.DMatrix(d["x"][sb:se], feature_names=d["names"]))
    pred_same = np.array_equal(mine, ref)
    print(f"{family} {hp}: model bytes {'identical' if same else 'DIFFER'} "
          f"({len(ours)} vs {len(theirs)}), test predictions "
          f"{'identical' if pred_same else 'differ by %g' % np.abs(mine - ref).max()}")
    failures += (not same) + (not pred_same)
sys.exit(1 if failures else 0)
