/*  wf_fetch.c - the fetch step (see wf_fetch.h). */
#include "wf_fetch.h"
#include "lb_artifact.h"
#include "lb_clock.h"
#include "lb_dataset.h"
#include "lb_download.h"
#include "lb_log.h"
#include "lb_mem.h"
#include "lb_netpolicy.h"
#include "lb_pg.h"
#include "pr_task.h"
#include "wf_build.h"
#include "wf_frame.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

void
wf_outcome_release (wf_outcome_t *out)
{
    assert (out);
    free (out->dataset_uri);
    free (out->error);
    memset (out, 0, sizeof *out);
}

static wf_status_t
s_fail (wf_outcome_t *out, wf_status_t status, const char *code, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));

static wf_status_t
s_fail (wf_outcome_t *out, wf_status_t status, const char *code, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    free (out->error);
    out->error = lb_xvasprintf (fmt, args);
    va_end (args);
    snprintf (out->error_code, sizeof out->error_code, "%s", code);
    return status;
}

static void
s_progress (wf_progress_fn *fn, void *arg, double pct, const char *stage, const char *fmt, ...)
    __attribute__ ((format (printf, 5, 6)));

static void
s_progress (wf_progress_fn *fn, void *arg, double pct, const char *stage, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    char *msg = lb_xvasprintf (fmt, args);
    va_end (args);
    lb_log_info ("fetch: %s: %s", stage, msg);
    if (fn)
        fn (arg, pct, stage, msg);
    free (msg);
}

//  Reads the spec text: a store URI, another file:// URI, or a path.
static char *
s_read_spec (lb_artifact_t *store, const char *ref, size_t *len, char **error_p)
{
    char hex [65];
    if (store && lb_artifact_uri_hash (ref, hex) == 0) {
        uint8_t *data;
        if (lb_artifact_read (store, ref, &data, len)) {
            *error_p = lb_xasprintf ("cannot read the task artifact %s", ref);
            return NULL;
        }
        return (char *) data;
    }
    const char *path = strncmp (ref, "file://", 7) == 0 ? ref + 7 : ref;
    FILE *f = fopen (path, "rb");
    if (!f) {
        *error_p = lb_xasprintf ("cannot read the task %s: %s", path, strerror (errno));
        return NULL;
    }
    size_t max = PR_TASK_MAX_JSON + 1;
    char *text = lb_xmalloc (max + 1);
    *len = fread (text, 1, max, f);
    fclose (f);
    if (*len > PR_TASK_MAX_JSON) {
        free (text);
        *error_p = lb_xasprintf ("the task %s is over %d bytes", path, PR_TASK_MAX_JSON);
        return NULL;
    }
    text [*len] = 0;
    return text;
}

//  Runs argv, waits. Returns 0 when it exited 0.
static int
s_run (char *const argv [], const char *dir)
{
    pid_t pid = fork ();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        if (dir && chdir (dir))
            _exit (127);
        int devnull = open ("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2 (devnull, 1);
        execvp (argv [0], argv);
        _exit (127);
    }
    int status;
    while (waitpid (pid, &status, 0) < 0)
        if (errno != EINTR)
            return -1;
    return WIFEXITED (status) && WEXITSTATUS (status) == 0 ? 0 : -1;
}

//  Makes sure PACKAGE is unpacked under dir (apt-get download + dpkg -x).
static int
s_debian (const char *dir, const char *package, char **error_p)
{
    char *mark = lb_xasprintf ("%s/%s/.unpacked", dir, package);
    struct stat st;
    int rc = 0;
    if (stat (mark, &st) == 0)
        goto out;
    char *tmp = lb_xasprintf ("%s/.download-%s-%ld", dir, package, (long) getpid ());
    char *dest = lb_xasprintf ("%s/%s", dir, package);
    char *cmd = NULL;
    char *mk [] = { "mkdir", "-p", tmp, NULL };
    char *get [] = { "apt-get", "download", (char *) package, NULL };
    rc = s_run (mk, NULL);
    if (rc == 0 && (rc = s_run (get, tmp)) != 0)
        *error_p = lb_xasprintf ("apt-get download %s failed (no network or no such package)", package);
    if (rc == 0) {
        cmd = lb_xasprintf ("dpkg -x %s/*.deb %s.tmp && rm -rf %s && mv %s.tmp %s && date > %s",
                            tmp, dest, dest, dest, dest, mark);
        char *sh [] = { "sh", "-c", cmd, NULL };
        if ((rc = s_run (sh, NULL)) != 0)
            *error_p = lb_xasprintf ("dpkg -x of %s failed", package);
    }
    char *rm [] = { "rm", "-rf", tmp, NULL };
    s_run (rm, NULL);
    free (cmd);
    free (tmp);
    free (dest);
out:
    free (mark);
    return rc;
}

//  A copy of src whose column list has extra appended (when absent).
static char **
s_columns_plus (const pr_source_t *src, const char *const *extra, size_t nextra, size_t *count)
{
    char **cols = lb_xmalloc ((src->column_count + nextra) * sizeof (char *));
    size_t n = 0;
    for (size_t c = 0; c < src->column_count; c++)
        cols [n++] = src->columns [c];
    for (size_t k = 0; k < nextra; k++) {
        bool have = false;
        for (size_t c = 0; c < src->column_count; c++)
            have |= strcmp (src->columns [c], extra [k]) == 0;
        if (!have)
            cols [n++] = (char *) extra [k];
    }
    *count = n;
    return cols;
}

wf_status_t
wf_fetch_run (lb_config_t *config, const char *run, const char *step, const char *task_ref,
              bool record, wf_progress_fn *progress, void *parg, wf_outcome_t *out)
{
    assert (config && run && step && task_ref && out);
    memset (out, 0, sizeof *out);
    out->baseline_accuracy = NAN;
    int64_t t0 = lb_clock_mono_us ();
    wf_status_t status = WF_DONE;
    lb_artifact_t *store = lb_artifact_new (lb_config_str (config, "artifacts.root"));
    lb_netpolicy_t *policy = NULL;
    pr_task_t *task = NULL;
    PGconn *conn = NULL;
    wf_frame_t frame = { 0, 0, NULL, -1 };
    lb_dataset_t *ds = NULL;
    json_t *sources_json = json_array ();
    char *error = NULL, *spec = NULL;
    if (!store) {
        status = s_fail (out, WF_RETRY, "artifacts", "cannot open the artifact store (artifacts.root)");
        goto out;
    }
    size_t len;
    spec = s_read_spec (store, task_ref, &len, &error);
    if (!spec) {
        status = s_fail (out, WF_FAIL, "bad_task", "%s", error);
        goto out;
    }
    task = pr_task_from_json (spec, len, &error);
    if (!task) {
        status = s_fail (out, WF_FAIL, "bad_task", "task spec: %s", error);
        goto out;
    }
    s_progress (progress, parg, 5, "spec", "task %s: %zu sources, target %s %s h=%d", task->name,
                task->source_count, task->target.column, pr_target_kind_name (task->target.kind),
                task->target.horizon);
    policy = lb_netpolicy_new_config (config);
    if (!policy) {
        status = s_fail (out, WF_FAIL, "config", "bad [sources] settings");
        goto out;
    }
    int64_t max_bytes = lb_config_bytes (config, "sources.max_bytes");
    if (pr_task_check_sources (task, policy, (size_t) lb_config_int (config, "sources.max_count"),
                               max_bytes, &error)) {
        status = s_fail (out, WF_FAIL, "source_refused", "%s", error);
        goto out;
    }
    bool any_pg = false;
    for (size_t i = 0; i < task->source_count; i++)
        any_pg |= task->sources [i].kind == LB_SOURCE_PG;
    const char *url = lb_config_str (config, "postgres.url");
    if ((any_pg || record) && url && *url) {
        conn = PQconnectdb (url);
        if (PQstatus (conn) != CONNECTION_OK) {
            status = s_fail (out, WF_RETRY, "database", "cannot connect to PostgreSQL: %s",
                             PQerrorMessage (conn));
            goto out;
        }
        PQclear (PQexec (conn, "set client_min_messages to warning"));
    }
    else
    if (any_pg || record) {
        status = s_fail (out, WF_FAIL, "config", "postgres.url is not set");
        goto out;
    }
    //  A replay: the dataset of this (run, step) is there and intact.
    if (conn && record) {
        const char *params [2] = { run, step };
        PGresult *res = PQexecParams (conn, "select artifact_uri, sha256, rows, cols, train_rows, valid_rows, "
                                      "test_rows from datasets where run = $1 and step = $2",
                                      2, NULL, params, NULL, NULL, 0);
        if (PQresultStatus (res) != PGRES_TUPLES_OK) {
            status = s_fail (out, WF_RETRY, "database", "datasets: %s", PQresultErrorMessage (res));
            PQclear (res);
            goto out;
        }
        if (PQntuples (res) == 1) {
            char *path = lb_artifact_path (store, PQgetvalue (res, 0, 0), true);
            if (path) {
                out->dataset_uri = lb_xstrdup (PQgetvalue (res, 0, 0));
                snprintf (out->sha256, sizeof out->sha256, "%s", PQgetvalue (res, 0, 1));
                out->rows = (size_t) atoll (PQgetvalue (res, 0, 2));
                out->cols = (size_t) atoll (PQgetvalue (res, 0, 3));
                out->train_rows = (size_t) atoll (PQgetvalue (res, 0, 4));
                out->valid_rows = (size_t) atoll (PQgetvalue (res, 0, 5));
                out->test_rows = (size_t) atoll (PQgetvalue (res, 0, 6));
                out->replayed = true;
                free (path);
                PQclear (res);
                s_progress (progress, parg, 100, "done", "replay: dataset %s already built", out->dataset_uri);
                goto out;
            }
            lb_log_warn ("fetch: run=%s step=%s: recorded dataset is missing or damaged; rebuilding", run, step);
        }
        PQclear (res);
    }
    //  Sources.
    for (size_t i = 0; i < task->source_count; i++) {
        const pr_source_t *src = &task->sources [i];
        lb_source_uri_t uri;
        if (lb_netpolicy_parse (src->uri, &uri, &error)) {
            status = s_fail (out, WF_FAIL, "source_refused", "%s", error);
            goto out;
        }
        s_progress (progress, parg, 10 + 50.0 * (double) i / (double) task->source_count, "source",
                    "reading %s", src->uri);
        wf_frame_t f = { 0, 0, NULL, -1 };
        char *path = NULL, sha [65] = "";
        int64_t bytes = 0;
        bool retry = false;
        int rc = 0;
        if (uri.kind == LB_SOURCE_PG) {
            static const char *extra [] = { "rule_signal", "fwd_return", "label_timestamp" };
            size_t n;
            char **cols = s_columns_plus (src, extra, strcmp (uri.name, "pattern_training_data") == 0 ? 3 : 0, &n);
            pr_source_t copy = *src;
            copy.columns = cols;
            copy.column_count = n;
            rc = wf_frame_from_table (conn, &copy, uri.name, &f, &error, &retry);
            if (rc && !retry && strstr (error, "does not exist") && n > src->column_count) {
                //  Maybe the table lacks the extra columns: read just the named ones.
                free (error);
                error = NULL;
                rc = wf_frame_from_table (conn, src, uri.name, &f, &error, &retry);
            }
            free (cols);
            snprintf (sha, sizeof sha, "%s", "");
        }
        else {
            if (uri.kind == LB_SOURCE_FILE)
                path = lb_xstrdup (uri.path);
            else
            if (uri.kind == LB_SOURCE_DEBIAN) {
                const char *dir = lb_config_str (config, "fetch.debian_dir");
                if (lb_download_mkdir_p (dir))
                    rc = -1, error = lb_xasprintf ("cannot create %s: %s", dir, strerror (errno)), retry = true;
                if (rc == 0 && s_debian (dir, uri.name, &error))
                    rc = -1, retry = true;
                path = lb_xasprintf ("%s/%s%s", dir, uri.name, uri.path);
            }
            else {
                lb_download_opts_t o;
                lb_download_opts_default (&o);
                o.policy = policy;
                o.cache_dir = lb_config_str (config, "fetch.cache_dir");
                o.connect_timeout = lb_config_seconds (config, "fetch.connect_timeout");
                o.timeout = lb_config_seconds (config, "fetch.timeout");
                o.retries = (int) lb_config_int (config, "fetch.retries");
                o.max_redirects = (int) lb_config_int (config, "fetch.max_redirects");
                o.max_bytes = max_bytes;
                lb_download_result_t r;
                rc = lb_download (src->uri, &o, &r, &error, &retry);
                if (rc == 0) {
                    path = lb_xstrdup (r.path);
                    lb_download_result_release (&r);
                }
            }
            struct stat st;
            if (rc == 0 && (stat (path, &st) || !S_ISREG (st.st_mode))) {
                rc = -1;
                error = lb_xasprintf ("%s: no such file", path);
            }
            else
            if (rc == 0 && st.st_size > max_bytes) {
                rc = -1;
                error = lb_xasprintf ("%s: %lld bytes, over sources.max_bytes", path, (long long) st.st_size);
            }
            if (rc == 0) {
                bytes = (int64_t) st.st_size;
                if (lb_artifact_sha256_file (path, sha)) {
                    rc = -1;
                    retry = true;
                    error = lb_xasprintf ("%s: cannot read", path);
                }
                else
                if (src->sha256 && strcmp (src->sha256, sha) != 0) {
                    rc = -1;
                    error = lb_xasprintf ("%s: SHA-256 %s, the task declares %s", src->uri, sha, src->sha256);
                }
            }
            if (rc == 0)
                rc = src->format == PR_FORMAT_JSON ? wf_frame_from_json (src, path, (size_t) max_bytes, &f, &error)
                                                   : wf_frame_from_csv (src, path, &f, &error);
        }
        lb_source_uri_release (&uri);
        free (path);
        if (rc == 0)
            rc = wf_frame_prepare (src, &f, &error);
        if (rc == 0 && strncmp (src->uri, "pg:market_bars", 15) == 0)
            rc = wf_frame_check_prices (&f, "market_bars", &error);
        if (rc) {
            status = s_fail (out, retry ? WF_RETRY : WF_FAIL, retry ? "source_unavailable" : "bad_source",
                             "source %zu (%s): %s", i + 1, src->uri, error ? error : "failed");
            wf_frame_release (&f);
            goto out;
        }
        json_t *sj = json_pack ("{s:s, s:s, s:I, s:I}", "uri", src->uri, "sha256", sha, "bytes",
                                (json_int_t) bytes, "rows", (json_int_t) f.rows);
        json_array_append_new (sources_json, sj);
        if (i == 0)
            frame = f;
        else {
            rc = wf_frame_join_asof (&frame, &f, &error);
            wf_frame_release (&f);
            if (rc) {
                status = s_fail (out, WF_FAIL, "bad_source", "%s", error);
                goto out;
            }
        }
    }
    //  The dataset.
    s_progress (progress, parg, 65, "features", "%zu rows, %zu features", frame.rows, task->feature_count);
    wf_split_opts_t so;
    wf_split_opts_default (&so);
    so.catalyst = any_pg && lb_config_bool (config, "fetch.catalyst");
    so.train_s = (int64_t) lb_config_seconds (config, "fetch.train_window");
    so.valid_s = (int64_t) lb_config_seconds (config, "fetch.valid_window");
    so.test_s = (int64_t) lb_config_seconds (config, "fetch.test_window");
    so.embargo_s = (int64_t) lb_config_seconds (config, "fetch.embargo");
    so.valid_fraction = lb_config_real (config, "fetch.valid_fraction");
    so.test_fraction = lb_config_real (config, "fetch.test_fraction");
    so.min_train_rows = (size_t) lb_config_int (config, "fetch.min_train_rows");
    json_t *meta = json_pack ("{s:s, s:s, s:s, s:s, s:s, s:{s:s, s:s, s:i, s:f}, s:i, s:O}",
                              "task", task->name, "fingerprint", task->fingerprint, "run", run,
                              "step", step, "task_type", pr_task_type_name (task->task_type),
                              "target", "column", task->target.column, "kind",
                              pr_target_kind_name (task->target.kind), "horizon", task->target.horizon,
                              "threshold", task->target.threshold, "window", task->window,
                              "sources", sources_json);
    char *meta_text = json_dumps (meta, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref (meta);
    ds = wf_build_dataset (task, &frame, &so, meta_text, &error);
    free (meta_text);
    if (!ds) {
        status = s_fail (out, WF_FAIL, "bad_data", "%s", error);
        goto out;
    }
    uint8_t *data;
    size_t size;
    if (lb_dataset_encode (ds, &data, &size)) {
        status = s_fail (out, WF_FAIL, "bad_data", "the dataset does not encode (see the log)");
        goto out;
    }
    lb_artifact_sha256 (data, size, out->sha256);
    int put = lb_artifact_put (store, data, size, &out->dataset_uri);
    free (data);
    if (put) {
        status = s_fail (out, WF_RETRY, "artifacts", "cannot write the dataset into the artifact store");
        goto out;
    }
    out->rows = lb_dataset_rows (ds);
    out->cols = lb_dataset_cols (ds);
    size_t b [3], e [3];
    for (int s = 0; s < 3; s++)
        lb_dataset_split (ds, (lb_dataset_split_t) s, &b [s], &e [s]);
    out->train_rows = e [0] - b [0];
    out->valid_rows = e [1] - b [1];
    out->test_rows = e [2] - b [2];
    if (lb_dataset_task (ds) != LB_DATASET_REGRESSION) {
        size_t hits = 0, n = 0;
        for (size_t r = b [2]; r < e [2]; r++)
            if (!isnan (lb_dataset_baseline (ds) [r])) {
                n++;
                hits += lb_dataset_baseline (ds) [r] == lb_dataset_y (ds) [r];
            }
        out->baseline_accuracy = n ? (double) hits / (double) n : NAN;
    }
    s_progress (progress, parg, 90, "store", "dataset %s: %zu rows (%zu/%zu/%zu), %zu columns",
                out->dataset_uri, out->rows, out->train_rows, out->valid_rows, out->test_rows, out->cols);
    if (record) {
        json_t *cols = json_array ();
        for (size_t c = 0; c < out->cols; c++)
            json_array_append_new (cols, json_string (lb_dataset_column (ds, c)));
        char *cols_text = json_dumps (cols, JSON_COMPACT);
        char *src_text = json_dumps (sources_json, JSON_COMPACT);
        json_decref (cols);
        const int64_t *ts = lb_dataset_ts (ds);
        char num [12][32], when [6][32];
        snprintf (num [0], 32, "%zu", size);
        snprintf (num [1], 32, "%zu", out->rows);
        snprintf (num [2], 32, "%zu", out->cols);
        snprintf (num [3], 32, "%lld", (long long) lb_dataset_horizon (ds));
        snprintf (num [4], 32, "%lld", (long long) lb_dataset_embargo (ds));
        snprintf (num [5], 32, "%zu", out->train_rows);
        snprintf (num [6], 32, "%zu", out->valid_rows);
        snprintf (num [7], 32, "%zu", out->test_rows);
        const char *task_type [] = { "binary", "regression", "multiclass" };
        const char *p [24] = { run, step, task->name, task->fingerprint, out->dataset_uri, out->sha256,
                               num [0], num [1], num [2], cols_text, lb_dataset_label (ds),
                               task_type [lb_dataset_task (ds)], src_text, num [3], num [4] };
        for (int s = 0; s < 3; s++) {
            bool empty = b [s] == e [s];
            snprintf (when [2 * s], 32, "%lld", (long long) (empty ? 0 : ts [b [s]]));
            snprintf (when [2 * s + 1], 32, "%lld", (long long) (empty ? 0 : ts [e [s] - 1]));
            p [15 + 3 * s] = empty ? NULL : when [2 * s];
            p [16 + 3 * s] = empty ? NULL : when [2 * s + 1];
            p [17 + 3 * s] = num [5 + s];
        }
        PGresult *res = PQexecParams (conn,
            "insert into datasets (run, step, task_name, fingerprint, artifact_uri, sha256, bytes, rows, cols, "
            "columns, label, task_type, sources, horizon_s, embargo_s, train_from, train_to, train_rows, "
            "valid_from, valid_to, valid_rows, test_from, test_to, test_rows) values ($1, $2, $3, $4, $5, $6, "
            "$7, $8, $9, $10::jsonb, $11, $12, $13::jsonb, $14, $15, to_timestamp ($16), to_timestamp ($17), "
            "$18, to_timestamp ($19), to_timestamp ($20), $21, to_timestamp ($22), to_timestamp ($23), $24) "
            "on conflict (run, step) do update set artifact_uri = excluded.artifact_uri, sha256 = excluded.sha256, "
            "bytes = excluded.bytes, rows = excluded.rows",
            24, NULL, p, NULL, NULL, 0);
        free (cols_text);
        free (src_text);
        if (PQresultStatus (res) != PGRES_COMMAND_OK) {
            status = s_fail (out, WF_RETRY, "database", "datasets: %s", PQresultErrorMessage (res));
            PQclear (res);
            goto out;
        }
        PQclear (res);
    }
    s_progress (progress, parg, 100, "done", "dataset %s", out->dataset_uri);
out:
    out->seconds = (double) (lb_clock_mono_us () - t0) / 1e6;
    if (status != WF_DONE)
        lb_log_error ("fetch: run=%s step=%s %s: %s", run, step, out->error_code, out->error);
    json_decref (sources_json);
    lb_dataset_destroy (&ds);
    wf_frame_release (&frame);
    if (conn)
        PQfinish (conn);
    pr_task_destroy (&task);
    lb_netpolicy_destroy (&policy);
    lb_artifact_destroy (&store);
    free (spec);
    free (error);
    return status;
}
