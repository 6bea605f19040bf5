/*  wd_store.h - the discover step's PostgreSQL tables (deploy/sql/030_tasks.sql):
    tasks (every task ever tried, with fingerprint, MinHash and the run that
    proposed it) and discover_attempts (every proposal looked at, and why it was
    refused).
*/
#ifndef WD_STORE_H_INCLUDED
#define WD_STORE_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#include "pr_task.h"
#include "wd_novelty.h"

typedef struct _wd_store_t wd_store_t;

//  Connects. Returns the store, or NULL after logging why.
wd_store_t *wd_store_new (const char *url);

//  Disconnects. Accepts NULL; sets *self_p to NULL.
void wd_store_destroy (wd_store_t **self_p);

//  Adds every task ever stored to nov. Returns how many, or -1 (logged).
int64_t wd_store_load (wd_store_t *self, wd_novelty_t *nov);

//  Looks for the task already proposed by (run, step). Returns 0 and sets
//  *spec_json (caller frees) and *id, 1 when there is none, -1 on error (logged).
int wd_store_find (wd_store_t *self, const char *run, const char *step, char **spec_json, int64_t *id);

//  Stores an accepted task (run and step may be NULL). Returns 0 and *id; 1
//  when its fingerprint is already stored (another worker got there first),
//  or when (run, step) already has a task; -1 on error (logged).
int wd_store_insert (wd_store_t *self, const pr_task_t *task, const wd_minhash_t *sig, const char *origin,
                     const char *run, const char *step, int64_t *id);

//  Records one proposal and its outcome (accepted, invalid, duplicate,
//  near_duplicate, infeasible, api_error); reason and output may be NULL.
//  Returns 0 or -1 (logged).
int wd_store_attempt (wd_store_t *self, const char *run, const char *step, const char *origin,
                      const char *outcome, const char *reason, const char *output);

//  Reads the column names of table (in schema public). Returns 0 and a
//  comma-separated list in *columns (caller frees), 1 when there is no such
//  table, -1 on error (logged).
int wd_store_columns (wd_store_t *self, const char *table, char **columns);

//  Returns a summary of past tasks, newest first, one line each ("name: kind
//  of column, horizon h, from uri + uri"), at most max_bytes long (older
//  tasks beyond it are counted in a last line), or NULL on error (logged).
//  Caller frees.
char *wd_store_history (wd_store_t *self, size_t max_bytes);

//  Selftest (needs DATABASE_URL with the migrations applied; skips without).
void wd_store_test (bool verbose);

#endif
