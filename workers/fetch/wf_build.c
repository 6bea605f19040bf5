/*  wf_build.c - features, target, baseline and split into a dataset (see wf_build.h). */
#include "wf_build.h"
#include "lb_clock.h"
#include "lb_log.h"
#include "lb_mem.h"
#include "lb_selftest.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void
wf_split_opts_default (wf_split_opts_t *o)
{
    assert (o);
    o->catalyst = false;
    o->train_s = 2160 * 3600;
    o->valid_s = 168 * 3600;
    o->test_s = 168 * 3600;
    o->embargo_s = 0;
    o->valid_fraction = 0.15;
    o->test_fraction = 0.15;
    o->min_train_rows = 30;
}

//  Rows of one entity, in time order.
typedef struct {
    size_t *rows;
    size_t n;
} s_group_t;

typedef struct {
    const wf_frame_t *f;
    size_t ngroups;
    s_group_t *groups;
    uint32_t *entity;           //  per frame row
    char **entity_names;
} s_ctx_t;

static int
s_cmp_str (const void *a, const void *b)
{
    const char *x = *(const char *const *) a, *y = *(const char *const *) b;
    return strcmp (x, y);
}

static int
s_cmp_double (const void *a, const void *b)
{
    double x = *(const double *) a, y = *(const double *) b;
    return x < y ? -1 : x > y;
}

//  Sorted distinct values of a text column (NULLs skipped). Caller frees the array only.
static char **
s_levels (const wf_col_t *col, size_t rows, size_t *count)
{
    char **v = lb_xmalloc ((rows ? rows : 1) * sizeof (char *));
    size_t n = 0;
    for (size_t r = 0; r < rows; r++)
        if (col->str [r])
            v [n++] = col->str [r];
    qsort (v, n, sizeof (char *), s_cmp_str);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (u == 0 || strcmp (v [i], v [u - 1]) != 0)
            v [u++] = v [i];
    *count = u;
    return v;
}

static double
s_code (char **levels, size_t n, const char *s)
{
    if (!s)
        return NAN;
    char **hit = bsearch (&s, levels, n, sizeof (char *), s_cmp_str);
    return hit ? (double) (hit - levels) : NAN;
}

//  A numeric view of a column: numbers as they are, text as category codes.
static double *
s_numeric (const wf_col_t *col, size_t rows)
{
    double *x = lb_xmalloc ((rows ? rows : 1) * sizeof (double));
    if (!col->text) {
        memcpy (x, col->num, rows * sizeof (double));
        return x;
    }
    size_t n;
    char **levels = s_levels (col, rows, &n);
    for (size_t r = 0; r < rows; r++)
        x [r] = s_code (levels, n, col->str [r]);
    free (levels);
    return x;
}

//  Population standard deviation of the m one-step log returns of x from
//  position from (positions map to x through rows, or directly when rows is
//  NULL); NaN when a value is not positive.
static double
s_logret_sd (const double *x, const size_t *rows, size_t from, size_t m)
{
    double mean = 0, ss = 0;
    for (int pass = 0; pass < 2; pass++)
        for (size_t k = 0; k < m; k++) {
            double a = x [rows ? rows [from + k] : from + k], b = x [rows ? rows [from + k + 1] : from + k + 1];
            double r = a > 0 && b > 0 ? log (b / a) : NAN;
            if (pass == 0)
                mean += r / (double) m;
            else
                ss += (r - mean) * (r - mean);
        }
    return sqrt (ss / (double) m);
}

//  One windowed function at position i of a group's values v (time order).
static double
s_window_fn (const char *fn, const double *v, size_t i, int n)
{
    size_t w = (size_t) n;
    if (strcmp (fn, "lag") == 0)
        return i >= w ? v [i - w] : NAN;
    if (strcmp (fn, "diff") == 0)
        return i >= w ? v [i] - v [i - w] : NAN;
    if (strcmp (fn, "ret") == 0)
        return i >= w && v [i - w] != 0 ? v [i] / v [i - w] - 1 : NAN;
    if (strcmp (fn, "logret") == 0)
        return i >= w && v [i - w] > 0 && v [i] > 0 ? log (v [i] / v [i - w]) : NAN;
    if (strcmp (fn, "sma_ratio") == 0 || strcmp (fn, "zscore") == 0 || strcmp (fn, "range_pos") == 0) {
        if (i + 1 < w)
            return NAN;
        double sum = 0, lo = INFINITY, hi = -INFINITY;
        for (size_t k = i + 1 - w; k <= i; k++) {
            sum += v [k];
            lo = fmin (lo, v [k]);
            hi = fmax (hi, v [k]);
        }
        double mean = sum / (double) w;
        if (fn [0] == 's')
            return mean != 0 ? v [i] / mean - 1 : NAN;
        if (fn [0] == 'r')
            return hi > lo ? (v [i] - lo) / (hi - lo) : isnan (sum) ? NAN : 0.5;
        double ss = 0;
        for (size_t k = i + 1 - w; k <= i; k++)
            ss += (v [k] - mean) * (v [k] - mean);
        double sd = sqrt (ss / (double) w);
        return sd > 0 ? (v [i] - mean) / sd : isnan (ss) ? NAN : 0;
    }
    if (strcmp (fn, "vol") == 0) {
        if (i < w)
            return NAN;
        return s_logret_sd (v, NULL, i - w, w);
    }
    assert (false);
    return NAN;
}

//  ema_ratio and rsi are recurrences: computed over a whole group.
static void
s_recurrence (const char *fn, const double *v, size_t n, int w, double *out)
{
    if (strcmp (fn, "ema_ratio") == 0) {
        double a = 2.0 / (w + 1), e = NAN;
        for (size_t i = 0; i < n; i++) {
            e = i == 0 || isnan (e) ? v [i] : a * v [i] + (1 - a) * e;
            out [i] = i + 1 >= (size_t) w && e != 0 ? v [i] / e - 1 : NAN;
        }
        return;
    }
    //  Wilder's RSI over w.
    double ag = 0, al = 0;
    for (size_t i = 0; i < n; i++) {
        if (i >= 1) {
            double d = v [i] - v [i - 1];
            double g = d > 0 ? d : 0, l = d < 0 ? -d : 0;
            if (isnan (d))
                g = l = NAN;
            if (i <= (size_t) w) {
                ag += g / w;
                al += l / w;
            }
            else {
                ag = (ag * (w - 1) + g) / w;
                al = (al * (w - 1) + l) / w;
            }
        }
        out [i] = i < (size_t) w || isnan (ag) || isnan (al) ? NAN
                : al == 0 ? (ag == 0 ? 50 : 100) : 100 - 100 / (1 + ag / al);
    }
}

static double
s_calendar (const char *fn, double ts)
{
    if (isnan (ts))
        return NAN;
    time_t t = (time_t) floor (ts);
    struct tm tm;
    gmtime_r (&t, &tm);
    if (strcmp (fn, "dow") == 0)
        return (tm.tm_wday + 6) % 7;            //  Monday 0 .. Sunday 6
    if (strcmp (fn, "month") == 0)
        return tm.tm_mon + 1;
    if (strcmp (fn, "dayofyear") == 0)
        return tm.tm_yday + 1;
    return tm.tm_hour;
}

//  Computes one feature for every frame row into out. Returns 0 or -1 (*error_p).
static int
s_feature (s_ctx_t *c, const pr_feature_t *feat, double *out, lb_dataset_coltype_t *type,
           char **error_p)
{
    const wf_frame_t *f = c->f;
    int col = wf_frame_column (f, feat->column);
    if (col < 0) {
        *error_p = lb_xasprintf ("feature %s: no column %s", feat->text, feat->column);
        return -1;
    }
    *type = LB_DATASET_NUMERIC;
    if (!feat->fn) {
        double *x = s_numeric (&f->col [col], f->rows);
        memcpy (out, x, f->rows * sizeof (double));
        free (x);
        if (f->col [col].text)
            *type = LB_DATASET_CATEGORY;
        return 0;
    }
    bool calendar = strcmp (feat->fn, "dow") == 0 || strcmp (feat->fn, "month") == 0
                 || strcmp (feat->fn, "dayofyear") == 0 || strcmp (feat->fn, "hour") == 0;
    if (calendar) {
        if (f->col [col].text || col != f->time_col) {
            *error_p = lb_xasprintf ("feature %s: %s is not the time column", feat->text, feat->column);
            return -1;
        }
        for (size_t r = 0; r < f->rows; r++)
            out [r] = s_calendar (feat->fn, f->col [col].num [r]);
        *type = LB_DATASET_CATEGORY;
        return 0;
    }
    if (f->col [col].text) {
        *error_p = lb_xasprintf ("feature %s: column %s holds text, not numbers", feat->text, feat->column);
        return -1;
    }
    const double *x = f->col [col].num;
    if (strcmp (feat->fn, "spread") == 0) {
        int col2 = wf_frame_column (f, feat->column2);
        if (col2 < 0 || f->col [col2].text) {
            *error_p = lb_xasprintf ("feature %s: no numeric column %s", feat->text, feat->column2);
            return -1;
        }
        for (size_t r = 0; r < f->rows; r++) {
            double b = f->col [col2].num [r];
            out [r] = b != 0 ? x [r] / b - 1 : NAN;
        }
        return 0;
    }
    bool recurrence = strcmp (feat->fn, "ema_ratio") == 0 || strcmp (feat->fn, "rsi") == 0;
    for (size_t g = 0; g < c->ngroups; g++) {
        s_group_t *grp = &c->groups [g];
        double *v = lb_xmalloc ((grp->n ? grp->n : 1) * sizeof (double));
        double *o = lb_xmalloc ((grp->n ? grp->n : 1) * sizeof (double));
        for (size_t i = 0; i < grp->n; i++)
            v [i] = x [grp->rows [i]];
        if (recurrence)
            s_recurrence (feat->fn, v, grp->n, feat->window, o);
        else
            for (size_t i = 0; i < grp->n; i++)
                o [i] = s_window_fn (feat->fn, v, i, feat->window);
        for (size_t i = 0; i < grp->n; i++)
            out [grp->rows [i]] = isfinite (o [i]) ? o [i] : NAN;
        free (v);
        free (o);
    }
    return 0;
}

//  ts (Unix seconds) as ISO 8601 UTC. Returns buf.
static char *
s_iso (int64_t ts, char *buf, size_t size)
{
    return lb_clock_format_iso (ts * 1000000, buf, size);
}

lb_dataset_t *
wf_build_dataset (const pr_task_t *task, const wf_frame_t *f, const wf_split_opts_t *o,
                  const char *meta, char **error_p)
{
    assert (task && f && o && error_p);
    *error_p = NULL;
    lb_dataset_t *ds = NULL;
    size_t rows = f->rows, nf = task->feature_count;
    s_ctx_t c = { f, 0, NULL, lb_xcalloc (rows ? rows : 1, sizeof (uint32_t)), NULL };
    double *feat = lb_xmalloc ((rows ? rows : 1) * (nf ? nf : 1) * sizeof (double));
    double *col_tmp = lb_xmalloc ((rows ? rows : 1) * sizeof (double));
    double *y = lb_xmalloc ((rows ? rows : 1) * sizeof (double));
    double *base = lb_xmalloc ((rows ? rows : 1) * sizeof (double));
    double *fwd = lb_xmalloc ((rows ? rows : 1) * sizeof (double));
    double *label_span = lb_xmalloc ((rows ? rows : 1) * sizeof (double));
    int64_t *ts = lb_xmalloc ((rows ? rows : 1) * sizeof (int64_t));
    double *target = NULL;
    char **classes = NULL;
    size_t nclasses = 0;
    lb_dataset_coltype_t *types = lb_xcalloc (nf ? nf : 1, sizeof (lb_dataset_coltype_t));

    //  Entities.
    int sym = wf_frame_column (f, "symbol");
    if (sym >= 0 && f->col [sym].text) {
        c.entity_names = s_levels (&f->col [sym], rows, &c.ngroups);
        for (size_t r = 0; r < rows; r++) {
            double code = s_code (c.entity_names, c.ngroups, f->col [sym].str [r]);
            c.entity [r] = isnan (code) ? 0 : (uint32_t) code;
        }
    }
    else {
        c.ngroups = 1;
        c.entity_names = lb_xmalloc (sizeof (char *));
        c.entity_names [0] = task->name;
    }
    c.groups = lb_xcalloc (c.ngroups, sizeof (s_group_t));
    for (size_t r = 0; r < rows; r++)
        c.groups [c.entity [r]].n++;
    for (size_t g = 0; g < c.ngroups; g++) {
        c.groups [g].rows = lb_xmalloc ((c.groups [g].n ? c.groups [g].n : 1) * sizeof (size_t));
        c.groups [g].n = 0;
    }
    for (size_t r = 0; r < rows; r++) {
        s_group_t *g = &c.groups [c.entity [r]];
        g->rows [g->n++] = r;
    }
    for (size_t r = 0; r < rows; r++)
        ts [r] = f->time_col >= 0 ? (int64_t) floor (f->col [f->time_col].num [r]) : (int64_t) r;

    //  Features.
    for (size_t k = 0; k < nf; k++) {
        if (!lb_dataset_name_ok (task->features [k].text)) {
            *error_p = lb_xasprintf ("feature '%s' cannot be a column name", task->features [k].text);
            goto out;
        }
        if (s_feature (&c, &task->features [k], col_tmp, &types [k], error_p))
            goto out;
        for (size_t r = 0; r < rows; r++)
            feat [r * nf + k] = col_tmp [r];
    }

    //  Target, baseline, fwd_return, label span.
    const pr_target_t *tg = &task->target;
    int tcol = wf_frame_column (f, tg->column);
    if (tcol < 0) {
        *error_p = lb_xasprintf ("target: no column %s", tg->column);
        goto out;
    }
    if (f->col [tcol].text && tg->kind != PR_TARGET_CLASS) {
        *error_p = lb_xasprintf ("target %s holds text; only kind class can use it", tg->column);
        goto out;
    }
    if (tg->kind == PR_TARGET_CLASS) {
        if (f->col [tcol].text)
            classes = s_levels (&f->col [tcol], rows, &nclasses);
        else {
            //  Distinct numbers as classes (e.g. a 0/1 or boolean column).
            double *v = lb_xmalloc ((rows ? rows : 1) * sizeof (double));
            size_t n = 0;
            for (size_t r = 0; r < rows; r++)
                if (!isnan (f->col [tcol].num [r]))
                    v [n++] = f->col [tcol].num [r];
            qsort (v, n, sizeof (double), s_cmp_double);
            size_t u = 0;
            for (size_t i = 0; i < n; i++)
                if (u == 0 || v [i] != v [u - 1])
                    v [u++] = v [i];
            nclasses = u;
            if (u > 256) {
                free (v);
                *error_p = lb_xasprintf ("target %s has %zu distinct values: too many classes", tg->column, u);
                goto out;
            }
            classes = lb_xmalloc ((u ? u : 1) * sizeof (char *));
            for (size_t i = 0; i < u; i++)
                classes [i] = lb_xasprintf ("%.17g", v [i]);
            free (v);
        }
        if (nclasses < 2) {
            *error_p = lb_xasprintf ("target %s has %zu class: nothing to predict", tg->column, nclasses);
            goto out;
        }
        target = lb_xmalloc ((rows ? rows : 1) * sizeof (double));
        for (size_t r = 0; r < rows; r++) {
            if (f->col [tcol].text)
                target [r] = s_code (classes, nclasses, f->col [tcol].str [r]);
            else {
                char buf [40];
                const char *s = buf;
                snprintf (buf, sizeof buf, "%.17g", f->col [tcol].num [r]);
                target [r] = isnan (f->col [tcol].num [r]) ? NAN : s_code (classes, nclasses, s);
            }
        }
    }
    else
        target = s_numeric (&f->col [tcol], rows);
    int rule = wf_frame_column (f, "rule_signal"), fwdcol = wf_frame_column (f, "fwd_return");
    int lts = wf_frame_column (f, "label_timestamp");     //  when a table's label is known
    size_t h = (size_t) tg->horizon;
    for (size_t g = 0; g < c.ngroups; g++) {
        s_group_t *grp = &c.groups [g];
        for (size_t i = 0; i < grp->n; i++) {
            size_t r = grp->rows [i];
            const double *x = target;
            double now = x [r], then = i + h < grp->n ? x [grp->rows [i + h]] : NAN;
            double past = i >= h ? x [grp->rows [i - h]] : NAN;
            double yy = NAN, bb = NAN;
            switch (tg->kind) {
                case PR_TARGET_CLASS: yy = then; bb = now; break;
                case PR_TARGET_VALUE: yy = then; bb = now; break;
                case PR_TARGET_DIRECTION:
                    yy = isnan (then) || isnan (now) ? NAN : then > now;
                    bb = isnan (past) || isnan (now) ? NAN : now > past;
                    break;
                case PR_TARGET_RETURN:
                    yy = now != 0 ? then / now - 1 : NAN;
                    bb = past != 0 ? now / past - 1 : NAN;
                    break;
                case PR_TARGET_THRESHOLD:
                    yy = isnan (then) ? NAN : then > tg->threshold;
                    bb = isnan (now) ? NAN : now > tg->threshold;
                    break;
                case PR_TARGET_VOLATILITY: case PR_TARGET_VOL_REGIME: {
                    double vals [2] = { NAN, NAN };
                    for (int side = 0; side < 2; side++) {
                        //  side 0: the next h rows (label); side 1: the last h rows (baseline).
                        size_t from = side == 0 ? i : (i >= h ? i - h : SIZE_MAX);
                        if (from == SIZE_MAX || from + h >= grp->n || h < 2)
                            continue;
                        vals [side] = s_logret_sd (x, grp->rows, from, h);
                    }
                    yy = vals [0];
                    bb = vals [1];
                    break;
                }
            }
            y [r] = isfinite (yy) ? yy : NAN;
            base [r] = isfinite (bb) ? bb : NAN;
            if (rule >= 0 && !f->col [rule].text)
                base [r] = f->col [rule].num [r] == 1 ? 1 : f->col [rule].num [r] == 0 ? 0 : NAN;
            if (fwdcol >= 0 && !f->col [fwdcol].text)
                fwd [r] = isfinite (f->col [fwdcol].num [r]) ? f->col [fwdcol].num [r] : NAN;
            else
                fwd [r] = now > 0 && then > 0 ? then / now - 1 : NAN;
            label_span [r] = i + h < grp->n ? (double) (ts [grp->rows [i + h]] - ts [r]) : NAN;
            if (lts >= 0 && !f->col [lts].text && !isnan (f->col [lts].num [r]))
                label_span [r] = fmax (isnan (label_span [r]) ? 0 : label_span [r],
                                       f->col [lts].num [r] - (double) ts [r]);
        }
    }

    //  Rows kept: a defined label. Windows over their times.
    size_t kept = 0;
    int64_t span = 0, first = 0, last = 0;
    for (size_t r = 0; r < rows; r++)
        if (!isnan (y [r])) {
            if (!kept)
                first = ts [r];
            last = ts [r];
            kept++;
            if (label_span [r] > (double) span)
                span = (int64_t) label_span [r];
        }
    if (kept == 0) {
        *error_p = lb_xasprintf ("no row has a defined target (%zu rows, horizon %d): too few rows", rows, tg->horizon);
        goto out;
    }
    int64_t embargo = o->embargo_s > span ? o->embargo_s : span;
    lb_dataset_windows_t w;
    const char *mode = "fraction";
    int64_t need = o->train_s + o->valid_s + o->test_s + 2 * embargo;
    if (o->catalyst && last + 1 - first >= need) {
        lb_dataset_windows_back (last + 1, o->train_s, o->valid_s, o->test_s, embargo, &w);
        mode = "catalyst";
    }
    else {
        int64_t *times = lb_xmalloc (kept * sizeof (int64_t));
        size_t nt = 0;
        for (size_t r = 0; r < rows; r++)
            if (!isnan (y [r]) && (nt == 0 || ts [r] != times [nt - 1]))
                times [nt++] = ts [r];
        size_t it = (size_t) floor ((double) nt * (1 - o->test_fraction));
        size_t iv = (size_t) floor ((double) nt * (1 - o->test_fraction - o->valid_fraction));
        if (it >= nt || iv >= it || iv == 0) {
            free (times);
            *error_p = lb_xasprintf ("too few rows for the windows: %zu distinct times", nt);
            goto out;
        }
        w.from [LB_DATASET_TEST] = times [it];
        w.to [LB_DATASET_TEST] = last + 1;
        w.from [LB_DATASET_VALID] = times [iv];
        w.to [LB_DATASET_VALID] = times [it] - embargo;
        w.from [LB_DATASET_TRAIN] = first;
        w.to [LB_DATASET_TRAIN] = times [iv] - embargo;
        free (times);
        if (o->catalyst)
            lb_log_info ("fetch: data spans %llds, the Catalyst windows need %llds: splitting by time quantiles",
                         (long long) (last + 1 - first), (long long) need);
    }
    size_t counts [3] = { 0, 0, 0 };
    for (size_t r = 0; r < rows; r++)
        for (int s = 0; s < 3; s++)
            counts [s] += !isnan (y [r]) && ts [r] >= w.from [s] && ts [r] < w.to [s];
    static const char *split_names [3] = { "train", "validation", "test" };
    for (int s = 0; s < 3; s++)
        if (counts [s] == 0 || (s == 0 && counts [0] < o->min_train_rows)) {
            char a [32], b [32];
            *error_p = lb_xasprintf ("too few rows for the windows: the %s window %s..%s has %zu rows "
                                     "(%s split, embargo %llds)", split_names [s],
                                     s_iso (w.from [s], a, sizeof a), s_iso (w.to [s], b, sizeof b),
                                     counts [s], mode, (long long) embargo);
            goto out;
        }
    //  vol_regime: above the training median of the volatility.
    if (tg->kind == PR_TARGET_VOL_REGIME) {
        double *v = lb_xmalloc (counts [0] * sizeof (double));
        size_t n = 0;
        for (size_t r = 0; r < rows; r++)
            if (!isnan (y [r]) && ts [r] >= w.from [0] && ts [r] < w.to [0])
                v [n++] = y [r];
        qsort (v, n, sizeof (double), s_cmp_double);
        double median = n % 2 ? v [n / 2] : (v [n / 2 - 1] + v [n / 2]) / 2;
        free (v);
        for (size_t r = 0; r < rows; r++) {
            if (!isnan (y [r]))
                y [r] = y [r] > median;
            if (!isnan (base [r]) && rule < 0)
                base [r] = base [r] > median;
        }
    }
    //  The dataset.
    lb_dataset_task_t dtask;
    int ncls = 0;
    if (tg->kind == PR_TARGET_CLASS) {
        dtask = nclasses == 2 ? LB_DATASET_BINARY : LB_DATASET_MULTICLASS;
        ncls = (int) nclasses;
    }
    else
    if (tg->kind == PR_TARGET_DIRECTION || tg->kind == PR_TARGET_THRESHOLD || tg->kind == PR_TARGET_VOL_REGIME) {
        dtask = LB_DATASET_BINARY;
        ncls = 2;
    }
    else
        dtask = LB_DATASET_REGRESSION;
    if ((task->task_type == PR_TASK_BINARY && dtask != LB_DATASET_BINARY)
    ||  (task->task_type == PR_TASK_MULTICLASS && dtask != LB_DATASET_MULTICLASS)
    ||  (task->task_type == PR_TASK_REGRESSION && dtask != LB_DATASET_REGRESSION)) {
        *error_p = lb_xasprintf ("task type %s does not fit target %s of kind %s (%zu classes)",
                                 pr_task_type_name (task->task_type), tg->column,
                                 pr_target_kind_name (tg->kind), nclasses);
        goto out;
    }
    const char **names = lb_xmalloc ((nf ? nf : 1) * sizeof (char *));
    for (size_t k = 0; k < nf; k++)
        names [k] = task->features [k].text;
    const char *label = lb_dataset_name_ok (tg->column) ? tg->column : "target";
    ds = lb_dataset_new (dtask, dtask == LB_DATASET_REGRESSION ? 0 : ncls, label, nf, names, types);
    free (names);
    int rc = lb_dataset_set_horizon (ds, span, embargo);
    assert (rc == 0);
    if (meta)
        lb_dataset_set_meta (ds, meta);
    uint32_t *ids = lb_xmalloc (c.ngroups * sizeof (uint32_t));
    for (size_t g = 0; g < c.ngroups; g++)
        ids [g] = UINT32_MAX;
    float *x = lb_xmalloc ((nf ? nf : 1) * sizeof (float));
    for (size_t r = 0; r < rows && rc == 0; r++) {
        if (isnan (y [r]))
            continue;
        bool inside = false;
        for (int s = 0; s < 3; s++)
            inside |= ts [r] >= w.from [s] && ts [r] < w.to [s];
        if (!inside)
            continue;
        uint32_t e = c.entity [r];
        if (ids [e] == UINT32_MAX) {
            const char *en = c.entity_names [e];
            ids [e] = lb_dataset_entity (ds, lb_dataset_name_ok (en) ? en : "entity");
        }
        for (size_t k = 0; k < nf; k++) {
            double v = feat [r * nf + k];
            x [k] = isfinite (v) && fabs (v) < 3e38 ? (float) v : NAN;
        }
        float bf = isnan (base [r]) ? NAN : (float) base [r];
        if (dtask != LB_DATASET_REGRESSION && !isnan (bf) && (bf < 0 || bf >= ncls || bf != floorf (bf)))
            bf = NAN;
        float yf = (float) y [r];
        float ff = isfinite (fwd [r]) && fabs (fwd [r]) < 3e38 ? (float) fwd [r] : NAN;
        if (dtask == LB_DATASET_REGRESSION && !isfinite (yf))
            continue;
        rc = lb_dataset_append (ds, ts [r], ids [e], x, yf, bf, ff);
    }
    free (x);
    free (ids);
    if (rc || lb_dataset_split_windows (ds, &w)) {
        *error_p = lb_xstrdup ("the rows do not fit the dataset (see the log)");
        lb_dataset_destroy (&ds);
    }
out:
    if (classes) {
        if (!(tg->kind == PR_TARGET_CLASS && f->col [tcol].text))
            for (size_t i = 0; i < nclasses; i++)
                free (classes [i]);
        free (classes);
    }
    for (size_t g = 0; g < c.ngroups; g++)
        free (c.groups [g].rows);
    free (c.groups);
    free (c.entity);
    free (c.entity_names);
    free (feat);
    free (col_tmp);
    free (y);
    free (base);
    free (fwd);
    free (label_span);
    free (ts);
    free (target);
    free (types);
    return ds;
}

// ---------------------------------------------------------------- selftest

static pr_task_t *
s_test_task (const char *path, const char *target, const char *features, const char *type,
             const char *metric)
{
    char *json = lb_xasprintf (
        "{\"version\":1,\"name\":\"selftest_task\",\"hypothesis\":\"a hypothesis long enough to pass\","
        "\"novelty\":\"new enough here\",\"task_type\":\"%s\",\"sources\":[{\"uri\":\"file://%s\","
        "\"format\":\"csv\",\"columns\":[\"date\",\"close\",\"weather\"],\"time_column\":\"date\","
        "\"size_bytes\":1000}],\"target\":%s,\"features\":%s,\"metric\":\"%s\","
        "\"model_families\":[\"xgboost\"]}", type, path, target, features, metric);
    char *error = NULL;
    pr_task_t *task = pr_task_from_json (json, strlen (json), &error);
    if (!task)
        fprintf (stderr, "spec: %s\n", error);
    assert (task);
    free (json);
    return task;
}

void
wf_build_test (bool verbose)
{
    char *dir = lb_selftest_tmpdir ("wf_build");
    char *path = lb_xasprintf ("%s/d.csv", dir);
    FILE *file = fopen (path, "w");
    assert (file);
    fputs ("date,close,weather\n", file);
    static const char *weathers [3] = { "rain", "sun", "fog" };
    for (int i = 0; i < 400; i++) {
        int64_t day = 18000 + i;
        time_t t = (time_t) (day * 86400);
        struct tm tm;
        gmtime_r (&t, &tm);
        char date [16];
        strftime (date, sizeof date, "%Y-%m-%d", &tm);
        fprintf (file, "%s,%.4f,%s\n", date, 100 + 10 * sin (i * 0.2) + 0.05 * i, i == 7 ? "" : weathers [(i / 3) % 3]);
    }
    fclose (file);
    pr_task_t *task = s_test_task (path, "{\"column\":\"close\",\"kind\":\"direction\",\"horizon\":2}",
                                   "[\"ret(close,1)\",\"rsi(close,14)\",\"month(date)\",\"weather\",\"zscore(close,5)\"]",
                                   "binary", "roc_auc");
    wf_frame_t f;
    char *error = NULL;
    assert (wf_frame_from_csv (&task->sources [0], path, &f, &error) == 0);
    assert (wf_frame_prepare (&task->sources [0], &f, &error) == 0);
    wf_split_opts_t o;
    wf_split_opts_default (&o);
    lb_dataset_t *ds = wf_build_dataset (task, &f, &o, "{\"task\":\"selftest_task\"}", &error);
    if (!ds)
        fprintf (stderr, "%s\n", error);
    assert (ds);
    //  400 rows, the last 2 have no label.
    assert (lb_dataset_task (ds) == LB_DATASET_BINARY && lb_dataset_cols (ds) == 5);
    assert (lb_dataset_horizon (ds) == 2 * 86400 && lb_dataset_embargo (ds) == 2 * 86400);
    size_t b [3], e [3];
    for (int s = 0; s < 3; s++)
        lb_dataset_split (ds, (lb_dataset_split_t) s, &b [s], &e [s]);
    const int64_t *ts = lb_dataset_ts (ds);
    assert (ts [b [1]] - ts [e [0] - 1] >= 2 * 86400 && ts [b [2]] - ts [e [1] - 1] >= 2 * 86400);
    assert (e [2] - b [2] >= 55 && e [1] - b [1] >= 55 && e [0] - b [0] >= 250);
    //  Row 0 is day 18000: y = close[2] > close[0]; ret(close,1) is missing; month 4 (April 2019).
    assert (ts [0] == 18000LL * 86400);
    double c0 = 100, c2 = 100 + 10 * sin (0.4) + 0.1;
    assert (lb_dataset_y (ds) [0] == (c2 > c0));
    assert (isnan (lb_dataset_x (ds) [0]) && lb_dataset_x (ds) [2] == 4);
    assert (lb_dataset_coltype (ds, 3) == LB_DATASET_CATEGORY);
    assert (isnan (lb_dataset_x (ds) [7 * 5 + 3]));              //  the missing weather stays missing
    assert (isnan (lb_dataset_baseline (ds) [0]) && !isnan (lb_dataset_baseline (ds) [5]));
    assert (fabs (lb_dataset_fwd_return (ds) [0] - (float) (round (c2 * 1e4) / 1e4 / c0 - 1)) < 1e-6);
    lb_dataset_destroy (&ds);
    pr_task_destroy (&task);

    //  A class target over text: three classes, multiclass.
    task = s_test_task (path, "{\"column\":\"weather\",\"kind\":\"class\",\"horizon\":1}",
                        "[\"lag(close,1)\",\"weather\"]", "multiclass", "accuracy");
    ds = wf_build_dataset (task, &f, &o, NULL, &error);
    assert (ds && lb_dataset_task (ds) == LB_DATASET_MULTICLASS && lb_dataset_n_classes (ds) == 3);
    lb_dataset_destroy (&ds);
    pr_task_destroy (&task);

    //  Regression returns; Catalyst windows the data cannot cover fall back to quantiles.
    task = s_test_task (path, "{\"column\":\"close\",\"kind\":\"return\",\"horizon\":5}",
                        "[\"vol(close,10)\",\"ema_ratio(close,8)\",\"range_pos(close,20)\",\"dow(date)\"]",
                        "regression", "rmse");
    o.catalyst = true;
    ds = wf_build_dataset (task, &f, &o, NULL, &error);
    assert (ds && lb_dataset_task (ds) == LB_DATASET_REGRESSION && lb_dataset_embargo (ds) == 5 * 86400);
    lb_dataset_destroy (&ds);
    //  Too few rows for the windows.
    o.catalyst = false;
    o.min_train_rows = 100000;
    ds = wf_build_dataset (task, &f, &o, NULL, &error);
    assert (!ds && strstr (error, "too few rows"));
    if (verbose)
        printf ("  %s\n", error);
    free (error);
    pr_task_destroy (&task);
    //  A feature over a text column.
    task = s_test_task (path, "{\"column\":\"close\",\"kind\":\"direction\",\"horizon\":1}",
                        "[\"ret(weather,1)\"]", "binary", "accuracy");
    wf_split_opts_default (&o);
    ds = wf_build_dataset (task, &f, &o, NULL, &error);
    assert (!ds && strstr (error, "holds text"));
    free (error);
    pr_task_destroy (&task);
    wf_frame_release (&f);
    free (path);
    lb_selftest_rmtree (dir);
    free (dir);
}
