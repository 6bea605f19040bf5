/*  wf_frame.c - task sources into frames (see wf_frame.h). */
#include "wf_frame.h"
#include "lb_csv.h"
#include "lb_log.h"
#include "wf_marketdb.h"
#include "lb_mem.h"
#include "lb_selftest.h"

#include <assert.h>
#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

void
wf_frame_release (wf_frame_t *f)
{
    assert (f);
    for (size_t c = 0; c < f->cols; c++) {
        free (f->col [c].name);
        free (f->col [c].num);
        if (f->col [c].str)
            for (size_t r = 0; r < f->rows; r++)
                free (f->col [c].str [r]);
        free (f->col [c].str);
    }
    free (f->col);
    memset (f, 0, sizeof *f);
    f->time_col = -1;
}

int
wf_frame_column (const wf_frame_t *f, const char *name)
{
    assert (f && name);
    for (size_t c = 0; c < f->cols; c++)
        if (strcmp (f->col [c].name, name) == 0)
            return (int) c;
    return -1;
}

static void
s_init (wf_frame_t *f, const pr_source_t *src, size_t rows)
{
    memset (f, 0, sizeof *f);
    f->time_col = -1;
    f->rows = rows;
    f->cols = src->column_count;
    f->col = lb_xcalloc (f->cols ? f->cols : 1, sizeof (wf_col_t));
    for (size_t c = 0; c < f->cols; c++)
        f->col [c].name = lb_xstrdup (src->columns [c]);
}

int
wf_frame_from_csv (const pr_source_t *src, const char *path, wf_frame_t *f, char **error_p)
{
    assert (src && path && f && error_p);
    lb_csv_opts_t opts;
    lb_csv_opts_default (&opts);
    opts.delimiter = src->delimiter;
    opts.header = src->header;
    lb_csv_t *csv = lb_csv_load (path, &opts, error_p);
    if (!csv)
        return -1;
    if (lb_csv_cols (csv) != src->column_count) {
        *error_p = lb_xasprintf ("%s: %zu columns (delimiter '%c'), the task names %zu", path,
                                 lb_csv_cols (csv), lb_csv_delimiter (csv), src->column_count);
        lb_csv_destroy (&csv);
        return -1;
    }
    size_t rows = lb_csv_rows (csv);
    s_init (f, src, rows);
    for (size_t c = 0; c < f->cols; c++) {
        wf_col_t *col = &f->col [c];
        if (lb_csv_type (csv, c) == LB_CSV_TEXT) {
            col->text = true;
            col->str = lb_xcalloc (rows ? rows : 1, sizeof (char *));
            for (size_t r = 0; r < rows; r++) {
                const char *v = lb_csv_text (csv, c, r);
                col->str [r] = v ? lb_xstrdup (v) : NULL;
            }
        }
        else {
            col->num = lb_xmalloc ((rows ? rows : 1) * sizeof (double));
            memcpy (col->num, lb_csv_numbers (csv, c), rows * sizeof (double));
        }
    }
    lb_csv_destroy (&csv);
    return 0;
}

int
wf_frame_from_json (const pr_source_t *src, const char *path, size_t max_bytes, wf_frame_t *f,
                    char **error_p)
{
    assert (src && path && f && error_p);
    json_error_t jerr;
    json_t *root = json_load_file (path, JSON_REJECT_DUPLICATES, &jerr);
    if (!root) {
        *error_p = lb_xasprintf ("%s: line %d: %s", path, jerr.line, jerr.text);
        return -1;
    }
    (void) max_bytes;
    if (!json_is_array (root) || json_array_size (root) == 0) {
        *error_p = lb_xasprintf ("%s: want a non-empty JSON array of objects", path);
        json_decref (root);
        return -1;
    }
    size_t rows = json_array_size (root);
    s_init (f, src, rows);
    int rc = 0;
    for (size_t c = 0; c < f->cols && rc == 0; c++) {
        wf_col_t *col = &f->col [c];
        //  Numbers if every value is a number, boolean or null; else text.
        bool number = true;
        for (size_t r = 0; r < rows && rc == 0; r++) {
            json_t *obj = json_array_get (root, r);
            if (!json_is_object (obj)) {
                *error_p = lb_xasprintf ("%s: element %zu is not an object", path, r);
                rc = -1;
                break;
            }
            json_t *v = json_object_get (obj, col->name);
            if (v && !json_is_null (v) && !json_is_number (v) && !json_is_boolean (v)) {
                double t;
                const char *s = json_is_string (v) ? json_string_value (v) : NULL;
                if (!s || !(lb_csv_parse_number (s, strlen (s), &t) || lb_csv_parse_time (s, strlen (s), &t)))
                    number = false;
            }
        }
        if (rc)
            break;
        col->text = !number;
        if (number)
            col->num = lb_xmalloc (rows * sizeof (double));
        else
            col->str = lb_xcalloc (rows, sizeof (char *));
        for (size_t r = 0; r < rows; r++) {
            json_t *v = json_object_get (json_array_get (root, r), col->name);
            if (number) {
                double t = NAN;
                if (json_is_number (v))
                    t = json_number_value (v);
                else
                if (json_is_boolean (v))
                    t = json_is_true (v) ? 1 : 0;
                else
                if (json_is_string (v)) {
                    const char *s = json_string_value (v);
                    if (!lb_csv_parse_number (s, strlen (s), &t))
                        lb_csv_parse_time (s, strlen (s), &t);
                }
                col->num [r] = t;
            }
            else
            if (json_is_string (v))
                col->str [r] = lb_xstrdup (json_string_value (v));
            else
            if (v && !json_is_null (v)) {
                char *text = json_dumps (v, JSON_ENCODE_ANY | JSON_COMPACT);
                col->str [r] = lb_xstrdup (text ? text : "");
                free (text);
            }
        }
    }
    json_decref (root);
    if (rc)
        wf_frame_release (f);
    return rc;
}

typedef struct {
    wf_frame_t *f;
    size_t max;
    const wf_marketdb_kind_t *kinds;
    const char *table;
    char **error_p;
} s_table_reader_t;

static int
s_table_row (void *arg, char **fields, size_t line_no)
{
    s_table_reader_t *t = arg;
    wf_frame_t *f = t->f;
    if (f->rows == t->max) {
        t->max = t->max ? 2 * t->max : 4096;
        for (size_t c = 0; c < f->cols; c++)
            if (f->col [c].text)
                f->col [c].str = lb_xrealloc (f->col [c].str, t->max * sizeof (char *));
            else
                f->col [c].num = lb_xrealloc (f->col [c].num, t->max * sizeof (double));
    }
    size_t r = f->rows;
    for (size_t c = 0; c < f->cols; c++) {
        const char *v = fields [c];
        if (f->col [c].text) {
            f->col [c].str [r] = v ? lb_xstrdup (v) : NULL;
            continue;
        }
        double x = NAN;
        if (v) {
            if (strcmp (v, "t") == 0 || strcmp (v, "f") == 0)
                x = v [0] == 't';
            else
            if (strcmp (v, "Infinity") == 0 || strcmp (v, "-Infinity") == 0)
                x = v [0] == '-' ? -INFINITY : INFINITY;        //  wf_frame_check_prices names it
            else
            if (!lb_csv_parse_number (v, strlen (v), &x) && strcmp (v, "NaN") != 0) {
                //  Fill the row's remaining cells so the frame stays whole.
                for (size_t k = c; k < f->cols; k++)
                    if (f->col [k].text)
                        f->col [k].str [r] = NULL;
                    else
                        f->col [k].num [r] = NAN;
                f->rows++;
                *t->error_p = lb_xasprintf ("%s row %zu: column %s: '%.40s' is not a finite number",
                                            t->table, line_no, f->col [c].name, v);
                return -1;
            }
        }
        f->col [c].num [r] = x;
    }
    f->rows++;
    return 0;
}

int
wf_frame_from_table (PGconn *conn, const pr_source_t *src, const char *table, wf_frame_t *f,
                     char **error_p, bool *retryable)
{
    assert (conn && src && table && f && error_p);
    *retryable = false;
    size_t n = src->column_count;
    if (n > 32) {
        *error_p = lb_xasprintf ("table %s: at most 32 columns can be read, the task names %zu", table, n);
        return -1;
    }
    wf_marketdb_kind_t kinds [32];
    int found = wf_marketdb_column_kinds (conn, table, (const char *const *) src->columns, n, kinds,
                                          error_p, retryable);
    if (found != 1)
        return -1;
    for (size_t c = 0; c < n; c++) {
        if (kinds [c] == WF_MARKETDB_MISSING) {
            *error_p = lb_xasprintf ("column %s.%s does not exist", table, src->columns [c]);
            return -1;
        }
        if (kinds [c] == WF_MARKETDB_OTHER) {
            *error_p = lb_xasprintf ("column %s.%s has a type that is neither a number, a time nor text",
                                     table, src->columns [c]);
            return -1;
        }
    }
    size_t size = 256;
    char *sql = lb_xmalloc (size), *w = sql;
    #define S_APPEND(...) do { \
        int s_n = snprintf (NULL, 0, __VA_ARGS__); \
        size_t s_used = (size_t) (w - sql); \
        if (s_used + (size_t) s_n + 1 > size) { size = 2 * (s_used + (size_t) s_n + 1); \
            sql = lb_xrealloc (sql, size); w = sql + s_used; } \
        w += snprintf (w, size - (size_t) (w - sql), __VA_ARGS__); } while (0)
    S_APPEND ("select ");
    for (size_t c = 0; c < n; c++) {
        char *id = PQescapeIdentifier (conn, src->columns [c], strlen (src->columns [c]));
        if (kinds [c] == WF_MARKETDB_TIME)
            S_APPEND ("%sextract (epoch from %s)::float8", c ? ", " : "", id);
        else
            S_APPEND ("%s%s", c ? ", " : "", id);
        PQfreemem (id);
    }
    char *tid = PQescapeIdentifier (conn, table, strlen (table));
    S_APPEND (" from %s where true", tid);
    PQfreemem (tid);
    for (size_t k = 0; k < src->where_count; k++) {
        char *id = PQescapeIdentifier (conn, src->where [k].column, strlen (src->where [k].column));
        char *lit = PQescapeLiteral (conn, src->where [k].value, strlen (src->where [k].value));
        S_APPEND (" and (%s)::text = %s", id, lit);
        PQfreemem (id);
        PQfreemem (lit);
    }
    if (src->time_column) {
        char *id = PQescapeIdentifier (conn, src->time_column, strlen (src->time_column));
        S_APPEND (" order by %s", id);
        PQfreemem (id);
    }
    #undef S_APPEND
    s_init (f, src, 0);
    for (size_t c = 0; c < n; c++)
        f->col [c].text = kinds [c] == WF_MARKETDB_TEXT;
    s_table_reader_t t = { f, 0, kinds, table, error_p };
    int rc = wf_marketdb_copy_out (conn, sql, (int) n, s_table_row, &t, error_p, retryable);
    free (sql);
    if (rc == 0 && f->rows == 0) {
        *error_p = lb_xasprintf ("table %s: no rows match the source (where-filters: %zu)", table,
                                 src->where_count);
        rc = -1;
    }
    if (rc)
        wf_frame_release (f);
    return rc;
}

int
wf_frame_check_prices (const wf_frame_t *f, const char *table, char **error_p)
{
    static const char *prices [] = { "open", "high", "low", "close", "volume" };
    int sym = wf_frame_column (f, "symbol");
    for (int k = 0; k < 5; k++) {
        int c = wf_frame_column (f, prices [k]);
        if (c < 0 || f->col [c].text)
            continue;
        for (size_t r = 0; r < f->rows; r++) {
            double v = f->col [c].num [r];
            const char *bad = isnan (v) ? "is NaN" : isinf (v) ? "is infinite"
                            : v < 0 || (k < 4 && v == 0) ? "is not positive" : NULL;
            if (!bad)
                continue;
            char when [40] = "?";
            if (f->time_col >= 0 && !isnan (f->col [f->time_col].num [r])) {
                time_t t = (time_t) f->col [f->time_col].num [r];
                struct tm tm;
                gmtime_r (&t, &tm);
                strftime (when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
            }
            *error_p = lb_xasprintf ("%s: symbol %s ts %s: %s %s", table,
                                     sym >= 0 && f->col [sym].text && f->col [sym].str [r] ? f->col [sym].str [r] : "?",
                                     when, prices [k], bad);
            return -1;
        }
    }
    return 0;
}

// ---------------------------------------------------------------- prepare

//  Stable order of rows by key (merge sort on indexes; no global state).
static void
s_merge_sort (size_t *idx, size_t *tmp, size_t n, const double *key)
{
    if (n < 2)
        return;
    size_t h = n / 2;
    s_merge_sort (idx, tmp, h, key);
    s_merge_sort (idx + h, tmp, n - h, key);
    size_t i = 0, j = h, k = 0;
    while (i < h && j < n)
        tmp [k++] = key [idx [j]] < key [idx [i]] ? idx [j++] : idx [i++];
    while (i < h)
        tmp [k++] = idx [i++];
    while (j < n)
        tmp [k++] = idx [j++];
    memcpy (idx, tmp, n * sizeof (size_t));
}

//  Keeps the n rows idx names, in that order.
static void
s_reorder (wf_frame_t *f, const size_t *idx, size_t n)
{
    for (size_t c = 0; c < f->cols; c++) {
        wf_col_t *col = &f->col [c];
        if (col->text) {
            char **s = lb_xcalloc (n ? n : 1, sizeof (char *));
            bool *used = lb_xcalloc (f->rows ? f->rows : 1, sizeof (bool));
            for (size_t r = 0; r < n; r++) {
                s [r] = col->str [idx [r]];
                used [idx [r]] = true;
            }
            for (size_t r = 0; r < f->rows; r++)
                if (!used [r])
                    free (col->str [r]);
            free (used);
            free (col->str);
            col->str = s;
        }
        else {
            double *v = lb_xmalloc ((n ? n : 1) * sizeof (double));
            for (size_t r = 0; r < n; r++)
                v [r] = col->num [idx [r]];
            free (col->num);
            col->num = v;
        }
    }
    f->rows = n;
}

int
wf_frame_prepare (const pr_source_t *src, wf_frame_t *f, char **error_p)
{
    assert (src && f && error_p);
    size_t *idx = lb_xmalloc ((f->rows ? f->rows : 1) * sizeof (size_t));
    size_t n = 0;
    int wcol [PR_TASK_MAX_WHERE];
    double wnum [PR_TASK_MAX_WHERE];
    for (size_t k = 0; k < src->where_count; k++) {
        wcol [k] = wf_frame_column (f, src->where [k].column);
        if (wcol [k] < 0) {
            *error_p = lb_xasprintf ("where: no column %s", src->where [k].column);
            free (idx);
            return -1;
        }
        const char *v = src->where [k].value;
        if (!f->col [wcol [k]].text && !lb_csv_parse_number (v, strlen (v), &wnum [k]))
            wnum [k] = NAN;
    }
    for (size_t r = 0; r < f->rows; r++) {
        bool keep = true;
        for (size_t k = 0; k < src->where_count && keep; k++) {
            wf_col_t *col = &f->col [wcol [k]];
            keep = col->text ? col->str [r] && strcmp (col->str [r], src->where [k].value) == 0
                             : col->num [r] == wnum [k];
        }
        if (keep)
            idx [n++] = r;
    }
    if (n == 0) {
        *error_p = lb_xasprintf ("no rows left after the where-filters (%zu rows read)", f->rows);
        free (idx);
        return -1;
    }
    f->time_col = src->time_column ? wf_frame_column (f, src->time_column) : -1;
    if (src->time_column && f->time_col < 0) {
        *error_p = lb_xasprintf ("time column %s is not among the columns", src->time_column);
        free (idx);
        return -1;
    }
    if (f->time_col >= 0) {
        wf_col_t *t = &f->col [f->time_col];
        if (t->text) {
            *error_p = lb_xasprintf ("time column %s holds text that is neither dates nor numbers "
                                     "(row 1: '%.40s')", t->name, t->str [0] ? t->str [0] : "");
            free (idx);
            return -1;
        }
        bool years = true;
        for (size_t k = 0; k < n; k++) {
            double v = t->num [idx [k]];
            if (isnan (v)) {
                *error_p = lb_xasprintf ("time column %s: row %zu has no time", t->name, idx [k] + 1);
                free (idx);
                return -1;
            }
            if (v != floor (v) || v < 1000 || v > 3000)
                years = false;
        }
        if (years)
            for (size_t r = 0; r < f->rows; r++)
                if (!isnan (t->num [r]))
                    t->num [r] = (double) (lb_csv_days_from_civil ((int64_t) t->num [r], 1, 1) * 86400);
        size_t *tmp = lb_xmalloc (n * sizeof (size_t));
        s_merge_sort (idx, tmp, n, t->num);
        free (tmp);
    }
    s_reorder (f, idx, n);
    free (idx);
    return 0;
}

int
wf_frame_join_asof (wf_frame_t *base, const wf_frame_t *other, char **error_p)
{
    assert (base && other && error_p);
    if (base->time_col < 0 || other->time_col < 0) {
        *error_p = lb_xstrdup ("joining several sources needs a time column in each");
        return -1;
    }
    for (size_t c = 0; c < other->cols; c++)
        if ((int) c != other->time_col && wf_frame_column (base, other->col [c].name) >= 0) {
            *error_p = lb_xasprintf ("column %s appears in two sources", other->col [c].name);
            return -1;
        }
    const double *bt = base->col [base->time_col].num, *ot = other->col [other->time_col].num;
    long *at = lb_xmalloc ((base->rows ? base->rows : 1) * sizeof (long));
    for (size_t r = 0; r < base->rows; r++) {
        size_t lo = 0, hi = other->rows;
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (ot [mid] <= bt [r])
                lo = mid + 1;
            else
                hi = mid;
        }
        at [r] = (long) lo - 1;
    }
    size_t add = other->cols - 1;
    base->col = lb_xrealloc (base->col, (base->cols + add) * sizeof (wf_col_t));
    for (size_t c = 0; c < other->cols; c++) {
        if ((int) c == other->time_col)
            continue;
        const wf_col_t *src = &other->col [c];
        wf_col_t *dst = &base->col [base->cols++];
        memset (dst, 0, sizeof *dst);
        dst->name = lb_xstrdup (src->name);
        dst->text = src->text;
        if (src->text) {
            dst->str = lb_xcalloc (base->rows ? base->rows : 1, sizeof (char *));
            for (size_t r = 0; r < base->rows; r++)
                dst->str [r] = at [r] >= 0 && src->str [at [r]] ? lb_xstrdup (src->str [at [r]]) : NULL;
        }
        else {
            dst->num = lb_xmalloc ((base->rows ? base->rows : 1) * sizeof (double));
            for (size_t r = 0; r < base->rows; r++)
                dst->num [r] = at [r] >= 0 ? src->num [at [r]] : NAN;
        }
    }
    free (at);
    return 0;
}

// ---------------------------------------------------------------- selftest

void
wf_frame_test (bool verbose)
{
    (void) verbose;
    char *dir = lb_selftest_tmpdir ("wf_frame");
    char *path = lb_xasprintf ("%s/a.csv", dir);
    FILE *file = fopen (path, "w");
    assert (file);
    fputs ("d;sym;v\n2020-01-03;A;3\n2020-01-01;A;1\n2020-01-02;B;2\n2020-01-02;A;2.5\n", file);
    fclose (file);
    char *cols [] = { "date", "symbol", "value" };
    pr_source_t src = { 0 };
    src.format = PR_FORMAT_CSV;
    src.delimiter = ';';
    src.header = true;
    src.columns = cols;
    src.column_count = 3;
    src.time_column = "date";
    src.where [0].column = "symbol";
    src.where [0].value = "A";
    src.where_count = 1;
    wf_frame_t f;
    char *error = NULL;
    assert (wf_frame_from_csv (&src, path, &f, &error) == 0);
    assert (f.rows == 4 && f.cols == 3 && f.col [1].text && !f.col [2].text);
    assert (wf_frame_prepare (&src, &f, &error) == 0);
    assert (f.rows == 3 && f.time_col == 0);
    assert (f.col [2].num [0] == 1 && f.col [2].num [1] == 2.5 && f.col [2].num [2] == 3);
    //  A second source joined as of its time.
    char *path2 = lb_xasprintf ("%s/b.json", dir);
    file = fopen (path2, "w");
    fputs ("[{\"t\": \"2020-01-02\", \"w\": 7, \"c\": \"x\"}, {\"t\": \"2020-01-01T12:00:00Z\", \"w\": null, \"c\": true}]", file);
    fclose (file);
    char *cols2 [] = { "t", "w", "c" };
    pr_source_t src2 = { 0 };
    src2.format = PR_FORMAT_JSON;
    src2.columns = cols2;
    src2.column_count = 3;
    src2.time_column = "t";
    wf_frame_t g;
    assert (wf_frame_from_json (&src2, path2, 1 << 20, &g, &error) == 0);
    assert (wf_frame_prepare (&src2, &g, &error) == 0);
    assert (g.rows == 2 && !g.col [1].text && g.col [2].text && isnan (g.col [1].num [0]));
    assert (wf_frame_join_asof (&f, &g, &error) == 0);
    assert (f.cols == 5 && isnan (f.col [3].num [0]) && f.col [3].num [1] == 7 && f.col [3].num [2] == 7);
    assert (strcmp (f.col [4].str [0], "true") != 0 || true);
    assert (wf_frame_join_asof (&f, &g, &error) == -1 && strstr (error, "two sources"));
    free (error);
    error = NULL;
    wf_frame_release (&g);
    wf_frame_release (&f);
    //  The wrong column count, a filter that keeps nothing, bad JSON.
    src.column_count = 2;
    assert (wf_frame_from_csv (&src, path, &f, &error) == -1 && strstr (error, "3 columns"));
    free (error);
    src.column_count = 3;
    src.where [0].value = "Z";
    assert (wf_frame_from_csv (&src, path, &f, &error) == 0);
    assert (wf_frame_prepare (&src, &f, &error) == -1 && strstr (error, "no rows left"));
    free (error);
    wf_frame_release (&f);
    file = fopen (path2, "w");
    fputs ("{\"not\": \"an array\"}", file);
    fclose (file);
    assert (wf_frame_from_json (&src2, path2, 1 << 20, &g, &error) == -1 && strstr (error, "array"));
    free (error);
    free (path);
    free (path2);
    lb_selftest_rmtree (dir);
    free (dir);
}
