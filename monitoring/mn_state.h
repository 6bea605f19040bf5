/*  mn_state.h - what the dashboard shows, as one JSON document (/api/state).

    Read at each request from Redis (the live picture the monitor writes:
    workers, queues, dead letters, recent events, job progress) and from
    PostgreSQL (runs and their steps from the scheduler's tables, the model
    registry's production metric over time). Nothing comes from the
    monitor's memory, so the page shows the same history after a restart.

    Either store may be down or not yet have its tables (a part of the
    system not installed): the document then carries what it could read and
    an "errors" list saying what it could not, and the page shows that.
*/
#ifndef MN_STATE_H_INCLUDED
#define MN_STATE_H_INCLUDED

#include <hiredis.h>
#include <libpq-fe.h>
#include <stdbool.h>
#include <stdint.h>

#include "mn_metrics.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Builds the document. redis and pg may be NULL (down). prefix is the
//  Redis key prefix ("pred:"). actions: whether an action token is
//  configured. Returns a malloc'd JSON string (caller frees).
char *mn_state_json (redisContext *redis, PGconn *pg, const char *prefix, bool actions, int64_t now_us);

//  Reads the run counts and production metrics for /metrics. Fills the
//  arrays (malloc'd; caller frees with mn_state_facts_release) and returns
//  0, or -1 when PostgreSQL is down (facts->db_up false).
int mn_state_facts (PGconn *pg, mn_scrape_facts_t *facts);
void mn_state_facts_release (mn_scrape_facts_t *facts);

//  Selftest (needs REDIS_URL and DATABASE_URL for the server part).
void mn_state_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
