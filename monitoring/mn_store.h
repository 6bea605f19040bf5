/*  mn_store.h - the monitor's writer of the live picture into Redis.

    Every key, its type, fields and lifetime are in monitoring/REDIS.md; this
    module is the one place that writes them (prefix "pred:"). Every
    collection has a cap or a TTL. Writes are pipelined: one round trip per
    event. When Redis is down the store says so (-1), reconnects no more
    often than every retry interval (doubling up to 30 s), and reports
    `gap` so the caller catches up from the broker (mmi.*) once it is back.
*/
#ifndef MN_STORE_H_INCLUDED
#define MN_STORE_H_INCLUDED

#include <hiredis.h>
#include <stdbool.h>
#include <stdint.h>

#include "mn_event.h"
#include "mn_mmi.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int64_t job_ttl_s;          //  a job's hash lives this long after its last change
    int64_t worker_ttl_s;       //  a worker's hash expires unless refreshed (events, catch-up)
    int64_t jobs_max;           //  pred:jobs (recent jobs) cap
    int64_t dead_max;           //  pred:dead cap
    int64_t events_max;         //  pred:events stream cap (approximate, MAXLEN ~)
    int64_t stats_ttl_s;        //  daily counters
    char prefix [32];           //  key prefix, "pred:" (REDIS.md); tests use their own
} mn_store_cfg_t;

typedef struct _mn_store_t mn_store_t;

//  Returns a store for the Redis server at url (connects lazily). The
//  configuration is copied.
mn_store_t *mn_store_new (const char *url, const mn_store_cfg_t *cfg);

//  Destroys the store. Accepts NULL; sets *self_p to NULL.
void mn_store_destroy (mn_store_t **self_p);

//  Returns the connection when Redis is reachable (reconnecting if it is
//  time to try), else NULL. Borrowed: valid until the next store call.
redisContext *mn_store_redis (mn_store_t *self);

//  Writes what one event changes. Returns 0, or -1 when Redis is down or
//  refused a command (logged once per outage; the event is lost, and
//  mn_store_gap turns true).
int mn_store_event (mn_store_t *self, const mn_event_t *event);

//  Writes the broker's truth: queues, workers (and removes workers the
//  broker no longer has), dead letters, broker counters. Returns 0 or -1.
int mn_store_snapshot (mn_store_t *self, const mn_snapshot_t *snap);

//  Keeps pred:jobs to jobs_max: the oldest beyond it leave the set and their
//  hashes are deleted (unless pred:dead still lists them). Called at each
//  catch-up, so the set exceeds its cap by at most one interval's jobs.
//  Returns how many hashes were deleted, or -1 when Redis is down.
int mn_store_trim (mn_store_t *self);

//  Writes one job's state as the broker reports it (catch-up of a job whose
//  events were missed). Returns 0 or -1.
int mn_store_job (mn_store_t *self, const mn_mmi_job_t *job, int64_t now_us);

//  Fills ids (up to max, each 33 bytes) with jobs not finished by our
//  records, least recently checked first, and marks them checked at now_us.
//  Returns how many, or -1 when Redis is down.
int mn_store_active_jobs (mn_store_t *self, char (*ids) [33], int max, int64_t now_us);

//  Records the monitor's own heartbeat (pred:monitor). Returns 0 or -1.
int mn_store_beat (mn_store_t *self, int64_t started_us, int64_t events, int64_t bad_events,
                   int64_t last_catchup_us);

//  True when events may have been lost since the last successful catch-up
//  (the store was never synced, or Redis was down). mn_store_clear_gap
//  after a catch-up.
bool mn_store_gap (mn_store_t *self);
void mn_store_clear_gap (mn_store_t *self);

//  Counts of failures (for metrics): Redis commands that failed, reconnects.
int64_t mn_store_errors (mn_store_t *self);
bool mn_store_up (mn_store_t *self);

//  Selftest (needs REDIS_URL; skips the server part without it).
void mn_store_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
