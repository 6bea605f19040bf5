/*  sc_live.h - the scheduler's live state in Redis (keys in monitoring/REDIS.md).

    Redis is optional: when it is down or goes away, writes are dropped, one
    warning is logged per outage, reconnections back off from 0.5 s to 30
    s, and the caller never waits for it. Runs never stop for Redis.
*/
#ifndef SC_LIVE_H_INCLUDED
#define SC_LIVE_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

typedef struct _sc_live_t sc_live_t;

//  Returns a writer for the Redis at url (NULL url: every write is dropped).
//  Connects lazily.
sc_live_t *sc_live_new (const char *url);

//  Destroys the writer. Accepts NULL; sets *self_p to NULL.
void sc_live_destroy (sc_live_t **self_p);

//  HSET key with the NULL-terminated field/value pairs (a NULL value is
//  written as ""), then EXPIRE key ttl seconds when ttl > 0 or PERSIST when
//  ttl == 0 (ttl < 0: leave the TTL alone). Returns 0, or -1 when dropped.
int sc_live_hash (sc_live_t *self, const char *key, int64_t ttl, const char *const *pairs);

//  Runs one command given as argc/argv (e.g. ZADD, SADD, SREM). Returns 0 or -1.
int sc_live_argv (sc_live_t *self, int argc, const char **argv);

//  Probes the connection and reconnects when a retry is due.
//  Returns true exactly once after an outage ends (or at the first
//  connection): the caller then rewrites what Redis may have lost.
bool sc_live_recovered (sc_live_t *self);

//  True when the last write reached Redis.
bool sc_live_up (sc_live_t *self);

//  Selftest (needs REDIS_URL; checks the outage path without it).
void sc_live_test (bool verbose);

#endif
