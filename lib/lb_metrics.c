/*  lb_metrics.c - evaluation math (see lb_metrics.h for every definition). */
#include "lb_metrics.h"
#include "lb_mem.h"

#include <assert.h>
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <stdarg.h>

static void s_why (char *why, size_t size, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

static void
s_why (char *why, size_t size, const char *fmt, ...)
{
    if (!why || !size)
        return;
    va_list args;
    va_start (args, fmt);
    vsnprintf (why, size, fmt, args);
    va_end (args);
}

int
lb_metrics_check (const uint8_t *y, const double *p, size_t n, char *why, size_t size)
{
    if (n == 0) {
        s_why (why, size, "no rows");
        return -1;
    }
    for (size_t i = 0; i < n; i++) {
        if (y [i] > 1) {
            s_why (why, size, "row %zu: label %u is not 0 or 1", i, (unsigned) y [i]);
            return -1;
        }
        if (!isfinite (p [i]) || p [i] < 0 || p [i] > 1) {
            s_why (why, size, "row %zu: score %g is not a probability", i, p [i]);
            return -1;
        }
    }
    return 0;
}

void
lb_metrics_confusion (const uint8_t *y, const uint8_t *pred, size_t n, lb_confusion_t *cm)
{
    assert (cm);
    memset (cm, 0, sizeof *cm);
    for (size_t i = 0; i < n; i++) {
        if (y [i]) {
            if (pred [i]) cm->tp++; else cm->fn++;
        }
        else {
            if (pred [i]) cm->fp++; else cm->tn++;
        }
    }
}

static double
s_ratio (size_t num, size_t den)
{
    return den ? (double) num / (double) den : 0.0;
}

int
lb_metrics_compute (const uint8_t *y, const double *p, size_t n, double threshold,
                    lb_metrics_t *out, char *why, size_t size)
{
    assert (out);
    memset (out, 0, sizeof *out);
    if (lb_metrics_check (y, p, n, why, size))
        return -1;
    lb_confusion_t *cm = &out->cm;
    double brier = 0;
    for (size_t i = 0; i < n; i++) {
        bool pred = p [i] >= threshold;
        if (y [i]) {
            if (pred) cm->tp++; else cm->fn++;
        }
        else {
            if (pred) cm->fp++; else cm->tn++;
        }
        double d = p [i] - y [i];
        brier += d * d;
    }
    out->n = n;
    out->accuracy = s_ratio (cm->tp + cm->tn, n);
    out->precision = s_ratio (cm->tp, cm->tp + cm->fp);
    out->recall = s_ratio (cm->tp, cm->tp + cm->fn);
    out->f1 = s_ratio (2 * cm->tp, 2 * cm->tp + cm->fp + cm->fn);
    out->fpr = s_ratio (cm->fp, cm->fp + cm->tn);
    out->auc = lb_metrics_auc (y, p, n);
    out->logloss = lb_metrics_logloss (y, p, n);
    out->brier = brier / (double) n;
    return 0;
}

//  Sorting row indices by score, carried through qsort's context-free
//  comparator by sorting (score, label) pairs.
typedef struct {
    double p;
    uint8_t y;
} s_pair_t;

static int
s_pair_cmp (const void *a, const void *b)
{
    double x = ((const s_pair_t *) a)->p, z = ((const s_pair_t *) b)->p;
    return (x > z) - (x < z);
}

static s_pair_t *
s_sorted_pairs (const uint8_t *y, const double *p, size_t n)
{
    s_pair_t *pairs = lb_xcalloc (n ? n : 1, sizeof *pairs);
    for (size_t i = 0; i < n; i++) {
        pairs [i].p = p [i];
        pairs [i].y = y [i];
    }
    qsort (pairs, n, sizeof *pairs, s_pair_cmp);
    return pairs;
}

double
lb_metrics_auc (const uint8_t *y, const double *p, size_t n)
{
    s_pair_t *pairs = s_sorted_pairs (y, p, n);
    //  Mann-Whitney: sum of the (tie-averaged, 1-based) ranks of the positives.
    double rank_sum = 0;
    size_t pos = 0;
    for (size_t i = 0; i < n; ) {
        size_t j = i;
        size_t group_pos = 0;
        while (j < n && pairs [j].p == pairs [i].p) {
            group_pos += pairs [j].y;
            j++;
        }
        double avg_rank = ((double) (i + 1) + (double) j) / 2.0;
        rank_sum += avg_rank * (double) group_pos;
        pos += group_pos;
        i = j;
    }
    free (pairs);
    size_t neg = n - pos;
    if (pos == 0 || neg == 0)
        return NAN;
    double P = (double) pos, N = (double) neg;
    return (rank_sum - P * (P + 1) / 2.0) / (P * N);
}

double
lb_metrics_logloss (const uint8_t *y, const double *p, size_t n)
{
    if (n == 0)
        return NAN;
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        double q = p [i];
        if (q < DBL_EPSILON) q = DBL_EPSILON;
        if (q > 1 - DBL_EPSILON) q = 1 - DBL_EPSILON;
        sum -= y [i] ? log (q) : log (1 - q);
    }
    return sum / (double) n;
}

size_t
lb_metrics_roc (const uint8_t *y, const double *p, size_t n, double **fpr, double **tpr)
{
    *fpr = *tpr = NULL;
    size_t pos = 0;
    for (size_t i = 0; i < n; i++)
        pos += y [i] != 0;
    size_t neg = n - pos;
    if (pos == 0 || neg == 0)
        return 0;
    s_pair_t *pairs = s_sorted_pairs (y, p, n);
    double *fx = lb_xcalloc (n + 1, sizeof *fx);
    double *ty = lb_xcalloc (n + 1, sizeof *ty);
    size_t points = 1, tp = 0, fp = 0;
    //  Falling thresholds: walk the ascending sort from the end.
    for (size_t k = n; k > 0; ) {
        size_t j = k;
        while (j > 0 && pairs [j - 1].p == pairs [k - 1].p) {
            if (pairs [j - 1].y) tp++; else fp++;
            j--;
        }
        fx [points] = (double) fp / (double) neg;
        ty [points] = (double) tp / (double) pos;
        points++;
        k = j;
    }
    free (pairs);
    *fpr = fx;
    *tpr = ty;
    return points;
}

double
lb_metrics_reliability (const uint8_t *y, const double *p, size_t n,
                        lb_relbin_t *bins, size_t nbins)
{
    assert (nbins > 0);
    double *sum_p = lb_xcalloc (nbins, sizeof *sum_p);
    size_t *pos = lb_xcalloc (nbins, sizeof *pos);
    memset (bins, 0, nbins * sizeof *bins);
    for (size_t i = 0; i < n; i++) {
        //  k = number of inner edges j/nbins strictly below q, the edges
        //  computed as j * (1/nbins) like numpy.linspace, so a score on an
        //  edge lands where scikit-learn puts it.
        double q = p [i], step = 1.0 / (double) nbins;
        size_t k = 0;
        while (k + 1 < nbins && (double) (k + 1) * step < q)
            k++;
        bins [k].count++;
        sum_p [k] += q;
        pos [k] += y [i] != 0;
    }
    double ece = 0;
    for (size_t k = 0; k < nbins; k++) {
        if (bins [k].count == 0) {
            bins [k].mean_p = bins [k].frac_pos = NAN;
            continue;
        }
        double c = (double) bins [k].count;
        bins [k].mean_p = sum_p [k] / c;
        bins [k].frac_pos = (double) pos [k] / c;
        ece += c / (double) n * fabs (bins [k].frac_pos - bins [k].mean_p);
    }
    free (sum_p);
    free (pos);
    return ece;
}

void
lb_metrics_backtest (const uint8_t *signal, const double *fwd_return, size_t n,
                     double cost, double periods_per_year,
                     lb_backtest_t *out, double *equity)
{
    assert (out);
    memset (out, 0, sizeof *out);
    out->n = n;
    double eq = 0, peak = 0, sum = 0;
    size_t wins = 0;
    for (size_t i = 0; i < n; i++) {
        double r = 0;
        if (signal [i] && !isfinite (fwd_return [i]))
            out->skipped++;
        else
        if (signal [i]) {
            r = fwd_return [i] - cost;
            out->trades++;
            wins += r > 0;
        }
        sum += r;
        eq += r;
        if (eq > peak)
            peak = eq;
        if (peak - eq > out->max_drawdown)
            out->max_drawdown = peak - eq;
        if (equity)
            equity [i] = eq;
    }
    out->total = sum;
    out->mean = n ? sum / (double) n : NAN;
    out->hit_rate = out->trades ? (double) wins / (double) out->trades : NAN;
    out->sharpe = NAN;
    if (n > 1) {
        //  Two-pass variance for accuracy.
        double mean = out->mean, ss = 0;
        for (size_t i = 0; i < n; i++) {
            double r = signal [i] && isfinite (fwd_return [i]) ? fwd_return [i] - cost : 0;
            ss += (r - mean) * (r - mean);
        }
        double sd = sqrt (ss / (double) (n - 1));
        if (sd > 0)
            out->sharpe = mean / sd * sqrt (periods_per_year);
    }
}

double
lb_metrics_confidence (double p)
{
    return p > 0.5 ? p : 1 - p;
}

void
lb_metrics_blend (const lb_blend_t *blend, const double *p, const uint8_t *rule,
                  size_t n, double *out)
{
    assert (blend && blend->low <= blend->high);
    for (size_t i = 0; i < n; i++) {
        double c = lb_metrics_confidence (p [i]);
        if (c > blend->high)
            out [i] = p [i];
        else
        if (c > blend->low)
            out [i] = blend->ml_weight * p [i] + (1 - blend->ml_weight) * (rule [i] ? 1.0 : 0.0);
        else
            out [i] = rule [i] ? 1.0 : 0.0;
    }
}

uint64_t
lb_metrics_splitmix64 (uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

static int
s_double_cmp (const void *a, const void *b)
{
    double x = *(const double *) a, z = *(const double *) b;
    return (x > z) - (x < z);
}

static double
s_percentile (const double *sorted, size_t m, double q)
{
    double pos = q * (double) (m - 1);
    size_t lo = (size_t) floor (pos);
    if (lo >= m - 1)
        return sorted [m - 1];
    double frac = pos - (double) lo;
    return sorted [lo] + frac * (sorted [lo + 1] - sorted [lo]);
}

int
lb_metrics_bootstrap (const double *a, const double *b, size_t n, size_t rounds,
                      double level, uint64_t seed, lb_bootstrap_t *out)
{
    assert (out && level > 0 && level < 1);
    memset (out, 0, sizeof *out);
    if (n == 0 || rounds == 0)
        return -1;
    double *d = lb_xmalloc (n * sizeof *d);
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite (a [i]) || !isfinite (b [i])) {
            free (d);
            return -1;
        }
        d [i] = a [i] - b [i];
        sum += d [i];
    }
    double *stats = lb_xmalloc (rounds * sizeof *stats);
    uint64_t state = seed;
    for (size_t r = 0; r < rounds; r++) {
        double s = 0;
        for (size_t i = 0; i < n; i++) {
            //  Lemire's multiply-shift maps 64 random bits onto [0, n).
            uint64_t x = lb_metrics_splitmix64 (&state);
            size_t k = (size_t) (((unsigned __int128) x * n) >> 64);
            s += d [k];
        }
        stats [r] = s / (double) n;
    }
    qsort (stats, rounds, sizeof *stats, s_double_cmp);
    out->diff = sum / (double) n;
    out->lo = s_percentile (stats, rounds, (1 - level) / 2);
    out->hi = s_percentile (stats, rounds, (1 + level) / 2);
    out->level = level;
    out->rounds = rounds;
    free (stats);
    free (d);
    return 0;
}

void
lb_metrics_mcnemar (const uint8_t *correct_a, const uint8_t *correct_b, size_t n,
                    lb_mcnemar_t *out)
{
    assert (out);
    memset (out, 0, sizeof *out);
    for (size_t i = 0; i < n; i++) {
        if (correct_a [i] && !correct_b [i]) out->b++;
        if (!correct_a [i] && correct_b [i]) out->c++;
    }
    size_t m = out->b + out->c;
    if (m == 0) {
        out->chi2 = 0;
        out->p_chi2 = out->p_exact = 1;
        return;
    }
    double diff = fabs ((double) out->b - (double) out->c) - 1;
    if (diff < 0)
        diff = 0;
    out->chi2 = diff * diff / (double) m;
    out->p_chi2 = erfc (sqrt (out->chi2 / 2));
    size_t k = out->b < out->c ? out->b : out->c;
    double cdf = 0;
    for (size_t i = 0; i <= k; i++)
        cdf += exp (lgamma ((double) m + 1) - lgamma ((double) i + 1)
                    - lgamma ((double) (m - i) + 1) - (double) m * log (2.0));
    out->p_exact = 2 * cdf < 1 ? 2 * cdf : 1;
}

//  --------------------------------------------------------------------------
//  Selftest: tables small enough to check by hand.

static bool
s_near (double a, double b, double tol)
{
    return fabs (a - b) <= tol;
}

void
lb_metrics_test (bool verbose)
{
    //  Eight rows. Threshold 0.5 predicts 1 for 0.9 0.8 0.6 0.55 (rows 0-3).
    //   y:  1    1    0    1     0    1    0    0
    //   p: 0.9  0.8  0.6  0.55  0.4  0.3  0.2  0.1
    //  tp=3 (0,1,3) fp=1 (2) fn=1 (5) tn=3 (4,6,7)
    //  accuracy 6/8, precision 3/4, recall 3/4, F1 3/4, FPR 1/4.
    //  AUC: pairs (pos, neg) with pos above neg: pos 0.9 beats 4 negs,
    //  0.8 beats 4, 0.55 beats 3 (0.4 0.2 0.1), 0.3 beats 2 (0.2 0.1):
    //  13 of 16 = 0.8125.
    uint8_t y [8] = { 1, 1, 0, 1, 0, 1, 0, 0 };
    double p [8] = { 0.9, 0.8, 0.6, 0.55, 0.4, 0.3, 0.2, 0.1 };
    lb_metrics_t m;
    char why [128];
    assert (lb_metrics_compute (y, p, 8, 0.5, &m, why, sizeof why) == 0);
    assert (m.cm.tp == 3 && m.cm.fp == 1 && m.cm.fn == 1 && m.cm.tn == 3);
    assert (s_near (m.accuracy, 0.75, 1e-15));
    assert (s_near (m.precision, 0.75, 1e-15));
    assert (s_near (m.recall, 0.75, 1e-15));
    assert (s_near (m.f1, 0.75, 1e-15));
    assert (s_near (m.fpr, 0.25, 1e-15));
    assert (s_near (m.auc, 13.0 / 16.0, 1e-15));
    double ll = -(log (0.9) + log (0.8) + log (0.4) + log (0.55)
                  + log (0.6) + log (0.3) + log (0.8) + log (0.9)) / 8;
    assert (s_near (m.logloss, ll, 1e-15));
    if (verbose)
        printf ("acc=%.4f auc=%.4f logloss=%.6f brier=%.6f\n", m.accuracy, m.auc, m.logloss, m.brier);

    //  Ties: positives {0.5, 0.5}, negatives {0.5, 0.2}: pairs 4, wins:
    //  0.5 vs 0.5 = 1/2 twice, 0.5 vs 0.2 = 1 twice -> 3/4.
    uint8_t yt [4] = { 1, 1, 0, 0 };
    double pt [4] = { 0.5, 0.5, 0.5, 0.2 };
    assert (s_near (lb_metrics_auc (yt, pt, 4), 0.75, 1e-15));
    //  One class: NaN, not a crash.
    uint8_t y1 [3] = { 1, 1, 1 };
    assert (isnan (lb_metrics_auc (y1, pt, 3)));
    //  Clipping: p=0 on a positive is -log(eps), finite.
    double p0 [1] = { 0 };
    assert (s_near (lb_metrics_logloss (y1, p0, 1), -log (DBL_EPSILON), 1e-9));

    //  Bad input says where.
    double pbad [3] = { 0.1, NAN, 0.3 };
    assert (lb_metrics_compute (y1, pbad, 3, 0.5, &m, why, sizeof why) == -1);
    assert (strstr (why, "row 1"));
    uint8_t ybad [2] = { 0, 2 };
    assert (lb_metrics_check (ybad, p, 2, why, sizeof why) == -1 && strstr (why, "label"));
    assert (lb_metrics_check (y, p, 0, NULL, 0) == -1);
    //  Nothing predicted positive: precision 0, not NaN.
    double plow [8] = { 0 };
    assert (lb_metrics_compute (y, plow, 8, 0.5, &m, NULL, 0) == 0);
    assert (m.precision == 0 && m.recall == 0 && m.f1 == 0 && m.accuracy == 0.5);

    //  ROC of the tie table: thresholds 0.5 then 0.2:
    //  (0,0) -> (0.5, 1) -> (1, 1).
    double *fx, *ty;
    size_t pts = lb_metrics_roc (yt, pt, 4, &fx, &ty);
    assert (pts == 3);
    assert (fx [0] == 0 && ty [0] == 0 && fx [1] == 0.5 && ty [1] == 1 && fx [2] == 1 && ty [2] == 1);
    free (fx);
    free (ty);
    assert (lb_metrics_roc (y1, pt, 3, &fx, &ty) == 0 && !fx && !ty);

    //  Reliability, 2 bins over the 8-row table: [0,0.5) holds 0.4 0.3 0.2
    //  0.1 (one positive), [0.5,1] holds 0.9 0.8 0.6 0.55 (three).
    lb_relbin_t bins [2];
    double ece = lb_metrics_reliability (y, p, 8, bins, 2);
    assert (bins [0].count == 4 && bins [1].count == 4);
    assert (s_near (bins [0].mean_p, 0.25, 1e-15) && s_near (bins [0].frac_pos, 0.25, 1e-15));
    assert (s_near (bins [1].mean_p, 0.7125, 1e-15) && s_near (bins [1].frac_pos, 0.75, 1e-15));
    assert (s_near (ece, 0.5 * 0.0375, 1e-15));
    lb_relbin_t empty [4];
    double one [1] = { 1.0 };
    lb_metrics_reliability (y, one, 1, empty, 4);
    assert (empty [3].count == 1 && empty [0].count == 0 && isnan (empty [0].mean_p));

    //  Backtest: signals on rows 0, 2, 3; returns 0.02, -0.01, 0.03, 0.05;
    //  cost 0.01 -> net 0.01, 0, -0.02, 0.04 (row 1 no trade -> 0).
    //  Equity 0.01 0.01 -0.01 0.03: peak 0.01 then -0.01 -> drawdown 0.02.
    uint8_t sig [4] = { 1, 0, 1, 1 };
    double fwd [4] = { 0.02, -0.01, -0.01, 0.05 };
    double eq [4];
    lb_backtest_t bt;
    lb_metrics_backtest (sig, fwd, 4, 0.01, 1, &bt, eq);
    assert (bt.trades == 3 && bt.skipped == 0);
    assert (s_near (bt.total, 0.03, 1e-15));
    assert (s_near (eq [2], -0.01, 1e-15) && s_near (eq [3], 0.03, 1e-15));
    assert (s_near (bt.max_drawdown, 0.02, 1e-15));
    assert (s_near (bt.hit_rate, 2.0 / 3.0, 1e-15));
    //  Returns 0.01 0 -0.02 0.04: mean 0.0075, sample sd by hand:
    //  deviations .0025 -.0075 -.0275 .0325 -> squares sum .00187500 / 3.
    double sd = sqrt (0.001875 / 3);
    assert (s_near (bt.sharpe, 0.0075 / sd, 1e-12));
    //  An unknown forward return: a signal there is skipped, not traded.
    double fwdnan [4] = { 0.02, NAN, NAN, 0.05 };
    lb_metrics_backtest (sig, fwdnan, 4, 0.01, 1, &bt, NULL);
    assert (bt.trades == 2 && bt.skipped == 1 && s_near (bt.total, 0.05, 1e-15));

    //  Blend: high 0.8, low 0.6, weight 0.7.
    lb_blend_t blend = { 0.8, 0.6, 0.7 };
    double pb [4] = { 0.95, 0.3, 0.55, 0.1 };    //  conf .95 .7 .55 .9
    uint8_t rb [4] = { 0, 1, 1, 1 };
    double ob [4];
    lb_metrics_blend (&blend, pb, rb, 4, ob);
    assert (ob [0] == 0.95);
    assert (s_near (ob [1], 0.7 * 0.3 + 0.3, 1e-15));
    assert (ob [2] == 1.0);
    assert (ob [3] == 0.1);
    assert (lb_metrics_confidence (0.2) == 0.8 && lb_metrics_confidence (0.5) == 0.5);

    //  splitmix64 from seed 0: the published first output.
    uint64_t st = 0;
    assert (lb_metrics_splitmix64 (&st) == 0xe220a8397b1dcdafULL);

    //  Bootstrap: identical inputs give [0, 0]; a constant shift gives
    //  exactly that shift; the same seed gives the same interval.
    double a [6] = { 1, 0, 1, 1, 0, 1 }, b [6] = { 1, 0, 1, 1, 0, 1 };
    lb_bootstrap_t bs, bs2;
    assert (lb_metrics_bootstrap (a, b, 6, 500, 0.95, 7, &bs) == 0);
    assert (bs.diff == 0 && bs.lo == 0 && bs.hi == 0);
    double c [6] = { 0, -1, 0, 0, -1, 0 };
    assert (lb_metrics_bootstrap (a, c, 6, 500, 0.95, 7, &bs) == 0);
    assert (s_near (bs.lo, 1, 1e-15) && s_near (bs.hi, 1, 1e-15));
    double d [6] = { 0, 1, 1, 0, 0, 1 };
    assert (lb_metrics_bootstrap (a, d, 6, 500, 0.95, 7, &bs) == 0);
    assert (lb_metrics_bootstrap (a, d, 6, 500, 0.95, 7, &bs2) == 0);
    assert (bs.lo == bs2.lo && bs.hi == bs2.hi);
    assert (bs.lo <= bs.diff && bs.diff <= bs.hi && bs.lo < bs.hi);
    assert (lb_metrics_bootstrap (a, d, 0, 500, 0.95, 7, &bs) == -1);
    double dn [6] = { 0, NAN, 1, 0, 0, 1 };
    assert (lb_metrics_bootstrap (a, dn, 6, 500, 0.95, 7, &bs) == -1);

    //  McNemar: b=10, c=2 -> chi2 = (8-1)^2/12 = 49/12; exact:
    //  2 * P(X<=2 | 12, .5) = 2 * (1 + 12 + 66) / 4096 = 158/4096.
    uint8_t ca [14], cb [14];
    for (int i = 0; i < 14; i++) {
        ca [i] = i < 10 || i >= 12;
        cb [i] = i >= 10;
    }
    lb_mcnemar_t mc;
    lb_metrics_mcnemar (ca, cb, 14, &mc);
    assert (mc.b == 10 && mc.c == 2);
    assert (s_near (mc.chi2, 49.0 / 12.0, 1e-15));
    assert (s_near (mc.p_exact, 158.0 / 4096.0, 1e-12));
    assert (s_near (mc.p_chi2, erfc (sqrt (49.0 / 24.0)), 1e-15));
    lb_metrics_mcnemar (ca, ca, 14, &mc);
    assert (mc.b == 0 && mc.c == 0 && mc.p_exact == 1 && mc.p_chi2 == 1);
}
