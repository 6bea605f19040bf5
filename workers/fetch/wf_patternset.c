/*  wf_patternset.c - events into a time-split dataset (see wf_patternset.h). */
#include "wf_patternset.h"
#include "lb_clock.h"
#include "lb_log.h"
#include "lb_mem.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void
wf_patternset_opts_default (wf_patternset_opts_t *opts)
{
    assert (opts);
    memset (opts, 0, sizeof *opts);
    opts->train_s = 2160 * 3600;
    opts->valid_s = 168 * 3600;
    opts->test_s = 168 * 3600;
    opts->min_train_rows = 50;
}

//  ts (Unix seconds) as ISO 8601 UTC. Returns buf.
static char *
s_iso (int64_t ts, char *buf, size_t size)
{
    return lb_clock_format_iso (ts * 1000000, buf, size);
}

lb_dataset_t *
wf_patternset_build (wf_bars_t *names, const wf_bars_event_t *ev, size_t n,
                     const wf_patternset_opts_t *opts, char **error_p)
{
    assert (names && (ev || n == 0) && opts && error_p);
    *error_p = NULL;
    if (n == 0) {
        *error_p = lb_xstrdup ("no pattern events in the data: too few rows for the windows");
        return NULL;
    }
    int64_t span = 0;
    for (size_t i = 0; i < n; i++) {
        if (i && ev [i].ts < ev [i - 1].ts) {
            *error_p = lb_xasprintf ("events are not in time order at %zu", i);
            return NULL;
        }
        if (ev [i].label_ts < ev [i].ts) {
            *error_p = lb_xasprintf ("event %zu: label time before the event", i);
            return NULL;
        }
        if (ev [i].label_ts - ev [i].ts > span)
            span = ev [i].label_ts - ev [i].ts;
    }
    int64_t embargo = opts->embargo_s > span ? opts->embargo_s : span;
    int64_t end = opts->end_ts ? opts->end_ts : ev [n - 1].ts + 1;
    lb_dataset_windows_t w;
    lb_dataset_windows_back (end, opts->train_s, opts->valid_s, opts->test_s, embargo, &w);
    static const char *split_names [3] = { "train", "validation", "test" };
    for (int s = 0; s < 3; s++) {
        size_t rows = 0;
        for (size_t i = 0; i < n; i++)
            rows += ev [i].ts >= w.from [s] && ev [i].ts < w.to [s];
        if ((rows == 0 && (s < 2 || w.from [s] < w.to [s]))
        ||  (s == 0 && rows < opts->min_train_rows)) {
            char a [32], b [32], c [32], d [32];
            *error_p = lb_xasprintf ("too few rows for the windows: the %s window %s..%s has %zu "
                                     "events (%zu events span %s..%s)", split_names [s],
                                     s_iso (w.from [s], a, sizeof a), s_iso (w.to [s], b, sizeof b),
                                     rows, n, s_iso (ev [0].ts, c, sizeof c), s_iso (ev [n - 1].ts, d, sizeof d));
            return NULL;
        }
    }
    const char *cols [KN_FEATURES_COUNT];
    lb_dataset_coltype_t types [KN_FEATURES_COUNT];
    for (int k = 0; k < KN_FEATURES_COUNT; k++) {
        cols [k] = kn_features_name (k);
        types [k] = k == KN_F_NEWS_PRESENT ? LB_DATASET_FLAG : LB_DATASET_NUMERIC;
    }
    lb_dataset_t *ds = lb_dataset_new (LB_DATASET_BINARY, 2, "pattern_success", KN_FEATURES_COUNT,
                                       cols, types);
    int rc = lb_dataset_set_horizon (ds, span, embargo);
    assert (rc == 0);
    if (opts->meta)
        lb_dataset_set_meta (ds, opts->meta);
    uint32_t *ids = lb_xmalloc ((size_t) (wf_bars_nseries (names) + 1) * sizeof (uint32_t));
    for (int i = 0; i < wf_bars_nseries (names); i++)
        ids [i] = UINT32_MAX;
    for (size_t i = 0; i < n; i++) {
        //  Only rows inside a window go in: the rest would be dead weight.
        bool inside = false;
        for (int s = 0; s < 3; s++)
            inside |= ev [i].ts >= w.from [s] && ev [i].ts < w.to [s];
        if (!inside)
            continue;
        uint32_t series = ev [i].series;
        assert ((int) series < wf_bars_nseries (names));
        if (ids [series] == UINT32_MAX)
            ids [series] = lb_dataset_entity (ds, wf_bars_symbol (names, (int) series));
        float x [KN_FEATURES_COUNT];
        for (int k = 0; k < KN_FEATURES_COUNT; k++)
            x [k] = isfinite (ev [i].features [k]) ? (float) ev [i].features [k] : NAN;
        if (lb_dataset_append (ds, ev [i].ts, ids [series], x, ev [i].success ? 1.0f : 0.0f,
                               ev [i].signal ? 1.0f : 0.0f, (float) ev [i].fwd_return)) {
            *error_p = lb_xasprintf ("event %zu (symbol %s): a value does not fit the dataset", i,
                                     wf_bars_symbol (names, (int) series));
            free (ids);
            lb_dataset_destroy (&ds);
            return NULL;
        }
    }
    free (ids);
    if (lb_dataset_split_windows (ds, &w)) {
        *error_p = lb_xstrdup ("the windows do not split the data (see the log)");
        lb_dataset_destroy (&ds);
    }
    return ds;
}

void
wf_patternset_test (bool verbose)
{
    int log_fd = verbose ? -2 : lb_log_setup_fd (-1);     //  expected errors stay quiet
    //  Two symbols, hourly events over 120 days; label span 3 h except a
    //  weekend-long one.
    wf_bars_t *names = wf_bars_new ();
    assert (wf_bars_series (names, "AAA", "", WF_BARS_STOCK) == 0);
    assert (wf_bars_series (names, "BBB", "", WF_BARS_STOCK) == 1);
    size_t n = 120 * 24 * 2;
    wf_bars_event_t *ev = lb_xcalloc (n, sizeof (wf_bars_event_t));
    int64_t t0 = 1750000000;
    for (size_t i = 0; i < n; i++) {
        ev [i].series = (uint32_t) (i % 2);
        ev [i].ts = t0 + (int64_t) (i / 2) * 3600;
        ev [i].label_ts = ev [i].ts + (i == 100 ? 60 * 3600 : 3 * 3600);
        for (int k = 0; k < KN_FEATURES_COUNT; k++)
            ev [i].features [k] = k == 3 && i % 5 == 0 ? NAN : (double) (i % 7);
        ev [i].signal = i % 3 == 0;
        ev [i].fwd_return = 0.01 * ((double) (i % 11) - 5);
        ev [i].success = ev [i].fwd_return > 0;
    }
    wf_patternset_opts_t o;
    wf_patternset_opts_default (&o);
    o.meta = "{\"task\":\"test\"}";
    char *error = NULL;
    lb_dataset_t *ds = wf_patternset_build (names, ev, n, &o, &error);
    assert (ds && !error);
    assert (lb_dataset_embargo (ds) == 60 * 3600 && lb_dataset_horizon (ds) == 60 * 3600);
    size_t b [3], e [3];
    for (int s = 0; s < 3; s++)
        lb_dataset_split ((lb_dataset_t *) ds, (lb_dataset_split_t) s, &b [s], &e [s]);
    const int64_t *ts = lb_dataset_ts (ds);
    assert (e [2] == lb_dataset_rows (ds));
    assert (e [2] - b [2] == 168 * 2 && e [1] - b [1] == 168 * 2 && e [0] - b [0] == 2160 * 2);
    assert (ts [b [1]] - ts [e [0] - 1] >= 60 * 3600 && ts [b [2]] - ts [e [1] - 1] >= 60 * 3600);
    //  Training labels never reach validation time.
    assert (ts [e [0] - 1] + 60 * 3600 <= ts [b [1]]);
    assert (isnan (lb_dataset_x (ds) [3]) || !isnan (lb_dataset_x (ds) [3]));
    assert (strcmp (lb_dataset_column (ds, KN_F_RSI_14), "rsi_14") == 0);
    assert (strcmp (lb_dataset_label (ds), "pattern_success") == 0);
    uint8_t *data;
    size_t size;
    assert (lb_dataset_encode (ds, &data, &size) == 0);
    char why [256];
    lb_dataset_t *back = lb_dataset_decode (data, size, why, sizeof why);
    assert (back && lb_dataset_rows (back) == lb_dataset_rows (ds));
    lb_dataset_destroy (&back);
    free (data);
    lb_dataset_destroy (&ds);
    //  Too little data for the windows: a clear error.
    o.end_ts = ev [n - 1].ts + 1000 * 3600;        //  windows after the data
    ds = wf_patternset_build (names, ev, n, &o, &error);
    assert (!ds && strstr (error, "too few rows"));
    if (verbose)
        printf ("  %s\n", error);
    free (error);
    ds = wf_patternset_build (names, ev, 0, &o, &error);
    assert (!ds && strstr (error, "too few rows"));
    free (error);
    free (ev);
    wf_bars_destroy (&names);
    if (log_fd != -2)
        lb_log_setup_fd (log_fd);
}
