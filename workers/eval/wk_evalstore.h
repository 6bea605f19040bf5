/*  wk_evalstore.h - where an evaluation lands: PostgreSQL and Redis.

    PostgreSQL (deploy/sql/060_evaluate_registry.sql): one `evaluations` row
    per policy of the run and one `evaluation_comparisons` row per A/B
    comparison, written in one transaction and replaced when the same run is
    evaluated again (a replayed step changes nothing).

    Redis (for the dashboard; optional, a failure is logged and ignored):
    pred:eval:<task>:last, a hash with run, candidate, rows, accuracy,
    roc_auc, sharpe, the comparison with production and the rules
    (vs_production_diff / _lo / _hi, vs_rules_diff / _lo / _hi), report and
    updated_at.
*/
#ifndef WK_EVALSTORE_H_INCLUDED
#define WK_EVALSTORE_H_INCLUDED

#include "wk_eval.h"

#include <hiredis.h>
#include <libpq-fe.h>

//  Writes the evaluation (which must have run). report_uri may be NULL.
//  Returns 0, or -1 after logging why (nothing is half-written).
int wk_evalstore_save_pg (PGconn *pg, wk_eval_t *eval, const char *run, const char *task,
                          const char *report_uri);

//  Writes the dashboard hash. Returns 0, or -1 after logging why.
int wk_evalstore_save_redis (redisContext *redis, wk_eval_t *eval, const char *run,
                             const char *task, const char *report_uri);

//  Selftest (the database part runs in tests/t_deploy_*.sh).
void wk_evalstore_test (bool verbose);

#endif
