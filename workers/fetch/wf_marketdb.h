/*  wf_marketdb.h - market data in PostgreSQL, moved with COPY both ways.

    Tables (deploy/sql/040-041): market_symbols (symbol, sector, kind),
    market_bars (symbol, ts, open, high, low, close, volume, news_count,
    options_volume) and pattern_training_data (one row per pattern event).
    Reads never go row by row: one COPY (SELECT ...) TO STDOUT per read,
    parsed as it streams. Before reading, the table's columns and their types
    are checked, so a missing table or a column of the wrong type is a clear,
    permanent error rather than a parse failure halfway through.

    Errors: functions return -1 (or NULL) with *error_p set to one line the
    caller frees, and *retryable (when not NULL) true only for failures that
    may pass on a later attempt (the connection was lost, the server is
    shutting down or out of resources).
*/
#ifndef WF_MARKETDB_H_INCLUDED
#define WF_MARKETDB_H_INCLUDED

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wf_bars.h"
#include "lb_market.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Writes the generated market into market_symbols and market_bars with
//  COPY, in one transaction. With replace, rows of the same symbols are
//  deleted first; without it, a market whose symbols are already there is
//  left alone (returns 0, *loaded = 0). Returns 0 and the number of bars
//  written in *loaded, or -1 with *error_p set.
int wf_marketdb_load_market (PGconn *conn, lb_market_t *market, bool replace, size_t *loaded,
                             char **error_p);

//  Reads the bars with from <= ts < to (Unix seconds) of every symbol (or of
//  the NULL-terminated list symbols), with each symbol's sector and kind from
//  market_symbols (a symbol missing there is a stock with no sector).
//  Returns the bars (caller destroys), or NULL with *error_p set: missing
//  table or column, a column of a non-numeric type, a bad value (NaN or
//  infinite price, high under low: named with symbol and time), a lost
//  connection (*retryable).
wf_bars_t *wf_marketdb_read_bars (PGconn *conn, int64_t from, int64_t to,
                                  const char *const *symbols, char **error_p, bool *retryable);

//  The same through connections parallel connections to url (all of
//  market_bars: no symbol filter), each scanning 1/connections of the
//  table's pages (the server's work is most of a read's time). Series come
//  in symbol order. connections 1 is wf_marketdb_read_bars on one new
//  connection.
wf_bars_t *wf_marketdb_read_bars_parallel (const char *url, int connections, int64_t from, int64_t to,
                                           char **error_p, bool *retryable);

//  Writes events (from wf_bars_events over bars, label horizon horizon) into
//  pattern_training_data with COPY, replacing rows of the same (symbol,
//  ts). Returns 0, or -1 with *error_p set.
int wf_marketdb_store_events (PGconn *conn, wf_bars_t *bars, const wf_bars_event_t *events,
                              size_t count, int horizon, char **error_p);

//  Reads pattern_training_data rows with from <= ts < to through COPY
//  into events (caller frees) ordered by (ts, symbol); *bars_p
//  receives a container holding only the symbol names (events[i].series
//  indexes it; caller destroys). Returns 0, or -1 with *error_p set.
int wf_marketdb_read_events (PGconn *conn, int64_t from, int64_t to, wf_bars_t **bars_p,
                             wf_bars_event_t **events, size_t *count, char **error_p,
                             bool *retryable);

//  The latest ts in market_bars (Unix seconds), or -1 with *error_p set
//  (no rows is an error too: "market_bars is empty").
int64_t wf_marketdb_last_ts (PGconn *conn, const char *table, const char *column, char **error_p,
                             bool *retryable);

//  Kinds of a table's columns, for readers of arbitrary tables.
typedef enum {
    WF_MARKETDB_MISSING = 0,    //  no such column
    WF_MARKETDB_NUMBER,         //  integer, real, numeric, boolean (read as 0/1)
    WF_MARKETDB_TIME,           //  timestamp or date (read as Unix seconds)
    WF_MARKETDB_TEXT,           //  text, varchar, char
    WF_MARKETDB_OTHER           //  anything else (json, bytea, ...): not readable as data
} wf_marketdb_kind_t;

//  Sets kinds[i] for each of the n columns of table. Returns 1, 0 if the
//  table does not exist, -1 on a query failure; *error_p set unless 1.
int wf_marketdb_column_kinds (PGconn *conn, const char *table, const char *const *columns,
                              size_t n, wf_marketdb_kind_t *kinds, char **error_p, bool *retryable);

//  Streams "COPY (query) TO STDOUT": row is called with each line split into
//  nfields fields (NULL for SQL null; at most 32), and returns 0 to go on or
//  -1 to stop with *error_p set. Returns 0 or -1 (*error_p set).
int wf_marketdb_copy_out (PGconn *conn, const char *query, int nfields,
                          int (*row) (void *arg, char **fields, size_t line_no), void *arg,
                          char **error_p, bool *retryable);

//  Selftest (needs DATABASE_URL; uses temporary tables, skips without it).
void wf_marketdb_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
