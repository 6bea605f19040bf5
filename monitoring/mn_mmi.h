/*  mn_mmi.h - the monitor's Majordomo client for the broker's mmi.* services.

    The monitor asks the broker for the truth (proto/PROTOCOL.md section 4.2)
    at start, after any gap (Redis down, events missed) and every
    monitor.catchup seconds: queues, workers, dead letters, counters, and
    single jobs. It speaks MDP 0.1 client framing over a DEALER socket
    ["", "MDPC01", service, frames...] and follows the Lazy Pirate pattern:
    a request that gets no answer within the timeout closes the socket (so
    no late reply is mistaken for the next one) and reports failure; the
    next request opens a fresh one. With CURVE configured the socket is a
    CURVE client with the monitor's certificate.
*/
#ifndef MN_MMI_H_INCLUDED
#define MN_MMI_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    char service [128];
    int64_t queued, delayed, leased, dead, workers, idle;
} mn_mmi_queue_t;

typedef struct {
    char id [256];              //  hex of the ROUTER identity
    char service [128];
    char proto [8];
    char state [8];             //  "idle" / "busy"
    char job [33];              //  "" when none
    int64_t idle_ms;
} mn_mmi_worker_t;

typedef struct {
    char id [33];
    char service [128];
    int64_t attempts;
    char error [512];
    int64_t dead_us;
} mn_mmi_dead_t;

typedef struct {
    char id [33];
    char service [128];
    char state [16];            //  queued delayed leased done dead cancelled; "gone" = 404
    int64_t attempts;
    char worker [256];
    char last_error [512];
    int64_t submitted_us;
} mn_mmi_job_t;

typedef struct {
    char name [64];
    int64_t value;
} mn_mmi_stat_t;

//  One consistent look at the broker (each list malloc'd, owned by the snapshot).
typedef struct {
    mn_mmi_queue_t *queues;   size_t nqueues;
    mn_mmi_worker_t *workers; size_t nworkers;
    mn_mmi_dead_t *dead;      size_t ndead;
    mn_mmi_stat_t *stats;     size_t nstats;
    int64_t taken_us;
} mn_snapshot_t;

//  Frees the lists; the snapshot is empty afterwards (releasing twice is harmless).
void mn_snapshot_release (mn_snapshot_t *snap);

typedef struct _mn_mmi_t mn_mmi_t;

//  Returns a client for the broker at endpoint. curve_secret is the path of
//  the monitor's certificate secret file and curve_server the broker's
//  public certificate file; both NULL (or "") for no CURVE. Returns NULL
//  after logging when a certificate cannot be read.
mn_mmi_t *mn_mmi_new (const char *endpoint, const char *curve_secret, const char *curve_server,
                      int timeout_ms);

//  Destroys the client. Accepts NULL; sets *self_p to NULL.
void mn_mmi_destroy (mn_mmi_t **self_p);

//  Takes a snapshot (queues, workers, dead letters, counters). Returns 0, or
//  -1 after logging why (no answer, bad reply); *snap is then empty.
int mn_mmi_snapshot (mn_mmi_t *self, mn_snapshot_t *snap);

//  Asks for one job. Returns 0 (state "gone" when the broker does not know
//  it), or -1 when the broker did not answer properly.
int mn_mmi_job (mn_mmi_t *self, const char *id, mn_mmi_job_t *job);

//  Sends mmi.cancel or mmi.requeue (action "cancel" / "requeue") for id.
//  Returns the broker's status code (200, 404, 409, 500, 501), or -1 when
//  it did not answer.
int mn_mmi_action (mn_mmi_t *self, const char *action, const char *id);

//  Decoders of the mmi reply bodies (exposed for the selftest and fuzzing).
//  Each returns 0, or -1 with the reason in err.
int mn_mmi_decode_queues (const void *data, size_t size, mn_snapshot_t *snap, char *err, size_t err_size);
int mn_mmi_decode_workers (const void *data, size_t size, mn_snapshot_t *snap, char *err, size_t err_size);
int mn_mmi_decode_dead (const void *data, size_t size, mn_snapshot_t *snap, char *err, size_t err_size);
int mn_mmi_decode_stats (const void *data, size_t size, mn_snapshot_t *snap, char *err, size_t err_size);
int mn_mmi_decode_job (const void *data, size_t size, mn_mmi_job_t *job, char *err, size_t err_size);

//  Selftest.
void mn_mmi_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
