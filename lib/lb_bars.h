/*  lb_bars.h - OHLCV bars of many symbols in memory, checked on the way in,
    and the pattern events computed from them (features, detector, label).

    Bars come from PostgreSQL (market_bars, read with COPY), a CSV file or the
    market generator. Each series is one symbol: a stock (with a sector), the
    market index, or the volatility index. Appending checks every value:
    prices finite and > 0, high >= max(open, close), low <= min(open, close),
    volume finite and >= 0, time strictly increasing within a symbol. A
    rejected bar leaves the container unchanged and lb_bars_error says what
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
#ifndef LB_BARS_H_INCLUDED
#define LB_BARS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kn_features.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    LB_BARS_STOCK = 0,
    LB_BARS_INDEX = 1,
    LB_BARS_VOLATILITY = 2
} lb_bars_kind_t;

typedef struct _lb_bars_t lb_bars_t;

typedef struct {
    uint32_t series;            //  which symbol
    int64_t ts;                 //  the pattern bar's time
    int64_t label_ts;           //  the time of bar t+h the label looks at
    double features [KN_FEATURES_COUNT];
    uint32_t patterns;          //  KN_PAT_* bits
    int signal;                 //  the rule's 0/1
    double fwd_return;
    int success;                //  fwd_return > threshold
} lb_bars_event_t;

typedef struct {
    int horizon;                //  bars ahead, >= 1 (default 5)
    double threshold;           //  success when fwd_return > threshold (default 0)
    bool all_rows;              //  every bar, not only bullish patterns
} lb_bars_label_t;

//  Returns a new, empty container.
lb_bars_t *lb_bars_new (void);

//  Destroys it. Accepts NULL; sets *self_p to NULL.
void lb_bars_destroy (lb_bars_t **self_p);

//  Returns the index of symbol's series, adding it (with sector, may be NULL
//  or "", and kind) if new. Returns -1 if symbol is not 1..31 printable
//  characters (lb_bars_error says so).
int lb_bars_series (lb_bars_t *self, const char *symbol, const char *sector, lb_bars_kind_t kind);

//  Appends one bar to series (news, options: NaN when unknown). Returns 0,
//  or -1 with lb_bars_error set (nothing appended).
int lb_bars_append (lb_bars_t *self, int series, int64_t ts, double open, double high,
                    double low, double close, double volume, double news, double options);

//  The last error, "" when none. Borrowed.
const char *lb_bars_error (lb_bars_t *self);

//  Counts and names.
int lb_bars_nseries (lb_bars_t *self);
size_t lb_bars_count (lb_bars_t *self);                 //  bars in all series
size_t lb_bars_length (lb_bars_t *self, int series);
const char *lb_bars_symbol (lb_bars_t *self, int series);
const char *lb_bars_sector (lb_bars_t *self, int series);
lb_bars_kind_t lb_bars_kind (lb_bars_t *self, int series);
//  The earliest and latest ts of any bar (0, 0 when empty).
void lb_bars_span (lb_bars_t *self, int64_t *first, int64_t *last);

//  Fills series's arrays into s (borrowed; context fields NULL).
void lb_bars_view (lb_bars_t *self, int series, kn_series_t *s);

//  Computes the events (see above) in (ts, symbol) order. Returns 0 and a
//  new array (caller frees) with its count, or -1 with lb_bars_error set
//  (no stock series, horizon < 1).
int lb_bars_events (lb_bars_t *self, const lb_bars_label_t *label, lb_bars_event_t **events,
                    size_t *count);

//  Selftest.
void lb_bars_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
