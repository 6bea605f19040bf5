/*  sc_live.c - best-effort writes of live state to Redis. */
#include "sc_live.h"
#include "lb_clock.h"
#include "lb_log.h"
#include "lb_mem.h"
#include "lb_redis.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

struct _sc_live_t {
    lb_redis_link_t *link;
    bool up;                //  the last write reached Redis
};

sc_live_t *
sc_live_new (const char *url)
{
    sc_live_t *self = lb_xcalloc (1, sizeof *self);
    self->link = lb_redis_link_new (url, 1.0, "live state is not written until it is back (runs go on)",
                                    "live state is written again");
    return self;
}

void
sc_live_destroy (sc_live_t **self_p)
{
    assert (self_p);
    sc_live_t *self = *self_p;
    if (!self)
        return;
    lb_redis_link_destroy (&self->link);
    free (self);
    *self_p = NULL;
}

int
sc_live_argv (sc_live_t *self, int argc, const char **argv)
{
    assert (self);
    redisContext *ctx = lb_redis_link_get (self->link);
    if (!ctx) {
        self->up = false;
        return -1;
    }
    redisReply *reply = redisCommandArgv (ctx, argc, argv, NULL);
    if (!reply) {
        lb_redis_link_lost (self->link, ctx->errstr);
        self->up = false;
        return -1;
    }
    int rc = reply->type == REDIS_REPLY_ERROR ? -1 : 0;
    if (rc)
        lb_log_warn ("redis %s answered: %s", argv [0], reply->str);
    freeReplyObject (reply);
    self->up = rc == 0;
    return rc;
}

int
sc_live_hash (sc_live_t *self, const char *key, int64_t ttl, const char *const *pairs)
{
    int count = 0;
    while (pairs [count])
        count += 2;
    const char **argv = lb_xcalloc ((size_t) count + 2, sizeof (char *));
    argv [0] = "HSET";
    argv [1] = key;
    for (int i = 0; i < count; i++)
        argv [2 + i] = pairs [i] ? pairs [i] : "";
    int rc = sc_live_argv (self, count + 2, argv);
    free (argv);
    if (rc == 0 && ttl > 0) {
        char text [32];
        snprintf (text, sizeof text, "%lld", (long long) ttl);
        const char *expire [] = { "EXPIRE", key, text };
        rc = sc_live_argv (self, 3, expire);
    }
    else
    if (rc == 0 && ttl == 0) {
        const char *persist [] = { "PERSIST", key };
        rc = sc_live_argv (self, 2, persist);
    }
    return rc;
}

bool
sc_live_recovered (sc_live_t *self)
{
    assert (self);
    //  A connection that died quietly shows at the next command: probe it
    //  (and reconnect when a retry is due).
    const char *ping [] = { "PING" };
    sc_live_argv (self, 1, ping);
    return lb_redis_link_fresh (self->link);
}

bool
sc_live_up (sc_live_t *self)
{
    return self->up;
}

void
sc_live_test (bool verbose)
{
    (void) verbose;
    lb_log_set_level (LB_LOG_ERROR);
    //  Nothing listens here: writes are dropped, quickly, without a crash.
    sc_live_t *live = sc_live_new ("redis://127.0.0.1:1/0");
    const char *pairs [] = { "state", "running", NULL };
    assert (sc_live_hash (live, "pred:test", 60, pairs) == -1);
    assert (!sc_live_up (live));
    int64_t start = lb_clock_mono_us ();
    for (int i = 0; i < 100; i++)
        assert (sc_live_hash (live, "pred:test", 60, pairs) == -1);
    assert (lb_clock_mono_us () - start < 1000000);     //  no reconnection per write
    sc_live_destroy (&live);
    assert (!live);
    const char *url = getenv ("REDIS_URL");
    if (!url)
        return;
    live = sc_live_new (url);
    const char *fields [] = { "state", "running", "step", NULL, NULL };
    assert (sc_live_hash (live, "pred:selftest:sc_live", 60, fields) == 0);
    assert (sc_live_up (live));
    const char *del [] = { "DEL", "pred:selftest:sc_live" };
    assert (sc_live_argv (live, 2, del) == 0);
    sc_live_destroy (&live);
}
