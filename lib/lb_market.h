/*  lb_market.h - a deterministic, seeded market for the embedded default.

    Generates hourly (or daily) OHLCV bars for hundreds of symbols in sectors,
    a market index ("SPY") and a volatility index ("VIX"), with calm and
    volatile regimes, overnight gaps, news events with volume spikes, options
    volume, and weak but real relationships between what the 16 features can
    see and what prices do next:
      - every price has a transient, mean-reverting part (oversold names tend to
        recover; stronger in the volatile regime, which VIX shows), and intrabar
        selling in an oversold name leaves a longer lower shadow;
      - sectors have slowly changing drifts (sector momentum persists);
      - news moves a price and the move continues for a few bars (news_present
        and the candle's direction), with a volume spike;
      - unusual options volume comes before good news more often than not;
      - part of each overnight gap is transient and fills.
    The same parameters always give the same bytes (splitmix64/xoshiro256**,
    no libc random). docs/data.md describes the model and its knobs.
*/
#ifndef LB_MARKET_H_INCLUDED
#define LB_MARKET_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint64_t seed;          //  default 42
    int symbols;            //  stocks, default 300 (1..5000)
    int sectors;            //  default 10 (1..100)
    int days;               //  trading days (Mon-Fri), default 504 (about two years)
    int bars_per_day;       //  7 hourly bars (14:30..20:30 UTC) or 1 daily bar (20:00 UTC)
    int64_t end_day;        //  Unix day (ts / 86400) of the last trading day, default
                            //  2026-11-20 (a Friday); moved back to a weekday if needed
} lb_market_params_t;

typedef struct _lb_market_t lb_market_t;

//  Fills p with the defaults above.
void lb_market_params_default (lb_market_params_t *p);

//  Generates the market. Returns it, or NULL after logging a parameter out
//  of range.
lb_market_t *lb_market_new (const lb_market_params_t *p);

//  Destroys the market. Accepts NULL; sets *self_p to NULL.
void lb_market_destroy (lb_market_t **self_p);

//  Number of bars per series (days * bars_per_day), and their timestamps
//  (Unix seconds, bar start, shared by every series). Borrowed.
size_t lb_market_bars (lb_market_t *self);
const int64_t *lb_market_ts (lb_market_t *self);

//  Number of series: the stocks, then the index (lb_market_series - 2) and
//  VIX (lb_market_series - 1).
int lb_market_series (lb_market_t *self);

//  Series i's symbol, sector name ("" for index and VIX) and kind ("stock",
//  "index", "volatility"). Borrowed.
const char *lb_market_symbol (lb_market_t *self, int i);
const char *lb_market_sector (lb_market_t *self, int i);
const char *lb_market_kind (lb_market_t *self, int i);

//  Series i's columns (bars values each). news and options are NULL for the
//  index and VIX. Borrowed.
typedef struct {
    const double *open, *high, *low, *close, *volume;
    const double *news;         //  news items in the bar (0, 1, ...)
    const double *options;      //  options volume
} lb_market_ohlcv_t;
void lb_market_get (lb_market_t *self, int i, lb_market_ohlcv_t *out);

//  Writes every bar as PostgreSQL COPY text rows
//  "symbol\tts\topen\thigh\tlow\tclose\tvolume\tnews_count\toptions_volume\n"
//  (ts as ISO 8601 UTC, \N for absent), calling emit with chunks of at most
//  about 1 MiB. Returns 0, or the first non-zero value emit returned.
int lb_market_copy_text (lb_market_t *self, int (*emit) (void *arg, const char *buf, size_t len),
                         void *arg);

//  Selftest.
void lb_market_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
