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

//  Selftest (needs REDIS_URL; the server part is skipped without it).
void lb_redis_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
