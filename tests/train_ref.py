#!/usr/bin/python3
"""Reference helpers for the trainer's tests and benchmark (not a test itself).

read_dataset(path) parses the dataset artifact format (lib/lb_dataset.h) with
numpy, independently of the C reader. xgb_params(...) gives the exact booster
parameters workers/train/wk_txgb.c sets, so python3-xgboost can train the same
model.
"""
import hashlib
import struct

import numpy as np


def read_dataset(path):
    data = open(path, "rb").read()
    assert data[:8] == b"PDSET\r\n\x1a", "not a dataset file"
    assert hashlib.sha256(data[:-32]).digest() == data[-32:], "bad checksum"
    rows, cols, task, ncls, nent = struct.unpack_from("<QIIII", data, 16)
    splits = struct.unpack_from("<6Q", data, 56)
    strings_size, = struct.unpack_from("<Q", data, 104)
    # strings: label, meta, then per column (uint8 type, name), entities
    at = 128
    def item():
        nonlocal at
        n, = struct.unpack_from("<I", data, at)
        s = data[at + 4:at + 4 + n]
        at += 4 + n
        return s
    item(); item()
    names = []
    for _ in range(cols):
        at += 1                         # uint8 column type
        names.append(item().decode())
    at = 128 + strings_size
    pad = lambda n: (n + 7) // 8 * 8
    at += 8 * rows                      # ts
    at += pad(4 * rows)                 # entity
    x = np.frombuffer(data, dtype="<f4", count=rows * cols, offset=at).reshape(rows, cols)
    at += pad(4 * rows * cols)
    y = np.frombuffer(data, dtype="<f4", count=rows, offset=at)
    return dict(x=x, y=y, names=names, splits=[(splits[0], splits[1]), (splits[2], splits[3]),
                                              (splits[4], splits[5])], task=task)


def xgb_params(family, nthread, seed, **hp):
    """The parameters wk_txgb.c gives the booster (defaults from wk_tparams.c)."""
    if family == "rf":
        d = dict(trees=300, max_depth=20, subsample=0.8, colsample_bynode=0.8,
                 min_child_weight=1, reg_lambda=1, max_bin=256)
    else:
        d = dict(eta=0.3, max_depth=6, min_child_weight=1, subsample=1, colsample_bytree=1,
                 colsample_bynode=1, reg_lambda=1, alpha=0, gamma=0, max_bin=256,
                 scale_pos_weight=1)
    d.update(hp)
    p = {"validate_parameters": 1, "objective": "binary:logistic", "tree_method": "hist",
         "nthread": nthread, "seed": seed & 0x7fffffff, "seed_per_iteration": 1,
         "max_depth": d["max_depth"], "min_child_weight": d["min_child_weight"],
         "subsample": d["subsample"], "colsample_bynode": d["colsample_bynode"],
         "lambda": d["reg_lambda"], "max_bin": d["max_bin"], "eval_metric": ["logloss"]}
    if family == "rf":
        p["num_parallel_tree"] = d["trees"]
        p["eta"] = 1
    else:
        for k in ("eta", "colsample_bytree", "alpha", "gamma", "scale_pos_weight"):
            p[k] = d[k]
    return p


def read_model(path):
    """Parses a model artifact (lib/lb_model.h): returns (header dict, {blob name: bytes})."""
    import json
    data = open(path, "rb").read()
    assert data[:8] == b"PRDMODEL", "not a model file"
    assert hashlib.sha256(data[:-32]).digest() == data[-32:], "bad checksum"
    version, _, hsize = struct.unpack_from("<IIQ", data, 8)
    header = json.loads(data[24:24 + hsize])
    blobs, at = {}, 24 + hsize
    for b in header["blobs"]:
        blobs[b["name"]] = data[at:at + b["size"]]
        assert hashlib.sha256(blobs[b["name"]]).hexdigest() == b["sha256"]
        at += b["size"]
    return header, blobs
