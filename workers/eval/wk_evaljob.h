/*  wk_evaljob.h - the evaluate step: dataset + models in, evaluation and report out.

    Reads the dataset artifact (lb_dataset.h) and keeps its test split only;
    scores every model artifact (lb_model.h) on those rows, and the model in
    production for the task (lb_registry.h) re-scored on the same rows; adds
    the rules and the blended policy; runs wk_eval; computes the candidate's
    feature importance (XGBoost total gain for xgboost and rf candidates,
    and permutation importance - the drop in ROC AUC when one feature's
    test values are shuffled, seeded - for every candidate); writes the
    reports and the JSON summary into the artifact store; stores the
    evaluation in PostgreSQL and Redis (wk_evalstore.h).

    Rows of the dataset: label y (binary datasets only), the rule signal
    from `baseline` (>= 0.5 is a signal; NaN - no rule applies - is no
    signal), the forward return from `fwd_return` (NaN kept: a policy that
    trades such a row is refused).

    The task name comes from the request, else from the dataset's meta JSON
    ("task" as a string, or "task": {"name": ...}, or "name"), else from the
    "name" of the task spec artifact discovery wrote (upstream `task`).
*/
#ifndef WK_EVALJOB_H_INCLUDED
#define WK_EVALJOB_H_INCLUDED

#include "lb_config.h"
#include "wk_runtime.h"

#include <stdbool.h>
#include <stddef.h>

typedef struct {
    lb_config_t *config;
    const char *run;            //  required
    const char *task;           //  NULL: from the dataset's meta, else task_uri
    const char *task_uri;       //  discover's task spec artifact (JSON with "name"), or NULL
    const char *dataset_uri;    //  artifact store URI
    size_t nmodels;
    const char *const *model_uris;
    const char *candidate;      //  NULL: evaluate.candidate
    const char *seed;           //  NULL: evaluate.seed
    bool store;                 //  write PostgreSQL and Redis (the step does)
    void (*progress) (void *arg, double percent, const char *stage, const char *message);
    void *arg;
} wk_evaljob_req_t;

typedef struct {
    char *report_uri;           //  HTML
    char *report_md_uri;
    char *summary_uri;          //  JSON
    char task [128];
    double accuracy, auc;       //  the candidate's
    double vs_production_diff, vs_production_lo;    //  NaN when no production
    double vs_rules_diff, vs_rules_lo;
    int production_version;     //  0 when none was compared
} wk_evaljob_out_t;

//  Runs the step. Returns WK_DONE with out filled (strings owned by out:
//  wk_evaljob_out_release), or WK_RETRY / WK_FAIL with a short code and
//  the reason in err.
wk_status_t wk_evaljob_run (const wk_evaljob_req_t *req, wk_evaljob_out_t *out,
                            char *code, size_t code_size, char *err, size_t err_size);

//  Frees what out holds; leaves it zeroed.
void wk_evaljob_out_release (wk_evaljob_out_t *out);

//  Selftest (the whole step runs in tests/t_eval_step.sh).
void wk_evaljob_test (bool verbose);

#endif
