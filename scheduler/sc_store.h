/*  sc_store.h - runs and steps in PostgreSQL (deploy/sql/020_scheduler.sql),
    shared by the CLI and the daemon, and their mirror in Redis.

    Run states: queued, running, succeeded, failed, cancelled.
    Step states: waiting, submitted, running, done, failed, cancelled.
*/
#ifndef SC_STORE_H_INCLUDED
#define SC_STORE_H_INCLUDED

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pr_job.h"
#include "sc_live.h"
#include "sc_pipeline.h"

//  Creates a run of pipeline with params (from sc_pipeline_run_params):
//  the run row and one row per step, in one transaction (a savepoint when
//  the caller has a transaction open: the caller then commits). trigger is
//  "manual" or "cron"; slot is the cron slot (seconds since the epoch) or -1.
//  Returns 0 with *run_id (caller frees); 1 when that cron slot already has
//  a run (another daemon started it); -1 with err.
int sc_store_enqueue (PGconn *db, sc_pipeline_t *pipeline, const pr_kv_t *params,
                      const char *trigger, int64_t slot, char **run_id, char *err, size_t err_size);

//  Appends a line to the run's log (sched_log). Failures are logged only.
void sc_store_log (PGconn *db, const char *run_id, const char *step, const char *level,
                   const char *fmt, ...) __attribute__ ((format (printf, 5, 6)));

//  Checks that run_id exists. Returns 1 (yes), 0 (no), -1 (database error).
int sc_store_run_exists (PGconn *db, const char *run_id);

//  Cancels a queued or running run (the daemon closes its jobs). Returns 0;
//  1 when the run is already finished (err says its state); -1 on error.
int sc_store_cancel (PGconn *db, const char *run_id, char *err, size_t err_size);

//  Puts a failed or cancelled run back to running from its failed and
//  cancelled steps (their next submission counts one more). Returns 0; 1
//  when the run is not failed or cancelled (err says why); -1 on error.
int sc_store_retry (PGconn *db, const char *run_id, char *err, size_t err_size);

//  After the broker requeued dead job job_id (mmi.requeue): the failed step
//  that submitted it waits for it again and its run is running again.
//  Returns 1 when a step was revived (*run_id set, caller frees), 0 when no
//  failed step has that job, -1 on error.
int sc_store_requeued (PGconn *db, const char *job_id, char **run_id);

//  Pauses or resumes a pipeline (no cron slots fire, queued runs wait).
int sc_store_pause (PGconn *db, const char *pipeline, bool paused);

//  Mirrors a run and its steps into Redis (monitoring/REDIS.md); finished
//  runs get ttl seconds. Errors are logged only.
void sc_store_publish (PGconn *db, sc_live_t *live, const char *run_id, int64_t ttl);

//  Selftest (needs DATABASE_URL with migrations applied; skips without it).
void sc_store_test (bool verbose);

#endif
