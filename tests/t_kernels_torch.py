#!/usr/bin/python3
"""The kernels against PyTorch: for each small model, the same weights and batch
go through PyTorch 1.13 (CPU, float32) and through our CPU kernels (bin/kn-tool
parity); predictions, loss, every gradient and the parameters after one AdamW
step must agree to 1e-5 relative (max|ours - torch| <= 1e-5 * max|torch| per
tensor). A deliberately corrupted expectation must make kn-tool fail."""
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.environ.get("ROOT", "."), "tests"))
import torch  # noqa: E402
import kn_torch  # noqa: E402

BIN = os.environ.get("PREDICTORS_BIN", "bin")
TMP = os.environ.get("T_TMP", "/tmp")
torch.manual_seed(3)
torch.set_num_threads(1)


def labels(task, batch, n_out):
    if task == "binary":
        return torch.randint(0, 2, (batch, 1)).float()
    if task == "multiclass":
        return torch.randint(0, n_out, (batch, 1)).float()
    return torch.randn(batch, n_out)


def mlp_case(name, task, n_out, hidden, act, layernorm, batch=16, n_in=6):
    m = kn_torch.MLP(n_in, hidden, n_out, act, layernorm)
    with torch.no_grad():
        for n in m.names:   # move LayerNorm gains off their init so they matter
            if ".ln." in n:
                m.param(n).add_(0.1 * torch.randn_like(m.param(n)))
    x = torch.randn(batch, n_in)
    header = (f"arch=mlp task={task} n_in={n_in} n_out={n_out} act={act} "
              f"layernorm={int(layernorm)} hidden={','.join(map(str, hidden))} batch={batch} threads=2")
    return name, header, m, x, labels(task, batch, n_out), task


def tf_case(name, task, n_out, pool, act, batch=4, n_in=5, window=6, d=16, heads=2, layers=2, ff=24):
    m = kn_torch.Transformer(n_in, n_out, window, d, heads, layers, ff, act, pool)
    with torch.no_grad():
        for n in m.names:
            if "ln" in n:
                m.param(n).add_(0.1 * torch.randn_like(m.param(n)))
    x = torch.randn(batch, window * n_in)
    header = (f"arch=transformer task={task} n_in={n_in} n_out={n_out} act={act} pool={pool} "
              f"window={window} d_model={d} n_heads={heads} n_layers={layers} d_ff={ff} "
              f"batch={batch} threads=2")
    return name, header, m, x, labels(task, batch, n_out), task


cases = [
    mlp_case("mlp_binary_gelu_ln", "binary", 1, [32, 24], "gelu", True),
    mlp_case("mlp_multiclass_relu", "multiclass", 4, [32], "relu", False),
    mlp_case("mlp_regression_gelu", "regression", 2, [16, 16, 8], "gelu", True),
    tf_case("tf_binary_mean_gelu", "binary", 1, "mean", "gelu"),
    tf_case("tf_multiclass_last_relu", "multiclass", 3, "last", "relu"),
    tf_case("tf_regression_mean", "regression", 2, "mean", "gelu", layers=1),
]

failed = 0
for name, header, model, x, y, task in cases:
    path = os.path.join(TMP, name + ".kncheck")
    kn_torch.write_check(path, header, model, x, y, task)
    r = subprocess.run([os.path.join(BIN, "kn-tool"), "parity", path], capture_output=True, text=True)
    print(f"== {name}: exit {r.returncode}")
    print(r.stdout + r.stderr)
    if r.returncode != 0:
        failed += 1

# The check can fail: corrupt one gradient by 1e-4 relative and expect exit 1.
name, header, model, x, y, task = mlp_case("mlp_corrupted", "binary", 1, [8], "gelu", False)
path = os.path.join(TMP, "corrupt.kncheck")
kn_torch.write_check(path, header, model, x, y, task)
data = open(path, "rb").read()
key = b"grad.hidden.0.weight "
at = data.index(key)
start = data.index(b"\n", at) + 1
import struct  # noqa: E402
v = struct.unpack_from("<f", data, start)[0]
data = data[:start] + struct.pack("<f", v * (1 + 1e-3) + 1e-4) + data[start + 4:]
open(path, "wb").write(data)
r = subprocess.run([os.path.join(BIN, "kn-tool"), "parity", path], capture_output=True, text=True)
if r.returncode != 1 or "FAIL grad.hidden.0.weight" not in r.stdout:
    print("the corrupted expectation was not caught:\n" + r.stdout + r.stderr)
    failed += 1
else:
    print("== corrupted gradient caught as expected")

print(f"{len(cases) - failed if failed <= len(cases) else 0} of {len(cases)} models agree with PyTorch"
      + ("" if not failed else f"; {failed} checks failed"))
sys.exit(1 if failed else 0)
