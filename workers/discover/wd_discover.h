/*  wd_discover.h - one discover step: propose a task that is valid, feasible
    and novel against every task ever tried, from the LLM or the catalog,
    and store it.

    The LLM path: a system prompt (what makes a task interesting, feasible and
    novel; the data kinds allowed), the history of past tasks, JSON forced by
    the task schema. Each reply is validated (proto/pr_task.h), its sources
    checked against the policy (lib/lb_netpolicy.h) and probed (HEAD or a
    ranged GET: status, type, length); the first invalid or infeasible reply
    is sent back once with the reason; a second one fails the step with both
    texts recorded. A duplicate or near-duplicate is sent back with the reason
    and another proposal asked for, up to discover.attempts.

    The catalog path (no key, or discover.mode = catalog): the first catalog
    candidate novel against every past task (wd_catalog.h).

    Replays: with a store and a run, a step that already stored its task
    returns it and changes nothing.
*/
#ifndef WD_DISCOVER_H_INCLUDED
#define WD_DISCOVER_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#include "lb_config.h"
#include "wd_store.h"

typedef enum {
    WD_STEP_DONE = 0,
    WD_STEP_RETRY = 1,      //  worth retrying later (API unavailable, database down)
    WD_STEP_FAIL = 2        //  permanent (bad key, invalid output twice, catalog exhausted, ...)
} wd_step_t;

//  What a step produced. Strings are owned; release with wd_outcome_release.
typedef struct {
    char *spec_json;        //  the accepted task, canonical JSON (NULL on failure)
    char *name;
    char *fingerprint;
    const char *origin;     //  "llm" or "catalog" (static)
    int64_t task_id;        //  tasks.id, 0 without a store
    bool replayed;          //  found from an earlier delivery of (run, step)
    double similarity;      //  highest hypothesis similarity to a past task
    int proposals;          //  proposals looked at (LLM replies or catalog candidates)
    int requests;           //  API requests sent
    int64_t history;        //  past tasks compared against
    char *error_code;       //  on failure: no_api_key, bad_key_file, bad_config, llm_error,
                            //  llm_unavailable, invalid_output, not_novel, catalog_exhausted, store
    char *error;            //  on failure: for people (never holds the key)
} wd_outcome_t;

//  Releases what out holds and zeroes it; harmless twice.
void wd_outcome_release (wd_outcome_t *out);

//  Runs one step with the settings in config. store may be NULL (nothing
//  remembered: the history is empty and nothing is written); run and step
//  may be NULL. stop (may be NULL) interrupts waits. Fills *out.
wd_step_t wd_discover_run (lb_config_t *config, wd_store_t *store, const char *run, const char *step,
                           volatile const int *stop, wd_outcome_t *out);

//  Reads the API key: llm.api_key (ANTHROPIC_API_KEY), else the file named by
//  discover.api_key_file, which must be a regular file of mode 0600 or
//  stricter. Returns 0 and *key (caller frees; NULL when none is configured),
//  or -1 with *error_p (caller frees) for a bad file.
int wd_discover_api_key (lb_config_t *config, char **key, char **error_p);

//  Selftest.
void wd_discover_test (bool verbose);

#endif
