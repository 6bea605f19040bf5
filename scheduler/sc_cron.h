/*  sc_cron.h - five-field cron expressions and their next fire time.

    Fields: minute (0-59), hour (0-23), day of month (1-31), month (1-12 or
    jan-dec), day of week (0-7 or sun-sat; 0 and 7 are Sunday). Each field is
    a comma list of `*`, `N`, `A-B`, `*\/S`, `A-B/S` or `A/S` (A to the field's
    end, step S); names are case-insensitive and work in ranges (mon-fri).
    Shorthands: @yearly @annually @monthly @weekly @daily @midnight @hourly.
    As in Vixie cron, when both day of month and day of week are restricted
    (neither is `*`), a day matches if either does.

    Times are evaluated in the expression's zone: "UTC" (the default) or an
    IANA name ("Europe/Berlin") from the system zone database. DST rules:
    - a local time skipped by a spring-forward change (02:30 on the night the
      clock jumps from 02:00 to 03:00) fires once, at the instant of the jump
      (03:00 local); several skipped slots collapse into that one firing;
    - a local time that happens twice (fall back) fires once, at its first
      occurrence.
    Zones are applied by switching TZ for the duration of a call, so calls are
    not thread-safe: the daemon uses cron from one thread only.
*/
#ifndef SC_CRON_H_INCLUDED
#define SC_CRON_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _sc_cron_t sc_cron_t;

//  Parses expr in zone (NULL or "" means UTC). Returns the schedule, or NULL
//  with a one-line reason in err (e.g. "field 2 (hour): 24 is out of range
//  0-23"). Also refuses a schedule that can never fire (30 2 *: February 30).
sc_cron_t *sc_cron_new (const char *expr, const char *zone, char *err, size_t err_size);

//  Destroys the schedule. Accepts NULL; sets *self_p to NULL.
void sc_cron_destroy (sc_cron_t **self_p);

//  Returns the first fire time strictly after `after` (seconds since the
//  epoch, UTC), or -1 if there is none within 30 years.
int64_t sc_cron_next (sc_cron_t *self, int64_t after);

//  The expression and zone as given (borrowed).
const char *sc_cron_expr (sc_cron_t *self);
const char *sc_cron_zone (sc_cron_t *self);

//  Selftest: parsing, errors, and a table of next fire times (month ends,
//  leap days, DST in both directions).
void sc_cron_test (bool verbose);

#endif
