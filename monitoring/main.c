/*  monitoring/main.c - bin/monitor: the broker's events into Redis, Prometheus
    /metrics, and the web dashboard (docs/monitor.md).

    One thread: a zmq_poll loop over the SUB socket of the broker's events and
    libmicrohttpd's epoll descriptor, with a catch-up tick that asks the
    broker (mmi.*) for the truth. All state sits in the context below.
*/
#include "lb_clock.h"
#include "lb_config.h"
#include "lb_log.h"
#include "lb_mem.h"
#include "lb_pg.h"
#include "lb_redis.h"
#include "mn_assets.h"
#include "mn_event.h"
#include "mn_http.h"
#include "mn_metrics.h"
#include "mn_mmi.h"
#include "mn_nvml.h"
#include "mn_state.h"
#include "mn_store.h"

#include <czmq.h>
#include <getopt.h>
#include <jansson.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_PG_RETRY_US   (5 * 1000 * 1000)
#define S_DRAIN_MAX     1000            //  events handled per loop turn before serving HTTP
#define S_BACKOFF_MAX_US (30 * 1000000LL) //  longest catch-up interval while the broker is silent

typedef struct {
    lb_config_t *config;
    mn_store_t *store;
    mn_mmi_t *mmi;
    mn_metrics_t *metrics;
    mn_nvml_t *nvml;
    mn_http_t *http;
    zsock_t *sub;
    PGconn *pg;
    int64_t pg_next_try_us;
    const char *pg_url;
    const char *token;                  //  NULL: read-only
    const char *prefix;
    int64_t started_us;
    int64_t last_catchup_us;
    int64_t next_catchup_us;            //  monotonic
    int64_t catchup_us;
    int broker_fails;                   //  catch-ups in a row the broker did not answer
    bool gpu_only;                      //  --gpu-only: NVML on /metrics, no broker, no stores
} s_ctx_t;

//  -------------------------------------------------------------------------
//  PostgreSQL, connected lazily and retried at most every 5 s

static PGconn *
s_pg (s_ctx_t *ctx)
{
    if (ctx->pg && PQstatus (ctx->pg) == CONNECTION_OK)
        return ctx->pg;
    if (ctx->pg && lb_pg_ensure (ctx->pg))
        return ctx->pg;
    int64_t now = lb_clock_mono_us ();
    if (now < ctx->pg_next_try_us)
        return NULL;
    if (ctx->pg)
        PQfinish (ctx->pg);
    ctx->pg = lb_pg_connect (ctx->pg_url, "monitor");
    if (!ctx->pg)
        ctx->pg_next_try_us = now + S_PG_RETRY_US;
    return ctx->pg;
}

//  -------------------------------------------------------------------------
//  Events

static void
s_on_event (s_ctx_t *ctx)
{
    zmsg_t *msg = zmsg_recv (ctx->sub);
    if (!msg)
        return;
    mn_event_t event;
    char err [200];
    zframe_t *topic = zmsg_first (msg);
    zframe_t *body = zmsg_next (msg);
    if (zmsg_size (msg) != 2)
        snprintf (err, sizeof err, "%zu frames (want topic and body)", zmsg_size (msg));
    if (zmsg_size (msg) != 2
    ||  mn_event_decode ((const char *) zframe_data (topic), zframe_size (topic), zframe_data (body),
                         zframe_size (body), &event, err, sizeof err)) {
        mn_metrics_bad_event (ctx->metrics);
        int64_t bad = mn_metrics_bad_events (ctx->metrics);
        //  Rate-limited: the first ten, then every thousandth.
        if (bad <= 10 || bad % 1000 == 0)
            lb_log_warn ("malformed event refused (%lld so far): %s", (long long) bad, err);
        zmsg_destroy (&msg);
        return;
    }
    zmsg_destroy (&msg);
    mn_metrics_event (ctx->metrics, &event);
    mn_store_event (ctx->store, &event);     //  -1: Redis down; the store keeps the gap
}

//  -------------------------------------------------------------------------
//  Catch-up: the broker's truth into Redis and the gauges

static void
s_catchup (s_ctx_t *ctx)
{
    mn_snapshot_t snap;
    bool ok = mn_mmi_snapshot (ctx->mmi, &snap) == 0;
    ctx->broker_fails = ok? 0: ctx->broker_fails + 1;
    mn_metrics_snapshot (ctx->metrics, &snap, ok);
    int64_t now = lb_clock_wall_us ();
    if (ok && mn_store_snapshot (ctx->store, &snap) == 0) {
        //  Jobs our records say are unfinished: check them with the broker,
        //  all of them (up to 1000) after a gap, a rolling hundred otherwise.
        bool gap = mn_store_gap (ctx->store);
        int max = gap? 1000: 100;
        char (*ids) [33] = lb_xcalloc ((size_t) max, 33);
        int n = mn_store_active_jobs (ctx->store, ids, max, now);
        int fixed = 0;
        bool all = n >= 0;
        for (int i = 0; i < n; i++) {
            mn_mmi_job_t job;
            if (mn_mmi_job (ctx->mmi, ids [i], &job) || mn_store_job (ctx->store, &job, now)) {
                all = false;
                break;
            }
            fixed++;
        }
        free (ids);
        //  Age of the oldest waiting job per service.
        redisContext *redis = mn_store_redis (ctx->store);
        for (size_t i = 0; redis && i < snap.nqueues; i++) {
            redisReply *r = lb_redis_cmd (redis, "ZRANGE %squeue:%s:waiting 0 0 WITHSCORES", ctx->prefix,
                                          snap.queues [i].service);
            double age = r && r->type == REDIS_REPLY_ARRAY && r->elements == 2
                       ? (double) (now - atoll (r->element [1]->str)) / 1e6: 0;
            mn_metrics_queue_age (ctx->metrics, snap.queues [i].service, snap.queues [i].queued? age: 0);
            if (r)
                freeReplyObject (r);
        }
        if (all && gap) {
            lb_log_info ("caught up from the broker queues=%zu workers=%zu dead=%zu jobs_checked=%d",
                         snap.nqueues, snap.nworkers, snap.ndead, fixed);
            mn_store_clear_gap (ctx->store);
        }
        ctx->last_catchup_us = now;
    }
    mn_store_trim (ctx->store);
    mn_snapshot_release (&snap);
    mn_store_beat (ctx->store, ctx->started_us, mn_metrics_events (ctx->metrics),
                   mn_metrics_bad_events (ctx->metrics), ctx->last_catchup_us);
}

//  -------------------------------------------------------------------------
//  HTTP

static bool
s_token_ok (const char *want, const char *got)
{
    return want && got && strlen (want) == strlen (got) && sodium_memcmp (want, got, strlen (want)) == 0;
}

static void
s_action (s_ctx_t *ctx, const mn_http_request_t *req, const char *action, mn_http_reply_t *reply)
{
    if (!ctx->token) {
        mn_http_text (reply, 403, "actions are disabled: monitor.token is not set (read-only dashboard)");
        return;
    }
    if (!s_token_ok (ctx->token, req->token)) {
        lb_log_warn ("http: %s refused: %s action token peer=%s", action, req->token? "wrong": "missing", req->peer);
        mn_http_text (reply, 403, "%s action token", req->token? "wrong": "missing");
        return;
    }
    json_error_t jerr;
    json_t *doc = json_loadb (req->body, req->body_size, 0, &jerr);
    const char *id = doc? json_string_value (json_object_get (doc, "id")): NULL;
    bool valid = id && strlen (id) == 32 && strspn (id, "0123456789abcdef") == 32;
    if (!valid) {
        mn_http_text (reply, 400, "want a JSON body {\"id\": \"<32 lowercase hex job id>\"}%s%s",
                      doc? "": ": ", doc? "": jerr.text);
        json_decref (doc);
        return;
    }
    int code = mn_mmi_action (ctx->mmi, action, id);
    lb_log_info ("http: %s job=%s by peer=%s -> broker %d", action, id, req->peer, code);
    if (code == 200)
        mn_http_text (reply, 200, "%s: done", action);
    else if (code == 404)
        mn_http_text (reply, 404, "%s: the broker does not know job %s", action, id);
    else if (code == 409)
        mn_http_text (reply, 409, "%s: job %s is not in a state that allows it", action, id);
    else if (code < 0)
        mn_http_text (reply, 502, "%s: the broker did not answer", action);
    else
        mn_http_text (reply, 502, "%s: the broker answered %d", action, code);
    json_decref (doc);
}

static void
s_handle (void *arg, const mn_http_request_t *req, mn_http_reply_t *reply)
{
    s_ctx_t *ctx = arg;
    bool get = !strcmp (req->method, "GET") || !strcmp (req->method, "HEAD");
    const char *path = !strcmp (req->path, "/")? "/index.html": req->path;
    if (ctx->gpu_only) {
        if (!get)
            mn_http_text (reply, 405, "method %s not allowed on %s", req->method, req->path);
        else if (!strcmp (path, "/healthz"))
            mn_http_text (reply, 200, "ok");
        else if (strcmp (path, "/metrics"))
            mn_http_text (reply, 404, "no such page: %.200s (this monitor runs --gpu-only: /metrics only)", req->path);
        else {
            mn_gpu_t gpus [64];
            mn_scrape_facts_t facts = { .gpu_only = true, .nvml = mn_nvml_available (ctx->nvml), .gpus = gpus };
            facts.ngpus = mn_nvml_read (ctx->nvml, gpus, 64);
            reply->body = mn_metrics_render (ctx->metrics, &facts);
            reply->size = strlen (reply->body);
            reply->status = 200;
            reply->content_type = "text/plain; version=0.0.4; charset=utf-8";
        }
        return;
    }
    for (const mn_asset_t *a = mn_assets; a->path; a++)
        if (!strcmp (a->path, path)) {
            if (!get) {
                mn_http_text (reply, 405, "method %s not allowed on %s", req->method, req->path);
                return;
            }
            reply->status = 200;
            reply->content_type = a->content_type;
            reply->body = lb_xmalloc (a->size + 1);
            memcpy (reply->body, a->data, a->size);
            reply->size = a->size;
            reply->cache = "no-cache";
            return;
        }
    if (!strcmp (path, "/metrics") || !strcmp (path, "/api/state") || !strcmp (path, "/healthz")) {
        if (!get) {
            mn_http_text (reply, 405, "method %s not allowed on %s", req->method, req->path);
            return;
        }
        if (!strcmp (path, "/healthz")) {
            mn_http_text (reply, 200, "ok");
            return;
        }
        redisContext *redis = mn_store_redis (ctx->store);
        PGconn *pg = s_pg (ctx);
        if (!strcmp (path, "/api/state")) {
            reply->body = mn_state_json (redis, pg, ctx->prefix, ctx->token != NULL, lb_clock_wall_us ());
            reply->size = strlen (reply->body);
            reply->status = 200;
            reply->content_type = "application/json";
            return;
        }
        mn_scrape_facts_t facts = { .gpu_only = false };
        mn_state_facts (pg, &facts);
        mn_gpu_t gpus [64];
        facts.nvml = mn_nvml_available (ctx->nvml);
        facts.ngpus = mn_nvml_read (ctx->nvml, gpus, 64);
        facts.gpus = gpus;
        facts.redis_up = redis != NULL;
        facts.redis_errors = mn_store_errors (ctx->store);
        reply->body = mn_metrics_render (ctx->metrics, &facts);
        mn_state_facts_release (&facts);
        reply->size = strlen (reply->body);
        reply->status = 200;
        reply->content_type = "text/plain; version=0.0.4; charset=utf-8";
        return;
    }
    if (!strcmp (path, "/api/requeue") || !strcmp (path, "/api/cancel")) {
        if (strcmp (req->method, "POST")) {
            mn_http_text (reply, 405, "%s wants POST", req->path);
            return;
        }
        s_action (ctx, req, path + 5, reply);
        return;
    }
    lb_log_debug ("http: no such page path=%.200s peer=%s", req->path, req->peer);
    mn_http_text (reply, 404, "no such page: %.200s (the dashboard is /, metrics /metrics)", req->path);
}

//  -------------------------------------------------------------------------

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: monitor [-c FILE] [-p PORT] [-v] [--gpu-only] [--print-config]\n"
        "Records the broker's events into Redis (monitoring/REDIS.md), serves Prometheus\n"
        "/metrics and the web dashboard on http://monitor.bind:monitor.port/.\n"
        "      --gpu-only      on a GPU host: serve this host's NVML gauges on /metrics, nothing else\n"
        "                      (no broker, Redis or PostgreSQL needed)\n"
        "  -c, --config FILE   configuration file (else $PREDICTORS_CONFIG)\n"
        "  -p, --port PORT     HTTP port (overrides monitor.port; 0 = any free port)\n"
        "  -v, --verbose       log level debug\n"
        "      --print-config  print the settings in effect and exit\n"
        "  -h, --help\n"
        "Exit status: 0 after SIGINT/SIGTERM, 1 on a fatal error, 2 on bad usage.\n");
}

int
main (int argc, char **argv)
{
    const char *config_path = NULL, *port = NULL;
    bool verbose = false, print = false, gpu_only = false;
    static const struct option opts [] = {
        { "config", required_argument, NULL, 'c' }, { "port", required_argument, NULL, 'p' },
        { "verbose", no_argument, NULL, 'v' }, { "print-config", no_argument, NULL, 'P' },
        { "help", no_argument, NULL, 'h' }, { "gpu-only", no_argument, NULL, 'G' }, { NULL, 0, NULL, 0 }
    };
    int opt;
    while ((opt = getopt_long (argc, argv, "c:p:vh", opts, NULL)) != -1)
        switch (opt) {
            case 'c': config_path = optarg; break;
            case 'p': port = optarg; break;
            case 'v': verbose = true; break;
            case 'P': print = true; break;
            case 'G': gpu_only = true; break;
            case 'h': s_usage (stdout); return 0;
            default:  s_usage (stderr); return 2;
        }
    if (optind < argc) {
        fprintf (stderr, "monitor: unexpected argument '%s'\n", argv [optind]);
        s_usage (stderr);
        return 2;
    }
    lb_log_setup ("monitor", LB_LOG_INFO);
    s_ctx_t ctx = { .started_us = lb_clock_wall_us () };
    int rc = 1;
    ctx.config = lb_config_load (config_path);
    if (!ctx.config)
        return 1;
    if (port && lb_config_set (ctx.config, "monitor.port", port, "--port"))
        goto out;
    lb_log_level_t level = LB_LOG_INFO;
    if (lb_log_level_parse (lb_config_str (ctx.config, "log.level"), &level)) {
        lb_log_error ("log.level: '%s' is not error, warn, info or debug", lb_config_str (ctx.config, "log.level"));
        goto out;
    }
    lb_log_set_level (verbose? LB_LOG_DEBUG: level);
    if (print) {
        lb_config_print (ctx.config, stdout);
        rc = 0;
        goto out;
    }
    //  The loop is single-threaded: a PostgreSQL host that swallows packets must not
    //  hold it for the kernel's TCP timeout, nor a stuck query forever (libpq reads
    //  both from the environment; an operator's own values win).
    setenv ("PGCONNECT_TIMEOUT", "2", 0);
    setenv ("PGOPTIONS", "-c statement_timeout=5000", 0);
    if (sodium_init () < 0) {
        lb_log_error ("libsodium failed to initialise");
        goto out;
    }
    zsys_init ();
    zsys_set_logstream (NULL);
    if (gpu_only) {
        ctx.gpu_only = true;
        ctx.metrics = mn_metrics_new ();
        ctx.nvml = mn_nvml_new ();
        ctx.http = mn_http_new (lb_config_str (ctx.config, "monitor.bind"),
                                (int) lb_config_int (ctx.config, "monitor.port"), s_handle, &ctx);
        if (!ctx.http)
            goto out;
        lb_log_info ("monitor up (gpu-only) http=http://%s:%d/metrics nvml=%s", lb_config_str (ctx.config, "monitor.bind"),
                     mn_http_port (ctx.http), mn_nvml_available (ctx.nvml)? "yes": "no (no GPU metrics)");
        while (!zsys_interrupted) {
            zmq_pollitem_t item = { NULL, mn_http_fd (ctx.http), ZMQ_POLLIN, 0 };
            int64_t ms = mn_http_timeout_ms (ctx.http);
            zmq_poll (&item, 1, ms < 0 || ms > 1000? 1000: (long) ms);
            mn_http_run (ctx.http);
        }
        rc = 0;
        goto out;
    }
    ctx.prefix = lb_config_str (ctx.config, "monitor.redis_prefix");
    const char *token = lb_config_str (ctx.config, "monitor.token");
    ctx.token = token && *token? token: NULL;
    ctx.pg_url = lb_config_str (ctx.config, "postgres.url");
    ctx.catchup_us = (int64_t) (lb_config_seconds (ctx.config, "monitor.catchup") * 1e6);
    mn_store_cfg_t scfg = {
        .job_ttl_s = (int64_t) lb_config_seconds (ctx.config, "monitor.job_ttl"),
        .worker_ttl_s = (int64_t) lb_config_seconds (ctx.config, "monitor.worker_ttl"),
        .jobs_max = lb_config_int (ctx.config, "monitor.jobs_max"),
        .dead_max = lb_config_int (ctx.config, "monitor.dead_max"),
        .events_max = lb_config_int (ctx.config, "monitor.events_max"),
        .stats_ttl_s = (int64_t) lb_config_seconds (ctx.config, "monitor.stats_ttl"),
    };
    //  A worker hash must outlive the gap between two catch-ups.
    if (scfg.worker_ttl_s < 3 * ctx.catchup_us / 1000000 + 1)
        scfg.worker_ttl_s = 3 * ctx.catchup_us / 1000000 + 1;
    if (strlen (ctx.prefix) >= sizeof scfg.prefix) {
        lb_log_error ("monitor.redis_prefix: '%s' is longer than %zu bytes", ctx.prefix, sizeof scfg.prefix - 1);
        goto out;
    }
    snprintf (scfg.prefix, sizeof scfg.prefix, "%s", ctx.prefix);
    ctx.store = mn_store_new (lb_config_str (ctx.config, "redis.url"), &scfg);
    ctx.metrics = mn_metrics_new ();
    ctx.nvml = mn_nvml_new ();
    const char *curve_secret = lb_config_str (ctx.config, "monitor.curve_secret");
    const char *curve_server = lb_config_str (ctx.config, "monitor.curve_server");
    ctx.mmi = mn_mmi_new (lb_config_str (ctx.config, "broker.endpoint"), curve_secret, curve_server,
                          (int) (lb_config_seconds (ctx.config, "monitor.mmi_timeout") * 1000));
    if (!ctx.mmi)
        goto out;
    const char *events = lb_config_str (ctx.config, "broker.events");
    ctx.sub = zsock_new (ZMQ_SUB);
    assert (ctx.sub);
    if (curve_secret && *curve_secret && lb_config_bool (ctx.config, "monitor.events_curve")) {
        zcert_t *cert = zcert_load (curve_secret);
        zcert_t *server = zcert_load (curve_server);
        if (!cert || !server) {
            lb_log_error ("cannot read CURVE certificates monitor.curve_secret=%s monitor.curve_server=%s",
                          curve_secret, curve_server? curve_server: "(unset)");
            zcert_destroy (&cert);
            zcert_destroy (&server);
            goto out;
        }
        zcert_apply (cert, ctx.sub);
        zsock_set_curve_serverkey (ctx.sub, zcert_public_txt (server));
        zcert_destroy (&cert);
        zcert_destroy (&server);
    }
    zsock_set_subscribe (ctx.sub, "");
    zsock_set_rcvhwm (ctx.sub, 100000);
    if (zsock_connect (ctx.sub, "%s", events)) {
        lb_log_error ("broker.events: cannot connect to '%s'", events);
        goto out;
    }
    ctx.http = mn_http_new (lb_config_str (ctx.config, "monitor.bind"), (int) lb_config_int (ctx.config, "monitor.port"),
                            s_handle, &ctx);
    if (!ctx.http)
        goto out;
    lb_log_info ("monitor up http=http://%s:%d/ events=%s broker=%s redis_prefix=%s actions=%s curve=%s",
                 lb_config_str (ctx.config, "monitor.bind"), mn_http_port (ctx.http), events,
                 lb_config_str (ctx.config, "broker.endpoint"), ctx.prefix, ctx.token? "on": "off (read-only)",
                 curve_secret && *curve_secret? "on": "off");

    while (!zsys_interrupted) {
        int64_t now = lb_clock_mono_us ();
        if (now >= ctx.next_catchup_us) {
            s_catchup (&ctx);
            //  A broker that does not answer costs the loop monitor.mmi_timeout per try:
            //  back off (doubling, up to 30 s) until it answers or an event shows it is back.
            int64_t wait = ctx.catchup_us;
            int64_t most = ctx.catchup_us > S_BACKOFF_MAX_US? ctx.catchup_us: S_BACKOFF_MAX_US;
            for (int i = 0; i < ctx.broker_fails && wait < most; i++)
                wait *= 2;
            ctx.next_catchup_us = lb_clock_mono_us () + (wait < most? wait: most);
            now = lb_clock_mono_us ();
        }
        int64_t wait_ms = (ctx.next_catchup_us - now) / 1000 + 1;
        int64_t http_ms = mn_http_timeout_ms (ctx.http);
        if (http_ms >= 0 && http_ms < wait_ms)
            wait_ms = http_ms;
        zmq_pollitem_t items [2] = {
            { zsock_resolve (ctx.sub), 0, ZMQ_POLLIN, 0 },
            { NULL, mn_http_fd (ctx.http), ZMQ_POLLIN, 0 },
        };
        if (zmq_poll (items, 2, (long) wait_ms) < 0) {
            if (zsys_interrupted)
                break;
            continue;
        }
        bool got_events = false;
        for (int n = 0; n < S_DRAIN_MAX && (zsock_events (ctx.sub) & ZMQ_POLLIN); n++) {
            s_on_event (&ctx);
            got_events = true;
        }
        if (got_events && ctx.broker_fails)
            ctx.next_catchup_us = 0;            //  the broker publishes again: catch up now
        mn_http_run (ctx.http);
    }
    lb_log_info ("monitor stopping events=%lld bad_events=%lld", (long long) mn_metrics_events (ctx.metrics),
                 (long long) mn_metrics_bad_events (ctx.metrics));
    rc = 0;
out:
    mn_http_destroy (&ctx.http);
    zsock_destroy (&ctx.sub);
    mn_mmi_destroy (&ctx.mmi);
    mn_nvml_destroy (&ctx.nvml);
    mn_metrics_destroy (&ctx.metrics);
    mn_store_destroy (&ctx.store);
    if (ctx.pg)
        PQfinish (ctx.pg);
    lb_config_destroy (&ctx.config);
    return rc;
}
