/*  kn_gemm.h - mixed-precision matrix products for the CPU backend:
    bf16 x bf16 products accumulated in float32 (AVX512-BF16 vdpbf16ps).

    C = alpha op(A) op(B) + beta C, row-major with leading dimensions as
    cblas (CblasRowMajor), float32 in and out. op(A) is m x k, op(B) k x n.
    The operands are rounded to bfloat16 when they are packed
    (round-to-nearest-even, denormals to signed zero, NaN kept quiet: what
    vcvtne2ps2bf16 does), and every output element is

        acc = +0; for each pair p = 0, 1, ... of k (k padded with a zero):
            acc = ftz (fma (A [2p+1] B [2p+1], acc))     //  odd term first,
            acc = ftz (fma (A [2p] B [2p], acc))         //  then even (vdpbf16ps)
        C = beta == 0 ? alpha * acc : fma (alpha, acc, beta * C)

    (ftz: a denormal result becomes a zero of its sign). Each element has one
    owner and its whole k in that order, whatever the threads or tiles, so
    1 and 2 threads give the same bits, and kn_gemm_ref (portable C, any
    machine) gives the same bits as kn_gemm_bf16 (checked by the selftest).

    The fast path needs AVX512-BF16 (and F/BW/VL): kn_gemm_supported says
    whether this CPU has it; kn_gemm_bf16 and kn_gemm_bf16_heads must only
    be called where it does (the CPU backend leaves its bf16 entries NULL
    otherwise, and kn_model_new refuses precision bf16 there).
*/
#ifndef KN_GEMM_H_INCLUDED
#define KN_GEMM_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

//  Returns true when this CPU runs kn_gemm_bf16 (AVX512-BF16, F, BW, VL).
bool kn_gemm_supported (void);

//  Returns x rounded to bfloat16 as kn_gemm rounds operands, as a float.
float kn_gemm_round (float x);

//  The fast path's state: packing space kept between calls for `threads`
//  OpenMP threads (< 1 means 1). One caller at a time. kn_gemm_new returns
//  it (never NULL); kn_gemm_destroy frees it, sets *self_p NULL, accepts NULL.
typedef struct kn_gemm_s kn_gemm_t;
kn_gemm_t *kn_gemm_new (int threads);
void kn_gemm_destroy (kn_gemm_t **self_p);

//  The product above on self's threads, split over output rows or columns
//  (never along k). Requires kn_gemm_supported.
void kn_gemm_bf16 (kn_gemm_t *self, bool ta, bool tb, int m, int n, int k, float alpha,
                   const float *a, int lda, const float *b, int ldb, float beta, float *c,
                   int ldc);

//  The same over count x heads products: product (i, j) at a + i * sa + j *
//  ha (b, c likewise; e.g. every (sample, attention head)), shared out among
//  the threads. Requires kn_gemm_supported.
void kn_gemm_bf16_heads (kn_gemm_t *self, bool ta, bool tb, int m, int n, int k, float alpha,
                         const float *a, int lda, size_t sa, size_t ha, const float *b, int ldb,
                         size_t sb, size_t hb, float beta, float *c, int ldc, size_t sc,
                         size_t hc, int count, int heads);

//  The scalar reference of the same math (one thread, any CPU; slow).
void kn_gemm_ref (bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda,
                  const float *b, int ldb, float beta, float *c, int ldc);

//  Selftest: kn_gemm_bf16 against kn_gemm_ref (exact) and cblas_sgemm (to
//  bf16 tolerance) for odd sizes, every transpose, alpha and beta; 1 vs 2
//  threads. Where the CPU lacks AVX512-BF16 only the reference is checked
//  (against sgemm), and verbose says so.
void kn_gemm_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
