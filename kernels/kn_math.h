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
#include <stdint.h>

#ifdef __CUDACC__
#   define KN_HD __host__ __device__ static inline
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

// ---------------------------------------------------------------- activations

//  Returns act(x).
KN_HD float
kn_act_fwd (int act, float x)
{
    if (act == KN_ACT_GELU)
        return 0.5f * x * (1.0f + erff (x * 0.70710678118654752f));
    return x > 0.0f ? x : 0.0f;
}

//  Returns dy * act'(x).
KN_HD float
kn_act_bwd (int act, float x, float dy)
{
    if (act == KN_ACT_GELU) {
        float cdf = 0.5f * (1.0f + erff (x * 0.70710678118654752f));
        float pdf = 0.39894228040143268f * expf (-0.5f * x * x);
        return dy * (cdf + x * pdf);
    }
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

// ---------------------------------------------------------------- layer norm (one row)

//  y = (x - mean) * rstd * gamma + beta over one row of n; writes the row's
//  mean and rstd (= 1 / sqrt (var + eps), biased variance, as PyTorch) for
//  the backward pass. Two passes, sums in double for stability.
KN_HD void
kn_layernorm_row_fwd (const float *x, const float *gamma, const float *beta, float *y,
                      float *mean_out, float *rstd_out, int n)
{
    double sum = 0;
    for (int i = 0; i < n; i++)
        sum += x [i];
    float mean = (float) (sum / n);
    double var = 0;
    for (int i = 0; i < n; i++) {
        double d = (double) x [i] - mean;
        var += d * d;
    }
    float rstd = (float) (1.0 / sqrt (var / n + (double) KN_LN_EPS));
    for (int i = 0; i < n; i++)
        y [i] = (x [i] - mean) * rstd * gamma [i] + beta [i];
    *mean_out = mean;
    *rstd_out = rstd;
}

//  dx for one row of n given dy, the forward input x, gamma and the saved
//  mean/rstd. (dgamma = column sums of dy * xhat, dbeta = column sums of dy:
//  kn_layernorm_col_bwd.)
KN_HD void
kn_layernorm_row_bwd (const float *dy, const float *x, const float *gamma, float mean, float rstd,
                      float *dx, int n)
{
    double sum_g = 0, sum_gx = 0;
    for (int i = 0; i < n; i++) {
        float g = dy [i] * gamma [i];
        float xhat = (x [i] - mean) * rstd;
        sum_g += g;
        sum_gx += (double) g * xhat;
    }
    float mg = (float) (sum_g / n), mgx = (float) (sum_gx / n);
    for (int i = 0; i < n; i++) {
        float xhat = (x [i] - mean) * rstd;
        dx [i] = rstd * (dy [i] * gamma [i] - mg - xhat * mgx);
    }
}

//  dgamma [c] and dbeta [c] for column c, summing over rows in order
//  (deterministic: one owner per column, no atomics). Adds to both.
KN_HD void
kn_layernorm_col_bwd (const float *dy, const float *x, const float *mean, const float *rstd,
                      float *dgamma, float *dbeta, int rows, int cols, int c)
{
    float sg = 0, sb = 0;
    for (int r = 0; r < rows; r++) {
        float d = dy [(size_t) r * cols + c];
        sg += d * (x [(size_t) r * cols + c] - mean [r]) * rstd [r];
        sb += d;
    }
    dgamma [c] += sg;
    dbeta [c] += sb;
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

//  y = softmax (scale * x) over one row of n (y may be x).
KN_HD void
kn_softmax_row_fwd (const float *x, float *y, int n, float scale)
{
    float mx = -INFINITY;
    for (int i = 0; i < n; i++)
        mx = fmaxf (mx, scale * x [i]);
    float sum = 0;
    for (int i = 0; i < n; i++) {
        y [i] = expf (scale * x [i] - mx);
        sum += y [i];
    }
    float inv = 1.0f / sum;
    for (int i = 0; i < n; i++)
        y [i] *= inv;
}

//  Given p = softmax (scale * x) and dp = dL/dp, writes dx = dL/dx (dx may be dp).
KN_HD void
kn_softmax_row_bwd (const float *p, const float *dp, float *dx, int n, float scale)
{
    float dot = 0;
    for (int i = 0; i < n; i++)
        dot += p [i] * dp [i];
    for (int i = 0; i < n; i++)
        dx [i] = scale * p [i] * (dp [i] - dot);
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
            mx = fmaxf (mx, logits [i]);
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
