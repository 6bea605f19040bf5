/*  bk_jobs.h - the broker's jobs: table, per-service queues, state changes,
    and their journal records (PROTOCOL.md sections 5 and 6).

    Every job lives in memory here; durable ones (titanic) also write a
    journal record for every change of state, and the whole live set is
    rewritten at each checkpoint. Direct (non-durable) jobs never touch the
    journal. The store knows no sockets and no workers: a lease owner is an
    opaque pointer that the broker hands in.

    Body and result are "packed frames": u32 count, then per frame u32
    length and the bytes (little-endian). bk_jobs_pack builds one.
*/
#ifndef BK_JOBS_H_INCLUDED
#define BK_JOBS_H_INCLUDED

#include "bk_journal.h"
#include "lb_clock.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    BK_JOB_QUEUED = 1,
    BK_JOB_DELAYED,
    BK_JOB_LEASED,
    BK_JOB_DONE,
    BK_JOB_DEAD,
    BK_JOB_CANCELLED
} bk_job_state_t;

//  One job. Owned by the store; fields are read-only outside bk_jobs.c
//  except the broker's own: owner, client*, progress*.
typedef struct {
    char id [33];               //  32 lowercase hex + NUL
    char *service;
    bk_job_state_t state;
    bool durable;
    int priority;
    int attempts;               //  failed attempts so far
    int max_attempts;
    int64_t submitted_us;       //  wall clock
    int64_t not_before_us;      //  wall clock; 0 = now
    int64_t dead_us;            //  wall clock when dead
    uint64_t seq;               //  FIFO order within a priority
    uint8_t *body;              //  packed frames
    size_t body_size;
    uint8_t *result;            //  packed frames of the final reply, or NULL
    size_t result_size;
    char *error;                //  last error, or NULL
    //  Lease (not journaled)
    void *owner;                //  the worker holding it, or NULL
    int64_t leased_mono;        //  when leased (monotonic µs)
    int64_t lease_until;        //  lease deadline (monotonic µs)
    //  Broker's per-job data (not journaled)
    uint8_t *client;            //  direct request: client ROUTER identity
    size_t client_size;
    int client_version;         //  its MDP version
    uint8_t *progress;          //  last PARTIAL body (packed), or NULL
    size_t progress_size;
    //  Store internals
    size_t heap_pos;
    int heap;                   //  0 none, 1 queue, 2 delayed
} bk_job_t;

//  Retry policy.
typedef struct {
    double retry_base;          //  seconds
    double retry_max;           //  seconds
} bk_jobs_policy_t;

//  Per-service counts for mmi.queues.
typedef struct {
    const char *service;
    int queued, delayed, leased, dead;
} bk_jobs_counts_t;

typedef struct _bk_jobs_t bk_jobs_t;

//  Creates a store. journal may be NULL (nothing durable); it is borrowed.
//  clock is copied.
bk_jobs_t *bk_jobs_new (bk_journal_t *journal, const lb_clock_t *clock, bk_jobs_policy_t policy);

//  Frees every job. Accepts NULL.
void bk_jobs_destroy (bk_jobs_t **self_p);

//  Replays the journal into the store; jobs that were leased come back
//  queued. Returns the number of live jobs recovered, or -1.
int64_t bk_jobs_recover (bk_jobs_t *self, bk_journal_stats_t *stats);

//  Writes a checkpoint of every live durable job. Returns 0 or -1.
int bk_jobs_checkpoint (bk_jobs_t *self);

//  Bytes of live durable data (bodies, results), for checkpoint policy.
int64_t bk_jobs_live_bytes (bk_jobs_t *self);

//  Creates and queues a job (delayed until not_before_us when that is in
//  the future) with a new random id. Copies body. Durable jobs append a
//  SUBMIT record. Returns the job (owned by the store).
bk_job_t *bk_jobs_submit (bk_jobs_t *self, const char *service, int priority,
                          int max_attempts, int64_t not_before_us,
                          const uint8_t *body, size_t body_size, bool durable);

//  Returns the job with this id, or NULL.
bk_job_t *bk_jobs_find (bk_jobs_t *self, const char *id);

//  Returns the next job to dispatch for service (highest priority, oldest),
//  without removing it, or NULL.
bk_job_t *bk_jobs_peek (bk_jobs_t *self, const char *service);

//  Leases a queued job to owner until lease_until (monotonic µs).
void bk_jobs_lease (bk_jobs_t *self, bk_job_t *job, void *owner, int64_t lease_until);

//  A leased job finished: stores result (copied), state done.
void bk_jobs_done (bk_jobs_t *self, bk_job_t *job, const uint8_t *result, size_t size);

//  A leased job failed (error copied). permanent or attempts used up: dead.
//  Otherwise delayed by the backoff. Returns the new state; *delay_us gets
//  the backoff (may be NULL).
bk_job_state_t bk_jobs_fail (bk_jobs_t *self, bk_job_t *job, const char *error,
                             bool permanent, int64_t *delay_us);

//  Puts a leased job back in its queue without counting an attempt.
void bk_jobs_release (bk_jobs_t *self, bk_job_t *job);

//  Cancels a queued, delayed or leased job. Returns 0, or -1 when it has
//  already finished (done, dead, cancelled).
int bk_jobs_cancel (bk_jobs_t *self, bk_job_t *job);

//  Requeues a dead job with attempts reset. Returns 0, or -1 if not dead.
int bk_jobs_requeue (bk_jobs_t *self, bk_job_t *job);

//  Forgets a job (cancelling it first if needed). job is invalid after.
void bk_jobs_close (bk_jobs_t *self, bk_job_t *job);

//  Moves delayed jobs whose time has come into their queues. Returns the
//  number moved.
int bk_jobs_tick (bk_jobs_t *self);

//  Calls fn for each job (any state). fn must not change the store.
void bk_jobs_each (bk_jobs_t *self, void (*fn) (void *arg, bk_job_t *job), void *arg);

//  Fills counts for every service with jobs; returns how many (at most max).
size_t bk_jobs_counts (bk_jobs_t *self, bk_jobs_counts_t *counts, size_t max);

//  Number of jobs in the store.
size_t bk_jobs_size (bk_jobs_t *self);

//  Returns the state's name ("queued", ...).
const char *bk_job_state_name (bk_job_state_t state);

//  Packs count frames into a new buffer (caller frees); *size_p gets its size.
uint8_t *bk_jobs_pack (const uint8_t *const *data, const size_t *sizes, size_t count, size_t *size_p);

//  Walks packed frames: returns the number of frames, or -1 when packed is
//  malformed. fn (may be NULL) is called for each frame.
int bk_jobs_unpack (const uint8_t *packed, size_t size,
                    void (*fn) (void *arg, const uint8_t *data, size_t size), void *arg);

//  Decodes one journal record into a scratch store (for the fuzz target).
//  Returns 0 or -1.
int bk_jobs_apply_record (bk_jobs_t *self, int type, const uint8_t *data, size_t size);

//  Selftest.
void bk_jobs_test (bool verbose);

#endif
