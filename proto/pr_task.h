/*  pr_task.h - the task spec: what the discover step proposes and the fetch,
    train and evaluate steps carry out. A task is data, never code.

    JSON form (version 1). Every field is required unless marked optional;
    unknown fields are rejected.

    {
      "version": 1,
      "name": "seattle_rain_tomorrow",            //  [a-z0-9_-], 3..64 chars
      "hypothesis": "...",                        //  one paragraph, 20..2000 chars
      "novelty": "...",                           //  why it is new, 10..1000 chars
      "task_type": "binary",                      //  binary | multiclass | regression | sequence
      "sources": [                                //  1..PR_TASK_MAX_SOURCES (policy may allow fewer)
        {
          "uri": "debian:python3-vega-datasets:/usr/lib/python3/dist-packages/vega_datasets/_data/seattle-weather.csv",
                                                  //  kinds: see lib/lb_netpolicy.h
          "format": "csv",                        //  csv | json (array of objects) | table (pg:)
          "delimiter": ",",                       //  optional, csv only, one character, default ","
          "header": true,                         //  optional, csv only, default true: first line
                                                  //  is skipped; its names are NOT used
          "columns": ["date", "precipitation", "temp_max", "temp_min", "wind", "weather"],
                                                  //  the names of the columns in file order (csv),
                                                  //  keys (json) or columns to read (table);
                                                  //  [a-z_][a-z0-9_]*, <= 63 chars, 1..256, unique
          "time_column": "date",                  //  optional: rows are ordered by it and several
                                                  //  sources are joined on it (as of); without it
                                                  //  file order is time order
          "where": {"symbol": "MSFT"},            //  optional: keep rows whose column equals the
                                                  //  string (0..4 entries; columns must exist)
          "size_bytes": 47838,                    //  declared size, 1..1 GiB (policy may lower)
          "sha256": "..."                         //  optional: 64 hex digits, checked by fetch
        }
      ],
      "target": {
        "column": "precipitation",                //  must be a column of some source
        "kind": "threshold",                      //  see pr_target_kind_t
        "horizon": 1,                             //  rows ahead, 0..10000 (0 only for "class"/"value")
        "threshold": 0.0                          //  only (and required) for kind "threshold"
      },
      "features": ["temp_max", "ret(temp_max,3)", "spread(temp_max,temp_min)", "month(date)"],
                                                  //  1..64 unique; grammar in pr_feature_t
      "window": 32,                               //  optional: lookback rows for sequence models,
                                                  //  1..1024, default 64
      "metric": "roc_auc",                        //  must fit task_type (see pr_task_metric_fits)
      "model_families": ["xgboost", "mlp"]        //  1..4 unique of xgboost, random_forest, mlp,
                                                  //  transformer
    }

    Target kinds (y at row t; x[t] is the target column at row t, h the horizon):
      class       y = x[t+h] as a category          binary (2 values) | multiclass
      value       y = x[t+h]                        regression
      direction   y = x[t+h] > x[t]                 binary
      return      y = x[t+h] / x[t] - 1             regression
      threshold   y = x[t+h] > threshold            binary
      volatility  y = stdev of log(x[i]/x[i-1]) for i in t+1..t+h (h >= 2)   regression
      vol_regime  y = volatility above its median on the training rows       binary
    "sequence" accepts every kind (the model sees the last `window` rows).

    Features: "COL" (the column as is), "FN(COL,N)" with a trailing window of N
    rows (1..1000), "FN(COL)" for calendar parts of a time column, or
    "spread(COL,COL2)" = COL / COL2 - 1. Every feature uses rows <= t only.
      windowed: lag diff ret logret sma_ratio ema_ratio zscore vol rsi range_pos
      calendar: dow month dayofyear hour
    (lag: x[t-N]; diff: x[t]-x[t-N]; ret: x[t]/x[t-N]-1; logret: log of that ratio;
    sma_ratio/ema_ratio: x[t] / mean over N - 1; zscore: (x[t]-mean)/stdev over N;
    vol: stdev of 1-row log returns over N; rsi: Wilder RSI over N in 0..100;
    range_pos: (x[t]-min)/(max-min) over N, 0.5 when flat.)

    Fingerprint: SHA-256 (hex) of the normalised identity "what is predicted
    from what": the sorted source URIs with their where-filters, the target
    column, kind, horizon and threshold. Two specs that differ only in
    wording, features, window, metric or model families have the same
    fingerprint (a duplicate by definition).
*/
#ifndef PR_TASK_H_INCLUDED
#define PR_TASK_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PR_TASK_VERSION         1
#define PR_TASK_MAX_SOURCES     8
#define PR_TASK_MAX_COLUMNS     256
#define PR_TASK_MAX_WHERE       4
#define PR_TASK_MAX_FEATURES    64
#define PR_TASK_MAX_FAMILIES    4
#define PR_TASK_MAX_BYTES       (INT64_C (1) << 30)    //  1 GiB, the hard cap
#define PR_TASK_MAX_JSON        (256 * 1024)           //  a spec's JSON text, at most
#define PR_TASK_FINGERPRINT_LEN 64                     //  hex characters

typedef enum { PR_FORMAT_CSV, PR_FORMAT_JSON, PR_FORMAT_TABLE } pr_format_t;

typedef enum {
    PR_TASK_BINARY, PR_TASK_MULTICLASS, PR_TASK_REGRESSION, PR_TASK_SEQUENCE
} pr_task_type_t;

typedef enum {
    PR_TARGET_CLASS, PR_TARGET_VALUE, PR_TARGET_DIRECTION, PR_TARGET_RETURN,
    PR_TARGET_THRESHOLD, PR_TARGET_VOLATILITY, PR_TARGET_VOL_REGIME
} pr_target_kind_t;

typedef enum {
    PR_FAMILY_XGBOOST = 1, PR_FAMILY_RANDOM_FOREST = 2, PR_FAMILY_MLP = 4,
    PR_FAMILY_TRANSFORMER = 8
} pr_family_t;

typedef struct {
    char *column;
    char *value;
} pr_where_t;

typedef struct {
    char *uri;                  //  as given (see lib/lb_netpolicy.h for kinds)
    int kind;                   //  lb_source_kind_t
    pr_format_t format;
    char delimiter;             //  csv only
    bool header;                //  csv only
    char **columns;
    size_t column_count;
    char *time_column;          //  NULL: file order is time order
    pr_where_t where [PR_TASK_MAX_WHERE];
    size_t where_count;
    int64_t size_bytes;
    char *sha256;               //  NULL or 64 lowercase hex digits
} pr_source_t;

typedef struct {
    char *column;
    pr_target_kind_t kind;
    int horizon;
    double threshold;           //  kind threshold only
} pr_target_t;

//  One parsed feature. fn is NULL for a bare column.
typedef struct {
    char *text;                 //  as written, normalised (no spaces)
    char *fn;                   //  function name or NULL
    char *column;
    char *column2;              //  spread only
    int window;                 //  windowed functions only, else 0
} pr_feature_t;

typedef struct {
    int version;
    char *name;
    char *hypothesis;
    char *novelty;
    pr_task_type_t task_type;
    pr_source_t *sources;
    size_t source_count;
    pr_target_t target;
    pr_feature_t *features;
    size_t feature_count;
    int window;
    char *metric;
    unsigned families;          //  pr_family_t bits
    char fingerprint [PR_TASK_FINGERPRINT_LEN + 1];
} pr_task_t;

//  Parses and validates a spec's JSON text (len bytes, need not be
//  NUL-terminated). Structural checks only: every field's presence, type and
//  range, URI syntax, target among the columns, features' grammar and
//  columns, metric for the task type, size <= 1 GiB. Returns the task (caller
//  destroys) with its fingerprint computed, or NULL with *error_p set to one
//  message naming the field ("sources[1].uri: scheme 'ftp' is not allowed"),
//  caller frees.
pr_task_t *pr_task_from_json (const char *text, size_t len, char **error_p);

//  Same from a jansson json_t * (passed as void * so that this header does
//  not need jansson.h); the object is borrowed.
pr_task_t *pr_task_from_jansson (const void *json, char **error_p);

//  Destroys a task. Accepts NULL; sets *self_p to NULL.
void pr_task_destroy (pr_task_t **self_p);

//  Checks every source against a policy (lb_netpolicy_t *, see
//  lib/lb_netpolicy.h: scheme and host rules with DNS, file roots, allowed
//  tables and packages), and the source count and total declared size
//  against max_sources and max_bytes (0: the hard caps). Returns 0, or -1
//  with *error_p set (caller frees).
int pr_task_check_sources (const pr_task_t *self, void *netpolicy, size_t max_sources,
                           int64_t max_bytes, char **error_p);

//  Returns the spec as compact JSON with keys in a fixed order (caller frees).
//  pr_task_from_json (pr_task_to_json (t)) gives an equal task.
char *pr_task_to_json (const pr_task_t *self);

//  Returns the JSON schema of a spec (the input_schema of the forced tool
//  call), as text the caller frees. Looser than the validator (no grammar).
char *pr_task_json_schema (void);

//  Returns true if metric is allowed for type: binary accuracy f1 precision
//  recall roc_auc log_loss; multiclass accuracy f1_macro log_loss;
//  regression rmse mae r2; sequence any of these.
bool pr_task_metric_fits (pr_task_type_t type, const char *metric);

//  Names of enums ("binary", "threshold", "xgboost"...). Static strings.
const char *pr_task_type_name (pr_task_type_t type);
const char *pr_target_kind_name (pr_target_kind_t kind);
const char *pr_family_name (pr_family_t family);

//  Selftest.
void pr_task_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
