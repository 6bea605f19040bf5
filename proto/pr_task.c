/*  pr_task.c - the task spec: strict JSON parsing, validation, fingerprint. */
#include "pr_task.h"
#include "lb_mem.h"
#include "lb_netpolicy.h"

#include <assert.h>
#include <ctype.h>
#include <jansson.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *s_type_names [] = { "binary", "multiclass", "regression", "sequence" };
static const char *s_kind_names [] = {
    "class", "value", "direction", "return", "threshold", "volatility", "vol_regime"
};
static const char *s_format_names [] = { "csv", "json", "table" };
static const char *s_family_names [] = { "xgboost", "random_forest", "mlp", "transformer" };
static const char *s_windowed [] = {
    "lag", "diff", "ret", "logret", "sma_ratio", "ema_ratio", "zscore", "vol", "rsi", "range_pos"
};
static const char *s_calendar [] = { "dow", "month", "dayofyear", "hour" };
static const char *s_metrics_binary [] = { "accuracy", "f1", "precision", "recall", "roc_auc", "log_loss" };
static const char *s_metrics_multi [] = { "accuracy", "f1_macro", "log_loss" };
static const char *s_metrics_regr [] = { "rmse", "mae", "r2" };

#define S_COUNT(a) (sizeof (a) / sizeof ((a) [0]))

static int
s_index (const char *const *names, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp (names [i], name) == 0)
            return (int) i;
    return -1;
}

//  --------------------------------------------------------------------------
//  Destructor

static void
s_source_release (pr_source_t *src)
{
    free (src->uri);
    for (size_t i = 0; i < src->column_count; i++)
        free (src->columns [i]);
    free (src->columns);
    free (src->time_column);
    for (size_t i = 0; i < src->where_count; i++) {
        free (src->where [i].column);
        free (src->where [i].value);
    }
    free (src->sha256);
}

void
pr_task_destroy (pr_task_t **self_p)
{
    assert (self_p);
    pr_task_t *self = *self_p;
    if (!self)
        return;
    free (self->name);
    free (self->hypothesis);
    free (self->novelty);
    for (size_t i = 0; i < self->source_count; i++)
        s_source_release (&self->sources [i]);
    free (self->sources);
    free (self->target.column);
    for (size_t i = 0; i < self->feature_count; i++) {
        free (self->features [i].text);
        free (self->features [i].fn);
        free (self->features [i].column);
        free (self->features [i].column2);
    }
    free (self->features);
    free (self->metric);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Validation helpers. Each returns 0, or -1 with *error_p set.

static int
s_fail (char **error_p, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static int
s_fail (char **error_p, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    char *text = lb_xvasprintf (fmt, args);
    va_end (args);
    if (error_p)
        *error_p = text;
    else
        free (text);
    return -1;
}

static const char *
s_json_type (const json_t *v)
{
    switch (json_typeof (v)) {
        case JSON_OBJECT: return "an object";
        case JSON_ARRAY: return "an array";
        case JSON_STRING: return "a string";
        case JSON_INTEGER: return "an integer";
        case JSON_REAL: return "a number";
        case JSON_TRUE: case JSON_FALSE: return "a boolean";
        default: return "null";
    }
}

//  Rejects keys of obj not in allowed.
static int
s_only_keys (const json_t *obj, const char *where, const char *const *allowed, size_t count,
             char **error_p)
{
    const char *key;
    json_t *value;
    json_object_foreach ((json_t *) obj, key, value) {
        (void) value;
        if (s_index (allowed, count, key) < 0)
            return s_fail (error_p, "%s%s%.64s: unknown field", where, *where ? "." : "", key);
    }
    return 0;
}

//  A printable string field of min..max bytes. *out is a copy.
static int
s_get_text (const json_t *obj, const char *where, const char *key, bool required,
            size_t min, size_t max, char **out, char **error_p)
{
    const json_t *v = json_object_get (obj, key);
    const char *dot = *where ? "." : "";
    if (!v) {
        if (!required)
            return 0;
        return s_fail (error_p, "%s%s%s: missing", where, dot, key);
    }
    if (!json_is_string (v))
        return s_fail (error_p, "%s%s%s: must be a string, not %s", where, dot, key, s_json_type (v));
    const char *text = json_string_value (v);
    size_t len = json_string_length (v);
    if (len < min || len > max)
        return s_fail (error_p, "%s%s%s: %zu characters long (must be %zu to %zu)", where, dot, key,
                       len, min, max);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) text [i] < 0x20 || text [i] == 0x7f)
            return s_fail (error_p, "%s%s%s: control character at offset %zu", where, dot, key, i);
    *out = lb_xstrdup (text);
    return 0;
}

static int
s_get_int (const json_t *obj, const char *where, const char *key, bool required,
           int64_t min, int64_t max, int64_t *out, char **error_p)
{
    const json_t *v = json_object_get (obj, key);
    const char *dot = *where ? "." : "";
    if (!v) {
        if (!required)
            return 0;
        return s_fail (error_p, "%s%s%s: missing", where, dot, key);
    }
    if (!json_is_integer (v))
        return s_fail (error_p, "%s%s%s: must be an integer, not %s", where, dot, key, s_json_type (v));
    json_int_t n = json_integer_value (v);
    if (n < min || n > max)
        return s_fail (error_p, "%s%s%s: %lld is out of range (%lld to %lld)", where, dot, key,
                       (long long) n, (long long) min, (long long) max);
    *out = n;
    return 0;
}

//  An enum given as a string.
static int
s_get_enum (const json_t *obj, const char *where, const char *key, const char *const *names,
            size_t count, int *out, char **error_p)
{
    char *text = NULL;
    if (s_get_text (obj, where, key, true, 1, 64, &text, error_p))
        return -1;
    int i = s_index (names, count, text);
    if (i < 0) {
        char list [256] = "";
        for (size_t k = 0; k < count; k++) {
            strncat (list, names [k], sizeof list - strlen (list) - 1);
            if (k + 1 < count)
                strncat (list, ", ", sizeof list - strlen (list) - 1);
        }
        s_fail (error_p, "%s%s%s: '%.64s' is not one of %s", where, *where ? "." : "", key, text, list);
        free (text);
        return -1;
    }
    free (text);
    *out = i;
    return 0;
}

static bool
s_has_column (const pr_source_t *src, const char *name)
{
    for (size_t i = 0; i < src->column_count; i++)
        if (strcmp (src->columns [i], name) == 0)
            return true;
    return false;
}

//  Returns the number of sources that have column name.
static size_t
s_column_sources (const pr_task_t *self, const char *name)
{
    size_t n = 0;
    for (size_t i = 0; i < self->source_count; i++)
        n += s_has_column (&self->sources [i], name);
    return n;
}

static bool
s_is_time_column (const pr_task_t *self, const char *name)
{
    for (size_t i = 0; i < self->source_count; i++)
        if (self->sources [i].time_column && strcmp (self->sources [i].time_column, name) == 0)
            return true;
    return false;
}

//  --------------------------------------------------------------------------
//  Sources

static int
s_parse_source (pr_source_t *src, const json_t *obj, const char *where, char **error_p)
{
    static const char *keys [] = {
        "uri", "format", "delimiter", "header", "columns", "time_column", "where", "size_bytes", "sha256"
    };
    if (!json_is_object (obj))
        return s_fail (error_p, "%s: must be an object, not %s", where, s_json_type (obj));
    if (s_only_keys (obj, where, keys, S_COUNT (keys), error_p))
        return -1;
    if (s_get_text (obj, where, "uri", true, 1, 2048, &src->uri, error_p))
        return -1;
    lb_source_uri_t uri;
    char *why = NULL;
    if (lb_netpolicy_parse (src->uri, &uri, &why)) {
        s_fail (error_p, "%s.uri: %s", where, why);
        free (why);
        return -1;
    }
    src->kind = uri.kind;
    lb_source_uri_release (&uri);
    int format;
    if (s_get_enum (obj, where, "format", s_format_names, S_COUNT (s_format_names), &format, error_p))
        return -1;
    src->format = (pr_format_t) format;
    if ((src->kind == LB_SOURCE_PG) != (src->format == PR_FORMAT_TABLE))
        return s_fail (error_p, "%s.format: '%s' does not fit the source (pg: sources are 'table', "
                       "files are 'csv' or 'json')", where, s_format_names [format]);
    src->delimiter = ',';
    src->header = true;
    const json_t *v = json_object_get (obj, "delimiter");
    if (v) {
        if (src->format != PR_FORMAT_CSV)
            return s_fail (error_p, "%s.delimiter: only for csv", where);
        const char *d = json_string_value (v);
        if (!d || strlen (d) != 1 || isalnum ((unsigned char) d [0]) || d [0] == '"' || d [0] == '\n'
            || d [0] == '\r' || (unsigned char) d [0] >= 0x7f || ((unsigned char) d [0] < 0x20 && d [0] != '\t'))
            return s_fail (error_p, "%s.delimiter: must be one punctuation or tab character", where);
        src->delimiter = d [0];
    }
    v = json_object_get (obj, "header");
    if (v) {
        if (src->format != PR_FORMAT_CSV)
            return s_fail (error_p, "%s.header: only for csv", where);
        if (!json_is_boolean (v))
            return s_fail (error_p, "%s.header: must be a boolean, not %s", where, s_json_type (v));
        src->header = json_is_true (v);
    }
    v = json_object_get (obj, "columns");
    if (!v)
        return s_fail (error_p, "%s.columns: missing", where);
    if (!json_is_array (v))
        return s_fail (error_p, "%s.columns: must be an array, not %s", where, s_json_type (v));
    size_t n = json_array_size (v);
    if (n < 1 || n > PR_TASK_MAX_COLUMNS)
        return s_fail (error_p, "%s.columns: %zu columns (must be 1 to %d)", where, n, PR_TASK_MAX_COLUMNS);
    src->columns = lb_xcalloc (n, sizeof (char *));
    for (size_t i = 0; i < n; i++) {
        const char *name = json_string_value (json_array_get (v, i));
        if (!name || !lb_source_name_ok (name))
            return s_fail (error_p, "%s.columns[%zu]: must be a name [a-z_][a-z0-9_]* of at most 63 "
                           "characters", where, i);
        if (s_has_column (src, name))
            return s_fail (error_p, "%s.columns[%zu]: '%s' appears twice", where, i, name);
        src->columns [src->column_count++] = lb_xstrdup (name);
    }
    if (s_get_text (obj, where, "time_column", false, 1, 63, &src->time_column, error_p))
        return -1;
    if (src->time_column && !s_has_column (src, src->time_column))
        return s_fail (error_p, "%s.time_column: '%s' is not among the source's columns", where,
                       src->time_column);
    v = json_object_get (obj, "where");
    if (v) {
        if (!json_is_object (v))
            return s_fail (error_p, "%s.where: must be an object, not %s", where, s_json_type (v));
        if (json_object_size (v) > PR_TASK_MAX_WHERE)
            return s_fail (error_p, "%s.where: more than %d conditions", where, PR_TASK_MAX_WHERE);
        const char *key;
        json_t *value;
        json_object_foreach ((json_t *) v, key, value) {
            if (!s_has_column (src, key))
                return s_fail (error_p, "%s.where.%.64s: not among the source's columns", where, key);
            const char *text = json_string_value (value);
            if (!text || strlen (text) > 64 || strlen (text) == 0)
                return s_fail (error_p, "%s.where.%s: must be a string of 1 to 64 characters", where, key);
            for (const char *p = text; *p; p++)
                if ((unsigned char) *p < 0x20 || *p == 0x7f)
                    return s_fail (error_p, "%s.where.%s: control character", where, key);
            src->where [src->where_count].column = lb_xstrdup (key);
            src->where [src->where_count].value = lb_xstrdup (text);
            src->where_count++;
        }
    }
    int64_t size = 0;
    if (s_get_int (obj, where, "size_bytes", true, 1, PR_TASK_MAX_BYTES, &size, error_p))
        return -1;
    src->size_bytes = size;
    if (s_get_text (obj, where, "sha256", false, 64, 64, &src->sha256, error_p))
        return -1;
    if (src->sha256)
        for (const char *p = src->sha256; *p; p++)
            if (!isdigit ((unsigned char) *p) && !(*p >= 'a' && *p <= 'f'))
                return s_fail (error_p, "%s.sha256: must be 64 lowercase hex digits", where);
    return 0;
}

//  --------------------------------------------------------------------------
//  Features

static int
s_parse_feature (const pr_task_t *self, pr_feature_t *f, const char *raw, const char *where,
                 char **error_p)
{
    //  Normalise: drop spaces.
    size_t len = strlen (raw);
    if (len == 0 || len > 160)
        return s_fail (error_p, "%s: must be 1 to 160 characters", where);
    char *text = lb_xmalloc (len + 1);
    size_t k = 0;
    for (size_t i = 0; i < len; i++)
        if (raw [i] != ' ')
            text [k++] = raw [i];
    text [k] = 0;
    f->text = text;
    char *open = strchr (text, '(');
    if (!open) {
        if (!lb_source_name_ok (text) || s_column_sources (self, text) == 0)
            return s_fail (error_p, "%s: '%s' is neither a column of a source nor FN(COLUMN,N)", where, text);
        f->column = lb_xstrdup (text);
        return 0;
    }
    size_t tlen = strlen (text);
    if (text [tlen - 1] != ')')
        return s_fail (error_p, "%s: '%s' must end with ')'", where, text);
    f->fn = lb_xstrndup (text, (size_t) (open - text));
    char *args = lb_xstrndup (open + 1, tlen - (size_t) (open - text) - 2);
    char *comma = strchr (args, ',');
    char *second = NULL;
    if (comma) {
        *comma = 0;
        second = comma + 1;
        if (strchr (second, ','))  {
            free (args);
            return s_fail (error_p, "%s: '%s' has more than two arguments", where, text);
        }
    }
    int rc = -1;
    if (!lb_source_name_ok (args) || s_column_sources (self, args) == 0) {
        s_fail (error_p, "%s: '%s' is not a column of a source", where, args);
        goto out;
    }
    f->column = lb_xstrdup (args);
    if (s_index (s_windowed, S_COUNT (s_windowed), f->fn) >= 0) {
        char *end = NULL;
        long n = second ? strtol (second, &end, 10) : 0;
        if (!second || !*second || *end || n < 1 || n > 1000) {
            s_fail (error_p, "%s: '%s' needs a window of 1 to 1000 rows: %s(COLUMN,N)", where, text, f->fn);
            goto out;
        }
        f->window = (int) n;
        if (s_is_time_column (self, f->column)) {
            s_fail (error_p, "%s: '%s' applies %s to a time column", where, text, f->fn);
            goto out;
        }
    }
    else
    if (s_index (s_calendar, S_COUNT (s_calendar), f->fn) >= 0) {
        if (second) {
            s_fail (error_p, "%s: '%s': %s takes one argument", where, text, f->fn);
            goto out;
        }
        if (!s_is_time_column (self, f->column)) {
            s_fail (error_p, "%s: '%s': %s needs a source's time_column", where, text, f->fn);
            goto out;
        }
    }
    else
    if (strcmp (f->fn, "spread") == 0) {
        if (!second || !lb_source_name_ok (second) || s_column_sources (self, second) == 0) {
            s_fail (error_p, "%s: '%s' needs two columns: spread(COLUMN,COLUMN)", where, text);
            goto out;
        }
        f->column2 = lb_xstrdup (second);
    }
    else {
        s_fail (error_p, "%s: unknown function '%.32s' (windowed: lag diff ret logret sma_ratio "
                "ema_ratio zscore vol rsi range_pos; calendar: dow month dayofyear hour; spread)",
                where, f->fn);
        goto out;
    }
    rc = 0;
out:
    free (args);
    return rc;
}

//  --------------------------------------------------------------------------
//  Fingerprint

static int
s_strcmp_p (const void *a, const void *b)
{
    return strcmp (*(char *const *) a, *(char *const *) b);
}

static void
s_fingerprint (pr_task_t *self)
{
    //  Each source: uri{col=value,...} with conditions sorted; sources sorted.
    char **parts = lb_xcalloc (self->source_count, sizeof (char *));
    size_t total = 64;
    for (size_t i = 0; i < self->source_count; i++) {
        pr_source_t *src = &self->sources [i];
        char *conds [PR_TASK_MAX_WHERE];
        for (size_t w = 0; w < src->where_count; w++)
            conds [w] = lb_xasprintf ("%s=%s", src->where [w].column, src->where [w].value);
        qsort (conds, src->where_count, sizeof (char *), s_strcmp_p);
        char *text = lb_xasprintf ("%s{", src->uri);
        for (size_t w = 0; w < src->where_count; w++) {
            char *more = lb_xasprintf ("%s%s%s", text, w ? "," : "", conds [w]);
            free (text);
            free (conds [w]);
            text = more;
        }
        parts [i] = lb_xasprintf ("%s}", text);
        free (text);
        total += strlen (parts [i]) + 1;
    }
    qsort (parts, self->source_count, sizeof (char *), s_strcmp_p);
    char *identity = lb_xstrdup ("pr_task/1|");
    for (size_t i = 0; i < self->source_count; i++) {
        char *more = lb_xasprintf ("%s%s|", identity, parts [i]);
        free (identity);
        free (parts [i]);
        identity = more;
    }
    free (parts);
    char *full = self->target.kind == PR_TARGET_THRESHOLD
        ? lb_xasprintf ("%starget=%s:%s:%d:%.17g", identity, self->target.column,
                        s_kind_names [self->target.kind], self->target.horizon, self->target.threshold)
        : lb_xasprintf ("%starget=%s:%s:%d", identity, self->target.column,
                        s_kind_names [self->target.kind], self->target.horizon);
    unsigned char hash [crypto_hash_sha256_BYTES];
    crypto_hash_sha256 (hash, (const unsigned char *) full, strlen (full));
    for (size_t i = 0; i < sizeof hash; i++)
        snprintf (self->fingerprint + 2 * i, 3, "%02x", hash [i]);
    free (identity);
    free (full);
}

//  --------------------------------------------------------------------------
//  Parser

bool
pr_task_metric_fits (pr_task_type_t type, const char *metric)
{
    assert (metric);
    switch (type) {
        case PR_TASK_BINARY:
            return s_index (s_metrics_binary, S_COUNT (s_metrics_binary), metric) >= 0;
        case PR_TASK_MULTICLASS:
            return s_index (s_metrics_multi, S_COUNT (s_metrics_multi), metric) >= 0;
        case PR_TASK_REGRESSION:
            return s_index (s_metrics_regr, S_COUNT (s_metrics_regr), metric) >= 0;
        case PR_TASK_SEQUENCE:
            return s_index (s_metrics_binary, S_COUNT (s_metrics_binary), metric) >= 0
                || s_index (s_metrics_multi, S_COUNT (s_metrics_multi), metric) >= 0
                || s_index (s_metrics_regr, S_COUNT (s_metrics_regr), metric) >= 0;
    }
    return false;
}

static int
s_parse (pr_task_t *self, const json_t *root, char **error_p)
{
    static const char *keys [] = {
        "version", "name", "hypothesis", "novelty", "task_type", "sources", "target", "features",
        "window", "metric", "model_families"
    };
    if (!json_is_object (root))
        return s_fail (error_p, "task: must be a JSON object, not %s", s_json_type (root));
    if (s_only_keys (root, "", keys, S_COUNT (keys), error_p))
        return -1;
    int64_t n = 0;
    if (s_get_int (root, "", "version", true, PR_TASK_VERSION, PR_TASK_VERSION, &n, error_p))
        return -1;
    self->version = (int) n;
    if (s_get_text (root, "", "name", true, 3, 64, &self->name, error_p))
        return -1;
    for (const char *p = self->name; *p; p++)
        if (!(islower ((unsigned char) *p) || isdigit ((unsigned char) *p) || *p == '_' || *p == '-'))
            return s_fail (error_p, "name: '%s' may hold only a-z, 0-9, '_' and '-'", self->name);
    if (s_get_text (root, "", "hypothesis", true, 20, 2000, &self->hypothesis, error_p)
        || s_get_text (root, "", "novelty", true, 10, 1000, &self->novelty, error_p))
        return -1;
    int type;
    if (s_get_enum (root, "", "task_type", s_type_names, S_COUNT (s_type_names), &type, error_p))
        return -1;
    self->task_type = (pr_task_type_t) type;

    //  Sources
    const json_t *sources = json_object_get (root, "sources");
    if (!sources)
        return s_fail (error_p, "sources: missing");
    if (!json_is_array (sources))
        return s_fail (error_p, "sources: must be an array, not %s", s_json_type (sources));
    size_t count = json_array_size (sources);
    if (count < 1 || count > PR_TASK_MAX_SOURCES)
        return s_fail (error_p, "sources: %zu sources (must be 1 to %d)", count, PR_TASK_MAX_SOURCES);
    self->sources = lb_xcalloc (count, sizeof (pr_source_t));
    int64_t total = 0;
    for (size_t i = 0; i < count; i++) {
        char where [32];
        snprintf (where, sizeof where, "sources[%zu]", i);
        self->source_count = i + 1;
        if (s_parse_source (&self->sources [i], json_array_get (sources, i), where, error_p))
            return -1;
        total += self->sources [i].size_bytes;
        for (size_t j = 0; j < i; j++)
            if (strcmp (self->sources [j].uri, self->sources [i].uri) == 0
                && self->sources [j].where_count == 0 && self->sources [i].where_count == 0)
                return s_fail (error_p, "%s.uri: same source as sources[%zu]", where, j);
    }
    if (total > PR_TASK_MAX_BYTES)
        return s_fail (error_p, "sources: declared sizes add up to %lld bytes, over 1 GiB", (long long) total);
    //  A column other than a time column may live in one source only.
    for (size_t i = 0; i < count; i++)
        for (size_t c = 0; c < self->sources [i].column_count; c++) {
            const char *name = self->sources [i].columns [c];
            if (s_column_sources (self, name) > 1 && !s_is_time_column (self, name))
                return s_fail (error_p, "sources[%zu].columns: '%s' is in several sources (ambiguous; "
                               "only time columns may be shared)", i, name);
        }

    //  Target
    const json_t *target = json_object_get (root, "target");
    static const char *tkeys [] = { "column", "kind", "horizon", "threshold" };
    if (!target)
        return s_fail (error_p, "target: missing");
    if (!json_is_object (target))
        return s_fail (error_p, "target: must be an object, not %s", s_json_type (target));
    if (s_only_keys (target, "target", tkeys, S_COUNT (tkeys), error_p)
        || s_get_text (target, "target", "column", true, 1, 63, &self->target.column, error_p))
        return -1;
    if (s_column_sources (self, self->target.column) == 0)
        return s_fail (error_p, "target.column: '%s' is not among the columns of the sources",
                       self->target.column);
    if (s_is_time_column (self, self->target.column))
        return s_fail (error_p, "target.column: '%s' is a time column", self->target.column);
    int kind;
    if (s_get_enum (target, "target", "kind", s_kind_names, S_COUNT (s_kind_names), &kind, error_p)
        || s_get_int (target, "target", "horizon", true, 0, 10000, &n, error_p))
        return -1;
    self->target.kind = (pr_target_kind_t) kind;
    self->target.horizon = (int) n;
    if (n == 0 && kind != PR_TARGET_CLASS && kind != PR_TARGET_VALUE)
        return s_fail (error_p, "target.horizon: 0 is only allowed for kinds class and value");
    if (n < 2 && (kind == PR_TARGET_VOLATILITY || kind == PR_TARGET_VOL_REGIME))
        return s_fail (error_p, "target.horizon: %s needs a horizon of at least 2", s_kind_names [kind]);
    const json_t *threshold = json_object_get (target, "threshold");
    if (kind == PR_TARGET_THRESHOLD) {
        if (!threshold)
            return s_fail (error_p, "target.threshold: missing (required for kind threshold)");
        if (!json_is_number (threshold) || !isfinite (json_number_value (threshold)))
            return s_fail (error_p, "target.threshold: must be a number, not %s", s_json_type (threshold));
        self->target.threshold = json_number_value (threshold);
    }
    else
    if (threshold)
        return s_fail (error_p, "target.threshold: only for kind threshold");
    bool regression_kind = kind == PR_TARGET_VALUE || kind == PR_TARGET_RETURN || kind == PR_TARGET_VOLATILITY;
    bool fits = self->task_type == PR_TASK_SEQUENCE
        || (self->task_type == PR_TASK_REGRESSION && regression_kind)
        || (self->task_type == PR_TASK_MULTICLASS && kind == PR_TARGET_CLASS)
        || (self->task_type == PR_TASK_BINARY && !regression_kind);
    if (!fits)
        return s_fail (error_p, "target.kind: '%s' does not fit task_type '%s'", s_kind_names [kind],
                       s_type_names [self->task_type]);

    //  Features
    const json_t *features = json_object_get (root, "features");
    if (!features)
        return s_fail (error_p, "features: missing");
    if (!json_is_array (features))
        return s_fail (error_p, "features: must be an array, not %s", s_json_type (features));
    count = json_array_size (features);
    if (count < 1 || count > PR_TASK_MAX_FEATURES)
        return s_fail (error_p, "features: %zu features (must be 1 to %d)", count, PR_TASK_MAX_FEATURES);
    self->features = lb_xcalloc (count, sizeof (pr_feature_t));
    for (size_t i = 0; i < count; i++) {
        char where [32];
        snprintf (where, sizeof where, "features[%zu]", i);
        const json_t *f = json_array_get (features, i);
        if (!json_is_string (f))
            return s_fail (error_p, "%s: must be a string, not %s", where, s_json_type (f));
        self->feature_count = i + 1;
        if (s_parse_feature (self, &self->features [i], json_string_value (f), where, error_p))
            return -1;
        for (size_t j = 0; j < i; j++)
            if (strcmp (self->features [j].text, self->features [i].text) == 0)
                return s_fail (error_p, "%s: '%s' repeats features[%zu]", where, self->features [i].text, j);
        //  The target itself, unlagged, would leak for horizon 0.
        if (self->target.horizon == 0 && !self->features [i].fn
            && strcmp (self->features [i].column, self->target.column) == 0)
            return s_fail (error_p, "%s: '%s' is the target itself (horizon 0)", where, self->target.column);
    }

    n = 64;
    if (s_get_int (root, "", "window", false, 1, 1024, &n, error_p))
        return -1;
    self->window = (int) n;
    if (s_get_text (root, "", "metric", true, 1, 32, &self->metric, error_p))
        return -1;
    if (!pr_task_metric_fits (self->task_type, self->metric))
        return s_fail (error_p, "metric: '%s' does not fit task_type '%s'", self->metric,
                       s_type_names [self->task_type]);
    if (self->task_type == PR_TASK_SEQUENCE
        && pr_task_metric_fits (PR_TASK_REGRESSION, self->metric) != regression_kind)
        return s_fail (error_p, "metric: '%s' does not fit target kind '%s'", self->metric, s_kind_names [kind]);

    const json_t *families = json_object_get (root, "model_families");
    if (!families)
        return s_fail (error_p, "model_families: missing");
    if (!json_is_array (families))
        return s_fail (error_p, "model_families: must be an array, not %s", s_json_type (families));
    count = json_array_size (families);
    if (count < 1 || count > PR_TASK_MAX_FAMILIES)
        return s_fail (error_p, "model_families: %zu entries (must be 1 to %d)", count, PR_TASK_MAX_FAMILIES);
    for (size_t i = 0; i < count; i++) {
        const char *name = json_string_value (json_array_get (families, i));
        int k = name ? s_index (s_family_names, S_COUNT (s_family_names), name) : -1;
        if (k < 0)
            return s_fail (error_p, "model_families[%zu]: must be one of xgboost, random_forest, mlp, "
                           "transformer", i);
        if (self->families & (1u << k))
            return s_fail (error_p, "model_families[%zu]: '%s' appears twice", i, name);
        self->families |= 1u << k;
    }
    s_fingerprint (self);
    return 0;
}

pr_task_t *
pr_task_from_jansson (const void *json, char **error_p)
{
    assert (json);
    pr_task_t *self = lb_xcalloc (1, sizeof *self);
    if (s_parse (self, json, error_p))
        pr_task_destroy (&self);
    return self;
}

pr_task_t *
pr_task_from_json (const char *text, size_t len, char **error_p)
{
    assert (text);
    if (len > PR_TASK_MAX_JSON) {
        s_fail (error_p, "task: JSON is %zu bytes (at most %d)", len, PR_TASK_MAX_JSON);
        return NULL;
    }
    json_error_t jerr;
    json_t *root = json_loadb (text, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        s_fail (error_p, "task: invalid JSON at line %d column %d: %s", jerr.line, jerr.column, jerr.text);
        return NULL;
    }
    pr_task_t *self = pr_task_from_jansson (root, error_p);
    json_decref (root);
    return self;
}

int
pr_task_check_sources (const pr_task_t *self, void *netpolicy, size_t max_sources,
                       int64_t max_bytes, char **error_p)
{
    assert (self && netpolicy);
    if (max_sources == 0 || max_sources > PR_TASK_MAX_SOURCES)
        max_sources = PR_TASK_MAX_SOURCES;
    if (max_bytes <= 0 || max_bytes > PR_TASK_MAX_BYTES)
        max_bytes = PR_TASK_MAX_BYTES;
    if (self->source_count > max_sources)
        return s_fail (error_p, "sources: %zu sources, more than the %zu allowed (sources.max_count)",
                       self->source_count, max_sources);
    int64_t total = 0;
    for (size_t i = 0; i < self->source_count; i++) {
        char *why = NULL;
        if (lb_netpolicy_check_uri (netpolicy, self->sources [i].uri, &why)) {
            s_fail (error_p, "sources[%zu].uri: %s", i, why);
            free (why);
            return -1;
        }
        total += self->sources [i].size_bytes;
    }
    if (total > max_bytes)
        return s_fail (error_p, "sources: declared sizes add up to %lld bytes, over the %lld allowed "
                       "(sources.max_bytes)", (long long) total, (long long) max_bytes);
    return 0;
}

//  --------------------------------------------------------------------------
//  Writer

char *
pr_task_to_json (const pr_task_t *self)
{
    assert (self);
    json_t *root = json_object ();
    json_object_set_new (root, "version", json_integer (self->version));
    json_object_set_new (root, "name", json_string (self->name));
    json_object_set_new (root, "hypothesis", json_string (self->hypothesis));
    json_object_set_new (root, "novelty", json_string (self->novelty));
    json_object_set_new (root, "task_type", json_string (s_type_names [self->task_type]));
    json_t *sources = json_array ();
    for (size_t i = 0; i < self->source_count; i++) {
        const pr_source_t *src = &self->sources [i];
        json_t *s = json_object ();
        json_object_set_new (s, "uri", json_string (src->uri));
        json_object_set_new (s, "format", json_string (s_format_names [src->format]));
        if (src->format == PR_FORMAT_CSV) {
            char d [2] = { src->delimiter, 0 };
            json_object_set_new (s, "delimiter", json_string (d));
            json_object_set_new (s, "header", json_boolean (src->header));
        }
        json_t *cols = json_array ();
        for (size_t c = 0; c < src->column_count; c++)
            json_array_append_new (cols, json_string (src->columns [c]));
        json_object_set_new (s, "columns", cols);
        if (src->time_column)
            json_object_set_new (s, "time_column", json_string (src->time_column));
        if (src->where_count) {
            json_t *w = json_object ();
            for (size_t k = 0; k < src->where_count; k++)
                json_object_set_new (w, src->where [k].column, json_string (src->where [k].value));
            json_object_set_new (s, "where", w);
        }
        json_object_set_new (s, "size_bytes", json_integer (src->size_bytes));
        if (src->sha256)
            json_object_set_new (s, "sha256", json_string (src->sha256));
        json_array_append_new (sources, s);
    }
    json_object_set_new (root, "sources", sources);
    json_t *target = json_object ();
    json_object_set_new (target, "column", json_string (self->target.column));
    json_object_set_new (target, "kind", json_string (s_kind_names [self->target.kind]));
    json_object_set_new (target, "horizon", json_integer (self->target.horizon));
    if (self->target.kind == PR_TARGET_THRESHOLD)
        json_object_set_new (target, "threshold", json_real (self->target.threshold));
    json_object_set_new (root, "target", target);
    json_t *features = json_array ();
    for (size_t i = 0; i < self->feature_count; i++)
        json_array_append_new (features, json_string (self->features [i].text));
    json_object_set_new (root, "features", features);
    json_object_set_new (root, "window", json_integer (self->window));
    json_object_set_new (root, "metric", json_string (self->metric));
    json_t *families = json_array ();
    for (size_t k = 0; k < S_COUNT (s_family_names); k++)
        if (self->families & (1u << k))
            json_array_append_new (families, json_string (s_family_names [k]));
    json_object_set_new (root, "model_families", families);
    char *text = json_dumps (root, JSON_COMPACT | JSON_REAL_PRECISION (17));
    json_decref (root);
    assert (text);
    char *copy = lb_xstrdup (text);
    free (text);
    return copy;
}

const char *
pr_task_type_name (pr_task_type_t type)
{
    assert ((size_t) type < S_COUNT (s_type_names));
    return s_type_names [type];
}

const char *
pr_target_kind_name (pr_target_kind_t kind)
{
    assert ((size_t) kind < S_COUNT (s_kind_names));
    return s_kind_names [kind];
}

const char *
pr_family_name (pr_family_t family)
{
    for (size_t k = 0; k < S_COUNT (s_family_names); k++)
        if ((unsigned) family == (1u << k))
            return s_family_names [k];
    assert (false);
    return NULL;
}

//  The forced tool's input_schema. Descriptions carry the grammar the
//  validator enforces, so that the model can meet it.
static const char s_schema [] =
"{\"type\":\"object\",\"additionalProperties\":false,"
"\"required\":[\"version\",\"name\",\"hypothesis\",\"novelty\",\"task_type\",\"sources\",\"target\","
"\"features\",\"metric\",\"model_families\"],"
"\"properties\":{"
"\"version\":{\"type\":\"integer\",\"enum\":[1]},"
"\"name\":{\"type\":\"string\",\"description\":\"3-64 characters of a-z 0-9 _ -\"},"
"\"hypothesis\":{\"type\":\"string\",\"description\":\"one paragraph (20-2000 characters): what is "
"predicted from what, and why it should work\"},"
"\"novelty\":{\"type\":\"string\",\"description\":\"why this differs from every past task (10-1000 characters)\"},"
"\"task_type\":{\"type\":\"string\",\"enum\":[\"binary\",\"multiclass\",\"regression\",\"sequence\"]},"
"\"sources\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":8,\"items\":{\"type\":\"object\","
"\"additionalProperties\":false,\"required\":[\"uri\",\"format\",\"columns\",\"size_bytes\"],"
"\"properties\":{"
"\"uri\":{\"type\":\"string\",\"description\":\"https://public-host/path, pg:market_bars, "
"pg:pattern_training_data, or debian:PACKAGE:/ABSOLUTE/PATH for a data file a Debian package ships\"},"
"\"format\":{\"type\":\"string\",\"enum\":[\"csv\",\"json\",\"table\"],\"description\":\"table for pg: sources\"},"
"\"delimiter\":{\"type\":\"string\",\"description\":\"csv only, one character\"},"
"\"header\":{\"type\":\"boolean\",\"description\":\"csv only: the first line is a header to skip\"},"
"\"columns\":{\"type\":\"array\",\"items\":{\"type\":\"string\"},\"description\":\"names for the "
"columns in file order, each [a-z_][a-z0-9_]*\"},"
"\"time_column\":{\"type\":\"string\",\"description\":\"column that orders rows and joins sources\"},"
"\"where\":{\"type\":\"object\",\"additionalProperties\":{\"type\":\"string\"},\"description\":"
"\"keep rows whose column equals the value, e.g. {\\\"symbol\\\":\\\"MSFT\\\"}\"},"
"\"size_bytes\":{\"type\":\"integer\",\"description\":\"expected size, at most 1073741824\"},"
"\"sha256\":{\"type\":\"string\"}}}},"
"\"target\":{\"type\":\"object\",\"additionalProperties\":false,\"required\":[\"column\",\"kind\",\"horizon\"],"
"\"properties\":{\"column\":{\"type\":\"string\",\"description\":\"a column of a source, not a time column\"},"
"\"kind\":{\"type\":\"string\",\"enum\":[\"class\",\"value\",\"direction\",\"return\",\"threshold\","
"\"volatility\",\"vol_regime\"]},"
"\"horizon\":{\"type\":\"integer\",\"description\":\"rows ahead, 0-10000 (0 only for class and value, "
"2+ for volatility and vol_regime)\"},"
"\"threshold\":{\"type\":\"number\",\"description\":\"only for kind threshold\"}}},"
"\"features\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":64,\"items\":{\"type\":\"string\"},"
"\"description\":\"COLUMN, FN(COLUMN,N) with FN in lag diff ret logret sma_ratio ema_ratio zscore vol "
"rsi range_pos and N 1-1000, dow|month|dayofyear|hour(TIME_COLUMN), or spread(COLUMN,COLUMN)\"},"
"\"window\":{\"type\":\"integer\",\"description\":\"lookback rows for sequence models, 1-1024\"},"
"\"metric\":{\"type\":\"string\",\"enum\":[\"accuracy\",\"f1\",\"precision\",\"recall\",\"roc_auc\","
"\"log_loss\",\"f1_macro\",\"rmse\",\"mae\",\"r2\"]},"
"\"model_families\":{\"type\":\"array\",\"minItems\":1,\"maxItems\":4,\"items\":{\"type\":\"string\","
"\"enum\":[\"xgboost\",\"random_forest\",\"mlp\",\"transformer\"]}}}}";

char *
pr_task_json_schema (void)
{
    return lb_xstrdup (s_schema);
}

//  --------------------------------------------------------------------------
//  Selftest

static const char s_good [] =
"{\"version\":1,\"name\":\"seattle_rain_tomorrow\","
"\"hypothesis\":\"Whether it rains in Seattle tomorrow follows from today's temperature spread and wind.\","
"\"novelty\":\"No past task used the Seattle weather data.\","
"\"task_type\":\"binary\","
"\"sources\":[{\"uri\":\"debian:python3-vega-datasets:/usr/lib/python3/dist-packages/vega_datasets/_data/seattle-weather.csv\","
"\"format\":\"csv\",\"columns\":[\"date\",\"precipitation\",\"temp_max\",\"temp_min\",\"wind\",\"weather\"],"
"\"time_column\":\"date\",\"size_bytes\":47838}],"
"\"target\":{\"column\":\"precipitation\",\"kind\":\"threshold\",\"horizon\":1,\"threshold\":0},"
"\"features\":[\"temp_max\",\"ret(temp_max, 3)\",\"spread(temp_max,temp_min)\",\"month(date)\",\"wind\"],"
"\"metric\":\"roc_auc\",\"model_families\":[\"xgboost\",\"mlp\"]}";

//  Returns s_good with the first occurrence of from replaced by to.
static char *
s_mutate (const char *from, const char *to)
{
    const char *at = strstr (s_good, from);
    assert (at);
    return lb_xasprintf ("%.*s%s%s", (int) (at - s_good), s_good, to, at + strlen (from));
}

static void
s_expect_bad (const char *from, const char *to, const char *want, bool verbose)
{
    char *text = s_mutate (from, to);
    char *error = NULL;
    pr_task_t *task = pr_task_from_json (text, strlen (text), &error);
    if (verbose)
        printf ("  %-60.60s -> %s\n", to, error ? error : "ACCEPTED");
    if (task || !error || !strstr (error, want))
        fprintf (stderr, "mutation '%s' -> '%s': got '%s', wanted '%s'\n", from, to,
                 error ? error : "accepted", want);
    assert (!task && error && strstr (error, want));
    free (error);
    free (text);
}

void
pr_task_test (bool verbose)
{
    if (verbose)
        printf ("\n");
    char *error = NULL;
    pr_task_t *task = pr_task_from_json (s_good, strlen (s_good), &error);
    if (!task)
        fprintf (stderr, "good spec rejected: %s\n", error);
    assert (task && !error);
    assert (strcmp (task->name, "seattle_rain_tomorrow") == 0);
    assert (task->task_type == PR_TASK_BINARY && task->source_count == 1);
    assert (task->sources [0].kind == LB_SOURCE_DEBIAN && task->sources [0].format == PR_FORMAT_CSV);
    assert (task->sources [0].delimiter == ',' && task->sources [0].header);
    assert (task->target.kind == PR_TARGET_THRESHOLD && task->target.horizon == 1);
    assert (task->feature_count == 5 && task->window == 64);
    assert (strcmp (task->features [1].text, "ret(temp_max,3)") == 0);
    assert (strcmp (task->features [1].fn, "ret") == 0 && task->features [1].window == 3);
    assert (strcmp (task->features [2].column2, "temp_min") == 0);
    assert (task->features [4].fn == NULL && strcmp (task->features [4].column, "wind") == 0);
    assert (task->families == (PR_FAMILY_XGBOOST | PR_FAMILY_MLP));
    assert (strlen (task->fingerprint) == 64);

    //  Round trip.
    char *json = pr_task_to_json (task);
    pr_task_t *again = pr_task_from_json (json, strlen (json), NULL);
    assert (again);
    char *json2 = pr_task_to_json (again);
    assert (strcmp (json, json2) == 0);
    assert (strcmp (task->fingerprint, again->fingerprint) == 0);
    free (json);
    free (json2);
    pr_task_destroy (&again);

    //  The fingerprint ignores wording, features, metric and families ...
    char *text = s_mutate ("\"features\":[\"temp_max\",", "\"features\":[\"temp_min\",\"lag(temp_min,2)\",");
    char *t2 = lb_xasprintf ("%s", text);
    free (text);
    text = t2;
    pr_task_t *other = pr_task_from_json (text, strlen (text), &error);
    assert (other);
    assert (strcmp (other->fingerprint, task->fingerprint) == 0);
    pr_task_destroy (&other);
    free (text);
    //  ... but not the horizon, the target kind or the source.
    text = s_mutate ("\"horizon\":1", "\"horizon\":2");
    other = pr_task_from_json (text, strlen (text), NULL);
    assert (other && strcmp (other->fingerprint, task->fingerprint) != 0);
    pr_task_destroy (&other);
    free (text);
    text = s_mutate ("\"threshold\":0}", "\"threshold\":5}");
    other = pr_task_from_json (text, strlen (text), NULL);
    assert (other && strcmp (other->fingerprint, task->fingerprint) != 0);
    pr_task_destroy (&other);
    free (text);

    //  Sources: order and where-order do not change the fingerprint.
    const char *two_a =
        "{\"version\":1,\"name\":\"two\",\"hypothesis\":\"MSFT monthly price direction from AAPL's momentum.\","
        "\"novelty\":\"cross-symbol lead\",\"task_type\":\"binary\",\"sources\":["
        "{\"uri\":\"pg:market_bars\",\"format\":\"table\",\"columns\":[\"ts\",\"close\",\"symbol\"],"
        "\"time_column\":\"ts\",\"where\":{\"symbol\":\"AAPL\"},\"size_bytes\":1000},"
        "{\"uri\":\"https://data.example.org/msft.csv\",\"format\":\"csv\",\"delimiter\":\";\","
        "\"columns\":[\"ts\",\"msft_close\",\"msft_volume\"],\"time_column\":\"ts\",\"size_bytes\":5000}],"
        "\"target\":{\"column\":\"msft_close\",\"kind\":\"direction\",\"horizon\":5},"
        "\"features\":[\"ret(close,5)\",\"rsi(msft_close,14)\",\"dow(ts)\"],\"window\":16,"
        "\"metric\":\"accuracy\",\"model_families\":[\"transformer\",\"xgboost\"]}";
    const char *two_b =
        "{\"version\":1,\"name\":\"two-b\",\"hypothesis\":\"Other words entirely, same prediction problem.\","
        "\"novelty\":\"reworded entirely\",\"task_type\":\"sequence\",\"sources\":["
        "{\"uri\":\"https://data.example.org/msft.csv\",\"format\":\"csv\",\"delimiter\":\";\","
        "\"columns\":[\"ts\",\"msft_close\",\"msft_volume\"],\"time_column\":\"ts\",\"size_bytes\":5000},"
        "{\"uri\":\"pg:market_bars\",\"format\":\"table\",\"columns\":[\"ts\",\"close\",\"symbol\"],"
        "\"time_column\":\"ts\",\"where\":{\"symbol\":\"AAPL\"},\"size_bytes\":1000}],"
        "\"target\":{\"column\":\"msft_close\",\"kind\":\"direction\",\"horizon\":5},"
        "\"features\":[\"msft_volume\"],\"metric\":\"f1\",\"model_families\":[\"mlp\"]}";
    pr_task_t *a = pr_task_from_json (two_a, strlen (two_a), &error);
    if (!a)
        fprintf (stderr, "two_a: %s\n", error);
    pr_task_t *b = pr_task_from_json (two_b, strlen (two_b), &error);
    if (!b)
        fprintf (stderr, "two_b: %s\n", error);
    assert (a && b);
    assert (strcmp (a->fingerprint, b->fingerprint) == 0);
    assert (a->sources [1].delimiter == ';' && a->sources [0].where_count == 1);
    assert (a->families == (PR_FAMILY_TRANSFORMER | PR_FAMILY_XGBOOST) && a->window == 16);

    //  Policy: sources checked against a netpolicy.
    lb_netpolicy_t *policy = lb_netpolicy_new ();
    assert (pr_task_check_sources (task, policy, 4, 0, &error) == 0);
    error = NULL;
    assert (pr_task_check_sources (task, policy, 4, 1000, &error) == -1);
    assert (strstr (error, "over the 1000 allowed"));
    free (error);
    assert (pr_task_check_sources (a, policy, 1, 0, &error) == -1);
    assert (strstr (error, "more than the 1 allowed"));
    free (error);
    pr_task_destroy (&a);
    pr_task_destroy (&b);
    const char *ssrf [] = {
        "https://10.0.0.5/data.csv", "https://127.0.0.1/data.csv", "https://169.254.169.254/latest",
        "https://[::1]/x.csv", "https://[fd00::5]/x.csv", "https://192.168.0.10/x.csv"
    };
    for (size_t i = 0; i < S_COUNT (ssrf); i++) {
        char *uri = lb_xasprintf ("\"uri\":\"%s\"", ssrf [i]);
        text = s_mutate ("\"uri\":\"debian:python3-vega-datasets:/usr/lib/python3/dist-packages/vega_datasets/_data/seattle-weather.csv\"",
                         uri);
        other = pr_task_from_json (text, strlen (text), &error);
        assert (other);                     //  syntax is fine ...
        error = NULL;
        assert (pr_task_check_sources (other, policy, 4, 0, &error) == -1);   //  ... policy is not
        if (verbose)
            printf ("  %-60s -> %s\n", ssrf [i], error);
        assert (strstr (error, "sources[0].uri: host") && strstr (error, "private, loopback"));
        free (error);
        pr_task_destroy (&other);
        free (text);
        free (uri);
    }
    text = s_mutate ("debian:python3-vega-datasets:/usr/lib/python3/dist-packages/vega_datasets/_data/seattle-weather.csv",
                     "file:///etc/passwd");
    other = pr_task_from_json (text, strlen (text), &error);
    assert (other);
    assert (pr_task_check_sources (other, policy, 4, 0, &error) == -1 && strstr (error, "file sources are not allowed"));
    free (error);
    pr_task_destroy (&other);
    free (text);
    lb_netpolicy_destroy (&policy);

    //  Each bad field class.
    s_expect_bad ("\"version\":1", "\"version\":2", "version: 2 is out of range", verbose);
    s_expect_bad ("\"version\":1,", "", "version: missing", verbose);
    s_expect_bad ("\"name\":\"seattle_rain_tomorrow\"", "\"name\":42", "name: must be a string, not an integer", verbose);
    s_expect_bad ("\"name\":\"seattle_rain_tomorrow\"", "\"name\":\"Rain Tomorrow\"", "name: 'Rain Tomorrow' may hold only", verbose);
    s_expect_bad ("\"novelty\"", "\"novelty\":\"x\",\"extra\"", "extra: unknown field", verbose);
    s_expect_bad ("\"hypothesis\":\"Whether it rains in Seattle tomorrow follows from today's temperature spread and wind.\"",
                  "\"hypothesis\":\"Short\"", "hypothesis: 5 characters long", verbose);
    s_expect_bad ("\"novelty\":\"No past", "\"novelty\":\"No\\u0007 past", "novelty: control character", verbose);
    s_expect_bad ("\"task_type\":\"binary\"", "\"task_type\":\"clustering\"", "task_type: 'clustering' is not one of", verbose);
    s_expect_bad ("debian:python3-vega-datasets:", "ftp://example.com/", "sources[0].uri: scheme 'ftp' is not allowed", verbose);
    s_expect_bad ("debian:python3-vega-datasets:", "gopher:", "sources[0].uri: scheme 'gopher'", verbose);
    s_expect_bad ("\"size_bytes\":47838", "\"size_bytes\":1073741825", "sources[0].size_bytes: 1073741825 is out of range", verbose);
    s_expect_bad ("\"size_bytes\":47838", "\"size_bytes\":\"47838\"", "sources[0].size_bytes: must be an integer", verbose);
    s_expect_bad ("\"size_bytes\":47838", "\"size_bytes\":0", "out of range", verbose);
    s_expect_bad ("\"column\":\"precipitation\"", "\"column\":\"snowfall\"", "target.column: 'snowfall' is not among the columns", verbose);
    s_expect_bad ("\"column\":\"precipitation\"", "\"column\":\"date\"", "target.column: 'date' is a time column", verbose);
    s_expect_bad ("\"format\":\"csv\"", "\"format\":\"table\"", "sources[0].format: 'table' does not fit", verbose);
    s_expect_bad ("\"format\":\"csv\"", "\"format\":\"parquet\"", "sources[0].format: 'parquet' is not one of", verbose);
    s_expect_bad ("\"columns\":[\"date\",", "\"columns\":[\"date\",\"date\",", "'date' appears twice", verbose);
    s_expect_bad ("\"columns\":[\"date\",", "\"columns\":[\"Date Time\",", "sources[0].columns[0]: must be a name", verbose);
    s_expect_bad ("\"columns\":[\"date\",\"precipitation\",\"temp_max\",\"temp_min\",\"wind\",\"weather\"]",
                  "\"columns\":[]", "sources[0].columns: 0 columns", verbose);
    s_expect_bad ("\"time_column\":\"date\"", "\"time_column\":\"day\"", "time_column: 'day' is not among", verbose);
    s_expect_bad ("\"sources\":[", "\"sources\":[1,", "sources[0]: must be an object", verbose);
    s_expect_bad ("\"time_column\":\"date\"", "\"time_column\":\"date\",\"where\":{\"city\":\"x\"}", "sources[0].where.city: not among", verbose);
    s_expect_bad ("\"time_column\":\"date\"", "\"time_column\":\"date\",\"sha256\":\"abc\"", "sources[0].sha256: 3 characters", verbose);
    s_expect_bad ("\"kind\":\"threshold\"", "\"kind\":\"direction\"", "target.threshold: only for kind threshold", verbose);
    s_expect_bad ("\"threshold\":0}", "\"x\":0}", "target.x: unknown field", verbose);
    s_expect_bad ("\"horizon\":1", "\"horizon\":0", "target.horizon: 0 is only allowed", verbose);
    s_expect_bad ("\"horizon\":1", "\"horizon\":-1", "target.horizon: -1 is out of range", verbose);
    s_expect_bad ("\"horizon\":1", "\"horizon\":1.5", "target.horizon: must be an integer, not a number", verbose);
    s_expect_bad ("\"task_type\":\"binary\"", "\"task_type\":\"regression\"", "target.kind: 'threshold' does not fit", verbose);
    s_expect_bad ("\"temp_max\",\"ret", "\"snow\",\"ret", "features[0]: 'snow' is neither a column", verbose);
    s_expect_bad ("\"ret(temp_max, 3)\"", "\"ret(temp_max)\"", "needs a window of 1 to 1000", verbose);
    s_expect_bad ("\"ret(temp_max, 3)\"", "\"ret(temp_max,5000)\"", "needs a window of 1 to 1000", verbose);
    s_expect_bad ("\"ret(temp_max, 3)\"", "\"system(rm)\"", "'rm' is not a column", verbose);
    s_expect_bad ("\"ret(temp_max, 3)\"", "\"exec(temp_max,1)\"", "unknown function 'exec'", verbose);
    s_expect_bad ("\"month(date)\"", "\"month(wind)\"", "month needs a source's time_column", verbose);
    s_expect_bad ("\"ret(temp_max, 3)\"", "\"ret(date,3)\"", "applies ret to a time column", verbose);
    s_expect_bad ("\"wind\"]", "\"temp_max\"]", "repeats features[0]", verbose);
    s_expect_bad ("\"metric\":\"roc_auc\"", "\"metric\":\"rmse\"", "metric: 'rmse' does not fit task_type 'binary'", verbose);
    s_expect_bad ("\"model_families\":[\"xgboost\",\"mlp\"]", "\"model_families\":[\"xgboost\",\"xgboost\"]", "'xgboost' appears twice", verbose);
    s_expect_bad ("\"model_families\":[\"xgboost\",\"mlp\"]", "\"model_families\":[\"svm\"]", "model_families[0]: must be one of", verbose);
    s_expect_bad ("\"model_families\":[\"xgboost\",\"mlp\"]", "\"model_families\":[]", "model_families: 0 entries", verbose);
    s_expect_bad ("\"metric\"", "\"window\":0,\"metric\"", "window: 0 is out of range", verbose);
    s_expect_bad ("\"features\":[\"temp_max\",\"ret(temp_max, 3)\",\"spread(temp_max,temp_min)\",\"month(date)\",\"wind\"]",
                  "\"features\":\"wind\"", "features: must be an array", verbose);

    //  Too many sources; sizes that add up past 1 GiB.
    json_t *root = json_loads (s_good, 0, NULL);
    json_t *list = json_object_get (root, "sources");
    json_t *src0 = json_deep_copy (json_array_get (list, 0));
    for (int i = 0; i < 8; i++)
        json_array_append_new (list, json_deep_copy (src0));
    assert (!pr_task_from_jansson (root, &error) && strstr (error, "sources: 9 sources (must be 1 to 8)"));
    free (error);
    json_array_clear (list);
    for (int i = 0; i < 2; i++) {
        json_t *copy = json_deep_copy (src0);
        json_object_set_new (copy, "size_bytes", json_integer (600 << 20));
        json_object_set_new (copy, "where", json_pack ("{s:s}", "weather", i ? "rain" : "sun"));
        json_array_append_new (list, copy);
    }
    error = NULL;
    assert (!pr_task_from_jansson (root, &error));
    if (!strstr (error, "over 1 GiB"))
        fprintf (stderr, "two sources: %s\n", error);
    assert (strstr (error, "over 1 GiB"));
    free (error);
    json_decref (src0);
    json_decref (root);

    //  Not JSON, not an object, duplicate keys, trailing bytes, oversize.
    const char *garbage [] = {
        "", "{", "[]", "null", "{\"version\":1,\"version\":1}", "{} trailing", "\"name\""
    };
    for (size_t i = 0; i < S_COUNT (garbage); i++) {
        error = NULL;
        assert (!pr_task_from_json (garbage [i], strlen (garbage [i]), &error));
        if (verbose)
            printf ("  %-60s -> %s\n", garbage [i], error);
        assert (error && (strncmp (error, "task: ", 6) == 0 || strstr (error, "missing")));
        free (error);
    }
    size_t big = PR_TASK_MAX_JSON + 1;
    char *huge = lb_xmalloc (big);
    memset (huge, ' ', big);
    assert (!pr_task_from_json (huge, big, &error) && strstr (error, "bytes (at most"));
    free (error);
    free (huge);

    //  The schema is JSON and names every field the parser knows.
    char *schema = pr_task_json_schema ();
    json_t *parsed = json_loads (schema, 0, NULL);
    assert (parsed && json_object_get (json_object_get (parsed, "properties"), "model_families"));
    json_decref (parsed);
    free (schema);

    assert (pr_task_metric_fits (PR_TASK_MULTICLASS, "f1_macro"));
    assert (!pr_task_metric_fits (PR_TASK_REGRESSION, "accuracy"));
    assert (pr_task_metric_fits (PR_TASK_SEQUENCE, "rmse"));
    assert (strcmp (pr_task_type_name (PR_TASK_SEQUENCE), "sequence") == 0);
    assert (strcmp (pr_target_kind_name (PR_TARGET_VOL_REGIME), "vol_regime") == 0);
    assert (strcmp (pr_family_name (PR_FAMILY_RANDOM_FOREST), "random_forest") == 0);
    pr_task_destroy (&task);
    pr_task_destroy (&task);
}
