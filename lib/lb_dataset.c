/*  lb_dataset.c - the dataset artifact (format described in lb_dataset.h). */
#include "lb_dataset.h"
#include "lb_log.h"
#include "lb_mem.h"
#include "lb_selftest.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#if __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#   error "lb_dataset assumes a little-endian host (the format is little-endian)"
#endif

struct _lb_dataset_t {
    lb_dataset_task_t task;
    int n_classes;
    char *label;
    char *meta;
    size_t cols;
    char **names;
    lb_dataset_coltype_t *types;
    size_t n_entities, entities_max;
    char **entity_names;
    int64_t horizon_s, embargo_s;
    size_t rows, rows_max;
    int64_t *ts;
    uint32_t *entity;
    float *x, *y, *baseline, *fwd;
    size_t split_begin [3], split_end [3];
    bool split_set;
};

static const char *s_split_names [3] = { "train", "valid", "test" };

lb_dataset_t *
lb_dataset_new (lb_dataset_task_t task, int n_classes, const char *label,
                size_t cols, const char *const *names, const lb_dataset_coltype_t *types)
{
    assert (task == LB_DATASET_BINARY || task == LB_DATASET_REGRESSION
         || task == LB_DATASET_MULTICLASS);
    assert (task != LB_DATASET_BINARY || n_classes == 2);
    assert (task != LB_DATASET_MULTICLASS || n_classes >= 3);
    assert (label && lb_dataset_name_ok (label));
    assert (cols <= LB_DATASET_MAX_COLS);
    lb_dataset_t *self = lb_xcalloc (1, sizeof *self);
    self->task = task;
    self->n_classes = task == LB_DATASET_REGRESSION ? 0 : n_classes;
    self->label = lb_xstrdup (label);
    self->meta = lb_xstrdup ("");
    self->cols = cols;
    self->names = lb_xcalloc (cols ? cols : 1, sizeof (char *));
    self->types = lb_xcalloc (cols ? cols : 1, sizeof (lb_dataset_coltype_t));
    for (size_t i = 0; i < cols; i++) {
        assert (lb_dataset_name_ok (names [i]));
        for (size_t j = 0; j < i; j++)
            assert (strcmp (names [i], names [j]) != 0);
        self->names [i] = lb_xstrdup (names [i]);
        self->types [i] = types ? types [i] : LB_DATASET_NUMERIC;
        assert (self->types [i] <= LB_DATASET_CATEGORY);
    }
    return self;
}

void
lb_dataset_destroy (lb_dataset_t **self_p)
{
    assert (self_p);
    lb_dataset_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->cols; i++)
        free (self->names [i]);
    for (size_t i = 0; i < self->n_entities; i++)
        free (self->entity_names [i]);
    free (self->names);
    free (self->types);
    free (self->entity_names);
    free (self->label);
    free (self->meta);
    free (self->ts);
    free (self->entity);
    free (self->x);
    free (self->y);
    free (self->baseline);
    free (self->fwd);
    free (self);
    *self_p = NULL;
}

static bool
s_name_ok (const char *name, size_t len)
{
    if (len == 0 || len > LB_DATASET_MAX_NAME)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) name [i] <= 0x20 || (unsigned char) name [i] >= 0x7f)
            return false;
    return true;
}

bool
lb_dataset_name_ok (const char *name)
{
    return name && s_name_ok (name, strnlen (name, LB_DATASET_MAX_NAME + 1));
}

uint32_t
lb_dataset_entity (lb_dataset_t *self, const char *name)
{
    assert (self);
    assert (lb_dataset_name_ok (name));
    //  Linear search: entity tables are hundreds of symbols and callers
    //  look an entity up once per symbol, not per row.
    for (size_t i = 0; i < self->n_entities; i++)
        if (strcmp (self->entity_names [i], name) == 0)
            return (uint32_t) i;
    if (self->n_entities == self->entities_max) {
        self->entities_max = self->entities_max ? 2 * self->entities_max : 16;
        self->entity_names = lb_xrealloc (self->entity_names,
                                          self->entities_max * sizeof (char *));
    }
    self->entity_names [self->n_entities] = lb_xstrdup (name);
    return (uint32_t) self->n_entities++;
}

//  Checks a label against the task; writes why into error.
static bool
s_label_ok (lb_dataset_task_t task, int n_classes, float y)
{
    if (!isfinite (y))
        return false;
    if (task == LB_DATASET_REGRESSION)
        return true;
    return y >= 0 && y < (float) n_classes && y == floorf (y);
}

//  Baseline: NaN (no rule) or a valid label.
static bool
s_baseline_ok (lb_dataset_task_t task, int n_classes, float b)
{
    return isnan (b) || s_label_ok (task, n_classes, b);
}

int
lb_dataset_append (lb_dataset_t *self, int64_t ts, uint32_t entity, const float *x,
                   float y, float baseline, float fwd_return)
{
    assert (self);
    assert (x || self->cols == 0);
    if (self->rows && ts < self->ts [self->rows - 1]) {
        lb_log_error ("dataset: row %zu: ts=%lld before previous row's ts=%lld (rows must be in time order)",
                      self->rows, (long long) ts, (long long) self->ts [self->rows - 1]);
        return -1;
    }
    if (entity >= self->n_entities) {
        lb_log_error ("dataset: row %zu: unknown entity id %u", self->rows, entity);
        return -1;
    }
    if (!s_label_ok (self->task, self->n_classes, y)) {
        lb_log_error ("dataset: row %zu: label %g does not fit the task", self->rows, (double) y);
        return -1;
    }
    if (!s_baseline_ok (self->task, self->n_classes, baseline)) {
        lb_log_error ("dataset: row %zu: baseline %g does not fit the task", self->rows, (double) baseline);
        return -1;
    }
    if (isinf (fwd_return)) {
        lb_log_error ("dataset: row %zu: fwd_return is infinite", self->rows);
        return -1;
    }
    for (size_t c = 0; c < self->cols; c++)
        if (isinf (x [c])) {
            lb_log_error ("dataset: row %zu: column %s is infinite", self->rows, self->names [c]);
            return -1;
        }
    if (self->rows == self->rows_max) {
        size_t n = self->rows_max ? 2 * self->rows_max : 1024;
        self->ts = lb_xrealloc (self->ts, n * sizeof (int64_t));
        self->entity = lb_xrealloc (self->entity, n * sizeof (uint32_t));
        self->x = lb_xrealloc (self->x, n * (self->cols ? self->cols : 1) * sizeof (float));
        self->y = lb_xrealloc (self->y, n * sizeof (float));
        self->baseline = lb_xrealloc (self->baseline, n * sizeof (float));
        self->fwd = lb_xrealloc (self->fwd, n * sizeof (float));
        self->rows_max = n;
    }
    size_t r = self->rows++;
    self->ts [r] = ts;
    self->entity [r] = entity;
    if (self->cols)
        memcpy (self->x + r * self->cols, x, self->cols * sizeof (float));
    self->y [r] = y;
    self->baseline [r] = baseline;
    self->fwd [r] = fwd_return;
    self->split_set = false;
    return 0;
}

void
lb_dataset_set_meta (lb_dataset_t *self, const char *json)
{
    assert (self && json);
    assert (strlen (json) <= LB_DATASET_MAX_META);
    free (self->meta);
    self->meta = lb_xstrdup (json);
}

int
lb_dataset_set_horizon (lb_dataset_t *self, int64_t horizon_s, int64_t embargo_s)
{
    assert (self);
    if (horizon_s < 0 || embargo_s < horizon_s) {
        lb_log_error ("dataset: embargo %llds must be >= label horizon %llds >= 0",
                      (long long) embargo_s, (long long) horizon_s);
        return -1;
    }
    self->horizon_s = horizon_s;
    self->embargo_s = embargo_s;
    self->split_set = false;
    return 0;
}

void
lb_dataset_windows_back (int64_t end_ts, int64_t train_s, int64_t valid_s, int64_t test_s,
                         int64_t embargo_s, lb_dataset_windows_t *w)
{
    assert (w && train_s > 0 && valid_s > 0 && test_s >= 0 && embargo_s >= 0);
    w->to [LB_DATASET_TEST] = end_ts;
    w->from [LB_DATASET_TEST] = end_ts - test_s;
    w->to [LB_DATASET_VALID] = test_s ? w->from [LB_DATASET_TEST] - embargo_s : end_ts;
    w->from [LB_DATASET_VALID] = w->to [LB_DATASET_VALID] - valid_s;
    w->to [LB_DATASET_TRAIN] = w->from [LB_DATASET_VALID] - embargo_s;
    w->from [LB_DATASET_TRAIN] = w->to [LB_DATASET_TRAIN] - train_s;
}

//  First row with ts >= t (rows are sorted by ts).
static size_t
s_lower_bound (const int64_t *ts, size_t rows, int64_t t)
{
    size_t lo = 0, hi = rows;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (ts [mid] < t)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

//  Checks split ranges against rows, order and embargo. Returns NULL if
//  fine, else writes why into buf and returns it.
static const char *
s_check_splits (const int64_t *ts, size_t rows, const size_t *begin, const size_t *end,
                int64_t horizon_s, int64_t embargo_s, char *buf, size_t size)
{
    if (horizon_s < 0 || embargo_s < horizon_s) {
        snprintf (buf, size, "embargo %llds is under the label horizon %llds",
                  (long long) embargo_s, (long long) horizon_s);
        return buf;
    }
    int prev = -1;
    for (int s = 0; s < 3; s++) {
        if (begin [s] > end [s] || end [s] > rows) {
            snprintf (buf, size, "split %s rows [%zu, %zu) out of range (rows=%zu)",
                      s_split_names [s], begin [s], end [s], rows);
            return buf;
        }
        if (begin [s] == end [s])
            continue;
        if (prev >= 0) {
            if (begin [s] < end [prev]) {
                snprintf (buf, size, "split %s rows start at %zu inside split %s (ends at %zu)",
                          s_split_names [s], begin [s], s_split_names [prev], end [prev]);
                return buf;
            }
            int64_t gap = ts [begin [s]] - ts [end [prev] - 1];
            if (gap < embargo_s) {
                snprintf (buf, size, "split %s starts %llds after split %s ends, embargo is %llds",
                          s_split_names [s], (long long) gap, s_split_names [prev],
                          (long long) embargo_s);
                return buf;
            }
        }
        prev = s;
    }
    if (begin [LB_DATASET_TRAIN] == end [LB_DATASET_TRAIN]) {
        snprintf (buf, size, "split train is empty");
        return buf;
    }
    return NULL;
}

int
lb_dataset_set_splits (lb_dataset_t *self, const size_t begin [3], const size_t end [3])
{
    assert (self);
    char why [256];
    if (s_check_splits (self->ts, self->rows, begin, end, self->horizon_s, self->embargo_s,
                        why, sizeof why)) {
        lb_log_error ("dataset: %s", why);
        return -1;
    }
    memcpy (self->split_begin, begin, sizeof self->split_begin);
    memcpy (self->split_end, end, sizeof self->split_end);
    self->split_set = true;
    return 0;
}

int
lb_dataset_split_windows (lb_dataset_t *self, const lb_dataset_windows_t *w)
{
    assert (self && w);
    size_t begin [3], end [3];
    for (int s = 0; s < 3; s++) {
        if (w->from [s] > w->to [s]) {
            lb_log_error ("dataset: window %s is reversed", s_split_names [s]);
            return -1;
        }
        if (s > 0 && w->from [s] - w->to [s - 1] < self->embargo_s) {
            lb_log_error ("dataset: window %s starts %llds after window %s ends; the embargo is %llds",
                          s_split_names [s], (long long) (w->from [s] - w->to [s - 1]),
                          s_split_names [s - 1], (long long) self->embargo_s);
            return -1;
        }
        begin [s] = s_lower_bound (self->ts, self->rows, w->from [s]);
        end [s] = s_lower_bound (self->ts, self->rows, w->to [s]);
        //  Only the test window may be empty (test_s == 0).
        if (begin [s] == end [s] && (s < 2 || w->from [s] < w->to [s])) {
            lb_log_error ("dataset: no rows in the %s window (%lld..%lld); rows=%zu span %lld..%lld",
                          s_split_names [s], (long long) w->from [s], (long long) w->to [s],
                          self->rows, (long long) (self->rows ? self->ts [0] : 0),
                          (long long) (self->rows ? self->ts [self->rows - 1] : 0));
            return -1;
        }
    }
    return lb_dataset_set_splits (self, begin, end);
}

size_t lb_dataset_rows (lb_dataset_t *self) { assert (self); return self->rows; }
size_t lb_dataset_cols (lb_dataset_t *self) { assert (self); return self->cols; }
lb_dataset_task_t lb_dataset_task (lb_dataset_t *self) { assert (self); return self->task; }
int lb_dataset_n_classes (lb_dataset_t *self) { assert (self); return self->n_classes; }
const char *lb_dataset_label (lb_dataset_t *self) { assert (self); return self->label; }
const char *lb_dataset_meta (lb_dataset_t *self) { assert (self); return self->meta; }
int64_t lb_dataset_horizon (lb_dataset_t *self) { assert (self); return self->horizon_s; }
int64_t lb_dataset_embargo (lb_dataset_t *self) { assert (self); return self->embargo_s; }
size_t lb_dataset_n_entities (lb_dataset_t *self) { assert (self); return self->n_entities; }
const int64_t *lb_dataset_ts (lb_dataset_t *self) { assert (self); return self->ts; }
const uint32_t *lb_dataset_entities (lb_dataset_t *self) { assert (self); return self->entity; }
const float *lb_dataset_x (lb_dataset_t *self) { assert (self); return self->x; }
const float *lb_dataset_y (lb_dataset_t *self) { assert (self); return self->y; }
const float *lb_dataset_baseline (lb_dataset_t *self) { assert (self); return self->baseline; }
const float *lb_dataset_fwd_return (lb_dataset_t *self) { assert (self); return self->fwd; }

const char *
lb_dataset_column (lb_dataset_t *self, size_t col)
{
    assert (self && col < self->cols);
    return self->names [col];
}

lb_dataset_coltype_t
lb_dataset_coltype (lb_dataset_t *self, size_t col)
{
    assert (self && col < self->cols);
    return self->types [col];
}

int
lb_dataset_column_index (lb_dataset_t *self, const char *name)
{
    assert (self && name);
    for (size_t i = 0; i < self->cols; i++)
        if (strcmp (self->names [i], name) == 0)
            return (int) i;
    return -1;
}

const char *
lb_dataset_entity_name (lb_dataset_t *self, uint32_t entity)
{
    assert (self && entity < self->n_entities);
    return self->entity_names [entity];
}

void
lb_dataset_split (lb_dataset_t *self, lb_dataset_split_t split, size_t *begin, size_t *end)
{
    assert (self && split <= LB_DATASET_TEST && begin && end);
    *begin = self->split_begin [split];
    *end = self->split_end [split];
}

// ---------------------------------------------------------------- encoding

static size_t
s_pad8 (size_t n)
{
    return (n + 7) & ~(size_t) 7;
}

//  A growing byte buffer for the encoder.
typedef struct {
    uint8_t *data;
    size_t size, max;
} s_buf_t;

static void
s_put (s_buf_t *b, const void *p, size_t n)
{
    if (b->size + n > b->max) {
        while (b->size + n > b->max)
            b->max = b->max ? 2 * b->max : 4096;
        b->data = lb_xrealloc (b->data, b->max);
    }
    if (n)
        memcpy (b->data + b->size, p, n);
    b->size += n;
}

static void
s_put_u32 (s_buf_t *b, uint32_t v) { s_put (b, &v, 4); }
static void
s_put_u64 (s_buf_t *b, uint64_t v) { s_put (b, &v, 8); }

static void
s_put_str (s_buf_t *b, const char *s)
{
    size_t n = strlen (s);
    s_put_u32 (b, (uint32_t) n);
    s_put (b, s, n);
}

static void
s_put_pad (s_buf_t *b)
{
    static const uint8_t zeros [8] = { 0 };
    s_put (b, zeros, s_pad8 (b->size) - b->size);
}

int
lb_dataset_encode (lb_dataset_t *self, uint8_t **data, size_t *size)
{
    assert (self && data && size);
    if (!self->split_set) {
        lb_log_error ("dataset: splits are not set (call lb_dataset_split_windows first)");
        return -1;
    }
    s_buf_t strings = { 0 };
    s_put_str (&strings, self->label);
    s_put_str (&strings, self->meta);
    for (size_t i = 0; i < self->cols; i++) {
        uint8_t t = (uint8_t) self->types [i];
        s_put (&strings, &t, 1);
        s_put_str (&strings, self->names [i]);
    }
    for (size_t i = 0; i < self->n_entities; i++)
        s_put_str (&strings, self->entity_names [i]);
    s_put_pad (&strings);

    size_t rows = self->rows, cols = self->cols;
    size_t total = LB_DATASET_HEADER_SIZE + strings.size + 8 * rows + s_pad8 (4 * rows)
                 + s_pad8 (4 * rows * cols) + 3 * s_pad8 (4 * rows) + 32;
    s_buf_t b = { lb_xmalloc (total), 0, total };
    s_put (&b, LB_DATASET_MAGIC, 8);
    s_put_u32 (&b, LB_DATASET_VERSION);
    s_put_u32 (&b, 0);
    s_put_u64 (&b, rows);
    s_put_u32 (&b, (uint32_t) cols);
    s_put_u32 (&b, (uint32_t) self->task);
    s_put_u32 (&b, (uint32_t) self->n_classes);
    s_put_u32 (&b, (uint32_t) self->n_entities);
    s_put_u64 (&b, (uint64_t) self->horizon_s);
    s_put_u64 (&b, (uint64_t) self->embargo_s);
    for (int s = 0; s < 3; s++) {
        s_put_u64 (&b, self->split_begin [s]);
        s_put_u64 (&b, self->split_end [s]);
    }
    s_put_u64 (&b, strings.size);
    s_put_u64 (&b, total);
    s_put_u64 (&b, 0);
    assert (b.size == LB_DATASET_HEADER_SIZE);
    s_put (&b, strings.data, strings.size);
    free (strings.data);
    s_put (&b, self->ts, 8 * rows);
    s_put (&b, self->entity, 4 * rows);
    s_put_pad (&b);
    s_put (&b, self->x, 4 * rows * cols);
    s_put_pad (&b);
    s_put (&b, self->y, 4 * rows);
    s_put_pad (&b);
    s_put (&b, self->baseline, 4 * rows);
    s_put_pad (&b);
    s_put (&b, self->fwd, 4 * rows);
    s_put_pad (&b);
    assert (b.size == total - 32);
    crypto_hash_sha256 (b.data + b.size, b.data, b.size);
    *data = b.data;
    *size = total;
    return 0;
}

// ---------------------------------------------------------------- decoding

typedef struct {
    const uint8_t *data;
    size_t size, pos;
    char *error;
    size_t error_size;
} s_reader_t;

static void
s_fail (s_reader_t *r, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static void
s_fail (s_reader_t *r, const char *fmt, ...)
{
    if (!r->error || !r->error_size)
        return;
    va_list args;
    va_start (args, fmt);
    vsnprintf (r->error, r->error_size, fmt, args);
    va_end (args);
}

static uint32_t
s_u32_at (const uint8_t *p) { uint32_t v; memcpy (&v, p, 4); return v; }
static uint64_t
s_u64_at (const uint8_t *p) { uint64_t v; memcpy (&v, p, 8); return v; }

//  Reads one (uint32 length, bytes) string within the strings section
//  ending at limit. Returns a new string or NULL after s_fail.
static char *
s_get_str (s_reader_t *r, size_t limit, size_t max_len, const char *what)
{
    if (r->pos + 4 > limit) {
        s_fail (r, "strings section ends inside the length of %s", what);
        return NULL;
    }
    uint32_t n = s_u32_at (r->data + r->pos);
    r->pos += 4;
    if (n > max_len || r->pos + n > limit) {
        s_fail (r, "%s: length %u is over %zu or past the strings section", what, n, max_len);
        return NULL;
    }
    char *s = lb_xstrndup ((const char *) r->data + r->pos, n);
    if (strlen (s) != n) {
        s_fail (r, "%s contains a NUL byte", what);
        free (s);
        return NULL;
    }
    r->pos += n;
    return s;
}

//  True if s (len bytes) is valid UTF-8 (no overlongs or surrogates).
static bool
s_utf8_ok (const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t c = s [i];
        size_t n;
        uint32_t cp;
        if (c < 0x80) { i++; continue; }
        else if ((c & 0xe0) == 0xc0) { n = 1; cp = c & 0x1f; }
        else if ((c & 0xf0) == 0xe0) { n = 2; cp = c & 0x0f; }
        else if ((c & 0xf8) == 0xf0) { n = 3; cp = c & 0x07; }
        else return false;
        if (i + n >= len)
            return false;
        for (size_t k = 1; k <= n; k++) {
            if ((s [i + k] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (s [i + k] & 0x3f);
        }
        if ((n == 1 && cp < 0x80) || (n == 2 && cp < 0x800) || (n == 3 && cp < 0x10000)
        ||  cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += n + 1;
    }
    return true;
}

static int
s_strcmp_p (const void *a, const void *b)
{
    return strcmp (*(const char *const *) a, *(const char *const *) b);
}

lb_dataset_t *
lb_dataset_decode (const uint8_t *data, size_t size, char *error, size_t error_size)
{
    assert (data || size == 0);
    s_reader_t r = { data, size, 0, error, error_size };
    lb_dataset_t *self = NULL;
    const uint8_t *h = data;
    if (size < 8 || memcmp (h, LB_DATASET_MAGIC, 8) != 0) {
        s_fail (&r, size < 8 ? "truncated: %zu bytes, not even a magic number"
                             : "bad magic: not a dataset file (%zu bytes)", size);
        return NULL;
    }
    if (size < LB_DATASET_HEADER_SIZE + 32) {
        s_fail (&r, "truncated: %zu bytes, a header and checksum need %d",
                size, LB_DATASET_HEADER_SIZE + 32);
        return NULL;
    }
    uint32_t version = s_u32_at (h + 8);
    if (version != LB_DATASET_VERSION) {
        s_fail (&r, "unsupported version %u (this reader knows %d)", version, LB_DATASET_VERSION);
        return NULL;
    }
    uint64_t total = s_u64_at (h + 112);
    if (total != size) {
        s_fail (&r, "%s: file has %zu bytes, header says %llu",
                size < total ? "truncated" : "trailing bytes", size, (unsigned long long) total);
        return NULL;
    }
    uint8_t digest [32];
    crypto_hash_sha256 (digest, data, size - 32);
    if (memcmp (digest, data + size - 32, 32) != 0) {
        s_fail (&r, "bad checksum: the file is corrupt");
        return NULL;
    }
    uint32_t flags = s_u32_at (h + 12);
    uint64_t rows = s_u64_at (h + 16);
    uint32_t cols = s_u32_at (h + 24);
    uint32_t task = s_u32_at (h + 28);
    uint32_t n_classes = s_u32_at (h + 32);
    uint32_t n_entities = s_u32_at (h + 36);
    int64_t horizon_s = (int64_t) s_u64_at (h + 40);
    int64_t embargo_s = (int64_t) s_u64_at (h + 48);
    size_t begin [3], end [3];
    for (int s = 0; s < 3; s++) {
        begin [s] = s_u64_at (h + 56 + 16 * s);
        end [s] = s_u64_at (h + 64 + 16 * s);
    }
    uint64_t strings_size = s_u64_at (h + 104);
    if (flags != 0 || s_u64_at (h + 120) != 0) {
        s_fail (&r, "reserved header fields are not zero (flags=%u)", flags);
        return NULL;
    }
    if (task > LB_DATASET_MULTICLASS
    ||  (task == LB_DATASET_BINARY && n_classes != 2)
    ||  (task == LB_DATASET_MULTICLASS && (n_classes < 3 || n_classes > 65536))
    ||  (task == LB_DATASET_REGRESSION && n_classes != 0)) {
        s_fail (&r, "bad task %u with n_classes %u", task, n_classes);
        return NULL;
    }
    if (cols > LB_DATASET_MAX_COLS) {
        s_fail (&r, "cols %u over the limit %d", cols, LB_DATASET_MAX_COLS);
        return NULL;
    }
    //  Sizes: every count is bounded by the file size before any product.
    if (rows > size / 8 || n_entities > size / 5 || strings_size > size
    ||  strings_size % 8 != 0) {
        s_fail (&r, "header sizes do not fit the file (rows=%llu entities=%u strings=%llu)",
                (unsigned long long) rows, n_entities, (unsigned long long) strings_size);
        return NULL;
    }
    size_t want = LB_DATASET_HEADER_SIZE + (size_t) strings_size + 8 * rows
                + s_pad8 (4 * rows) + s_pad8 (4 * rows * cols) + 3 * s_pad8 (4 * rows) + 32;
    if (want != size) {
        s_fail (&r, "sections need %zu bytes, file has %zu", want, size);
        return NULL;
    }
    //  Strings section.
    size_t limit = LB_DATASET_HEADER_SIZE + (size_t) strings_size;
    r.pos = LB_DATASET_HEADER_SIZE;
    char *label = s_get_str (&r, limit, LB_DATASET_MAX_NAME, "label name");
    if (!label)
        return NULL;
    if (!lb_dataset_name_ok (label)) {
        s_fail (&r, "bad label name");
        free (label);
        return NULL;
    }
    self = lb_xcalloc (1, sizeof *self);
    self->task = (lb_dataset_task_t) task;
    self->n_classes = (int) n_classes;
    self->label = label;
    self->names = lb_xcalloc (cols ? cols : 1, sizeof (char *));
    self->types = lb_xcalloc (cols ? cols : 1, sizeof (lb_dataset_coltype_t));
    self->meta = s_get_str (&r, limit, LB_DATASET_MAX_META, "meta");
    if (!self->meta)
        goto fail;
    if (!s_utf8_ok ((const uint8_t *) self->meta, strlen (self->meta))) {
        s_fail (&r, "meta is not valid UTF-8");
        goto fail;
    }
    for (uint32_t i = 0; i < cols; i++) {
        if (r.pos + 1 > limit) {
            s_fail (&r, "strings section ends before column %u", i);
            goto fail;
        }
        uint8_t t = data [r.pos++];
        if (t > LB_DATASET_CATEGORY) {
            s_fail (&r, "column %u: unknown type %u", i, t);
            goto fail;
        }
        self->types [i] = (lb_dataset_coltype_t) t;
        char *name = s_get_str (&r, limit, LB_DATASET_MAX_NAME, "column name");
        if (!name)
            goto fail;
        self->names [self->cols++] = name;
        if (!lb_dataset_name_ok (name)) {
            s_fail (&r, "column %u: bad name", i);
            goto fail;
        }
        for (uint32_t j = 0; j < i; j++)
            if (strcmp (self->names [j], name) == 0) {
                s_fail (&r, "column %u: duplicate name %s", i, name);
                goto fail;
            }
    }
    self->entity_names = lb_xcalloc (n_entities ? n_entities : 1, sizeof (char *));
    self->entities_max = n_entities;
    for (uint32_t i = 0; i < n_entities; i++) {
        char *name = s_get_str (&r, limit, LB_DATASET_MAX_NAME, "entity name");
        if (!name)
            goto fail;
        self->entity_names [self->n_entities++] = name;
        if (!lb_dataset_name_ok (name)) {
            s_fail (&r, "entity %u: bad name", i);
            goto fail;
        }
    }
    //  Duplicate entity names: sort a copy of the pointers.
    if (n_entities > 1) {
        const char **sorted = lb_xmalloc (n_entities * sizeof (char *));
        memcpy (sorted, self->entity_names, n_entities * sizeof (char *));
        qsort (sorted, n_entities, sizeof (char *), s_strcmp_p);
        for (uint32_t i = 1; i < n_entities; i++)
            if (strcmp (sorted [i - 1], sorted [i]) == 0) {
                s_fail (&r, "duplicate entity name %s", sorted [i]);
                free (sorted);
                goto fail;
            }
        free (sorted);
    }
    while (r.pos < limit)
        if (data [r.pos++] != 0) {
            s_fail (&r, "strings section has %zu unread bytes", limit - r.pos + 1);
            goto fail;
        }
    //  Arrays.
    self->rows = self->rows_max = rows;
    size_t n = rows ? rows : 1;
    self->ts = lb_xmalloc (n * 8);
    self->entity = lb_xmalloc (n * 4);
    self->x = lb_xmalloc (n * (cols ? cols : 1) * 4);
    self->y = lb_xmalloc (n * 4);
    self->baseline = lb_xmalloc (n * 4);
    self->fwd = lb_xmalloc (n * 4);
    const uint8_t *p = data + limit;
    memcpy (self->ts, p, 8 * rows);             p += 8 * rows;
    memcpy (self->entity, p, 4 * rows);         p += s_pad8 (4 * rows);
    memcpy (self->x, p, 4 * rows * cols);       p += s_pad8 (4 * rows * cols);
    memcpy (self->y, p, 4 * rows);              p += s_pad8 (4 * rows);
    memcpy (self->baseline, p, 4 * rows);       p += s_pad8 (4 * rows);
    memcpy (self->fwd, p, 4 * rows);            p += s_pad8 (4 * rows);
    assert ((size_t) (p - data) == size - 32);
    for (size_t i = 0; i < rows; i++) {
        if (i && self->ts [i] < self->ts [i - 1]) {
            s_fail (&r, "row %zu: ts %lld before the previous row's %lld", i,
                    (long long) self->ts [i], (long long) self->ts [i - 1]);
            goto fail;
        }
        if (self->entity [i] >= n_entities) {
            s_fail (&r, "row %zu: entity id %u, only %u entities", i, self->entity [i], n_entities);
            goto fail;
        }
        if (!s_label_ok (self->task, self->n_classes, self->y [i])) {
            s_fail (&r, "row %zu: label %g does not fit the task", i, (double) self->y [i]);
            goto fail;
        }
        if (!s_baseline_ok (self->task, self->n_classes, self->baseline [i])) {
            s_fail (&r, "row %zu: baseline %g does not fit the task", i, (double) self->baseline [i]);
            goto fail;
        }
        if (isinf (self->fwd [i])) {
            s_fail (&r, "row %zu: fwd_return is infinite", i);
            goto fail;
        }
        const float *x = self->x + i * cols;
        for (size_t c = 0; c < cols; c++)
            if (isinf (x [c])) {
                s_fail (&r, "row %zu: column %s is infinite", i, self->names [c]);
                goto fail;
            }
    }
    char why [256];
    if (s_check_splits (self->ts, rows, begin, end, horizon_s, embargo_s, why, sizeof why)) {
        s_fail (&r, "%s", why);
        goto fail;
    }
    self->horizon_s = horizon_s;
    self->embargo_s = embargo_s;
    memcpy (self->split_begin, begin, sizeof begin);
    memcpy (self->split_end, end, sizeof end);
    self->split_set = true;
    return self;
fail:
    lb_dataset_destroy (&self);
    return NULL;
}

// ---------------------------------------------------------------- files

int
lb_dataset_save (lb_dataset_t *self, const char *path, char *sha256)
{
    assert (self && path);
    uint8_t *data = NULL;
    size_t size = 0;
    int rc = -1, fd = -1;
    char *tmp = lb_xasprintf ("%s.tmp.%ld", path, (long) getpid ());
    if (lb_dataset_encode (self, &data, &size))
        goto out;
    fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        lb_log_error ("dataset: cannot create %s: %s", tmp, strerror (errno));
        goto out;
    }
    for (size_t done = 0; done < size; ) {
        ssize_t n = write (fd, data + done, size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            lb_log_error ("dataset: cannot write %s: %s", tmp, n < 0 ? strerror (errno) : "short write");
            goto out;
        }
        done += (size_t) n;
    }
    if (fsync (fd) || close (fd)) {
        fd = -1;
        lb_log_error ("dataset: cannot sync %s: %s", tmp, strerror (errno));
        goto out;
    }
    fd = -1;
    if (rename (tmp, path)) {
        lb_log_error ("dataset: cannot rename %s to %s: %s", tmp, path, strerror (errno));
        goto out;
    }
    if (sha256) {
        uint8_t digest [32];
        crypto_hash_sha256 (digest, data, size);
        for (int i = 0; i < 32; i++)
            snprintf (sha256 + 2 * i, 3, "%02x", digest [i]);
    }
    rc = 0;
out:
    if (fd >= 0)
        close (fd);
    if (rc)
        unlink (tmp);
    free (tmp);
    free (data);
    return rc;
}

lb_dataset_t *
lb_dataset_load (const char *path, char *error, size_t error_size)
{
    assert (path);
    char why [512] = "";
    lb_dataset_t *self = NULL;
    uint8_t *data = NULL;
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat (fd, &st)) {
        snprintf (why, sizeof why, "cannot open: %s", strerror (errno));
        goto out;
    }
    if (!S_ISREG (st.st_mode)) {
        snprintf (why, sizeof why, "not a regular file");
        goto out;
    }
    size_t size = (size_t) st.st_size;
    data = lb_xmalloc (size);
    for (size_t done = 0; done < size; ) {
        ssize_t n = read (fd, data + done, size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n < 0) {
            snprintf (why, sizeof why, "cannot read: %s", strerror (errno));
            goto out;
        }
        if (n == 0) {
            size = done;            //  shrank under us: decode says truncated
            break;
        }
        done += (size_t) n;
    }
    self = lb_dataset_decode (data, size, why, sizeof why);
out:
    if (!self) {
        lb_log_error ("dataset: %s: %s", path, why);
        if (error && error_size)
            snprintf (error, error_size, "%s: %s", path, why);
    }
    if (fd >= 0)
        close (fd);
    free (data);
    return self;
}

// ---------------------------------------------------------------- selftest

//  Rewrites the checksum after a deliberate edit, so field checks are reached.
static void
s_rehash (uint8_t *data, size_t size)
{
    crypto_hash_sha256 (data + size - 32, data, size - 32);
}

static void
s_expect_reject (const uint8_t *data, size_t size, const char *want, bool verbose)
{
    char why [256] = "";
    lb_dataset_t *ds = lb_dataset_decode (data, size, why, sizeof why);
    if (verbose)
        fprintf (stderr, "  want '%s': %s\n", want, ds ? "accepted" : why);
    assert (!ds);
    assert (strstr (why, want));
}

void
lb_dataset_test (bool verbose)
{
    const char *names [] = { "rsi_14", "news_present", "sector" };
    lb_dataset_coltype_t types [] = { LB_DATASET_NUMERIC, LB_DATASET_FLAG, LB_DATASET_CATEGORY };
    lb_dataset_t *ds = lb_dataset_new (LB_DATASET_BINARY, 2, "pattern_success", 3, names, types);
    assert (lb_dataset_name_ok ("MSFT") && !lb_dataset_name_ok ("a b") && !lb_dataset_name_ok (""));
    uint32_t a = lb_dataset_entity (ds, "AAA");
    uint32_t b = lb_dataset_entity (ds, "BBB");
    assert (a == 0 && b == 1 && lb_dataset_entity (ds, "AAA") == 0);
    assert (lb_dataset_set_horizon (ds, 3 * 3600, 3600) == -1);
    assert (lb_dataset_set_horizon (ds, 3 * 3600, 4 * 3600) == 0);
    lb_dataset_set_meta (ds, "{\"task\":\"selftest\",\"note\":\"caf\xc3\xa9\"}");
    int64_t t0 = 1700000000;
    for (int h = 0; h < 200; h++)
        for (uint32_t e = 0; e < 2; e++) {
            float x [3] = { (float) h, (float) ((h + e) % 2), (float) e };
            if (h % 7 == 0)
                x [0] = NAN;            //  missing stays missing
            float y = (float) ((h * 3 + e) % 2);
            float base = h % 5 == 0 ? NAN : (float) (h % 2);
            assert (lb_dataset_append (ds, t0 + h * 3600, e, x, y, base, 0.01f * (float) (h % 3 - 1)) == 0);
        }
    //  Bad rows.
    float x [3] = { 1, 0, 0 };
    assert (lb_dataset_append (ds, t0, 0, x, 1, 0, 0) == -1);               //  back in time
    assert (lb_dataset_append (ds, t0 + 999 * 3600, 7, x, 1, 0, 0) == -1);  //  unknown entity
    assert (lb_dataset_append (ds, t0 + 999 * 3600, 0, x, 0.5f, 0, 0) == -1);
    assert (lb_dataset_append (ds, t0 + 999 * 3600, 0, x, 1, 2, 0) == -1);
    assert (lb_dataset_append (ds, t0 + 999 * 3600, 0, x, 1, 0, INFINITY) == -1);
    x [0] = -INFINITY;
    assert (lb_dataset_append (ds, t0 + 999 * 3600, 0, x, 1, 0, 0) == -1);
    assert (lb_dataset_rows (ds) == 400);

    //  No splits yet: refuses to encode.
    uint8_t *data;
    size_t size;
    assert (lb_dataset_encode (ds, &data, &size) == -1);

    //  Windows: 120 h train, 24 h valid, 24 h test, 4 h embargo, ending after the last row.
    lb_dataset_windows_t w;
    int64_t end = t0 + 200 * 3600;
    lb_dataset_windows_back (end, 120 * 3600, 24 * 3600, 24 * 3600, 4 * 3600, &w);
    assert (w.to [LB_DATASET_TRAIN] + 4 * 3600 == w.from [LB_DATASET_VALID]);
    assert (w.to [LB_DATASET_VALID] + 4 * 3600 == w.from [LB_DATASET_TEST]);
    assert (lb_dataset_split_windows (ds, &w) == 0);
    size_t sb, se, vb, ve, tb, te;
    lb_dataset_split (ds, LB_DATASET_TRAIN, &sb, &se);
    lb_dataset_split (ds, LB_DATASET_VALID, &vb, &ve);
    lb_dataset_split (ds, LB_DATASET_TEST, &tb, &te);
    const int64_t *ts = lb_dataset_ts (ds);
    assert (se - sb == 240 && ve - vb == 48 && te - tb == 48);
    assert (ts [vb] - ts [se - 1] >= 4 * 3600 && ts [tb] - ts [ve - 1] >= 4 * 3600);
    assert (ts [te - 1] < end && ts [sb] >= w.from [LB_DATASET_TRAIN]);

    //  Overlapping or too-close windows are refused: the Catalyst leak cannot happen.
    lb_dataset_windows_t bad = w;
    bad.from [LB_DATASET_VALID] = bad.to [LB_DATASET_TRAIN] - 3600;
    assert (lb_dataset_split_windows (ds, &bad) == -1);
    size_t rb [3] = { 0, 100, 300 }, re [3] = { 101, 200, 400 };
    assert (lb_dataset_set_splits (ds, rb, re) == -1);               //  overlap
    re [0] = 100;
    assert (lb_dataset_set_splits (ds, rb, re) == -1);               //  gap 0 s < embargo
    lb_dataset_windows_t empty = w;
    empty.from [LB_DATASET_TRAIN] -= 10000 * 3600;
    empty.to [LB_DATASET_TRAIN] = empty.from [LB_DATASET_TRAIN] + 3600;
    assert (lb_dataset_split_windows (ds, &empty) == -1);            //  too few rows
    assert (lb_dataset_split_windows (ds, &w) == 0);

    //  Round trip.
    assert (lb_dataset_encode (ds, &data, &size) == 0);
    char why [256];
    lb_dataset_t *back = lb_dataset_decode (data, size, why, sizeof why);
    assert (back);
    assert (lb_dataset_rows (back) == 400 && lb_dataset_cols (back) == 3);
    assert (lb_dataset_task (back) == LB_DATASET_BINARY && lb_dataset_n_classes (back) == 2);
    assert (strcmp (lb_dataset_label (back), "pattern_success") == 0);
    assert (strcmp (lb_dataset_meta (back), lb_dataset_meta (ds)) == 0);
    assert (lb_dataset_horizon (back) == 3 * 3600 && lb_dataset_embargo (back) == 4 * 3600);
    assert (lb_dataset_column_index (back, "sector") == 2 && lb_dataset_column_index (back, "x") == -1);
    assert (lb_dataset_coltype (back, 1) == LB_DATASET_FLAG);
    assert (strcmp (lb_dataset_column (back, 0), "rsi_14") == 0);
    assert (lb_dataset_n_entities (back) == 2 && strcmp (lb_dataset_entity_name (back, 1), "BBB") == 0);
    assert (memcmp (lb_dataset_ts (back), lb_dataset_ts (ds), 400 * 8) == 0);
    assert (memcmp (lb_dataset_entities (back), lb_dataset_entities (ds), 400 * 4) == 0);
    assert (memcmp (lb_dataset_x (back), lb_dataset_x (ds), 400 * 3 * 4) == 0);   //  NaN bits too
    assert (memcmp (lb_dataset_y (back), lb_dataset_y (ds), 400 * 4) == 0);
    assert (memcmp (lb_dataset_baseline (back), lb_dataset_baseline (ds), 400 * 4) == 0);
    assert (memcmp (lb_dataset_fwd_return (back), lb_dataset_fwd_return (ds), 400 * 4) == 0);
    size_t b2, e2;
    lb_dataset_split (back, LB_DATASET_VALID, &b2, &e2);
    assert (b2 == vb && e2 == ve);
    lb_dataset_destroy (&back);

    //  Every truncation is refused.
    for (size_t n = 0; n < size; n += (n < 512 ? 1 : 97))
        assert (!lb_dataset_decode (data, n, why, sizeof why));
    s_expect_reject (data, size - 1, "truncated", verbose);
    //  Trailing bytes.
    uint8_t *longer = lb_xmalloc (size + 1);
    memcpy (longer, data, size);
    longer [size] = 0;
    s_expect_reject (longer, size + 1, "trailing", verbose);
    free (longer);
    //  Any flipped byte is caught by the checksum.
    uint8_t *copy = lb_xmalloc (size);
    for (size_t i = 8; i < size; i += 61) {
        memcpy (copy, data, size);
        copy [i] ^= 0x40;
        assert (!lb_dataset_decode (copy, size, why, sizeof why));
    }
    memcpy (copy, data, size);
    copy [0] = 'X';
    s_expect_reject (copy, size, "bad magic", verbose);
    memcpy (copy, data, size);
    copy [size / 2] ^= 1;
    s_expect_reject (copy, size, "checksum", verbose);
    //  A well-checksummed file with bad fields: each is named.
    struct { size_t off; uint64_t val; int width; const char *want; } edits [] = {
        { 8, 2, 4, "version" },
        { 12, 1, 4, "reserved" },
        { 28, 7, 4, "task" },
        { 32, 3, 4, "task" },
        { 24, LB_DATASET_MAX_COLS + 1, 4, "cols" },
        { 16, 401, 8, "need" },
        { 36, 3, 4, "entit" },
        { 48, 3600, 8, "embargo" },
        { 64, 300, 8, "inside split train" },           //  train end into valid
        { 72, 290, 8, "valid starts 7200s" },           //  valid begins inside the embargo
        { 88, 401, 8, "out of range" },
    };
    for (size_t k = 0; k < sizeof edits / sizeof edits [0]; k++) {
        memcpy (copy, data, size);
        memcpy (copy + edits [k].off, &edits [k].val, (size_t) edits [k].width);
        s_rehash (copy, size);
        s_expect_reject (copy, size, edits [k].want, verbose);
    }
    //  Bad rows behind a good checksum: time order, entity id, label, inf.
    size_t strings = (size_t) s_u64_at (data + 104);
    size_t ts_off = LB_DATASET_HEADER_SIZE + strings;
    size_t ent_off = ts_off + 8 * 400, x_off = ent_off + s_pad8 (4 * 400);
    size_t y_off = x_off + s_pad8 (4 * 400 * 3);
    int64_t early = t0 - 1;
    memcpy (copy, data, size);
    memcpy (copy + ts_off + 8 * 10, &early, 8);
    s_rehash (copy, size);
    s_expect_reject (copy, size, "before the previous", verbose);
    uint32_t ent = 9;
    memcpy (copy, data, size);
    memcpy (copy + ent_off + 4 * 3, &ent, 4);
    s_rehash (copy, size);
    s_expect_reject (copy, size, "entity id", verbose);
    float f = 0.5f;
    memcpy (copy, data, size);
    memcpy (copy + y_off + 4 * 5, &f, 4);
    s_rehash (copy, size);
    s_expect_reject (copy, size, "label", verbose);
    f = INFINITY;
    memcpy (copy, data, size);
    memcpy (copy + x_off + 4 * 7, &f, 4);
    s_rehash (copy, size);
    s_expect_reject (copy, size, "infinite", verbose);
    free (copy);

    //  Files: atomic save, load, a corrupt file named in the error.
    char *dir = lb_selftest_tmpdir ("lb_dataset");
    char *path = lb_xasprintf ("%s/d.pds", dir);
    char hex [65];
    assert (lb_dataset_save (ds, path, hex) == 0);
    assert (strlen (hex) == 64);
    back = lb_dataset_load (path, why, sizeof why);
    assert (back && lb_dataset_rows (back) == 400);
    lb_dataset_destroy (&back);
    FILE *file = fopen (path, "r+b");
    assert (file);
    assert (fseek (file, 200, SEEK_SET) == 0 && fputc ('!', file) != EOF);
    fclose (file);
    assert (!lb_dataset_load (path, why, sizeof why));
    assert (strstr (why, path) && strstr (why, "checksum"));
    assert (truncate (path, 100) == 0);
    assert (!lb_dataset_load (path, why, sizeof why) && strstr (why, "truncated"));
    char *missing = lb_xasprintf ("%s/none.pds", dir);
    assert (!lb_dataset_load (missing, why, sizeof why) && strstr (why, "cannot open"));
    char *nodir = lb_xasprintf ("%s/no/such/dir.pds", dir);
    assert (lb_dataset_save (ds, nodir, NULL) == -1);
    free (nodir);
    free (missing);
    free (path);
    lb_selftest_rmtree (dir);
    free (dir);

    //  Regression and multiclass labels.
    lb_dataset_t *reg = lb_dataset_new (LB_DATASET_REGRESSION, 0, "ret", 0, NULL, NULL);
    uint32_t e = lb_dataset_entity (reg, "X");
    assert (lb_dataset_append (reg, 10, e, NULL, -2.5f, NAN, NAN) == 0);
    assert (lb_dataset_append (reg, 20, e, NULL, NAN, NAN, NAN) == -1);
    size_t one_b [3] = { 0, 1, 1 }, one_e [3] = { 1, 1, 1 };
    assert (lb_dataset_set_splits (reg, one_b, one_e) == 0);
    uint8_t *rdata;
    size_t rsize;
    assert (lb_dataset_encode (reg, &rdata, &rsize) == 0);
    lb_dataset_t *rback = lb_dataset_decode (rdata, rsize, why, sizeof why);
    assert (rback && lb_dataset_y (rback) [0] == -2.5f);
    lb_dataset_destroy (&rback);
    free (rdata);
    lb_dataset_destroy (&reg);
    lb_dataset_t *mc = lb_dataset_new (LB_DATASET_MULTICLASS, 3, "regime", 0, NULL, NULL);
    e = lb_dataset_entity (mc, "X");
    assert (lb_dataset_append (mc, 10, e, NULL, 2, 1, 0) == 0);
    assert (lb_dataset_append (mc, 11, e, NULL, 3, 1, 0) == -1);
    lb_dataset_destroy (&mc);

    free (data);
    lb_dataset_destroy (&ds);
    assert (ds == NULL);
    lb_dataset_destroy (&ds);
}
