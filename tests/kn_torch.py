"""PyTorch twins of the kernels' models (kernels/kn_model.h), for the parity test
(tests/t_kernels_torch.py) and the benchmark (tests/bench/kernels.sh).

Parameter names and shapes are the kernels' own (kn_model_tensor), so a file
written here maps one to one onto our flat buffer. Not a scenario: no t_ prefix.
"""
import math
import struct

import numpy as np
import torch
import torch.nn.functional as F


def act_fn(name):
    return F.gelu if name == "gelu" else F.relu


class MLP(torch.nn.Module):
    def __init__(self, n_in, hidden, n_out, act="gelu", layernorm=False, dropout=0.0):
        super().__init__()
        self.act, self.layernorm, self.dropout = act_fn(act), layernorm, dropout
        self.p = torch.nn.ParameterDict()
        self.names = []
        prev = n_in
        for l, h in enumerate(hidden):
            self._lin(f"hidden.{l}", prev, h)
            if layernorm:
                self._add(f"hidden.{l}.ln.weight", torch.ones(h))
                self._add(f"hidden.{l}.ln.bias", torch.zeros(h))
            prev = h
        self._lin("out", prev, n_out)
        self.hidden = hidden

    def _add(self, name, t):
        self.p[name.replace(".", "_")] = torch.nn.Parameter(t)
        self.names.append(name)

    def _lin(self, name, n_in, n_out):
        lin = torch.nn.Linear(n_in, n_out)
        self._add(name + ".weight", lin.weight.detach().clone())
        self._add(name + ".bias", lin.bias.detach().clone())

    def param(self, name):
        return self.p[name.replace(".", "_")]

    def forward(self, x):
        h = x
        for l in range(len(self.hidden)):
            h = F.linear(h, self.param(f"hidden.{l}.weight"), self.param(f"hidden.{l}.bias"))
            if self.layernorm:
                h = F.layer_norm(h, (h.shape[-1],), self.param(f"hidden.{l}.ln.weight"),
                                 self.param(f"hidden.{l}.ln.bias"), 1e-5)
            h = self.act(h)
            h = F.dropout(h, self.dropout, self.training)
        return F.linear(h, self.param("out.weight"), self.param("out.bias"))


class Transformer(MLP):
    def __init__(self, n_in, n_out, window, d_model, n_heads, n_layers, d_ff, act="gelu",
                 pool="mean", dropout=0.0):
        torch.nn.Module.__init__(self)
        self.act, self.pool, self.dropout = act_fn(act), pool, dropout
        self.window, self.d, self.h, self.n_layers = window, d_model, n_heads, n_layers
        self.p = torch.nn.ParameterDict()
        self.names = []
        self._lin("in", n_in, d_model)
        self._add("pos", torch.randn(window, d_model) * 0.02)
        for i in range(n_layers):
            self._add(f"layers.{i}.ln1.weight", torch.ones(d_model))
            self._add(f"layers.{i}.ln1.bias", torch.zeros(d_model))
            self._lin(f"layers.{i}.attn.qkv", d_model, 3 * d_model)
            self._lin(f"layers.{i}.attn.out", d_model, d_model)
            self._add(f"layers.{i}.ln2.weight", torch.ones(d_model))
            self._add(f"layers.{i}.ln2.bias", torch.zeros(d_model))
            self._lin(f"layers.{i}.ff.1", d_model, d_ff)
            self._lin(f"layers.{i}.ff.2", d_ff, d_model)
        self._add("ln_f.weight", torch.ones(d_model))
        self._add("ln_f.bias", torch.zeros(d_model))
        self._lin("head", d_model, n_out)

    def forward(self, x):
        B, T, D, H = x.shape[0], self.window, self.d, self.h
        P = self.param
        h = F.linear(x.view(B, T, -1), P("in.weight"), P("in.bias")) + P("pos")
        for i in range(self.n_layers):
            a = F.layer_norm(h, (D,), P(f"layers.{i}.ln1.weight"), P(f"layers.{i}.ln1.bias"), 1e-5)
            qkv = F.linear(a, P(f"layers.{i}.attn.qkv.weight"), P(f"layers.{i}.attn.qkv.bias"))
            q, k, v = (t.view(B, T, H, D // H).transpose(1, 2) for t in qkv.split(D, dim=-1))
            att = torch.softmax((q @ k.transpose(-1, -2)) * (1.0 / math.sqrt(D // H)), dim=-1)
            ctx = (att @ v).transpose(1, 2).reshape(B, T, D)
            o = F.linear(ctx, P(f"layers.{i}.attn.out.weight"), P(f"layers.{i}.attn.out.bias"))
            h = h + F.dropout(o, self.dropout, self.training)
            c = F.layer_norm(h, (D,), P(f"layers.{i}.ln2.weight"), P(f"layers.{i}.ln2.bias"), 1e-5)
            f = self.act(F.linear(c, P(f"layers.{i}.ff.1.weight"), P(f"layers.{i}.ff.1.bias")))
            f = F.linear(f, P(f"layers.{i}.ff.2.weight"), P(f"layers.{i}.ff.2.bias"))
            h = h + F.dropout(f, self.dropout, self.training)
        h = F.layer_norm(h, (D,), P("ln_f.weight"), P("ln_f.bias"), 1e-5)
        pooled = h.mean(dim=1) if self.pool == "mean" else h[:, -1]
        return F.linear(pooled, P("head.weight"), P("head.bias"))


def loss_fn(task, logits, y):
    if task == "binary":
        return F.binary_cross_entropy_with_logits(logits.view(-1), y.view(-1))
    if task == "multiclass":
        return F.cross_entropy(logits, y.view(-1).long())
    return F.mse_loss(logits, y.view(logits.shape))


def predict(task, logits):
    if task == "binary":
        return torch.sigmoid(logits)
    if task == "multiclass":
        return torch.softmax(logits, dim=-1)
    return logits


def adamw(model, lr, wd):
    """AdamW with the kernels' grouping: weight decay on weights and pos only."""
    decay = [model.param(n) for n in model.names if not (n.endswith("bias") or ".ln" in n or n.startswith("ln"))]
    rest = [model.param(n) for n in model.names if n.endswith("bias") or ".ln" in n or n.startswith("ln")]
    return torch.optim.AdamW([{"params": decay, "weight_decay": wd},
                              {"params": rest, "weight_decay": 0.0}],
                             lr=lr, betas=(0.9, 0.999), eps=1e-8)


def write_check(path, header, model, x, y, task, lr=1e-3, wd=0.01):
    """One step in PyTorch; writes what kn-tool parity compares."""
    model.train()
    records = [("param." + n, model.param(n).detach().clone()) for n in model.names]
    records += [("x", x), ("y", y)]
    with torch.no_grad():
        records.append(("pred", predict(task, model(x))))
    opt = adamw(model, lr, wd)
    opt.zero_grad()
    loss = loss_fn(task, model(x), y)
    loss.backward()
    records.append(("loss", loss.detach().view(1)))
    records += [("grad." + n, model.param(n).grad.detach().clone()) for n in model.names]
    opt.step()
    records += [("new." + n, model.param(n).detach().clone()) for n in model.names]
    with open(path, "wb") as f:
        f.write(("kncheck " + header + f" lr={lr} wd={wd}\n").encode())
        for name, t in records:
            a = t.detach().numpy().astype("<f4").ravel()
            f.write(f"{name} {a.size}\n".encode())
            f.write(a.tobytes())


def make_dataset(rows=200_000, cols=16, seed=7):
    """The benchmark's fixed-seed, time-ordered binary task: an AR(1) drift in
    the features and a nonlinear rule with noise for the label."""
    rng = np.random.default_rng(seed)
    x = np.empty((rows, cols), np.float32)
    state = rng.standard_normal(cols)
    for i in range(0, rows, 1000):
        n = min(1000, rows - i)
        noise = rng.standard_normal((n, cols))
        x[i:i + n] = noise + 0.3 * state
        state = 0.9 * state + 0.1 * rng.standard_normal(cols)
    w = rng.standard_normal(cols) / math.sqrt(cols)
    z = x @ w + 0.5 * np.sin(2 * x[:, 0]) * x[:, 1] - 0.3 * x[:, 2] ** 2 + 0.3
    y = (z + 0.5 * rng.standard_normal(rows) > 0).astype(np.float32)
    return x, y


def write_dataset(path, x, y):
    with open(path, "wb") as f:
        f.write(f"kndata rows={x.shape[0]} cols={x.shape[1]}\n".encode())
        f.write(np.ascontiguousarray(x, "<f4").tobytes())
        f.write(np.ascontiguousarray(y, "<f4").tobytes())
