"""pdset.py - an independent reader of the dataset artifact (lib/lb_dataset.h, version 1).

Used by tests and benchmarks (run with /usr/bin/python3, which has numpy) to check
what bin/worker-fetch and bin/marketgen write, without going through our C reader.

    import pdset
    d = pdset.load("file.pds")      # raises ValueError naming what is wrong
    d["x"], d["y"], d["baseline"], d["fwd_return"], d["ts"], d["entity"], d["columns"], d["splits"]
"""
import hashlib
import struct

import numpy as np

MAGIC = b"PDSET\r\n\x1a"


def _pad8(n):
    return (n + 7) & ~7


def loads(data):
    if len(data) < 160 or data[:8] != MAGIC:
        raise ValueError("not a dataset file")
    if hashlib.sha256(data[:-32]).digest() != data[-32:]:
        raise ValueError("bad checksum")
    (version, flags, rows, cols, task, n_classes, n_entities, horizon, embargo) = struct.unpack_from(
        "<IIQIIIIqq", data, 8)
    if version != 1 or flags != 0:
        raise ValueError("unsupported version %d" % version)
    splits = struct.unpack_from("<6Q", data, 56)
    strings_size, total, _ = struct.unpack_from("<QQQ", data, 104)
    if total != len(data):
        raise ValueError("size mismatch")
    pos = 128

    def get_str():
        nonlocal pos
        (n,) = struct.unpack_from("<I", data, pos)
        s = data[pos + 4:pos + 4 + n].decode("utf-8")
        pos += 4 + n
        return s

    label = get_str()
    meta = get_str()
    columns, types = [], []
    for _ in range(cols):
        types.append(data[pos])
        pos += 1
        columns.append(get_str())
    entities = [get_str() for _ in range(n_entities)]
    pos = 128 + strings_size
    ts = np.frombuffer(data, "<i8", rows, pos)
    pos += 8 * rows
    entity = np.frombuffer(data, "<u4", rows, pos)
    pos += _pad8(4 * rows)
    x = np.frombuffer(data, "<f4", rows * cols, pos).reshape(rows, cols)
    pos += _pad8(4 * rows * cols)
    arrays = []
    for _ in range(3):
        arrays.append(np.frombuffer(data, "<f4", rows, pos))
        pos += _pad8(4 * rows)
    if pos != len(data) - 32:
        raise ValueError("layout mismatch")
    return {
        "task": ["binary", "regression", "multiclass"][task], "n_classes": n_classes,
        "label": label, "meta": meta, "columns": columns, "types": types, "entities": entities,
        "horizon_s": horizon, "embargo_s": embargo, "ts": ts, "entity": entity, "x": x,
        "y": arrays[0], "baseline": arrays[1], "fwd_return": arrays[2],
        "splits": {"train": splits[0:2], "valid": splits[2:4], "test": splits[4:6]},
    }


def load(path):
    with open(path, "rb") as f:
        return loads(f.read())
