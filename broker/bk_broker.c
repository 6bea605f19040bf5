/*  bk_broker.c - the broker's loop: MDP routing, titanic, mmi, leases.

    One turn of the loop: wait for input or the next timer; take every
    message that is waiting (up to a batch); flush the journal once (group
    commit); send the replies that waited for it; dispatch queued jobs to
    idle workers; run timers (heartbeats, lease and liveness checks,
    delayed jobs, journal recovery, checkpoints).
*/
#include "bk_broker.h"

#include "bk_body.h"
#include "bk_events.h"
#include "bk_jobs.h"
#include "bk_journal.h"
#include "bk_workers.h"
#include "lb_clock.h"
#include "lb_config.h"
#include "lb_log.h"
#include "lb_mem.h"
#include "lb_selftest.h"
#include "pr_mdp.h"

#include <assert.h>
#include <czmq.h>
#include <errno.h>
#include <msgpack.h>
#include <string.h>

#define S_BATCH 4096            //  messages taken per turn at most
//  Records no reply waits for (a worker's outcome: DONE, RETRY, DEAD) are
//  synced with the next batch a reply needs, or at the latest this long
//  after they were journaled: a job that finished this recently runs again
//  after a crash (delivery is at least once anyway).
#define S_LAZY_US 10000
//  A batch is synced on the loop's own thread when the loop is quiet and the
//  last batch took less than this; otherwise on the writer thread, so that a
//  slow disk never holds up dispatching.
#define S_INLINE_US 1000

//  Counters (mmi.stats), in PROTOCOL.md section 8 order.
typedef enum {
    C_BAD_FRAMES, C_BAD_COMMAND, C_UNEXPECTED, C_OVERSIZE, C_BAD_REQUEST, C_BAD_RESULT,
    C_UNKNOWN_MMI, C_NOT_ALLOWED, C_JOURNAL_ERRORS, C_JOURNAL_CUT, C_SEND_FAILED,
    C_SUBMITTED, C_DISPATCHED, C_DONE, C_FAILED, C_DEAD, C_CANCELLED, C_LEASE_EXPIRED,
    C_CHECKPOINTS, C_COUNT
} s_counter_t;

static const char *s_counter_names [C_COUNT] = {
    "bad_frames", "bad_command", "unexpected", "oversize", "bad_request", "bad_result",
    "unknown_mmi", "not_allowed", "journal_errors", "journal_cut", "send_failed",
    "submitted", "dispatched", "done", "failed", "dead", "cancelled", "lease_expired",
    "checkpoints"
};

//  Where a client reply goes.
typedef struct {
    zframe_t *identity;
    int version;
    char service [PR_MDP_SERVICE_MAX + 1];
} s_client_t;

//  A reply that waits for the journal.
typedef struct {
    s_client_t client;
    zmsg_t *reply;              //  status frame and data frames
    bk_job_t *submitted;        //  the job this reply accepts, or NULL
    uint64_t batch;             //  the journal batch it waits for
} s_deferred_t;

struct _bk_broker_t {
    bk_broker_config_t cfg;
    char *endpoint;
    zsock_t *router;
    zactor_t *auth;
    zmq_pollitem_t items [2];   //  the ROUTER, the journal writer's pipe
    bk_journal_t *journal;
    bk_jobs_t *jobs;
    bk_events_t *events;
    lb_clock_t clock;
    bk_workers_t *workers;      //  workers and services
    zlistx_t *deferred;         //  s_deferred_t
    int64_t hb_us;
    int64_t hb_at, tick_at, recover_at;
    int64_t lazy_at;            //  sync records no reply waits for by then; 0: none
    int quiet;                  //  turns in a row that took at most one message
    int64_t flush_at;           //  when the batch in flight was handed out
    int64_t flush_us;           //  how long the last batch took to sync
    int64_t counters [C_COUNT];
    int64_t recovered;
    int64_t warn_window, warn_count;
};

//  --------------------------------------------------------------------------
//  Small helpers

static int64_t
s_now (bk_broker_t *self)
{
    return lb_clock_mono (&self->clock);
}

static int64_t
s_wall (bk_broker_t *self)
{
    return lb_clock_wall (&self->clock);
}

//  Rate-limits warnings about bad input: 20 a second.
static bool
s_may_warn (bk_broker_t *self)
{
    int64_t now = s_now (self);
    if (now - self->warn_window > 1000000) {
        self->warn_window = now;
        self->warn_count = 0;
    }
    return self->warn_count++ < 20;
}

static void
s_count (bk_broker_t *self, s_counter_t c)
{
    self->counters [c]++;
}

bool
bk_broker_is_local (const char *ep)
{
    return strncmp (ep, "tcp://127.", 10) == 0 || strncmp (ep, "tcp://localhost:", 16) == 0
        || strncmp (ep, "tcp://[::1]:", 12) == 0 || strncmp (ep, "ipc://", 6) == 0
        || strncmp (ep, "inproc://", 9) == 0;
}

int
bk_broker_check_overrides (const char *list, bool seconds, const char *what)
{
    if (!list)
        return 0;
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        if (!*p)
            break;
        const char *end = strchr (p, ',');
        if (!end)
            end = p + strlen (p);
        const char *eq = memchr (p, '=', (size_t) (end - p));
        char value [64];
        if (!eq || !pr_mdp_service_valid ((const uint8_t *) p, (size_t) (eq - p))
        ||  (size_t) (end - eq - 1) >= sizeof value) {
            lb_log_error ("%s: '%.*s' is not NAME=VALUE", what, (int) (end - p), p);
            return -1;
        }
        snprintf (value, sizeof value, "%.*s", (int) (end - eq - 1), eq + 1);
        double d;
        int64_t n;
        if (seconds ? (lb_config_parse_seconds (value, &d) || d <= 0)
                    : (lb_config_parse_int (value, &n) || n < 1 || n > 1000)) {
            lb_log_error ("%s: bad value in '%.*s'", what, (int) (end - p), p);
            return -1;
        }
        p = end;
    }
    return 0;
}

//  Turns packed frames into zframes appended to msg.
static void
s_append_frame (void *arg, const uint8_t *data, size_t size)
{
    zmsg_addmem ((zmsg_t *) arg, data, size);
}

static void
s_append_packed (zmsg_t *msg, const uint8_t *packed, size_t size)
{
    int rc = bk_jobs_unpack (packed, size, s_append_frame, msg);
    assert (rc >= 0);           //  we packed it
}

//  Sends msg (destroyed in any case). Returns 0, or -1 when the peer is
//  gone or not keeping up (counted).
static int
s_send (bk_broker_t *self, zmsg_t **msg_p)
{
    int rc = zmsg_send (msg_p, self->router);
    if (rc) {
        s_count (self, C_SEND_FAILED);
        zmsg_destroy (msg_p);
    }
    return rc;
}

//  --------------------------------------------------------------------------
//  Sending to clients and workers

//  Sends status/data frames in reply (consumed) to client, in its framing.
static int
s_reply_client (bk_broker_t *self, const s_client_t *client, zmsg_t **reply_p, bool partial)
{
    zmsg_t *msg = *reply_p;
    *reply_p = NULL;
    if (client->version == 1) {
        if (partial) {
            zmsg_destroy (&msg);
            return 0;           //  0.1 has no partial replies
        }
        zmsg_pushstr (msg, client->service);
        zmsg_pushstr (msg, PR_MDPC01);
        zmsg_pushmem (msg, "", 0);
    }
    else {
        uint8_t cmd = (uint8_t) pr_mdp_cmd_byte (2, PR_MDP_CLIENT, partial ? PR_MDP_PARTIAL : PR_MDP_FINAL);
        zmsg_pushstr (msg, client->service);
        zmsg_pushmem (msg, &cmd, 1);
        zmsg_pushstr (msg, PR_MDPC02);
    }
    zframe_t *id = zframe_dup (client->identity);
    zmsg_prepend (msg, &id);
    return s_send (self, &msg);
}

static zmsg_t *
s_status (const char *status, const char *reason)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, status);
    if (reason)
        zmsg_addstr (msg, reason);
    return msg;
}

//  Sends a command to a worker: address and body (packed) for REQUEST.
static int
s_send_worker (bk_broker_t *self, bk_worker_t *w, pr_mdp_cmd_t cmd, const char *address,
               const uint8_t *body, size_t body_size)
{
    zmsg_t *msg = zmsg_new ();
    zframe_t *id = zframe_dup (w->identity);
    zmsg_append (msg, &id);
    if (w->version == 1)
        zmsg_addmem (msg, "", 0);
    zmsg_addstr (msg, pr_mdp_header (w->version, PR_MDP_WORKER));
    uint8_t byte = (uint8_t) pr_mdp_cmd_byte (w->version, PR_MDP_WORKER, cmd);
    zmsg_addmem (msg, &byte, 1);
    if (address) {
        zmsg_addstr (msg, address);
        zmsg_addmem (msg, "", 0);
        s_append_packed (msg, body, body_size);
    }
    return s_send (self, &msg);
}

//  Sends DISCONNECT to an unregistered peer in the given version.
static void
s_disconnect_peer (bk_broker_t *self, zframe_t *identity, int version)
{
    bk_worker_t tmp = { .identity = identity, .version = version };
    s_send_worker (self, &tmp, PR_MDP_DISCONNECT, NULL, NULL, 0);
}

//  --------------------------------------------------------------------------
//  Job outcomes

static void
s_event_job (bk_broker_t *self, const char *ev, bk_job_t *job)
{
    if (bk_events_enabled (self->events))
        bk_events_begin (self->events, ev, s_wall (self), job->id, job->service);
}

//  A finished direct job answers its client, then is forgotten.
static void
s_finish_direct (bk_broker_t *self, bk_job_t *job)
{
    if (job->durable || !job->client)
        return;
    s_client_t client = { .version = job->client_version };
    client.identity = zframe_new (job->client, job->client_size);
    snprintf (client.service, sizeof client.service, "%s", job->service);
    zmsg_t *reply = zmsg_new ();
    if (job->state == BK_JOB_DONE)
        s_append_packed (reply, job->result, job->result_size);
    else {
        size_t size;
        uint8_t *fail = bk_body_failure (job->id, job->state == BK_JOB_DEAD ? "dead" : "cancelled",
                                         job->error, &size);
        zmsg_addmem (reply, fail, size);
        free (fail);
    }
    if (s_reply_client (self, &client, &reply, false) && s_may_warn (self))
        lb_log_warn ("client gone before its reply job=%s", job->id);
    zframe_destroy (&client.identity);
    bk_jobs_close (self->jobs, job);
}

//  A leased job's attempt failed.
static void
s_job_failed (bk_broker_t *self, bk_job_t *job, const char *worker, const char *error, bool permanent)
{
    s_count (self, C_FAILED);
    s_event_job (self, "failed", job);
    bk_events_str (self->events, "worker", worker);
    bk_events_int (self->events, "attempt", job->attempts + 1);
    bk_events_str (self->events, "error", error);
    bk_events_send (self->events);
    int64_t delay = 0;
    if (bk_jobs_fail (self->jobs, job, error, permanent, &delay) == BK_JOB_DEAD) {
        s_count (self, C_DEAD);
        lb_log_info ("job dead job=%s service=%s attempts=%d error=\"%s\"", job->id, job->service,
                     job->attempts, error);
        s_event_job (self, "dead", job);
        bk_events_int (self->events, "attempt", job->attempts);
        bk_events_str (self->events, "error", error);
        bk_events_send (self->events);
        s_finish_direct (self, job);
    }
    else {
        s_event_job (self, "retried", job);
        bk_events_int (self->events, "attempt", job->attempts);
        bk_events_int (self->events, "delay_ms", delay / 1000);
        bk_events_send (self->events);
    }
}

//  --------------------------------------------------------------------------
//  Workers

//  Forgets a worker. Its job, if any, fails with reason (counted as an
//  attempt). disconnect: tell it so.
static void
s_worker_drop (bk_broker_t *self, bk_worker_t *w, const char *reason, bool disconnect)
{
    if (disconnect)
        s_send_worker (self, w, PR_MDP_DISCONNECT, NULL, NULL, 0);
    bk_job_t *job = w->job;
    w->job = NULL;
    if (job && job->state == BK_JOB_LEASED && job->owner == w)
        s_job_failed (self, job, w->key, reason, false);
    lb_log_info ("worker down worker=%s service=%s reason=\"%s\"", w->key, w->service, reason);
    bk_events_begin (self->events, "worker.down", s_wall (self), NULL, w->service);
    bk_events_str (self->events, "worker", w->key);
    bk_events_str (self->events, "reason", reason);
    bk_events_send (self->events);
    bk_workers_remove (self->workers, &w);
}

//  Cancels job; a leased one's worker is told to stop and forgotten.
static int
s_cancel (bk_broker_t *self, bk_job_t *job)
{
    bk_worker_t *w = job->state == BK_JOB_LEASED ? job->owner : NULL;
    if (bk_jobs_cancel (self->jobs, job))
        return -1;
    s_count (self, C_CANCELLED);
    s_event_job (self, "cancelled", job);
    bk_events_send (self->events);
    if (w) {
        w->job = NULL;
        s_worker_drop (self, w, "job cancelled", true);
    }
    return 0;
}

static void
s_unexpected (bk_broker_t *self, bk_worker_t *w, zframe_t *identity, int version, const char *what)
{
    s_count (self, C_UNEXPECTED);
    if (s_may_warn (self))
        lb_log_warn ("unexpected worker command, sending DISCONNECT worker=%s what=\"%s\"",
                     w ? w->key : "unregistered", what);
    if (w)
        s_worker_drop (self, w, what, true);
    else
        s_disconnect_peer (self, identity, version);
}

static bool
s_service_allowed (zframe_t *frame, const char *service)
{
    const char *allowed = zframe_meta (frame, "services");
    if (!allowed || strcmp (allowed, "*") == 0)
        return true;
    size_t len = strlen (service);
    const char *p = allowed;
    while (*p) {
        while (*p == ',' || *p == ' ')
            p++;
        const char *end = p;
        while (*end && *end != ',' && *end != ' ')
            end++;
        if ((size_t) (end - p) == len && memcmp (p, service, len) == 0)
            return true;
        p = end;
    }
    return false;
}

static void s_dispatch_svc (bk_broker_t *self, bk_service_t *svc);

static void
s_worker_msg (bk_broker_t *self, zframe_t *identity, zmsg_t *msg, const pr_frame_t *frames,
              const pr_mdp_msg_t *m, const char *key)
{
    bk_worker_t *w = bk_workers_find (self->workers, key);
    if (w && w->version != m->version) {
        s_unexpected (self, w, identity, m->version, "protocol version changed");
        return;
    }
    int64_t now = s_now (self);
    if (w)
        w->expiry = now + self->hb_us * self->cfg.liveness;

    switch (m->command) {
        case PR_MDP_READY: {
            if (w) {
                s_unexpected (self, w, identity, m->version, "second READY");
                return;
            }
            char service [PR_MDP_SERVICE_MAX + 1];
            snprintf (service, sizeof service, "%.*s", (int) m->service.size, (const char *) m->service.data);
            if (strncmp (service, "mmi.", 4) == 0 || strncmp (service, "titanic.", 8) == 0
            ||  !s_service_allowed (zmsg_first (msg), service)) {
                s_count (self, C_NOT_ALLOWED);
                if (s_may_warn (self))
                    lb_log_warn ("READY refused: service not allowed worker=%s service=%s", key, service);
                s_disconnect_peer (self, identity, m->version);
                return;
            }
            w = bk_workers_add (self->workers, key, identity, service, m->version,
                                now + self->hb_us * self->cfg.liveness);
            lb_log_info ("worker up worker=%s service=%s proto=%s", key, service,
                         pr_mdp_header (m->version, PR_MDP_WORKER));
            bk_events_begin (self->events, "worker.up", s_wall (self), NULL, service);
            bk_events_str (self->events, "worker", key);
            bk_events_str (self->events, "proto", pr_mdp_header (m->version, PR_MDP_WORKER));
            bk_events_send (self->events);
            return;
        }
        case PR_MDP_HEARTBEAT:
            if (!w) {
                s_unexpected (self, NULL, identity, m->version, "HEARTBEAT before READY");
                return;
            }
            if (w->job)
                w->hb_busy = true;
            return;
        case PR_MDP_DISCONNECT:
            if (w)
                s_worker_drop (self, w, "worker disconnected", false);
            return;
        case PR_MDP_REQUEST:
            s_unexpected (self, w, identity, m->version, "REQUEST sent to the broker");
            return;
        case PR_MDP_PARTIAL:
        case PR_MDP_FINAL: {
            const char *what = m->command == PR_MDP_FINAL ? "reply" : "partial";
            if (!w || !w->job || !pr_frame_is (m->address, w->job->id)) {
                s_unexpected (self, w, identity, m->version,
                              !w ? "reply from unregistered worker"
                                 : !w->job ? "reply without a request" : "reply for another job");
                return;
            }
            bk_job_t *job = w->job;
            const uint8_t *datas [m->nbody ? m->nbody : 1];
            size_t sizes [m->nbody ? m->nbody : 1];
            for (size_t i = 0; i < m->nbody; i++) {
                datas [i] = frames [m->body + i].data;
                sizes [i] = frames [m->body + i].size;
            }
            size_t psize;
            uint8_t *packed = bk_jobs_pack (datas, sizes, m->nbody, &psize);
            if (m->command == PR_MDP_PARTIAL) {
                w->hb_busy = true;
                job->lease_until = now + bk_workers_service (self->workers, job->service)->lease_us;
                free (job->progress);
                job->progress = packed;
                job->progress_size = psize;
                s_event_job (self, "progress", job);
                bk_events_str (self->events, "worker", w->key);
                bk_events_bin (self->events, "body", m->nbody ? datas [0] : NULL, m->nbody ? sizes [0] : 0);
                bk_events_send (self->events);
                if (!job->durable && job->client && job->client_version == 2) {
                    s_client_t client = { .version = 2 };
                    client.identity = zframe_new (job->client, job->client_size);
                    snprintf (client.service, sizeof client.service, "%s", job->service);
                    zmsg_t *reply = zmsg_new ();
                    s_append_packed (reply, packed, psize);
                    s_reply_client (self, &client, &reply, true);
                    zframe_destroy (&client.identity);
                }
                return;
            }
            (void) what;
            char error [512];
            bk_result_t r = m->nbody == 1 ? bk_body_result (datas [0], sizes [0], error, sizeof error)
                                          : BK_RESULT_OPAQUE;
            int64_t ms = (now - job->leased_mono) / 1000;
            bk_workers_idle (self->workers, w);
            if (r == BK_RESULT_OPAQUE || r == BK_RESULT_DONE) {
                s_count (self, C_DONE);
                bk_jobs_done (self->jobs, job, packed, psize);
                s_event_job (self, "done", job);
                bk_events_str (self->events, "worker", w->key);
                bk_events_int (self->events, "attempt", job->attempts + 1);
                bk_events_int (self->events, "ms", ms);
                bk_events_send (self->events);
                s_finish_direct (self, job);
            }
            else {
                if (r == BK_RESULT_MALFORMED) {
                    s_count (self, C_BAD_RESULT);
                    if (s_may_warn (self))
                        lb_log_warn ("worker sent a result that does not decode job=%s worker=%s error=\"%s\"",
                                     job->id, w->key, error);
                }
                s_job_failed (self, job, w->key, error [0] ? error : "failed", r == BK_RESULT_FAIL);
            }
            free (packed);
            //  The worker's next job goes now, not after the rest of this
            //  turn's messages: a worker holds one job at a time, so its
            //  idle time between jobs bounds the throughput.
            s_dispatch_svc (self, bk_workers_service (self->workers, w->service));
            return;
        }
    }
}

//  --------------------------------------------------------------------------
//  Services the broker serves itself

static void s_accepted (bk_broker_t *self, bk_job_t *job);

//  Queues a reply until the journal records made so far are on disk (group
//  commit); with nothing pending it goes at once.
static void
s_defer (bk_broker_t *self, const s_client_t *client, zmsg_t *reply, bk_job_t *submitted)
{
    uint64_t batch = bk_journal_batch (self->journal);
    if (!bk_journal_ok (self->journal)
    ||  (batch <= bk_journal_synced (self->journal) && zlistx_size (self->deferred) == 0)) {
        if (submitted)
            s_accepted (self, submitted);
        s_reply_client (self, client, &reply, false);
        return;
    }
    s_deferred_t *d = lb_xcalloc (1, sizeof *d);
    d->client = *client;
    d->client.identity = zframe_dup (client->identity);
    d->reply = reply;
    d->submitted = submitted;
    d->batch = batch;
    zlistx_add_end (self->deferred, d);
}

static void
s_answer (bk_broker_t *self, const s_client_t *client, zmsg_t *reply)
{
    s_reply_client (self, client, &reply, false);
}

static void
s_bad_request (bk_broker_t *self, const s_client_t *client, const char *reason)
{
    s_count (self, C_BAD_REQUEST);
    if (s_may_warn (self))
        lb_log_warn ("bad request service=%s reason=\"%s\"", client->service, reason);
    char text [256];
    snprintf (text, sizeof text, "%s: %s", client->service, reason);
    s_answer (self, client, s_status ("500", text));
}

static zmsg_t *
s_journal_down (bk_broker_t *self)
{
    char text [300];
    snprintf (text, sizeof text, "journal unavailable: %s", bk_journal_error (self->journal));
    return s_status ("500", text);
}

static bool
s_frame_id (pr_frame_t f, char *id)
{
    if (!pr_mdp_id_valid (f.data, f.size))
        return false;
    memcpy (id, f.data, 32);
    id [32] = 0;
    return true;
}

static void
s_titanic (bk_broker_t *self, const s_client_t *client, const pr_frame_t *body, size_t nbody)
{
    const char *name = client->service + 8;
    if (strcmp (name, "request") && strcmp (name, "reply") && strcmp (name, "close")) {
        s_count (self, C_UNKNOWN_MMI);
        s_answer (self, client, s_status ("501", NULL));
        return;
    }
    if (!bk_journal_ok (self->journal)) {
        s_answer (self, client, s_journal_down (self));
        return;
    }
    if (strcmp (name, "request") == 0) {
        int priority = 0, attempts = 0;
        double delay = 0;
        size_t i = 0;
        for (; i < nbody && memchr (body [i].data, '=', body [i].size); i++) {
            char opt [64];
            if (body [i].size >= sizeof opt) {
                s_bad_request (self, client, "option too long");
                return;
            }
            snprintf (opt, sizeof opt, "%.*s", (int) body [i].size, (const char *) body [i].data);
            char *eq = strchr (opt, '=');
            *eq = 0;
            int64_t n;
            if (strcmp (opt, "priority") == 0 && lb_config_parse_int (eq + 1, &n) == 0
            &&  n >= -1000 && n <= 1000)
                priority = (int) n;
            else
            if (strcmp (opt, "attempts") == 0 && lb_config_parse_int (eq + 1, &n) == 0
            &&  n >= 1 && n <= 100)
                attempts = (int) n;
            else
            if (strcmp (opt, "delay") == 0 && lb_config_parse_real (eq + 1, &delay) == 0
            &&  delay >= 0 && delay < 1e8)
                ;
            else {
                s_bad_request (self, client, "bad option (priority=-1000..1000, delay=SECONDS, attempts=1..100)");
                return;
            }
        }
        if (i == nbody) {
            s_bad_request (self, client, "service name missing");
            return;
        }
        if (!pr_mdp_service_valid (body [i].data, body [i].size)) {
            s_bad_request (self, client, "bad service name");
            return;
        }
        char service [PR_MDP_SERVICE_MAX + 1];
        snprintf (service, sizeof service, "%.*s", (int) body [i].size, (const char *) body [i].data);
        if (strncmp (service, "mmi.", 4) == 0 || strncmp (service, "titanic.", 8) == 0) {
            s_bad_request (self, client, "service name is reserved");
            return;
        }
        i++;
        size_t n = nbody - i;
        const uint8_t *datas [n ? n : 1];
        size_t sizes [n ? n : 1];
        for (size_t k = 0; k < n; k++) {
            datas [k] = body [i + k].data;
            sizes [k] = body [i + k].size;
        }
        size_t psize;
        uint8_t *packed = bk_jobs_pack (datas, sizes, n, &psize);
        bk_service_t *svc = bk_workers_service (self->workers, service);
        int64_t not_before = delay > 0 ? s_wall (self) + (int64_t) (delay * 1e6) : 0;
        bk_job_t *job = bk_jobs_submit (self->jobs, service, priority,
                                        attempts ? attempts : svc->max_attempts, not_before,
                                        packed, psize, true);
        free (packed);
        s_count (self, C_SUBMITTED);
        zmsg_t *reply = s_status ("200", job->id);
        s_defer (self, client, reply, job);
        return;
    }
    char id [33];
    if (nbody != 1 || !s_frame_id (body [0], id)) {
        s_bad_request (self, client, "expects one frame: a job id of 32 lowercase hex characters");
        return;
    }
    bk_job_t *job = bk_jobs_find (self->jobs, id);
    if (strcmp (name, "close") == 0) {
        if (job && job->durable) {      //  a direct request is its client's, not titanic's
            if (job->state == BK_JOB_LEASED || job->state == BK_JOB_QUEUED || job->state == BK_JOB_DELAYED)
                s_cancel (self, job);
            bk_jobs_close (self->jobs, job);
        }
        s_defer (self, client, s_status ("200", NULL), NULL);
        return;
    }
    //  reply
    zmsg_t *reply;
    if (!job || !job->durable)
        reply = s_status ("400", NULL);
    else
    if (job->state == BK_JOB_DONE) {
        reply = s_status ("200", NULL);
        s_append_packed (reply, job->result, job->result_size);
    }
    else
    if (job->state == BK_JOB_DEAD || job->state == BK_JOB_CANCELLED) {
        reply = s_status ("200", NULL);
        size_t size;
        uint8_t *fail = bk_body_failure (job->id, job->state == BK_JOB_DEAD ? "dead" : "cancelled",
                                         job->error, &size);
        zmsg_addmem (reply, fail, size);
        free (fail);
    }
    else
        reply = s_status ("300", NULL);
    s_defer (self, client, reply, NULL);
}

//  msgpack helpers for mmi replies
static void
s_pk_str (msgpack_packer *pk, const char *s)
{
    if (!s) {
        msgpack_pack_nil (pk);
        return;
    }
    size_t len = strlen (s);
    msgpack_pack_str (pk, len);
    msgpack_pack_str_body (pk, s, len);
}

static zmsg_t *
s_ok_packed (msgpack_sbuffer *sb)
{
    zmsg_t *reply = s_status ("200", NULL);
    zmsg_addmem (reply, sb->data, sb->size);
    msgpack_sbuffer_destroy (sb);
    return reply;
}

typedef struct {
    msgpack_packer *pk;
    const char *service;
    int64_t count;
    bk_job_t **dead;
    size_t ndead, cap;
} s_walk_t;

static void
s_collect_dead (void *arg, bk_job_t *job)
{
    s_walk_t *walk = arg;
    if (job->state != BK_JOB_DEAD || (walk->service && strcmp (walk->service, job->service)))
        return;
    if (walk->ndead == walk->cap) {
        walk->cap = walk->cap ? walk->cap * 2 : 64;
        walk->dead = lb_xrealloc (walk->dead, walk->cap * sizeof *walk->dead);
    }
    walk->dead [walk->ndead++] = job;
}

static int
s_newest_first (const void *a, const void *b)
{
    const bk_job_t *x = *(bk_job_t *const *) a, *y = *(bk_job_t *const *) b;
    return x->dead_us < y->dead_us ? 1 : x->dead_us > y->dead_us ? -1 : 0;
}

static void
s_mmi (bk_broker_t *self, const s_client_t *client, const pr_frame_t *body, size_t nbody)
{
    const char *name = client->service + 4;
    char arg [PR_MDP_SERVICE_MAX + 1] = "";
    if (nbody > 1 || (nbody == 1 && body [0].size > PR_MDP_SERVICE_MAX)) {
        s_bad_request (self, client, "expects at most one short argument frame");
        return;
    }
    if (nbody == 1)
        snprintf (arg, sizeof arg, "%.*s", (int) body [0].size, (const char *) body [0].data);
    for (char *p = arg; *p; p++)
        if ((unsigned char) *p < 0x20)
            *p = '?';
    msgpack_sbuffer sb;
    msgpack_packer pk;
    msgpack_sbuffer_init (&sb);
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);

    if (strcmp (name, "service") == 0) {
        bk_service_t *svc = bk_workers_lookup_service (self->workers, arg);
        msgpack_sbuffer_destroy (&sb);
        s_answer (self, client, s_status (svc && svc->workers > 0 ? "200" : "404", NULL));
    }
    else
    if (strcmp (name, "queues") == 0) {
        //  Services with jobs or workers.
        bk_jobs_counts_t counts [1024];
        size_t n = bk_jobs_counts (self->jobs, counts, 1024);
        zlistx_t *names = zlistx_new ();
        for (size_t i = 0; i < n; i++)
            zlistx_add_end (names, (void *) counts [i].service);
        for (bk_service_t *svc = bk_workers_first_service (self->workers); svc; svc = bk_workers_next_service (self->workers)) {
            bool seen = false;
            for (size_t i = 0; i < n && !seen; i++)
                seen = strcmp (counts [i].service, svc->name) == 0;
            if (!seen && svc->workers > 0)
                zlistx_add_end (names, svc->name);
        }
        msgpack_pack_map (&pk, zlistx_size (names));
        for (const char *s = zlistx_first (names); s; s = zlistx_next (names)) {
            bk_jobs_counts_t c = { s, 0, 0, 0, 0 };
            for (size_t i = 0; i < n; i++)
                if (strcmp (counts [i].service, s) == 0)
                    c = counts [i];
            bk_service_t *svc = bk_workers_lookup_service (self->workers, s);
            s_pk_str (&pk, s);
            msgpack_pack_map (&pk, 6);
            s_pk_str (&pk, "queued");  msgpack_pack_int (&pk, c.queued);
            s_pk_str (&pk, "delayed"); msgpack_pack_int (&pk, c.delayed);
            s_pk_str (&pk, "leased");  msgpack_pack_int (&pk, c.leased);
            s_pk_str (&pk, "dead");    msgpack_pack_int (&pk, c.dead);
            s_pk_str (&pk, "workers"); msgpack_pack_int (&pk, svc ? svc->workers : 0);
            s_pk_str (&pk, "idle");    msgpack_pack_int (&pk, svc ? (int) zlistx_size (svc->idle) : 0);
        }
        zlistx_destroy (&names);
        s_answer (self, client, s_ok_packed (&sb));
    }
    else
    if (strcmp (name, "workers") == 0) {
        size_t n = 0;
        for (bk_worker_t *w = bk_workers_first (self->workers); w; w = bk_workers_next (self->workers))
            n += !*arg || strcmp (arg, w->service) == 0;
        msgpack_pack_array (&pk, n);
        int64_t now = s_now (self);
        for (bk_worker_t *w = bk_workers_first (self->workers); w; w = bk_workers_next (self->workers)) {
            if (*arg && strcmp (arg, w->service))
                continue;
            msgpack_pack_map (&pk, 6);
            s_pk_str (&pk, "id");      s_pk_str (&pk, w->key);
            s_pk_str (&pk, "service"); s_pk_str (&pk, w->service);
            s_pk_str (&pk, "proto");   s_pk_str (&pk, pr_mdp_header (w->version, PR_MDP_WORKER));
            s_pk_str (&pk, "state");   s_pk_str (&pk, w->job ? "busy" : "idle");
            s_pk_str (&pk, "job");     s_pk_str (&pk, w->job ? w->job->id : NULL);
            s_pk_str (&pk, "idle_ms");
            msgpack_pack_int64 (&pk, (self->hb_us * self->cfg.liveness - (w->expiry - now)) / 1000);
        }
        s_answer (self, client, s_ok_packed (&sb));
    }
    else
    if (strcmp (name, "job") == 0 || strcmp (name, "cancel") == 0 || strcmp (name, "requeue") == 0) {
        char id [33];
        if (nbody != 1 || !s_frame_id (body [0], id)) {
            msgpack_sbuffer_destroy (&sb);
            s_bad_request (self, client, "expects one frame: a job id of 32 lowercase hex characters");
            return;
        }
        bk_job_t *job = bk_jobs_find (self->jobs, id);
        if (!job) {
            msgpack_sbuffer_destroy (&sb);
            s_answer (self, client, s_status ("404", NULL));
            return;
        }
        if (strcmp (name, "job") == 0) {
            int64_t now = s_now (self);
            msgpack_pack_map (&pk, 12);
            s_pk_str (&pk, "id");           s_pk_str (&pk, job->id);
            s_pk_str (&pk, "service");      s_pk_str (&pk, job->service);
            s_pk_str (&pk, "state");        s_pk_str (&pk, bk_job_state_name (job->state));
            s_pk_str (&pk, "attempts");     msgpack_pack_int (&pk, job->attempts);
            s_pk_str (&pk, "max_attempts"); msgpack_pack_int (&pk, job->max_attempts);
            s_pk_str (&pk, "priority");     msgpack_pack_int (&pk, job->priority);
            s_pk_str (&pk, "submitted_us"); msgpack_pack_int64 (&pk, job->submitted_us);
            s_pk_str (&pk, "not_before_us"); msgpack_pack_int64 (&pk, job->not_before_us);
            s_pk_str (&pk, "worker");
            s_pk_str (&pk, job->state == BK_JOB_LEASED && job->owner ? ((bk_worker_t *) job->owner)->key : NULL);
            s_pk_str (&pk, "lease_ms");
            if (job->state == BK_JOB_LEASED)
                msgpack_pack_int64 (&pk, (job->lease_until - now) / 1000);
            else
                msgpack_pack_nil (&pk);
            s_pk_str (&pk, "last_error");   s_pk_str (&pk, job->error);
            s_pk_str (&pk, "progress");
            if (job->progress && job->progress_size > 8) {
                //  The first frame of the last PARTIAL.
                const uint8_t *p = job->progress + 4;
                uint32_t len = (uint32_t) p [0] | (uint32_t) p [1] << 8 | (uint32_t) p [2] << 16 | (uint32_t) p [3] << 24;
                msgpack_pack_bin (&pk, len);
                msgpack_pack_bin_body (&pk, p + 4, len);
            }
            else
                msgpack_pack_nil (&pk);
            s_answer (self, client, s_ok_packed (&sb));
            return;
        }
        msgpack_sbuffer_destroy (&sb);
        if (job->durable && !bk_journal_ok (self->journal)) {
            s_answer (self, client, s_journal_down (self));
            return;
        }
        int rc;
        if (strcmp (name, "cancel") == 0) {
            rc = s_cancel (self, job);
            if (rc == 0)
                s_finish_direct (self, job);
        }
        else {
            rc = bk_jobs_requeue (self->jobs, job);
            if (rc == 0) {
                s_event_job (self, "requeued", job);
                bk_events_send (self->events);
            }
        }
        s_defer (self, client, s_status (rc == 0 ? "200" : "409", NULL), NULL);
    }
    else
    if (strcmp (name, "dead") == 0) {
        s_walk_t walk = { .service = *arg ? arg : NULL };
        bk_jobs_each (self->jobs, s_collect_dead, &walk);
        if (walk.ndead)
            qsort (walk.dead, walk.ndead, sizeof *walk.dead, s_newest_first);
        size_t n = walk.ndead > 1000 ? 1000 : walk.ndead;
        msgpack_pack_array (&pk, n);
        for (size_t i = 0; i < n; i++) {
            bk_job_t *job = walk.dead [i];
            msgpack_pack_map (&pk, 5);
            s_pk_str (&pk, "id");       s_pk_str (&pk, job->id);
            s_pk_str (&pk, "service");  s_pk_str (&pk, job->service);
            s_pk_str (&pk, "attempts"); msgpack_pack_int (&pk, job->attempts);
            s_pk_str (&pk, "error");    s_pk_str (&pk, job->error);
            s_pk_str (&pk, "dead_us");  msgpack_pack_int64 (&pk, job->dead_us);
        }
        free (walk.dead);
        s_answer (self, client, s_ok_packed (&sb));
    }
    else
    if (strcmp (name, "stats") == 0) {
        self->counters [C_JOURNAL_ERRORS] = bk_journal_errors (self->journal);
        msgpack_pack_map (&pk, C_COUNT + 4);
        for (int i = 0; i < C_COUNT; i++) {
            s_pk_str (&pk, s_counter_names [i]);
            msgpack_pack_int64 (&pk, self->counters [i]);
        }
        s_pk_str (&pk, "jobs");        msgpack_pack_int64 (&pk, (int64_t) bk_jobs_size (self->jobs));
        s_pk_str (&pk, "workers");     msgpack_pack_int64 (&pk, (int64_t) bk_workers_size (self->workers));
        s_pk_str (&pk, "journal_ok");  msgpack_pack_int (&pk, bk_journal_ok (self->journal) ? 1 : 0);
        s_pk_str (&pk, "journal_syncs"); msgpack_pack_int64 (&pk, (int64_t) bk_journal_synced (self->journal));
        s_answer (self, client, s_ok_packed (&sb));
    }
    else {
        msgpack_sbuffer_destroy (&sb);
        s_count (self, C_UNKNOWN_MMI);
        s_answer (self, client, s_status ("501", NULL));
    }
}

static void
s_client_msg (bk_broker_t *self, zframe_t *identity, const pr_frame_t *frames, const pr_mdp_msg_t *m)
{
    s_client_t client = { .identity = identity, .version = m->version };
    snprintf (client.service, sizeof client.service, "%.*s", (int) m->service.size,
              (const char *) m->service.data);
    const pr_frame_t *body = frames + m->body;
    if (strncmp (client.service, "titanic.", 8) == 0)
        s_titanic (self, &client, body, m->nbody);
    else
    if (strncmp (client.service, "mmi.", 4) == 0)
        s_mmi (self, &client, body, m->nbody);
    else {
        //  Direct request: a job that lives in memory only.
        const uint8_t *datas [m->nbody ? m->nbody : 1];
        size_t sizes [m->nbody ? m->nbody : 1];
        for (size_t i = 0; i < m->nbody; i++) {
            datas [i] = body [i].data;
            sizes [i] = body [i].size;
        }
        size_t psize;
        uint8_t *packed = bk_jobs_pack (datas, sizes, m->nbody, &psize);
        bk_service_t *svc = bk_workers_service (self->workers, client.service);
        bk_job_t *job = bk_jobs_submit (self->jobs, client.service, 0, svc->max_attempts, 0,
                                        packed, psize, false);
        free (packed);
        job->client_size = zframe_size (identity);
        job->client = lb_xmalloc (job->client_size ? job->client_size : 1);
        memcpy (job->client, zframe_data (identity), job->client_size);
        job->client_version = m->version;
        s_event_job (self, "queued", job);
        bk_events_int (self->events, "priority", 0);
        bk_events_int (self->events, "attempt", 0);
        bk_events_bool (self->events, "durable", false);
        bk_events_send (self->events);
    }
}

//  --------------------------------------------------------------------------
//  One incoming message

static void
s_handle_frames (bk_broker_t *self, zframe_t *identity, zmsg_t *msg, const char *key)
{
    size_t count = zmsg_size (msg);
    pr_frame_t frames [count ? count : 1];
    size_t i = 0;
    for (zframe_t *f = zmsg_first (msg); f; f = zmsg_next (msg), i++) {
        frames [i].data = zframe_data (f);
        frames [i].size = zframe_size (f);
    }
    pr_mdp_msg_t m;
    const char *why = NULL;
    int rc = pr_mdp_parse (frames, count, &m, &why);
    if (rc == PR_MDP_OK) {
        if (m.role == PR_MDP_CLIENT)
            s_client_msg (self, identity, frames, &m);
        else
            s_worker_msg (self, identity, msg, frames, &m, key);
        return;
    }
    s_count (self, rc == PR_MDP_EHEADER ? C_BAD_FRAMES : C_BAD_COMMAND);
    if (s_may_warn (self))
        lb_log_warn ("bad message peer=%s frames=%zu reason=\"%s\"", key, count, why);
    if (m.role == PR_MDP_CLIENT) {
        //  Answer in kind, with an empty service frame.
        s_client_t client = { .identity = identity, .version = m.version };
        char text [200];
        snprintf (text, sizeof text, "bad request: %s", why);
        s_answer (self, &client, s_status ("500", text));
    }
    else
    if (m.role == PR_MDP_WORKER) {
        bk_worker_t *w = bk_workers_find (self->workers, key);
        if (w)
            s_worker_drop (self, w, why, true);
        else
            s_disconnect_peer (self, identity, m.version);
    }
}

static void
s_handle (bk_broker_t *self, zmsg_t *msg)
{
    zframe_t *identity = zmsg_pop (msg);
    if (!identity)
        return;
    //  The peer's key: its routing id in upper-case hex (at most 255 bytes),
    //  on the stack rather than a heap string per message.
    char key [2 * 255 + 1];
    static const char hex [] = "0123456789ABCDEF";
    const uint8_t *raw = zframe_data (identity);
    size_t idsize = zframe_size (identity) < 255 ? zframe_size (identity) : 255;
    for (size_t i = 0; i < idsize; i++) {
        key [2 * i] = hex [raw [i] >> 4];
        key [2 * i + 1] = hex [raw [i] & 15];
    }
    key [2 * idsize] = 0;
    size_t count = zmsg_size (msg);
    if ((int64_t) count > self->cfg.max_frames || (int64_t) zmsg_content_size (msg) > self->cfg.max_message) {
        s_count (self, C_OVERSIZE);
        if (s_may_warn (self))
            lb_log_warn ("message over limits dropped peer=%s frames=%zu bytes=%zu", key, count,
                         zmsg_content_size (msg));
        bk_worker_t *w = bk_workers_find (self->workers, key);
        if (w)
            s_worker_drop (self, w, "oversize message", true);
    }
    else
        s_handle_frames (self, identity, msg, key);
    zframe_destroy (&identity);
}

//  --------------------------------------------------------------------------
//  Commit, dispatch, timers

//  A durable job's submission is on disk and acknowledged.
static void
s_accepted (bk_broker_t *self, bk_job_t *job)
{
    if (!bk_events_enabled (self->events))
        return;
    s_event_job (self, "queued", job);
    bk_events_int (self->events, "priority", job->priority);
    bk_events_int (self->events, "attempt", 0);
    bk_events_bool (self->events, "durable", true);
    bk_events_send (self->events);
}

//  Sends the replies whose batch is on disk; after a failed batch, every
//  waiting reply becomes a 500 and the submissions in it are forgotten.
static void
s_release (bk_broker_t *self, bool failed)
{
    uint64_t synced = bk_journal_synced (self->journal);
    s_deferred_t *d;
    while ((d = zlistx_first (self->deferred)) && (failed || d->batch <= synced)) {
        zlistx_delete (self->deferred, zlistx_cursor (self->deferred));
        if (failed) {
            zmsg_destroy (&d->reply);
            d->reply = s_journal_down (self);
            if (d->submitted) {
                //  Never acknowledged: forget it, and stop a worker that
                //  already took it (at least once: the client will retry).
                if (d->submitted->state == BK_JOB_LEASED)
                    s_cancel (self, d->submitted);
                bk_jobs_close (self->jobs, d->submitted);
            }
        }
        else
        if (d->submitted)
            s_accepted (self, d->submitted);
        s_reply_client (self, &d->client, &d->reply, false);
        zframe_destroy (&d->client.identity);
        free (d);
    }
}

//  Group commit: whatever was journaled since the last batch goes to the
//  writer thread while the loop carries on, as soon as a reply waits for
//  it; records no reply waits for go with the next batch or by S_LAZY_US.
static void
s_journal_kick (bk_broker_t *self)
{
    if (!bk_journal_dirty (self->journal)) {
        self->lazy_at = 0;
        return;
    }
    if (bk_journal_busy (self->journal))
        return;                 //  its end calls us again
    if (!bk_journal_ok (self->journal)) {
        self->lazy_at = 0;
        s_release (self, true);
        return;
    }
    int64_t now = s_now (self);
    if (zlistx_size (self->deferred) == 0) {
        if (self->lazy_at == 0)
            self->lazy_at = now + S_LAZY_US;
        if (now < self->lazy_at)
            return;
    }
    self->lazy_at = 0;
    if (self->quiet >= 2 && self->flush_us < S_INLINE_US) {
        //  Nothing else is arriving and the disk is quick: sync here rather
        //  than wake the writer thread and be woken back (two thread
        //  switches per batch, the larger part of a lone put's cost).
        bool failed = bk_journal_flush (self->journal) != 0;
        self->flush_us = s_now (self) - now;
        s_release (self, failed);
        return;
    }
    self->flush_at = now;
    bk_journal_start_flush (self->journal);
}

//  The batch in flight is done.
static void
s_journal_done (bk_broker_t *self)
{
    bool failed = bk_journal_finish_flush (self->journal) != 0;
    self->flush_us = s_now (self) - self->flush_at;
    s_release (self, failed);
    s_journal_kick (self);
}

//  Waits until no batch is in flight and every record is on disk (before a
//  checkpoint, at shutdown).
static void
s_journal_settle (bk_broker_t *self)
{
    if (bk_journal_busy (self->journal))
        s_journal_done (self);
    if (bk_journal_busy (self->journal))
        s_journal_done (self);
    if (bk_journal_dirty (self->journal))
        s_release (self, bk_journal_flush (self->journal) != 0);
    else
        s_release (self, !bk_journal_ok (self->journal) && zlistx_size (self->deferred) > 0);
}

//  Leases queued jobs of one service to its idle workers.
static void
s_dispatch_svc (bk_broker_t *self, bk_service_t *svc)
{
    while (zlistx_size (svc->idle) > 0) {
        bk_job_t *job = bk_jobs_peek (self->jobs, svc->name);
        if (!job)
            break;
        bk_worker_t *w = bk_workers_take_idle (self->workers, svc);
        int64_t now = s_now (self);
        bk_jobs_lease (self->jobs, job, w, now + svc->lease_us);
        w->job = job;
        w->hb_busy = false;
        if (s_send_worker (self, w, PR_MDP_REQUEST, job->id, job->body, job->body_size)) {
            //  Vanished worker: the job goes back unharmed.
            bk_jobs_release (self->jobs, job);
            w->job = NULL;
            s_worker_drop (self, w, "send failed", false);
            continue;
        }
        s_count (self, C_DISPATCHED);
        if (bk_events_enabled (self->events)) {
            s_event_job (self, "leased", job);
            bk_events_str (self->events, "worker", w->key);
            bk_events_int (self->events, "attempt", job->attempts + 1);
            bk_events_int (self->events, "lease_ms", svc->lease_us / 1000);
            bk_events_send (self->events);
        }
    }
}

static void
s_dispatch (bk_broker_t *self)
{
    for (bk_service_t *svc = bk_workers_first_service (self->workers); svc; svc = bk_workers_next_service (self->workers))
        s_dispatch_svc (self, svc);
}

static void
s_timers (bk_broker_t *self)
{
    int64_t now = s_now (self);
    if (now >= self->tick_at) {
        self->tick_at = now + 50000;
        bk_jobs_tick (self->jobs);
        //  Leases and liveness. Collect first: dropping changes the table.
        zlistx_t *victims = bk_workers_expired (self->workers, now);
        for (bk_worker_t *w = zlistx_first (victims); w; w = zlistx_next (victims)) {
            if (w->job && now > w->job->lease_until) {
                s_count (self, C_LEASE_EXPIRED);
                s_worker_drop (self, w, "lease expired", true);
            }
            else
                s_worker_drop (self, w, w->job ? "worker silent while busy" : "worker silent", true);
        }
        zlistx_destroy (&victims);
    }
    if (now >= self->hb_at) {
        self->hb_at = now + self->hb_us;
        zlistx_t *gone = zlistx_new ();
        for (bk_worker_t *w = bk_workers_first (self->workers); w; w = bk_workers_next (self->workers))
            if (s_send_worker (self, w, PR_MDP_HEARTBEAT, NULL, NULL, 0))
                zlistx_add_end (gone, w);
        for (bk_worker_t *w = zlistx_first (gone); w; w = zlistx_next (gone))
            s_worker_drop (self, w, "worker disconnected", false);
        zlistx_destroy (&gone);
    }
    if (!bk_journal_ok (self->journal)) {
        if (now >= self->recover_at) {
            self->recover_at = now + 1000000;
            s_journal_settle (self);
            if (bk_jobs_checkpoint (self->jobs) == 0) {
                s_count (self, C_CHECKPOINTS);
                lb_log_info ("journal writable again, accepting work dir=%s jobs=%zu",
                             self->cfg.journal, bk_jobs_size (self->jobs));
            }
        }
    }
    else {
        int64_t limit = 2 * bk_jobs_live_bytes (self->jobs);
        if (limit < self->cfg.checkpoint_bytes)
            limit = self->cfg.checkpoint_bytes;
        if (bk_journal_bytes (self->journal) > limit) {
            s_journal_settle (self);
            if (bk_jobs_checkpoint (self->jobs) == 0)
                s_count (self, C_CHECKPOINTS);
        }
    }
}

//  --------------------------------------------------------------------------
//  Constructor, destructor, run

bk_broker_t *
bk_broker_new (const bk_broker_config_t *config)
{
    assert (config);
    if (bk_broker_check_overrides (config->service_lease, true, "broker.service_lease")
    ||  bk_broker_check_overrides (config->service_attempts, false, "broker.service_attempts"))
        return NULL;
    bool curve = config->curve_secret && *config->curve_secret;
    if (!curve && !config->insecure && !bk_broker_is_local (config->bind)) {
        lb_log_error ("refusing to bind %s without CURVE keys: set broker.curve_secret and "
                      "broker.curve_allow, or bind loopback (or set broker.insecure)", config->bind);
        return NULL;
    }
    bk_broker_t *self = lb_xcalloc (1, sizeof *self);
    self->cfg = *config;
    self->clock = lb_clock_system ();
    self->hb_us = (int64_t) (config->heartbeat * 1e6);
    bk_workers_policy_t wpolicy = { config->lease, config->service_lease, config->attempts,
                                    config->service_attempts };
    self->workers = bk_workers_new (&wpolicy);
    self->deferred = zlistx_new ();

    self->journal = bk_journal_new (config->journal, NULL);
    if (!self->journal)
        goto fail;
    bk_jobs_policy_t policy = { config->retry_base, config->retry_max };
    self->jobs = bk_jobs_new (self->journal, &self->clock, policy);
    bk_journal_stats_t st;
    self->recovered = bk_jobs_recover (self->jobs, &st);
    if (self->recovered < 0)
        goto fail;
    self->counters [C_JOURNAL_CUT] = st.skipped + (st.cut_bytes > 0);
    if (st.cut_bytes || st.skipped)
        lb_log_warn ("journal replay cut or skipped damaged data cut_bytes=%lld skipped=%lld",
                     (long long) st.cut_bytes, (long long) st.skipped);
    if (bk_jobs_checkpoint (self->jobs))
        lb_log_error ("journal not writable at start (%s): serving, refusing submissions until it is",
                      bk_journal_error (self->journal));

    self->router = zsock_new (ZMQ_ROUTER);
    assert (self->router);
    zsock_set_router_mandatory (self->router, 1);
    //  A worker that reconnects under its fixed name (host:pid) takes the
    //  name over instead of being refused while its old pipe lingers.
    zsock_set_router_handover (self->router, 1);
    zsock_set_sndtimeo (self->router, 0);
    zsock_set_rcvtimeo (self->router, 0);
    zsock_set_sndhwm (self->router, 100000);
    zsock_set_rcvhwm (self->router, 100000);
    zsock_set_linger (self->router, 1000);
    zsock_set_maxmsgsize (self->router, config->max_message);
    if (curve) {
        zcert_t *cert = zcert_load (config->curve_secret);
        if (!cert || !*zcert_secret_txt (cert) || strcmp (zcert_secret_txt (cert), "0000000000000000000000000000000000000000") == 0) {
            lb_log_error ("cannot load CURVE secret certificate path=%s (want the file written by --keygen, with its _secret twin)",
                          config->curve_secret);
            zcert_destroy (&cert);
            goto fail;
        }
        if (!config->curve_allow || !zsys_file_exists (config->curve_allow)) {
            lb_log_error ("CURVE needs broker.curve_allow: a directory of allowed public certificates");
            zcert_destroy (&cert);
            goto fail;
        }
        self->auth = zactor_new (zauth, NULL);
        assert (self->auth);
        zstr_sendx (self->auth, "CURVE", config->curve_allow, NULL);
        zsock_wait (self->auth);
        zcert_apply (cert, self->router);
        zsock_set_curve_server (self->router, 1);
        zcert_destroy (&cert);
    }
    int port = zsock_bind (self->router, "%s", config->bind);
    if (port < 0) {
        lb_log_error ("cannot bind endpoint=%s: %s", config->bind, zmq_strerror (zmq_errno ()));
        goto fail;
    }
    self->endpoint = lb_xstrdup (zsock_endpoint (self->router) ? zsock_endpoint (self->router) : config->bind);
    self->events = bk_events_new (config->events);
    if (!self->events)
        goto fail;
    //  zmq_poll directly rather than a zpoller: its revents tell which is
    //  ready, without asking each socket again (a syscall each).
    self->items [0] = (zmq_pollitem_t) { zsock_resolve (self->router), 0, ZMQ_POLLIN, 0 };
    self->items [1] = (zmq_pollitem_t) { zsock_resolve (bk_journal_socket (self->journal)), 0, ZMQ_POLLIN, 0 };
    self->hb_at = s_now (self) + self->hb_us;
    return self;
fail:
    bk_broker_destroy (&self);
    return NULL;
}

void
bk_broker_destroy (bk_broker_t **self_p)
{
    assert (self_p);
    bk_broker_t *self = *self_p;
    if (!self)
        return;
    if (self->journal && self->deferred && self->router)
        s_journal_settle (self);
    if (self->deferred) {
        s_deferred_t *d;
        while ((d = zlistx_first (self->deferred))) {
            zlistx_delete (self->deferred, zlistx_cursor (self->deferred));
            zmsg_destroy (&d->reply);
            zframe_destroy (&d->client.identity);
            free (d);
        }
        zlistx_destroy (&self->deferred);
    }
    zsock_destroy (&self->router);
    zactor_destroy (&self->auth);
    bk_events_destroy (&self->events);
    bk_workers_destroy (&self->workers);
    bk_jobs_destroy (&self->jobs);
    bk_journal_destroy (&self->journal);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

//  One turn of the loop, waiting at most max_ms for input.
static void
s_turn (bk_broker_t *self, int max_ms)
{
    int64_t now = s_now (self);
    int64_t next = self->hb_at < self->tick_at ? self->hb_at : self->tick_at;
    if (self->lazy_at && self->lazy_at < next && !bk_journal_busy (self->journal))
        next = self->lazy_at;
    int timeout = (int) ((next - now) / 1000);
    if (timeout < 0)
        timeout = 0;
    if (timeout > max_ms)
        timeout = max_ms;
    self->items [1].revents = 0;
    zmq_poll (self->items, 2, timeout);
    zsock_t *jsock = bk_journal_socket (self->journal);
    if (bk_journal_busy (self->journal) && (self->items [1].revents & ZMQ_POLLIN))
        s_journal_done (self);
    //  The ROUTER has a zero receive timeout: read until it is empty.
    int n = 0;
    for (; n < S_BATCH; n++) {
        zmsg_t *msg = zmsg_recv (self->router);
        if (!msg)
            break;
        s_handle (self, msg);
        zmsg_destroy (&msg);
        //  A batch that finished meanwhile frees its replies early.
        if ((n & 63) == 63 && bk_journal_busy (self->journal) && (zsock_events (jsock) & ZMQ_POLLIN))
            s_journal_done (self);
    }
    self->quiet = n <= 1 ? self->quiet + 1 : 0;
    s_dispatch (self);
    s_journal_kick (self);
    s_timers (self);
    s_dispatch (self);
    s_journal_kick (self);
}

int
bk_broker_run (bk_broker_t *self, volatile int *stop)
{
    assert (self);
    while (!zsys_interrupted && !(stop && *stop))
        s_turn (self, 100);
    s_journal_settle (self);
    return 0;
}

int64_t
bk_broker_recovered (bk_broker_t *self)
{
    assert (self);
    return self->recovered;
}

bool
bk_broker_curve (bk_broker_t *self)
{
    assert (self);
    return self->auth != NULL;
}

const char *
bk_broker_endpoint (bk_broker_t *self)
{
    assert (self);
    return self->endpoint;
}

//  --------------------------------------------------------------------------
//  Selftest

//  Runs the broker in a thread until the pipe speaks ($TERM).
static void
s_test_actor (zsock_t *pipe, void *arg)
{
    bk_broker_t *broker = arg;
    zsock_signal (pipe, 0);
    while (!(zsock_events (pipe) & ZMQ_POLLIN))
        s_turn (broker, 10);
    zmsg_t *msg = zmsg_recv (pipe);
    zmsg_destroy (&msg);
}

static zmsg_t *
s_test_recv (zsock_t *sock)
{
    zsock_set_rcvtimeo (sock, 5000);
    zmsg_t *msg = zmsg_recv (sock);
    assert (msg);
    return msg;
}

//  Returns counter name from mmi.stats, or -1.
static int64_t
s_test_stat (zsock_t *client, const char *name)
{
    zstr_sendx (client, "", "MDPC01", "mmi.stats", NULL);
    zmsg_t *msg = s_test_recv (client);
    zframe_t *map = zmsg_last (msg);
    int64_t value = -1;
    msgpack_unpacked u;
    msgpack_unpacked_init (&u);
    if (msgpack_unpack_next (&u, (const char *) zframe_data (map), zframe_size (map), NULL) == MSGPACK_UNPACK_SUCCESS
    &&  u.data.type == MSGPACK_OBJECT_MAP) {
        for (uint32_t i = 0; i < u.data.via.map.size; i++) {
            msgpack_object_kv *kv = &u.data.via.map.ptr [i];
            if (kv->key.type == MSGPACK_OBJECT_STR && kv->key.via.str.size == strlen (name)
            &&  memcmp (kv->key.via.str.ptr, name, strlen (name)) == 0)
                value = kv->val.via.i64;
        }
    }
    msgpack_unpacked_destroy (&u);
    zmsg_destroy (&msg);
    return value;
}

void
bk_broker_test (bool verbose)
{
    (void) verbose;
    char *dir = lb_selftest_tmpdir ("bk_broker");
    bk_broker_config_t cfg = {
        .bind = "inproc://bk_broker_test", .events = NULL, .journal = dir,
        .heartbeat = 2.5, .liveness = 3, .lease = 60, .attempts = 3,
        .service_attempts = "flaky=2", .retry_base = 0.01, .retry_max = 0.05,
        .max_frames = 64, .max_message = 1 << 20, .checkpoint_bytes = 1 << 20
    };
    assert (bk_broker_check_overrides ("a=1,b=x", false, "test") == -1);
    assert (bk_broker_check_overrides ("a=1h, b.c=2s", true, "test") == 0);
    assert (bk_broker_is_local ("tcp://127.0.0.1:5555") && !bk_broker_is_local ("tcp://*:5555"));
    bk_broker_t *broker = bk_broker_new (&cfg);
    assert (broker);
    zactor_t *actor = zactor_new (s_test_actor, broker);

    zsock_t *worker = zsock_new_dealer ("inproc://bk_broker_test");
    zsock_t *client = zsock_new_dealer ("inproc://bk_broker_test");
    zstr_sendx (worker, "", "MDPW01", "\x01", "echo", NULL);

    //  titanic.request -> 200 + id
    zstr_sendx (client, "", "MDPC01", "titanic.request", "echo", "hello", NULL);
    zmsg_t *msg = s_test_recv (client);
    assert (zmsg_size (msg) == 5);
    char *f [5];
    for (int i = 0; i < 5; i++)
        f [i] = zmsg_popstr (msg);
    assert (streq (f [1], "MDPC01") && streq (f [2], "titanic.request") && streq (f [3], "200"));
    char id [33];
    snprintf (id, sizeof id, "%s", f [4]);
    assert (pr_mdp_id_valid ((const uint8_t *) id, strlen (id)));
    for (int i = 0; i < 5; i++)
        free (f [i]);
    zmsg_destroy (&msg);

    //  The worker gets it, with the job id as client address.
    msg = s_test_recv (worker);
    char *w0 = zmsg_popstr (msg), *w1 = zmsg_popstr (msg), *w2 = zmsg_popstr (msg);
    char *w3 = zmsg_popstr (msg), *w4 = zmsg_popstr (msg), *w5 = zmsg_popstr (msg);
    assert (streq (w1, "MDPW01") && w2 [0] == 2 && streq (w3, id) && streq (w4, "") && streq (w5, "hello"));
    int64_t syncs = s_test_stat (client, "journal_syncs");
    assert (syncs >= 1);        //  the submission's batch
    zstr_sendx (worker, "", "MDPW01", "\x03", id, "", "HELLO", NULL);
    free (w0); free (w1); free (w2); free (w3); free (w4); free (w5);
    zmsg_destroy (&msg);
    //  No reply waits for the DONE record: it is synced by S_LAZY_US.
    for (int tries = 0; tries < 100 && s_test_stat (client, "journal_syncs") == syncs; tries++)
        zclock_sleep (10);
    assert (s_test_stat (client, "journal_syncs") == syncs + 1);

    //  titanic.reply: 300 until done, then 200 + body
    char *status = NULL, *body = NULL;
    for (int tries = 0; tries < 100; tries++) {
        zstr_sendx (client, "", "MDPC01", "titanic.reply", id, NULL);
        msg = s_test_recv (client);
        zframe_t *fr = zmsg_first (msg);
        for (int i = 0; i < 3; i++)
            fr = zmsg_next (msg);
        free (status);
        status = zframe_strdup (fr);
        if (streq (status, "200")) {
            body = zframe_strdup (zmsg_next (msg));
            zmsg_destroy (&msg);
            break;
        }
        assert (streq (status, "300"));
        zmsg_destroy (&msg);
        zclock_sleep (20);
    }
    assert (streq (status, "200") && body && streq (body, "HELLO"));
    free (status);
    free (body);

    //  Unknown mmi -> 501; mmi.service -> 200 / 404
    zstr_sendx (client, "", "MDPC01", "mmi.nonsense", NULL);
    msg = s_test_recv (client);
    char *last = zframe_strdup (zmsg_last (msg));
    assert (streq (last, "501"));
    free (last);
    zmsg_destroy (&msg);
    zstr_sendx (client, "", "MDPC01", "mmi.service", "echo", NULL);
    msg = s_test_recv (client);
    last = zframe_strdup (zmsg_last (msg));
    assert (streq (last, "200"));
    free (last);
    zmsg_destroy (&msg);
    zstr_sendx (client, "", "MDPC01", "mmi.service", "nobody", NULL);
    msg = s_test_recv (client);
    last = zframe_strdup (zmsg_last (msg));
    assert (streq (last, "404"));
    free (last);
    zmsg_destroy (&msg);

    //  titanic.close, then reply is 400
    zstr_sendx (client, "", "MDPC01", "titanic.close", id, NULL);
    msg = s_test_recv (client);
    last = zframe_strdup (zmsg_last (msg));
    assert (streq (last, "200"));
    free (last);
    zmsg_destroy (&msg);
    zstr_sendx (client, "", "MDPC01", "titanic.reply", id, NULL);
    msg = s_test_recv (client);
    last = zframe_strdup (zmsg_last (msg));
    assert (streq (last, "400"));
    free (last);
    zmsg_destroy (&msg);

    //  A REPLY without a request gets DISCONNECT.
    zstr_sendx (worker, "", "MDPW01", "\x03", id, "", "late", NULL);
    msg = s_test_recv (worker);
    zframe_t *cmd = zmsg_last (msg);
    assert (zframe_size (cmd) == 1 && zframe_data (cmd) [0] == 5);
    zmsg_destroy (&msg);

    zactor_destroy (&actor);
    zsock_destroy (&worker);
    zsock_destroy (&client);
    bk_broker_destroy (&broker);
    lb_selftest_rmtree (dir);
    free (dir);
}
