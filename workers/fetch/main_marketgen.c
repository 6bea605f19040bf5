/*  main_marketgen.c - bin/marketgen: generate the seeded market and load it.

    bin/marketgen [--db URL] [--seed N] [--symbols N] [--sectors N] [--days N]
                  [--daily] [--horizon N] [--replace] [--no-events]
                  [--events-csv FILE] [--dataset FILE]

    With --db (or DATABASE_URL), writes market_symbols and market_bars with
    COPY, reads the bars back through COPY, computes the pattern events and
    writes pattern_training_data: the tables the fetch worker reads. A market
    already loaded is left alone unless --replace. --events-csv writes the
    events as CSV and --dataset the Catalyst-windowed dataset (for looking at
    the data; the fetch worker builds its own).
*/
#include "wf_bars.h"
#include "lb_clock.h"
#include "lb_dataset.h"
#include "lb_log.h"
#include "lb_market.h"
#include "wf_marketdb.h"
#include "lb_mem.h"
#include "wf_patternset.h"

#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: marketgen [options]\n"
        "  --db URL           PostgreSQL to load (default: $DATABASE_URL; none: generate only)\n"
        "  --seed N           random seed (default 42)\n"
        "  --symbols N        stocks (default 300)\n"
        "  --sectors N        sectors (default 10)\n"
        "  --days N           trading days (default 504)\n"
        "  --daily            one bar a day instead of seven hourly bars\n"
        "  --horizon N        label horizon in bars (default 5)\n"
        "  --replace          replace a market that is already loaded\n"
        "  --no-events        do not fill pattern_training_data\n"
        "  --events-csv FILE  write the pattern events as CSV\n"
        "  --dataset FILE     write the Catalyst-windowed pattern dataset\n"
        "  --bars-csv FILE    write the bars (as stored) as CSV\n"
        "  --features-csv FILE write the features of every bar past the warm-up as CSV,\n"
        "                     and the time taken to compute them on stderr\n"
        "  --read[=N]         only time reading all of market_bars through COPY on N connections\n"
        "  --checksum         with --read: also print a checksum of every bar read\n"
        "                     (default 2) and print rows/s\n"
        "  -v, --verbose      debug logging\n");
}

//  The generated bars as wf_bars, rounded as the database stores them.
static wf_bars_t *
s_bars_from_market (lb_market_t *m)
{
    wf_bars_t *bars = wf_bars_new ();
    const int64_t *ts = lb_market_ts (m);
    for (int i = 0; i < lb_market_series (m); i++) {
        const char *kind = lb_market_kind (m, i);
        int s = wf_bars_series (bars, lb_market_symbol (m, i), lb_market_sector (m, i),
                                strcmp (kind, "index") == 0 ? WF_BARS_INDEX
                              : strcmp (kind, "volatility") == 0 ? WF_BARS_VOLATILITY : WF_BARS_STOCK);
        lb_market_ohlcv_t b;
        lb_market_get (m, i, &b);
        for (size_t k = 0; k < lb_market_bars (m); k++) {
            double o = round (b.open [k] * 1e4) / 1e4, h = round (b.high [k] * 1e4) / 1e4;
            double l = round (b.low [k] * 1e4) / 1e4, c = round (b.close [k] * 1e4) / 1e4;
            if (wf_bars_append (bars, s, ts [k], o, h, l, c, b.volume [k],
                                b.news ? b.news [k] : NAN, b.options ? b.options [k] : NAN)) {
                lb_log_error ("marketgen: %s", wf_bars_error (bars));
                wf_bars_destroy (&bars);
                return NULL;
            }
        }
    }
    return bars;
}

static int
s_write_bars (const char *path, wf_bars_t *bars)
{
    FILE *f = fopen (path, "w");
    if (!f) {
        lb_log_error ("marketgen: cannot write %s", path);
        return -1;
    }
    fprintf (f, "symbol,sector,kind,ts,open,high,low,close,volume,news,options\n");
    static const char *kinds [3] = { "stock", "index", "volatility" };
    for (int i = 0; i < wf_bars_nseries (bars); i++) {
        kn_series_t v;
        wf_bars_view (bars, i, &v);
        for (size_t k = 0; k < v.n; k++) {
            fprintf (f, "%s,%s,%s,%lld,%.17g,%.17g,%.17g,%.17g,%.17g,", wf_bars_symbol (bars, i),
                     wf_bars_sector (bars, i), kinds [wf_bars_kind (bars, i)], (long long) v.ts [k],
                     v.open [k], v.high [k], v.low [k], v.close [k], v.volume [k]);
            if (v.news)
                fprintf (f, "%.17g", v.news [k]);
            fprintf (f, ",");
            if (v.options)
                fprintf (f, "%.17g", v.options [k]);
            fprintf (f, "\n");
        }
    }
    if (fclose (f)) {
        lb_log_error ("marketgen: cannot write %s", path);
        return -1;
    }
    return 0;
}

static int
s_write_csv (const char *path, wf_bars_t *bars, const wf_bars_event_t *ev, size_t n)
{
    FILE *f = fopen (path, "w");
    if (!f) {
        lb_log_error ("marketgen: cannot write %s", path);
        return -1;
    }
    fprintf (f, "symbol,ts,patterns");
    for (int k = 0; k < KN_FEATURES_COUNT; k++)
        fprintf (f, ",%s", kn_features_name (k));
    fprintf (f, ",rule_signal,forward_return,pattern_success\n");
    for (size_t i = 0; i < n; i++) {
        fprintf (f, "%s,%lld,%u", wf_bars_symbol (bars, (int) ev [i].series), (long long) ev [i].ts,
                 ev [i].patterns);
        for (int k = 0; k < KN_FEATURES_COUNT; k++)
            if (isnan (ev [i].features [k]))
                fprintf (f, ",");
            else
                fprintf (f, ",%.17g", ev [i].features [k]);
        fprintf (f, ",%d,%.17g,%d\n", ev [i].signal, ev [i].fwd_return, ev [i].success);
    }
    if (fclose (f)) {
        lb_log_error ("marketgen: cannot write %s", path);
        return -1;
    }
    return 0;
}

//  FNV-1a over every series in order: symbol, then each bar's time and
//  values (bits; NaN for news or options a series does not have): equal
//  for equal bars however they were read.
static uint64_t
s_bars_checksum (wf_bars_t *bars)
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 0; i < wf_bars_nseries (bars); i++) {
        const char *symbol = wf_bars_symbol (bars, i);
        for (const char *c = symbol; *c; c++)
            h = (h ^ (unsigned char) *c) * 1099511628211ull;
        kn_series_t v;
        wf_bars_view (bars, i, &v);
        for (size_t r = 0; r < v.n; r++) {
            uint64_t words [8];
            memcpy (&words [0], &v.ts [r], 8);
            const double *cols [7] = { v.open, v.high, v.low, v.close, v.volume, v.news, v.options };
            for (int k = 0; k < 7; k++) {
                double x = cols [k] ? cols [k][r] : NAN;        //  news, options: NULL when unknown
                memcpy (&words [k + 1], &x, 8);
            }
            for (int k = 0; k < 8; k++)
                for (int b = 0; b < 8; b++)
                    h = (h ^ ((words [k] >> (8 * b)) & 0xff)) * 1099511628211ull;
        }
    }
    return h;
}

int
main (int argc, char **argv)
{
    lb_log_setup ("marketgen", LB_LOG_INFO);
    lb_market_params_t p;
    lb_market_params_default (&p);
    const char *db = getenv ("DATABASE_URL"), *csv = NULL, *dataset = NULL;
    const char *bars_csv = NULL, *features_csv = NULL;
    int horizon = 5;
    bool replace = false, events = true, read_only = false, checksum = false;
    int read_connections = 2;
    static const struct option longopts [] = {
        { "db", required_argument, 0, 'd' }, { "seed", required_argument, 0, 's' },
        { "symbols", required_argument, 0, 'n' }, { "sectors", required_argument, 0, 'S' },
        { "days", required_argument, 0, 'D' }, { "daily", no_argument, 0, '1' },
        { "horizon", required_argument, 0, 'H' }, { "replace", no_argument, 0, 'r' },
        { "no-events", no_argument, 0, 'E' }, { "events-csv", required_argument, 0, 'c' },
        { "dataset", required_argument, 0, 'o' }, { "bars-csv", required_argument, 0, 'b' },
        { "features-csv", required_argument, 0, 'f' }, { "read", optional_argument, 0, 'R' }, { "verbose", no_argument, 0, 'v' },
        { "checksum", no_argument, 0, 'K' },
        { "help", no_argument, 0, 'h' }, { 0, 0, 0, 0 } };
    int c;
    char *end;
    while ((c = getopt_long (argc, argv, "vh", longopts, NULL)) != -1) {
        long v = optarg ? strtol (optarg, &end, 10) : 0;
        bool numeric = optarg && *optarg && *end == 0;
        switch (c) {
            case 'd': db = optarg; break;
            case 's': p.seed = strtoull (optarg, NULL, 10); break;
            case 'n': p.symbols = numeric ? (int) v : -1; break;
            case 'S': p.sectors = numeric ? (int) v : -1; break;
            case 'D': p.days = numeric ? (int) v : -1; break;
            case '1': p.bars_per_day = 1; break;
            case 'H': horizon = numeric ? (int) v : -1; break;
            case 'r': replace = true; break;
            case 'E': events = false; break;
            case 'c': csv = optarg; break;
            case 'o': dataset = optarg; break;
            case 'b': bars_csv = optarg; break;
            case 'f': features_csv = optarg; break;
            case 'R':
                read_only = true;
                if (optarg)
                    read_connections = numeric && v >= 1 && v <= 64 ? (int) v : 1;
                break;
            case 'v': lb_log_set_level (LB_LOG_DEBUG); break;
            case 'K': checksum = true; break;
            case 'h': s_usage (stdout); return 0;
            default: s_usage (stderr); return 2;
        }
    }
    if (optind < argc || horizon < 1 || horizon > 1000) {
        s_usage (stderr);
        return 2;
    }
    if (read_only) {
        char *why = NULL;
        bool retry;
        int64_t t0 = lb_clock_mono_us ();
        wf_bars_t *all = wf_marketdb_read_bars_parallel (db ? db : "", read_connections, INT64_MIN, INT64_MAX,
                                                         &why, &retry);
        double secs = (double) (lb_clock_mono_us () - t0) / 1e6;
        if (!all) {
            lb_log_error ("marketgen: %s", why);
            free (why);
            return 1;
        }
        printf ("read %zu bars of %d symbols through binary COPY on %d connections in %.3f s: %.0f rows/s\n",
                wf_bars_count (all), wf_bars_nseries (all), read_connections, secs,
                (double) wf_bars_count (all) / secs);
        if (checksum)
            printf ("bars checksum %016llx\n", (unsigned long long) s_bars_checksum (all));
        wf_bars_destroy (&all);
        return 0;
    }
    lb_market_t *m = lb_market_new (&p);
    if (!m)
        return 2;
    int rc = 1;
    PGconn *conn = NULL;
    wf_bars_t *bars = NULL;
    wf_bars_event_t *ev = NULL;
    size_t n = 0;
    char *error = NULL;
    if (db && *db) {
        conn = PQconnectdb (db);
        if (PQstatus (conn) != CONNECTION_OK) {
            lb_log_error ("marketgen: cannot connect: %s", PQerrorMessage (conn));
            goto out;
        }
        PQclear (PQexec (conn, "set client_min_messages to warning"));
        size_t loaded;
        if (wf_marketdb_load_market (conn, m, replace, &loaded, &error)) {
            lb_log_error ("marketgen: %s", error);
            goto out;
        }
        if (loaded == 0 && events) {
            lb_log_info ("marketgen: market (seed %llu) already loaded; --replace reloads it",
                         (unsigned long long) p.seed);
            events = csv || dataset || bars_csv || features_csv;
        }
        else
            lb_log_info ("marketgen: loaded %zu bars of %d series", loaded, lb_market_series (m));
        if (events) {
            bool retry;
            bars = wf_marketdb_read_bars (conn, INT64_MIN, INT64_MAX, NULL, &error, &retry);
            if (!bars) {
                lb_log_error ("marketgen: %s", error);
                goto out;
            }
        }
    }
    else
    if (events && (csv || dataset || bars_csv || features_csv))
        bars = s_bars_from_market (m);
    if (bars && bars_csv && s_write_bars (bars_csv, bars))
        goto out;
    if (bars && features_csv) {
        wf_bars_label_t all = { horizon, 0, true };
        wf_bars_event_t *rows;
        size_t nrows;
        int64_t t0 = lb_clock_mono_us ();
        if (wf_bars_events (bars, &all, &rows, &nrows)) {
            lb_log_error ("marketgen: %s", wf_bars_error (bars));
            goto out;
        }
        double secs = (double) (lb_clock_mono_us () - t0) / 1e6;
        fprintf (stderr, "features: %zu bars in %zu series, %zu rows out, %.3f s, %.0f bars/s\n",
                 wf_bars_count (bars), (size_t) wf_bars_nseries (bars), nrows, secs,
                 (double) wf_bars_count (bars) / secs);
        int written = s_write_csv (features_csv, bars, rows, nrows);
        free (rows);
        if (written)
            goto out;
    }
    if (bars) {
        wf_bars_label_t label = { horizon, 0, false };
        if (wf_bars_events (bars, &label, &ev, &n)) {
            lb_log_error ("marketgen: %s", wf_bars_error (bars));
            goto out;
        }
        size_t signals = 0, hits = 0, wins = 0;
        for (size_t i = 0; i < n; i++) {
            signals += ev [i].signal;
            hits += ev [i].signal == ev [i].success;
            wins += ev [i].success;
        }
        lb_log_info ("marketgen: %zu pattern events; success rate %.3f; rule signals %zu, rule accuracy %.3f",
                     n, n ? (double) wins / n : 0, signals, n ? (double) hits / n : 0);
        if (conn && wf_marketdb_store_events (conn, bars, ev, n, horizon, &error)) {
            lb_log_error ("marketgen: %s", error);
            goto out;
        }
        if (csv && s_write_csv (csv, bars, ev, n))
            goto out;
        if (dataset) {
            wf_patternset_opts_t o;
            wf_patternset_opts_default (&o);
            o.meta = "{\"source\":\"marketgen\"}";
            lb_dataset_t *ds = wf_patternset_build (bars, ev, n, &o, &error);
            if (!ds) {
                lb_log_error ("marketgen: %s", error);
                goto out;
            }
            int saved = lb_dataset_save (ds, dataset, NULL);
            lb_dataset_destroy (&ds);
            if (saved)
                goto out;
        }
    }
    rc = 0;
out:
    free (error);
    free (ev);
    wf_bars_destroy (&bars);
    if (conn)
        PQfinish (conn);
    lb_market_destroy (&m);
    return rc;
}
