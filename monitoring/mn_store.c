/*  mn_store.c - events and broker snapshots into Redis (monitoring/REDIS.md). */
#include "mn_store.h"
#include "lb_clock.h"
#include "lb_log.h"
#include "lb_mem.h"
#include "lb_redis.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <time.h>
#include <unistd.h>

struct _mn_store_t {
    lb_redis_link_t *link;
    mn_store_cfg_t cfg;
    redisContext *ctx;          //  the link's, while connected
    bool gap;                   //  events may be missing since the last catch-up
    int pending;                //  commands appended, replies not read
    int64_t errors;
};

mn_store_t *
mn_store_new (const char *url, const mn_store_cfg_t *cfg)
{
    assert (url && cfg);
    mn_store_t *self = lb_xcalloc (1, sizeof *self);
    self->link = lb_redis_link_new (url, 2.0, "the monitor catches up from the broker when it is back",
                                    "catching up from the broker");
    self->cfg = *cfg;
    if (!*self->cfg.prefix)
        snprintf (self->cfg.prefix, sizeof self->cfg.prefix, "pred:");
    self->gap = true;
    return self;
}

void
mn_store_destroy (mn_store_t **self_p)
{
    assert (self_p);
    mn_store_t *self = *self_p;
    if (!self)
        return;
    lb_redis_link_destroy (&self->link);
    free (self);
    *self_p = NULL;
}

static void
s_lost (mn_store_t *self, const char *what)
{
    lb_redis_link_lost (self->link, what);
    self->ctx = NULL;
    self->gap = true;
    self->pending = 0;
}

redisContext *
mn_store_redis (mn_store_t *self)
{
    assert (self);
    self->ctx = lb_redis_link_get (self->link);
    return self->ctx;
}

bool
mn_store_up (mn_store_t *self)
{
    return self->ctx != NULL;
}

bool
mn_store_gap (mn_store_t *self)
{
    return self->gap;
}

void
mn_store_clear_gap (mn_store_t *self)
{
    self->gap = false;
}

int64_t
mn_store_errors (mn_store_t *self)
{
    return self->errors;
}

//  Appends a command (printf-like, hiredis format) to the pipeline.
static void
s_cmd (mn_store_t *self, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    redisvAppendCommand (self->ctx, fmt, args);
    va_end (args);
    self->pending++;
}

//  Reads every pending reply. Returns 0, or -1 (connection lost: store down).
static int
s_flush (mn_store_t *self)
{
    int rc = 0;
    while (self->pending > 0) {
        redisReply *reply = NULL;
        if (redisGetReply (self->ctx, (void **) &reply) != REDIS_OK) {
            self->errors++;
            s_lost (self, self->ctx->errstr);
            return -1;
        }
        self->pending--;
        if (reply->type == REDIS_REPLY_ERROR) {
            self->errors++;
            lb_log_warn ("redis refused a command: %s", reply->str);
            rc = -1;
        }
        freeReplyObject (reply);
    }
    return rc;
}

static void
s_day (int64_t t_us, char *buf, size_t size)
{
    time_t secs = (time_t) (t_us / 1000000);
    struct tm tm;
    gmtime_r (&secs, &tm);
    strftime (buf, size, "%Y-%m-%d", &tm);
}

static void
s_worker_fields (mn_store_t *self, const char *key, const char *hex)
{
    //  Our runtime names itself "host:pid[:gpuN]"; anything else shows as hex.
    char name [256], host [256] = "", pid [32] = "", gpu [32] = "";
    mn_event_worker_name (hex, name, sizeof name);
    if (strcmp (name, hex)) {
        char *colon = strchr (name, ':');
        size_t n = colon? (size_t) (colon - name): strlen (name);
        snprintf (host, sizeof host, "%.*s", (int) n, name);
        if (colon) {
            char *end;
            long p = strtol (colon + 1, &end, 10);
            if (end > colon + 1 && p > 0)
                snprintf (pid, sizeof pid, "%ld", p);
            char *g = strstr (colon, ":gpu");
            if (g)
                snprintf (gpu, sizeof gpu, "%.8s", g + 4);
        }
    }
    s_cmd (self, "HSET %s name %s host %s pid %s gpu %s", key, name, host, pid, gpu);
}

int
mn_store_event (mn_store_t *self, const mn_event_t *e)
{
    assert (self && e);
    if (!mn_store_redis (self))
        return -1;
    const char *P = self->cfg.prefix;
    char job [96], waiting [200], wkey [300], stat [64], day [16], field [160];
    char t [24], attempt [24];
    snprintf (t, sizeof t, "%lld", (long long) e->t_us);
    snprintf (attempt, sizeof attempt, "%lld", (long long) e->attempt);
    snprintf (job, sizeof job, "%sjob:%s", P, e->id);
    snprintf (waiting, sizeof waiting, "%squeue:%s:waiting", P, e->service);
    snprintf (wkey, sizeof wkey, "%sworker:%s", P, e->worker);
    s_day (e->t_us, day, sizeof day);
    snprintf (stat, sizeof stat, "%sstat:%s", P, day);
    const char *ev = mn_event_name (e->ev);
    long long jobs_cap = -(long long) self->cfg.jobs_max - 1;

    if (*e->id) {
        s_cmd (self, "HSET %s service %s updated_us %s", job, e->service, t);
        s_cmd (self, "ZADD %sjobs %s %s", P, t, e->id);        //  capped by mn_store_trim
    }
    s_cmd (self, "SADD %sservices %s", P, e->service);
    s_cmd (self, "EXPIRE %sservices %lld", P, (long long) self->cfg.stats_ttl_s);

    switch (e->ev) {
        case MN_EV_QUEUED:
        case MN_EV_REQUEUED:
            s_cmd (self, "HSET %s state queued queued_us %s priority %lld", job, t, (long long) e->priority);
            if (e->ev == MN_EV_QUEUED)
                s_cmd (self, "HSET %s attempt %s durable %d", job, attempt, e->durable? 1: 0);
            if (e->attempt == 0)
                s_cmd (self, "HSETNX %s submitted_us %s", job, t);
            s_cmd (self, "ZADD %s %s %s", waiting, t, e->id);
            s_cmd (self, "ZREMRANGEBYRANK %s 0 %lld", waiting, jobs_cap);
            s_cmd (self, "EXPIRE %s %lld", waiting, (long long) self->cfg.job_ttl_s);
            if (e->ev == MN_EV_REQUEUED)
                s_cmd (self, "ZREM %sdead %s", P, e->id);
            break;
        case MN_EV_LEASED:
            s_cmd (self, "HSET %s state leased worker %s attempt %s leased_us %s lease_ms %lld", job,
                   e->worker, attempt, t, (long long) e->lease_ms);
            s_cmd (self, "ZREM %s %s", waiting, e->id);
            s_cmd (self, "HSET %s state busy job %s service %s last_seen_us %s", wkey, e->id, e->service, t);
            break;
        case MN_EV_PROGRESS:
            if (e->has_progress) {
                char pct [32];
                snprintf (pct, sizeof pct, "%.1f", e->percent);
                s_cmd (self, "HSET %s percent %s stage %s message %s progress_us %s", job, pct, e->stage,
                       e->message, t);
            }
            s_cmd (self, "HSET %s state busy job %s service %s last_seen_us %s", wkey, e->id, e->service, t);
            break;
        case MN_EV_DONE:
            s_cmd (self, "HSET %s state done finished_us %s ms %lld percent 100 attempt %s", job, t,
                   (long long) e->ms, attempt);
            snprintf (field, sizeof field, "%s:processed", e->service);
            s_cmd (self, "HINCRBY %s %s 1", stat, field);
            s_cmd (self, "HSET %s state idle job %s last_seen_us %s", wkey, "", t);
            break;
        case MN_EV_FAILED:
            s_cmd (self, "HSET %s state failed last_error %s attempt %s failed_us %s", job, e->error, attempt, t);
            snprintf (field, sizeof field, "%s:failed", e->service);
            s_cmd (self, "HINCRBY %s %s 1", stat, field);
            s_cmd (self, "HSET %s state idle job %s last_seen_us %s", wkey, "", t);
            break;
        case MN_EV_RETRIED:
            s_cmd (self, "HSET %s state delayed not_before_us %lld", job,
                   (long long) (e->t_us + e->delay_ms * 1000));
            break;
        case MN_EV_DEAD:
            s_cmd (self, "HSET %s state dead last_error %s dead_us %s finished_us %s", job, e->error, t, t);
            s_cmd (self, "ZREM %s %s", waiting, e->id);
            s_cmd (self, "ZADD %sdead %s %s", P, t, e->id);
            s_cmd (self, "ZREMRANGEBYRANK %sdead 0 %lld", P, -(long long) self->cfg.dead_max - 1);
            snprintf (field, sizeof field, "%s:dead", e->service);
            s_cmd (self, "HINCRBY %s %s 1", stat, field);
            break;
        case MN_EV_CANCELLED:
            s_cmd (self, "HSET %s state cancelled finished_us %s", job, t);
            s_cmd (self, "ZREM %s %s", waiting, e->id);
            s_cmd (self, "ZREM %sdead %s", P, e->id);
            break;
        case MN_EV_WORKER_UP:
            s_cmd (self, "DEL %s", wkey);
            s_cmd (self, "HSET %s service %s proto %s state idle job %s up_us %s last_seen_us %s", wkey,
                   e->service, e->proto, "", t, t);
            s_worker_fields (self, wkey, e->worker);
            s_cmd (self, "ZADD %sworkers %s %s", P, t, e->worker);
            break;
        case MN_EV_WORKER_DOWN:
            s_cmd (self, "DEL %s", wkey);
            s_cmd (self, "ZREM %sworkers %s", P, e->worker);
            break;
        default:
            assert (false);
    }
    if (*e->id) {
        s_cmd (self, "EXPIRE %s %lld", job, (long long) self->cfg.job_ttl_s);
        bool final = e->ev == MN_EV_DONE || e->ev == MN_EV_DEAD || e->ev == MN_EV_CANCELLED;
        if (final)
            s_cmd (self, "ZREM %sjobs:active %s", P, e->id);
        else {
            s_cmd (self, "ZADD %sjobs:active %s %s", P, t, e->id);
            s_cmd (self, "ZREMRANGEBYRANK %sjobs:active 0 %lld", P, jobs_cap);
        }
    }
    if (*e->worker && e->ev != MN_EV_WORKER_DOWN) {
        s_cmd (self, "EXPIRE %s %lld", wkey, (long long) self->cfg.worker_ttl_s);
        s_cmd (self, "ZADD %sworkers %s %s", P, t, e->worker);
    }
    if (e->ev == MN_EV_DONE || e->ev == MN_EV_FAILED || e->ev == MN_EV_DEAD)
        s_cmd (self, "EXPIRE %s %lld", stat, (long long) self->cfg.stats_ttl_s);
    //  The collections themselves expire if the monitor stops for good.
    long long jttl = (long long) self->cfg.job_ttl_s;
    s_cmd (self, "EXPIRE %sjobs %lld", P, jttl);
    s_cmd (self, "EXPIRE %sjobs:active %lld", P, jttl);
    s_cmd (self, "EXPIRE %sworkers %lld", P, jttl);
    if (e->ev == MN_EV_DEAD)
        s_cmd (self, "EXPIRE %sdead %lld", P, jttl);
    //  The event stream: newest last, about events_max kept. Progress
    //  reports (a few a second per running job) only update the job's hash,
    //  so they do not push the rest out of the stream.
    if (e->ev == MN_EV_PROGRESS)
        return s_flush (self);
    char wname [256];
    mn_event_worker_name (e->worker, wname, sizeof wname);
    s_cmd (self, "XADD %sevents MAXLEN ~ %lld * ev %s t %s id %s service %s worker %s attempt %s error %s",
           P, (long long) self->cfg.events_max, ev, t, e->id, e->service, wname, attempt, e->error);
    s_cmd (self, "EXPIRE %sevents %lld", P, jttl);
    return s_flush (self);
}

int
mn_store_snapshot (mn_store_t *self, const mn_snapshot_t *snap)
{
    assert (self && snap);
    redisContext *ctx = mn_store_redis (self);
    if (!ctx)
        return -1;
    const char *P = self->cfg.prefix;
    char key [300], now [24];
    snprintf (now, sizeof now, "%lld", (long long) snap->taken_us);
    long long ttl = (long long) self->cfg.worker_ttl_s;

    //  Reads first (a blocking command would take the reply of a queued one).
    redisReply *members = lb_redis_cmd (ctx, "SMEMBERS %sservices", P);
    redisReply *known = members? lb_redis_cmd (ctx, "ZRANGE %sworkers 0 -1", P): NULL;
    if (!members || !known) {
        if (members)
            freeReplyObject (members);
        s_lost (self, "reading services or workers failed");
        return -1;
    }
    //  Services the broker no longer reports lose their queue hash.
    for (size_t i = 0; members->type == REDIS_REPLY_ARRAY && i < members->elements; i++) {
        bool listed = false;
        for (size_t q = 0; q < snap->nqueues; q++)
            if (!strcmp (snap->queues [q].service, members->element [i]->str))
                listed = true;
        if (!listed)
            s_cmd (self, "DEL %squeue:%s", P, members->element [i]->str);
    }
    freeReplyObject (members);
    for (size_t i = 0; i < snap->nqueues; i++) {
        const mn_mmi_queue_t *q = &snap->queues [i];
        snprintf (key, sizeof key, "%squeue:%s", P, q->service);
        s_cmd (self, "HSET %s queued %lld delayed %lld leased %lld dead %lld workers %lld idle %lld updated_us %s",
               key, (long long) q->queued, (long long) q->delayed, (long long) q->leased, (long long) q->dead,
               (long long) q->workers, (long long) q->idle, now);
        s_cmd (self, "EXPIRE %s %lld", key, ttl);
        s_cmd (self, "SADD %sservices %s", P, q->service);
        if (q->queued == 0) {
            snprintf (key, sizeof key, "%squeue:%s:waiting", P, q->service);
            s_cmd (self, "DEL %s", key);
        }
    }
    //  Workers: the broker's list is the truth; others are ghosts.
    for (size_t i = 0; known->type == REDIS_REPLY_ARRAY && i < known->elements; i++) {
        bool alive = false;
        for (size_t w = 0; w < snap->nworkers && !alive; w++)
            alive = !strcmp (snap->workers [w].id, known->element [i]->str);
        if (!alive) {
            s_cmd (self, "DEL %sworker:%s", P, known->element [i]->str);
            s_cmd (self, "ZREM %sworkers %s", P, known->element [i]->str);
        }
    }
    freeReplyObject (known);
    for (size_t i = 0; i < snap->nworkers; i++) {
        const mn_mmi_worker_t *w = &snap->workers [i];
        snprintf (key, sizeof key, "%sworker:%s", P, w->id);
        long long seen = (long long) (snap->taken_us - w->idle_ms * 1000);
        s_cmd (self, "HSET %s service %s proto %s state %s job %s last_seen_us %lld", key, w->service, w->proto,
               w->state, w->job, seen);
        s_cmd (self, "HSETNX %s up_us %s", key, now);
        s_worker_fields (self, key, w->id);
        s_cmd (self, "EXPIRE %s %lld", key, ttl);
        s_cmd (self, "ZADD %sworkers %lld %s", P, seen, w->id);
    }
    //  Dead letters: a complete list (under the broker's 1000) replaces ours.
    if (snap->ndead < 1000)
        s_cmd (self, "DEL %sdead", P);
    for (size_t i = 0; i < snap->ndead; i++) {
        const mn_mmi_dead_t *d = &snap->dead [i];
        snprintf (key, sizeof key, "%sjob:%s", P, d->id);
        s_cmd (self, "ZADD %sdead %lld %s", P, (long long) d->dead_us, d->id);
        s_cmd (self, "HSET %s service %s state dead attempt %lld last_error %s dead_us %lld", key, d->service,
               (long long) d->attempts, d->error, (long long) d->dead_us);
        s_cmd (self, "EXPIRE %s %lld", key, (long long) self->cfg.job_ttl_s);
        s_cmd (self, "ZREM %sjobs:active %s", P, d->id);
    }
    s_cmd (self, "ZREMRANGEBYRANK %sdead 0 %lld", P, -(long long) self->cfg.dead_max - 1);
    s_cmd (self, "EXPIRE %sdead %lld", P, (long long) self->cfg.job_ttl_s);
    s_cmd (self, "EXPIRE %sworkers %lld", P, (long long) self->cfg.job_ttl_s);
    //  The broker's counters, as it reports them.
    s_cmd (self, "DEL %sbroker", P);
    for (size_t i = 0; i < snap->nstats; i++)
        s_cmd (self, "HSET %sbroker %s %lld", P, snap->stats [i].name, (long long) snap->stats [i].value);
    s_cmd (self, "HSET %sbroker taken_us %s", P, now);
    s_cmd (self, "EXPIRE %sbroker %lld", P, ttl);
    return s_flush (self);
}

int
mn_store_trim (mn_store_t *self)
{
    assert (self);
    redisContext *ctx = mn_store_redis (self);
    if (!ctx)
        return -1;
    const char *P = self->cfg.prefix;
    long long cap = (long long) self->cfg.jobs_max;
    redisReply *old = lb_redis_cmd (ctx, "ZRANGE %sjobs 0 %lld", P, -cap - 1);
    if (!old) {
        s_lost (self, "ZRANGE failed");
        return -1;
    }
    //  Which of them are dead letters (their details stay while pred:dead lists them)?
    size_t n = old->type == REDIS_REPLY_ARRAY? old->elements: 0;
    for (size_t i = 0; i < n; i++)
        s_cmd (self, "ZSCORE %sdead %s", P, old->element [i]->str);
    bool *dead = lb_xcalloc (n + 1, sizeof *dead);
    for (size_t i = 0; i < n; i++) {
        redisReply *r = NULL;
        if (redisGetReply (ctx, (void **) &r) != REDIS_OK) {
            free (dead);
            freeReplyObject (old);
            s_lost (self, ctx->errstr);
            return -1;
        }
        self->pending--;
        dead [i] = r->type != REDIS_REPLY_NIL;
        freeReplyObject (r);
    }
    int removed = 0;
    for (size_t i = 0; i < n; i++) {
        if (!dead [i]) {
            s_cmd (self, "DEL %sjob:%s", P, old->element [i]->str);
            removed++;
        }
        s_cmd (self, "ZREM %sjobs:active %s", P, old->element [i]->str);
    }
    s_cmd (self, "ZREMRANGEBYRANK %sjobs 0 %lld", P, -cap - 1);
    free (dead);
    freeReplyObject (old);
    return s_flush (self) == 0? removed: -1;
}

int
mn_store_job (mn_store_t *self, const mn_mmi_job_t *j, int64_t now_us)
{
    assert (self && j);
    if (!mn_store_redis (self))
        return -1;
    const char *P = self->cfg.prefix;
    char key [96];
    snprintf (key, sizeof key, "%sjob:%s", P, j->id);
    redisReply *svcs = lb_redis_cmd (self->ctx, "SMEMBERS %sservices", P);
    if (!svcs) {
        s_lost (self, "SMEMBERS failed");
        return -1;
    }
    bool gone = !strcmp (j->state, "gone");
    bool final = gone || !strcmp (j->state, "done") || !strcmp (j->state, "dead") || !strcmp (j->state, "cancelled");
    if (gone)
        //  The broker forgot it: finished and closed by its submitter.
        s_cmd (self, "HSET %s state closed updated_us %lld", key, (long long) now_us);
    else {
        s_cmd (self, "HSET %s state %s attempt %lld worker %s last_error %s updated_us %lld", key, j->state,
               (long long) j->attempts, j->worker, j->last_error, (long long) now_us);
        if (*j->service)
            s_cmd (self, "HSET %s service %s", key, j->service);
    }
    s_cmd (self, "EXPIRE %s %lld", key, (long long) self->cfg.job_ttl_s);
    if (final)
        s_cmd (self, "ZREM %sjobs:active %s", P, j->id);
    if (final || !strcmp (j->state, "leased") || !strcmp (j->state, "delayed")) {
        //  Not waiting in its queue any more (its service may be unknown: scan the services).
        for (size_t i = 0; svcs->type == REDIS_REPLY_ARRAY && i < svcs->elements; i++)
            s_cmd (self, "ZREM %squeue:%s:waiting %s", P, svcs->element [i]->str, j->id);
    }
    freeReplyObject (svcs);
    return s_flush (self);
}

int
mn_store_active_jobs (mn_store_t *self, char (*ids) [33], int max, int64_t now_us)
{
    assert (self && ids && max > 0);
    redisContext *ctx = mn_store_redis (self);
    if (!ctx)
        return -1;
    redisReply *reply = lb_redis_cmd (ctx, "ZRANGE %sjobs:active 0 %d", self->cfg.prefix, max - 1);
    if (!reply) {
        s_lost (self, "ZRANGE failed");
        return -1;
    }
    int n = 0;
    for (size_t i = 0; reply->type == REDIS_REPLY_ARRAY && i < reply->elements && n < max; i++) {
        const char *id = reply->element [i]->str;
        if (!id || strlen (id) != 32)
            continue;
        memcpy (ids [n], id, 33);
        s_cmd (self, "ZADD %sjobs:active XX %lld %s", self->cfg.prefix, (long long) now_us, id);
        n++;
    }
    freeReplyObject (reply);
    return s_flush (self) == 0? n: -1;
}

int
mn_store_beat (mn_store_t *self, int64_t started_us, int64_t events, int64_t bad_events, int64_t last_catchup_us)
{
    if (!mn_store_redis (self))
        return -1;
    char host [256] = "";
    gethostname (host, sizeof host - 1);
    s_cmd (self, "HSET %smonitor pid %d host %s started_us %lld beat_us %lld events %lld bad_events %lld "
           "last_catchup_us %lld", self->cfg.prefix, (int) getpid (), host, (long long) started_us,
           (long long) lb_clock_wall_us (), (long long) events, (long long) bad_events,
           (long long) last_catchup_us);
    s_cmd (self, "EXPIRE %smonitor %lld", self->cfg.prefix, (long long) self->cfg.worker_ttl_s);
    return s_flush (self);
}

//  -------------------------------------------------------------------------
//  Selftest: against REDIS_URL, under a private prefix.

static long long
s_int_reply (redisContext *ctx, const char *fmt, const char *a, const char *b)
{
    redisReply *r = lb_redis_cmd (ctx, fmt, a, b);
    assert (r);
    long long v = r->type == REDIS_REPLY_INTEGER? r->integer: r->type == REDIS_REPLY_STRING? atoll (r->str): -1;
    freeReplyObject (r);
    return v;
}

static char *
s_str_reply (redisContext *ctx, const char *fmt, const char *a, const char *b)
{
    redisReply *r = lb_redis_cmd (ctx, fmt, a, b);
    assert (r);
    char *v = r->type == REDIS_REPLY_STRING? lb_xstrdup (r->str): lb_xstrdup ("");
    freeReplyObject (r);
    return v;
}

void
mn_store_test (bool verbose)
{
    (void) verbose;
    const char *url = getenv ("REDIS_URL");
    mn_store_cfg_t cfg = { .job_ttl_s = 600, .worker_ttl_s = 60, .jobs_max = 3, .dead_max = 2,
                           .events_max = 100, .stats_ttl_s = 3600 };
    //  No server: the store says so and keeps the gap.
    mn_store_t *down = mn_store_new ("redis://127.0.0.1:1/0", &cfg);
    mn_event_t e = { .ev = MN_EV_WORKER_UP, .t_us = lb_clock_wall_us () };
    snprintf (e.service, sizeof e.service, "train");
    snprintf (e.worker, sizeof e.worker, "00ff");
    assert (mn_store_event (down, &e) == -1);
    assert (mn_store_event (down, &e) == -1);       //  inside the backoff: no new try
    assert (mn_store_gap (down) && !mn_store_up (down));
    mn_store_destroy (&down);
    if (!url)
        return;
    snprintf (cfg.prefix, sizeof cfg.prefix, "pred-selftest-%d:", (int) getpid ());
    const char *P = cfg.prefix;
    mn_store_t *store = mn_store_new (url, &cfg);
    redisContext *ctx = mn_store_redis (store);
    assert (ctx);
    char key [128], id [33];

    //  A worker comes up, takes jobs; six jobs finish: the recent list keeps 3.
    snprintf (e.worker, sizeof e.worker, "686f73743a3432");     //  "host:42"
    snprintf (e.proto, sizeof e.proto, "MDPW02");
    assert (mn_store_event (store, &e) == 0);
    snprintf (key, sizeof key, "%sworker:686f73743a3432", P);
    char *host = s_str_reply (ctx, "HGET %s %s", key, "host");
    assert (!strcmp (host, "host"));
    free (host);
    assert (s_int_reply (ctx, "HGET %s %s", key, "pid") == 42);
    for (int i = 0; i < 6; i++) {
        snprintf (id, sizeof id, "%032x", i + 1);
        mn_event_t q = { .ev = MN_EV_QUEUED, .t_us = e.t_us + i };
        snprintf (q.id, sizeof q.id, "%s", id);
        snprintf (q.service, sizeof q.service, "train");
        assert (mn_store_event (store, &q) == 0);
        q.ev = MN_EV_LEASED;
        snprintf (q.worker, sizeof q.worker, "%s", e.worker);
        assert (mn_store_event (store, &q) == 0);
        snprintf (key, sizeof key, "%squeue:train:waiting", P);
        assert (s_int_reply (ctx, "ZCARD %s", key, NULL) == 0);
        q.ev = i < 3? MN_EV_DONE: MN_EV_DEAD;
        snprintf (q.error, sizeof q.error, "boom %d", i);
        assert (mn_store_event (store, &q) == 0);
    }
    snprintf (key, sizeof key, "%sjobs", P);
    assert (s_int_reply (ctx, "ZCARD %s", key, NULL) == 6);
    //  Trimming to the cap of 3: the three oldest go, hash and all (1..3 were done).
    assert (mn_store_trim (store) == 3);
    assert (s_int_reply (ctx, "ZCARD %s", key, NULL) == 3);
    snprintf (key, sizeof key, "%sjob:%032x", P, 1);
    assert (s_int_reply (ctx, "EXISTS %s", key, NULL) == 0);
    snprintf (key, sizeof key, "%sdead", P);
    assert (s_int_reply (ctx, "ZCARD %s", key, NULL) == 2);
    snprintf (key, sizeof key, "%sjobs:active", P);
    assert (s_int_reply (ctx, "ZCARD %s", key, NULL) == 0);
    snprintf (key, sizeof key, "%sjob:%032x", P, 6);
    char *state = s_str_reply (ctx, "HGET %s %s", key, "state");
    assert (!strcmp (state, "dead"));
    free (state);
    assert (s_int_reply (ctx, "TTL %s", key, NULL) > 0);
    char day [16];
    s_day (e.t_us, day, sizeof day);
    snprintf (key, sizeof key, "%sstat:%s", P, day);
    assert (s_int_reply (ctx, "HGET %s %s", key, "train:processed") == 3);
    assert (s_int_reply (ctx, "TTL %s", key, NULL) > 0);

    //  A snapshot without the worker removes it (no ghosts); a queued job
    //  becomes active and is handed out for checking.
    mn_event_t q = { .ev = MN_EV_QUEUED, .t_us = e.t_us + 100 };
    snprintf (q.id, sizeof q.id, "%032x", 99);
    snprintf (q.service, sizeof q.service, "fetch");
    assert (mn_store_event (store, &q) == 0);
    char ids [4][33];
    assert (mn_store_active_jobs (store, ids, 4, e.t_us) == 1 && !strcmp (ids [0], q.id));
    mn_mmi_queue_t queues [1] = { { .service = "fetch", .queued = 1 } };
    mn_mmi_stat_t stats [1] = { { .name = "bad_frames", .value = 7 } };
    mn_snapshot_t snap = { .queues = queues, .nqueues = 1, .stats = stats, .nstats = 1, .taken_us = e.t_us };
    assert (mn_store_snapshot (store, &snap) == 0);
    snprintf (key, sizeof key, "%sworkers", P);
    assert (s_int_reply (ctx, "ZCARD %s", key, NULL) == 0);
    snprintf (key, sizeof key, "%sdead", P);
    assert (s_int_reply (ctx, "ZCARD %s", key, NULL) == 0);       //  the broker has none
    snprintf (key, sizeof key, "%sbroker", P);
    assert (s_int_reply (ctx, "HGET %s %s", key, "bad_frames") == 7);
    snprintf (key, sizeof key, "%squeue:train", P);
    assert (s_int_reply (ctx, "EXISTS %s", key, NULL) == 0);
    //  The broker says the job is gone: it is no longer active.
    mn_mmi_job_t gone = { .state = "gone" };
    snprintf (gone.id, sizeof gone.id, "%s", q.id);
    assert (mn_store_job (store, &gone, e.t_us) == 0);
    assert (mn_store_active_jobs (store, ids, 4, e.t_us) == 0);
    snprintf (key, sizeof key, "%squeue:fetch:waiting", P);
    assert (s_int_reply (ctx, "ZCARD %s", key, NULL) == 0);
    assert (mn_store_beat (store, e.t_us, 10, 1, e.t_us) == 0);
    //  Events stream exists and is capped.
    snprintf (key, sizeof key, "%sevents", P);
    assert (s_int_reply (ctx, "XLEN %s", key, NULL) > 0);

    //  Clean up our keys.
    redisReply *keys = lb_redis_cmd (ctx, "KEYS %s*", P);
    for (size_t i = 0; keys && i < keys->elements; i++)
        freeReplyObject (lb_redis_cmd (ctx, "DEL %s", keys->element [i]->str));
    freeReplyObject (keys);
    mn_store_destroy (&store);
}
