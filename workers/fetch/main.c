/*  worker-fetch - serves the pipeline's fetch step (docs/data.md).

    As a worker (the default) it takes `fetch` jobs from the broker. A job's
    parameter "discover.task" (or "task") names the task spec (the discover
    step's output); the job gets the task's data, builds the features, label,
    baseline and time-ordered train / validation / test split, writes the
    dataset into the artifact store and records it in `datasets`. Output
    "dataset" is its URI; metrics: rows, cols, train_rows, valid_rows,
    test_rows, baseline_accuracy (test split), replayed, seconds.

    worker-fetch --task FILE|URI [--run RUN] [--step STEP] [--no-record] [-c FILE]
    does the same once without a broker and prints the dataset URI:
    exit 0 done, 1 failed for good, 75 worth retrying, 2 bad usage.
*/
#include "lb_config.h"
#include "lb_log.h"
#include "lb_mem.h"
#include "wf_fetch.h"
#include "wk_runtime.h"

#include <curl/curl.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_EXIT_TEMPFAIL 75

static void
s_job_progress (void *arg, double percent, const char *stage, const char *message)
{
    wk_job_progress ((wk_job_t *) arg, percent, stage, "%s", message);
}

static wk_status_t
s_handle (wk_job_t *job, void *arg)
{
    (void) arg;
    const char *task = wk_job_param (job, "discover.task");
    if (!task)
        task = wk_job_param (job, "task");
    if (!task) {
        wk_job_error (job, "bad_params", "no task: the job needs parameter discover.task (or task)");
        return WK_FAIL;
    }
    wf_outcome_t out;
    wf_status_t st = wf_fetch_run (wk_job_config (job), wk_job_run (job), wk_job_step (job), task, true,
                                   s_job_progress, job, &out);
    if (st == WF_DONE) {
        wk_job_output (job, "dataset", out.dataset_uri);
        wk_job_metric (job, "rows", (double) out.rows);
        wk_job_metric (job, "cols", (double) out.cols);
        wk_job_metric (job, "train_rows", (double) out.train_rows);
        wk_job_metric (job, "valid_rows", (double) out.valid_rows);
        wk_job_metric (job, "test_rows", (double) out.test_rows);
        if (!isnan (out.baseline_accuracy))
            wk_job_metric (job, "baseline_accuracy", out.baseline_accuracy);
        wk_job_metric (job, "replayed", out.replayed);
        wk_job_metric (job, "seconds", out.seconds);
    }
    else
        wk_job_error (job, out.error_code, "%s", out.error ? out.error : "failed");
    wf_outcome_release (&out);
    return st == WF_DONE ? WK_DONE : st == WF_RETRY ? WK_RETRY : WK_FAIL;
}

static int
s_once (int argc, char **argv)
{
    const char *task = NULL, *run = "manual", *step = "fetch", *config_path = NULL;
    bool record = true;
    static const struct option longopts [] = {
        { "task", required_argument, 0, 't' }, { "run", required_argument, 0, 'r' },
        { "step", required_argument, 0, 's' }, { "no-record", no_argument, 0, 'n' },
        { "config", required_argument, 0, 'c' }, { "verbose", no_argument, 0, 'v' },
        { 0, 0, 0, 0 } };
    int c;
    optind = 1;
    while ((c = getopt_long (argc, argv, "c:v", longopts, NULL)) != -1)
        switch (c) {
            case 't': task = optarg; break;
            case 'r': run = optarg; break;
            case 's': step = optarg; break;
            case 'n': record = false; break;
            case 'c': config_path = optarg; break;
            case 'v': lb_log_set_level (LB_LOG_DEBUG); break;
            default: return 2;
        }
    if (!task || optind < argc) {
        fprintf (stderr, "usage: worker-fetch --task FILE|URI [--run RUN] [--step STEP] [--no-record] [-c FILE]\n");
        return 2;
    }
    lb_config_t *config = lb_config_load (config_path);
    if (!config)
        return 2;
    curl_global_init (CURL_GLOBAL_DEFAULT);
    wf_outcome_t out;
    wf_status_t st = wf_fetch_run (config, run, step, task, record, NULL, NULL, &out);
    if (st == WF_DONE) {
        printf ("%s\n", out.dataset_uri);
        fprintf (stderr, "fetch: %zu rows (train %zu, valid %zu, test %zu), %zu columns, %.2f s%s\n",
                 out.rows, out.train_rows, out.valid_rows, out.test_rows, out.cols, out.seconds,
                 out.replayed ? ", replayed" : "");
    }
    else
        fprintf (stderr, "fetch: %s: %s\n", out.error_code, out.error);
    wf_outcome_release (&out);
    lb_config_destroy (&config);
    curl_global_cleanup ();
    return st == WF_DONE ? 0 : st == WF_RETRY ? S_EXIT_TEMPFAIL : 1;
}

int
main (int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp (argv [i], "--task") == 0 || strncmp (argv [i], "--task=", 7) == 0) {
            lb_log_setup ("worker-fetch", LB_LOG_INFO);
            return s_once (argc, argv);
        }
    curl_global_init (CURL_GLOBAL_DEFAULT);
    wk_spec_t spec = { .service = "fetch", .handler = s_handle,
                       .summary = "gets a task's data and builds its time-split dataset" };
    int rc = wk_runtime_main (&spec, argc, argv);
    curl_global_cleanup ();
    return rc;
}
