/*  wk_eval.h - one evaluation: every policy scored on the same held-out rows.

    The evaluator gathers, for the test window of one dataset, the label,
    the rule-based signal and the forward return of each row, and the
    probability each model gives it (every trained family, the ensemble,
    the model in production re-scored on the same rows). wk_eval_run adds
    two policies of its own - `rules` (the rule signal as a 0/1 score) and
    `blend` (the candidate blended with the rules, lb_metrics_blend) - and
    computes for each: the metrics of lb_metrics.h, reliability bins, the
    ROC curve and a backtest; then the A/B comparisons of the candidate
    against production and against the rules: paired bootstrap interval of
    the accuracy difference and McNemar's test.

    The candidate is named by configuration (evaluate.candidate, the
    ensemble by default), never picked on these rows: choosing the best of
    several models on the test rows and then testing it on the same rows
    would overstate its gain.

    The rows are identified by a fingerprint: SHA-256 over each row's
    timestamp (int64, little-endian) and label byte, in order. The deploy
    gate refuses a comparison whose two sides carry different fingerprints.
*/
#ifndef WK_EVAL_H_INCLUDED
#define WK_EVAL_H_INCLUDED

#include "lb_config.h"
#include "lb_metrics.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WK_EVAL_BINS 10

typedef struct {
    double threshold;       //  predicted class: p >= threshold
    double cost;            //  backtest cost per trade
    double periods_per_year;
    size_t rounds;          //  bootstrap resamples
    double level;           //  interval level (0.95)
    uint64_t seed;
    lb_blend_t blend;
    const char *candidate;  //  name of the candidate policy
} wk_eval_settings_t;

//  Fills settings from the [evaluate] section of config (the candidate
//  string is borrowed from config). Returns 0, or -1 after logging why
//  (blend_low above blend_high).
int wk_eval_settings_from_config (lb_config_t *config, wk_eval_settings_t *settings);

//  One scored policy (read-only for callers).
typedef struct {
    char *name;
    char *family;           //  xgboost, rf, mlp, transformer, ensemble, rules, blend...
    char *role;             //  candidate, model, production, rules, blend
    char *artifact_uri;     //  NULL for rules and blend
    char *sha256;
    int version;            //  registry version for production, else 0
    double *p;              //  n probabilities
    bool scored;
    lb_metrics_t m;
    lb_backtest_t bt;
    double ece;
    lb_relbin_t bins [WK_EVAL_BINS];
    double *equity;         //  n running totals
    double *roc_fpr, *roc_tpr;
    size_t roc_n;
    size_t nimp;            //  feature importance (may be 0)
    char **imp_name;
    double *imp_value;
    char *imp_method;       //  "gain", "permutation"
} wk_eval_policy_t;

//  One comparison: candidate minus baseline on accuracy.
typedef struct {
    char *candidate, *baseline;
    int baseline_version;
    lb_bootstrap_t ci;
    lb_mcnemar_t mc;
} wk_eval_cmp_t;

typedef struct _wk_eval_t wk_eval_t;

//  Returns a new evaluation over n rows (arrays copied; fwd_return may hold
//  NaN on rows the rules and models never trade), or NULL after logging why
//  when n is 0 or a label or rule signal is not 0/1.
wk_eval_t *wk_eval_new (size_t n, const int64_t *ts, const uint8_t *y, const uint8_t *rule,
                        const double *fwd_return);

//  Destroys it. Accepts NULL; sets *self_p to NULL.
void wk_eval_destroy (wk_eval_t **self_p);

//  Reads a predictions CSV: a header naming the columns, then one row per
//  test row. Columns ts (integer), label, rule, fwd_return are required;
//  every other column is a model's probability, named NAME or
//  NAME:FAMILY; a column named `production` is the production model (its
//  version given separately). Returns the evaluation, or NULL with the
//  reason ("file:line: ...") in why.
wk_eval_t *wk_eval_load_csv (const char *path, int production_version, char *why, size_t size);

//  Adds a model's probabilities (n values, copied). role is "model",
//  "production" or "candidate" (wk_eval_run marks the configured candidate
//  itself). Returns 0, or -1 when the name is taken.
int wk_eval_add_model (wk_eval_t *self, const char *name, const char *family, const char *role,
                       const double *p, const char *artifact_uri, const char *sha256, int version);

//  Sets the artifact URI and SHA-256 of the policy name (copied). Returns
//  0, or -1 when there is no such policy.
int wk_eval_set_artifact (wk_eval_t *self, const char *name, const char *uri, const char *sha256);

//  Attaches a feature importance table (copied) to the policy name.
//  Returns 0, or -1 when there is no such policy.
int wk_eval_set_importance (wk_eval_t *self, const char *name, const char *method,
                            size_t count, const char *const *features, const double *values);

//  Scores everything. Returns 0, or -1 with the reason in why (a model's
//  probability that is NaN or outside [0, 1], an unknown candidate).
int wk_eval_run (wk_eval_t *self, const wk_eval_settings_t *settings, char *why, size_t size);

//  Accessors (borrowed, valid until destroy).
size_t wk_eval_rows (wk_eval_t *self);
const char *wk_eval_rows_sha256 (wk_eval_t *self);
size_t wk_eval_policies (wk_eval_t *self);
const wk_eval_policy_t *wk_eval_policy (wk_eval_t *self, size_t index);
const wk_eval_policy_t *wk_eval_find (wk_eval_t *self, const char *name);
const wk_eval_policy_t *wk_eval_candidate (wk_eval_t *self);
size_t wk_eval_comparisons (wk_eval_t *self);
const wk_eval_cmp_t *wk_eval_comparison (wk_eval_t *self, size_t index);
const wk_eval_settings_t *wk_eval_settings (wk_eval_t *self);
const int64_t *wk_eval_ts (wk_eval_t *self);
const uint8_t *wk_eval_labels (wk_eval_t *self);

//  The whole result as JSON text (NaN written as null). Caller frees.
char *wk_eval_json (wk_eval_t *self);

//  Selftest.
void wk_eval_test (bool verbose);

#endif
