/*  lb_redis.c - hiredis connection helpers. */
#include "lb_redis.h"
#include "lb_clock.h"
#include "lb_log.h"
#include "lb_mem.h"

#include <assert.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>

int
lb_redis_parse_url (const char *url, lb_redis_url_t *out)
{
    assert (out);
    memset (out, 0, sizeof *out);
    out->port = 6379;
    if (!url || strncmp (url, "redis://", 8) != 0) {
        lb_log_error ("redis url '%s': must start with redis://", url ? url : "(null)");
        return -1;
    }
    const char *at = url + 8;
    const char *end = at + strcspn (at, "/");
    const char *amp = memchr (at, '@', (size_t) (end - at));
    if (amp) {
        const char *colon = memchr (at, ':', (size_t) (amp - at));
        if (colon) {
            size_t len = (size_t) (amp - colon - 1);
            if (len >= sizeof out->password) {
                lb_log_error ("redis url: password too long");
                return -1;
            }
            memcpy (out->password, colon + 1, len);
        }
        at = amp + 1;
    }
    const char *colon = memchr (at, ':', (size_t) (end - at));
    const char *host_end = colon ? colon : end;
    size_t host_len = (size_t) (host_end - at);
    if (host_len == 0 || host_len >= sizeof out->host) {
        lb_log_error ("redis url: missing or oversized host");
        return -1;
    }
    memcpy (out->host, at, host_len);
    if (colon) {
        char *stop;
        long port = strtol (colon + 1, &stop, 10);
        if (stop != end || port <= 0 || port > 65535) {
            lb_log_error ("redis url host=%s: bad port", out->host);
            return -1;
        }
        out->port = (int) port;
    }
    if (*end == '/' && end [1]) {
        char *stop;
        long db = strtol (end + 1, &stop, 10);
        if (*stop || db < 0 || db > 1000) {
            lb_log_error ("redis url host=%s: bad database number '%s'", out->host, end + 1);
            return -1;
        }
        out->db = (int) db;
    }
    return 0;
}

redisReply *
lb_redis_cmd (redisContext *ctx, const char *fmt, ...)
{
    assert (ctx && fmt);
    va_list args;
    va_start (args, fmt);
    redisReply *reply = redisvCommand (ctx, fmt, args);
    va_end (args);
    if (!reply) {
        lb_log_warn ("redis: %s", ctx->errstr [0] ? ctx->errstr : "connection lost");
        return NULL;
    }
    if (reply->type == REDIS_REPLY_ERROR) {
        lb_log_warn ("redis: command failed: %s", reply->str);
        freeReplyObject (reply);
        return NULL;
    }
    return reply;
}

//  Connects; quiet: an unreachable server is not logged (a link in an
//  outage it already reported).
static redisContext *
s_connect (const char *url, double timeout, bool quiet)
{
    lb_redis_url_t parsed;
    if (lb_redis_parse_url (url, &parsed))
        return NULL;
    struct timeval tv = { (time_t) timeout, (suseconds_t) ((timeout - (double) (time_t) timeout) * 1e6) };
    redisContext *ctx = redisConnectWithTimeout (parsed.host, parsed.port, tv);
    if (!ctx || ctx->err) {
        if (!quiet)
            lb_log_warn ("redis %s:%d: cannot connect: %s", parsed.host, parsed.port,
                         ctx ? ctx->errstr : "out of memory");
        if (ctx)
            redisFree (ctx);
        return NULL;
    }
    redisSetTimeout (ctx, tv);
    redisReply *reply = NULL;
    if (parsed.password [0]) {
        reply = redisCommand (ctx, "AUTH %s", parsed.password);
        if (!reply || reply->type == REDIS_REPLY_ERROR) {
            lb_log_warn ("redis %s:%d: authentication failed", parsed.host, parsed.port);
            goto fail;
        }
        freeReplyObject (reply);
    }
    if (parsed.db) {
        reply = redisCommand (ctx, "SELECT %d", parsed.db);
        if (!reply || reply->type == REDIS_REPLY_ERROR) {
            lb_log_warn ("redis %s:%d: cannot select database %d", parsed.host, parsed.port, parsed.db);
            goto fail;
        }
        freeReplyObject (reply);
    }
    return ctx;
fail:
    if (reply)
        freeReplyObject (reply);
    redisFree (ctx);
    return NULL;
}

redisContext *
lb_redis_connect (const char *url, double timeout)
{
    return s_connect (url, timeout, false);
}

//  --------------------------------------------------------------------------
//  Link

#define S_LINK_RETRY_MIN_US (500 * 1000)
#define S_LINK_RETRY_MAX_US (30 * 1000 * 1000)

struct _lb_redis_link_t {
    char *url;
    double timeout;
    char *lost_text;
    char *back_text;
    redisContext *ctx;
    int64_t next_try_us;        //  monotonic µs before which no connect is tried
    int64_t backoff_us;
    bool down;                  //  an outage was logged
    bool fresh;                 //  connected since the last lb_redis_link_fresh
};

lb_redis_link_t *
lb_redis_link_new (const char *url, double timeout, const char *lost_text, const char *back_text)
{
    assert (timeout > 0 && lost_text && back_text);
    lb_redis_link_t *self = lb_xcalloc (1, sizeof *self);
    self->url = url && *url ? lb_xstrdup (url) : NULL;
    self->timeout = timeout;
    self->lost_text = lb_xstrdup (lost_text);
    self->back_text = lb_xstrdup (back_text);
    self->backoff_us = S_LINK_RETRY_MIN_US;
    return self;
}

void
lb_redis_link_destroy (lb_redis_link_t **self_p)
{
    assert (self_p);
    lb_redis_link_t *self = *self_p;
    if (!self)
        return;
    if (self->ctx)
        redisFree (self->ctx);
    free (self->url);
    free (self->lost_text);
    free (self->back_text);
    free (self);
    *self_p = NULL;
}

void
lb_redis_link_lost (lb_redis_link_t *self, const char *why)
{
    assert (self);
    if (!self->down)
        lb_log_warn ("redis unavailable (%s): %s", why ? why : "connection lost", self->lost_text);
    self->down = true;
    if (self->ctx) {
        redisFree (self->ctx);
        self->ctx = NULL;
    }
    self->next_try_us = lb_clock_mono_us () + self->backoff_us;
    self->backoff_us = self->backoff_us * 2 > S_LINK_RETRY_MAX_US ? S_LINK_RETRY_MAX_US : self->backoff_us * 2;
}

redisContext *
lb_redis_link_get (lb_redis_link_t *self)
{
    assert (self);
    if (self->ctx || !self->url)
        return self->ctx;
    if (lb_clock_mono_us () < self->next_try_us)
        return NULL;
    self->ctx = s_connect (self->url, self->timeout, self->down);
    if (!self->ctx) {
        lb_redis_link_lost (self, "cannot connect");
        return NULL;
    }
    if (self->down)
        lb_log_info ("redis is back: %s", self->back_text);
    self->down = false;
    self->fresh = true;
    self->backoff_us = S_LINK_RETRY_MIN_US;
    return self->ctx;
}

bool
lb_redis_link_fresh (lb_redis_link_t *self)
{
    assert (self);
    bool fresh = self->fresh && self->ctx;
    self->fresh = false;
    return fresh;
}

void
lb_redis_test (bool verbose)
{
    (void) verbose;
    lb_redis_url_t u;
    assert (lb_redis_parse_url ("redis://127.0.0.1:6380/2", &u) == 0);
    assert (strcmp (u.host, "127.0.0.1") == 0 && u.port == 6380 && u.db == 2 && !u.password [0]);
    assert (lb_redis_parse_url ("redis://:pw@cache", &u) == 0);
    assert (strcmp (u.host, "cache") == 0 && u.port == 6379 && strcmp (u.password, "pw") == 0);
    assert (lb_redis_parse_url ("redis://user:pw@cache:7000/", &u) == 0);
    assert (u.port == 7000 && u.db == 0 && strcmp (u.password, "pw") == 0);
    int fd = lb_log_setup_fd (-1);
    assert (lb_redis_parse_url ("http://x", &u) == -1);
    assert (lb_redis_parse_url ("redis://:99999", &u) == -1);
    assert (lb_redis_parse_url ("redis://h:0", &u) == -1);
    assert (lb_redis_parse_url ("redis://h/x", &u) == -1);
    assert (lb_redis_connect ("redis://127.0.0.1:1/0", 0.5) == NULL);
    //  A link to nothing: NULL at once, and inside the backoff no new try.
    lb_redis_link_t *link = lb_redis_link_new ("redis://127.0.0.1:1/0", 0.5, "test", "test");
    assert (lb_redis_link_get (link) == NULL);
    int64_t start = lb_clock_mono_us ();
    for (int i = 0; i < 100; i++)
        assert (lb_redis_link_get (link) == NULL);
    assert (lb_clock_mono_us () - start < 400000);
    assert (!lb_redis_link_fresh (link));
    lb_redis_link_destroy (&link);
    assert (!link);
    link = lb_redis_link_new (NULL, 1.0, "test", "test");
    assert (lb_redis_link_get (link) == NULL);
    lb_redis_link_destroy (&link);
    lb_log_setup_fd (fd);

    const char *url = getenv ("REDIS_URL");
    if (!url) {
        printf ("lb_redis: REDIS_URL not set, server part skipped\n");
        return;
    }
    redisContext *ctx = lb_redis_connect (url, 2.0);
    assert (ctx);
    redisReply *reply = lb_redis_cmd (ctx, "SET %s %s", "lb_redis_test", "1");
    assert (reply);
    freeReplyObject (reply);
    fd = lb_log_setup_fd (-1);
    assert (lb_redis_cmd (ctx, "INCRBY %s %s", "lb_redis_test", "x") == NULL);
    lb_log_setup_fd (fd);
    reply = lb_redis_cmd (ctx, "DEL %s", "lb_redis_test");
    assert (reply && reply->integer == 1);
    freeReplyObject (reply);
    redisFree (ctx);

    //  A link connects once, says so once, and starts over after a loss.
    link = lb_redis_link_new (url, 2.0, "test", "test");
    ctx = lb_redis_link_get (link);
    assert (ctx && lb_redis_link_get (link) == ctx);
    assert (lb_redis_link_fresh (link) && !lb_redis_link_fresh (link));
    fd = lb_log_setup_fd (-1);
    lb_redis_link_lost (link, "test");
    lb_log_setup_fd (fd);
    assert (lb_redis_link_get (link) == NULL);           //  inside the first backoff
    lb_redis_link_destroy (&link);
}
