/*  bk_workers.h - the broker's workers and services: who is registered
    under which key, which workers of a service wait for a job (longest idle
    first), each service's lease timeout and attempt limit (defaults with
    per-service overrides), and which workers have gone silent or overrun
    their lease. It sends nothing: bk_broker speaks MDP and decides.
*/
#ifndef BK_WORKERS_H_INCLUDED
#define BK_WORKERS_H_INCLUDED

#include "bk_jobs.h"

#include <czmq.h>
#include <stdbool.h>
#include <stdint.h>

//  A service: created on first use (a READY, a request, a lookup).
typedef struct {
    char *name;
    int workers;                //  registered workers
    int64_t lease_us;           //  lease timeout of its jobs
    int max_attempts;           //  attempt limit of its jobs
    zlistx_t *idle;             //  bk_worker_t waiting, longest idle first; owned here
} bk_service_t;

//  A registered worker.
typedef struct {
    char *key;                  //  hex of the ROUTER identity
    zframe_t *identity;
    char *service;
    int version;                //  MDP 1 or 2
    bk_job_t *job;              //  the job it holds, or NULL
    int64_t expiry;             //  monotonic µs: silent past this = gone
    bool hb_busy;               //  heartbeated or progressed during this job
    void *idle_handle;          //  in its service's idle list, or NULL
} bk_worker_t;

//  Defaults and overrides ("name=DURATION,..." / "name=N,..."; strings
//  borrowed for the registry's lifetime, checked by the caller beforehand).
typedef struct {
    double lease;               //  seconds
    const char *service_lease;
    int attempts;
    const char *service_attempts;
} bk_workers_policy_t;

typedef struct _bk_workers_t bk_workers_t;

//  Returns an empty registry.
bk_workers_t *bk_workers_new (const bk_workers_policy_t *policy);

//  Frees every worker and service. Accepts NULL.
void bk_workers_destroy (bk_workers_t **self_p);

//  Returns the service called name, creating it with its lease and attempt
//  limit. Borrowed, lives as long as the registry.
bk_service_t *bk_workers_service (bk_workers_t *self, const char *name);

//  Returns the service called name, or NULL when none was created yet.
bk_service_t *bk_workers_lookup_service (bk_workers_t *self, const char *name);

//  Iterates the services (NULL at the end). Do not create services while
//  iterating.
bk_service_t *bk_workers_first_service (bk_workers_t *self);
bk_service_t *bk_workers_next_service (bk_workers_t *self);

//  Registers a worker (identity copied) for service, idle, silent after
//  expiry. The key must not be registered. Returns the worker (borrowed).
bk_worker_t *bk_workers_add (bk_workers_t *self, const char *key, zframe_t *identity,
                             const char *service, int version, int64_t expiry);

//  Returns the worker registered under key, or NULL.
bk_worker_t *bk_workers_find (bk_workers_t *self, const char *key);

//  Forgets a worker (off its idle list, its service's count down) and
//  frees it; *worker_p comes back NULL. Its job, if any, is the caller's.
void bk_workers_remove (bk_workers_t *self, bk_worker_t **worker_p);

//  The worker holds no job now and waits, last in its service's line.
void bk_workers_idle (bk_workers_t *self, bk_worker_t *worker);

//  Takes the longest-idle worker of service off the idle list, or NULL.
bk_worker_t *bk_workers_take_idle (bk_workers_t *self, bk_service_t *service);

//  Iterates the workers (NULL at the end). Do not add or remove while
//  iterating: collect first (bk_workers_expired does).
bk_worker_t *bk_workers_first (bk_workers_t *self);
bk_worker_t *bk_workers_next (bk_workers_t *self);

//  Returns the number of registered workers.
size_t bk_workers_size (bk_workers_t *self);

//  Returns a new list (the caller destroys it) of the workers gone at now:
//  holding a job past its lease, or silent past their expiry while idle or
//  while heartbeating during a job (a busy worker that never heartbeats is
//  covered by its lease alone, as stock MDP workers do not heartbeat while
//  they work).
zlistx_t *bk_workers_expired (bk_workers_t *self, int64_t now);

//  Selftest.
void bk_workers_test (bool verbose);

#endif
