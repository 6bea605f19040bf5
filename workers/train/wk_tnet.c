/*  wk_tnet.c - mlp and transformer on our kernels (see wk_tnet.h). */
#include "wk_tnet.h"
#include "pr_rank.h"
#include "wk_tparams.h"
#include "wk_tprobe.h"
#include "kn_model.h"
#include "lb_log.h"
#include "lb_mem.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_CKPT_VERSION 1
#define S_CKPT_HEAD    40       //  u32 version, u32 epochs, i32 best, u32 0, f64 best loss, u64 step, u64 n
#define S_CHUNK        512      //  windows scored at once

//  One split, standardised.
typedef struct {
    float *z;                   //  rows x cols
    const float *y;
    size_t rows;
    int64_t *prev;              //  transformer: previous row of the same entity
} s_split_t;

typedef struct {
    const wk_tdata_t *data;
    bool mlp;
    int window;
    size_t in_size;             //  floats per sample
} s_shape_t;

static uint64_t
s_mix (uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

//  Standardises x into a new split; NaN -> 0 (the mean) when impute, else
//  returns -1 with where.
static int
s_split (const float *x, const float *y, size_t rows, size_t cols, const uint32_t *entity,
         const float *mean, const float *scale, bool impute, const char *name,
         const char *const *names, s_split_t *out, char *err, size_t err_size)
{
    out->z = lb_xmalloc ((rows * cols + 1) * sizeof (float));
    out->y = y;
    out->rows = rows;
    out->prev = lb_xmalloc ((rows + 1) * sizeof (int64_t));
    lb_model_prev_rows (entity, rows, out->prev);
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) {
            float v = x [r * cols + c];
            if (isnan (v)) {
                if (!impute) {
                    snprintf (err, err_size, "%s row %zu, feature %s is NaN: nets cannot take missing "
                              "values (set impute=mean)", name, r, names [c]);
                    return -1;
                }
                out->z [r * cols + c] = 0;
            }
            else
                out->z [r * cols + c] = (v - mean [c]) / scale [c];
        }
    return 0;
}

static void
s_split_free (s_split_t *split)
{
    free (split->z);
    free (split->prev);
    split->z = NULL;
    split->prev = NULL;
}

//  Fills X (n samples) and Y from rows idx[0..n).
static void
s_batch (const s_shape_t *sh, const s_split_t *sp, const size_t *idx, size_t n, float *X, float *Y)
{
    size_t cols = sh->data->cols;
    for (size_t i = 0; i < n; i++) {
        if (sh->mlp)
            memcpy (X + i * cols, sp->z + idx [i] * cols, cols * sizeof (float));
        else
            lb_model_window (sp->z, cols, sp->prev, idx [i], sh->window, X + i * sh->in_size);
        if (Y)
            Y [i] = sp->y [idx [i]];
    }
}

//  Predictions for rows sub[0..count) of a split (sub NULL: every row, count
//  ignored). Returns 0 or -1 (kernel failure).
static int
s_predict (kn_model_t *net, const s_shape_t *sh, const s_split_t *sp, const size_t *sub,
           size_t count, float *X, float *pred)
{
    if (!sub)
        count = sp->rows;
    if (sh->mlp && !sub)
        return kn_model_predict (net, sp->z, sp->rows, pred);
    size_t idx [S_CHUNK];
    for (size_t start = 0; start < count; start += S_CHUNK) {
        size_t n = count - start < S_CHUNK ? count - start : S_CHUNK;
        for (size_t i = 0; i < n; i++)
            idx [i] = sub ? sub [start + i] : start + i;
        s_batch (sh, sp, idx, n, X, NULL);
        if (kn_model_predict (net, X, n, pred + start))
            return -1;
    }
    return 0;
}

static double
s_loss (lb_model_task_t task, const float *pred, const float *y, size_t n)
{
    if (task == LB_MODEL_BINARY)
        return wk_tdata_logloss (pred, y, n);
    double r = wk_tdata_rmse (pred, y, n);
    return r * r;
}

//  The architecture as JSON (what lb_model reads back: lb_model.h).
static json_t *
s_net_json (const kn_config_t *cfg)
{
    json_t *net = json_object ();
    json_object_set_new (net, "arch", json_string (cfg->arch == KN_ARCH_MLP ? "mlp" : "transformer"));
    json_object_set_new (net, "n_in", json_integer (cfg->n_in));
    json_object_set_new (net, "n_out", json_integer (cfg->n_out));
    json_object_set_new (net, "act", json_string (cfg->act == KN_ACT_RELU ? "relu" : "gelu"));
    json_object_set_new (net, "dropout", json_real (cfg->dropout));
    json_object_set_new (net, "precision", json_string (kn_precision_name (cfg->precision)));
    if (cfg->arch == KN_ARCH_MLP) {
        json_t *hidden = json_array ();
        for (int h = 0; h < cfg->n_hidden; h++)
            json_array_append_new (hidden, json_integer (cfg->hidden [h]));
        json_object_set_new (net, "hidden", hidden);
        json_object_set_new (net, "layernorm", json_boolean (cfg->layernorm));
    }
    else {
        json_object_set_new (net, "window", json_integer (cfg->window));
        json_object_set_new (net, "d_model", json_integer (cfg->d_model));
        json_object_set_new (net, "n_heads", json_integer (cfg->n_heads));
        json_object_set_new (net, "n_layers", json_integer (cfg->n_layers));
        json_object_set_new (net, "d_ff", json_integer (cfg->d_ff));
        json_object_set_new (net, "pool", json_string (cfg->pool == KN_POOL_LAST ? "last" : "mean"));
    }
    return net;
}

static void
s_checkpoint (kn_model_t *net, const wk_tctx_t *ctx, int epochs, int best_epoch, double best_loss,
              const float *best)
{
    size_t n = kn_model_n_params (net);
    size_t size = S_CKPT_HEAD + 4 * n * sizeof (float);
    uint8_t *body = lb_xcalloc (1, size);
    float *p = (float *) (body + S_CKPT_HEAD);
    uint64_t step = 0;
    if (kn_model_get_state (net, p, p + n, p + 2 * n, &step)) {
        lb_log_warn ("checkpoint skipped: %s", kn_model_error (net));
        free (body);
        return;
    }
    memcpy (p + 3 * n, best, n * sizeof (float));
    uint32_t version = S_CKPT_VERSION, e = (uint32_t) epochs;
    int32_t b = best_epoch;
    uint64_t count = n;
    memcpy (body, &version, 4);
    memcpy (body + 4, &e, 4);
    memcpy (body + 8, &b, 4);
    memcpy (body + 16, &best_loss, 8);
    memcpy (body + 24, &step, 8);
    memcpy (body + 32, &count, 8);
    if (ctx->checkpoint (ctx->arg, body, size))
        lb_log_warn ("checkpoint after epoch %d could not be stored; training goes on", epochs);
    free (body);
}

//  Restores from a checkpoint body. Returns 0, or -1 with err.
static int
s_resume (kn_model_t *net, const wk_tctx_t *ctx, int epochs, int *start, int *best_epoch,
          double *best_loss, float *best, char *err, size_t err_size)
{
    size_t n = kn_model_n_params (net);
    uint32_t version = 0, e = 0;
    int32_t b = -1;
    uint64_t step = 0, count = 0;
    double loss = 0;
    if (ctx->resume_size >= S_CKPT_HEAD) {
        memcpy (&version, ctx->resume, 4);
        memcpy (&e, ctx->resume + 4, 4);
        memcpy (&b, ctx->resume + 8, 4);
        memcpy (&loss, ctx->resume + 16, 8);
        memcpy (&step, ctx->resume + 24, 8);
        memcpy (&count, ctx->resume + 32, 8);
    }
    if (version != S_CKPT_VERSION || count != n || ctx->resume_size != S_CKPT_HEAD + 4 * n * sizeof (float)
    ||  e == 0 || (int) e > epochs || b < 0 || b >= (int32_t) e) {
        snprintf (err, err_size, "checkpoint: state (version %u, epoch %u, %llu parameters in %zu bytes) "
                  "does not fit this network", version, e, (unsigned long long) count, ctx->resume_size);
        return -1;
    }
    float *p = lb_xmalloc (4 * n * sizeof (float));
    memcpy (p, ctx->resume + S_CKPT_HEAD, 4 * n * sizeof (float));
    int rc = kn_model_set_state (net, p, p + n, p + 2 * n, step);
    memcpy (best, p + 3 * n, n * sizeof (float));
    free (p);
    if (rc) {
        snprintf (err, err_size, "checkpoint: %s", kn_model_error (net));
        return -1;
    }
    *start = (int) e;
    *best_epoch = b;
    *best_loss = loss;
    return 0;
}

//  The group's mean of two figures (every rank gets the same two floats).
//  0, or -1 when the all-reduce failed (be->error says why).
static int
s_group_mean2 (kn_backend_t *be, float *dev, double *a, double *b)
{
    float host [2] = { (float) *a, (float) *b };
    if (be->upload (be, dev, host, 2) || be->allreduce_mean (be, dev, 2)
    ||  be->download (be, host, dev, 2) || kn_backend_sync (be))
        return -1;
    *a = host [0];
    *b = host [1];
    return 0;
}

//  Before each step of a group: stops every rank when any rank is asked to
//  stop. Returns 0 to go on, or 1 with *rc and err set (stopped, or the
//  all-reduce failed: a lost rank is noticed here at the latest).
static int
s_group_stop (kn_model_t *net, kn_backend_t *be, const wk_tctx_t *ctx, float *dev, int epoch,
              int epochs, char *err, size_t err_size, wk_tresult_t *rc)
{
    (void) net;
    double stop = ctx->stopping && ctx->stopping (ctx->arg) ? 1 : 0, unused = 0;
    if (s_group_mean2 (be, dev, &stop, &unused)) {
        snprintf (err, err_size, "epoch %d: agreeing on stopping: %s", epoch + 1, be->error);
        *rc = WK_T_FAILED;
        return 1;
    }
    if (stop > 0) {
        snprintf (err, err_size, "stopped in epoch %d of %d (resumes from the last checkpoint)",
                  epoch + 1, epochs);
        *rc = WK_T_STOPPED;
        return 1;
    }
    return 0;
}

wk_tresult_t
wk_tnet_train (lb_model_family_t family, const wk_tdata_t *data, const json_t *params,
               const wk_tctx_t *ctx, lb_model_t **model_p, char *err, size_t err_size)
{
    assert (family == LB_MODEL_MLP || family == LB_MODEL_TRANSFORMER);
    assert (data && params && ctx && model_p);
    *model_p = NULL;
    wk_tresult_t rc = WK_T_BAD_INPUT;
    size_t cols = data->cols;
    s_split_t tr = { 0 }, va = { 0 };
    kn_backend_t *be = NULL;
    float *g_dev = NULL;            //  2 floats for the group's agreements
    kn_model_t *net = NULL;
    lb_model_t *model = NULL;
    float *X = NULL, *Y = NULL, *best = NULL, *vpred = NULL, *mean = NULL, *scale = NULL;
    float *vsub_y = NULL;
    size_t *order = NULL, *vsub = NULL;
    json_t *stored = NULL;

    //  Architecture and optimiser from the hyperparameters.
    kn_config_t cfg;
    kn_config_defaults (&cfg);
    cfg.arch = family == LB_MODEL_MLP ? KN_ARCH_MLP : KN_ARCH_TRANSFORMER;
    cfg.task = data->task == LB_MODEL_BINARY ? KN_TASK_BINARY : KN_TASK_REGRESSION;
    cfg.n_in = (int) cols;
    cfg.n_out = 1;
    cfg.act = strcmp (wk_tparams_str (params, "act"), "relu") == 0 ? KN_ACT_RELU : KN_ACT_GELU;
    cfg.dropout = (float) wk_tparams_real (params, "dropout");
    if (kn_precision_parse (wk_tparams_str (params, "precision"), &cfg.precision)) {
        snprintf (err, err_size, "hyperparameters: precision=%s: not fp32 or bf16",
                  wk_tparams_str (params, "precision"));
        goto out;
    }
    if (cfg.arch == KN_ARCH_MLP) {
        cfg.n_hidden = wk_tparams_list (wk_tparams_str (params, "hidden"), cfg.hidden, KN_MAX_HIDDEN);
        assert (cfg.n_hidden >= 0);
        cfg.layernorm = wk_tparams_bool (params, "layernorm");
    }
    else {
        cfg.window = (int) wk_tparams_int (params, "window");
        cfg.d_model = (int) wk_tparams_int (params, "d_model");
        cfg.n_heads = (int) wk_tparams_int (params, "heads");
        cfg.n_layers = (int) wk_tparams_int (params, "layers");
        cfg.d_ff = (int) wk_tparams_int (params, "d_ff");
        cfg.pool = strcmp (wk_tparams_str (params, "pool"), "last") == 0 ? KN_POOL_LAST : KN_POOL_MEAN;
    }
    char why [256];
    if (kn_config_check (&cfg, why, sizeof why)) {
        snprintf (err, err_size, "hyperparameters: %s", why);
        goto out;
    }
    int batch = (int) wk_tparams_int (params, "batch");
    int epochs = (int) wk_tparams_int (params, "epochs");
    int patience = (int) wk_tparams_int (params, "early_stopping_epochs");
    size_t per_epoch = (size_t) wk_tparams_int (params, "samples_per_epoch");
    size_t val_count = (size_t) wk_tparams_int (params, "val_samples");
    if (val_count == 0 || val_count > data->vrows)
        val_count = data->vrows;
    if (per_epoch == 0 || per_epoch > data->rows)
        per_epoch = data->rows;
    size_t steps_per_epoch = (per_epoch + (size_t) batch - 1) / (size_t) batch;
    kn_optim_t opt;
    kn_optim_defaults (&opt);
    opt.lr = (float) wk_tparams_real (params, "lr");
    opt.weight_decay = (float) wk_tparams_real (params, "weight_decay");
    opt.warmup_steps = (long) wk_tparams_int (params, "warmup_steps");
    opt.min_lr_frac = (float) wk_tparams_real (params, "min_lr_frac");
    opt.total_steps = (long) ((size_t) epochs * steps_per_epoch);
    if (kn_optim_check (&opt, why, sizeof why)) {
        snprintf (err, err_size, "hyperparameters: %s", why);
        goto out;
    }

    //  Standardisation from the training rows only; NaN imputed or refused.
    bool impute = strcmp (wk_tparams_str (params, "impute"), "mean") == 0;
    mean = lb_xmalloc (cols * sizeof (float));
    scale = lb_xmalloc (cols * sizeof (float));
    wk_tdata_fit_standardisation (data->x, data->rows, cols, mean, scale);
    if (s_split (data->x, data->y, data->rows, cols, data->entity, mean, scale, impute, "train",
                 data->names, &tr, err, err_size)
    ||  s_split (data->vx, data->vy, data->vrows, cols, data->ventity, mean, scale, impute,
                 "validation", data->names, &va, err, err_size))
        goto out;

    //  The backend: the group's when given, the GPU when asked and it comes
    //  up, else the CPU.
    int nranks = ctx->nranks > 1 ? ctx->nranks : 1, rank = nranks > 1 ? ctx->rank : 0;
    assert (nranks == 1 || (ctx->backend && ctx->backend->allreduce_mean && rank >= 0 && rank < nranks));
    if (ctx->backend)
        be = ctx->backend;
    else
    if (ctx->gpu && ctx->gpu_backend) {
        be = ctx->gpu_backend (why, sizeof why);
        if (!be)
            lb_log_warn ("GPU backend failed (%s); training %s on the CPU",
                         why, lb_model_family_name (family));
    }
    if (!be)
        be = kn_cpu_new (ctx->nthread);
    if (cfg.precision == KN_PRECISION_BF16 && !be->gemm_bf16) {
        snprintf (err, err_size, "hyperparameters: precision=bf16 runs on the CPU backend only "
                  "(this job got %s); use fp32", be->name);
        goto out;
    }
    net = kn_model_new (&cfg, batch, ctx->seed, be, why, sizeof why);
    if (!net) {
        snprintf (err, err_size, "network: %s", why);
        rc = WK_T_FAILED;
        goto out;
    }
    if (nranks > 1) {
        g_dev = be->alloc (be, 2);
        if (!g_dev) {
            snprintf (err, err_size, "network: %s", be->error);
            rc = WK_T_FAILED;
            goto out;
        }
    }
    s_shape_t sh = { .data = data, .mlp = cfg.arch == KN_ARCH_MLP, .window = cfg.window,
                     .in_size = kn_model_in_size (net) };
    size_t n_params = kn_model_n_params (net);
    size_t chunk = (size_t) batch > S_CHUNK ? (size_t) batch : S_CHUNK;
    X = lb_xmalloc (chunk * sh.in_size * sizeof (float));
    Y = lb_xmalloc (chunk * sizeof (float));
    best = lb_xmalloc (n_params * sizeof (float));
    vpred = lb_xmalloc ((data->vrows + 1) * sizeof (float));
    order = lb_xmalloc (data->rows * sizeof *order);
    kn_model_get_params (net, best);
    //  The validation rows scored after each epoch: evenly spaced, fixed.
    vsub = lb_xmalloc ((val_count + 1) * sizeof *vsub);
    vsub_y = lb_xmalloc ((val_count + 1) * sizeof *vsub_y);
    for (size_t i = 0; i < val_count; i++) {
        vsub [i] = (size_t) ((double) i * (double) data->vrows / (double) val_count);
        vsub_y [i] = data->vy [vsub [i]];
    }

    int start = 0, best_epoch = -1;
    double best_loss = INFINITY;
    if (ctx->resume && s_resume (net, ctx, epochs, &start, &best_epoch, &best_loss, best, err, err_size))
        goto out;
    if (start)
        lb_log_info ("resuming %s after epoch %d of %d (best %d, val loss %.6g)",
                     lb_model_family_name (family), start, epochs, best_epoch + 1, best_loss);

    const char *metric_name = data->task == LB_MODEL_BINARY ? "auc" : "rmse";
    int64_t t0 = lb_clock_mono (&ctx->clock), last_report = t0, last_ckpt = t0;
    double done_samples = 0, val_loss = NAN, metric = NAN, train_loss = NAN, train_s = 0;
    int epoch = start;
    for (; epoch < epochs; epoch++) {
        //  This epoch's order: a function of (seed, epoch) only.
        uint64_t state = ctx->seed * 0x2545f4914f6cdd1dull + (uint64_t) epoch + 1;
        for (size_t i = 0; i < data->rows; i++)
            order [i] = i;
        for (size_t i = data->rows - 1; i > 0; i--) {
            size_t j = (size_t) (s_mix (&state) % (i + 1));
            size_t t = order [i];
            order [i] = order [j];
            order [j] = t;
        }
        double sum = 0;
        int64_t epoch_t0 = lb_clock_mono (&ctx->clock);
        for (size_t b = 0; b < per_epoch; b += (size_t) batch) {
            if (nranks == 1 && ctx->stopping && ctx->stopping (ctx->arg)) {
                snprintf (err, err_size, "stopped in epoch %d of %d (resumes from the last checkpoint)",
                          epoch + 1, epochs);
                rc = WK_T_STOPPED;
                goto out;
            }
            size_t n = per_epoch - b < (size_t) batch ? per_epoch - b : (size_t) batch;
            //  This rank's shard of the global batch; a last batch smaller
            //  than the group is skipped by every rank alike.
            size_t lo = 0, hi = n;
            if (nranks > 1) {
                if (n < (size_t) nranks)
                    break;
                pr_rank_shard (n, rank, nranks, &lo, &hi);
                if (s_group_stop (net, be, ctx, g_dev, epoch, epochs, err, err_size, &rc))
                    goto out;
            }
            s_batch (&sh, &tr, order + b + lo, hi - lo, X, Y);
            float loss;
            if (kn_model_train_step (net, &opt, X, Y, (int) (hi - lo), &loss)) {
                snprintf (err, err_size, "epoch %d: %s", epoch + 1, kn_model_error (net));
                rc = strstr (kn_model_error (net), "label") || strstr (kn_model_error (net), "finite")
                   ? WK_T_BAD_INPUT : WK_T_FAILED;
                goto out;
            }
            sum += (double) loss * (double) n;
            done_samples += (double) n;
            int64_t now = lb_clock_mono (&ctx->clock);
            if (ctx->progress && (double) (now - last_report) / 1e6 >= ctx->progress_every_s) {
                double elapsed = train_s + (double) (now - epoch_t0) / 1e6;
                double rate = elapsed > 0 ? done_samples / elapsed : 0;
                double left = (double) (epochs - epoch) * (double) per_epoch - (double) (b + n);
                wk_tprogress_t p = { .unit = "epoch", .step = epoch, .steps = epochs,
                                     .train_loss = sum / (double) (b + n), .val_loss = val_loss,
                                     .metric_name = metric_name, .metric = metric,
                                     .samples_per_s = rate, .eta_s = rate > 0 ? left / rate : NAN,
                                     .percent = 100.0 * (epoch + (double) (b + n) / (double) per_epoch) / epochs };
                ctx->progress (ctx->arg, &p);
                last_report = now;
            }
        }
        train_loss = sum / (double) per_epoch;
        train_s += (double) (lb_clock_mono (&ctx->clock) - epoch_t0) / 1e6;
        if (s_predict (net, &sh, &va, val_count < data->vrows ? vsub : NULL, val_count, X, vpred)) {
            snprintf (err, err_size, "validation: %s", kn_model_error (net));
            rc = WK_T_FAILED;
            goto out;
        }
        val_loss = s_loss (data->task, vpred, vsub_y, val_count);
        metric = data->task == LB_MODEL_BINARY ? wk_tdata_auc (vpred, vsub_y, val_count)
                                               : sqrt (val_loss);
        //  Every rank holds the same parameters, but a GPU may score them a
        //  rounding apart: the group decides on the mean, identically.
        if (nranks > 1 && s_group_mean2 (be, g_dev, &val_loss, &metric)) {
            snprintf (err, err_size, "epoch %d: the group's validation figures: %s", epoch + 1, be->error);
            rc = WK_T_FAILED;
            goto out;
        }
        if (!isfinite (train_loss) || !isfinite (val_loss)) {
            snprintf (err, err_size, "epoch %d: the loss diverged (train %g, validation %g); "
                      "lower lr", epoch + 1, train_loss, val_loss);
            goto out;
        }
        if (val_loss < best_loss) {
            best_loss = val_loss;
            best_epoch = epoch;
            kn_model_get_params (net, best);
        }
        int64_t now = lb_clock_mono (&ctx->clock);
        double elapsed = (double) (now - t0) / 1e6;
        bool last = epoch + 1 == epochs || (patience > 0 && epoch - best_epoch >= patience);
        if (ctx->progress) {
            double rate = train_s > 0 ? done_samples / train_s : 0;
            wk_tprogress_t p = { .unit = "epoch", .step = epoch + 1, .steps = epochs,
                                 .train_loss = train_loss, .val_loss = val_loss,
                                 .metric_name = metric_name, .metric = metric, .samples_per_s = rate,
                                 .eta_s = last ? 0 : elapsed / (epoch + 1 - start) * (epochs - epoch - 1),
                                 .percent = 100.0 * (epoch + 1) / epochs };
            ctx->progress (ctx->arg, &p);
            last_report = now;
        }
        if (last)
            break;
        if (ctx->checkpoint && ((ctx->checkpoint_every_s > 0
                                 && (double) (now - last_ckpt) / 1e6 >= ctx->checkpoint_every_s)
                             || (ctx->stopping && ctx->stopping (ctx->arg)))) {
            s_checkpoint (net, ctx, epoch + 1, best_epoch, best_loss, best);
            last_ckpt = lb_clock_mono (&ctx->clock);
        }
    }
    int trained = epoch < epochs ? epoch + 1 : epochs;
    if (ctx->metric) {
        ctx->metric (ctx->arg, "train_seconds", (double) (lb_clock_mono (&ctx->clock) - t0) / 1e6);
        ctx->metric (ctx->arg, "samples_per_s", train_s > 0 ? done_samples / train_s : 0);
    }

    //  With early stopping the best epoch's weights; without, the last. The
    //  final metrics are on every validation row.
    if (patience > 0 && best_epoch + 1 < trained)
        kn_model_set_params (net, best);
    else
        kn_model_get_params (net, best);
    if (s_predict (net, &sh, &va, NULL, 0, X, vpred)) {
        snprintf (err, err_size, "validation: %s", kn_model_error (net));
        rc = WK_T_FAILED;
        goto out;
    }
    model = lb_model_new (family, data->task);
    lb_model_set_features (model, data->names, cols);
    lb_model_set_standardisation (model, mean, scale);
    stored = json_deep_copy (params);
    json_object_set_new (stored, "net", s_net_json (&cfg));
    char *ptext = json_dumps (stored, JSON_COMPACT | JSON_SORT_KEYS);
    int prc = lb_model_set_params (model, ptext);
    assert (prc == 0);
    free (ptext);
    lb_model_set_blob (model, "weights", best, n_params * sizeof (float));
    lb_model_set_info (model, "backend", be->name);
    if (nranks > 1) {
        char text [16];
        snprintf (text, sizeof text, "%d", nranks);
        lb_model_set_info (model, "ranks", text);
    }
    if (data->task == LB_MODEL_BINARY) {
        lb_model_set_metric (model, "val_logloss", wk_tdata_logloss (vpred, data->vy, data->vrows));
        lb_model_set_metric (model, "val_auc", wk_tdata_auc (vpred, data->vy, data->vrows));
    }
    else
        lb_model_set_metric (model, "val_rmse", wk_tdata_rmse (vpred, data->vy, data->vrows));
    lb_model_set_metric (model, "train_loss", train_loss);
    lb_model_set_metric (model, "epochs_trained", trained);
    lb_model_set_metric (model, "best_epoch", best_epoch + 1);
    lb_model_set_metric (model, "parameters", (double) n_params);
    *model_p = model;
    model = NULL;
    rc = WK_T_OK;
out:
    json_decref (stored);
    lb_model_destroy (&model);
    if (g_dev)
        be->free (be, g_dev);
    kn_model_destroy (&net);
    if (be != ctx->backend)
        kn_backend_destroy (&be);
    s_split_free (&tr);
    s_split_free (&va);
    free (X);
    free (Y);
    free (best);
    free (vpred);
    free (order);
    free (vsub);
    free (vsub_y);
    free (mean);
    free (scale);
    return rc;
}

// ---------------------------------------------------------------- selftest

static lb_model_t *
s_train (lb_model_family_t family, const wk_tdata_t *data, const char *const *names,
         const char *const *values, size_t count, const wk_tctx_t *ctx, wk_tresult_t want)
{
    return wk_tprobe_train (wk_tnet_train, family, data, names, values, count, ctx, want);
}

void
wk_tnet_test (bool verbose)
{
    if (verbose)
        printf (" * wk_tnet: ");
    enum { ROWS = 2000, VROWS = 600, COLS = 5 };
    float *x = lb_xmalloc ((ROWS + VROWS) * COLS * sizeof (float));
    float *y = lb_xmalloc ((ROWS + VROWS) * sizeof (float));
    wk_tdata_synth (21, ROWS + VROWS, COLS, x, y);
    for (size_t i = 0; i < (ROWS + VROWS) * COLS; i++)
        x [i] = x [i] * 3 + 10;                     //  standardisation has work to do
    const char *names [COLS] = { "a", "b", "c", "d", "e" };
    wk_tdata_t data = { .task = LB_MODEL_BINARY, .cols = COLS, .names = names, .x = x, .y = y,
                        .rows = ROWS, .vx = x + ROWS * COLS, .vy = y + ROWS, .vrows = VROWS };
    wk_tprobe_t probe = { 0 };
    wk_tctx_t ctx = { .nthread = 2, .seed = 5, .clock = lb_clock_system (), .arg = &probe };

    //  MLP: learns, deterministic, and the artifact scores as the trainer measured.
    const char *n1 [] = { "hidden", "epochs", "batch", "lr", "early_stopping_epochs" };
    const char *v1 [] = { "16,8", "6", "64", "0.01", "0" };
    lb_model_t *m1 = s_train (LB_MODEL_MLP, &data, n1, v1, 5, &ctx, WK_T_OK);
    double auc, epochs;
    assert (lb_model_metric (m1, "val_auc", &auc) == 0 && auc > 0.75);
    assert (lb_model_metric (m1, "epochs_trained", &epochs) == 0 && epochs == 6);
    const float *mean;
    assert (lb_model_standardisation (m1, &mean, NULL) && fabsf (mean [0] - 10) < 0.5f);
    float *p = lb_xmalloc (VROWS * sizeof (float));
    char err [512];
    assert (lb_model_predict (m1, data.vx, VROWS, COLS, 1, p, err, sizeof err) == 0);
    assert (fabs (wk_tdata_auc (p, data.vy, VROWS) - auc) < 1e-4);
    lb_model_t *m2 = s_train (LB_MODEL_MLP, &data, n1, v1, 5, &ctx, WK_T_OK);
    char *d1 = lb_model_digest (m1), *d2 = lb_model_digest (m2);
    assert (strcmp (d1, d2) == 0);
    free (d2);
    lb_model_destroy (&m2);

    //  Stopped in epoch 4 with a checkpoint after each epoch; resumed: the same bytes.
    ctx.checkpoint = wk_tprobe_checkpoint;
    ctx.stopping = wk_tprobe_stopping;
    ctx.checkpoint_every_s = 1e-9;
    probe.stop_after = 3 * 32 + 10;                 //  32 batches an epoch
    assert (!s_train (LB_MODEL_MLP, &data, n1, v1, 5, &ctx, WK_T_STOPPED));
    assert (probe.ckpt);
    probe.stop_after = 0;
    ctx.resume = probe.ckpt;
    ctx.resume_size = probe.ckpt_size;
    m2 = s_train (LB_MODEL_MLP, &data, n1, v1, 5, &ctx, WK_T_OK);
    d2 = lb_model_digest (m2);
    assert (strcmp (d1, d2) == 0);
    free (d2);
    lb_model_destroy (&m2);
    ctx.resume = probe.ckpt;                        //  the resumed run wrote newer ones
    ctx.resume_size = probe.ckpt_size;
    probe.ckpt [4] ^= 0x7f;                          //  a damaged checkpoint is refused
    assert (!s_train (LB_MODEL_MLP, &data, n1, v1, 5, &ctx, WK_T_BAD_INPUT));
    ctx.resume = NULL;
    ctx.checkpoint = NULL;
    ctx.stopping = NULL;

    //  NaN: refused without imputation, filled with the mean with it.
    x [3 * COLS + 2] = NAN;
    assert (!s_train (LB_MODEL_MLP, &data, n1, v1, 5, &ctx, WK_T_BAD_INPUT));
    const char *n2 [] = { "hidden", "epochs", "batch", "impute" };
    const char *v2 [] = { "8", "1", "128", "mean" };
    m2 = s_train (LB_MODEL_MLP, &data, n2, v2, 4, &ctx, WK_T_OK);
    assert (lb_model_predict (m2, x, 10, COLS, 1, p, err, sizeof err) == 0 && isfinite (p [3]));
    lb_model_destroy (&m2);
    x [3 * COLS + 2] = 0;

    //  A small transformer: windows of 4 rows; the artifact scores as trained.
    const char *n3 [] = { "window", "d_model", "heads", "layers", "d_ff", "epochs", "batch",
                          "samples_per_epoch", "lr", "dropout", "pool" };
    const char *v3 [] = { "4", "8", "2", "1", "16", "3", "32", "1024", "0.01", "0", "last" };
    lb_model_t *t1 = s_train (LB_MODEL_TRANSFORMER, &data, n3, v3, 11, &ctx, WK_T_OK);
    assert (lb_model_metric (t1, "val_auc", &auc) == 0 && auc > 0.6);
    assert (lb_model_predict (t1, data.vx, VROWS, COLS, 2, p, err, sizeof err) == 0);
    assert (fabs (wk_tdata_auc (p, data.vy, VROWS) - auc) < 1e-4);
    const char *v4 [] = { "4", "10", "3", "1", "16", "2", "32", "640", "0.003", "0", "last" };
    assert (!s_train (LB_MODEL_TRANSFORMER, &data, n3, v4, 11, &ctx, WK_T_BAD_INPUT));
    lb_model_destroy (&t1);

    free (d1);
    free (p);
    wk_tprobe_release (&probe);
    lb_model_destroy (&m1);
    free (x);
    free (y);
    if (verbose)
        printf ("OK\n");
}
