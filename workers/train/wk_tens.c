/*  wk_tens.c - simplex-constrained ensemble weights (see wk_tens.h). */
#include "wk_tens.h"
#include "wk_tparams.h"
#include "wk_txgb.h"
#include "lb_log.h"
#include "lb_mem.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_EPS 1e-15

//  Loss at w and, when grad is not NULL, its gradient.
static double
s_loss (lb_model_task_t task, const float *P, const float *y, size_t n, size_t k,
        const double *w, double *grad)
{
    double sum = 0;
    if (grad)
        for (size_t j = 0; j < k; j++)
            grad [j] = 0;
    for (size_t i = 0; i < n; i++) {
        double q = 0;
        for (size_t j = 0; j < k; j++)
            q += w [j] * P [i * k + j];
        double d;
        if (task == LB_MODEL_BINARY) {
            q = q < S_EPS ? S_EPS : q > 1 - S_EPS ? 1 - S_EPS : q;
            sum -= y [i] > 0.5f ? log (q) : log (1 - q);
            d = y [i] > 0.5f ? -1 / q : 1 / (1 - q);
        }
        else {
            sum += (q - y [i]) * (q - y [i]);
            d = 2 * (q - y [i]);
        }
        if (grad)
            for (size_t j = 0; j < k; j++)
                grad [j] += d * P [i * k + j];
    }
    if (grad)
        for (size_t j = 0; j < k; j++)
            grad [j] /= (double) n;
    return sum / (double) n;
}

static int
s_desc (const void *a, const void *b)
{
    double x = *(const double *) a, z = *(const double *) b;
    return (x < z) - (x > z);
}

//  Euclidean projection of v onto the simplex (Duchi et al. 2008).
static void
s_project (double *v, size_t k, double *tmp)
{
    memcpy (tmp, v, k * sizeof *v);
    qsort (tmp, k, sizeof *tmp, s_desc);
    double cum = 0, theta = 0;
    for (size_t j = 0; j < k; j++) {
        cum += tmp [j];
        double t = (cum - 1) / (double) (j + 1);
        if (tmp [j] - t > 0)
            theta = t;
    }
    for (size_t j = 0; j < k; j++)
        v [j] = v [j] > theta ? v [j] - theta : 0;
}

int
wk_tens_fit (lb_model_task_t task, const float *P, const float *y, size_t n, size_t k,
             int max_iter, double tol, double *w, double *loss)
{
    assert (P && y && w && loss && n > 0 && k > 0);
    double *grad = lb_xmalloc (k * sizeof *grad);
    double *cand = lb_xmalloc (k * sizeof *cand);
    double *tmp = lb_xmalloc (k * sizeof *tmp);
    for (size_t j = 0; j < k; j++)
        w [j] = 1.0 / (double) k;
    double f = s_loss (task, P, y, n, k, w, grad);
    double step = 1;
    int it = 0;
    for (; it < max_iter; it++) {
        //  Backtracking on the projected step until it decreases enough.
        double fc = f;
        bool moved = false;
        for (int tries = 0; tries < 60; tries++) {
            for (size_t j = 0; j < k; j++)
                cand [j] = w [j] - step * grad [j];
            s_project (cand, k, tmp);
            double dec = 0, dist = 0;
            for (size_t j = 0; j < k; j++) {
                dec += grad [j] * (cand [j] - w [j]);
                dist += (cand [j] - w [j]) * (cand [j] - w [j]);
            }
            if (dist == 0)
                break;
            fc = s_loss (task, P, y, n, k, cand, NULL);
            if (fc <= f + dec + dist / (2 * step)) {
                moved = true;
                break;
            }
            step /= 2;
        }
        if (!moved)
            break;
        memcpy (w, cand, k * sizeof *w);
        double improvement = f - fc;
        f = s_loss (task, P, y, n, k, w, grad);
        step *= 2;
        if (improvement < tol)
            break;
    }
    //  Renormalise exactly (projection leaves rounding in the sum).
    double sum = 0;
    for (size_t j = 0; j < k; j++)
        sum += w [j];
    for (size_t j = 0; j < k; j++)
        w [j] /= sum;
    *loss = s_loss (task, P, y, n, k, w, NULL);
    free (grad);
    free (cand);
    free (tmp);
    return it;
}

wk_tresult_t
wk_tens_train (lb_model_t **members, size_t k, const wk_tdata_t *data, const json_t *params,
               const wk_tctx_t *ctx, lb_model_t **model_p, char *err, size_t err_size)
{
    assert (members && data && params && ctx && model_p);
    wk_tresult_t rc = WK_T_BAD_INPUT;
    *model_p = NULL;
    size_t n = data->vrows;
    float *P = NULL, *col = NULL;
    double *w = NULL;
    lb_model_t *model = NULL;
    if (k < 2) {
        snprintf (err, err_size, "an ensemble needs at least 2 members, got %zu", k);
        goto out;
    }
    for (size_t j = 0; j < k; j++) {
        lb_model_t *m = members [j];
        if (lb_model_task (m) != data->task || lb_model_feature_count (m) != data->cols) {
            snprintf (err, err_size, "member %zu (%s): task or feature count differs from the dataset's",
                      j, lb_model_family_name (lb_model_family (m)));
            goto out;
        }
        for (size_t c = 0; c < data->cols; c++)
            if (strcmp (lb_model_feature_name (m, c), data->names [c]) != 0) {
                snprintf (err, err_size, "member %zu (%s): feature %zu is '%s', the dataset's is '%s'",
                          j, lb_model_family_name (lb_model_family (m)), c,
                          lb_model_feature_name (m, c), data->names [c]);
                goto out;
            }
    }
    P = lb_xmalloc (n * k * sizeof (float));
    col = lb_xmalloc (n * sizeof (float));
    for (size_t j = 0; j < k; j++) {
        char why [256];
        if (lb_model_predict (members [j], data->vx, n, data->cols, ctx->nthread, col, why, sizeof why)) {
            snprintf (err, err_size, "member %zu (%s) cannot score the validation rows: %s",
                      j, lb_model_family_name (lb_model_family (members [j])), why);
            rc = WK_T_FAILED;
            goto out;
        }
        for (size_t i = 0; i < n; i++)
            P [i * k + j] = col [i];
    }
    w = lb_xmalloc (k * sizeof *w);
    double loss;
    int its = wk_tens_fit (data->task, P, data->vy, n, k, (int) wk_tparams_int (params, "max_iter"),
                           wk_tparams_real (params, "tol"), w, &loss);

    model = lb_model_new (LB_MODEL_ENSEMBLE, data->task);
    lb_model_set_features (model, (const char *const *) data->names, data->cols);
    char *ptext = json_dumps (params, JSON_COMPACT | JSON_SORT_KEYS);
    int prc = lb_model_set_params (model, ptext);
    assert (prc == 0);
    free (ptext);
    const char *metric = data->task == LB_MODEL_BINARY ? "logloss" : "mse";
    char key [64];
    for (size_t j = 0; j < k; j++) {
        for (size_t i = 0; i < n; i++)
            col [i] = P [i * k + j];
        double one = data->task == LB_MODEL_BINARY ? wk_tdata_logloss (col, data->vy, n)
                   : pow (wk_tdata_rmse (col, data->vy, n), 2);
        snprintf (key, sizeof key, "member%zu_val_%s", j, metric);
        lb_model_set_metric (model, key, one);
        snprintf (key, sizeof key, "member%zu_weight", j);
        lb_model_set_metric (model, key, w [j]);
        lb_log_info ("ensemble member %zu (%s): weight %.4f val_%s %.6f", j,
                     lb_model_family_name (lb_model_family (members [j])), w [j], metric, one);
        lb_model_add_member (model, &members [j], w [j]);
    }
    snprintf (key, sizeof key, "val_%s", metric);
    lb_model_set_metric (model, key, loss);
    lb_model_set_metric (model, "fit_iterations", its);
    if (lb_model_predict (model, data->vx, n, data->cols, ctx->nthread, col, err, err_size)) {
        rc = WK_T_FAILED;
        goto out;
    }
    if (data->task == LB_MODEL_BINARY)
        lb_model_set_metric (model, "val_auc", wk_tdata_auc (col, data->vy, n));
    if (ctx->progress) {
        wk_tprogress_t p = { .unit = "iteration", .step = its, .steps = its, .train_loss = NAN,
                             .val_loss = loss, .metric_name = metric, .metric = loss,
                             .samples_per_s = 0, .eta_s = 0, .percent = 100 };
        ctx->progress (ctx->arg, &p);
    }
    *model_p = model;
    model = NULL;
    rc = WK_T_OK;
out:
    for (size_t j = 0; j < k; j++)
        lb_model_destroy (&members [j]);
    lb_model_destroy (&model);
    free (P);
    free (col);
    free (w);
    return rc;
}

void
wk_tens_test (bool verbose)
{
    if (verbose)
        printf (" * wk_tens: ");
    //  Member 0 is informative, member 1 is noise, member 2 is inverted:
    //  the weight goes to member 0.
    enum { N = 2000, K = 3 };
    float *P = lb_xmalloc (N * K * sizeof (float)), *y = lb_xmalloc (N * sizeof (float));
    uint32_t s = 99;
    for (size_t i = 0; i < N; i++) {
        s = s * 1664525u + 1013904223u;
        float u = (float) (s >> 8) / (float) (1u << 24);
        y [i] = u < 0.4f ? 1 : 0;
        s = s * 1664525u + 1013904223u;
        float v = (float) (s >> 8) / (float) (1u << 24);
        P [i * K + 0] = y [i] ? 0.6f + 0.3f * v : 0.1f + 0.3f * v;
        P [i * K + 1] = v;
        P [i * K + 2] = 1 - P [i * K + 0];
    }
    double w [K], loss;
    int its = wk_tens_fit (LB_MODEL_BINARY, P, y, N, K, 1000, 1e-12, w, &loss);
    assert (its > 0);
    assert (fabs (w [0] + w [1] + w [2] - 1) < 1e-12);
    assert (w [0] > 0.9 && w [1] >= 0 && w [2] >= 0);
    //  Never worse than the best single member on the data it was fitted on.
    float *c0 = lb_xmalloc (N * sizeof (float));
    for (size_t i = 0; i < N; i++)
        c0 [i] = P [i * K];
    assert (loss <= wk_tdata_logloss (c0, y, N) + 1e-9);
    //  Deterministic.
    double w2 [K], loss2;
    wk_tens_fit (LB_MODEL_BINARY, P, y, N, K, 1000, 1e-12, w2, &loss2);
    double w3 [K], loss3;
    wk_tens_fit (LB_MODEL_BINARY, P, y, N, K, 1000, 1e-12, w3, &loss3);
    assert (memcmp (w2, w3, sizeof w2) == 0 && loss2 == loss3);
    //  Regression: y = 0.3 a + 0.7 b exactly.
    for (size_t i = 0; i < N; i++) {
        P [i * K + 0] = (float) (i % 17);
        P [i * K + 1] = (float) (i % 5);
        P [i * K + 2] = (float) (i % 3);
        y [i] = 0.25f * P [i * K + 0] + 0.75f * P [i * K + 1];
    }
    wk_tens_fit (LB_MODEL_REGRESSION, P, y, N, K, 5000, 1e-14, w, &loss);
    assert (fabs (w [0] - 0.25) < 1e-3 && fabs (w [1] - 0.75) < 1e-3 && loss < 1e-4);
    free (c0);
    free (P);
    free (y);

    //  A real ensemble of an xgboost and an rf model.
    enum { ROWS = 2000, VROWS = 800, COLS = 5 };
    float *x = lb_xmalloc ((ROWS + VROWS) * COLS * sizeof (float));
    float *yy = lb_xmalloc ((ROWS + VROWS) * sizeof (float));
    wk_tdata_synth (3, ROWS + VROWS, COLS, x, yy);
    const char *names [COLS] = { "a", "b", "c", "d", "e" };
    wk_tdata_t data = { .task = LB_MODEL_BINARY, .cols = COLS, .names = names, .x = x, .y = yy,
                        .rows = ROWS, .vx = x + ROWS * COLS, .vy = yy + ROWS, .vrows = VROWS };
    wk_tctx_t ctx = { .nthread = 1, .seed = 1, .clock = lb_clock_system () };
    char err [256];
    lb_model_t *members [3] = { NULL };
    const char *rn [] = { "rounds" }, *rv [] = { "30" }, *fn [] = { "trees" }, *fv [] = { "20" };
    json_t *px = wk_tparams_resolve (LB_MODEL_XGBOOST, rn, rv, 1, err, sizeof err);
    json_t *pf = wk_tparams_resolve (LB_MODEL_RF, fn, fv, 1, err, sizeof err);
    json_t *pe = wk_tparams_resolve (LB_MODEL_ENSEMBLE, NULL, NULL, 0, err, sizeof err);
    assert (px && pf && pe);
    assert (wk_txgb_train (LB_MODEL_XGBOOST, &data, px, &ctx, &members [0], err, sizeof err) == WK_T_OK);
    assert (wk_txgb_train (LB_MODEL_RF, &data, pf, &ctx, &members [1], err, sizeof err) == WK_T_OK);
    double l0, l1, le;
    assert (lb_model_metric (members [0], "val_logloss", &l0) == 0);
    assert (lb_model_metric (members [1], "val_logloss", &l1) == 0);
    lb_model_t *ens = NULL;
    assert (wk_tens_train (members, 2, &data, pe, &ctx, &ens, err, sizeof err) == WK_T_OK);
    assert (!members [0] && !members [1]);
    assert (lb_model_member_count (ens) == 2);
    assert (lb_model_metric (ens, "val_logloss", &le) == 0);
    assert (le <= fmin (l0, l1) + 1e-6);
    lb_model_destroy (&ens);
    //  One member is not an ensemble; members are consumed either way.
    assert (wk_txgb_train (LB_MODEL_XGBOOST, &data, px, &ctx, &members [0], err, sizeof err) == WK_T_OK);
    assert (wk_tens_train (members, 1, &data, pe, &ctx, &ens, err, sizeof err) == WK_T_BAD_INPUT);
    assert (!ens && !members [0] && strstr (err, "at least 2"));
    json_decref (px);
    json_decref (pf);
    json_decref (pe);
    free (x);
    free (yy);
    if (verbose)
        printf ("OK\n");
}
