/*  wk_eval.c - one evaluation: every policy on the same held-out rows. */
#include "wk_eval.h"
#include "lb_config.h"
#include "lb_log.h"
#include "lb_mem.h"

#include <assert.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WK_EVAL_MAX_POLICIES 64

struct _wk_eval_t {
    size_t n;
    int64_t *ts;
    uint8_t *y, *rule;
    double *fwd;
    bool regression;
    double *yr, *base, *ref;    //  regression: targets, baseline predictions, references
    char rows_sha [65];
    wk_eval_policy_t pol [WK_EVAL_MAX_POLICIES];
    size_t npol;
    wk_eval_cmp_t cmp [4];
    size_t ncmp;
    wk_eval_settings_t settings;
    char *candidate;
    bool ran;
};

static void s_fail (char *why, size_t size, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_fail (char *why, size_t size, const char *fmt, ...)
{
    if (!why || !size)
        return;
    va_list args;
    va_start (args, fmt);
    vsnprintf (why, size, fmt, args);
    va_end (args);
}

static void
s_fingerprint (wk_eval_t *self)
{
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init (&st);
    for (size_t i = 0; i < self->n; i++) {
        uint8_t rec [16];
        uint64_t t = (uint64_t) self->ts [i];
        for (int b = 0; b < 8; b++)
            rec [b] = (uint8_t) (t >> (8 * b));
        if (self->regression) {
            uint64_t v;
            memcpy (&v, &self->yr [i], sizeof v);
            for (int b = 0; b < 8; b++)
                rec [8 + b] = (uint8_t) (v >> (8 * b));
            crypto_hash_sha256_update (&st, rec, 16);
        }
        else {
            rec [8] = self->y [i];
            crypto_hash_sha256_update (&st, rec, 9);
        }
    }
    uint8_t digest [32];
    crypto_hash_sha256_final (&st, digest);
    for (int i = 0; i < 32; i++)
        snprintf (self->rows_sha + 2 * i, 3, "%02x", digest [i]);
}

wk_eval_t *
wk_eval_new (size_t n, const int64_t *ts, const uint8_t *y, const uint8_t *rule,
             const double *fwd_return)
{
    if (n == 0) {
        lb_log_error ("evaluation has no rows");
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (y [i] > 1 || rule [i] > 1) {
            lb_log_error ("row %zu: label %u or rule signal %u is not 0 or 1", i,
                          (unsigned) y [i], (unsigned) rule [i]);
            return NULL;
        }
    wk_eval_t *self = lb_xcalloc (1, sizeof *self);
    self->n = n;
    self->ts = lb_xmalloc (n * sizeof *self->ts);
    self->y = lb_xmalloc (n);
    self->rule = lb_xmalloc (n);
    self->fwd = lb_xmalloc (n * sizeof *self->fwd);
    memcpy (self->ts, ts, n * sizeof *ts);
    memcpy (self->y, y, n);
    memcpy (self->rule, rule, n);
    memcpy (self->fwd, fwd_return, n * sizeof *fwd_return);
    s_fingerprint (self);
    return self;
}

wk_eval_t *
wk_eval_new_regression (size_t n, const int64_t *ts, const double *y, const double *baseline,
                        const double *ref, const double *fwd_return)
{
    if (n == 0) {
        lb_log_error ("evaluation has no rows");
        return NULL;
    }
    for (size_t i = 0; i < n; i++)
        if (!isfinite (y [i]) || !isfinite (baseline [i])) {
            lb_log_error ("row %zu: target %g or baseline %g is not a number", i, y [i],
                          baseline [i]);
            return NULL;
        }
    uint8_t *zero = lb_xcalloc (n, 1);
    wk_eval_t *self = wk_eval_new (n, ts, zero, zero, fwd_return);
    free (zero);
    assert (self);
    self->regression = true;
    self->yr = lb_xmalloc (n * sizeof *self->yr);
    self->base = lb_xmalloc (n * sizeof *self->base);
    self->ref = lb_xmalloc (n * sizeof *self->ref);
    memcpy (self->yr, y, n * sizeof *y);
    memcpy (self->base, baseline, n * sizeof *baseline);
    memcpy (self->ref, ref, n * sizeof *ref);
    s_fingerprint (self);
    return self;
}

bool wk_eval_is_regression (wk_eval_t *self) { return self->regression; }
const double *wk_eval_targets (wk_eval_t *self) { return self->yr; }

static void
s_policy_release (wk_eval_policy_t *p)
{
    free (p->name);
    free (p->family);
    free (p->role);
    free (p->artifact_uri);
    free (p->sha256);
    free (p->p);
    free (p->equity);
    free (p->roc_fpr);
    free (p->roc_tpr);
    for (size_t i = 0; i < p->nimp; i++)
        free (p->imp_name [i]);
    free (p->imp_name);
    free (p->imp_value);
    free (p->imp_method);
    memset (p, 0, sizeof *p);
}

void
wk_eval_destroy (wk_eval_t **self_p)
{
    assert (self_p);
    wk_eval_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->npol; i++)
        s_policy_release (&self->pol [i]);
    for (size_t i = 0; i < self->ncmp; i++) {
        free (self->cmp [i].candidate);
        free (self->cmp [i].baseline);
    }
    free (self->ts);
    free (self->y);
    free (self->rule);
    free (self->fwd);
    free (self->yr);
    free (self->base);
    free (self->ref);
    free (self->candidate);
    free (self);
    *self_p = NULL;
}

static wk_eval_policy_t *
s_find (wk_eval_t *self, const char *name)
{
    for (size_t i = 0; i < self->npol; i++)
        if (strcmp (self->pol [i].name, name) == 0)
            return &self->pol [i];
    return NULL;
}

int
wk_eval_add_model (wk_eval_t *self, const char *name, const char *family, const char *role,
                   const double *p, const char *artifact_uri, const char *sha256, int version)
{
    assert (self && name && role && p);
    if (s_find (self, name) || self->npol == WK_EVAL_MAX_POLICIES) {
        lb_log_error ("policy name=%s is given twice (or too many policies)", name);
        return -1;
    }
    wk_eval_policy_t *pol = &self->pol [self->npol++];
    pol->name = lb_xstrdup (name);
    pol->family = lb_xstrdup (family ? family : name);
    pol->role = lb_xstrdup (role);
    pol->artifact_uri = artifact_uri ? lb_xstrdup (artifact_uri) : NULL;
    pol->sha256 = sha256 ? lb_xstrdup (sha256) : NULL;
    pol->version = version;
    pol->p = lb_xmalloc (self->n * sizeof *pol->p);
    memcpy (pol->p, p, self->n * sizeof *p);
    return 0;
}

int
wk_eval_set_artifact (wk_eval_t *self, const char *name, const char *uri, const char *sha256)
{
    wk_eval_policy_t *pol = s_find (self, name);
    if (!pol)
        return -1;
    free (pol->artifact_uri);
    free (pol->sha256);
    pol->artifact_uri = uri ? lb_xstrdup (uri) : NULL;
    pol->sha256 = sha256 ? lb_xstrdup (sha256) : NULL;
    return 0;
}

int
wk_eval_set_importance (wk_eval_t *self, const char *name, const char *method,
                        size_t count, const char *const *features, const double *values)
{
    wk_eval_policy_t *pol = s_find (self, name);
    if (!pol)
        return -1;
    for (size_t i = 0; i < pol->nimp; i++)
        free (pol->imp_name [i]);
    free (pol->imp_name);
    free (pol->imp_value);
    free (pol->imp_method);
    pol->nimp = count;
    pol->imp_name = lb_xcalloc (count ? count : 1, sizeof *pol->imp_name);
    pol->imp_value = lb_xcalloc (count ? count : 1, sizeof *pol->imp_value);
    for (size_t i = 0; i < count; i++) {
        pol->imp_name [i] = lb_xstrdup (features [i]);
        pol->imp_value [i] = values [i];
    }
    pol->imp_method = lb_xstrdup (method ? method : "unknown");
    return 0;
}

//  The policy's backtest on signal sig (which it frees); marks it scored.
static void
s_backtest (wk_eval_t *self, wk_eval_policy_t *pol, uint8_t *sig)
{
    const wk_eval_settings_t *s = &self->settings;
    free (pol->equity);
    pol->equity = lb_xmalloc (self->n * sizeof *pol->equity);
    lb_metrics_backtest (sig, self->fwd, self->n, s->cost, s->periods_per_year,
                         &pol->bt, pol->equity);
    free (sig);
    pol->scored = true;
}

//  A regression policy: RMSE, MAE, R², directional accuracy and the
//  backtest of going long where the prediction is above the reference.
static int
s_score_regression (wk_eval_t *self, wk_eval_policy_t *pol, char *why, size_t size)
{
    char reason [160];
    if (lb_metrics_regression (self->yr, pol->p, self->n, &pol->rm, reason, sizeof reason)) {
        s_fail (why, size, "policy %s: %s", pol->name, reason);
        return -1;
    }
    memset (&pol->m, 0, sizeof pol->m);
    pol->m.n = self->n;
    pol->m.accuracy = pol->m.precision = pol->m.recall = pol->m.f1 = pol->m.fpr = NAN;
    pol->m.auc = pol->m.logloss = pol->m.brier = NAN;
    pol->ece = NAN;
    for (int k = 0; k < WK_EVAL_BINS; k++)
        pol->bins [k] = (lb_relbin_t) { 0, NAN, NAN };
    pol->dir_acc = lb_metrics_direction (pol->p, self->ref, self->fwd, self->n, &pol->dir_n);
    uint8_t *sig = lb_xmalloc (self->n);
    for (size_t i = 0; i < self->n; i++)
        sig [i] = isfinite (self->ref [i]) && pol->p [i] > self->ref [i];
    s_backtest (self, pol, sig);
    return 0;
}

static int
s_score (wk_eval_t *self, wk_eval_policy_t *pol, char *why, size_t size)
{
    const wk_eval_settings_t *s = &self->settings;
    char reason [160];
    if (self->regression)
        return s_score_regression (self, pol, why, size);
    pol->dir_acc = NAN;
    if (lb_metrics_compute (self->y, pol->p, self->n, s->threshold, &pol->m,
                            reason, sizeof reason)) {
        s_fail (why, size, "policy %s: %s", pol->name, reason);
        return -1;
    }
    pol->ece = lb_metrics_reliability (self->y, pol->p, self->n, pol->bins, WK_EVAL_BINS);
    free (pol->roc_fpr);
    free (pol->roc_tpr);
    pol->roc_n = lb_metrics_roc (self->y, pol->p, self->n, &pol->roc_fpr, &pol->roc_tpr);
    uint8_t *sig = lb_xmalloc (self->n);
    for (size_t i = 0; i < self->n; i++)
        sig [i] = pol->p [i] >= s->threshold;
    s_backtest (self, pol, sig);
    return 0;
}

static void
s_compare (wk_eval_t *self, const wk_eval_policy_t *cand, const wk_eval_policy_t *base)
{
    const wk_eval_settings_t *s = &self->settings;
    size_t n = self->n;
    if (self->regression) {
        wk_eval_cmp_t *c = &self->cmp [self->ncmp++];
        c->candidate = lb_xstrdup (cand->name);
        c->baseline = lb_xstrdup (base->name);
        c->baseline_version = base->version;
        c->metric = "rmse";
        if (lb_metrics_bootstrap_sqerr (self->yr, cand->p, base->p, n, s->rounds, s->level,
                                        s->seed, &c->mse, &c->ci)) {
            //  The baseline never errs: no improvement is possible.
            c->ci = (lb_bootstrap_t) { NAN, NAN, NAN, s->level, s->rounds };
            c->mse = c->ci;
        }
        c->mc = (lb_mcnemar_t) { 0, 0, NAN, NAN, NAN };
        return;
    }
    double *a = lb_xmalloc (n * sizeof *a), *b = lb_xmalloc (n * sizeof *b);
    uint8_t *ca = lb_xmalloc (n), *cb = lb_xmalloc (n);
    for (size_t i = 0; i < n; i++) {
        ca [i] = (cand->p [i] >= s->threshold) == (self->y [i] != 0);
        cb [i] = (base->p [i] >= s->threshold) == (self->y [i] != 0);
        a [i] = ca [i];
        b [i] = cb [i];
    }
    wk_eval_cmp_t *c = &self->cmp [self->ncmp++];
    c->candidate = lb_xstrdup (cand->name);
    c->baseline = lb_xstrdup (base->name);
    c->baseline_version = base->version;
    c->metric = "accuracy";
    int rc = lb_metrics_bootstrap (a, b, n, s->rounds, s->level, s->seed, &c->ci);
    assert (rc == 0);   //  inputs are 0/1 and n > 0
    lb_metrics_mcnemar (ca, cb, n, &c->mc);
    free (a);
    free (b);
    free (ca);
    free (cb);
}

static int s_add_rules_and_blend (wk_eval_t *self, const wk_eval_settings_t *settings,
                                  char *why, size_t size);

int
wk_eval_run (wk_eval_t *self, const wk_eval_settings_t *settings, char *why, size_t size)
{
    assert (self && settings && settings->candidate);
    assert (!self->ran);
    self->settings = *settings;
    free (self->candidate);
    self->candidate = lb_xstrdup (settings->candidate);
    self->settings.candidate = self->candidate;
    wk_eval_policy_t *cand = s_find (self, settings->candidate);
    if (!cand) {
        s_fail (why, size, "no candidate: no model named '%s' among the %zu scored",
                settings->candidate, self->npol);
        return -1;
    }
    free (cand->role);
    cand->role = lb_xstrdup ("candidate");
    if (self->regression) {
        //  The baseline's predictions play the rules; a blend of a value
        //  with a rule signal has no meaning, so there is none.
        if (!s_find (self, "rules"))
            wk_eval_add_model (self, "rules", "baseline", "rules", self->base, NULL, NULL, 0);
    }
    else
    if (s_add_rules_and_blend (self, settings, why, size))
        return -1;
    for (size_t i = 0; i < self->npol; i++)
        if (s_score (self, &self->pol [i], why, size))
            return -1;
    cand = s_find (self, settings->candidate);
    for (size_t i = 0; i < self->npol; i++)
        if (strcmp (self->pol [i].role, "production") == 0)
            s_compare (self, cand, &self->pol [i]);
    s_compare (self, cand, s_find (self, "rules"));
    if (!self->regression)
        s_compare (self, s_find (self, "blend"), s_find (self, "rules"));
    self->ran = true;
    return 0;
}

//  Binary: the rules (0/1 signal as the score) and the blend of the
//  candidate with them. Returns 0, or -1 when the candidate's scores are
//  not probabilities.
static int
s_add_rules_and_blend (wk_eval_t *self, const wk_eval_settings_t *settings, char *why, size_t size)
{
    wk_eval_policy_t *cand;
    //  The rules as a policy: the 0/1 signal is its score.
    double *tmp = lb_xmalloc (self->n * sizeof *tmp);
    for (size_t i = 0; i < self->n; i++)
        tmp [i] = self->rule [i];
    if (!s_find (self, "rules"))
        wk_eval_add_model (self, "rules", "rules", "rules", tmp, NULL, NULL, 0);
    //  Blend: the candidate's probability with the rules, as the plan's A/B transition.
    cand = s_find (self, settings->candidate);     //  array may have grown; pointers stay
    for (size_t i = 0; i < self->n; i++)
        if (!isfinite (cand->p [i]) || cand->p [i] < 0 || cand->p [i] > 1) {
            free (tmp);
            s_fail (why, size, "policy %s: row %zu: score %g is not a probability",
                    cand->name, i, cand->p [i]);
            return -1;
        }
    lb_metrics_blend (&settings->blend, cand->p, self->rule, self->n, tmp);
    if (!s_find (self, "blend"))
        wk_eval_add_model (self, "blend", "blend", "blend", tmp, NULL, NULL, 0);
    free (tmp);
    return 0;
}

int
wk_eval_settings_from_config (lb_config_t *config, wk_eval_settings_t *s)
{
    memset (s, 0, sizeof *s);
    s->candidate = lb_config_str (config, "evaluate.candidate");
    s->threshold = lb_config_real (config, "evaluate.threshold");
    s->cost = lb_config_real (config, "evaluate.cost");
    s->periods_per_year = lb_config_real (config, "evaluate.periods_per_year");
    s->rounds = (size_t) lb_config_int (config, "evaluate.bootstrap_rounds");
    s->level = lb_config_real (config, "evaluate.ci_level");
    s->seed = (uint64_t) lb_config_int (config, "evaluate.seed");
    s->blend.high = lb_config_real (config, "evaluate.blend_high");
    s->blend.low = lb_config_real (config, "evaluate.blend_low");
    s->blend.ml_weight = lb_config_real (config, "evaluate.blend_ml_weight");
    if (s->blend.low > s->blend.high) {
        lb_log_error ("evaluate.blend_low %g is above evaluate.blend_high %g",
                      s->blend.low, s->blend.high);
        return -1;
    }
    return 0;
}

size_t wk_eval_rows (wk_eval_t *self) { return self->n; }
const char *wk_eval_rows_sha256 (wk_eval_t *self) { return self->rows_sha; }
size_t wk_eval_policies (wk_eval_t *self) { return self->npol; }
size_t wk_eval_comparisons (wk_eval_t *self) { return self->ncmp; }
const wk_eval_settings_t *wk_eval_settings (wk_eval_t *self) { return &self->settings; }
const int64_t *wk_eval_ts (wk_eval_t *self) { return self->ts; }
const uint8_t *wk_eval_labels (wk_eval_t *self) { return self->y; }

const wk_eval_policy_t *
wk_eval_policy (wk_eval_t *self, size_t index)
{
    assert (index < self->npol);
    return &self->pol [index];
}

const wk_eval_policy_t *
wk_eval_find (wk_eval_t *self, const char *name)
{
    return s_find (self, name);
}

const wk_eval_policy_t *
wk_eval_candidate (wk_eval_t *self)
{
    return self->candidate ? s_find (self, self->candidate) : NULL;
}

const wk_eval_cmp_t *
wk_eval_comparison (wk_eval_t *self, size_t index)
{
    assert (index < self->ncmp);
    return &self->cmp [index];
}

//  --------------------------------------------------------------------------
//  CSV of predictions

static char *
s_next_field (char **cursor)
{
    char *start = *cursor;
    if (!start)
        return NULL;
    char *comma = strchr (start, ',');
    if (comma) {
        *comma = 0;
        *cursor = comma + 1;
    }
    else
        *cursor = NULL;
    //  Trim blanks and the line end.
    size_t len = strlen (start);
    while (len && (start [len - 1] == '\n' || start [len - 1] == '\r' || start [len - 1] == ' '))
        start [--len] = 0;
    while (*start == ' ')
        start++;
    return start;
}

static int
s_parse_double (const char *text, double *out)
{
    if (!*text)
        return -1;
    char *end;
    errno = 0;
    double v = strtod (text, &end);
    if (*end || errno == ERANGE)
        return -1;
    *out = v;
    return 0;
}

wk_eval_t *
wk_eval_load_csv (const char *path, int production_version, char *why, size_t size)
{
    FILE *file = fopen (path, "r");
    if (!file) {
        s_fail (why, size, "%s: %s", path, strerror (errno));
        return NULL;
    }
    wk_eval_t *self = NULL;
    char *line = NULL;
    size_t cap = 0;
    size_t ncols = 0, rows = 0, row_cap = 0;
    char **names = NULL;
    int col_ts = -1, col_y = -1, col_rule = -1, col_fwd = -1, col_ref = -1;
    double *values = NULL;      //  rows x ncols
    size_t lineno = 0;
    if (getline (&line, &cap, file) < 0) {
        s_fail (why, size, "%s:1: empty file, expected a header", path);
        goto out;
    }
    lineno = 1;
    char *cursor = line;
    char *field;
    while ((field = s_next_field (&cursor))) {
        names = lb_xrealloc (names, (ncols + 1) * sizeof *names);
        names [ncols] = lb_xstrdup (field);
        if (strcmp (field, "ts") == 0) col_ts = (int) ncols;
        else if (strcmp (field, "label") == 0) col_y = (int) ncols;
        else if (strcmp (field, "rule") == 0) col_rule = (int) ncols;
        else if (strcmp (field, "fwd_return") == 0) col_fwd = (int) ncols;
        else if (strcmp (field, "ref") == 0) col_ref = (int) ncols;
        ncols++;
    }
    if (col_ts < 0 || col_y < 0 || col_rule < 0 || col_fwd < 0) {
        s_fail (why, size, "%s:1: header needs columns ts, label, rule, fwd_return", path);
        goto out;
    }
    bool reg = col_ref >= 0;
    if (ncols < (reg ? 6u : 5u)) {
        s_fail (why, size, "%s:1: no model column", path);
        goto out;
    }
    while (getline (&line, &cap, file) >= 0) {
        lineno++;
        if (line [0] == '\n' || line [0] == 0)
            continue;
        if (rows == row_cap) {
            row_cap = row_cap ? 2 * row_cap : 1024;
            values = lb_xrealloc (values, row_cap * ncols * sizeof *values);
        }
        cursor = line;
        size_t c = 0;
        while ((field = s_next_field (&cursor))) {
            if (c == ncols) {
                s_fail (why, size, "%s:%zu: more than %zu fields", path, lineno, ncols);
                goto out;
            }
            //  An empty forward return is missing (unknown: a signal there is not
            //  traded); anything else must be a number.
            double v;
            if (s_parse_double (field, &v)) {
                if (((int) c == col_fwd || (int) c == col_ref) && !*field)
                    v = NAN;
                else {
                    s_fail (why, size, "%s:%zu: column %s: '%s' is not a number",
                            path, lineno, names [c], field);
                    goto out;
                }
            }
            values [rows * ncols + c] = v;
            c++;
        }
        if (c != ncols) {
            s_fail (why, size, "%s:%zu: %zu fields, the header has %zu", path, lineno, c, ncols);
            goto out;
        }
        double yv = values [rows * ncols + col_y], rv = values [rows * ncols + col_rule];
        if (reg ? !isfinite (yv) || !isfinite (rv) : (yv != 0 && yv != 1) || (rv != 0 && rv != 1)) {
            if (reg) {
                s_fail (why, size, "%s:%zu: label and rule must be numbers", path, lineno);
                goto out;
            }
            s_fail (why, size, "%s:%zu: label and rule must be 0 or 1", path, lineno);
            goto out;
        }
        rows++;
    }
    if (rows == 0) {
        s_fail (why, size, "%s: header only, no rows", path);
        goto out;
    }
    int64_t *ts = lb_xmalloc (rows * sizeof *ts);
    uint8_t *y = lb_xmalloc (rows), *rule = lb_xmalloc (rows);
    double *fwd = lb_xmalloc (rows * sizeof *fwd), *p = lb_xmalloc (rows * sizeof *p);
    double *ry = lb_xmalloc (rows * sizeof *ry), *rb = lb_xmalloc (rows * sizeof *rb);
    double *rref = lb_xmalloc (rows * sizeof *rref);
    for (size_t r = 0; r < rows; r++) {
        ts [r] = (int64_t) values [r * ncols + col_ts];
        ry [r] = values [r * ncols + col_y];
        rb [r] = values [r * ncols + col_rule];
        rref [r] = reg ? values [r * ncols + col_ref] : NAN;
        y [r] = (uint8_t) (ry [r] != 0);
        rule [r] = (uint8_t) (rb [r] != 0);
        fwd [r] = values [r * ncols + col_fwd];
    }
    self = reg ? wk_eval_new_regression (rows, ts, ry, rb, rref, fwd)
               : wk_eval_new (rows, ts, y, rule, fwd);
    free (ry);
    free (rb);
    free (rref);
    for (size_t c = 0; self && c < ncols; c++) {
        if ((int) c == col_ts || (int) c == col_y || (int) c == col_rule || (int) c == col_fwd
        ||  (int) c == col_ref)
            continue;
        for (size_t r = 0; r < rows; r++)
            p [r] = values [r * ncols + c];
        char *name = lb_xstrdup (names [c]);
        char *family = strchr (name, ':');
        if (family)
            *family++ = 0;
        bool prod = strcmp (name, "production") == 0;
        if (wk_eval_add_model (self, name, family, prod ? "production" : "model", p,
                               NULL, NULL, prod ? production_version : 0)) {
            s_fail (why, size, "%s:1: column %s given twice", path, name);
            wk_eval_destroy (&self);
        }
        free (name);
    }
    free (ts);
    free (y);
    free (rule);
    free (fwd);
    free (p);
out:
    for (size_t c = 0; c < ncols; c++)
        free (names [c]);
    free (names);
    free (values);
    free (line);
    fclose (file);
    return self;
}

//  --------------------------------------------------------------------------
//  JSON

static json_t *
s_num (double v)
{
    return isfinite (v) ? json_real (v) : json_null ();
}

static json_t *
s_policy_json (const wk_eval_policy_t *p)
{
    json_t *o = json_object ();
    json_object_set_new (o, "name", json_string (p->name));
    json_object_set_new (o, "family", json_string (p->family));
    json_object_set_new (o, "role", json_string (p->role));
    if (p->artifact_uri)
        json_object_set_new (o, "artifact_uri", json_string (p->artifact_uri));
    if (p->sha256)
        json_object_set_new (o, "sha256", json_string (p->sha256));
    if (p->version)
        json_object_set_new (o, "version", json_integer (p->version));
    if (p->rm.n) {
        json_object_set_new (o, "rmse", s_num (p->rm.rmse));
        json_object_set_new (o, "mae", s_num (p->rm.mae));
        json_object_set_new (o, "r2", s_num (p->rm.r2));
        json_object_set_new (o, "mse", s_num (p->rm.mse));
        json_object_set_new (o, "direction_accuracy", s_num (p->dir_acc));
        json_object_set_new (o, "direction_rows", json_integer ((json_int_t) p->dir_n));
    }
    if (!p->rm.n) {
        const lb_metrics_t *m = &p->m;
        json_object_set_new (o, "accuracy", s_num (m->accuracy));
        json_object_set_new (o, "precision", s_num (m->precision));
        json_object_set_new (o, "recall", s_num (m->recall));
        json_object_set_new (o, "f1", s_num (m->f1));
        json_object_set_new (o, "roc_auc", s_num (m->auc));
        json_object_set_new (o, "log_loss", s_num (m->logloss));
        json_object_set_new (o, "fpr", s_num (m->fpr));
        json_object_set_new (o, "brier", s_num (m->brier));
        json_object_set_new (o, "ece", s_num (p->ece));
        json_t *cm = json_object ();
        json_object_set_new (cm, "tp", json_integer ((json_int_t) m->cm.tp));
        json_object_set_new (cm, "fp", json_integer ((json_int_t) m->cm.fp));
        json_object_set_new (cm, "tn", json_integer ((json_int_t) m->cm.tn));
        json_object_set_new (cm, "fn", json_integer ((json_int_t) m->cm.fn));
        json_object_set_new (o, "confusion", cm);
        json_t *bins = json_array ();
        for (int k = 0; k < WK_EVAL_BINS; k++) {
            json_t *b = json_object ();
            json_object_set_new (b, "count", json_integer ((json_int_t) p->bins [k].count));
            json_object_set_new (b, "mean_p", s_num (p->bins [k].mean_p));
            json_object_set_new (b, "frac_pos", s_num (p->bins [k].frac_pos));
            json_array_append_new (bins, b);
        }
        json_object_set_new (o, "reliability", bins);
    }
    json_t *bt = json_object ();
    json_object_set_new (bt, "trades", json_integer ((json_int_t) p->bt.trades));
    json_object_set_new (bt, "skipped", json_integer ((json_int_t) p->bt.skipped));
    json_object_set_new (bt, "total", s_num (p->bt.total));
    json_object_set_new (bt, "sharpe", s_num (p->bt.sharpe));
    json_object_set_new (bt, "hit_rate", s_num (p->bt.hit_rate));
    json_object_set_new (bt, "max_drawdown", s_num (p->bt.max_drawdown));
    json_object_set_new (o, "backtest", bt);
    if (p->nimp) {
        json_t *imp = json_array ();
        for (size_t i = 0; i < p->nimp; i++) {
            json_t *e = json_object ();
            json_object_set_new (e, "feature", json_string (p->imp_name [i]));
            json_object_set_new (e, "value", s_num (p->imp_value [i]));
            json_array_append_new (imp, e);
        }
        json_object_set_new (o, "importance", imp);
        json_object_set_new (o, "importance_method", json_string (p->imp_method));
    }
    return o;
}

char *
wk_eval_json (wk_eval_t *self)
{
    assert (self->ran);
    json_t *root = json_object ();
    json_object_set_new (root, "version", json_integer (1));
    json_object_set_new (root, "rows", json_integer ((json_int_t) self->n));
    json_object_set_new (root, "rows_sha256", json_string (self->rows_sha));
    json_object_set_new (root, "candidate", json_string (self->candidate));
    json_object_set_new (root, "task_type", json_string (self->regression ? "regression"
                                                                          : "binary"));
    const wk_eval_settings_t *s = &self->settings;
    json_t *set = json_object ();
    json_object_set_new (set, "threshold", json_real (s->threshold));
    json_object_set_new (set, "cost", json_real (s->cost));
    json_object_set_new (set, "periods_per_year", json_real (s->periods_per_year));
    json_object_set_new (set, "bootstrap_rounds", json_integer ((json_int_t) s->rounds));
    json_object_set_new (set, "level", json_real (s->level));
    json_object_set_new (set, "seed", json_integer ((json_int_t) s->seed));
    json_object_set_new (set, "blend_high", json_real (s->blend.high));
    json_object_set_new (set, "blend_low", json_real (s->blend.low));
    json_object_set_new (set, "blend_ml_weight", json_real (s->blend.ml_weight));
    json_object_set_new (root, "settings", set);
    json_t *pols = json_array ();
    for (size_t i = 0; i < self->npol; i++)
        json_array_append_new (pols, s_policy_json (&self->pol [i]));
    json_object_set_new (root, "policies", pols);
    json_t *cmps = json_array ();
    for (size_t i = 0; i < self->ncmp; i++) {
        const wk_eval_cmp_t *c = &self->cmp [i];
        json_t *o = json_object ();
        json_object_set_new (o, "candidate", json_string (c->candidate));
        json_object_set_new (o, "baseline", json_string (c->baseline));
        if (c->baseline_version)
            json_object_set_new (o, "baseline_version", json_integer (c->baseline_version));
        json_object_set_new (o, "metric", json_string (c->metric));
        json_object_set_new (o, "diff", s_num (c->ci.diff));
        if (self->regression) {
            json_object_set_new (o, "mse_diff", s_num (c->mse.diff));
            json_object_set_new (o, "mse_lo", s_num (c->mse.lo));
            json_object_set_new (o, "mse_hi", s_num (c->mse.hi));
        }
        json_object_set_new (o, "ci_lo", s_num (c->ci.lo));
        json_object_set_new (o, "ci_hi", s_num (c->ci.hi));
        json_object_set_new (o, "mcnemar_b", json_integer ((json_int_t) c->mc.b));
        json_object_set_new (o, "mcnemar_c", json_integer ((json_int_t) c->mc.c));
        json_object_set_new (o, "mcnemar_p_exact", s_num (c->mc.p_exact));
        json_object_set_new (o, "mcnemar_p_chi2", s_num (c->mc.p_chi2));
        json_array_append_new (cmps, o);
    }
    json_object_set_new (root, "comparisons", cmps);
    char *text = json_dumps (root, JSON_INDENT (1) | JSON_REAL_PRECISION (17));
    json_decref (root);
    assert (text);
    char *copy = lb_xstrdup (text);
    free (text);
    return copy;
}

//  --------------------------------------------------------------------------

void
wk_eval_test (bool verbose)
{
    //  Eight rows; the candidate is the lb_metrics selftest table, production
    //  is right on 4 of 8 rows, the rules on 5.
    int64_t ts [8] = { 1, 2, 3, 4, 5, 6, 7, 8 };
    uint8_t y [8] = { 1, 1, 0, 1, 0, 1, 0, 0 };
    uint8_t rule [8] = { 1, 0, 0, 1, 1, 1, 1, 0 };
    double fwd [8] = { 0.02, 0.01, -0.01, 0.03, -0.02, 0.01, -0.01, NAN };
    double cand [8] = { 0.9, 0.8, 0.6, 0.55, 0.4, 0.3, 0.2, 0.1 };
    double prod [8] = { 0.9, 0.1, 0.9, 0.1, 0.1, 0.9, 0.9, 0.1 };
    assert (wk_eval_new (0, ts, y, rule, fwd) == NULL);
    wk_eval_t *ev = wk_eval_new (8, ts, y, rule, fwd);
    assert (ev);
    assert (strlen (wk_eval_rows_sha256 (ev)) == 64);
    assert (wk_eval_add_model (ev, "ensemble", "ensemble", "model", cand, "file:///x", "ab", 0) == 0);
    assert (wk_eval_add_model (ev, "ensemble", "ensemble", "model", cand, NULL, NULL, 0) == -1);
    assert (wk_eval_add_model (ev, "production", "xgboost", "production", prod, NULL, NULL, 3) == 0);
    const char *feat [2] = { "rsi_14", "volume_surge" };
    double val [2] = { 2.5, 1.0 };
    assert (wk_eval_set_importance (ev, "ensemble", "permutation", 2, feat, val) == 0);
    assert (wk_eval_set_importance (ev, "nope", "gain", 2, feat, val) == -1);
    assert (wk_eval_set_artifact (ev, "ensemble", "file:///y", "cd") == 0);
    assert (wk_eval_set_artifact (ev, "nope", "file:///y", "cd") == -1);
    wk_eval_settings_t s = {
        .threshold = 0.5, .cost = 0.001, .periods_per_year = 252, .rounds = 200,
        .level = 0.95, .seed = 42, .blend = { 0.8, 0.6, 0.7 }, .candidate = "ensemble"
    };
    char why [200];
    assert (wk_eval_run (ev, &s, why, sizeof why) == 0);
    assert (wk_eval_policies (ev) == 4);    //  ensemble, production, rules, blend
    const wk_eval_policy_t *c = wk_eval_candidate (ev);
    assert (c && strcmp (c->role, "candidate") == 0 && c->m.accuracy == 0.75);
    const wk_eval_policy_t *r = wk_eval_find (ev, "rules");
    assert (r && r->m.accuracy == 5.0 / 8.0);
    assert (wk_eval_find (ev, "production")->m.accuracy == 0.5);
    //  Row 7 has no forward return and nobody trades it; rules signal on
    //  rows 0 3 4 5 6.
    assert (c->bt.trades == 4 && c->bt.skipped == 0);
    assert (r->bt.trades == 5);
    assert (wk_eval_comparisons (ev) == 3);
    const wk_eval_cmp_t *cp = wk_eval_comparison (ev, 0);
    assert (strcmp (cp->baseline, "production") == 0 && cp->baseline_version == 3);
    assert (fabs (cp->ci.diff - 0.25) < 1e-15 && cp->ci.lo <= 0.25 && cp->ci.hi >= 0.25);
    char *json = wk_eval_json (ev);
    assert (strstr (json, "\"rows_sha256\"") && strstr (json, "\"mcnemar_p_exact\""));
    if (verbose)
        printf ("%.400s\n", json);
    free (json);
    wk_eval_destroy (&ev);
    assert (ev == NULL);
    wk_eval_destroy (&ev);

    //  A NaN probability is refused with the row.
    ev = wk_eval_new (8, ts, y, rule, fwd);
    cand [2] = NAN;
    wk_eval_add_model (ev, "ensemble", NULL, "model", cand, NULL, NULL, 0);
    assert (wk_eval_run (ev, &s, why, sizeof why) == -1);
    assert (strstr (why, "row 2"));
    wk_eval_destroy (&ev);
    //  An unknown candidate is refused.
    ev = wk_eval_new (8, ts, y, rule, fwd);
    s.candidate = "missing";
    assert (wk_eval_run (ev, &s, why, sizeof why) == -1 && strstr (why, "missing"));
    wk_eval_destroy (&ev);
    //  Regression: y 1,2,3,4; candidate 1,2,4,2 (MSE 5/4); baseline 0,2,3,5
    //  (MSE 1/2); production y itself (MSE 0). Direction against the
    //  reference 0 on rows with a forward return.
    int64_t rts [4] = { 1, 2, 3, 4 };
    double ry [4] = { 1, 2, 3, 4 }, rc [4] = { 1, 2, 4, 2 }, rb [4] = { 0, 2, 3, 5 };
    double rref [4] = { 0, 0, 0, NAN }, rfwd [4] = { 0.1, -0.1, NAN, 0.2 };
    ev = wk_eval_new_regression (4, rts, ry, rb, rref, rfwd);
    assert (ev);
    assert (wk_eval_add_model (ev, "ensemble", "ensemble", "model", rc, NULL, NULL, 0) == 0);
    assert (wk_eval_add_model (ev, "production", "xgboost", "production", ry, NULL, NULL, 2) == 0);
    s.candidate = "ensemble";
    assert (wk_eval_run (ev, &s, why, sizeof why) == 0);
    c = wk_eval_candidate (ev);
    assert (c->rm.mse == 1.25 && c->rm.mae == 0.75 && c->rm.r2 == 0 && isnan (c->m.accuracy));
    //  Rows 0 and 1 count: 1 > 0 with +0.1 right, 2 > 0 with -0.1 wrong.
    assert (c->dir_n == 2 && c->dir_acc == 0.5 && c->bt.trades == 2);
    assert (wk_eval_comparisons (ev) == 2);
    cp = wk_eval_comparison (ev, 1);
    assert (strcmp (cp->baseline, "rules") == 0 && strcmp (cp->metric, "rmse") == 0);
    assert (fabs (cp->ci.diff - (1 - sqrt (1.25 / 0.5))) < 1e-15 && cp->mse.diff == -0.75);
    //  Against a production model that never errs: no improvement possible.
    cp = wk_eval_comparison (ev, 0);
    assert (strcmp (cp->baseline, "production") == 0 && isnan (cp->ci.diff));
    json = wk_eval_json (ev);
    assert (strstr (json, "\"task_type\": \"regression\"") && strstr (json, "\"rmse\""));
    free (json);
    wk_eval_destroy (&ev);
    double rbad [4] = { 1, NAN, 3, 4 };
    assert (wk_eval_new_regression (4, rts, rbad, rb, rref, rfwd) == NULL);
}
