/*  pr_job.h - the job envelope, the result and the progress report: the
    msgpack bodies our scheduler, broker and workers exchange (see
    proto/PROTOCOL.md for where they travel). Stock Majordomo peers never see
    them parsed: to them they are opaque bytes.

    Every body is a msgpack map with "v" (= PR_JOB_VERSION) first:

    job      {v, id, run, step, attempt, deadline, service, needs_gpu, params}
               id        str   the submitter's idempotency key (e.g. "RUN/STEP/ATTEMPT")
               run, step str   the pipeline run and the step name ((run, step) keys the effect)
               attempt   uint  1 for the first try
               deadline  int   wall-clock microseconds since the epoch; 0 = none
               service   str   the service that runs it ("train", "train.gpu", ...)
               needs_gpu bool
               params    map   str -> str | int | float | bool  (the step's parameters)
    result   {v, id, status, outputs, metrics, error}
               status    str   "done" | "retry" (failed, may be retried) | "fail" (permanent)
               outputs   map   str -> str  (artifact URIs by name)
               metrics   map   str -> float
               error     map   {code: str, message: str}  (both "" when status is done)
    progress {v, id, percent, stage, message, metrics[, outputs]}
               percent   float 0..100
               outputs   map   str -> str, optional (absent when empty): values a
                               worker hands out while it still runs, e.g. the
                               NCCL unique id of a training group's rank 0
                               (docs/train.md); not part of the result

    Decoders accept exactly this: a map, every key known and of its type,
    required keys present, sizes within the limits below, no trailing bytes.
    They never abort on outside input: they return NULL and say why in err.
*/
#ifndef PR_JOB_H_INCLUDED
#define PR_JOB_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define PR_JOB_VERSION      1
#define PR_JOB_MAX_BODY     (1024 * 1024)   //  a whole encoded body
#define PR_JOB_MAX_STRING   (64 * 1024)     //  any one string value
#define PR_JOB_MAX_KEY      64              //  a map key
#define PR_JOB_MAX_ENTRIES  256             //  entries in params, outputs or metrics

//  --------------------------------------------------------------------------
//  pr_kv: an ordered list of key -> scalar (params, outputs, metrics)

typedef enum { PR_KV_STR, PR_KV_INT, PR_KV_REAL, PR_KV_BOOL } pr_kv_type_t;

typedef struct {
    char *key;
    pr_kv_type_t type;
    char *s;
    int64_t i;
    double d;
    bool b;
} pr_kv_entry_t;

typedef struct {
    pr_kv_entry_t *entries;
    size_t count;
} pr_kv_t;

//  Sets key (replacing an earlier value of the same key). Strings are copied.
void pr_kv_set_str (pr_kv_t *kv, const char *key, const char *value);
void pr_kv_set_int (pr_kv_t *kv, const char *key, int64_t value);
void pr_kv_set_real (pr_kv_t *kv, const char *key, double value);
void pr_kv_set_bool (pr_kv_t *kv, const char *key, bool value);

//  Returns the entry for key, or NULL.
const pr_kv_entry_t *pr_kv_find (const pr_kv_t *kv, const char *key);

//  Typed reads. str returns the borrowed string or NULL (missing or not a
//  string). The others return 0 and fill *out, or -1 when missing or of
//  another type (real also accepts an int).
const char *pr_kv_str (const pr_kv_t *kv, const char *key);
int pr_kv_int (const pr_kv_t *kv, const char *key, int64_t *out);
int pr_kv_real (const pr_kv_t *kv, const char *key, double *out);
int pr_kv_bool (const pr_kv_t *kv, const char *key, bool *out);

//  Frees every entry; the list is empty (and reusable) afterwards.
void pr_kv_release (pr_kv_t *kv);

//  --------------------------------------------------------------------------
//  Job envelope

typedef struct {
    char *id;
    char *run;
    char *step;
    uint32_t attempt;
    int64_t deadline_us;
    char *service;
    bool needs_gpu;
    pr_kv_t params;
} pr_job_t;

//  Returns a new job with attempt 1 and no params. Strings are copied.
pr_job_t *pr_job_new (const char *id, const char *run, const char *step, const char *service);

//  Destroys the job. Accepts NULL; sets *self_p to NULL.
void pr_job_destroy (pr_job_t **self_p);

//  Encodes the job. Returns a malloc'd buffer (caller frees) and its size.
uint8_t *pr_job_encode (const pr_job_t *self, size_t *size);

//  Decodes a job. Returns it (caller destroys), or NULL with the reason in err.
pr_job_t *pr_job_decode (const void *data, size_t size, char *err, size_t err_size);

//  --------------------------------------------------------------------------
//  Result

typedef enum { PR_STATUS_DONE, PR_STATUS_RETRY, PR_STATUS_FAIL } pr_status_t;

typedef struct {
    char *id;
    pr_status_t status;
    pr_kv_t outputs;            //  strings only
    pr_kv_t metrics;            //  reals only
    char *error_code;           //  "" when none
    char *error_message;        //  "" when none
} pr_result_t;

//  Returns a new result for job id.
pr_result_t *pr_result_new (const char *id, pr_status_t status);

//  Destroys the result. Accepts NULL; sets *self_p to NULL.
void pr_result_destroy (pr_result_t **self_p);

//  Sets the error (status should be RETRY or FAIL). Strings are copied.
void pr_result_set_error (pr_result_t *self, const char *code, const char *message);

//  Returns "done", "retry" or "fail"; and parses them (0, or -1 if unknown).
const char *pr_status_name (pr_status_t status);
int pr_status_parse (const char *name, pr_status_t *status);

//  Encodes / decodes, as for the job.
uint8_t *pr_result_encode (const pr_result_t *self, size_t *size);
pr_result_t *pr_result_decode (const void *data, size_t size, char *err, size_t err_size);

//  Returns true when data looks like one of our versioned bodies (a msgpack
//  map whose first key is "v"): a stock worker's reply does not.
bool pr_job_is_ours (const void *data, size_t size);

//  --------------------------------------------------------------------------
//  Progress

typedef struct {
    char *id;
    double percent;
    char *stage;
    char *message;
    pr_kv_t metrics;            //  reals only
    pr_kv_t outputs;            //  strings only; encoded only when not empty
} pr_progress_t;

pr_progress_t *pr_progress_new (const char *id, double percent, const char *stage, const char *message);
void pr_progress_destroy (pr_progress_t **self_p);
uint8_t *pr_progress_encode (const pr_progress_t *self, size_t *size);
pr_progress_t *pr_progress_decode (const void *data, size_t size, char *err, size_t err_size);

//  Selftest.
void pr_job_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
