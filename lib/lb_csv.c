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
#include <pthread.h>
#include <stdatomic.h>
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
    opts->threads = 0;
    opts->parallel_min = 4 << 20;
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

//  The 128 leading bits of 5^q, q = -22..22 (for q < 0: floor (2^b / 5^-q)
//  + 1 with the b that sets the top bit), high and low 64 bits.
static const uint64_t s_pow5_128 [45][2] = {
    { 0xf1c90080baf72cb1ull, 0x5324c68b12dd6339ull }, // -22
    { 0x971da05074da7beeull, 0xd3f6fc16ebca5e04ull }, // -21
    { 0xbce5086492111aeaull, 0x88f4bb1ca6bcf585ull }, // -20
    { 0xec1e4a7db69561a5ull, 0x2b31e9e3d06c32e6ull }, // -19
    { 0x9392ee8e921d5d07ull, 0x3aff322e62439fd0ull }, // -18
    { 0xb877aa3236a4b449ull, 0x09befeb9fad487c3ull }, // -17
    { 0xe69594bec44de15bull, 0x4c2ebe687989a9b4ull }, // -16
    { 0x901d7cf73ab0acd9ull, 0x0f9d37014bf60a11ull }, // -15
    { 0xb424dc35095cd80full, 0x538484c19ef38c95ull }, // -14
    { 0xe12e13424bb40e13ull, 0x2865a5f206b06fbaull }, // -13
    { 0x8cbccc096f5088cbull, 0xf93f87b7442e45d4ull }, // -12
    { 0xafebff0bcb24aafeull, 0xf78f69a51539d749ull }, // -11
    { 0xdbe6fecebdedd5beull, 0xb573440e5a884d1cull }, // -10
    { 0x89705f4136b4a597ull, 0x31680a88f8953031ull }, // -9
    { 0xabcc77118461cefcull, 0xfdc20d2b36ba7c3eull }, // -8
    { 0xd6bf94d5e57a42bcull, 0x3d32907604691b4dull }, // -7
    { 0x8637bd05af6c69b5ull, 0xa63f9a49c2c1b110ull }, // -6
    { 0xa7c5ac471b478423ull, 0x0fcf80dc33721d54ull }, // -5
    { 0xd1b71758e219652bull, 0xd3c36113404ea4a9ull }, // -4
    { 0x83126e978d4fdf3bull, 0x645a1cac083126eaull }, // -3
    { 0xa3d70a3d70a3d70aull, 0x3d70a3d70a3d70a4ull }, // -2
    { 0xccccccccccccccccull, 0xcccccccccccccccdull }, // -1
    { 0x8000000000000000ull, 0x0000000000000000ull }, // 0
    { 0xa000000000000000ull, 0x0000000000000000ull }, // 1
    { 0xc800000000000000ull, 0x0000000000000000ull }, // 2
    { 0xfa00000000000000ull, 0x0000000000000000ull }, // 3
    { 0x9c40000000000000ull, 0x0000000000000000ull }, // 4
    { 0xc350000000000000ull, 0x0000000000000000ull }, // 5
    { 0xf424000000000000ull, 0x0000000000000000ull }, // 6
    { 0x9896800000000000ull, 0x0000000000000000ull }, // 7
    { 0xbebc200000000000ull, 0x0000000000000000ull }, // 8
    { 0xee6b280000000000ull, 0x0000000000000000ull }, // 9
    { 0x9502f90000000000ull, 0x0000000000000000ull }, // 10
    { 0xba43b74000000000ull, 0x0000000000000000ull }, // 11
    { 0xe8d4a51000000000ull, 0x0000000000000000ull }, // 12
    { 0x9184e72a00000000ull, 0x0000000000000000ull }, // 13
    { 0xb5e620f480000000ull, 0x0000000000000000ull }, // 14
    { 0xe35fa931a0000000ull, 0x0000000000000000ull }, // 15
    { 0x8e1bc9bf04000000ull, 0x0000000000000000ull }, // 16
    { 0xb1a2bc2ec5000000ull, 0x0000000000000000ull }, // 17
    { 0xde0b6b3a76400000ull, 0x0000000000000000ull }, // 18
    { 0x8ac7230489e80000ull, 0x0000000000000000ull }, // 19
    { 0xad78ebc5ac620000ull, 0x0000000000000000ull }, // 20
    { 0xd8d726b7177a8000ull, 0x0000000000000000ull }, // 21
    { 0x878678326eac9000ull, 0x0000000000000000ull }, // 22
};

//  w * 10^q rounded to the nearest double (ties to even), for w > 0 and
//  -22 <= q <= 22 (the result is a normal finite double).
static double
s_eisel_lemire (uint64_t w, int q)
{
    int lz = __builtin_clzll (w);
    w <<= lz;
    const uint64_t *t = s_pow5_128 [q + 22];
    unsigned __int128 p = (unsigned __int128) w * t [0];
    uint64_t hi = (uint64_t) (p >> 64), lo = (uint64_t) p;
    if ((hi & 0x1ff) == 0x1ff) {
        uint64_t more = (uint64_t) (((unsigned __int128) w * t [1]) >> 64);
        lo += more;
        if (more > lo)
            hi++;
    }
    int upper = (int) (hi >> 63);
    uint64_t m = hi >> (upper + 9);
    int64_t e2 = ((((int64_t) 152170 + 65536) * q) >> 16) + 63 + upper - lz + 1023;
    //  A product exactly halfway between two doubles: round to even.
    if (lo <= 1 && q >= -4 && q <= 23 && (m & 3) == 1 && (m << (upper + 9)) == hi)
        m &= ~(uint64_t) 1;
    m += m & 1;
    m >>= 1;
    if (m >= (UINT64_C (2) << 52)) {
        m = UINT64_C (1) << 52;
        e2++;
    }
    assert (e2 > 0 && e2 < 0x7ff);
    uint64_t bits = (m & ~(UINT64_C (1) << 52)) | (uint64_t) e2 << 52;
    double d;
    memcpy (&d, &bits, sizeof d);
    return d;
}

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
    int digits = 0, exp10 = 0;              //  significant digits kept (<= 19), the power of ten
    bool any = false;
    while (p < end && *p == '0') {          //  leading zeros are not significant
        p++;
        any = true;
    }
    while (p < end && (unsigned) (*p - '0') < 10) {
        if (digits < 19) {
            mant = mant * 10 + (uint64_t) (*p - '0');
            digits++;
        }
        else
            exp10++;
        any = true;
        p++;
    }
    if (p < end && *p == '.') {
        p++;
        if (digits == 0)
            while (p < end && *p == '0') {
                exp10--;
                any = true;
                p++;
            }
        while (p < end && (unsigned) (*p - '0') < 10) {
            if (digits < 19) {
                mant = mant * 10 + (uint64_t) (*p - '0');
                digits++;
                exp10--;
            }
            any = true;
            p++;
        }
    }
    if (!any)
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
    //  17-19 digit mantissas (what %.17g writes): the Eisel-Lemire method
    //  (Lemire, "Number parsing at a gigabyte per second", 2021): the
    //  mantissa times the 128 leading bits of 5^exp10, rounded to nearest
    //  even; exact for every 64-bit mantissa and these exponents.
    if (exp10 >= -22 && exp10 <= 22 && mant) {
        *out = neg ? -s_eisel_lemire (mant, exp10) : s_eisel_lemire (mant, exp10);
        return true;
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
    const unsigned char *stop; //  256 flags: the bytes that end or break an unquoted field
    char *error;                //  first error: what (without its line)
    size_t error_line;          //  and where (chunks: counted from the chunk's start)
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
    s->error = lb_xvasprintf (fmt, args);
    s->error_line = line;
    va_end (args);
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
        const unsigned char *stop = s->stop;
        //  Eight bytes at a time: the lowest byte flagged by the has-zero
        //  test of (word ^ c) is the first byte equal to c.
        const uint64_t ones = 0x0101010101010101ull, high = 0x8080808080808080ull;
        const uint64_t d = ones * (unsigned char) s->delim;
        while (end - p >= 8) {
            uint64_t w;
            memcpy (&w, p, 8);
            uint64_t a = w ^ d, b = w ^ (ones * '\n'), c = w ^ (ones * '\r'), q = w ^ (ones * '"');
            uint64_t hit = ((a - ones) & ~a) | ((b - ones) & ~b) | ((c - ones) & ~c) | ((q - ones) & ~q);
            hit &= high;
            if (hit) {
                p += __builtin_ctzll (hit) >> 3;
                break;
            }
            p += 8;
        }
        while (p < end && !stop [(unsigned char) *p])
            p++;
        if (p < end && *p == '"') {
            s_fail (s, s->line, "quote inside an unquoted field");
            return -1;
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

//  Re-reads field c of the records at offsets [0..rows) as text into dest
//  (interned in col; NULL when missing).
static void
s_reread (s_col_t *col, const s_scan_t *scan, size_t c, const size_t *offsets, size_t rows, char **dest)
{
    s_scan_t again = *scan;
    again.error = NULL;
    for (size_t r = 0; r < rows; r++) {
        again.p = scan->data + offsets [r];
        const char *field = NULL;
        size_t len = 0;
        bool quoted = false;
        for (size_t k = 0; k <= c; k++) {
            int more = s_field (&again, &field, &len, &quoted);
            assert (more >= 0);
        }
        dest [r] = s_missing (field, len) && !quoted ? NULL : s_intern (col, field, len, quoted);
    }
    free (again.error);
}

//  Column c becomes text at row: re-read its cells of rows 0..row-1.
static void
s_to_text (lb_csv_t *self, s_scan_t *scan, size_t c, size_t row, const size_t *offsets)
{
    s_col_t *col = &self->col [c];
    col->is_text = true;
    col->text = lb_xcalloc (self->max_rows, sizeof (char *));
    s_reread (col, scan, c, offsets, row, col->text);
    free (col->num);
    free (col->tim);
    col->num = col->tim = NULL;
    col->can_number = col->can_time = false;
}

//  A table of cols columns, no rows, every type still possible.
static lb_csv_t *
s_part_new (size_t cols)
{
    lb_csv_t *self = lb_xcalloc (1, sizeof *self);
    self->cols = cols;
    self->col = lb_xcalloc (cols ? cols : 1, sizeof (s_col_t));
    for (size_t c = 0; c < cols; c++)
        self->col [c].can_number = self->col [c].can_time = true;
    return self;
}

//  Parses the records from scan->p up to scan->end into self, recording
//  each record's offset from scan->data in *offsets_p. Stops at the end or
//  at the first error (scan->error set).
static void
s_rows (lb_csv_t *self, s_scan_t *scan, size_t **offsets_p, size_t *max_offsets_p, bool header)
{
    const char *end = scan->end;
    size_t *offsets = *offsets_p, max_offsets = *max_offsets_p;
    const char *field;
    size_t len;
    bool quoted;
    int more;
    while (!scan->error && scan->p < end) {
        if (s_blank_line (scan->p, end)) {
            scan->p += *scan->p == '\r' ? 2 : 1;
            scan->line++;
            continue;
        }
        size_t row = self->rows, rec_line = scan->line;
        const char *rec = scan->p;
        if (row == self->max_rows)
            s_grow (self);
        if (row == max_offsets) {
            max_offsets = max_offsets ? 2 * max_offsets : 1024;
            offsets = lb_xrealloc (offsets, max_offsets * sizeof (size_t));
        }
        offsets [row] = (size_t) (rec - scan->data);
        for (size_t k = 0; k < self->cols; k++)
            if (self->col [k].is_text)
                self->col [k].text [row] = NULL;
        size_t c = 0;
        do {
            more = s_field (scan, &field, &len, &quoted);
            if (more < 0)
                break;
            if (c >= self->cols) {
                c++;
                continue;
            }
            s_col_t *col = &self->col [c];
            bool missing = !quoted && (len == 0 || (len <= 4 && (*field == 'N' || *field == 'n' || *field == '#')
                                                     && s_missing (field, len)));
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
                    *offsets_p = offsets;       //  s_to_text reads them
                    s_to_text (self, scan, c, row, offsets);
                    col->text [row] = s_intern (col, field, len, quoted);
                }
            }
            c++;
        } while (more == 1);
        if (scan->error) {
            self->rows++;               //  so its cells are freed
            break;
        }
        if ((size_t) (scan->p - rec) > scan->max_record) {
            self->rows++;
            s_fail (scan, rec_line, "record longer than %zu bytes", scan->max_record);
            break;
        }
        if (c != self->cols) {
            s_fail (scan, rec_line, "%zu fields, the %s has %zu (ragged row)", c,
                    header ? "header" : "first record", self->cols);
            //  Cells of this row may have been set: count it so they are freed.
            self->rows++;
            break;
        }
        self->rows++;
    }
    *offsets_p = offsets;
    *max_offsets_p = max_offsets;
}

// ---------------------------------------------------------------- in parallel
//
//  A large input is cut into one chunk per thread at line feeds, and each
//  chunk is parsed on its own into a part table; the parts are then joined.
//  A cut may fall inside a quoted field (a line break in a value). That is
//  detected, not assumed away: chunk 0 starts at a true record start, and
//  a chunk that parses without error up to its end leaves the next chunk at
//  a true record start too (no quoted field can be open at its end, or its
//  search for the closing quote, bounded by the end, would have failed). So
//  every chunk before the first one with an error is exactly what the one-
//  pass parse makes of those bytes; from the first chunk with an error on,
//  whose error may be real or an artefact of the cut, the rest is parsed
//  again in one pass. Lines are counted per chunk and added up, so errors
//  name the same line as the one-pass parse.

typedef struct {
    lb_csv_t *part;
    s_scan_t scan;              //  line counted from 0 at the chunk's start
    size_t *offsets, max_offsets;
    bool header;
} s_chunk_t;

static void *
s_chunk_run (void *arg)
{
    s_chunk_t *k = arg;
    s_rows (k->part, &k->scan, &k->offsets, &k->max_offsets, k->header);
    return NULL;
}

typedef struct {
    const char *from, *to, *bad;
    size_t quotes;
} s_utf8_t;

static void *
s_utf8_run (void *arg)
{
    s_utf8_t *t = arg;
    t->bad = s_bad_utf8 (t->from, (size_t) (t->to - t->from));
    //  The '"' in the piece (memchr: fast where there are few or none).
    for (const char *q = t->from; (q = memchr (q, '"', (size_t) (t->to - q))) != NULL; q++)
        t->quotes++;
    return NULL;
}

//  The input in pieces (boundaries at ASCII bytes) and the number of '"'
//  before each boundary: where the parallel parse may cut.
typedef struct {
    int n;
    const char **at;            //  n + 1 boundaries
    size_t *quotes;             //  n + 1 counts
} s_pieces_t;

static void
s_pieces_release (s_pieces_t *pieces)
{
    free (pieces->at);
    free (pieces->quotes);
    memset (pieces, 0, sizeof *pieces);
}

typedef struct {
    void *(*fn) (void *);
    char *args;
    size_t size;
    int items;
    atomic_int *next;
} s_pool_t;

static void *
s_pool_run (void *arg)
{
    s_pool_t *pool = arg;
    for (;;) {
        int i = atomic_fetch_add (pool->next, 1);
        if (i >= pool->items)
            break;
        pool->fn (pool->args + (size_t) i * pool->size);
    }
    return NULL;
}

//  Runs fn on each of items args (size bytes apart) on threads threads,
//  this one included; each thread takes the next item when done with one,
//  so a thread the machine holds back delays the end by one item at most.
static void
s_run_all (void *(*fn) (void *), void *args, size_t size, int items, int threads)
{
    if (threads > items)
        threads = items;
    atomic_int next = 0;
    s_pool_t pool = { fn, args, size, items, &next };
    pthread_t *tid = lb_xcalloc ((size_t) (threads > 0 ? threads : 1), sizeof (pthread_t));
    bool *started = lb_xcalloc ((size_t) (threads > 0 ? threads : 1), sizeof (bool));
    for (int i = 1; i < threads; i++)
        started [i] = pthread_create (&tid [i], NULL, s_pool_run, &pool) == 0;
    s_pool_run (&pool);                         //  also takes what threads that did not start would
    for (int i = 1; i < threads; i++)
        if (started [i])
            pthread_join (tid [i], NULL);
    free (tid);
    free (started);
}

//  s_bad_utf8 on threads over want pieces, cut where an ASCII byte starts
//  (never inside a sequence): the first piece with a bad byte has the first
//  bad byte. Fills pieces (caller releases).
static const char *
s_bad_utf8_parallel (const char *data, size_t size, int threads, int want, s_pieces_t *pieces)
{
    s_utf8_t *t = lb_xcalloc ((size_t) want, sizeof (s_utf8_t));
    const char *end = data + size, *from = data;
    int n = 0;
    for (int i = 1; i <= want; i++) {
        const char *to = i == want ? end : data + size / (size_t) want * (size_t) i;
        while (to < end && (unsigned char) *to >= 0x80)
            to++;
        if (to <= from)
            continue;
        t [n++] = (s_utf8_t) { from, to, NULL, 0 };
        from = to;
    }
    s_run_all (s_utf8_run, t, sizeof (s_utf8_t), n, threads);
    const char *bad = NULL;
    for (int i = 0; i < n && !bad; i++)
        bad = t [i].bad;
    pieces->n = n;
    pieces->at = lb_xmalloc ((size_t) (n + 1) * sizeof (char *));
    pieces->quotes = lb_xmalloc ((size_t) (n + 1) * sizeof (size_t));
    pieces->at [0] = data;
    pieces->quotes [0] = 0;
    for (int i = 0; i < n; i++) {
        pieces->at [i + 1] = t [i].to;
        pieces->quotes [i + 1] = pieces->quotes [i] + t [i].quotes;
    }
    free (t);
    return bad;
}

static void
s_chunk_release (s_chunk_t *k)
{
    lb_csv_destroy (&k->part);
    free (k->offsets);
    free (k->scan.error);
    memset (k, 0, sizeof *k);
}

//  One column of the parts joined into self's column c: numbers or times
//  concatenated; text when any part found text (or no one type fits all),
//  the parts' values interned again in one table.
static void
s_join_column (lb_csv_t *self, s_chunk_t *ch, int n, size_t c, const s_scan_t *scan)
{
    s_col_t *col = &self->col [c];
    bool any = false, text = false, num = true, tim = true;
    for (int i = 0; i < n; i++) {
        s_col_t *pc = &ch [i].part->col [c];
        any |= pc->any;
        text |= pc->is_text;
        num &= pc->can_number;
        tim &= pc->can_time;
    }
    text |= !num && !tim;
    col->any = any;
    size_t total = self->rows, room = total ? total : 1;
    if (!text) {
        col->can_number = num;
        col->can_time = tim;
        for (int which = 0; which < 2; which++) {
            if (!(which ? tim : num))
                continue;
            double **first = which ? &ch [0].part->col [c].tim : &ch [0].part->col [c].num;
            double *out = lb_xrealloc (*first, room * sizeof (double));
            *first = NULL;
            size_t at = ch [0].part->rows;
            for (int i = 1; i < n; i++) {
                s_col_t *pc = &ch [i].part->col [c];
                size_t rows = ch [i].part->rows;
                if (rows)
                    memcpy (out + at, which ? pc->tim : pc->num, rows * sizeof (double));
                at += rows;
            }
            *(which ? &col->tim : &col->num) = out;
        }
        return;
    }
    col->is_text = true;
    col->can_number = col->can_time = false;
    col->text = lb_xmalloc (room * sizeof (char *));
    size_t at = 0;
    for (int i = 0; i < n; i++) {
        s_col_t *pc = &ch [i].part->col [c];
        size_t rows = ch [i].part->rows;
        if (pc->is_text && i == 0) {
            //  The first part's table becomes the column's.
            col->uniq = pc->uniq;
            col->nuniq = pc->nuniq;
            col->slots = pc->slots;
            col->nslots = pc->nslots;
            col->last = pc->last;
            pc->uniq = NULL;
            pc->nuniq = 0;
            pc->slots = NULL;
            pc->nslots = 0;
            if (rows)
                memcpy (col->text, pc->text, rows * sizeof (char *));
        }
        else
        if (pc->is_text) {
            const char *prev = NULL;            //  the part's values are interned: runs repeat a pointer
            char *same = NULL;
            for (size_t r = 0; r < rows; r++) {
                const char *t = pc->text [r];
                if (t && t != prev) {
                    same = s_intern (col, t, strlen (t), false);
                    prev = t;
                }
                col->text [at + r] = t ? same : NULL;
            }
        }
        else
            s_reread (col, scan, c, ch [i].offsets, rows, col->text + at);
        at += rows;
    }
}

typedef struct {
    lb_csv_t *self;
    s_chunk_t *ch;
    int n;
    const s_scan_t *scan;
    size_t c;
} s_join_t;

static void *
s_join_run (void *arg)
{
    s_join_t *j = arg;
    s_join_column (j->self, j->ch, j->n, j->c, j->scan);
    return NULL;
}

//  Parses the records from scan->p to scan->end into self on threads
//  chunks; as s_rows does, with the same error (scan->error, absolute line).
static void
s_rows_parallel (lb_csv_t *self, s_scan_t *scan, int threads, const s_pieces_t *pieces, bool header)
{
    const char *from = scan->p, *end = scan->end;
    //  A cut after the first line feed in each piece that lies outside
    //  quotes if the input is valid so far: an even number of '"' before it
    //  (every quoted field has an even number of them). Where the input is
    //  not valid the parse of a chunk fails, and the check below catches it.
    bool quotes = pieces->quotes [pieces->n] > 0;
    const char **cut = lb_xmalloc ((size_t) (pieces->n + 1) * sizeof (char *));
    int n = 0;
    cut [n++] = from;
    for (int i = 1; i < pieces->n; i++) {
        const char *b = pieces->at [i], *limit = pieces->at [i + 1], *lf = NULL;
        if (b < from)
            continue;
        if (!quotes)
            lf = memchr (b, '\n', (size_t) (limit - b));
        else {
            bool open = pieces->quotes [i] & 1;
            for (const char *p = b; p < limit && !lf; p++)
                if (*p == '"')
                    open = !open;
                else
                if (*p == '\n' && !open)
                    lf = p;
        }
        if (lf && lf + 1 < end && lf + 1 > cut [n - 1])
            cut [n++] = lf + 1;
    }
    cut [n] = end;
    s_chunk_t *ch = lb_xcalloc ((size_t) n, sizeof (s_chunk_t));
    for (int i = 0; i < n; i++) {
        ch [i].part = s_part_new (self->cols);
        ch [i].scan = *scan;
        ch [i].scan.p = cut [i];
        ch [i].scan.end = cut [i + 1];
        ch [i].scan.line = 0;
        ch [i].scan.error = NULL;
        ch [i].header = header;
    }
    s_run_all (s_chunk_run, ch, sizeof (s_chunk_t), n, threads);
    //  The chunks before the first with an error are right; redo the rest.
    size_t line = scan->line;
    int good = 0;
    while (good < n && !ch [good].scan.error) {
        line += ch [good].scan.line;
        good++;
    }
    if (good < n) {
        const char *again = cut [good];
        for (int i = good; i < n; i++)
            s_chunk_release (&ch [i]);
        n = good + 1;
        ch [good].part = s_part_new (self->cols);
        ch [good].scan = *scan;
        ch [good].scan.p = again;
        ch [good].scan.line = line;
        ch [good].scan.error = NULL;
        s_rows (ch [good].part, &ch [good].scan, &ch [good].offsets, &ch [good].max_offsets, header);
        line = ch [good].scan.line;
        if (ch [good].scan.error) {
            scan->error = ch [good].scan.error;
            scan->error_line = ch [good].scan.error_line;
            ch [good].scan.error = NULL;
        }
    }
    scan->p = end;
    scan->line = line;
    if (!scan->error) {
        size_t total = 0;
        for (int i = 0; i < n; i++)
            total += ch [i].part->rows;
        self->rows = self->max_rows = total;
        //  Columns join independently.
        s_join_t *jobs = lb_xcalloc (self->cols ? self->cols : 1, sizeof (s_join_t));
        for (size_t c = 0; c < self->cols; c++)
            jobs [c] = (s_join_t) { self, ch, n, scan, c };
        s_run_all (s_join_run, jobs, sizeof (s_join_t), (int) self->cols, threads);
        free (jobs);
    }
    for (int i = 0; i < n; i++)
        s_chunk_release (&ch [i]);
    free (ch);
    free (cut);
}

static int
s_threads (int want)
{
    if (want > 0)
        return want > 64 ? 64 : want;
    long online = sysconf (_SC_NPROCESSORS_ONLN);
    return online < 1 ? 1 : online > 64 ? 64 : (int) online;
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
    int threads = s_threads (opts.threads);
    bool parallel = threads > 1 && size >= opts.parallel_min && size >= 2;
    //  Several pieces per thread (of at least parallel_min / 4 bytes), taken
    //  in turn: on a busy machine a thread that runs late costs one piece.
    size_t piece_min = opts.parallel_min / 4, want = (size_t) threads * 8;
    if (piece_min && size / piece_min < want)
        want = size / piece_min;
    if (want < (size_t) threads)
        want = (size_t) threads;
    s_pieces_t pieces = { 0 };
    const char *bad = parallel ? s_bad_utf8_parallel (data, size, threads, (int) want, &pieces)
                               : s_bad_utf8 (data, size);
    if (bad) {
        s_pieces_release (&pieces);
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
        s_pieces_release (&pieces);
        *error_p = lb_xstrdup ("line 1: empty file");
        return NULL;
    }
    s_scan_t scan = { data, end, start, s_line_of (data, start), 0, opts.max_record, NULL, NULL, 0 };
    scan.delim = opts.delimiter ? opts.delimiter : s_detect (start, end);
    unsigned char stop [256] = { 0 };
    stop [(unsigned char) scan.delim] = stop ['\n'] = stop ['\r'] = stop ['"'] = 1;
    scan.stop = stop;
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
    lb_csv_t *self = s_part_new (nfirst);
    self->delimiter = scan.delim;
    for (size_t c = 0; c < nfirst; c++)
        self->col [c].name = opts.header ? lb_xstrdup (first [c]) : lb_xasprintf ("column_%zu", c + 1);
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
    if (!scan.error) {
        if (parallel && (size_t) (end - data_start) >= opts.parallel_min)
            s_rows_parallel (self, &scan, threads, &pieces, opts.header);
        else {
            size_t *offsets = NULL, max_offsets = 0;
            s_rows (self, &scan, &offsets, &max_offsets, opts.header);
            free (offsets);
        }
    }
    s_pieces_release (&pieces);
    if (!scan.error && self->rows == 0)
        s_fail (&scan, scan.line, "no data rows (header only)");
    if (scan.error) {
        *error_p = lb_xasprintf ("line %zu: %s", scan.error_line, scan.error);
        free (scan.error);
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

//  True when a and b hold the same table (or the same error).
static bool
s_same (lb_csv_t *a, const char *ea, lb_csv_t *b, const char *eb)
{
    if (!a || !b)
        return !a && !b && ea && eb && strcmp (ea, eb) == 0;
    if (a->rows != b->rows || a->cols != b->cols || a->delimiter != b->delimiter)
        return false;
    for (size_t c = 0; c < a->cols; c++) {
        if (strcmp (a->col [c].name, b->col [c].name) || a->types [c] != b->types [c])
            return false;
        for (size_t r = 0; r < a->rows; r++)
            if (a->types [c] == LB_CSV_TEXT) {
                const char *x = lb_csv_text (a, c, r), *y = lb_csv_text (b, c, r);
                if ((x == NULL) != (y == NULL) || (x && strcmp (x, y)))
                    return false;
            }
            else
            if (memcmp (&a->col [c].num [r], &b->col [c].num [r], sizeof (double)))
                return false;
    }
    return true;
}

static uint64_t
s_rand (uint64_t *x)
{
    *x ^= *x << 13;
    *x ^= *x >> 7;
    *x ^= *x << 17;
    return *x;
}

//  A random CSV that stresses the cuts of the parallel parse: quoted values
//  with line breaks, doubled quotes, CRLF, blank lines, columns that change
//  type late, and (when bad) one error somewhere.
static char *
s_random_csv (uint64_t *x, bool bad, size_t *size)
{
    size_t cap = 1 << 16, n = 0;
    char *buf = lb_xmalloc (cap);
    int cols = 1 + (int) (s_rand (x) % 5), rows = 20 + (int) (s_rand (x) % 300);
    bool crlf = s_rand (x) % 3 == 0;
    const char *eol = crlf ? "\r\n" : "\n";
    int kinds [8], bad_row = bad ? (int) (s_rand (x) % (unsigned) rows) : -1;
    int bad_kind = (int) (s_rand (x) % 7);
    for (int c = 0; c < cols; c++)
        kinds [c] = (int) (s_rand (x) % 5);          //  number, time, text, quoted text, number then text
    #define S_PUT(...) do { if (cap - n < 4096) buf = lb_xrealloc (buf, cap *= 2); \
                            n += (size_t) snprintf (buf + n, cap - n, __VA_ARGS__); } while (0)
    if (s_rand (x) % 4 == 0)
        S_PUT ("\xef\xbb\xbf");
    for (int c = 0; c < cols; c++)
        S_PUT ("%s\"c%d\"", c ? "," : "", c);
    S_PUT ("%s", eol);
    for (int r = 0; r < rows; r++) {
        if (s_rand (x) % 17 == 0)
            S_PUT ("%s", eol);                          //  a blank line
        int fields = cols + (r == bad_row && bad_kind == 0 ? 1 : 0);
        for (int c = 0; c < fields; c++) {
            if (c)
                S_PUT (",");
            int k = c < cols ? kinds [c] : 0;
            uint64_t v = s_rand (x);
            if (v % 11 == 0)
                S_PUT ("%s", v % 2 ? "NA" : "");
            else
            if (k == 0 || (k == 4 && r < rows * 3 / 4))
                S_PUT ("%.17g", (double) (v % 100000) / 7.0);
            else
            if (k == 1)
                S_PUT ("2020-%02d-%02d", 1 + (int) (v % 12), 1 + (int) (v / 12 % 28));
            else
            if (k == 2 || k == 4)
                S_PUT ("w%d", (int) (v % 9));
            else
                S_PUT ("\"q%d,\"\"%s%s%s\"", (int) (v % 5), v % 3 ? "" : "a\nb", v % 5 ? "" : "\r\n",
                       v % 7 ? "" : "\n\n,\"\"\n");
        }
        if (r == bad_row) {
            if (bad_kind == 1)
                S_PUT (",\"open");                       //  unbalanced (or ragged when closed later)
            if (bad_kind == 2)
                S_PUT ("\"x\"y");                        //  a stray character
            if (bad_kind == 3)
                S_PUT ("\r");                            //  a lone CR
            if (bad_kind == 4)
                S_PUT ("\xff");                          //  invalid UTF-8
            if (bad_kind == 5)
                for (int i = 0; i < 60; i++)
                    S_PUT ("0123456789");                //  over max_record (300)
            if (bad_kind == 6)
                S_PUT ("q\"");                           //  a quote inside an unquoted field
        }
        if (r < rows - 1 || s_rand (x) % 2)
            S_PUT ("%s", eol);
    }
    #undef S_PUT
    *size = n;
    return buf;
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
    //  The Eisel-Lemire path: 1..19-digit mantissas, exponents -22..22,
    //  halfway cases around 2^53 and 2^54 included.
    for (int i = 0; i < 200000; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        uint64_t m = i % 4 == 0 ? x % 10000000000000000000ull
                   : i % 4 == 1 ? (UINT64_C (1) << 53) - 1000 + x % 2000
                   : i % 4 == 2 ? (UINT64_C (1) << 54) - 1000 + x % 2000 : x % 100000000000000000ull;
        char repr [48];
        int n = snprintf (repr, sizeof repr, "%llue%d", (unsigned long long) m, (int) (x >> 40) % 45 - 22);
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

    //  In parallel: the same table, or the same error on the same line, as
    //  one pass, however the chunks fall (cuts inside quoted line breaks).
    uint64_t seed = 0x9e3779b97f4a7c15ull;
    int agreed = 0;
    for (int i = 0; i < 600; i++) {
        size_t size;
        char *text2 = s_random_csv (&seed, i % 3 == 2, &size);
        lb_csv_opts_t one, many;
        lb_csv_opts_default (&one);
        one.threads = 1;
        one.max_record = 300;
        many = one;
        many.threads = 2 + i % 6;
        many.parallel_min = 0;
        char *e1 = NULL, *e2 = NULL;
        lb_csv_t *a = lb_csv_parse (text2, size, &one, &e1);
        lb_csv_t *b = lb_csv_parse (text2, size, &many, &e2);
        if (!s_same (a, e1, b, e2)) {
            fprintf (stderr, "lb_csv: parallel differs (case %d, %d threads): %s / %s\n", i, many.threads,
                     e1 ? e1 : "ok", e2 ? e2 : "ok");
            assert (false);
        }
        agreed += a != NULL;
        lb_csv_destroy (&a);
        lb_csv_destroy (&b);
        free (e1);
        free (e2);
        free (text2);
    }
    assert (agreed > 300);
    if (verbose)
        printf ("  600 random files: parallel = one pass (%d parsed, %d errors)\n", agreed, 600 - agreed);

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
