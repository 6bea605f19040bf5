/*  kn_features.c - the 16 features, the detector and the label (definitions
    in kn_features.h). Plain loops, one pass per indicator, double precision. */
#include "kn_features.h"

#include <assert.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_names [KN_FEATURES_COUNT] = {
    "body_to_range_ratio", "upper_shadow_ratio", "lower_shadow_ratio", "volume_surge",
    "rsi_14", "bb_position", "macd_histogram", "adx_strength",
    "vix_level", "spy_correlation", "sector_momentum", "market_breadth",
    "news_present", "premarket_gap", "unusual_volume", "options_activity"
};

static const char *s_patterns [KN_PAT_COUNT] = {
    "hammer", "bullish_engulfing", "doji", "piercing", "shooting_star", "bearish_engulfing"
};

const char *
kn_features_name (int i)
{
    assert (i >= 0 && i < KN_FEATURES_COUNT);
    return s_names [i];
}

const char *
kn_pattern_name (int i)
{
    assert (i >= 0 && i < KN_PAT_COUNT);
    return s_patterns [i];
}

#define F(t, k) out [(size_t) (t) * KN_FEATURES_COUNT + (k)]

static void
s_candle (const kn_series_t *s, double *out)
{
    for (size_t t = 0; t < s->n; t++) {
        double o = s->open [t], h = s->high [t], l = s->low [t], c = s->close [t];
        double range = h - l;
        if (range > 0) {
            F (t, KN_F_BODY_TO_RANGE) = fabs (c - o) / range;
            F (t, KN_F_UPPER_SHADOW) = (h - fmax (o, c)) / range;
            F (t, KN_F_LOWER_SHADOW) = (fmin (o, c) - l) / range;
        }
        else {
            F (t, KN_F_BODY_TO_RANGE) = 0;
            F (t, KN_F_UPPER_SHADOW) = 0;
            F (t, KN_F_LOWER_SHADOW) = 0;
        }
    }
}

//  Ratio to and z-score against the previous 20 values of x; k_ratio or
//  k_z may be negative (not wanted).
static void
s_trailing20 (const double *x, size_t n, double *out, int k_ratio, int k_z)
{
    for (size_t t = 0; t < n; t++) {
        double ratio = NAN, z = NAN;
        if (x && t >= 20) {
            double sum = 0;
            for (size_t i = t - 20; i < t; i++)
                sum += x [i];
            double mean = sum / 20;
            if (mean != 0)
                ratio = x [t] / mean;
            double ss = 0;
            for (size_t i = t - 20; i < t; i++)
                ss += (x [i] - mean) * (x [i] - mean);
            double sd = sqrt (ss / 20);
            z = sd > 0 ? (x [t] - mean) / sd : 0;
        }
        if (k_ratio >= 0)
            F (t, k_ratio) = ratio;
        if (k_z >= 0)
            F (t, k_z) = z;
    }
}

static void
s_rsi (const double *c, size_t n, double *out)
{
    double ag = 0, al = 0;
    for (size_t t = 0; t < n; t++) {
        if (t >= 1) {
            double d = c [t] - c [t - 1];
            double g = d > 0 ? d : 0, l = d < 0 ? -d : 0;
            if (t <= 14) {
                ag += g / 14;
                al += l / 14;
            }
            else {
                ag = (ag * 13 + g) / 14;
                al = (al * 13 + l) / 14;
            }
        }
        double rsi = NAN;
        if (t >= 14)
            rsi = al == 0 ? (ag == 0 ? 50 : 100) : 100 - 100 / (1 + ag / al);
        F (t, KN_F_RSI_14) = rsi;
    }
}

static void
s_bollinger (const double *c, size_t n, double *out)
{
    for (size_t t = 0; t < n; t++) {
        double pos = NAN;
        if (t >= 19) {
            double sum = 0;
            for (size_t i = t - 19; i <= t; i++)
                sum += c [i];
            double m = sum / 20, ss = 0;
            for (size_t i = t - 19; i <= t; i++)
                ss += (c [i] - m) * (c [i] - m);
            double sd = sqrt (ss / 20);
            pos = sd > 0 ? (c [t] - (m - 2 * sd)) / (4 * sd) : 0.5;
        }
        F (t, KN_F_BB_POSITION) = pos;
    }
}

static void
s_macd (const double *c, size_t n, double *out)
{
    const double a12 = 2.0 / 13, a26 = 2.0 / 27, a9 = 2.0 / 10;
    double e12 = 0, e26 = 0, sig = 0;
    for (size_t t = 0; t < n; t++) {
        if (t == 0) {
            e12 = e26 = c [0];
            sig = 0;
        }
        else {
            e12 = a12 * c [t] + (1 - a12) * e12;
            e26 = a26 * c [t] + (1 - a26) * e26;
            sig = a9 * (e12 - e26) + (1 - a9) * sig;
        }
        F (t, KN_F_MACD_HISTOGRAM) = t >= 33 ? (e12 - e26 - sig) / c [t] : NAN;
    }
}

static void
s_adx (const double *h, const double *l, const double *c, size_t n, double *out)
{
    double str = 0, sp = 0, sm = 0, adx = 0;
    for (size_t t = 0; t < n; t++) {
        double value = NAN;
        if (t >= 1) {
            double tr = fmax (h [t] - l [t], fmax (fabs (h [t] - c [t - 1]), fabs (l [t] - c [t - 1])));
            double up = h [t] - h [t - 1], down = l [t - 1] - l [t];
            double pdm = up > down && up > 0 ? up : 0;
            double mdm = down > up && down > 0 ? down : 0;
            if (t <= 14) {
                str += tr;
                sp += pdm;
                sm += mdm;
            }
            else {
                str = str - str / 14 + tr;
                sp = sp - sp / 14 + pdm;
                sm = sm - sm / 14 + mdm;
            }
            if (t >= 14) {
                double dip = str > 0 ? 100 * sp / str : 0;
                double dim = str > 0 ? 100 * sm / str : 0;
                double dx = dip + dim > 0 ? 100 * fabs (dip - dim) / (dip + dim) : 0;
                if (t <= 27)
                    adx += dx / 14;
                else
                    adx = (adx * 13 + dx) / 14;
                if (t >= 27)
                    value = adx;
            }
        }
        F (t, KN_F_ADX_STRENGTH) = value;
    }
}

static void
s_correlation (const double *c, const double *m, size_t n, double *out)
{
    for (size_t t = 0; t < n; t++) {
        double r = NAN;
        if (m && t >= 20) {
            double xs [20], ys [20], mx = 0, my = 0;
            for (size_t k = 0; k < 20; k++) {
                size_t i = t - 19 + k;
                xs [k] = c [i] / c [i - 1] - 1;
                ys [k] = m [i] / m [i - 1] - 1;
                mx += xs [k];
                my += ys [k];
            }
            mx /= 20;
            my /= 20;
            double sxy = 0, sxx = 0, syy = 0;
            for (size_t k = 0; k < 20; k++) {
                sxy += (xs [k] - mx) * (ys [k] - my);
                sxx += (xs [k] - mx) * (xs [k] - mx);
                syy += (ys [k] - my) * (ys [k] - my);
            }
            if (sxx > 0 && syy > 0)
                r = sxy / sqrt (sxx * syy);
        }
        F (t, KN_F_SPY_CORRELATION) = r;
    }
}

static void
s_news (const int64_t *ts, const double *news, size_t n, double *out)
{
    double in_window = 0;
    size_t first = 0;           //  oldest row still inside (ts - 86400, ts]
    for (size_t t = 0; t < n; t++) {
        if (!news) {
            F (t, KN_F_NEWS_PRESENT) = NAN;
            continue;
        }
        in_window += news [t];
        while (ts [first] <= ts [t] - 86400)
            in_window -= news [first++];
        F (t, KN_F_NEWS_PRESENT) = in_window > 0.5 ? 1 : 0;
    }
}

static int64_t
s_day (int64_t ts)
{
    return ts >= 0 ? ts / 86400 : (ts - 86399) / 86400;
}

static void
s_gap (const int64_t *ts, const double *o, const double *c, size_t n, double *out)
{
    double gap = NAN;
    for (size_t t = 0; t < n; t++) {
        if (t > 0 && s_day (ts [t]) != s_day (ts [t - 1]))
            gap = o [t] / c [t - 1] - 1;
        F (t, KN_F_PREMARKET_GAP) = gap;
    }
}

void
kn_features_series (const kn_series_t *s, double *out)
{
    assert (s && out);
    assert (s->ts && s->open && s->high && s->low && s->close && s->volume);
    size_t n = s->n;
    s_candle (s, out);
    s_trailing20 (s->volume, n, out, KN_F_VOLUME_SURGE, KN_F_UNUSUAL_VOLUME);
    s_rsi (s->close, n, out);
    s_bollinger (s->close, n, out);
    s_macd (s->close, n, out);
    s_adx (s->high, s->low, s->close, n, out);
    s_correlation (s->close, s->index_close, n, out);
    s_news (s->ts, s->news, n, out);
    s_gap (s->ts, s->open, s->close, n, out);
    s_trailing20 (s->options, n, out, KN_F_OPTIONS_ACTIVITY, -1);
    for (size_t t = 0; t < n; t++) {
        F (t, KN_F_VIX_LEVEL) = s->vix ? s->vix [t] : NAN;
        F (t, KN_F_SECTOR_MOMENTUM) = s->sector_momentum ? s->sector_momentum [t] : NAN;
        F (t, KN_F_MARKET_BREADTH) = s->breadth ? s->breadth [t] : NAN;
    }
}

void
kn_features_ret20 (const double *close, size_t n, double *ret20)
{
    for (size_t t = 0; t < n; t++)
        ret20 [t] = t >= 20 ? close [t] / close [t - 20] - 1 : NAN;
}

void
kn_features_above_sma20 (const double *close, size_t n, double *above)
{
    for (size_t t = 0; t < n; t++) {
        if (t < 19) {
            above [t] = NAN;
            continue;
        }
        double sum = 0;
        for (size_t i = t - 19; i <= t; i++)
            sum += close [i];
        above [t] = close [t] > sum / 20 ? 1 : 0;
    }
}

void
kn_features_group_mean (const double *values, const uint32_t *group, size_t n,
                        size_t ngroups, double *sum, double *count, double *out)
{
    memset (sum, 0, ngroups * sizeof (double));
    memset (count, 0, ngroups * sizeof (double));
    for (size_t i = 0; i < n; i++) {
        assert (group [i] < ngroups);
        if (!isnan (values [i])) {
            sum [group [i]] += values [i];
            count [group [i]] += 1;
        }
    }
    for (size_t g = 0; g < ngroups; g++)
        out [g] = count [g] > 0 ? sum [g] / count [g] : NAN;
}

void
kn_patterns_series (const double *o, const double *h, const double *l, const double *c,
                    size_t n, uint32_t *out)
{
    for (size_t t = 0; t < n; t++) {
        uint32_t bits = 0;
        if (t >= 5) {
            double body = fabs (c [t] - o [t]), range = h [t] - l [t];
            double upper = h [t] - fmax (o [t], c [t]), lower = fmin (o [t], c [t]) - l [t];
            bool down = c [t - 1] < c [t - 5], up = c [t - 1] > c [t - 5];
            bool red1 = c [t - 1] < o [t - 1], green1 = c [t - 1] > o [t - 1];
            if (range > 0 && down && lower >= 2 * body && upper <= 0.1 * range)
                bits |= KN_PAT_HAMMER;
            if (red1 && c [t] > o [t] && o [t] <= c [t - 1] && c [t] >= o [t - 1])
                bits |= KN_PAT_BULLISH_ENGULFING;
            if (range > 0 && down && body <= 0.1 * range)
                bits |= KN_PAT_DOJI;
            if (red1 && o [t - 1] - c [t - 1] >= 0.6 * (h [t - 1] - l [t - 1])
            &&  o [t] < c [t - 1] && c [t] > (o [t - 1] + c [t - 1]) / 2 && c [t] < o [t - 1])
                bits |= KN_PAT_PIERCING;
            if (range > 0 && up && upper >= 2 * body && lower <= 0.1 * range)
                bits |= KN_PAT_SHOOTING_STAR;
            if (green1 && c [t] < o [t] && o [t] >= c [t - 1] && c [t] <= o [t - 1])
                bits |= KN_PAT_BEARISH_ENGULFING;
        }
        out [t] = bits;
    }
}

int
kn_rule_signal (uint32_t patterns, double rsi_14, double volume_surge)
{
    return (patterns & KN_PAT_BULLISH) && rsi_14 < KN_RULE_RSI_MAX
        && volume_surge >= KN_RULE_SURGE_MIN;
}

void
kn_forward_returns (const double *close, size_t n, size_t h, double *fwd)
{
    for (size_t t = 0; t < n; t++)
        fwd [t] = t + h < n ? close [t + h] / close [t] - 1 : NAN;
}

// ---------------------------------------------------------------- selftest

static bool
s_near (double a, double b, double tol)
{
    return fabs (a - b) <= tol * (1 + fabs (b));
}

void
kn_features_test (bool verbose)
{
    //  Hand-checkable values on a short series.
    enum { N = 60 };
    int64_t ts [N];
    double o [N], h [N], l [N], c [N], v [N], news [N], opt [N], idx [N];
    for (int t = 0; t < N; t++) {
        ts [t] = 1700000000 + (int64_t) t * 3600;
        c [t] = 100 + 5 * sin (t * 0.4) + 0.1 * t;
        o [t] = t ? c [t - 1] : c [t];
        h [t] = fmax (o [t], c [t]) + 0.5;
        l [t] = fmin (o [t], c [t]) - 0.5;
        v [t] = 1000 + 100 * (t % 5);
        news [t] = t == 40 ? 1 : 0;
        opt [t] = 10;
        idx [t] = 400 + 2 * sin (t * 0.4);
    }
    kn_series_t s = { N, ts, o, h, l, c, v, news, opt, idx, NULL, NULL, NULL };
    double *out = calloc (N * KN_FEATURES_COUNT, sizeof (double));
    assert (out);
    kn_features_series (&s, out);
    //  Candle ratios sum to 1 when the range is positive.
    for (int t = 0; t < N; t++)
        assert (s_near (F (t, 0) + F (t, 1) + F (t, 2), 1, 1e-12));
    //  Warm-ups.
    assert (isnan (F (13, KN_F_RSI_14)) && !isnan (F (14, KN_F_RSI_14)));
    assert (isnan (F (18, KN_F_BB_POSITION)) && !isnan (F (19, KN_F_BB_POSITION)));
    assert (isnan (F (32, KN_F_MACD_HISTOGRAM)) && !isnan (F (33, KN_F_MACD_HISTOGRAM)));
    assert (isnan (F (26, KN_F_ADX_STRENGTH)) && !isnan (F (27, KN_F_ADX_STRENGTH)));
    assert (isnan (F (19, KN_F_VOLUME_SURGE)) && !isnan (F (20, KN_F_VOLUME_SURGE)));
    //  Absent context is NaN, never 0.
    assert (isnan (F (50, KN_F_VIX_LEVEL)) && isnan (F (50, KN_F_MARKET_BREADTH)));
    //  RSI in range, first value by hand.
    double ag = 0, al = 0;
    for (int i = 1; i <= 14; i++) {
        double d = c [i] - c [i - 1];
        ag += d > 0 ? d : 0;
        al += d < 0 ? -d : 0;
    }
    assert (s_near (F (14, KN_F_RSI_14), 100 - 100 / (1 + ag / al), 1e-12));
    for (int t = 14; t < N; t++)
        assert (F (t, KN_F_RSI_14) >= 0 && F (t, KN_F_RSI_14) <= 100);
    //  Options flat: activity 1. Volume pattern repeats every 5: surge at t=24 is
    //  1400 / mean(1000..1400) = 1400/1200.
    assert (s_near (F (30, KN_F_OPTIONS_ACTIVITY), 1, 1e-12));
    assert (s_near (F (24, KN_F_VOLUME_SURGE), 1400.0 / 1200, 1e-12));
    assert (s_near (F (24, KN_F_UNUSUAL_VOLUME), 200 / sqrt (20000), 1e-12));
    //  News: in the 24 h after bar 40 only.
    assert (F (39, KN_F_NEWS_PRESENT) == 0 && F (40, KN_F_NEWS_PRESENT) == 1);
    assert (F (59, KN_F_NEWS_PRESENT) == 1);
    //  The index moves with the symbol's sine: correlation clearly positive.
    assert (F (40, KN_F_SPY_CORRELATION) > 0.5 && F (40, KN_F_SPY_CORRELATION) <= 1 + 1e-12);
    //  Gap: bars are hourly from 22:13 UTC; the first row of the next day has one.
    int first_day2 = -1;
    for (int t = 1; t < N && first_day2 < 0; t++)
        if (ts [t] / 86400 != ts [t - 1] / 86400)
            first_day2 = t;
    assert (first_day2 > 0 && isnan (F (first_day2 - 1, KN_F_PREMARKET_GAP)));
    assert (s_near (F (first_day2, KN_F_PREMARKET_GAP), o [first_day2] / c [first_day2 - 1] - 1, 1e-12));
    assert (F (first_day2 + 1, KN_F_PREMARKET_GAP) == F (first_day2, KN_F_PREMARKET_GAP));
    //  Flat prices: RSI 50, bb 0.5, ADX 0.
    double flat [N];
    for (int t = 0; t < N; t++)
        flat [t] = 10;
    kn_series_t fs = { N, ts, flat, flat, flat, flat, v, NULL, NULL, NULL, NULL, NULL, NULL };
    kn_features_series (&fs, out);
    assert (F (30, KN_F_RSI_14) == 50 && F (30, KN_F_BB_POSITION) == 0.5);
    assert (F (30, KN_F_ADX_STRENGTH) == 0 && F (30, KN_F_BODY_TO_RANGE) == 0);
    assert (isnan (F (30, KN_F_NEWS_PRESENT)) && isnan (F (30, KN_F_OPTIONS_ACTIVITY)));

    //  Detector on hand-made candles.
    double po [8] = { 10, 9.8, 9.6, 9.4, 9.2, 9.0, 8.6, 8.5 };
    double pc [8] = { 9.8, 9.6, 9.4, 9.2, 9.0, 8.9, 8.55, 9.1 };
    double ph [8], pl [8];
    for (int t = 0; t < 8; t++) {
        ph [t] = fmax (po [t], pc [t]) + 0.01;
        pl [t] = fmin (po [t], pc [t]) - 0.01;
    }
    pl [6] = 7.9;       //  long lower shadow, small body, down trend: hammer
    ph [6] = 8.6;
    uint32_t pat [8];
    kn_patterns_series (po, ph, pl, pc, 8, pat);
    assert (pat [4] == 0);
    assert (pat [6] & KN_PAT_HAMMER);
    assert (pat [7] & KN_PAT_BULLISH_ENGULFING);
    assert (!(pat [7] & KN_PAT_BEARISH_ENGULFING));
    assert (kn_rule_signal (KN_PAT_HAMMER, 30, 2) == 1);
    assert (kn_rule_signal (KN_PAT_HAMMER, 60, 2) == 0);
    assert (kn_rule_signal (KN_PAT_SHOOTING_STAR, 30, 2) == 0);
    assert (kn_rule_signal (KN_PAT_DOJI, 30, 1.0) == 0);

    double fwd [8];
    kn_forward_returns (pc, 8, 2, fwd);
    assert (s_near (fwd [0], 9.4 / 9.8 - 1, 1e-12) && isnan (fwd [6]) && isnan (fwd [7]));
    double r20 [N], above [N];
    kn_features_ret20 (c, N, r20);
    kn_features_above_sma20 (c, N, above);
    assert (isnan (r20 [19]) && s_near (r20 [20], c [20] / c [0] - 1, 1e-12));
    assert (isnan (above [18]) && (above [19] == 0 || above [19] == 1));
    double vals [4] = { 1, 3, NAN, 5 }, sum [3], cnt [3], mean [3];
    uint32_t grp [4] = { 0, 0, 1, 2 };
    kn_features_group_mean (vals, grp, 4, 3, sum, cnt, mean);
    assert (mean [0] == 2 && isnan (mean [1]) && mean [2] == 5);
    assert (strcmp (kn_features_name (KN_F_OPTIONS_ACTIVITY), "options_activity") == 0);
    assert (strcmp (kn_pattern_name (0), "hammer") == 0);
    if (verbose)
        printf ("  rsi[14]=%.6f adx[40]=%.6f\n", F (14, KN_F_RSI_14), F (40, KN_F_ADX_STRENGTH));
    free (out);
}
