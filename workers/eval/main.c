/*  worker-eval - the evaluate step, and the same work from the command line.

    Usage: worker-eval [runtime options]          serve `evaluate` on the broker
           worker-eval run --run RUN --dataset URI --model URI... [--task TASK]
                    [--candidate NAME] [--no-store] [--config FILE]
           worker-eval score --predictions FILE --out DIR [--importance POLICY=FILE]
                    [--artifact POLICY=PATH] [--production-version N] [--run RUN]
                    [--task TASK] [--store] [--config FILE] [--set section.key=value]...

    The step (and `run`, which does exactly what the step does) reads the
    dataset and model artifacts, re-scores production, and stores the
    evaluation and the report (wk_evaljob.h).

    `score` scores a predictions CSV the way the evaluate step does and
    writes the JSON summary, the Markdown report and the HTML report.

    The CSV has columns ts, label, rule, fwd_return and one column per
    model (NAME or NAME:FAMILY; `production` for the model in production).
    An importance FILE has lines "feature,value". Exit 0 on success, 1 on
    bad input (the reason on stderr), 2 on bad usage.
*/
#include "lb_config.h"
#include "lb_log.h"
#include "lb_mem.h"
#include "lb_artifact.h"
#include "lb_pg.h"
#include "lb_redis.h"
#include "wk_eval.h"
#include "wk_evaljob.h"
#include "wk_evalstore.h"
#include "wk_runtime.h"
#include "wk_report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

static int
s_write (const char *dir, const char *name, const char *text)
{
    char *path = lb_xasprintf ("%s/%s", dir, name);
    FILE *f = fopen (path, "w");
    int rc = -1;
    if (!f)
        lb_log_error ("cannot write path=%s: %s", path, strerror (errno));
    else {
        rc = fputs (text, f) < 0 ? -1 : 0;
        if (fclose (f))
            rc = -1;
        if (rc)
            lb_log_error ("write failed path=%s", path);
    }
    free (path);
    return rc;
}

static int
s_importance (wk_eval_t *eval, const char *arg)
{
    char *copy = lb_xstrdup (arg);
    char *eq = strchr (copy, '=');
    int rc = -1;
    FILE *f = NULL;
    char **names = NULL;
    double *vals = NULL;
    size_t n = 0;
    char *line = NULL;
    size_t cap = 0;
    if (!eq) {
        lb_log_error ("--importance wants POLICY=FILE, got '%s'", arg);
        goto out;
    }
    *eq = 0;
    f = fopen (eq + 1, "r");
    if (!f) {
        lb_log_error ("cannot read %s: %s", eq + 1, strerror (errno));
        goto out;
    }
    size_t lineno = 0;
    while (getline (&line, &cap, f) >= 0) {
        lineno++;
        char *comma = strchr (line, ',');
        char *end;
        if (!comma) {
            lb_log_error ("%s:%zu: expected feature,value", eq + 1, lineno);
            goto out;
        }
        *comma = 0;
        double v = strtod (comma + 1, &end);
        while (*end == '\n' || *end == '\r' || *end == ' ')
            end++;
        if (end == comma + 1 || *end) {
            lb_log_error ("%s:%zu: value is not a number", eq + 1, lineno);
            goto out;
        }
        names = lb_xrealloc (names, (n + 1) * sizeof *names);
        vals = lb_xrealloc (vals, (n + 1) * sizeof *vals);
        names [n] = lb_xstrdup (line);
        vals [n] = v;
        n++;
    }
    if (wk_eval_set_importance (eval, copy, "given", n, (const char *const *) names, vals)) {
        lb_log_error ("--importance: no policy named '%s'", copy);
        goto out;
    }
    rc = 0;
out:
    for (size_t i = 0; i < n; i++)
        free (names [i]);
    free (names);
    free (vals);
    free (line);
    if (f)
        fclose (f);
    free (copy);
    return rc;
}

//  --artifact POLICY=PATH: the file goes into the artifact store and its
//  URI and hash become the policy's.
static int
s_artifact (wk_eval_t *eval, lb_artifact_t *store, const char *arg)
{
    char *copy = lb_xstrdup (arg);
    char *eq = strchr (copy, '=');
    char *uri = NULL;
    int rc = -1;
    char hex [65];
    if (!eq)
        lb_log_error ("--artifact wants POLICY=PATH, got '%s'", arg);
    else {
        *eq = 0;
        if (lb_artifact_put_file (store, eq + 1, false, &uri) == 0
            && lb_artifact_uri_hash (uri, hex) == 0) {
            if (wk_eval_set_artifact (eval, copy, uri, hex))
                lb_log_error ("--artifact: no policy named '%s'", copy);
            else
                rc = 0;
        }
    }
    free (uri);
    free (copy);
    return rc;
}

//  --store: the reports into the artifact store, the rows into PostgreSQL,
//  the dashboard hash into Redis (optional).
static int
s_store (lb_config_t *config, wk_eval_t *eval, const char *run, const char *task,
         const char *html, const char *md, char **report_uri)
{
    lb_artifact_t *store = lb_artifact_new (lb_config_str (config, "artifacts.root"));
    if (!store)
        return -1;
    char *md_uri = NULL;
    int rc = -1;
    if (lb_artifact_put (store, html, strlen (html), report_uri)
        || lb_artifact_put (store, md, strlen (md), &md_uri)) {
        lb_artifact_destroy (&store);
        return -1;
    }
    PGconn *pg = lb_pg_connect (lb_config_str (config, "postgres.url"), "worker-eval");
    if (pg && wk_evalstore_save_pg (pg, eval, run, task, *report_uri) == 0) {
        rc = 0;
        redisContext *redis = lb_redis_connect (lb_config_str (config, "redis.url"), 1.0);
        if (redis) {
            wk_evalstore_save_redis (redis, eval, run, task, *report_uri);
            redisFree (redis);
        }
        lb_log_info ("stored run=%s task=%s report=%s markdown=%s", run, task, *report_uri, md_uri);
    }
    if (pg)
        PQfinish (pg);
    free (md_uri);
    lb_artifact_destroy (&store);
    return rc;
}

//  ------------------------------------------------------------------ serving

static void
s_job_progress (void *arg, double percent, const char *stage, const char *message)
{
    wk_job_progress (arg, percent, stage, "%s", message);
}

//  Upstream outputs arrive as "STEP.NAME" parameters (docs/scheduler.md).
static bool
s_ends_with (const char *text, const char *suffix)
{
    size_t a = strlen (text), b = strlen (suffix);
    return a > b && strcmp (text + a - b, suffix) == 0;
}

static wk_status_t
s_handle (wk_job_t *job, void *arg)
{
    (void) arg;
    const char *dataset = wk_job_param (job, "dataset");
    const char *models_param = wk_job_param (job, "models");
    int n = wk_job_param_count (job);
    const char **models = lb_xcalloc ((size_t) n + 64, sizeof *models);
    size_t nmodels = 0, ndatasets = 0;
    const char *task_uri = NULL;
    char *models_copy = models_param ? lb_xstrdup (models_param) : NULL;
    if (models_copy) {
        char *save = NULL;
        for (char *t = strtok_r (models_copy, ",", &save); t && nmodels < 64;
             t = strtok_r (NULL, ",", &save))
            models [nmodels++] = t;
    }
    for (int i = 0; i < n; i++) {
        const char *name = wk_job_param_name (job, i);
        if (!models_param && s_ends_with (name, ".model"))
            models [nmodels++] = wk_job_param (job, name);
        if (s_ends_with (name, ".task"))
            task_uri = wk_job_param (job, name);
        if (!wk_job_param (job, "dataset") && s_ends_with (name, ".dataset")) {
            dataset = wk_job_param (job, name);
            ndatasets++;
        }
    }
    wk_status_t status;
    char code [64] = "", err [1024] = "";
    if (ndatasets > 1) {
        wk_job_error (job, "bad_params", "several upstream STEP.dataset outputs: give param dataset");
        status = WK_FAIL;
    }
    else {
        wk_evaljob_req_t req = {
            .config = wk_job_config (job), .run = wk_job_run (job),
            .task = wk_job_param (job, "task"), .task_uri = task_uri, .dataset_uri = dataset,
            .nmodels = nmodels, .model_uris = models,
            .candidate = wk_job_param (job, "candidate"), .seed = wk_job_param (job, "seed"),
            .store = true, .progress = s_job_progress, .arg = job
        };
        wk_evaljob_out_t out;
        status = wk_evaljob_run (&req, &out, code, sizeof code, err, sizeof err);
        if (status == WK_DONE) {
            wk_job_output (job, "report", out.report_uri);
            wk_job_output (job, "report_md", out.report_md_uri);
            wk_job_output (job, "evaluation", out.summary_uri);
            wk_job_metric (job, "accuracy", out.accuracy);
            wk_job_metric (job, "roc_auc", out.auc);
            if (out.production_version) {
                wk_job_metric (job, "vs_production_diff", out.vs_production_diff);
                wk_job_metric (job, "vs_production_lo", out.vs_production_lo);
                wk_job_metric (job, "production_version", out.production_version);
            }
            wk_job_metric (job, "vs_rules_diff", out.vs_rules_diff);
            wk_job_metric (job, "vs_rules_lo", out.vs_rules_lo);
            wk_evaljob_out_release (&out);
        }
        else
            wk_job_error (job, code, "%s", err);
    }
    free (models_copy);
    free (models);
    return status;
}

static int
s_serve (int argc, char **argv)
{
    wk_spec_t spec = { .service = "evaluate", .handler = s_handle,
                       .summary = "evaluates the trained models, the rules, the blended policy and "
                                  "production on the test rows; stores metrics and a report "
                                  "(also: worker-eval run|score --help)" };
    return wk_runtime_main (&spec, argc, argv);
}

static void
s_cli_progress (void *arg, double percent, const char *stage, const char *message)
{
    (void) arg;
    lb_log_info ("[%5.1f%%] %s: %s", percent, stage, message);
}

//  worker-eval run: the step from the command line.
static int
s_cli_run (int argc, char **argv)
{
    lb_log_setup ("worker-eval", LB_LOG_INFO);
    const char *run = NULL, *task = NULL, *dataset = NULL, *candidate = NULL, *config_path = NULL;
    const char *models [64];
    size_t nmodels = 0;
    bool store = true;
    for (int i = 1; i < argc; i++) {
        const char *a = argv [i], *v = i + 1 < argc ? argv [i + 1] : NULL;
        if (strcmp (a, "--help") == 0 || strcmp (a, "-h") == 0) {
            printf ("usage: worker-eval run --run RUN --dataset URI --model URI [--model URI]...\n"
                    "                       [--task TASK] [--candidate NAME] [--no-store] [--config FILE]\n"
                    "Does what the evaluate step does and prints the report's URI.\n");
            return 0;
        }
        if (strcmp (a, "--no-store") == 0) { store = false; continue; }
        if (!v) {
            fprintf (stderr, "worker-eval run: %s needs a value (try --help)\n", a);
            return 2;
        }
        if (strcmp (a, "--run") == 0) run = v;
        else if (strcmp (a, "--task") == 0) task = v;
        else if (strcmp (a, "--dataset") == 0) dataset = v;
        else if (strcmp (a, "--candidate") == 0) candidate = v;
        else if (strcmp (a, "--config") == 0) config_path = v;
        else if (strcmp (a, "--model") == 0 && nmodels < 64) models [nmodels++] = v;
        else {
            fprintf (stderr, "worker-eval run: unknown option %s (try --help)\n", a);
            return 2;
        }
        i++;
    }
    if (!run || !dataset || !nmodels) {
        fprintf (stderr, "worker-eval run: --run, --dataset and --model are required\n");
        return 2;
    }
    lb_config_t *config = lb_config_load (config_path);
    if (!config)
        return 2;
    wk_evaljob_req_t req = { .config = config, .run = run, .task = task, .dataset_uri = dataset,
                             .nmodels = nmodels, .model_uris = models, .candidate = candidate,
                             .store = store, .progress = s_cli_progress };
    wk_evaljob_out_t out;
    char code [64], err [1024];
    wk_status_t st = wk_evaljob_run (&req, &out, code, sizeof code, err, sizeof err);
    int rc = 0;
    if (st == WK_DONE) {
        printf ("task %s: candidate accuracy %.4f, ROC AUC %.4f\nreport %s\nmarkdown %s\n"
                "summary %s\n", out.task, out.accuracy, out.auc, out.report_uri,
                out.report_md_uri, out.summary_uri);
        wk_evaljob_out_release (&out);
    }
    else {
        fprintf (stderr, "worker-eval run: %s (%s): %s\n",
                 st == WK_RETRY ? "failed, retryable" : "failed", code, err);
        rc = st == WK_RETRY ? 1 : 3;
    }
    lb_config_destroy (&config);
    return rc;
}

//  ------------------------------------------------------------------ score

int
main (int argc, char **argv)
{
    if (argc >= 2 && strcmp (argv [1], "run") == 0)
        return s_cli_run (argc - 1, argv + 1);
    if (argc < 2 || strcmp (argv [1], "score") != 0)
        return s_serve (argc, argv);
    lb_log_setup ("worker-eval", LB_LOG_INFO);
    argc--;
    argv++;
    const char *csv = NULL, *out = NULL, *run = NULL, *task = NULL, *config_path = NULL;
    int prod_version = 0;
    const char *imports [16];
    size_t nimports = 0;
    const char *sets [32];
    size_t nsets = 0;
    const char *artifacts [16];
    size_t nartifacts = 0;
    bool store = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv [i];
        const char *v = i + 1 < argc ? argv [i + 1] : NULL;
        if (strcmp (a, "--help") == 0 || strcmp (a, "-h") == 0) {
            printf ("usage: worker-eval score --predictions FILE --out DIR [--importance POLICY=FILE]\n"
                    "                      [--artifact POLICY=PATH] [--store]\n"
                    "                      [--production-version N] [--run RUN] [--task TASK]\n"
                    "                      [--config FILE] [--set section.key=value]...\n"
                    "Scores every model column of the CSV (ts,label,rule,fwd_return,MODEL...)\n"
                    "on its rows and writes DIR/evaluation.json, DIR/report.md, DIR/report.html.\n"
                    "--artifact puts a model file into the artifact store as that policy's artifact;\n"
                    "--store (with --run, --task) records the evaluation in PostgreSQL and Redis\n"
                    "and the reports in the artifact store, as the evaluate step does.\n");
            return 0;
        }
        if (strcmp (a, "--store") == 0) {
            store = true;
            continue;
        }
        if (!v) {
            fprintf (stderr, "worker-eval score: %s needs a value (try --help)\n", a);
            return 2;
        }
        if (strcmp (a, "--predictions") == 0) csv = v;
        else if (strcmp (a, "--out") == 0) out = v;
        else if (strcmp (a, "--run") == 0) run = v;
        else if (strcmp (a, "--task") == 0) task = v;
        else if (strcmp (a, "--config") == 0) config_path = v;
        else if (strcmp (a, "--production-version") == 0) prod_version = atoi (v);
        else if (strcmp (a, "--importance") == 0 && nimports < 16) imports [nimports++] = v;
        else if (strcmp (a, "--set") == 0 && nsets < 32) sets [nsets++] = v;
        else if (strcmp (a, "--artifact") == 0 && nartifacts < 16) artifacts [nartifacts++] = v;
        else {
            fprintf (stderr, "worker-eval score: unknown option %s (try --help)\n", a);
            return 2;
        }
        i++;
    }
    if (!csv || !out) {
        fprintf (stderr, "worker-eval score: --predictions and --out are required (try --help)\n");
        return 2;
    }
    if (store && (!run || !task)) {
        fprintf (stderr, "worker-eval score: --store needs --run and --task\n");
        return 2;
    }
    lb_config_t *config = lb_config_load (config_path);
    if (!config)
        return 1;
    for (size_t i = 0; i < nsets; i++) {
        char *kv = lb_xstrdup (sets [i]);
        char *eq = strchr (kv, '=');
        int bad = !eq;
        if (eq) {
            *eq = 0;
            bad = lb_config_set (config, kv, eq + 1, "--set") != 0;
        }
        free (kv);
        if (bad) {
            fprintf (stderr, "worker-eval score: bad --set %s\n", sets [i]);
            lb_config_destroy (&config);
            return 2;
        }
    }
    int rc = 1;
    wk_eval_t *eval = NULL;
    lb_artifact_t *store_h = NULL;
    char *report_uri = NULL;
    char *json = NULL, *md = NULL, *html = NULL;
    char why [512];
    wk_eval_settings_t settings;
    if (wk_eval_settings_from_config (config, &settings))
        goto done;
    eval = wk_eval_load_csv (csv, prod_version, why, sizeof why);
    if (!eval) {
        lb_log_error ("%s", why);
        goto done;
    }
    for (size_t i = 0; i < nimports; i++)
        if (s_importance (eval, imports [i]))
            goto done;
    if (nartifacts && !(store_h = lb_artifact_new (lb_config_str (config, "artifacts.root"))))
        goto done;
    for (size_t i = 0; i < nartifacts; i++)
        if (s_artifact (eval, store_h, artifacts [i]))
            goto done;
    if (wk_eval_run (eval, &settings, why, sizeof why)) {
        lb_log_error ("evaluation refused: %s", why);
        goto done;
    }
    if (mkdir (out, 0755) && errno != EEXIST) {
        lb_log_error ("cannot create %s: %s", out, strerror (errno));
        goto done;
    }
    char title [256];
    snprintf (title, sizeof title, "Evaluation%s%s%s%s", run ? " of run " : "", run ? run : "",
              task ? ", task " : "", task ? task : "");
    wk_report_info_t info = { .title = title, .run = run, .task = task,
        .no_analysis = "no analysis: the evaluate tool does not call the LLM "
                       "(the evaluate step does when an API key is set)" };
    json = wk_eval_json (eval);
    md = wk_report_markdown (eval, &info);
    html = wk_report_html (eval, &info);
    if (s_write (out, "evaluation.json", json) || s_write (out, "report.md", md)
        || s_write (out, "report.html", html))
        goto done;
    if (store && s_store (config, eval, run, task, html, md, &report_uri))
        goto done;
    printf ("%s\n", json);
    rc = 0;
done:
    free (json);
    free (md);
    free (html);
    free (report_uri);
    lb_artifact_destroy (&store_h);
    wk_eval_destroy (&eval);
    lb_config_destroy (&config);
    return rc;
}
