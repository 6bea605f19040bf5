/*  sc_store.c - runs and steps in PostgreSQL, mirrored into Redis. */
#include "sc_store.h"
#include "lb_log.h"
#include "lb_mem.h"
#include "lb_pg.h"
#include "lb_selftest.h"

#include <assert.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

static void s_err (char *err, size_t size, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));
static void
s_err (char *err, size_t size, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    vsnprintf (err, size, fmt, args);
    va_end (args);
}

//  "weekly-20261122-013000-a3f9": sortable, readable, unique enough with the
//  random tail (a collision is a primary-key error, never a silent merge).
static char *
s_run_id (const char *pipeline)
{
    time_t now = time (NULL);
    struct tm tm;
    gmtime_r (&now, &tm);
    uint16_t tail = 0;
    if (getrandom (&tail, sizeof tail, 0) != sizeof tail)
        tail = (uint16_t) (getpid () ^ now);
    return lb_xasprintf ("%s-%04d%02d%02d-%02d%02d%02d-%04x", pipeline, tm.tm_year + 1900,
                         tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec, tail);
}

static char *
s_kv_json (const pr_kv_t *kv)
{
    json_t *obj = json_object ();
    for (size_t i = 0; i < kv->count; i++)
        json_object_set_new (obj, kv->entries [i].key, json_string (kv->entries [i].s));
    char *text = json_dumps (obj, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref (obj);
    return text;
}

int
sc_store_enqueue (PGconn *db, sc_pipeline_t *pipeline, const pr_kv_t *params,
                  const char *trigger, int64_t slot, char **run_id, char *err, size_t err_size)
{
    char *id = s_run_id (sc_pipeline_name (pipeline));
    char *params_json = s_kv_json (params);
    char slot_text [32];
    snprintf (slot_text, sizeof slot_text, "%lld", (long long) slot);
    int rc = -1;
    //  Inside the caller's transaction (the daemon's cron slot) use a savepoint.
    bool nested = PQtransactionStatus (db) == PQTRANS_INTRANS;
    const char *begin = nested ? "savepoint sc_enqueue" : "begin";
    const char *undo = nested ? "rollback to savepoint sc_enqueue" : "rollback";
    const char *done = nested ? "release savepoint sc_enqueue" : "commit";
    if (lb_pg_exec (db, begin, 0, NULL)) {
        s_err (err, err_size, "cannot start a transaction: %s", PQerrorMessage (db));
        goto out;
    }
    const char *run_params [] = { id, sc_pipeline_name (pipeline), trigger,
                                  slot >= 0 ? slot_text : NULL, sc_overlap_name (sc_pipeline_overlap (pipeline)),
                                  params_json };
    char state [6];
    PGresult *res = lb_pg_query_state (db,
        "insert into sched_runs (id, pipeline, trigger, slot, overlap, params) "
        "values ($1, $2, $3, to_timestamp($4::double precision), $5, $6::jsonb) "
        "on conflict do nothing returning id", 6, run_params, state);
    if (!res) {
        s_err (err, err_size, "cannot record the run: %s", PQerrorMessage (db));
        lb_pg_exec (db, undo, 0, NULL);
        goto out;
    }
    bool inserted = PQntuples (res) == 1;
    PQclear (res);
    if (!inserted) {
        lb_pg_exec (db, undo, 0, NULL);
        rc = 1;
        goto out;
    }
    for (size_t i = 0; i < sc_pipeline_step_count (pipeline); i++) {
        const sc_step_def_t *step = sc_pipeline_step (pipeline, i);
        pr_kv_t resolved = { 0 };
        for (size_t k = 0; k < step->params.count; k++) {
            char why [256];
            char *text = sc_pipeline_expand (step->params.entries [k].s, params, why, sizeof why);
            assert (text);      //  checked when the pipeline was loaded
            pr_kv_set_str (&resolved, step->params.entries [k].key, text);
            free (text);
        }
        char *step_params = s_kv_json (&resolved);
        pr_kv_release (&resolved);
        size_t cap = 3, used = 0;
        for (size_t k = 0; k < step->needs_count; k++)
            cap += strlen (step->needs [k]) + 1;
        char *needs = lb_xmalloc (cap);
        needs [used++] = '{';
        for (size_t k = 0; k < step->needs_count; k++)
            used += (size_t) snprintf (needs + used, cap - used, "%s%s", k ? "," : "", step->needs [k]);
        snprintf (needs + used, cap - used, "}");
        char ord [32], timeout [32], attempts [16], ranks [16];
        snprintf (ord, sizeof ord, "%zu", i);
        snprintf (timeout, sizeof timeout, "%.3f", step->timeout);
        snprintf (attempts, sizeof attempts, "%d", step->attempts);
        snprintf (ranks, sizeof ranks, "%d", step->ranks > 1 ? step->ranks : 1);
        const char *step_row [] = { id, step->name, ord, step->service, needs, step_params, timeout,
                                    attempts, step->gpu ? "true" : "false", ranks };
        int failed = lb_pg_exec (db,
            "insert into sched_steps (run_id, name, ord, service, needs, params, timeout_s, attempts, needs_gpu, ranks) "
            "values ($1, $2, $3::int, $4, $5::text[], $6::jsonb, $7::double precision, $8::int, $9::boolean, $10::int)",
            10, step_row);
        free (needs);
        free (step_params);
        if (failed) {
            s_err (err, err_size, "cannot record step %s: %s", step->name, PQerrorMessage (db));
            lb_pg_exec (db, undo, 0, NULL);
            goto out;
        }
    }
    const char *log_row [] = { id, slot >= 0 ? "enqueued by cron" : "enqueued" };
    if (lb_pg_exec (db, "insert into sched_log (run_id, message) values ($1, $2)", 2, log_row)
    ||  lb_pg_exec (db, done, 0, NULL)) {
        s_err (err, err_size, "cannot commit the run: %s", PQerrorMessage (db));
        lb_pg_exec (db, undo, 0, NULL);
        goto out;
    }
    *run_id = id;
    id = NULL;
    rc = 0;
out:
    free (id);
    free (params_json);
    return rc;
}

void
sc_store_log (PGconn *db, const char *run_id, const char *step, const char *level, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    char *message = lb_xvasprintf (fmt, args);
    va_end (args);
    const char *row [] = { run_id, step, level, message };
    lb_pg_exec (db, "insert into sched_log (run_id, step, level, message) values ($1, $2, $3, $4)", 4, row);
    if (strcmp (level, "error") == 0)
        lb_log_warn ("run=%s step=%s %s", run_id, step ? step : "-", message);
    else
        lb_log_info ("run=%s step=%s %s", run_id, step ? step : "-", message);
    free (message);
}

int
sc_store_run_exists (PGconn *db, const char *run_id)
{
    const char *params [] = { run_id };
    PGresult *res = lb_pg_query (db, "select 1 from sched_runs where id = $1", 1, params);
    if (!res)
        return -1;
    int found = PQntuples (res) == 1;
    PQclear (res);
    return found;
}

int
sc_store_cancel (PGconn *db, const char *run_id, char *err, size_t err_size)
{
    const char *params [] = { run_id };
    PGresult *res = lb_pg_query (db,
        "with old as (select state from sched_runs where id = $1), "
        "upd as (update sched_runs set state = 'cancelled', finished_at = now(), error = 'cancelled by sched cancel' "
        "        where id = $1 and state in ('queued', 'running') returning id) "
        "select (select state from old), (select count(*) from upd)", 1, params);
    if (!res) {
        s_err (err, err_size, "cannot cancel: %s", PQerrorMessage (db));
        return -1;
    }
    int rc = atoi (PQgetvalue (res, 0, 1)) == 1 ? 0 : 1;
    if (rc)
        s_err (err, err_size, "run %s is already %s", run_id, PQgetvalue (res, 0, 0));
    PQclear (res);
    if (rc == 0)
        sc_store_log (db, run_id, NULL, "info", "cancelled by sched cancel");
    return rc;
}

int
sc_store_retry (PGconn *db, const char *run_id, char *err, size_t err_size)
{
    const char *params [] = { run_id };
    if (lb_pg_exec (db, "begin", 0, NULL))
        return -1;
    PGresult *res = lb_pg_query (db, "select state from sched_runs where id = $1 for update", 1, params);
    if (!res) {
        lb_pg_exec (db, "rollback", 0, NULL);
        return -1;
    }
    char *state = lb_xstrdup (PQgetvalue (res, 0, 0));
    PQclear (res);
    if (strcmp (state, "failed") && strcmp (state, "cancelled")) {
        s_err (err, err_size, "run %s is %s: only a failed or cancelled run can be retried", run_id, state);
        free (state);
        lb_pg_exec (db, "rollback", 0, NULL);
        return 1;
    }
    free (state);
    if (lb_pg_exec (db,
            "update sched_steps set state = 'waiting', job_id = null, error_code = null, error_message = null, "
            "percent = null, stage = null, message = null, finished_at = null "
            "where run_id = $1 and state in ('failed', 'cancelled')", 1, params)
    ||  lb_pg_exec (db,
            "update sched_runs set state = 'running', finished_at = null, error = null where id = $1", 1, params)
    ||  lb_pg_exec (db, "commit", 0, NULL)) {
        lb_pg_exec (db, "rollback", 0, NULL);
        return -1;
    }
    sc_store_log (db, run_id, NULL, "info", "retried by sched retry: failed and cancelled steps run again");
    return 0;
}

int
sc_store_requeued (PGconn *db, const char *job_id, char **run_id)
{
    const char *params [] = { job_id };
    if (lb_pg_exec (db, "begin", 0, NULL))
        return -1;
    PGresult *res = lb_pg_query (db,
        "update sched_steps set state = 'submitted', error_code = null, error_message = null, finished_at = null, "
        "message = 'requeued by sched requeue', broker_attempt = 0 "
        "where job_id = $1 and state = 'failed' returning run_id, name", 1, params);
    if (!res) {
        lb_pg_exec (db, "rollback", 0, NULL);
        return -1;
    }
    int rc = PQntuples (res) == 1 ? 1 : 0;
    if (rc) {
        *run_id = lb_xstrdup (PQgetvalue (res, 0, 0));
        char *step = lb_xstrdup (PQgetvalue (res, 0, 1));
        const char *run [] = { *run_id };
        lb_pg_exec (db, "update sched_runs set state = 'running', finished_at = null, error = null "
                        "where id = $1 and state = 'failed'", 1, run);
        sc_store_log (db, *run_id, step, "info", "job %s requeued by sched requeue: the step waits for it again", job_id);
        free (step);
    }
    PQclear (res);
    if (lb_pg_exec (db, "commit", 0, NULL)) {
        free (*run_id);
        *run_id = NULL;
        return -1;
    }
    return rc;
}

int
sc_store_pause (PGconn *db, const char *pipeline, bool paused)
{
    const char *params [] = { pipeline, paused ? "true" : "false" };
    return lb_pg_exec (db,
        "insert into sched_pipelines (name, paused) values ($1, $2::boolean) "
        "on conflict (name) do update set paused = excluded.paused, updated_at = now()", 2, params);
}

void
sc_store_publish (PGconn *db, sc_live_t *live, const char *run_id, int64_t ttl)
{
    const char *params [] = { run_id };
    PGresult *run = lb_pg_query (db,
        "select pipeline, state, trigger, coalesce(error, ''), "
        "  coalesce(to_char(created_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''), "
        "  coalesce(to_char(started_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''), "
        "  coalesce(to_char(finished_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''), "
        "  (select count(*) from sched_steps where run_id = $1), "
        "  (select count(*) from sched_steps where run_id = $1 and state = 'done'), "
        "  extract(epoch from created_at)::bigint "
        "from sched_runs where id = $1", 1, params);
    if (!run || PQntuples (run) != 1) {
        if (run)
            PQclear (run);
        return;
    }
    const char *state = PQgetvalue (run, 0, 1);
    bool finished = strcmp (state, "queued") && strcmp (state, "running");
    int64_t key_ttl = finished ? ttl : 0;
    char *key = lb_xasprintf ("pred:run:%s", run_id);
    const char *pairs [] = { "pipeline", PQgetvalue (run, 0, 0), "state", state,
        "trigger", PQgetvalue (run, 0, 2), "error", PQgetvalue (run, 0, 3),
        "created_at", PQgetvalue (run, 0, 4), "started_at", PQgetvalue (run, 0, 5),
        "finished_at", PQgetvalue (run, 0, 6), "steps", PQgetvalue (run, 0, 7),
        "steps_done", PQgetvalue (run, 0, 8), NULL };
    sc_live_hash (live, key, key_ttl, pairs);
    const char *zadd [] = { "ZADD", "pred:runs", PQgetvalue (run, 0, 9), run_id };
    sc_live_argv (live, 4, zadd);
    const char *zcap [] = { "ZREMRANGEBYRANK", "pred:runs", "0", "-1001" };
    sc_live_argv (live, 4, zcap);
    const char *active [] = { finished ? "SREM" : "SADD", "pred:runs:active", run_id };
    sc_live_argv (live, 3, active);
    PQclear (run);
    free (key);

    PGresult *steps = lb_pg_query (db,
        "select name, state, service, submission::text, broker_attempt::text, coalesce(job_id, ''), "
        "  coalesce(round(percent::numeric, 1)::text, ''), coalesce(stage, ''), coalesce(message, ''), "
        "  coalesce(error_code || ': ' || error_message, ''), "
        "  coalesce(to_char(started_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''), "
        "  coalesce(to_char(finished_at at time zone 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), ''), "
        "  array_to_string(needs, ',') "
        "from sched_steps where run_id = $1 order by ord", 1, params);
    if (!steps)
        return;
    for (int i = 0; i < PQntuples (steps); i++) {
        key = lb_xasprintf ("pred:run:%s:step:%s", run_id, PQgetvalue (steps, i, 0));
        const char *fields [] = { "state", PQgetvalue (steps, i, 1), "service", PQgetvalue (steps, i, 2),
            "submission", PQgetvalue (steps, i, 3), "attempt", PQgetvalue (steps, i, 4),
            "job", PQgetvalue (steps, i, 5), "percent", PQgetvalue (steps, i, 6),
            "stage", PQgetvalue (steps, i, 7), "message", PQgetvalue (steps, i, 8),
            "error", PQgetvalue (steps, i, 9), "started_at", PQgetvalue (steps, i, 10),
            "finished_at", PQgetvalue (steps, i, 11), "needs", PQgetvalue (steps, i, 12), NULL };
        sc_live_hash (live, key, key_ttl, fields);
        free (key);
    }
    PQclear (steps);
}

//  --------------------------------------------------------------------------
//  Selftest

void
sc_store_test (bool verbose)
{
    (void) verbose;
    const char *url = getenv ("DATABASE_URL");
    if (!url)
        return;
    lb_log_set_level (LB_LOG_ERROR);
    PGconn *db = lb_pg_connect (url, "sc_store_test");
    if (!db)
        return;
    PGresult *res = lb_pg_query (db, "select to_regclass('sched_runs') is not null", 0, NULL);
    bool migrated = res && strcmp (PQgetvalue (res, 0, 0), "t") == 0;
    if (res)
        PQclear (res);
    if (!migrated) {
        PQfinish (db);
        return;
    }
    char *dir = lb_selftest_tmpdir ("sc_store");
    char *path = lb_xasprintf ("%s/selftest.conf", dir);
    FILE *file = fopen (path, "w");
    assert (file);
    fputs ("[pipeline]\noverlap = queue\n[params]\nn = 1\n[step.a]\nservice = echo\nparam.n = ${n}\n"
           "[step.b]\nservice = sleep\nneeds = a\ntimeout = 5s\nattempts = 2\n", file);
    fclose (file);
    char err [512];
    sc_pipeline_t *pipeline = sc_pipeline_load (path, err, sizeof err);
    assert (pipeline);
    pr_kv_t params = { 0 };
    char *given [] = { "n=7" };
    assert (sc_pipeline_run_params (pipeline, given, 1, &params, err, sizeof err) == 0);

    char *run_id = NULL;
    assert (sc_store_enqueue (db, pipeline, &params, "manual", -1, &run_id, err, sizeof err) == 0);
    assert (run_id && strncmp (run_id, "selftest-", 9) == 0);
    assert (sc_store_run_exists (db, run_id) == 1);
    assert (sc_store_run_exists (db, "selftest-nope") == 0);
    const char *id_param [] = { run_id };
    res = lb_pg_query (db, "select name, params->>'n', needs::text, attempts, state from sched_steps "
                           "where run_id = $1 order by ord", 1, id_param);
    assert (res && PQntuples (res) == 2);
    assert (strcmp (PQgetvalue (res, 0, 1), "7") == 0);
    assert (strcmp (PQgetvalue (res, 1, 2), "{a}") == 0);
    assert (strcmp (PQgetvalue (res, 1, 3), "2") == 0);
    assert (strcmp (PQgetvalue (res, 1, 4), "waiting") == 0);
    PQclear (res);

    //  A cron slot gets one run, however often it is asked for.
    char *slot_run = NULL;
    int64_t slot = 1800000000 + (getpid () % 100000) * 60;
    assert (sc_store_enqueue (db, pipeline, &params, "cron", slot, &slot_run, err, sizeof err) == 0);
    char *again = NULL;
    assert (sc_store_enqueue (db, pipeline, &params, "cron", slot, &again, err, sizeof err) == 1);
    assert (!again);

    //  Cancel, then retry; retry of a running run and cancel of a finished one refuse.
    assert (sc_store_retry (db, run_id, err, sizeof err) == 1);
    assert (strstr (err, "only a failed or cancelled run can be retried"));
    assert (sc_store_cancel (db, run_id, err, sizeof err) == 0);
    assert (sc_store_cancel (db, run_id, err, sizeof err) == 1);
    assert (strstr (err, "is already cancelled"));
    assert (sc_store_retry (db, run_id, err, sizeof err) == 0);
    res = lb_pg_query (db, "select state from sched_runs where id = $1", 1, id_param);
    assert (res && strcmp (PQgetvalue (res, 0, 0), "running") == 0);
    PQclear (res);
    res = lb_pg_query (db, "select count(*) from sched_log where run_id = $1", 1, id_param);
    assert (res && atoi (PQgetvalue (res, 0, 0)) >= 3);
    PQclear (res);
    assert (sc_store_pause (db, "selftest", true) == 0);
    assert (sc_store_pause (db, "selftest", false) == 0);

    sc_live_t *live = sc_live_new (getenv ("REDIS_URL"));
    sc_store_publish (db, live, run_id, 60);
    sc_live_destroy (&live);

    const char *cleanup [] = { run_id, slot_run };
    lb_pg_exec (db, "delete from sched_runs where id in ($1, $2)", 2, cleanup);
    lb_pg_exec (db, "delete from sched_pipelines where name = 'selftest'", 0, NULL);
    free (run_id);
    free (slot_run);
    pr_kv_release (&params);
    sc_pipeline_destroy (&pipeline);
    PQfinish (db);
    lb_selftest_rmtree (dir);
    free (dir);
    free (path);
}
