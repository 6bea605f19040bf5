/*  wk_evaljob.c - the evaluate step (see wk_evaljob.h). */
#include "wk_evaljob.h"
#include "wk_eval.h"
#include "wk_evalstore.h"
#include "wk_report.h"
#include "lb_artifact.h"
#include "lb_dataset.h"
#include "lb_log.h"
#include "lb_mem.h"
#include "lb_metrics.h"
#include "lb_model.h"
#include "lb_pg.h"
#include "lb_redis.h"
#include "lb_registry.h"
#include "lb_selftest.h"

#include <assert.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xgboost/c_api.h>

//  Everything one run holds, released at the end.
typedef struct {
    const wk_evaljob_req_t *req;
    lb_artifact_t *store;
    lb_dataset_t *ds;
    size_t begin, end;          //  test rows
    wk_eval_t *eval;
    lb_model_t *cand_model;     //  borrowed from models[]
    lb_model_t **models;
    size_t nmodels;
    char task [128];
    char *code, *err;
    size_t code_size, err_size;
} s_job_t;

static wk_status_t s_fail (s_job_t *job, wk_status_t status, const char *code, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));

static wk_status_t
s_fail (s_job_t *job, wk_status_t status, const char *code, const char *fmt, ...)
{
    snprintf (job->code, job->code_size, "%s", code);
    va_list args;
    va_start (args, fmt);
    vsnprintf (job->err, job->err_size, fmt, args);
    va_end (args);
    return status;
}

static void
s_progress (s_job_t *job, double percent, const char *stage, const char *message)
{
    if (job->req->progress)
        job->req->progress (job->req->arg, percent, stage, message);
}

//  The task name from the dataset's meta JSON. Returns 0 or -1.
static int
s_task_from_meta (lb_dataset_t *ds, char *task, size_t size)
{
    const char *meta = lb_dataset_meta (ds);
    if (!meta || !*meta)
        return -1;
    json_t *root = json_loads (meta, 0, NULL);
    if (!root)
        return -1;
    const char *name = NULL;
    json_t *t = json_object_get (root, "task");
    if (json_is_string (t))
        name = json_string_value (t);
    else
    if (json_is_object (t) && json_is_string (json_object_get (t, "name")))
        name = json_string_value (json_object_get (t, "name"));
    else
    if (json_is_string (json_object_get (root, "name")))
        name = json_string_value (json_object_get (root, "name"));
    int rc = -1;
    if (name) {
        snprintf (task, size, "%s", name);
        rc = 0;
    }
    json_decref (root);
    return rc;
}

//  The task name from discovery's task spec artifact. Returns 0 or -1.
static int
s_task_from_spec (s_job_t *job, const char *uri)
{
    uint8_t *data = NULL;
    size_t size = 0;
    if (!uri || lb_artifact_read (job->store, uri, &data, &size))
        return -1;
    json_t *root = json_loadb ((const char *) data, size, 0, NULL);
    free (data);
    json_t *name = json_object_get (root, "name");
    int rc = -1;
    if (json_is_string (name)) {
        snprintf (job->task, sizeof job->task, "%s", json_string_value (name));
        rc = 0;
    }
    json_decref (root);
    return rc;
}

//  The test rows' features in the model's order (by name). Returns a new
//  rows x model-cols matrix, or NULL with why.
static float *
s_features_for (s_job_t *job, lb_model_t *model, char *why, size_t size)
{
    size_t mcols = lb_model_feature_count (model), dcols = lb_dataset_cols (job->ds);
    size_t rows = job->end - job->begin;
    int *map = lb_xcalloc (mcols ? mcols : 1, sizeof *map);
    for (size_t j = 0; j < mcols; j++) {
        map [j] = lb_dataset_column_index (job->ds, lb_model_feature_name (model, j));
        if (map [j] < 0) {
            snprintf (why, size, "the model wants feature %s, which the dataset lacks",
                      lb_model_feature_name (model, j));
            free (map);
            return NULL;
        }
    }
    const float *x = lb_dataset_x (job->ds);
    float *out = lb_xmalloc ((rows ? rows : 1) * (mcols ? mcols : 1) * sizeof *out);
    for (size_t r = 0; r < rows; r++)
        for (size_t j = 0; j < mcols; j++)
            out [r * mcols + j] = x [(job->begin + r) * dcols + (size_t) map [j]];
    free (map);
    return out;
}

//  Scores model on the test rows into p (rows doubles). Returns 0 or -1 with why.
static int
s_score (s_job_t *job, lb_model_t *model, const float *x, double *p, char *why, size_t size)
{
    size_t rows = job->end - job->begin, cols = lb_model_feature_count (model);
    float *out = lb_xmalloc (rows * sizeof *out);
    int rc = lb_model_predict (model, x, rows, cols, 0, out, why, size);
    for (size_t r = 0; rc == 0 && r < rows; r++)
        p [r] = out [r];
    free (out);
    return rc;
}

static int
s_score_model (s_job_t *job, lb_model_t *model, double *p, char *why, size_t size)
{
    if (lb_model_task (model) != LB_MODEL_BINARY) {
        snprintf (why, size, "a %s model: only binary classifiers are evaluated",
                  lb_model_task_name (lb_model_task (model)));
        return -1;
    }
    float *x = s_features_for (job, model, why, size);
    if (!x)
        return -1;
    int rc = s_score (job, model, x, p, why, size);
    free (x);
    return rc;
}

//  Permutation importance of the candidate: the drop in ROC AUC on the test
//  rows when one feature's values are shuffled (one seeded shuffle each).
static int
s_permutation (s_job_t *job, lb_model_t *model, uint64_t seed)
{
    size_t rows = job->end - job->begin, cols = lb_model_feature_count (model);
    char why [256];
    float *x = s_features_for (job, model, why, sizeof why);
    if (!x || rows < 2)
        return (free (x), -1);
    uint8_t *y = lb_xmalloc (rows);
    for (size_t r = 0; r < rows; r++)
        y [r] = lb_dataset_y (job->ds) [job->begin + r] >= 0.5f;
    double *p = lb_xmalloc (rows * sizeof *p);
    double *imp = lb_xcalloc (cols, sizeof *imp);
    const char **names = lb_xcalloc (cols, sizeof *names);
    float *col = lb_xmalloc (rows * sizeof *col);
    int rc = s_score (job, model, x, p, why, sizeof why);
    double base = rc ? NAN : lb_metrics_auc (y, p, rows);
    uint64_t state = seed;
    for (size_t j = 0; rc == 0 && j < cols; j++) {
        names [j] = lb_model_feature_name (model, j);
        for (size_t r = 0; r < rows; r++)
            col [r] = x [r * cols + j];
        for (size_t r = rows - 1; r > 0; r--) {          //  Fisher-Yates
            size_t k = (size_t) (((unsigned __int128) lb_metrics_splitmix64 (&state) * (r + 1)) >> 64);
            float t = x [r * cols + j];
            x [r * cols + j] = x [k * cols + j];
            x [k * cols + j] = t;
        }
        rc = s_score (job, model, x, p, why, sizeof why);
        imp [j] = base - lb_metrics_auc (y, p, rows);
        for (size_t r = 0; r < rows; r++)
            x [r * cols + j] = col [r];
    }
    if (rc == 0 && isfinite (base)) {
        const wk_eval_policy_t *c = wk_eval_candidate (job->eval);
        wk_eval_set_importance (job->eval, c->name, "permutation (ROC AUC drop, test rows)",
                                cols, names, imp);
    }
    else
        lb_log_warn ("no permutation importance: %s", rc ? why : "AUC undefined on the test rows");
    free (col);
    free (names);
    free (imp);
    free (p);
    free (y);
    free (x);
    return rc;
}

//  XGBoost total gain of an xgboost or rf candidate. Returns 0 or -1.
static int
s_gain (s_job_t *job, lb_model_t *model)
{
    size_t size = 0;
    const void *blob = lb_model_blob (model, "xgboost.ubj", &size);
    if (!blob)
        return -1;
    BoosterHandle h = NULL;
    int rc = -1;
    size_t cols = lb_model_feature_count (model);
    json_t *cfg = json_object (), *fn = json_array ();
    for (size_t j = 0; j < cols; j++)
        json_array_append_new (fn, json_string (lb_model_feature_name (model, j)));
    json_object_set_new (cfg, "importance_type", json_string ("total_gain"));
    json_object_set_new (cfg, "feature_names", fn);
    char *cfgtext = json_dumps (cfg, JSON_COMPACT);
    json_decref (cfg);
    if (XGBoosterCreate (NULL, 0, &h) == 0
        && XGBoosterLoadModelFromBuffer (h, blob, (bst_ulong) size) == 0) {
        bst_ulong nf = 0, dim = 0;
        const char **feats = NULL;
        const bst_ulong *shape = NULL;
        const float *scores = NULL;
        if (XGBoosterFeatureScore (h, cfgtext, &nf, &feats, &dim, &shape, &scores) == 0) {
            //  Features never used in a split are absent: report them as 0.
            double *vals = lb_xcalloc (cols ? cols : 1, sizeof *vals);
            const char **names = lb_xcalloc (cols ? cols : 1, sizeof *names);
            for (size_t j = 0; j < cols; j++)
                names [j] = lb_model_feature_name (model, j);
            for (bst_ulong i = 0; i < nf; i++)
                for (size_t j = 0; j < cols; j++)
                    if (strcmp (feats [i], names [j]) == 0)
                        vals [j] = scores [i];
            const wk_eval_policy_t *c = wk_eval_candidate (job->eval);
            wk_eval_set_importance (job->eval, c->name, "XGBoost total gain", cols, names, vals);
            free (vals);
            free (names);
            rc = 0;
        }
    }
    if (rc)
        lb_log_warn ("no XGBoost gain importance: %s", XGBGetLastError ());
    if (h)
        XGBoosterFree (h);
    free (cfgtext);
    return rc;
}

//  The model in production for the task, re-scored on the same rows.
//  Returns 0 (added, or none in production), -1 on database trouble.
static int
s_production (s_job_t *job)
{
    lb_config_t *config = job->req->config;
    lb_registry_settings_t rs = { .metric = "accuracy", .deploy_dir = lb_config_str (config, "deploy.dir") };
    lb_registry_t *reg = lb_registry_new (lb_config_str (config, "postgres.url"), NULL, &rs);
    if (!reg)
        return -1;
    char *path = NULL;
    int version = lb_registry_production (reg, job->task, &path);
    lb_registry_destroy (&reg);
    if (version < 0)
        return -1;
    if (version == 0)
        return 0;
    char why [512];
    lb_model_t *model = lb_model_load (path, why, sizeof why);
    double *p = lb_xmalloc ((job->end - job->begin) * sizeof *p);
    if (!model || s_score_model (job, model, p, why, sizeof why))
        lb_log_warn ("production v%d of task=%s (%s) cannot be re-scored on these rows: %s; "
                     "the deploy step will refuse to decide", version, job->task, path, why);
    else {
        char hex [65];
        lb_artifact_sha256_file (path, hex);
        char *uri = lb_xasprintf ("file://%s", path);
        wk_eval_add_model (job->eval, "production", lb_model_family_name (lb_model_family (model)),
                           "production", p, uri, hex, version);
        free (uri);
    }
    free (p);
    free (path);
    lb_model_destroy (&model);
    return 0;
}

static char *
s_put (s_job_t *job, const char *text)
{
    char *uri = NULL;
    if (lb_artifact_put (job->store, text, strlen (text), &uri))
        return NULL;
    return uri;
}

wk_status_t
wk_evaljob_run (const wk_evaljob_req_t *req, wk_evaljob_out_t *out,
                char *code, size_t code_size, char *err, size_t err_size)
{
    assert (req && req->config && req->run && out);
    memset (out, 0, sizeof *out);
    out->vs_production_diff = out->vs_production_lo = NAN;
    out->vs_rules_diff = out->vs_rules_lo = NAN;
    s_job_t job = { .req = req, .code = code, .err = err, .code_size = code_size,
                    .err_size = err_size };
    wk_status_t status = WK_FAIL;
    char why [512];
    char *json = NULL, *md = NULL, *html = NULL, *notes = NULL;
    double *p = NULL;
    PGconn *pg = NULL;
    int64_t *ts = NULL;
    uint8_t *y = NULL, *rule = NULL;
    double *fwd = NULL;

    if (!req->dataset_uri || req->nmodels == 0) {
        status = s_fail (&job, WK_FAIL, "bad_params", "the evaluate step needs a dataset and at "
                         "least one model (params dataset and STEP.model)");
        goto done;
    }
    job.store = lb_artifact_new (lb_config_str (req->config, "artifacts.root"));
    if (!job.store) {
        status = s_fail (&job, WK_RETRY, "store", "artifact store %s unusable",
                         lb_config_str (req->config, "artifacts.root"));
        goto done;
    }
    s_progress (&job, 5, "load", "reading the dataset");
    char *dpath = lb_artifact_path (job.store, req->dataset_uri, true);
    if (!dpath) {
        status = s_fail (&job, WK_FAIL, "bad_dataset", "dataset %s: missing, or its content "
                         "does not match its hash", req->dataset_uri);
        goto done;
    }
    job.ds = lb_dataset_load (dpath, why, sizeof why);
    free (dpath);
    if (!job.ds) {
        status = s_fail (&job, WK_FAIL, "bad_dataset", "dataset %s: %s", req->dataset_uri, why);
        goto done;
    }
    if (lb_dataset_task (job.ds) != LB_DATASET_BINARY) {
        status = s_fail (&job, WK_FAIL, "unsupported_task", "dataset %s is a %s task: this "
                         "version of the evaluator scores binary classifiers only", req->dataset_uri,
                         lb_dataset_task (job.ds) == LB_DATASET_REGRESSION ? "regression" : "multiclass");
        goto done;
    }
    lb_dataset_split (job.ds, LB_DATASET_TEST, &job.begin, &job.end);
    size_t rows = job.end - job.begin;
    if (rows == 0) {
        status = s_fail (&job, WK_FAIL, "bad_dataset", "dataset %s has no test rows", req->dataset_uri);
        goto done;
    }
    if (req->task)
        snprintf (job.task, sizeof job.task, "%s", req->task);
    else
    if (s_task_from_meta (job.ds, job.task, sizeof job.task)
        && s_task_from_spec (&job, req->task_uri)) {
        status = s_fail (&job, WK_FAIL, "bad_params", "no task name: give param task, a "
                         "dataset whose meta names it (\"task\"), or discovery's task spec");
        goto done;
    }
    if (!lb_registry_task_ok (job.task)) {
        status = s_fail (&job, WK_FAIL, "bad_params", "task name '%s' is not 1-100 characters "
                         "of [A-Za-z0-9_.-]", job.task);
        goto done;
    }
    snprintf (out->task, sizeof out->task, "%s", job.task);
    ts = lb_xmalloc (rows * sizeof *ts);
    y = lb_xmalloc (rows);
    rule = lb_xmalloc (rows);
    fwd = lb_xmalloc (rows * sizeof *fwd);
    for (size_t r = 0; r < rows; r++) {
        size_t i = job.begin + r;
        ts [r] = lb_dataset_ts (job.ds) [i];
        y [r] = lb_dataset_y (job.ds) [i] >= 0.5f;
        float b = lb_dataset_baseline (job.ds) [i];
        rule [r] = isfinite (b) && b >= 0.5f;
        fwd [r] = lb_dataset_fwd_return (job.ds) [i];
    }
    job.eval = wk_eval_new (rows, ts, y, rule, fwd);
    assert (job.eval);      //  labels and rules are 0/1 by construction

    //  The models.
    job.models = lb_xcalloc (req->nmodels, sizeof *job.models);
    p = lb_xmalloc (rows * sizeof *p);
    wk_eval_settings_t settings;
    if (wk_eval_settings_from_config (req->config, &settings)) {
        status = s_fail (&job, WK_FAIL, "bad_config", "[evaluate] settings are inconsistent");
        goto done;
    }
    if (req->candidate)
        settings.candidate = req->candidate;
    if (req->seed && lb_config_parse_int (req->seed, (int64_t *) &settings.seed)) {
        status = s_fail (&job, WK_FAIL, "bad_params", "param seed '%s' is not an integer", req->seed);
        goto done;
    }
    for (size_t m = 0; m < req->nmodels; m++) {
        char msg [128];
        snprintf (msg, sizeof msg, "scoring model %zu of %zu", m + 1, req->nmodels);
        s_progress (&job, 10 + 50.0 * (double) m / (double) req->nmodels, "score", msg);
        const char *uri = req->model_uris [m];
        char *mpath = lb_artifact_path (job.store, uri, true);
        if (!mpath) {
            status = s_fail (&job, WK_FAIL, "bad_model", "model %s: missing, or its content does "
                             "not match its hash", uri);
            goto done;
        }
        job.models [m] = lb_model_load (mpath, why, sizeof why);
        free (mpath);
        if (!job.models [m]) {
            status = s_fail (&job, WK_FAIL, "bad_model", "model %s: %s", uri, why);
            goto done;
        }
        job.nmodels = m + 1;
        const char *family = lb_model_family_name (lb_model_family (job.models [m]));
        if (s_score_model (&job, job.models [m], p, why, sizeof why)) {
            //  Only the candidate is indispensable; another model that cannot
            //  score these rows (a net meeting a missing value) is left out, said so.
            if (strcmp (family, settings.candidate) == 0) {
                status = s_fail (&job, WK_FAIL, "bad_model", "candidate %s (%s) cannot score the "
                                 "test rows: %s", family, uri, why);
                goto done;
            }
            lb_log_warn ("model %s (%s) left out: it cannot score the test rows: %s", family, uri, why);
            char *more = lb_xasprintf ("%s%s %s (%s)", notes ? notes : "Left out, unable to score "
                                       "the test rows:", notes ? ";" : "", family, why);
            free (notes);
            notes = more;
            continue;
        }
        char name [64], hex [65];
        snprintf (name, sizeof name, "%s", family);
        for (int k = 2; wk_eval_find (job.eval, name); k++)
            snprintf (name, sizeof name, "%s_%d", family, k);
        lb_artifact_uri_hash (uri, hex);
        wk_eval_add_model (job.eval, name, family, "model", p, uri, hex, 0);
        if (strcmp (name, settings.candidate) == 0)
            job.cand_model = job.models [m];
    }
    if (!job.cand_model) {
        status = s_fail (&job, WK_FAIL, "no_candidate", "no model of family '%s' among the %zu "
                         "given (evaluate.candidate)", settings.candidate, req->nmodels);
        goto done;
    }
    s_progress (&job, 65, "score", "re-scoring the model in production");
    if (s_production (&job)) {
        status = s_fail (&job, WK_RETRY, "postgres", "cannot read the registry for task %s",
                         job.task);
        goto done;
    }
    s_progress (&job, 70, "compare", "metrics, backtests, bootstrap intervals");
    if (wk_eval_run (job.eval, &settings, why, sizeof why)) {
        status = s_fail (&job, WK_FAIL, "bad_predictions", "%s", why);
        goto done;
    }
    s_progress (&job, 80, "importance", "feature importance of the candidate");
    lb_model_family_t fam = lb_model_family (job.cand_model);
    if (!((fam == LB_MODEL_XGBOOST || fam == LB_MODEL_RF) && s_gain (&job, job.cand_model) == 0))
        s_permutation (&job, job.cand_model, settings.seed);

    s_progress (&job, 90, "report", "writing the report");
    char title [300];
    snprintf (title, sizeof title, "Evaluation of run %s: task %s", req->run, job.task);
    wk_report_info_t info = { .title = title, .run = req->run, .task = job.task,
        .no_analysis = lb_config_str (req->config, "llm.api_key")
            ? "no analysis: LLM analysis is not built into this version of the evaluator"
            : "no analysis: no API key", .notes = notes };
    json = wk_eval_json (job.eval);
    md = wk_report_markdown (job.eval, &info);
    html = wk_report_html (job.eval, &info);
    out->report_uri = s_put (&job, html);
    out->report_md_uri = s_put (&job, md);
    out->summary_uri = s_put (&job, json);
    if (!out->report_uri || !out->report_md_uri || !out->summary_uri) {
        status = s_fail (&job, WK_RETRY, "store", "cannot write the report into the artifact store");
        goto done;
    }
    if (req->store) {
        pg = lb_pg_connect (lb_config_str (req->config, "postgres.url"), "worker-eval");
        if (!pg || wk_evalstore_save_pg (pg, job.eval, req->run, job.task, out->report_uri)) {
            status = s_fail (&job, WK_RETRY, "postgres", "cannot store the evaluation of run %s",
                             req->run);
            goto done;
        }
        redisContext *redis = lb_redis_connect (lb_config_str (req->config, "redis.url"), 1.0);
        if (redis) {
            wk_evalstore_save_redis (redis, job.eval, req->run, job.task, out->report_uri);
            redisFree (redis);
        }
    }
    const wk_eval_policy_t *c = wk_eval_candidate (job.eval);
    out->accuracy = c->m.accuracy;
    out->auc = c->m.auc;
    for (size_t i = 0; i < wk_eval_comparisons (job.eval); i++) {
        const wk_eval_cmp_t *cmp = wk_eval_comparison (job.eval, i);
        if (strcmp (cmp->candidate, c->name) != 0)
            continue;
        if (strcmp (cmp->baseline, "production") == 0) {
            out->vs_production_diff = cmp->ci.diff;
            out->vs_production_lo = cmp->ci.lo;
            out->production_version = cmp->baseline_version;
        }
        else {
            out->vs_rules_diff = cmp->ci.diff;
            out->vs_rules_lo = cmp->ci.lo;
        }
    }
    s_progress (&job, 100, "done", "evaluation stored");
    status = WK_DONE;
done:
    if (status != WK_DONE)
        wk_evaljob_out_release (out);
    if (pg)
        PQfinish (pg);
    free (json);
    free (md);
    free (html);
    free (notes);
    free (p);
    free (ts);
    free (y);
    free (rule);
    free (fwd);
    for (size_t m = 0; m < job.nmodels; m++)
        lb_model_destroy (&job.models [m]);
    free (job.models);
    wk_eval_destroy (&job.eval);
    lb_dataset_destroy (&job.ds);
    lb_artifact_destroy (&job.store);
    return status;
}

void
wk_evaljob_out_release (wk_evaljob_out_t *out)
{
    free (out->report_uri);
    free (out->report_md_uri);
    free (out->summary_uri);
    memset (out, 0, sizeof *out);
}

void
wk_evaljob_test (bool verbose)
{
    //  Bad requests are refused before any I/O.
    lb_config_t *config = lb_config_new (NULL, 0);
    wk_evaljob_req_t req = { .config = config, .run = "1" };
    wk_evaljob_out_t out;
    char code [32], err [256];
    assert (wk_evaljob_run (&req, &out, code, sizeof code, err, sizeof err) == WK_FAIL);
    assert (strcmp (code, "bad_params") == 0);
    if (verbose)
        printf ("%s: %s\n", code, err);
    //  A dataset URI that is not in the store is a permanent failure.
    char *dir = lb_selftest_tmpdir ("wk_evaljob");
    lb_config_set (config, "artifacts.root", dir, "test");
    const char *models [1] = { "file:///nowhere/model" };
    req.dataset_uri = "file:///nowhere/dataset";
    req.nmodels = 1;
    req.model_uris = models;
    assert (wk_evaljob_run (&req, &out, code, sizeof code, err, sizeof err) == WK_FAIL);
    assert (strcmp (code, "bad_dataset") == 0 && strstr (err, "nowhere"));
    lb_selftest_rmtree (dir);
    free (dir);
    lb_config_destroy (&config);
}
