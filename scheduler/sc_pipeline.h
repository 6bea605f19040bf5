/*  sc_pipeline.h - pipeline definitions: steps, services, dependencies, parameters.

    A pipeline is one file NAME.conf in the pipelines directory
    (scheduler.pipelines, default deploy/pipelines). The format is INI:

        [pipeline]
        description = the weekly research pipeline
        schedule = 0 0 * * sun          # cron (sc_cron.h); absent: manual runs only
        timezone = UTC                  # IANA zone for the schedule
        catchup = 6h                    # a missed slot still runs this long after it (0: never)
        overlap = skip                  # skip | queue | replace: a slot while a run is active

        [params]                        # the parameters `--param k=v` may set, with defaults
        seed = 42

        [step.fetch]
        service = fetch                 # Majordomo service the step's job goes to
        needs = discover                # comma list of steps that must be done first
        timeout = 30m                   # the job's deadline (0: none)
        attempts = 3                    # broker attempts before the step fails
        gpu = false                     # needs_gpu in the envelope
        ranks = 1                       # N > 1: N jobs, one per rank of a data-parallel
                                        # NCCL group (pr_rank.h); implies gpu = true
        param.rows = 100000             # a job parameter; ${seed} is replaced by a pipeline param

    Every error names the file and line and says why; the steps must form a DAG
    (a cycle is reported with its path, a missing dependency with its name).
*/
#ifndef SC_PIPELINE_H_INCLUDED
#define SC_PIPELINE_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "pr_job.h"
#include "sc_cron.h"

typedef enum { SC_OVERLAP_SKIP, SC_OVERLAP_QUEUE, SC_OVERLAP_REPLACE } sc_overlap_t;

typedef struct {
    char *name;
    char *service;
    char **needs;           //  names of steps
    size_t needs_count;
    pr_kv_t params;         //  strings, ${param} not yet replaced
    double timeout;         //  seconds, 0 = none
    int attempts;
    bool gpu;
    int ranks;              //  1, or the ranks of a training group (implies gpu)
} sc_step_def_t;

typedef struct _sc_pipeline_t sc_pipeline_t;

//  Loads and checks the file at path; the pipeline's name is the file name
//  without ".conf". Returns it, or NULL with one line in err.
sc_pipeline_t *sc_pipeline_load (const char *path, char *err, size_t err_size);

//  Loads pipeline name from directory dir. Unknown names give
//  "unknown pipeline 'x' (known: a, b)". Returns it or NULL with err.
sc_pipeline_t *sc_pipeline_find (const char *dir, const char *name, char *err, size_t err_size);

//  Returns the sorted names of the pipelines in dir (a NULL-terminated array
//  the caller frees with sc_pipeline_names_free), or NULL if dir cannot be read.
char **sc_pipeline_names (const char *dir);
void sc_pipeline_names_free (char ***names_p);

//  Destroys the pipeline. Accepts NULL; sets *self_p to NULL.
void sc_pipeline_destroy (sc_pipeline_t **self_p);

//  Accessors (borrowed).
const char *sc_pipeline_name (sc_pipeline_t *self);
const char *sc_pipeline_description (sc_pipeline_t *self);
sc_cron_t *sc_pipeline_schedule (sc_pipeline_t *self);      //  NULL: no schedule
double sc_pipeline_catchup (sc_pipeline_t *self);
sc_overlap_t sc_pipeline_overlap (sc_pipeline_t *self);
const char *sc_overlap_name (sc_overlap_t overlap);
size_t sc_pipeline_step_count (sc_pipeline_t *self);
const sc_step_def_t *sc_pipeline_step (sc_pipeline_t *self, size_t index);
const pr_kv_t *sc_pipeline_params (sc_pipeline_t *self);

//  Builds a run's parameters: the defaults, overridden by given ("k=v"
//  strings, count of them). A name the pipeline does not declare gives
//  "unknown --param 'k' (weekly takes: a, b)". Returns 0 or -1 with err.
int sc_pipeline_run_params (sc_pipeline_t *self, char **given, size_t count,
                            pr_kv_t *out, char *err, size_t err_size);

//  Replaces every ${name} in text by the string value of name in params.
//  Returns a new string (caller frees), or NULL with err for an unknown name.
char *sc_pipeline_expand (const char *text, const pr_kv_t *params, char *err, size_t err_size);

//  Selftest.
void sc_pipeline_test (bool verbose);

#endif
