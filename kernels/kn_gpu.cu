/*  kn_gpu.cu - the CUDA backend: the same kn_math.h bodies as kn_cpu.c, called
    from CUDA kernels; matrix products through cuBLAS; gradient averaging
    across GPUs through NCCL.

    Every CUDA, cuBLAS and NCCL status is checked. The first failure is kept
    in self->error and makes the backend "failed": later operations are
    skipped and kn_backend_sync returns -1, so a trainer reports the error
    (or falls back to the CPU) instead of computing on garbage. A failed
    cudaMalloc (out of memory) is reported by alloc returning NULL and does
    not fail the backend. NCCL runs non-blocking with a deadline, and a
    communicator that misses it is aborted: a lost rank fails the step, it
    never hangs the GPU.

    Kernels are launched on one stream per backend; row-wise bodies run one
    thread per row and column sums one thread per column, in the same order
    as the CPU, so results differ from the CPU only by floating-point
    contraction and library functions (tolerances in main_test-gpu.c).
*/
#include "kn_backend.h"
#include "kn_math.h"

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <nccl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    int device;
    cudaStream_t stream;
    cublasHandle_t cublas;
    ncclComm_t comm;                    //  NULL when alone
    int timeout_ms;
    bool failed;
    char name [16];                     //  "cuda:N"
} s_gpu_t;

#define S_IMPL(self) ((s_gpu_t *) (self)->impl)
#define S_THREADS 256

//  Records the first failure (a reported out-of-memory, which does not fail
//  the backend, is overwritten by a real failure).
static void
s_set_error (kn_backend_t *self, const char *fmt, ...)
{
    if (S_IMPL (self)->failed)
        return;
    va_list args;
    va_start (args, fmt);
    vsnprintf (self->error, sizeof self->error, fmt, args);
    va_end (args);
}

//  Returns true (and fails the backend) when status is an error.
static bool
s_cuda_failed (kn_backend_t *self, cudaError_t status, const char *what)
{
    if (status == cudaSuccess)
        return false;
    s_set_error (self, "%s: CUDA error %d (%s) on %s", what, (int) status,
                 cudaGetErrorString (status), self->name);
    S_IMPL (self)->failed = true;
    return true;
}

static bool
s_cublas_failed (kn_backend_t *self, cublasStatus_t status, const char *what)
{
    if (status == CUBLAS_STATUS_SUCCESS)
        return false;
    s_set_error (self, "%s: cuBLAS status %d on %s", what, (int) status, self->name);
    S_IMPL (self)->failed = true;
    return true;
}

//  After a launch: records a launch error; returns true to skip when failed.
static bool
s_launched (kn_backend_t *self, const char *what)
{
    return s_cuda_failed (self, cudaGetLastError (), what);
}

static bool
s_skip (kn_backend_t *self)
{
    return S_IMPL (self)->failed;
}

static unsigned
s_blocks (size_t n)
{
    size_t b = (n + S_THREADS - 1) / S_THREADS;
    return (unsigned) (b < 1 ? 1 : b > 65535 ? 65535 : b);
}

#define S_GRID_LOOP(i, n) \
    for (size_t i = blockIdx.x * (size_t) blockDim.x + threadIdx.x; i < (n); \
         i += (size_t) blockDim.x * gridDim.x)

// ---------------------------------------------------------------- CUDA kernels

__global__ void
k_colsum (const float *a, float *out, int rows, int cols, int ld, float beta)
{
    S_GRID_LOOP (c, (size_t) cols)
        out [c] = (beta == 0.0f ? 0.0f : beta * out [c]) + kn_colsum (a, rows, ld, (int) c);
}

__global__ void
k_act_fwd (int act, const float *x, float *y, size_t n)
{
    S_GRID_LOOP (i, n)
        y [i] = kn_act_fwd (act, x [i]);
}

__global__ void
k_act_bwd (int act, const float *x, const float *dy, float *dx, size_t n)
{
    S_GRID_LOOP (i, n)
        dx [i] = kn_act_bwd (act, x [i], dy [i]);
}

__global__ void
k_act_fwd_grad (int act, const float *x, float *y, float *grad, size_t n)
{
    S_GRID_LOOP (i, n) {
        float g;
        y [i] = kn_act_fwd_grad (act, x [i], &g);
        grad [i] = g;
    }
}

__global__ void
k_mul (const float *a, const float *b, float *y, size_t n)
{
    S_GRID_LOOP (i, n)
        y [i] = a [i] * b [i];
}

__global__ void
k_dropout (const float *x, float *y, size_t n, float p, uint64_t seed)
{
    S_GRID_LOOP (i, n)
        y [i] = x [i] * kn_dropout_factor (seed, i, p);
}

__global__ void
k_layernorm_fwd (const float *x, const float *gamma, const float *beta, float *y, float *mean,
                 float *rstd, int rows, int cols)
{
    S_GRID_LOOP (r, (size_t) rows)
        kn_layernorm_row_fwd (x + r * cols, gamma, beta, y + r * cols, mean + r, rstd + r, cols);
}

__global__ void
k_layernorm_col_bwd (const float *dy, const float *x, const float *mean, const float *rstd,
                     float *dgamma, float *dbeta, int rows, int cols)
{
    S_GRID_LOOP (c, (size_t) cols)
        kn_layernorm_col_bwd (dy, x, mean, rstd, dgamma, dbeta, rows, cols, (int) c);
}

__global__ void
k_layernorm_row_bwd (const float *dy, const float *x, const float *gamma, const float *mean,
                     const float *rstd, float *dx, int rows, int cols, bool add)
{
    S_GRID_LOOP (r, (size_t) rows)
        kn_layernorm_row_bwd (dy + r * cols, x + r * cols, gamma, mean [r], rstd [r], dx + r * cols,
                              cols, add);
}

__global__ void
k_softmax_fwd (const float *x, float *y, int rows, int cols, float scale)
{
    S_GRID_LOOP (r, (size_t) rows)
        kn_softmax_row_fwd (x + r * cols, y + r * cols, cols, scale);
}

__global__ void
k_softmax_bwd (const float *p, const float *dp, float *dx, int rows, int cols, float scale)
{
    S_GRID_LOOP (r, (size_t) rows)
        kn_softmax_row_bwd (p + r * cols, dp + r * cols, dx + r * cols, cols, scale);
}

__global__ void
k_axpy (float alpha, const float *x, float *y, size_t n)
{
    S_GRID_LOOP (i, n)
        y [i] = alpha * y [i] + x [i];
}

__global__ void
k_broadcast_add (float *x, const float *add, int batch, size_t len)
{
    S_GRID_LOOP (i, (size_t) batch * len)
        x [i] += add [i % len];
}

__global__ void
k_bias_rows (const float *x, const float *bias, float *y, int rows, int cols)
{
    S_GRID_LOOP (i, (size_t) rows * cols)
        y [i] = (x ? x [i] : 0.0f) + bias [i % cols];
}

__global__ void
k_meanpool_fwd (const float *x, float *y, int b, int t, int d)
{
    S_GRID_LOOP (i, (size_t) b * d) {
        size_t row = i / d, c = i % d;
        y [i] = kn_colsum (x + row * t * d, t, d, (int) c) / (float) t;
    }
}

__global__ void
k_meanpool_bwd (const float *dy, float *dx, int b, int t, int d)
{
    S_GRID_LOOP (i, (size_t) b * t * d) {
        size_t row = i / ((size_t) t * d), c = i % d;
        dx [i] = dy [row * d + c] / (float) t;
    }
}

__global__ void
k_loss (int task, const float *logits, const float *y, int rows, int n_out, float *dlogits,
        float *loss, float grad_scale)
{
    int ly = task == KN_TASK_REGRESSION ? n_out : 1;
    S_GRID_LOOP (r, (size_t) rows)
        loss [r] = kn_loss_row (task, logits + r * n_out, y + r * ly, n_out, dlogits + r * n_out,
                                grad_scale);
}

__global__ void
k_predict (int task, float *logits, int rows, int n_out)
{
    S_GRID_LOOP (r, (size_t) rows)
        kn_predict_row (task, logits + r * n_out, n_out);
}

__global__ void
k_adamw (float *p, const float *g, float *m, float *v, size_t n, float lr, float b1, float b2,
         float eps, float wd, float bc1, float bc2_sqrt)
{
    S_GRID_LOOP (i, n)
        kn_adamw_elem (p + i, g [i], m + i, v + i, lr, b1, b2, eps, wd, bc1, bc2_sqrt);
}

// ---------------------------------------------------------------- table entries

#define S_LAUNCH(self, n, what, ...) \
    do { \
        if (!s_skip (self)) { \
            __VA_ARGS__; \
            s_launched (self, what); \
        } \
    } while (0)

#define S_GRID(n) <<<s_blocks (n), S_THREADS, 0, S_IMPL (self)->stream>>>

static void
s_destroy (kn_backend_t **self_p)
{
    kn_backend_t *self = *self_p;
    s_gpu_t *g = S_IMPL (self);
    if (g) {
        cudaSetDevice (g->device);
        if (g->comm) {
            if (g->failed)
                ncclCommAbort (g->comm);
            else
                ncclCommDestroy (g->comm);
        }
        if (g->cublas)
            cublasDestroy (g->cublas);
        if (g->stream)
            cudaStreamDestroy (g->stream);
        free (g);
    }
    free (self);
    *self_p = NULL;
}

static float *
s_alloc (kn_backend_t *self, size_t n)
{
    if (s_skip (self))
        return NULL;
    void *p = NULL;
    size_t bytes = (n ? n : 1) * sizeof (float);
    cudaError_t status = cudaMalloc (&p, bytes);
    if (status != cudaSuccess) {
        cudaGetLastError ();            //  an out-of-memory does not poison the context
        snprintf (self->error, sizeof self->error, "cudaMalloc of %zu bytes on %s: %s", bytes,
                  self->name, cudaGetErrorString (status));
        return NULL;
    }
    if (s_cuda_failed (self, cudaMemsetAsync (p, 0, bytes, S_IMPL (self)->stream), "cudaMemset")) {
        cudaFree (p);
        return NULL;
    }
    return (float *) p;
}

static void
s_free (kn_backend_t *self, float *buf)
{
    if (buf) {
        cudaStreamSynchronize (S_IMPL (self)->stream);
        cudaFree (buf);
    }
}

static int
s_copy (kn_backend_t *self, float *dst, const float *src, size_t n, cudaMemcpyKind kind)
{
    if (s_skip (self))
        return -1;
    if (!n)
        return 0;
    cudaStream_t st = S_IMPL (self)->stream;
    if (s_cuda_failed (self, cudaMemcpyAsync (dst, src, n * sizeof (float), kind, st), "cudaMemcpy")
    ||  s_cuda_failed (self, cudaStreamSynchronize (st), "cudaStreamSynchronize"))
        return -1;
    return 0;
}

static int
s_upload (kn_backend_t *self, float *dst, const float *src, size_t n)
{
    return s_copy (self, dst, src, n, cudaMemcpyHostToDevice);
}

static int
s_download (kn_backend_t *self, float *dst, const float *src, size_t n)
{
    return s_copy (self, dst, src, n, cudaMemcpyDeviceToHost);
}

static void
s_zero (kn_backend_t *self, float *buf, size_t n)
{
    if (!s_skip (self) && n)
        s_cuda_failed (self, cudaMemsetAsync (buf, 0, n * sizeof (float), S_IMPL (self)->stream),
                       "cudaMemset");
}

static int
s_sync (kn_backend_t *self)
{
    if (!s_skip (self)) {
        s_cuda_failed (self, cudaStreamSynchronize (S_IMPL (self)->stream), "cudaStreamSynchronize");
        s_cuda_failed (self, cudaGetLastError (), "kernel");
    }
    return s_skip (self) ? -1 : 0;
}

//  Row-major C = op(A) op(B) is column-major C^T = op(B)^T op(A)^T.
static void
s_gemm (kn_backend_t *self, bool ta, bool tb, int m, int n, int k, float alpha, const float *a,
        int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    if (s_skip (self))
        return;
    s_cublas_failed (self, cublasSgemm (S_IMPL (self)->cublas, tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                        ta ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k, &alpha, b, ldb,
                                        a, lda, &beta, c, ldc), "cublasSgemm");
}

static void
s_gemm_batched (kn_backend_t *self, bool ta, bool tb, int m, int n, int k, float alpha,
                const float *a, int lda, size_t sa, const float *b, int ldb, size_t sb,
                float beta, float *c, int ldc, size_t sc, int count)
{
    if (s_skip (self))
        return;
    s_cublas_failed (self, cublasSgemmStridedBatched (S_IMPL (self)->cublas,
                                                      tb ? CUBLAS_OP_T : CUBLAS_OP_N,
                                                      ta ? CUBLAS_OP_T : CUBLAS_OP_N, n, m, k,
                                                      &alpha, b, ldb, (long long) sb, a, lda,
                                                      (long long) sa, &beta, c, ldc,
                                                      (long long) sc, count),
                     "cublasSgemmStridedBatched");
}

//  One strided-batched call per head (cuBLAS batches over one stride).
static void
s_gemm_heads (kn_backend_t *self, bool ta, bool tb, int m, int n, int k, float alpha,
              const float *a, int lda, size_t sa, size_t ha, const float *b, int ldb, size_t sb,
              size_t hb, float beta, float *c, int ldc, size_t sc, size_t hc, int count,
              int heads)
{
    for (int j = 0; j < heads; j++)
        s_gemm_batched (self, ta, tb, m, n, k, alpha, a + j * ha, lda, sa, b + j * hb, ldb, sb,
                        beta, c + j * hc, ldc, sc, count);
}

static void
s_colsum (kn_backend_t *self, const float *a, float *out, int rows, int cols, int ld, float beta)
{
    S_LAUNCH (self, cols, "colsum", k_colsum S_GRID (cols) (a, out, rows, cols, ld, beta));
}

static void
s_act_fwd (kn_backend_t *self, int act, const float *x, float *y, size_t n)
{
    S_LAUNCH (self, n, "act_fwd", k_act_fwd S_GRID (n) (act, x, y, n));
}

static void
s_act_bwd (kn_backend_t *self, int act, const float *x, const float *dy, float *dx, size_t n)
{
    S_LAUNCH (self, n, "act_bwd", k_act_bwd S_GRID (n) (act, x, dy, dx, n));
}

//  Two launches (the element-wise backward, then the column sums added to
//  dbias); the CPU does both in one pass.
static void
s_act_fwd_grad (kn_backend_t *self, int act, const float *x, float *y, float *grad, size_t n)
{
    S_LAUNCH (self, n, "act_fwd_grad", k_act_fwd_grad S_GRID (n) (act, x, y, grad, n));
}

static void
s_act_bwd_colsum (kn_backend_t *self, int act, const float *x, bool is_grad, const float *dy,
                  float *dx, int rows, int cols, float *dbias)
{
    size_t n = (size_t) rows * cols;
    if (is_grad)
        S_LAUNCH (self, n, "act_bwd_colsum (product)", k_mul S_GRID (n) (dy, x, dx, n));
    else
        S_LAUNCH (self, n, "act_bwd_colsum (act)", k_act_bwd S_GRID (n) (act, x, dy, dx, n));
    S_LAUNCH (self, cols, "act_bwd_colsum (colsum)",
              k_colsum S_GRID (cols) (dx, dbias, rows, cols, cols, 1.0f));
}

static void
s_dropout (kn_backend_t *self, const float *x, float *y, size_t n, float p, uint64_t seed)
{
    S_LAUNCH (self, n, "dropout", k_dropout S_GRID (n) (x, y, n, p, seed));
}

static void
s_layernorm_fwd (kn_backend_t *self, const float *x, const float *gamma, const float *beta,
                 float *y, float *mean, float *rstd, int rows, int cols)
{
    S_LAUNCH (self, rows, "layernorm_fwd",
              k_layernorm_fwd S_GRID (rows) (x, gamma, beta, y, mean, rstd, rows, cols));
}

static void
s_layernorm_bwd (kn_backend_t *self, const float *dy, const float *x, const float *gamma,
                 const float *mean, const float *rstd, float *dx, float *dgamma, float *dbeta,
                 int rows, int cols, bool add_dx)
{
    S_LAUNCH (self, cols, "layernorm_bwd (columns)",
              k_layernorm_col_bwd S_GRID (cols) (dy, x, mean, rstd, dgamma, dbeta, rows, cols));
    S_LAUNCH (self, rows, "layernorm_bwd (rows)",
              k_layernorm_row_bwd S_GRID (rows) (dy, x, gamma, mean, rstd, dx, rows, cols, add_dx));
}

static void
s_softmax_fwd (kn_backend_t *self, const float *x, float *y, int rows, int cols, float scale)
{
    S_LAUNCH (self, rows, "softmax_fwd", k_softmax_fwd S_GRID (rows) (x, y, rows, cols, scale));
}

static void
s_softmax_bwd (kn_backend_t *self, const float *p, const float *dp, float *dx, int rows, int cols,
               float scale)
{
    S_LAUNCH (self, rows, "softmax_bwd", k_softmax_bwd S_GRID (rows) (p, dp, dx, rows, cols, scale));
}

static void
s_axpy (kn_backend_t *self, float alpha, const float *x, float *y, size_t n)
{
    S_LAUNCH (self, n, "axpy", k_axpy S_GRID (n) (alpha, x, y, n));
}

static void
s_broadcast_add (kn_backend_t *self, float *x, const float *add, int batch, size_t len)
{
    size_t n = (size_t) batch * len;
    S_LAUNCH (self, n, "broadcast_add", k_broadcast_add S_GRID (n) (x, add, batch, len));
}

static void
s_bias_rows (kn_backend_t *self, const float *x, const float *bias, float *y, int rows, int cols)
{
    size_t n = (size_t) rows * cols;
    S_LAUNCH (self, n, "bias_rows", k_bias_rows S_GRID (n) (x, bias, y, rows, cols));
}

static void
s_meanpool_fwd (kn_backend_t *self, const float *x, float *y, int b, int t, int d)
{
    size_t n = (size_t) b * d;
    S_LAUNCH (self, n, "meanpool_fwd", k_meanpool_fwd S_GRID (n) (x, y, b, t, d));
}

static void
s_meanpool_bwd (kn_backend_t *self, const float *dy, float *dx, int b, int t, int d)
{
    size_t n = (size_t) b * t * d;
    S_LAUNCH (self, n, "meanpool_bwd", k_meanpool_bwd S_GRID (n) (dy, dx, b, t, d));
}

static void
s_copy_rows (kn_backend_t *self, const float *x, int lx, float *y, int ly, int rows, int cols)
{
    if (s_skip (self))
        return;
    s_cuda_failed (self, cudaMemcpy2DAsync (y, (size_t) ly * sizeof (float), x,
                                            (size_t) lx * sizeof (float), (size_t) cols * sizeof (float),
                                            (size_t) rows, cudaMemcpyDeviceToDevice,
                                            S_IMPL (self)->stream), "cudaMemcpy2D");
}

static void
s_loss (kn_backend_t *self, int task, const float *logits, const float *y, int rows, int n_out,
        float *dlogits, float *loss, float grad_scale)
{
    S_LAUNCH (self, rows, "loss",
              k_loss S_GRID (rows) (task, logits, y, rows, n_out, dlogits, loss, grad_scale));
}

static void
s_predict (kn_backend_t *self, int task, float *logits, int rows, int n_out)
{
    S_LAUNCH (self, rows, "predict", k_predict S_GRID (rows) (task, logits, rows, n_out));
}

static void
s_adamw (kn_backend_t *self, float *p, const float *g, float *m, float *v, size_t n, float lr,
         float b1, float b2, float eps, float wd, float bc1, float bc2_sqrt)
{
    S_LAUNCH (self, n, "adamw",
              k_adamw S_GRID (n) (p, g, m, v, n, lr, b1, b2, eps, wd, bc1, bc2_sqrt));
}

static double
s_ms_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec * 1e3 + ts.tv_nsec * 1e-6;
}

//  Waits for a non-blocking NCCL communicator to finish its pending work (and
//  for the stream when wait_stream), up to the deadline. 0 or -1 (aborted).
static int
s_nccl_wait (kn_backend_t *self, const char *what, bool wait_stream)
{
    s_gpu_t *g = S_IMPL (self);
    double deadline = s_ms_now () + g->timeout_ms;
    for (;;) {
        ncclResult_t async = ncclSuccess;
        ncclResult_t rc = ncclCommGetAsyncError (g->comm, &async);
        if (rc != ncclSuccess || (async != ncclSuccess && async != ncclInProgress)) {
            s_set_error (self, "%s: NCCL error: %s", what,
                         ncclGetErrorString (rc != ncclSuccess ? rc : async));
            break;
        }
        if (async == ncclSuccess) {
            if (!wait_stream)
                return 0;
            cudaError_t q = cudaStreamQuery (g->stream);
            if (q == cudaSuccess)
                return 0;
            if (q != cudaErrorNotReady) {
                s_cuda_failed (self, q, what);
                break;
            }
        }
        if (s_ms_now () > deadline) {
            s_set_error (self, "%s: no progress within %d ms (a rank was lost?); communicator aborted",
                         what, g->timeout_ms);
            break;
        }
        struct timespec nap = { 0, 200000 };
        nanosleep (&nap, NULL);
    }
    g->failed = true;
    ncclCommAbort (g->comm);
    g->comm = NULL;
    return -1;
}

static int
s_allreduce_mean (kn_backend_t *self, float *buf, size_t n)
{
    s_gpu_t *g = S_IMPL (self);
    if (s_skip (self) || !g->comm)
        return -1;
    ncclResult_t rc = ncclAllReduce (buf, buf, n, ncclFloat, ncclAvg, g->comm, g->stream);
    if (rc != ncclSuccess && rc != ncclInProgress) {
        s_set_error (self, "ncclAllReduce: %s", ncclGetErrorString (rc));
        g->failed = true;
        return -1;
    }
    return s_nccl_wait (self, "ncclAllReduce", true);
}

// ---------------------------------------------------------------- constructors

extern "C" int
kn_gpu_count (char *why, size_t why_size)
{
    int count = 0;
    cudaError_t status = cudaGetDeviceCount (&count);
    if (status != cudaSuccess) {
        cudaGetLastError ();
        if (why)
            snprintf (why, why_size, "cudaGetDeviceCount: %s", cudaGetErrorString (status));
        return 0;
    }
    if (count == 0 && why)
        snprintf (why, why_size, "cudaGetDeviceCount: no CUDA device");
    return count;
}

static kn_backend_t *
s_new (int device, char *err, size_t err_size)
{
    char why [200];
    int count = kn_gpu_count (why, sizeof why);
    if (count == 0) {
        snprintf (err, err_size, "no GPU: %s", why);
        return NULL;
    }
    if (device < 0 || device >= count) {
        snprintf (err, err_size, "GPU %d does not exist (%d device%s)", device, count, count == 1 ? "" : "s");
        return NULL;
    }
    kn_backend_t *self = (kn_backend_t *) calloc (1, sizeof *self);
    s_gpu_t *g = (s_gpu_t *) calloc (1, sizeof *g);
    if (!self || !g)
        abort ();                       //  out of host memory (STYLE.md section 4)
    self->impl = g;
    g->device = device;
    snprintf (self->error, sizeof self->error, "%s", "");
    snprintf (g->name, sizeof g->name, "cuda:%d", device);
    self->name = g->name;
    self->is_gpu = true;
    self->threads = 1;
    self->nranks = 1;
    if (s_cuda_failed (self, cudaSetDevice (device), "cudaSetDevice")
    ||  s_cuda_failed (self, cudaStreamCreateWithFlags (&g->stream, cudaStreamNonBlocking), "cudaStreamCreate")
    ||  s_cublas_failed (self, cublasCreate (&g->cublas), "cublasCreate")
    ||  s_cublas_failed (self, cublasSetStream (g->cublas, g->stream), "cublasSetStream")
    ||  s_cublas_failed (self, cublasSetMathMode (g->cublas, CUBLAS_PEDANTIC_MATH), "cublasSetMathMode")) {
        snprintf (err, err_size, "%s", self->error);
        s_destroy (&self);
        return NULL;
    }
    self->destroy = s_destroy;
    self->alloc = s_alloc;
    self->free = s_free;
    self->upload = s_upload;
    self->download = s_download;
    self->zero = s_zero;
    self->sync = s_sync;
    self->gemm = s_gemm;
    self->gemm_batched = s_gemm_batched;
    self->gemm_heads = s_gemm_heads;
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

extern "C" kn_backend_t *
kn_gpu_new (int device, char *err, size_t err_size)
{
    return s_new (device, err, err_size);
}

extern "C" int
kn_gpu_nccl_id (unsigned char id [KN_NCCL_ID_BYTES], char *err, size_t err_size)
{
    static_assert (sizeof (ncclUniqueId) == KN_NCCL_ID_BYTES, "NCCL unique id size");
    ncclUniqueId uid;
    ncclResult_t rc = ncclGetUniqueId (&uid);
    if (rc != ncclSuccess) {
        snprintf (err, err_size, "ncclGetUniqueId: %s", ncclGetErrorString (rc));
        return -1;
    }
    memcpy (id, uid.internal, KN_NCCL_ID_BYTES);
    return 0;
}

extern "C" kn_backend_t *
kn_gpu_new_nccl (int device, const unsigned char id [KN_NCCL_ID_BYTES], int nranks, int rank,
                 int timeout_ms, char *err, size_t err_size)
{
    if (nranks < 1 || rank < 0 || rank >= nranks || timeout_ms < 1) {
        snprintf (err, err_size, "NCCL: rank %d of %d (timeout %d ms) is not a valid group position",
                  rank, nranks, timeout_ms);
        return NULL;
    }
    kn_backend_t *self = s_new (device, err, err_size);
    if (!self)
        return NULL;
    s_gpu_t *g = S_IMPL (self);
    g->timeout_ms = timeout_ms;
    ncclUniqueId uid;
    memcpy (uid.internal, id, KN_NCCL_ID_BYTES);
    ncclConfig_t config = NCCL_CONFIG_INITIALIZER;
    config.blocking = 0;
    ncclResult_t rc = ncclCommInitRankConfig (&g->comm, nranks, uid, rank, &config);
    if (rc != ncclSuccess && rc != ncclInProgress) {
        snprintf (err, err_size, "ncclCommInitRankConfig (rank %d of %d): %s", rank, nranks,
                  ncclGetErrorString (rc));
        if (g->comm)
            ncclCommAbort (g->comm);
        g->comm = NULL;
        s_destroy (&self);
        return NULL;
    }
    if (s_nccl_wait (self, "ncclCommInitRankConfig", false)) {
        snprintf (err, err_size, "%s", self->error);
        s_destroy (&self);
        return NULL;
    }
    self->nranks = nranks;
    self->rank = rank;
    self->allreduce_mean = s_allreduce_mean;
    return self;
}

extern "C" int
kn_gpu_nccl_version (char *out, size_t out_size)
{
    int version = 0;
    ncclResult_t rc = ncclGetVersion (&version);
    if (rc != ncclSuccess) {
        snprintf (out, out_size, "ncclGetVersion: %s", ncclGetErrorString (rc));
        return -1;
    }
    //  NCCL_VERSION_CODE: major * 10000 + minor * 100 + patch since 2.9.
    snprintf (out, out_size, "%d.%d.%d", version / 10000, version / 100 % 100, version % 100);
    return 0;
}
