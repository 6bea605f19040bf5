/*  lb_marketdb.h - market data in PostgreSQL, moved with COPY both ways.

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
#ifndef LB_MARKETDB_H_INCLUDED
#define LB_MARKETDB_H_INCLUDED

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lb_bars.h"
#include "lb_market.h"

#ifdef __cplusplus
extern "C" {
#endif

//  Writes the generated market into market_symbols and market_bars with
//  COPY, in one transaction. With replace, rows of the same symbols are
//  deleted first; without it, a market whose symbols are already there is
//  left alone (returns 0, *loaded = 0). Returns 0 and the number of bars
//  written in *loaded, or -1 with *error_p set.
int lb_marketdb_load_market (PGconn *conn, lb_market_t *market, bool replace, size_t *loaded,
                             char **error_p);

//  Reads the bars with from <= ts < to (Unix seconds) of every symbol (or of
//  the NULL-terminated list symbols), with each symbol's sector and kind from
//  market_symbols (a symbol missing there is a stock with no sector).
//  Returns the bars (caller destroys), or NULL with *error_p set: missing
//  table or column, a column of a non-numeric type, a bad value (NaN or
//  infinite price, high under low: named with symbol and time), a lost
//  connection (*retryable).
lb_bars_t *lb_marketdb_read_bars (PGconn *conn, int64_t from, int64_t to,
                                  const char *const *symbols, char **error_p, bool *retryable);

//  Writes events (from lb_bars_events over bars, label horizon horizon) into
//  pattern_training_data with COPY, replacing rows of the same (symbol,
//  timestamp). Returns 0, or -1 with *error_p set.
int lb_marketdb_store_events (PGconn *conn, lb_bars_t *bars, const lb_bars_event_t *events,
                              size_t count, int horizon, char **error_p);

//  Reads pattern_training_data rows with from <= timestamp < to through COPY
//  into events (caller frees) ordered by (timestamp, symbol); *bars_p
//  receives a container holding only the symbol names (events[i].series
//  indexes it; caller destroys). Returns 0, or -1 with *error_p set.
int lb_marketdb_read_events (PGconn *conn, int64_t from, int64_t to, lb_bars_t **bars_p,
                             lb_bars_event_t **events, size_t *count, char **error_p,
                             bool *retryable);

//  The latest ts in market_bars (Unix seconds), or -1 with *error_p set
//  (no rows is an error too: "market_bars is empty").
int64_t lb_marketdb_last_ts (PGconn *conn, const char *table, const char *column, char **error_p,
                             bool *retryable);

//  Selftest (needs DATABASE_URL; uses temporary tables, skips without it).
void lb_marketdb_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
