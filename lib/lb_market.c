/*  lb_market.c - the seeded market generator (model in lb_market.h). */
#include "lb_market.h"
#include "lb_log.h"
#include "lb_mem.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct {
    char symbol [8];
    int sector;                 //  -1 for index and VIX
    const char *kind;
    double *open, *high, *low, *close, *volume, *news, *options;
} s_series_t;

struct _lb_market_t {
    lb_market_params_t p;
    size_t bars;
    int64_t *ts;
    int nseries;
    s_series_t *series;
    char **sector_names;
};

// ---------------------------------------------------------------- random numbers

typedef struct {
    uint64_t s [4];
    bool have_spare;
    double spare;
} s_rng_t;

static uint64_t
s_splitmix (uint64_t *x)
{
    uint64_t z = (*x += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

static void
s_rng_seed (s_rng_t *r, uint64_t seed)
{
    for (int i = 0; i < 4; i++)
        r->s [i] = s_splitmix (&seed);
    r->have_spare = false;
}

static uint64_t
s_rotl (uint64_t x, int k)
{
    return (x << k) | (x >> (64 - k));
}

static uint64_t
s_next (s_rng_t *r)
{
    uint64_t *s = r->s;
    uint64_t result = s_rotl (s [1] * 5, 7) * 9;
    uint64_t t = s [1] << 17;
    s [2] ^= s [0];
    s [3] ^= s [1];
    s [1] ^= s [2];
    s [0] ^= s [3];
    s [2] ^= t;
    s [3] = s_rotl (s [3], 45);
    return result;
}

//  Uniform in (0, 1).
static double
s_uniform (s_rng_t *r)
{
    return ((double) (s_next (r) >> 11) + 0.5) * (1.0 / 9007199254740992.0);
}

//  Standard normal (Marsaglia polar method).
static double
s_normal (s_rng_t *r)
{
    if (r->have_spare) {
        r->have_spare = false;
        return r->spare;
    }
    double u, v, q;
    do {
        u = 2 * s_uniform (r) - 1;
        v = 2 * s_uniform (r) - 1;
        q = u * u + v * v;
    } while (q >= 1 || q == 0);
    double m = sqrt (-2 * log (q) / q);
    r->spare = v * m;
    r->have_spare = true;
    return u * m;
}

static double
s_exponential (s_rng_t *r)
{
    return -log (s_uniform (r));
}

// ---------------------------------------------------------------- construction

void
lb_market_params_default (lb_market_params_t *p)
{
    assert (p);
    p->seed = 42;
    p->symbols = 300;
    p->sectors = 10;
    p->days = 504;
    p->bars_per_day = 7;
    p->end_day = 20412;         //  2026-11-20, a Friday
}

static const char *s_sector_names [] = {
    "technology", "healthcare", "financials", "energy", "industrials", "utilities",
    "materials", "consumer_staples", "consumer_discretionary", "real_estate"
};

//  Weekday of a Unix day: 0 Sunday .. 6 Saturday (1970-01-01 was a Thursday).
static int
s_weekday (int64_t day)
{
    return (int) (((day % 7) + 7 + 4) % 7);
}

static void
s_alloc_series (s_series_t *s, size_t bars, bool stock)
{
    s->open = lb_xcalloc (bars, sizeof (double));
    s->high = lb_xcalloc (bars, sizeof (double));
    s->low = lb_xcalloc (bars, sizeof (double));
    s->close = lb_xcalloc (bars, sizeof (double));
    s->volume = lb_xcalloc (bars, sizeof (double));
    if (stock) {
        s->news = lb_xcalloc (bars, sizeof (double));
        s->options = lb_xcalloc (bars, sizeof (double));
    }
}

//  Per-stock state of the price model.
typedef struct {
    double f, d;                //  log fundamental, transient part
    double beta, vol, base_volume;
    int news_countdown;         //  bars until scheduled news, 0: none
    int news_sign;
    bool leak;                  //  options traders know
    int drift_left;
    double drift;
} s_stock_t;

lb_market_t *
lb_market_new (const lb_market_params_t *p)
{
    assert (p);
    if (p->symbols < 1 || p->symbols > 5000 || p->sectors < 1 || p->sectors > 100
    ||  p->days < 2 || p->days > 20000 || (p->bars_per_day != 1 && p->bars_per_day != 7)) {
        lb_log_error ("market: parameters out of range (symbols=%d sectors=%d days=%d bars_per_day=%d)",
                      p->symbols, p->sectors, p->days, p->bars_per_day);
        return NULL;
    }
    lb_market_t *self = lb_xcalloc (1, sizeof *self);
    self->p = *p;
    int bpd = p->bars_per_day;
    self->bars = (size_t) p->days * (size_t) bpd;
    self->ts = lb_xmalloc (self->bars * sizeof (int64_t));
    int64_t day = p->end_day;
    while (s_weekday (day) == 0 || s_weekday (day) == 6)
        day--;
    for (int k = p->days - 1; k >= 0; k--) {
        for (int b = 0; b < bpd; b++)
            self->ts [(size_t) k * bpd + b] = day * 86400
                + (bpd == 1 ? 20 * 3600 : 14 * 3600 + 1800 + b * 3600);
        do
            day--;
        while (s_weekday (day) == 0 || s_weekday (day) == 6);
    }
    self->sector_names = lb_xcalloc ((size_t) p->sectors, sizeof (char *));
    for (int s = 0; s < p->sectors; s++)
        self->sector_names [s] = s < 10 ? lb_xstrdup (s_sector_names [s])
                                        : lb_xasprintf ("sector_%02d", s + 1);
    self->nseries = p->symbols + 2;
    self->series = lb_xcalloc ((size_t) self->nseries, sizeof (s_series_t));
    for (int i = 0; i < p->symbols; i++) {
        s_series_t *s = &self->series [i];
        //  Names: a bijection of i onto 4 letters (7919 is prime to 26^4).
        uint32_t code = (uint32_t) (((uint64_t) i * 7919 + 1234) % (26 * 26 * 26 * 26));
        for (int c = 3; c >= 0; c--) {
            s->symbol [c] = (char) ('A' + code % 26);
            code /= 26;
        }
        s->sector = i % p->sectors;
        s->kind = "stock";
        s_alloc_series (s, self->bars, true);
    }
    s_series_t *index = &self->series [p->symbols], *vix = &self->series [p->symbols + 1];
    snprintf (index->symbol, sizeof index->symbol, "SPY");
    snprintf (vix->symbol, sizeof vix->symbol, "VIX");
    index->sector = vix->sector = -1;
    index->kind = "index";
    vix->kind = "volatility";
    s_alloc_series (index, self->bars, false);
    s_alloc_series (vix, self->bars, false);

    //  The model. u is one bar's volatility unit.
    s_rng_t rng;
    s_rng_seed (&rng, p->seed);
    double u = bpd == 1 ? 0.004 * sqrt (7.0) : 0.004;
    double phi = bpd == 1 ? 0.45 : 0.85;        //  transient persistence per bar
    double d_sd = u / sqrt (1 - phi * phi);     //  its stationary spread
    int nstock = p->symbols;
    s_stock_t *st = lb_xcalloc ((size_t) nstock, sizeof (s_stock_t));
    for (int i = 0; i < nstock; i++) {
        st [i].f = log (20 + 180 * s_uniform (&rng));
        st [i].beta = 0.6 + 0.8 * s_uniform (&rng);
        st [i].vol = 0.7 + 0.6 * s_uniform (&rng);
        st [i].base_volume = exp (11 + 2 * s_uniform (&rng)) / bpd;
    }
    double *sector_drift = lb_xcalloc ((size_t) p->sectors, sizeof (double));
    double *sector_ret = lb_xcalloc ((size_t) p->sectors, sizeof (double));
    static const double shape [7] = { 1.6, 1.0, 0.8, 0.7, 0.8, 1.0, 1.4 };
    double m_log = log (450), vix_level = 15, prev_m = 450;
    bool volatile_regime = false;
    for (size_t k = 0; k < self->bars; k++) {
        int b = (int) (k % (size_t) bpd);
        bool first = b == 0;
        if (first && k > 0) {
            double sw = s_uniform (&rng);
            if ((!volatile_regime && sw < 0.02) || (volatile_regime && sw < 0.06))
                volatile_regime = !volatile_regime;
        }
        double vm = volatile_regime ? 2.0 : 1.0;
        //  Market and VIX.
        double rm = 0.00002 + u * 0.35 * vm * s_normal (&rng);
        double gap_m = first && k > 0 ? u * 0.5 * vm * s_normal (&rng) : 0;
        double m_open = exp (m_log + gap_m);
        m_log += gap_m + rm;
        double m_close = exp (m_log);
        index->open [k] = m_open;
        index->close [k] = m_close;
        index->high [k] = fmax (m_open, m_close) * exp (u * 0.15 * s_exponential (&rng));
        index->low [k] = fmin (m_open, m_close) * exp (-u * 0.15 * s_exponential (&rng));
        index->volume [k] = 5e7 / bpd * shape [bpd == 1 ? 1 : b] * exp (0.2 * s_normal (&rng)) * vm;
        double target = volatile_regime ? 30 : 14;
        double vix_open = vix_level;
        vix_level += 0.08 * (target - vix_level) - 300 * (m_close / prev_m - 1) + 0.3 * s_normal (&rng);
        vix_level = fmin (90, fmax (9, vix_level));
        prev_m = m_close;
        vix->open [k] = vix_open;
        vix->close [k] = vix_level;
        vix->high [k] = fmax (vix_open, vix_level) + 0.2 * s_exponential (&rng);
        vix->low [k] = fmax (1, fmin (vix_open, vix_level) - 0.2 * s_exponential (&rng));
        vix->volume [k] = 0;
        for (int s = 0; s < p->sectors; s++) {
            sector_drift [s] = 0.996 * sector_drift [s] + 0.00005 * s_normal (&rng);
            sector_ret [s] = sector_drift [s] + u * 0.25 * vm * s_normal (&rng);
        }
        //  Stocks.
        for (int i = 0; i < nstock; i++) {
            s_stock_t *x = &st [i];
            s_series_t *s = &self->series [i];
            double prev_close = k ? s->close [k - 1] : exp (x->f + x->d);
            //  News is decided three bars ahead; options traders sometimes know.
            double news = 0, leak = 1;
            if (x->news_countdown == 0 && s_uniform (&rng) < 0.004) {
                x->news_countdown = 3;
                x->news_sign = s_uniform (&rng) < 0.5 ? 1 : -1;
                x->leak = s_uniform (&rng) < (x->news_sign > 0 ? 0.7 : 0.1);
            }
            double jump = 0, spike = 1;
            if (x->news_countdown > 0) {
                if (x->leak)
                    leak = 3 + s_exponential (&rng);
                if (--x->news_countdown == 0) {
                    news = 1;
                    jump = x->news_sign * u * 2.5 * (1 + fabs (s_normal (&rng)));
                    x->drift = x->news_sign * u * 0.35;
                    x->drift_left = 7;
                    spike = 3 + 2 * fabs (s_normal (&rng));
                }
            }
            //  Overnight: market gap, own gap (part of it transient).
            double gap = 0;
            if (first && k > 0) {
                double g = u * 0.6 * x->vol * s_normal (&rng);
                x->f += x->beta * gap_m + 0.5 * g;
                x->d += 0.5 * g;
                gap = 1;
            }
            double open = gap ? exp (x->f + x->d) : prev_close * exp (0.0002 * s_normal (&rng));
            //  The bar.
            double drift = 0;
            if (x->drift_left > 0) {
                drift = x->drift;
                x->drift_left--;
            }
            x->f += x->beta * rm + sector_ret [s->sector] + u * 0.35 * x->vol * vm * s_normal (&rng)
                  + drift + jump;
            x->d = phi * x->d + u * x->vol * vm * s_normal (&rng);
            double close = exp (x->f + x->d);
            double oversold = fmax (0, -x->d / (d_sd * x->vol * vm));
            s->open [k] = open;
            s->close [k] = close;
            s->high [k] = fmax (open, close) * exp (u * 0.3 * s_exponential (&rng));
            s->low [k] = fmin (open, close) * exp (-u * 0.3 * s_exponential (&rng) * (1 + 1.5 * oversold));
            double r = fabs (log (close / prev_close)) / u;
            s->volume [k] = round (x->base_volume * shape [bpd == 1 ? 1 : b] * exp (0.3 * s_normal (&rng))
                                 * (1 + 0.3 * r) * (1 + 0.5 * oversold) * spike);
            s->news [k] = news;
            s->options [k] = round (x->base_volume * 0.02 * exp (0.4 * s_normal (&rng)) * leak);
        }
    }
    free (st);
    free (sector_drift);
    free (sector_ret);
    return self;
}

void
lb_market_destroy (lb_market_t **self_p)
{
    assert (self_p);
    lb_market_t *self = *self_p;
    if (!self)
        return;
    for (int i = 0; i < self->nseries; i++) {
        s_series_t *s = &self->series [i];
        free (s->open);
        free (s->high);
        free (s->low);
        free (s->close);
        free (s->volume);
        free (s->news);
        free (s->options);
    }
    for (int s = 0; s < self->p.sectors; s++)
        free (self->sector_names [s]);
    free (self->sector_names);
    free (self->series);
    free (self->ts);
    free (self);
    *self_p = NULL;
}

size_t lb_market_bars (lb_market_t *self) { assert (self); return self->bars; }
const int64_t *lb_market_ts (lb_market_t *self) { assert (self); return self->ts; }
int lb_market_series (lb_market_t *self) { assert (self); return self->nseries; }

const char *
lb_market_symbol (lb_market_t *self, int i)
{
    assert (self && i >= 0 && i < self->nseries);
    return self->series [i].symbol;
}

const char *
lb_market_sector (lb_market_t *self, int i)
{
    assert (self && i >= 0 && i < self->nseries);
    int s = self->series [i].sector;
    return s < 0 ? "" : self->sector_names [s];
}

const char *
lb_market_kind (lb_market_t *self, int i)
{
    assert (self && i >= 0 && i < self->nseries);
    return self->series [i].kind;
}

void
lb_market_get (lb_market_t *self, int i, lb_market_ohlcv_t *out)
{
    assert (self && i >= 0 && i < self->nseries && out);
    s_series_t *s = &self->series [i];
    out->open = s->open;
    out->high = s->high;
    out->low = s->low;
    out->close = s->close;
    out->volume = s->volume;
    out->news = s->news;
    out->options = s->options;
}

int
lb_market_copy_text (lb_market_t *self, int (*emit) (void *arg, const char *buf, size_t len),
                     void *arg)
{
    assert (self && emit);
    size_t max = 1 << 20;
    char *buf = lb_xmalloc (max + 512);
    size_t len = 0;
    int rc = 0;
    char (*stamps) [32] = lb_xmalloc (self->bars * sizeof *stamps);
    for (size_t k = 0; k < self->bars; k++) {
        time_t t = (time_t) self->ts [k];
        struct tm tm;
        gmtime_r (&t, &tm);
        strftime (stamps [k], sizeof stamps [k], "%Y-%m-%d %H:%M:%S+00", &tm);
    }
    for (int i = 0; i < self->nseries && rc == 0; i++) {
        s_series_t *s = &self->series [i];
        for (size_t k = 0; k < self->bars && rc == 0; k++) {
            int n;
            if (s->news)
                n = snprintf (buf + len, 512, "%s\t%s\t%.4f\t%.4f\t%.4f\t%.4f\t%.0f\t%.0f\t%.0f\n",
                              s->symbol, stamps [k], s->open [k], s->high [k], s->low [k],
                              s->close [k], s->volume [k], s->news [k], s->options [k]);
            else
                n = snprintf (buf + len, 512, "%s\t%s\t%.4f\t%.4f\t%.4f\t%.4f\t%.0f\t\\N\t\\N\n",
                              s->symbol, stamps [k], s->open [k], s->high [k], s->low [k],
                              s->close [k], s->volume [k]);
            assert (n > 0 && n < 512);
            len += (size_t) n;
            if (len >= max) {
                rc = emit (arg, buf, len);
                len = 0;
            }
        }
    }
    if (rc == 0 && len)
        rc = emit (arg, buf, len);
    free (stamps);
    free (buf);
    return rc;
}

// ---------------------------------------------------------------- selftest

static int
s_count_emit (void *arg, const char *buf, size_t len)
{
    size_t *lines = arg;
    for (size_t i = 0; i < len; i++)
        *lines += buf [i] == '\n';
    return 0;
}

void
lb_market_test (bool verbose)
{
    lb_market_params_t p;
    lb_market_params_default (&p);
    p.symbols = 20;
    p.sectors = 4;
    p.days = 60;
    lb_market_t *m = lb_market_new (&p);
    assert (m);
    assert (lb_market_bars (m) == 420 && lb_market_series (m) == 22);
    const int64_t *ts = lb_market_ts (m);
    //  The last bar is on 2026-11-20 at 20:30 UTC; days are weekdays.
    assert (ts [419] == 20412 * 86400LL + 20 * 3600 + 1800);
    for (size_t k = 1; k < 420; k++) {
        assert (ts [k] > ts [k - 1]);
        int wd = s_weekday (ts [k] / 86400);
        assert (wd >= 1 && wd <= 5);
    }
    assert (strcmp (lb_market_symbol (m, 20), "SPY") == 0 && strcmp (lb_market_kind (m, 21), "volatility") == 0);
    assert (strcmp (lb_market_sector (m, 5), "healthcare") == 0 && lb_market_sector (m, 20) [0] == 0);
    //  Valid bars everywhere; symbols unique.
    double news = 0;
    for (int i = 0; i < 22; i++) {
        lb_market_ohlcv_t b;
        lb_market_get (m, i, &b);
        for (size_t k = 0; k < 420; k++) {
            assert (isfinite (b.close [k]) && b.close [k] > 0);
            assert (b.high [k] >= fmax (b.open [k], b.close [k]) && b.low [k] <= fmin (b.open [k], b.close [k]));
            assert (b.volume [k] >= 0);
            if (b.news)
                news += b.news [k];
        }
        for (int j = 0; j < i; j++)
            assert (strcmp (lb_market_symbol (m, i), lb_market_symbol (m, j)) != 0);
    }
    assert (news > 0);
    //  Deterministic: the same seed gives the same bars, another seed others.
    lb_market_t *again = lb_market_new (&p);
    lb_market_ohlcv_t a, b;
    lb_market_get (m, 3, &a);
    lb_market_get (again, 3, &b);
    assert (memcmp (a.close, b.close, 420 * sizeof (double)) == 0);
    lb_market_destroy (&again);
    p.seed = 43;
    again = lb_market_new (&p);
    lb_market_get (again, 3, &b);
    assert (memcmp (a.close, b.close, 420 * sizeof (double)) != 0);
    lb_market_destroy (&again);
    size_t lines = 0;
    assert (lb_market_copy_text (m, s_count_emit, &lines) == 0);
    assert (lines == 22 * 420);
    p.bars_per_day = 3;
    assert (lb_market_new (&p) == NULL);
    if (verbose)
        printf ("  %s close[0]=%.4f close[419]=%.4f news=%.0f\n", lb_market_symbol (m, 3),
                a.close [0], a.close [419], news);
    lb_market_destroy (&m);
    lb_market_destroy (&m);
}
