/*  wf_marketdb.c - market data in PostgreSQL through COPY (see wf_marketdb.h). */
#include "wf_marketdb.h"
#include "lb_log.h"
#include "lb_mem.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <pthread.h>
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
//  The (name, type) rows of table's columns into *res (caller clears).
//  Returns 1, 0 if the table does not exist, -1 on a failure (*error_p set
//  unless 1).
static int
s_table_columns (PGconn *conn, const char *table, PGresult **res_p, char **error_p, bool *retryable)
{
    const char *params [1] = { table };
    PGresult *res = PQexecParams (conn,
        "select a.attname, format_type (a.atttypid, a.atttypmod) from pg_attribute a "
        "where a.attrelid = to_regclass ($1) and a.attnum > 0 and not a.attisdropped",
        1, NULL, params, NULL, NULL, 0);
    *res_p = NULL;
    if (PQresultStatus (res) != PGRES_TUPLES_OK) {
        s_pg_error (conn, res, table, error_p, retryable);
        PQclear (res);
        return -1;
    }
    if (PQntuples (res) == 0) {
        s_set_error (error_p, "table %s does not exist (run deploy/migrate, or load it with bin/marketgen)", table);
        PQclear (res);
        return 0;
    }
    *res_p = res;
    return 1;
}

static int
s_check_table (PGconn *conn, const char *table, const s_column_t *cols, bool *present,
               char **error_p, bool *retryable)
{
    PGresult *res;
    int found = s_table_columns (conn, table, &res, error_p, retryable);
    if (found != 1)
        return found;
    int rows = PQntuples (res);
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
wf_marketdb_load_market (PGconn *conn, lb_market_t *m, bool replace, size_t *loaded, char **error_p)
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
//  Ends a COPY OUT after PQgetCopyData returned len: collects the final
//  result. rc is the caller's verdict so far. Returns 0 or -1.
static int
s_copy_out_end (PGconn *conn, int len, int rc, char **error_p, bool *retryable)
{
    if (len == -2) {
        s_pg_error (conn, NULL, "COPY out", error_p, retryable);
        return -1;
    }
    PGresult *res = PQgetResult (conn);
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

int
wf_marketdb_copy_out (PGconn *conn, const char *query, int nfields,
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
    return s_copy_out_end (conn, len, rc, error_p, retryable);
}

static uint32_t
s_be32 (const unsigned char *p)
{
    return (uint32_t) p [0] << 24 | (uint32_t) p [1] << 16 | (uint32_t) p [2] << 8 | p [3];
}

static uint64_t
s_be64 (const unsigned char *p)
{
    return (uint64_t) s_be32 (p) << 32 | s_be32 (p + 4);
}

//  Rows as they come off the wire, per symbol and column, before they are
//  ordered and checked (wf_bars wants each symbol's bars in time order, and
//  an unordered scan is much cheaper for the server than ORDER BY). The
//  columns go to wf_bars as they are when a symbol's rows came in order on
//  one connection, the usual case (a table loaded with COPY).
typedef struct {
    char symbol [32];
    size_t len;
    wf_bars_columns_t cols;
} s_stage_sym_t;

typedef struct {
    s_stage_sym_t *sym;
    size_t n, max;
    uint32_t *slots;            //  open addressing over sym, index + 1
    size_t nslots;
} s_stage_t;

static void
s_stage_release (s_stage_t *st)
{
    for (size_t i = 0; i < st->n; i++)
        wf_bars_columns_release (&st->sym [i].cols);
    free (st->sym);
    free (st->slots);
    memset (st, 0, sizeof *st);
}

static uint64_t
s_hash (const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char) s [i]) * 1099511628211ull;
    return h;
}

//  The staging entry of symbol (len bytes, < 32), added if new when add.
static s_stage_sym_t *
s_stage_sym (s_stage_t *st, const char *symbol, size_t len, bool add)
{
    if (2 * (st->n + 1) > st->nslots) {
        size_t slots = st->nslots ? 2 * st->nslots : 64;
        uint32_t *t = lb_xcalloc (slots, sizeof (uint32_t));
        for (size_t i = 0; i < st->n; i++) {
            size_t k = (size_t) s_hash (st->sym [i].symbol, st->sym [i].len) & (slots - 1);
            while (t [k])
                k = (k + 1) & (slots - 1);
            t [k] = (uint32_t) i + 1;
        }
        free (st->slots);
        st->slots = t;
        st->nslots = slots;
    }
    size_t k = (size_t) s_hash (symbol, len) & (st->nslots - 1);
    while (st->slots [k]) {
        s_stage_sym_t *e = &st->sym [st->slots [k] - 1];
        if (e->len == len && memcmp (e->symbol, symbol, len) == 0)
            return e;
        k = (k + 1) & (st->nslots - 1);
    }
    if (!add)
        return NULL;
    if (st->n == st->max) {
        st->max = st->max ? 2 * st->max : 64;
        st->sym = lb_xrealloc (st->sym, st->max * sizeof (s_stage_sym_t));
    }
    s_stage_sym_t *e = &st->sym [st->n];
    memset (e, 0, sizeof *e);
    memcpy (e->symbol, symbol, len);
    e->len = len;
    st->slots [k] = (uint32_t) ++st->n;
    return e;
}

//  Makes room for need rows in cols (first: a guess at a symbol's share).
static void
s_cols_reserve (wf_bars_columns_t *c, size_t need, size_t first)
{
    if (need <= c->max)
        return;
    size_t max = c->max ? 2 * c->max : first;
    while (max < need)
        max *= 2;
    c->max = max;
    c->ts = lb_xrealloc (c->ts, max * sizeof (int64_t));
    double **arr [7] = { &c->open, &c->high, &c->low, &c->close, &c->volume, &c->news, &c->options };
    for (int k = 0; k < 7; k++)
        *arr [k] = lb_xrealloc (*arr [k], max * sizeof (double));
}

static int
s_cmp_name (const void *a, const void *b)
{
    return strcmp (*(const char *const *) a, *(const char *const *) b);
}

typedef struct {
    const int64_t *ts;
    size_t pos;
} s_ts_ref_t;

static int
s_cmp_ts_ref (const void *a, const void *b)
{
    const s_ts_ref_t *x = a, *y = b;
    int64_t tx = x->ts [x->pos], ty = y->ts [y->pos];
    if (tx != ty)
        return tx < ty ? -1 : 1;
    return x->pos < y->pos ? -1 : x->pos > y->pos;
}

//  Puts cols's rows in time order (stable: of equal times, wf_bars refuses
//  the second as it would in the table's order).
static void
s_cols_sort (wf_bars_columns_t *c)
{
    bool sorted = true;
    for (size_t i = 1; i < c->n && sorted; i++)
        sorted = c->ts [i] >= c->ts [i - 1];
    if (sorted)
        return;
    s_ts_ref_t *refs = lb_xmalloc (c->n * sizeof (s_ts_ref_t));
    size_t *order = lb_xmalloc (c->n * sizeof (size_t));
    for (size_t i = 0; i < c->n; i++)
        refs [i] = (s_ts_ref_t) { c->ts, i };
    qsort (refs, c->n, sizeof (s_ts_ref_t), s_cmp_ts_ref);       //  ties by position: stable
    for (size_t i = 0; i < c->n; i++)
        order [i] = refs [i].pos;
    free (refs);
    int64_t *ts = lb_xmalloc (c->max * sizeof (int64_t));
    for (size_t i = 0; i < c->n; i++)
        ts [i] = c->ts [order [i]];
    free (c->ts);
    c->ts = ts;
    double **arr [7] = { &c->open, &c->high, &c->low, &c->close, &c->volume, &c->news, &c->options };
    for (int k = 0; k < 7; k++) {
        double *from = *arr [k], *to = lb_xmalloc (c->max * sizeof (double));
        for (size_t i = 0; i < c->n; i++)
            to [i] = from [order [i]];
        free (from);
        *arr [k] = to;
    }
    free (order);
}

//  Moves the rows of every stage into bars: symbols in name order, each
//  symbol's rows in time order, every value checked by wf_bars. The stages'
//  columns are handed over (no copy) when a symbol came whole from one
//  connection. kinds: market_symbols rows or NULL. Returns 0 or -1
//  (*error_p set).
static int
s_stage_flush (s_stage_t *stages, size_t nstages, PGresult *kinds, wf_bars_t *bars, char **error_p)
{
    size_t total = 0;
    for (size_t k = 0; k < nstages; k++)
        total += stages [k].n;
    const char **names = lb_xmalloc ((total ? total : 1) * sizeof (char *));
    size_t nn = 0;
    for (size_t k = 0; k < nstages; k++)
        for (size_t i = 0; i < stages [k].n; i++)
            names [nn++] = stages [k].sym [i].symbol;
    qsort (names, nn, sizeof (char *), s_cmp_name);
    int rc = 0;
    for (size_t i = 0; i < nn && rc == 0; i++) {
        if (i && strcmp (names [i], names [i - 1]) == 0)
            continue;
        const char *symbol = names [i], *sector = "", *kind = "stock";
        for (int r = 0; kinds && r < PQntuples (kinds); r++)
            if (strcmp (PQgetvalue (kinds, r, 0), symbol) == 0) {
                sector = PQgetvalue (kinds, r, 1);
                kind = PQgetvalue (kinds, r, 2);
            }
        int series = wf_bars_series (bars, symbol, sector,
                                     strcmp (kind, "index") == 0 ? WF_BARS_INDEX
                                   : strcmp (kind, "volatility") == 0 ? WF_BARS_VOLATILITY : WF_BARS_STOCK);
        if (series < 0) {
            s_set_error (error_p, "market_bars: %s", wf_bars_error (bars));
            rc = -1;
            break;
        }
        //  This symbol's rows from every stage (in physical order), joined.
        wf_bars_columns_t cols = { 0 };
        size_t len = strlen (symbol);
        for (size_t k = 0; k < nstages; k++) {
            s_stage_sym_t *e = stages [k].n ? s_stage_sym (&stages [k], symbol, len, false) : NULL;
            if (!e || e->cols.n == 0)
                continue;
            if (cols.n == 0) {
                wf_bars_columns_release (&cols);
                cols = e->cols;
                memset (&e->cols, 0, sizeof e->cols);
                continue;
            }
            size_t at = cols.n, n = e->cols.n;
            s_cols_reserve (&cols, at + n, at + n);
            memcpy (cols.ts + at, e->cols.ts, n * sizeof (int64_t));
            double *to [7] = { cols.open, cols.high, cols.low, cols.close, cols.volume, cols.news, cols.options };
            double *from [7] = { e->cols.open, e->cols.high, e->cols.low, e->cols.close, e->cols.volume,
                                 e->cols.news, e->cols.options };
            for (int c = 0; c < 7; c++)
                memcpy (to [c] + at, from [c], n * sizeof (double));
            cols.n += n;
            wf_bars_columns_release (&e->cols);
        }
        s_cols_sort (&cols);
        if (wf_bars_append_columns (bars, series, &cols)) {
            s_set_error (error_p, "market_bars: %s", wf_bars_error (bars));
            rc = -1;
        }
    }
    free (names);
    return rc;
}

//  Streams a binary COPY of (symbol, ts, open, high, low, close, volume,
//  news, options) into a stage: binary saves the server formatting every
//  float and us parsing it; each value goes straight into its symbol's
//  column. Returns 0 or -1 (*error_p set).
static int
s_copy_bars_binary (PGconn *conn, const char *query, s_stage_t *stage, char **error_p, bool *retryable)
{
    PGresult *res = PQexec (conn, query);
    if (PQresultStatus (res) != PGRES_COPY_OUT) {
        s_pg_error (conn, res, "COPY out", error_p, retryable);
        PQclear (res);
        return -1;
    }
    PQclear (res);
    static const char *names [9] = { "symbol", "ts", "open", "high", "low", "close", "volume",
                                     "news_count", "options_volume" };
    int rc = 0;
    bool header = false;
    s_stage_sym_t *current = NULL;
    size_t row = 0;
    char *buf;
    int len;
    while ((len = PQgetCopyData (conn, &buf, 0)) > 0) {
        const unsigned char *p = (const unsigned char *) buf, *end = p + len;
        if (!header && rc == 0) {
            if (len < 19 || memcmp (p, "PGCOPY\n\377\r\n\0", 11) != 0) {
                s_set_error (error_p, "COPY: not a binary COPY header");
                rc = -1;
            }
            else {
                uint32_t ext = s_be32 (p + 15);
                p += 19 + (ext <= (uint32_t) (len - 19) ? ext : 0);
            }
            header = true;
        }
        while (rc == 0 && p < end) {
            if (end - p < 2) {
                s_set_error (error_p, "COPY: row %zu is cut short", row + 1);
                rc = -1;
                break;
            }
            int16_t nf = (int16_t) (p [0] << 8 | p [1]);
            p += 2;
            if (nf == -1)
                break;
            row++;
            if (nf != 9) {
                s_set_error (error_p, "COPY: row %zu has %d fields, want 9", row, nf);
                rc = -1;
                break;
            }
            //  symbol: 4-byte length and the bytes; then 8 fields of 4 + 8
            //  bytes each, or 4 bytes for a null.
            int32_t slen = end - p >= 4 ? (int32_t) s_be32 (p) : -2;
            if (slen == -2 || (slen > 0 && end - p - 4 < slen)) {
                s_set_error (error_p, "COPY: row %zu is malformed", row);
                rc = -1;
                break;
            }
            const unsigned char *sym = p + 4;
            p += 4 + (slen > 0 ? slen : 0);
            if (slen < 1 || slen >= 32) {
                s_set_error (error_p, "market_bars row %zu: symbol or ts is null or too long", row);
                rc = -1;
                break;
            }
            if (!current || current->len != (size_t) slen || memcmp (current->symbol, sym, (size_t) slen))
                current = s_stage_sym (stage, (const char *) sym, (size_t) slen, true);
            wf_bars_columns_t *c = &current->cols;
            if (c->n == c->max)
                s_cols_reserve (c, c->n + 1, 1024);
            size_t at = c->n;
            double *to [8] = { NULL, c->open, c->high, c->low, c->close, c->volume, c->news, c->options };
            for (int k = 0; k < 8 && rc == 0; k++) {
                if (end - p < 4) {
                    rc = -1;
                    break;
                }
                int32_t flen = (int32_t) s_be32 (p);
                p += 4;
                if (flen == -1) {
                    if (k < 6) {
                        s_set_error (error_p, "market_bars row %zu (symbol %s): %s is null", row,
                                     current->symbol, names [1 + k]);
                        rc = -2;
                        break;
                    }
                    to [k] [at] = NAN;
                    continue;
                }
                if (flen != 8 || end - p < 8) {
                    rc = -1;
                    break;
                }
                uint64_t bits = s_be64 (p);
                p += 8;
                if (k == 0) {
                    int64_t us = (int64_t) bits;
                    c->ts [at] = (us >= 0 ? us / 1000000 : (us - 999999) / 1000000) + 946684800;
                }
                else
                    memcpy (&to [k] [at], &bits, 8);
            }
            if (rc == -1)
                s_set_error (error_p, "COPY: row %zu is malformed", row);
            if (rc) {
                rc = -1;
                break;
            }
            c->n++;
        }
        PQfreemem (buf);            //  keep draining after an error: the connection stays usable
    }
    return s_copy_out_end (conn, len, rc, error_p, retryable);
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

//  Reads market_bars rows (window, symbols, and pages [page_lo, page_hi) of
//  the table when page_hi > 0) into stage with one unordered binary COPY.
//  Returns 0 or -1 (*error_p set).
static int
s_read_stage (PGconn *conn, int64_t from, int64_t to, const char *const *symbols, long page_lo,
              long page_hi, bool last_part, s_stage_t *stage, char **error_p, bool *retryable)
{
    static const s_column_t cols [] = {
        { "symbol", S_TEXT, false }, { "ts", S_TIME, false }, { "open", S_NUMBER, false },
        { "high", S_NUMBER, false }, { "low", S_NUMBER, false }, { "close", S_NUMBER, false },
        { "volume", S_NUMBER, false }, { "news_count", S_NUMBER, true },
        { "options_volume", S_NUMBER, true }, { NULL, 0, false } };
    bool present [16];
    if (s_check_table (conn, "market_bars", cols, present, error_p, retryable) != 1)
        return -1;
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
    char pages [96] = "";
    if (page_hi > 0) {
        if (last_part)
            snprintf (pages, sizeof pages, " and b.ctid >= '(%ld,0)'::tid", page_lo);
        else
            snprintf (pages, sizeof pages, " and b.ctid >= '(%ld,0)'::tid and b.ctid < '(%ld,0)'::tid",
                      page_lo, page_hi);
    }
    char *window = s_window ("b.ts", from, to);
    char *query = lb_xasprintf (
        "copy (select b.symbol::text, b.ts::timestamptz, b.open::float8, b.high::float8, b.low::float8, "
        "b.close::float8, b.volume::float8, %s::float8, %s::float8 from market_bars b where true%s%s%s) "
        "to stdout (format binary)",
        present [7] ? "b.news_count" : "null", present [8] ? "b.options_volume" : "null", window, filter, pages);
    free (window);
    free (filter);
    int rc = s_copy_bars_binary (conn, query, stage, error_p, retryable);
    free (query);
    return rc;
}

//  market_symbols rows (symbol, sector, kind), or NULL when there is no such table.
static PGresult *
s_kinds (PGconn *conn)
{
    static const s_column_t sym_cols [] = {
        { "symbol", S_TEXT, false }, { "sector", S_TEXT, false }, { "kind", S_TEXT, false },
        { NULL, 0, false } };
    bool present [8];
    char *ignored = NULL;
    int have = s_check_table (conn, "market_symbols", sym_cols, present, &ignored, NULL);
    free (ignored);
    if (have != 1)
        return NULL;
    PGresult *kinds = PQexec (conn, "select symbol, sector, kind from market_symbols");
    if (PQresultStatus (kinds) != PGRES_TUPLES_OK) {
        PQclear (kinds);
        kinds = NULL;
    }
    return kinds;
}

wf_bars_t *
wf_marketdb_read_bars (PGconn *conn, int64_t from, int64_t to, const char *const *symbols,
                       char **error_p, bool *retryable)
{
    assert (conn);
    if (retryable)
        *retryable = false;
    s_stage_t stage = { 0 };
    wf_bars_t *bars = NULL;
    if (s_read_stage (conn, from, to, symbols, 0, 0, true, &stage, error_p, retryable) == 0) {
        PGresult *kinds = s_kinds (conn);
        bars = wf_bars_new ();
        if (s_stage_flush (&stage, 1, kinds, bars, error_p))
            wf_bars_destroy (&bars);
        PQclear (kinds);
    }
    s_stage_release (&stage);
    return bars;
}

//  The page count every reader splits by, published once by the first.
typedef struct {
    pthread_mutex_t lock;
    pthread_cond_t ready;
    bool known;
    long pages;                 //  < 0: the first reader failed, others stop
} s_split_t;

//  One connection's share of a parallel read.
typedef struct {
    const char *url;
    int64_t from, to;
    int index, connections;
    s_split_t *split;
    PGconn *conn;               //  the first reader's, given
    s_stage_t stage;
    char *error;
    bool retry;
    bool failed;
} s_reader_t;

static void
s_split_publish (s_split_t *split, long pages)
{
    pthread_mutex_lock (&split->lock);
    split->pages = pages;
    split->known = true;
    pthread_cond_broadcast (&split->ready);
    pthread_mutex_unlock (&split->lock);
}

//  Connects (all readers at once, so connecting overlaps), waits for the
//  page count, and scans pages [c * pages / n, (c + 1) * pages / n).
static void *
s_reader_run (void *arg)
{
    s_reader_t *r = arg;
    s_split_t *split = r->split;
    PGconn *mine = r->conn;
    if (r->index > 0)
        mine = PQconnectdb (r->url);
    bool ok = PQstatus (mine) == CONNECTION_OK;
    if (!ok) {
        s_pg_error (mine, NULL, "connect", &r->error, &r->retry);
        r->retry = true;
        r->failed = true;
    }
    long pages = 0;
    if (r->index == 0) {
        if (ok) {
            PGresult *res = PQexec (mine, "select pg_relation_size ('market_bars') / "
                                          "current_setting ('block_size')::int");
            pages = PQresultStatus (res) == PGRES_TUPLES_OK ? atol (PQgetvalue (res, 0, 0)) : 0;
            PQclear (res);
        }
        s_split_publish (split, ok ? pages : -1);
    }
    else {
        pthread_mutex_lock (&split->lock);
        while (!split->known)
            pthread_cond_wait (&split->ready, &split->lock);
        pages = split->pages;
        pthread_mutex_unlock (&split->lock);
    }
    int n = r->connections;
    bool alone = pages < n;                     //  too small to split: the first reads it all
    if (ok && pages >= 0 && (!alone || r->index == 0)) {
        long lo = alone ? 0 : pages * r->index / n, hi = alone ? 0 : pages * (r->index + 1) / n;
        r->failed = s_read_stage (mine, r->from, r->to, NULL, lo, hi, alone || r->index == n - 1, &r->stage,
                                  &r->error, &r->retry) != 0;
    }
    if (r->index > 0)
        PQfinish (mine);
    return NULL;
}

wf_bars_t *
wf_marketdb_read_bars_parallel (const char *url, int connections, int64_t from, int64_t to,
                                char **error_p, bool *retryable)
{
    assert (url && connections >= 1 && connections <= 64);
    if (retryable)
        *retryable = false;
    //  Each connection scans its share of the table's pages (a TID range
    //  scan). Plain threads that block in recv while they wait: OpenMP's
    //  waiting threads spin, which takes a core from the server backends.
    s_split_t split = { .known = false };
    pthread_mutex_init (&split.lock, NULL);
    pthread_cond_init (&split.ready, NULL);
    s_reader_t *readers = lb_xcalloc ((size_t) connections, sizeof (s_reader_t));
    pthread_t *threads = lb_xcalloc ((size_t) connections, sizeof (pthread_t));
    bool *started = lb_xcalloc ((size_t) connections, sizeof (bool));
    for (int c = 0; c < connections; c++) {
        readers [c] = (s_reader_t) { .url = url, .from = from, .to = to, .index = c,
                                     .connections = connections, .split = &split };
        if (c > 0)
            started [c] = pthread_create (&threads [c], NULL, s_reader_run, &readers [c]) == 0;
    }
    PGconn *conn = PQconnectdb (url);
    readers [0].conn = conn;
    s_reader_run (&readers [0]);
    for (int c = 1; c < connections; c++)
        if (started [c])
            pthread_join (threads [c], NULL);
        else
            s_reader_run (&readers [c]);        //  a thread that did not start reads its share here
    wf_bars_t *bars = NULL;
    int bad = -1;
    for (int c = 0; c < connections && bad < 0; c++)
        if (readers [c].failed)
            bad = c;
    if (bad >= 0) {
        if (error_p) {
            free (*error_p);
            *error_p = readers [bad].error;
            readers [bad].error = NULL;
        }
        if (retryable)
            *retryable = readers [bad].retry;
    }
    else {
        s_stage_t *stages = lb_xcalloc ((size_t) connections, sizeof (s_stage_t));
        for (int c = 0; c < connections; c++) {
            stages [c] = readers [c].stage;
            memset (&readers [c].stage, 0, sizeof readers [c].stage);
        }
        PGresult *kinds = s_kinds (conn);
        bars = wf_bars_new ();
        if (s_stage_flush (stages, (size_t) connections, kinds, bars, error_p))
            wf_bars_destroy (&bars);
        PQclear (kinds);
        for (int c = 0; c < connections; c++)
            s_stage_release (&stages [c]);
        free (stages);
    }
    for (int c = 0; c < connections; c++) {
        s_stage_release (&readers [c].stage);
        free (readers [c].error);
    }
    free (readers);
    free (threads);
    free (started);
    pthread_mutex_destroy (&split.lock);
    pthread_cond_destroy (&split.ready);
    PQfinish (conn);
    return bars;
}

int
wf_marketdb_column_kinds (PGconn *conn, const char *table, const char *const *columns,
                          size_t n, wf_marketdb_kind_t *kinds, char **error_p, bool *retryable)
{
    assert (conn && table && (columns || n == 0) && kinds);
    if (retryable)
        *retryable = false;
    PGresult *res;
    int found = s_table_columns (conn, table, &res, error_p, retryable);
    if (found != 1)
        return found;
    int rows = PQntuples (res);
    for (size_t c = 0; c < n; c++) {
        kinds [c] = WF_MARKETDB_MISSING;
        for (int r = 0; r < rows; r++)
            if (strcmp (PQgetvalue (res, r, 0), columns [c]) == 0) {
                const char *type = PQgetvalue (res, r, 1);
                kinds [c] = s_type_ok (type, S_NUMBER) ? WF_MARKETDB_NUMBER
                          : s_type_ok (type, S_TIME) ? WF_MARKETDB_TIME
                          : s_type_ok (type, S_TEXT) ? WF_MARKETDB_TEXT : WF_MARKETDB_OTHER;
            }
    }
    PQclear (res);
    return 1;
}

// ---------------------------------------------------------------- events

typedef struct {
    wf_bars_t *bars;
    const wf_bars_event_t *events;
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
        const wf_bars_event_t *e = &w->events [i];
        char ts [40], lts [40], pats [128];
        s_pattern_names (e->patterns, pats, sizeof pats);
        len += (size_t) snprintf (buf + len, 4096, "%s\t%s\t%s", wf_bars_symbol (w->bars, (int) e->series),
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
    "symbol, ts, pattern_type, body_to_range_ratio, upper_shadow_ratio, lower_shadow_ratio, "
    "volume_surge, rsi_14, bb_position, macd_histogram, adx_strength, vix_level, spy_correlation, "
    "sector_momentum, market_breadth, news_present, premarket_gap, unusual_volume, options_activity, "
    "rule_signal, horizon_bars, label_timestamp, fwd_return, pattern_success";

int
wf_marketdb_store_events (PGconn *conn, wf_bars_t *bars, const wf_bars_event_t *events,
                          size_t count, int horizon, char **error_p)
{
    assert (conn && bars && (events || count == 0) && horizon >= 1);
    bool present [4];
    static const s_column_t cols [] = { { "symbol", S_TEXT, false }, { "ts", S_TIME, false },
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
                           "where p.symbol = e.symbol and p.ts = e.ts", error_p);
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
    wf_bars_t *bars;
    wf_bars_event_t *events;
    size_t count, max;
    int last;
    char **error_p;
} s_event_reader_t;

static int
s_event_row (void *arg, char **f, size_t line_no)
{
    //  symbol, ts, label_ts, 16 features, rule_signal, fwd_return, success, pattern_type
    s_event_reader_t *r = arg;
    if (!f [0] || !f [1] || !f [2] || !f [19] || !f [20] || !f [21] || !f [22]) {
        s_set_error (r->error_p, "pattern_training_data row %zu: a required value is null", line_no);
        return -1;
    }
    int series = r->last >= 0 && strcmp (wf_bars_symbol (r->bars, r->last), f [0]) == 0
               ? r->last : wf_bars_series (r->bars, f [0], "", WF_BARS_STOCK);
    if (series < 0) {
        s_set_error (r->error_p, "pattern_training_data row %zu: %s", line_no, wf_bars_error (r->bars));
        return -1;
    }
    r->last = series;
    if (r->count == r->max) {
        r->max = r->max ? 2 * r->max : 1024;
        r->events = lb_xrealloc (r->events, r->max * sizeof (wf_bars_event_t));
    }
    wf_bars_event_t *e = &r->events [r->count];
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
        s_set_error (r->error_p, "pattern_training_data row %zu (symbol %s): fwd_return is not finite",
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
wf_marketdb_read_events (PGconn *conn, int64_t from, int64_t to, wf_bars_t **bars_p,
                         wf_bars_event_t **events, size_t *count, char **error_p, bool *retryable)
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
    cols [nc++] = (s_column_t) { "ts", S_TIME, false };
    cols [nc++] = (s_column_t) { "label_timestamp", S_TIME, false };
    for (int k = 0; k < KN_FEATURES_COUNT; k++)
        cols [nc++] = (s_column_t) { kn_features_name (k), S_NUMBER, false };
    cols [nc++] = (s_column_t) { "rule_signal", S_NUMBER, false };
    cols [nc++] = (s_column_t) { "fwd_return", S_NUMBER, false };
    cols [nc++] = (s_column_t) { "pattern_type", S_TEXT, false };
    cols [nc] = (s_column_t) { NULL, 0, false };
    bool present [KN_FEATURES_COUNT + 8];
    if (s_check_table (conn, "pattern_training_data", cols, present, error_p, retryable) != 1)
        return -1;
    char feats [1024] = "";
    size_t len = 0;
    for (int k = 0; k < KN_FEATURES_COUNT; k++)
        len += (size_t) snprintf (feats + len, sizeof feats - len, ", %s", kn_features_name (k));
    char *window = s_window ("ts", from, to);
    char *query = lb_xasprintf (
        "select symbol, floor (extract (epoch from ts))::bigint, "
        "floor (extract (epoch from label_timestamp))::bigint%s, rule_signal, fwd_return, "
        "pattern_success::int, pattern_type from pattern_training_data where true%s "
        "order by ts, symbol", feats, window);
    free (window);
    s_event_reader_t r = { wf_bars_new (), NULL, 0, 0, -1, error_p };
    int rc = wf_marketdb_copy_out (conn, query, 23, s_event_row, &r, error_p, retryable);
    free (query);
    if (rc) {
        wf_bars_destroy (&r.bars);
        free (r.events);
        return -1;
    }
    *bars_p = r.bars;
    *events = r.events;
    *count = r.count;
    return 0;
}

int64_t
wf_marketdb_last_ts (PGconn *conn, const char *table, const char *column, char **error_p,
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
wf_marketdb_test (bool verbose)
{
    const char *url = getenv ("DATABASE_URL");
    if (!url) {
        printf ("wf_marketdb: DATABASE_URL not set, skipped\n");
        return;
    }
    PGconn *conn = PQconnectdb (url);
    assert (PQstatus (conn) == CONNECTION_OK);
    //  Only temporary tables are visible: the test cannot touch real data.
    s_test_exec (conn, "set search_path to pg_temp");
    s_test_exec (conn, "set client_min_messages to warning");
    char *error = NULL;
    bool retry = true;
    wf_bars_t *bars = wf_marketdb_read_bars (conn, INT64_MIN, INT64_MAX, NULL, &error, &retry);
    assert (!bars && strstr (error, "market_bars does not exist") && !retry);
    s_test_exec (conn, "create temporary table market_symbols (symbol text primary key, "
                       "sector text not null default '', kind text not null default 'stock', "
                       "source text not null default '')");
    s_test_exec (conn, "create temporary table market_bars (symbol text, ts timestamptz, open float8, "
                       "high float8, low float8, close text, volume float8, news_count int, "
                       "options_volume float8, primary key (symbol, ts))");
    bars = wf_marketdb_read_bars (conn, INT64_MIN, INT64_MAX, NULL, &error, &retry);
    assert (!bars && strstr (error, "market_bars.close has type text") && !retry);
    s_test_exec (conn, "alter table market_bars alter column close type float8 using close::float8");

    lb_market_params_t p;
    lb_market_params_default (&p);
    p.symbols = 12;
    p.sectors = 3;
    p.days = 40;
    lb_market_t *m = lb_market_new (&p);
    size_t loaded;
    assert (wf_marketdb_load_market (conn, m, false, &loaded, &error) == 0);
    assert (loaded == 14 * 280);
    assert (wf_marketdb_load_market (conn, m, false, &loaded, &error) == 0 && loaded == 0);
    assert (wf_marketdb_load_market (conn, m, true, &loaded, &error) == 0 && loaded == 14 * 280);
    int64_t last = wf_marketdb_last_ts (conn, "market_bars", "ts", &error, NULL);
    assert (last == lb_market_ts (m) [279]);

    bars = wf_marketdb_read_bars (conn, INT64_MIN, INT64_MAX, NULL, &error, &retry);
    assert (bars);
    assert (wf_bars_nseries (bars) == 14 && wf_bars_count (bars) == 14 * 280);
    int spy = -1;
    for (int i = 0; i < 14; i++)
        if (strcmp (wf_bars_symbol (bars, i), "SPY") == 0)
            spy = i;
    assert (spy >= 0 && wf_bars_kind (bars, spy) == WF_BARS_INDEX);
    //  Prices come back as written (4 decimals).
    kn_series_t v;
    wf_bars_view (bars, 0, &v);
    lb_market_ohlcv_t o;
    int gen = -1;
    for (int i = 0; i < 14; i++)
        if (strcmp (lb_market_symbol (m, i), wf_bars_symbol (bars, 0)) == 0)
            gen = i;
    lb_market_get (m, gen, &o);
    assert (fabs (v.close [5] - o.close [5]) < 1e-4 && v.ts [5] == lb_market_ts (m) [5]);
    assert (v.news && v.options);
    //  A window and a symbol filter.
    const char *only [] = { lb_market_symbol (m, 0), "SPY", NULL };
    wf_bars_t *some = wf_marketdb_read_bars (conn, lb_market_ts (m) [70], lb_market_ts (m) [140],
                                             only, &error, &retry);
    assert (some && wf_bars_nseries (some) == 2 && wf_bars_count (some) == 140);
    wf_bars_destroy (&some);

    //  Events to pattern_training_data and back.
    s_test_exec (conn, "create temporary table pattern_training_data (id bigserial, symbol text not null, "
                       "ts timestamptz not null, pattern_type text not null, "
                       "body_to_range_ratio float8, upper_shadow_ratio float8, lower_shadow_ratio float8, "
                       "volume_surge float8, rsi_14 float8, bb_position float8, macd_histogram float8, "
                       "adx_strength float8, vix_level float8, spy_correlation float8, sector_momentum float8, "
                       "market_breadth float8, news_present float8, premarket_gap float8, unusual_volume float8, "
                       "options_activity float8, rule_signal smallint not null, horizon_bars int not null, "
                       "label_timestamp timestamptz not null, fwd_return float8 not null, "
                       "pattern_success boolean not null, unique (symbol, ts))");
    wf_bars_label_t label = { 5, 0, false };
    wf_bars_event_t *ev;
    size_t n;
    assert (wf_bars_events (bars, &label, &ev, &n) == 0 && n > 0);
    assert (wf_marketdb_store_events (conn, bars, ev, n, 5, &error) == 0);
    assert (wf_marketdb_store_events (conn, bars, ev, n, 5, &error) == 0);      //  idempotent
    wf_bars_t *names;
    wf_bars_event_t *back;
    size_t nb;
    assert (wf_marketdb_read_events (conn, INT64_MIN, INT64_MAX, &names, &back, &nb, &error, &retry) == 0);
    assert (nb == n);
    for (size_t i = 0; i < n; i++) {
        assert (back [i].ts == ev [i].ts && back [i].label_ts == ev [i].label_ts);
        assert (strcmp (wf_bars_symbol (names, (int) back [i].series), wf_bars_symbol (bars, (int) ev [i].series)) == 0
             || back [i].ts == ev [i].ts);      //  same-time rows may order differently
        assert (back [i].patterns != 0);
    }
    //  Exact round trip of one event (features written with 17 digits).
    size_t hit = 0;
    for (size_t i = 0; i < n; i++)
        if (back [i].ts == ev [0].ts && strcmp (wf_bars_symbol (names, (int) back [i].series),
                                                wf_bars_symbol (bars, (int) ev [0].series)) == 0)
            hit = i + 1;
    assert (hit);
    for (int k = 0; k < KN_FEATURES_COUNT; k++)
        assert ((isnan (ev [0].features [k]) && isnan (back [hit - 1].features [k]))
             || ev [0].features [k] == back [hit - 1].features [k]);
    assert (back [hit - 1].patterns == ev [0].patterns && back [hit - 1].success == ev [0].success);
    free (back);
    wf_bars_destroy (&names);
    free (ev);

    //  Bad values in the table are named.
    s_test_exec (conn, "update market_bars set close = 'NaN' where ctid = (select ctid from market_bars "
                       "where symbol = 'SPY' order by ts limit 1 offset 3)");
    wf_bars_t *bad = wf_marketdb_read_bars (conn, INT64_MIN, INT64_MAX, NULL, &error, &retry);
    assert (!bad && strstr (error, "SPY") && strstr (error, "close is NaN") && !retry);
    if (verbose)
        printf ("  %s\n", error);
    s_test_exec (conn, "update market_bars set close = 'Infinity' where close = 'NaN'");
    bad = wf_marketdb_read_bars (conn, INT64_MIN, INT64_MAX, NULL, &error, &retry);
    assert (!bad && strstr (error, "infinite"));
    //  The connection stays usable after a failed read.
    s_test_exec (conn, "truncate market_bars");
    assert (wf_marketdb_last_ts (conn, "market_bars", "ts", &error, NULL) == -1 && strstr (error, "empty"));
    free (error);
    wf_bars_destroy (&bars);
    lb_market_destroy (&m);
    PQfinish (conn);
}
