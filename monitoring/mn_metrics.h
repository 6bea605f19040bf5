/*  mn_metrics.h - what the monitor exports on /metrics (Prometheus text format 0.0.4).

    Counters and the job-duration histogram are counted here from the
    broker's events (they start at zero when the monitor starts, as
    Prometheus counters may); gauges come from the latest mmi snapshot and,
    at each scrape, from PostgreSQL and NVML. Names follow FACTS.md: one
    prefix (predictors_), base units (seconds, bytes), _total on counters,
    labels of low cardinality only (service, outcome, pipeline, task, gpu),
    never a job id. The full list is in docs/monitor.md.
*/
#ifndef MN_METRICS_H_INCLUDED
#define MN_METRICS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "mn_event.h"
#include "mn_mmi.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MN_METRICS_MAX_SERVICES 256     //  more distinct services count as "_other"

//  Facts read from PostgreSQL and NVML at scrape time (all optional).
typedef struct {
    const char *pipeline;
    const char *state;          //  queued running succeeded failed cancelled
    int64_t count;
} mn_run_count_t;

typedef struct {
    const char *task;
    const char *metric;
    double value;
} mn_prod_metric_t;

typedef struct {
    int index;
    char name [96];
    double util_ratio;          //  0..1
    double mem_used_bytes;
    double mem_total_bytes;
} mn_gpu_t;

typedef struct {
    bool gpu_only;                          //  a --gpu-only monitor: NVML gauges and nothing else
    bool db_up;                             //  false: PostgreSQL gauges are left out
    const mn_run_count_t *runs; size_t nruns;
    const mn_prod_metric_t *prod; size_t nprod;
    bool nvml;                              //  NVML present on this host
    const mn_gpu_t *gpus; size_t ngpus;
    bool redis_up;
    int64_t redis_errors;
} mn_scrape_facts_t;

typedef struct _mn_metrics_t mn_metrics_t;

//  Returns an empty set of metrics.
mn_metrics_t *mn_metrics_new (void);

//  Destroys it. Accepts NULL; sets *self_p to NULL.
void mn_metrics_destroy (mn_metrics_t **self_p);

//  Counts one decoded event.
void mn_metrics_event (mn_metrics_t *self, const mn_event_t *event);

//  Counts one event that did not decode.
void mn_metrics_bad_event (mn_metrics_t *self);

//  Takes the gauges of a snapshot (copied). ok false: the broker did not
//  answer (predictors_broker_up 0; the last gauges are dropped).
void mn_metrics_snapshot (mn_metrics_t *self, const mn_snapshot_t *snap, bool ok);

//  Sets the age of the oldest job waiting in service's queue (0: none).
void mn_metrics_queue_age (mn_metrics_t *self, const char *service, double seconds);

//  Returns the whole exposition as a malloc'd string (caller frees).
char *mn_metrics_render (mn_metrics_t *self, const mn_scrape_facts_t *facts);

//  Totals for the monitor's heartbeat.
int64_t mn_metrics_events (mn_metrics_t *self);
int64_t mn_metrics_bad_events (mn_metrics_t *self);

//  Selftest.
void mn_metrics_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
