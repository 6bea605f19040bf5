/*  sc_daemon.c - cron slots and run driving (sc_daemon.h). */
#include "sc_daemon.h"
#include "lb_clock.h"
#include "lb_log.h"
#include "lb_mem.h"
#include "lb_pg.h"
#include "pr_job.h"
#include "pr_rank.h"
#include "sc_broker.h"
#include "sc_live.h"
#include "sc_pipeline.h"
#include "sc_store.h"
#include "lb_selftest.h"

#include <assert.h>
#include <czmq.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_RELOAD_US     (10 * 1000000)

struct _sc_daemon_t {
    lb_config_t *config;
    char *id;                   //  host:pid
    PGconn *db;
    bool db_down;
    sc_broker_t *broker;
    bool broker_down;
    sc_live_t *live;
    zsock_t *events;            //  SUB to broker.events
    sc_pipeline_t **pipelines;
    size_t pipeline_count;
    int64_t reloaded_at;
    zhashx_t *checked;          //  "run/step" -> int64 monotonic µs of the last mmi check
    zhashx_t *reported;         //  pipeline definition errors already logged
    double worker_check_us;
    int64_t redis_ttl;
    bool wake;                  //  a job finished since the last tick: tick again at once
    bool broker_failed;         //  a broker request failed in this tick: no more this tick
};

//  A step row as the driver reads it.
typedef struct {
    char *name, *service, *state, *job_id, *params, *outputs;
    char **needs;
    size_t needs_count;
    double timeout, submitted_age;
    int attempts, submission;
    bool gpu;
    int ranks, group_try;       //  a training group: N jobs (pr_rank.h)
    char *rank_jobs;            //  JSON array of the titanic ids of ranks 1..N-1, "" before
} s_step_t;

//  Ranks 1..N-1 are submitted with this priority: rank 0 already holds a GPU
//  and waits for them (train.nccl_timeout), so they go before other work.
#define S_RANK_PRIORITY 100

sc_daemon_t *
sc_daemon_new (lb_config_t *config)
{
    sc_daemon_t *self = lb_xcalloc (1, sizeof *self);
    self->config = config;
    char host [128] = "localhost";
    gethostname (host, sizeof host - 1);
    self->id = lb_xasprintf ("%s:%d", host, (int) getpid ());
    self->broker = sc_broker_new (lb_config_str (config, "broker.endpoint"),
                                  lb_config_seconds (config, "scheduler.broker_timeout"));
    //  sched's main checked the keys before it made the daemon; a failure
    //  here (a file changed since) leaves the client plain, and the broker
    //  refuses it: say so.
    lb_curve_t *curve = NULL;
    char err [512];
    if (lb_curve_from_config (config, "scheduler", &curve, err, sizeof err))
        lb_log_error ("%s: talking to the broker without CURVE", err);
    sc_broker_set_curve (self->broker, curve);
    lb_curve_destroy (&curve);
    self->live = sc_live_new (lb_config_str (config, "redis.url"));
    self->events = zsock_new (ZMQ_SUB);
    assert (self->events);
    const char *events = lb_config_str (config, "broker.events");
    if (events && *events && zsock_connect (self->events, "%s", events) == 0) {
        zsock_set_subscribe (self->events, "progress");
        zsock_set_subscribe (self->events, "leased");
        zsock_set_subscribe (self->events, "done");
        zsock_set_subscribe (self->events, "dead");
    }
    else
        lb_log_warn ("cannot connect to the broker's events at %s: no live progress", events ? events : "(unset)");
    self->checked = zhashx_new ();
    zhashx_set_destructor (self->checked, (zhashx_destructor_fn *) zstr_free);
    self->reported = zhashx_new ();
    self->worker_check_us = lb_config_seconds (config, "scheduler.worker_check") * 1e6;
    self->redis_ttl = (int64_t) lb_config_seconds (config, "scheduler.redis_ttl");
    return self;
}

static void
s_pipelines_free (sc_daemon_t *self)
{
    for (size_t i = 0; i < self->pipeline_count; i++)
        sc_pipeline_destroy (&self->pipelines [i]);
    free (self->pipelines);
    self->pipelines = NULL;
    self->pipeline_count = 0;
}

void
sc_daemon_destroy (sc_daemon_t **self_p)
{
    assert (self_p);
    sc_daemon_t *self = *self_p;
    if (!self)
        return;
    if (self->db) {
        const char *params [] = { self->id };
        lb_pg_exec (self->db, "delete from sched_daemons where id = $1", 1, params);
        PQfinish (self->db);
    }
    s_pipelines_free (self);
    zhashx_destroy (&self->checked);
    zhashx_destroy (&self->reported);
    zsock_destroy (&self->events);
    sc_live_destroy (&self->live);
    sc_broker_destroy (&self->broker);
    free (self->id);
    free (self);
    *self_p = NULL;
}

static void
s_reload (sc_daemon_t *self)
{
    int64_t now = lb_clock_mono_us ();
    if (self->pipelines && now - self->reloaded_at < S_RELOAD_US)
        return;
    self->reloaded_at = now;
    const char *dir = lb_config_str (self->config, "scheduler.pipelines");
    char **names = sc_pipeline_names (dir);
    if (!names) {
        lb_log_error ("cannot read the pipelines directory %s (scheduler.pipelines)", dir);
        return;
    }
    s_pipelines_free (self);
    for (size_t i = 0; names [i]; i++) {
        char err [1024];
        char *path = lb_xasprintf ("%s/%s.conf", dir, names [i]);
        sc_pipeline_t *pipeline = sc_pipeline_load (path, err, sizeof err);
        free (path);
        if (!pipeline) {
            //  Once per distinct error, not at every reload.
            if (!zhashx_lookup (self->reported, err)) {
                lb_log_error ("pipeline %s is not scheduled: %s", names [i], err);
                zhashx_insert (self->reported, err, (void *) 1);
            }
            continue;
        }
        self->pipelines = lb_xrealloc (self->pipelines, (self->pipeline_count + 1) * sizeof (sc_pipeline_t *));
        self->pipelines [self->pipeline_count++] = pipeline;
    }
    sc_pipeline_names_free (&names);
}

static bool
s_db_ready (sc_daemon_t *self)
{
    if (self->db && PQstatus (self->db) == CONNECTION_OK)
        return true;
    if (self->db) {
        PQfinish (self->db);
        self->db = NULL;
    }
    //  During an outage the retries stay quiet (the outage was logged once):
    //  a ping first, the (logging) connect only when the server answers.
    const char *url = lb_config_str (self->config, "postgres.url");
    if (self->db_down) {
        const char *keys [] = { "dbname", "connect_timeout", NULL };
        const char *values [] = { url, "2", NULL };
        if (PQpingParams (keys, values, 1) != PQPING_OK)
            return false;
    }
    self->db = lb_pg_connect (url, "sched-daemon");
    if (self->db) {
        if (self->db_down)
            lb_log_info ("postgres is back: runs go on");
        self->db_down = false;
        return true;
    }
    if (!self->db_down)
        lb_log_error ("postgres unavailable: runs wait (nothing is lost); the daemon retries every tick");
    self->db_down = true;
    return false;
}

static void
s_broker_problem (sc_daemon_t *self)
{
    self->broker_failed = true;
    if (!self->broker_down)
        lb_log_warn ("broker unavailable: %s (runs wait; retrying)", sc_broker_error (self->broker));
    self->broker_down = true;
}

static void
s_broker_fine (sc_daemon_t *self)
{
    if (self->broker_down)
        lb_log_info ("broker is back");
    self->broker_down = false;
}

//  --------------------------------------------------------------------------
//  Cron

static void
s_cron_pipeline (sc_daemon_t *self, sc_pipeline_t *pipeline)
{
    sc_cron_t *cron = sc_pipeline_schedule (pipeline);
    if (!cron)
        return;
    const char *name = sc_pipeline_name (pipeline);
    const char *params [] = { name };
    if (lb_pg_exec (self->db, "begin", 0, NULL))
        return;
    PGresult *res = NULL;
    if (lb_pg_exec (self->db, "select pg_advisory_xact_lock(hashtext('sched.pipeline.' || $1))", 1, params)
    ||  lb_pg_exec (self->db, "insert into sched_pipelines (name) values ($1) on conflict do nothing", 1, params)
    ||  !(res = lb_pg_query (self->db,
            "select paused, coalesce(extract(epoch from last_slot)::bigint, -1), extract(epoch from now())::bigint "
            "from sched_pipelines where name = $1 for update", 1, params))) {
        lb_pg_exec (self->db, "rollback", 0, NULL);
        return;
    }
    bool paused = strcmp (PQgetvalue (res, 0, 0), "t") == 0;
    int64_t last = atoll (PQgetvalue (res, 0, 1));
    int64_t now = atoll (PQgetvalue (res, 0, 2));
    PQclear (res);
    if (last < 0) {
        //  First sight of this schedule: start counting from now, fire nothing old.
        char now_text [32];
        snprintf (now_text, sizeof now_text, "%lld", (long long) now);
        const char *set [] = { name, now_text };
        lb_pg_exec (self->db, "update sched_pipelines set last_slot = to_timestamp($2::bigint), updated_at = now() "
                              "where name = $1", 2, set);
        lb_pg_exec (self->db, "commit", 0, NULL);
        return;
    }
    int64_t slot = -1;
    int missed = 0;
    for (int64_t t = sc_cron_next (cron, last); t >= 0 && t <= now; t = sc_cron_next (cron, t)) {
        slot = t;
        if (++missed > 100000)
            break;
    }
    if (slot < 0) {
        lb_pg_exec (self->db, "commit", 0, NULL);
        return;
    }
    char slot_text [32];
    snprintf (slot_text, sizeof slot_text, "%lld", (long long) slot);
    char when [32];
    lb_clock_format_iso (slot * 1000000, when, sizeof when);
    const char *set [] = { name, slot_text };
    lb_pg_exec (self->db, "update sched_pipelines set last_slot = to_timestamp($2::bigint), updated_at = now() "
                          "where name = $1", 2, set);
    if (missed > 1)
        lb_log_warn ("pipeline=%s %d slots passed while no daemon ran; only the latest (%s) is considered",
                     name, missed, when);
    if (paused)
        lb_log_info ("pipeline=%s slot=%s passed over: the pipeline is paused", name, when);
    else
    if (now - slot > sc_pipeline_catchup (pipeline))
        lb_log_warn ("pipeline=%s slot=%s missed: %lld s late, past the catch-up deadline of %.0f s",
                     name, when, (long long) (now - slot), sc_pipeline_catchup (pipeline));
    else {
        sc_overlap_t overlap = sc_pipeline_overlap (pipeline);
        res = lb_pg_query (self->db, "select id from sched_runs where pipeline = $1 and state in ('queued', 'running')",
                           1, params);
        int active = res ? PQntuples (res) : 0;
        bool fire = true;
        if (active && overlap == SC_OVERLAP_SKIP) {
            lb_log_info ("pipeline=%s slot=%s skipped: run %s is still active (overlap = skip)", name, when,
                         PQgetvalue (res, 0, 0));
            fire = false;
        }
        if (fire) {
            pr_kv_t run_params = { 0 };
            char err [512];
            char *run_id = NULL;
            sc_pipeline_run_params (pipeline, NULL, 0, &run_params, err, sizeof err);
            //  The enqueue runs inside this transaction (a savepoint).
            int rc = sc_store_enqueue (self->db, pipeline, &run_params, "cron", slot, &run_id, err, sizeof err);
            pr_kv_release (&run_params);
            if (rc == 0) {
                lb_log_info ("pipeline=%s slot=%s fired run=%s", name, when, run_id);
                //  Replace: the runs active before this slot make way for it.
                for (int i = 0; active && overlap == SC_OVERLAP_REPLACE && i < active; i++) {
                    const char *cancel [] = { PQgetvalue (res, i, 0) };
                    lb_pg_exec (self->db, "update sched_runs set state = 'cancelled', finished_at = now(), "
                                          "error = 'replaced by a newer cron slot' where id = $1", 1, cancel);
                    sc_store_log (self->db, cancel [0], NULL, "info", "cancelled: replaced by slot %s (overlap = replace)", when);
                }
            }
            else
            if (rc == 1)
                lb_log_info ("pipeline=%s slot=%s already has a run (another daemon)", name, when);
            else
                lb_log_error ("pipeline=%s slot=%s: %s", name, when, err);
            free (run_id);
        }
        if (res)
            PQclear (res);
    }
    lb_pg_exec (self->db, "commit", 0, NULL);
}

//  --------------------------------------------------------------------------
//  Driving a run

static void
s_steps_free (s_step_t *steps, int count)
{
    for (int i = 0; i < count; i++) {
        free (steps [i].name);
        free (steps [i].service);
        free (steps [i].state);
        free (steps [i].job_id);
        free (steps [i].params);
        free (steps [i].outputs);
        free (steps [i].rank_jobs);
        for (size_t k = 0; k < steps [i].needs_count; k++)
            free (steps [i].needs [k]);
        free (steps [i].needs);
    }
    free (steps);
}

static s_step_t *
s_find (s_step_t *steps, int count, const char *name)
{
    for (int i = 0; i < count; i++)
        if (strcmp (steps [i].name, name) == 0)
            return &steps [i];
    return NULL;
}

//  Adds the outputs of every ancestor of step (as "STEP.OUTPUT") to params.
static void
s_add_ancestors (s_step_t *steps, int count, s_step_t *step, json_t *params, int depth)
{
    if (depth > count)
        return;
    for (size_t k = 0; k < step->needs_count; k++) {
        s_step_t *need = s_find (steps, count, step->needs [k]);
        if (!need)
            continue;
        json_t *outputs = json_loads (need->outputs, 0, NULL);
        const char *key;
        json_t *value;
        json_object_foreach (outputs, key, value) {
            char *name = lb_xasprintf ("%s.%s", need->name, key);
            json_object_set (params, name, value);
            free (name);
        }
        json_decref (outputs);
        s_add_ancestors (steps, count, need, params, depth + 1);
    }
}

//  The encoded job of step's submission `submission` (for a group: of rank
//  `rank`, with nccl_hex for ranks > 0). Caller frees; *size its size.
static uint8_t *
s_job_body (s_step_t *steps, int count, s_step_t *step, const char *run_id, int submission,
            int rank, const char *nccl_hex, size_t *size)
{
    char *group = lb_xasprintf ("%s/%s/%d", run_id, step->name, submission);
    char *envelope_id = rank ? lb_xasprintf ("%s/r%d", group, rank) : lb_xstrdup (group);
    char *service = step->gpu ? lb_xasprintf ("%s.gpu", step->service) : lb_xstrdup (step->service);
    pr_job_t *job = pr_job_new (envelope_id, run_id, step->name, service);
    job->attempt = (uint32_t) submission;
    job->needs_gpu = step->gpu;
    job->deadline_us = step->timeout > 0 ? lb_clock_wall_us () + (int64_t) (step->timeout * 1e6) : 0;
    json_t *params = json_loads (step->params, 0, NULL);
    if (!params)
        params = json_object ();
    s_add_ancestors (steps, count, step, params, 0);
    const char *key;
    json_t *value;
    json_object_foreach (params, key, value) {
        if (json_is_string (value))
            pr_kv_set_str (&job->params, key, json_string_value (value));
    }
    json_decref (params);
    if (step->ranks > 1) {
        char text [16];
        snprintf (text, sizeof text, "%d", step->ranks);
        pr_kv_set_str (&job->params, "ranks", text);
        snprintf (text, sizeof text, "%d", rank);
        pr_kv_set_str (&job->params, "rank", text);
        pr_kv_set_str (&job->params, "group", group);
        if (nccl_hex)
            pr_kv_set_str (&job->params, "nccl_id", nccl_hex);
    }
    uint8_t *body = pr_job_encode (job, size);
    pr_job_destroy (&job);
    free (service);
    free (envelope_id);
    free (group);
    return body;
}

//  Submits step (a group: its rank 0; group_try counts the group's
//  submissions since the step was last waiting); returns 0 and updates its
//  row, or -1 (broker unreachable).
static int
s_submit (sc_daemon_t *self, const char *run_id, s_step_t *steps, int count, s_step_t *step,
          int group_try)
{
    int submission = step->submission + 1;
    char *service = step->gpu ? lb_xasprintf ("%s.gpu", step->service) : lb_xstrdup (step->service);
    size_t size;
    uint8_t *body = s_job_body (steps, count, step, run_id, submission, 0, NULL, &size);
    char id [33];
    //  A group's jobs get one broker attempt each: a rank re-delivered alone
    //  would wait for a group that is gone; the daemon retries the group.
    int rc = sc_broker_submit (self->broker, service, step->ranks > 1 ? 1 : step->attempts, body, size, id);
    free (body);
    if (rc == 0) {
        s_broker_fine (self);
        char sub_text [16], try_text [16];
        snprintf (sub_text, sizeof sub_text, "%d", submission);
        snprintf (try_text, sizeof try_text, "%d", group_try);
        const char *row [] = { run_id, step->name, id, sub_text, try_text };
        lb_pg_exec (self->db,
            "update sched_steps set state = 'submitted', job_id = $3, submission = $4::int, broker_attempt = 0, "
            "submitted_at = now(), started_at = null, finished_at = null, percent = 0, stage = null, "
            "message = null, error_code = null, error_message = null, rank_jobs = null, group_try = $5::int "
            "where run_id = $1 and name = $2", 5, row);
        sc_store_log (self->db, run_id, step->name, "info", "submitted to %s (job %s, submission %d%s)", service, id,
                      submission, step->ranks > 1 ? ", rank 0 of a group" : "");
        step->submission = submission;
        step->group_try = group_try;
        free (step->rank_jobs);
        step->rank_jobs = lb_xstrdup ("");
        free (step->job_id);
        step->job_id = lb_xstrdup (id);
        free (step->state);
        step->state = lb_xstrdup ("submitted");
    }
    else
        s_broker_problem (self);
    free (service);
    return rc;
}

static char *
s_kv_json (const pr_kv_t *kv, bool reals)
{
    json_t *obj = json_object ();
    for (size_t i = 0; i < kv->count; i++)
        json_object_set_new (obj, kv->entries [i].key,
                             reals ? json_real (kv->entries [i].type == PR_KV_INT ? (double) kv->entries [i].i
                                                                                   : kv->entries [i].d)
                                   : json_string (kv->entries [i].s ? kv->entries [i].s : ""));
    char *text = json_dumps (obj, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref (obj);
    return text;
}

static void
s_finish_step (sc_daemon_t *self, const char *run_id, s_step_t *step, pr_result_t *result)
{
    char *outputs = s_kv_json (&result->outputs, false);
    char *metrics = s_kv_json (&result->metrics, true);
    bool done = result->status == PR_STATUS_DONE;
    const char *row [] = { run_id, step->name, done ? "done" : "failed", outputs, metrics,
                           done ? NULL : result->error_code, done ? NULL : result->error_message };
    lb_pg_exec (self->db,
        "update sched_steps set state = $3, outputs = $4::jsonb, metrics = $5::jsonb, error_code = $6, "
        "error_message = $7, finished_at = now(), percent = case when $3 = 'done' then 100 else percent end "
        "where run_id = $1 and name = $2", 7, row);
    if (done)
        sc_store_log (self->db, run_id, step->name, "info", "done: outputs %s metrics %s", outputs, metrics);
    else
        sc_store_log (self->db, run_id, step->name, "error", "failed: %s: %s", result->error_code, result->error_message);
    free (step->state);
    step->state = lb_xstrdup (done ? "done" : "failed");
    free (step->outputs);
    step->outputs = outputs;
    free (metrics);
}

static void
s_fail_step (sc_daemon_t *self, const char *run_id, s_step_t *step, const char *code, const char *message)
{
    const char *row [] = { run_id, step->name, code, message };
    lb_pg_exec (self->db, "update sched_steps set state = 'failed', error_code = $3, error_message = $4, "
                          "finished_at = now() where run_id = $1 and name = $2", 4, row);
    sc_store_log (self->db, run_id, step->name, "error", "failed: %s: %s", code, message);
    free (step->state);
    step->state = lb_xstrdup ("failed");
}

//  Looks at a pending job with mmi.job (and mmi.service when queued), now and
//  then, to say in the step's message why it waits.
static void
s_check_pending (sc_daemon_t *self, const char *run_id, s_step_t *step)
{
    char *key = lb_xasprintf ("%s/%s", run_id, step->name);
    char *last = zhashx_lookup (self->checked, key);
    int64_t now = lb_clock_mono_us ();
    if (last && now - atoll (last) < self->worker_check_us) {
        free (key);
        return;
    }
    char stamp [32];
    snprintf (stamp, sizeof stamp, "%lld", (long long) now);
    zhashx_update (self->checked, key, strdup (stamp));
    free (key);
    zframe_t *data = NULL;
    int code = sc_broker_mmi (self->broker, "mmi.job", step->job_id, &data);
    if (code != 200 || !data) {
        zframe_destroy (&data);
        return;
    }
    json_t *info = sc_broker_json (zframe_data (data), zframe_size (data));
    zframe_destroy (&data);
    if (!info)
        return;
    const char *state = json_string_value (json_object_get (info, "state"));
    json_int_t attempts = json_integer_value (json_object_get (info, "attempts"));
    const char *last_error = json_string_value (json_object_get (info, "last_error"));
    char *message = NULL;
    const char *new_state = NULL;
    if (state && strcmp (state, "leased") == 0)
        new_state = "running";
    else
    if (state && (strcmp (state, "queued") == 0 || strcmp (state, "delayed") == 0)) {
        char *service = step->gpu ? lb_xasprintf ("%s.gpu", step->service) : lb_xstrdup (step->service);
        int present = strcmp (state, "queued") == 0 ? sc_broker_service (self->broker, service) : 1;
        if (present == 0)
            message = lb_xasprintf ("no worker for service '%s' is running", service);
        else
        if (attempts > 0 && last_error)
            message = lb_xasprintf ("attempt %lld failed (%s); %s", (long long) attempts, last_error,
                                    strcmp (state, "delayed") == 0 ? "retrying after a backoff" : "queued again");
        free (service);
    }
    char attempts_text [16];
    snprintf (attempts_text, sizeof attempts_text, "%lld", (long long) attempts);
    const char *row [] = { run_id, step->name, attempts_text, message, new_state };
    lb_pg_exec (self->db,
        "update sched_steps set broker_attempt = $3::int, "
        "message = case when $4::text is not null then $4 when message like 'no worker for service%' then null else message end, "
        "stage = case when $4::text like 'no worker%' then 'no-worker' when stage = 'no-worker' then null else stage end, "
        "state = coalesce($5, state), started_at = case when $5::text is not null then coalesce(started_at, now()) else started_at end "
        "where run_id = $1 and name = $2 and state in ('submitted', 'running')", 5, row);
    free (message);
    json_decref (info);
}

//  --------------------------------------------------------------------------
//  Training groups: a step with ranks = N runs as N jobs (pr_rank.h)

static void
s_close_later (char ***to_close, size_t *close_count, const char *id)
{
    *to_close = lb_xrealloc (*to_close, (*close_count + 1) * sizeof (char *));
    (*to_close) [(*close_count)++] = lb_xstrdup (id);
}

//  Adds the titanic ids of ranks 1..N-1 (when submitted) to the close list.
static void
s_close_ranks (char ***to_close, size_t *close_count, const s_step_t *step)
{
    json_t *ids = step->rank_jobs && *step->rank_jobs ? json_loads (step->rank_jobs, 0, NULL) : NULL;
    for (size_t r = 0; r < json_array_size (ids); r++)
        if (json_string_value (json_array_get (ids, r)))
            s_close_later (to_close, close_count, json_string_value (json_array_get (ids, r)));
    json_decref (ids);
}

//  Reads rank 0's NCCL id from its last progress (mmi.job keeps it: no
//  event can be missed). Returns 1 with hex filled, 0 while rank 0 has not
//  handed one out, 2 when what it handed out is malformed (why filled), -1
//  when the broker is away.
static int
s_group_id (sc_daemon_t *self, s_step_t *step, char hex [2 * PR_RANK_ID_BYTES + 1], char *why,
            size_t why_size)
{
    zframe_t *data = NULL;
    int code = sc_broker_mmi (self->broker, "mmi.job", step->job_id, &data);
    if (code < 0)
        return -1;
    int rc = 0;
    uint8_t *inner = NULL;
    size_t size = 0;
    if (code == 200 && data
    &&  sc_broker_field_bin (zframe_data (data), zframe_size (data), "progress", &inner, &size) == 0) {
        char err [256];
        pr_progress_t *progress = pr_progress_decode (inner, size, err, sizeof err);
        const char *text = progress ? pr_kv_str (&progress->outputs, "nccl_id") : NULL;
        if (text) {
            uint8_t id [PR_RANK_ID_BYTES];
            if (pr_rank_id_parse (text, id, err, sizeof err) == 0) {
                pr_rank_id_hex (id, hex);
                rc = 1;
            }
            else {
                snprintf (why, why_size, "rank 0 handed out a malformed NCCL id: %s", err);
                rc = 2;
            }
        }
        pr_progress_destroy (&progress);
    }
    free (inner);
    zframe_destroy (&data);
    return rc;
}

//  Submits ranks 1..N-1 with rank 0's id. 0, or -1 (broker away; what was
//  submitted is closed again and the next tick tries anew).
static int
s_fan_out (sc_daemon_t *self, const char *run_id, s_step_t *steps, int count, s_step_t *step,
           const char *hex, char ***to_close, size_t *close_count)
{
    char *service = lb_xasprintf ("%s.gpu", step->service);
    json_t *ids = json_array ();
    int rc = 0;
    for (int r = 1; r < step->ranks && rc == 0; r++) {
        size_t size;
        uint8_t *body = s_job_body (steps, count, step, run_id, step->submission, r, hex, &size);
        char id [33];
        rc = sc_broker_submit_priority (self->broker, service, 1, S_RANK_PRIORITY, body, size, id);
        free (body);
        if (rc == 0)
            json_array_append_new (ids, json_string (id));
    }
    if (rc == 0) {
        char *text = json_dumps (ids, JSON_COMPACT);
        const char *row [] = { run_id, step->name, text };
        lb_pg_exec (self->db, "update sched_steps set rank_jobs = $3::jsonb where run_id = $1 and name = $2",
                    3, row);
        sc_store_log (self->db, run_id, step->name, "info",
                      "rank 0 handed out its NCCL id: submitted ranks 1..%d to %s (jobs %s)",
                      step->ranks - 1, service, text);
        free (step->rank_jobs);
        step->rank_jobs = text;
    }
    else {
        s_broker_problem (self);
        for (size_t r = 0; r < json_array_size (ids); r++)
            s_close_later (to_close, close_count, json_string_value (json_array_get (ids, r)));
    }
    json_decref (ids);
    free (service);
    return rc;
}

//  Reads the result of one of the group's jobs: 0 done (or pending: *pending
//  set), 1 failed (what in failure, "rank R of N ..."), -1 broker away.
//  On done with keep, *kept is rank 0's result (caller destroys).
static int
s_group_member (sc_daemon_t *self, const s_step_t *step, int rank, const char *id, bool *pending,
                pr_result_t **kept, char **failure)
{
    pr_result_t *result = NULL;
    int rc = sc_broker_reply (self->broker, id, &result);
    if (rc < 0)
        return -1;
    if (rc == 1) {
        *pending = true;
        return 0;
    }
    if (rc == 2) {
        *failure = lb_xasprintf ("rank %d of %d: the broker does not know its job %s", rank, step->ranks, id);
        return 1;
    }
    if (result->status != PR_STATUS_DONE) {
        *failure = lb_xasprintf ("rank %d of %d failed: %s: %s", rank, step->ranks, result->error_code,
                                 result->error_message);
        pr_result_destroy (&result);
        return 1;
    }
    if (kept)
        *kept = result;
    else
        pr_result_destroy (&result);
    return 0;
}

//  Drives a group step: fan-out once rank 0 has its id, gather every rank's
//  result, retry the whole group when one rank fails. The step is done when
//  every rank is done (outputs and metrics: rank 0's). Returns 0, or -1 when
//  the broker is away.
static int
s_drive_group (sc_daemon_t *self, const char *run_id, s_step_t *steps, int count, s_step_t *step,
               char ***to_close, size_t *close_count)
{
    bool pending = false;
    pr_result_t *first = NULL;
    char *failure = NULL;
    int rc = s_group_member (self, step, 0, step->job_id, &pending, &first, &failure);
    if (rc < 0)
        goto away;
    json_t *ids = *step->rank_jobs ? json_loads (step->rank_jobs, 0, NULL) : NULL;
    if (!failure && !ids) {
        if (!pending)
            failure = lb_xasprintf ("rank 0 of %d finished before its group formed", step->ranks);
        else {
            char hex [2 * PR_RANK_ID_BYTES + 1], why [512];
            int got = s_group_id (self, step, hex, why, sizeof why);
            if (got < 0
            ||  (got == 1 && s_fan_out (self, run_id, steps, count, step, hex, to_close, close_count))) {
                pr_result_destroy (&first);
                goto away;
            }
            if (got == 2)
                failure = lb_xstrdup (why);
            ids = *step->rank_jobs ? json_loads (step->rank_jobs, 0, NULL) : NULL;
            pending = true;     //  ranks 1..N-1 were just submitted, or are yet to be
        }
    }
    else
    for (size_t r = 0; !failure && r < json_array_size (ids); r++) {
        const char *id = json_string_value (json_array_get (ids, r));
        if (!id)
            failure = lb_xasprintf ("rank %zu of %d: no job id recorded", r + 1, step->ranks);
        else
        if (s_group_member (self, step, (int) r + 1, id, &pending, NULL, &failure) < 0) {
            json_decref (ids);
            pr_result_destroy (&first);
            goto away;
        }
    }
    json_decref (ids);
    s_broker_fine (self);
    if (failure) {
        //  One rank down takes the group down: the others would only wait
        //  for it until their NCCL timeout. Cancel them, submit a new group.
        s_close_later (to_close, close_count, step->job_id);
        s_close_ranks (to_close, close_count, step);
        if (step->group_try < step->attempts) {
            sc_store_log (self->db, run_id, step->name, "error", "group failed (%s); submitting the group again "
                          "(try %d of %d)", failure, step->group_try + 1, step->attempts);
            if (s_submit (self, run_id, steps, count, step, step->group_try + 1) == 0) {
                const char *row [] = { run_id, step->name, failure };
                lb_pg_exec (self->db, "update sched_steps set message = 'previous group failed: ' || $3 "
                                      "where run_id = $1 and name = $2", 3, row);
            }
            else {
                //  Not resubmitted (broker away): the step waits to be submitted anew.
                const char *row [] = { run_id, step->name };
                lb_pg_exec (self->db, "update sched_steps set state = 'waiting', job_id = null, rank_jobs = null "
                                      "where run_id = $1 and name = $2", 2, row);
                free (step->state);
                step->state = lb_xstrdup ("waiting");
            }
        }
        else {
            char *why = lb_xasprintf ("%s (group tried %d time%s)", failure, step->group_try,
                                      step->group_try == 1 ? "" : "s");
            s_fail_step (self, run_id, step, "rank_failed", why);
            free (why);
        }
    }
    else
    if (!pending && first) {
        s_finish_step (self, run_id, step, first);
        s_close_later (to_close, close_count, step->job_id);
        s_close_ranks (to_close, close_count, step);
    }
    else
    if (step->timeout > 0 && step->submitted_age > step->timeout) {
        char *why = lb_xasprintf ("no result from every rank within the step's timeout of %.0f s", step->timeout);
        s_fail_step (self, run_id, step, "timeout", why);
        free (why);
        s_close_later (to_close, close_count, step->job_id);
        s_close_ranks (to_close, close_count, step);
    }
    else
        s_check_pending (self, run_id, step);
    free (failure);
    pr_result_destroy (&first);
    return 0;
away:
    free (failure);
    s_broker_problem (self);
    return -1;
}

//  Drives one run under its row lock. Returns true when something changed.
static void
s_drive (sc_daemon_t *self, const char *run_id)
{
    const char *id_param [] = { run_id };
    if (lb_pg_exec (self->db, "begin", 0, NULL))
        return;
    PGresult *res = lb_pg_query (self->db,
        "select r.state, r.pipeline, r.trigger, r.overlap, coalesce(p.paused, false) "
        "from sched_runs r left join sched_pipelines p on p.name = r.pipeline "
        "where r.id = $1 for update of r skip locked", 1, id_param);
    if (!res || PQntuples (res) == 0) {
        if (res)
            PQclear (res);
        lb_pg_exec (self->db, "rollback", 0, NULL);
        return;                 //  another daemon holds it, or it is gone
    }
    char *state = lb_xstrdup (PQgetvalue (res, 0, 0));
    char *pipeline = lb_xstrdup (PQgetvalue (res, 0, 1));
    bool cron_queue = strcmp (PQgetvalue (res, 0, 2), "cron") == 0 && strcmp (PQgetvalue (res, 0, 3), "queue") == 0;
    bool paused = strcmp (PQgetvalue (res, 0, 4), "t") == 0;
    PQclear (res);
    char **to_close = NULL;
    size_t close_count = 0;
    s_step_t *steps = NULL;
    int count = 0;

    if (strcmp (state, "queued") == 0) {
        bool wait = paused;
        if (!wait && cron_queue) {
            const char *p [] = { pipeline, run_id };
            res = lb_pg_query (self->db, "select 1 from sched_runs where pipeline = $1 and state = 'running' and id <> $2",
                               2, p);
            wait = !res || PQntuples (res) > 0;
            if (res)
                PQclear (res);
        }
        if (wait)
            goto commit;
        lb_pg_exec (self->db, "update sched_runs set state = 'running', started_at = coalesce(started_at, now()) "
                              "where id = $1", 1, id_param);
        sc_store_log (self->db, run_id, NULL, "info", "started");
        free (state);
        state = lb_xstrdup ("running");
    }
    res = lb_pg_query (self->db,
        "select name, service, array_to_json(needs)::text, params::text, timeout_s, attempts, needs_gpu, state, "
        "  submission, coalesce(job_id, ''), coalesce(extract(epoch from now() - submitted_at), 0), outputs::text, "
        "  ranks, group_try, coalesce(rank_jobs::text, '') "
        "from sched_steps where run_id = $1 order by ord", 1, id_param);
    if (!res)
        goto rollback;
    count = PQntuples (res);
    steps = lb_xcalloc ((size_t) count + 1, sizeof *steps);
    for (int i = 0; i < count; i++) {
        s_step_t *step = &steps [i];
        step->name = lb_xstrdup (PQgetvalue (res, i, 0));
        step->service = lb_xstrdup (PQgetvalue (res, i, 1));
        json_t *needs = json_loads (PQgetvalue (res, i, 2), 0, NULL);
        step->needs_count = json_array_size (needs);
        step->needs = lb_xcalloc (step->needs_count + 1, sizeof (char *));
        for (size_t k = 0; k < step->needs_count; k++)
            step->needs [k] = lb_xstrdup (json_string_value (json_array_get (needs, k)));
        json_decref (needs);
        step->params = lb_xstrdup (PQgetvalue (res, i, 3));
        step->timeout = atof (PQgetvalue (res, i, 4));
        step->attempts = atoi (PQgetvalue (res, i, 5));
        step->gpu = strcmp (PQgetvalue (res, i, 6), "t") == 0;
        step->state = lb_xstrdup (PQgetvalue (res, i, 7));
        step->submission = atoi (PQgetvalue (res, i, 8));
        step->job_id = lb_xstrdup (PQgetvalue (res, i, 9));
        step->submitted_age = atof (PQgetvalue (res, i, 10));
        step->outputs = lb_xstrdup (PQgetvalue (res, i, 11));
        step->ranks = atoi (PQgetvalue (res, i, 12));
        step->group_try = atoi (PQgetvalue (res, i, 13));
        step->rank_jobs = lb_xstrdup (PQgetvalue (res, i, 14));
    }
    PQclear (res);

    bool cancelled = strcmp (state, "cancelled") == 0;
    for (int i = 0; i < count; i++) {
        s_step_t *step = &steps [i];
        bool in_flight = strcmp (step->state, "submitted") == 0 || strcmp (step->state, "running") == 0;
        if (!in_flight)
            continue;
        if (cancelled) {
            const char *row [] = { run_id, step->name };
            lb_pg_exec (self->db, "update sched_steps set state = 'cancelled', finished_at = now() "
                                  "where run_id = $1 and name = $2", 2, row);
            free (step->state);
            step->state = lb_xstrdup ("cancelled");
            s_close_later (&to_close, &close_count, step->job_id);
            s_close_ranks (&to_close, &close_count, step);
            continue;
        }
        if (self->broker_failed)
            break;              //  one timeout per tick is enough
        if (step->ranks > 1) {
            if (s_drive_group (self, run_id, steps, count, step, &to_close, &close_count))
                break;          //  the broker is away: try again next tick
            continue;
        }
        pr_result_t *result = NULL;
        int rc = sc_broker_reply (self->broker, step->job_id, &result);
        if (rc < 0) {
            s_broker_problem (self);
            break;              //  the broker is away: try again next tick
        }
        s_broker_fine (self);
        if (rc == 0) {
            //  A done job is closed (the broker forgets it); a dead one stays in
            //  the broker's dead letters, where `sched requeue JOB` can revive it.
            bool done = result->status == PR_STATUS_DONE;
            s_finish_step (self, run_id, step, result);
            pr_result_destroy (&result);
            if (done) {
                to_close = lb_xrealloc (to_close, (close_count + 1) * sizeof (char *));
                to_close [close_count++] = lb_xstrdup (step->job_id);
            }
        }
        else
        if (rc == 2) {
            //  The broker does not know the job (its journal was lost): submit again.
            const char *row [] = { run_id, step->name };
            lb_pg_exec (self->db, "update sched_steps set state = 'waiting', job_id = null "
                                  "where run_id = $1 and name = $2", 2, row);
            sc_store_log (self->db, run_id, step->name, "error", "the broker does not know job %s: submitting again",
                          step->job_id);
            free (step->state);
            step->state = lb_xstrdup ("waiting");
        }
        else
        if (step->timeout > 0 && step->submitted_age > step->timeout) {
            char *why = lb_xasprintf ("no result within the step's timeout of %.0f s", step->timeout);
            s_fail_step (self, run_id, step, "timeout", why);
            free (why);
            to_close = lb_xrealloc (to_close, (close_count + 1) * sizeof (char *));
            to_close [close_count++] = lb_xstrdup (step->job_id);
        }
        else
            s_check_pending (self, run_id, step);
    }

    int in_flight = 0, failed = 0, done = 0;
    for (int i = 0; i < count; i++) {
        in_flight += strcmp (steps [i].state, "submitted") == 0 || strcmp (steps [i].state, "running") == 0;
        failed += strcmp (steps [i].state, "failed") == 0;
        done += strcmp (steps [i].state, "done") == 0;
    }
    if (strcmp (state, "running") == 0 && failed == 0 && !self->broker_failed)
        for (int i = 0; i < count; i++) {
            s_step_t *step = &steps [i];
            if (strcmp (step->state, "waiting"))
                continue;
            bool ready = true;
            for (size_t k = 0; k < step->needs_count && ready; k++) {
                s_step_t *need = s_find (steps, count, step->needs [k]);
                ready = need && strcmp (need->state, "done") == 0;
            }
            if (!ready)
                continue;
            if (s_submit (self, run_id, steps, count, step, 1))
                break;
            in_flight++;
        }
    if (strcmp (state, "running") == 0 && failed > 0 && in_flight == 0) {
        const char *row [] = { run_id };
        lb_pg_exec (self->db,
            "update sched_runs set state = 'failed', finished_at = now(), error = ("
            "  select string_agg('step ' || name || ' failed: ' || coalesce(error_code, '?') || ': ' || "
            "                    coalesce(error_message, ''), '; ' order by ord) "
            "  from sched_steps where run_id = $1 and state = 'failed') where id = $1", 1, row);
        sc_store_log (self->db, run_id, NULL, "error", "failed (%d step%s failed)", failed, failed == 1 ? "" : "s");
    }
    if (strcmp (state, "running") == 0 && done == count) {
        lb_pg_exec (self->db, "update sched_runs set state = 'succeeded', finished_at = now() where id = $1", 1, id_param);
        sc_store_log (self->db, run_id, NULL, "info", "succeeded");
    }
    if (cancelled)
        lb_pg_exec (self->db, "update sched_steps set state = 'cancelled' where run_id = $1 and state = 'waiting'",
                    1, id_param);
commit:
    if (lb_pg_exec (self->db, "commit", 0, NULL) == 0) {
        for (size_t i = 0; i < close_count; i++)
            sc_broker_close (self->broker, to_close [i]);
        sc_store_publish (self->db, self->live, run_id, self->redis_ttl);
    }
    goto out;
rollback:
    lb_pg_exec (self->db, "rollback", 0, NULL);
out:
    for (size_t i = 0; i < close_count; i++)
        free (to_close [i]);
    free (to_close);
    s_steps_free (steps, count);
    free (state);
    free (pipeline);
}

//  --------------------------------------------------------------------------
//  Broker events: progress and leases

//  Reads the broker's events. Returns true when a job finished (done or
//  dead): the daemon then ticks at once instead of waiting for the next tick.
static bool
s_events (sc_daemon_t *self)
{
    bool wake = false;
    for (int budget = 0; budget < 1000; budget++) {
        zmsg_t *msg = zmsg_recv_nowait (self->events);
        if (!msg)
            return wake;
        char *topic = zmsg_popstr (msg);
        if (topic && (strcmp (topic, "done") == 0 || strcmp (topic, "dead") == 0)) {
            wake = true;
            self->wake = true;
        }
        zframe_t *body = zmsg_pop (msg);
        if (topic && body && strcmp (topic, "progress") == 0) {
            uint8_t *inner = NULL;
            size_t size = 0;
            char why [256];
            pr_progress_t *progress = NULL;
            if (sc_broker_field_bin (zframe_data (body), zframe_size (body), "body", &inner, &size) == 0)
                progress = pr_progress_decode (inner, size, why, sizeof why);
            free (inner);
            //  The envelope id is RUN/STEP/SUBMISSION.
            char *copy = progress ? lb_xstrdup (progress->id) : NULL;
            char *first = copy ? strchr (copy, '/') : NULL;
            char *second = first ? strchr (first + 1, '/') : NULL;
            if (second) {
                *first = 0;
                *second = 0;
                char percent [32];
                snprintf (percent, sizeof percent, "%.3f", progress->percent);
                const char *row [] = { copy, first + 1, second + 1, percent, progress->stage, progress->message };
                lb_pg_exec (self->db,
                    "update sched_steps set percent = $4::double precision, stage = $5, message = $6, "
                    "state = 'running', started_at = coalesce(started_at, now()) "
                    "where run_id = $1 and name = $2 and submission::text = $3 and state in ('submitted', 'running')",
                    6, row);
                char *key = lb_xasprintf ("pred:run:%s:step:%s", copy, first + 1);
                const char *pairs [] = { "state", "running", "percent", percent, "stage", progress->stage,
                                         "message", progress->message, NULL };
                sc_live_hash (self->live, key, -1, pairs);
                free (key);
            }
            free (copy);
            pr_progress_destroy (&progress);
        }
        else
        if (topic && body && strcmp (topic, "leased") == 0) {
            json_t *event = sc_broker_json (zframe_data (body), zframe_size (body));
            const char *id = json_string_value (json_object_get (event, "id"));
            if (id) {
                char attempt [16];
                snprintf (attempt, sizeof attempt, "%lld", (long long) json_integer_value (json_object_get (event, "attempt")));
                const char *row [] = { id, attempt };
                lb_pg_exec (self->db,
                    "update sched_steps set state = 'running', broker_attempt = greatest(broker_attempt, $2::int), "
                    "started_at = coalesce(started_at, now()), "
                    "message = case when message like 'no worker for service%' then null else message end, "
                    "stage = case when stage = 'no-worker' then null else stage end "
                    "where job_id = $1 and state in ('submitted', 'running')", 2, row);
            }
            json_decref (event);
        }
        free (topic);
        zframe_destroy (&body);
        zmsg_destroy (&msg);
    }
    return wake;
}

//  --------------------------------------------------------------------------

int
sc_daemon_tick (sc_daemon_t *self)
{
    assert (self);
    if (!s_db_ready (self))
        return -1;
    const char *beat [] = { self->id };
    if (lb_pg_exec (self->db, "insert into sched_daemons (id) values ($1) "
                              "on conflict (id) do update set beat_at = now()", 1, beat)) {
        s_db_ready (self);
        return -1;
    }
    self->broker_failed = false;
    s_reload (self);
    for (size_t i = 0; i < self->pipeline_count; i++)
        s_cron_pipeline (self, self->pipelines [i]);
    PGresult *res = lb_pg_query (self->db,
        "select r.id from sched_runs r where r.state in ('queued', 'running') "
        "or (r.state = 'cancelled' and exists (select 1 from sched_steps s where s.run_id = r.id "
        "    and s.state in ('submitted', 'running', 'waiting'))) order by r.created_at", 0, NULL);
    if (res) {
        int rows = PQntuples (res);
        char **ids = lb_xcalloc ((size_t) rows + 1, sizeof (char *));
        for (int i = 0; i < rows; i++)
            ids [i] = lb_xstrdup (PQgetvalue (res, i, 0));
        PQclear (res);
        for (int i = 0; i < rows; i++) {
            s_drive (self, ids [i]);
            free (ids [i]);
        }
        free (ids);
    }
    s_events (self);
    if (sc_live_recovered (self->live)) {
        //  Redis (re)connected: rewrite the recent runs it may have lost or missed.
        res = lb_pg_query (self->db, "select id from sched_runs order by created_at desc limit 100", 0, NULL);
        for (int i = 0; res && i < PQntuples (res); i++)
            sc_store_publish (self->db, self->live, PQgetvalue (res, i, 0), self->redis_ttl);
        if (res)
            PQclear (res);
    }
    return 0;
}

int
sc_daemon_run (sc_daemon_t *self, volatile const int *stop)
{
    int64_t tick_us = (int64_t) (lb_config_seconds (self->config, "scheduler.tick") * 1e6);
    lb_log_info ("daemon started id=%s pipelines=%s broker=%s", self->id,
                 lb_config_str (self->config, "scheduler.pipelines"), lb_config_str (self->config, "broker.endpoint"));
    while (!*stop) {
        int64_t start = lb_clock_mono_us ();
        self->wake = false;
        sc_daemon_tick (self);
        if (self->wake) {
            zclock_sleep (20);          //  the broker answers titanic.reply once its journal is synced
            continue;
        }
        int64_t left = tick_us - (lb_clock_mono_us () - start);
        //  Wait for the next tick, reading broker events meanwhile; a finished
        //  job ends the wait (its dependents are submitted without a tick's delay).
        while (left > 0 && !*stop) {
            zmq_pollitem_t item = { zsock_resolve (self->events), 0, ZMQ_POLLIN, 0 };
            int64_t slice = left > 100000 ? 100000 : left;
            if (zmq_poll (&item, 1, (long) (slice / 1000)) > 0 && self->db && PQstatus (self->db) == CONNECTION_OK
            &&  s_events (self)) {
                zclock_sleep (20);      //  the broker answers titanic.reply once its journal is synced
                break;
            }
            left = tick_us - (lb_clock_mono_us () - start);
        }
    }
    lb_log_info ("daemon stopped id=%s", self->id);
    return 0;
}

//  --------------------------------------------------------------------------
//  Selftest (needs DATABASE_URL with migrations; the broker is unreachable on
//  purpose: the scenarios in tests/t_sched_*.sh drive it with a real one).

void
sc_daemon_test (bool verbose)
{
    const char *url = getenv ("DATABASE_URL");
    if (!url)
        return;
    if (!verbose)
        lb_log_set_level (LB_LOG_ERROR);
    PGconn *db = lb_pg_connect (url, "sc_daemon_test");
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
    char *dir = lb_selftest_tmpdir ("sc_daemon");
    char *path = lb_xasprintf ("%s/dtest.conf", dir);
    FILE *file = fopen (path, "w");
    assert (file);
    fputs ("[pipeline]\nschedule = 0 0 1 1 *\n[step.a]\nservice = echo\n[step.b]\nservice = echo\nneeds = a\n", file);
    fclose (file);
    lb_config_t *config = lb_config_new (NULL, 0);
    assert (lb_config_set (config, "scheduler.pipelines", dir, "test") == 0);
    assert (lb_config_set (config, "postgres.url", url, "test") == 0);
    assert (lb_config_set (config, "broker.endpoint", "tcp://127.0.0.1:1", "test") == 0);
    assert (lb_config_set (config, "broker.events", "", "test") == 0);
    assert (lb_config_set (config, "scheduler.broker_timeout", "100ms", "test") == 0);
    assert (lb_config_set (config, "redis.url", "redis://127.0.0.1:1/0", "test") == 0);
    sc_daemon_t *daemon = sc_daemon_new (config);
    assert (daemon);

    //  First sight of the schedule: the slot clock starts now, nothing fires.
    assert (sc_daemon_tick (daemon) == 0);
    res = lb_pg_query (db, "select last_slot is not null from sched_pipelines where name = 'dtest'", 0, NULL);
    assert (res && PQntuples (res) == 1 && strcmp (PQgetvalue (res, 0, 0), "t") == 0);
    PQclear (res);
    res = lb_pg_query (db, "select count(*) from sched_daemons", 0, NULL);
    assert (res && atoi (PQgetvalue (res, 0, 0)) >= 1);
    PQclear (res);

    //  A run starts; with the broker away its first step waits, nothing is lost.
    char err [512];
    sc_pipeline_t *pipeline = sc_pipeline_load (path, err, sizeof err);
    assert (pipeline);
    pr_kv_t params = { 0 };
    char *run_id = NULL;
    assert (sc_store_enqueue (db, pipeline, &params, "manual", -1, &run_id, err, sizeof err) == 0);
    assert (sc_daemon_tick (daemon) == 0);
    const char *id_param [] = { run_id };
    res = lb_pg_query (db, "select r.state, string_agg(s.state, ',' order by s.ord) from sched_runs r "
                           "join sched_steps s on s.run_id = r.id where r.id = $1 group by r.state", 1, id_param);
    assert (res && strcmp (PQgetvalue (res, 0, 0), "running") == 0);
    assert (strcmp (PQgetvalue (res, 0, 1), "waiting,waiting") == 0);
    PQclear (res);

    //  Cancelled: the waiting steps are cancelled by the next tick.
    assert (sc_store_cancel (db, run_id, err, sizeof err) == 0);
    assert (sc_daemon_tick (daemon) == 0);
    res = lb_pg_query (db, "select string_agg(state, ',' order by ord) from sched_steps where run_id = $1", 1, id_param);
    assert (res && strcmp (PQgetvalue (res, 0, 0), "cancelled,cancelled") == 0);
    PQclear (res);

    sc_daemon_destroy (&daemon);
    assert (!daemon);
    lb_pg_exec (db, "delete from sched_runs where id = $1", 1, id_param);
    lb_pg_exec (db, "delete from sched_pipelines where name = 'dtest'", 0, NULL);
    free (run_id);
    sc_pipeline_destroy (&pipeline);
    lb_config_destroy (&config);
    PQfinish (db);
    lb_selftest_rmtree (dir);
    free (dir);
    free (path);
}
