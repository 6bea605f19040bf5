/*  wk_report.c - Markdown and self-contained HTML with inline SVG plots. */
#include "wk_report.h"
#include "lb_mem.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  A growing string.
typedef struct {
    char *data;
    size_t len, cap;
} s_buf_t;

static void s_put (s_buf_t *b, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_put (s_buf_t *b, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    char *text = lb_xvasprintf (fmt, args);
    va_end (args);
    size_t add = strlen (text);
    if (b->len + add + 1 > b->cap) {
        b->cap = (b->len + add + 1) * 2;
        b->data = lb_xrealloc (b->data, b->cap);
    }
    memcpy (b->data + b->len, text, add + 1);
    b->len += add;
    free (text);
}

//  HTML-escaped copy of text (caller frees).
static char *
s_esc (const char *text)
{
    s_buf_t b = { 0 };
    s_put (&b, "%s", "");
    for (const char *c = text ? text : ""; *c; c++) {
        switch (*c) {
            case '<': s_put (&b, "&lt;"); break;
            case '>': s_put (&b, "&gt;"); break;
            case '&': s_put (&b, "&amp;"); break;
            case '"': s_put (&b, "&quot;"); break;
            default:  s_put (&b, "%c", *c);
        }
    }
    return b.data;
}

//  A number for a table: NaN shows as "n/a".
static const char *
s_fmt (char *buf, size_t size, double v, int digits)
{
    if (!isfinite (v))
        snprintf (buf, size, "n/a");
    else
        snprintf (buf, size, "%.*f", digits, v);
    return buf;
}

static const char *s_palette [] = {
    "#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf"
};
#define S_COLORS (sizeof s_palette / sizeof s_palette [0])

//  --------------------------------------------------------------------------
//  SVG

typedef struct {
    const char *name;
    const double *x, *y;    //  x NULL: x = index
    size_t n;
} s_series_t;

#define S_W 560
#define S_H 380
#define S_ML 60
#define S_MR 150
#define S_MT 30
#define S_MB 45

static double
s_sx (double x, double x0, double x1)
{
    return S_ML + (x1 > x0 ? (x - x0) / (x1 - x0) : 0) * (S_W - S_ML - S_MR);
}

static double
s_sy (double y, double y0, double y1)
{
    return S_H - S_MB - (y1 > y0 ? (y - y0) / (y1 - y0) : 0) * (S_H - S_MT - S_MB);
}

static void
s_svg_frame (s_buf_t *b, const char *id, const char *title, const char *xlabel,
             const char *ylabel, double x0, double x1, double y0, double y1)
{
    char *t = s_esc (title);
    s_put (b, "<svg id=\"%s\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
           "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"%s\">\n", id, S_W, S_H, S_W, S_H, t);
    s_put (b, "<title>%s</title>\n", t);
    s_put (b, "<rect x=\"0\" y=\"0\" width=\"%d\" height=\"%d\" fill=\"white\"/>\n", S_W, S_H);
    s_put (b, "<text x=\"%d\" y=\"18\" font-size=\"14\" font-family=\"sans-serif\">%s</text>\n",
           S_ML, t);
    free (t);
    //  Axes, ticks at fifths.
    s_put (b, "<g stroke=\"#888\" stroke-width=\"1\" fill=\"none\">"
           "<rect x=\"%d\" y=\"%d\" width=\"%d\" height=\"%d\"/></g>\n",
           S_ML, S_MT, S_W - S_ML - S_MR, S_H - S_MT - S_MB);
    for (int k = 0; k <= 5; k++) {
        double xv = x0 + (x1 - x0) * k / 5.0, yv = y0 + (y1 - y0) * k / 5.0;
        s_put (b, "<text x=\"%.1f\" y=\"%d\" font-size=\"10\" text-anchor=\"middle\" "
               "font-family=\"sans-serif\">%.3g</text>\n", s_sx (xv, x0, x1), S_H - S_MB + 14, xv);
        s_put (b, "<text x=\"%d\" y=\"%.1f\" font-size=\"10\" text-anchor=\"end\" "
               "font-family=\"sans-serif\">%.3g</text>\n", S_ML - 4, s_sy (yv, y0, y1) + 3, yv);
    }
    s_put (b, "<text x=\"%d\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\" "
           "font-family=\"sans-serif\">%s</text>\n", (S_W - S_MR + S_ML) / 2, S_H - 8, xlabel);
    s_put (b, "<text x=\"14\" y=\"%d\" font-size=\"11\" text-anchor=\"middle\" "
           "font-family=\"sans-serif\" transform=\"rotate(-90 14 %d)\">%s</text>\n",
           (S_H - S_MB + S_MT) / 2, (S_H - S_MB + S_MT) / 2, ylabel);
}

//  A line chart; at most 600 points drawn per series (evenly thinned).
static void
s_svg_lines (s_buf_t *b, const char *id, const char *title, const char *xlabel,
             const char *ylabel, const s_series_t *series, size_t count,
             double x0, double x1, double y0, double y1, bool diagonal, bool markers)
{
    s_svg_frame (b, id, title, xlabel, ylabel, x0, x1, y0, y1);
    if (diagonal)
        s_put (b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#bbb\" "
               "stroke-dasharray=\"4 4\"/>\n", s_sx (x0, x0, x1), s_sy (y0, y0, y1),
               s_sx (x1, x0, x1), s_sy (y1, y0, y1));
    for (size_t s = 0; s < count; s++) {
        const s_series_t *se = &series [s];
        const char *color = s_palette [s % S_COLORS];
        char *name = s_esc (se->name);
        s_put (b, "<polyline class=\"series\" data-name=\"%s\" fill=\"none\" stroke=\"%s\" "
               "stroke-width=\"1.6\" points=\"", name, color);
        size_t step = se->n > 600 ? (se->n + 599) / 600 : 1;
        for (size_t i = 0; i < se->n; i += step) {
            double xv = se->x ? se->x [i] : (double) i, yv = se->y [i];
            if (isfinite (yv) && isfinite (xv))
                s_put (b, "%.1f,%.1f ", s_sx (xv, x0, x1), s_sy (yv, y0, y1));
        }
        if (se->n && (se->n - 1) % step) {
            size_t i = se->n - 1;
            double xv = se->x ? se->x [i] : (double) i;
            if (isfinite (se->y [i]))
                s_put (b, "%.1f,%.1f", s_sx (xv, x0, x1), s_sy (se->y [i], y0, y1));
        }
        s_put (b, "\"/>\n");
        if (markers)
            for (size_t i = 0; i < se->n; i++)
                if (isfinite (se->y [i]) && (!se->x || isfinite (se->x [i])))
                    s_put (b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.5\" fill=\"%s\"/>\n",
                           s_sx (se->x ? se->x [i] : (double) i, x0, x1),
                           s_sy (se->y [i], y0, y1), color);
        int ly = S_MT + 14 + (int) s * 16;
        s_put (b, "<line x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\" stroke=\"%s\" stroke-width=\"3\"/>"
               "<text x=\"%d\" y=\"%d\" font-size=\"11\" font-family=\"sans-serif\">%s</text>\n",
               S_W - S_MR + 10, ly - 4, S_W - S_MR + 28, ly - 4, color, S_W - S_MR + 32, ly, name);
        free (name);
    }
    s_put (b, "</svg>\n");
}

//  A scatter plot: one circle per point, at most 600 per series (evenly
//  thinned); diagonal draws y = x.
static void
s_svg_points (s_buf_t *b, const char *id, const char *title, const char *xlabel,
              const char *ylabel, const s_series_t *series, size_t count, bool diagonal,
              bool zero_line)
{
    double x0 = INFINITY, x1 = -INFINITY, y0 = INFINITY, y1 = -INFINITY;
    for (size_t s = 0; s < count; s++)
        for (size_t i = 0; i < series [s].n; i++) {
            double xv = series [s].x [i], yv = series [s].y [i];
            if (!isfinite (xv) || !isfinite (yv))
                continue;
            x0 = fmin (x0, xv);
            x1 = fmax (x1, xv);
            y0 = fmin (y0, yv);
            y1 = fmax (y1, yv);
        }
    if (!(x0 <= x1))
        x0 = 0, x1 = 1, y0 = 0, y1 = 1;
    if (diagonal) {
        x0 = y0 = fmin (x0, y0);
        x1 = y1 = fmax (x1, y1);
    }
    if (zero_line) {
        double m = fmax (fabs (y0), fabs (y1));
        y0 = -m;
        y1 = m;
    }
    if (x1 - x0 < 1e-12)
        x1 = x0 + 1;
    if (y1 - y0 < 1e-12)
        y1 = y0 + 1;
    s_svg_frame (b, id, title, xlabel, ylabel, x0, x1, y0, y1);
    if (diagonal)
        s_put (b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#bbb\" "
               "stroke-dasharray=\"4 4\"/>\n", s_sx (x0, x0, x1), s_sy (y0, y0, y1),
               s_sx (x1, x0, x1), s_sy (y1, y0, y1));
    if (zero_line)
        s_put (b, "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#bbb\" "
               "stroke-dasharray=\"4 4\"/>\n", s_sx (x0, x0, x1), s_sy (0, y0, y1),
               s_sx (x1, x0, x1), s_sy (0, y0, y1));
    for (size_t s = 0; s < count; s++) {
        const s_series_t *se = &series [s];
        const char *color = s_palette [s % S_COLORS];
        char *name = s_esc (se->name);
        s_put (b, "<g class=\"series\" data-name=\"%s\" fill=\"%s\" fill-opacity=\"0.6\">", name,
               color);
        size_t step = se->n > 600 ? (se->n + 599) / 600 : 1;
        for (size_t i = 0; i < se->n; i += step)
            if (isfinite (se->x [i]) && isfinite (se->y [i]))
                s_put (b, "<circle cx=\"%.1f\" cy=\"%.1f\" r=\"2.2\"/>",
                       s_sx (se->x [i], x0, x1), s_sy (se->y [i], y0, y1));
        s_put (b, "</g>\n");
        int ly = S_MT + 14 + (int) s * 16;
        s_put (b, "<circle cx=\"%d\" cy=\"%d\" r=\"4\" fill=\"%s\"/>"
               "<text x=\"%d\" y=\"%d\" font-size=\"11\" font-family=\"sans-serif\">%s</text>\n",
               S_W - S_MR + 18, ly - 4, color, S_W - S_MR + 32, ly, name);
        free (name);
    }
    s_put (b, "</svg>\n");
}

//  The regression plots: predicted against actual for every policy, and the
//  candidate's residuals (actual minus predicted) in time order.
static void
s_regression_plots (s_buf_t *b, wk_eval_t *eval, s_series_t *series)
{
    size_t np = wk_eval_policies (eval), n = wk_eval_rows (eval);
    const double *y = wk_eval_targets (eval);
    for (size_t i = 0; i < np; i++) {
        const wk_eval_policy_t *p = wk_eval_policy (eval, i);
        series [i] = (s_series_t) { p->name, y, p->p, n };
    }
    s_svg_points (b, "plot-scatter", "Predicted against actual (test window)", "actual",
                  "predicted", series, np, true, false);
    const wk_eval_policy_t *cand = wk_eval_candidate (eval);
    double *rx = lb_xmalloc (n * sizeof *rx), *ry = lb_xmalloc (n * sizeof *ry);
    for (size_t r = 0; r < n; r++) {
        rx [r] = (double) r;
        ry [r] = y [r] - cand->p [r];
    }
    s_series_t res = { cand->name, rx, ry, n };
    s_svg_points (b, "plot-residuals", "Residuals of the candidate (actual - predicted)",
                  "test row (time order)", "residual", &res, 1, false, true);
    free (rx);
    free (ry);
}

//  Horizontal bars, largest first (at most 20).
static void
s_svg_bars (s_buf_t *b, const char *id, const char *title, const wk_eval_policy_t *pol)
{
    size_t n = pol->nimp;
    size_t *order = lb_xmalloc ((n ? n : 1) * sizeof *order);
    for (size_t i = 0; i < n; i++)
        order [i] = i;
    for (size_t i = 1; i < n; i++)     //  insertion sort: n is small
        for (size_t j = i; j > 0 && pol->imp_value [order [j]] > pol->imp_value [order [j - 1]]; j--) {
            size_t t = order [j]; order [j] = order [j - 1]; order [j - 1] = t;
        }
    size_t shown = n < 20 ? n : 20;
    double max = 0;
    for (size_t i = 0; i < shown; i++)
        if (fabs (pol->imp_value [order [i]]) > max)
            max = fabs (pol->imp_value [order [i]]);
    int h = 50 + (int) shown * 18;
    char *t = s_esc (title);
    s_put (b, "<svg id=\"%s\" xmlns=\"http://www.w3.org/2000/svg\" width=\"%d\" height=\"%d\" "
           "viewBox=\"0 0 %d %d\" role=\"img\" aria-label=\"%s\">\n<title>%s</title>\n"
           "<rect width=\"%d\" height=\"%d\" fill=\"white\"/>\n"
           "<text x=\"10\" y=\"18\" font-size=\"14\" font-family=\"sans-serif\">%s</text>\n",
           id, S_W, h, S_W, h, t, t, S_W, h, t);
    free (t);
    for (size_t i = 0; i < shown; i++) {
        double v = pol->imp_value [order [i]];
        double w = max > 0 ? fabs (v) / max * (S_W - 220) : 0;
        int y = 34 + (int) i * 18;
        char *f = s_esc (pol->imp_name [order [i]]);
        s_put (b, "<text x=\"150\" y=\"%d\" font-size=\"11\" text-anchor=\"end\" "
               "font-family=\"sans-serif\">%s</text>"
               "<rect class=\"bar\" x=\"155\" y=\"%d\" width=\"%.1f\" height=\"13\" fill=\"%s\"/>"
               "<text x=\"%.1f\" y=\"%d\" font-size=\"10\" font-family=\"sans-serif\">%.4g</text>\n",
               y + 10, f, y, w, v < 0 ? "#d62728" : "#1f77b4", 160 + w, y + 10, v);
        free (f);
    }
    s_put (b, "</svg>\n");
    free (order);
}

static const wk_eval_policy_t *
s_importance_policy (wk_eval_t *eval)
{
    const wk_eval_policy_t *c = wk_eval_candidate (eval);
    if (c && c->nimp)
        return c;
    for (size_t i = 0; i < wk_eval_policies (eval); i++)
        if (wk_eval_policy (eval, i)->nimp)
            return wk_eval_policy (eval, i);
    return NULL;
}

//  --------------------------------------------------------------------------
//  Tables shared by both formats: rows of cells, written as Markdown or HTML.

typedef enum { S_MD, S_HTML } s_fmt_t;

static void
s_row (s_buf_t *b, s_fmt_t f, bool head, int cells, const char *const *text)
{
    if (f == S_MD) {
        s_put (b, "|");
        for (int i = 0; i < cells; i++)
            s_put (b, " %s |", text [i]);
        s_put (b, "\n");
        if (head) {
            s_put (b, "|");
            for (int i = 0; i < cells; i++)
                s_put (b, "%s|", i ? "---:" : "---");
            s_put (b, "\n");
        }
    }
    else {
        s_put (b, "<tr>");
        for (int i = 0; i < cells; i++) {
            char *e = s_esc (text [i]);
            s_put (b, head ? "<th>%s</th>" : "<td>%s</td>", e);
            free (e);
        }
        s_put (b, "</tr>\n");
    }
}

static void
s_heading (s_buf_t *b, s_fmt_t f, int level, const char *text)
{
    if (f == S_MD)
        s_put (b, "\n%.*s %s\n\n", level, "####", text);
    else {
        char *e = s_esc (text);
        s_put (b, "<h%d>%s</h%d>\n", level, e, level);
        free (e);
    }
}

static void
s_para (s_buf_t *b, s_fmt_t f, const char *text)
{
    if (f == S_MD)
        s_put (b, "%s\n\n", text);
    else {
        char *e = s_esc (text);
        s_put (b, "<p>%s</p>\n", e);
        free (e);
    }
}

static void
s_table_open (s_buf_t *b, s_fmt_t f)
{
    if (f == S_HTML)
        s_put (b, "<table>\n");
}

static void
s_table_close (s_buf_t *b, s_fmt_t f)
{
    s_put (b, f == S_HTML ? "</table>\n" : "\n");
}

//  A comparison's baseline as the tables name it: "production (v3)", "rules".
static void
s_baseline_name (const wk_eval_cmp_t *c, char *buf, size_t size)
{
    if (c->baseline_version)
        snprintf (buf, size, "%s (v%d)", c->baseline, c->baseline_version);
    else
        snprintf (buf, size, "%s", c->baseline);
}

//  The regression tables: metrics and the A/B comparisons on squared error.
static void
s_regression_tables (s_buf_t *b, s_fmt_t f, wk_eval_t *eval)
{
    char n1 [32], n2 [32], n3 [32], n4 [32], n5 [32], n6 [32], n7 [32], n8 [32], n9 [32];
    s_heading (b, f, 2, "Metrics on the held-out test window (regression)");
    s_table_open (b, f);
    const char *head [] = { "policy", "role", "RMSE", "MAE", "R²", "MSE",
                            "direction accuracy", "direction rows" };
    s_row (b, f, true, 8, head);
    for (size_t i = 0; i < wk_eval_policies (eval); i++) {
        const wk_eval_policy_t *p = wk_eval_policy (eval, i);
        snprintf (n6, 32, "%zu", p->dir_n);
        const char *cells [] = { p->name, p->role, s_fmt (n1, 32, p->rm.rmse, 6),
            s_fmt (n2, 32, p->rm.mae, 6), s_fmt (n3, 32, p->rm.r2, 4),
            s_fmt (n4, 32, p->rm.mse, 6), s_fmt (n5, 32, p->dir_acc, 4), n6 };
        s_row (b, f, false, 8, cells);
    }
    s_table_close (b, f);
    s_heading (b, f, 2, "A/B comparisons (squared error, paired on the same rows)");
    s_para (b, f, "Relative RMSE improvement = 1 - RMSE(candidate) / RMSE(baseline) "
            "(positive: the candidate errs less); MSE difference = mean squared error of the "
            "baseline minus the candidate's. Both intervals come from the same resamples.");
    s_table_open (b, f);
    const char *ahead [] = { "candidate", "baseline", "RMSE improvement", "CI low", "CI high",
                             "MSE difference", "CI low", "CI high" };
    s_row (b, f, true, 8, ahead);
    for (size_t i = 0; i < wk_eval_comparisons (eval); i++) {
        const wk_eval_cmp_t *c = wk_eval_comparison (eval, i);
        char base [96];
        s_baseline_name (c, base, sizeof base);
        const char *cells [] = { c->candidate, base, s_fmt (n1, 32, c->ci.diff, 4),
            s_fmt (n2, 32, c->ci.lo, 4), s_fmt (n3, 32, c->ci.hi, 4),
            s_fmt (n7, 32, c->mse.diff, 6), s_fmt (n8, 32, c->mse.lo, 6),
            s_fmt (n9, 32, c->mse.hi, 6) };
        s_row (b, f, false, 8, cells);
    }
    s_table_close (b, f);
}

static void
s_body (s_buf_t *b, s_fmt_t f, wk_eval_t *eval, const wk_report_info_t *info)
{
    const wk_eval_settings_t *set = wk_eval_settings (eval);
    const wk_eval_policy_t *cand = wk_eval_candidate (eval);
    char line [512];
    char n1 [32], n2 [32], n3 [32], n4 [32], n5 [32], n6 [32], n7 [32], n8 [32], n9 [32];
    char thr [48] = "Regression";
    if (!wk_eval_is_regression (eval))
        snprintf (thr, sizeof thr, "Threshold %.3g", set->threshold);
    snprintf (line, sizeof line, "Test rows: %zu (fingerprint %.16s...). Candidate: %s. "
              "%s; backtest cost %.4g per trade; intervals: paired bootstrap, "
              "%zu resamples, %.0f%%, seed %llu.", wk_eval_rows (eval),
              wk_eval_rows_sha256 (eval), cand ? cand->name : "(none)", thr,
              set->cost, set->rounds, set->level * 100, (unsigned long long) set->seed);
    s_para (b, f, line);
    if (info->notes)
        s_para (b, f, info->notes);

    bool reg = wk_eval_is_regression (eval);
    if (reg)
        s_regression_tables (b, f, eval);
    else {
        s_heading (b, f, 2, "Metrics on the held-out test window");
        s_table_open (b, f);
        const char *head [] = { "policy", "role", "accuracy", "precision", "recall", "F1",
                                "ROC AUC", "log loss", "FPR", "ECE" };
        s_row (b, f, true, 10, head);
        for (size_t i = 0; i < wk_eval_policies (eval); i++) {
            const wk_eval_policy_t *p = wk_eval_policy (eval, i);
            const char *cells [] = { p->name, p->role,
                s_fmt (n1, 32, p->m.accuracy, 4), s_fmt (n2, 32, p->m.precision, 4),
                s_fmt (n3, 32, p->m.recall, 4), s_fmt (n4, 32, p->m.f1, 4),
                s_fmt (n5, 32, p->m.auc, 4), s_fmt (n6, 32, p->m.logloss, 4),
                s_fmt (n7, 32, p->m.fpr, 4), s_fmt (n8, 32, p->ece, 4) };
            s_row (b, f, false, 10, cells);
        }
        s_table_close (b, f);

        s_heading (b, f, 2, "Confusion matrices");
        s_table_open (b, f);
        const char *chead [] = { "policy", "TP", "FP", "TN", "FN" };
        s_row (b, f, true, 5, chead);
        for (size_t i = 0; i < wk_eval_policies (eval); i++) {
            const wk_eval_policy_t *p = wk_eval_policy (eval, i);
            snprintf (n1, 32, "%zu", p->m.cm.tp);
            snprintf (n2, 32, "%zu", p->m.cm.fp);
            snprintf (n3, 32, "%zu", p->m.cm.tn);
            snprintf (n4, 32, "%zu", p->m.cm.fn);
            const char *cells [] = { p->name, n1, n2, n3, n4 };
            s_row (b, f, false, 5, cells);
        }
        s_table_close (b, f);

        s_heading (b, f, 2, "A/B comparisons (accuracy, candidate minus baseline, same rows)");
        s_table_open (b, f);
        const char *ahead [] = { "candidate", "baseline", "difference", "CI low", "CI high",
                                 "McNemar b/c", "McNemar p (exact)" };
        s_row (b, f, true, 7, ahead);
        for (size_t i = 0; i < wk_eval_comparisons (eval); i++) {
            const wk_eval_cmp_t *c = wk_eval_comparison (eval, i);
            char base [96];
            s_baseline_name (c, base, sizeof base);
            snprintf (n4, 32, "%zu/%zu", c->mc.b, c->mc.c);
            const char *cells [] = { c->candidate, base, s_fmt (n1, 32, c->ci.diff, 4),
                s_fmt (n2, 32, c->ci.lo, 4), s_fmt (n3, 32, c->ci.hi, 4), n4,
                s_fmt (n5, 32, c->mc.p_exact, 4) };
            s_row (b, f, false, 7, cells);
        }
        s_table_close (b, f);
    }
    bool has_prod = false;
    for (size_t i = 0; i < wk_eval_comparisons (eval); i++)
        has_prod |= strcmp (wk_eval_comparison (eval, i)->baseline, "production") == 0;
    if (!has_prod)
        s_para (b, f, "No model in production for this task: the candidate is compared "
                "with the rules only.");

    s_heading (b, f, 2, reg ? "Backtest (long where the prediction is above its reference, "
               "net of cost)" : "Backtest (trade on a positive signal, net of cost)");
    s_table_open (b, f);
    const char *bhead [] = { "policy", "trades", "signals without return", "total return",
                             "Sharpe", "hit rate", "max drawdown" };
    s_row (b, f, true, 7, bhead);
    size_t skipped = 0;
    for (size_t i = 0; i < wk_eval_policies (eval); i++) {
        const wk_eval_policy_t *p = wk_eval_policy (eval, i);
        snprintf (n1, 32, "%zu", p->bt.trades);
        snprintf (n6, 32, "%zu", p->bt.skipped);
        skipped += p->bt.skipped;
        const char *cells [] = { p->name, n1, n6, s_fmt (n2, 32, p->bt.total, 4),
            s_fmt (n3, 32, p->bt.sharpe, 3), s_fmt (n4, 32, p->bt.hit_rate, 3),
            s_fmt (n5, 32, p->bt.max_drawdown, 4) };
        s_row (b, f, false, 7, cells);
    }
    s_table_close (b, f);
    if (skipped)
        s_para (b, f, "Signals on rows whose forward return is unknown are not traded; "
                "they are counted in the third column.");

    if (cand && !reg) {
        s_heading (b, f, 2, "Calibration of the candidate (reliability bins)");
        s_table_open (b, f);
        const char *rhead [] = { "bin", "rows", "mean predicted", "observed positive rate" };
        s_row (b, f, true, 4, rhead);
        for (int k = 0; k < WK_EVAL_BINS; k++) {
            snprintf (n1, 32, "%s%.1f, %.1f]", k ? "(" : "[", k / 10.0, (k + 1) / 10.0);
            snprintf (n2, 32, "%zu", cand->bins [k].count);
            const char *cells [] = { n1, n2, s_fmt (n3, 32, cand->bins [k].mean_p, 3),
                                     s_fmt (n4, 32, cand->bins [k].frac_pos, 3) };
            s_row (b, f, false, 4, cells);
        }
        s_table_close (b, f);
    }

    const wk_eval_policy_t *imp = s_importance_policy (eval);
    s_heading (b, f, 2, "Feature importance");
    if (imp) {
        snprintf (line, sizeof line, "Policy %s, method: %s.", imp->name, imp->imp_method);
        s_para (b, f, line);
        s_table_open (b, f);
        const char *ihead [] = { "feature", "importance" };
        s_row (b, f, true, 2, ihead);
        for (size_t i = 0; i < imp->nimp; i++) {
            const char *cells [] = { imp->imp_name [i], s_fmt (n1, 32, imp->imp_value [i], 5) };
            s_row (b, f, false, 2, cells);
        }
        s_table_close (b, f);
    }
    else
        s_para (b, f, "No feature importance was given for any policy.");

    s_heading (b, f, 2, "Analysis");
    if (info->analysis)
        s_para (b, f, info->analysis);
    else
        s_para (b, f, info->no_analysis ? info->no_analysis : "no analysis");
    (void) n9;
}

char *
wk_report_markdown (wk_eval_t *eval, const wk_report_info_t *info)
{
    assert (eval && info);
    s_buf_t b = { 0 };
    s_put (&b, "# %s\n\n", info->title ? info->title : "Evaluation report");
    if (info->run || info->task)
        s_put (&b, "Run %s, task %s.\n\n", info->run ? info->run : "-", info->task ? info->task : "-");
    s_body (&b, S_MD, eval, info);
    s_put (&b, "\nPlots (%s, equity curves, feature importance) are in the HTML report next to "
           "this file.\n", wk_eval_is_regression (eval) ? "predicted against actual, residuals"
                                                        : "ROC, calibration");
    return b.data;
}

char *
wk_report_html (wk_eval_t *eval, const wk_report_info_t *info)
{
    assert (eval && info);
    s_buf_t b = { 0 };
    char *title = s_esc (info->title ? info->title : "Evaluation report");
    s_put (&b, "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
           "<title>%s</title>\n<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto;"
           "color:#222}table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #ccc;"
           "padding:3px 8px;text-align:right}td:first-child,th:first-child{text-align:left}"
           "svg{margin:0.5em;border:1px solid #eee}</style></head><body>\n<h1>%s</h1>\n",
           title, title);
    free (title);
    if (info->run || info->task) {
        char *r = s_esc (info->run ? info->run : "-"), *t = s_esc (info->task ? info->task : "-");
        s_put (&b, "<p>Run %s, task %s.</p>\n", r, t);
        free (r);
        free (t);
    }
    //  Plots first: they are what people look at.
    size_t np = wk_eval_policies (eval);
    s_series_t *series = lb_xcalloc (np, sizeof *series);
    s_put (&b, "<h2>Plots</h2>\n<div class=\"plots\">\n");
    double (*cx) [WK_EVAL_BINS] = lb_xcalloc (np, sizeof *cx);
    double (*cy) [WK_EVAL_BINS] = lb_xcalloc (np, sizeof *cy);
    if (wk_eval_is_regression (eval))
        s_regression_plots (&b, eval, series);
    else {
        for (size_t i = 0; i < np; i++) {
            const wk_eval_policy_t *p = wk_eval_policy (eval, i);
            series [i] = (s_series_t) { p->name, p->roc_fpr, p->roc_tpr, p->roc_n };
        }
        s_svg_lines (&b, "plot-roc", "ROC curves (test window)", "false-positive rate",
                     "true-positive rate", series, np, 0, 1, 0, 1, true, false);
        //  Calibration: non-empty bins of each model (rules and blend are 0/1-ish; keep them too).
        for (size_t i = 0; i < np; i++) {
            const wk_eval_policy_t *p = wk_eval_policy (eval, i);
            size_t k = 0;
            for (int j = 0; j < WK_EVAL_BINS; j++)
                if (p->bins [j].count) {
                    cx [i][k] = p->bins [j].mean_p;
                    cy [i][k] = p->bins [j].frac_pos;
                    k++;
                }
            series [i] = (s_series_t) { p->name, cx [i], cy [i], k };
        }
        s_svg_lines (&b, "plot-calibration", "Calibration (reliability bins)", "mean predicted probability",
                     "observed positive rate", series, np, 0, 1, 0, 1, true, true);
    }
    double lo = 0, hi = 0;
    for (size_t i = 0; i < np; i++) {
        const wk_eval_policy_t *p = wk_eval_policy (eval, i);
        for (size_t r = 0; r < wk_eval_rows (eval); r++) {
            if (p->equity [r] < lo) lo = p->equity [r];
            if (p->equity [r] > hi) hi = p->equity [r];
        }
        series [i] = (s_series_t) { p->name, NULL, p->equity, wk_eval_rows (eval) };
    }
    if (hi - lo < 1e-12)
        hi = lo + 1;
    s_svg_lines (&b, "plot-equity", "Equity curves of the backtest (sum of net returns)",
                 "test row (time order)", "cumulative net return", series, np, 0,
                 (double) (wk_eval_rows (eval) > 1 ? wk_eval_rows (eval) - 1 : 1), lo, hi,
                 false, false);
    const wk_eval_policy_t *imp = s_importance_policy (eval);
    if (imp) {
        char t [160];
        snprintf (t, sizeof t, "Feature importance: %s (%s)", imp->name, imp->imp_method);
        s_svg_bars (&b, "plot-importance", t, imp);
    }
    else
        s_put (&b, "<p class=\"missing-plot\">No feature importance plot: no policy came with "
               "an importance table.</p>\n");
    s_put (&b, "</div>\n");
    free (series);
    free (cx);
    free (cy);
    s_body (&b, S_HTML, eval, info);
    s_put (&b, "</body></html>\n");
    return b.data;
}

//  --------------------------------------------------------------------------

void
wk_report_test (bool verbose)
{
    int64_t ts [6] = { 10, 20, 30, 40, 50, 60 };
    uint8_t y [6] = { 1, 0, 1, 0, 1, 0 };
    uint8_t rule [6] = { 1, 1, 0, 0, 1, 0 };
    double fwd [6] = { 0.01, -0.02, 0.03, -0.01, 0.02, 0.0 };
    double p [6] = { 0.8, 0.3, 0.7, 0.4, 0.55, 0.1 };
    wk_eval_t *ev = wk_eval_new (6, ts, y, rule, fwd);
    assert (wk_eval_add_model (ev, "ens<1>", "ensemble", "model", p, NULL, NULL, 0) == 0);
    const char *feat [2] = { "rsi_14", "bb_position" };
    double val [2] = { 0.5, 1.5 };
    wk_eval_settings_t s = { .threshold = 0.5, .cost = 0, .periods_per_year = 252, .rounds = 100,
                             .level = 0.9, .seed = 1, .blend = { 0.8, 0.6, 0.7 },
                             .candidate = "ens<1>" };
    assert (wk_eval_run (ev, &s, NULL, 0) == 0);
    wk_report_info_t info = { .title = "Test & report", .run = "7", .task = "t",
                              .no_analysis = "no analysis: no API key",
                              .notes = "Left out: model x (cannot score)." };
    char *html = wk_report_html (ev, &info);
    assert (strstr (html, "id=\"plot-roc\"") && strstr (html, "id=\"plot-calibration\""));
    assert (strstr (html, "id=\"plot-equity\""));
    assert (!strstr (html, "id=\"plot-importance\"") && strstr (html, "No feature importance plot"));
    assert (strstr (html, "Test &amp; report") && strstr (html, "ens&lt;1&gt;"));
    assert (strstr (html, "no analysis: no API key") && strstr (html, "Left out: model x"));
    //  Self-contained: nothing fetched from elsewhere.
    assert (!strstr (html, "<script") && !strstr (html, " src=") && !strstr (html, "href="));
    free (html);
    assert (wk_eval_set_importance ((wk_eval_t *) ev, "ens<1>", "permutation", 2, feat, val) == 0);
    html = wk_report_html (ev, &info);
    assert (strstr (html, "id=\"plot-importance\""));
    //  Largest bar first.
    assert (strstr (html, "bb_position") < strstr (html, "rsi_14"));
    char *md = wk_report_markdown (ev, &info);
    assert (strstr (md, "# Test & report") && strstr (md, "| ens<1> | candidate |"));
    assert (strstr (md, "no analysis: no API key"));
    if (verbose)
        printf ("%s\n", md);
    free (md);
    free (html);
    wk_eval_destroy (&ev);
    //  A regression: predicted-vs-actual and residual plots instead of ROC
    //  and calibration; the squared-error comparison in the tables.
    double yr [6] = { 1.0, 2.0, 1.5, 3.0, 2.5, 2.0 }, base [6] = { 1.2, 1.2, 1.2, 1.2, 1.2, 1.2 };
    double ref [6] = { 0.9, 2.1, 1.4, 2.0, 2.6, NAN }, pr [6] = { 1.1, 1.9, 1.6, 2.7, 2.4, 2.2 };
    ev = wk_eval_new_regression (6, ts, yr, base, ref, fwd);
    assert (ev && wk_eval_is_regression (ev));
    assert (wk_eval_add_model (ev, "ens<1>", "ensemble", "model", pr, NULL, NULL, 0) == 0);
    assert (wk_eval_run (ev, &s, NULL, 0) == 0);
    html = wk_report_html (ev, &info);
    assert (strstr (html, "id=\"plot-scatter\"") && strstr (html, "id=\"plot-residuals\""));
    assert (strstr (html, "id=\"plot-equity\"") && !strstr (html, "id=\"plot-roc\""));
    assert (!strstr (html, "id=\"plot-calibration\"") && strstr (html, "RMSE improvement"));
    assert (!strstr (html, "Confusion matrices") && !strstr (html, "Calibration of"));
    free (html);
    md = wk_report_markdown (ev, &info);
    assert (strstr (md, "| rules | rules |") && strstr (md, "predicted against actual"));
    free (md);
    wk_eval_destroy (&ev);
}
