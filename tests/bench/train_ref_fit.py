#!/usr/bin/python3
"""python3-xgboost side of tests/bench/train.sh: trains with exactly the
parameters worker-train gives the booster, timed the same way (matrices plus
boosting), on the same dataset file. Prints "seconds S auc A cpu C" (C: process
CPU seconds of every thread over the same span)."""
import os
import sys
import time

import numpy as np
import xgboost as xgb

sys.path.insert(0, os.path.join(os.environ["ROOT"], "tests"))
import train_ref  # noqa: E402

path, family, threads = sys.argv[1], sys.argv[2], int(sys.argv[3])
hp = dict(a.split("=", 1) for a in sys.argv[4:])
rounds = int(hp.pop("rounds", 300)) if family == "xgboost" else 1
esr = int(hp.pop("early_stopping_rounds", 0)) if family == "xgboost" else 0
hp = {k: (float(v) if "." in v else int(v)) for k, v in hp.items()}
if "trees" in hp:
    hp["trees"] = int(hp["trees"])
d = train_ref.read_dataset(path)
(tb, te), (vb, ve), _ = d["splits"]
x_train, y_train = np.ascontiguousarray(d["x"][tb:te]), d["y"][tb:te]
x_valid, y_valid = np.ascontiguousarray(d["x"][vb:ve]), d["y"][vb:ve]
p = train_ref.xgb_params(family, threads, 0, **hp)
t0, c0 = time.perf_counter(), time.process_time()
dtrain = xgb.DMatrix(x_train, label=y_train, nthread=threads)
dvalid = xgb.DMatrix(x_valid, label=y_valid, nthread=threads)
bst = xgb.train(p, dtrain, rounds, evals=[(dtrain, "train"), (dvalid, "valid")],
                early_stopping_rounds=esr or None, verbose_eval=False)
seconds, cpu = time.perf_counter() - t0, time.process_time() - c0
from sklearn.metrics import roc_auc_score  # noqa: E402
auc = roc_auc_score(y_valid, bst.predict(dvalid))
print(f"seconds {seconds:.3f} auc {auc:.4f} cpu {cpu:.3f}")
