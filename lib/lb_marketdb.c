/*  lb_marketdb.c - market data in PostgreSQL through COPY (see lb_marketdb.h). */
#include "lb_marketdb.h"
#include "lb_log.h"
#include "lb_mem.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void
s_set_error (char **error_p, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_set_error (char **error_p, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    char *text = lb_xvasprintf (fmt, args);
    va_end (args);
    if (error_p) {
        free (*error_p);
        *error_p = text;
    }
    else
        free (text);
}

//  True when a failure may pass later: connection trouble, server going
//  away or out of resources (SQLSTATE classes 08, 53, 57P).
static bool
s_retryable (PGconn *conn, PGresult *res)
{
    if (PQstatus (conn) != CONNECTION_OK)
        return true;
    const char *state = res ? PQresultErrorField (res, PG_DIAG_SQLSTATE) : NULL;
    return state && (strncmp (state, "08", 2) == 0 || strncmp (state, "53", 2) == 0
                  || strncmp (state, "57P", 3) == 0);
}

static void
s_pg_error (PGconn *conn, PGresult *res, const char *what, char **error_p, bool *retryable)
{
    const char *msg = res ? PQresultErrorMessage (res) : "";
    if (!msg || !*msg)
        msg = PQerrorMessage (conn);
    char *line = lb_xstrdup (msg && *msg ? msg : "unknown error");
    line [strcspn (line, "\n")] = 0;
    s_set_error (error_p, "%s: %s", what, line);
    free (line);
    if (retryable)
        *retryable = s_retryable (conn, res);
}

typedef enum { S_TEXT, S_NUMBER, S_TIME } s_type_t;

typedef struct {
    const char *name;
    s_type_t type;
    bool optional;
} s_column_t;

static bool
s_type_ok (const char *pg_type, s_type_t want)
{
    static const char *numbers [] = { "double precision", "real", "numeric", "integer",
                                      "bigint", "smallint", "boolean", NULL };
    static const char *times [] = { "timestamp with time zone", "timestamp without time zone",
                                    "date", NULL };
    static const char *texts [] = { "text", "character varying", "character", "name", NULL };
    const char **list = want == S_NUMBER ? numbers : want == S_TIME ? times : texts;
    for (int i = 0; list [i]; i++)
        if (strncmp (pg_type, list [i], strlen (list [i])) == 0)
            return true;
    return false;
}

//  Checks that table exists and has columns of the right kinds. Returns 1
//  (all there), 0 (the table does not exist: *error_p set), -1 (a column is
//  missing or mistyped, or a query failed: *error_p set). *present gets,
//  per column, whether it exists (for optional ones).
static int
s_check_table (PGconn *conn, const char *table, const s_column_t *cols, bool *present,
               char **error_p, bool *retryable)
{
    const char *params [1] = { table };
    PGresult *res = PQexecParams (conn,
        "select a.attname, format_type (a.atttypid, a.atttypmod) from pg_attribute a "
        "where a.attrelid = to_regclass ($1) and a.attnum > 0 and not a.attisdropped",
        1, NULL, params, NULL, NULL, 0);
    if (PQresultStatus (res) != PGRES_TUPLES_OK) {
        s_pg_error (conn, res, table, error_p, retryable);
        PQclear (res);
        return -1;
    }
    int rows = PQntuples (res);
    if (rows == 0) {
        s_set_error (error_p, "table %s does not exist (run deploy/migrate, or load it with bin/marketgen)", table);
        PQclear (res);
        return 0;
    }
    int rc = 1;
    for (int c = 0; cols [c].name && rc == 1; c++) {
        present [c] = false;
        for (int r = 0; r < rows; r++)
            if (strcmp (PQgetvalue (res, r, 0), cols [c].name) == 0) {
                present [c] = true;
                const char *type = PQgetvalue (res, r, 1);
                if (!s_type_ok (type, cols [c].type)) {
                    s_set_error (error_p, "column %s.%s has type %s, want %s", table, cols [c].name,
                                 type, cols [c].type == S_NUMBER ? "a number"
                                     : cols [c].type == S_TIME ? "a timestamp" : "text");
                    rc = -1;
                }
            }
        if (!present [c] && !cols [c].optional && rc == 1) {
            s_set_error (error_p, "column %s.%s does not exist", table, cols [c].name);
            rc = -1;
        }
    }
    PQclear (res);
    if (rc < 0 && retryable)
        *retryable = false;
    return rc;
}

static char *
s_iso (int64_t ts, char *buf, size_t size)
{
    time_t t = (time_t) ts;
    struct tm tm;
    gmtime_r (&t, &tm);
    strftime (buf, size, "%Y-%m-%d %H:%M:%S+00", &tm);
    return buf;
}

// ---------------------------------------------------------------- COPY in

typedef struct {
    PGconn *conn;
    int failed;
} s_copy_in_t;

static int
s_put (void *arg, const char *buf, size_t len)
{
    s_copy_in_t *c = arg;
    if (PQputCopyData (c->conn, buf, (int) len) != 1)
        c->failed = 1;
    return c->failed;
}

//  Runs "COPY ... FROM STDIN", feeds it through fill, ends it. Returns 0 or -1.
static int
s_copy_in (PGconn *conn, const char *sql, int (*fill) (void *fill_arg, s_copy_in_t *c),
           void *fill_arg, char **error_p)
{
    PGresult *res = PQexec (conn, sql);
    if (PQresultStatus (res) != PGRES_COPY_IN) {
        s_pg_error (conn, res, "COPY in", error_p, NULL);
        PQclear (res);
        return -1;
    }
    PQclear (res);
    s_copy_in_t c = { conn, 0 };
    int rc = fill (fill_arg, &c);
    if (PQputCopyEnd (conn, rc || c.failed ? "aborted by the client" : NULL) != 1)
        rc = -1;
    res = PQgetResult (conn);
    if (PQresultStatus (res) != PGRES_COMMAND_OK) {
        s_pg_error (conn, res, "COPY in", error_p, NULL);
        rc = -1;
    }
    PQclear (res);
    while ((res = PQgetResult (conn)))
        PQclear (res);
    return rc || c.failed ? -1 : 0;
}

static int
s_exec (PGconn *conn, const char *sql, char **error_p)
{
    PGresult *res = PQexec (conn, sql);
    int rc = PQresultStatus (res) == PGRES_COMMAND_OK || PQresultStatus (res) == PGRES_TUPLES_OK ? 0 : -1;
    if (rc)
        s_pg_error (conn, res, sql, error_p, NULL);
    PQclear (res);
    return rc;
}

//  '{"A","B"}' as an escaped SQL literal of a text array. Caller frees.
static char *
s_symbol_array (PGconn *conn, lb_market_t *m)
{
    size_t size = 16;
    for (int i = 0; i < lb_market_series (m); i++)
        size += strlen (lb_market_symbol (m, i)) + 3;
    char *arr = lb_xmalloc (size);
    size_t len = 0;
    arr [len++] = '{';
    for (int i = 0; i < lb_market_series (m); i++)
        len += (size_t) snprintf (arr + len, size - len, "%s\"%s\"", i ? "," : "", lb_market_symbol (m, i));
    arr [len++] = '}';
    arr [len] = 0;
    char *lit = PQescapeLiteral (conn, arr, len);
    free (arr);
    char *copy = lit ? lb_xstrdup (lit) : lb_xstrdup ("'{}'");
    PQfreemem (lit);
    return copy;
}

static int
s_fill_symbols (void *arg, s_copy_in_t *c)
{
    lb_market_t *m = arg;
    for (int i = 0; i < lb_market_series (m) && !c->failed; i++) {
        char line [160];
        int n = snprintf (line, sizeof line, "%s\t%s\t%s\tmarketgen\n", lb_market_symbol (m, i),
                          lb_market_sector (m, i), lb_market_kind (m, i));
        s_put (c, line, (size_t) n);
    }
    return c->failed;
}

static int
s_fill_bars (void *arg, s_copy_in_t *c)
{
    return lb_market_copy_text (arg, s_put, c);
}

int
lb_marketdb_load_market (PGconn *conn, lb_market_t *m, bool replace, size_t *loaded, char **error_p)
{
    assert (conn && m && loaded);
    *loaded = 0;
    bool present [16];
    static const s_column_t bar_cols [] = {
        { "symbol", S_TEXT, false }, { "ts", S_TIME, false }, { "open", S_NUMBER, false },
        { "high", S_NUMBER, false }, { "low", S_NUMBER, false }, { "close", S_NUMBER, false },
        { "volume", S_NUMBER, false }, { NULL, 0, false } };
    if (s_check_table (conn, "market_bars", bar_cols, present, error_p, NULL) != 1)
        return -1;
    char *symbols = s_symbol_array (conn, m);
    int rc = -1;
    if (s_exec (conn, "begin", error_p))
        goto out;
    char *sql = lb_xasprintf ("select count(*) from market_symbols where symbol = any (%s::text[])", symbols);
    PGresult *res = PQexec (conn, sql);
    free (sql);
    if (PQresultStatus (res) != PGRES_TUPLES_OK) {
        s_pg_error (conn, res, "market_symbols", error_p, NULL);
        PQclear (res);
        goto rollback;
    }
    long there = atol (PQgetvalue (res, 0, 0));
    PQclear (res);
    if (there > 0 && !replace) {
        rc = s_exec (conn, "commit", error_p);
        goto out;
    }
    sql = lb_xasprintf ("delete from market_bars where symbol = any (%s::text[])", symbols);
    rc = s_exec (conn, sql, error_p);
    free (sql);
    if (rc == 0) {
        sql = lb_xasprintf ("delete from market_symbols where symbol = any (%s::text[])", symbols);
        rc = s_exec (conn, sql, error_p);
        free (sql);
    }
    if (rc == 0)
        rc = s_copy_in (conn, "copy market_symbols (symbol, sector, kind, source) from stdin",
                        s_fill_symbols, m, error_p);
    if (rc == 0)
        rc = s_copy_in (conn, "copy market_bars (symbol, ts, open, high, low, close, volume, "
                              "news_count, options_volume) from stdin", s_fill_bars, m, error_p);
    if (rc == 0)
        rc = s_exec (conn, "commit", error_p);
    if (rc == 0) {
        *loaded = lb_market_bars (m) * (size_t) lb_market_series (m);
        goto out;
    }
rollback:
    rc = -1;
    PQclear (PQexec (conn, "rollback"));
out:
    free (symbols);
    return rc;
}

// ---------------------------------------------------------------- COPY out

//  Splits a COPY text line (no trailing newline) in place into at most max
//  fields; decodes backslash escapes; NULL for \N. Returns the field count.
static int
s_split (char *line, char **fields, int max)
{
    int n = 0;
    char *p = line;
    while (n < max) {
        char *start = p;
        while (*p && *p != '\t')
            p++;
        bool end = *p == 0;
        *p = 0;
        if (strcmp (start, "\\N") == 0)
            fields [n++] = NULL;
        else {
            fields [n++] = start;
            if (strchr (start, '\\')) {
                char *w = start;
                for (char *q = start; *q; q++) {
                    if (*q == '\\' && q [1]) {
                        q++;
                        *w++ = *q == 't' ? '\t' : *q == 'n' ? '\n' : *q == 'r' ? '\r' : *q;
                    }
                    else
                        *w++ = *q;
                }
                *w = 0;
            }
        }
        if (end)
            return n;
        p++;
    }
    return *p ? max + 1 : n;
}

static bool
s_number (const char *text, double *out)
{
    if (!text) {
        *out = NAN;
        return true;
    }
    char *end;
    errno = 0;
    *out = strtod (text, &end);
    return end != text && *end == 0;
}

//  Streams "COPY (query) TO STDOUT", calling row for each line split into
//  fields. row returns 0 to go on, -1 to stop with its error set.
static int
s_copy_out (PGconn *conn, const char *query, int nfields,
            int (*row) (void *arg, char **fields, size_t line_no), void *arg,
            char **error_p, bool *retryable)
{
    char *sql = lb_xasprintf ("copy (%s) to stdout", query);
    PGresult *res = PQexec (conn, sql);
    free (sql);
    if (PQresultStatus (res) != PGRES_COPY_OUT) {
        s_pg_error (conn, res, "COPY out", error_p, retryable);
        PQclear (res);
        return -1;
    }
    PQclear (res);
    int rc = 0;
    char *line;
    int len;
    size_t line_no = 0;
    char *fields [32];
    assert (nfields <= 32);
    while ((len = PQgetCopyData (conn, &line, 0)) > 0) {
        line_no++;
        if (rc == 0) {
            if (len > 0 && line [len - 1] == '\n')
                line [len - 1] = 0;
            int n = s_split (line, fields, nfields);
            if (n != nfields) {
                s_set_error (error_p, "COPY row %zu has %d fields, want %d", line_no, n, nfields);
                rc = -1;
            }
            else
                rc = row (arg, fields, line_no);
        }
        PQfreemem (line);       //  keep draining after an error: the connection stays usable
    }
    if (len == -2) {
        s_pg_error (conn, NULL, "COPY out", error_p, retryable);
        return -1;
    }
    res = PQgetResult (conn);
    if (PQresultStatus (res) != PGRES_COMMAND_OK && rc == 0) {
        s_pg_error (conn, res, "COPY out", error_p, retryable);
        rc = -1;
    }
    PQclear (res);
    while ((res = PQgetResult (conn)))
        PQclear (res);
    if (rc && retryable && PQstatus (conn) == CONNECTION_OK)
        *retryable = false;
    return rc;
}

typedef struct {
    lb_bars_t *bars;
    int last;
    char last_symbol [64];
    char **error_p;
} s_bar_reader_t;

static int
s_bar_row (void *arg, char **f, size_t line_no)
{
    s_bar_reader_t *r = arg;
    //  symbol, sector, kind, ts, open, high, low, close, volume, news, options
    if (!f [0] || !f [3]) {
        s_set_error (r->error_p, "market_bars row %zu: symbol or ts is null", line_no);
        return -1;
    }
    if (r->last < 0 || strcmp (r->last_symbol, f [0]) != 0) {
        lb_bars_kind_t kind = LB_BARS_STOCK;
        if (f [2] && strcmp (f [2], "index") == 0)
            kind = LB_BARS_INDEX;
        else
        if (f [2] && strcmp (f [2], "volatility") == 0)
            kind = LB_BARS_VOLATILITY;
        r->last = lb_bars_series (r->bars, f [0], f [1] ? f [1] : "", kind);
        if (r->last < 0) {
            s_set_error (r->error_p, "market_bars row %zu: %s", line_no, lb_bars_error (r->bars));
            return -1;
        }
        snprintf (r->last_symbol, sizeof r->last_symbol, "%s", f [0]);
    }
    double v [8];
    static const char *names [8] = { "ts", "open", "high", "low", "close", "volume",
                                     "news_count", "options_volume" };
    for (int k = 0; k < 8; k++) {
        if (!s_number (f [3 + k], &v [k])) {
            s_set_error (r->error_p, "market_bars row %zu (symbol %s): %s '%.40s' is not a number",
                         line_no, f [0], names [k], f [3 + k]);
            return -1;
        }
        if (!f [3 + k] && k < 6) {
            s_set_error (r->error_p, "market_bars row %zu (symbol %s): %s is null", line_no, f [0], names [k]);
            return -1;
        }
    }
    if (lb_bars_append (r->bars, r->last, (int64_t) v [0], v [1], v [2], v [3], v [4], v [5],
                        v [6], v [7])) {
        s_set_error (r->error_p, "market_bars: %s", lb_bars_error (r->bars));
        return -1;
    }
    return 0;
}

//  " and b.ts >= ..." clauses for a window. Caller frees.
static char *
s_window (const char *column, int64_t from, int64_t to)
{
    char a [64] = "", b [64] = "";
    if (from > INT64_MIN)
        snprintf (a, sizeof a, " and %s >= to_timestamp (%lld)", column, (long long) from);
    if (to < INT64_MAX)
        snprintf (b, sizeof b, " and %s < to_timestamp (%lld)", column, (long long) to);
    return lb_xasprintf ("%s%s", a, b);
}

lb_bars_t *
lb_marketdb_read_bars (PGconn *conn, int64_t from, int64_t to, const char *const *symbols,
                       char **error_p, bool *retryable)
{
    assert (conn);
    if (retryable)
        *retryable = false;
    static const s_column_t cols [] = {
        { "symbol", S_TEXT, false }, { "ts", S_TIME, false }, { "open", S_NUMBER, false },
        { "high", S_NUMBER, false }, { "low", S_NUMBER, false }, { "close", S_NUMBER, false },
        { "volume", S_NUMBER, false }, { "news_count", S_NUMBER, true },
        { "options_volume", S_NUMBER, true }, { NULL, 0, false } };
    static const s_column_t sym_cols [] = {
        { "symbol", S_TEXT, false }, { "sector", S_TEXT, false }, { "kind", S_TEXT, false },
        { NULL, 0, false } };
    bool present [16], sym_present [8];
    if (s_check_table (conn, "market_bars", cols, present, error_p, retryable) != 1)
        return NULL;
    char *ignored = NULL;
    int have_symbols = s_check_table (conn, "market_symbols", sym_cols, sym_present, &ignored, NULL);
    free (ignored);
    //  Symbol filter as an escaped array literal.
    char *filter = lb_xstrdup ("");
    if (symbols) {
        size_t size = 8;
        for (int i = 0; symbols [i]; i++)
            size += 2 * strlen (symbols [i]) + 4;
        char *arr = lb_xmalloc (size), *w = arr;
        *w++ = '{';
        for (int i = 0; symbols [i]; i++) {
            if (i)
                *w++ = ',';
            *w++ = '"';
            for (const char *p = symbols [i]; *p; p++) {
                if (*p == '"' || *p == '\\')
                    *w++ = '\\';
                *w++ = *p;
            }
            *w++ = '"';
        }
        *w++ = '}';
        *w = 0;
        char *lit = PQescapeLiteral (conn, arr, strlen (arr));
        free (filter);
        filter = lb_xasprintf (" and b.symbol = any (%s::text[])", lit ? lit : "'{}'");
        PQfreemem (lit);
        free (arr);
    }
    char *window = s_window ("b.ts", from, to);
    char *query = lb_xasprintf (
        "select b.symbol, %s, %s, floor (extract (epoch from b.ts))::bigint, b.open, b.high, "
        "b.low, b.close, b.volume, %s, %s from market_bars b%s where true%s%s order by b.symbol, b.ts",
        have_symbols == 1 ? "coalesce (s.sector, '')" : "''",
        have_symbols == 1 ? "coalesce (s.kind, 'stock')" : "'stock'",
        present [7] ? "b.news_count" : "null", present [8] ? "b.options_volume" : "null",
        have_symbols == 1 ? " left join market_symbols s using (symbol)" : "", window, filter);
    free (window);
    free (filter);
    s_bar_reader_t r = { lb_bars_new (), -1, "", error_p };
    int rc = s_copy_out (conn, query, 11, s_bar_row, &r, error_p, retryable);
    free (query);
    if (rc) {
        lb_bars_destroy (&r.bars);
        return NULL;
    }
    return r.bars;
}

// ---------------------------------------------------------------- events

typedef struct {
    lb_bars_t *bars;
    const lb_bars_event_t *events;
    size_t count;
    int horizon;
} s_event_writer_t;

static void
s_pattern_names (uint32_t bits, char *buf, size_t size)
{
    size_t len = 0;
    buf [0] = 0;
    for (int i = 0; i < KN_PAT_COUNT; i++)
        if (bits & (1u << i))
            len += (size_t) snprintf (buf + len, size - len, "%s%s", len ? "," : "", kn_pattern_name (i));
    if (!len)
        snprintf (buf, size, "none");
}

static int
s_fill_events (void *arg, s_copy_in_t *c)
{
    s_event_writer_t *w = arg;
    size_t max = 1 << 20;
    char *buf = lb_xmalloc (max + 4096);
    size_t len = 0;
    for (size_t i = 0; i < w->count && !c->failed; i++) {
        const lb_bars_event_t *e = &w->events [i];
        char ts [40], lts [40], pats [128];
        s_pattern_names (e->patterns, pats, sizeof pats);
        len += (size_t) snprintf (buf + len, 4096, "%s\t%s\t%s", lb_bars_symbol (w->bars, (int) e->series),
                                  s_iso (e->ts, ts, sizeof ts), pats);
        for (int k = 0; k < KN_FEATURES_COUNT; k++)
            len += isnan (e->features [k]) ? (size_t) snprintf (buf + len, 16, "\t\\N")
                                           : (size_t) snprintf (buf + len, 40, "\t%.17g", e->features [k]);
        len += (size_t) snprintf (buf + len, 256, "\t%d\t%d\t%s\t%.17g\t%s\n", e->signal, w->horizon,
                                  s_iso (e->label_ts, lts, sizeof lts), e->fwd_return,
                                  e->success ? "t" : "f");
        if (len >= max) {
            s_put (c, buf, len);
            len = 0;
        }
    }
    if (len && !c->failed)
        s_put (c, buf, len);
    free (buf);
    return c->failed;
}

static const char *s_event_columns =
    "symbol, timestamp, pattern_type, body_to_range_ratio, upper_shadow_ratio, lower_shadow_ratio, "
    "volume_surge, rsi_14, bb_position, macd_histogram, adx_strength, vix_level, spy_correlation, "
    "sector_momentum, market_breadth, news_present, premarket_gap, unusual_volume, options_activity, "
    "rule_signal, horizon_bars, label_timestamp, forward_return, pattern_success";

int
lb_marketdb_store_events (PGconn *conn, lb_bars_t *bars, const lb_bars_event_t *events,
                          size_t count, int horizon, char **error_p)
{
    assert (conn && bars && (events || count == 0) && horizon >= 1);
    bool present [4];
    static const s_column_t cols [] = { { "symbol", S_TEXT, false }, { "timestamp", S_TIME, false },
                                        { NULL, 0, false } };
    if (s_check_table (conn, "pattern_training_data", cols, present, error_p, NULL) != 1)
        return -1;
    if (s_exec (conn, "begin", error_p))
        return -1;
    char *sql = lb_xasprintf ("create temporary table s_events on commit drop as "
                              "select %s from pattern_training_data with no data", s_event_columns);
    int rc = s_exec (conn, sql, error_p);
    free (sql);
    s_event_writer_t w = { bars, events, count, horizon };
    if (rc == 0) {
        sql = lb_xasprintf ("copy s_events (%s) from stdin", s_event_columns);
        rc = s_copy_in (conn, sql, s_fill_events, &w, error_p);
        free (sql);
    }
    if (rc == 0)
        rc = s_exec (conn, "delete from pattern_training_data p using s_events e "
                           "where p.symbol = e.symbol and p.timestamp = e.timestamp", error_p);
    if (rc == 0) {
        sql = lb_xasprintf ("insert into pattern_training_data (%s) select %s from s_events",
                            s_event_columns, s_event_columns);
        rc = s_exec (conn, sql, error_p);
        free (sql);
    }
    if (rc == 0)
        rc = s_exec (conn, "commit", error_p);
    if (rc)
        PQclear (PQexec (conn, "rollback"));
    return rc;
}

typedef struct {
    lb_bars_t *bars;
    lb_bars_event_t *events;
    size_t count, max;
    int last;
    char **error_p;
} s_event_reader_t;

static int
s_event_row (void *arg, char **f, size_t line_no)
{
    //  symbol, ts, label_ts, 16 features, rule_signal, forward_return, success, pattern_type
    s_event_reader_t *r = arg;
    if (!f [0] || !f [1] || !f [2] || !f [19] || !f [20] || !f [21] || !f [22]) {
        s_set_error (r->error_p, "pattern_training_data row %zu: a required value is null", line_no);
        return -1;
    }
    int series = r->last >= 0 && strcmp (lb_bars_symbol (r->bars, r->last), f [0]) == 0
               ? r->last : lb_bars_series (r->bars, f [0], "", LB_BARS_STOCK);
    if (series < 0) {
        s_set_error (r->error_p, "pattern_training_data row %zu: %s", line_no, lb_bars_error (r->bars));
        return -1;
    }
    r->last = series;
    if (r->count == r->max) {
        r->max = r->max ? 2 * r->max : 1024;
        r->events = lb_xrealloc (r->events, r->max * sizeof (lb_bars_event_t));
    }
    lb_bars_event_t *e = &r->events [r->count];
    memset (e, 0, sizeof *e);
    e->series = (uint32_t) series;
    double ts, lts, sig, fwd;
    bool ok = s_number (f [1], &ts) && s_number (f [2], &lts) && s_number (f [19], &sig)
           && s_number (f [20], &fwd);
    for (int k = 0; ok && k < KN_FEATURES_COUNT; k++)
        ok = s_number (f [3 + k], &e->features [k]);
    if (!ok) {
        s_set_error (r->error_p, "pattern_training_data row %zu (symbol %s): a value is not a number",
                     line_no, f [0]);
        return -1;
    }
    for (int k = 0; k < KN_FEATURES_COUNT; k++)
        if (isinf (e->features [k])) {
            s_set_error (r->error_p, "pattern_training_data row %zu (symbol %s): %s is infinite",
                         line_no, f [0], kn_features_name (k));
            return -1;
        }
    if (!isfinite (fwd)) {
        s_set_error (r->error_p, "pattern_training_data row %zu (symbol %s): forward_return is not finite",
                     line_no, f [0]);
        return -1;
    }
    e->ts = (int64_t) ts;
    e->label_ts = (int64_t) lts;
    e->signal = sig != 0;
    e->fwd_return = fwd;
    e->success = strcmp (f [21], "t") == 0 || strcmp (f [21], "1") == 0;
    for (int i = 0; i < KN_PAT_COUNT; i++)
        if (strstr (f [22], kn_pattern_name (i)))
            e->patterns |= 1u << i;
    r->count++;
    return 0;
}

int
lb_marketdb_read_events (PGconn *conn, int64_t from, int64_t to, lb_bars_t **bars_p,
                         lb_bars_event_t **events, size_t *count, char **error_p, bool *retryable)
{
    assert (conn && bars_p && events && count);
    *bars_p = NULL;
    *events = NULL;
    *count = 0;
    if (retryable)
        *retryable = false;
    s_column_t cols [KN_FEATURES_COUNT + 8];
    int nc = 0;
    cols [nc++] = (s_column_t) { "symbol", S_TEXT, false };
    cols [nc++] = (s_column_t) { "timestamp", S_TIME, false };
    cols [nc++] = (s_column_t) { "label_timestamp", S_TIME, false };
    for (int k = 0; k < KN_FEATURES_COUNT; k++)
        cols [nc++] = (s_column_t) { kn_features_name (k), S_NUMBER, false };
    cols [nc++] = (s_column_t) { "rule_signal", S_NUMBER, false };
    cols [nc++] = (s_column_t) { "forward_return", S_NUMBER, false };
    cols [nc++] = (s_column_t) { "pattern_type", S_TEXT, false };
    cols [nc] = (s_column_t) { NULL, 0, false };
    bool present [KN_FEATURES_COUNT + 8];
    if (s_check_table (conn, "pattern_training_data", cols, present, error_p, retryable) != 1)
        return -1;
    char feats [1024] = "";
    size_t len = 0;
    for (int k = 0; k < KN_FEATURES_COUNT; k++)
        len += (size_t) snprintf (feats + len, sizeof feats - len, ", %s", kn_features_name (k));
    char *window = s_window ("timestamp", from, to);
    char *query = lb_xasprintf (
        "select symbol, floor (extract (epoch from timestamp))::bigint, "
        "floor (extract (epoch from label_timestamp))::bigint%s, rule_signal, forward_return, "
        "pattern_success::int, pattern_type from pattern_training_data where true%s "
        "order by timestamp, symbol", feats, window);
    free (window);
    s_event_reader_t r = { lb_bars_new (), NULL, 0, 0, -1, error_p };
    int rc = s_copy_out (conn, query, 23, s_event_row, &r, error_p, retryable);
    free (query);
    if (rc) {
        lb_bars_destroy (&r.bars);
        free (r.events);
        return -1;
    }
    *bars_p = r.bars;
    *events = r.events;
    *count = r.count;
    return 0;
}

int64_t
lb_marketdb_last_ts (PGconn *conn, const char *table, const char *column, char **error_p,
                     bool *retryable)
{
    assert (conn && table && column);
    if (retryable)
        *retryable = false;
    char *sql = lb_xasprintf ("select floor (extract (epoch from max (%s)))::bigint from %s", column, table);
    PGresult *res = PQexec (conn, sql);
    free (sql);
    int64_t last = -1;
    if (PQresultStatus (res) != PGRES_TUPLES_OK)
        s_pg_error (conn, res, table, error_p, retryable);
    else
    if (PQgetisnull (res, 0, 0))
        s_set_error (error_p, "%s is empty", table);
    else
        last = atoll (PQgetvalue (res, 0, 0));
    PQclear (res);
    return last;
}

// ---------------------------------------------------------------- selftest

static void
s_test_exec (PGconn *conn, const char *sql)
{
    PGresult *res = PQexec (conn, sql);
    if (PQresultStatus (res) != PGRES_COMMAND_OK)
        fprintf (stderr, "%s: %s", sql, PQresultErrorMessage (res));
    assert (PQresultStatus (res) == PGRES_COMMAND_OK);
    PQclear (res);
}

void
lb_marketdb_test (bool verbose)
{
    const char *url = getenv ("DATABASE_URL");
    if (!url) {
        printf ("lb_marketdb: DATABASE_URL not set, skipped\n");
        return;
    }
    PGconn *conn = PQconnectdb (url);
    assert (PQstatus (conn) == CONNECTION_OK);
    //  Only temporary tables are visible: the test cannot touch real data.
    s_test_exec (conn, "set search_path to pg_temp");
    s_test_exec (conn, "set client_min_messages to warning");
    char *error = NULL;
    bool retry = true;
    lb_bars_t *bars = lb_marketdb_read_bars (conn, INT64_MIN, INT64_MAX, NULL, &error, &retry);
    assert (!bars && strstr (error, "market_bars does not exist") && !retry);
    s_test_exec (conn, "create temporary table market_symbols (symbol text primary key, "
                       "sector text not null default '', kind text not null default 'stock', "
                       "source text not null default '')");
    s_test_exec (conn, "create temporary table market_bars (symbol text, ts timestamptz, open float8, "
                       "high float8, low float8, close text, volume float8, news_count int, "
                       "options_volume float8, primary key (symbol, ts))");
    bars = lb_marketdb_read_bars (conn, INT64_MIN, INT64_MAX, NULL, &error, &retry);
    assert (!bars && strstr (error, "market_bars.close has type text") && !retry);
    s_test_exec (conn, "alter table market_bars alter column close type float8 using close::float8");

    lb_market_params_t p;
    lb_market_params_default (&p);
    p.symbols = 12;
    p.sectors = 3;
    p.days = 40;
    lb_market_t *m = lb_market_new (&p);
    size_t loaded;
    assert (lb_marketdb_load_market (conn, m, false, &loaded, &error) == 0);
    assert (loaded == 14 * 280);
    assert (lb_marketdb_load_market (conn, m, false, &loaded, &error) == 0 && loaded == 0);
    assert (lb_marketdb_load_market (conn, m, true, &loaded, &error) == 0 && loaded == 14 * 280);
    int64_t last = lb_marketdb_last_ts (conn, "market_bars", "ts", &error, NULL);
    assert (last == lb_market_ts (m) [279]);

    bars = lb_marketdb_read_bars (conn, INT64_MIN, INT64_MAX, NULL, &error, &retry);
    assert (bars);
    assert (lb_bars_nseries (bars) == 14 && lb_bars_count (bars) == 14 * 280);
    int spy = -1;
    for (int i = 0; i < 14; i++)
        if (strcmp (lb_bars_symbol (bars, i), "SPY") == 0)
            spy = i;
    assert (spy >= 0 && lb_bars_kind (bars, spy) == LB_BARS_INDEX);
    //  Prices come back as written (4 decimals).
    kn_series_t v;
    lb_bars_view (bars, 0, &v);
    lb_market_ohlcv_t o;
    int gen = -1;
    for (int i = 0; i < 14; i++)
        if (strcmp (lb_market_symbol (m, i), lb_bars_symbol (bars, 0)) == 0)
            gen = i;
    lb_market_get (m, gen, &o);
    assert (fabs (v.close [5] - o.close [5]) < 1e-4 && v.ts [5] == lb_market_ts (m) [5]);
    assert (v.news && v.options);
    //  A window and a symbol filter.
    const char *only [] = { lb_market_symbol (m, 0), "SPY", NULL };
    lb_bars_t *some = lb_marketdb_read_bars (conn, lb_market_ts (m) [70], lb_market_ts (m) [140],
                                             only, &error, &retry);
    assert (some && lb_bars_nseries (some) == 2 && lb_bars_count (some) == 140);
    lb_bars_destroy (&some);

    //  Events to pattern_training_data and back.
    s_test_exec (conn, "create temporary table pattern_training_data (id bigserial, symbol text not null, "
                       "timestamp timestamptz not null, pattern_type text not null, "
                       "body_to_range_ratio float8, upper_shadow_ratio float8, lower_shadow_ratio float8, "
                       "volume_surge float8, rsi_14 float8, bb_position float8, macd_histogram float8, "
                       "adx_strength float8, vix_level float8, spy_correlation float8, sector_momentum float8, "
                       "market_breadth float8, news_present float8, premarket_gap float8, unusual_volume float8, "
                       "options_activity float8, rule_signal smallint not null, horizon_bars int not null, "
                       "label_timestamp timestamptz not null, forward_return float8 not null, "
                       "pattern_success boolean not null, unique (symbol, timestamp))");
    lb_bars_label_t label = { 5, 0, false };
    lb_bars_event_t *ev;
    size_t n;
    assert (lb_bars_events (bars, &label, &ev, &n) == 0 && n > 0);
    assert (lb_marketdb_store_events (conn, bars, ev, n, 5, &error) == 0);
    assert (lb_marketdb_store_events (conn, bars, ev, n, 5, &error) == 0);      //  idempotent
    lb_bars_t *names;
    lb_bars_event_t *back;
    size_t nb;
    assert (lb_marketdb_read_events (conn, INT64_MIN, INT64_MAX, &names, &back, &nb, &error, &retry) == 0);
    assert (nb == n);
    for (size_t i = 0; i < n; i++) {
        assert (back [i].ts == ev [i].ts && back [i].label_ts == ev [i].label_ts);
        assert (strcmp (lb_bars_symbol (names, (int) back [i].series), lb_bars_symbol (bars, (int) ev [i].series)) == 0
             || back [i].ts == ev [i].ts);      //  same-time rows may order differently
        assert (back [i].patterns != 0);
    }
    //  Exact round trip of one event (features written with 17 digits).
    size_t hit = 0;
    for (size_t i = 0; i < n; i++)
        if (back [i].ts == ev [0].ts && strcmp (lb_bars_symbol (names, (int) back [i].series),
                                                lb_bars_symbol (bars, (int) ev [0].series)) == 0)
            hit = i + 1;
    assert (hit);
    for (int k = 0; k < KN_FEATURES_COUNT; k++)
        assert ((isnan (ev [0].features [k]) && isnan (back [hit - 1].features [k]))
             || ev [0].features [k] == back [hit - 1].features [k]);
    assert (back [hit - 1].patterns == ev [0].patterns && back [hit - 1].success == ev [0].success);
    free (back);
    lb_bars_destroy (&names);
    free (ev);

    //  Bad values in the table are named.
    s_test_exec (conn, "update market_bars set close = 'NaN' where ctid = (select ctid from market_bars "
                       "where symbol = 'SPY' order by ts limit 1 offset 3)");
    lb_bars_t *bad = lb_marketdb_read_bars (conn, INT64_MIN, INT64_MAX, NULL, &error, &retry);
    assert (!bad && strstr (error, "SPY") && strstr (error, "close is NaN") && !retry);
    if (verbose)
        printf ("  %s\n", error);
    s_test_exec (conn, "update market_bars set close = 'Infinity' where close = 'NaN'");
    bad = lb_marketdb_read_bars (conn, INT64_MIN, INT64_MAX, NULL, &error, &retry);
    assert (!bad && strstr (error, "infinite"));
    //  The connection stays usable after a failed read.
    s_test_exec (conn, "truncate market_bars");
    assert (lb_marketdb_last_ts (conn, "market_bars", "ts", &error, NULL) == -1 && strstr (error, "empty"));
    free (error);
    lb_bars_destroy (&bars);
    lb_market_destroy (&m);
    PQfinish (conn);
}
