/*  lb_bars.c - bars in memory and the pattern events (see lb_bars.h). */
#include "lb_bars.h"
#include "lb_log.h"
#include "lb_mem.h"

#include <assert.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    char symbol [32];
    char *sector;
    lb_bars_kind_t kind;
    size_t n, max;
    int64_t *ts;
    double *o, *h, *l, *c, *v, *news, *opt;
    bool has_news, has_options;
} s_series_t;

struct _lb_bars_t {
    s_series_t *series;
    int nseries, max;
    char error [512];
};

lb_bars_t *
lb_bars_new (void)
{
    return lb_xcalloc (1, sizeof (lb_bars_t));
}

void
lb_bars_destroy (lb_bars_t **self_p)
{
    assert (self_p);
    lb_bars_t *self = *self_p;
    if (!self)
        return;
    for (int i = 0; i < self->nseries; i++) {
        s_series_t *s = &self->series [i];
        free (s->sector);
        free (s->ts);
        free (s->o);
        free (s->h);
        free (s->l);
        free (s->c);
        free (s->v);
        free (s->news);
        free (s->opt);
    }
    free (self->series);
    free (self);
    *self_p = NULL;
}

static void
s_error (lb_bars_t *self, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_error (lb_bars_t *self, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    vsnprintf (self->error, sizeof self->error, fmt, args);
    va_end (args);
}

const char *
lb_bars_error (lb_bars_t *self)
{
    assert (self);
    return self->error;
}

int
lb_bars_series (lb_bars_t *self, const char *symbol, const char *sector, lb_bars_kind_t kind)
{
    assert (self && symbol);
    size_t len = strnlen (symbol, 32);
    bool ok = len >= 1 && len <= 31;
    for (size_t i = 0; ok && i < len; i++)
        ok = symbol [i] > 0x20 && symbol [i] < 0x7f;
    if (!ok) {
        s_error (self, "symbol '%.40s' is not 1..31 printable characters", symbol);
        return -1;
    }
    for (int i = 0; i < self->nseries; i++)
        if (strcmp (self->series [i].symbol, symbol) == 0)
            return i;
    if (self->nseries == self->max) {
        self->max = self->max ? 2 * self->max : 64;
        self->series = lb_xrealloc (self->series, (size_t) self->max * sizeof (s_series_t));
    }
    s_series_t *s = &self->series [self->nseries];
    memset (s, 0, sizeof *s);
    memcpy (s->symbol, symbol, len + 1);
    s->sector = lb_xstrdup (sector ? sector : "");
    s->kind = kind;
    return self->nseries++;
}

static char *
s_iso (int64_t ts, char *buf, size_t size)
{
    time_t t = (time_t) ts;
    struct tm tm;
    if (!gmtime_r (&t, &tm) || !strftime (buf, size, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf (buf, size, "%lld", (long long) ts);
    return buf;
}

int
lb_bars_append (lb_bars_t *self, int series, int64_t ts, double open, double high,
                double low, double close, double volume, double news, double options)
{
    assert (self && series >= 0 && series < self->nseries);
    s_series_t *s = &self->series [series];
    char when [40];
    const char *bad = NULL;
    double prices [4] = { open, high, low, close };
    static const char *names [4] = { "open", "high", "low", "close" };
    for (int k = 0; k < 4 && !bad; k++)
        if (isnan (prices [k]))
            bad = "is NaN";
        else
        if (isinf (prices [k]))
            bad = "is infinite";
        else
        if (prices [k] <= 0)
            bad = "is not positive";
    if (bad) {
        int k = 0;
        while (isfinite (prices [k]) && prices [k] > 0)
            k++;
        s_error (self, "symbol %s ts %s: %s %s", s->symbol, s_iso (ts, when, sizeof when),
                 names [k], bad);
        return -1;
    }
    if (!isfinite (volume) || volume < 0) {
        s_error (self, "symbol %s ts %s: volume %g is not a finite number >= 0", s->symbol,
                 s_iso (ts, when, sizeof when), volume);
        return -1;
    }
    if (high < fmax (open, close) || low > fmin (open, close)) {
        s_error (self, "symbol %s ts %s: high %g / low %g do not contain open %g and close %g",
                 s->symbol, s_iso (ts, when, sizeof when), high, low, open, close);
        return -1;
    }
    if (isinf (news) || (!isnan (news) && news < 0) || isinf (options) || (!isnan (options) && options < 0)) {
        s_error (self, "symbol %s ts %s: news %g or options %g is not a count >= 0", s->symbol,
                 s_iso (ts, when, sizeof when), news, options);
        return -1;
    }
    if (s->n && ts <= s->ts [s->n - 1]) {
        char prev [40];
        s_error (self, "symbol %s ts %s: not after the previous bar (%s)", s->symbol,
                 s_iso (ts, when, sizeof when), s_iso (s->ts [s->n - 1], prev, sizeof prev));
        return -1;
    }
    if (s->n == s->max) {
        s->max = s->max ? 2 * s->max : 256;
        s->ts = lb_xrealloc (s->ts, s->max * sizeof (int64_t));
        s->o = lb_xrealloc (s->o, s->max * sizeof (double));
        s->h = lb_xrealloc (s->h, s->max * sizeof (double));
        s->l = lb_xrealloc (s->l, s->max * sizeof (double));
        s->c = lb_xrealloc (s->c, s->max * sizeof (double));
        s->v = lb_xrealloc (s->v, s->max * sizeof (double));
        s->news = lb_xrealloc (s->news, s->max * sizeof (double));
        s->opt = lb_xrealloc (s->opt, s->max * sizeof (double));
    }
    size_t k = s->n++;
    s->ts [k] = ts;
    s->o [k] = open;
    s->h [k] = high;
    s->l [k] = low;
    s->c [k] = close;
    s->v [k] = volume;
    s->news [k] = isnan (news) ? 0 : news;
    s->opt [k] = options;
    s->has_news |= !isnan (news);
    s->has_options |= !isnan (options);
    return 0;
}

int lb_bars_nseries (lb_bars_t *self) { assert (self); return self->nseries; }

size_t
lb_bars_count (lb_bars_t *self)
{
    assert (self);
    size_t n = 0;
    for (int i = 0; i < self->nseries; i++)
        n += self->series [i].n;
    return n;
}

size_t
lb_bars_length (lb_bars_t *self, int series)
{
    assert (self && series >= 0 && series < self->nseries);
    return self->series [series].n;
}

const char *
lb_bars_symbol (lb_bars_t *self, int series)
{
    assert (self && series >= 0 && series < self->nseries);
    return self->series [series].symbol;
}

const char *
lb_bars_sector (lb_bars_t *self, int series)
{
    assert (self && series >= 0 && series < self->nseries);
    return self->series [series].sector;
}

lb_bars_kind_t
lb_bars_kind (lb_bars_t *self, int series)
{
    assert (self && series >= 0 && series < self->nseries);
    return self->series [series].kind;
}

void
lb_bars_span (lb_bars_t *self, int64_t *first, int64_t *last)
{
    assert (self && first && last);
    *first = *last = 0;
    bool any = false;
    for (int i = 0; i < self->nseries; i++) {
        s_series_t *s = &self->series [i];
        if (!s->n)
            continue;
        if (!any || s->ts [0] < *first)
            *first = s->ts [0];
        if (!any || s->ts [s->n - 1] > *last)
            *last = s->ts [s->n - 1];
        any = true;
    }
}

void
lb_bars_view (lb_bars_t *self, int series, kn_series_t *v)
{
    assert (self && series >= 0 && series < self->nseries && v);
    s_series_t *s = &self->series [series];
    memset (v, 0, sizeof *v);
    v->n = s->n;
    v->ts = s->ts;
    v->open = s->o;
    v->high = s->h;
    v->low = s->l;
    v->close = s->c;
    v->volume = s->v;
    v->news = s->has_news ? s->news : NULL;
    v->options = s->has_options ? s->opt : NULL;
}

// ---------------------------------------------------------------- events

static int
s_cmp_i64 (const void *a, const void *b)
{
    int64_t x = *(const int64_t *) a, y = *(const int64_t *) b;
    return x < y ? -1 : x > y;
}

//  Index of the last element <= t in sorted ts, or -1.
static long
s_asof (const int64_t *ts, size_t n, int64_t t)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ts [mid] <= t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return (long) lo - 1;
}

static int
s_cmp_event (const void *a, const void *b)
{
    const lb_bars_event_t *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->series < y->series ? -1 : x->series > y->series;
}

int
lb_bars_events (lb_bars_t *self, const lb_bars_label_t *label, lb_bars_event_t **events,
                size_t *count)
{
    assert (self && label && events && count);
    *events = NULL;
    *count = 0;
    if (label->horizon < 1) {
        s_error (self, "label horizon %d is under 1 bar", label->horizon);
        return -1;
    }
    int index = -1, vix = -1, nstocks = 0;
    for (int i = 0; i < self->nseries; i++) {
        lb_bars_kind_t kind = self->series [i].kind;
        if (kind == LB_BARS_INDEX && index < 0)
            index = i;
        if (kind == LB_BARS_VOLATILITY && vix < 0)
            vix = i;
        nstocks += kind == LB_BARS_STOCK;
    }
    if (nstocks == 0) {
        s_error (self, "no stock series among %d series", self->nseries);
        return -1;
    }
    //  Every distinct time at which some stock has a bar.
    size_t total = 0;
    for (int i = 0; i < self->nseries; i++)
        if (self->series [i].kind == LB_BARS_STOCK)
            total += self->series [i].n;
    int64_t *times = lb_xmalloc ((total ? total : 1) * sizeof (int64_t));
    size_t nt = 0;
    for (int i = 0; i < self->nseries; i++)
        if (self->series [i].kind == LB_BARS_STOCK) {
            memcpy (times + nt, self->series [i].ts, self->series [i].n * sizeof (int64_t));
            nt += self->series [i].n;
        }
    qsort (times, nt, sizeof (int64_t), s_cmp_i64);
    size_t unique = 0;
    for (size_t k = 0; k < nt; k++)
        if (unique == 0 || times [k] != times [unique - 1])
            times [unique++] = times [k];
    nt = unique;
    //  Sector ids.
    int nsectors = 0;
    int *sector_of = lb_xcalloc ((size_t) self->nseries, sizeof (int));
    for (int i = 0; i < self->nseries; i++) {
        sector_of [i] = -1;
        if (self->series [i].kind != LB_BARS_STOCK)
            continue;
        for (int j = 0; j < i && sector_of [i] < 0; j++)
            if (sector_of [j] >= 0 && strcmp (self->series [j].sector, self->series [i].sector) == 0)
                sector_of [i] = sector_of [j];
        if (sector_of [i] < 0)
            sector_of [i] = nsectors++;
    }
    //  Per-bar group ids and the cross-sectional inputs, in stock order.
    uint32_t *g_time = lb_xmalloc ((total ? total : 1) * sizeof (uint32_t));
    uint32_t *g_sector = lb_xmalloc ((total ? total : 1) * sizeof (uint32_t));
    double *ret20 = lb_xmalloc ((total ? total : 1) * sizeof (double));
    double *above = lb_xmalloc ((total ? total : 1) * sizeof (double));
    size_t *offset = lb_xcalloc ((size_t) self->nseries + 1, sizeof (size_t));
    size_t at = 0;
    for (int i = 0; i < self->nseries; i++) {
        s_series_t *s = &self->series [i];
        offset [i] = at;
        if (s->kind != LB_BARS_STOCK)
            continue;
        kn_features_ret20 (s->c, s->n, ret20 + at);
        kn_features_above_sma20 (s->c, s->n, above + at);
        for (size_t k = 0; k < s->n; k++) {
            long g = s_asof (times, nt, s->ts [k]);
            assert (g >= 0 && times [g] == s->ts [k]);
            g_time [at + k] = (uint32_t) g;
            g_sector [at + k] = (uint32_t) ((size_t) g * (size_t) nsectors + (size_t) sector_of [i]);
        }
        at += s->n;
    }
    size_t ngs = nt * (size_t) nsectors;
    double *breadth = lb_xmalloc ((nt ? nt : 1) * sizeof (double));
    double *sector_mom = lb_xmalloc ((ngs ? ngs : 1) * sizeof (double));
    double *sum = lb_xmalloc ((ngs ? ngs : 1) * sizeof (double));
    double *cnt = lb_xmalloc ((ngs ? ngs : 1) * sizeof (double));
    kn_features_group_mean (above, g_time, total, nt, sum, cnt, breadth);
    kn_features_group_mean (ret20, g_sector, total, ngs, sum, cnt, sector_mom);
    free (sum);
    free (cnt);

    //  Features per stock, in parallel; each stock's events in its own list.
    lb_bars_event_t **lists = lb_xcalloc ((size_t) self->nseries, sizeof (lb_bars_event_t *));
    size_t *lens = lb_xcalloc ((size_t) self->nseries, sizeof (size_t));
    int h = label->horizon;
    #pragma omp parallel for schedule(dynamic, 4)
    for (int i = 0; i < self->nseries; i++) {
        s_series_t *s = &self->series [i];
        if (s->kind != LB_BARS_STOCK || s->n == 0)
            continue;
        size_t n = s->n, base = offset [i];
        double *ctx = lb_xmalloc (4 * n * sizeof (double));
        double *idx_c = ctx, *vix_c = ctx + n, *sm = ctx + 2 * n, *br = ctx + 3 * n;
        for (size_t k = 0; k < n; k++) {
            long a = index >= 0 ? s_asof (self->series [index].ts, self->series [index].n, s->ts [k]) : -1;
            idx_c [k] = a >= 0 ? self->series [index].c [a] : NAN;
            long b = vix >= 0 ? s_asof (self->series [vix].ts, self->series [vix].n, s->ts [k]) : -1;
            vix_c [k] = b >= 0 ? self->series [vix].c [b] : NAN;
            sm [k] = sector_mom [g_sector [base + k]];
            br [k] = breadth [g_time [base + k]];
        }
        kn_series_t v;
        lb_bars_view (self, i, &v);
        v.index_close = index >= 0 ? idx_c : NULL;
        v.vix = vix >= 0 ? vix_c : NULL;
        v.sector_momentum = sm;
        v.breadth = br;
        double *f = lb_xmalloc (n * KN_FEATURES_COUNT * sizeof (double));
        uint32_t *pat = lb_xmalloc (n * sizeof (uint32_t));
        double *fwd = lb_xmalloc (n * sizeof (double));
        kn_features_series (&v, f);
        kn_patterns_series (s->o, s->h, s->l, s->c, n, pat);
        kn_forward_returns (s->c, n, (size_t) h, fwd);
        size_t m = 0, mmax = 0;
        lb_bars_event_t *list = NULL;
        for (size_t t = KN_FEATURES_WARMUP; t + (size_t) h < n; t++) {
            if (!label->all_rows && !(pat [t] & KN_PAT_BULLISH))
                continue;
            if (m == mmax) {
                mmax = mmax ? 2 * mmax : 64;
                list = lb_xrealloc (list, mmax * sizeof (lb_bars_event_t));
            }
            lb_bars_event_t *e = &list [m++];
            e->series = (uint32_t) i;
            e->ts = s->ts [t];
            e->label_ts = s->ts [t + (size_t) h];
            memcpy (e->features, f + t * KN_FEATURES_COUNT, sizeof e->features);
            e->patterns = pat [t];
            e->signal = kn_rule_signal (pat [t], f [t * KN_FEATURES_COUNT + KN_F_RSI_14],
                                        f [t * KN_FEATURES_COUNT + KN_F_VOLUME_SURGE]);
            e->fwd_return = fwd [t];
            e->success = fwd [t] > label->threshold;
        }
        lists [i] = list;
        lens [i] = m;
        free (f);
        free (pat);
        free (fwd);
        free (ctx);
    }
    size_t n_events = 0;
    for (int i = 0; i < self->nseries; i++)
        n_events += lens [i];
    lb_bars_event_t *all = lb_xmalloc ((n_events ? n_events : 1) * sizeof (lb_bars_event_t));
    size_t k = 0;
    for (int i = 0; i < self->nseries; i++) {
        if (lens [i])
            memcpy (all + k, lists [i], lens [i] * sizeof (lb_bars_event_t));
        k += lens [i];
        free (lists [i]);
    }
    qsort (all, n_events, sizeof (lb_bars_event_t), s_cmp_event);
    free (lists);
    free (lens);
    free (times);
    free (sector_of);
    free (g_time);
    free (g_sector);
    free (ret20);
    free (above);
    free (offset);
    free (breadth);
    free (sector_mom);
    *events = all;
    *count = n_events;
    return 0;
}

// ---------------------------------------------------------------- selftest

void
lb_bars_test (bool verbose)
{
    lb_bars_t *bars = lb_bars_new ();
    assert (lb_bars_series (bars, "", NULL, LB_BARS_STOCK) == -1);
    assert (lb_bars_series (bars, "A B", NULL, LB_BARS_STOCK) == -1);
    int a = lb_bars_series (bars, "AAA", "tech", LB_BARS_STOCK);
    int b = lb_bars_series (bars, "BBB", "tech", LB_BARS_STOCK);
    int spy = lb_bars_series (bars, "SPY", NULL, LB_BARS_INDEX);
    assert (a == 0 && b == 1 && spy == 2 && lb_bars_series (bars, "AAA", NULL, 0) == 0);
    lb_bars_label_t label = { 3, 0.0, false };
    lb_bars_event_t *ev;
    size_t n;
    //  Bad bars are refused with what and where.
    assert (lb_bars_append (bars, a, 1000, 10, 11, 9, NAN, 100, NAN, NAN) == -1);
    assert (strstr (lb_bars_error (bars), "AAA") && strstr (lb_bars_error (bars), "close is NaN"));
    assert (lb_bars_append (bars, a, 1000, 10, INFINITY, 9, 10, 100, NAN, NAN) == -1);
    assert (strstr (lb_bars_error (bars), "high is infinite"));
    assert (lb_bars_append (bars, a, 1000, 10, 11, 9, -1, 100, NAN, NAN) == -1);
    assert (lb_bars_append (bars, a, 1000, 10, 11, 9, 10, -5, NAN, NAN) == -1);
    assert (lb_bars_append (bars, a, 1000, 10, 9.5, 9, 10, 5, NAN, NAN) == -1);
    assert (strstr (lb_bars_error (bars), "do not contain"));
    assert (lb_bars_count (bars) == 0);
    for (int k = 0; k < 200; k++) {
        double c = 100 + 10 * sin (k * 0.3), o = 100 + 10 * sin ((k - 1) * 0.3);
        assert (lb_bars_append (bars, a, 3600 * k, o, fmax (o, c) + 1, fmin (o, c) - 1, c, 1000 + k, 0, NAN) == 0);
        assert (lb_bars_append (bars, b, 3600 * k, c, fmax (o, c) + 1, fmin (o, c) - 1, o, 1000, k == 50, NAN) == 0);
        if (k % 2 == 0)
            assert (lb_bars_append (bars, spy, 3600 * k, 400, 402 + 2 * k, 399, 400 + k * (1 + 0.01 * (k % 3)), 1, NAN, NAN) == 0);
    }
    assert (lb_bars_append (bars, a, 3600 * 10, 10, 11, 9, 10, 5, NAN, NAN) == -1);
    assert (strstr (lb_bars_error (bars), "not after"));
    assert (lb_bars_count (bars) == 500 && lb_bars_length (bars, a) == 200);
    int64_t first, last;
    lb_bars_span (bars, &first, &last);
    assert (first == 0 && last == 199 * 3600);
    label.all_rows = true;
    assert (lb_bars_events (bars, &label, &ev, &n) == 0);
    //  All rows: (200 - 34 - 3) per stock, ordered by (ts, series).
    assert (n == 2 * (200 - KN_FEATURES_WARMUP - 3));
    for (size_t i = 1; i < n; i++)
        assert (ev [i].ts > ev [i - 1].ts || (ev [i].ts == ev [i - 1].ts && ev [i].series > ev [i - 1].series));
    //  Breadth is the mean over both stocks; sector momentum over the sector.
    kn_series_t v;
    lb_bars_view (bars, a, &v);
    double r20a = v.close [40] / v.close [20] - 1;
    lb_bars_view (bars, b, &v);
    double r20b = v.close [40] / v.close [20] - 1;
    const lb_bars_event_t *e40 = NULL;
    for (size_t i = 0; i < n; i++)
        if (ev [i].ts == 40 * 3600 && ev [i].series == (uint32_t) a)
            e40 = &ev [i];
    assert (e40);
    assert (fabs (e40->features [KN_F_SECTOR_MOMENTUM] - (r20a + r20b) / 2) < 1e-12);
    double br = e40->features [KN_F_MARKET_BREADTH];
    assert (br == 0 || br == 0.5 || br == 1);
    assert (isnan (e40->features [KN_F_VIX_LEVEL]));          //  no VIX series
    assert (e40->label_ts == 43 * 3600);
    assert (fabs (e40->fwd_return - (100 + 10 * sin (43 * 0.3)) / (100 + 10 * sin (40 * 0.3)) + 1) < 1e-12);
    assert (e40->success == (e40->fwd_return > 0));
    //  As-of: the index has bars at even hours only; the feature is defined.
    assert (e40->features [KN_F_SPY_CORRELATION] >= -1 - 1e-9 && e40->features [KN_F_SPY_CORRELATION] <= 1 + 1e-9);
    free (ev);
    label.all_rows = false;
    assert (lb_bars_events (bars, &label, &ev, &n) == 0);
    for (size_t i = 0; i < n; i++)
        assert (ev [i].patterns & KN_PAT_BULLISH);
    if (verbose)
        printf ("  %zu pattern events\n", n);
    free (ev);
    label.horizon = 0;
    assert (lb_bars_events (bars, &label, &ev, &n) == -1);
    lb_bars_destroy (&bars);
    lb_bars_destroy (&bars);
    bars = lb_bars_new ();
    label.horizon = 3;
    assert (lb_bars_events (bars, &label, &ev, &n) == -1 && strstr (lb_bars_error (bars), "no stock"));
    lb_bars_destroy (&bars);
}
