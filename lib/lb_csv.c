/*  lb_csv.c - RFC 4180 CSV into typed columns (see lb_csv.h). One pass over
    the bytes; numbers parsed by a fast exact path with strtod as the
    fallback; a column that turns out to be text re-reads its earlier cells
    from the recorded record offsets. */
#include "lb_csv.h"
#include "lb_log.h"
#include "lb_mem.h"
#include "lb_selftest.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

typedef struct {
    char *name;
    bool can_number, can_time, is_text, any;
    double *num;                //  number values (while can_number)
    double *tim;                //  time values (while can_time)
    char **text;                //  text values (once is_text), pointers into uniq
    char **uniq;                //  each distinct text value once (owned)
    size_t nuniq;
    uint32_t *slots;            //  open-addressing table of uniq indexes + 1
    size_t nslots;
    char *last;                 //  the last value interned (sorted columns repeat it)
} s_col_t;

struct _lb_csv_t {
    size_t rows, cols, max_rows;
    char delimiter;
    s_col_t *col;
    lb_csv_type_t *types;
};

void
lb_csv_opts_default (lb_csv_opts_t *opts)
{
    assert (opts);
    opts->delimiter = 0;
    opts->header = true;
    opts->max_record = 1 << 20;
}

void
lb_csv_destroy (lb_csv_t **self_p)
{
    assert (self_p);
    lb_csv_t *self = *self_p;
    if (!self)
        return;
    for (size_t c = 0; c < self->cols; c++) {
        s_col_t *col = &self->col [c];
        free (col->name);
        free (col->num);
        free (col->tim);
        for (size_t u = 0; u < col->nuniq; u++)
            free (col->uniq [u]);
        free (col->uniq);
        free (col->slots);
        free (col->text);
    }
    free (self->col);
    free (self->types);
    free (self);
    *self_p = NULL;
}

// ---------------------------------------------------------------- values

static const double s_pow10 [23] = {
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15,
    1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22
};

bool
lb_csv_parse_number (const char *s, size_t len, double *out)
{
    const char *p = s, *end = s + len;
    while (p < end && (*p == ' ' || *p == '\t'))
        p++;
    while (end > p && (end [-1] == ' ' || end [-1] == '\t'))
        end--;
    const char *start = p;
    bool neg = false;
    if (p < end && (*p == '-' || *p == '+'))
        neg = *p++ == '-';
    uint64_t mant = 0;
    int digits = 0, exp10 = 0, total = 0;
    while (p < end && *p >= '0' && *p <= '9') {
        if (digits < 19) {
            mant = mant * 10 + (uint64_t) (*p - '0');
            if (mant)
                digits++;
        }
        else
            exp10++;
        total++;
        p++;
    }
    if (p < end && *p == '.') {
        p++;
        while (p < end && *p >= '0' && *p <= '9') {
            if (digits < 19) {
                mant = mant * 10 + (uint64_t) (*p - '0');
                if (mant)
                    digits++;
                exp10--;
            }
            total++;
            p++;
        }
    }
    if (total == 0)
        return false;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        bool eneg = false;
        if (p < end && (*p == '-' || *p == '+'))
            eneg = *p++ == '-';
        if (p == end || *p < '0' || *p > '9')
            return false;
        int e = 0;
        while (p < end && *p >= '0' && *p <= '9') {
            if (e < 100000)
                e = e * 10 + (*p - '0');
            p++;
        }
        exp10 += eneg ? -e : e;
    }
    if (p != end)
        return false;
    if (mant < (UINT64_C (1) << 53) && exp10 >= -22 && exp10 <= 22) {
        double v = (double) mant;
        v = exp10 >= 0 ? v * s_pow10 [exp10] : v / s_pow10 [-exp10];
        *out = neg ? -v : v;
        return true;
    }
    //  17-19 digit mantissas (what %.17g writes): one long double operation
    //  (64-bit significand: the mantissa and 10^|e| <= 10^22 are exact, so
    //  the result is within half a long double ulp of the true value), then
    //  rounded to double - correct unless the true value may sit on the other
    //  side of a halfway point between two doubles; then strtod decides.
    if (exp10 >= -22 && exp10 <= 22 && mant) {
        long double r = exp10 >= 0 ? (long double) mant * (long double) s_pow10 [exp10]
                                   : (long double) mant / (long double) s_pow10 [-exp10];
        double d = (double) r;
        int e2;
        frexp (d, &e2);
        long double ulp = ldexpl (1.0L, e2 - 53);            //  of d
        long double off = fabsl (r - (long double) d);
        if (isfinite (d) && fabsl (off - ulp / 2) > ulp / 1024) {
            *out = neg ? -d : d;
            return true;
        }
    }
    //  Rare: long mantissas, large exponents. strtod rounds correctly.
    size_t n = (size_t) (end - start);
    char small [64], *buf = n < sizeof small ? small : lb_xmalloc (n + 1);
    memcpy (buf, start, n);
    buf [n] = 0;
    char *stop;
    *out = strtod (buf, &stop);
    bool ok = *stop == 0 && isfinite (*out);
    if (buf != small)
        free (buf);
    return ok;
}

int64_t
lb_csv_days_from_civil (int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int
s_days_in_month (int y, int m)
{
    static const int days [12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };
    bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return m == 2 && leap ? 29 : days [m - 1];
}

//  Reads 1..max digits. Returns the count read (0: none).
static int
s_digits (const char **p, const char *end, int max, int *value)
{
    int n = 0, v = 0;
    while (*p < end && n < max && **p >= '0' && **p <= '9') {
        v = v * 10 + (**p - '0');
        (*p)++;
        n++;
    }
    *value = v;
    return n;
}

bool
lb_csv_parse_time (const char *s, size_t len, double *out)
{
    const char *p = s, *end = s + len;
    while (p < end && *p == ' ')
        p++;
    while (end > p && end [-1] == ' ')
        end--;
    int y, m, d;
    static const char *months [12] = { "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug",
                                       "Sep", "Oct", "Nov", "Dec" };
    if (end - p >= 3 && p [0] >= 'A' && p [0] <= 'Z') {
        //  "Jan 1 2000"
        m = 0;
        for (int i = 0; i < 12 && !m; i++)
            if (strncmp (p, months [i], 3) == 0)
                m = i + 1;
        if (!m)
            return false;
        p += 3;
        if (p >= end || *p != ' ')
            return false;
        p++;
        if (!s_digits (&p, end, 2, &d) || p >= end || *p != ' ')
            return false;
        p++;
        if (s_digits (&p, end, 4, &y) != 4 || p != end)
            return false;
        if (d < 1 || d > s_days_in_month (y, m))
            return false;
        *out = (double) (lb_csv_days_from_civil (y, m, d) * 86400);
        return true;
    }
    if (s_digits (&p, end, 4, &y) != 4 || p >= end || (*p != '-' && *p != '/'))
        return false;
    char sep = *p++;
    if (!s_digits (&p, end, 2, &m) || p >= end || *p != sep)
        return false;
    p++;
    if (!s_digits (&p, end, 2, &d))
        return false;
    if (m < 1 || m > 12 || d < 1 || d > s_days_in_month (y, m))
        return false;
    double secs = (double) (lb_csv_days_from_civil (y, m, d) * 86400);
    if (p < end && (*p == 'T' || *p == ' ')) {
        p++;
        int hh, mm, ss = 0;
        if (s_digits (&p, end, 2, &hh) != 2 || p >= end || *p != ':')
            return false;
        p++;
        if (s_digits (&p, end, 2, &mm) != 2)
            return false;
        double frac = 0;
        if (p < end && *p == ':') {
            p++;
            if (s_digits (&p, end, 2, &ss) != 2)
                return false;
            if (p < end && *p == '.') {
                p++;
                double scale = 0.1;
                if (p >= end || *p < '0' || *p > '9')
                    return false;
                while (p < end && *p >= '0' && *p <= '9') {
                    frac += (*p++ - '0') * scale;
                    scale /= 10;
                }
            }
        }
        if (hh > 23 || mm > 59 || ss > 60)
            return false;
        secs += hh * 3600 + mm * 60 + ss + frac;
        if (p < end && *p == 'Z')
            p++;
        else
        if (p < end && (*p == '+' || *p == '-')) {
            int sign = *p++ == '-' ? -1 : 1, oh, om = 0;
            if (s_digits (&p, end, 2, &oh) != 2)
                return false;
            if (p < end && *p == ':')
                p++;
            if (p < end && s_digits (&p, end, 2, &om) != 2)
                return false;
            if (oh > 23 || om > 59)
                return false;
            secs -= sign * (oh * 3600 + om * 60);
        }
    }
    if (p != end)
        return false;
    *out = secs;
    return true;
}

static bool
s_missing (const char *s, size_t len)
{
    static const char *tokens [] = { "NA", "N/A", "NaN", "nan", "null", "NULL", "None", "#N/A", NULL };
    if (len == 0)
        return true;
    if (len > 4 || (s [0] != 'N' && s [0] != 'n' && s [0] != '#'))
        return false;
    for (int i = 0; tokens [i]; i++)
        if (strlen (tokens [i]) == len && memcmp (tokens [i], s, len) == 0)
            return true;
    return false;
}

// ---------------------------------------------------------------- scanning

typedef struct {
    const char *data, *end;
    const char *p;
    size_t line;
    char delim;
    size_t max_record;
    char *error;                //  first error, "line N: ..."
} s_scan_t;

static void
s_fail (s_scan_t *s, size_t line, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));

static void
s_fail (s_scan_t *s, size_t line, const char *fmt, ...)
{
    if (s->error)
        return;
    va_list args;
    va_start (args, fmt);
    char *what = lb_xvasprintf (fmt, args);
    va_end (args);
    s->error = lb_xasprintf ("line %zu: %s", line, what);
    free (what);
}

//  Reads the next field at s->p. Sets *field and *len (raw bytes; quoted:
//  without the outer quotes, *quoted true, doubled quotes still doubled).
//  Returns 1 if a field ended with a delimiter (more follow), 0 if it ended
//  the record, -1 on error.
static int
s_field (s_scan_t *s, const char **field, size_t *len, bool *quoted)
{
    const char *p = s->p, *end = s->end;
    *quoted = false;
    if (p < end && *p == '"') {
        size_t open_line = s->line;
        *quoted = true;
        p++;
        const char *start = p;
        for (;;) {
            const char *q = memchr (p, '"', (size_t) (end - p));
            if (!q) {
                s_fail (s, open_line, "unbalanced quote: the field opened here never closes");
                return -1;
            }
            for (const char *n = memchr (p, '\n', (size_t) (q - p)); n;
                 n = memchr (n + 1, '\n', (size_t) (q - n - 1)))
                s->line++;
            if (q + 1 < end && q [1] == '"') {
                p = q + 2;
                continue;
            }
            *field = start;
            *len = (size_t) (q - start);
            p = q + 1;
            break;
        }
        if (p < end && *p != s->delim && *p != '\n' && *p != '\r') {
            s_fail (s, s->line, "unexpected character '%c' after a closing quote", *p);
            return -1;
        }
    }
    else {
        const char *start = p;
        while (p < end && *p != s->delim && *p != '\n' && *p != '\r') {
            if (*p == '"') {
                s_fail (s, s->line, "quote inside an unquoted field");
                return -1;
            }
            p++;
        }
        *field = start;
        *len = (size_t) (p - start);
    }
    if (p < end && *p == s->delim) {
        s->p = p + 1;
        return 1;
    }
    if (p < end && *p == '\r') {
        if (p + 1 < end && p [1] == '\n')
            p++;
        else {
            s_fail (s, s->line, "a carriage return not followed by a line feed");
            return -1;
        }
    }
    if (p < end && *p == '\n') {
        p++;
        s->line++;
    }
    s->p = p;
    return 0;
}

//  The unescaped text of a field. Caller frees.
static char *
s_unescape (const char *field, size_t len, bool quoted)
{
    char *text = lb_xmalloc (len + 1);
    size_t n = 0;
    for (size_t i = 0; i < len; i++) {
        text [n++] = field [i];
        if (quoted && field [i] == '"' && i + 1 < len && field [i + 1] == '"')
            i++;
    }
    text [n] = 0;
    return text;
}

//  The column's one copy of a field's text (categories repeat: one
//  allocation per distinct value, not per cell).
static char *
s_intern (s_col_t *col, const char *field, size_t len, bool quoted)
{
    if (!quoted && col->last && strncmp (col->last, field, len) == 0 && col->last [len] == 0)
        return col->last;
    char small [256], *text = small;
    size_t n = 0;
    if (len >= sizeof small)
        text = lb_xmalloc (len + 1);
    for (size_t i = 0; i < len; i++) {
        text [n++] = field [i];
        if (quoted && field [i] == '"' && i + 1 < len && field [i + 1] == '"')
            i++;
    }
    text [n] = 0;
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char) text [i]) * 1099511628211ull;
    if (2 * (col->nuniq + 1) > col->nslots) {
        size_t slots = col->nslots ? 2 * col->nslots : 64;
        uint32_t *t = lb_xcalloc (slots, sizeof (uint32_t));
        for (size_t u = 0; u < col->nuniq; u++) {
            uint64_t g = 1469598103934665603ull;
            for (const char *c = col->uniq [u]; *c; c++)
                g = (g ^ (unsigned char) *c) * 1099511628211ull;
            size_t k = (size_t) g & (slots - 1);
            while (t [k])
                k = (k + 1) & (slots - 1);
            t [k] = (uint32_t) u + 1;
        }
        free (col->slots);
        col->slots = t;
        col->nslots = slots;
        col->uniq = lb_xrealloc (col->uniq, slots / 2 * sizeof (char *));
    }
    size_t k = (size_t) h & (col->nslots - 1);
    char *found = NULL;
    while (col->slots [k]) {
        char *u = col->uniq [col->slots [k] - 1];
        if (strcmp (u, text) == 0) {
            found = u;
            break;
        }
        k = (k + 1) & (col->nslots - 1);
    }
    if (!found) {
        found = lb_xstrndup (text, n);
        col->uniq [col->nuniq++] = found;
        col->slots [k] = (uint32_t) col->nuniq;
    }
    if (text != small)
        free (text);
    col->last = found;
    return found;
}

//  True if the rest of the line from p is empty (a blank line).
static bool
s_blank_line (const char *p, const char *end)
{
    return p < end && (*p == '\n' || (*p == '\r' && p + 1 < end && p [1] == '\n'));
}

static size_t
s_line_of (const char *data, const char *at)
{
    size_t line = 1;
    for (const char *p = data; p < at; p++)
        line += *p == '\n';
    return line;
}

//  Returns NULL if data is valid UTF-8, else the first bad byte.
static const char *
s_bad_utf8 (const char *data, size_t size)
{
    const unsigned char *p = (const unsigned char *) data, *end = p + size;
    while (p < end) {
        if (end - p >= 8) {
            uint64_t chunk;
            memcpy (&chunk, p, 8);
            if ((chunk & 0x8080808080808080ull) == 0) {
                p += 8;
                continue;
            }
        }
        unsigned char c = *p;
        if (c < 0x80) {
            p++;
            continue;
        }
        int n;
        uint32_t cp;
        if ((c & 0xe0) == 0xc0) { n = 1; cp = c & 0x1f; }
        else if ((c & 0xf0) == 0xe0) { n = 2; cp = c & 0x0f; }
        else if ((c & 0xf8) == 0xf0) { n = 3; cp = c & 0x07; }
        else return (const char *) p;
        if (end - p <= n)
            return (const char *) p;
        for (int k = 1; k <= n; k++) {
            if ((p [k] & 0xc0) != 0x80)
                return (const char *) p;
            cp = (cp << 6) | (p [k] & 0x3f);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)
        ||  cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return (const char *) p;
        p += n + 1;
    }
    return NULL;
}

//  Picks the delimiter among , ; TAB | that splits the first lines (outside
//  quotes) into the most fields, the same number on each line.
static char
s_detect (const char *data, const char *end)
{
    static const char cands [4] = { ',', ';', '\t', '|' };
    char best = ',';
    int best_count = 0;
    for (int c = 0; c < 4; c++) {
        int count = -1;
        bool consistent = true;
        const char *p = data;
        for (int line = 0; line < 10 && p < end && consistent; line++) {
            int n = 0;
            bool in_quote = false;
            while (p < end && (in_quote || *p != '\n')) {
                if (*p == '"')
                    in_quote = !in_quote;
                else
                if (!in_quote && *p == cands [c])
                    n++;
                p++;
            }
            if (p < end)
                p++;
            if (count < 0)
                count = n;
            else
            if (n != count && n > 0)
                consistent = false;
        }
        if (consistent && count > best_count) {
            best_count = count;
            best = cands [c];
        }
    }
    return best;
}

// ---------------------------------------------------------------- parsing

static void
s_grow (lb_csv_t *self)
{
    size_t n = self->max_rows ? 2 * self->max_rows : 1024;
    for (size_t c = 0; c < self->cols; c++) {
        s_col_t *col = &self->col [c];
        if (col->can_number)
            col->num = lb_xrealloc (col->num, n * sizeof (double));
        if (col->can_time)
            col->tim = lb_xrealloc (col->tim, n * sizeof (double));
        if (col->is_text)
            col->text = lb_xrealloc (col->text, n * sizeof (char *));
    }
    self->max_rows = n;
}

//  Column c becomes text at row: re-read its cells of rows 0..row-1.
static void
s_to_text (lb_csv_t *self, s_scan_t *scan, size_t c, size_t row, const size_t *offsets)
{
    s_col_t *col = &self->col [c];
    col->is_text = true;
    col->text = lb_xcalloc (self->max_rows, sizeof (char *));
    s_scan_t again = *scan;
    again.error = NULL;
    for (size_t r = 0; r < row; r++) {
        again.p = scan->data + offsets [r];
        const char *field = NULL;
        size_t len = 0;
        bool quoted = false;
        for (size_t k = 0; k <= c; k++) {
            int more = s_field (&again, &field, &len, &quoted);
            assert (more >= 0);
        }
        col->text [r] = s_missing (field, len) && !quoted ? NULL : s_intern (col, field, len, quoted);
    }
    free (again.error);
    free (col->num);
    free (col->tim);
    col->num = col->tim = NULL;
    col->can_number = col->can_time = false;
}

lb_csv_t *
lb_csv_parse (const char *data, size_t size, const lb_csv_opts_t *opts_in, char **error_p)
{
    assert (data || size == 0);
    assert (error_p);
    *error_p = NULL;
    lb_csv_opts_t opts;
    if (opts_in)
        opts = *opts_in;
    else
        lb_csv_opts_default (&opts);
    if (size >= 3 && memcmp (data, "\xef\xbb\xbf", 3) == 0) {
        data += 3;
        size -= 3;
    }
    const char *bad = s_bad_utf8 (data, size);
    if (bad) {
        *error_p = lb_xasprintf ("line %zu: invalid UTF-8 (byte 0x%02x)", s_line_of (data, bad),
                                 (unsigned char) *bad);
        return NULL;
    }
    const char *end = data + size;
    //  Skip leading blank lines.
    const char *start = data;
    while (s_blank_line (start, end))
        start += *start == '\r' ? 2 : 1;
    if (start == end) {
        *error_p = lb_xstrdup ("line 1: empty file");
        return NULL;
    }
    s_scan_t scan = { data, end, start, s_line_of (data, start), 0, opts.max_record, NULL };
    scan.delim = opts.delimiter ? opts.delimiter : s_detect (start, end);
    lb_csv_t *self = lb_xcalloc (1, sizeof *self);
    self->delimiter = scan.delim;
    //  The first record fixes the column count (and names, with a header).
    const char *field;
    size_t len;
    bool quoted;
    size_t first_line = scan.line, cap = 16;
    char **first = lb_xmalloc (cap * sizeof (char *));
    size_t nfirst = 0;
    int more;
    do {
        more = s_field (&scan, &field, &len, &quoted);
        if (more < 0)
            break;
        if (nfirst == cap)
            first = lb_xrealloc (first, (cap *= 2) * sizeof (char *));
        first [nfirst++] = s_unescape (field, len, quoted);
    } while (more == 1);
    if ((size_t) (scan.p - start) > opts.max_record && !scan.error)
        s_fail (&scan, first_line, "record longer than %zu bytes", opts.max_record);
    self->cols = nfirst;
    self->col = lb_xcalloc (nfirst ? nfirst : 1, sizeof (s_col_t));
    for (size_t c = 0; c < nfirst; c++) {
        s_col_t *col = &self->col [c];
        col->name = opts.header ? lb_xstrdup (first [c]) : lb_xasprintf ("column_%zu", c + 1);
        col->can_number = col->can_time = true;
    }
    size_t *offsets = NULL, max_offsets = 0;
    const char *data_start = opts.header ? scan.p : start;
    if (opts.header) {
        for (size_t c = 0; c < nfirst && !scan.error; c++) {
            if (first [c][0] == 0)
                s_fail (&scan, first_line, "column %zu has an empty name in the header", c + 1);
            for (size_t k = 0; k < c && !scan.error; k++)
                if (strcmp (first [c], first [k]) == 0)
                    s_fail (&scan, first_line, "column name '%s' appears twice in the header", first [c]);
        }
    }
    for (size_t c = 0; c < nfirst; c++)
        free (first [c]);
    free (first);
    scan.p = data_start;
    if (!opts.header)
        scan.line = first_line;
    while (!scan.error && scan.p < end) {
        if (s_blank_line (scan.p, end)) {
            scan.p += *scan.p == '\r' ? 2 : 1;
            scan.line++;
            continue;
        }
        size_t row = self->rows, rec_line = scan.line;
        const char *rec = scan.p;
        if (row == self->max_rows)
            s_grow (self);
        if (row == max_offsets) {
            max_offsets = max_offsets ? 2 * max_offsets : 1024;
            offsets = lb_xrealloc (offsets, max_offsets * sizeof (size_t));
        }
        offsets [row] = (size_t) (rec - data);
        for (size_t k = 0; k < self->cols; k++)
            if (self->col [k].is_text)
                self->col [k].text [row] = NULL;
        size_t c = 0;
        do {
            more = s_field (&scan, &field, &len, &quoted);
            if (more < 0)
                break;
            if (c >= self->cols) {
                c++;
                continue;
            }
            s_col_t *col = &self->col [c];
            bool missing = !quoted && s_missing (field, len);
            if (col->is_text)
                col->text [row] = missing ? NULL : s_intern (col, field, len, quoted);
            else
            if (missing) {
                if (col->can_number)
                    col->num [row] = NAN;
                if (col->can_time)
                    col->tim [row] = NAN;
            }
            else {
                col->any = true;
                if (col->can_number && !lb_csv_parse_number (field, len, &col->num [row])) {
                    col->can_number = false;
                    free (col->num);
                    col->num = NULL;
                }
                if (col->can_time && !lb_csv_parse_time (field, len, &col->tim [row])) {
                    col->can_time = false;
                    free (col->tim);
                    col->tim = NULL;
                }
                if (!col->can_number && !col->can_time) {
                    s_to_text (self, &scan, c, row, offsets);
                    col->text [row] = s_intern (col, field, len, quoted);
                }
            }
            c++;
        } while (more == 1);
        if (scan.error) {
            self->rows++;               //  so its cells are freed
            break;
        }
        if ((size_t) (scan.p - rec) > opts.max_record) {
            self->rows++;
            s_fail (&scan, rec_line, "record longer than %zu bytes", opts.max_record);
            break;
        }
        if (c != self->cols) {
            s_fail (&scan, rec_line, "%zu fields, the %s has %zu (ragged row)", c,
                    opts.header ? "header" : "first record", self->cols);
            //  Cells of this row may have been set: count it so they are freed.
            self->rows++;
            break;
        }
        self->rows++;
    }
    free (offsets);
    if (!scan.error && self->rows == 0)
        s_fail (&scan, scan.line, "no data rows (header only)");
    if (scan.error) {
        *error_p = scan.error;
        lb_csv_destroy (&self);
        return NULL;
    }
    self->types = lb_xcalloc (self->cols ? self->cols : 1, sizeof (lb_csv_type_t));
    for (size_t c = 0; c < self->cols; c++) {
        s_col_t *col = &self->col [c];
        if (col->is_text)
            self->types [c] = LB_CSV_TEXT;
        else
        if (!col->any)
            self->types [c] = LB_CSV_EMPTY;
        else
        if (col->can_number)
            self->types [c] = LB_CSV_NUMBER;
        else
            self->types [c] = LB_CSV_TIME;
        //  Keep one numeric array: the time values become num.
        if (self->types [c] == LB_CSV_TIME) {
            free (col->num);
            col->num = col->tim;
            col->tim = NULL;
        }
        else {
            free (col->tim);
            col->tim = NULL;
        }
    }
    return self;
}

lb_csv_t *
lb_csv_load (const char *path, const lb_csv_opts_t *opts, char **error_p)
{
    assert (path && error_p);
    *error_p = NULL;
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat (fd, &st)) {
        *error_p = lb_xasprintf ("%s: cannot open: %s", path, strerror (errno));
        if (fd >= 0)
            close (fd);
        return NULL;
    }
    size_t size = (size_t) st.st_size;
    if (size == 0) {
        close (fd);
        *error_p = lb_xasprintf ("%s: line 1: empty file", path);
        return NULL;
    }
    void *map = mmap (NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    close (fd);
    if (map == MAP_FAILED) {
        *error_p = lb_xasprintf ("%s: cannot map: %s", path, strerror (errno));
        return NULL;
    }
    madvise (map, size, MADV_SEQUENTIAL);
    char *why = NULL;
    lb_csv_t *self = lb_csv_parse (map, size, opts, &why);
    munmap (map, size);
    if (!self) {
        *error_p = lb_xasprintf ("%s: %s", path, why);
        free (why);
    }
    return self;
}

size_t lb_csv_rows (lb_csv_t *self) { assert (self); return self->rows; }
size_t lb_csv_cols (lb_csv_t *self) { assert (self); return self->cols; }
char lb_csv_delimiter (lb_csv_t *self) { assert (self); return self->delimiter; }

const char *
lb_csv_name (lb_csv_t *self, size_t col)
{
    assert (self && col < self->cols);
    return self->col [col].name;
}

lb_csv_type_t
lb_csv_type (lb_csv_t *self, size_t col)
{
    assert (self && col < self->cols);
    return self->types [col];
}

int
lb_csv_column (lb_csv_t *self, const char *name)
{
    assert (self && name);
    for (size_t c = 0; c < self->cols; c++)
        if (strcmp (self->col [c].name, name) == 0)
            return (int) c;
    return -1;
}

const double *
lb_csv_numbers (lb_csv_t *self, size_t col)
{
    assert (self && col < self->cols);
    if (self->types [col] == LB_CSV_TEXT)
        return NULL;
    if (!self->col [col].num)           //  zero rows: a valid empty array
        self->col [col].num = lb_xcalloc (1, sizeof (double));
    return self->col [col].num;
}

const char *
lb_csv_text (lb_csv_t *self, size_t col, size_t row)
{
    assert (self && col < self->cols && row < self->rows);
    return self->types [col] == LB_CSV_TEXT ? self->col [col].text [row] : NULL;
}

// ---------------------------------------------------------------- selftest

static lb_csv_t *
s_parse (const char *text, char **error)
{
    return lb_csv_parse (text, strlen (text), NULL, error);
}

static void
s_expect_error (const char *text, const char *want, bool verbose)
{
    char *error = NULL;
    lb_csv_t *csv = s_parse (text, &error);
    if (verbose)
        printf ("  %s\n", error ? error : "(accepted)");
    assert (!csv && error && strstr (error, want));
    free (error);
}

void
lb_csv_test (bool verbose)
{
    char *error = NULL;
    //  Quotes, doubled quotes, embedded delimiters and line breaks, CRLF, BOM.
    const char *text = "\xef\xbb\xbf" "name,price,note,when\r\n"
                       "\"a,b\",1.5,\"say \"\"hi\"\"\",2000-09-27\r\n"
                       "c,-2e3,\"two\r\nlines\",2012/01/02\r\n"
                       "\r\n"
                       "d,NA,,Jan 1 2000\r\n";
    lb_csv_t *csv = s_parse (text, &error);
    assert (csv && !error);
    assert (lb_csv_rows (csv) == 3 && lb_csv_cols (csv) == 4 && lb_csv_delimiter (csv) == ',');
    assert (strcmp (lb_csv_name (csv, 0), "name") == 0 && lb_csv_column (csv, "when") == 3);
    assert (lb_csv_type (csv, 0) == LB_CSV_TEXT && lb_csv_type (csv, 1) == LB_CSV_NUMBER);
    assert (lb_csv_type (csv, 2) == LB_CSV_TEXT && lb_csv_type (csv, 3) == LB_CSV_TIME);
    assert (strcmp (lb_csv_text (csv, 0, 0), "a,b") == 0);
    assert (strcmp (lb_csv_text (csv, 2, 0), "say \"hi\"") == 0);
    assert (strcmp (lb_csv_text (csv, 2, 1), "two\r\nlines") == 0);
    assert (lb_csv_text (csv, 2, 2) == NULL);                  //  missing stays missing
    const double *price = lb_csv_numbers (csv, 1);
    assert (price [0] == 1.5 && price [1] == -2000 && isnan (price [2]));
    const double *when = lb_csv_numbers (csv, 3);
    assert (when [0] == 970012800 && when [1] == 1325462400 && when [2] == 946684800);
    assert (lb_csv_numbers (csv, 0) == NULL && lb_csv_text (csv, 1, 0) == NULL);
    lb_csv_destroy (&csv);

    //  msft.csv's shape: semicolons, a quoted header cell.
    csv = s_parse ("\"%Y-%m-%d\";Open;Close;Volume\n2000-09-27;63.4375;60.625;53077800\n"
                   "2000-09-28;60.8125;61.3125;26180200\n", &error);
    assert (csv && lb_csv_delimiter (csv) == ';' && lb_csv_cols (csv) == 4);
    assert (strcmp (lb_csv_name (csv, 0), "%Y-%m-%d") == 0 && lb_csv_type (csv, 0) == LB_CSV_TIME);
    assert (lb_csv_numbers (csv, 1) [0] == 63.4375 && lb_csv_numbers (csv, 3) [1] == 26180200);
    lb_csv_destroy (&csv);

    //  A column that looks numeric at first and turns out to be text keeps
    //  its earlier cells as written; an all-missing column is empty.
    csv = s_parse ("k,v,e\n1,10,\n2,1.50,NA\n3,x,\n", &error);
    assert (csv && lb_csv_type (csv, 1) == LB_CSV_TEXT && lb_csv_type (csv, 2) == LB_CSV_EMPTY);
    assert (strcmp (lb_csv_text (csv, 1, 1), "1.50") == 0 && strcmp (lb_csv_text (csv, 1, 2), "x") == 0);
    assert (isnan (lb_csv_numbers (csv, 2) [1]));
    lb_csv_destroy (&csv);

    //  Tabs, no header, no final newline.
    lb_csv_opts_t opts;
    lb_csv_opts_default (&opts);
    opts.header = false;
    csv = lb_csv_parse ("1\t2\n3\t4", 7, &opts, &error);
    assert (csv && lb_csv_rows (csv) == 2 && lb_csv_delimiter (csv) == '\t');
    assert (strcmp (lb_csv_name (csv, 1), "column_2") == 0 && lb_csv_numbers (csv, 1) [1] == 4);
    lb_csv_destroy (&csv);

    //  Numbers: the exact fast path and the strtod fallback agree with strtod.
    const char *nums [] = { "0", "-0.5", "3.14159", "1e22", "1.7976931348623157e308", "123456789012345678901",
                            "0.1", "2.2250738585072014e-308", "  42 ", "+7", ".5", "5.", NULL };
    for (int i = 0; nums [i]; i++) {
        double v;
        assert (lb_csv_parse_number (nums [i], strlen (nums [i]), &v));
        assert (v == strtod (nums [i], NULL));
    }
    //  The long double path: 17-digit round trips of many doubles are exact.
    uint64_t x = 88172645463325252ull;
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        double d = ldexp ((double) (x >> 11), -52) * pow (10, (double) ((int) (x % 40) - 20));
        char repr [40];
        int n = snprintf (repr, sizeof repr, i % 2 ? "%.17g" : "%.15g", d);
        double back;
        assert (lb_csv_parse_number (repr, (size_t) n, &back));
        assert (back == strtod (repr, NULL));
    }
    double v;
    assert (!lb_csv_parse_number ("1e", 2, &v) && !lb_csv_parse_number ("abc", 3, &v));
    assert (!lb_csv_parse_number ("", 0, &v) && !lb_csv_parse_number ("1.2.3", 5, &v));
    assert (!lb_csv_parse_number ("1e999", 5, &v));
    assert (lb_csv_parse_time ("2026-11-20T14:30:00Z", 20, &v) && v == 1795185000);
    assert (lb_csv_parse_time ("2026-11-20 16:30:00+02:00", 25, &v) && v == 1795185000);
    assert (!lb_csv_parse_time ("2026-02-30", 10, &v) && !lb_csv_parse_time ("2026-1-1x", 9, &v));

    //  Bad input: each gives one error with its line.
    s_expect_error ("a,b\n1,2\n3\n", "line 3: 1 fields, the header has 2 (ragged", verbose);
    s_expect_error ("a,b\n1,2,3\n", "line 2: 3 fields", verbose);
    s_expect_error ("a,b\n1,\"2\n3,4\n", "line 2: unbalanced quote", verbose);
    s_expect_error ("a,b\n1,\"2\"x\n", "after a closing quote", verbose);
    s_expect_error ("a,b\n1,2\n\xff\xfe,3\n", "line 3: invalid UTF-8", verbose);
    s_expect_error ("a,b\n1,\xc0\xaf\n", "invalid UTF-8", verbose);           //  overlong
    s_expect_error ("", "empty file", verbose);
    s_expect_error ("\n\r\n", "empty file", verbose);
    s_expect_error ("a,b\n", "no data rows", verbose);
    s_expect_error ("a,a\n1,2\n", "appears twice", verbose);
    s_expect_error ("a,b\n1,2\r3,4\n", "carriage return", verbose);
    //  A 2 MiB line against the 1 MiB limit.
    size_t big = 2 << 20;
    char *line = lb_xmalloc (big + 16);
    memcpy (line, "a\n", 2);
    memset (line + 2, '7', big);
    memcpy (line + 2 + big, "\n", 2);
    csv = lb_csv_parse (line, big + 3, NULL, &error);
    assert (!csv && strstr (error, "line 2: record longer than"));
    free (error);
    free (line);

    //  Files.
    char *dir = lb_selftest_tmpdir ("lb_csv");
    char *path = lb_xasprintf ("%s/t.csv", dir);
    FILE *f = fopen (path, "w");
    assert (f);
    fputs ("x;y\n1;2\n", f);
    fclose (f);
    csv = lb_csv_load (path, NULL, &error);
    assert (csv && lb_csv_rows (csv) == 1 && lb_csv_delimiter (csv) == ';');
    lb_csv_destroy (&csv);
    f = fopen (path, "w");
    fclose (f);
    csv = lb_csv_load (path, NULL, &error);
    assert (!csv && strstr (error, path) && strstr (error, "empty file"));
    free (error);
    char *none = lb_xasprintf ("%s/none.csv", dir);
    csv = lb_csv_load (none, NULL, &error);
    assert (!csv && strstr (error, "cannot open"));
    free (error);
    free (none);
    free (path);
    lb_selftest_rmtree (dir);
    free (dir);
    lb_csv_destroy (&csv);
}
