/*  kn_math.h - the per-element math of every kernel, written once (STYLE.md section 7).

    Each body below is compiled three ways: by the C compiler for the CPU
    reference (kn_cpu.c calls them from OpenMP loops), by nvcc for the GPU
    (kn_gpu.cu calls them from one CUDA thread per element or per row), and by
    nvcc's host pass. So the CPU path, which every `make test` checks against
    finite differences and PyTorch, tests the GPU math too.

    Conventions: float32 everywhere, row-major matrices, `n` elements or
    `cols` columns per row. No body allocates, logs or touches global state.
    Matrix products are not here: they go through BLAS (cblas_sgemm on the
    CPU, cuBLAS on the GPU).
*/
#ifndef KN_MATH_H_INCLUDED
#define KN_MATH_H_INCLUDED

#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>

//  On the CPU the bodies are always inlined: a loop's AVX-512 / AVX2 clone
//  (kn_cpu.c) must get its own vector copy of the row bodies, not a call to
//  the baseline one.
#ifdef __CUDACC__
#   define KN_HD __host__ __device__ static inline
#elif defined (__GNUC__)
#   define KN_HD __attribute__ ((always_inline)) static inline
#else
#   define KN_HD static inline
#endif

#ifdef __cplusplus
extern "C" {
#endif

//  Activation functions (kn_config_t.act).
typedef enum {
    KN_ACT_RELU = 1,
    KN_ACT_GELU = 2          //  exact (erf) form, as torch.nn.GELU()
} kn_act_t;

//  What the network predicts, which fixes its loss (kn_config_t.task).
typedef enum {
    KN_TASK_BINARY = 1,      //  n_out = 1 logit, label 0/1, loss = BCE with logits
    KN_TASK_MULTICLASS = 2,  //  n_out = K logits, label = class index as float, loss = softmax CE
    KN_TASK_REGRESSION = 3   //  n_out = targets per row, loss = mean squared error
} kn_task_t;

#define KN_LN_EPS 1e-5f

// ---------------------------------------------------------------- exp and erfc without libm

//  The polynomials below use fmaf (one rounding per multiply-add): the same
//  bits on every CPU and on the GPU, and about a third fewer operations
//  where the CPU has FMA (kn_cpu.c's x86-64-v3 / v4 clones; the baseline
//  clone calls libm's fmaf, slower, same result).

//  Returns e^x (relative error ~2e-7) for x <= 88; 0 below -87. Branch-free
//  and call-free, so CPU loops vectorise it (libm's expf is a call) and the
//  GPU computes exactly the same function.
KN_HD float
kn_exp (float x)
{
    x = x < -87.0f ? -87.0f : x > 88.0f ? 88.0f : x;
    //  x = n ln2 + r, |r| <= ln2 / 2; n rounded with the 1.5 * 2^23 trick
    float n = fmaf (x, 1.44269504088896341f, 12582912.0f) - 12582912.0f;
    float r = fmaf (-n, 0.693145751953125f, x);
    r = fmaf (-n, 1.428606765330187045e-06f, r);
    float p = fmaf (r, 1.3889048255e-3f, 8.3333337680e-3f);
    p = fmaf (p, r, 4.1666645556e-2f);
    p = fmaf (p, r, 1.6666667163e-1f);
    p = fmaf (p, r, 0.5f);
    p = fmaf (p, r, 1.0f);
    p = fmaf (p, r, 1.0f);
    //  p * 2^n through the exponent bits
    int32_t bits = ((int32_t) n + 127) << 23;
    float scale;
    memcpy (&scale, &bits, sizeof scale);
    return p * scale;
}

//  Returns erfc (z) exp (z^2) / t as a polynomial in t = 1 / (1 + z / 2), z >= 0:
//  relative error 1.4e-7 in float (a least-squares fit, in relative error, of
//  scipy.special.erfcx over t in (0, 1]; t -> 0 gives 1 / sqrt (pi)).
KN_HD float
kn_erfcx_poly (float t)
{
    float q = fmaf (t, 4.442954063e-02f, -2.408180535e-01f);
    q = fmaf (q, t, 5.064800382e-01f);
    q = fmaf (q, t, -4.699109793e-01f);
    q = fmaf (q, t, 1.427917480e-01f);
    q = fmaf (q, t, -6.392780691e-02f);
    q = fmaf (q, t, 9.475959092e-02f);
    q = fmaf (q, t, 1.751051098e-01f);
    q = fmaf (q, t, 2.469029576e-01f);
    q = fmaf (q, t, 2.820930481e-01f);
    return fmaf (q, t, 2.820948064e-01f);
}

// ---------------------------------------------------------------- activations

//  Returns Phi (x), the standard normal CDF, and in *pdf phi (x) =
//  exp (-x^2 / 2) / sqrt (2 pi), from one exp: for z = |x| / sqrt 2,
//  erfc (z) = t kn_erfcx_poly (t) exp (-x^2 / 2) and Phi = erfc / 2 (x < 0)
//  or 1 - erfc / 2. x^2 is carried as its float plus the rounding error
//  (fmaf), so the tails keep ~5e-7 relative accuracy; |x| is clamped at 14,
//  where Phi and phi are 0 or 1 to float precision anyway.
KN_HD float
kn_normal_cdf_pdf (float x, float *pdf)
{
    float xc = x < -14.0f ? -14.0f : x > 14.0f ? 14.0f : x;
    float sq = xc * xc;
    float sq_lo = fmaf (xc, xc, -sq);                 //  xc^2 = sq + sq_lo exactly
    float e = kn_exp (-0.5f * sq);
    e = fmaf (e, -0.5f * sq_lo, e);                   //  exp (-sq_lo / 2) ~ 1 - sq_lo / 2
    float z = (xc < 0.0f ? -xc : xc) * 0.70710678118654752f;
    float t = 1.0f / fmaf (0.5f, z, 1.0f);
    float half_erfc = 0.5f * t * kn_erfcx_poly (t) * e;
    *pdf = 0.39894228040143268f * e;
    return x >= 0.0f ? 1.0f - half_erfc : half_erfc;
}

//  Phi (x) alone.
KN_HD float
kn_normal_cdf (float x)
{
    float pdf;
    return kn_normal_cdf_pdf (x, &pdf);
}

//  Returns act(x). GELU is the exact (erf) form, as torch.nn.GELU().
KN_HD float
kn_act_fwd (int act, float x)
{
    if (act == KN_ACT_GELU)
        return x * kn_normal_cdf (x);
    return x > 0.0f ? x : 0.0f;
}

//  Returns act(x) and in *grad act'(x) (ReLU: 1 for x > 0, else 0), GELU's
//  sharing one CDF and exp.
KN_HD float
kn_act_fwd_grad (int act, float x, float *grad)
{
    if (act == KN_ACT_GELU) {
        float pdf, cdf = kn_normal_cdf_pdf (x, &pdf);
        *grad = fmaf (x, pdf, cdf);
        return x * cdf;
    }
    *grad = x > 0.0f ? 1.0f : 0.0f;
    return x > 0.0f ? x : 0.0f;
}

//  Returns act'(x).
KN_HD float
kn_act_grad (int act, float x)
{
    float grad;
    kn_act_fwd_grad (act, x, &grad);
    return grad;
}

//  Returns dy * act'(x).
KN_HD float
kn_act_bwd (int act, float x, float dy)
{
    if (act == KN_ACT_GELU)
        return dy * kn_act_grad (KN_ACT_GELU, x);
    return x > 0.0f ? dy : 0.0f;
}

// ---------------------------------------------------------------- dropout

//  Returns a uniform float in [0, 1) from (seed, index): a counter-based hash
//  (splitmix64 finaliser), so CPU and GPU draw the same mask and the backward
//  pass recomputes it instead of storing it.
KN_HD float
kn_hash_uniform (uint64_t seed, uint64_t index)
{
    uint64_t z = seed + 0x9E3779B97F4A7C15ull * (index + 1);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z = z ^ (z >> 31);
    return (float) (z >> 40) * (1.0f / 16777216.0f);
}

//  Returns the inverted-dropout factor of element index: 0 when dropped (with
//  probability p), 1 / (1 - p) when kept. Forward: y = x * factor;
//  backward: dx = dy * factor (same seed).
KN_HD float
kn_dropout_factor (uint64_t seed, uint64_t index, float p)
{
    return kn_hash_uniform (seed, index) < p ? 0.0f : 1.0f / (1.0f - p);
}

// ---------------------------------------------------------------- row reductions in lanes

//  A row's sums add element i into lane i % KN_LANES and then combine the
//  lanes pairwise (kn_lanes_total): a fixed order that the CPU vectorises at
//  any width (4, 8 or 16 floats: SSE2, AVX2 and AVX-512 clones give the same
//  bits) and that the GPU, one thread per row, follows too.
#define KN_LANES 16

#if defined (_OPENMP) && !defined (__CUDACC__)
#   define KN_SIMD _Pragma ("omp simd")
#else
#   define KN_SIMD
#endif

//  Returns the sum of the KN_LANES partial sums in acc (which it overwrites).
KN_HD float
kn_lanes_total (float *acc)
{
    for (int w = KN_LANES / 2; w > 0; w /= 2)
        for (int j = 0; j < w; j++)
            acc [j] += acc [j + w];
    return acc [0];
}

//  Returns the sum over i < n of x [i] (lane order).
KN_HD float
kn_row_sum (const float *x, int n)
{
    float acc [KN_LANES] = { 0 };
    int i = 0;
    for (; i + KN_LANES <= n; i += KN_LANES) {
        KN_SIMD
        for (int j = 0; j < KN_LANES; j++)
            acc [j] += x [i + j];
    }
    for (int j = 0; i + j < n; j++)
        acc [j] += x [i + j];
    return kn_lanes_total (acc);
}

// ---------------------------------------------------------------- layer norm (one row)

//  y = (x - mean) * rstd * gamma + beta over one row of n; writes the row's
//  mean and rstd (= 1 / sqrt (var + eps), biased variance, as PyTorch) for
//  the backward pass. Two passes over the row (mean, then squared
//  deviations: stable without double sums), then the output.
KN_HD void
kn_layernorm_row_fwd (const float *x, const float *gamma, const float *beta, float *y,
                      float *mean_out, float *rstd_out, int n)
{
    float mean = kn_row_sum (x, n) / (float) n;
    float acc [KN_LANES] = { 0 };
    int i = 0;
    for (; i + KN_LANES <= n; i += KN_LANES) {
        KN_SIMD
        for (int j = 0; j < KN_LANES; j++) {
            float d = x [i + j] - mean;
            acc [j] += d * d;
        }
    }
    for (int j = 0; i + j < n; j++) {
        float d = x [i + j] - mean;
        acc [j] += d * d;
    }
    float var = kn_lanes_total (acc) / (float) n;
    float rstd = (float) (1.0 / sqrt ((double) var + (double) KN_LN_EPS));
    KN_SIMD
    for (int k = 0; k < n; k++)
        y [k] = (x [k] - mean) * rstd * gamma [k] + beta [k];
    *mean_out = mean;
    *rstd_out = rstd;
}

//  dx for one row of n given dy, the forward input x, gamma and the saved
//  mean/rstd; add: dx += the gradient instead of dx = (the residual stream's
//  gradient accumulates in place). (dgamma = column sums of dy * xhat, dbeta
//  = column sums of dy: kn_layernorm_col_bwd.)
KN_HD void
kn_layernorm_row_bwd (const float *dy, const float *x, const float *gamma, float mean, float rstd,
                      float *dx, int n, bool add)
{
    float ag [KN_LANES] = { 0 }, agx [KN_LANES] = { 0 };
    int i = 0;
    for (; i + KN_LANES <= n; i += KN_LANES) {
        KN_SIMD
        for (int j = 0; j < KN_LANES; j++) {
            float g = dy [i + j] * gamma [i + j];
            ag [j] += g;
            agx [j] += g * ((x [i + j] - mean) * rstd);
        }
    }
    for (int j = 0; i + j < n; j++) {
        float g = dy [i + j] * gamma [i + j];
        ag [j] += g;
        agx [j] += g * ((x [i + j] - mean) * rstd);
    }
    float mg = kn_lanes_total (ag) / (float) n, mgx = kn_lanes_total (agx) / (float) n;
    if (add) {
        KN_SIMD
        for (int k = 0; k < n; k++)
            dx [k] += rstd * (dy [k] * gamma [k] - mg - (x [k] - mean) * rstd * mgx);
    }
    else {
        KN_SIMD
        for (int k = 0; k < n; k++)
            dx [k] = rstd * (dy [k] * gamma [k] - mg - (x [k] - mean) * rstd * mgx);
    }
}

//  One row's contribution to dgamma: dy * xhat, with xhat = (x - mean) * rstd.
KN_HD float
kn_layernorm_dgamma_term (float dy, float x, float mean, float rstd)
{
    return dy * ((x - mean) * rstd);
}

//  Rows per block of the dgamma / dbeta sums: each block of rows is summed in
//  order from zero, then the blocks are added in order. The CPU computes the
//  blocks in parallel (the same bits with any number of threads); the GPU
//  (one thread per column) follows the same order.
#define KN_LN_BLOCK 32

//  dgamma [c] and dbeta [c] for column c over all rows, in KN_LN_BLOCK
//  blocks (deterministic: one owner per column, no atomics). Adds to both.
KN_HD void
kn_layernorm_col_bwd (const float *dy, const float *x, const float *mean, const float *rstd,
                      float *dgamma, float *dbeta, int rows, int cols, int c)
{
    float tg = 0, tb = 0;
    for (int r0 = 0; r0 < rows; r0 += KN_LN_BLOCK) {
        float sg = 0, sb = 0;
        for (int r = r0; r < rows && r < r0 + KN_LN_BLOCK; r++) {
            float d = dy [(size_t) r * cols + c];
            sg += kn_layernorm_dgamma_term (d, x [(size_t) r * cols + c], mean [r], rstd [r]);
            sb += d;
        }
        tg += sg;
        tb += sb;
    }
    dgamma [c] += tg;
    dbeta [c] += tb;
}

// ---------------------------------------------------------------- reductions over rows

//  Returns the sum over rows of a [r * ld + c], in row order.
KN_HD float
kn_colsum (const float *a, int rows, int ld, int c)
{
    float s = 0;
    for (int r = 0; r < rows; r++)
        s += a [(size_t) r * ld + c];
    return s;
}

// ---------------------------------------------------------------- softmax (one row)

//  y = softmax (scale * x) over one row of n (y may be x), through the
//  call-free kn_exp (so the row vectorises).
KN_HD void
kn_softmax_row_fwd (const float *x, float *y, int n, float scale)
{
    //  the maximum in lanes too (any order gives the same; fmaxf is a call on the CPU)
    float am [KN_LANES];
    for (int j = 0; j < KN_LANES; j++)
        am [j] = -INFINITY;
    int i = 0;
    for (; i + KN_LANES <= n; i += KN_LANES) {
        KN_SIMD
        for (int j = 0; j < KN_LANES; j++)
            am [j] = scale * x [i + j] > am [j] ? scale * x [i + j] : am [j];
    }
    for (int j = 0; i + j < n; j++)
        am [j] = scale * x [i + j] > am [j] ? scale * x [i + j] : am [j];
    float mx = am [0];
    for (int j = 1; j < KN_LANES; j++)
        mx = am [j] > mx ? am [j] : mx;
    KN_SIMD
    for (int k = 0; k < n; k++)
        y [k] = kn_exp (scale * x [k] - mx);
    float inv = 1.0f / kn_row_sum (y, n);
    KN_SIMD
    for (int k = 0; k < n; k++)
        y [k] *= inv;
}

//  Given p = softmax (scale * x) and dp = dL/dp, writes dx = dL/dx (dx may be dp).
KN_HD void
kn_softmax_row_bwd (const float *p, const float *dp, float *dx, int n, float scale)
{
    float acc [KN_LANES] = { 0 };
    int i = 0;
    for (; i + KN_LANES <= n; i += KN_LANES) {
        KN_SIMD
        for (int j = 0; j < KN_LANES; j++)
            acc [j] += p [i + j] * dp [i + j];
    }
    for (int j = 0; i + j < n; j++)
        acc [j] += p [i + j] * dp [i + j];
    float dot = kn_lanes_total (acc);
    KN_SIMD
    for (int k = 0; k < n; k++)
        dx [k] = scale * p [k] * (dp [k] - dot);
}

// ---------------------------------------------------------------- losses (one row)

//  Loss of one row and its gradient. logits: n_out values; y: the label row
//  (1 float for binary/multiclass, n_out floats for regression). Writes
//  dlogits = grad_scale * dLoss_row/dlogits and returns the row's loss
//  (for regression, the sum of squared errors over its n_out targets; the
//  caller divides by rows * n_out, and passes grad_scale accordingly).
KN_HD float
kn_loss_row (int task, const float *logits, const float *y, int n_out, float *dlogits,
             float grad_scale)
{
    if (task == KN_TASK_BINARY) {
        float z = logits [0], t = y [0];
        //  log (1 + exp (-|z|)) + max (z, 0) - z * t, stable for any z.
        float loss = fmaxf (z, 0.0f) - z * t + log1pf (expf (-fabsf (z)));
        float p = z >= 0 ? 1.0f / (1.0f + expf (-z)) : expf (z) / (1.0f + expf (z));
        dlogits [0] = grad_scale * (p - t);
        return loss;
    }
    if (task == KN_TASK_MULTICLASS) {
        int label = (int) y [0];
        float mx = -INFINITY;
        for (int i = 0; i < n_out; i++)
            mx = logits [i] > mx ? logits [i] : mx;
        float sum = 0;
        for (int i = 0; i < n_out; i++)
            sum += expf (logits [i] - mx);
        float lse = mx + logf (sum);
        for (int i = 0; i < n_out; i++)
            dlogits [i] = grad_scale * (expf (logits [i] - lse) - (i == label ? 1.0f : 0.0f));
        return lse - logits [label];
    }
    float loss = 0;
    for (int i = 0; i < n_out; i++) {
        float d = logits [i] - y [i];
        loss += d * d;
        dlogits [i] = grad_scale * 2.0f * d;
    }
    return loss;
}

//  Converts one row of logits into predictions in place: sigmoid (binary),
//  softmax (multiclass), unchanged (regression).
KN_HD void
kn_predict_row (int task, float *logits, int n_out)
{
    if (task == KN_TASK_BINARY) {
        float z = logits [0];
        logits [0] = z >= 0 ? 1.0f / (1.0f + expf (-z)) : expf (z) / (1.0f + expf (z));
    }
    else
    if (task == KN_TASK_MULTICLASS)
        kn_softmax_row_fwd (logits, logits, n_out, 1.0f);
}

// ---------------------------------------------------------------- AdamW (one parameter)

//  One decoupled-weight-decay Adam update of one parameter, in the order of
//  torch.optim.AdamW (1.13): p *= 1 - lr * wd; m = b1 m + (1-b1) g;
//  v = b2 v + (1-b2) g^2; p -= (lr / bc1) * m / (sqrt (v) / bc2_sqrt + eps),
//  where bc1 = 1 - b1^t and bc2_sqrt = sqrt (1 - b2^t) at step t (from 1).
KN_HD void
kn_adamw_elem (float *p, float g, float *m, float *v, float lr, float b1, float b2, float eps,
               float wd, float bc1, float bc2_sqrt)
{
    float pv = *p * (1.0f - lr * wd);
    float mv = b1 * *m + (1.0f - b1) * g;
    float vv = b2 * *v + (1.0f - b2) * g * g;
    *m = mv;
    *v = vv;
    *p = pv - (lr / bc1) * (mv / (sqrtf (vv) / bc2_sqrt + eps));
}

#ifdef __cplusplus
}
#endif

#endif
