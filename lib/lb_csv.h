/*  lb_csv.h - CSV (RFC 4180) into typed columns.

    Accepts: quoted fields with doubled quotes and embedded delimiters or line
    breaks, LF or CRLF line ends, a UTF-8 byte-order mark, and a delimiter
    given or detected among , ; TAB | (msft.csv uses ';'). Blank lines are
    skipped. Every record must have as many fields as the first one.

    Types are inferred per column from all its non-missing values:
      number  every value parses as a decimal number (1, -2.5, 1e-3, "3.0")
      time    every value parses as a date or date-time: 2000-09-27, 2012/01/01,
              2026-11-20 14:30[:00[.123]][Z|+hh:mm], 2026-11-20T14:30:00Z,
              Jan 1 2000 (stored as Unix seconds, UTC unless an offset is given)
      text    anything else (categories such as "rain")
      empty   no value at all
    Missing values ("", NA, N/A, NaN, nan, null, NULL, None, #N/A) stay
    missing: NaN in number and time columns, NULL in text columns; never 0.

    Bad input gets one error naming the line: invalid UTF-8, an unbalanced
    quote, a stray character after a closing quote, a record with the wrong
    number of fields (ragged), a record longer than max_record bytes, an
    empty file, a header with no data rows.

    A large input is parsed on several threads, in chunks cut at line feeds;
    the result, errors and their lines included, is the same as one pass
    gives (lb_csv.c says how a cut inside a quoted field is caught).
*/
#ifndef LB_CSV_H_INCLUDED
#define LB_CSV_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    LB_CSV_EMPTY = 0,
    LB_CSV_NUMBER = 1,
    LB_CSV_TIME = 2,
    LB_CSV_TEXT = 3
} lb_csv_type_t;

typedef struct {
    char delimiter;             //  0: detect
    bool header;                //  first record holds the names (default true)
    size_t max_record;          //  bytes; default 1 MiB
    int threads;                //  parse on this many threads; 0 (default): every online core
    size_t parallel_min;        //  bytes; smaller inputs parse on one thread (default 4 MiB)
} lb_csv_opts_t;

typedef struct _lb_csv_t lb_csv_t;

//  Fills the defaults.
void lb_csv_opts_default (lb_csv_opts_t *opts);

//  Parses size bytes of data. Returns the table (caller destroys), or NULL
//  with *error_p set to "line N: what" (caller frees).
lb_csv_t *lb_csv_parse (const char *data, size_t size, const lb_csv_opts_t *opts, char **error_p);

//  Reads and parses the file at path (error messages start with the path).
lb_csv_t *lb_csv_load (const char *path, const lb_csv_opts_t *opts, char **error_p);

//  Destroys the table. Accepts NULL; sets *self_p to NULL.
void lb_csv_destroy (lb_csv_t **self_p);

//  Shape, delimiter used, names ("column_1".. without a header), types.
size_t lb_csv_rows (lb_csv_t *self);
size_t lb_csv_cols (lb_csv_t *self);
char lb_csv_delimiter (lb_csv_t *self);
const char *lb_csv_name (lb_csv_t *self, size_t col);
lb_csv_type_t lb_csv_type (lb_csv_t *self, size_t col);
//  Index of the column named name, or -1.
int lb_csv_column (lb_csv_t *self, const char *name);
//  Values of a number, time or empty column (NaN = missing); NULL for text.
const double *lb_csv_numbers (lb_csv_t *self, size_t col);
//  Value of a text column at row (NULL = missing); NULL for other types.
const char *lb_csv_text (lb_csv_t *self, size_t col, size_t row);

//  Parses one value as a number or a time (Unix seconds). Return true on
//  success. Exposed for JSON sources and tests.
bool lb_csv_parse_number (const char *s, size_t len, double *out);
bool lb_csv_parse_time (const char *s, size_t len, double *out);

//  Days since 1970-01-01 of the civil date y-m-d (proleptic Gregorian).
int64_t lb_csv_days_from_civil (int64_t y, int m, int d);

//  Selftest.
void lb_csv_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
