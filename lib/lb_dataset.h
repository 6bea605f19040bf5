/*  lb_dataset.h - the dataset artifact: what fetch writes and train/evaluate read.

    A dataset is a table of rows ordered by time. Each row has
        ts          int64   Unix time in seconds (UTC) of the bar the row describes;
                            features use only data up to and including ts
        entity      uint32  index into the entity table (symbol names, "MSFT", ...)
        x[cols]     float32 feature values; NaN means missing (never silently 0)
        y           float32 the label: binary 0/1 (pattern_success), a class
                            0..n_classes-1, or a finite regression target
        baseline    float32 what the rule-based detector said for this row (0/1 for
                            binary, a class for multiclass, a value for regression),
                            NaN where no rule applies: the baseline evaluation
                            compares the models against
        fwd_return  float32 the return of the trade the row stands for over the
                            label horizon (for pattern rows: close[t+h]/close[t]-1 of
                            a long position taken at the close of the pattern bar);
                            NaN where unknown. The evaluator's backtest uses it.
    and three splits, train / valid / test, that are row ranges [begin, end) in
    that order, strictly in time: between two consecutive non-empty splits the
    timestamps differ by at least embargo_s, and embargo_s >= horizon_s (the
    farthest a label looks ahead). Rows between the splits (the embargo) belong
    to none. A reader never has to trust this: lb_dataset_decode checks it.

    File format, version 1 (all integers little-endian, sections 8-byte aligned):

        offset  size  field
        0       8     magic "PDSET\r\n\032"
        8       4     version (1)
        12      4     flags (0; reserved)
        16      8     rows
        24      4     cols
        28      4     task: 0 binary, 1 regression, 2 multiclass
        32      4     n_classes: 2 binary, >= 3 multiclass, 0 regression
        36      4     n_entities
        40      8     horizon_s (int64, >= 0)
        48      8     embargo_s (int64, >= horizon_s)
        56      48    split row ranges: train begin,end; valid begin,end; test begin,end (uint64)
        104     8     strings section size in bytes (multiple of 8)
        112     8     total file size in bytes
        120     8     reserved (0)
        128           strings section: a sequence of (uint32 length, bytes) items:
                        label name, meta (JSON text, may be empty),
                        then per column: uint8 type and the name,
                        then per entity: its name;
                      zero padding to a multiple of 8
                      ts          int64[rows]
                      entity      uint32[rows], padded to 8
                      x           float32[rows * cols] row-major, padded to 8
                      y           float32[rows], padded to 8
                      baseline    float32[rows], padded to 8
                      fwd_return  float32[rows], padded to 8
        size-32 32    SHA-256 of every byte before it

    Names are 1..255 bytes of printable ASCII without spaces; column and entity
    names are unique. Meta is at most 64 KiB of UTF-8.
    Column types: 0 numeric, 1 flag (0/1/NaN), 2 category (small integer codes).
*/
#ifndef LB_DATASET_H_INCLUDED
#define LB_DATASET_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LB_DATASET_MAGIC        "PDSET\r\n\032"
#define LB_DATASET_VERSION      1
#define LB_DATASET_HEADER_SIZE  128
#define LB_DATASET_MAX_NAME     255
#define LB_DATASET_MAX_META     65536
#define LB_DATASET_MAX_COLS     4096

typedef enum {
    LB_DATASET_BINARY = 0,
    LB_DATASET_REGRESSION = 1,
    LB_DATASET_MULTICLASS = 2
} lb_dataset_task_t;

typedef enum {
    LB_DATASET_NUMERIC = 0,
    LB_DATASET_FLAG = 1,
    LB_DATASET_CATEGORY = 2
} lb_dataset_coltype_t;

typedef enum {
    LB_DATASET_TRAIN = 0,
    LB_DATASET_VALID = 1,
    LB_DATASET_TEST = 2
} lb_dataset_split_t;

//  Time windows [from, to) in Unix seconds, one per split.
typedef struct {
    int64_t from [3];
    int64_t to [3];
} lb_dataset_windows_t;

typedef struct _lb_dataset_t lb_dataset_t;

//  Returns a new, empty dataset with cols feature columns named names[i] of
//  types types[i] (types may be NULL: all numeric). n_classes: 2 for binary,
//  >= 3 for multiclass, ignored (0) for regression. Bad names or arguments are
//  our bug (assert); check names from outside with lb_dataset_name_ok first.
lb_dataset_t *lb_dataset_new (lb_dataset_task_t task, int n_classes, const char *label,
                              size_t cols, const char *const *names,
                              const lb_dataset_coltype_t *types);

//  Destroys the dataset. Accepts NULL; sets *self_p to NULL.
void lb_dataset_destroy (lb_dataset_t **self_p);

//  Returns true if name can be a column, entity or label name.
bool lb_dataset_name_ok (const char *name);

//  Returns the id of entity name, adding it if new. name must pass
//  lb_dataset_name_ok (assert).
uint32_t lb_dataset_entity (lb_dataset_t *self, const char *name);

//  Appends one row (x has cols values). Returns 0, or -1 after logging why:
//  ts before the previous row's, unknown entity, a label that does not fit
//  the task, an infinite feature value, a baseline or fwd_return that is inf.
int lb_dataset_append (lb_dataset_t *self, int64_t ts, uint32_t entity, const float *x,
                       float y, float baseline, float fwd_return);

//  Sets the free-form metadata (JSON text: task name, sources, ...); copied.
void lb_dataset_set_meta (lb_dataset_t *self, const char *json);

//  Sets how far (seconds) the label looks beyond a row's ts, and the embargo
//  (seconds) required between splits. Returns 0, or -1 if embargo_s < horizon_s
//  or either is negative.
int lb_dataset_set_horizon (lb_dataset_t *self, int64_t horizon_s, int64_t embargo_s);

//  Computes the default (Catalyst) windows ending at end_ts (exclusive): test
//  is the last test_s seconds, validation the valid_s before it, training the
//  train_s before that, each separated from the next by embargo_s.
void lb_dataset_windows_back (int64_t end_ts, int64_t train_s, int64_t valid_s,
                              int64_t test_s, int64_t embargo_s, lb_dataset_windows_t *windows);

//  Assigns rows to splits by the windows. Windows must be in order and
//  disjoint with gaps of at least the embargo. Rows outside every window
//  belong to no split. Returns 0, or -1 after logging why (windows overlap,
//  gap under the embargo, a split would be empty).
int lb_dataset_split_windows (lb_dataset_t *self, const lb_dataset_windows_t *windows);

//  Sets the split row ranges directly. Returns 0, or -1 after logging why
//  (ranges out of order or bounds, gap under the embargo).
int lb_dataset_set_splits (lb_dataset_t *self, const size_t begin [3], const size_t end [3]);

//  Accessors. Arrays and strings are borrowed until the dataset changes.
size_t lb_dataset_rows (lb_dataset_t *self);
size_t lb_dataset_cols (lb_dataset_t *self);
lb_dataset_task_t lb_dataset_task (lb_dataset_t *self);
int lb_dataset_n_classes (lb_dataset_t *self);
const char *lb_dataset_label (lb_dataset_t *self);
const char *lb_dataset_meta (lb_dataset_t *self);
int64_t lb_dataset_horizon (lb_dataset_t *self);
int64_t lb_dataset_embargo (lb_dataset_t *self);
const char *lb_dataset_column (lb_dataset_t *self, size_t col);
lb_dataset_coltype_t lb_dataset_coltype (lb_dataset_t *self, size_t col);
//  Returns the column index of name, or -1.
int lb_dataset_column_index (lb_dataset_t *self, const char *name);
size_t lb_dataset_n_entities (lb_dataset_t *self);
const char *lb_dataset_entity_name (lb_dataset_t *self, uint32_t entity);
const int64_t *lb_dataset_ts (lb_dataset_t *self);
const uint32_t *lb_dataset_entities (lb_dataset_t *self);
const float *lb_dataset_x (lb_dataset_t *self);          //  rows * cols, row-major
const float *lb_dataset_y (lb_dataset_t *self);
const float *lb_dataset_baseline (lb_dataset_t *self);
const float *lb_dataset_fwd_return (lb_dataset_t *self);
//  The row range [*begin, *end) of a split.
void lb_dataset_split (lb_dataset_t *self, lb_dataset_split_t split, size_t *begin, size_t *end);

//  Encodes the dataset in the file format. Returns 0 and sets *data (caller
//  frees) and *size, or -1 after logging why (no splits set, or a check fails).
int lb_dataset_encode (lb_dataset_t *self, uint8_t **data, size_t *size);

//  Decodes and validates every field of data. Returns a new dataset, or NULL
//  with a one-line reason in error (if not NULL; "truncated: ...", "bad
//  checksum", "split valid starts 3 s after train ends, embargo is 3600 s").
//  Does not log: the caller has the context.
lb_dataset_t *lb_dataset_decode (const uint8_t *data, size_t size, char *error, size_t error_size);

//  Writes the encoded dataset to path atomically (a temporary file, fsync,
//  rename): a crash leaves the old file or none, never half of one. If sha256
//  is not NULL it receives the hex SHA-256 of the whole file (65 bytes).
//  Returns 0, or -1 after logging why.
int lb_dataset_save (lb_dataset_t *self, const char *path, char *sha256);

//  Reads and decodes path. Returns the dataset, or NULL after logging
//  "path: reason" (also written to error if not NULL).
lb_dataset_t *lb_dataset_load (const char *path, char *error, size_t error_size);

//  Selftest.
void lb_dataset_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
