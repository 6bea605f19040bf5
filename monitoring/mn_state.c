/*  mn_state.c - the dashboard's JSON document from Redis and PostgreSQL. */
#include "mn_state.h"
#include "lb_log.h"
#include "lb_mem.h"
#include "lb_pg.h"
#include "lb_redis.h"

#include <assert.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define S_MAX_WORKERS   500
#define S_MAX_DEAD      50
#define S_MAX_EVENTS    60
#define S_MAX_RUNS      20

//  A hash reply (field, value, ...) as a JSON object of strings.
static json_t *
s_hash (const redisReply *r)
{
    json_t *obj = json_object ();
    for (size_t i = 0; r && r->type == REDIS_REPLY_ARRAY && i + 1 < r->elements; i += 2)
        if (r->element [i]->str && r->element [i + 1]->str)
            json_object_set_new (obj, r->element [i]->str, json_string (r->element [i + 1]->str));
    return obj;
}

static redisReply *
s_cmd (redisContext *ctx, json_t *errors, const char *fmt, const char *a, const char *b)
{
    redisReply *r = lb_redis_cmd (ctx, fmt, a, b);
    if (!r)
        json_array_append_new (errors, json_sprintf ("redis: a read failed (%s)", ctx->errstr[0]? ctx->errstr: "error reply"));
    return r;
}

static void
s_redis_part (redisContext *ctx, const char *P, json_t *doc, json_t *errors, int64_t now_us)
{
    char key [300];
    //  Workers, most recently seen first; expired hashes are skipped.
    json_t *workers = json_array ();
    snprintf (key, sizeof key, "%sworkers", P);
    redisReply *ids = s_cmd (ctx, errors, "ZREVRANGE %s 0 499", key, NULL);
    for (size_t i = 0; ids && i < ids->elements && i < S_MAX_WORKERS; i++) {
        snprintf (key, sizeof key, "%sworker:%s", P, ids->element [i]->str);
        redisReply *h = s_cmd (ctx, errors, "HGETALL %s", key, NULL);
        if (h && h->elements > 0) {
            json_t *w = s_hash (h);
            json_object_set_new (w, "id", json_string (ids->element [i]->str));
            json_array_append_new (workers, w);
        }
        if (h)
            freeReplyObject (h);
    }
    if (ids)
        freeReplyObject (ids);
    json_object_set_new (doc, "workers", workers);

    //  Queues, with the age of the oldest job waiting.
    json_t *queues = json_array ();
    snprintf (key, sizeof key, "%sservices", P);
    redisReply *svcs = s_cmd (ctx, errors, "SMEMBERS %s", key, NULL);
    for (size_t i = 0; svcs && i < svcs->elements; i++) {
        const char *svc = svcs->element [i]->str;
        snprintf (key, sizeof key, "%squeue:%s", P, svc);
        redisReply *h = s_cmd (ctx, errors, "HGETALL %s", key, NULL);
        json_t *q = s_hash (h);
        if (h)
            freeReplyObject (h);
        json_object_set_new (q, "service", json_string (svc));
        snprintf (key, sizeof key, "%squeue:%s:waiting", P, svc);
        redisReply *oldest = s_cmd (ctx, errors, "ZRANGE %s 0 0 WITHSCORES", key, NULL);
        double age = 0;
        if (oldest && oldest->elements == 2)
            age = (double) (now_us - atoll (oldest->element [1]->str)) / 1e6;
        if (oldest)
            freeReplyObject (oldest);
        json_object_set_new (q, "oldest_age_s", json_real (age > 0? age: 0));
        json_array_append_new (queues, q);
    }
    if (svcs)
        freeReplyObject (svcs);
    json_object_set_new (doc, "queues", queues);

    //  Dead letters, newest first.
    json_t *dead = json_array ();
    snprintf (key, sizeof key, "%sdead", P);
    redisReply *dids = s_cmd (ctx, errors, "ZREVRANGE %s 0 49", key, NULL);
    for (size_t i = 0; dids && i < dids->elements && i < S_MAX_DEAD; i++) {
        snprintf (key, sizeof key, "%sjob:%s", P, dids->element [i]->str);
        redisReply *h = s_cmd (ctx, errors, "HGETALL %s", key, NULL);
        json_t *d = s_hash (h);
        if (h)
            freeReplyObject (h);
        json_object_set_new (d, "id", json_string (dids->element [i]->str));
        json_array_append_new (dead, d);
    }
    if (dids)
        freeReplyObject (dids);
    snprintf (key, sizeof key, "%sdead", P);
    redisReply *ndead = s_cmd (ctx, errors, "ZCARD %s", key, NULL);
    json_object_set_new (doc, "dead_total", json_integer (ndead && ndead->type == REDIS_REPLY_INTEGER? ndead->integer: 0));
    if (ndead)
        freeReplyObject (ndead);
    json_object_set_new (doc, "dead", dead);

    //  Recent events, newest first.
    json_t *events = json_array ();
    snprintf (key, sizeof key, "%sevents", P);
    redisReply *xs = s_cmd (ctx, errors, "XREVRANGE %s + - COUNT 60", key, NULL);
    for (size_t i = 0; xs && i < xs->elements && i < S_MAX_EVENTS; i++) {
        const redisReply *entry = xs->element [i];
        if (entry->type != REDIS_REPLY_ARRAY || entry->elements != 2)
            continue;
        json_array_append_new (events, s_hash (entry->element [1]));
    }
    if (xs)
        freeReplyObject (xs);
    json_object_set_new (doc, "events", events);

    //  Today's counters, the monitor's heartbeat, the broker's counters.
    char day [16];
    time_t secs = (time_t) (now_us / 1000000);
    struct tm tm;
    gmtime_r (&secs, &tm);
    strftime (day, sizeof day, "%Y-%m-%d", &tm);
    snprintf (key, sizeof key, "%sstat:%s", P, day);
    redisReply *st = s_cmd (ctx, errors, "HGETALL %s", key, NULL);
    json_object_set_new (doc, "today", s_hash (st));
    if (st)
        freeReplyObject (st);
    snprintf (key, sizeof key, "%smonitor", P);
    redisReply *mon = s_cmd (ctx, errors, "HGETALL %s", key, NULL);
    json_object_set_new (doc, "monitor", s_hash (mon));
    if (mon)
        freeReplyObject (mon);
    snprintf (key, sizeof key, "%sbroker", P);
    redisReply *bk = s_cmd (ctx, errors, "HGETALL %s", key, NULL);
    json_object_set_new (doc, "broker", s_hash (bk));
    if (bk)
        freeReplyObject (bk);
}

//  Which optional tables exist (another part may not be installed yet).
static void
s_tables (PGconn *pg, bool *runs, bool *registry)
{
    *runs = *registry = false;
    PGresult *res = lb_pg_query (pg, "select to_regclass('sched_runs') is not null and to_regclass('sched_steps') is not null, "
                                     "to_regclass('model_versions') is not null and to_regclass('model_aliases') is not null",
                                 0, NULL);
    if (res && PQntuples (res) == 1) {
        *runs = PQgetvalue (res, 0, 0) [0] == 't';
        *registry = PQgetvalue (res, 0, 1) [0] == 't';
    }
    PQclear (res);
}

static json_t *
s_col (PGresult *res, int row, int col, char kind)
{
    if (PQgetisnull (res, row, col))
        return json_null ();
    const char *v = PQgetvalue (res, row, col);
    if (kind == 'n')
        return json_real (atof (v));
    if (kind == 'i')
        return json_integer (atoll (v));
    return json_string (v);
}

static void
s_pg_part (PGconn *pg, redisContext *ctx, const char *P, json_t *doc, json_t *errors)
{
    bool have_runs, have_registry;
    s_tables (pg, &have_runs, &have_registry);
    json_t *runs = json_array ();
    if (!have_runs)
        json_array_append_new (errors, json_string ("postgres: no scheduler tables (sched_runs, sched_steps): "
                                                    "the scheduler's migrations are not installed"));
    else {
        PGresult *res = lb_pg_query (pg,
            "select id, pipeline, state, trigger, coalesce(error, ''), "
            "  (extract(epoch from created_at) * 1000)::bigint, (extract(epoch from started_at) * 1000)::bigint, "
            "  (extract(epoch from finished_at) * 1000)::bigint "
            "from sched_runs order by created_at desc limit 20", 0, NULL);
        PGresult *steps = lb_pg_query (pg,
            "select s.run_id, s.name, s.service, s.state, s.percent, coalesce(s.stage, ''), coalesce(s.message, ''), "
            "  coalesce(s.job_id, ''), coalesce(s.error_message, ''), s.submission, s.broker_attempt, "
            "  (extract(epoch from s.started_at) * 1000)::bigint, (extract(epoch from s.finished_at) * 1000)::bigint "
            "from sched_steps s where s.run_id in (select id from sched_runs order by created_at desc limit 20) "
            "order by s.run_id, s.ord", 0, NULL);
        if (!res || !steps)
            json_array_append_new (errors, json_sprintf ("postgres: reading runs failed: %s", PQerrorMessage (pg)));
        for (int r = 0; res && steps && r < PQntuples (res); r++) {
            json_t *run = json_object ();
            const char *names [] = { "id", "pipeline", "state", "trigger", "error", "created_ms", "started_ms", "finished_ms" };
            for (int c = 0; c < 8; c++)
                json_object_set_new (run, names [c], s_col (res, r, c, c >= 5? 'i': 's'));
            json_t *list = json_array ();
            for (int s = 0; s < PQntuples (steps); s++) {
                if (strcmp (PQgetvalue (steps, s, 0), PQgetvalue (res, r, 0)))
                    continue;
                json_t *step = json_object ();
                const char *sn [] = { "run", "name", "service", "state", "percent", "stage", "message", "job",
                                      "error", "submission", "broker_attempt", "started_ms", "finished_ms" };
                const char kinds [] = "sssssssssiiii";
                for (int c = 1; c < 13; c++)
                    json_object_set_new (step, sn [c], s_col (steps, s, c, c == 4? 'n': kinds [c]));
                //  The live side of the step's job, from the monitor's Redis picture.
                const char *job = PQgetvalue (steps, s, 7);
                if (ctx && *job) {
                    char key [96];
                    snprintf (key, sizeof key, "%sjob:%s", P, job);
                    redisReply *h = lb_redis_cmd (ctx, "HGETALL %s", key);
                    if (h && h->elements > 0)
                        json_object_set_new (step, "live", s_hash (h));
                    if (h)
                        freeReplyObject (h);
                }
                json_array_append_new (list, step);
            }
            json_object_set_new (run, "steps", list);
            json_array_append_new (runs, run);
        }
        PQclear (res);
        PQclear (steps);
    }
    json_object_set_new (doc, "runs", runs);

    //  The registry: each task's production metric (accuracy) over time.
    json_t *reg = json_object ();
    json_object_set_new (reg, "available", json_boolean (have_registry));
    json_t *series = json_array ();
    if (!have_registry)
        json_array_append_new (errors, json_string ("postgres: no model registry tables (model_versions, model_aliases): "
                                                    "the evaluate/deploy migrations are not installed"));
    else {
        PGresult *res = lb_pg_query (pg,
            "select v.task, v.version, (extract(epoch from v.created_at) * 1000)::bigint, "
            "  (v.metrics->>'accuracy')::float8, v.status, coalesce(a.version = v.version, false), v.family "
            "from model_versions v left join model_aliases a on a.task = v.task and a.alias = 'production' "
            "where v.status in ('promoted', 'rolled_back') and jsonb_typeof(v.metrics->'accuracy') = 'number' "
            "order by v.task, v.created_at limit 2000", 0, NULL);
        if (!res)
            json_array_append_new (errors, json_sprintf ("postgres: reading the registry failed: %s", PQerrorMessage (pg)));
        json_t *cur = NULL;
        for (int r = 0; res && r < PQntuples (res); r++) {
            const char *task = PQgetvalue (res, r, 0);
            if (!cur || strcmp (json_string_value (json_object_get (cur, "task")), task)) {
                cur = json_object ();
                json_object_set_new (cur, "task", json_string (task));
                json_object_set_new (cur, "metric", json_string ("accuracy"));
                json_object_set_new (cur, "points", json_array ());
                json_array_append_new (series, cur);
            }
            json_t *pt = json_object ();
            json_object_set_new (pt, "version", s_col (res, r, 1, 'i'));
            json_object_set_new (pt, "ms", s_col (res, r, 2, 'i'));
            json_object_set_new (pt, "value", s_col (res, r, 3, 'n'));
            json_object_set_new (pt, "status", s_col (res, r, 4, 's'));
            json_object_set_new (pt, "production", json_boolean (PQgetvalue (res, r, 5) [0] == 't'));
            json_object_set_new (pt, "family", s_col (res, r, 6, 's'));
            json_array_append_new (json_object_get (cur, "points"), pt);
        }
        PQclear (res);
    }
    json_object_set_new (reg, "series", series);
    json_object_set_new (doc, "registry", reg);
}

char *
mn_state_json (redisContext *redis, PGconn *pg, const char *prefix, bool actions, int64_t now_us)
{
    json_t *doc = json_object ();
    json_t *errors = json_array ();
    json_object_set_new (doc, "now_ms", json_integer (now_us / 1000));
    json_object_set_new (doc, "actions", json_boolean (actions));
    json_object_set_new (doc, "redis_up", json_boolean (redis != NULL));
    json_object_set_new (doc, "postgres_up", json_boolean (pg != NULL));
    if (redis)
        s_redis_part (redis, prefix, doc, errors, now_us);
    else {
        json_array_append_new (errors, json_string ("redis: down; workers, queues, dead letters and events unavailable"));
        const char *empty [] = { "workers", "queues", "dead", "events" };
        for (int i = 0; i < 4; i++)
            json_object_set_new (doc, empty [i], json_array ());
    }
    if (pg)
        s_pg_part (pg, redis, prefix, doc, errors);
    else {
        json_array_append_new (errors, json_string ("postgres: down; runs and registry unavailable"));
        json_object_set_new (doc, "runs", json_array ());
    }
    json_object_set_new (doc, "errors", errors);
    char *text = json_dumps (doc, JSON_COMPACT);
    json_decref (doc);
    assert (text);
    return text;
}

int
mn_state_facts (PGconn *pg, mn_scrape_facts_t *f)
{
    f->db_up = false;
    f->runs = NULL;
    f->prod = NULL;
    f->nruns = f->nprod = 0;
    if (!pg)
        return -1;
    bool have_runs, have_registry;
    s_tables (pg, &have_runs, &have_registry);
    if (PQstatus (pg) != CONNECTION_OK)
        return -1;
    f->db_up = true;
    if (have_runs) {
        PGresult *res = lb_pg_query (pg, "select pipeline, state, count(*) from sched_runs group by 1, 2 order by 1, 2", 0, NULL);
        int n = res? PQntuples (res): 0;
        mn_run_count_t *runs = lb_xcalloc ((size_t) n + 1, sizeof *runs);
        for (int r = 0; r < n; r++) {
            runs [r].pipeline = lb_xstrdup (PQgetvalue (res, r, 0));
            runs [r].state = lb_xstrdup (PQgetvalue (res, r, 1));
            runs [r].count = atoll (PQgetvalue (res, r, 2));
        }
        f->runs = runs;
        f->nruns = (size_t) n;
        PQclear (res);
    }
    if (have_registry) {
        PGresult *res = lb_pg_query (pg,
            "select a.task, m.key, (m.value #>> '{}')::float8 from model_aliases a "
            "join model_versions v on v.task = a.task and v.version = a.version "
            "cross join lateral jsonb_each(v.metrics) m "
            "where a.alias = 'production' and jsonb_typeof(m.value) = 'number' order by 1, 2", 0, NULL);
        int n = res? PQntuples (res): 0;
        mn_prod_metric_t *prod = lb_xcalloc ((size_t) n + 1, sizeof *prod);
        for (int r = 0; r < n; r++) {
            prod [r].task = lb_xstrdup (PQgetvalue (res, r, 0));
            prod [r].metric = lb_xstrdup (PQgetvalue (res, r, 1));
            prod [r].value = atof (PQgetvalue (res, r, 2));
        }
        f->prod = prod;
        f->nprod = (size_t) n;
        PQclear (res);
    }
    return 0;
}

void
mn_state_facts_release (mn_scrape_facts_t *f)
{
    for (size_t i = 0; i < f->nruns; i++) {
        free ((char *) f->runs [i].pipeline);
        free ((char *) f->runs [i].state);
    }
    for (size_t i = 0; i < f->nprod; i++) {
        free ((char *) f->prod [i].task);
        free ((char *) f->prod [i].metric);
    }
    free ((void *) f->runs);
    free ((void *) f->prod);
    f->runs = NULL;
    f->prod = NULL;
    f->nruns = f->nprod = 0;
}

void
mn_state_test (bool verbose)
{
    (void) verbose;
    //  Both stores down: a valid document that says so.
    char *text = mn_state_json (NULL, NULL, "pred:", false, 1795000000000000);
    json_error_t jerr;
    json_t *doc = json_loads (text, 0, &jerr);
    assert (doc);
    assert (json_array_size (json_object_get (doc, "errors")) == 2);
    assert (json_is_false (json_object_get (doc, "redis_up")));
    assert (json_array_size (json_object_get (doc, "workers")) == 0);
    json_decref (doc);
    free (text);
    mn_scrape_facts_t f;
    assert (mn_state_facts (NULL, &f) == -1 && !f.db_up);
    mn_state_facts_release (&f);

    const char *rurl = getenv ("REDIS_URL");
    const char *purl = getenv ("DATABASE_URL");
    if (!rurl || !purl)
        return;
    redisContext *ctx = lb_redis_connect (rurl, 2.0);
    PGconn *pg = lb_pg_connect (purl, "mn_state_test");
    assert (ctx && pg);
    char prefix [64];
    snprintf (prefix, sizeof prefix, "pred-state-%d:", (int) getpid ());
    char key [128];
    snprintf (key, sizeof key, "%sworker:00ff", prefix);
    freeReplyObject (lb_redis_cmd (ctx, "HSET %s service train state idle", key));
    snprintf (key, sizeof key, "%sworkers", prefix);
    freeReplyObject (lb_redis_cmd (ctx, "ZADD %s 1 00ff", key));
    text = mn_state_json (ctx, pg, prefix, true, 1795000000000000);
    doc = json_loads (text, 0, &jerr);
    assert (doc);
    json_t *workers = json_object_get (doc, "workers");
    assert (json_array_size (workers) == 1);
    assert (!strcmp (json_string_value (json_object_get (json_array_get (workers, 0), "service")), "train"));
    assert (json_is_true (json_object_get (doc, "actions")));
    assert (json_is_array (json_object_get (doc, "runs")));
    json_decref (doc);
    free (text);
    assert (mn_state_facts (pg, &f) == 0 && f.db_up);
    mn_state_facts_release (&f);
    snprintf (key, sizeof key, "%sworker:00ff", prefix);
    freeReplyObject (lb_redis_cmd (ctx, "DEL %s", key));
    snprintf (key, sizeof key, "%sworkers", prefix);
    freeReplyObject (lb_redis_cmd (ctx, "DEL %s", key));
    redisFree (ctx);
    PQfinish (pg);
}
