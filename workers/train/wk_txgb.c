/*  wk_txgb.c - xgboost and rf through XGBoost's C API (see wk_txgb.h). */
#include "wk_txgb.h"
#include "wk_tparams.h"
#include "lb_log.h"
#include "lb_mem.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xgboost/c_api.h>

#define S_CKPT_HEAD 24          //  u32 round, u32 best, f64 best_score, u64 booster bytes

bool
wk_txgb_gpu_capable (char *why, size_t why_size)
{
    const char *info = NULL;
    if (XGBuildInfo (&info) || !info) {
        snprintf (why, why_size, "XGBuildInfo failed: %s", XGBGetLastError ());
        return false;
    }
    json_t *build = json_loads (info, 0, NULL);
    bool cuda = json_is_true (json_object_get (build, "USE_CUDA"));
    json_decref (build);
    if (!cuda)
        snprintf (why, why_size, "this libxgboost was built without CUDA (XGBuildInfo USE_CUDA false)");
    return cuda;
}

static int
s_set (BoosterHandle booster, const char *name, const char *value, char *err, size_t err_size)
{
    if (XGBoosterSetParam (booster, name, value) == 0)
        return 0;
    snprintf (err, err_size, "xgboost parameter %s=%s: %s", name, value, XGBGetLastError ());
    return -1;
}

static int
s_set_real (BoosterHandle booster, const char *name, double value, char *err, size_t err_size)
{
    char text [64];
    snprintf (text, sizeof text, "%.17g", value);
    return s_set (booster, name, text, err, err_size);
}

static int
s_set_int (BoosterHandle booster, const char *name, long long value, char *err, size_t err_size)
{
    char text [32];
    snprintf (text, sizeof text, "%lld", value);
    return s_set (booster, name, text, err, err_size);
}

//  Reads "<split>-<metric>:<value>" from an evaluation line; NaN if absent.
static double
s_eval_value (const char *line, const char *split, const char *metric)
{
    char key [64];
    snprintf (key, sizeof key, "\t%s-%s:", split, metric);
    const char *at = strstr (line, key);
    return at ? strtod (at + strlen (key), NULL) : NAN;
}

static DMatrixHandle
s_dmatrix (const float *x, const float *y, size_t rows, size_t cols, int nthread,
           char *err, size_t err_size)
{
    DMatrixHandle m = NULL;
    if (XGDMatrixCreateFromMat_omp (x, rows, cols, NAN, &m, nthread)
    ||  XGDMatrixSetFloatInfo (m, "label", y, rows)) {
        snprintf (err, err_size, "xgboost DMatrix: %s", XGBGetLastError ());
        if (m)
            XGDMatrixFree (m);
        return NULL;
    }
    return m;
}

//  Sets every training parameter. Returns 0 or -1 with err.
static int
s_configure (BoosterHandle b, lb_model_family_t family, lb_model_task_t task,
             const json_t *p, const wk_tctx_t *ctx, const char *stop_metric,
             char *err, size_t err_size)
{
    const char *loss_metric = task == LB_MODEL_BINARY ? "logloss" : "rmse";
    int rc = s_set (b, "validate_parameters", "1", err, err_size)
          || s_set (b, "objective", task == LB_MODEL_BINARY ? "binary:logistic" : "reg:squarederror",
                    err, err_size)
          || s_set (b, "tree_method", ctx->gpu ? "gpu_hist" : "hist", err, err_size)
          || (ctx->gpu && s_set (b, "gpu_id", "0", err, err_size))
          || s_set_int (b, "nthread", ctx->nthread, err, err_size)
          || s_set_int (b, "seed", (long long) (ctx->seed & 0x7fffffff), err, err_size)
          || s_set (b, "seed_per_iteration", "1", err, err_size)
          || s_set_int (b, "max_depth", wk_tparams_int (p, "max_depth"), err, err_size)
          || s_set_real (b, "min_child_weight", wk_tparams_real (p, "min_child_weight"), err, err_size)
          || s_set_real (b, "subsample", wk_tparams_real (p, "subsample"), err, err_size)
          || s_set_real (b, "colsample_bynode", wk_tparams_real (p, "colsample_bynode"), err, err_size)
          || s_set_real (b, "lambda", wk_tparams_real (p, "lambda"), err, err_size)
          || s_set_int (b, "max_bin", wk_tparams_int (p, "max_bin"), err, err_size)
          || s_set (b, "eval_metric", loss_metric, err, err_size);
    if (rc)
        return -1;
    if (family == LB_MODEL_RF)
        return s_set_int (b, "num_parallel_tree", wk_tparams_int (p, "trees"), err, err_size)
            || s_set (b, "eta", "1", err, err_size)
            ? -1 : 0;
    rc = s_set_real (b, "eta", wk_tparams_real (p, "eta"), err, err_size)
      || s_set_real (b, "colsample_bytree", wk_tparams_real (p, "colsample_bytree"), err, err_size)
      || s_set_real (b, "alpha", wk_tparams_real (p, "alpha"), err, err_size)
      || s_set_real (b, "gamma", wk_tparams_real (p, "gamma"), err, err_size)
      || s_set_real (b, "scale_pos_weight", wk_tparams_real (p, "scale_pos_weight"), err, err_size)
      || (strcmp (stop_metric, loss_metric) != 0 && s_set (b, "eval_metric", stop_metric, err, err_size));
    return rc ? -1 : 0;
}

//  Writes a checkpoint body through the hook: state, then the booster.
static void
s_checkpoint (BoosterHandle b, const wk_tctx_t *ctx, int rounds_done, int best, double best_score)
{
    bst_ulong len = 0;
    const char *raw = NULL;
    if (XGBoosterSerializeToBuffer (b, &len, &raw)) {
        lb_log_warn ("checkpoint skipped: xgboost serialise: %s", XGBGetLastError ());
        return;
    }
    size_t size = S_CKPT_HEAD + len;
    uint8_t *body = lb_xmalloc (size);
    uint32_t r = (uint32_t) rounds_done, bi = (uint32_t) best;
    uint64_t n = len;
    memcpy (body, &r, 4);
    memcpy (body + 4, &bi, 4);
    memcpy (body + 8, &best_score, 8);
    memcpy (body + 16, &n, 8);
    memcpy (body + S_CKPT_HEAD, raw, len);
    if (ctx->checkpoint (ctx->arg, body, size))
        lb_log_warn ("checkpoint at round %d could not be stored; training goes on", rounds_done);
    free (body);
}

//  Restores the booster and the early-stopping state from a checkpoint body.
//  Returns 0, or -1 with err.
static int
s_resume (BoosterHandle booster, const wk_tctx_t *ctx, int rounds, int *start, int *best,
          double *best_score, char *err, size_t err_size)
{
    uint32_t r = 0, bi = 0;
    uint64_t n = 0;
    double score = 0;
    int have = -1;
    if (ctx->resume_size >= S_CKPT_HEAD) {
        memcpy (&r, ctx->resume, 4);
        memcpy (&bi, ctx->resume + 4, 4);
        memcpy (&score, ctx->resume + 8, 8);
        memcpy (&n, ctx->resume + 16, 8);
    }
    if (ctx->resume_size < S_CKPT_HEAD || n != ctx->resume_size - S_CKPT_HEAD
    ||  r == 0 || (int) r > rounds || bi >= r) {
        snprintf (err, err_size, "checkpoint: state (round %u, best %u, %llu booster bytes in %zu) "
                  "does not fit this job", r, bi, (unsigned long long) n, ctx->resume_size);
        return -1;
    }
    if (XGBoosterUnserializeFromBuffer (booster, ctx->resume + S_CKPT_HEAD, n)
    ||  XGBoosterBoostedRounds (booster, &have) || have != (int) r) {
        snprintf (err, err_size, "checkpoint: XGBoost cannot restore the booster of round %u: %s",
                  r, XGBGetLastError ());
        return -1;
    }
    if (s_set_int (booster, "nthread", ctx->nthread, err, err_size))
        return -1;
    *start = (int) r;
    *best = (int) bi;
    *best_score = score;
    return 0;
}

static void
s_report (const wk_tctx_t *ctx, const char *unit, int step, int steps, double train_loss,
          double val_loss, const char *metric_name, double metric, double samples_per_s,
          double eta_s)
{
    if (!ctx->progress)
        return;
    wk_tprogress_t p = { .unit = unit, .step = step, .steps = steps, .train_loss = train_loss,
                         .val_loss = val_loss, .metric_name = metric_name, .metric = metric,
                         .samples_per_s = samples_per_s, .eta_s = eta_s,
                         .percent = steps ? 100.0 * step / steps : 0 };
    ctx->progress (ctx->arg, &p);
}

wk_tresult_t
wk_txgb_train (lb_model_family_t family, const wk_tdata_t *data, const json_t *params,
               const wk_tctx_t *ctx, lb_model_t **model_p, char *err, size_t err_size)
{
    assert (family == LB_MODEL_XGBOOST || family == LB_MODEL_RF);
    assert (data && params && ctx && model_p);
    assert (ctx->nthread >= 1);
    wk_tresult_t rc = WK_T_FAILED;
    DMatrixHandle dtrain = NULL, dvalid = NULL;
    BoosterHandle booster = NULL, best_booster = NULL;
    lb_model_t *model = NULL;
    float *pred = NULL;
    *model_p = NULL;

    const char *stop_metric = data->task == LB_MODEL_BINARY ? "logloss" : "rmse";
    int rounds = 1, esr = 0;
    if (family == LB_MODEL_XGBOOST) {
        rounds = (int) wk_tparams_int (params, "rounds");
        esr = (int) wk_tparams_int (params, "early_stopping_rounds");
        const char *m = wk_tparams_str (params, "eval_metric");
        if (strcmp (m, "auto") != 0)
            stop_metric = m;
        bool reg_metric = strcmp (stop_metric, "rmse") == 0 || strcmp (stop_metric, "mae") == 0;
        if (data->task == LB_MODEL_REGRESSION && !reg_metric) {
            snprintf (err, err_size, "hyperparameter eval_metric: %s needs a binary label; "
                      "use rmse or mae for regression", stop_metric);
            return WK_T_BAD_INPUT;
        }
    }
    bool maximise = strcmp (stop_metric, "auc") == 0;

    dtrain = s_dmatrix (data->x, data->y, data->rows, data->cols, ctx->nthread, err, err_size);
    dvalid = dtrain ? s_dmatrix (data->vx, data->vy, data->vrows, data->cols, ctx->nthread,
                                 err, err_size) : NULL;
    if (!dvalid)
        goto out;
    DMatrixHandle dmats [2] = { dtrain, dvalid };
    const char *names [2] = { "train", "valid" };
    if (XGBoosterCreate (dmats, 2, &booster)) {
        snprintf (err, err_size, "xgboost booster: %s", XGBGetLastError ());
        goto out;
    }
    if (s_configure (booster, family, data->task, params, ctx, stop_metric, err, err_size)) {
        rc = WK_T_BAD_INPUT;
        goto out;
    }

    int start = 0, best = -1;
    double best_score = maximise ? -INFINITY : INFINITY;
    if (ctx->resume && family == LB_MODEL_XGBOOST) {
        if (s_resume (booster, ctx, rounds, &start, &best, &best_score, err, err_size)) {
            rc = WK_T_BAD_INPUT;
            goto out;
        }
        lb_log_info ("resuming %s at round %d of %d (best %d, %s %.6g)", lb_model_family_name (family),
                     start, rounds, best, stop_metric, best_score);
    }

    int64_t t0 = lb_clock_mono (&ctx->clock);
    int64_t last_report = t0, last_ckpt = t0;
    double train_loss = NAN, val_loss = NAN, metric = NAN;
    const char *loss_metric = data->task == LB_MODEL_BINARY ? "logloss" : "rmse";
    if (family == LB_MODEL_RF)
        s_report (ctx, "round", 0, 1, NAN, NAN, stop_metric, NAN, 0, NAN);
    int it = start;
    for (; it < rounds; it++) {
        if (ctx->stopping && ctx->stopping (ctx->arg)) {
            if (ctx->checkpoint && it > start)
                s_checkpoint (booster, ctx, it, best, best_score);
            snprintf (err, err_size, "stopped at round %d of %d%s", it, rounds,
                      ctx->checkpoint && it > start ? " (checkpoint written)" : "");
            rc = WK_T_STOPPED;
            goto out;
        }
        if (XGBoosterUpdateOneIter (booster, it, dtrain)) {
            snprintf (err, err_size, "xgboost round %d: %s", it, XGBGetLastError ());
            goto out;
        }
        const char *line = NULL;
        if (XGBoosterEvalOneIter (booster, it, dmats, names, 2, &line)) {
            snprintf (err, err_size, "xgboost eval round %d: %s", it, XGBGetLastError ());
            goto out;
        }
        train_loss = s_eval_value (line, "train", loss_metric);
        val_loss = s_eval_value (line, "valid", loss_metric);
        metric = s_eval_value (line, "valid", stop_metric);
        if (isnan (metric)) {
            snprintf (err, err_size, "xgboost eval round %d: no valid-%s in '%s'", it, stop_metric, line);
            goto out;
        }
        if (maximise ? metric > best_score : metric < best_score) {
            best_score = metric;
            best = it;
        }
        int64_t now = lb_clock_mono (&ctx->clock);
        double elapsed = (double) (now - t0) / 1e6;
        int done = it + 1 - start;
        bool last = it + 1 == rounds || (esr > 0 && it - best >= esr);
        if (last || (double) (now - last_report) / 1e6 >= ctx->progress_every_s) {
            double rate = elapsed > 0 ? (double) data->rows * done / elapsed : 0;
            s_report (ctx, "round", it + 1, rounds, train_loss, val_loss, stop_metric, metric,
                      rate, elapsed / done * (rounds - it - 1));
            last_report = now;
        }
        if (last)
            break;
        if (ctx->checkpoint && ctx->checkpoint_every_s > 0
        &&  (double) (now - last_ckpt) / 1e6 >= ctx->checkpoint_every_s) {
            s_checkpoint (booster, ctx, it + 1, best, best_score);
            last_ckpt = lb_clock_mono (&ctx->clock);
        }
    }
    int trained = it < rounds ? it + 1 : rounds;

    //  With early stopping, keep the best round only: what is stored is what
    //  is scored. Without it, every round is kept (as python3-xgboost does).
    BoosterHandle final = booster;
    if (family == LB_MODEL_XGBOOST && esr > 0 && best + 1 < trained) {
        if (XGBoosterSlice (booster, 0, best + 1, 1, &best_booster)) {
            snprintf (err, err_size, "xgboost slice to round %d: %s", best + 1, XGBGetLastError ());
            goto out;
        }
        final = best_booster;
    }
    if (XGBoosterSetStrFeatureInfo (final, "feature_name", (const char **) data->names, data->cols)) {
        snprintf (err, err_size, "xgboost feature names: %s", XGBGetLastError ());
        rc = WK_T_BAD_INPUT;
        goto out;
    }
    bst_ulong len = 0;
    const char *raw = NULL;
    if (XGBoosterSaveModelToBuffer (final, "{\"format\": \"ubj\"}", &len, &raw)) {
        snprintf (err, err_size, "xgboost save: %s", XGBGetLastError ());
        goto out;
    }
    model = lb_model_new (family, data->task);
    lb_model_set_features (model, (const char *const *) data->names, data->cols);
    lb_model_set_blob (model, "xgboost.ubj", raw, len);
    char *ptext = json_dumps (params, JSON_COMPACT | JSON_SORT_KEYS);
    assert (ptext);
    int prc = lb_model_set_params (model, ptext);
    assert (prc == 0);
    free (ptext);
    lb_model_set_info (model, "tree_method", ctx->gpu ? "gpu_hist" : "hist");

    //  Metrics of the stored model, computed the way the evaluator scores.
    size_t most = data->rows > data->vrows ? data->rows : data->vrows;
    pred = lb_xmalloc (most * sizeof (float));
    const float *xs [2] = { data->x, data->vx }, *ys [2] = { data->y, data->vy };
    size_t ns [2] = { data->rows, data->vrows };
    const char *prefix [2] = { "train", "val" };
    for (int s = 0; s < 2; s++) {
        if (lb_model_predict (model, xs [s], ns [s], data->cols, ctx->nthread, pred, err, err_size))
            goto out;
        char key [32];
        if (data->task == LB_MODEL_BINARY) {
            snprintf (key, sizeof key, "%s_logloss", prefix [s]);
            lb_model_set_metric (model, key, wk_tdata_logloss (pred, ys [s], ns [s]));
            snprintf (key, sizeof key, "%s_auc", prefix [s]);
            lb_model_set_metric (model, key, wk_tdata_auc (pred, ys [s], ns [s]));
        }
        else {
            snprintf (key, sizeof key, "%s_rmse", prefix [s]);
            lb_model_set_metric (model, key, wk_tdata_rmse (pred, ys [s], ns [s]));
        }
    }
    lb_model_set_metric (model, "rounds_trained", trained);
    lb_model_set_metric (model, "best_iteration", family == LB_MODEL_XGBOOST ? best : 0);
    *model_p = model;
    model = NULL;
    rc = WK_T_OK;
out:
    free (pred);
    lb_model_destroy (&model);
    if (best_booster)
        XGBoosterFree (best_booster);
    if (booster)
        XGBoosterFree (booster);
    if (dvalid)
        XGDMatrixFree (dvalid);
    if (dtrain)
        XGDMatrixFree (dtrain);
    return rc;
}

// ---------------------------------------------------------------- selftest

typedef struct {
    uint8_t *ckpt;              //  last checkpoint body
    size_t ckpt_size;
    int checkpoints;
    int progress;
    int stop_after;             //  stopping() says true after this many calls (0: never)
    int stop_calls;
} s_probe_t;

static void
s_probe_progress (void *arg, const wk_tprogress_t *p)
{
    s_probe_t *probe = arg;
    assert (p->step >= 0 && p->step <= p->steps);
    probe->progress++;
}

static int
s_probe_checkpoint (void *arg, const uint8_t *data, size_t size)
{
    s_probe_t *probe = arg;
    free (probe->ckpt);
    probe->ckpt = lb_xmalloc (size);
    memcpy (probe->ckpt, data, size);
    probe->ckpt_size = size;
    probe->checkpoints++;
    return 0;
}

static bool
s_probe_stopping (void *arg)
{
    s_probe_t *probe = arg;
    return probe->stop_after && ++probe->stop_calls > probe->stop_after;
}

static lb_model_t *
s_train (lb_model_family_t family, const wk_tdata_t *data, const char *const *names,
         const char *const *values, size_t count, wk_tctx_t *ctx, wk_tresult_t want)
{
    char err [512] = "";
    json_t *params = wk_tparams_resolve (family, names, values, count, err, sizeof err);
    assert (params);
    lb_model_t *model = NULL;
    wk_tresult_t rc = wk_txgb_train (family, data, params, ctx, &model, err, sizeof err);
    if (rc != want)
        fprintf (stderr, "wk_txgb: got %d, wanted %d: %s\n", rc, want, err);
    assert (rc == want);
    json_decref (params);
    return model;
}

void
wk_txgb_test (bool verbose)
{
    if (verbose)
        printf (" * wk_txgb: ");
    enum { ROWS = 3000, VROWS = 1000, COLS = 6 };
    float *x = lb_xmalloc ((ROWS + VROWS) * COLS * sizeof (float));
    float *y = lb_xmalloc ((ROWS + VROWS) * sizeof (float));
    wk_tdata_synth (42, ROWS + VROWS, COLS, x, y);
    x [5 * COLS + 1] = NAN;     //  missing values are fine for trees
    x [(ROWS + 3) * COLS] = NAN;
    const char *fnames [COLS] = { "f0", "f1", "f2", "f3", "f4", "f5" };
    wk_tdata_t data = { .task = LB_MODEL_BINARY, .cols = COLS, .names = fnames,
                        .x = x, .y = y, .rows = ROWS,
                        .vx = x + ROWS * COLS, .vy = y + ROWS, .vrows = VROWS };
    s_probe_t probe = { 0 };
    wk_tctx_t ctx = { .nthread = 2, .seed = 7, .progress_every_s = 0, .clock = lb_clock_system (),
                      .progress = s_probe_progress, .arg = &probe };

    //  xgboost with early stopping: learns, stops early, cut to the best round.
    const char *n1 [] = { "rounds", "eta", "max_depth", "early_stopping_rounds", "subsample" };
    const char *v1 [] = { "400", "0.3", "4", "5", "0.8" };
    lb_model_t *m1 = s_train (LB_MODEL_XGBOOST, &data, n1, v1, 5, &ctx, WK_T_OK);
    double auc, trained, best;
    assert (lb_model_metric (m1, "val_auc", &auc) == 0 && auc > 0.75);
    assert (lb_model_metric (m1, "rounds_trained", &trained) == 0 && trained < 400);
    assert (lb_model_metric (m1, "best_iteration", &best) == 0 && best + 5 == trained - 1);
    assert (probe.progress >= trained);
    assert (lb_model_family (m1) == LB_MODEL_XGBOOST);
    assert (strcmp (lb_model_feature_name (m1, 5), "f5") == 0);

    //  Same data, seed and threads: the same bytes.
    lb_model_t *m2 = s_train (LB_MODEL_XGBOOST, &data, n1, v1, 5, &ctx, WK_T_OK);
    char *d1 = lb_model_digest (m1), *d2 = lb_model_digest (m2);
    assert (strcmp (d1, d2) == 0);
    free (d2);
    lb_model_destroy (&m2);
    //  Another seed: subsampling draws other rows.
    ctx.seed = 8;
    m2 = s_train (LB_MODEL_XGBOOST, &data, n1, v1, 5, &ctx, WK_T_OK);
    d2 = lb_model_digest (m2);
    assert (strcmp (d1, d2) != 0);
    free (d2);
    lb_model_destroy (&m2);
    ctx.seed = 7;

    //  Stop half-way with a checkpoint, resume: the same model as without
    //  (exactly so without row/column subsampling; see wk_txgb.h).
    v1 [4] = "1";
    lb_model_t *m3 = s_train (LB_MODEL_XGBOOST, &data, n1, v1, 5, &ctx, WK_T_OK);
    free (d1);
    d1 = lb_model_digest (m3);
    lb_model_destroy (&m3);
    probe.stop_after = 10;
    ctx.checkpoint = s_probe_checkpoint;
    ctx.stopping = s_probe_stopping;
    ctx.checkpoint_every_s = 1e9;
    assert (!s_train (LB_MODEL_XGBOOST, &data, n1, v1, 5, &ctx, WK_T_STOPPED));
    assert (probe.checkpoints == 1 && probe.ckpt);
    probe.stop_after = 0;
    ctx.resume = probe.ckpt;
    ctx.resume_size = probe.ckpt_size;
    m2 = s_train (LB_MODEL_XGBOOST, &data, n1, v1, 5, &ctx, WK_T_OK);
    d2 = lb_model_digest (m2);
    assert (strcmp (d1, d2) == 0);
    free (d2);
    lb_model_destroy (&m2);
    //  A damaged checkpoint body is refused, with a reason.
    probe.ckpt [0] ^= 0xff;
    assert (!s_train (LB_MODEL_XGBOOST, &data, n1, v1, 5, &ctx, WK_T_BAD_INPUT));
    probe.ckpt [0] ^= 0xff;
    probe.ckpt [40] ^= 0xff;
    assert (!s_train (LB_MODEL_XGBOOST, &data, n1, v1, 5, &ctx, WK_T_BAD_INPUT));
    ctx.resume = NULL;
    ctx.resume_size = 0;
    ctx.checkpoint = NULL;
    ctx.stopping = NULL;

    //  The stored model scores the validation rows as its metric says.
    float *p = lb_xmalloc (VROWS * sizeof (float));
    char err [256];
    assert (lb_model_metric (m1, "val_auc", &auc) == 0);
    assert (lb_model_predict (m1, data.vx, VROWS, COLS, 2, p, err, sizeof err) == 0);
    assert (fabs (wk_tdata_auc (p, data.vy, VROWS) - auc) < 1e-12);

    //  Random forest: one round of parallel trees.
    const char *n2 [] = { "trees", "max_depth" };
    const char *v2 [] = { "30", "8" };
    lb_model_t *rf = s_train (LB_MODEL_RF, &data, n2, v2, 2, &ctx, WK_T_OK);
    assert (lb_model_metric (rf, "val_auc", &auc) == 0 && auc > 0.75);
    assert (lb_model_metric (rf, "rounds_trained", &trained) == 0 && trained == 1);
    lb_model_t *rf2 = s_train (LB_MODEL_RF, &data, n2, v2, 2, &ctx, WK_T_OK);
    char *r1 = lb_model_digest (rf), *r2 = lb_model_digest (rf2);
    assert (strcmp (r1, r2) == 0);
    free (r1);
    free (r2);
    lb_model_destroy (&rf2);

    //  Regression and a metric that does not fit it.
    data.task = LB_MODEL_REGRESSION;
    const char *n3 [] = { "rounds" };
    const char *v3 [] = { "20" };
    lb_model_t *reg = s_train (LB_MODEL_XGBOOST, &data, n3, v3, 1, &ctx, WK_T_OK);
    double rmse;
    assert (lb_model_metric (reg, "val_rmse", &rmse) == 0 && rmse < 0.5);
    const char *n4 [] = { "eval_metric" };
    const char *v4 [] = { "auc" };
    assert (!s_train (LB_MODEL_XGBOOST, &data, n4, v4, 1, &ctx, WK_T_BAD_INPUT));
    lb_model_destroy (&reg);

    char why [256];
    assert (!wk_txgb_gpu_capable (why, sizeof why) || true);

    free (d1);
    free (p);
    free (probe.ckpt);
    lb_model_destroy (&rf);
    lb_model_destroy (&m1);
    free (x);
    free (y);
    if (verbose)
        printf ("OK\n");
}
