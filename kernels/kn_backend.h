/*  kn_backend.h - where the kernels run: the CPU reference or one CUDA GPU.

    A backend is a table of operations over float32 buffers that live where
    the backend computes (host memory for the CPU, device memory for the
    GPU). kn_model.c is written once against this table; kn_cpu.c implements
    it with OpenMP loops + OpenBLAS, kn_gpu.cu with CUDA kernels + cuBLAS
    (+ NCCL for data-parallel training). Both call the same per-element
    bodies from kn_math.h.

    The trainer only needs the constructors and destructor:

        kn_backend_t *be = kn_cpu_new (2);          //  2 threads
        ...  kn_model_new (&cfg, 1024, seed, be, err, sizeof err) ...
        kn_backend_destroy (&be);                   //  after every model on it

    GPU constructors are defined in kn_gpu.cu, which only programs listed in
    the Makefile's CUDA_PROGS link (worker-train, test-gpu), and only when
    nvcc was found: the Makefile then defines KN_HAVE_CUDA for every C file,
    so callers write `#ifdef KN_HAVE_CUDA` around them. Code in the kernels .c files
    never calls them (bin/selftest does not link CUDA).

    Errors: operations on the hot path return nothing; a GPU backend records
    the first CUDA/cuBLAS/NCCL failure and every later kn_backend_sync
    returns -1 with kn_backend_error describing it (out of memory included).
    A failed GPU backend stays failed: destroy it, and retry or fall back to
    the CPU as configured.
*/
#ifndef KN_BACKEND_H_INCLUDED
#define KN_BACKEND_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct kn_backend_s kn_backend_t;

//  The operation table. Buffers are float * in the backend's memory; matrix
//  arguments are row-major with explicit leading dimensions, as cblas with
//  CblasRowMajor. Only kernels/ calls these.
struct kn_backend_s {
    const char *name;                    //  "cpu" or "cuda:N"
    bool is_gpu;
    int threads;                         //  CPU threads (OpenMP and OpenBLAS)
    int nranks, rank;                    //  data-parallel group (1, 0 when alone)
    char error [256];                    //  first failure, "" when none
    void *impl;                          //  the implementation's private state

    void (*destroy) (kn_backend_t **self_p);
    //  Returns n zeroed floats, or NULL (error set) when out of memory.
    float *(*alloc) (kn_backend_t *self, size_t n);
    void (*free) (kn_backend_t *self, float *buf);
    //  Copies n floats host -> backend / backend -> host. 0 or -1.
    int (*upload) (kn_backend_t *self, float *dst, const float *src, size_t n);
    int (*download) (kn_backend_t *self, float *dst, const float *src, size_t n);
    void (*zero) (kn_backend_t *self, float *buf, size_t n);
    //  Waits for queued work; 0, or -1 if any operation so far failed.
    int (*sync) (kn_backend_t *self);

    //  C = alpha op(A) op(B) + beta C, op(A) m x k, op(B) k x n.
    void (*gemm) (kn_backend_t *self, bool ta, bool tb, int m, int n, int k, float alpha,
                  const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc);
    //  The same over `count` matrices at strides sa, sb, sc floats apart.
    void (*gemm_batched) (kn_backend_t *self, bool ta, bool tb, int m, int n, int k, float alpha,
                          const float *a, int lda, size_t sa, const float *b, int ldb, size_t sb,
                          float beta, float *c, int ldc, size_t sc, int count);
    //  The same over count x heads matrices: matrix (i, j) at a + i * sa + j * ha
    //  (b, c likewise), e.g. every (sample, attention head) in one call.
    void (*gemm_heads) (kn_backend_t *self, bool ta, bool tb, int m, int n, int k, float alpha,
                        const float *a, int lda, size_t sa, size_t ha, const float *b, int ldb,
                        size_t sb, size_t hb, float beta, float *c, int ldc, size_t sc,
                        size_t hc, int count, int heads);
    //  gemm and gemm_heads with bf16 products (kn_gemm.h: operands rounded
    //  to bfloat16, sums in float32), for models with precision bf16. NULL
    //  where the backend has none (a CPU without AVX512-BF16, the GPU).
    void (*gemm_bf16) (kn_backend_t *self, bool ta, bool tb, int m, int n, int k, float alpha,
                       const float *a, int lda, const float *b, int ldb, float beta, float *c,
                       int ldc);
    void (*gemm_heads_bf16) (kn_backend_t *self, bool ta, bool tb, int m, int n, int k,
                             float alpha, const float *a, int lda, size_t sa, size_t ha,
                             const float *b, int ldb, size_t sb, size_t hb, float beta, float *c,
                             int ldc, size_t sc, size_t hc, int count, int heads);
    //  out [c] = beta * out [c] + sum over rows of a [r * ld + c], c < cols.
    void (*colsum) (kn_backend_t *self, const float *a, float *out, int rows, int cols, int ld,
                    float beta);
    //  y = act (x); dx = dy * act'(x). n elements.
    void (*act_fwd) (kn_backend_t *self, int act, const float *x, float *y, size_t n);
    void (*act_bwd) (kn_backend_t *self, int act, const float *x, const float *dy, float *dx,
                     size_t n);
    //  y = act (x) and grad = act'(x) (grad may be x): a training forward
    //  keeps the derivative, so the backward is one product (GELU's CDF and
    //  exp are computed once, not twice).
    void (*act_fwd_grad) (kn_backend_t *self, int act, const float *x, float *y, float *grad,
                          size_t n);
    //  dx = dy * act'(x) over rows x cols (is_grad: x holds act'(x) from
    //  act_fwd_grad, so dx = dy * x), and dbias [c] += the column sums of dx
    //  (rows in order, as colsum): the backward of a bias + activation in
    //  one pass.
    void (*act_bwd_colsum) (kn_backend_t *self, int act, const float *x, bool is_grad,
                            const float *dy, float *dx, int rows, int cols, float *dbias);
    //  Inverted dropout with probability p, mask from (seed, element index);
    //  y may be x; dx may be dy.
    void (*dropout) (kn_backend_t *self, const float *x, float *y, size_t n, float p,
                     uint64_t seed);
    //  Layer norm over rows of cols; saves mean/rstd (rows each).
    void (*layernorm_fwd) (kn_backend_t *self, const float *x, const float *gamma,
                           const float *beta, float *y, float *mean, float *rstd, int rows,
                           int cols);
    //  dx (overwritten, or added to when add_dx: a residual stream's
    //  gradient), dgamma and dbeta (added to; kn_layernorm_col_bwd's order).
    void (*layernorm_bwd) (kn_backend_t *self, const float *dy, const float *x,
                           const float *gamma, const float *mean, const float *rstd, float *dx,
                           float *dgamma, float *dbeta, int rows, int cols, bool add_dx);
    //  Row softmax of scale * x (y may be x) and its backward (dx may be dp).
    void (*softmax_fwd) (kn_backend_t *self, const float *x, float *y, int rows, int cols,
                         float scale);
    void (*softmax_bwd) (kn_backend_t *self, const float *p, const float *dp, float *dx,
                         int rows, int cols, float scale);
    //  y = alpha * y + x (n elements).
    void (*axpy) (kn_backend_t *self, float alpha, const float *x, float *y, size_t n);
    //  x [b * len + i] += add [i] for b < batch (a bias on every row, the
    //  positional embedding on every sample).
    void (*broadcast_add) (kn_backend_t *self, float *x, const float *add, int batch, size_t len);
    //  y [r * cols + c] = x [r * cols + c] + bias [c] (y = bias on every row
    //  when x is NULL; y may be x): a linear layer's bias, and the residual
    //  stream, put into C before a product with beta = 1 adds to it.
    void (*bias_rows) (kn_backend_t *self, const float *x, const float *bias, float *y, int rows,
                       int cols);
    //  Mean over T of x (B, T, D) into y (B, D), and its backward dx = dy / T.
    void (*meanpool_fwd) (kn_backend_t *self, const float *x, float *y, int b, int t, int d);
    void (*meanpool_bwd) (kn_backend_t *self, const float *dy, float *dx, int b, int t, int d);
    //  Copies rows: y [r * ly + c] = x [r * lx + c], c < cols (and the backward
    //  direction by swapping arguments; destination rows are overwritten).
    void (*copy_rows) (kn_backend_t *self, const float *x, int lx, float *y, int ly, int rows,
                       int cols);
    //  Per-row loss (into loss [rows]) and dlogits (kn_loss_row).
    void (*loss) (kn_backend_t *self, int task, const float *logits, const float *y, int rows,
                  int n_out, float *dlogits, float *loss, float grad_scale);
    //  Logits -> predictions in place (kn_predict_row).
    void (*predict) (kn_backend_t *self, int task, float *logits, int rows, int n_out);
    //  AdamW over n parameters (kn_adamw_elem).
    void (*adamw) (kn_backend_t *self, float *p, const float *g, float *m, float *v, size_t n,
                   float lr, float b1, float b2, float eps, float wd, float bc1, float bc2_sqrt);
    //  Averages buf over the data-parallel group (NCCL all-reduce); NULL when
    //  the backend is alone. 0 or -1 (error set; a lost rank fails, it never hangs).
    int (*allreduce_mean) (kn_backend_t *self, float *buf, size_t n);
};

//  Returns a CPU backend computing with `threads` threads (OpenMP loops and
//  OpenBLAS; threads < 1 means 1). Never NULL. Same thread count + same
//  inputs => bit-identical results.
kn_backend_t *kn_cpu_new (int threads);

//  Destroys a backend (any kind) and sets *self_p to NULL; accepts NULL.
//  Destroy every model on it first.
void kn_backend_destroy (kn_backend_t **self_p);

//  Returns 0 when nothing failed so far, -1 otherwise (after waiting for
//  queued GPU work).
int kn_backend_sync (kn_backend_t *self);

//  Returns the first failure's description, "" when none. Borrowed.
const char *kn_backend_error (const kn_backend_t *self);

// ---------------------------------------------------------------- GPU (kn_gpu.cu)

//  Returns the number of usable CUDA devices: 0 when there is no GPU, no
//  driver, or the runtime fails (*why then says which, if why is not NULL).
int kn_gpu_count (char *why, size_t why_size);

//  Returns a backend on CUDA device `device`, or NULL with the reason in err.
kn_backend_t *kn_gpu_new (int device, char *err, size_t err_size);

//  NCCL data parallel. Rank 0 calls kn_gpu_nccl_id to make the 128-byte
//  unique id (it names rank 0's bootstrap address), the job carries it to
//  every rank, and each rank calls kn_gpu_new_nccl with it. Models on such a
//  backend average their gradients over the group after every backward
//  (ncclAllReduce, ncclAvg) before the optimizer step; each rank feeds its
//  own shard of the batch and all ranks must start from the same seed.
//  Initialisation and every all-reduce give up after timeout_ms (the
//  communicator is aborted) instead of waiting forever for a lost rank.
#define KN_NCCL_ID_BYTES 128
int kn_gpu_nccl_id (unsigned char id [KN_NCCL_ID_BYTES], char *err, size_t err_size);
kn_backend_t *kn_gpu_new_nccl (int device, const unsigned char id [KN_NCCL_ID_BYTES],
                               int nranks, int rank, int timeout_ms, char *err,
                               size_t err_size);

//  Writes the linked NCCL's version ("2.21.5") into out; 0, or -1 with the
//  reason in out. Needs no GPU.
int kn_gpu_nccl_version (char *out, size_t out_size);

//  Selftest (CPU backend).
void kn_cpu_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
