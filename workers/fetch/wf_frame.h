/*  wf_frame.h - one task source read into named columns (the fetch worker).

    A frame holds rows of named columns, each numbers (double, NaN = missing;
    times as Unix seconds) or text (NULL = missing). Frames come from a CSV
    file (lib/lb_csv.h; the spec's column names replace the header's), a JSON
    array of objects (the spec's columns are the keys), or a PostgreSQL table
    read with one COPY (workers/fetch/wf_marketdb.h). Where-filters, ordering by the
    time column and the as-of join of several sources happen here.
*/
#ifndef WF_FRAME_H_INCLUDED
#define WF_FRAME_H_INCLUDED

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#include "pr_task.h"

typedef struct {
    char *name;
    bool text;
    double *num;        //  rows values when !text
    char **str;         //  rows values when text
} wf_col_t;

typedef struct {
    size_t rows, cols;
    wf_col_t *col;
    int time_col;       //  -1: none (row order is time order)
} wf_frame_t;

//  Releases a frame's contents and zeroes it; harmless twice.
void wf_frame_release (wf_frame_t *frame);

//  Index of column name, or -1.
int wf_frame_column (const wf_frame_t *frame, const char *name);

//  Reads a CSV file per the source (delimiter, header, columns in file
//  order). Returns 0, or -1 with *error_p (caller frees): the parse error
//  with its line, or a column count that does not match the spec.
int wf_frame_from_csv (const pr_source_t *src, const char *path, wf_frame_t *frame, char **error_p);

//  Reads a JSON array of objects; each object's values under the spec's
//  columns (numbers, strings, true/false, null). Returns 0, or -1 with *error_p.
int wf_frame_from_json (const pr_source_t *src, const char *path, size_t max_bytes, wf_frame_t *frame,
                        char **error_p);

//  Reads the source's columns of table (pg:TABLE) with its where-filters
//  applied in SQL, ordered by the time column, through one COPY. Returns
//  0, or -1 with *error_p and *retryable (a lost connection) set.
int wf_frame_from_table (PGconn *conn, const pr_source_t *src, const char *table, wf_frame_t *frame,
                         char **error_p, bool *retryable);

//  Applies the source's where-filters (text equal, or number equal to the
//  parsed value), then orders rows by the time column (stable) when it has
//  one; a time column that is a plain year number becomes January 1st of
//  that year. Returns 0, or -1 with *error_p (unknown column, missing or
//  duplicate times within one entity are allowed; a time column of text is not).
int wf_frame_prepare (const pr_source_t *src, wf_frame_t *frame, char **error_p);

//  Joins other into base as of base's time (the last other row at or before
//  each base row's time); both need a time column. Column names must not
//  repeat (the time column excepted). Returns 0, or -1 with *error_p.
int wf_frame_join_asof (wf_frame_t *base, const wf_frame_t *other, char **error_p);

//  Checks the price columns a frame has (open, high, low, close > 0,
//  volume >= 0, all finite): market_bars mirrors another system's table, so
//  nothing in it is trusted. Returns 0, or -1 with *error_p naming the
//  symbol, time and column ("market_bars: symbol SPY ts ...: close is NaN").
int wf_frame_check_prices (const wf_frame_t *frame, const char *table, char **error_p);

//  Selftest.
void wf_frame_test (bool verbose);

#endif
