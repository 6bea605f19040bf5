/*  kn_model.c - what the MLP and the transformer share: configuration,
    construction and init, loss, AdamW, training loops, prediction and the
    flat state. The networks themselves are kn_mlp.c and kn_transformer.c;
    all of it is written against the backend table (kn_backend.h), so the
    same code drives the CPU reference and the GPU.
*/
#include "kn_model_int.h"
#include "kn_gemm.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb_mem.h"

static void
s_fail (kn_model_t *self, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_fail (kn_model_t *self, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    vsnprintf (self->error, sizeof self->error, fmt, args);
    va_end (args);
}

static int
s_check_backend (kn_model_t *self)
{
    if (self->be->sync (self->be) == 0)
        return 0;
    s_fail (self, "backend %s failed: %s", self->be->name, self->be->error);
    return -1;
}

//  splitmix64: the host-side generator for init, shuffles and dropout seeds.
static uint64_t
s_next (uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

static double
s_uniform (uint64_t *state)
{
    return (double) (s_next (state) >> 11) * (1.0 / 9007199254740992.0);
}

uint64_t
kn_model_dropout_seed (kn_model_t *self, int site)
{
    uint64_t state = self->seed ^ (self->step * 0xD1B54A32D192ED03ull) ^ ((uint64_t) site << 48);
    return s_next (&state);
}

float *
kn_model_buf (kn_model_t *self, size_t n)
{
    float *buf = self->be->alloc (self->be, n);
    if (!buf)
        return NULL;
    if (self->n_bufs == self->cap_bufs) {
        self->cap_bufs = self->cap_bufs ? self->cap_bufs * 2 : 64;
        self->bufs = (float **) lb_xrealloc (self->bufs, self->cap_bufs * sizeof (float *));
    }
    self->bufs [self->n_bufs++] = buf;
    return buf;
}

int
kn_model_add_tensor (kn_model_t *self, const char *name, int rows, int cols, bool decay)
{
    assert (self->n_tensors < KN_MAX_TENSORS);
    kn_tensor_t *t = &self->tensors [self->n_tensors];
    snprintf (t->name, sizeof t->name, "%s", name);
    t->rows = rows;
    t->cols = cols;
    t->decay = decay;
    return self->n_tensors++;
}

//  The tensor named prefix + i + suffix ("layers." 2 ".ln1.weight").
int
kn_model_add_tensori (kn_model_t *self, int rows, int cols, bool decay, const char *prefix, int i,
           const char *suffix)
{
    char name [64];
    snprintf (name, sizeof name, "%s%d%s", prefix, i, suffix);
    assert (strlen (name) < sizeof self->tensors [0].name);
    return kn_model_add_tensor (self, name, rows, cols, decay);
}

// ---------------------------------------------------------------- configuration

void
kn_config_defaults (kn_config_t *cfg)
{
    assert (cfg);
    memset (cfg, 0, sizeof *cfg);
    cfg->arch = KN_ARCH_MLP;
    cfg->task = KN_TASK_BINARY;
    cfg->n_out = 1;
    cfg->act = KN_ACT_GELU;
    cfg->n_hidden = 2;
    cfg->hidden [0] = cfg->hidden [1] = 256;
    cfg->window = 64;
    cfg->d_model = 128;
    cfg->n_heads = 4;
    cfg->n_layers = 4;
    cfg->d_ff = 512;
    cfg->pool = KN_POOL_MEAN;
}

void
kn_optim_defaults (kn_optim_t *opt)
{
    assert (opt);
    memset (opt, 0, sizeof *opt);
    opt->lr = 1e-3f;
    opt->beta1 = 0.9f;
    opt->beta2 = 0.999f;
    opt->eps = 1e-8f;
    opt->weight_decay = 0.01f;
}

#define S_LIMIT 65536

int
kn_config_check (const kn_config_t *cfg, char *err, size_t err_size)
{
    assert (cfg && err);
    const char *why = NULL;
    char buf [160];
    if (cfg->arch != KN_ARCH_MLP && cfg->arch != KN_ARCH_TRANSFORMER)
        snprintf (buf, sizeof buf, "arch=%d: not mlp (1) or transformer (2)", (int) cfg->arch), why = buf;
    else
    if (cfg->task != KN_TASK_BINARY && cfg->task != KN_TASK_MULTICLASS
    &&  cfg->task != KN_TASK_REGRESSION)
        snprintf (buf, sizeof buf, "task=%d: not binary, multiclass or regression", (int) cfg->task), why = buf;
    else
    if (cfg->n_in < 1 || cfg->n_in > S_LIMIT)
        snprintf (buf, sizeof buf, "n_in=%d: must be 1..%d", cfg->n_in, S_LIMIT), why = buf;
    else
    if (cfg->task == KN_TASK_BINARY && cfg->n_out != 1)
        snprintf (buf, sizeof buf, "n_out=%d: a binary task has 1 output", cfg->n_out), why = buf;
    else
    if (cfg->task == KN_TASK_MULTICLASS && (cfg->n_out < 2 || cfg->n_out > S_LIMIT))
        snprintf (buf, sizeof buf, "n_out=%d: a multiclass task needs 2..%d classes", cfg->n_out, S_LIMIT), why = buf;
    else
    if (cfg->n_out < 1 || cfg->n_out > S_LIMIT)
        snprintf (buf, sizeof buf, "n_out=%d: must be 1..%d", cfg->n_out, S_LIMIT), why = buf;
    else
    if (cfg->act != KN_ACT_RELU && cfg->act != KN_ACT_GELU)
        snprintf (buf, sizeof buf, "act=%d: not relu (1) or gelu (2)", (int) cfg->act), why = buf;
    else
    if (!(cfg->dropout >= 0.0f && cfg->dropout < 1.0f))
        snprintf (buf, sizeof buf, "dropout=%g: must be in [0, 1)", (double) cfg->dropout), why = buf;
    else
    if (cfg->precision != KN_PRECISION_FP32 && cfg->precision != KN_PRECISION_BF16)
        snprintf (buf, sizeof buf, "precision=%d: not fp32 (0) or bf16 (1)", (int) cfg->precision), why = buf;
    else
    if (cfg->precision == KN_PRECISION_BF16 && !kn_gemm_supported ())
        why = "precision=bf16: this CPU has no AVX512-BF16 (bf16 products need it); use fp32";
    else
    if (cfg->arch == KN_ARCH_MLP) {
        if (cfg->n_hidden < 0 || cfg->n_hidden > KN_MAX_HIDDEN)
            snprintf (buf, sizeof buf, "n_hidden=%d: must be 0..%d", cfg->n_hidden, KN_MAX_HIDDEN), why = buf;
        for (int i = 0; !why && i < cfg->n_hidden; i++)
            if (cfg->hidden [i] < 1 || cfg->hidden [i] > S_LIMIT)
                snprintf (buf, sizeof buf, "hidden[%d]=%d: must be 1..%d", i, cfg->hidden [i], S_LIMIT), why = buf;
    }
    else {
        if (cfg->window < 1 || cfg->window > 4096)
            snprintf (buf, sizeof buf, "window=%d: must be 1..4096", cfg->window), why = buf;
        else
        if (cfg->n_heads < 1 || cfg->n_heads > 256)
            snprintf (buf, sizeof buf, "n_heads=%d: must be 1..256", cfg->n_heads), why = buf;
        else
        if (cfg->d_model < 1 || cfg->d_model > 16384 || cfg->d_model % cfg->n_heads)
            snprintf (buf, sizeof buf, "d_model=%d: must be 1..16384 and a multiple of n_heads=%d", cfg->d_model, cfg->n_heads), why = buf;
        else
        if (cfg->n_layers < 1 || cfg->n_layers > 16)
            snprintf (buf, sizeof buf, "n_layers=%d: must be 1..16", cfg->n_layers), why = buf;
        else
        if (cfg->d_ff < 1 || cfg->d_ff > S_LIMIT)
            snprintf (buf, sizeof buf, "d_ff=%d: must be 1..%d", cfg->d_ff, S_LIMIT), why = buf;
        else
        if (cfg->pool != KN_POOL_MEAN && cfg->pool != KN_POOL_LAST)
            snprintf (buf, sizeof buf, "pool=%d: not mean (1) or last (2)", (int) cfg->pool), why = buf;
    }
    if (!why)
        return 0;
    snprintf (err, err_size, "model config: %s", why);
    return -1;
}

int
kn_optim_check (const kn_optim_t *opt, char *err, size_t err_size)
{
    assert (opt && err);
    const char *why = NULL;
    if (!(opt->lr > 0.0f && opt->lr < 10.0f))
        why = "lr must be in (0, 10)";
    else
    if (!(opt->beta1 >= 0.0f && opt->beta1 < 1.0f) || !(opt->beta2 >= 0.0f && opt->beta2 < 1.0f))
        why = "beta1 and beta2 must be in [0, 1)";
    else
    if (!(opt->eps > 0.0f))
        why = "eps must be > 0";
    else
    if (!(opt->weight_decay >= 0.0f && opt->weight_decay < 1.0f))
        why = "weight_decay must be in [0, 1)";
    else
    if (opt->warmup_steps < 0 || opt->total_steps < 0)
        why = "warmup_steps and total_steps must be >= 0";
    else
    if (!(opt->min_lr_frac >= 0.0f && opt->min_lr_frac <= 1.0f))
        why = "min_lr_frac must be in [0, 1]";
    if (!why)
        return 0;
    snprintf (err, err_size, "optimizer: %s (lr=%g beta1=%g beta2=%g eps=%g weight_decay=%g "
              "warmup_steps=%ld total_steps=%ld min_lr_frac=%g)", why, (double) opt->lr,
              (double) opt->beta1, (double) opt->beta2, (double) opt->eps,
              (double) opt->weight_decay, opt->warmup_steps, opt->total_steps,
              (double) opt->min_lr_frac);
    return -1;
}

float
kn_optim_lr (const kn_optim_t *opt, long step)
{
    assert (opt);
    if (step < opt->warmup_steps)
        return opt->lr * (float) (step + 1) / (float) opt->warmup_steps;
    if (opt->total_steps <= 0)
        return opt->lr;
    long span = opt->total_steps - opt->warmup_steps;
    double progress = span > 0 ? (double) (step - opt->warmup_steps) / (double) span : 1.0;
    if (progress > 1.0)
        progress = 1.0;
    double lo = opt->min_lr_frac;
    return (float) (opt->lr * (lo + (1.0 - lo) * 0.5 * (1.0 + cos (M_PI * progress))));
}

// ---------------------------------------------------------------- construction

//  Fills host params from the seed (see kn_model.h for the scheme).
static void
s_init_params (kn_model_t *self, float *host)
{
    uint64_t state = self->seed;
    for (int i = 0; i < self->n_tensors; i++) {
        const kn_tensor_t *t = &self->tensors [i];
        float *p = host + t->offset;
        size_t n = (size_t) t->rows * t->cols;
        const char *dot = strrchr (t->name, '.');
        const char *last = dot ? dot + 1 : t->name;
        bool is_ln = strstr (t->name, "ln") != NULL;
        if (is_ln)
            for (size_t j = 0; j < n; j++)
                p [j] = strcmp (last, "weight") == 0 ? 1.0f : 0.0f;
        else
        if (strcmp (t->name, "pos") == 0)
            for (size_t j = 0; j < n; j++) {
                double u1 = s_uniform (&state), u2 = s_uniform (&state);
                p [j] = (float) (0.02 * sqrt (-2.0 * log (1.0 - u1)) * cos (2.0 * M_PI * u2));
            }
        else {
            //  weight [out][in]: fan_in = cols; its bias has the same fan_in
            int fan_in = t->cols;
            if (strcmp (last, "bias") == 0) {
                char wname [sizeof t->name];
                snprintf (wname, sizeof wname, "%.*sweight", (int) (last - t->name), t->name);
                for (int k = 0; k < self->n_tensors; k++)
                    if (strcmp (self->tensors [k].name, wname) == 0)
                        fan_in = self->tensors [k].cols;
            }
            double bound = 1.0 / sqrt ((double) fan_in);
            for (size_t j = 0; j < n; j++)
                p [j] = (float) ((2.0 * s_uniform (&state) - 1.0) * bound);
        }
    }
}

kn_model_t *
kn_model_new (const kn_config_t *cfg, int max_batch, uint64_t seed, kn_backend_t *be, char *err,
              size_t err_size)
{
    assert (cfg && be && err);
    if (kn_config_check (cfg, err, err_size))
        return NULL;
    if (max_batch < 1 || max_batch > (1 << 24)) {
        snprintf (err, err_size, "model: max_batch=%d must be 1..%d", max_batch, 1 << 24);
        return NULL;
    }
    if (cfg->precision == KN_PRECISION_BF16 && (!be->gemm_bf16 || !be->gemm_heads_bf16)) {
        snprintf (err, err_size, "model: precision=bf16: backend %s has no bf16 products "
                  "(only the CPU backend on a CPU with AVX512-BF16 does); use fp32", be->name);
        return NULL;
    }
    kn_model_t *self = (kn_model_t *) lb_xcalloc (1, sizeof *self);
    self->cfg = *cfg;
    self->be = be;
    self->max_batch = max_batch;
    self->seed = seed;
    bool mlp = cfg->arch == KN_ARCH_MLP;
    self->in_size = mlp ? (size_t) cfg->n_in : (size_t) cfg->n_in * cfg->window;
    self->label_size = cfg->task == KN_TASK_REGRESSION ? (size_t) cfg->n_out : 1;
    if (mlp)
        kn_mlp_declare (self);
    else
        kn_transformer_declare (self);
    //  offsets: decayed tensors first, then the rest, each group in declaration order
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < self->n_tensors; i++) {
            kn_tensor_t *t = &self->tensors [i];
            if (t->decay != (pass == 0))
                continue;
            t->offset = self->n_params;
            self->n_params += (size_t) t->rows * t->cols;
            if (t->decay)
                self->n_decay = self->n_params;
        }
    size_t rows = (size_t) max_batch;
    float *host = (float *) lb_xcalloc (self->n_params, sizeof (float));
    s_init_params (self, host);
    int rc = -1;
    if (!(self->params = kn_model_buf (self, self->n_params)) || !(self->grads = kn_model_buf (self, self->n_params))
    ||  !(self->adam_m = kn_model_buf (self, self->n_params)) || !(self->adam_v = kn_model_buf (self, self->n_params))
    ||  !(self->x = kn_model_buf (self, rows * self->in_size)) || !(self->y = kn_model_buf (self, rows * self->label_size))
    ||  !(self->logits = kn_model_buf (self, rows * cfg->n_out)) || !(self->dlogits = kn_model_buf (self, rows * cfg->n_out))
    ||  !(self->losses = kn_model_buf (self, rows)))
        goto out;
    if (mlp ? kn_mlp_alloc (self) : kn_transformer_alloc (self))
        goto out;
    if (be->upload (be, self->params, host, self->n_params) || s_check_backend (self))
        goto out;
    self->host_losses = (float *) lb_xcalloc (rows, sizeof (float));
    rc = 0;
out:
    free (host);
    if (rc) {
        snprintf (err, err_size, "model: cannot allocate on %s (%zu parameters, max_batch %d): %s",
                  be->name, self->n_params, max_batch, be->error [0] ? be->error : "out of memory");
        kn_model_destroy (&self);
    }
    return self;
}

void
kn_model_destroy (kn_model_t **self_p)
{
    assert (self_p);
    kn_model_t *self = *self_p;
    if (!self)
        return;
    for (int i = 0; i < self->n_bufs; i++)
        self->be->free (self->be, self->bufs [i]);
    free (self->bufs);
    free (self->layers);
    free (self->res);
    free (self->host_losses);
    free (self);
    *self_p = NULL;
}

const kn_config_t *
kn_model_config (const kn_model_t *self)
{
    assert (self);
    return &self->cfg;
}

size_t
kn_model_n_params (const kn_model_t *self)
{
    assert (self);
    return self->n_params;
}

size_t
kn_model_in_size (const kn_model_t *self)
{
    assert (self);
    return self->in_size;
}

size_t
kn_model_label_size (const kn_model_t *self)
{
    assert (self);
    return self->label_size;
}

uint64_t
kn_model_step (const kn_model_t *self)
{
    assert (self);
    return self->step;
}

int
kn_model_n_tensors (const kn_model_t *self)
{
    assert (self);
    return self->n_tensors;
}

int
kn_model_tensor (const kn_model_t *self, int i, kn_tensor_t *out)
{
    assert (self && out);
    if (i < 0 || i >= self->n_tensors)
        return -1;
    *out = self->tensors [i];
    return 0;
}

const char *
kn_model_error (const kn_model_t *self)
{
    assert (self);
    return self->error;
}

const char *
kn_precision_name (kn_precision_t precision)
{
    return precision == KN_PRECISION_BF16 ? "bf16" : "fp32";
}

int
kn_precision_parse (const char *name, kn_precision_t *out)
{
    assert (out);
    if (name && strcmp (name, "fp32") == 0)
        *out = KN_PRECISION_FP32;
    else
    if (name && strcmp (name, "bf16") == 0)
        *out = KN_PRECISION_BF16;
    else
        return -1;
    return 0;
}

// ---------------------------------------------------------------- layers shared by the nets

void
kn_model_gemm (kn_model_t *self, bool ta, bool tb, int m, int n, int k, float alpha,
               const float *a, int lda, const float *b, int ldb, float beta, float *c, int ldc)
{
    kn_backend_t *be = self->be;
    if (self->cfg.precision == KN_PRECISION_BF16)
        be->gemm_bf16 (be, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
    else
        be->gemm (be, ta, tb, m, n, k, alpha, a, lda, b, ldb, beta, c, ldc);
}

void
kn_model_gemm_heads (kn_model_t *self, bool ta, bool tb, int m, int n, int k, float alpha,
                     const float *a, int lda, size_t sa, size_t ha, const float *b, int ldb,
                     size_t sb, size_t hb, float beta, float *c, int ldc, size_t sc, size_t hc,
                     int count, int heads)
{
    kn_backend_t *be = self->be;
    if (self->cfg.precision == KN_PRECISION_BF16)
        be->gemm_heads_bf16 (be, ta, tb, m, n, k, alpha, a, lda, sa, ha, b, ldb, sb, hb, beta, c,
                             ldc, sc, hc, count, heads);
    else
        be->gemm_heads (be, ta, tb, m, n, k, alpha, a, lda, sa, ha, b, ldb, sb, hb, beta, c, ldc,
                        sc, hc, count, heads);
}

//  y (rows x out) = res + b + x (rows x in) W^T: the bias (and the residual
//  stream) go into y first and the product adds to them (beta = 1), which
//  costs no more than the product's own zeroing of y and saves a pass.
void
kn_model_linear_fwd (kn_model_t *self, const float *x, int w, int b, const float *res, float *y,
                     int rows)
{
    kn_backend_t *be = self->be;
    int out = self->tensors [w].rows, in = self->tensors [w].cols;
    be->bias_rows (be, res, KN_P (b), y, rows, out);
    kn_model_gemm (self, false, true, rows, out, in, 1.0f, x, in, KN_P (w), in, 1.0f, y, out);
}

//  Given dy (rows x out) and the forward input x: dW and db added to (the
//  gradients start zeroed, so the product adds to them instead of zeroing
//  its output first: the same bits) and, when dx is not NULL, dx (rows x
//  in, overwritten). b < 0: db is done already (act_bwd_colsum).
void
kn_model_linear_bwd (kn_model_t *self, const float *dy, const float *x, int w, int b, float *dx, int rows)
{
    kn_backend_t *be = self->be;
    int out = self->tensors [w].rows, in = self->tensors [w].cols;
    kn_model_gemm (self, true, false, out, in, rows, 1.0f, dy, out, x, in, 1.0f, KN_G (w), in);
    if (b >= 0)
        be->colsum (be, dy, KN_G (b), rows, out, out, 1.0f);
    if (dx)
        kn_model_gemm (self, false, false, rows, in, out, 1.0f, dy, out, KN_P (w), in, 0.0f, dx, in);
}

// ---------------------------------------------------------------- training and inference

static int
s_check_inputs (kn_model_t *self, const float *x, const float *y, size_t rows)
{
    size_t nx = rows * self->in_size;
    for (size_t i = 0; i < nx; i++)
        if (!isfinite (x [i])) {
            s_fail (self, "input: sample %zu feature %zu is %g (not finite; impute or drop it)",
                    i / self->in_size, i % self->in_size, (double) x [i]);
            return -1;
        }
    if (!y)
        return 0;
    int task = self->cfg.task;
    for (size_t i = 0; i < rows * self->label_size; i++) {
        float v = y [i];
        bool ok = task == KN_TASK_BINARY ? (v == 0.0f || v == 1.0f)
                : task == KN_TASK_MULTICLASS ? (v >= 0.0f && v < (float) self->cfg.n_out && v == floorf (v))
                : isfinite (v);
        if (!ok) {
            s_fail (self, "label: sample %zu has %g (%s)", i / self->label_size, (double) v,
                    task == KN_TASK_BINARY ? "binary labels are 0 or 1"
                    : task == KN_TASK_MULTICLASS ? "multiclass labels are class indices 0..n_out-1"
                    : "regression targets must be finite");
            return -1;
        }
    }
    return 0;
}

static void
s_forward (kn_model_t *self, int rows, bool train)
{
    if (self->cfg.arch == KN_ARCH_MLP)
        kn_mlp_forward (self, rows, train);
    else
        kn_transformer_forward (self, rows, train);
}

//  Uploads a batch, runs forward in training mode, loss, backward. *loss_sum
//  gets the sum of row losses (regression: of squared errors).
static int
s_loss_grad (kn_model_t *self, const float *x, const float *y, int batch, bool backward,
             double *loss_sum)
{
    kn_backend_t *be = self->be;
    const kn_config_t *cfg = &self->cfg;
    if (s_check_inputs (self, x, y, (size_t) batch))
        return -1;
    if (be->upload (be, self->x, x, (size_t) batch * self->in_size)
    ||  be->upload (be, self->y, y, (size_t) batch * self->label_size))
    {
        s_fail (self, "copying the batch to %s failed: %s", be->name, be->error);
        return -1;
    }
    s_forward (self, batch, backward);
    float grad_scale = cfg->task == KN_TASK_REGRESSION ? 1.0f / ((float) batch * cfg->n_out)
                                                         : 1.0f / (float) batch;
    be->loss (be, cfg->task, self->logits, self->y, batch, cfg->n_out, self->dlogits, self->losses,
              grad_scale);
    if (backward) {
        be->zero (be, self->grads, self->n_params);
        if (cfg->arch == KN_ARCH_MLP)
            kn_mlp_backward (self, batch);
        else
            kn_transformer_backward (self, batch);
        if (be->allreduce_mean && be->allreduce_mean (be, self->grads, self->n_params)) {
            s_fail (self, "gradient all-reduce failed: %s", be->error);
            return -1;
        }
    }
    if (be->download (be, self->host_losses, self->losses, (size_t) batch)) {
        s_fail (self, "copying the losses from %s failed: %s", be->name, be->error);
        return -1;
    }
    if (s_check_backend (self))
        return -1;
    double sum = 0;
    for (int i = 0; i < batch; i++)
        sum += self->host_losses [i];
    *loss_sum = sum;
    return 0;
}

static int
s_check_batch (kn_model_t *self, int batch)
{
    if (batch >= 1 && batch <= self->max_batch)
        return 0;
    s_fail (self, "batch=%d: must be 1..max_batch=%d", batch, self->max_batch);
    return -1;
}

int
kn_model_loss_grad (kn_model_t *self, const float *x, const float *y, int batch, float *loss)
{
    assert (self && x && y && loss);
    double sum;
    if (s_check_batch (self, batch) || s_loss_grad (self, x, y, batch, true, &sum))
        return -1;
    double denom = (double) batch * (self->cfg.task == KN_TASK_REGRESSION ? self->cfg.n_out : 1);
    *loss = (float) (sum / denom);
    return 0;
}

int
kn_model_train_step (kn_model_t *self, const kn_optim_t *opt, const float *x, const float *y,
                     int batch, float *loss)
{
    assert (self && opt && x && y && loss);
    char why [256];
    if (kn_optim_check (opt, why, sizeof why)) {
        s_fail (self, "%s", why);
        return -1;
    }
    if (kn_model_loss_grad (self, x, y, batch, loss))
        return -1;
    kn_backend_t *be = self->be;
    float lr = kn_optim_lr (opt, (long) self->step);
    double t = (double) (self->step + 1);
    float bc1 = (float) (1.0 - pow (opt->beta1, t));
    float bc2_sqrt = (float) sqrt (1.0 - pow (opt->beta2, t));
    size_t nd = self->n_decay, rest = self->n_params - nd;
    be->adamw (be, self->params, self->grads, self->adam_m, self->adam_v, nd, lr, opt->beta1,
               opt->beta2, opt->eps, opt->weight_decay, bc1, bc2_sqrt);
    be->adamw (be, self->params + nd, self->grads + nd, self->adam_m + nd, self->adam_v + nd, rest,
               lr, opt->beta1, opt->beta2, opt->eps, 0.0f, bc1, bc2_sqrt);
    if (s_check_backend (self))
        return -1;
    self->step++;
    return 0;
}

int
kn_model_train_epoch (kn_model_t *self, const kn_optim_t *opt, const float *x, const float *y,
                      size_t n, int batch, uint64_t shuffle_seed, double *mean_loss)
{
    assert (self && opt && x && y && mean_loss);
    if (s_check_batch (self, batch))
        return -1;
    if (n == 0) {
        s_fail (self, "train_epoch: no samples");
        return -1;
    }
    size_t *order = (size_t *) lb_xmalloc (n * sizeof (size_t));
    for (size_t i = 0; i < n; i++)
        order [i] = i;
    uint64_t state = shuffle_seed;
    for (size_t i = n - 1; i > 0; i--) {
        size_t j = (size_t) (s_next (&state) % (i + 1));
        size_t tmp = order [i];
        order [i] = order [j];
        order [j] = tmp;
    }
    size_t ix = self->in_size, iy = self->label_size;
    float *xb = (float *) lb_xmalloc ((size_t) batch * ix * sizeof (float));
    float *yb = (float *) lb_xmalloc ((size_t) batch * iy * sizeof (float));
    double total = 0;
    int rc = 0;
    for (size_t start = 0; start < n && rc == 0; start += (size_t) batch) {
        int rows = (int) (n - start < (size_t) batch ? n - start : (size_t) batch);
        for (int r = 0; r < rows; r++) {
            size_t src = order [start + r];
            memcpy (xb + (size_t) r * ix, x + src * ix, ix * sizeof (float));
            memcpy (yb + (size_t) r * iy, y + src * iy, iy * sizeof (float));
        }
        float loss;
        rc = kn_model_train_step (self, opt, xb, yb, rows, &loss);
        total += (double) loss * rows;
    }
    free (order);
    free (xb);
    free (yb);
    if (rc == 0)
        *mean_loss = total / (double) n;
    return rc;
}

int
kn_model_eval_loss (kn_model_t *self, const float *x, const float *y, size_t n, double *mean_loss)
{
    assert (self && x && y && mean_loss);
    double total = 0;
    for (size_t start = 0; start < n; start += (size_t) self->max_batch) {
        int rows = (int) (n - start < (size_t) self->max_batch ? n - start : (size_t) self->max_batch);
        double sum;
        if (s_loss_grad (self, x + start * self->in_size, y + start * self->label_size, rows, false, &sum))
            return -1;
        total += sum;
    }
    *mean_loss = n ? total / ((double) n * (self->cfg.task == KN_TASK_REGRESSION ? self->cfg.n_out : 1)) : 0;
    return 0;
}

int
kn_model_predict (kn_model_t *self, const float *x, size_t n, float *out)
{
    assert (self && x && out);
    kn_backend_t *be = self->be;
    int n_out = self->cfg.n_out;
    for (size_t start = 0; start < n; start += (size_t) self->max_batch) {
        int rows = (int) (n - start < (size_t) self->max_batch ? n - start : (size_t) self->max_batch);
        const float *xb = x + start * self->in_size;
        if (s_check_inputs (self, xb, NULL, (size_t) rows))
            return -1;
        if (be->upload (be, self->x, xb, (size_t) rows * self->in_size))
        {
            s_fail (self, "copying the batch to %s failed: %s", be->name, be->error);
            return -1;
        }
        s_forward (self, rows, false);
        be->predict (be, self->cfg.task, self->logits, rows, n_out);
        if (be->download (be, out + start * n_out, self->logits, (size_t) rows * n_out)) {
            s_fail (self, "copying predictions from %s failed: %s", be->name, be->error);
            return -1;
        }
        if (s_check_backend (self))
            return -1;
    }
    return 0;
}

// ---------------------------------------------------------------- state

static int
s_xfer (kn_model_t *self, float *dst, const float *src, bool up)
{
    kn_backend_t *be = self->be;
    int rc = up ? be->upload (be, dst, src, self->n_params) : be->download (be, dst, src, self->n_params);
    if (rc || s_check_backend (self)) {
        s_fail (self, "copying parameters %s %s failed: %s", up ? "to" : "from", be->name, be->error);
        return -1;
    }
    return 0;
}

int
kn_model_get_params (kn_model_t *self, float *params)
{
    assert (self && params);
    return s_xfer (self, params, self->params, false);
}

int
kn_model_set_params (kn_model_t *self, const float *params)
{
    assert (self && params);
    return s_xfer (self, self->params, params, true);
}

int
kn_model_get_grads (kn_model_t *self, float *grads)
{
    assert (self && grads);
    return s_xfer (self, grads, self->grads, false);
}

int
kn_model_get_state (kn_model_t *self, float *params, float *adam_m, float *adam_v, uint64_t *step)
{
    assert (self && params && adam_m && adam_v && step);
    if (s_xfer (self, params, self->params, false) || s_xfer (self, adam_m, self->adam_m, false)
    ||  s_xfer (self, adam_v, self->adam_v, false))
        return -1;
    *step = self->step;
    return 0;
}

int
kn_model_set_state (kn_model_t *self, const float *params, const float *adam_m,
                    const float *adam_v, uint64_t step)
{
    assert (self && params && adam_m && adam_v);
    for (size_t i = 0; i < self->n_params; i++)
        if (!isfinite (params [i]) || !isfinite (adam_m [i]) || !(adam_v [i] >= 0.0f) || !isfinite (adam_v [i])) {
            s_fail (self, "state: element %zu is not valid (param %g, m %g, v %g)", i,
                    (double) params [i], (double) adam_m [i], (double) adam_v [i]);
            return -1;
        }
    if (s_xfer (self, self->params, params, true) || s_xfer (self, self->adam_m, adam_m, true)
    ||  s_xfer (self, self->adam_v, adam_v, true))
        return -1;
    self->step = step;
    return 0;
}

// ---------------------------------------------------------------- selftest

static void
s_test_fill (float *x, size_t n, uint64_t *state, float lo, float hi)
{
    for (size_t i = 0; i < n; i++)
        x [i] = lo + (hi - lo) * (float) s_uniform (state);
}

static void
s_test_labels (const kn_config_t *cfg, float *y, int rows, uint64_t *state)
{
    for (int i = 0; i < rows; i++)
        for (int k = 0; k < (cfg->task == KN_TASK_REGRESSION ? cfg->n_out : 1); k++)
            y [i * (cfg->task == KN_TASK_REGRESSION ? cfg->n_out : 1) + k]
                = cfg->task == KN_TASK_BINARY ? (float) (s_next (state) % 2)
                : cfg->task == KN_TASK_MULTICLASS ? (float) (s_next (state) % (uint64_t) cfg->n_out)
                : (float) (2 * s_uniform (state) - 1);
}

//  Whole-model gradient check: every parameter's gradient against central
//  differences of the batch loss (float32 forward, float64 differencing).
void
kn_model_test_config (kn_arch_t arch, kn_config_t *cfg)
{
    kn_config_defaults (cfg);
    cfg->dropout = 0.2f;
    if (arch == KN_ARCH_MLP) {
        cfg->n_in = 4;
        cfg->hidden [0] = 6;
        cfg->hidden [1] = 5;
        cfg->layernorm = true;
        return;
    }
    cfg->arch = KN_ARCH_TRANSFORMER;
    cfg->n_in = 3;
    cfg->window = 4;
    cfg->d_model = 8;
    cfg->n_heads = 2;
    cfg->n_layers = 2;
    cfg->d_ff = 10;
}

void
kn_model_gradcheck (const char *what, const kn_config_t *cfg, bool verbose)
{
    kn_backend_t *be = kn_cpu_new (1);
    char err [256];
    enum { B = 3 };
    kn_model_t *m = kn_model_new (cfg, B, 11, be, err, sizeof err);
    if (!m)
        fprintf (stderr, "%s\n", err);
    assert (m);
    uint64_t state = 5;
    size_t np = kn_model_n_params (m);
    float *x = (float *) lb_xcalloc (B * kn_model_in_size (m), sizeof (float));
    float *y = (float *) lb_xcalloc (B * kn_model_label_size (m), sizeof (float));
    float *p = (float *) lb_xcalloc (np, sizeof (float));
    float *g = (float *) lb_xcalloc (np, sizeof (float));
    s_test_fill (x, B * kn_model_in_size (m), &state, -1.5f, 1.5f);
    s_test_labels (cfg, y, B, &state);
    //  larger weights than the init make every path matter
    assert (kn_model_get_params (m, p) == 0);
    for (size_t i = 0; i < np; i++)
        p [i] = p [i] * 2.0f + 0.05f * (float) (2 * s_uniform (&state) - 1);
    assert (kn_model_set_params (m, p) == 0);
    float loss;
    assert (kn_model_loss_grad (m, x, y, B, &loss) == 0);
    assert (kn_model_get_grads (m, g) == 0);
    double scale = 0;
    for (size_t i = 0; i < np; i++)
        scale = fmax (scale, fabs (g [i]));
    double worst = 0;
    const double eps = 1e-2;
    for (size_t i = 0; i < np; i++) {
        float keep = p [i];
        float up, down;
        p [i] = (float) (keep + eps);
        assert (kn_model_set_params (m, p) == 0 && kn_model_loss_grad (m, x, y, B, &up) == 0);
        p [i] = (float) (keep - eps);
        assert (kn_model_set_params (m, p) == 0 && kn_model_loss_grad (m, x, y, B, &down) == 0);
        p [i] = keep;
        //  the loss returned is float; difference it in double
        double fd = ((double) up - (double) down) / (2 * eps);
        double e = fabs (fd - g [i]) / (fabs (fd) + 0.02 * scale + 1e-4);
        if (e > worst)
            worst = e;
        if (e > 2e-2) {
            kn_tensor_t t;
            for (int k = 0; k < kn_model_n_tensors (m); k++)
                if (kn_model_tensor (m, k, &t) == 0 && i >= t.offset && i < t.offset + (size_t) t.rows * t.cols)
                    break;
            fprintf (stderr, "kn_model: %s: %s [%zu]: analytic %.6g finite-difference %.6g\n", what,
                     t.name, i - t.offset, (double) g [i], fd);
        }
        assert (e <= 2e-2);
    }
    if (verbose)
        printf ("  gradcheck %-28s %6zu params, worst relative error %.2e\n", what, np, worst);
    free (x);
    free (y);
    free (p);
    free (g);
    kn_model_destroy (&m);
    kn_backend_destroy (&be);
}

static void
s_test_tensors (const kn_config_t *cfg)
{
    kn_backend_t *be = kn_cpu_new (1);
    char err [256];
    kn_model_t *m = kn_model_new (cfg, 2, 1, be, err, sizeof err);
    assert (m);
    size_t next = 0;
    bool decay = true;
    //  offsets in order: decayed first, contiguous, no gaps
    for (int pass = 0; pass < 2; pass++)
        for (int i = 0; i < kn_model_n_tensors (m); i++) {
            kn_tensor_t t;
            assert (kn_model_tensor (m, i, &t) == 0);
            if (t.decay != (pass == 0))
                continue;
            assert (t.offset == next);
            next += (size_t) t.rows * t.cols;
            if (!t.decay)
                decay = false;
            assert (strstr (t.name, "bias") || strstr (t.name, "ln") ? !t.decay : t.decay);
        }
    assert (next == kn_model_n_params (m));
    (void) decay;
    kn_tensor_t t;
    assert (kn_model_tensor (m, -1, &t) == -1 && kn_model_tensor (m, kn_model_n_tensors (m), &t) == -1);
    kn_model_destroy (&m);
    kn_backend_destroy (&be);
}

//  A backend allocation that always fails (out of memory).
static float *
s_test_alloc_fail (kn_backend_t *self, size_t n)
{
    (void) self;
    (void) n;
    return NULL;
}

//  Trains a few steps; returns the final parameters (caller frees).
static float *
s_test_train (const kn_config_t *cfg, int threads, uint64_t seed, int steps, kn_model_t **keep,
              kn_backend_t **keep_be)
{
    kn_backend_t *be = kn_cpu_new (threads);
    char err [256];
    enum { B = 8 };
    kn_model_t *m = kn_model_new (cfg, B, seed, be, err, sizeof err);
    assert (m);
    kn_optim_t opt;
    kn_optim_defaults (&opt);
    opt.total_steps = 10;
    opt.warmup_steps = 2;
    uint64_t state = 99;
    float *x = (float *) lb_xcalloc (B * kn_model_in_size (m), sizeof (float));
    float *y = (float *) lb_xcalloc (B * kn_model_label_size (m), sizeof (float));
    for (int s = 0; s < steps; s++) {
        s_test_fill (x, B * kn_model_in_size (m), &state, -1, 1);
        s_test_labels (cfg, y, B, &state);
        float loss;
        assert (kn_model_train_step (m, &opt, x, y, B, &loss) == 0 && isfinite (loss));
    }
    float *p = (float *) lb_xcalloc (kn_model_n_params (m), sizeof (float));
    assert (kn_model_get_params (m, p) == 0);
    free (x);
    free (y);
    if (keep) {
        *keep = m;
        *keep_be = be;
    }
    else {
        kn_model_destroy (&m);
        kn_backend_destroy (&be);
    }
    return p;
}

void
kn_model_test (bool verbose)
{
    if (verbose)
        printf ("\n");
    char err [256];
    kn_config_t mlp, tf;
    kn_model_test_config (KN_ARCH_MLP, &mlp);
    kn_model_test_config (KN_ARCH_TRANSFORMER, &tf);

    //  configuration errors name the field
    kn_config_t bad = mlp;
    bad.n_in = 0;
    assert (kn_config_check (&bad, err, sizeof err) == -1 && strstr (err, "n_in=0"));
    bad = mlp;
    bad.task = KN_TASK_MULTICLASS;
    assert (kn_config_check (&bad, err, sizeof err) == -1 && strstr (err, "n_out=1"));
    bad = mlp;
    bad.dropout = 1.0f;
    assert (kn_config_check (&bad, err, sizeof err) == -1 && strstr (err, "dropout"));
    bad = tf;
    bad.d_model = 10;
    bad.n_heads = 4;
    assert (kn_config_check (&bad, err, sizeof err) == -1 && strstr (err, "d_model=10"));
    bad = tf;
    bad.pool = (kn_pool_t) 9;
    assert (kn_config_check (&bad, err, sizeof err) == -1 && strstr (err, "pool"));
    kn_backend_t *be = kn_cpu_new (1);
    assert (kn_model_new (&bad, 4, 1, be, err, sizeof err) == NULL && strstr (err, "pool"));
    assert (kn_model_new (&mlp, 0, 1, be, err, sizeof err) == NULL && strstr (err, "max_batch"));
    kn_backend_destroy (&be);

    //  optimizer checks and schedule
    kn_optim_t opt;
    kn_optim_defaults (&opt);
    assert (kn_optim_check (&opt, err, sizeof err) == 0);
    assert (kn_optim_lr (&opt, 12345) == opt.lr);
    opt.warmup_steps = 10;
    opt.total_steps = 110;
    opt.min_lr_frac = 0.1f;
    assert (fabsf (kn_optim_lr (&opt, 0) - opt.lr / 10) < 1e-9f);
    assert (fabsf (kn_optim_lr (&opt, 10) - opt.lr) < 1e-9f);
    assert (fabsf (kn_optim_lr (&opt, 60) - opt.lr * 0.55f) < 1e-8f);
    assert (fabsf (kn_optim_lr (&opt, 110) - opt.lr * 0.1f) < 1e-9f);
    assert (fabsf (kn_optim_lr (&opt, 500) - opt.lr * 0.1f) < 1e-9f);
    opt.lr = -1;
    assert (kn_optim_check (&opt, err, sizeof err) == -1 && strstr (err, "lr"));

    //  tensor layout
    s_test_tensors (&mlp);
    s_test_tensors (&tf);

    //  determinism: same seed and threads => bit-identical after training
    for (int arch = 0; arch < 2; arch++) {
        const kn_config_t *cfg = arch ? &tf : &mlp;
        size_t np;
        {
            be = kn_cpu_new (1);
            kn_model_t *m = kn_model_new (cfg, 1, 1, be, err, sizeof err);
            np = kn_model_n_params (m);
            kn_model_destroy (&m);
            kn_backend_destroy (&be);
        }
        float *a = s_test_train (cfg, 2, 7, 4, NULL, NULL);
        float *b = s_test_train (cfg, 2, 7, 4, NULL, NULL);
        float *d = s_test_train (cfg, 2, 8, 4, NULL, NULL);
        assert (memcmp (a, b, np * sizeof (float)) == 0);
        assert (memcmp (a, d, np * sizeof (float)) != 0);
        free (a);
        free (b);
        free (d);
        //  checkpoint: state after 3 steps restored into a fresh model, one more
        //  step on each gives the same parameters as 4 straight steps
        kn_model_t *m3, *m4;
        kn_backend_t *be3, *be4;
        float *p3 = s_test_train (cfg, 2, 7, 3, &m3, &be3);
        float *mm = (float *) lb_xcalloc (np, sizeof (float));
        float *vv = (float *) lb_xcalloc (np, sizeof (float));
        uint64_t step;
        assert (kn_model_get_state (m3, p3, mm, vv, &step) == 0 && step == 3);
        float *p4 = s_test_train (cfg, 2, 7, 0, &m4, &be4);
        assert (kn_model_set_state (m4, p3, mm, vv, step) == 0 && kn_model_step (m4) == 3);
        {
            enum { B = 8 };
            float x [B * 12], y [B];
            uint64_t state = 3;
            s_test_fill (x, B * kn_model_in_size (m3), &state, -1, 1);
            s_test_labels (cfg, y, B, &state);
            kn_optim_t o;
            kn_optim_defaults (&o);
            float l3, l4;
            assert (kn_model_train_step (m3, &o, x, y, B, &l3) == 0);
            assert (kn_model_train_step (m4, &o, x, y, B, &l4) == 0 && l3 == l4);
            float *q3 = (float *) lb_xcalloc (np, sizeof (float));
            float *q4 = (float *) lb_xcalloc (np, sizeof (float));
            assert (kn_model_get_params (m3, q3) == 0 && kn_model_get_params (m4, q4) == 0);
            assert (memcmp (q3, q4, np * sizeof (float)) == 0);
            free (q3);
            free (q4);
        }
        vv [0] = -1;
        assert (kn_model_set_state (m4, p3, mm, vv, step) == -1 && strstr (kn_model_error (m4), "state"));
        free (p3);
        free (p4);
        free (mm);
        free (vv);
        kn_model_destroy (&m3);
        kn_model_destroy (&m4);
        kn_backend_destroy (&be3);
        kn_backend_destroy (&be4);
    }

    //  the threaded paths (products split across threads, parallel loops) at a
    //  size where they engage: the same bits twice with 2 threads, and the
    //  same bits as 1 thread (every sum keeps its order whatever the split);
    //  an MLP with layer norm and dropout, one without (the activation's
    //  backward sums the bias), and a transformer (fused residual adds; the
    //  same bits run to run, see below for 1 thread)
    for (int variant = 0; variant < 3; variant++) {
        kn_config_t wide = mlp;
        int wb = 256;
        if (variant < 2) {
            wide.n_in = 16;
            wide.hidden [0] = wide.hidden [1] = 128;
            if (variant == 1) {
                wide.layernorm = false;
                wide.dropout = 0;
                wide.act = KN_ACT_RELU;
            }
        }
        else {
            kn_model_test_config (KN_ARCH_TRANSFORMER, &wide);
            wide.n_in = 4;
            wide.window = 16;
            wide.d_model = 32;
            wide.d_ff = 64;
            wide.n_layers = 1;
            wide.dropout = 0;
            wb = 32;
        }
        const int threads [3] = { 2, 2, 1 };
        float *got [3];
        size_t np = 0;
        float *x = NULL;
        float *y = (float *) lb_xcalloc ((size_t) wb, sizeof (float));
        for (int k = 0; k < 3; k++) {
            be = kn_cpu_new (threads [k]);
            kn_model_t *m = kn_model_new (&wide, wb, 7, be, err, sizeof err);
            assert (m);
            np = kn_model_n_params (m);
            size_t nx = (size_t) wb * kn_model_in_size (m);
            if (!x)
                x = (float *) lb_xcalloc (nx, sizeof (float));
            uint64_t state = 5;
            kn_optim_defaults (&opt);
            for (int s = 0; s < 3; s++) {
                s_test_fill (x, nx, &state, -1, 1);
                s_test_labels (&wide, y, wb, &state);
                float loss;
                assert (kn_model_train_step (m, &opt, x, y, wb, &loss) == 0);
            }
            got [k] = (float *) lb_xcalloc (np, sizeof (float));
            assert (kn_model_get_params (m, got [k]) == 0);
            kn_model_destroy (&m);
            kn_backend_destroy (&be);
        }
        assert (memcmp (got [0], got [1], np * sizeof (float)) == 0);
        bool same_1 = memcmp (got [0], got [2], np * sizeof (float)) == 0;
        if (verbose)
            printf ("  %s: 2 threads vs 1 thread after 3 steps: %s\n",
                    variant == 0 ? "mlp ln dropout" : variant == 1 ? "mlp relu" : "transformer",
                    same_1 ? "bit-identical" : "differ");
        //  (not yet for the transformer: s_gemm's split hands OpenBLAS smaller
        //  transposed products for dW, for which it takes another kernel path)
        assert (same_1 || variant == 2);
        for (int k = 0; k < 3; k++)
            free (got [k]);
        free (x);
        free (y);
    }

    //  precision bf16 (kn_gemm.h): validated; refused where the CPU or the
    //  backend cannot; where it can, 1 and 2 threads give the same bits and
    //  training stays close to float32 products
    {
        kn_config_t bc = mlp;
        bc.precision = (kn_precision_t) 5;
        assert (kn_config_check (&bc, err, sizeof err) == -1 && strstr (err, "precision=5"));
        kn_precision_t pr;
        assert (kn_precision_parse ("bf16", &pr) == 0 && pr == KN_PRECISION_BF16);
        assert (kn_precision_parse ("fp32", &pr) == 0 && pr == KN_PRECISION_FP32);
        assert (kn_precision_parse ("fp16", &pr) == -1 && kn_precision_parse (NULL, &pr) == -1);
        assert (strcmp (kn_precision_name (KN_PRECISION_BF16), "bf16") == 0);
        bc.precision = KN_PRECISION_BF16;
        if (!kn_gemm_supported ()) {
            assert (kn_config_check (&bc, err, sizeof err) == -1 && strstr (err, "AVX512-BF16"));
            if (verbose)
                printf ("  precision bf16: this CPU has no AVX512-BF16, refused as it should be\n");
        }
        else {
            be = kn_cpu_new (1);
            be->gemm_bf16 = NULL;       //  as the GPU backend
            assert (kn_model_new (&bc, 4, 1, be, err, sizeof err) == NULL
                    && strstr (err, "no bf16 products"));
            kn_backend_destroy (&be);
            kn_config_t wide = mlp, wtf = tf;
            wide.n_in = 16;
            wide.hidden [0] = wide.hidden [1] = 128;
            wtf.window = 16;
            wtf.d_model = 64;
            wtf.n_heads = 2;
            wtf.d_ff = 96;
            for (int arch = 0; arch < 2; arch++) {
                kn_config_t c32 = arch ? wtf : wide, c16 = c32;
                c16.precision = KN_PRECISION_BF16;
                enum { WB = 64 };
                const kn_config_t *cfgs [3] = { &c16, &c16, &c32 };
                const int threads [3] = { 1, 2, 2 };
                float *got [3], first [3];
                size_t np = 0, in = 0;
                for (int k = 0; k < 3; k++) {
                    be = kn_cpu_new (threads [k]);
                    kn_model_t *m = kn_model_new (cfgs [k], WB, 7, be, err, sizeof err);
                    assert (m);
                    np = kn_model_n_params (m);
                    in = kn_model_in_size (m);
                    float *x = (float *) lb_xcalloc (WB * in, sizeof (float));
                    float y [WB];
                    uint64_t state = 5;
                    kn_optim_defaults (&opt);
                    for (int st = 0; st < 3; st++) {
                        s_test_fill (x, WB * in, &state, -1, 1);
                        s_test_labels (cfgs [k], y, WB, &state);
                        float loss;
                        assert (kn_model_train_step (m, &opt, x, y, WB, &loss) == 0);
                        if (st == 0)
                            first [k] = loss;
                    }
                    got [k] = (float *) lb_xcalloc (np, sizeof (float));
                    assert (kn_model_get_params (m, got [k]) == 0);
                    free (x);
                    kn_model_destroy (&m);
                    kn_backend_destroy (&be);
                }
                assert (memcmp (got [0], got [1], np * sizeof (float)) == 0);
                double worst = 0;
                for (size_t i = 0; i < np; i++)
                    worst = fmax (worst, fabs ((double) got [0][i] - got [2][i]));
                if (verbose)
                    printf ("  %s bf16: 1 vs 2 threads bit-identical; first loss %.6f vs fp32 %.6f, "
                            "parameters after 3 steps within %.2e of fp32\n", arch ? "transformer" : "mlp",
                            (double) first [0], (double) first [2], worst);
                //  Adam moves each parameter by about lr per step whatever the gradient
                assert (fabsf (first [0] - first [2]) <= 1e-2f * fabsf (first [2]));
                assert (worst <= 3 * 3 * opt.lr);
                for (int k = 0; k < 3; k++)
                    free (got [k]);
            }
        }
    }

    //  backend failures (what a CUDA error or out-of-memory looks like to the
    //  model): an allocation that fails makes kn_model_new say so; a failed
    //  backend fails every call with its message, never a silent result
    {
        be = kn_cpu_new (1);
        float *(*real_alloc) (kn_backend_t *, size_t) = be->alloc;
        be->alloc = s_test_alloc_fail;
        snprintf (be->error, sizeof be->error, "cudaMalloc of 4096 bytes on test: out of memory");
        assert (kn_model_new (&mlp, 4, 1, be, err, sizeof err) == NULL
                && strstr (err, "cannot allocate") && strstr (err, "out of memory"));
        be->alloc = real_alloc;
        be->error [0] = 0;
        kn_model_t *m = kn_model_new (&mlp, 4, 1, be, err, sizeof err);
        assert (m);
        float x [4 * 4] = { 0 }, y [4] = { 0, 1, 0, 1 }, pr [4], loss;
        kn_optim_defaults (&opt);
        assert (kn_model_train_step (m, &opt, x, y, 4, &loss) == 0);
        snprintf (be->error, sizeof be->error, "kernel: CUDA error 700 (an illegal memory access)");
        assert (kn_model_train_step (m, &opt, x, y, 4, &loss) == -1
                && strstr (kn_model_error (m), "illegal memory access"));
        assert (kn_model_step (m) == 1);
        assert (kn_model_predict (m, x, 4, pr) == -1);
        kn_model_destroy (&m);
        kn_backend_destroy (&be);
    }

    //  learning: an MLP separates a linear rule; predictions are probabilities
    {
        be = kn_cpu_new (2);
        kn_config_t lc = mlp;
        lc.hidden [0] = lc.hidden [1] = 16;
        lc.dropout = 0;
        kn_model_t *m = kn_model_new (&lc, 32, 3, be, err, sizeof err);
        assert (m && kn_model_config (m)->n_in == 4 && kn_model_step (m) == 0);
        enum { N = 256 };
        float *x = (float *) lb_xcalloc (N * 4, sizeof (float));
        float *y = (float *) lb_xcalloc (N, sizeof (float));
        uint64_t state = 1;
        s_test_fill (x, N * 4, &state, -1, 1);
        for (int i = 0; i < N; i++)
            y [i] = x [i * 4] + 0.5f * x [i * 4 + 1] > 0 ? 1.0f : 0.0f;
        kn_optim_defaults (&opt);
        opt.lr = 1e-2f;
        double first = 0, last = 0, val;
        for (int e = 0; e < 30; e++) {
            assert (kn_model_train_epoch (m, &opt, x, y, N, 32, (uint64_t) e, &last) == 0);
            if (e == 0)
                first = last;
        }
        assert (kn_model_eval_loss (m, x, y, N, &val) == 0);
        if (verbose)
            printf ("  learning: epoch 1 loss %.4f, epoch 30 loss %.4f, eval %.4f\n", first, last, val);
        assert (last < first * 0.5 && val < 0.25);
        float *pr = (float *) lb_xcalloc (N, sizeof (float));
        assert (kn_model_predict (m, x, N, pr) == 0);
        int right = 0;
        for (int i = 0; i < N; i++) {
            assert (pr [i] >= 0 && pr [i] <= 1);
            right += (pr [i] > 0.5f) == (y [i] > 0.5f);
        }
        assert (right > N * 9 / 10);
        //  bad input: NaN feature, bad label, bad batch
        x [5] = NAN;
        float loss;
        assert (kn_model_train_step (m, &opt, x, y, 8, &loss) == -1
                && strstr (kn_model_error (m), "sample 1 feature 1"));
        assert (kn_model_predict (m, x, 4, pr) == -1);
        x [5] = 0;
        y [2] = 2;
        assert (kn_model_train_step (m, &opt, x, y, 8, &loss) == -1
                && strstr (kn_model_error (m), "sample 2"));
        y [2] = 1;
        assert (kn_model_train_step (m, &opt, x, y, 33, &loss) == -1
                && strstr (kn_model_error (m), "max_batch"));
        assert (kn_model_train_epoch (m, &opt, x, y, 0, 8, 1, &val) == -1);
        opt.weight_decay = 2;
        assert (kn_model_train_step (m, &opt, x, y, 8, &loss) == -1
                && strstr (kn_model_error (m), "weight_decay"));
        free (x);
        free (y);
        free (pr);
        kn_model_destroy (&m);
        kn_model_destroy (&m);
        kn_backend_destroy (&be);
    }

}
