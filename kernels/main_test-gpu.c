/*  test-gpu - every GPU kernel against the CPU reference (make test-gpu).

    For each backend operation: the same random inputs through kn_cpu and
    kn_gpu, compared element by element with |gpu - cpu| <= abs + rel * |cpu|
    (tolerances per kernel below: matrix products and reductions reorder
    additions; nvcc contracts a*b+c into FMAs; device erff/expf differ from
    glibc's by an ulp or two). Then whole models: loss, every gradient, a few
    AdamW steps and predictions; a GPU out-of-memory that must come back as
    an error; a one-rank NCCL group (the all-reduce path) when NCCL can start;
    a two-rank group whose peer never arrives (init must fail at its deadline);
    with two GPUs, two ranks as threads of one process all-reducing.

    Exit 0 all passed, 1 some failed, 77 skipped: no usable GPU (the message
    says why; the CUDA code was still compiled and linked).
*/
#include <math.h>
#include <pthread.h>
#include <time.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "kn_model.h"
#include "lb_mem.h"

#ifdef KN_HAVE_CUDA

typedef struct {
    kn_backend_t *cpu, *gpu;
    uint64_t rng;
    int checks, fails;
    bool verbose;
} s_ctx_t;

static float
s_rand (s_ctx_t *c, float lo, float hi)
{
    uint64_t z = (c->rng += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return lo + (hi - lo) * (float) ((double) (z >> 11) / 9007199254740992.0);
}

//  A host buffer of n random floats in [lo, hi] (caller frees).
static float *
s_host (s_ctx_t *c, size_t n, float lo, float hi)
{
    float *h = (float *) lb_xcalloc (n ? n : 1, sizeof (float));
    for (size_t i = 0; i < n; i++)
        h [i] = s_rand (c, lo, hi);
    return h;
}

//  A device copy of host (n floats); NULL (and counted as a failure) on error.
static float *
s_dev (s_ctx_t *c, const float *host, size_t n)
{
    float *d = c->gpu->alloc (c->gpu, n);
    if (!d || c->gpu->upload (c->gpu, d, host, n)) {
        fprintf (stderr, "test-gpu: cannot place %zu floats on the GPU: %s\n", n, c->gpu->error);
        exit (1);
    }
    return d;
}

//  Compares the device buffer with the CPU result; frees the device buffer.
static void
s_cmp (s_ctx_t *c, const char *what, float *dev, const float *ref, size_t n, double abs_tol,
       double rel_tol)
{
    float *got = (float *) lb_xcalloc (n ? n : 1, sizeof (float));
    int rc = c->gpu->download (c->gpu, got, dev, n) || kn_backend_sync (c->gpu);
    double worst = 0;
    size_t bad = 0, at = 0;
    for (size_t i = 0; !rc && i < n; i++) {
        double d = fabs ((double) got [i] - ref [i]);
        double lim = abs_tol + rel_tol * fabs ((double) ref [i]);
        if (!(d <= lim)) {
            if (!bad)
                at = i;
            bad++;
        }
        if (d / (lim > 0 ? lim : 1) > worst)
            worst = d / (lim > 0 ? lim : 1);
    }
    c->checks++;
    if (rc || bad) {
        c->fails++;
        if (rc)
            printf ("FAIL %-28s GPU error: %s\n", what, kn_backend_error (c->gpu));
        else
            printf ("FAIL %-28s %zu of %zu beyond abs %.0e + rel %.0e; first [%zu] gpu %.9g cpu %.9g\n",
                    what, bad, n, abs_tol, rel_tol, at, (double) got [at], (double) ref [at]);
    }
    else
        printf ("ok   %-28s n=%-8zu worst %.2f of tolerance (abs %.0e + rel %.0e)\n", what, n,
                worst, abs_tol, rel_tol);
    free (got);
    c->gpu->free (c->gpu, dev);
}

static void
s_test_ops (s_ctx_t *c)
{
    kn_backend_t *cpu = c->cpu, *gpu = c->gpu;
    enum { R = 300, C = 96, K = 80 };
    size_t rc = (size_t) R * C;

    //  gemm in all four transpose combinations, and batched
    for (int t = 0; t < 4; t++) {
        bool ta = t & 1, tb = t & 2;
        float *a = s_host (c, (size_t) R * K, -1, 1), *b = s_host (c, (size_t) K * C, -1, 1);
        float *out = s_host (c, rc, -1, 1);
        float *da = s_dev (c, a, (size_t) R * K), *db = s_dev (c, b, (size_t) K * C), *dc = s_dev (c, out, rc);
        int lda = ta ? R : K, ldb = tb ? K : C;
        cpu->gemm (cpu, ta, tb, R, C, K, 0.5f, a, lda, b, ldb, 0.25f, out, C);
        gpu->gemm (gpu, ta, tb, R, C, K, 0.5f, da, lda, db, ldb, 0.25f, dc, C);
        char name [32];
        snprintf (name, sizeof name, "gemm %s%s", ta ? "T" : "N", tb ? "T" : "N");
        s_cmp (c, name, dc, out, rc, 1e-5, 1e-5);
        gpu->free (gpu, da);
        gpu->free (gpu, db);
        free (a);
        free (b);
        free (out);
    }
    {
        int n = 4, m = 64, k = 32;
        size_t sz = (size_t) n * m * k;
        float *a = s_host (c, sz, -1, 1), *b = s_host (c, sz, -1, 1), *out = s_host (c, (size_t) n * m * m, 0, 0);
        float *da = s_dev (c, a, sz), *db = s_dev (c, b, sz), *dc = s_dev (c, out, (size_t) n * m * m);
        cpu->gemm_batched (cpu, false, true, m, m, k, 1.0f, a, k, (size_t) m * k, b, k, (size_t) m * k,
                           0.0f, out, m, (size_t) m * m, n);
        gpu->gemm_batched (gpu, false, true, m, m, k, 1.0f, da, k, (size_t) m * k, db, k, (size_t) m * k,
                           0.0f, dc, m, (size_t) m * m, n);
        s_cmp (c, "gemm_batched NT", dc, out, (size_t) n * m * m, 1e-5, 1e-5);
        //  as attention: 2 samples x 2 heads, head j's m x k/2 block at column j k/2
        dc = s_dev (c, out, (size_t) n * m * m);
        cpu->gemm_heads (cpu, false, true, m, m, k / 2, 1.0f, a, k, (size_t) m * k, (size_t) k / 2, b,
                         k, (size_t) m * k, (size_t) k / 2, 0.0f, out, m, 2 * (size_t) m * m,
                         (size_t) m * m, 2, 2);
        gpu->gemm_heads (gpu, false, true, m, m, k / 2, 1.0f, da, k, (size_t) m * k, (size_t) k / 2, db,
                         k, (size_t) m * k, (size_t) k / 2, 0.0f, dc, m, 2 * (size_t) m * m,
                         (size_t) m * m, 2, 2);
        s_cmp (c, "gemm_heads NT", dc, out, (size_t) n * m * m, 1e-5, 1e-5);
        gpu->free (gpu, da);
        gpu->free (gpu, db);
        free (a);
        free (b);
        free (out);
    }
    float *x = s_host (c, rc, -3, 3), *dy = s_host (c, rc, -1, 1), *y = s_host (c, rc, 0, 0);
    float *gamma = s_host (c, C, 0.5f, 1.5f), *beta = s_host (c, C, -0.5f, 0.5f);
    float *dx_ = s_dev (c, x, rc), *ddy = s_dev (c, dy, rc), *dgam = s_dev (c, gamma, C), *dbet = s_dev (c, beta, C);

    //  element-wise
    {
        float *out = (float *) lb_xcalloc (rc, sizeof (float));
        memcpy (out, x, rc * sizeof (float));
        float *d = s_dev (c, x, rc);
        cpu->broadcast_add (cpu, out, gamma, R, C);
        gpu->broadcast_add (gpu, d, dgam, R, C);
        s_cmp (c, "broadcast_add (bias)", d, out, rc, 0, 0);
        memcpy (out, x, rc * sizeof (float));
        d = s_dev (c, x, rc);
        cpu->axpy (cpu, 0.5f, dy, out, rc);
        gpu->axpy (gpu, 0.5f, ddy, d, rc);
        s_cmp (c, "axpy", d, out, rc, 1e-7, 1e-6);
        memcpy (out, x, rc * sizeof (float));
        d = s_dev (c, x, rc);
        cpu->broadcast_add (cpu, out, dy, 3, (size_t) 100 * C);
        gpu->broadcast_add (gpu, d, ddy, 3, (size_t) 100 * C);
        s_cmp (c, "broadcast_add", d, out, rc, 0, 0);
        d = s_dev (c, y, rc);
        cpu->bias_rows (cpu, x, gamma, out, R, C);
        gpu->bias_rows (gpu, dx_, dgam, d, R, C);
        s_cmp (c, "bias_rows (residual + bias)", d, out, rc, 0, 0);
        d = s_dev (c, y, rc);
        cpu->bias_rows (cpu, NULL, gamma, out, R, C);
        gpu->bias_rows (gpu, NULL, dgam, d, R, C);
        s_cmp (c, "bias_rows (bias)", d, out, rc, 0, 0);
        for (int act = KN_ACT_RELU; act <= KN_ACT_GELU; act++) {
            d = s_dev (c, y, rc);
            cpu->act_fwd (cpu, act, x, out, rc);
            gpu->act_fwd (gpu, act, dx_, d, rc);
            s_cmp (c, act == KN_ACT_RELU ? "act_fwd relu" : "act_fwd gelu", d, out, rc, 1e-6, 2e-6);
            d = s_dev (c, y, rc);
            cpu->act_bwd (cpu, act, x, dy, out, rc);
            gpu->act_bwd (gpu, act, dx_, ddy, d, rc);
            s_cmp (c, act == KN_ACT_RELU ? "act_bwd relu" : "act_bwd gelu", d, out, rc, 1e-6, 2e-6);
            //  fused with the column sums (a bias gradient, added to)
            float *cs = (float *) lb_xcalloc (C, sizeof (float));
            memcpy (cs, gamma, C * sizeof (float));
            float *dcs = s_dev (c, gamma, C);
            d = s_dev (c, y, rc);
            cpu->act_bwd_colsum (cpu, act, x, false, dy, out, R, C, cs);
            gpu->act_bwd_colsum (gpu, act, dx_, false, ddy, d, R, C, dcs);
            s_cmp (c, act == KN_ACT_RELU ? "act_bwd_colsum relu dx" : "act_bwd_colsum gelu dx", d, out,
                   rc, 1e-6, 2e-6);
            s_cmp (c, act == KN_ACT_RELU ? "act_bwd_colsum relu sums" : "act_bwd_colsum gelu sums", dcs,
                   cs, C, 1e-5, 1e-5);
            //  the training forward's derivative, and the backward from it
            float *grad = (float *) lb_xcalloc (rc, sizeof (float));
            float *dgrad = s_dev (c, y, rc);
            d = s_dev (c, y, rc);
            cpu->act_fwd_grad (cpu, act, x, out, grad, rc);
            gpu->act_fwd_grad (gpu, act, dx_, d, dgrad, rc);
            s_cmp (c, act == KN_ACT_RELU ? "act_fwd_grad relu y" : "act_fwd_grad gelu y", d, out, rc, 1e-6, 2e-6);
            float *dg2 = s_dev (c, grad, rc);
            s_cmp (c, act == KN_ACT_RELU ? "act_fwd_grad relu grad" : "act_fwd_grad gelu grad", dgrad, grad,
                   rc, 1e-6, 2e-6);
            memcpy (cs, gamma, C * sizeof (float));
            dcs = s_dev (c, gamma, C);
            d = s_dev (c, y, rc);
            cpu->act_bwd_colsum (cpu, act, grad, true, dy, out, R, C, cs);
            gpu->act_bwd_colsum (gpu, act, dg2, true, ddy, d, R, C, dcs);
            s_cmp (c, "act_bwd_colsum from grad dx", d, out, rc, 1e-7, 1e-6);
            s_cmp (c, "act_bwd_colsum from grad sums", dcs, cs, C, 1e-5, 1e-5);
            gpu->free (gpu, dg2);
            free (grad);
            free (cs);
        }
        d = s_dev (c, y, rc);
        cpu->dropout (cpu, x, out, rc, 0.3f, 12345);
        gpu->dropout (gpu, dx_, d, rc, 0.3f, 12345);
        s_cmp (c, "dropout (same mask)", d, out, rc, 0, 1e-6);
        d = s_dev (c, y, rc);
        cpu->copy_rows (cpu, x, C, out, C / 2, R, C / 2);
        gpu->copy_rows (gpu, dx_, C, d, C / 2, R, C / 2);
        s_cmp (c, "copy_rows", d, out, rc / 2, 0, 0);
        free (out);
    }
    //  reductions and rows
    {
        float *out = (float *) lb_xcalloc (rc, sizeof (float));
        float *mean = (float *) lb_xcalloc (R, sizeof (float)), *rstd = (float *) lb_xcalloc (R, sizeof (float));
        float *d = s_dev (c, gamma, C);
        memcpy (out, gamma, C * sizeof (float));
        cpu->colsum (cpu, x, out, R, C, C, 0.5f);
        gpu->colsum (gpu, dx_, d, R, C, C, 0.5f);
        s_cmp (c, "colsum", d, out, C, 1e-5, 1e-6);
        float *dm = s_dev (c, mean, R), *dr = s_dev (c, rstd, R);
        d = s_dev (c, y, rc);
        cpu->layernorm_fwd (cpu, x, gamma, beta, out, mean, rstd, R, C);
        gpu->layernorm_fwd (gpu, dx_, dgam, dbet, d, dm, dr, R, C);
        s_cmp (c, "layernorm_fwd", d, out, rc, 1e-5, 1e-5);
        float *dmc = s_dev (c, mean, R), *drc = s_dev (c, rstd, R);   //  bwd from the CPU's stats
        s_cmp (c, "layernorm_fwd mean", dm, mean, R, 1e-6, 1e-5);
        s_cmp (c, "layernorm_fwd rstd", dr, rstd, R, 1e-6, 1e-5);
        float *dg = (float *) lb_xcalloc (C, sizeof (float)), *db = (float *) lb_xcalloc (C, sizeof (float));
        float *ddg = s_dev (c, dg, C), *ddb = s_dev (c, db, C);
        d = s_dev (c, y, rc);
        cpu->layernorm_bwd (cpu, dy, x, gamma, mean, rstd, out, dg, db, R, C, false);
        gpu->layernorm_bwd (gpu, ddy, dx_, dgam, dmc, drc, d, ddg, ddb, R, C, false);
        s_cmp (c, "layernorm_bwd dx", d, out, rc, 1e-5, 1e-5);
        {
            //  add_dx: the gradient added to what dx held (a residual stream)
            float *acc = (float *) lb_xcalloc (rc, sizeof (float)), *scratch = (float *) lb_xcalloc (C, sizeof (float));
            memcpy (acc, x, rc * sizeof (float));
            float *dacc = s_dev (c, x, rc), *dsg = s_dev (c, scratch, C), *dsb = s_dev (c, scratch, C);
            float *sg = (float *) lb_xcalloc (C, sizeof (float)), *sb = (float *) lb_xcalloc (C, sizeof (float));
            cpu->layernorm_bwd (cpu, dy, x, gamma, mean, rstd, acc, sg, sb, R, C, true);
            gpu->layernorm_bwd (gpu, ddy, dx_, dgam, dmc, drc, dacc, dsg, dsb, R, C, true);
            s_cmp (c, "layernorm_bwd dx added", dacc, acc, rc, 1e-5, 1e-5);
            gpu->free (gpu, dsg);
            gpu->free (gpu, dsb);
            free (acc);
            free (scratch);
            free (sg);
            free (sb);
        }
        s_cmp (c, "layernorm_bwd dgamma", ddg, dg, C, 1e-4, 1e-5);
        s_cmp (c, "layernorm_bwd dbeta", ddb, db, C, 1e-4, 1e-5);
        gpu->free (gpu, dmc);
        gpu->free (gpu, drc);
        d = s_dev (c, y, rc);
        cpu->softmax_fwd (cpu, x, out, R, C, 0.7f);
        gpu->softmax_fwd (gpu, dx_, d, R, C, 0.7f);
        s_cmp (c, "softmax_fwd", d, out, rc, 1e-7, 1e-5);
        float *dp = s_dev (c, out, rc);
        float *back = (float *) lb_xcalloc (rc, sizeof (float));
        d = s_dev (c, y, rc);
        cpu->softmax_bwd (cpu, out, dy, back, R, C, 0.7f);
        gpu->softmax_bwd (gpu, dp, ddy, d, R, C, 0.7f);
        s_cmp (c, "softmax_bwd", d, back, rc, 1e-7, 1e-5);
        gpu->free (gpu, dp);
        //  mean pool over (B=4, T=25, D=96) = x's first 9600 floats
        d = s_dev (c, y, 4 * C);
        cpu->meanpool_fwd (cpu, x, out, 4, 25, C);
        gpu->meanpool_fwd (gpu, dx_, d, 4, 25, C);
        s_cmp (c, "meanpool_fwd", d, out, 4 * C, 1e-6, 1e-5);
        d = s_dev (c, y, (size_t) 100 * C);
        cpu->meanpool_bwd (cpu, dy, out, 4, 25, C);
        gpu->meanpool_bwd (gpu, ddy, d, 4, 25, C);
        s_cmp (c, "meanpool_bwd", d, out, (size_t) 100 * C, 0, 1e-6);
        free (mean);
        free (rstd);
        free (dg);
        free (db);
        free (back);
        free (out);
    }
    //  losses and predictions
    for (int task = KN_TASK_BINARY; task <= KN_TASK_REGRESSION; task++) {
        int k = task == KN_TASK_BINARY ? 1 : 5, ly = task == KN_TASK_REGRESSION ? k : 1;
        float *logits = s_host (c, (size_t) R * k, -6, 6), *lab = s_host (c, (size_t) R * ly, -1, 1);
        for (int i = 0; task != KN_TASK_REGRESSION && i < R; i++)
            lab [i] = (float) (i % k == 0 && task == KN_TASK_BINARY ? 1 : task == KN_TASK_BINARY ? 0 : i % k);
        float *dl = (float *) lb_xcalloc ((size_t) R * k, sizeof (float)), *ls = (float *) lb_xcalloc (R, sizeof (float));
        float *dlog = s_dev (c, logits, (size_t) R * k), *dlab = s_dev (c, lab, (size_t) R * ly);
        float *ddl = s_dev (c, dl, (size_t) R * k), *dls = s_dev (c, ls, R);
        cpu->loss (cpu, task, logits, lab, R, k, dl, ls, 1.0f / R);
        gpu->loss (gpu, task, dlog, dlab, R, k, ddl, dls, 1.0f / R);
        const char *tn = task == KN_TASK_BINARY ? "binary" : task == KN_TASK_MULTICLASS ? "multiclass" : "regression";
        char name [48];
        snprintf (name, sizeof name, "loss %s", tn);
        s_cmp (c, name, dls, ls, R, 1e-6, 1e-5);
        snprintf (name, sizeof name, "loss %s dlogits", tn);
        s_cmp (c, name, ddl, dl, (size_t) R * k, 1e-8, 1e-5);
        cpu->predict (cpu, task, logits, R, k);
        gpu->predict (gpu, task, dlog, R, k);
        snprintf (name, sizeof name, "predict %s", tn);
        s_cmp (c, name, dlog, logits, (size_t) R * k, 1e-7, 1e-5);
        gpu->free (gpu, dlab);
        free (logits);
        free (lab);
        free (dl);
        free (ls);
    }
    //  AdamW
    {
        float *p = s_host (c, rc, -1, 1), *g = s_host (c, rc, -1, 1), *m = s_host (c, rc, -0.1f, 0.1f);
        float *v = s_host (c, rc, 0, 0.01f);
        float *dp = s_dev (c, p, rc), *dg = s_dev (c, g, rc), *dm = s_dev (c, m, rc), *dv = s_dev (c, v, rc);
        cpu->adamw (cpu, p, g, m, v, rc, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 0.1f, 0.0316f);
        gpu->adamw (gpu, dp, dg, dm, dv, rc, 1e-3f, 0.9f, 0.999f, 1e-8f, 0.01f, 0.1f, 0.0316f);
        s_cmp (c, "adamw param", dp, p, rc, 1e-7, 1e-6);
        s_cmp (c, "adamw m", dm, m, rc, 1e-8, 1e-6);
        s_cmp (c, "adamw v", dv, v, rc, 1e-10, 1e-6);
        gpu->free (gpu, dg);
        free (p);
        free (g);
        free (m);
        free (v);
    }
    gpu->free (gpu, dx_);
    gpu->free (gpu, ddy);
    gpu->free (gpu, dgam);
    gpu->free (gpu, dbet);
    free (x);
    free (dy);
    free (y);
    free (gamma);
    free (beta);
}

//  Records a pass/fail line for a whole-model comparison.
static void
s_verdict (s_ctx_t *c, const char *what, double rel, double tol)
{
    c->checks++;
    bool ok = rel <= tol;
    if (!ok)
        c->fails++;
    printf ("%-4s %-28s max|gpu - cpu| / max|cpu| = %.2e (tolerance %.0e)\n", ok ? "ok" : "FAIL",
            what, rel, tol);
}

static double
s_rel (const float *a, const float *b, size_t n)
{
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        d = fmax (d, fabs ((double) a [i] - b [i]));
        m = fmax (m, fabs ((double) b [i]));
    }
    return m > 0 ? d / m : d;
}

static void
s_test_model (s_ctx_t *c, const char *what, const kn_config_t *cfg, kn_backend_t *gpu_be)
{
    char err [256];
    enum { B = 16 };
    kn_model_t *mc = kn_model_new (cfg, B, 5, c->cpu, err, sizeof err);
    kn_model_t *mg = kn_model_new (cfg, B, 5, gpu_be, err, sizeof err);
    if (!mc || !mg) {
        printf ("FAIL %-28s cannot build: %s\n", what, err);
        c->checks++, c->fails++;
        kn_model_destroy (&mc);
        kn_model_destroy (&mg);
        return;
    }
    size_t np = kn_model_n_params (mc), in = kn_model_in_size (mc), nl = kn_model_label_size (mc);
    float *x = s_host (c, B * in, -1.5f, 1.5f), *y = s_host (c, B * nl, -1, 1);
    for (int i = 0; cfg->task != KN_TASK_REGRESSION && i < B; i++)
        y [i] = (float) (i % cfg->n_out == 0 && cfg->task == KN_TASK_BINARY ? i % 2 : i % cfg->n_out);
    float *gc = (float *) lb_xcalloc (np, sizeof (float)), *gg = (float *) lb_xcalloc (np, sizeof (float));
    float lc, lg;
    char name [80];
    if (kn_model_loss_grad (mc, x, y, B, &lc) || kn_model_loss_grad (mg, x, y, B, &lg)
    ||  kn_model_get_grads (mc, gc) || kn_model_get_grads (mg, gg)) {
        printf ("FAIL %-28s %s | %s\n", what, kn_model_error (mc), kn_model_error (mg));
        c->checks++, c->fails++;
        goto out;
    }
    snprintf (name, sizeof name, "%s loss", what);
    s_verdict (c, name, fabs ((double) lc - lg) / fabs ((double) lc), 1e-5);
    for (int i = 0; i < kn_model_n_tensors (mc); i++) {
        kn_tensor_t t;
        kn_model_tensor (mc, i, &t);
        snprintf (name, sizeof name, "%s grad %s", what, t.name);
        s_verdict (c, name, s_rel (gg + t.offset, gc + t.offset, (size_t) t.rows * t.cols), 1e-4);
    }
    //  a few AdamW steps: compare the losses (parameters may part where a
    //  gradient is zero in exact arithmetic: Adam's step there is noise)
    kn_optim_t opt;
    kn_optim_defaults (&opt);
    double worst = 0;
    for (int s = 0; s < 5; s++) {
        if (kn_model_train_step (mc, &opt, x, y, B, &lc) || kn_model_train_step (mg, &opt, x, y, B, &lg)) {
            printf ("FAIL %-28s step: %s | %s\n", what, kn_model_error (mc), kn_model_error (mg));
            c->checks++, c->fails++;
            goto out;
        }
        worst = fmax (worst, fabs ((double) lc - lg) / fabs ((double) lc));
    }
    snprintf (name, sizeof name, "%s 5-step losses", what);
    s_verdict (c, name, worst, 1e-3);
    {
        size_t no = (size_t) B * cfg->n_out;
        float *pc = (float *) lb_xcalloc (no, sizeof (float)), *pg = (float *) lb_xcalloc (no, sizeof (float));
        if (kn_model_predict (mc, x, B, pc) == 0 && kn_model_predict (mg, x, B, pg) == 0) {
            snprintf (name, sizeof name, "%s predictions", what);
            s_verdict (c, name, s_rel (pg, pc, no), 1e-3);
        }
        else {
            printf ("FAIL %-28s predict: %s\n", what, kn_model_error (mg));
            c->checks++, c->fails++;
        }
        free (pc);
        free (pg);
    }
out:
    free (x);
    free (y);
    free (gc);
    free (gg);
    kn_model_destroy (&mc);
    kn_model_destroy (&mg);
}

//  NCCL groups (docs/train.md "Several GPUs"): a peer that never arrives
//  must fail rank 0's init at its deadline (one GPU is enough); with two
//  GPUs, two ranks as threads average a buffer to the same values.
typedef struct {
    const unsigned char *id;
    int rank;
    float out [4];
    char err [256];
    int rc;
} s_rank_t;

static void *
s_rank_thread (void *arg)
{
    s_rank_t *r = arg;
    r->rc = -1;
    kn_backend_t *be = kn_gpu_new_nccl (r->rank, r->id, 2, r->rank, 30000, r->err, sizeof r->err);
    if (!be)
        return NULL;
    float host [4] = { (float) r->rank + 1, 2, -4.0f * (float) r->rank, 1e-3f };
    float *dev = be->alloc (be, 4);
    if (dev && be->upload (be, dev, host, 4) == 0 && be->allreduce_mean (be, dev, 4) == 0
    &&  be->download (be, r->out, dev, 4) == 0 && kn_backend_sync (be) == 0)
        r->rc = 0;
    else
        snprintf (r->err, sizeof r->err, "%s", kn_backend_error (be));
    if (dev)
        be->free (be, dev);
    kn_backend_destroy (&be);
    return NULL;
}

static void
s_test_groups (s_ctx_t *c)
{
    char err [256] = "";
    unsigned char id [KN_NCCL_ID_BYTES];
    struct timespec t0, t1;
    clock_gettime (CLOCK_MONOTONIC, &t0);
    kn_backend_t *lone = NULL;
    if (kn_gpu_nccl_id (id, err, sizeof err) == 0)
        lone = kn_gpu_new_nccl (0, id, 2, 0, 2000, err, sizeof err);
    clock_gettime (CLOCK_MONOTONIC, &t1);
    double took = (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) * 1e-9;
    bool ok = lone == NULL && strstr (err, "no progress within 2000 ms") && took < 30;
    c->checks++;
    c->fails += !ok;
    printf ("%-4s %-28s %.1f s: %s\n", ok ? "ok" : "FAIL", "nccl peer never arrives", took, err);
    kn_backend_destroy (&lone);

    char why [200];
    if (kn_gpu_count (why, sizeof why) < 2) {
        printf ("skip %-28s one GPU here\n", "nccl 2 ranks as threads");
        return;
    }
    if (kn_gpu_nccl_id (id, err, sizeof err)) {
        c->checks++, c->fails++;
        printf ("FAIL %-28s %s\n", "nccl 2 ranks as threads", err);
        return;
    }
    s_rank_t ranks [2] = { { .id = id, .rank = 0 }, { .id = id, .rank = 1 } };
    pthread_t thread;
    pthread_create (&thread, NULL, s_rank_thread, &ranks [1]);
    s_rank_thread (&ranks [0]);
    pthread_join (thread, NULL);
    const float want [4] = { 1.5f, 2, -2, 1e-3f };
    ok = ranks [0].rc == 0 && ranks [1].rc == 0;
    for (int i = 0; i < 4 && ok; i++)
        ok = fabsf (ranks [0].out [i] - want [i]) <= 1e-6f * (1 + fabsf (want [i]))
          && memcmp (&ranks [0].out [i], &ranks [1].out [i], sizeof (float)) == 0;
    c->checks++;
    c->fails += !ok;
    printf ("%-4s %-28s %s%s\n", ok ? "ok" : "FAIL", "nccl 2 ranks as threads", ranks [0].err,
            ranks [1].err);
}

int
main (int argc, char **argv)
{
    s_ctx_t ctx = { .rng = 2024, .verbose = argc > 1 && strcmp (argv [1], "-v") == 0 };
    s_ctx_t *c = &ctx;
    char why [256], err [256];
    int count = kn_gpu_count (why, sizeof why);
    if (count == 0) {
        printf ("SKIP test-gpu: no usable GPU here (%s). The CUDA kernels were compiled and "
                "linked but not run; run `make test-gpu` on a GPU host.\n", why);
        return 77;
    }
    c->cpu = kn_cpu_new (2);
    c->gpu = kn_gpu_new (0, err, sizeof err);
    if (!c->gpu) {
        printf ("FAIL test-gpu: %d GPU(s) reported but the backend did not start: %s\n", count, err);
        return 1;
    }
    printf ("test-gpu: %d GPU(s); comparing %s with the CPU reference\n", count, c->gpu->name);
    s_test_ops (c);

    kn_config_t mlp, tf;
    kn_config_defaults (&mlp);
    mlp.n_in = 16;
    mlp.hidden [0] = 64;
    mlp.hidden [1] = 32;
    mlp.layernorm = true;
    mlp.dropout = 0.1f;
    s_test_model (c, "mlp", &mlp, c->gpu);
    mlp.task = KN_TASK_MULTICLASS;
    mlp.n_out = 3;
    mlp.act = KN_ACT_RELU;
    s_test_model (c, "mlp multiclass relu", &mlp, c->gpu);
    kn_config_defaults (&tf);
    tf.arch = KN_ARCH_TRANSFORMER;
    tf.n_in = 8;
    tf.window = 16;
    tf.d_model = 32;
    tf.n_heads = 4;
    tf.n_layers = 2;
    tf.d_ff = 64;
    tf.dropout = 0.1f;
    s_test_model (c, "transformer", &tf, c->gpu);
    tf.task = KN_TASK_REGRESSION;
    tf.n_out = 2;
    tf.pool = KN_POOL_LAST;
    s_test_model (c, "transformer regression last", &tf, c->gpu);

    //  out of memory comes back as an error, and the backend still works
    {
        kn_config_t big = mlp;
        big.hidden [0] = big.hidden [1] = 4096;
        kn_model_t *m = kn_model_new (&big, 1 << 22, 1, c->gpu, err, sizeof err);
        bool ok = m == NULL && strstr (err, "cudaMalloc") && kn_backend_sync (c->gpu) == 0;
        c->checks++;
        c->fails += !ok;
        printf ("%-4s %-28s %s\n", ok ? "ok" : "FAIL", "out-of-memory reported", m ? "model was built?" : err);
        kn_model_destroy (&m);
    }

    //  NCCL: a group of one rank exercises the all-reduce path
    {
        unsigned char id [KN_NCCL_ID_BYTES];
        kn_backend_t *nb = NULL;
        if (kn_gpu_nccl_id (id, err, sizeof err) == 0)
            nb = kn_gpu_new_nccl (0, id, 1, 0, 30000, err, sizeof err);
        if (nb) {
            s_test_model (c, "mlp nccl 1 rank", &mlp, nb);
            kn_backend_destroy (&nb);
        }
        else {
            c->checks++, c->fails++;
            printf ("FAIL %-28s %s\n", "nccl 1 rank", err);
        }
    }
    s_test_groups (c);
    printf ("test-gpu: %d checks, %d failed\n", c->checks, c->fails);
    kn_backend_destroy (&c->gpu);
    kn_backend_destroy (&c->cpu);
    return c->fails ? 1 : 0;
}

#else

int
main (void)
{
    printf ("SKIP test-gpu: no usable GPU here (built without CUDA: nvcc was not found when "
            "this was compiled, so the CUDA kernels were not even built)\n");
    return 77;
}

#endif
