/*  mn_metrics.c - counters, histograms and gauges in Prometheus text format. */
#include "mn_metrics.h"
#include "lb_mem.h"

#include <assert.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Job duration buckets, seconds (a fetch takes seconds, a training hours).
static const double s_buckets [] = { 0.1, 0.5, 1, 5, 10, 30, 60, 300, 900, 3600, 14400 };
#define S_NBUCKETS (sizeof s_buckets / sizeof s_buckets [0])

enum { O_DONE, O_FAILED, O_RETRIED, O_DEAD, O_CANCELLED, O_REQUEUED, O_COUNT };
static const char *s_outcomes [O_COUNT] = { "done", "failed", "retried", "dead", "cancelled", "requeued" };

typedef struct {
    char name [128];
    int64_t outcomes [O_COUNT];
    int64_t submitted;                      //  queued events with attempt 0
    int64_t progress;
    int64_t buckets [S_NBUCKETS];           //  cumulative at render, per-bucket here
    int64_t dur_count;
    double dur_sum;
    int64_t worker_ups, worker_downs;
    bool has_gauges;
    mn_mmi_queue_t queue;                   //  from the last snapshot
    int64_t workers_busy;
    double oldest_s;
} s_service_t;

struct _mn_metrics_t {
    s_service_t *services;
    size_t nservices;
    int64_t events [MN_EV_COUNT];
    int64_t bad_events;
    bool broker_up;
    int64_t snapshots_ok, snapshots_failed;
    mn_mmi_stat_t *stats;
    size_t nstats;
};

mn_metrics_t *
mn_metrics_new (void)
{
    mn_metrics_t *self = lb_xcalloc (1, sizeof *self);
    self->services = lb_xcalloc (MN_METRICS_MAX_SERVICES + 1, sizeof *self->services);
    return self;
}

void
mn_metrics_destroy (mn_metrics_t **self_p)
{
    assert (self_p);
    mn_metrics_t *self = *self_p;
    if (!self)
        return;
    free (self->services);
    free (self->stats);
    free (self);
    *self_p = NULL;
}

static s_service_t *
s_service (mn_metrics_t *self, const char *name)
{
    for (size_t i = 0; i < self->nservices; i++)
        if (!strcmp (self->services [i].name, name))
            return &self->services [i];
    if (self->nservices >= MN_METRICS_MAX_SERVICES)
        name = "_other";
    for (size_t i = 0; i < self->nservices; i++)
        if (!strcmp (self->services [i].name, name))
            return &self->services [i];
    s_service_t *s = &self->services [self->nservices++];
    snprintf (s->name, sizeof s->name, "%s", name);
    return s;
}

void
mn_metrics_event (mn_metrics_t *self, const mn_event_t *e)
{
    assert (self && e);
    self->events [e->ev]++;
    s_service_t *s = s_service (self, e->service);
    switch (e->ev) {
        case MN_EV_QUEUED:   if (e->attempt == 0) s->submitted++; break;
        case MN_EV_PROGRESS: s->progress++; break;
        case MN_EV_DONE: {
            s->outcomes [O_DONE]++;
            double secs = (double) e->ms / 1000.0;
            for (size_t b = 0; b < S_NBUCKETS; b++)
                if (secs <= s_buckets [b]) {
                    s->buckets [b]++;
                    break;
                }
            s->dur_count++;
            s->dur_sum += secs;
            break;
        }
        case MN_EV_FAILED:    s->outcomes [O_FAILED]++; break;
        case MN_EV_RETRIED:   s->outcomes [O_RETRIED]++; break;
        case MN_EV_DEAD:      s->outcomes [O_DEAD]++; break;
        case MN_EV_CANCELLED: s->outcomes [O_CANCELLED]++; break;
        case MN_EV_REQUEUED:  s->outcomes [O_REQUEUED]++; break;
        case MN_EV_WORKER_UP:   s->worker_ups++; break;
        case MN_EV_WORKER_DOWN: s->worker_downs++; break;
        default: break;
    }
}

void
mn_metrics_bad_event (mn_metrics_t *self)
{
    self->bad_events++;
}

int64_t
mn_metrics_events (mn_metrics_t *self)
{
    int64_t n = 0;
    for (int i = 0; i < MN_EV_COUNT; i++)
        n += self->events [i];
    return n;
}

int64_t
mn_metrics_bad_events (mn_metrics_t *self)
{
    return self->bad_events;
}

void
mn_metrics_snapshot (mn_metrics_t *self, const mn_snapshot_t *snap, bool ok)
{
    assert (self);
    self->broker_up = ok;
    if (!ok) {
        self->snapshots_failed++;
        for (size_t i = 0; i < self->nservices; i++)
            self->services [i].has_gauges = false;
        return;
    }
    self->snapshots_ok++;
    for (size_t i = 0; i < self->nservices; i++) {
        self->services [i].has_gauges = false;
        self->services [i].workers_busy = 0;
    }
    for (size_t i = 0; i < snap->nqueues; i++) {
        s_service_t *s = s_service (self, snap->queues [i].service);
        s->queue = snap->queues [i];
        s->has_gauges = true;
    }
    for (size_t i = 0; i < snap->nworkers; i++)
        if (!strcmp (snap->workers [i].state, "busy"))
            s_service (self, snap->workers [i].service)->workers_busy++;
    free (self->stats);
    self->stats = lb_xcalloc (snap->nstats + 1, sizeof *self->stats);
    if (snap->nstats)
        memcpy (self->stats, snap->stats, snap->nstats * sizeof *self->stats);
    self->nstats = snap->nstats;
}

void
mn_metrics_queue_age (mn_metrics_t *self, const char *service, double seconds)
{
    s_service (self, service)->oldest_s = seconds > 0? seconds: 0;
}

//  -------------------------------------------------------------------------
//  Rendering

typedef struct {
    char *data;
    size_t size, cap;
} s_buf_t;

static void __attribute__ ((format (printf, 2, 3)))
s_put (s_buf_t *b, const char *fmt, ...)
{
    for (;;) {
        va_list args;
        va_start (args, fmt);
        int n = vsnprintf (b->data + b->size, b->cap - b->size, fmt, args);
        va_end (args);
        assert (n >= 0);
        if ((size_t) n < b->cap - b->size) {
            b->size += (size_t) n;
            return;
        }
        b->cap = b->cap * 2 + (size_t) n + 1;
        b->data = lb_xrealloc (b->data, b->cap);
    }
}

//  A label value, escaped as the text format wants (\\, \", \n).
static const char *
s_esc (const char *in, char *out, size_t size)
{
    size_t o = 0;
    for (const char *c = in; *c && o + 3 < size; c++) {
        if (*c == '\\' || *c == '"') {
            out [o++] = '\\';
            out [o++] = *c;
        }
        else if (*c == '\n') {
            out [o++] = '\\';
            out [o++] = 'n';
        }
        else
            out [o++] = *c;
    }
    out [o] = 0;
    return out;
}

static void
s_head (s_buf_t *b, const char *name, const char *type, const char *help)
{
    s_put (b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

char *
mn_metrics_render (mn_metrics_t *self, const mn_scrape_facts_t *f)
{
    assert (self && f);
    s_buf_t b = { .data = lb_xmalloc (4096), .size = 0, .cap = 4096 };
    b.data [0] = 0;
    char e1 [300], e2 [300];
    if (f->gpu_only)
        goto gpus;

    s_head (&b, "predictors_jobs_submitted_total", "counter", "Jobs submitted to the broker (first queueing), by service.");
    for (size_t i = 0; i < self->nservices; i++)
        s_put (&b, "predictors_jobs_submitted_total{service=\"%s\"} %lld\n",
               s_esc (self->services [i].name, e1, sizeof e1), (long long) self->services [i].submitted);
    s_head (&b, "predictors_jobs_total", "counter",
            "Job attempts finished by the broker, by service and outcome (done, failed, retried, dead, cancelled, requeued).");
    for (size_t i = 0; i < self->nservices; i++)
        for (int o = 0; o < O_COUNT; o++)
            s_put (&b, "predictors_jobs_total{service=\"%s\",outcome=\"%s\"} %lld\n",
                   s_esc (self->services [i].name, e1, sizeof e1), s_outcomes [o],
                   (long long) self->services [i].outcomes [o]);
    s_head (&b, "predictors_job_duration_seconds", "histogram",
            "Time from dispatch to reply of jobs done, by service.");
    for (size_t i = 0; i < self->nservices; i++) {
        const s_service_t *s = &self->services [i];
        s_esc (s->name, e1, sizeof e1);
        int64_t cum = 0;
        for (size_t k = 0; k < S_NBUCKETS; k++) {
            cum += s->buckets [k];
            s_put (&b, "predictors_job_duration_seconds_bucket{service=\"%s\",le=\"%g\"} %lld\n", e1,
                   s_buckets [k], (long long) cum);
        }
        s_put (&b, "predictors_job_duration_seconds_bucket{service=\"%s\",le=\"+Inf\"} %lld\n", e1,
               (long long) s->dur_count);
        s_put (&b, "predictors_job_duration_seconds_sum{service=\"%s\"} %.6f\n", e1, s->dur_sum);
        s_put (&b, "predictors_job_duration_seconds_count{service=\"%s\"} %lld\n", e1, (long long) s->dur_count);
    }
    s_head (&b, "predictors_job_progress_reports_total", "counter", "Progress reports (PARTIALs) from workers, by service.");
    for (size_t i = 0; i < self->nservices; i++)
        s_put (&b, "predictors_job_progress_reports_total{service=\"%s\"} %lld\n",
               s_esc (self->services [i].name, e1, sizeof e1), (long long) self->services [i].progress);
    s_head (&b, "predictors_worker_connects_total", "counter", "Workers registering with the broker, by service.");
    for (size_t i = 0; i < self->nservices; i++)
        s_put (&b, "predictors_worker_connects_total{service=\"%s\"} %lld\n",
               s_esc (self->services [i].name, e1, sizeof e1), (long long) self->services [i].worker_ups);
    s_head (&b, "predictors_worker_disconnects_total", "counter", "Workers lost or leaving, by service.");
    for (size_t i = 0; i < self->nservices; i++)
        s_put (&b, "predictors_worker_disconnects_total{service=\"%s\"} %lld\n",
               s_esc (self->services [i].name, e1, sizeof e1), (long long) self->services [i].worker_downs);

    //  Gauges from the broker's last snapshot.
    struct { const char *name, *help; size_t off; } qg [] = {
        { "predictors_queue_jobs", "Jobs waiting in the queue, by service.", offsetof (mn_mmi_queue_t, queued) },
        { "predictors_queue_delayed_jobs", "Jobs waiting for a retry backoff or a delay, by service.", offsetof (mn_mmi_queue_t, delayed) },
        { "predictors_queue_leased_jobs", "Jobs held by workers, by service.", offsetof (mn_mmi_queue_t, leased) },
        { "predictors_dead_letter_jobs", "Jobs in the dead-letter set, by service.", offsetof (mn_mmi_queue_t, dead) },
        { "predictors_workers", "Workers registered with the broker (up), by service.", offsetof (mn_mmi_queue_t, workers) },
        { "predictors_workers_idle", "Registered workers without a job, by service.", offsetof (mn_mmi_queue_t, idle) },
    };
    for (size_t g = 0; g < sizeof qg / sizeof qg [0]; g++) {
        s_head (&b, qg [g].name, "gauge", qg [g].help);
        for (size_t i = 0; i < self->nservices; i++)
            if (self->services [i].has_gauges)
                s_put (&b, "%s{service=\"%s\"} %lld\n", qg [g].name, s_esc (self->services [i].name, e1, sizeof e1),
                       (long long) *(const int64_t *) ((const char *) &self->services [i].queue + qg [g].off));
    }
    s_head (&b, "predictors_queue_oldest_age_seconds", "gauge",
            "Age of the oldest job waiting in the queue, by service (0 when none).");
    for (size_t i = 0; i < self->nservices; i++)
        if (self->services [i].has_gauges)
            s_put (&b, "predictors_queue_oldest_age_seconds{service=\"%s\"} %.3f\n",
                   s_esc (self->services [i].name, e1, sizeof e1), self->services [i].oldest_s);

    //  The broker's own counters (mmi.stats), as it reports them.
    s_head (&b, "predictors_broker_up", "gauge", "1 when the broker answered the monitor's last mmi.* snapshot.");
    s_put (&b, "predictors_broker_up %d\n", self->broker_up? 1: 0);
    for (size_t i = 0; i < self->nstats && self->broker_up; i++) {
        const mn_mmi_stat_t *st = &self->stats [i];
        size_t n = strlen (st->name);
        char name [128];
        const char *gauge_help = !strcmp (st->name, "jobs")? "Jobs the broker holds (not yet closed).":
                                 !strcmp (st->name, "workers")? "Workers registered with the broker.":
                                 !strcmp (st->name, "journal_ok")? "1 when the broker's journal accepts writes.": NULL;
        if (gauge_help) {
            snprintf (name, sizeof name, "predictors_broker_%s", st->name);
            s_head (&b, name, "gauge", gauge_help);
            s_put (&b, "%s %lld\n", name, (long long) st->value);
        }
        else
        if (n > 6 && !strcmp (st->name + n - 6, "_bytes")) {
            snprintf (name, sizeof name, "predictors_broker_%s", st->name);
            s_head (&b, name, "gauge", "Broker gauge from mmi.stats, in bytes.");
            s_put (&b, "%s %lld\n", name, (long long) st->value);
        }
        else if (n > 3 && !strcmp (st->name + n - 3, "_us")) {
            snprintf (name, sizeof name, "predictors_broker_%.*s_seconds", (int) (n - 3), st->name);
            s_head (&b, name, "gauge", "Broker gauge from mmi.stats, in seconds.");
            s_put (&b, "%s %.6f\n", name, (double) st->value / 1e6);
        }
        else {
            snprintf (name, sizeof name, "predictors_broker_%s_total", st->name);
            s_head (&b, name, "counter", "Broker counter from mmi.stats (proto/PROTOCOL.md section 8).");
            s_put (&b, "%s %lld\n", name, (long long) st->value);
        }
    }

    //  PostgreSQL: runs and the production model's metric.
    s_head (&b, "predictors_postgres_up", "gauge", "1 when the monitor could read PostgreSQL at this scrape.");
    s_put (&b, "predictors_postgres_up %d\n", f->db_up? 1: 0);
    if (f->db_up) {
        s_head (&b, "predictors_runs_total", "counter", "Pipeline runs that finished, by pipeline and outcome.");
        for (size_t i = 0; i < f->nruns; i++)
            if (strcmp (f->runs [i].state, "queued") && strcmp (f->runs [i].state, "running"))
                s_put (&b, "predictors_runs_total{pipeline=\"%s\",outcome=\"%s\"} %lld\n",
                       s_esc (f->runs [i].pipeline, e1, sizeof e1), s_esc (f->runs [i].state, e2, sizeof e2),
                       (long long) f->runs [i].count);
        s_head (&b, "predictors_runs_active", "gauge", "Pipeline runs queued or running, by pipeline and state.");
        for (size_t i = 0; i < f->nruns; i++)
            if (!strcmp (f->runs [i].state, "queued") || !strcmp (f->runs [i].state, "running"))
                s_put (&b, "predictors_runs_active{pipeline=\"%s\",state=\"%s\"} %lld\n",
                       s_esc (f->runs [i].pipeline, e1, sizeof e1), s_esc (f->runs [i].state, e2, sizeof e2),
                       (long long) f->runs [i].count);
        s_head (&b, "predictors_production_model_metric", "gauge",
                "The production model's evaluation metric, by task and metric name.");
        for (size_t i = 0; i < f->nprod; i++)
            s_put (&b, "predictors_production_model_metric{task=\"%s\",metric=\"%s\"} %.6g\n",
                   s_esc (f->prod [i].task, e1, sizeof e1), s_esc (f->prod [i].metric, e2, sizeof e2),
                   f->prod [i].value);
    }

    //  GPUs, through NVML where the host has it.
gpus:
    s_head (&b, "predictors_nvml_available", "gauge", "1 when NVML (the NVIDIA driver library) is present on the monitor's host.");
    s_put (&b, "predictors_nvml_available %d\n", f->nvml? 1: 0);
    if (f->nvml) {
        s_head (&b, "predictors_gpu_utilization_ratio", "gauge", "GPU busy fraction over the driver's last sample period.");
        for (size_t i = 0; i < f->ngpus; i++)
            s_put (&b, "predictors_gpu_utilization_ratio{gpu=\"%d\",name=\"%s\"} %.3f\n", f->gpus [i].index,
                   s_esc (f->gpus [i].name, e1, sizeof e1), f->gpus [i].util_ratio);
        s_head (&b, "predictors_gpu_memory_used_bytes", "gauge", "GPU memory in use.");
        for (size_t i = 0; i < f->ngpus; i++)
            s_put (&b, "predictors_gpu_memory_used_bytes{gpu=\"%d\",name=\"%s\"} %.0f\n", f->gpus [i].index,
                   s_esc (f->gpus [i].name, e1, sizeof e1), f->gpus [i].mem_used_bytes);
        s_head (&b, "predictors_gpu_memory_total_bytes", "gauge", "GPU memory installed.");
        for (size_t i = 0; i < f->ngpus; i++)
            s_put (&b, "predictors_gpu_memory_total_bytes{gpu=\"%d\",name=\"%s\"} %.0f\n", f->gpus [i].index,
                   s_esc (f->gpus [i].name, e1, sizeof e1), f->gpus [i].mem_total_bytes);
    }

    if (f->gpu_only)
        return b.data;
    //  The monitor itself.
    s_head (&b, "predictors_monitor_events_total", "counter", "Broker events the monitor received and decoded, by event.");
    for (int i = 0; i < MN_EV_COUNT; i++)
        s_put (&b, "predictors_monitor_events_total{event=\"%s\"} %lld\n", mn_event_name ((mn_ev_t) i),
               (long long) self->events [i]);
    s_head (&b, "predictors_monitor_bad_events_total", "counter", "Broker events refused as malformed.");
    s_put (&b, "predictors_monitor_bad_events_total %lld\n", (long long) self->bad_events);
    s_head (&b, "predictors_monitor_catchups_total", "counter", "mmi.* snapshots taken from the broker, by result.");
    s_put (&b, "predictors_monitor_catchups_total{result=\"ok\"} %lld\n", (long long) self->snapshots_ok);
    s_put (&b, "predictors_monitor_catchups_total{result=\"failed\"} %lld\n", (long long) self->snapshots_failed);
    s_head (&b, "predictors_monitor_redis_up", "gauge", "1 when the monitor's Redis connection is up.");
    s_put (&b, "predictors_monitor_redis_up %d\n", f->redis_up? 1: 0);
    s_head (&b, "predictors_monitor_redis_errors_total", "counter", "Redis commands or connections that failed.");
    s_put (&b, "predictors_monitor_redis_errors_total %lld\n", (long long) f->redis_errors);
    return b.data;
}

void
mn_metrics_test (bool verbose)
{
    (void) verbose;
    mn_metrics_t *m = mn_metrics_new ();
    mn_event_t e = { .ev = MN_EV_DONE, .ms = 2500 };
    snprintf (e.service, sizeof e.service, "train");
    mn_metrics_event (m, &e);
    e.ms = 50;
    mn_metrics_event (m, &e);
    e.ev = MN_EV_DEAD;
    mn_metrics_event (m, &e);
    mn_metrics_bad_event (m);
    assert (mn_metrics_events (m) == 3 && mn_metrics_bad_events (m) == 1);
    mn_mmi_queue_t q = { .service = "fetch", .queued = 4, .workers = 2 };
    mn_mmi_stat_t stats [3] = { { "bad_frames", 2 }, { "journal_ok", 1 }, { "journal_bytes", 4096 } };
    mn_snapshot_t snap = { .queues = &q, .nqueues = 1, .stats = stats, .nstats = 3 };
    mn_metrics_snapshot (m, &snap, true);
    mn_metrics_queue_age (m, "fetch", 12.5);
    mn_run_count_t runs [2] = { { "weekly", "succeeded", 3 }, { "weekly", "running", 1 } };
    mn_prod_metric_t prod [1] = { { "task \"q\"", "accuracy", 0.61 } };
    mn_scrape_facts_t f = { .db_up = true, .runs = runs, .nruns = 2, .prod = prod, .nprod = 1 };
    char *text = mn_metrics_render (m, &f);
    assert (strstr (text, "predictors_jobs_total{service=\"train\",outcome=\"done\"} 2\n"));
    assert (strstr (text, "predictors_jobs_total{service=\"train\",outcome=\"dead\"} 1\n"));
    assert (strstr (text, "predictors_job_duration_seconds_bucket{service=\"train\",le=\"0.1\"} 1\n"));
    assert (strstr (text, "predictors_job_duration_seconds_bucket{service=\"train\",le=\"5\"} 2\n"));
    assert (strstr (text, "predictors_job_duration_seconds_sum{service=\"train\"} 2.550000\n"));
    assert (strstr (text, "predictors_queue_jobs{service=\"fetch\"} 4\n"));
    assert (!strstr (text, "predictors_queue_jobs{service=\"train\"}"));
    assert (strstr (text, "predictors_queue_oldest_age_seconds{service=\"fetch\"} 12.500\n"));
    assert (strstr (text, "predictors_runs_total{pipeline=\"weekly\",outcome=\"succeeded\"} 3\n"));
    assert (strstr (text, "predictors_runs_active{pipeline=\"weekly\",state=\"running\"} 1\n"));
    assert (strstr (text, "task=\"task \\\"q\\\"\""));
    assert (strstr (text, "predictors_nvml_available 0\n") && !strstr (text, "predictors_gpu_utilization"));
    assert (strstr (text, "predictors_broker_up 1\n"));
    assert (strstr (text, "# TYPE predictors_broker_bad_frames_total counter\npredictors_broker_bad_frames_total 2\n"));
    assert (strstr (text, "# TYPE predictors_broker_journal_ok gauge\npredictors_broker_journal_ok 1\n"));
    assert (strstr (text, "# TYPE predictors_broker_journal_bytes gauge\npredictors_broker_journal_bytes 4096\n"));
    free (text);
    //  A --gpu-only monitor exports the NVML part alone.
    mn_scrape_facts_t g = { .gpu_only = true };
    text = mn_metrics_render (m, &g);
    assert (strstr (text, "predictors_nvml_available 0\n") && !strstr (text, "predictors_jobs_total"));
    free (text);
    //  The broker stops answering: its gauges go.
    mn_metrics_snapshot (m, NULL, false);
    text = mn_metrics_render (m, &f);
    assert (strstr (text, "predictors_broker_up 0\n"));
    assert (!strstr (text, "predictors_queue_jobs{service=\"fetch\"}"));
    free (text);
    //  Past the cap, services fold into "_other".
    for (int i = 0; i < MN_METRICS_MAX_SERVICES + 5; i++) {
        snprintf (e.service, sizeof e.service, "s%d", i);
        mn_metrics_event (m, &e);
    }
    text = mn_metrics_render (m, &f);
    assert (strstr (text, "service=\"_other\""));
    free (text);
    mn_metrics_destroy (&m);
    mn_metrics_destroy (&m);
}
