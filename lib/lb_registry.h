/*  lb_registry.h - the model registry, the deploy gate, promotion and rollback.

    In MLflow's spirit, in PostgreSQL (deploy/sql/060_evaluate_registry.sql):
    a registered model per task, numbered versions (artifact URI, SHA-256,
    run, family, metrics, status), aliases `production` and `previous`, and a
    decision log row for every deploy step and rollback, whatever the outcome.
    The "current accuracy" lives here, never in a process's memory.

    The gate (lb_registry_gate): a candidate is promoted only when it beats
    production by deploy.margin (default one accuracy point) on the same test
    rows, measured by the lower bound of the paired bootstrap interval of the
    accuracy difference (deploy.use_lower_bound; the point estimate
    otherwise). The first model of a task is promoted when it beats the rules
    by deploy.first_margin (default 0: its lower bound must be above 0).

    Promotion: the artifact is verified (its SHA-256 against the hash in its
    URI), copied into deploy.dir/<task>/v<N>-<hash16>.model (temporary file,
    fsync, rename) and the copy verified again; then one PostgreSQL
    transaction registers the version, moves the aliases (previous <- old
    production, production <- new), logs the decision and records the
    serving pointer as pending; then Redis gets the pointer
    (pred:model:<task>:production, a hash: version, path, sha256, family,
    run, updated_at) in one MULTI/EXEC, and the pending mark is cleared.
    PostgreSQL is the truth: if Redis is down the promotion stands, the
    pointer stays pending, and lb_registry_repair (called at the start of
    every registry operation and by the deploy worker while idle) writes it
    when Redis is back.

    Idempotent: a deploy step is keyed by (task, run); a second call finds
    the decision of the first and changes nothing.

    Refused (bad input, the step fails permanently, the decision is logged
    as "refused" with the reason): the candidate artifact missing, truncated
    or not matching its checksum; NaN or infinite metrics; a candidate
    evaluated on different rows than production (row fingerprints differ) or
    against a production version that is no longer production; a registry
    row whose deployed artifact is missing or corrupt (the incumbent's at
    deploy time, the target's at rollback); a task name unfit for a path.

    Rollback (`sched rollback TASK` calls lb_registry_rollback): production
    moves to `previous` after the same checks, the rolled-back version is
    marked rolled_back, `previous` is cleared (a second rollback says there
    is nothing to roll back to rather than flipping back), a decision row
    is logged and the pointer moved as for a promotion.
*/
#ifndef LB_REGISTRY_H_INCLUDED
#define LB_REGISTRY_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    const char *metric;         //  "accuracy" (the metric with a paired interval)
    double margin;              //  improvement over production needed (0.01)
    double first_margin;        //  improvement over the rules for a first model (0)
    bool use_lower_bound;       //  gate on the interval's lower bound (true)
    const char *deploy_dir;     //  where promoted artifacts are copied
} lb_registry_settings_t;

//  One side of an A/B comparison as the evaluator recorded it.
typedef struct {
    bool present;
    int version;                //  registry version evaluated (production), else 0
    char rows_sha256 [65];      //  rows the baseline was scored on
    char cmp_rows_sha256 [65];  //  rows the comparison was computed on
    double accuracy;            //  baseline's accuracy
    double diff, lo, hi;        //  candidate minus baseline
} lb_registry_side_t;

//  What the deploy step decides on (lb_registry_load_candidate fills it
//  from the evaluator's rows).
typedef struct {
    char task [128];
    char run [128];
    char policy [128];
    char family [64];
    char artifact_uri [1024];
    char sha256 [65];           //  expected hash (from the evaluation; must match the URI's)
    char rows_sha256 [65];
    double accuracy;
    char metrics_json [2048];   //  the candidate's metrics, stored with the version
    lb_registry_side_t production;
    lb_registry_side_t rules;
} lb_registry_candidate_t;

typedef enum {
    LB_REGISTRY_PROMOTED = 1,   //  the candidate is production now
    LB_REGISTRY_REJECTED = 2,   //  valid, but not better by the margin
    LB_REGISTRY_REFUSED = 3,    //  bad input: fail the step permanently
    LB_REGISTRY_ROLLED_BACK = 4
} lb_registry_decision_t;

typedef struct {
    lb_registry_decision_t decision;
    int version;                //  candidate's new version (0 when not registered)
    int incumbent;              //  production before (0 when none)
    double improvement;         //  what the gate compared (lower bound or point)
    double needed;              //  the margin it had to exceed
    bool pointer_pending;       //  Redis did not get the pointer yet
    bool replay;                //  this run was decided before; nothing changed
    char reason [512];
} lb_registry_outcome_t;

typedef struct _lb_registry_t lb_registry_t;

//  Connects to PostgreSQL (required) and remembers the Redis URL (Redis is
//  connected per operation and may be down). settings are copied. Returns
//  the registry, or NULL after logging why.
lb_registry_t *lb_registry_new (const char *pg_url, const char *redis_url,
                                const lb_registry_settings_t *settings);

//  Destroys it. Accepts NULL; sets *self_p to NULL.
void lb_registry_destroy (lb_registry_t **self_p);

//  The gate alone, no I/O: fills out->decision (PROMOTED, REJECTED or
//  REFUSED), improvement, needed and reason. current_production is the
//  registry's production version (0: none).
void lb_registry_gate (const lb_registry_settings_t *settings, const lb_registry_candidate_t *cand,
                       int current_production, lb_registry_outcome_t *out);

//  Reads the evaluator's rows for (task, run) into *cand. Returns 0, or -1
//  with the reason in why (no evaluation for that run, no candidate).
int lb_registry_load_candidate (lb_registry_t *self, const char *task, const char *run,
                                lb_registry_candidate_t *cand, char *why, size_t size);

//  The deploy step. Returns 0 with the outcome (promoted, rejected or
//  refused - all recorded), or -1 when it could not decide (database or
//  disk trouble: retry later; nothing was recorded).
int lb_registry_deploy (lb_registry_t *self, const lb_registry_candidate_t *cand,
                        lb_registry_outcome_t *out);

//  Rolls task back to its previous version. Returns 0 with the outcome
//  (ROLLED_BACK, or REFUSED with the reason: no previous version, its
//  artifact missing), or -1 on database trouble.
int lb_registry_rollback (lb_registry_t *self, const char *task, const char *why,
                          lb_registry_outcome_t *out);

//  Writes every pending serving pointer to Redis. Returns how many are
//  still pending (0: all in place), or -1 on database trouble.
int lb_registry_repair (lb_registry_t *self);

//  The production version of task: returns it (0: none) and, when path is
//  not NULL, a copy of its deployed path (caller frees); -1 on trouble.
int lb_registry_production (lb_registry_t *self, const char *task, char **path);

//  True when name is fit to be a task name in paths and keys:
//  1-100 characters of [A-Za-z0-9_.-], not starting with '.'.
bool lb_registry_task_ok (const char *name);

//  Selftest (the gate; the database part needs DATABASE_URL).
void lb_registry_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
