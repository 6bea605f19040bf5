/*  kn_gemm.c - bf16 x bf16 -> float32 matrix products (see kn_gemm.h).

    Layout (GotoBLAS style, sized for Zen 4: 32 KB L1d, 1 MB L2 per core):
      - op(B) is packed whole into panels of S_NR = 32 columns: for pair p
        of k, 32 dwords, dword j = (bf16 B [2p][j] low, bf16 B [2p+1][j] high),
        the operand vdpbf16ps wants. A panel is k * 64 bytes (16 KB at k 256:
        it stays in L1 while the A panels below stream past it).
      - op(A) is packed S_MC rows at a time (<= 256 KB, in L2), each row as
        its k pairs of bf16 (dword p = A [i][2p] low, A [i][2p+1] high).
      - The micro-kernel keeps an 8 x 32 tile of C in 16 zmm accumulators;
        per pair of k it loads two B vectors and broadcasts one dword of
        each of the 8 A rows: 16 vdpbf16ps (64 flops each) per 10 loads.
    Each element's sum runs over its whole k in pair order (no k blocking),
    so the bits do not depend on tiles or threads; edges are zero-padded
    (rows of A, columns of B, the odd last k) and stored with masks.

    Intrinsics live in functions marked S_TGT (target attribute), so the
    rest of the build keeps its flags and runs on any x86-64; callers check
    kn_gemm_supported first.
*/
#include "kn_gemm.h"

#include <assert.h>
#include <cblas.h>
#include <float.h>
#include <immintrin.h>
#include <math.h>
#include <omp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb_mem.h"

#define S_MR 8                  //  rows of the micro-tile
#define S_NR 32                 //  columns of the micro-tile (2 zmm)
#define S_A_BYTES (256 * 1024)  //  packed A chunk, for L2
#define S_TGT __attribute__ ((target ("avx512bf16,avx512f,avx512bw,avx512vl")))

//  Per-thread packing space, grown on demand, 64-byte aligned.
typedef struct {
    void *raw;
    uint32_t *buf;
    size_t cap;                 //  dwords
} s_ws_t;

static uint32_t *
s_ws_get (s_ws_t *ws, size_t dwords)
{
    if (dwords > ws->cap) {
        free (ws->raw);
        ws->raw = lb_xmalloc (dwords * sizeof (uint32_t) + 64);
        ws->buf = (uint32_t *) (((uintptr_t) ws->raw + 63) & ~(uintptr_t) 63);
        ws->cap = dwords;
    }
    return ws->buf;
}

static void
s_ws_release (s_ws_t *ws)
{
    free (ws->raw);
    memset (ws, 0, sizeof *ws);
}

//  The packing space kept between calls (allocating it per call cost page
//  faults: glibc hands large blocks back to the kernel on free).
struct kn_gemm_s {
    int threads;
    bool supported;
    s_ws_t shared;              //  op(B) packed once and shared by the threads
    s_ws_t *a, *b;              //  per thread: op(A) chunks, a thread's own op(B)
};

kn_gemm_t *
kn_gemm_new (int threads)
{
    kn_gemm_t *self = (kn_gemm_t *) lb_xcalloc (1, sizeof *self);
    self->threads = threads < 1 ? 1 : threads;
    self->supported = kn_gemm_supported ();
    self->a = (s_ws_t *) lb_xcalloc ((size_t) self->threads, sizeof (s_ws_t));
    self->b = (s_ws_t *) lb_xcalloc ((size_t) self->threads, sizeof (s_ws_t));
    return self;
}

void
kn_gemm_destroy (kn_gemm_t **self_p)
{
    assert (self_p);
    kn_gemm_t *self = *self_p;
    if (!self)
        return;
    s_ws_release (&self->shared);
    for (int t = 0; t < self->threads; t++) {
        s_ws_release (&self->a [t]);
        s_ws_release (&self->b [t]);
    }
    free (self->a);
    free (self->b);
    free (self);
    *self_p = NULL;
}

bool
kn_gemm_supported (void)
{
    __builtin_cpu_init ();
    return __builtin_cpu_supports ("avx512f") && __builtin_cpu_supports ("avx512bw")
        && __builtin_cpu_supports ("avx512vl") && __builtin_cpu_supports ("avx512bf16");
}

// ---------------------------------------------------------------- scalar reference

//  fp32 -> bf16 bits as vcvtne2ps2bf16: zero and denormals -> signed zero,
//  NaN -> quiet NaN, infinity kept, otherwise round to nearest even.
static uint16_t
s_bf16_bits (float x)
{
    uint32_t u;
    memcpy (&u, &x, sizeof u);
    uint32_t e = u & 0x7F800000u;
    if (e == 0)
        return (uint16_t) ((u >> 16) & 0x8000u);
    if (e == 0x7F800000u)
        return (uint16_t) ((u >> 16) | ((u & 0x7FFFFFu) ? 0x40u : 0u));
    u += 0x7FFFu + ((u >> 16) & 1u);
    return (uint16_t) (u >> 16);
}

float
kn_gemm_round (float x)
{
    uint32_t u = (uint32_t) s_bf16_bits (x) << 16;
    float f;
    memcpy (&f, &u, sizeof f);
    return f;
}

//  A denormal result becomes a zero of its sign (vdpbf16ps flushes its outputs).
static float
s_ftz (float x)
{
    return fabsf (x) < FLT_MIN ? copysignf (0.0f, x) : x;
}

static float
s_at (const float *a, int ld, bool t, int r, int c)
{
    return t ? a [(size_t) c * ld + r] : a [(size_t) r * ld + c];
}

void
kn_gemm_ref (bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda,
             const float *b, int ldb, float beta, float *c, int ldc)
{
    assert (m >= 0 && n >= 0 && k >= 0);
    for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++) {
            float acc = 0.0f;
            for (int p = 0; p < k; p += 2) {
                float a0 = kn_gemm_round (s_at (a, lda, ta, i, p));
                float b0 = kn_gemm_round (s_at (b, ldb, tb, p, j));
                float a1 = p + 1 < k ? kn_gemm_round (s_at (a, lda, ta, i, p + 1)) : 0.0f;
                float b1 = p + 1 < k ? kn_gemm_round (s_at (b, ldb, tb, p + 1, j)) : 0.0f;
                acc = s_ftz (fmaf (a1, b1, acc));
                acc = s_ftz (fmaf (a0, b0, acc));
            }
            float *cij = c + (size_t) i * ldc + j;
            *cij = beta == 0.0f ? alpha * acc : fmaf (alpha, acc, beta * *cij);
        }
}

// ---------------------------------------------------------------- packing

static __mmask16
s_mask (int count)
{
    return count >= 16 ? (__mmask16) 0xFFFF : count <= 0 ? 0 : (__mmask16) ((1u << count) - 1);
}

//  Word order that interleaves two 16-word halves: out 2j = in j, out 2j+1 = in 16 + j.
static const uint16_t s_interleave [32] = {
    0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
    8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31
};

//  16 dwords (lo [j] low, hi [j] high) from the first `count` floats of two
//  rows (the rest zero); hi NULL = zeros.
S_TGT static inline __m512i
s_pair16 (const float *lo, const float *hi, int count)
{
    __mmask16 msk = s_mask (count);
    __m512 vl = _mm512_maskz_loadu_ps (msk, lo);
    __m512 vh = hi ? _mm512_maskz_loadu_ps (msk, hi) : _mm512_setzero_ps ();
    __m512i w = (__m512i) _mm512_cvtne2ps_pbh (vh, vl);
    return _mm512_permutexvar_epi16 (_mm512_loadu_si512 (s_interleave), w);
}

//  16 dwords = the first `count` (<= 32) consecutive floats of r as bf16 pairs.
S_TGT static inline __m512i
s_run16 (const float *r, int count)
{
    __m512 v0 = _mm512_maskz_loadu_ps (s_mask (count), r);
    __m512 v1 = count > 16 ? _mm512_maskz_loadu_ps (s_mask (count - 16), r + 16)
                           : _mm512_setzero_ps ();
    return (__m512i) _mm512_cvtne2ps_pbh (v1, v0);
}

//  Transposes a 16 x 16 block of dwords in place (r [i] = row i).
S_TGT static inline void
s_transpose16 (__m512i r [16])
{
    __m512i t [16];
    for (int i = 0; i < 16; i += 2) {
        t [i] = _mm512_unpacklo_epi32 (r [i], r [i + 1]);
        t [i + 1] = _mm512_unpackhi_epi32 (r [i], r [i + 1]);
    }
    for (int i = 0; i < 16; i += 4) {
        r [i] = _mm512_unpacklo_epi64 (t [i], t [i + 2]);
        r [i + 1] = _mm512_unpackhi_epi64 (t [i], t [i + 2]);
        r [i + 2] = _mm512_unpacklo_epi64 (t [i + 1], t [i + 3]);
        r [i + 3] = _mm512_unpackhi_epi64 (t [i + 1], t [i + 3]);
    }
    for (int h = 0; h < 16; h += 8)
        for (int i = 0; i < 4; i++) {
            t [h + i] = _mm512_shuffle_i32x4 (r [h + i], r [h + i + 4], 0x88);
            t [h + i + 4] = _mm512_shuffle_i32x4 (r [h + i], r [h + i + 4], 0xDD);
        }
    for (int i = 0; i < 8; i++) {
        r [i] = _mm512_shuffle_i32x4 (t [i], t [i + 8], 0x88);
        r [i + 8] = _mm512_shuffle_i32x4 (t [i], t [i + 8], 0xDD);
    }
}

//  op(B) (k x n) into panels of S_NR columns: dst [panel][p][j].
S_TGT static void
s_pack_b (bool tb, int n, int k, const float *b, int ldb, uint32_t *dst)
{
    int kp = (k + 1) / 2;
    if (!tb) {
        //  B [k][j] = b [k * ldb + j]: rows 2p and 2p+1 side by side, read
        //  whole (across the panels) so that memory is read in order
        for (int p = 0; p < kp; p++) {
            const float *lo = b + (size_t) 2 * p * ldb;
            const float *hi = 2 * p + 1 < k ? lo + ldb : NULL;
            for (int j0 = 0; j0 < n; j0 += 16) {
                uint32_t *out = dst + (size_t) (j0 / S_NR) * kp * S_NR + (size_t) p * S_NR
                              + j0 % S_NR;
                _mm512_storeu_si512 (out, s_pair16 (lo + j0, hi ? hi + j0 : NULL, n - j0));
            }
            if (n % S_NR && n % S_NR <= 16)     //  the last panel's zero half
                _mm512_storeu_si512 (dst + (size_t) (n / S_NR) * kp * S_NR + (size_t) p * S_NR + 16,
                                     _mm512_setzero_si512 ());
        }
        return;
    }
    for (int j0 = 0; j0 < n; j0 += S_NR) {
        uint32_t *pan = dst + (size_t) (j0 / S_NR) * kp * S_NR;
        int nc = n - j0 < S_NR ? n - j0 : S_NR;
        //  B [k][j] = b [j * ldb + k]: a column's pairs are adjacent;
        //  16 columns x 16 pairs at a time, transposed in registers
        __m512i r [16];
        for (int c0 = 0; c0 < S_NR; c0 += 16)
            for (int k0 = 0; k0 < k; k0 += 32) {
                for (int q = 0; q < 16; q++)
                    r [q] = c0 + q < nc ? s_run16 (b + (size_t) (j0 + c0 + q) * ldb + k0, k - k0)
                                        : _mm512_setzero_si512 ();
                s_transpose16 (r);
                int pairs = (k - k0 + 1) / 2 < 16 ? (k - k0 + 1) / 2 : 16;
                for (int q = 0; q < pairs; q++)
                    _mm512_storeu_si512 (pan + (size_t) (k0 / 2 + q) * S_NR + c0, r [q]);
            }
    }
}

//  Rows [i0, i0 + rows) of op(A) (m x k), padded with zero rows to a
//  multiple of S_MR: dst [row][p].
S_TGT static void
s_pack_a (bool ta, int k, const float *a, int lda, int i0, int rows, uint32_t *dst)
{
    int kp = (k + 1) / 2;
    int padded = (rows + S_MR - 1) / S_MR * S_MR;
    if (padded > rows)
        memset (dst + (size_t) rows * kp, 0, (size_t) (padded - rows) * kp * sizeof (uint32_t));
    if (!ta) {
        //  A [i][k] = a [i * lda + k]: a row's pairs are adjacent
        for (int r = 0; r < rows; r++) {
            const float *row = a + (size_t) (i0 + r) * lda;
            uint32_t *out = dst + (size_t) r * kp;
            int k0 = 0;
            for (; k0 + 32 <= k; k0 += 32)
                _mm512_storeu_si512 (out + k0 / 2, s_run16 (row + k0, 32));
            if (k0 < k)
                _mm512_mask_storeu_epi32 (out + k0 / 2, s_mask ((k - k0 + 1) / 2),
                                          s_run16 (row + k0, k - k0));
        }
    }
    else {
        //  A [i][k] = a [k * lda + i]: rows 2p and 2p+1 of a hold 16 rows'
        //  pairs; 16 pairs x 16 rows at a time, transposed in registers
        __m512i r [16];
        for (int p0 = 0; p0 < kp; p0 += 16)         //  rows of a in order
            for (int r0 = 0; r0 < rows; r0 += 16) {
                int nc = rows - r0 < 16 ? rows - r0 : 16;
                int pairs = kp - p0 < 16 ? kp - p0 : 16;
                for (int q = 0; q < 16; q++) {
                    int p = p0 + q;
                    const float *lo = a + (size_t) 2 * p * lda + i0 + r0;
                    r [q] = q < pairs ? s_pair16 (lo, 2 * p + 1 < k ? lo + lda : NULL, nc)
                                      : _mm512_setzero_si512 ();
                }
                s_transpose16 (r);
                for (int q = 0; q < nc; q++)
                    _mm512_mask_storeu_epi32 (dst + (size_t) (r0 + q) * kp + p0, s_mask (pairs), r [q]);
            }
    }
}

// ---------------------------------------------------------------- micro-kernel

//  One row's epilogue: c [0, nr) = alpha acc + beta c.
S_TGT static inline void
s_store_row (float *c, int nr, __m512 acc0, __m512 acc1, float alpha, float beta)
{
    __mmask16 m0 = s_mask (nr), m1 = s_mask (nr - 16);
    __m512 va = _mm512_set1_ps (alpha);
    if (beta == 0.0f) {
        _mm512_mask_storeu_ps (c, m0, _mm512_mul_ps (va, acc0));
        if (m1)
            _mm512_mask_storeu_ps (c + 16, m1, _mm512_mul_ps (va, acc1));
    }
    else {
        __m512 vb = _mm512_set1_ps (beta);
        __m512 c0 = _mm512_maskz_loadu_ps (m0, c);
        _mm512_mask_storeu_ps (c, m0, _mm512_fmadd_ps (va, acc0, _mm512_mul_ps (vb, c0)));
        if (m1) {
            __m512 c1 = _mm512_maskz_loadu_ps (m1, c + 16);
            _mm512_mask_storeu_ps (c + 16, m1,
                                   _mm512_fmadd_ps (va, acc1, _mm512_mul_ps (vb, c1)));
        }
    }
}

#define S_BCAST(i) ((__m512bh) _mm512_set1_epi32 ((int) a##i [p]))
#define S_STEP(i)                                                  \
    do {                                                           \
        __m512bh av = S_BCAST (i);                                 \
        c##i##0 = _mm512_dpbf16_ps (c##i##0, av, b0);              \
        c##i##1 = _mm512_dpbf16_ps (c##i##1, av, b1);              \
    } while (0)

//  C tile (mr <= 8 rows, nr <= 32 columns at c) from 8 packed A rows
//  (ap, kp dwords each) and one B panel (bp).
S_TGT static void
s_kernel (int kp, const uint32_t *ap, const uint32_t *bp, float *c, int ldc, int mr, int nr,
          float alpha, float beta)
{
    const uint32_t *a0 = ap, *a1 = a0 + kp, *a2 = a1 + kp, *a3 = a2 + kp, *a4 = a3 + kp,
                   *a5 = a4 + kp, *a6 = a5 + kp, *a7 = a6 + kp;
    __m512 c00 = _mm512_setzero_ps (), c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00,
           c30 = c00, c31 = c00, c40 = c00, c41 = c00, c50 = c00, c51 = c00, c60 = c00,
           c61 = c00, c70 = c00, c71 = c00;
    if (nr <= 16) {
        //  a narrow panel (n <= 16 left): the second half of B is zeros
        for (int p = 0; p < kp; p++) {
            __m512bh b0 = (__m512bh) _mm512_load_si512 (bp + (size_t) p * S_NR);
            c00 = _mm512_dpbf16_ps (c00, S_BCAST (0), b0);
            c10 = _mm512_dpbf16_ps (c10, S_BCAST (1), b0);
            c20 = _mm512_dpbf16_ps (c20, S_BCAST (2), b0);
            c30 = _mm512_dpbf16_ps (c30, S_BCAST (3), b0);
            c40 = _mm512_dpbf16_ps (c40, S_BCAST (4), b0);
            c50 = _mm512_dpbf16_ps (c50, S_BCAST (5), b0);
            c60 = _mm512_dpbf16_ps (c60, S_BCAST (6), b0);
            c70 = _mm512_dpbf16_ps (c70, S_BCAST (7), b0);
        }
    }
    else
    for (int p = 0; p < kp; p++) {
        __m512bh b0 = (__m512bh) _mm512_load_si512 (bp + (size_t) p * S_NR);
        __m512bh b1 = (__m512bh) _mm512_load_si512 (bp + (size_t) p * S_NR + 16);
        S_STEP (0);
        S_STEP (1);
        S_STEP (2);
        S_STEP (3);
        S_STEP (4);
        S_STEP (5);
        S_STEP (6);
        S_STEP (7);
    }
    __m512 acc [S_MR][2] = { { c00, c01 }, { c10, c11 }, { c20, c21 }, { c30, c31 },
                             { c40, c41 }, { c50, c51 }, { c60, c61 }, { c70, c71 } };
    for (int i = 0; i < mr; i++)
        s_store_row (c + (size_t) i * ldc, nr, acc [i][0], acc [i][1], alpha, beta);
}

// ---------------------------------------------------------------- drivers

//  Packed-B geometry of a product.
static size_t
s_b_dwords (int n, int k)
{
    return (size_t) ((n + S_NR - 1) / S_NR) * (size_t) ((k + 1) / 2) * S_NR;
}

//  Rows of op(A) packed per chunk: S_A_BYTES worth, whole micro-tiles.
static int
s_chunk_rows (int m, int k)
{
    int kp = (k + 1) / 2;
    int mc = kp ? (int) (S_A_BYTES / 4 / (size_t) kp) / S_MR * S_MR : 256;
    if (mc < S_MR)
        mc = S_MR;
    int m_pad = (m + S_MR - 1) / S_MR * S_MR;
    return mc < m_pad ? mc : m_pad;
}

//  Rows [i_lo, i_hi) of C from the packed op(B) bp (all n columns).
S_TGT static void
s_compute (bool ta, int i_lo, int i_hi, int n, int k, float alpha, const float *a, int lda,
           const uint32_t *bp, float beta, float *c, int ldc, s_ws_t *ws)
{
    int kp = (k + 1) / 2;
    int panels = (n + S_NR - 1) / S_NR;
    int mc = s_chunk_rows (i_hi - i_lo, k);
    uint32_t *ap = s_ws_get (ws, (size_t) mc * kp + 16);
    for (int i0 = i_lo; i0 < i_hi; i0 += mc) {
        int rows = i_hi - i0 < mc ? i_hi - i0 : mc;
        s_pack_a (ta, k, a, lda, i0, rows, ap);
        for (int jp = 0; jp < panels; jp++) {
            int j0 = jp * S_NR, nr = n - j0 < S_NR ? n - j0 : S_NR;
            const uint32_t *bpan = bp + (size_t) jp * kp * S_NR;
            for (int r0 = 0; r0 < rows; r0 += S_MR) {
                int mr = rows - r0 < S_MR ? rows - r0 : S_MR;
                s_kernel (kp, ap + (size_t) r0 * kp, bpan, c + (size_t) (i0 + r0) * ldc + j0,
                          ldc, mr, nr, alpha, beta);
            }
        }
    }
}

//  One thread, whole problem (bws: packed B, ws: packed A).
S_TGT static void
s_gemm_st (bool ta, bool tb, int m, int n, int k, float alpha, const float *a, int lda,
           const float *b, int ldb, float beta, float *c, int ldc, s_ws_t *bws, s_ws_t *ws)
{
    if (m <= 0 || n <= 0)
        return;
    uint32_t *bp = s_ws_get (bws, s_b_dwords (n, k));
    s_pack_b (tb, n, k, b, ldb, bp);
    s_compute (ta, 0, m, n, k, alpha, a, lda, bp, beta, c, ldc, ws);
}

void
kn_gemm_bf16 (kn_gemm_t *self, bool ta, bool tb, int m, int n, int k, float alpha,
              const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    assert (self && self->supported);
    assert (m >= 0 && n >= 0 && k >= 0);
    int nt = self->threads;
    bool split_m = m >= n;
    int len = split_m ? m : n;
    if (nt == 1 || (double) m * n * k < 262144.0 || len < 2 * S_NR) {
        s_gemm_st (ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc, &self->b [0],
                   &self->a [0]);
        return;
    }
    //  Split over rows: op(B) is packed once, its panels shared out among the
    //  threads, then each computes its rows. Over columns: each thread packs
    //  and computes its own columns. Either way whole micro-tiles per thread.
    int kp = (k + 1) / 2;
    uint32_t *bp = split_m ? s_ws_get (&self->shared, s_b_dwords (n, k)) : NULL;
    #pragma omp parallel num_threads(nt)
    {
        int t = omp_get_thread_num (), tn = omp_get_num_threads ();
        int chunk = ((len + tn - 1) / tn + S_NR - 1) / S_NR * S_NR;
        int lo = t * chunk < len ? t * chunk : len, hi = lo + chunk < len ? lo + chunk : len;
        if (split_m) {
            int panels = (n + S_NR - 1) / S_NR;
            for (int jp = t; jp < panels; jp += tn) {
                int j0 = jp * S_NR;
                s_pack_b (tb, n - j0 < S_NR ? n - j0 : S_NR, k,
                          tb ? b + (size_t) j0 * ldb : b + j0, ldb,
                          bp + (size_t) jp * kp * S_NR);
            }
            #pragma omp barrier
            if (hi > lo)
                s_compute (ta, lo, hi, n, k, alpha, a, lda, bp, beta, c, ldc, &self->a [t]);
        }
        else
        if (hi > lo)
            s_gemm_st (ta, tb, m, hi - lo, k, alpha, a, lda,
                       tb ? b + (size_t) lo * ldb : b + lo, ldb, beta, c + lo, ldc,
                       &self->b [t], &self->a [t]);
    }
}

void
kn_gemm_bf16_heads (kn_gemm_t *self, bool ta, bool tb, int m, int n, int k, float alpha,
                    const float *a, int lda, size_t sa, size_t ha, const float *b, int ldb,
                    size_t sb, size_t hb, float beta, float *c, int ldc, size_t sc, size_t hc,
                    int count, int heads)
{
    assert (self && self->supported);
    assert (m >= 0 && n >= 0 && k >= 0 && count >= 0 && heads >= 0);
    int nt = self->threads, total = count * heads;
    size_t work = (size_t) m * n * k * total;
    #pragma omp parallel num_threads(nt) if(work >= 262144)
    {
        int t = omp_get_thread_num ();
        #pragma omp for schedule(static)
        for (int x = 0; x < total; x++) {
            size_t i = (size_t) (x / heads), j = (size_t) (x % heads);
            s_gemm_st (ta, tb, m, n, k, alpha, a + i * sa + j * ha, lda, b + i * sb + j * hb, ldb,
                       beta, c + i * sc + j * hc, ldc, &self->b [t], &self->a [t]);
        }
    }
}

// ---------------------------------------------------------------- selftest

static void
s_fill (float *x, size_t n, uint64_t *state)
{
    for (size_t i = 0; i < n; i++) {
        *state = *state * 6364136223846793005ull + 1442695040888963407ull;
        x [i] = (float) ((*state >> 40) & 0xFFFFFF) / 8388608.0f - 1.0f;
    }
}

//  Largest |x - y| over |C| elements, relative to the largest |y|.
static double
s_rel_diff (const float *x, const float *y, size_t n)
{
    double worst = 0, scale = 1e-30;
    for (size_t i = 0; i < n; i++) {
        worst = fmax (worst, fabs ((double) x [i] - y [i]));
        scale = fmax (scale, fabs ((double) y [i]));
    }
    return worst / scale;
}

//  One case: every transpose form at (m, n, k) with padding in the leading
//  dimensions; fast path vs reference (exact) vs sgemm (bf16 tolerance).
static void
s_case (int m, int n, int k, float alpha, float beta, bool fast, bool verbose)
{
    for (int form = 0; form < 4; form++) {
        bool ta = form & 1, tb = form & 2;
        int lda = (ta ? m : k) + 3, ldb = (tb ? k : n) + 5, ldc = n + 2;
        size_t na = (size_t) (ta ? k : m) * lda + 1, nb = (size_t) (tb ? n : k) * ldb + 1;
        size_t nc = (size_t) m * ldc + 1;
        float *a = (float *) lb_xcalloc (na, sizeof (float));
        float *b = (float *) lb_xcalloc (nb, sizeof (float));
        float *c0 = (float *) lb_xcalloc (nc, sizeof (float));
        float *ref = (float *) lb_xcalloc (nc, sizeof (float));
        float *got = (float *) lb_xcalloc (nc, sizeof (float));
        float *got2 = (float *) lb_xcalloc (nc, sizeof (float));
        float *sg = (float *) lb_xcalloc (nc, sizeof (float));
        uint64_t state = (uint64_t) m * 131 + n * 17 + k + form;
        s_fill (a, na, &state);
        s_fill (b, nb, &state);
        s_fill (c0, nc, &state);
        memcpy (ref, c0, nc * sizeof (float));
        memcpy (sg, c0, nc * sizeof (float));
        kn_gemm_ref (ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, ref, ldc);
        if (m && n)
            cblas_sgemm (CblasRowMajor, ta ? CblasTrans : CblasNoTrans,
                         tb ? CblasTrans : CblasNoTrans, m, n, k, alpha, a, lda, b, ldb, beta,
                         sg, ldc);
        //  bf16 operands: each product off by <= 2^-8 relative, sums of
        //  k random-sign terms -> well under 2% of the largest element
        double vs_sgemm = s_rel_diff (ref, sg, nc);
        if (vs_sgemm > 2e-2)
            fprintf (stderr, "kn_gemm: ref vs sgemm %dx%dx%d form %d: %.3g\n", m, n, k, form,
                     vs_sgemm);
        assert (vs_sgemm <= 2e-2);
        if (fast) {
            memcpy (got, c0, nc * sizeof (float));
            memcpy (got2, c0, nc * sizeof (float));
            kn_gemm_t *g1 = kn_gemm_new (1), *g2 = kn_gemm_new (2);
            kn_gemm_bf16 (g1, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, got, ldc);
            kn_gemm_bf16 (g2, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, got2, ldc);
            kn_gemm_destroy (&g1);
            kn_gemm_destroy (&g2);
            assert (!g1 && !g2);
            for (size_t i = 0; i < nc; i++) {
                if (memcmp (got + i, ref + i, sizeof (float)))
                    fprintf (stderr, "kn_gemm: %dx%dx%d ta=%d tb=%d element %zu: fast %.9g ref %.9g\n",
                             m, n, k, ta, tb, i, (double) got [i], (double) ref [i]);
                assert (memcmp (got + i, ref + i, sizeof (float)) == 0);
            }
            assert (memcmp (got, got2, nc * sizeof (float)) == 0);
        }
        if (verbose && form == 0)
            printf ("  %4d x %4d x %4d alpha %g beta %g: ref vs sgemm %.2e%s\n", m, n, k,
                    (double) alpha, (double) beta, vs_sgemm,
                    fast ? ", AVX512-BF16 == ref (all 4 forms, 1 and 2 threads)" : "");
        free (a);
        free (b);
        free (c0);
        free (ref);
        free (got);
        free (got2);
        free (sg);
    }
}

void
kn_gemm_test (bool verbose)
{
    if (verbose)
        printf (" * kn_gemm: ");
    bool fast = kn_gemm_supported ();
    if (verbose)
        printf ("%s\n", fast ? "AVX512-BF16 present" : "no AVX512-BF16 here: reference only");

    //  rounding: ties to even, denormals to zero, NaN quiet, overflow to inf
    assert (kn_gemm_round (1.0f) == 1.0f);
    assert (kn_gemm_round (1.0f + 1.0f / 256) == 1.0f);                 //  tie, even below
    assert (kn_gemm_round (1.0f + 3.0f / 256) == 1.0f + 4.0f / 256);    //  tie, even above
    assert (kn_gemm_round (1.0f + 1.0f / 256 + 1.0f / 65536) == 1.0f + 2.0f / 256);
    assert (kn_gemm_round (FLT_MIN / 2) == 0.0f && !signbit (kn_gemm_round (FLT_MIN / 2)));
    assert (kn_gemm_round (-FLT_MIN / 2) == 0.0f && signbit (kn_gemm_round (-FLT_MIN / 2)));
    assert (isnan (kn_gemm_round (NAN)));
    assert (isinf (kn_gemm_round (FLT_MAX)));
    assert (kn_gemm_round (-INFINITY) == -INFINITY);
    if (fast) {
        //  the scalar rounding against the instruction, over many patterns
        float in [4096];
        uint64_t state = 7;
        for (int i = 0; i < 4096; i++) {
            state = state * 6364136223846793005ull + 1442695040888963407ull;
            uint32_t u = (uint32_t) (state >> 32);
            memcpy (in + i, &u, sizeof u);
        }
        //  each through a 1x1x1 product by 1.0 (the sum starts at +0, so -0 comes out +0)
        int diff = 0;
        kn_gemm_t *g = kn_gemm_new (1);
        for (int i = 0; i < 4096; i++) {
            float one = 1.0f, got = 0.0f, want = 0.0f;
            kn_gemm_bf16 (g, false, false, 1, 1, 1, 1.0f, in + i, 1, &one, 1, 0.0f, &got, 1);
            kn_gemm_ref (false, false, 1, 1, 1, 1.0f, in + i, 1, &one, 1, 0.0f, &want, 1);
            diff += !((isnan (want) && isnan (got)) || memcmp (&want, &got, sizeof got) == 0);
            diff += kn_gemm_round (in [i]) != want && !isnan (want) && fabsf (want) > 0.0f;
        }
        assert (diff == 0);
        kn_gemm_destroy (&g);
    }
    //  odd sizes around the tile edges (8 x 32) and the pair of k
    int sizes [] = { 1, 7, 31, 33, 255 };
    for (int i = 0; i < 5; i++)
        for (int j = 0; j < 5; j++) {
            int m = sizes [i], n = sizes [j], k = sizes [(i + j) % 5];
            if ((double) m * n * k <= 300000.0)
                s_case (m, n, k, 1.0f, 0.0f, fast, verbose && j == 0);
        }
    s_case (33, 31, 7, 0.5f, 0.25f, fast, verbose);
    s_case (64, 96, 1025, -1.5f, 1.0f, fast, verbose);
    s_case (1025, 40, 33, 1.0f, -2.0f, fast, verbose);
    s_case (70, 1025, 16, 2.0f, 0.5f, fast, verbose);
    s_case (0, 5, 3, 1.0f, 0.0f, fast, verbose);
    s_case (5, 4, 0, 1.0f, 0.5f, fast, verbose);

    if (fast) {
        //  over count x heads = the single product per matrix
        enum { M = 19, N = 23, K = 37, CNT = 3, H = 2 };
        size_t na = (size_t) CNT * H * M * K, nb = (size_t) CNT * H * K * N;
        size_t nc = (size_t) CNT * H * M * N;
        float *a = (float *) lb_xcalloc (na, sizeof (float));
        float *b = (float *) lb_xcalloc (nb, sizeof (float));
        float *c1 = (float *) lb_xcalloc (nc, sizeof (float));
        float *c2 = (float *) lb_xcalloc (nc, sizeof (float));
        uint64_t state = 3;
        s_fill (a, na, &state);
        s_fill (b, nb, &state);
        //  heads side by side in a row (as attention heads in qkv)
        kn_gemm_t *g = kn_gemm_new (2);
        kn_gemm_bf16_heads (g, false, true, M, N, K, 1.0f, a, H * K, (size_t) H * M * K, K, b,
                            H * K, (size_t) H * K * N, K, 0.0f, c1, N, (size_t) H * M * N,
                            (size_t) M * N, CNT, H);
        kn_gemm_destroy (&g);
        for (int i = 0; i < CNT; i++)
            for (int j = 0; j < H; j++)
                kn_gemm_ref (false, true, M, N, K, 1.0f, a + (size_t) i * H * M * K + j * K, H * K,
                             b + (size_t) i * H * K * N + j * K, H * K, 0.0f,
                             c2 + (size_t) i * H * M * N + (size_t) j * M * N, N);
        assert (memcmp (c1, c2, nc * sizeof (float)) == 0);
        free (a);
        free (b);
        free (c1);
        free (c2);
    }
    if (verbose)
        printf ("   OK\n");
}
