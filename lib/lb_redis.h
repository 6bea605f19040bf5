/*  lb_redis.h - small helpers over hiredis: connect from a redis:// URL
    (password and database included), with timeouts and a clear error. Use
    hiredis directly for commands (redisCommand, pipelining with
    redisAppendCommand / redisGetReply). Redis holds what is live: callers
    treat it as optional and keep working when it is down.
*/
#ifndef LB_REDIS_H_INCLUDED
#define LB_REDIS_H_INCLUDED

#include <hiredis.h>
#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

//  A parsed redis://[[user]:password@]host[:port][/db] URL.
typedef struct {
    char host [256];
    int port;                   //  default 6379
    char password [256];        //  "" when none
    int db;                     //  default 0
} lb_redis_url_t;

//  Parses url into *out. Returns 0, or -1 after logging what is wrong.
int lb_redis_parse_url (const char *url, lb_redis_url_t *out);

//  Connects (timeout in seconds for connect and each command), sends AUTH
//  and SELECT as needed. Returns the context (caller redisFree()s), or NULL
//  after logging one line (password never shown).
redisContext *lb_redis_connect (const char *url, double timeout);

//  Runs a command and checks the reply is not an error. Returns the reply
//  (caller freeReplyObject()s), or NULL after logging why (connection lost,
//  or the error reply).
redisReply *lb_redis_cmd (redisContext *ctx, const char *fmt, ...);

//  A link: one connection to a Redis that may come and go, for writers of
//  live state (the scheduler, the monitor). While Redis is down nothing
//  waits for it: lb_redis_link_get returns NULL at once until the next
//  retry is due (backoff from 0.5 s doubling to 30 s); one warning is
//  logged per outage (with the caller's words for what is not written)
//  and one line when it is back.
typedef struct _lb_redis_link_t lb_redis_link_t;

//  A link to url (NULL or "": never connects, every get returns NULL).
//  timeout: seconds for connect and each command. lost_text, back_text:
//  what the warning and the recovery line add, e.g. "live state is not
//  written until it is back". Connects lazily.
lb_redis_link_t *lb_redis_link_new (const char *url, double timeout, const char *lost_text,
                                    const char *back_text);

//  Destroys the link. Accepts NULL; sets *self_p to NULL.
void lb_redis_link_destroy (lb_redis_link_t **self_p);

//  The connected context, connecting when a retry is due; NULL while Redis
//  is unavailable. The link owns the context.
redisContext *lb_redis_link_get (lb_redis_link_t *self);

//  The connection failed (why: for the log): drops it and schedules the
//  next try.
void lb_redis_link_lost (lb_redis_link_t *self, const char *why);

//  True exactly once after each (re)connection: the caller rewrites what
//  Redis may have lost meanwhile.
bool lb_redis_link_fresh (lb_redis_link_t *self);

//  Selftest (needs REDIS_URL; the server part is skipped without it).
void lb_redis_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
