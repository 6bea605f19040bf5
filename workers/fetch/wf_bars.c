/*  wf_bars.c - bars in memory and the pattern events (see wf_bars.h). */
#include "wf_bars.h"
#include "lb_clock.h"
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
    wf_bars_kind_t kind;
    size_t n, max;
    int64_t *ts;
    double *o, *h, *l, *c, *v, *news, *opt;
    bool has_news, has_options;
} s_series_t;

struct _wf_bars_t {
    s_series_t *series;
    int nseries, max;
    char error [512];
};

wf_bars_t *
wf_bars_new (void)
{
    return lb_xcalloc (1, sizeof (wf_bars_t));
}

void
wf_bars_destroy (wf_bars_t **self_p)
{
    assert (self_p);
    wf_bars_t *self = *self_p;
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
s_error (wf_bars_t *self, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_error (wf_bars_t *self, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    vsnprintf (self->error, sizeof self->error, fmt, args);
    va_end (args);
}

const char *
wf_bars_error (wf_bars_t *self)
{
    assert (self);
    return self->error;
}

int
wf_bars_series (wf_bars_t *self, const char *symbol, const char *sector, wf_bars_kind_t kind)
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

//  ts (Unix seconds) as ISO 8601 UTC. Returns buf.
static char *
s_iso (int64_t ts, char *buf, size_t size)
{
    return lb_clock_format_iso (ts * 1000000, buf, size);
}

//  Checks one bar of s against the bar before it (prev_ts, when has_prev).
//  Returns 0, or -1 with the error set (what and where).
static int
s_check (wf_bars_t *self, s_series_t *s, int64_t ts, double open, double high, double low,
         double close, double volume, double news, double options, bool has_prev, int64_t prev_ts)
{
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
    if (has_prev && ts <= prev_ts) {
        char prev [40];
        s_error (self, "symbol %s ts %s: not after the previous bar (%s)", s->symbol,
                 s_iso (ts, when, sizeof when), s_iso (prev_ts, prev, sizeof prev));
        return -1;
    }
    return 0;
}

static void
s_reserve (s_series_t *s, size_t need)
{
    if (need <= s->max)
        return;
    size_t max = s->max ? 2 * s->max : 256;
    while (max < need)
        max *= 2;
    s->max = max;
    s->ts = lb_xrealloc (s->ts, s->max * sizeof (int64_t));
    s->o = lb_xrealloc (s->o, s->max * sizeof (double));
    s->h = lb_xrealloc (s->h, s->max * sizeof (double));
    s->l = lb_xrealloc (s->l, s->max * sizeof (double));
    s->c = lb_xrealloc (s->c, s->max * sizeof (double));
    s->v = lb_xrealloc (s->v, s->max * sizeof (double));
    s->news = lb_xrealloc (s->news, s->max * sizeof (double));
    s->opt = lb_xrealloc (s->opt, s->max * sizeof (double));
}

int
wf_bars_append (wf_bars_t *self, int series, int64_t ts, double open, double high,
                double low, double close, double volume, double news, double options)
{
    assert (self && series >= 0 && series < self->nseries);
    s_series_t *s = &self->series [series];
    if (s_check (self, s, ts, open, high, low, close, volume, news, options, s->n > 0,
                 s->n ? s->ts [s->n - 1] : 0))
        return -1;
    s_reserve (s, s->n + 1);
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

void
wf_bars_columns_release (wf_bars_columns_t *cols)
{
    assert (cols);
    free (cols->ts);
    free (cols->open);
    free (cols->high);
    free (cols->low);
    free (cols->close);
    free (cols->volume);
    free (cols->news);
    free (cols->options);
    memset (cols, 0, sizeof *cols);
}

int
wf_bars_append_columns (wf_bars_t *self, int series, wf_bars_columns_t *cols)
{
    assert (self && series >= 0 && series < self->nseries && cols);
    assert (cols->n <= cols->max && (cols->n == 0 || (cols->ts && cols->open && cols->high && cols->low
            && cols->close && cols->volume && cols->news && cols->options)));
    s_series_t *s = &self->series [series];
    const int64_t *ts = cols->ts;
    const double *o = cols->open, *h = cols->high, *l = cols->low, *c = cols->close, *v = cols->volume,
                 *nw = cols->news, *op = cols->options;
    //  One tight pass for the common case of good bars; the first bad one
    //  goes through s_check for its message.
    bool has_prev = s->n > 0;
    int64_t prev = has_prev ? s->ts [s->n - 1] : 0;
    bool has_news = false, has_options = false;
    for (size_t i = 0; i < cols->n; i++) {
        double oi = o [i], hi = h [i], li = l [i], ci = c [i], vi = v [i], ni = nw [i], pi = op [i];
        bool ok = oi > 0 && ci > 0 && li > 0 && hi < INFINITY && hi >= oi && hi >= ci && li <= oi && li <= ci
               && vi >= 0 && vi < INFINITY && (isnan (ni) || (ni >= 0 && ni < INFINITY))
               && (isnan (pi) || (pi >= 0 && pi < INFINITY)) && (!has_prev || ts [i] > prev);
        if (!ok && s_check (self, s, ts [i], oi, hi, li, ci, vi, ni, pi, has_prev, prev)) {
            wf_bars_columns_release (cols);
            return -1;
        }
        has_news |= !isnan (ni);
        has_options |= !isnan (pi);
        has_prev = true;
        prev = ts [i];
    }
    if (has_news)
        for (size_t i = 0; i < cols->n; i++)
            if (isnan (cols->news [i]))
                cols->news [i] = 0;
    if (!has_news && cols->n)
        memset (cols->news, 0, cols->n * sizeof (double));
    s->has_news |= has_news;
    s->has_options |= has_options;
    if (s->n == 0 && s->max == 0) {
        //  Take the arrays as they are.
        s->ts = cols->ts;
        s->o = cols->open;
        s->h = cols->high;
        s->l = cols->low;
        s->c = cols->close;
        s->v = cols->volume;
        s->news = cols->news;
        s->opt = cols->options;
        s->n = cols->n;
        s->max = cols->max;
        memset (cols, 0, sizeof *cols);
        return 0;
    }
    s_reserve (s, s->n + cols->n);
    size_t k = s->n, n = cols->n;
    if (n) {
        memcpy (s->ts + k, cols->ts, n * sizeof (int64_t));
        memcpy (s->o + k, cols->open, n * sizeof (double));
        memcpy (s->h + k, cols->high, n * sizeof (double));
        memcpy (s->l + k, cols->low, n * sizeof (double));
        memcpy (s->c + k, cols->close, n * sizeof (double));
        memcpy (s->v + k, cols->volume, n * sizeof (double));
        memcpy (s->news + k, cols->news, n * sizeof (double));
        memcpy (s->opt + k, cols->options, n * sizeof (double));
    }
    s->n += n;
    wf_bars_columns_release (cols);
    return 0;
}

int wf_bars_nseries (wf_bars_t *self) { assert (self); return self->nseries; }

size_t
wf_bars_count (wf_bars_t *self)
{
    assert (self);
    size_t n = 0;
    for (int i = 0; i < self->nseries; i++)
        n += self->series [i].n;
    return n;
}

size_t
wf_bars_length (wf_bars_t *self, int series)
{
    assert (self && series >= 0 && series < self->nseries);
    return self->series [series].n;
}

const char *
wf_bars_symbol (wf_bars_t *self, int series)
{
    assert (self && series >= 0 && series < self->nseries);
    return self->series [series].symbol;
}

const char *
wf_bars_sector (wf_bars_t *self, int series)
{
    assert (self && series >= 0 && series < self->nseries);
    return self->series [series].sector;
}

wf_bars_kind_t
wf_bars_kind (wf_bars_t *self, int series)
{
    assert (self && series >= 0 && series < self->nseries);
    return self->series [series].kind;
}

void
wf_bars_span (wf_bars_t *self, int64_t *first, int64_t *last)
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
wf_bars_view (wf_bars_t *self, int series, kn_series_t *v)
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

typedef struct {
    int64_t ts;
    uint32_t series, pos;
} s_key_t;

static int
s_cmp_key (const void *a, const void *b)
{
    const s_key_t *x = a, *y = b;
    if (x->ts != y->ts)
        return x->ts < y->ts ? -1 : 1;
    return x->series < y->series ? -1 : x->series > y->series;
}

int
wf_bars_events (wf_bars_t *self, const wf_bars_label_t *label, wf_bars_event_t **events,
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
        wf_bars_kind_t kind = self->series [i].kind;
        if (kind == WF_BARS_INDEX && index < 0)
            index = i;
        if (kind == WF_BARS_VOLATILITY && vix < 0)
            vix = i;
        nstocks += kind == WF_BARS_STOCK;
    }
    if (nstocks == 0) {
        s_error (self, "no stock series among %d series", self->nseries);
        return -1;
    }
    //  Every distinct time at which some stock has a bar.
    size_t total = 0;
    for (int i = 0; i < self->nseries; i++)
        if (self->series [i].kind == WF_BARS_STOCK)
            total += self->series [i].n;
    int64_t *times = lb_xmalloc ((total ? total : 1) * sizeof (int64_t));
    size_t nt = 0;
    for (int i = 0; i < self->nseries; i++)
        if (self->series [i].kind == WF_BARS_STOCK) {
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
        if (self->series [i].kind != WF_BARS_STOCK)
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
        if (s->kind != WF_BARS_STOCK)
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
    wf_bars_event_t **lists = lb_xcalloc ((size_t) self->nseries, sizeof (wf_bars_event_t *));
    size_t *lens = lb_xcalloc ((size_t) self->nseries, sizeof (size_t));
    int h = label->horizon;
    #pragma omp parallel for schedule(dynamic, 4)
    for (int i = 0; i < self->nseries; i++) {
        s_series_t *s = &self->series [i];
        if (s->kind != WF_BARS_STOCK || s->n == 0)
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
        wf_bars_view (self, i, &v);
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
        wf_bars_event_t *list = NULL;
        for (size_t t = KN_FEATURES_WARMUP; t + (size_t) h < n; t++) {
            if (!label->all_rows && !(pat [t] & KN_PAT_BULLISH))
                continue;
            if (m == mmax) {
                mmax = mmax ? 2 * mmax : 64;
                list = lb_xrealloc (list, mmax * sizeof (wf_bars_event_t));
            }
            wf_bars_event_t *e = &list [m++];
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
    //  Order by (ts, series): sort small keys, then move each event once.
    s_key_t *keys = lb_xmalloc ((n_events ? n_events : 1) * sizeof (s_key_t));
    size_t k = 0;
    for (int i = 0; i < self->nseries; i++)
        for (size_t j = 0; j < lens [i]; j++)
            keys [k++] = (s_key_t) { lists [i][j].ts, (uint32_t) i, (uint32_t) j };
    qsort (keys, n_events, sizeof (s_key_t), s_cmp_key);
    wf_bars_event_t *all = lb_xmalloc ((n_events ? n_events : 1) * sizeof (wf_bars_event_t));
    for (k = 0; k < n_events; k++)
        all [k] = lists [keys [k].series][keys [k].pos];
    free (keys);
    for (int i = 0; i < self->nseries; i++)
        free (lists [i]);
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
wf_bars_test (bool verbose)
{
    wf_bars_t *bars = wf_bars_new ();
    assert (wf_bars_series (bars, "", NULL, WF_BARS_STOCK) == -1);
    assert (wf_bars_series (bars, "A B", NULL, WF_BARS_STOCK) == -1);
    int a = wf_bars_series (bars, "AAA", "tech", WF_BARS_STOCK);
    int b = wf_bars_series (bars, "BBB", "tech", WF_BARS_STOCK);
    int spy = wf_bars_series (bars, "SPY", NULL, WF_BARS_INDEX);
    assert (a == 0 && b == 1 && spy == 2 && wf_bars_series (bars, "AAA", NULL, 0) == 0);
    wf_bars_label_t label = { 3, 0.0, false };
    wf_bars_event_t *ev;
    size_t n;
    //  Bad bars are refused with what and where.
    assert (wf_bars_append (bars, a, 1000, 10, 11, 9, NAN, 100, NAN, NAN) == -1);
    assert (strstr (wf_bars_error (bars), "AAA") && strstr (wf_bars_error (bars), "close is NaN"));
    assert (wf_bars_append (bars, a, 1000, 10, INFINITY, 9, 10, 100, NAN, NAN) == -1);
    assert (strstr (wf_bars_error (bars), "high is infinite"));
    assert (wf_bars_append (bars, a, 1000, 10, 11, 9, -1, 100, NAN, NAN) == -1);
    assert (wf_bars_append (bars, a, 1000, 10, 11, 9, 10, -5, NAN, NAN) == -1);
    assert (wf_bars_append (bars, a, 1000, 10, 9.5, 9, 10, 5, NAN, NAN) == -1);
    assert (strstr (wf_bars_error (bars), "do not contain"));
    assert (wf_bars_count (bars) == 0);
    for (int k = 0; k < 200; k++) {
        double c = 100 + 10 * sin (k * 0.3), o = 100 + 10 * sin ((k - 1) * 0.3);
        assert (wf_bars_append (bars, a, 3600 * k, o, fmax (o, c) + 1, fmin (o, c) - 1, c, 1000 + k, 0, NAN) == 0);
        assert (wf_bars_append (bars, b, 3600 * k, c, fmax (o, c) + 1, fmin (o, c) - 1, o, 1000, k == 50, NAN) == 0);
        if (k % 2 == 0)
            assert (wf_bars_append (bars, spy, 3600 * k, 400, 402 + 2 * k, 399, 400 + k * (1 + 0.01 * (k % 3)), 1, NAN, NAN) == 0);
    }
    assert (wf_bars_append (bars, a, 3600 * 10, 10, 11, 9, 10, 5, NAN, NAN) == -1);
    assert (strstr (wf_bars_error (bars), "not after"));
    assert (wf_bars_count (bars) == 500 && wf_bars_length (bars, a) == 200);
    int64_t first, last;
    wf_bars_span (bars, &first, &last);
    assert (first == 0 && last == 199 * 3600);
    label.all_rows = true;
    assert (wf_bars_events (bars, &label, &ev, &n) == 0);
    //  All rows: (200 - 34 - 3) per stock, ordered by (ts, series).
    assert (n == 2 * (200 - KN_FEATURES_WARMUP - 3));
    for (size_t i = 1; i < n; i++)
        assert (ev [i].ts > ev [i - 1].ts || (ev [i].ts == ev [i - 1].ts && ev [i].series > ev [i - 1].series));
    //  Breadth is the mean over both stocks; sector momentum over the sector.
    kn_series_t v;
    wf_bars_view (bars, a, &v);
    double r20a = v.close [40] / v.close [20] - 1;
    wf_bars_view (bars, b, &v);
    double r20b = v.close [40] / v.close [20] - 1;
    const wf_bars_event_t *e40 = NULL;
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
    assert (wf_bars_events (bars, &label, &ev, &n) == 0);
    for (size_t i = 0; i < n; i++)
        assert (ev [i].patterns & KN_PAT_BULLISH);
    if (verbose)
        printf ("  %zu pattern events\n", n);
    free (ev);
    label.horizon = 0;
    assert (wf_bars_events (bars, &label, &ev, &n) == -1);
    //  Whole columns: taken as they are into an empty series, copied after
    //  bars already there, refused with the same message as one bar.
    int cc = wf_bars_series (bars, "CCC", "energy", WF_BARS_STOCK);
    for (int round = 0; round < 4; round++) {
        wf_bars_columns_t cols = { 0 };
        cols.n = cols.max = 10;
        cols.ts = lb_xmalloc (10 * sizeof (int64_t));
        double **arr [7] = { &cols.open, &cols.high, &cols.low, &cols.close, &cols.volume, &cols.news, &cols.options };
        for (int k = 0; k < 7; k++)
            *arr [k] = lb_xmalloc (10 * sizeof (double));
        for (int i = 0; i < 10; i++) {
            cols.ts [i] = 3600 * (round * 10 + i);
            cols.open [i] = 10, cols.high [i] = 12, cols.low [i] = 9, cols.close [i] = 11;
            cols.volume [i] = 100;
            cols.news [i] = i == 3 && round == 1 ? 2 : NAN;
            cols.options [i] = NAN;
        }
        if (round == 2)
            cols.close [7] = INFINITY;
        if (round == 3)
            cols.ts [0] = 3600 * 19;
        int rc = wf_bars_append_columns (bars, cc, &cols);
        assert (cols.ts == NULL && cols.n == 0);
        if (round < 2)
            assert (rc == 0 && wf_bars_length (bars, cc) == (size_t) (10 * (round + 1)));
        else
            assert (rc == -1 && wf_bars_length (bars, cc) == 20);
        if (round == 2)
            assert (strstr (wf_bars_error (bars), "CCC") && strstr (wf_bars_error (bars), "close is infinite"));
        if (round == 3)
            assert (strstr (wf_bars_error (bars), "not after"));
    }
    wf_bars_view (bars, cc, &v);
    assert (v.ts [13] == 13 * 3600 && v.close [13] == 11);
    wf_bars_columns_t none = { 0 };
    assert (wf_bars_append_columns (bars, cc, &none) == 0 && wf_bars_length (bars, cc) == 20);
    wf_bars_destroy (&bars);
    wf_bars_destroy (&bars);
    bars = wf_bars_new ();
    label.horizon = 3;
    assert (wf_bars_events (bars, &label, &ev, &n) == -1 && strstr (wf_bars_error (bars), "no stock"));
    wf_bars_destroy (&bars);
}
