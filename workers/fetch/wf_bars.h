/*  wf_bars.h - OHLCV bars of many symbols in memory, checked on the way in,
    and the pattern events computed from them (features, detector, label).

    Bars come from PostgreSQL (market_bars, read with COPY), a CSV file or the
    market generator. Each series is one symbol: a stock (with a sector), the
    market index, or the volatility index. Appending checks every value:
    prices finite and > 0, high >= max(open, close), low <= min(open, close),
    volume finite and >= 0, time strictly increasing within a symbol. A
    rejected bar leaves the container unchanged and wf_bars_error says what
    and where ("market_bars: symbol MSFT ts 2026-11-20T14:30:00Z: close is NaN").

    Events: the rows of pattern_training_data and of the pattern dataset. For
    every stock bar t past the features' warm-up whose label horizon lies in
    the data, and (unless all_rows) where the detector finds a bullish
    pattern: the 16 features (kernels/kn_features.h), the pattern bits, the
    rule's signal, fwd_return = C[t+h]/C[t]-1 and pattern_success =
    fwd_return > threshold. Market context (index, VIX) is taken as of the
    bar's time (the last context bar at or before it); cross-sectional context
    (sector momentum, breadth) from the stocks with a bar at the same time.
*/
#ifndef WF_BARS_H_INCLUDED
#define WF_BARS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kn_features.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    WF_BARS_STOCK = 0,
    WF_BARS_INDEX = 1,
    WF_BARS_VOLATILITY = 2
} wf_bars_kind_t;

typedef struct _wf_bars_t wf_bars_t;

typedef struct {
    uint32_t series;            //  which symbol
    int64_t ts;                 //  the pattern bar's time
    int64_t label_ts;           //  the time of bar t+h the label looks at
    double features [KN_FEATURES_COUNT];
    uint32_t patterns;          //  KN_PAT_* bits
    int signal;                 //  the rule's 0/1
    double fwd_return;
    int success;                //  fwd_return > threshold
} wf_bars_event_t;

typedef struct {
    int horizon;                //  bars ahead, >= 1 (default 5)
    double threshold;           //  success when fwd_return > threshold (default 0)
    bool all_rows;              //  every bar, not only bullish patterns
} wf_bars_label_t;

//  Returns a new, empty container.
wf_bars_t *wf_bars_new (void);

//  Destroys it. Accepts NULL; sets *self_p to NULL.
void wf_bars_destroy (wf_bars_t **self_p);

//  Returns the index of symbol's series, adding it (with sector, may be NULL
//  or "", and kind) if new. Returns -1 if symbol is not 1..31 printable
//  characters (wf_bars_error says so).
int wf_bars_series (wf_bars_t *self, const char *symbol, const char *sector, wf_bars_kind_t kind);

//  Appends one bar to series (news, options: NaN when unknown). Returns 0,
//  or -1 with wf_bars_error set (nothing appended).
int wf_bars_append (wf_bars_t *self, int series, int64_t ts, double open, double high,
                    double low, double close, double volume, double news, double options);

//  Bars as whole columns, each array malloc'd with room for max rows.
typedef struct {
    size_t n, max;
    int64_t *ts;
    double *open, *high, *low, *close, *volume, *news, *options;    //  news, options: NaN unknown
} wf_bars_columns_t;

//  Appends cols's n bars (in time order) to series, each checked as
//  wf_bars_append checks one. Takes cols's arrays: an empty series keeps
//  them as they are (no copy), otherwise they are copied and freed; cols
//  comes back zeroed either way. Returns 0, or -1 with wf_bars_error set
//  for the first bad bar (nothing appended).
int wf_bars_append_columns (wf_bars_t *self, int series, wf_bars_columns_t *cols);

//  Frees cols's arrays and zeroes it. Accepts a zeroed cols.
void wf_bars_columns_release (wf_bars_columns_t *cols);

//  The last error, "" when none. Borrowed.
const char *wf_bars_error (wf_bars_t *self);

//  Counts and names.
int wf_bars_nseries (wf_bars_t *self);
size_t wf_bars_count (wf_bars_t *self);                 //  bars in all series
size_t wf_bars_length (wf_bars_t *self, int series);
const char *wf_bars_symbol (wf_bars_t *self, int series);
const char *wf_bars_sector (wf_bars_t *self, int series);
wf_bars_kind_t wf_bars_kind (wf_bars_t *self, int series);
//  The earliest and latest ts of any bar (0, 0 when empty).
void wf_bars_span (wf_bars_t *self, int64_t *first, int64_t *last);

//  Fills series's arrays into s (borrowed; context fields NULL).
void wf_bars_view (wf_bars_t *self, int series, kn_series_t *s);

//  Computes the events (see above) in (ts, symbol) order. Returns 0 and a
//  new array (caller frees) with its count, or -1 with wf_bars_error set
//  (no stock series, horizon < 1).
int wf_bars_events (wf_bars_t *self, const wf_bars_label_t *label, wf_bars_event_t **events,
                    size_t *count);

//  Selftest.
void wf_bars_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
