/*  wd_discover.c - one discover step (see wd_discover.h). */
#include "wd_discover.h"
#include "lb_http.h"
#include "lb_log.h"
#include "lb_mem.h"
#include "lb_netpolicy.h"
#include "lb_selftest.h"
#include "pr_task.h"
#include "wd_catalog.h"
#include "wd_llm.h"
#include "wd_novelty.h"

#include <assert.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static const char s_system [] =
"You are the research lead of Predictors, a system that runs automated machine-learning research on "
"its operator's own machines. Each week you propose ONE prediction task that has never been tried; "
"the system then fetches its data, trains gradient-boosted trees, random forests, an MLP and a "
"transformer, evaluates them against a rule-based baseline on a strictly time-ordered held-out split, "
"and deploys the winner only if it is clearly better.\n\n"
"A good task is:\n"
"- interesting: it tests a hypothesis someone would care about, ideally a non-obvious link between "
"data sets (think 'Instagram colours -> weather' or 'Spotify tempo -> crypto volatility', or which "
"candlestick patterns really succeed at which horizon);\n"
"- feasible: every source is real, publicly reachable over https (no login, no API key), under 1 GB "
"in all, in csv or json, or one of the local sources below; the target and features are columns of "
"those sources; a few thousand rows at least;\n"
"- novel: it differs from every past task listed by the user in its sources, target or horizon, and "
"its hypothesis is not a rewording of a past one.\n\n"
"Local sources you may use without network:\n"
"- pg:market_bars (format table): hourly bars, columns symbol, ts, open, high, low, close, volume, "
"news_count, options_volume; filter one symbol with where {\"symbol\": \"SPY\"}; time_column ts;\n"
"- pg:pattern_training_data (format table): per bar symbol, ts, the 16 engineered features "
"(body_to_range_ratio, upper_shadow_ratio, lower_shadow_ratio, volume_surge, rsi_14, bb_position, "
"macd_histogram, adx_strength, vix_level, spy_correlation, sector_momentum, market_breadth, "
"news_present, premarket_gap, unusual_volume, options_activity), pattern_success and fwd_return;\n"
"- debian:PACKAGE:/PATH for data files Debian ships, e.g. debian:python3-vega-datasets:/usr/lib/"
"python3/dist-packages/vega_datasets/_data/seattle-weather.csv (date, precipitation, temp_max, "
"temp_min, wind, weather).\n\n"
"Rules the spec must meet (it is checked by a strict validator, and an invalid spec costs you a "
"round): name of a-z, 0-9, _ and -; columns listed in file order as [a-z_][a-z0-9_]* names (they "
"replace the file's header); a column other than a time column may appear in one source only; the "
"target column must be a column of a source and not a time column; horizon in rows; features are "
"COLUMN, FN(COLUMN,N) with FN in lag diff ret logret sma_ratio ema_ratio zscore vol rsi range_pos, "
"dow|month|dayofyear|hour(TIME_COLUMN), or spread(COLUMN,COLUMN); the metric must fit the task type.";

void
wd_outcome_release (wd_outcome_t *out)
{
    if (!out)
        return;
    free (out->spec_json);
    free (out->name);
    free (out->fingerprint);
    free (out->error_code);
    free (out->error);
    memset (out, 0, sizeof *out);
}

static wd_step_t
s_fail (wd_outcome_t *out, wd_step_t step, const char *code, const char *fmt, ...)
    __attribute__ ((format (printf, 4, 5)));

static wd_step_t
s_fail (wd_outcome_t *out, wd_step_t step, const char *code, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    free (out->error);
    free (out->error_code);
    out->error = lb_xvasprintf (fmt, args);
    out->error_code = lb_xstrdup (code);
    va_end (args);
    return step;
}

int
wd_discover_api_key (lb_config_t *config, char **key, char **error_p)
{
    assert (config && key);
    *key = NULL;
    const char *value = lb_config_str (config, "llm.api_key");
    if (value && *value) {
        *key = lb_xstrdup (value);
        return 0;
    }
    const char *path = lb_config_str (config, "discover.api_key_file");
    if (!path || !*path)
        return 0;
    int fd = open (path, O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat (fd, &st)) {
        if (error_p)
            *error_p = lb_xasprintf ("discover.api_key_file %s: cannot open: %s", path, strerror (errno));
        if (fd >= 0)
            close (fd);
        return -1;
    }
    if (!S_ISREG (st.st_mode) || (st.st_mode & 077)) {
        if (error_p)
            *error_p = lb_xasprintf ("discover.api_key_file %s: must be a regular file readable by its owner "
                                     "only (mode is %04o; chmod 600 it)", path, (unsigned) (st.st_mode & 07777));
        close (fd);
        return -1;
    }
    char buf [512];
    ssize_t n = read (fd, buf, sizeof buf - 1);
    close (fd);
    if (n <= 0) {
        if (error_p)
            *error_p = lb_xasprintf ("discover.api_key_file %s: empty", path);
        return -1;
    }
    buf [n] = 0;
    buf [strcspn (buf, "\r\n")] = 0;
    char *start = buf;
    while (*start == ' ' || *start == '\t')
        start++;
    size_t len = strlen (start);
    while (len && (start [len - 1] == ' ' || start [len - 1] == '\t'))
        start [--len] = 0;
    if (!len) {
        if (error_p)
            *error_p = lb_xasprintf ("discover.api_key_file %s: empty", path);
        return -1;
    }
    *key = lb_xstrdup (start);
    memset (buf, 0, sizeof buf);
    return 0;
}

//  --------------------------------------------------------------------------
//  Feasibility probe of http(s) sources

//  Resolves location against base. Caller frees; NULL if it is not a URL.
static char *
s_join_url (const char *base, const char *location)
{
    CURLU *u = curl_url ();
    char *joined = NULL, *out = NULL;
    if (curl_url_set (u, CURLUPART_URL, base, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK
        && curl_url_set (u, CURLUPART_URL, location, CURLU_NON_SUPPORT_SCHEME) == CURLUE_OK
        && curl_url_get (u, CURLUPART_URL, &joined, 0) == CURLUE_OK)
        out = lb_xstrdup (joined);
    curl_free (joined);
    curl_url_cleanup (u);
    return out;
}

//  Probes one URL. Returns 0, or -1 with *error_p (caller frees).
static int
s_probe_url (lb_netpolicy_t *policy, const char *first, int64_t max_bytes, double connect_timeout,
             char **error_p)
{
    char *url = lb_xstrdup (first);
    int rc = -1;
    for (int hop = 0; hop < 4; hop++) {
        char *resolve = NULL, *why = NULL;
        if (lb_netpolicy_check_url (policy, url, &resolve, &why)) {
            *error_p = hop ? lb_xasprintf ("redirect to %s: %s", url, why) : lb_xstrdup (why);
            free (why);
            goto out;
        }
        lb_http_request_t req = { .method = "HEAD", .url = url, .resolve = resolve,
                                  .connect_timeout = connect_timeout, .timeout = 2 * connect_timeout + 5 };
        lb_http_response_t resp;
        int http = lb_http_perform (&req, &resp);
        if (http == 0 && (resp.status == 405 || resp.status == 501 || resp.status == 403)) {
            //  No HEAD here: a one-byte ranged GET says as much.
            lb_http_response_release (&resp);
            req.method = "GET";
            req.range = "0-0";
            req.max_body = 65536;
            http = lb_http_perform (&req, &resp);
        }
        free (resolve);
        if (http) {
            *error_p = lb_xasprintf ("probe failed: %s", resp.error);
            lb_http_response_release (&resp);
            goto out;
        }
        const char *location = lb_http_response_header (&resp, "location");
        if (resp.status >= 300 && resp.status < 400 && location) {
            char *next = s_join_url (url, location);
            lb_http_response_release (&resp);
            if (!next) {
                *error_p = lb_xasprintf ("%s redirects to a bad location", url);
                goto out;
            }
            free (url);
            url = next;
            continue;
        }
        if (resp.status != 200 && resp.status != 206) {
            *error_p = lb_xasprintf ("%s answered HTTP %ld", url, resp.status);
            lb_http_response_release (&resp);
            goto out;
        }
        const char *type = lb_http_response_header (&resp, "content-type");
        if (type && strncasecmp (type, "text/html", 9) == 0) {
            *error_p = lb_xasprintf ("%s serves an HTML page (content-type %.64s), not data", url, type);
            lb_http_response_release (&resp);
            goto out;
        }
        int64_t size = -1;
        const char *range = lb_http_response_header (&resp, "content-range");
        const char *length = lb_http_response_header (&resp, "content-length");
        if (resp.status == 206 && range && strchr (range, '/'))
            size = strtoll (strchr (range, '/') + 1, NULL, 10);
        else
        if (length)
            size = strtoll (length, NULL, 10);
        lb_http_response_release (&resp);
        if (size > max_bytes) {
            *error_p = lb_xasprintf ("%s is %lld bytes, over the %lld allowed (sources.max_bytes)", url,
                                     (long long) size, (long long) max_bytes);
            goto out;
        }
        rc = 0;
        goto out;
    }
    *error_p = lb_xasprintf ("%s: more than 3 redirects", first);
out:
    free (url);
    return rc;
}

//  Checks that the columns a pg: source reads exist in its table. Returns 0,
//  1 with *error_p when they do not, -1 on a database error.
static int
s_check_table (wd_store_t *store, const pr_task_t *task, char **error_p)
{
    for (size_t i = 0; i < task->source_count; i++) {
        const pr_source_t *src = &task->sources [i];
        if (src->kind != LB_SOURCE_PG)
            continue;
        const char *table = src->uri + 3;
        char *columns = NULL;
        int rc = wd_store_columns (store, table, &columns);
        if (rc < 0)
            return -1;
        if (rc == 1) {
            *error_p = lb_xasprintf ("sources[%zu].uri: table %s does not exist in this database", i, table);
            return 1;
        }
        char *list = lb_xasprintf (",%s,", columns);
        for (size_t c = 0; c < src->column_count; c++) {
            char *mark = lb_xasprintf (",%s,", src->columns [c]);
            bool found = strstr (list, mark) != NULL;
            free (mark);
            if (!found) {
                *error_p = lb_xasprintf ("sources[%zu].columns[%zu]: '%s' is not a column of table %s (it has %s)",
                                         i, c, src->columns [c], table, columns);
                free (list);
                free (columns);
                return 1;
            }
        }
        free (list);
        free (columns);
    }
    return 0;
}

//  Validates, checks and probes one proposal. Returns the task, or NULL with
//  *error_p and *outcome ("invalid" or "infeasible"). With a store, pg:
//  sources must name existing columns.
static pr_task_t *
s_check (lb_config_t *config, lb_netpolicy_t *policy, wd_store_t *store, const char *json, char **error_p,
         const char **outcome)
{
    *outcome = "invalid";
    pr_task_t *task = pr_task_from_json (json, strlen (json), error_p);
    if (!task)
        return NULL;
    const char *types = lb_config_str (config, "discover.task_types");
    if (!wd_catalog_type_listed (types, task->task_type)) {
        *error_p = lb_xasprintf ("task_type: '%s' is not one this installation trains and evaluates (%s)",
                                 pr_task_type_name (task->task_type), types ? types : "none");
        pr_task_destroy (&task);
        return NULL;
    }
    size_t max_count = (size_t) lb_config_int (config, "sources.max_count");
    int64_t max_bytes = lb_config_bytes (config, "sources.max_bytes");
    if (pr_task_check_sources (task, policy, max_count, max_bytes, error_p)) {
        pr_task_destroy (&task);
        return NULL;
    }
    int table = store ? s_check_table (store, task, error_p) : 0;
    if (table) {
        if (table < 0)
            *error_p = lb_xstrdup ("cannot read the columns of the source's table (database error)");
        *outcome = "infeasible";
        pr_task_destroy (&task);
        return NULL;
    }
    if (lb_config_bool (config, "discover.probe"))
        for (size_t i = 0; i < task->source_count; i++) {
            int kind = task->sources [i].kind;
            if (kind != LB_SOURCE_HTTPS && kind != LB_SOURCE_HTTP)
                continue;
            char *why = NULL;
            if (s_probe_url (policy, task->sources [i].uri, max_bytes,
                             lb_config_seconds (config, "discover.connect_timeout"), &why)) {
                *error_p = lb_xasprintf ("sources[%zu].uri: not feasible: %s", i, why);
                *outcome = "infeasible";
                free (why);
                pr_task_destroy (&task);
                return NULL;
            }
        }
    return task;
}

static void
s_attempt (wd_store_t *store, const char *run, const char *step, const char *origin, const char *outcome,
           const char *reason, const char *output)
{
    if (store)
        wd_store_attempt (store, run, step, origin, outcome, reason, output);
}

//  Stores an accepted task. Returns 0 (stored, or no store), 1 when another
//  worker stored the same fingerprint first, -1 on a database error.
static int
s_accept (wd_store_t *store, const pr_task_t *task, const wd_minhash_t *sig, const char *origin,
          const char *run, const char *step, wd_outcome_t *out)
{
    int64_t id = 0;
    if (store) {
        int rc = wd_store_insert (store, task, sig, origin, run, step, &id);
        if (rc)
            return rc;
    }
    out->spec_json = pr_task_to_json (task);
    out->name = lb_xstrdup (task->name);
    out->fingerprint = lb_xstrdup (task->fingerprint);
    out->origin = origin;
    out->task_id = id;
    s_attempt (store, run, step, origin, "accepted", NULL, NULL);
    return 0;
}

static wd_step_t
s_run_catalog (lb_config_t *config, wd_store_t *store, const char *run, const char *step,
               wd_novelty_t *nov, lb_netpolicy_t *policy, wd_outcome_t *out)
{
    wd_catalog_t *catalog = wd_catalog_new (lb_config_str (config, "discover.symbols"),
                                            (uint64_t) lb_config_int (config, "discover.seed"));
    wd_catalog_keep_types (catalog, lb_config_str (config, "discover.task_types"));
    wd_step_t result = WD_STEP_FAIL;
    for (;;) {
        size_t skipped = 0;
        char *reason = NULL;
        pr_task_t *task = wd_catalog_propose (catalog, nov, &skipped, &reason);
        out->proposals += (int) skipped + (task ? 1 : 0);
        if (!task) {
            s_fail (out, WD_STEP_FAIL, "catalog_exhausted", "%s", reason);
            free (reason);
            break;
        }
        char *why = NULL;
        if (pr_task_check_sources (task, policy, (size_t) lb_config_int (config, "sources.max_count"),
                                   lb_config_bytes (config, "sources.max_bytes"), &why)) {
            //  The operator's policy forbids what the catalog uses (a pg table or a package).
            s_fail (out, WD_STEP_FAIL, "bad_config", "catalog task %s is refused by the source policy: %s",
                    task->name, why);
            free (why);
            pr_task_destroy (&task);
            break;
        }
        wd_minhash_t sig;
        wd_minhash_compute (task->hypothesis, &sig);
        wd_novelty_check (nov, task->fingerprint, &sig, &out->similarity, NULL);
        int rc = s_accept (store, task, &sig, "catalog", run, step, out);
        if (rc == 1) {
            //  Taken meanwhile by another worker: remember it and go on.
            wd_novelty_add (nov, task->name, task->fingerprint, &sig);
            pr_task_destroy (&task);
            continue;
        }
        pr_task_destroy (&task);
        if (rc < 0)
            s_fail (out, WD_STEP_RETRY, "store", "cannot store the task in PostgreSQL");
        else
            result = WD_STEP_DONE;
        break;
    }
    wd_catalog_destroy (&catalog);
    return result;
}

static wd_step_t
s_run_llm (lb_config_t *config, wd_store_t *store, const char *run, const char *step, const char *key,
           wd_novelty_t *nov, lb_netpolicy_t *policy, volatile const int *stop, wd_outcome_t *out)
{
    char *schema = pr_task_json_schema ();
    const char *output_mode = lb_config_str (config, "discover.output");
    if (strcmp (output_mode, "tool") && strcmp (output_mode, "json_schema")) {
        free (schema);
        return s_fail (out, WD_STEP_FAIL, "bad_config", "discover.output: '%s' is neither tool nor json_schema",
                       output_mode);
    }
    wd_llm_config_t cfg = {
        .base_url = lb_config_str (config, "llm.base_url"), .api_key = key,
        .model = lb_config_str (config, "llm.model"), .version = lb_config_str (config, "llm.version"),
        .max_tokens = (int) lb_config_int (config, "discover.max_tokens"),
        .structured = strcmp (output_mode, "json_schema") == 0,
        .tool_name = "propose_task",
        .tool_description = "Propose one new prediction task as a task spec (validated strictly).",
        .schema = schema, .retries = (int) lb_config_int (config, "discover.retries"),
        .backoff = lb_config_seconds (config, "discover.backoff"),
        .backoff_max = lb_config_seconds (config, "discover.backoff_max"),
        .connect_timeout = lb_config_seconds (config, "discover.connect_timeout"),
        .timeout = lb_config_seconds (config, "discover.timeout"), .stop = stop
    };
    wd_llm_t *llm = wd_llm_new (&cfg);
    char *history = store ? wd_store_history (store, (size_t) lb_config_bytes (config, "discover.history_bytes"))
                          : lb_xstrdup ("");
    if (!history) {
        wd_llm_destroy (&llm);
        free (schema);
        return s_fail (out, WD_STEP_RETRY, "store", "cannot read past tasks from PostgreSQL");
    }
    char *user = lb_xasprintf ("Propose one new prediction task.\n\n%s%s%s", *history ? "Tasks tried so far, "
                               "newest first (do not repeat any of them, nor reword one):\n" : "No task has been "
                               "tried yet.", history, *history ? "" : "\n");
    const char *how = cfg.structured ? "Answer with the spec as one JSON object and nothing else."
                                     : "Answer only through the propose_task tool.";
    char *system = lb_xasprintf ("%s\n\n%s", s_system, how);
    wd_llm_start (llm, system, user);
    free (system);
    free (user);
    free (history);

    int attempts = (int) lb_config_int (config, "discover.attempts");
    bool corrected = false;
    char *first_error = NULL, *first_output = NULL;
    char *reasons = lb_xstrdup ("");
    wd_step_t result = WD_STEP_FAIL;
    int novel_rounds = 0;
    for (;;) {
        char *output = NULL, *error = NULL;
        wd_llm_rc_t rc = wd_llm_ask (llm, &output, &error);
        out->requests = wd_llm_requests (llm);
        if (rc == WD_LLM_TRANSIENT || rc == WD_LLM_PERMANENT) {
            s_attempt (store, run, step, "llm", "api_error", error, NULL);
            s_fail (out, rc == WD_LLM_TRANSIENT ? WD_STEP_RETRY : WD_STEP_FAIL,
                    rc == WD_LLM_TRANSIENT ? "llm_unavailable" : "llm_error", "%s", error);
            result = rc == WD_LLM_TRANSIENT ? WD_STEP_RETRY : WD_STEP_FAIL;
            free (error);
            break;
        }
        out->proposals++;
        const char *outcome = "invalid";
        pr_task_t *task = NULL;
        if (rc == WD_LLM_OK)
            task = s_check (config, policy, store, output, &error, &outcome);
        if (!task) {
            s_attempt (store, run, step, "llm", outcome, error, output);
            if (corrected) {
                s_fail (out, WD_STEP_FAIL, "invalid_output",
                        "the model's spec failed validation twice. First: %s -- output: %.2000s. "
                        "After correction: %s -- output: %.2000s",
                        first_error, first_output ? first_output : "(none)", error, output ? output : "(none)");
                free (error);
                free (output);
                break;
            }
            corrected = true;
            first_error = error;
            first_output = output;
            char *feedback = lb_xasprintf ("The spec was rejected: %s. Send one corrected spec. %s",
                                           first_error, how);
            lb_log_info ("discover: asking for a correction: %s", first_error);
            wd_llm_feedback (llm, feedback);
            free (feedback);
            continue;
        }
        wd_minhash_t sig;
        wd_minhash_compute (task->hypothesis, &sig);
        char *reason = NULL;
        double sim = 0;
        wd_verdict_t verdict = wd_novelty_check (nov, task->fingerprint, &sig, &sim, &reason);
        int stored = verdict == WD_NOVEL ? s_accept (store, task, &sig, "llm", run, step, out) : 1;
        if (verdict == WD_NOVEL && stored == 1) {
            reason = lb_xstrdup ("duplicate: another worker stored the same task a moment ago");
            wd_novelty_add (nov, task->name, task->fingerprint, &sig);
        }
        if (verdict == WD_NOVEL && stored == 0) {
            out->similarity = sim;
            result = WD_STEP_DONE;
            pr_task_destroy (&task);
            free (output);
            break;
        }
        if (stored < 0) {
            s_fail (out, WD_STEP_RETRY, "store", "cannot store the task in PostgreSQL");
            result = WD_STEP_RETRY;
            pr_task_destroy (&task);
            free (output);
            break;
        }
        s_attempt (store, run, step, "llm", verdict == WD_NEAR_DUPLICATE ? "near_duplicate" : "duplicate",
                   reason, output);
        char *more = lb_xasprintf ("%s%s%s: %s", reasons, *reasons ? "; " : "", task->name, reason);
        free (reasons);
        reasons = more;
        pr_task_destroy (&task);
        free (output);
        if (++novel_rounds >= attempts) {
            s_fail (out, WD_STEP_FAIL, "not_novel", "no novel task after %d proposals: %s", novel_rounds, reasons);
            free (reason);
            break;
        }
        char *feedback = lb_xasprintf ("Rejected, not novel: %s. Propose a clearly different task: other "
                                       "sources, another target or another horizon, and a new hypothesis.", reason);
        lb_log_info ("discover: proposal rejected: %s", reason);
        wd_llm_feedback (llm, feedback);
        free (feedback);
        free (reason);
    }
    if (out->error)
        wd_llm_redact (llm, out->error);
    free (first_error);
    free (first_output);
    free (reasons);
    wd_llm_destroy (&llm);
    free (schema);
    return result;
}

wd_step_t
wd_discover_run (lb_config_t *config, wd_store_t *store, const char *run, const char *step,
                 volatile const int *stop, wd_outcome_t *out)
{
    assert (config && out);
    memset (out, 0, sizeof *out);
    //  A replay returns what the first delivery stored.
    if (store && run && step) {
        char *spec = NULL;
        int64_t id = 0;
        int rc = wd_store_find (store, run, step, &spec, &id);
        if (rc < 0)
            return s_fail (out, WD_STEP_RETRY, "store", "cannot read tasks from PostgreSQL");
        if (rc == 0) {
            pr_task_t *task = pr_task_from_json (spec, strlen (spec), NULL);
            free (spec);
            if (!task)
                return s_fail (out, WD_STEP_FAIL, "store", "the stored task of run %s is not a valid spec", run);
            out->spec_json = pr_task_to_json (task);
            out->name = lb_xstrdup (task->name);
            out->fingerprint = lb_xstrdup (task->fingerprint);
            out->origin = "replay";
            out->task_id = id;
            out->replayed = true;
            pr_task_destroy (&task);
            return WD_STEP_DONE;
        }
    }
    lb_netpolicy_t *policy = lb_netpolicy_new_config (config);
    if (!policy)
        return s_fail (out, WD_STEP_FAIL, "bad_config", "the [sources] settings are invalid (see the log)");
    wd_novelty_t *nov = wd_novelty_new (lb_config_real (config, "discover.similarity"));
    wd_step_t result = WD_STEP_FAIL;
    char *key = NULL, *why = NULL;
    if (store && (out->history = wd_store_load (store, nov)) < 0) {
        result = s_fail (out, WD_STEP_RETRY, "store", "cannot read past tasks from PostgreSQL");
        goto out;
    }
    if (wd_discover_api_key (config, &key, &why)) {
        result = s_fail (out, WD_STEP_FAIL, "bad_key_file", "%s", why);
        free (why);
        goto out;
    }
    const char *mode = lb_config_str (config, "discover.mode");
    if (strcmp (mode, "catalog") == 0 || (strcmp (mode, "auto") == 0 && !key))
        result = s_run_catalog (config, store, run, step, nov, policy, out);
    else
    if (strcmp (mode, "llm") == 0 || strcmp (mode, "auto") == 0) {
        if (!key)
            result = s_fail (out, WD_STEP_FAIL, "no_api_key", "discover.mode is llm but no API key is set "
                             "(ANTHROPIC_API_KEY, llm.api_key or discover.api_key_file)");
        else
            result = s_run_llm (config, store, run, step, key, nov, policy, stop, out);
    }
    else
        result = s_fail (out, WD_STEP_FAIL, "bad_config", "discover.mode: '%s' is not auto, llm or catalog", mode);
out:
    if (key) {
        memset (key, 0, strlen (key));
        free (key);
    }
    wd_novelty_destroy (&nov);
    lb_netpolicy_destroy (&policy);
    return result;
}

void
wd_discover_test (bool verbose)
{
    (void) verbose;
    //  Catalog path with no store: a valid task, nothing remembered.
    lb_config_t *config = lb_config_new (NULL, 0);
    assert (lb_config_set (config, "discover.mode", "auto", "test") == 0);
    wd_outcome_t out;
    assert (wd_discover_run (config, NULL, NULL, NULL, NULL, &out) == WD_STEP_DONE);
    assert (strcmp (out.origin, "catalog") == 0 && out.task_id == 0 && !out.replayed);
    pr_task_t *task = pr_task_from_json (out.spec_json, strlen (out.spec_json), NULL);
    assert (task && strcmp (task->fingerprint, out.fingerprint) == 0);
    pr_task_destroy (&task);
    wd_outcome_release (&out);
    wd_outcome_release (&out);

    //  llm mode without a key: a permanent, clear failure.
    assert (lb_config_set (config, "discover.mode", "llm", "test") == 0);
    assert (wd_discover_run (config, NULL, NULL, NULL, NULL, &out) == WD_STEP_FAIL);
    assert (strcmp (out.error_code, "no_api_key") == 0);
    wd_outcome_release (&out);
    assert (lb_config_set (config, "discover.mode", "sometimes", "test") == 0);
    assert (wd_discover_run (config, NULL, NULL, NULL, NULL, &out) == WD_STEP_FAIL);
    assert (strcmp (out.error_code, "bad_config") == 0);
    wd_outcome_release (&out);

    //  The key file: 0600 is read, 0644 is refused without showing the key.
    char *dir = lb_selftest_tmpdir ("wd_discover");
    char *path = lb_xasprintf ("%s/key", dir);
    FILE *file = fopen (path, "w");
    assert (file);
    fprintf (file, "  sk-ant-file-key-42  \n");
    fclose (file);
    assert (chmod (path, 0600) == 0);
    assert (lb_config_set (config, "discover.api_key_file", path, "test") == 0);
    char *key = NULL, *error = NULL;
    assert (wd_discover_api_key (config, &key, &error) == 0 && strcmp (key, "sk-ant-file-key-42") == 0);
    free (key);
    assert (chmod (path, 0644) == 0);
    assert (wd_discover_api_key (config, &key, &error) == -1 && key == NULL);
    assert (strstr (error, "mode is 0644") && !strstr (error, "sk-ant"));
    free (error);
    assert (lb_config_set (config, "discover.mode", "auto", "test") == 0);
    assert (wd_discover_run (config, NULL, NULL, NULL, NULL, &out) == WD_STEP_FAIL);
    assert (strcmp (out.error_code, "bad_key_file") == 0);
    wd_outcome_release (&out);
    //  The environment's key wins over the file.
    assert (lb_config_set (config, "llm.api_key", "sk-ant-env", "test") == 0);
    assert (wd_discover_api_key (config, &key, &error) == 0 && strcmp (key, "sk-ant-env") == 0);
    free (key);
    lb_selftest_rmtree (dir);
    free (dir);
    free (path);

    //  Joining redirect locations.
    char *joined = s_join_url ("https://a.example/x/y.csv", "/z.csv");
    assert (joined && strcmp (joined, "https://a.example/z.csv") == 0);
    free (joined);
    joined = s_join_url ("https://a.example/x/y.csv", "http://169.254.169.254/");
    assert (joined && strcmp (joined, "http://169.254.169.254/") == 0);
    free (joined);
    lb_config_destroy (&config);
}
