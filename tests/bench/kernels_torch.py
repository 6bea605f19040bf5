#!/usr/bin/python3
"""PyTorch 1.13 CPU side of tests/bench/kernels.sh: the same models, data, batch
and threads as bin/kn-tool bench-mlp / bench-transformer."""
import contextlib
import math
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
import numpy as np  # noqa: E402
import torch  # noqa: E402
import kn_torch  # noqa: E402


def auc(score, y):
    order = np.argsort(score, kind="mergesort")
    s, yy = score[order], y[order]
    ranks = np.empty(len(s))
    i = 0
    while i < len(s):
        j = i
        while j < len(s) and s[j] == s[i]:
            j += 1
        ranks[i:j] = (i + 1 + j) / 2.0
        i = j
    pos = yy.sum()
    neg = len(yy) - pos
    return (ranks[yy > 0.5].sum() - pos * (pos + 1) / 2) / (pos * neg)


def autocast(precision):
    """bf16: PyTorch's own mixed precision on the CPU (torch.autocast, bf16
    matmuls through oneDNN); fp32: nothing."""
    if precision == "bf16":
        return torch.autocast("cpu", dtype=torch.bfloat16)
    return contextlib.nullcontext()


def autocast_usable():
    """Whether this PyTorch can autocast to bf16 on the CPU (1.13 can);
    prints why not otherwise."""
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            torch.ones(2, 2) @ torch.ones(2, 2)
        return True
    except (RuntimeError, AttributeError, TypeError) as e:
        print(f"pytorch bf16: torch.autocast on the CPU is not available here ({e}); not measured")
        return False


def mlp(path, threads, epochs, batch, act, precision="fp32"):
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    with open(path, "rb") as f:
        head = f.readline().decode().split()
        rows, cols = int(head[1].split("=")[1]), int(head[2].split("=")[1])
        x = np.frombuffer(f.read(rows * cols * 4), "<f4").reshape(rows, cols).copy()
        y = np.frombuffer(f.read(rows * 4), "<f4").copy()
    ntrain = rows * 8 // 10
    mean, sd = x[:ntrain].mean(0), x[:ntrain].std(0)
    x = (x - mean) / sd
    xt, yt = torch.from_numpy(x[:ntrain]), torch.from_numpy(y[:ntrain]).view(-1, 1)
    model = kn_torch.MLP(cols, [256, 256], 1, act)
    opt = kn_torch.adamw(model, 1e-3, 0.01)
    g = torch.Generator().manual_seed(1)
    t = c = 0.0
    for e in range(epochs):
        t0, c0 = time.perf_counter(), time.process_time()
        perm = torch.randperm(ntrain, generator=g)
        for s in range(0, ntrain, batch):
            idx = perm[s:s + batch]
            opt.zero_grad()
            with autocast(precision):
                out = model(xt[idx])
            loss = torch.nn.functional.binary_cross_entropy_with_logits(out.float(), yt[idx])
            loss.backward()
            opt.step()
        t += time.perf_counter() - t0
        c += time.process_time() - c0
    with torch.no_grad(), autocast(precision):
        p = torch.sigmoid(model(torch.from_numpy(x[ntrain:])).float()).numpy().ravel()
    print(f"pytorch mlp {cols}->256->256->1 {act} {precision} batch {batch} threads {threads}: "
          f"{ntrain * epochs / t:.0f} samples/s over {epochs} epochs ({t:.1f} s), "
          f"{ntrain * epochs / c:.0f} samples per CPU-second, val AUC {auc(p, y[ntrain:]):.4f}")


def transformer(threads, steps, precision="fp32"):
    torch.set_num_threads(threads)
    torch.manual_seed(1)
    B, T, n_in = 32, 64, 16
    model = kn_torch.Transformer(n_in, 1, T, 128, 4, 4, 512, "gelu", "mean")
    opt = kn_torch.adamw(model, 1e-3, 0.01)
    x = torch.rand(B, T * n_in) * 2 - 1
    y = (torch.arange(B) % 2).float().view(-1, 1)

    def step():
        opt.zero_grad()
        with autocast(precision):
            out = model(x)
        loss = torch.nn.functional.binary_cross_entropy_with_logits(out.float(), y)
        loss.backward()
        opt.step()
        return loss
    step()
    t0, c0 = time.perf_counter(), time.process_time()
    for _ in range(steps):
        loss = step()
    t, c = time.perf_counter() - t0, time.process_time() - c0
    print(f"pytorch transformer {precision} window {T} width 128 heads 4 layers 4 d_ff 512 batch {B} "
          f"threads {threads}: {steps * B * T / t:.0f} tokens/s ({steps} steps, {t:.2f} s), "
          f"{steps * B * T / c:.0f} tokens per CPU-second, loss {loss.item():.4f}")


if __name__ == "__main__":
    if sys.argv[1] == "data":
        x, y = kn_torch.make_dataset()
        kn_torch.write_dataset(sys.argv[2], x, y)
    elif sys.argv[-1] == "bf16" and not autocast_usable():
        pass
    elif sys.argv[1] == "mlp":
        mlp(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6],
            sys.argv[7] if len(sys.argv) > 7 else "fp32")
    else:
        transformer(int(sys.argv[2]), int(sys.argv[3]), sys.argv[4] if len(sys.argv) > 4 else "fp32")
