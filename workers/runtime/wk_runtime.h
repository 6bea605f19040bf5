/*  wk_runtime.h - the loop every Predictors worker links.

    A worker is a small main() plus one handler function:

        static wk_status_t
        s_handle (wk_job_t *job, void *arg)
        {
            const char *model = wk_job_param (job, "model");     //  NULL if absent
            if (!model) {
                wk_job_error (job, "bad_params", "param 'model' is missing");
                return WK_FAIL;                                    //  permanent
            }
            for (int epoch = 0; epoch < 10; epoch++) {
                if (wk_job_stopping (job)) {                       //  SIGTERM: hand back
                    wk_job_error (job, "shutdown", "worker stopping at epoch %d", epoch);
                    return WK_RETRY;
                }
                ... work ...
                wk_job_metric (job, "loss", loss);                 //  metrics so far
                wk_job_progress (job, 10.0 * (epoch + 1), "train", "epoch %d", epoch + 1);
            }
            wk_job_output (job, "model", "file:///var/artifacts/ab/abcd...");
            wk_job_metric (job, "auc", 0.77);
            return WK_DONE;
        }

        int
        main (int argc, char **argv)
        {
            wk_spec_t spec = { .service = "train", .handler = s_handle,
                               .summary = "trains one model on a dataset artifact" };
            return wk_runtime_main (&spec, argc, argv);
        }

    What the runtime does around the handler:
    - connects a DEALER socket named "host:pid" to the broker (broker.endpoint,
      PREDICTORS_BROKER) and says READY for spec.service, speaking Majordomo as proto/PROTOCOL.md fixes it;
    - heartbeats from its own thread (the socket thread) at broker.heartbeat, also
      while the handler works, so a busy worker is never taken for dead;
    - decodes and validates each job envelope (proto/pr_job.h); an envelope that does
      not decode is answered with a "fail" result (code "bad_envelope") and never
      reaches the handler;
    - runs the handler in a second thread; progress, outputs and metrics the
      handler reports travel to the socket thread as messages (the handler never
      touches the socket), and progress goes to the broker as it comes (coalesced to
      at most a few per second);
    - sends the final result {status done|retry|fail, outputs, metrics, error};
    - when the broker stops answering (no traffic for liveness x heartbeat) it
      reconnects with exponential backoff (worker.reconnect_min .. worker.reconnect_max,
      with jitter) and says READY again; a job in hand is then abandoned (the broker
      re-queues it when it loses the worker; the handler sees wk_job_stopping() and its
      result is discarded), and the same happens when the broker sends DISCONNECT
      (mmi.cancel of the job);
    - on SIGTERM or SIGINT it takes no new job; the job in hand sees
      wk_job_stopping() == true and gets worker.grace seconds to finish; if it does,
      its result is sent; if not, the runtime hands the job back (a "retry" result,
      code "shutdown") so the broker gives it to another worker, then exits.

    Threads: wk_job_* functions are for the handler's thread only (the one the
    handler was called on), with the job handle it was given, and only until the
    handler returns. The handle is owned by the runtime.

    Standard options of wk_runtime_main (every worker has them):
        -c, --config FILE      configuration file (else $PREDICTORS_CONFIG)
        -b, --broker ENDPOINT  broker address (else broker.endpoint / PREDICTORS_BROKER)
        -s, --service NAME     serve NAME instead of spec.service
        -v, --verbose          log level debug
            --once             exit after one job (tests)
        -h, --help
    Exit status: 0 after a clean stop (signal, --once), 1 on a fatal error (bad
    configuration, cannot create a socket), 2 on bad usage.
*/
#ifndef WK_RUNTIME_H_INCLUDED
#define WK_RUNTIME_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#include "lb_config.h"

#ifdef __cplusplus
extern "C" {
#endif

//  What a handler returns. Anything else is our bug (assert).
typedef enum {
    WK_DONE  = 0,   //  the job succeeded; outputs and metrics are the result
    WK_RETRY = 1,   //  failed, worth retrying (network, busy resource, shutdown)
    WK_FAIL  = 2    //  failed for good (bad parameters, bad data): no retry
} wk_status_t;

typedef struct _wk_job_t wk_job_t;

//  The handler: called once per job on the handler thread. arg is spec.arg.
//  Before returning WK_RETRY or WK_FAIL it should call wk_job_error; if it does
//  not, the runtime reports code "unspecified".
typedef wk_status_t (wk_handler_fn) (wk_job_t *job, void *arg);

//  What a worker tells the runtime.
typedef struct {
    const char *service;      //  Majordomo service name ("discover", "train", ...)
    wk_handler_fn *handler;   //  required
    void *arg;                //  passed to every handler call
    const char *summary;      //  one line for --help
} wk_spec_t;

//  ---------------------------------------------------------------------
//  Reading the job (all strings are borrowed until the handler returns)

//  The envelope's id (the scheduler's idempotency key, "RUN/STEP/SUBMISSION"),
//  the run id, the step name, the attempt number (the scheduler's submission
//  count: 1 first, 2 after `sched retry`; the broker's own redeliveries do
//  not change it). Effects must be idempotent keyed by (run, step).
const char *wk_job_id (wk_job_t *job);
const char *wk_job_run (wk_job_t *job);
const char *wk_job_step (wk_job_t *job);
int wk_job_attempt (wk_job_t *job);

//  The wall-clock deadline in microseconds since the epoch (0: none). A
//  handler past its deadline should give up with WK_RETRY.
int64_t wk_job_deadline (wk_job_t *job);

//  True when the scheduler asked for a GPU.
bool wk_job_needs_gpu (wk_job_t *job);

//  A parameter as text (integers, reals and booleans are formatted the usual
//  way: "42", "0.5", "true"). Returns NULL if the job has no such parameter.
const char *wk_job_param (wk_job_t *job, const char *name);

//  Typed parameter getters: return 0 and set *out, 1 if the parameter is
//  absent (*out untouched: keep your default), -1 if present but not of
//  that type (also recorded with wk_job_error, code "bad_params").
int wk_job_param_int (wk_job_t *job, const char *name, int64_t *out);
int wk_job_param_real (wk_job_t *job, const char *name, double *out);
int wk_job_param_bool (wk_job_t *job, const char *name, bool *out);

//  The number of parameters and the i-th name (0 <= i < count), for
//  handlers that pass every parameter on.
int wk_job_param_count (wk_job_t *job);
const char *wk_job_param_name (wk_job_t *job, int index);

//  The worker's configuration (artifacts.root and the rest; borrowed).
lb_config_t *wk_job_config (wk_job_t *job);

//  True once the worker is stopping (SIGTERM/SIGINT), the job was abandoned
//  (broker gone or job cancelled), or the job's deadline has passed: finish
//  quickly or return WK_RETRY.
bool wk_job_stopping (wk_job_t *job);

//  ---------------------------------------------------------------------
//  Reporting

//  Progress: percent in [0, 100] (clamped), a short stage name ("download",
//  "train"), and a message. The metrics recorded so far travel with it.
//  Cheap to call often: the runtime sends at most a few per second. Each one
//  extends the job's lease in the broker (heartbeats do not: PROTOCOL.md §5),
//  so a long handler must call it at least once per lease (broker.lease, 1 h;
//  broker.service_lease, 8 h for train), or the broker hands the job to
//  another worker.
void wk_job_progress (wk_job_t *job, double percent, const char *stage,
                      const char *fmt, ...) __attribute__ ((format (printf, 4, 5)));

//  Records a named output (an artifact URI, e.g. from lb_artifact) for the
//  result. Names are unique; a second call with a name replaces the URI.
void wk_job_output (wk_job_t *job, const char *name, const char *uri);

//  Hands out a value while the job still runs: it travels in every later
//  progress report (progress.outputs, pr_job.h), not in the result, and the
//  next wk_job_progress is sent at once (not coalesced). The scheduler reads
//  it from the broker (mmi.job keeps the last progress): a training group's
//  rank 0 hands out its NCCL id this way (docs/train.md).
void wk_job_announce (wk_job_t *job, const char *name, const char *value);

//  Records a named metric (shown with progress and sent with the result).
//  A second call with a name replaces the value.
void wk_job_metric (wk_job_t *job, const char *name, double value);

//  Records the error sent with a WK_RETRY or WK_FAIL result: a short
//  machine-readable code ("bad_params", "http_503", "no_gpu") and a message
//  for people. Also logged. A later call replaces an earlier one.
void wk_job_error (wk_job_t *job, const char *code, const char *fmt, ...)
    __attribute__ ((format (printf, 3, 4)));

//  ---------------------------------------------------------------------
//  Running

//  The whole program: parses the standard options (above) from argv, loads
//  configuration, sets up logging and signals, serves jobs until stopped.
//  Returns the process exit status.
int wk_runtime_main (const wk_spec_t *spec, int argc, char **argv);

typedef struct _wk_runtime_t wk_runtime_t;

//  For programs that need their own main: a runtime for spec (copied) with
//  configuration config (borrowed, must outlive the runtime). Returns it, or
//  NULL after logging why (bad settings).
wk_runtime_t *wk_runtime_new (const wk_spec_t *spec, lb_config_t *config);

//  Destroys the runtime. Accepts NULL; sets *self_p to NULL.
void wk_runtime_destroy (wk_runtime_t **self_p);

//  Serves jobs until *stop becomes non-zero (set it from a signal handler),
//  then finishes or hands back the job in hand as described above. With
//  max_jobs > 0, returns after that many jobs. Returns 0, or -1 on a fatal
//  error (logged).
int wk_runtime_run (wk_runtime_t *self, volatile const int *stop, int max_jobs);

//  Selftest.
void wk_runtime_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
