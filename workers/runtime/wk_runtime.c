/*  wk_runtime.c - the worker loop: MDP 0.2 worker, heartbeats, handler thread,
    progress, results, reconnect with backoff, graceful stop (wk_runtime.h). */
#include "wk_runtime.h"
#include "lb_clock.h"
#include "lb_curve.h"
#include "lb_log.h"
#include "lb_mem.h"
#include "pr_job.h"

#include <assert.h>
#include <czmq.h>
#include <getopt.h>
#include <inttypes.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define S_MDPW           "MDPW02"
#define S_READY          0x01
#define S_REQUEST        0x02
#define S_PARTIAL        0x03
#define S_FINAL          0x04
#define S_HEARTBEAT      0x05
#define S_DISCONNECT     0x06

//  The job as the handler thread sees it; owned by that thread.
struct _wk_job_t {
    pr_job_t *job;
    char **param_text;          //  text of each param, in params order
    pr_kv_t outputs;
    pr_kv_t metrics;
    pr_kv_t announced;          //  wk_job_announce: sent with every progress
    char *error_code;
    char *error_message;
    lb_config_t *config;        //  borrowed, read-only
    zsock_t *pipe;              //  PAIR to the runtime thread
    bool stopping;
    int64_t last_progress_us;
    double progress_interval_us;
};

//  What the runtime hands its thread (the thread frees it).
typedef struct {
    wk_job_t *job;
    wk_handler_fn *handler;
    void *arg;
} s_task_t;

struct _wk_runtime_t {
    wk_spec_t spec;
    char *service;
    char *endpoint;
    lb_config_t *config;
    int64_t heartbeat_us;
    int liveness_max;
    int64_t reconnect_min_us, reconnect_max_us;
    int64_t grace_us;
    double progress_interval_us;
    zsock_t *broker;            //  DEALER
    lb_curve_t *curve;          //  CURVE client keys (worker.curve_*), or NULL
    bool heard;                 //  anything from the broker since the last connect
    int64_t heard_at;           //  last message from the broker (monotonic)
    int64_t heartbeat_at;
    int64_t backoff_us;
    //  The job in hand (busy when pipe != NULL)
    zsock_t *pipe;              //  PAIR to the handler thread
    char *job_address;          //  broker's job id (REQUEST client address)
    char *job_id;               //  envelope id
    bool job_aborted;           //  broker dropped it: discard the result
    bool stop_sent;
    int64_t stop_deadline;      //  grace ends (monotonic), 0: not stopping
    zmsg_t *pending_progress;   //  coalesced PARTIAL body
    int64_t progress_sent_at;
    bool abandoned;             //  a handler thread was left running at exit
    unsigned pipe_seq;
};

//  --------------------------------------------------------------------------
//  Handler-side API

const char *wk_job_id (wk_job_t *job) { return job->job->id; }
const char *wk_job_run (wk_job_t *job) { return job->job->run; }
const char *wk_job_step (wk_job_t *job) { return job->job->step; }
int wk_job_attempt (wk_job_t *job) { return (int) job->job->attempt; }
int64_t wk_job_deadline (wk_job_t *job) { return job->job->deadline_us; }
bool wk_job_needs_gpu (wk_job_t *job) { return job->job->needs_gpu; }
lb_config_t *wk_job_config (wk_job_t *job) { return job->config; }
int wk_job_param_count (wk_job_t *job) { return (int) job->job->params.count; }

const char *
wk_job_param_name (wk_job_t *job, int index)
{
    assert (index >= 0 && (size_t) index < job->job->params.count);
    return job->job->params.entries [index].key;
}

const char *
wk_job_param (wk_job_t *job, const char *name)
{
    for (size_t i = 0; i < job->job->params.count; i++)
        if (strcmp (job->job->params.entries [i].key, name) == 0)
            return job->param_text [i];
    return NULL;
}

int
wk_job_param_int (wk_job_t *job, const char *name, int64_t *out)
{
    const pr_kv_entry_t *entry = pr_kv_find (&job->job->params, name);
    if (!entry)
        return 1;
    if (pr_kv_int (&job->job->params, name, out) == 0)
        return 0;
    if (entry->type == PR_KV_STR && lb_config_parse_int (entry->s, out) == 0)
        return 0;
    wk_job_error (job, "bad_params", "param '%s' is not an integer", name);
    return -1;
}

int
wk_job_param_real (wk_job_t *job, const char *name, double *out)
{
    const pr_kv_entry_t *entry = pr_kv_find (&job->job->params, name);
    if (!entry)
        return 1;
    if (pr_kv_real (&job->job->params, name, out) == 0)
        return 0;
    if (entry->type == PR_KV_STR && lb_config_parse_real (entry->s, out) == 0)
        return 0;
    wk_job_error (job, "bad_params", "param '%s' is not a number", name);
    return -1;
}

int
wk_job_param_bool (wk_job_t *job, const char *name, bool *out)
{
    const pr_kv_entry_t *entry = pr_kv_find (&job->job->params, name);
    if (!entry)
        return 1;
    if (pr_kv_bool (&job->job->params, name, out) == 0)
        return 0;
    if (entry->type == PR_KV_STR && lb_config_parse_bool (entry->s, out) == 0)
        return 0;
    wk_job_error (job, "bad_params", "param '%s' is not true or false", name);
    return -1;
}

bool
wk_job_stopping (wk_job_t *job)
{
    //  The runtime says "STOP" on the pipe; read without waiting.
    while (!job->stopping) {
        zmsg_t *msg = zmsg_recv_nowait (job->pipe);
        if (!msg)
            break;
        char *what = zmsg_popstr (msg);
        if (what && strcmp (what, "STOP") == 0)
            job->stopping = true;
        free (what);
        zmsg_destroy (&msg);
    }
    if (!job->stopping && job->job->deadline_us && lb_clock_wall_us () > job->job->deadline_us)
        job->stopping = true;
    return job->stopping;
}

static void
s_send_frames (zsock_t *pipe, const char *kind, uint8_t *body, size_t size)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, kind);
    zmsg_addmem (msg, body, size);
    free (body);
    zmsg_send (&msg, pipe);
}

void
wk_job_progress (wk_job_t *job, double percent, const char *stage, const char *fmt, ...)
{
    int64_t now = lb_clock_mono_us ();
    if (percent < 100 && job->last_progress_us
    &&  now - job->last_progress_us < job->progress_interval_us)
        return;                 //  coalesced: the next call will carry news
    job->last_progress_us = now;
    va_list args;
    va_start (args, fmt);
    char *message = lb_xvasprintf (fmt, args);
    va_end (args);
    if (!(percent >= 0))
        percent = 0;
    if (percent > 100)
        percent = 100;
    pr_progress_t *progress = pr_progress_new (job->job->id, percent, stage ? stage : "", message);
    for (size_t i = 0; i < job->metrics.count; i++)
        pr_kv_set_real (&progress->metrics, job->metrics.entries [i].key, job->metrics.entries [i].d);
    for (size_t i = 0; i < job->announced.count; i++)
        pr_kv_set_str (&progress->outputs, job->announced.entries [i].key, job->announced.entries [i].s);
    size_t size;
    uint8_t *body = pr_progress_encode (progress, &size);
    pr_progress_destroy (&progress);
    free (message);
    s_send_frames (job->pipe, "P", body, size);
}

void
wk_job_output (wk_job_t *job, const char *name, const char *uri)
{
    assert (name && uri);
    pr_kv_set_str (&job->outputs, name, uri);
}

void
wk_job_announce (wk_job_t *job, const char *name, const char *value)
{
    assert (name && value);
    pr_kv_set_str (&job->announced, name, value);
    job->last_progress_us = 0;      //  the next progress goes out at once
}

void
wk_job_metric (wk_job_t *job, const char *name, double value)
{
    assert (name);
    pr_kv_set_real (&job->metrics, name, value);
}

void
wk_job_error (wk_job_t *job, const char *code, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    char *message = lb_xvasprintf (fmt, args);
    va_end (args);
    free (job->error_code);
    free (job->error_message);
    job->error_code = lb_xstrdup (code && *code ? code : "unspecified");
    job->error_message = message;
    lb_log_warn ("job error id=%s run=%s step=%s code=%s message=%s", job->job->id,
                 job->job->run, job->job->step, job->error_code, message);
}

static void
s_job_destroy (wk_job_t **job_p)
{
    wk_job_t *job = *job_p;
    if (!job)
        return;
    for (size_t i = 0; i < job->job->params.count; i++)
        free (job->param_text [i]);
    free (job->param_text);
    pr_job_destroy (&job->job);
    pr_kv_release (&job->outputs);
    pr_kv_release (&job->metrics);
    pr_kv_release (&job->announced);
    free (job->error_code);
    free (job->error_message);
    zsock_destroy (&job->pipe);
    free (job);
    *job_p = NULL;
}

//  The handler thread: run the handler, send the result, free everything.
static void *
s_handler_thread (void *arg)
{
    s_task_t *task = arg;
    wk_job_t *job = task->job;
    wk_status_t status = task->handler (job, task->arg);
    assert (status == WK_DONE || status == WK_RETRY || status == WK_FAIL);
    pr_result_t *result = pr_result_new (job->job->id, status == WK_DONE ? PR_STATUS_DONE
                                         : status == WK_RETRY ? PR_STATUS_RETRY : PR_STATUS_FAIL);
    for (size_t i = 0; i < job->outputs.count; i++)
        pr_kv_set_str (&result->outputs, job->outputs.entries [i].key, job->outputs.entries [i].s);
    for (size_t i = 0; i < job->metrics.count; i++)
        pr_kv_set_real (&result->metrics, job->metrics.entries [i].key, job->metrics.entries [i].d);
    if (status != WK_DONE)
        pr_result_set_error (result, job->error_code ? job->error_code : "unspecified",
                             job->error_message ? job->error_message : "the handler gave no reason");
    size_t size;
    uint8_t *body = pr_result_encode (result, &size);
    pr_result_destroy (&result);
    s_send_frames (job->pipe, "R", body, size);
    s_job_destroy (&job);
    free (task);
    return NULL;
}

//  --------------------------------------------------------------------------
//  Runtime

wk_runtime_t *
wk_runtime_new (const wk_spec_t *spec, lb_config_t *config)
{
    assert (spec && spec->handler && spec->service && config);
    wk_runtime_t *self = lb_xcalloc (1, sizeof *self);
    self->spec = *spec;
    self->service = lb_xstrdup (spec->service);
    self->endpoint = lb_xstrdup (lb_config_str (config, "broker.endpoint"));
    self->config = config;
    self->heartbeat_us = (int64_t) (lb_config_seconds (config, "broker.heartbeat") * 1e6);
    self->liveness_max = (int) lb_config_int (config, "broker.liveness");
    self->reconnect_min_us = (int64_t) (lb_config_seconds (config, "worker.reconnect_min") * 1e6);
    self->reconnect_max_us = (int64_t) (lb_config_seconds (config, "worker.reconnect_max") * 1e6);
    self->grace_us = (int64_t) (lb_config_seconds (config, "worker.grace") * 1e6);
    self->progress_interval_us = lb_config_seconds (config, "worker.progress_interval") * 1e6;
    if (self->reconnect_max_us < self->reconnect_min_us)
        self->reconnect_max_us = self->reconnect_min_us;
    self->backoff_us = self->reconnect_min_us;
    char err [512];
    if (lb_curve_from_config (config, "worker", &self->curve, err, sizeof err)) {
        lb_log_error ("%s", err);
        wk_runtime_destroy (&self);
        return NULL;
    }
    return self;
}

static void
s_job_clear (wk_runtime_t *self)
{
    zsock_destroy (&self->pipe);
    free (self->job_address);
    self->job_address = NULL;
    free (self->job_id);
    self->job_id = NULL;
    zmsg_destroy (&self->pending_progress);
    self->job_aborted = false;
    self->stop_sent = false;
}

void
wk_runtime_destroy (wk_runtime_t **self_p)
{
    assert (self_p);
    wk_runtime_t *self = *self_p;
    if (!self)
        return;
    zsock_destroy (&self->broker);
    if (self->pipe)
        self->abandoned = true;
    s_job_clear (self);
    lb_curve_destroy (&self->curve);
    free (self->service);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

static void
s_send_command (wk_runtime_t *self, int command, const char *address, zmsg_t **body_p)
{
    if (!self->broker) {
        zmsg_destroy (body_p);
        return;
    }
    zmsg_t *msg = body_p && *body_p ? *body_p : zmsg_new ();
    if (body_p)
        *body_p = NULL;
    if (address) {
        zmsg_pushstr (msg, "");
        zmsg_pushstr (msg, address);
    }
    uint8_t cmd = (uint8_t) command;
    zmsg_pushmem (msg, &cmd, 1);
    zmsg_pushstr (msg, S_MDPW);
    if (zmsg_send (&msg, self->broker))
        zmsg_destroy (&msg);
}

//  Throws the broker socket away without lingering: a closed socket that
//  lingers would reconnect under our name to deliver stale messages and take
//  the name over (ROUTER handover) from the fresh socket.
static void
s_drop_broker (wk_runtime_t *self)
{
    if (!self->broker)
        return;
    zsock_set_linger (self->broker, 0);
    zsock_destroy (&self->broker);
}

static void
s_connect (wk_runtime_t *self)
{
    s_drop_broker (self);
    self->broker = zsock_new (ZMQ_DEALER);
    assert (self->broker);
    zsock_set_linger (self->broker, 1000);
    zsock_set_sndtimeo (self->broker, 1000);
    //  A readable identity, "host:pid", so the broker, `sched workers` and the
    //  dashboard can say which process a worker is.
    char host [128] = "localhost";
    gethostname (host, sizeof host - 1);
    host [sizeof host - 1] = 0;
    char identity [160];
    snprintf (identity, sizeof identity, "%.100s:%d", host, (int) getpid ());
    zsock_set_identity (self->broker, identity);
    if (self->curve)
        lb_curve_apply (self->curve, self->broker);
    if (zsock_connect (self->broker, "%s", self->endpoint)) {
        lb_log_error ("cannot connect endpoint=%s", self->endpoint);
        zsock_destroy (&self->broker);
        return;
    }
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, self->service);
    s_send_command (self, S_READY, NULL, &msg);
    self->heard_at = lb_clock_mono_us ();
    self->heard = false;
    self->heartbeat_at = self->heard_at + self->heartbeat_us;
    lb_log_info ("ready service=%s broker=%s curve=%s", self->service, self->endpoint,
                 self->curve ? lb_curve_public (self->curve) : "off");
}

//  Starts the handler on a new thread for a decoded job.
static void
s_start_job (wk_runtime_t *self, const char *address, pr_job_t *pjob)
{
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "inproc://wk-job-%p-%u", (void *) self, ++self->pipe_seq);
    self->pipe = zsock_new (ZMQ_PAIR);
    assert (self->pipe);
    int rc = zsock_bind (self->pipe, "%s", endpoint);
    assert (rc == 0);
    wk_job_t *job = lb_xcalloc (1, sizeof *job);
    job->pipe = zsock_new (ZMQ_PAIR);
    assert (job->pipe);
    zsock_set_linger (job->pipe, 0);
    zsock_set_sndtimeo (job->pipe, 5000);
    rc = zsock_connect (job->pipe, "%s", endpoint);
    assert (rc == 0);
    job->job = pjob;
    job->config = self->config;
    job->progress_interval_us = self->progress_interval_us;
    job->param_text = lb_xcalloc (pjob->params.count + 1, sizeof (char *));
    for (size_t i = 0; i < pjob->params.count; i++) {
        pr_kv_entry_t *e = &pjob->params.entries [i];
        job->param_text [i] = e->type == PR_KV_STR ? lb_xstrdup (e->s)
                            : e->type == PR_KV_INT ? lb_xasprintf ("%" PRId64, e->i)
                            : e->type == PR_KV_REAL ? lb_xasprintf ("%.17g", e->d)
                            : lb_xstrdup (e->b ? "true" : "false");
    }
    self->job_address = lb_xstrdup (address);
    self->job_id = lb_xstrdup (pjob->id);
    lb_log_info ("job start id=%s run=%s step=%s attempt=%u job=%s", pjob->id, pjob->run,
                 pjob->step, pjob->attempt, address);
    s_task_t *task = lb_xcalloc (1, sizeof *task);
    task->job = job;
    task->handler = self->spec.handler;
    task->arg = self->spec.arg;
    pthread_t thread;
    rc = pthread_create (&thread, NULL, s_handler_thread, task);
    assert (rc == 0);
    pthread_detach (thread);
}

static void
s_answer_bad (wk_runtime_t *self, const char *address, const char *why)
{
    lb_log_warn ("bad envelope job=%s why=%s", address, why);
    pr_result_t *result = pr_result_new (address, PR_STATUS_FAIL);
    pr_result_set_error (result, "bad_envelope", why);
    size_t size;
    uint8_t *body = pr_result_encode (result, &size);
    pr_result_destroy (&result);
    zmsg_t *msg = zmsg_new ();
    zmsg_addmem (msg, body, size);
    free (body);
    s_send_command (self, S_FINAL, address, &msg);
}

//  One message from the broker. Returns 1 when the broker said DISCONNECT.
static int
s_on_broker (wk_runtime_t *self, bool stopping)
{
    zmsg_t *msg = zmsg_recv (self->broker);
    if (!msg)
        return 0;
    self->heard_at = lb_clock_mono_us ();
    self->backoff_us = self->reconnect_min_us;
    char *proto = zmsg_popstr (msg);
    zframe_t *cmd = zmsg_pop (msg);
    int result = 0;
    if (!proto || strcmp (proto, S_MDPW) || !cmd || zframe_size (cmd) != 1)
        lb_log_warn ("bad frame from broker (not %s)", S_MDPW);
    else {
        uint8_t command = zframe_data (cmd) [0];
        if (command == S_REQUEST) {
            char *address = zmsg_popstr (msg);
            zframe_t *empty = zmsg_pop (msg);
            zframe_t *body = zmsg_pop (msg);
            if (!address || !empty || zframe_size (empty) != 0 || !body)
                lb_log_warn ("malformed REQUEST from broker");
            else
            if (self->pipe || stopping)
                lb_log_warn ("REQUEST while %s job=%s (ignored; the broker's lease returns it)",
                             self->pipe ? "busy" : "stopping", address);
            else {
                char why [256];
                pr_job_t *pjob = pr_job_decode (zframe_data (body), zframe_size (body), why, sizeof why);
                if (!pjob)
                    s_answer_bad (self, address, why);
                else
                    s_start_job (self, address, pjob);
            }
            free (address);
            zframe_destroy (&empty);
            zframe_destroy (&body);
        }
        else
        if (command == S_DISCONNECT) {
            lb_log_warn ("broker sent DISCONNECT%s", self->pipe ? " (job in hand is abandoned: cancelled or lease lost)" : "");
            result = 1;
        }
        else
        if (command != S_HEARTBEAT)
            lb_log_warn ("unexpected command 0x%02x from broker", command);
    }
    free (proto);
    zframe_destroy (&cmd);
    zmsg_destroy (&msg);
    return result;
}

//  Tells the handler to stop and forgets its result when it comes.
static void
s_abort_job (wk_runtime_t *self)
{
    if (!self->pipe || self->job_aborted)
        return;
    zstr_send (self->pipe, "STOP");
    self->job_aborted = true;
    zmsg_destroy (&self->pending_progress);
}

static void
s_flush_progress (wk_runtime_t *self, bool force)
{
    if (!self->pending_progress)
        return;
    int64_t now = lb_clock_mono_us ();
    if (!force && now - self->progress_sent_at < self->progress_interval_us)
        return;
    s_send_command (self, S_PARTIAL, self->job_address, &self->pending_progress);
    self->progress_sent_at = now;
}

//  A message from the handler thread. Returns 1 when the job is finished.
static int
s_on_pipe (wk_runtime_t *self)
{
    zmsg_t *msg = zmsg_recv (self->pipe);
    if (!msg)
        return 0;
    char *kind = zmsg_popstr (msg);
    int finished = 0;
    if (kind && strcmp (kind, "P") == 0) {
        if (!self->job_aborted) {
            zmsg_destroy (&self->pending_progress);
            self->pending_progress = msg;
            msg = NULL;
            s_flush_progress (self, false);
        }
    }
    else
    if (kind && strcmp (kind, "R") == 0) {
        if (self->job_aborted)
            lb_log_info ("job result discarded id=%s (the broker no longer holds it)", self->job_id);
        else {
            s_flush_progress (self, true);
            lb_log_info ("job end id=%s job=%s", self->job_id, self->job_address);
            s_send_command (self, S_FINAL, self->job_address, &msg);
        }
        finished = 1;
    }
    free (kind);
    zmsg_destroy (&msg);
    if (finished)
        s_job_clear (self);
    return finished;
}

int
wk_runtime_run (wk_runtime_t *self, volatile const int *stop, int max_jobs)
{
    assert (self && stop);
    int jobs = 0;
    s_connect (self);
    while (true) {
        int64_t now = lb_clock_mono_us ();
        bool stopping = *stop != 0 || (max_jobs > 0 && jobs >= max_jobs);
        if (stopping && !self->pipe)
            break;
        if (stopping && self->pipe && !self->stop_sent) {
            lb_log_info ("stopping: waiting up to %.1f s for job id=%s", self->grace_us / 1e6, self->job_id);
            zstr_send (self->pipe, "STOP");
            self->stop_sent = true;
            self->stop_deadline = now + self->grace_us;
        }
        if (self->stop_sent && now >= self->stop_deadline) {
            //  Hand the job back so the broker gives it to another worker.
            lb_log_warn ("grace over: handing back job id=%s", self->job_id);
            if (!self->job_aborted) {
                pr_result_t *result = pr_result_new (self->job_id, PR_STATUS_RETRY);
                pr_result_set_error (result, "shutdown", "worker stopped before the job finished");
                size_t size;
                uint8_t *body = pr_result_encode (result, &size);
                pr_result_destroy (&result);
                zmsg_t *msg = zmsg_new ();
                zmsg_addmem (msg, body, size);
                free (body);
                s_send_command (self, S_FINAL, self->job_address, &msg);
            }
            self->abandoned = true;
            s_job_clear (self);
            break;
        }
        if (!self->broker) {
            //  Reconnect with exponential backoff and jitter.
            int64_t wait = self->backoff_us / 2 + (int64_t) (randof ((int) (self->backoff_us / 2 + 1)));
            lb_log_info ("reconnecting in %.2f s broker=%s", wait / 1e6, self->endpoint);
            int64_t until = now + wait;
            while (lb_clock_mono_us () < until && !*stop) {
                if (!self->pipe) {
                    zclock_sleep (50);
                    continue;
                }
                zmq_pollitem_t item = { zsock_resolve (self->pipe), 0, ZMQ_POLLIN, 0 };
                if (zmq_poll (&item, 1, 50) > 0)
                    jobs += s_on_pipe (self);
            }
            self->backoff_us = self->backoff_us * 2 > self->reconnect_max_us ? self->reconnect_max_us : self->backoff_us * 2;
            if (*stop && !self->pipe)
                break;
            s_connect (self);
            if (!self->broker)
                continue;
        }
        int64_t timeout_us = self->heartbeat_at - now;
        if (self->stop_sent && self->stop_deadline - now < timeout_us)
            timeout_us = self->stop_deadline - now;
        if (self->pending_progress && self->progress_interval_us < timeout_us)
            timeout_us = (int64_t) self->progress_interval_us;
        if (timeout_us < 0)
            timeout_us = 0;
        if (timeout_us > 200000)
            timeout_us = 200000;            //  notice *stop promptly
        zmq_pollitem_t items [2] = {
            { zsock_resolve (self->broker), 0, ZMQ_POLLIN, 0 },
            { self->pipe ? zsock_resolve (self->pipe) : NULL, 0, ZMQ_POLLIN, 0 } };
        int rc = zmq_poll (items, self->pipe ? 2 : 1, (long) (timeout_us / 1000));
        if (rc < 0 && zmq_errno () != EINTR) {
            lb_log_error ("poll failed: %s", zmq_strerror (zmq_errno ()));
            return -1;
        }
        if (rc > 0 && (items [0].revents & ZMQ_POLLIN)) {
            self->heard = true;
            if (s_on_broker (self, stopping)) {
                s_abort_job (self);
                s_drop_broker (self);
                continue;
            }
        }
        if (rc > 0 && self->pipe && (items [1].revents & ZMQ_POLLIN))
            jobs += s_on_pipe (self);
        s_flush_progress (self, false);
        now = lb_clock_mono_us ();
        if (now >= self->heartbeat_at) {
            s_send_command (self, S_HEARTBEAT, NULL, NULL);
            self->heartbeat_at = now + self->heartbeat_us;
        }
        if (now - self->heard_at > self->liveness_max * self->heartbeat_us) {
            {
                //  A CURVE broker that refuses our key says nothing at all:
                //  name the likely cause when it never answered.
                lb_log_warn ("broker silent for %d heartbeats: reconnecting%s%s%s%s", self->liveness_max,
                             self->pipe ? " (the broker re-queues the job in hand; it is abandoned here)" : "",
                             self->curve && !self->heard ? " (no answer since connecting with CURVE: is our "
                                                           "public key in the broker's curve_allow? key=" : "",
                             self->curve && !self->heard ? lb_curve_public (self->curve) : "",
                             self->curve && !self->heard ? ")" : "");
                s_abort_job (self);
                s_drop_broker (self);
            }
        }
    }
    if (self->broker) {
        s_send_command (self, S_DISCONNECT, NULL, NULL);
        zsock_destroy (&self->broker);
    }
    lb_log_info ("stopped service=%s jobs=%d", self->service, jobs);
    return 0;
}

//  --------------------------------------------------------------------------
//  The whole program

static volatile int s_stop;         //  the signal flag (STYLE.md section 10)

static void
s_on_signal (int signum)
{
    (void) signum;
    s_stop = 1;
}

static void
s_usage (const wk_spec_t *spec, const char *program, FILE *out)
{
    fprintf (out,
        "usage: %s [options]\n"
        "%s%s"
        "Serves the Majordomo service '%s' on the broker until SIGTERM/SIGINT.\n\n"
        "  -c, --config FILE      configuration file (else $PREDICTORS_CONFIG)\n"
        "  -b, --broker ENDPOINT  broker address (else broker.endpoint / $PREDICTORS_BROKER)\n"
        "  -s, --service NAME     serve NAME instead of '%s'\n"
        "  -v, --verbose          log at debug level\n"
        "      --once             exit after one job\n"
        "  -h, --help             this text\n\n"
        "On SIGTERM the job in hand gets worker.grace to finish, then is handed back.\n"
        "Exit status: 0 stopped cleanly, 1 fatal error, 2 bad usage.\n",
        program, spec->summary ? spec->summary : "", spec->summary ? "\n" : "",
        spec->service, spec->service);
}

int
wk_runtime_main (const wk_spec_t *spec, int argc, char **argv)
{
    assert (spec && spec->handler && spec->service);
    const char *program = strrchr (argv [0], '/') ? strrchr (argv [0], '/') + 1 : argv [0];
    static const struct option options [] = {
        { "config", required_argument, NULL, 'c' }, { "broker", required_argument, NULL, 'b' },
        { "service", required_argument, NULL, 's' }, { "verbose", no_argument, NULL, 'v' },
        { "once", no_argument, NULL, 'o' }, { "help", no_argument, NULL, 'h' }, { 0, 0, 0, 0 } };
    const char *config_path = NULL, *broker = NULL, *service = NULL;
    bool verbose = false;
    int once = 0, opt;
    opterr = 0;
    while ((opt = getopt_long (argc, argv, "c:b:s:vh", options, NULL)) != -1) {
        switch (opt) {
            case 'c': config_path = optarg; break;
            case 'b': broker = optarg; break;
            case 's': service = optarg; break;
            case 'v': verbose = true; break;
            case 'o': once = 1; break;
            case 'h': s_usage (spec, program, stdout); return 0;
            default:
                fprintf (stderr, "%s: error: unknown or incomplete option '%s' (see --help)\n",
                         program, argv [optind - 1]);
                return 2;
        }
    }
    if (optind < argc) {
        fprintf (stderr, "%s: error: unexpected argument '%s' (see --help)\n", program, argv [optind]);
        return 2;
    }
    lb_log_setup (program, LB_LOG_INFO);
    lb_config_t *config = lb_config_load (config_path);
    if (!config)
        return 1;
    lb_log_level_t level = LB_LOG_INFO;
    if (lb_log_level_parse (lb_config_str (config, "log.level"), &level) == 0)
        lb_log_set_level (verbose ? LB_LOG_DEBUG : level);
    if (broker && lb_config_set (config, "broker.endpoint", broker, "--broker")) {
        lb_config_destroy (&config);
        return 2;
    }
    zsys_handler_set (NULL);
    struct sigaction action = { 0 };
    action.sa_handler = s_on_signal;
    sigemptyset (&action.sa_mask);
    sigaction (SIGTERM, &action, NULL);
    sigaction (SIGINT, &action, NULL);
    wk_spec_t copy = *spec;
    if (service)
        copy.service = service;
    wk_runtime_t *runtime = wk_runtime_new (&copy, config);
    int rc = runtime ? wk_runtime_run (runtime, &s_stop, once) : -1;
    bool abandoned = runtime && (runtime->abandoned || runtime->pipe);
    wk_runtime_destroy (&runtime);
    lb_config_destroy (&config);
    if (abandoned) {
        //  A handler thread still holds sockets: the context cannot be
        //  terminated cleanly, and the job was handed back already.
        fflush (stdout);
        fflush (stderr);
        _exit (rc ? 1 : 0);
    }
    return rc ? 1 : 0;
}

//  --------------------------------------------------------------------------
//  Selftest: a ROUTER in the test plays the broker's part (PROTOCOL.md §3).

typedef struct {
    int calls;
} s_test_state_t;

static wk_status_t
s_test_handler (wk_job_t *job, void *arg)
{
    (void) arg;
    const char *mode = wk_job_param (job, "mode");
    int64_t ms = 0;
    wk_job_param_int (job, "ms", &ms);
    if (mode && strcmp (mode, "fail") == 0) {
        wk_job_error (job, "told_to", "failing as asked");
        return WK_FAIL;
    }
    wk_job_announce (job, "token", "t1");       //  in every progress, not in the result
    int64_t start = lb_clock_mono_us ();
    while (lb_clock_mono_us () - start < ms * 1000) {
        if (wk_job_stopping (job) && mode && strcmp (mode, "stubborn") != 0) {
            wk_job_error (job, "shutdown", "stopped early");
            return WK_RETRY;
        }
        wk_job_metric (job, "elapsed_ms", (lb_clock_mono_us () - start) / 1000.0);
        wk_job_progress (job, 100.0 * (double) (lb_clock_mono_us () - start) / (double) (ms * 1000 + 1), "sleep", "sleeping");
        zclock_sleep (20);
    }
    wk_job_output (job, "echo", wk_job_param (job, "text") ? wk_job_param (job, "text") : "");
    wk_job_metric (job, "answer", 42);
    return WK_DONE;
}

typedef struct {
    volatile int stop;
    wk_runtime_t *runtime;
    int max_jobs;
} s_test_thread_t;

static void *
s_test_run (void *arg)
{
    s_test_thread_t *t = arg;
    wk_runtime_run (t->runtime, &t->stop, t->max_jobs);
    return NULL;
}

//  Receives one worker message on router; returns the command and sets
//  *identity (caller frees) and *body (the last frame, caller destroys).
static int
s_test_recv (zsock_t *router, int timeout_ms, zframe_t **identity, zmsg_t **rest)
{
    zsock_set_rcvtimeo (router, timeout_ms);
    zmsg_t *msg = zmsg_recv (router);
    if (!msg)
        return -1;
    *identity = zmsg_pop (msg);
    char *proto = zmsg_popstr (msg);
    assert (proto && strcmp (proto, S_MDPW) == 0);
    free (proto);
    zframe_t *cmd = zmsg_pop (msg);
    int command = zframe_data (cmd) [0];
    zframe_destroy (&cmd);
    *rest = msg;
    return command;
}

//  Waits for a command other than HEARTBEAT; counts the heartbeats seen.
static int
s_test_expect (zsock_t *router, int timeout_ms, zframe_t **identity, zmsg_t **rest, int *heartbeats)
{
    int64_t until = lb_clock_mono_us () + timeout_ms * 1000;
    while (lb_clock_mono_us () < until) {
        int command = s_test_recv (router, 100, identity, rest);
        if (command < 0)
            continue;
        if (command != S_HEARTBEAT)
            return command;
        if (heartbeats)
            (*heartbeats)++;
        //  Answer, as the broker does, so the worker keeps hearing us.
        zmsg_t *beat = zmsg_new ();
        zmsg_append (beat, identity);
        zmsg_addstr (beat, S_MDPW);
        uint8_t cmd = S_HEARTBEAT;
        zmsg_addmem (beat, &cmd, 1);
        zmsg_send (&beat, router);
        zmsg_destroy (rest);
    }
    return -1;
}

static void
s_test_request (zsock_t *router, zframe_t *identity, const char *address, const uint8_t *body, size_t size)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_append (msg, &identity);
    zmsg_addstr (msg, S_MDPW);
    uint8_t cmd = S_REQUEST;
    zmsg_addmem (msg, &cmd, 1);
    zmsg_addstr (msg, address);
    zmsg_addstr (msg, "");
    zmsg_addmem (msg, body, size);
    zmsg_send (&msg, router);
}

static void
s_test_job (zsock_t *router, zframe_t *identity, const char *address, const char *mode, int ms)
{
    pr_job_t *job = pr_job_new ("run1/step1/1", "run1", "step1", "testsvc");
    pr_kv_set_str (&job->params, "mode", mode);
    pr_kv_set_int (&job->params, "ms", ms);
    pr_kv_set_str (&job->params, "text", "hi");
    size_t size;
    uint8_t *body = pr_job_encode (job, &size);
    pr_job_destroy (&job);
    s_test_request (router, identity, address, body, size);
    free (body);
}

static pr_result_t *
s_test_final (zsock_t *router, int timeout_ms, int *heartbeats, int *partials)
{
    int64_t until = lb_clock_mono_us () + timeout_ms * 1000;
    while (lb_clock_mono_us () < until) {
        zframe_t *identity = NULL;
        zmsg_t *rest = NULL;
        int command = s_test_expect (router, 100, &identity, &rest, heartbeats);
        if (command < 0)
            continue;
        char *address = zmsg_popstr (rest);
        zframe_t *empty = zmsg_pop (rest);
        zframe_t *body = zmsg_pop (rest);
        assert (address && empty && body && zframe_size (empty) == 0);
        pr_result_t *result = NULL;
        char why [256];
        if (command == S_PARTIAL) {
            pr_progress_t *progress = pr_progress_decode (zframe_data (body), zframe_size (body), why, sizeof why);
            assert (progress);
            assert (progress->percent >= 0 && progress->percent <= 100);
            assert (pr_kv_str (&progress->outputs, "token") && strcmp (pr_kv_str (&progress->outputs, "token"), "t1") == 0);
            pr_progress_destroy (&progress);
            (*partials)++;
        }
        else {
            assert (command == S_FINAL);
            result = pr_result_decode (zframe_data (body), zframe_size (body), why, sizeof why);
            assert (result && !pr_kv_find (&result->outputs, "token"));
        }
        free (address);
        zframe_destroy (&empty);
        zframe_destroy (&body);
        zframe_destroy (&identity);
        zmsg_destroy (&rest);
        if (result)
            return result;
    }
    return NULL;
}

void
wk_runtime_test (bool verbose)
{
    if (!verbose)
        lb_log_set_level (LB_LOG_ERROR);
    zsys_handler_set (NULL);
    lb_config_t *config = lb_config_new (NULL, 0);
    assert (config);
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    assert (router);
    zsock_set_router_handover (router, 1);      //  as the broker: workers reconnect under one name
    int port = zsock_bind (router, "tcp://127.0.0.1:*[30000-]");
    assert (port > 0);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    assert (lb_config_set (config, "broker.endpoint", endpoint, "test") == 0);
    assert (lb_config_set (config, "broker.heartbeat", "100ms", "test") == 0);
    assert (lb_config_set (config, "worker.grace", "300ms", "test") == 0);
    assert (lb_config_set (config, "worker.reconnect_min", "50ms", "test") == 0);
    assert (lb_config_set (config, "worker.reconnect_max", "200ms", "test") == 0);
    assert (lb_config_set (config, "worker.progress_interval", "50ms", "test") == 0);

    wk_spec_t spec = { .service = "testsvc", .handler = s_test_handler };
    s_test_thread_t t = { 0 };
    t.runtime = wk_runtime_new (&spec, config);
    assert (t.runtime);
    pthread_t thread;
    pthread_create (&thread, NULL, s_test_run, &t);

    //  READY for the service.
    zframe_t *identity = NULL;
    zmsg_t *rest = NULL;
    int command = s_test_expect (router, 5000, &identity, &rest, NULL);
    assert (command == S_READY);
    char me [64];
    snprintf (me, sizeof me, ":%d", (int) getpid ());
    char *name = zframe_strdup (identity);
    assert (strstr (name, me) && strcmp (strstr (name, me), me) == 0);     //  "host:pid"
    free (name);
    char *service = zmsg_popstr (rest);
    assert (service && strcmp (service, "testsvc") == 0);
    free (service);
    zmsg_destroy (&rest);

    //  A 600 ms job: heartbeats keep coming while it runs, progress too, then the result.
    s_test_job (router, zframe_dup (identity), "0123456789abcdef0123456789abcdef", "sleep", 600);
    int heartbeats = 0, partials = 0;
    pr_result_t *result = s_test_final (router, 5000, &heartbeats, &partials);
    assert (result);
    assert (result->status == PR_STATUS_DONE);
    assert (strcmp (result->id, "run1/step1/1") == 0);
    assert (strcmp (pr_kv_str (&result->outputs, "echo"), "hi") == 0);
    double answer = 0;
    assert (pr_kv_real (&result->metrics, "answer", &answer) == 0 && answer == 42);
    if (verbose)
        printf ("  busy 600 ms: %d heartbeats, %d progress reports\n", heartbeats, partials);
    assert (heartbeats >= 3);
    assert (partials >= 2);
    pr_result_destroy (&result);

    //  A permanent failure carries its code and message.
    s_test_job (router, zframe_dup (identity), "11111111111111111111111111111111", "fail", 0);
    result = s_test_final (router, 5000, &heartbeats, &partials);
    assert (result && result->status == PR_STATUS_FAIL);
    assert (strcmp (result->error_code, "told_to") == 0);
    assert (strcmp (result->error_message, "failing as asked") == 0);
    pr_result_destroy (&result);

    //  An envelope that does not decode never reaches the handler.
    static const uint8_t junk [] = { 0x81, 0xa1, 'x', 0x01 };
    s_test_request (router, zframe_dup (identity), "22222222222222222222222222222222", junk, sizeof junk);
    result = s_test_final (router, 5000, &heartbeats, &partials);
    assert (result && result->status == PR_STATUS_FAIL);
    assert (strcmp (result->error_code, "bad_envelope") == 0);
    pr_result_destroy (&result);

    //  The broker goes silent: the worker reconnects and says READY again.
    zframe_destroy (&identity);
    zsock_destroy (&router);
    zclock_sleep (500);
    router = zsock_new (ZMQ_ROUTER);
    assert (router);
    zsock_set_router_handover (router, 1);
    int again = zsock_bind (router, "%s", endpoint);
    assert (again == port);
    command = s_test_expect (router, 5000, &identity, &rest, NULL);
    assert (command == S_READY);
    zmsg_destroy (&rest);

    //  Stop while a job runs that ends within the grace: its result goes out, then DISCONNECT.
    s_test_job (router, zframe_dup (identity), "44444444444444444444444444444444", "stubborn", 150);
    zclock_sleep (50);
    t.stop = 1;
    result = s_test_final (router, 5000, &heartbeats, &partials);
    if (verbose)
        printf ("  stop within grace: %s %s\n", result ? pr_status_name (result->status) : "none",
                result ? result->error_code : ""), fflush (stdout);
    assert (result && result->status == PR_STATUS_DONE);
    pr_result_destroy (&result);
    command = s_test_expect (router, 2000, &identity, &rest, NULL);
    assert (command == S_DISCONNECT);
    zmsg_destroy (&rest);
    pthread_join (thread, NULL);
    wk_runtime_destroy (&t.runtime);

    //  A second worker; stop while a stubborn job runs: after the grace it is
    //  handed back as retry/shutdown.
    t.stop = 0;
    t.runtime = wk_runtime_new (&spec, config);
    pthread_create (&thread, NULL, s_test_run, &t);
    zframe_destroy (&identity);
    command = s_test_expect (router, 5000, &identity, &rest, NULL);
    assert (command == S_READY);
    zmsg_destroy (&rest);
    s_test_job (router, zframe_dup (identity), "33333333333333333333333333333333", "stubborn", 3000);
    zclock_sleep (150);
    t.stop = 1;
    result = s_test_final (router, 5000, &heartbeats, &partials);
    assert (result && result->status == PR_STATUS_RETRY);
    assert (strcmp (result->error_code, "shutdown") == 0);
    pr_result_destroy (&result);
    command = s_test_expect (router, 2000, &identity, &rest, NULL);
    assert (command == S_DISCONNECT);
    zmsg_destroy (&rest);
    pthread_join (thread, NULL);
    wk_runtime_destroy (&t.runtime);
    assert (!t.runtime);
    zframe_destroy (&identity);
    zsock_destroy (&router);
    lb_config_destroy (&config);
    //  The stubborn handler is still sleeping on its thread: leave without
    //  tearing down the ZeroMQ context under it (what wk_runtime_main does).
    fflush (stdout);
    _exit (0);
}
