/*  kn_features.h - the 16 engineered features, the rule-based candlestick
    detector and the label, as pure math over arrays (no I/O).

    One symbol's bars are a series of n rows in time order: ts (Unix seconds),
    open O, high H, low L, close C, volume V, optionally news items N and options
    volume P per bar, and market context aligned to the same rows. Feature t uses
    rows <= t only. NaN means "not defined here" (too little history, a missing
    input); it is never replaced by 0. docs/data.md has the same definitions.

     0 body_to_range_ratio  |C-O| / (H-L); 0 when H == L
     1 upper_shadow_ratio   (H - max(O,C)) / (H-L); 0 when H == L
     2 lower_shadow_ratio   (min(O,C) - L) / (H-L); 0 when H == L
     3 volume_surge         V[t] / mean(V[t-20..t-1]); NaN for t < 20 or a zero mean
     4 rsi_14               Wilder's RSI over 14: d = C[i]-C[i-1], gains/losses; the
                            first averages are the plain means over i = 1..14 (RSI at
                            t = 14), then avg = (13 avg + x) / 14; RSI = 100 - 100 /
                            (1 + AG/AL); 100 when AL = 0 < AG; 50 when both are 0.
                            NaN for t < 14
     5 bb_position          (C - (m - 2s)) / (4s) with m, s the mean and population
                            standard deviation (ddof 0) of C[t-19..t]; 0.5 when s = 0;
                            NaN for t < 19
     6 macd_histogram       (macd - signal) / C[t] where macd = EMA12(C) - EMA26(C),
                            signal = EMA9(macd); EMA_n: alpha = 2/(n+1), seeded with the
                            first value (pandas ewm(adjust=False)); NaN for t < 33
     7 adx_strength         Wilder's ADX over 14: TR = max(H-L, |H-C[i-1]|, |L-C[i-1]|),
                            up = H-H[i-1], down = L[i-1]-L, +DM = up if up > down and
                            up > 0 else 0, -DM likewise; Wilder sums start as plain sums
                            over i = 1..14, then S = S - S/14 + x; DI+- = 100 S+-DM/STR
                            (0 when STR = 0); DX = 100 |DI+ - DI-| / (DI+ + DI-) (0 when
                            the sum is 0) from i = 14; ADX at t = 27 is the mean of
                            DX[14..27], then ADX = (13 ADX + DX) / 14; NaN for t < 27
     8 vix_level            the volatility index's close at the row's time
     9 spy_correlation      Pearson correlation of the 1-bar returns C[i]/C[i-1]-1 and
                            the market index's over i = t-19..t; NaN for t < 20 or a
                            zero variance
    10 sector_momentum      the mean over the symbol's sector (itself included) of the
                            20-bar return C[t]/C[t-20]-1 (kn_features_ret20), at the row's
                            time
    11 market_breadth       the fraction of all symbols whose close is above their own
                            20-bar mean (kn_features_above_sma20), at the row's time
    12 news_present         1 if any news item for the symbol falls in the 24 hours
                            (ts-86400, ts], else 0
    13 premarket_gap        O / C[prev] - 1 at the first row of a UTC calendar day,
                            where prev is the last row of an earlier day; carried to the
                            later rows of that day; NaN for the first day
    14 unusual_volume       (V[t] - mean) / sd over V[t-20..t-1] (ddof 0); 0 when sd = 0;
                            NaN for t < 20
    15 options_activity     P[t] / mean(P[t-20..t-1]); NaN for t < 20 or a zero mean
    Context inputs that are absent (NULL) make their feature NaN on every row.

    Detector (at t >= 5; body = |C-O|, range = H-L, upper/lower shadows as
    above, down = C[t-1] < C[t-5], up = C[t-1] > C[t-5]):
      hammer            range > 0, down, lower >= 2 body, upper <= 0.1 range
      bullish_engulfing C[t-1] < O[t-1], C > O, O <= C[t-1], C >= O[t-1]
      doji              range > 0, down, body <= 0.1 range
      piercing          C[t-1] < O[t-1], O[t-1]-C[t-1] >= 0.6 range[t-1], O < C[t-1],
                        (O[t-1]+C[t-1])/2 < C < O[t-1]
      shooting_star     range > 0, up, upper >= 2 body, lower <= 0.1 range
      bearish_engulfing C[t-1] > O[t-1], C < O, O >= C[t-1], C <= O[t-1]
    Rule signal (the baseline): a bullish pattern (the first four) confirmed by
    rsi_14 < KN_RULE_RSI_MAX and volume_surge >= KN_RULE_SURGE_MIN.
    Label: fwd_return = C[t+h]/C[t] - 1; pattern_success = fwd_return > threshold.
*/
#ifndef KN_FEATURES_H_INCLUDED
#define KN_FEATURES_H_INCLUDED

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define KN_FEATURES_COUNT 16

typedef enum {
    KN_F_BODY_TO_RANGE = 0, KN_F_UPPER_SHADOW, KN_F_LOWER_SHADOW, KN_F_VOLUME_SURGE,
    KN_F_RSI_14, KN_F_BB_POSITION, KN_F_MACD_HISTOGRAM, KN_F_ADX_STRENGTH,
    KN_F_VIX_LEVEL, KN_F_SPY_CORRELATION, KN_F_SECTOR_MOMENTUM, KN_F_MARKET_BREADTH,
    KN_F_NEWS_PRESENT, KN_F_PREMARKET_GAP, KN_F_UNUSUAL_VOLUME, KN_F_OPTIONS_ACTIVITY
} kn_feature_t;

//  Bars a feature needs before it is defined (the largest of the above).
#define KN_FEATURES_WARMUP 34

//  Pattern bits.
#define KN_PAT_HAMMER             (1u << 0)
#define KN_PAT_BULLISH_ENGULFING  (1u << 1)
#define KN_PAT_DOJI               (1u << 2)
#define KN_PAT_PIERCING           (1u << 3)
#define KN_PAT_SHOOTING_STAR      (1u << 4)
#define KN_PAT_BEARISH_ENGULFING  (1u << 5)
#define KN_PAT_BULLISH            (KN_PAT_HAMMER | KN_PAT_BULLISH_ENGULFING | KN_PAT_DOJI | KN_PAT_PIERCING)
#define KN_PAT_COUNT              6

#define KN_RULE_RSI_MAX    45.0
#define KN_RULE_SURGE_MIN  1.2

//  One symbol's series. Optional inputs may be NULL.
typedef struct {
    size_t n;
    const int64_t *ts;
    const double *open, *high, *low, *close, *volume;
    const double *news;             //  news items per bar
    const double *options;          //  options volume per bar
    const double *index_close;      //  market index close, same rows
    const double *vix;              //  volatility index close, same rows
    const double *sector_momentum;  //  from kn_features_group_mean over ret20
    const double *breadth;          //  from kn_features_group_mean over above_sma20
} kn_series_t;

//  Returns the name of feature i (0..15), a static string.
const char *kn_features_name (int i);

//  Returns the name of pattern bit index i (0..KN_PAT_COUNT-1), static.
const char *kn_pattern_name (int i);

//  Computes the 16 features of every row into out (n * 16 doubles, row-major).
void kn_features_series (const kn_series_t *s, double *out);

//  Per-symbol inputs of the cross-sectional features: ret20[t] = C[t]/C[t-20]-1
//  (NaN for t < 20) and above[t] = 1 if C[t] > mean(C[t-19..t]) else 0 (NaN
//  for t < 19).
void kn_features_ret20 (const double *close, size_t n, double *ret20);
void kn_features_above_sma20 (const double *close, size_t n, double *above);

//  out[g] = mean of values[i] over i with group[i] == g, ignoring NaN (NaN
//  when a group has no value). group ids are < ngroups. sum and count are
//  scratch arrays of ngroups each.
void kn_features_group_mean (const double *values, const uint32_t *group, size_t n,
                             size_t ngroups, double *sum, double *count, double *out);

//  Pattern bits at every row (0 for t < 5).
void kn_patterns_series (const double *open, const double *high, const double *low,
                         const double *close, size_t n, uint32_t *out);

//  The rule's signal for a row: 1 or 0.
int kn_rule_signal (uint32_t patterns, double rsi_14, double volume_surge);

//  fwd[t] = close[t+h]/close[t] - 1, NaN for the last h rows.
void kn_forward_returns (const double *close, size_t n, size_t h, double *fwd);

#ifdef __cplusplus
}
#endif

#endif
