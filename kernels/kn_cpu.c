/*  kn_cpu.c - the CPU backend: the reference every other path is checked against.

    Matrix products go to OpenBLAS (cblas_sgemm); everything else is an
    OpenMP loop over the kn_math.h bodies, statically scheduled, one owner
    per output element, so results do not depend on timing.
*/
#include "kn_backend.h"
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

static void
s_destroy (kn_backend_t **self_p)
{
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

static void
s_gemm (kn_backend_t *self, bool ta, bool tb, int m, int n, int k, float alpha, const float *a,
        int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    (void) self;
    cblas_sgemm (CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans,
                 m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

static void
s_gemm_batched (kn_backend_t *self, bool ta, bool tb, int m, int n, int k, float alpha,
                const float *a, int lda, size_t sa, const float *b, int ldb, size_t sb,
                float beta, float *c, int ldc, size_t sc, int count)
{
    for (int i = 0; i < count; i++)
        s_gemm (self, ta, tb, m, n, k, alpha, a + i * sa, lda, b + i * sb, ldb, beta, c + i * sc,
                ldc);
}

static void
s_bias_add (kn_backend_t *self, float *y, const float *bias, int rows, int cols)
{
    int nt = self->threads;
    size_t work = (size_t) rows * cols;
    S_OMP_FOR
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < cols; c++)
            y [(size_t) r * cols + c] += bias [c];
}

static void
s_colsum (kn_backend_t *self, const float *a, float *out, int rows, int cols, int ld, float beta)
{
    int nt = self->threads;
    size_t work = (size_t) rows * cols;
    S_OMP_FOR
    for (int c = 0; c < cols; c++)
        out [c] = (beta == 0.0f ? 0.0f : beta * out [c]) + kn_colsum (a, rows, ld, c);
}

static void
s_act_fwd (kn_backend_t *self, int act, const float *x, float *y, size_t n)
{
    int nt = self->threads;
    size_t work = n;
    S_OMP_FOR
    for (size_t i = 0; i < n; i++)
        y [i] = kn_act_fwd (act, x [i]);
}

static void
s_act_bwd (kn_backend_t *self, int act, const float *x, const float *dy, float *dx, size_t n)
{
    int nt = self->threads;
    size_t work = n;
    S_OMP_FOR
    for (size_t i = 0; i < n; i++)
        dx [i] = kn_act_bwd (act, x [i], dy [i]);
}

static void
s_dropout (kn_backend_t *self, const float *x, float *y, size_t n, float p, uint64_t seed)
{
    int nt = self->threads;
    size_t work = n;
    S_OMP_FOR
    for (size_t i = 0; i < n; i++)
        y [i] = x [i] * kn_dropout_factor (seed, i, p);
}

static void
s_layernorm_fwd (kn_backend_t *self, const float *x, const float *gamma, const float *beta,
                 float *y, float *mean, float *rstd, int rows, int cols)
{
    int nt = self->threads;
    size_t work = (size_t) rows * cols;
    S_OMP_FOR
    for (int r = 0; r < rows; r++)
        kn_layernorm_row_fwd (x + (size_t) r * cols, gamma, beta, y + (size_t) r * cols,
                              mean + r, rstd + r, cols);
}

static void
s_layernorm_bwd (kn_backend_t *self, const float *dy, const float *x, const float *gamma,
                 const float *mean, const float *rstd, float *dx, float *dgamma, float *dbeta,
                 int rows, int cols)
{
    int nt = self->threads;
    size_t work = (size_t) rows * cols;
    S_OMP_FOR
    for (int c = 0; c < cols; c++)
        kn_layernorm_col_bwd (dy, x, mean, rstd, dgamma, dbeta, rows, cols, c);
    S_OMP_FOR
    for (int r = 0; r < rows; r++)
        kn_layernorm_row_bwd (dy + (size_t) r * cols, x + (size_t) r * cols, gamma, mean [r],
                              rstd [r], dx + (size_t) r * cols, cols);
}

static void
s_softmax_fwd (kn_backend_t *self, const float *x, float *y, int rows, int cols, float scale)
{
    int nt = self->threads;
    size_t work = (size_t) rows * cols;
    S_OMP_FOR
    for (int r = 0; r < rows; r++)
        kn_softmax_row_fwd (x + (size_t) r * cols, y + (size_t) r * cols, cols, scale);
}

static void
s_softmax_bwd (kn_backend_t *self, const float *p, const float *dp, float *dx, int rows,
               int cols, float scale)
{
    int nt = self->threads;
    size_t work = (size_t) rows * cols;
    S_OMP_FOR
    for (int r = 0; r < rows; r++)
        kn_softmax_row_bwd (p + (size_t) r * cols, dp + (size_t) r * cols, dx + (size_t) r * cols,
                            cols, scale);
}

static void
s_axpy (kn_backend_t *self, float alpha, const float *x, float *y, size_t n)
{
    int nt = self->threads;
    size_t work = n;
    S_OMP_FOR
    for (size_t i = 0; i < n; i++)
        y [i] = alpha * y [i] + x [i];
}

static void
s_broadcast_add (kn_backend_t *self, float *x, const float *add, int batch, size_t len)
{
    int nt = self->threads;
    size_t work = (size_t) batch * len;
    S_OMP_FOR
    for (int b = 0; b < batch; b++)
        for (size_t i = 0; i < len; i++)
            x [b * len + i] += add [i];
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

static void
s_adamw (kn_backend_t *self, float *p, const float *g, float *m, float *v, size_t n, float lr,
         float b1, float b2, float eps, float wd, float bc1, float bc2_sqrt)
{
    int nt = self->threads;
    size_t work = n;
    S_OMP_FOR
    for (size_t i = 0; i < n; i++)
        kn_adamw_elem (p + i, g [i], m + i, v + i, lr, b1, b2, eps, wd, bc1, bc2_sqrt);
}

kn_backend_t *
kn_cpu_new (int threads)
{
    kn_backend_t *self = (kn_backend_t *) lb_xcalloc (1, sizeof *self);
    self->name = "cpu";
    self->threads = threads < 1 ? 1 : threads;
    self->nranks = 1;
    openblas_set_num_threads (self->threads);
    self->destroy = s_destroy;
    self->alloc = s_alloc;
    self->free = s_free;
    self->upload = s_copy;
    self->download = s_copy;
    self->zero = s_zero;
    self->sync = s_sync;
    self->gemm = s_gemm;
    self->gemm_batched = s_gemm_batched;
    self->bias_add = s_bias_add;
    self->colsum = s_colsum;
    self->act_fwd = s_act_fwd;
    self->act_bwd = s_act_bwd;
    self->dropout = s_dropout;
    self->layernorm_fwd = s_layernorm_fwd;
    self->layernorm_bwd = s_layernorm_bwd;
    self->softmax_fwd = s_softmax_fwd;
    self->softmax_bwd = s_softmax_bwd;
    self->axpy = s_axpy;
    self->broadcast_add = s_broadcast_add;
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
