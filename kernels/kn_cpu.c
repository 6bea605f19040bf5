/*  kn_cpu.c - the CPU backend: the reference every other path is checked against.

    Matrix products go to OpenBLAS (cblas_sgemm); everything else is an
    OpenMP loop over the kn_math.h bodies, statically scheduled, one owner
    per output element, so results do not depend on timing.
*/
//  Floating-point comparisons may not trap here (we never enable FP exceptions):
//  without this GCC will not if-convert the selects in the kn_math.h bodies,
//  so loops over GELU, exp and the clamps stay scalar. Rounding is unchanged.
//  (The Makefile adds -fno-math-errno for kernels/, so sqrtf vectorises.)
//  It comes first so that the inline bodies get the same options (GCC will
//  not inline across different ones).
#pragma GCC optimize ("no-trapping-math")

#include "kn_backend.h"
#include "kn_gemm.h"
#include "kn_math.h"

#include <assert.h>
#include <cblas.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb_mem.h"


//  Below this many elements a loop runs on one thread (fork/join costs more).
//  Each user declares `int nt` (threads) and `size_t work` (elements touched).
#define S_OMP_FOR _Pragma ("omp parallel for schedule(static) num_threads(nt) if(work >= 16384)")
//  The same for element-wise loops, vectorised (-O2 alone leaves loops of
//  unknown length scalar). Element-wise: no sum is reordered.
#define S_OMP_FOR_SIMD _Pragma ("omp parallel for simd schedule(static) num_threads(nt) if(work >= 16384)")

static void
s_destroy (kn_backend_t **self_p)
{
    kn_gemm_t *gemm = (kn_gemm_t *) (*self_p)->impl;     //  the bf16 products' state
    kn_gemm_destroy (&gemm);
    free (*self_p);
    *self_p = NULL;
}

static float *
s_alloc (kn_backend_t *self, size_t n)
{
    (void) self;
    return (float *) lb_xcalloc (n ? n : 1, sizeof (float));
}

static void
s_free (kn_backend_t *self, float *buf)
{
    (void) self;
    free (buf);
}

static int
s_copy (kn_backend_t *self, float *dst, const float *src, size_t n)
{
    (void) self;
    if (n)
        memcpy (dst, src, n * sizeof (float));
    return 0;
}

static void
s_zero (kn_backend_t *self, float *buf, size_t n)
{
    (void) self;
    if (n)
        memset (buf, 0, n * sizeof (float));
}

static int
s_sync (kn_backend_t *self)
{
    return self->error [0] ? -1 : 0;
}

//  OpenBLAS runs single-threaded (kn_cpu_new) and we split products across
//  our OpenMP threads: OpenBLAS's own pthreads and OpenMP's spinning workers
//  fought over the cores (8x slower on 2 cores). Each thread computes whole
//  output elements over the full k, so the split does not change any sum.
static void
s_gemm_1 (bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda,
          const float *b, int ldb, float beta, float *c, int ldc)
{
    cblas_sgemm (CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                 m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

static void
s_gemm (kn_backend_t *self, bool ta, bool tb, int m, int n, int k, float alpha, const float *a,
        int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    int nt = self->threads;
    bool split_m = m >= n;
    int len = split_m ? m : n;
    if (nt == 1 || (double) m * n * k < 262144.0 || len < 2 * nt) {
        s_gemm_1 (ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
        return;
    }
    #pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num (), tn = omp_get_num_threads ();
        //  chunks rounded to 16 rows/columns keep the BLAS kernels on full tiles
        int chunk = ((len + tn - 1) / tn + 15) / 16 * 16;
        int lo = t * chunk, hi = lo + chunk < len ? lo + chunk : len;
        if (hi > lo) {
            if (split_m)
                s_gemm_1 (ta, tb, hi - lo, n, k, alpha, ta ? a + lo : a + (size_t) lo * lda, lda,
                          b, ldb, beta, c + (size_t) lo * ldc, ldc);
            else
                s_gemm_1 (ta, tb, m, hi - lo, k, alpha, a, lda,
                          tb ? b + (size_t) lo * ldb : b + lo, ldb, beta, c + lo, ldc);
        }
    }
}

//  One parallel loop over all count x heads products (one fork/join, not one
//  per head), each product whole on one thread.
static void
s_gemm_heads (kn_backend_t *self, bool ta, bool tb, int m, int n, int k, float alpha,
              const float *a, int lda, size_t sa, size_t ha, const float *b, int ldb, size_t sb,
              size_t hb, float beta, float *c, int ldc, size_t sc, size_t hc, int count,
              int heads)
{
    int nt = self->threads, total = count * heads;
    size_t work = (size_t) m * n * k * total / 16;
    S_OMP_FOR
    for (int i = 0; i < total; i++) {
        int s = i / heads, j = i % heads;
        s_gemm_1 (ta, tb, m, n, k, alpha, a + s * sa + j * ha, lda, b + s * sb + j * hb, ldb,
                  beta, c + s * sc + j * hc, ldc);
    }
}

static void
s_gemm_batched (kn_backend_t *self, bool ta, bool tb, int m, int n, int k, float alpha,
                const float *a, int lda, size_t sa, const float *b, int ldb, size_t sb,
                float beta, float *c, int ldc, size_t sc, int count)
{
    s_gemm_heads (self, ta, tb, m, n, k, alpha, a, lda, sa, 0, b, ldb, sb, 0, beta, c, ldc, sc, 0,
                  count, 1);
}

//  bf16 products: kn_gemm does its own packing and thread split.
static void
s_gemm_bf16 (kn_backend_t *self, bool ta, bool tb, int m, int n, int k, float alpha,
             const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    kn_gemm_bf16 ((kn_gemm_t *) self->impl, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

static void
s_gemm_heads_bf16 (kn_backend_t *self, bool ta, bool tb, int m, int n, int k, float alpha,
                   const float *a, int lda, size_t sa, size_t ha, const float *b, int ldb,
                   size_t sb, size_t hb, float beta, float *c, int ldc, size_t sc, size_t hc,
                   int count, int heads)
{
    kn_gemm_bf16_heads ((kn_gemm_t *) self->impl, ta, tb, m, n, k, alpha, a, lda, sa, ha, b, ldb,
                        sb, hb, beta, c, ldc, sc, hc, count, heads);
}

//  [lo, hi) of n for thread t of tn, in blocks of 16 elements.
static void
s_range (size_t n, int t, int tn, size_t *lo, size_t *hi)
{
    size_t chunk = ((n + (size_t) tn - 1) / (size_t) tn + 15) / 16 * 16;
    *lo = (size_t) t * chunk < n ? (size_t) t * chunk : n;
    *hi = *lo + chunk < n ? *lo + chunk : n;
}

//  Column sums with rows outer and columns inner (vectorised, cache-friendly):
//  each thread owns a range of columns and adds rows in order, so every
//  column is summed in exactly kn_colsum's order (the GPU's).
static void
s_colsum (kn_backend_t *self, const float *a, float *out, int rows, int cols, int ld, float beta)
{
    int nt = self->threads;
    size_t work = (size_t) rows * cols;
    #pragma omp parallel num_threads(nt) if(work >= 16384)
    {
        size_t lo, hi;
        s_range ((size_t) cols, omp_get_thread_num (), omp_get_num_threads (), &lo, &hi);
        if (hi > lo) {
            float *acc = (float *) lb_xcalloc (hi - lo, sizeof (float));
            for (int r = 0; r < rows; r++) {
                const float *row = a + (size_t) r * ld;
                #pragma omp simd
                for (size_t c = lo; c < hi; c++)
                    acc [c - lo] += row [c];
            }
            for (size_t c = lo; c < hi; c++)
                out [c] = (beta == 0.0f ? 0.0f : beta * out [c]) + acc [c - lo];
            free (acc);
        }
    }
}

//  The element and row loops get x86-64-v4 (AVX-512) and v3 (AVX2 + FMA)
//  clones, picked at load time by what the CPU has (the baseline SSE2 one
//  runs everywhere else). The compiler contracts nothing (-std=c11), the
//  bodies' fmaf is exact on every path and row sums add in kn_math.h's fixed
//  lanes: every clone gives the same bits, so results do not depend on the
//  machine.
#define S_CLONES __attribute__ ((target_clones ("arch=x86-64-v4", "arch=x86-64-v3", "default")))

S_CLONES static void
s_gelu_fwd_range (const float *x, float *y, size_t lo, size_t hi)
{
    #pragma omp simd
    for (size_t i = lo; i < hi; i++)
        y [i] = kn_act_fwd (KN_ACT_GELU, x [i]);
}

S_CLONES static void
s_gelu_bwd_range (const float *x, const float *dy, float *dx, size_t lo, size_t hi)
{
    #pragma omp simd
    for (size_t i = lo; i < hi; i++)
        dx [i] = kn_act_bwd (KN_ACT_GELU, x [i], dy [i]);
}

//  One loop per activation, so each is a straight (vectorised, branch-free)
//  loop over the kn_math.h body with a constant act.
static void
s_act_fwd (kn_backend_t *self, int act, const float *x, float *y, size_t n)
{
    int nt = self->threads;
    size_t work = n * (act == KN_ACT_GELU ? 16 : 1);
    if (act == KN_ACT_GELU) {
        #pragma omp parallel num_threads(nt) if(work >= 16384)
        {
            size_t lo, hi;
            s_range (n, omp_get_thread_num (), omp_get_num_threads (), &lo, &hi);
            s_gelu_fwd_range (x, y, lo, hi);
        }
    }
    else {
        S_OMP_FOR_SIMD
        for (size_t i = 0; i < n; i++)
            y [i] = kn_act_fwd (KN_ACT_RELU, x [i]);
    }
}

static void
s_act_bwd (kn_backend_t *self, int act, const float *x, const float *dy, float *dx, size_t n)
{
    int nt = self->threads;
    size_t work = n * (act == KN_ACT_GELU ? 16 : 1);
    if (act == KN_ACT_GELU) {
        #pragma omp parallel num_threads(nt) if(work >= 16384)
        {
            size_t lo, hi;
            s_range (n, omp_get_thread_num (), omp_get_num_threads (), &lo, &hi);
            s_gelu_bwd_range (x, dy, dx, lo, hi);
        }
    }
    else {
        S_OMP_FOR_SIMD
        for (size_t i = 0; i < n; i++)
            dx [i] = kn_act_bwd (KN_ACT_RELU, x [i], dy [i]);
    }
}

S_CLONES static void
s_act_fwd_grad_range (int act, const float *x, float *y, float *grad, size_t lo, size_t hi)
{
    if (act == KN_ACT_GELU) {
        #pragma omp simd
        for (size_t i = lo; i < hi; i++) {
            float gi;
            y [i] = kn_act_fwd_grad (KN_ACT_GELU, x [i], &gi);
            grad [i] = gi;
        }
    }
    else {
        #pragma omp simd
        for (size_t i = lo; i < hi; i++) {
            float gi;
            y [i] = kn_act_fwd_grad (KN_ACT_RELU, x [i], &gi);
            grad [i] = gi;
        }
    }
}

static void
s_act_fwd_grad (kn_backend_t *self, int act, const float *x, float *y, float *grad, size_t n)
{
    int nt = self->threads;
    size_t work = n * (act == KN_ACT_GELU ? 16 : 1);
    #pragma omp parallel num_threads(nt) if(work >= 16384)
    {
        size_t lo, hi;
        s_range (n, omp_get_thread_num (), omp_get_num_threads (), &lo, &hi);
        s_act_fwd_grad_range (act, x, y, grad, lo, hi);
    }
}

//  Columns [lo, hi) of act_bwd_colsum: every row's slice through the
//  activation's backward, then into the column sums (rows in order).
S_CLONES static void
s_act_bwd_cols (int act, const float *x, bool is_grad, const float *dy, float *dx, int rows,
                int cols, float *dbias, size_t lo, size_t hi)
{
    float *acc = (float *) lb_xcalloc (hi - lo, sizeof (float));
    for (int r = 0; r < rows; r++) {
        size_t o = (size_t) r * cols;
        const float *xr = x + o, *dyr = dy + o;
        float *dxr = dx + o;
        if (is_grad) {
            #pragma omp simd
            for (size_t c = lo; c < hi; c++) {
                dxr [c] = dyr [c] * xr [c];
                acc [c - lo] += dxr [c];
            }
        }
        else
        if (act == KN_ACT_GELU) {
            #pragma omp simd
            for (size_t c = lo; c < hi; c++) {
                dxr [c] = kn_act_bwd (KN_ACT_GELU, xr [c], dyr [c]);
                acc [c - lo] += dxr [c];
            }
        }
        else {
            #pragma omp simd
            for (size_t c = lo; c < hi; c++) {
                dxr [c] = kn_act_bwd (KN_ACT_RELU, xr [c], dyr [c]);
                acc [c - lo] += dxr [c];
            }
        }
    }
    for (size_t c = lo; c < hi; c++)
        dbias [c] += acc [c - lo];
    free (acc);
}

//  Each thread owns a range of columns over all rows, so every column sum
//  keeps kn_colsum's order whatever the split (dx stays element-wise).
static void
s_act_bwd_colsum (kn_backend_t *self, int act, const float *x, bool is_grad, const float *dy,
                  float *dx, int rows, int cols, float *dbias)
{
    int nt = self->threads;
    size_t work = (size_t) rows * cols * (act == KN_ACT_GELU && !is_grad ? 16 : 1);
    #pragma omp parallel num_threads(nt) if(work >= 16384)
    {
        size_t lo, hi;
        s_range ((size_t) cols, omp_get_thread_num (), omp_get_num_threads (), &lo, &hi);
        if (hi > lo)
            s_act_bwd_cols (act, x, is_grad, dy, dx, rows, cols, dbias, lo, hi);
    }
}

static void
s_dropout (kn_backend_t *self, const float *x, float *y, size_t n, float p, uint64_t seed)
{
    int nt = self->threads;
    size_t work = n;
    S_OMP_FOR_SIMD
    for (size_t i = 0; i < n; i++)
        y [i] = x [i] * kn_dropout_factor (seed, i, p);
}

S_CLONES static void
s_layernorm_fwd_rows (const float *x, const float *gamma, const float *beta, float *y,
                      float *mean, float *rstd, int cols, size_t lo, size_t hi)
{
    for (size_t r = lo; r < hi; r++)
        kn_layernorm_row_fwd (x + r * cols, gamma, beta, y + r * cols, mean + r, rstd + r, cols);
}

static void
s_layernorm_fwd (kn_backend_t *self, const float *x, const float *gamma, const float *beta,
                 float *y, float *mean, float *rstd, int rows, int cols)
{
    int nt = self->threads;
    size_t work = (size_t) rows * cols;
    #pragma omp parallel num_threads(nt) if(work >= 16384)
    {
        size_t lo, hi;
        s_range ((size_t) rows, omp_get_thread_num (), omp_get_num_threads (), &lo, &hi);
        s_layernorm_fwd_rows (x, gamma, beta, y, mean, rstd, cols, lo, hi);
    }
}

//  Block b of KN_LN_BLOCK rows: each row's dx, and the block's dgamma / dbeta
//  partial sums (part [c], part [cols + c]) while the row is in cache.
S_CLONES static void
s_layernorm_bwd_block (const float *dy, const float *x, const float *gamma, const float *mean,
                       const float *rstd, float *dx, int rows, int cols, bool add, int b,
                       float *part)
{
    float *sg = part, *sb = part + cols;
    int r1 = (b + 1) * KN_LN_BLOCK < rows ? (b + 1) * KN_LN_BLOCK : rows;
    for (int r = b * KN_LN_BLOCK; r < r1; r++) {
        size_t o = (size_t) r * cols;
        const float *dyr = dy + o, *xr = x + o;
        float m = mean [r], s = rstd [r];
        kn_layernorm_row_bwd (dyr, xr, gamma, m, s, dx + o, cols, add);
        #pragma omp simd
        for (int c = 0; c < cols; c++) {
            sg [c] += kn_layernorm_dgamma_term (dyr [c], xr [c], m, s);
            sb [c] += dyr [c];
        }
    }
}

//  One pass over dy and x: blocks of rows in parallel (dx, and per-block
//  partial sums), then the blocks' sums added in order per column, which is
//  kn_layernorm_col_bwd's order: the same bits with any number of threads.
static void
s_layernorm_bwd (kn_backend_t *self, const float *dy, const float *x, const float *gamma,
                 const float *mean, const float *rstd, float *dx, float *dgamma, float *dbeta,
                 int rows, int cols, bool add_dx)
{
    int nt = self->threads;
    size_t work = (size_t) rows * cols;
    int nb = (rows + KN_LN_BLOCK - 1) / KN_LN_BLOCK;
    float *part = (float *) lb_xcalloc ((size_t) nb * 2 * cols, sizeof (float));
    #pragma omp parallel num_threads(nt) if(work >= 16384)
    {
        #pragma omp for schedule(static)
        for (int b = 0; b < nb; b++)
            s_layernorm_bwd_block (dy, x, gamma, mean, rstd, dx, rows, cols, add_dx, b,
                                   part + (size_t) b * 2 * cols);
        size_t lo, hi;
        s_range ((size_t) cols, omp_get_thread_num (), omp_get_num_threads (), &lo, &hi);
        for (size_t c = lo; c < hi; c++) {
            float tg = 0, tb = 0;
            for (int b = 0; b < nb; b++) {
                tg += part [(size_t) b * 2 * cols + c];
                tb += part [(size_t) b * 2 * cols + cols + c];
            }
            dgamma [c] += tg;
            dbeta [c] += tb;
        }
    }
    free (part);
}

S_CLONES static void
s_softmax_fwd_rows (const float *x, float *y, int cols, float scale, size_t lo, size_t hi)
{
    for (size_t r = lo; r < hi; r++)
        kn_softmax_row_fwd (x + r * cols, y + r * cols, cols, scale);
}

S_CLONES static void
s_softmax_bwd_rows (const float *p, const float *dp, float *dx, int cols, float scale, size_t lo,
                    size_t hi)
{
    for (size_t r = lo; r < hi; r++)
        kn_softmax_row_bwd (p + r * cols, dp + r * cols, dx + r * cols, cols, scale);
}

static void
s_softmax_fwd (kn_backend_t *self, const float *x, float *y, int rows, int cols, float scale)
{
    int nt = self->threads;
    size_t work = (size_t) rows * cols;
    #pragma omp parallel num_threads(nt) if(work >= 16384)
    {
        size_t lo, hi;
        s_range ((size_t) rows, omp_get_thread_num (), omp_get_num_threads (), &lo, &hi);
        s_softmax_fwd_rows (x, y, cols, scale, lo, hi);
    }
}

static void
s_softmax_bwd (kn_backend_t *self, const float *p, const float *dp, float *dx, int rows,
               int cols, float scale)
{
    int nt = self->threads;
    size_t work = (size_t) rows * cols;
    #pragma omp parallel num_threads(nt) if(work >= 16384)
    {
        size_t lo, hi;
        s_range ((size_t) rows, omp_get_thread_num (), omp_get_num_threads (), &lo, &hi);
        s_softmax_bwd_rows (p, dp, dx, cols, scale, lo, hi);
    }
}

static void
s_axpy (kn_backend_t *self, float alpha, const float *x, float *y, size_t n)
{
    int nt = self->threads;
    size_t work = n;
    S_OMP_FOR_SIMD
    for (size_t i = 0; i < n; i++)
        y [i] = alpha * y [i] + x [i];
}

static void
s_broadcast_add (kn_backend_t *self, float *x, const float *add, int batch, size_t len)
{
    int nt = self->threads;
    size_t work = (size_t) batch * len;
    S_OMP_FOR
    for (int b = 0; b < batch; b++) {
        float *row = x + (size_t) b * len;
        #pragma omp simd
        for (size_t i = 0; i < len; i++)
            row [i] += add [i];
    }
}

static void
s_bias_rows (kn_backend_t *self, const float *x, const float *bias, float *y, int rows, int cols)
{
    int nt = self->threads;
    size_t work = (size_t) rows * cols;
    S_OMP_FOR
    for (int r = 0; r < rows; r++) {
        float *yr = y + (size_t) r * cols;
        if (x) {
            const float *xr = x + (size_t) r * cols;
            #pragma omp simd
            for (int c = 0; c < cols; c++)
                yr [c] = xr [c] + bias [c];
        }
        else
            memcpy (yr, bias, (size_t) cols * sizeof (float));
    }
}

static void
s_meanpool_fwd (kn_backend_t *self, const float *x, float *y, int b, int t, int d)
{
    int nt = self->threads;
    size_t work = (size_t) b * t * d;
    S_OMP_FOR
    for (int i = 0; i < b; i++)
        for (int c = 0; c < d; c++)
            y [(size_t) i * d + c] = kn_colsum (x + (size_t) i * t * d, t, d, c) / (float) t;
}

static void
s_meanpool_bwd (kn_backend_t *self, const float *dy, float *dx, int b, int t, int d)
{
    int nt = self->threads;
    size_t work = (size_t) b * t * d;
    S_OMP_FOR
    for (int i = 0; i < b; i++)
        for (int j = 0; j < t; j++)
            for (int c = 0; c < d; c++)
                dx [((size_t) i * t + j) * d + c] = dy [(size_t) i * d + c] / (float) t;
}

static void
s_copy_rows (kn_backend_t *self, const float *x, int lx, float *y, int ly, int rows, int cols)
{
    (void) self;
    for (int r = 0; r < rows; r++)
        memcpy (y + (size_t) r * ly, x + (size_t) r * lx, (size_t) cols * sizeof (float));
}

static void
s_loss (kn_backend_t *self, int task, const float *logits, const float *y, int rows, int n_out,
        float *dlogits, float *loss, float grad_scale)
{
    int nt = self->threads;
    int ly = task == KN_TASK_REGRESSION ? n_out : 1;
    size_t work = (size_t) rows * n_out * 8;
    S_OMP_FOR
    for (int r = 0; r < rows; r++)
        loss [r] = kn_loss_row (task, logits + (size_t) r * n_out, y + (size_t) r * ly, n_out,
                                dlogits + (size_t) r * n_out, grad_scale);
}

static void
s_predict (kn_backend_t *self, int task, float *logits, int rows, int n_out)
{
    int nt = self->threads;
    size_t work = (size_t) rows * n_out * 8;
    S_OMP_FOR
    for (int r = 0; r < rows; r++)
        kn_predict_row (task, logits + (size_t) r * n_out, n_out);
}

S_CLONES static void
s_adamw_range (float *p, const float *g, float *m, float *v, float lr, float b1, float b2,
               float eps, float wd, float bc1, float bc2_sqrt, size_t lo, size_t hi)
{
    #pragma omp simd
    for (size_t i = lo; i < hi; i++)
        kn_adamw_elem (p + i, g [i], m + i, v + i, lr, b1, b2, eps, wd, bc1, bc2_sqrt);
}

static void
s_adamw (kn_backend_t *self, float *p, const float *g, float *m, float *v, size_t n, float lr,
         float b1, float b2, float eps, float wd, float bc1, float bc2_sqrt)
{
    int nt = self->threads;
    size_t work = n;
    #pragma omp parallel num_threads(nt) if(work >= 16384)
    {
        size_t lo, hi;
        s_range (n, omp_get_thread_num (), omp_get_num_threads (), &lo, &hi);
        s_adamw_range (p, g, m, v, lr, b1, b2, eps, wd, bc1, bc2_sqrt, lo, hi);
    }
}

kn_backend_t *
kn_cpu_new (int threads)
{
    kn_backend_t *self = (kn_backend_t *) lb_xcalloc (1, sizeof *self);
    self->name = "cpu";
    self->threads = threads < 1 ? 1 : threads;
    self->nranks = 1;
    openblas_set_num_threads (1);       //  process-wide: see s_gemm
    self->destroy = s_destroy;
    self->alloc = s_alloc;
    self->free = s_free;
    self->upload = s_copy;
    self->download = s_copy;
    self->zero = s_zero;
    self->sync = s_sync;
    self->gemm = s_gemm;
    self->gemm_batched = s_gemm_batched;
    self->gemm_heads = s_gemm_heads;
    if (kn_gemm_supported ()) {         //  else NULL: models refuse precision bf16
        self->impl = kn_gemm_new (self->threads);
        self->gemm_bf16 = s_gemm_bf16;
        self->gemm_heads_bf16 = s_gemm_heads_bf16;
    }
    self->colsum = s_colsum;
    self->act_fwd = s_act_fwd;
    self->act_bwd = s_act_bwd;
    self->act_fwd_grad = s_act_fwd_grad;
    self->act_bwd_colsum = s_act_bwd_colsum;
    self->dropout = s_dropout;
    self->layernorm_fwd = s_layernorm_fwd;
    self->layernorm_bwd = s_layernorm_bwd;
    self->softmax_fwd = s_softmax_fwd;
    self->softmax_bwd = s_softmax_bwd;
    self->axpy = s_axpy;
    self->broadcast_add = s_broadcast_add;
    self->bias_rows = s_bias_rows;
    self->meanpool_fwd = s_meanpool_fwd;
    self->meanpool_bwd = s_meanpool_bwd;
    self->copy_rows = s_copy_rows;
    self->loss = s_loss;
    self->predict = s_predict;
    self->adamw = s_adamw;
    self->allreduce_mean = NULL;
    return self;
}

void
kn_backend_destroy (kn_backend_t **self_p)
{
    assert (self_p);
    if (*self_p)
        (*self_p)->destroy (self_p);
}

int
kn_backend_sync (kn_backend_t *self)
{
    assert (self);
    return self->sync (self);
}

const char *
kn_backend_error (const kn_backend_t *self)
{
    assert (self);
    return self->error;
}

// ---------------------------------------------------------------- selftest

//  Per-layer finite-difference checks: every op's backward against central
//  differences of L = sum (r * forward (input)) accumulated in float64.

typedef struct {
    kn_backend_t *be;
    int rows, cols, act, task;
    float *gamma, *beta, *w, *bias, *mean, *rstd, *aux;
} s_fd_t;

typedef void (s_fwd_fn) (s_fd_t *c, const float *in, float *out);

static double
s_fd_loss (s_fd_t *c, s_fwd_fn *fwd, const float *in, const float *r, float *out, size_t n_out)
{
    fwd (c, in, out);
    double sum = 0;
    for (size_t i = 0; i < n_out; i++)
        sum += (double) r [i] * out [i];
    return sum;
}

//  Compares analytic grad [n_in] of `in` (perturbed in place) with differences.
static void
s_fd_compare (const char *what, s_fd_t *c, s_fwd_fn *fwd, float *in, size_t n_in, const float *r,
              size_t n_out, const float *grad, double eps, double tol, bool verbose)
{
    float *out = (float *) lb_xcalloc (n_out, sizeof (float));
    //  error relative to the element, floored by the tensor's scale (float32
    //  forward passes leave ~1e-7 relative noise in each difference)
    double scale = 0;
    for (size_t i = 0; i < n_in; i++)
        scale = fmax (scale, fabs (grad [i]));
    double worst = 0;
    for (size_t i = 0; i < n_in; i++) {
        float keep = in [i];
        in [i] = (float) (keep + eps);
        double up = s_fd_loss (c, fwd, in, r, out, n_out);
        in [i] = (float) (keep - eps);
        double down = s_fd_loss (c, fwd, in, r, out, n_out);
        in [i] = keep;
        double fd = (up - down) / (2 * eps);
        double err = fabs (fd - grad [i]) / (fabs (fd) + 0.05 * scale + 1e-4);
        if (err > worst)
            worst = err;
        if (err > tol)
            fprintf (stderr, "kn_cpu: %s: d[%zu] analytic %.7g finite-difference %.7g\n", what, i,
                     (double) grad [i], fd);
        assert (err <= tol);
    }
    if (verbose)
        printf ("  %-24s %zu grads, worst relative error %.2e\n", what, n_in, worst);
    free (out);
}

static void
s_rand (float *x, size_t n, uint64_t *state, float lo, float hi)
{
    for (size_t i = 0; i < n; i++) {
        uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        x [i] = lo + (hi - lo) * (float) ((double) (z >> 11) / 9007199254740992.0);
    }
}

static void
s_fwd_act (s_fd_t *c, const float *in, float *out)
{
    c->be->act_fwd (c->be, c->act, in, out, (size_t) c->rows * c->cols);
}

static void
s_fwd_ln_x (s_fd_t *c, const float *in, float *out)
{
    c->be->layernorm_fwd (c->be, in, c->gamma, c->beta, out, c->mean, c->rstd, c->rows, c->cols);
}

static void
s_fwd_ln_gamma (s_fd_t *c, const float *in, float *out)
{
    c->be->layernorm_fwd (c->be, c->aux, in, c->beta, out, c->mean, c->rstd, c->rows, c->cols);
}

static void
s_fwd_ln_beta (s_fd_t *c, const float *in, float *out)
{
    c->be->layernorm_fwd (c->be, c->aux, c->gamma, in, out, c->mean, c->rstd, c->rows, c->cols);
}

static void
s_fwd_softmax (s_fd_t *c, const float *in, float *out)
{
    c->be->softmax_fwd (c->be, in, out, c->rows, c->cols, 0.7f);
}

//  Linear with W (cols_out x cols) and bias: out = in W^T + b.
static void
s_fwd_lin_x (s_fd_t *c, const float *in, float *out)
{
    int o = c->task;
    c->be->gemm (c->be, false, true, c->rows, o, c->cols, 1.0f, in, c->cols, c->w, c->cols, 0.0f, out, o);
    c->be->broadcast_add (c->be, out, c->bias, c->rows, (size_t) o);
}

static void
s_fwd_lin_w (s_fd_t *c, const float *in, float *out)
{
    int o = c->task;
    c->be->gemm (c->be, false, true, c->rows, o, c->cols, 1.0f, c->aux, c->cols, in, c->cols, 0.0f, out, o);
    c->be->broadcast_add (c->be, out, c->bias, c->rows, (size_t) o);
}

static void
s_fwd_lin_b (s_fd_t *c, const float *in, float *out)
{
    int o = c->task;
    c->be->gemm (c->be, false, true, c->rows, o, c->cols, 1.0f, c->aux, c->cols, c->w, c->cols, 0.0f, out, o);
    c->be->broadcast_add (c->be, out, in, c->rows, (size_t) o);
}

//  out [row] = loss of row (logits in, labels in c->aux).
static void
s_fwd_loss (s_fd_t *c, const float *in, float *out)
{
    float *scratch = (float *) lb_xcalloc ((size_t) c->rows * c->cols, sizeof (float));
    c->be->loss (c->be, c->task, in, c->aux, c->rows, c->cols, scratch, out, 1.0f);
    free (scratch);
}

static void
s_fwd_meanpool (s_fd_t *c, const float *in, float *out)
{
    //  rows = batch, cols = t * d with d = 3
    c->be->meanpool_fwd (c->be, in, out, c->rows, c->cols / 3, 3);
}

void
kn_cpu_test (bool verbose)
{
    if (verbose)
        printf ("\n");
    kn_backend_t *be = kn_cpu_new (2);
    assert (be && strcmp (kn_backend_error (be), "") == 0);
    uint64_t seed = 42;
    enum { R = 5, C = 7, O = 4, N = R * C };
    float x [N], y [N], r [N], g [N], gamma [C], beta [C], mean [R], rstd [R], dg [C], db [C];
    float w [O * C], bias [O], dw [O * C], dbias [O];
    s_fd_t c = { .be = be, .rows = R, .cols = C, .gamma = gamma, .beta = beta, .mean = mean,
                 .rstd = rstd };
    s_rand (r, N, &seed, -1, 1);

    //  activations (inputs kept away from ReLU's kink)
    for (int act = KN_ACT_RELU; act <= KN_ACT_GELU; act++) {
        s_rand (x, N, &seed, -3, 3);
        for (int i = 0; i < N; i++)
            if (fabsf (x [i]) < 0.05f)
                x [i] = 0.5f;
        c.act = act;
        be->act_bwd (be, act, x, r, g, N);
        s_fd_compare (act == KN_ACT_RELU ? "relu" : "gelu", &c, s_fwd_act, x, N, r, N, g, 1e-3, 2e-3, verbose);
    }
    //  the call-free exp and normal CDF against libm in double, over their range
    //  (below x = -5 the CDF is bounded absolutely: its relative error grows
    //  slowly with the rounding of x's own float value scaled by x^2)
    {
        double worst_exp = 0, worst_cdf = 0, worst_tail = 0;
        for (double v = -87.0; v <= 88.0; v += 0.0137) {
            float xf = (float) v;
            double ref = exp ((double) xf);
            worst_exp = fmax (worst_exp, fabs (kn_exp (xf) - ref) / ref);
        }
        for (double v = -12.0; v <= 12.0; v += 0.00173) {
            float xf = (float) v;
            double ref = 0.5 * erfc (-(double) xf / sqrt (2.0));
            double err = fabs (kn_normal_cdf (xf) - ref);
            if (v >= -5.0)
                worst_cdf = fmax (worst_cdf, err / ref);
            else
                worst_tail = fmax (worst_tail, err);
        }
        if (verbose)
            printf ("  kn_exp worst relative error %.2e; kn_normal_cdf %.2e relative (x >= -5), "
                    "%.2e absolute below\n", worst_exp, worst_cdf, worst_tail);
        assert (worst_exp < 4e-7 && worst_cdf < 1e-6 && worst_tail < 1e-12);
        assert (kn_exp (-200.0f) < 1e-37f && kn_exp (0.0f) == 1.0f);
    }
    //  GELU values against erf's definition at a few points
    assert (fabsf (kn_act_fwd (KN_ACT_GELU, 1.0f) - 0.8413447f) < 1e-6f);
    assert (fabsf (kn_act_fwd (KN_ACT_GELU, -2.0f) + 0.0455003f) < 1e-6f);

    //  the fused forms against the plain ops, bit for bit (same sums, same
    //  order): act_fwd_grad = act_fwd + act_bwd with dy = 1; act_bwd_colsum
    //  = act_bwd + colsum, from x or from the kept derivative
    for (int act = KN_ACT_RELU; act <= KN_ACT_GELU; act++) {
        float ones [N], y2 [N], gr [N], dx1 [N], dx2 [N], cs1 [C], cs2 [C];
        s_rand (x, N, &seed, -3, 3);
        for (int i = 0; i < N; i++)
            ones [i] = 1.0f;
        be->act_fwd (be, act, x, y, N);
        be->act_bwd (be, act, x, ones, g, N);
        be->act_fwd_grad (be, act, x, y2, gr, N);
        assert (memcmp (y, y2, sizeof y) == 0 && memcmp (g, gr, sizeof g) == 0);
        be->act_bwd (be, act, x, r, dx1, N);
        be->colsum (be, dx1, cs1, R, C, C, 0.0f);
        for (int k = 0; k < 2; k++) {
            for (int i = 0; i < C; i++)
                cs2 [i] = 0.5f;
            be->act_bwd_colsum (be, act, k ? gr : x, k == 1, r, dx2, R, C, cs2);
            for (int i = 0; i < N; i++)
                assert (dx1 [i] == dx2 [i]);
            for (int i = 0; i < C; i++)
                assert (cs2 [i] == 0.5f + cs1 [i]);
        }
    }

    //  layer norm: x, gamma, beta
    s_rand (x, N, &seed, -2, 2);
    s_rand (gamma, C, &seed, 0.5f, 1.5f);
    s_rand (beta, C, &seed, -0.5f, 0.5f);
    be->layernorm_fwd (be, x, gamma, beta, y, mean, rstd, R, C);
    memset (dg, 0, sizeof dg);
    memset (db, 0, sizeof db);
    be->layernorm_bwd (be, r, x, gamma, mean, rstd, g, dg, db, R, C, false);
    {
        //  add_dx adds the same dx to what was there; dgamma / dbeta add the
        //  same sums again (dg, db are kept: the checks below use them)
        float acc [N], dg2 [C], db2 [C];
        for (int i = 0; i < N; i++)
            acc [i] = 0.25f * (float) i;
        memcpy (dg2, dg, sizeof dg);
        memcpy (db2, db, sizeof db);
        be->layernorm_bwd (be, r, x, gamma, mean, rstd, acc, dg2, db2, R, C, true);
        for (int i = 0; i < N; i++)
            assert (acc [i] == 0.25f * (float) i + g [i]);
        for (int i = 0; i < C; i++)
            assert (dg2 [i] == 2 * dg [i] && db2 [i] == 2 * db [i]);
    }
    s_fd_compare ("layernorm dx", &c, s_fwd_ln_x, x, N, r, N, g, 1e-3, 5e-3, verbose);
    c.aux = x;
    s_fd_compare ("layernorm dgamma", &c, s_fwd_ln_gamma, gamma, C, r, N, dg, 1e-3, 5e-3, verbose);
    s_fd_compare ("layernorm dbeta", &c, s_fwd_ln_beta, beta, C, r, N, db, 1e-3, 5e-3, verbose);
    for (int row = 0; row < R; row++) {
        //  with gamma 1, beta 0 each row has mean 0, variance 1 (up to eps)
        float ones [C], zeros [C], out [C];
        for (int i = 0; i < C; i++)
            ones [i] = 1, zeros [i] = 0;
        float m1, s1;
        kn_layernorm_row_fwd (x + row * C, ones, zeros, out, &m1, &s1, C);
        double sm = 0, sv = 0;
        for (int i = 0; i < C; i++)
            sm += out [i], sv += (double) out [i] * out [i];
        assert (fabs (sm / C) < 1e-5 && fabs (sv / C - 1) < 1e-3);
    }

    //  softmax: rows sum to 1, gradient
    s_rand (x, N, &seed, -3, 3);
    be->softmax_fwd (be, x, y, R, C, 0.7f);
    for (int row = 0; row < R; row++) {
        double s = 0;
        for (int i = 0; i < C; i++)
            s += y [row * C + i];
        assert (fabs (s - 1) < 1e-6);
    }
    be->softmax_bwd (be, y, r, g, R, C, 0.7f);
    s_fd_compare ("softmax", &c, s_fwd_softmax, x, N, r, N, g, 1e-3, 5e-3, verbose);

    //  linear: gemm + broadcast_add forward, gemm + colsum backward
    s_rand (x, N, &seed, -1, 1);
    s_rand (w, O * C, &seed, -1, 1);
    s_rand (bias, O, &seed, -1, 1);
    c.w = w;
    c.bias = bias;
    c.task = O;
    float dx [N];
    be->gemm (be, true, false, O, C, R, 1.0f, r, O, x, C, 0.0f, dw, C);
    be->colsum (be, r, dbias, R, O, O, 0.0f);
    be->gemm (be, false, false, R, C, O, 1.0f, r, O, w, C, 0.0f, dx, C);
    s_fd_compare ("linear dx", &c, s_fwd_lin_x, x, N, r, R * O, dx, 1e-2, 2e-3, verbose);
    c.aux = x;
    s_fd_compare ("linear dW", &c, s_fwd_lin_w, w, O * C, r, R * O, dw, 1e-2, 2e-3, verbose);
    s_fd_compare ("linear db", &c, s_fwd_lin_b, bias, O, r, R * O, dbias, 1e-2, 2e-3, verbose);

    //  batched gemm = one gemm per matrix
    {
        float a2 [2 * 6], b2 [2 * 6], c2 [2 * 4], ref [4];
        s_rand (a2, 12, &seed, -1, 1);
        s_rand (b2, 12, &seed, -1, 1);
        be->gemm_batched (be, false, true, 2, 2, 3, 1.0f, a2, 3, 6, b2, 3, 6, 0.0f, c2, 2, 4, 2);
        for (int k = 0; k < 2; k++) {
            be->gemm (be, false, true, 2, 2, 3, 1.0f, a2 + 6 * k, 3, b2 + 6 * k, 3, 0.0f, ref, 2);
            assert (memcmp (ref, c2 + 4 * k, sizeof ref) == 0);
        }
        //  2 samples x 2 heads: head j's 2 x 3 block at column 3 j of 6-wide rows
        float a4 [2 * 12], b4 [2 * 12], c4 [2 * 8], r4 [4];
        s_rand (a4, 24, &seed, -1, 1);
        s_rand (b4, 24, &seed, -1, 1);
        be->gemm_heads (be, false, true, 2, 2, 3, 1.0f, a4, 6, 12, 3, b4, 6, 12, 3, 0.0f, c4, 2, 8,
                        4, 2, 2);
        for (int s = 0; s < 2; s++)
            for (int j = 0; j < 2; j++) {
                be->gemm (be, false, true, 2, 2, 3, 1.0f, a4 + 12 * s + 3 * j, 6, b4 + 12 * s + 3 * j,
                          6, 0.0f, r4, 2);
                assert (memcmp (r4, c4 + 8 * s + 4 * j, sizeof r4) == 0);
            }
    }

    //  losses: binary, multiclass, regression (dlogits of each row vs differences)
    for (int task = KN_TASK_BINARY; task <= KN_TASK_REGRESSION; task++) {
        int k = task == KN_TASK_BINARY ? 1 : 3;
        float logits [R * 3], labels [R * 3], dl [R * 3], losses [R], rr [R];
        s_rand (logits, (size_t) R * k, &seed, -4, 4);
        for (int i = 0; i < R * k; i++)
            labels [i] = task == KN_TASK_BINARY ? (float) (i % 2)
                       : task == KN_TASK_MULTICLASS ? (float) (i % 3) : logits [i] + 0.5f;
        for (int i = 0; i < R; i++)
            rr [i] = 1.0f;
        c.rows = R;
        c.cols = k;
        c.task = task;
        c.aux = labels;
        be->loss (be, task, logits, labels, R, k, dl, losses, 1.0f);
        for (int i = 0; i < R; i++)
            assert (losses [i] >= 0 && isfinite (losses [i]));
        s_fd_compare (task == KN_TASK_BINARY ? "loss bce" : task == KN_TASK_MULTICLASS ? "loss ce" : "loss mse",
                      &c, s_fwd_loss, logits, (size_t) R * k, rr, R, dl, 1e-3, 2e-3, verbose);
    }
    //  a huge logit stays finite
    {
        float z = 200.0f, t = 0.0f, d;
        float l = kn_loss_row (KN_TASK_BINARY, &z, &t, 1, &d, 1.0f);
        assert (fabsf (l - 200.0f) < 1e-3f && fabsf (d - 1.0f) < 1e-6f);
        float p [3] = { 1000, 0, -1000 };
        kn_predict_row (KN_TASK_MULTICLASS, p, 3);
        assert (fabsf (p [0] - 1) < 1e-6f && p [2] >= 0);
    }

    //  mean pool (batch R, t = C... use 2 x (4 x 3))
    {
        float in [24], out [6], dy [6], din [24];
        s_rand (in, 24, &seed, -1, 1);
        s_rand (dy, 6, &seed, -1, 1);
        c.rows = 2;
        c.cols = 12;
        be->meanpool_bwd (be, dy, din, 2, 4, 3);
        s_fd_compare ("meanpool", &c, s_fwd_meanpool, in, 24, dy, 6, din, 1e-2, 2e-3, verbose);
        (void) out;
    }

    //  dropout: same seed => same mask forward and backward, about p dropped
    {
        enum { M = 20000 };
        float *a = (float *) lb_xcalloc (M, sizeof (float));
        float *b = (float *) lb_xcalloc (M, sizeof (float));
        for (int i = 0; i < M; i++)
            a [i] = 1.0f;
        be->dropout (be, a, b, M, 0.25f, 7);
        int dropped = 0;
        for (int i = 0; i < M; i++) {
            assert (b [i] == 0.0f || fabsf (b [i] - 1.0f / 0.75f) < 1e-6f);
            dropped += b [i] == 0.0f;
        }
        assert (dropped > M * 0.23 && dropped < M * 0.27);
        be->dropout (be, a, a, M, 0.25f, 7);
        assert (memcmp (a, b, M * sizeof (float)) == 0);
        be->dropout (be, b, a, M, 0.25f, 8);
        assert (memcmp (a, b, M * sizeof (float)) != 0);
        free (a);
        free (b);
    }

    //  small ops
    {
        float a [6] = { 1, 2, 3, 4, 5, 6 }, b [6] = { 1, 1, 1, 1, 1, 1 }, add [3] = { 10, 20, 30 };
        be->axpy (be, 2.0f, a, b, 6);
        assert (b [0] == 3 && b [5] == 8);
        be->broadcast_add (be, a, add, 2, 3);
        assert (a [0] == 11 && a [3] == 14 && a [5] == 36);
        float br [6];
        be->bias_rows (be, NULL, add, br, 2, 3);
        assert (br [0] == 10 && br [3] == 10 && br [5] == 30);
        be->bias_rows (be, a, add, br, 2, 3);
        assert (br [0] == 21 && br [3] == 24 && br [5] == 66);
        be->copy_rows (be, a, 3, b, 2, 2, 2);
        assert (b [0] == 11 && b [1] == 22 && b [2] == 14 && b [3] == 25);
        be->zero (be, b, 6);
        assert (b [3] == 0);
        float *buf = be->alloc (be, 10);
        assert (buf && buf [9] == 0);
        assert (be->upload (be, buf, a, 6) == 0 && buf [5] == 36);
        assert (be->download (be, b, buf, 6) == 0 && b [5] == 36);
        be->free (be, buf);
    }

    //  AdamW first step with no decay moves each parameter by lr against its gradient's sign
    {
        float p [3] = { 1, 1, 1 }, gr [3] = { 0.5f, -2.0f, 1e-3f }, m [3] = { 0 }, v [3] = { 0 };
        float b1 = 0.9f, b2 = 0.999f;
        be->adamw (be, p, gr, m, v, 3, 0.01f, b1, b2, 1e-8f, 0.0f, 1 - b1, sqrtf (1 - b2));
        assert (fabsf (p [0] - 0.99f) < 1e-6f && fabsf (p [1] - 1.01f) < 1e-6f && fabsf (p [2] - 0.99f) < 1e-5f);
        //  decay alone shrinks by lr * wd
        float q = 2, zero = 0, mq = 0, vq = 0;
        be->adamw (be, &q, &zero, &mq, &vq, 1, 0.1f, b1, b2, 1e-8f, 0.5f, 1 - b1, sqrtf (1 - b2));
        assert (fabsf (q - 2 * (1 - 0.05f)) < 1e-6f);
    }
    assert (kn_backend_sync (be) == 0);
    kn_backend_destroy (&be);
    assert (be == NULL);
    kn_backend_destroy (&be);
}
