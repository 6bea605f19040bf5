/*  wd_catalog.c - the built-in catalog of task specs (see wd_catalog.h). */
#include "wd_catalog.h"
#include "lb_mem.h"

#include <assert.h>
#include <ctype.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_VEGA  "debian:python3-vega-datasets:/usr/lib/python3/dist-packages/vega_datasets/_data/"
#define S_SM    "debian:python3-statsmodels:/usr/lib/python3/dist-packages/statsmodels/datasets/"
#define S_MAX_VARIANTS 32

//  A data set. Feature strings use "{t}" for the time column. A feature
//  set is "sentence|feature;feature;...".
typedef struct {
    const char *key;
    const char *about;          //  a sentence about the data ({v}: the variant)
    const char *uri;
    const char *format;
    const char *delimiter;      //  NULL: ","
    const char *columns;        //  comma list, file order
    const char *time_column;    //  NULL: file order
    const char *where_column;   //  NULL, or one variant per value of this column
    const char *variants;       //  comma list; "@symbols": discover.symbols
    int64_t size;
    const char *unit;           //  "day", "month", ...
    const char *sets [4];
} s_dataset_t;

typedef struct {
    const char *dataset;
    const char *column;
    const char *desc;           //  "the closing price"
    pr_target_kind_t kind;
    double threshold;
    const char *what;           //  class/threshold: what is predicted (else derived from kind)
    bool multiclass;
    int horizons [10];          //  ended by -1
} s_target_t;

static const char *s_ohlcv_sets [4] = {
    "Momentum inputs: returns over one, five and twenty rows, the gap to a twenty-row average and a "
    "fourteen-row RSI capture trend persistence and exhaustion|ret(close,1);ret(close,5);ret(close,20);"
    "sma_ratio(close,20);rsi(close,14)",
    "Volatility inputs: realised volatility over five and twenty rows, the high-low spread, the position "
    "within the recent range and a z-score describe how stretched and how nervous the price is|vol(close,5);"
    "vol(close,20);spread(high,low);range_pos(close,20);zscore(close,20)",
    "Volume inputs: abnormal volume, its change and its ratio to the average, next to the latest return and "
    "the candle body, test whether participation leads price|zscore(volume,20);ret(volume,1);"
    "sma_ratio(volume,20);ret(close,1);spread(close,open)",
    "Calendar inputs: the weekday and the month, with a fast exponential average gap, ten-row volatility "
    "and a three-row return, look for seasonality in otherwise plain price action|dow({t});month({t});"
    "ema_ratio(close,10);vol(close,10);ret(close,3)",
};

static const s_dataset_t s_datasets [] = {
    { "seattle", "Daily Seattle weather from 2012 to 2015 (precipitation, temperatures, wind and a weather "
      "label, as shipped in python3-vega-datasets) is a small, clean and strongly seasonal series",
      S_VEGA "seattle-weather.csv", "csv", NULL, "date,precipitation,temp_max,temp_min,wind,weather", "date",
      NULL, NULL, 47838, "day",
      { "Raw inputs: the day's precipitation, both temperatures, the wind and the month are the plain "
        "persistence baseline any forecaster starts from|precipitation;temp_max;temp_min;wind;month({t})",
        "Change inputs: day-over-day temperature changes, wind against its weekly mean, a rain anomaly and the "
        "day of the year emphasise fronts passing through|diff(temp_max,1);diff(temp_min,1);sma_ratio(wind,7);"
        "zscore(precipitation,14);dayofyear({t})",
        "Lag inputs: yesterday's and last week's maximum temperature, the last two days of rain and a wind "
        "anomaly measure how long weather regimes persist|lag(temp_max,1);lag(temp_max,7);lag(precipitation,1);"
        "lag(precipitation,2);zscore(wind,7)",
        "Range inputs: where today's temperatures sit within the past month's range, a monthly temperature "
        "z-score, today's rain and the weekday describe unusual days|range_pos(temp_max,30);"
        "range_pos(temp_min,30);zscore(temp_max,30);precipitation;dow({t})" } },
    { "msft", "Microsoft's daily open, high, low, close and volume for one year from September 2000 (msft.csv "
      "in r-cran-timeseries) covers the end of the dot-com crash",
      "debian:r-cran-timeseries:/usr/lib/R/site-library/timeSeries/extdata/msft.csv", "csv", ";",
      "date,open,high,low,close,volume", "date", NULL, NULL, 11212, "trading day",
      { NULL, NULL, NULL, NULL } },
    { "stocks", "Monthly prices of {v} from 2000 to 2010 (stocks.csv in python3-vega-datasets) span two "
      "bubbles and a financial crisis",
      S_VEGA "stocks.csv", "csv", NULL, "symbol,date,price", "date", "symbol", "MSFT,AMZN,IBM,AAPL",
      12245, "month",
      { "Momentum inputs: one-, three- and twelve-month returns and the gap to a half-year average test "
        "the classic cross-sectional momentum effect in a single name|ret(price,1);ret(price,3);"
        "ret(price,12);sma_ratio(price,6)",
        "Risk inputs: six- and twelve-month realised volatility, a yearly z-score and the position in the "
        "yearly range measure how far the price has run|vol(price,6);vol(price,12);zscore(price,12);"
        "range_pos(price,12)",
        "Oscillator inputs: a six-month RSI, the gap to a three-month exponential average, the last monthly "
        "change and the calendar month look for overreaction|rsi(price,6);ema_ratio(price,3);diff(price,1);"
        "month({t})",
        "Level inputs: the last two monthly prices, the half-year log return and a two-year z-score let "
        "the model find mean reversion on its own|lag(price,1);lag(price,2);logret(price,6);zscore(price,24)" } },
    { "macro", "Quarterly US macroeconomic data from 1959 to 2009 (macrodata.csv in python3-statsmodels: "
      "output, consumption, investment, prices, money, rates, unemployment) is the textbook business-cycle "
      "panel",
      S_SM "macrodata/macrodata.csv", "csv", NULL,
      "year,quarter,realgdp,realcons,realinv,realgovt,realdpi,cpi,m1,tbilrate,unemp,pop,infl,realint", NULL,
      NULL, NULL, 17829, "quarter",
      { "Growth inputs: quarterly growth of output, consumption and investment, the change in unemployment "
        "and the bill rate read the cycle from activity|ret(realgdp,1);ret(realcons,1);ret(realinv,1);"
        "diff(unemp,1);tbilrate",
        "Monetary inputs: inflation, the real rate, yearly money and price growth and the change in the bill "
        "rate read the cycle from policy|infl;realint;ret(m1,4);ret(cpi,4);diff(tbilrate,1)",
        "Cyclical inputs: the two-year z-score of unemployment, output against its two-year average, income "
        "and government spending growth and the quarter locate the economy in its cycle|zscore(unemp,8);"
        "sma_ratio(realgdp,8);ret(realdpi,4);ret(realgovt,4);quarter",
        "Persistence inputs: unemployment one and four quarters ago, last quarter's inflation and yearly "
        "population and investment growth form a slow-moving baseline|lag(unemp,1);lag(unemp,4);lag(infl,1);"
        "ret(pop,4);ret(realinv,4)" } },
    { "co2", "Weekly atmospheric CO2 at Mauna Loa from 1958 to 2001 (co2.csv in python3-statsmodels) is a "
      "trend with a strong yearly cycle and some gaps",
      S_SM "co2/co2.csv", "csv", NULL, "date,co2", "date", NULL, NULL, 33974, "week",
      { "Difference inputs: one-, four- and fifty-two-week differences and the month separate the trend "
        "from the seasonal swing|diff(co2,1);diff(co2,4);diff(co2,52);month({t})",
        "Position inputs: a quarterly z-score, the gap to the yearly average, the half-year range position "
        "and the day of the year place each week in the annual cycle|zscore(co2,13);sma_ratio(co2,52);"
        "range_pos(co2,26);dayofyear({t})",
        "Lag inputs: last week's and last year's reading, the quarterly return and an eight-week exponential "
        "gap are what a seasonal naive forecast would use|lag(co2,1);lag(co2,52);ret(co2,13);ema_ratio(co2,8)",
        NULL } },
    { "sunspots", "Yearly sunspot activity from 1700 to 2008 (sunspots.csv in python3-statsmodels) follows "
      "the roughly eleven-year solar cycle with irregular amplitude",
      S_SM "sunspots/sunspots.csv", "csv", NULL, "year,sunactivity", NULL, NULL, NULL, 2944, "year",
      { "Cycle-lag inputs: activity one, two and eleven years back and the last change encode the solar "
        "cycle directly|lag(sunactivity,1);lag(sunactivity,2);lag(sunactivity,11);diff(sunactivity,1)",
        "Phase inputs: activity against its eleven-year mean, a twenty-two-year z-score, the position in "
        "the last cycle's range and the five-year change estimate the cycle's phase|sma_ratio(sunactivity,11);"
        "zscore(sunactivity,22);range_pos(sunactivity,11);diff(sunactivity,5)",
        "Smoothed inputs: a five-year exponential gap, an eleven-year z-score and the readings five and ten "
        "years back give a half-cycle view|ema_ratio(sunactivity,5);zscore(sunactivity,11);lag(sunactivity,5);"
        "lag(sunactivity,10)",
        NULL } },
    { "nile", "Yearly Nile flow at Aswan from 1871 to 1970 (nile.csv in python3-statsmodels) holds a famous "
      "structural break after 1898",
      S_SM "nile/nile.csv", "csv", NULL, "year,volume", NULL, NULL, NULL, 942, "year",
      { "Lag inputs: the last two years' flow, the last change and the flow against its decade mean|"
        "lag(volume,1);lag(volume,2);diff(volume,1);sma_ratio(volume,10)",
        "Regime inputs: a decade z-score, the position in the twenty-year range, a five-year exponential "
        "gap and the three-year return look for the break|zscore(volume,10);range_pos(volume,20);"
        "ema_ratio(volume,5);ret(volume,3)",
        NULL, NULL } },
    { "employment", "Monthly US employment by industry from 2006 to 2015 (us-employment.csv in "
      "python3-vega-datasets) covers the great recession and its recovery",
      S_VEGA "us-employment.csv", "csv", NULL,
      "month,nonfarm,private,goods_producing,service_providing,private_service_providing,mining_and_logging,"
      "construction,manufacturing,durable_goods,nondurable_goods,trade_transportation_utilties,"
      "wholesale_trade,retail_trade,transportation_and_warehousing,utilities,information,financial_activities,"
      "professional_and_business_services,education_and_health_services,leisure_and_hospitality,"
      "other_services,government,nonfarm_change", "month", NULL, NULL, 17841, "month",
      { "Headline inputs: monthly growth of total, manufacturing, construction and government jobs and the "
        "calendar month|ret(nonfarm,1);ret(manufacturing,1);ret(construction,1);ret(government,1);month({t})",
        "Momentum inputs: the last payroll change, its half-year z-score and quarterly growth in retail and "
        "hospitality jobs|nonfarm_change;zscore(nonfarm_change,6);ret(retail_trade,3);"
        "ret(leisure_and_hospitality,3)",
        "Goods inputs: quarterly growth of durable and nondurable goods, wholesale and transport jobs, and "
        "finance|ret(durable_goods,3);ret(nondurable_goods,3);ret(wholesale_trade,3);"
        "ret(transportation_and_warehousing,3);ret(financial_activities,3)",
        "Services inputs: private and goods-producing jobs against their half-year averages and half-year "
        "growth of business, health and information services|sma_ratio(private,6);sma_ratio(goods_producing,6);"
        "ret(professional_and_business_services,6);ret(education_and_health_services,6);ret(information,6)" } },
    { "bars", "Hourly bars of {v} from the market tables the fetch worker fills (open, high, low, close, "
      "volume, news and options counts)",
      "pg:market_bars", "table", NULL, "symbol,ts,open,high,low,close,volume,news_count,options_volume", "ts",
      "symbol", "@symbols", 64 << 20, "hourly bar", { NULL, NULL, NULL, NULL } },
    { "patterns", "The pattern training table (the sixteen engineered candlestick, technical and market-context "
      "features per bar, with each bar's forward return and pattern success label) is what the Catalyst "
      "rule-based detector is judged on",
      "pg:pattern_training_data", "table", NULL,
      "symbol,ts,body_to_range_ratio,upper_shadow_ratio,lower_shadow_ratio,volume_surge,rsi_14,bb_position,"
      "macd_histogram,adx_strength,vix_level,spy_correlation,sector_momentum,market_breadth,news_present,"
      "premarket_gap,unusual_volume,options_activity,pattern_success,fwd_return", "ts", NULL, NULL, 256 << 20,
      "bar",
      { "Candle inputs: body and shadow ratios with volume surge and RSI, the shape of the bar itself|"
        "body_to_range_ratio;upper_shadow_ratio;lower_shadow_ratio;volume_surge;rsi_14",
        "Context inputs: VIX, correlation with the index, sector momentum, market breadth and the Bollinger "
        "position, the market around the bar|vix_level;spy_correlation;sector_momentum;market_breadth;"
        "bb_position",
        "Catalyst inputs: news, the premarket gap, unusual volume and options activity with MACD and ADX, the "
        "events behind the bar|news_present;premarket_gap;unusual_volume;options_activity;macd_histogram;"
        "adx_strength",
        NULL } },
};

static const s_target_t s_targets [] = {
    { "seattle", "weather", "the weather label", PR_TARGET_CLASS, 0,
      "which of drizzle, rain, sun, snow or fog the weather label says", true, { 1, 2, 3, 7, 14, -1 } },
    { "seattle", "precipitation", "precipitation", PR_TARGET_THRESHOLD, 0, "whether any rain falls", false,
      { 1, 2, 3, 5, 7, 14, -1 } },
    { "seattle", "precipitation", "precipitation", PR_TARGET_THRESHOLD, 10, "whether a heavy rain day (over "
      "10 mm) comes", false, { 1, 3, 7, -1 } },
    { "seattle", "temp_max", "the daily high temperature", PR_TARGET_DIRECTION, 0, NULL, false,
      { 1, 2, 3, 5, 7, 14, -1 } },
    { "seattle", "temp_max", "the daily high temperature", PR_TARGET_VALUE, 0, NULL, false, { 1, 3, 7, -1 } },
    { "seattle", "temp_max", "the daily high temperature", PR_TARGET_THRESHOLD, 25, "whether a hot day (a high "
      "over 25 C) comes", false, { 1, 2, 3, -1 } },
    { "seattle", "precipitation", "precipitation", PR_TARGET_VALUE, 0, NULL, false, { 1, -1 } },
    { "seattle", "temp_min", "the daily low temperature", PR_TARGET_DIRECTION, 0, NULL, false, { 1, 3, 7, -1 } },
    { "seattle", "temp_min", "the daily low temperature", PR_TARGET_VALUE, 0, NULL, false, { 1, 5, -1 } },
    { "seattle", "wind", "the wind speed", PR_TARGET_DIRECTION, 0, NULL, false, { 1, 2, 3, -1 } },
    { "seattle", "wind", "the wind speed", PR_TARGET_THRESHOLD, 5, "whether a windy day (over 5 m/s) comes",
      false, { 1, 2, -1 } },
    { "msft", "close", "the closing price", PR_TARGET_DIRECTION, 0, NULL, false, { 1, 2, 3, 5, 10, 15, 20, -1 } },
    { "msft", "close", "the closing price", PR_TARGET_RETURN, 0, NULL, false, { 1, 2, 5, 10, 20, -1 } },
    { "msft", "close", "the closing price", PR_TARGET_VOLATILITY, 0, NULL, false, { 5, 10, 20, -1 } },
    { "msft", "close", "the closing price", PR_TARGET_VOL_REGIME, 0, NULL, false, { 5, 10, 20, -1 } },
    { "msft", "volume", "the traded volume", PR_TARGET_DIRECTION, 0, NULL, false, { 1, 5, -1 } },
    { "stocks", "price", "the monthly price", PR_TARGET_DIRECTION, 0, NULL, false, { 1, 2, 3, 6, 12, -1 } },
    { "stocks", "price", "the monthly price", PR_TARGET_RETURN, 0, NULL, false, { 1, 3, 6, 12, -1 } },
    { "stocks", "price", "the monthly price", PR_TARGET_VOL_REGIME, 0, NULL, false, { 3, 6, 12, -1 } },
    { "macro", "unemp", "the unemployment rate", PR_TARGET_DIRECTION, 0, NULL, false, { 1, 2, 4, 8, -1 } },
    { "macro", "realgdp", "real GDP", PR_TARGET_RETURN, 0, NULL, false, { 1, 4, 8, -1 } },
    { "macro", "infl", "inflation", PR_TARGET_THRESHOLD, 3, "whether inflation runs above 3 percent", false,
      { 1, 2, 4, -1 } },
    { "macro", "tbilrate", "the Treasury bill rate", PR_TARGET_DIRECTION, 0, NULL, false, { 1, 2, 4, -1 } },
    { "macro", "realinv", "real investment", PR_TARGET_DIRECTION, 0, NULL, false, { 1, 4, -1 } },
    { "macro", "cpi", "the consumer price index", PR_TARGET_RETURN, 0, NULL, false, { 4, 8, -1 } },
    { "macro", "realcons", "real consumption", PR_TARGET_RETURN, 0, NULL, false, { 1, 4, -1 } },
    { "co2", "co2", "the CO2 concentration", PR_TARGET_DIRECTION, 0, NULL, false, { 1, 4, 13, 26, -1 } },
    { "co2", "co2", "the CO2 concentration", PR_TARGET_RETURN, 0, NULL, false, { 4, 13, 52, -1 } },
    { "sunspots", "sunactivity", "sunspot activity", PR_TARGET_DIRECTION, 0, NULL, false, { 1, 2, 3, 5, 11, -1 } },
    { "sunspots", "sunactivity", "sunspot activity", PR_TARGET_VALUE, 0, NULL, false, { 1, 5, 11, -1 } },
    { "sunspots", "sunactivity", "sunspot activity", PR_TARGET_THRESHOLD, 100, "whether activity exceeds 100 "
      "(a strong solar maximum)", false, { 1, 3, 5, -1 } },
    { "nile", "volume", "the river flow", PR_TARGET_DIRECTION, 0, NULL, false, { 1, 2, 5, -1 } },
    { "nile", "volume", "the river flow", PR_TARGET_VALUE, 0, NULL, false, { 1, 5, -1 } },
    { "employment", "nonfarm_change", "the monthly payroll change", PR_TARGET_THRESHOLD, 0, "whether payrolls "
      "grow", false, { 1, 3, 6, -1 } },
    { "employment", "manufacturing", "manufacturing employment", PR_TARGET_DIRECTION, 0, NULL, false,
      { 1, 3, 6, 12, -1 } },
    { "employment", "construction", "construction employment", PR_TARGET_DIRECTION, 0, NULL, false, { 1, 3, 6, -1 } },
    { "employment", "leisure_and_hospitality", "hospitality employment", PR_TARGET_DIRECTION, 0, NULL, false,
      { 1, 6, -1 } },
    { "employment", "government", "government employment", PR_TARGET_DIRECTION, 0, NULL, false, { 1, 12, -1 } },
    { "employment", "retail_trade", "retail employment", PR_TARGET_DIRECTION, 0, NULL, false, { 1, 3, 6, -1 } },
    { "employment", "durable_goods", "durable-goods employment", PR_TARGET_DIRECTION, 0, NULL, false,
      { 1, 3, -1 } },
    { "employment", "professional_and_business_services", "business-services employment", PR_TARGET_DIRECTION,
      0, NULL, false, { 1, 6, -1 } },
    { "employment", "financial_activities", "financial-sector employment", PR_TARGET_DIRECTION, 0, NULL, false,
      { 1, 6, -1 } },
    { "bars", "close", "the closing price", PR_TARGET_DIRECTION, 0, NULL, false, { 1, 2, 3, 4, 7, 14, 21, 35, 70, -1 } },
    { "bars", "close", "the closing price", PR_TARGET_RETURN, 0, NULL, false, { 1, 7, 14, 21, 35, -1 } },
    { "bars", "close", "the closing price", PR_TARGET_VOLATILITY, 0, NULL, false, { 7, 14, 35, -1 } },
    { "bars", "close", "the closing price", PR_TARGET_VOL_REGIME, 0, NULL, false, { 7, 14, 35, -1 } },
    { "bars", "volume", "the traded volume", PR_TARGET_DIRECTION, 0, NULL, false, { 1, 7, 14, -1 } },
    { "patterns", "pattern_success", "the pattern success label", PR_TARGET_CLASS, 0,
      "whether a detected pattern succeeds (its forward return clears the threshold)", false, { 0, -1 } },
    { "patterns", "fwd_return", "the forward return", PR_TARGET_VALUE, 0, NULL, false, { 0, -1 } },
};

//  Horizon sentences, chosen by rotation ({h} the horizon, {u} the unit).
static const char *s_horizon_text [] = {
    "The horizon is {h} {u} ahead, where the latest readings should carry most of the signal",
    "Looking {h} {u} forward is long enough for momentum to show and short enough for persistence to matter",
    "At {h} {u} out, mean reversion and trend compete, which is exactly what the inputs must arbitrate",
    "Forecasting {h} {u} later forces slower regime information to take over from the last moves",
    "A span of {h} {u} tests whether seasonal and cyclical structure survives the noise",
    "Reaching {h} {u} into the future is a deliberately hard setting that probes for durable structure",
    "Predicting {h} {u} on checks whether accumulated history beats naive persistence",
    "A reach of {h} {u} straddles the typical cycle lengths seen in this series",
};

//  Model family choices and their sentences.
static const struct { unsigned families; const char *text; } s_family_sets [] = {
    { PR_FAMILY_XGBOOST | PR_FAMILY_RANDOM_FOREST,
      "Gradient-boosted trees and a random forest should find threshold effects and interactions without any "
      "scaling and rank the inputs by importance." },
    { PR_FAMILY_XGBOOST | PR_FAMILY_MLP,
      "Boosted trees set the bar; a small multilayer perceptron checks whether smooth non-linear blends of the "
      "inputs add anything." },
    { PR_FAMILY_RANDOM_FOREST | PR_FAMILY_MLP | PR_FAMILY_TRANSFORMER,
      "A robust forest baseline, a perceptron and a transformer over the recent window compare averaging, "
      "smooth fitting and attention to order." },
    { PR_FAMILY_XGBOOST | PR_FAMILY_TRANSFORMER,
      "XGBoost on the engineered columns is set against a transformer that reads the raw recent rows, to see "
      "whether sequence order carries information the summaries miss." },
    { PR_FAMILY_XGBOOST | PR_FAMILY_RANDOM_FOREST | PR_FAMILY_MLP | PR_FAMILY_TRANSFORMER,
      "All four families compete, so the ensemble can weigh trees, forests, dense networks and attention on "
      "validation data." },
};

typedef struct {
    int dataset;
    int target;
    int variant;                //  index into the dataset's variants
    int hpos;                   //  index into the target's horizons
    int k;                      //  rank within its data set (picks the wording)
} s_candidate_t;

struct _wd_catalog_t {
    char *symbols [S_MAX_VARIANTS];
    size_t symbol_count;
    s_candidate_t *candidates;
    size_t count;
};

//  Splits a comma list into out (at most max); returns the count.
static size_t
s_split (const char *list, char **out, size_t max)
{
    size_t n = 0;
    const char *p = list;
    while (p && *p && n < max) {
        const char *end = strchr (p, ',');
        size_t len = end ? (size_t) (end - p) : strlen (p);
        while (len && *p == ' ')
            p++, len--;
        while (len && p [len - 1] == ' ')
            len--;
        if (len)
            out [n++] = lb_xstrndup (p, len);
        p = end ? end + 1 : NULL;
    }
    return n;
}

static int
s_dataset_index (const char *key)
{
    for (size_t i = 0; i < sizeof s_datasets / sizeof s_datasets [0]; i++)
        if (strcmp (s_datasets [i].key, key) == 0)
            return (int) i;
    assert (false);
    return -1;
}

//  The variants of dataset d (caller frees each string); returns the count
//  (1 with NULL for a dataset without variants).
static size_t
s_variants (wd_catalog_t *self, int d, char **out)
{
    const s_dataset_t *ds = &s_datasets [d];
    if (!ds->where_column) {
        out [0] = NULL;
        return 1;
    }
    if (strcmp (ds->variants, "@symbols") == 0) {
        for (size_t i = 0; i < self->symbol_count; i++)
            out [i] = lb_xstrdup (self->symbols [i]);
        return self->symbol_count;
    }
    return s_split (ds->variants, out, S_MAX_VARIANTS);
}

static uint64_t
s_rand (uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

wd_catalog_t *
wd_catalog_new (const char *symbols, uint64_t seed)
{
    wd_catalog_t *self = lb_xcalloc (1, sizeof *self);
    self->symbol_count = s_split (symbols ? symbols : "", self->symbols, S_MAX_VARIANTS);
    size_t cap = 1024;
    int ranks [sizeof s_datasets / sizeof s_datasets [0]] = { 0 };
    self->candidates = lb_xmalloc (cap * sizeof (s_candidate_t));
    for (size_t t = 0; t < sizeof s_targets / sizeof s_targets [0]; t++) {
        int d = s_dataset_index (s_targets [t].dataset);
        char *variants [S_MAX_VARIANTS];
        size_t nv = s_variants (self, d, variants);
        for (size_t v = 0; v < nv; v++) {
            for (int h = 0; s_targets [t].horizons [h] >= 0; h++) {
                if (self->count == cap) {
                    cap *= 2;
                    self->candidates = lb_xrealloc (self->candidates, cap * sizeof (s_candidate_t));
                }
                self->candidates [self->count++] = (s_candidate_t) { d, (int) t, (int) v, h, ranks [d]++ };
            }
            free (variants [v]);
        }
    }
    //  Fisher-Yates with the seed: the catalog's order.
    uint64_t state = seed;
    for (size_t i = self->count; i > 1; i--) {
        size_t j = (size_t) (s_rand (&state) % i);
        s_candidate_t tmp = self->candidates [i - 1];
        self->candidates [i - 1] = self->candidates [j];
        self->candidates [j] = tmp;
    }
    return self;
}

bool
wd_catalog_type_listed (const char *types, pr_task_type_t type)
{
    const char *name = pr_task_type_name (type);
    size_t len = strlen (name);
    for (const char *p = types ? types : ""; *p; ) {
        while (*p == ' ' || *p == ',')
            p++;
        size_t n = strcspn (p, ", ");
        if (n == len && strncmp (p, name, len) == 0)
            return true;
        p += n;
    }
    return false;
}

void
wd_catalog_keep_types (wd_catalog_t *self, const char *types)
{
    assert (self);
    size_t kept = 0;
    for (size_t i = 0; i < self->count; i++) {
        pr_task_t *task = wd_catalog_task (self, i);
        if (wd_catalog_type_listed (types, task->task_type))
            self->candidates [kept++] = self->candidates [i];
        pr_task_destroy (&task);
    }
    self->count = kept;
}

void
wd_catalog_destroy (wd_catalog_t **self_p)
{
    assert (self_p);
    wd_catalog_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->symbol_count; i++)
        free (self->symbols [i]);
    free (self->candidates);
    free (self);
    *self_p = NULL;
}

size_t
wd_catalog_size (wd_catalog_t *self)
{
    assert (self);
    return self->count;
}

//  Replaces every {key} in text by value. Caller frees.
static char *
s_subst (const char *text, const char *key, const char *value)
{
    char *out = lb_xstrdup (text);
    size_t klen = strlen (key);
    char *at;
    size_t from = 0;
    while ((at = strstr (out + from, key))) {
        size_t pos = (size_t) (at - out);
        char *next = lb_xasprintf ("%.*s%s%s", (int) pos, out, value, at + klen);
        free (out);
        out = next;
        from = pos + strlen (value);
    }
    return out;
}

//  "{u}" with a plural.
static char *
s_units (const char *unit, int h)
{
    return h == 1 ? lb_xstrdup (unit) : lb_xasprintf ("%ss", unit);
}

static char *
s_lower (const char *text)
{
    char *out = lb_xstrdup (text);
    for (char *p = out; *p; p++)
        *p = (char) tolower ((unsigned char) *p);
    return out;
}

pr_task_t *
wd_catalog_task (wd_catalog_t *self, size_t i)
{
    assert (self && i < self->count);
    s_candidate_t c = self->candidates [i];
    const s_dataset_t *ds = &s_datasets [c.dataset];
    const s_target_t *tg = &s_targets [c.target];
    char *variants [S_MAX_VARIANTS];
    size_t nv = s_variants (self, c.dataset, variants);
    assert ((size_t) c.variant < nv);
    const char *variant = variants [c.variant];
    int h = tg->horizons [c.hpos];
    const char *time = ds->time_column ? ds->time_column : "";

    //  Feature set, horizon sentence and families rotate independently.
    const char *const *sets = ds->sets [0] ? ds->sets : s_ohlcv_sets;
    int nsets = 0;
    while (nsets < 4 && sets [nsets])
        nsets++;
    //  Within a data set the rank k maps one-to-one onto (horizon sentence,
    //  feature set, families) for k < 8 * nsets * 5, so two candidates of one
    //  data set always differ in at least one whole sentence.
    int nhor = (int) (sizeof s_horizon_text / sizeof s_horizon_text [0]);
    int nfam = (int) (sizeof s_family_sets / sizeof s_family_sets [0]);
    assert (c.k < nhor * nsets * nfam);
    int hor = c.k % nhor;
    int q = c.k / nhor;
    int set = (q + hor) % nsets;
    int fam = (q / nsets + hor + set) % nfam;

    //  Wording.
    char *about = s_subst (ds->about, "{v}", variant ? variant : "");
    char *what = NULL;
    switch (tg->kind) {
        case PR_TARGET_CLASS:
        case PR_TARGET_THRESHOLD:
            what = lb_xstrdup (tg->what);
            break;
        case PR_TARGET_DIRECTION:
            what = lb_xasprintf ("whether %s will be higher than now", tg->desc);
            break;
        case PR_TARGET_RETURN:
            what = lb_xasprintf ("the relative change of %s", tg->desc);
            break;
        case PR_TARGET_VALUE:
            what = lb_xasprintf ("the level of %s", tg->desc);
            break;
        case PR_TARGET_VOLATILITY:
            what = lb_xasprintf ("the realised volatility of %s over the coming rows", tg->desc);
            break;
        case PR_TARGET_VOL_REGIME:
            what = lb_xasprintf ("whether the coming volatility of %s will be above its typical level", tg->desc);
            break;
    }
    char hbuf [16];
    snprintf (hbuf, sizeof hbuf, "%d", h);
    char *units = s_units (ds->unit, h);
    char *htext = NULL;
    if (h == 0)
        htext = lb_xasprintf ("The label describes each %s itself, so the question is how much the inputs "
                              "known at that time reveal", ds->unit);
    else {
        char *t1 = s_subst (s_horizon_text [hor], "{h}", hbuf);
        htext = s_subst (t1, "{u}", units);
        free (t1);
    }
    const char *set_text = sets [set];
    const char *bar = strchr (set_text, '|');
    assert (bar);
    char *set_sentence = lb_xstrndup (set_text, (size_t) (bar - set_text));
    char *hypothesis = lb_xasprintf ("%s. We predict %s. %s. %s. %s", about, what, htext, set_sentence,
                                     s_family_sets [fam].text);
    char *novelty = lb_xasprintf ("Built-in catalog entry: no earlier task predicted %s of %s%s%s at a horizon "
                                  "of %d %s.", pr_target_kind_name (tg->kind), tg->column,
                                  variant ? " for " : "", variant ? variant : "", h, units);

    //  The spec as JSON, then through the one validator.
    char *lower_variant = variant ? s_lower (variant) : NULL;
    char above [32] = "";
    if (tg->kind == PR_TARGET_THRESHOLD)
        snprintf (above, sizeof above, "_above%d", (int) tg->threshold);
    char *name = lb_xasprintf ("%s%s%s_%s_%s%s_h%d", ds->key, variant ? "_" : "", variant ? lower_variant : "",
                               tg->column, pr_target_kind_name (tg->kind), above, h);
    if (strlen (name) > 64)
        name [64] = 0;
    json_t *src = json_object ();
    json_object_set_new (src, "uri", json_string (ds->uri));
    json_object_set_new (src, "format", json_string (ds->format));
    if (ds->delimiter)
        json_object_set_new (src, "delimiter", json_string (ds->delimiter));
    json_t *cols = json_array ();
    char *colv [PR_TASK_MAX_COLUMNS];
    size_t ncol = s_split (ds->columns, colv, PR_TASK_MAX_COLUMNS);
    for (size_t k = 0; k < ncol; k++) {
        json_array_append_new (cols, json_string (colv [k]));
        free (colv [k]);
    }
    json_object_set_new (src, "columns", cols);
    if (ds->time_column)
        json_object_set_new (src, "time_column", json_string (ds->time_column));
    if (variant) {
        json_t *where = json_object ();
        json_object_set_new (where, ds->where_column, json_string (variant));
        json_object_set_new (src, "where", where);
    }
    json_object_set_new (src, "size_bytes", json_integer (ds->size));
    json_t *target = json_object ();
    json_object_set_new (target, "column", json_string (tg->column));
    json_object_set_new (target, "kind", json_string (pr_target_kind_name (tg->kind)));
    json_object_set_new (target, "horizon", json_integer (h));
    if (tg->kind == PR_TARGET_THRESHOLD)
        json_object_set_new (target, "threshold", json_real (tg->threshold));
    json_t *features = json_array ();
    char *list = s_subst (bar + 1, "{t}", time);
    for (char *f = list; f && *f; ) {
        char *semi = strchr (f, ';');
        if (semi)
            *semi = 0;
        json_array_append_new (features, json_string (f));
        f = semi ? semi + 1 : NULL;
    }
    free (list);
    bool regression = tg->kind == PR_TARGET_VALUE || tg->kind == PR_TARGET_RETURN
                   || tg->kind == PR_TARGET_VOLATILITY;
    unsigned families = s_family_sets [fam].families;
    const char *type = regression ? "regression" : tg->multiclass ? "multiclass" : "binary";
    if ((families & PR_FAMILY_TRANSFORMER) && (c.hpos + c.target) % 2 == 0)
        type = "sequence";
    static const char *bin_metrics [] = { "roc_auc", "accuracy", "f1", "log_loss" };
    static const char *multi_metrics [] = { "accuracy", "f1_macro" };
    static const char *regr_metrics [] = { "rmse", "mae" };
    const char *metric = regression ? regr_metrics [(c.hpos + c.variant) % 2]
                       : tg->multiclass ? multi_metrics [(c.hpos + c.variant) % 2]
                       : bin_metrics [(c.hpos + c.variant + c.target) % 4];
    json_t *fams = json_array ();
    for (unsigned bit = 1; bit <= PR_FAMILY_TRANSFORMER; bit <<= 1)
        if (families & bit)
            json_array_append_new (fams, json_string (pr_family_name ((pr_family_t) bit)));
    json_t *root = json_object ();
    json_object_set_new (root, "version", json_integer (PR_TASK_VERSION));
    json_object_set_new (root, "name", json_string (name));
    json_object_set_new (root, "hypothesis", json_string (hypothesis));
    json_object_set_new (root, "novelty", json_string (novelty));
    json_object_set_new (root, "task_type", json_string (type));
    json_t *sources = json_array ();
    json_array_append_new (sources, src);
    json_object_set_new (root, "sources", sources);
    json_object_set_new (root, "target", target);
    json_object_set_new (root, "features", features);
    if (strcmp (type, "sequence") == 0)
        json_object_set_new (root, "window", json_integer (h >= 7 ? 64 : 32));
    json_object_set_new (root, "metric", json_string (metric));
    json_object_set_new (root, "model_families", fams);

    char *error = NULL;
    pr_task_t *task = pr_task_from_jansson (root, &error);
    if (!task)
        fprintf (stderr, "catalog candidate %s is invalid: %s\n", name, error);
    assert (task);      //  the catalog is our data: an invalid entry is our bug
    json_decref (root);
    free (lower_variant);
    free (name);
    free (hypothesis);
    free (novelty);
    free (set_sentence);
    free (htext);
    free (units);
    free (what);
    free (about);
    for (size_t k = 0; k < nv; k++)
        free (variants [k]);
    return task;
}

pr_task_t *
wd_catalog_propose (wd_catalog_t *self, wd_novelty_t *nov, size_t *skipped_p, char **reason_p)
{
    assert (self && nov);
    size_t skipped = 0;
    for (size_t i = 0; i < self->count; i++) {
        pr_task_t *task = wd_catalog_task (self, i);
        wd_minhash_t sig;
        wd_minhash_compute (task->hypothesis, &sig);
        if (wd_novelty_check (nov, task->fingerprint, &sig, NULL, NULL) == WD_NOVEL) {
            if (skipped_p)
                *skipped_p = skipped;
            return task;
        }
        skipped++;
        pr_task_destroy (&task);
    }
    if (skipped_p)
        *skipped_p = skipped;
    if (reason_p)
        *reason_p = lb_xasprintf ("the catalog is exhausted: all %zu candidates are duplicates or "
                                  "near-duplicates of the %zu tasks tried; configure an API key "
                                  "(llm.api_key) or more symbols (discover.symbols)",
                                  self->count, wd_novelty_size (nov));
    return NULL;
}

void
wd_catalog_test (bool verbose)
{
    wd_catalog_t *cat = wd_catalog_new ("SPY,ABVM,ANOB,AZGQ,BKZF,BWRU", 20261122);
    size_t n = wd_catalog_size (cat);
    if (verbose)
        printf ("\n  %zu candidates\n", n);
    if (n < 300)
        fprintf (stderr, "only %zu candidates\n", n);
    assert (n >= 300);
    //  Every candidate is valid (wd_catalog_task asserts it), fingerprints are
    //  distinct, and no two hypotheses are near-duplicates at the default threshold.
    pr_task_t **tasks = lb_xcalloc (n, sizeof *tasks);
    wd_minhash_t *sigs = lb_xcalloc (n, sizeof *sigs);
    for (size_t i = 0; i < n; i++) {
        tasks [i] = wd_catalog_task (cat, i);
        wd_minhash_compute (tasks [i]->hypothesis, &sigs [i]);
    }
    double worst = 0;
    size_t wi = 0, wj = 0;
    for (size_t i = 0; i < n; i++)
        for (size_t j = i + 1; j < n; j++) {
            assert (strcmp (tasks [i]->fingerprint, tasks [j]->fingerprint) != 0);
            assert (strcmp (tasks [i]->name, tasks [j]->name) != 0);
            double s = wd_minhash_similarity (&sigs [i], &sigs [j]);
            if (s > worst)
                worst = s, wi = i, wj = j;
        }
    if (verbose || worst >= 0.8)
        fprintf (worst >= 0.8 ? stderr : stdout, "  most similar pair %.3f: %s / %s\n%s\n%s\n", worst,
                 tasks [wi]->name, tasks [wj]->name, tasks [wi]->hypothesis, tasks [wj]->hypothesis);
    assert (worst < 0.8);
    if (verbose) {
        char *json = pr_task_to_json (tasks [0]);
        printf ("  first: %s\n", json);
        free (json);
    }

    //  Proposals: 100 consecutive, each novel against all before it.
    wd_novelty_t *nov = wd_novelty_new (0.8);
    for (int k = 0; k < 100; k++) {
        size_t skipped = 99;
        pr_task_t *task = wd_catalog_propose (cat, nov, &skipped, NULL);
        assert (task && skipped == (size_t) k);
        wd_minhash_t sig;
        wd_minhash_compute (task->hypothesis, &sig);
        wd_novelty_add (nov, task->name, task->fingerprint, &sig);
        pr_task_destroy (&task);
    }
    //  The same seed gives the same order; another seed another.
    wd_catalog_t *same = wd_catalog_new ("SPY,ABVM,ANOB,AZGQ,BKZF,BWRU", 20261122);
    wd_catalog_t *other = wd_catalog_new ("SPY,ABVM,ANOB,AZGQ,BKZF,BWRU", 7);
    pr_task_t *a = wd_catalog_task (same, 0), *b = wd_catalog_task (other, 0);
    assert (strcmp (a->fingerprint, tasks [0]->fingerprint) == 0);
    assert (strcmp (b->fingerprint, tasks [0]->fingerprint) != 0);
    pr_task_destroy (&a);
    pr_task_destroy (&b);
    wd_catalog_destroy (&same);
    wd_catalog_destroy (&other);

    //  Exhaustion is reported, not papered over.
    //  Keeping some task types drops the others and keeps the order.
    wd_catalog_t *typed = wd_catalog_new ("SPY,ABVM", 3);
    size_t before = wd_catalog_size (typed);
    wd_catalog_keep_types (typed, "binary, regression");
    size_t after = wd_catalog_size (typed);
    assert (after > 0 && after <= before);
    for (size_t i = 0; i < after; i++) {
        pr_task_t *task = wd_catalog_task (typed, i);
        assert (task->task_type == PR_TASK_BINARY || task->task_type == PR_TASK_REGRESSION);
        pr_task_destroy (&task);
    }
    wd_catalog_keep_types (typed, "regression");
    assert (wd_catalog_size (typed) > 0 && wd_catalog_size (typed) < after);
    wd_catalog_keep_types (typed, "");
    assert (wd_catalog_size (typed) == 0);
    wd_catalog_destroy (&typed);
    assert (wd_catalog_type_listed ("binary,multiclass", PR_TASK_MULTICLASS));
    assert (!wd_catalog_type_listed ("binaryx", PR_TASK_BINARY));
    assert (!wd_catalog_type_listed (NULL, PR_TASK_BINARY));

    wd_catalog_t *small = wd_catalog_new ("", 1);
    size_t m = wd_catalog_size (small);
    assert (m < n && m > 150);
    wd_novelty_t *all = wd_novelty_new (0.8);
    for (size_t i = 0; i < m; i++) {
        pr_task_t *t = wd_catalog_task (small, i);
        wd_minhash_t sig;
        wd_minhash_compute (t->hypothesis, &sig);
        wd_novelty_add (all, t->name, t->fingerprint, &sig);
        pr_task_destroy (&t);
    }
    char *reason = NULL;
    size_t skipped = 0;
    assert (wd_catalog_propose (small, all, &skipped, &reason) == NULL);
    assert (skipped == m && strstr (reason, "exhausted"));
    free (reason);
    wd_novelty_destroy (&all);
    wd_catalog_destroy (&small);

    for (size_t i = 0; i < n; i++)
        pr_task_destroy (&tasks [i]);
    free (tasks);
    free (sigs);
    wd_novelty_destroy (&nov);
    wd_catalog_destroy (&cat);
    wd_catalog_destroy (&cat);
}
