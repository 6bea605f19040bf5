/*  sc_cron.c - five-field cron expressions; next fire time in UTC or an IANA zone. */
#include "sc_cron.h"
#include "lb_mem.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

struct _sc_cron_t {
    char *expr;
    char *zone;             //  NULL for UTC
    uint64_t minute;        //  bit n set: value n allowed
    uint32_t hour;
    uint32_t dom;           //  bits 1..31
    uint16_t month;         //  bits 1..12
    uint8_t dow;            //  bits 0..6 (7 folded into 0)
    bool dom_star, dow_star;
};

typedef struct {
    const char *name;
    int min, max;
    const char *const *names;   //  names[0] is value min
} s_field_t;

static const char *const s_month_names [] = {
    "jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec", NULL };
static const char *const s_dow_names [] = {
    "sun", "mon", "tue", "wed", "thu", "fri", "sat", NULL };
static const s_field_t s_fields [5] = {
    { "minute", 0, 59, NULL },
    { "hour", 0, 23, NULL },
    { "day of month", 1, 31, NULL },
    { "month", 1, 12, s_month_names },
    { "day of week", 0, 7, s_dow_names },
};

//  Parses one value (number or name) at *p. Returns 0 and advances *p.
static int
s_value (const s_field_t *f, const char **p, int *out, char *why, size_t why_size)
{
    const char *s = *p;
    if (isdigit ((unsigned char) *s)) {
        long v = 0;
        while (isdigit ((unsigned char) *s) && v < 1000)
            v = v * 10 + (*s++ - '0');
        if (v < f->min || v > f->max) {
            snprintf (why, why_size, "%ld is out of range %d-%d", v, f->min, f->max);
            return -1;
        }
        *out = (int) v;
        *p = s;
        return 0;
    }
    if (f->names && isalpha ((unsigned char) *s)) {
        for (int i = 0; f->names [i]; i++)
            if (strncasecmp (s, f->names [i], 3) == 0 && !isalpha ((unsigned char) s [3])) {
                *out = f->min + i;
                *p = s + 3;
                return 0;
            }
    }
    int len = 0;
    while (s [len] && s [len] != ',' && s [len] != '-' && s [len] != '/' && len < 20)
        len++;
    snprintf (why, why_size, "'%.*s' is not a %s%s", len, s, f->names ? "number or name for " : "number for ", f->name);
    return -1;
}

//  Parses one field's text into a bit set. Returns 0, or -1 with why.
static int
s_field (const s_field_t *f, const char *text, uint64_t *bits, bool *star, char *why, size_t why_size)
{
    *bits = 0;
    *star = strcmp (text, "*") == 0;
    const char *p = text;
    while (true) {
        int lo, hi, step = 1;
        if (*p == '*') {
            lo = f->min;
            hi = f->max;
            p++;
        }
        else {
            if (s_value (f, &p, &lo, why, why_size))
                return -1;
            hi = lo;
            if (*p == '-') {
                p++;
                if (s_value (f, &p, &hi, why, why_size))
                    return -1;
                if (hi < lo) {
                    snprintf (why, why_size, "range %d-%d runs backwards", lo, hi);
                    return -1;
                }
            }
        }
        if (*p == '/') {
            p++;
            if (!isdigit ((unsigned char) *p)) {
                snprintf (why, why_size, "step after '/' must be a number");
                return -1;
            }
            long s = 0;
            while (isdigit ((unsigned char) *p) && s < 1000)
                s = s * 10 + (*p++ - '0');
            if (s < 1 || s > f->max) {
                snprintf (why, why_size, "step %ld is out of range 1-%d", s, f->max);
                return -1;
            }
            step = (int) s;
            if (hi == lo && p [-1] != '*')      //  "A/S": from A to the end
                hi = f->max;
        }
        for (int v = lo; v <= hi; v += step)
            *bits |= 1ull << v;
        if (*p == ',') {
            p++;
            if (!*p || *p == ',') {
                snprintf (why, why_size, "empty item in list");
                return -1;
            }
            continue;
        }
        if (*p) {
            snprintf (why, why_size, "unexpected '%c' in '%.40s'", *p, text);
            return -1;
        }
        return 0;
    }
}

static bool
s_leap (int year)
{
    return (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
}

static int
s_days_in_month (int year, int month)
{
    static const int days [12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    return month == 2 && s_leap (year) ? 29 : days [month - 1];
}

static bool
s_zone_ok (const char *zone)
{
    if (!*zone || zone [0] == '/' || strstr (zone, ".."))
        return false;
    char path [512];
    snprintf (path, sizeof path, "/usr/share/zoneinfo/%s", zone);
    FILE *file = fopen (path, "rb");
    if (!file)
        return false;
    char magic [4] = { 0 };
    size_t n = fread (magic, 1, 4, file);
    fclose (file);
    return n == 4 && memcmp (magic, "TZif", 4) == 0;
}

sc_cron_t *
sc_cron_new (const char *expr, const char *zone, char *err, size_t err_size)
{
    assert (expr && err);
    static const struct { const char *name, *expr; } shorthands [] = {
        { "@yearly", "0 0 1 1 *" }, { "@annually", "0 0 1 1 *" }, { "@monthly", "0 0 1 * *" },
        { "@weekly", "0 0 * * 0" }, { "@daily", "0 0 * * *" }, { "@midnight", "0 0 * * *" },
        { "@hourly", "0 * * * *" } };
    const char *text = expr;
    while (isspace ((unsigned char) *text))
        text++;
    if (*text == '@') {
        const char *found = NULL;
        for (size_t i = 0; i < sizeof shorthands / sizeof shorthands [0]; i++)
            if (strcasecmp (text, shorthands [i].name) == 0)
                found = shorthands [i].expr;
        if (!found) {
            snprintf (err, err_size, "'%s' is not a known shorthand (@yearly, @monthly, @weekly, @daily, @hourly)", text);
            return NULL;
        }
        text = found;
    }
    if (zone && (!*zone || strcmp (zone, "UTC") == 0 || strcmp (zone, "Etc/UTC") == 0))
        zone = NULL;
    if (zone && !s_zone_ok (zone)) {
        snprintf (err, err_size, "time zone '%s' is not in the zone database (/usr/share/zoneinfo)", zone);
        return NULL;
    }
    char fields [5][64];
    int count = 0;
    const char *p = text;
    while (*p) {
        while (isspace ((unsigned char) *p))
            p++;
        if (!*p)
            break;
        size_t len = strcspn (p, " \t\r\n");
        if (count == 5) {
            snprintf (err, err_size, "more than five fields (minute hour day-of-month month day-of-week)");
            return NULL;
        }
        if (len >= sizeof fields [0]) {
            snprintf (err, err_size, "field %d (%s) is too long", count + 1, s_fields [count].name);
            return NULL;
        }
        memcpy (fields [count], p, len);
        fields [count][len] = 0;
        count++;
        p += len;
    }
    if (count < 5) {
        snprintf (err, err_size, "%d field%s, need five (minute hour day-of-month month day-of-week)",
                  count, count == 1 ? "" : "s");
        return NULL;
    }
    sc_cron_t *self = lb_xcalloc (1, sizeof *self);
    uint64_t bits [5];
    bool star [5];
    for (int i = 0; i < 5; i++) {
        char why [160];
        if (s_field (&s_fields [i], fields [i], &bits [i], &star [i], why, sizeof why)) {
            snprintf (err, err_size, "field %d (%s): %s", i + 1, s_fields [i].name, why);
            free (self);
            return NULL;
        }
    }
    self->minute = bits [0];
    self->hour = (uint32_t) bits [1];
    self->dom = (uint32_t) bits [2];
    self->month = (uint16_t) bits [3];
    self->dow = (uint8_t) ((bits [4] | (bits [4] >> 7)) & 0x7f);
    self->dom_star = star [2];
    self->dow_star = star [4];
    //  A day of month that no allowed month has never fires (unless day of week can).
    if (self->dow_star) {
        int smallest = 0;
        for (int d = 1; d <= 31 && !smallest; d++)
            if (self->dom & (1u << d))
                smallest = d;
        bool possible = false;
        for (int m = 1; m <= 12; m++)
            if ((self->month & (1u << m)) && smallest <= (m == 2 ? 29 : s_days_in_month (2001, m)))
                possible = true;
        if (!possible) {
            snprintf (err, err_size, "field 3 (day of month): day %d never occurs in the months of field 4", smallest);
            free (self);
            return NULL;
        }
    }
    self->expr = lb_xstrdup (expr);
    self->zone = zone ? lb_xstrdup (zone) : NULL;
    return self;
}

void
sc_cron_destroy (sc_cron_t **self_p)
{
    assert (self_p);
    sc_cron_t *self = *self_p;
    if (!self)
        return;
    free (self->expr);
    free (self->zone);
    free (self);
    *self_p = NULL;
}

const char *
sc_cron_expr (sc_cron_t *self)
{
    return self->expr;
}

const char *
sc_cron_zone (sc_cron_t *self)
{
    return self->zone ? self->zone : "UTC";
}

//  Local "naive" seconds (the wall clock read as if it were UTC) of instant t.
static int64_t
s_local (sc_cron_t *self, int64_t t)
{
    if (!self->zone)
        return t;
    time_t tt = (time_t) t;
    struct tm tm;
    localtime_r (&tt, &tm);
    return t + tm.tm_gmtoff;
}

//  The first instant whose local time is naive c (earliest of two in a
//  repeated hour), or, for a c skipped by a jump, the instant of the jump.
static int64_t
s_resolve (sc_cron_t *self, int64_t c)
{
    if (!self->zone)
        return c;
    int64_t off_a = s_local (self, c - 86400) - (c - 86400);
    int64_t off_b = s_local (self, c + 86400) - (c + 86400);
    int64_t best = -1;
    int64_t offs [2] = { off_a, off_b };
    for (int i = 0; i < 2; i++) {
        int64_t t = c - offs [i];
        if (s_local (self, t) == c && (best < 0 || t < best))
            best = t;
    }
    if (best >= 0)
        return best;
    //  In a gap: find the first t whose local time is past c.
    int64_t lo = c - (off_a > off_b ? off_a : off_b);
    int64_t hi = c - (off_a > off_b ? off_b : off_a);
    while (lo < hi) {
        int64_t mid = lo + (hi - lo) / 2;
        if (s_local (self, mid) > c)
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static int64_t
s_next (sc_cron_t *self, int64_t after)
{
    int64_t start = after - ((after % 60) + 60) % 60 + 60;
    int64_t c = s_local (self, start);
    c += ((60 - c % 60) % 60 + 60) % 60;            //  up to a whole minute
    int64_t limit = c + (int64_t) 30 * 366 * 86400;
    while (c < limit) {
        time_t tt = (time_t) c;
        struct tm tm;
        gmtime_r (&tt, &tm);
        int64_t day0 = c - (tm.tm_hour * 3600 + tm.tm_min * 60 + tm.tm_sec);
        if (!(self->month & (1u << (tm.tm_mon + 1)))) {
            c = day0 + (int64_t) (s_days_in_month (tm.tm_year + 1900, tm.tm_mon + 1) - tm.tm_mday + 1) * 86400;
            continue;
        }
        bool dom_ok = (self->dom >> tm.tm_mday) & 1;
        bool dow_ok = (self->dow >> tm.tm_wday) & 1;
        bool day_ok = self->dom_star || self->dow_star ? dom_ok && dow_ok : dom_ok || dow_ok;
        if (!day_ok) {
            c = day0 + 86400;
            continue;
        }
        if (!((self->hour >> tm.tm_hour) & 1)) {
            c = c - tm.tm_min * 60 - tm.tm_sec + 3600;
            continue;
        }
        if (!((self->minute >> tm.tm_min) & 1)) {
            c += 60;
            continue;
        }
        int64_t t = s_resolve (self, c);
        if (t > after)
            return t;
        c += 60;
    }
    return -1;
}

int64_t
sc_cron_next (sc_cron_t *self, int64_t after)
{
    assert (self);
    if (!self->zone)
        return s_next (self, after);
    //  Switch TZ for this call (documented as not thread-safe).
    const char *old = getenv ("TZ");
    char *saved = old ? lb_xstrdup (old) : NULL;
    setenv ("TZ", self->zone, 1);
    tzset ();
    int64_t t = s_next (self, after);
    if (saved)
        setenv ("TZ", saved, 1);
    else
        unsetenv ("TZ");
    tzset ();
    free (saved);
    return t;
}

//  --------------------------------------------------------------------------
//  Selftest

static int64_t
s_parse_utc (const char *text)
{
    struct tm tm = { 0 };
    int n = sscanf (text, "%d-%d-%dT%d:%d", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour, &tm.tm_min);
    assert (n == 5);
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t) timegm (&tm);
}

static void
s_format_utc (int64_t t, char *buf, size_t size)
{
    if (t < 0) {
        snprintf (buf, size, "never");
        return;
    }
    time_t tt = (time_t) t;
    struct tm tm;
    gmtime_r (&tt, &tm);
    strftime (buf, size, "%Y-%m-%dT%H:%M", &tm);
}

void
sc_cron_test (bool verbose)
{
    //  expression, zone, after (UTC), expected next fire times (UTC)
    static const struct {
        const char *expr, *zone, *after, *expect [4];
    } cases [] = {
        { "0 0 * * 0", NULL, "2026-11-22T01:30", { "2026-11-29T00:00", "2026-12-06T00:00" } },
        { "0 0 * * sun", "UTC", "2026-11-28T23:59", { "2026-11-29T00:00" } },
        { "*/15 * * * *", NULL, "2026-11-22T01:07", { "2026-11-22T01:15", "2026-11-22T01:30", "2026-11-22T01:45", "2026-11-22T02:00" } },
        { "5,10-12 3 * * *", NULL, "2026-01-01T00:00", { "2026-01-01T03:05", "2026-01-01T03:10", "2026-01-01T03:11", "2026-01-01T03:12" } },
        { "0 12 31 * *", NULL, "2026-01-31T12:00", { "2026-03-31T12:00", "2026-05-31T12:00", "2026-07-31T12:00", "2026-08-31T12:00" } },
        { "0 0 29 2 *", NULL, "2026-01-01T00:00", { "2028-02-29T00:00", "2032-02-29T00:00" } },
        { "0 0 29 2 *", NULL, "2096-03-01T00:00", { "2104-02-29T00:00" } },     //  2100 is no leap year
        { "0 0 L 2 *", NULL, NULL, { NULL } },                                   //  bad (see errors)
        { "30 4 1,15 * 5", NULL, "2026-11-01T00:00", { "2026-11-01T04:30", "2026-11-06T04:30", "2026-11-13T04:30", "2026-11-15T04:30" } },
        { "0 9-17/4 * * mon-fri", NULL, "2026-11-20T17:00", { "2026-11-23T09:00", "2026-11-23T13:00", "2026-11-23T17:00", "2026-11-24T09:00" } },
        { "0 0 * * 7", NULL, "2026-11-22T00:00", { "2026-11-29T00:00" } },
        { "59 23 28-31 2 *", NULL, "2028-02-28T23:59", { "2028-02-29T23:59", "2029-02-28T23:59" } },
        { "@monthly", NULL, "2026-12-15T00:00", { "2027-01-01T00:00", "2027-02-01T00:00" } },
        { "0 0 1 jan,jul *", NULL, "2026-06-30T00:00", { "2026-07-01T00:00", "2027-01-01T00:00" } },
        { "7/20 * * * *", NULL, "2026-11-22T00:00", { "2026-11-22T00:07", "2026-11-22T00:27", "2026-11-22T00:47", "2026-11-22T01:07" } },
        //  New York, spring forward 2027-03-14 02:00 EST -> 03:00 EDT (07:00 UTC)
        { "30 2 * * *", "America/New_York", "2027-03-13T00:00", { "2027-03-13T07:30", "2027-03-14T07:00", "2027-03-15T06:30" } },
        { "*/30 * * * *", "America/New_York", "2027-03-14T06:00", { "2027-03-14T06:30", "2027-03-14T07:00", "2027-03-14T07:30" } },
        //  New York, fall back 2026-11-01 02:00 EDT -> 01:00 EST: 01:30 happens twice, runs once
        { "30 1 * * *", "America/New_York", "2026-10-31T12:00", { "2026-11-01T05:30", "2026-11-02T06:30" } },
        { "0 * * * *", "America/New_York", "2026-11-01T04:30", { "2026-11-01T05:00", "2026-11-01T07:00", "2026-11-01T08:00" } },
        //  Berlin: midnight local is 23:00 UTC in winter, 22:00 in summer
        { "0 0 * * 0", "Europe/Berlin", "2027-03-20T00:00", { "2027-03-20T23:00", "2027-03-27T23:00", "2027-04-03T22:00" } },
        //  Sydney: DST starts 2026-10-04 02:00 -> 03:00 (southern hemisphere)
        { "15 2 4 10 *", "Australia/Sydney", "2026-10-01T00:00", { "2026-10-03T16:00", "2027-10-03T15:15" } },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases [0]; i++) {
        char err [256] = "";
        sc_cron_t *cron = sc_cron_new (cases [i].expr, cases [i].zone, err, sizeof err);
        if (!cases [i].after) {
            assert (!cron);
            continue;
        }
        if (!cron) {
            fprintf (stderr, "cron '%s': %s\n", cases [i].expr, err);
            assert (cron);
        }
        int64_t t = s_parse_utc (cases [i].after);
        for (int k = 0; k < 4 && cases [i].expect [k]; k++) {
            t = sc_cron_next (cron, t);
            char got [32];
            s_format_utc (t, got, sizeof got);
            if (verbose || strcmp (got, cases [i].expect [k]))
                printf ("  %-22s %-18s -> %s (want %s)\n", cases [i].expr,
                        cases [i].zone ? cases [i].zone : "UTC", got, cases [i].expect [k]);
            assert (strcmp (got, cases [i].expect [k]) == 0);
        }
        sc_cron_destroy (&cron);
        assert (cron == NULL);
    }
    //  Bad expressions: each names its field and why.
    static const struct { const char *expr, *zone, *want; } bad [] = {
        { "60 * * * *", NULL, "field 1 (minute): 60 is out of range 0-59" },
        { "0 24 * * *", NULL, "field 2 (hour): 24 is out of range 0-23" },
        { "0 0 0 * *", NULL, "field 3 (day of month): 0 is out of range 1-31" },
        { "0 0 * 13 *", NULL, "field 4 (month): 13 is out of range 1-12" },
        { "0 0 * * 8", NULL, "field 5 (day of week): 8 is out of range 0-7" },
        { "0 0 * * fun", NULL, "field 5 (day of week): 'fun' is not a number or name for day of week" },
        { "0 0 * * 5-1", NULL, "field 5 (day of week): range 5-1 runs backwards" },
        { "*/0 * * * *", NULL, "field 1 (minute): step 0 is out of range 1-59" },
        { "* * * *", NULL, "4 fields, need five" },
        { "* * * * * *", NULL, "more than five fields" },
        { "0 0 30 2 *", NULL, "field 3 (day of month): day 30 never occurs" },
        { "0 0 31 apr,jun *", NULL, "day 31 never occurs" },
        { "1,,2 * * * *", NULL, "field 1 (minute): empty item in list" },
        { "@sometimes", NULL, "not a known shorthand" },
        { "0 0 * * *", "Mars/Olympus", "time zone 'Mars/Olympus' is not in the zone database" },
        { "0 0 * * *", "../etc/passwd", "is not in the zone database" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        char err [256] = "";
        sc_cron_t *cron = sc_cron_new (bad [i].expr, bad [i].zone, err, sizeof err);
        if (verbose || cron || !strstr (err, bad [i].want))
            printf ("  bad '%s': %s\n", bad [i].expr, err);
        assert (!cron);
        assert (strstr (err, bad [i].want));
    }
    //  Either-day semantics and accessors.
    char err [256];
    sc_cron_t *cron = sc_cron_new ("0 0 13 * fri", "Europe/Berlin", err, sizeof err);
    assert (cron);
    assert (strcmp (sc_cron_expr (cron), "0 0 13 * fri") == 0);
    assert (strcmp (sc_cron_zone (cron), "Europe/Berlin") == 0);
    sc_cron_destroy (&cron);
    sc_cron_destroy (&cron);
    assert (getenv ("TZ") == NULL || strcmp (getenv ("TZ"), "Europe/Berlin") != 0);
}
