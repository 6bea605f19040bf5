/*  worker-discover - serves the pipeline's discover step (docs/discover.md).

    As a worker (the default) it takes `discover` jobs from the broker; each
    job proposes one task (the LLM with an API key, else the built-in
    catalog), novel against every task in PostgreSQL, stores it in `tasks`
    with its run, writes the spec into the artifact store and returns it as
    output "task" (its URI), with metrics task_id, proposals, llm_requests,
    history and similarity.

    worker-discover --propose [--run RUN] [--step STEP] [--no-store] [-c FILE]
    does the same once without a broker and prints the spec on stdout:
    exit 0 done, 1 failed for good, 75 worth retrying, 2 bad usage.
*/
#include "lb_artifact.h"
#include "lb_config.h"
#include "lb_log.h"
#include "lb_mem.h"
#include "wd_discover.h"
#include "wd_store.h"
#include "wk_runtime.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define S_EXIT_TEMPFAIL 75

static void
s_metrics (wk_job_t *job, const wd_outcome_t *out)
{
    wk_job_metric (job, "proposals", out->proposals);
    wk_job_metric (job, "llm_requests", out->requests);
    wk_job_metric (job, "history", (double) out->history);
    wk_job_metric (job, "similarity", out->similarity);
    if (out->task_id)
        wk_job_metric (job, "task_id", (double) out->task_id);
}

static wk_status_t
s_handle (wk_job_t *job, void *arg)
{
    (void) arg;
    lb_config_t *config = wk_job_config (job);
    wk_job_progress (job, 5, "history", "reading past tasks");
    wd_store_t *store = wd_store_new (lb_config_str (config, "postgres.url"));
    if (!store) {
        wk_job_error (job, "store", "cannot connect to PostgreSQL (postgres.url)");
        return WK_RETRY;
    }
    wd_outcome_t out;
    wd_step_t step = wd_discover_run (config, store, wk_job_run (job), wk_job_step (job), NULL, &out);
    wd_store_destroy (&store);
    s_metrics (job, &out);
    wk_status_t status = WK_DONE;
    if (step != WD_STEP_DONE) {
        wk_job_error (job, out.error_code, "%s", out.error);
        status = step == WD_STEP_RETRY ? WK_RETRY : WK_FAIL;
    }
    else {
        lb_artifact_t *store_files = lb_artifact_new (lb_config_str (config, "artifacts.root"));
        char *uri = NULL;
        if (!store_files || lb_artifact_put (store_files, out.spec_json, strlen (out.spec_json), &uri)) {
            wk_job_error (job, "artifact", "cannot write the task spec into the artifact store");
            status = WK_RETRY;
        }
        else {
            wk_job_output (job, "task", uri);
            wk_job_progress (job, 100, "done", "task %s (%s%s)", out.name, out.origin,
                             out.replayed ? ", replayed" : "");
            lb_log_info ("discover: run=%s task=%s id=%lld origin=%s proposals=%d history=%lld",
                         wk_job_run (job), out.name, (long long) out.task_id, out.origin, out.proposals,
                         (long long) out.history);
        }
        free (uri);
        lb_artifact_destroy (&store_files);
    }
    wd_outcome_release (&out);
    return status;
}

static int
s_usage (FILE *to)
{
    fprintf (to,
        "usage: worker-discover [worker options]      serve discover jobs from the broker\n"
        "       worker-discover --propose [--run RUN] [--step STEP] [--no-store] [-c FILE] [-v]\n"
        "                                              propose one task now and print its spec\n"
        "Worker options: -c FILE, -b ENDPOINT, -s SERVICE, -v, --once, -h (see docs/discover.md).\n"
        "Exit status of --propose: 0 done, 1 failed for good, 75 worth retrying, 2 bad usage.\n");
    return to == stderr ? 2 : 0;
}

static int
s_propose (int argc, char **argv)
{
    const char *run = NULL, *step = "discover", *config_path = NULL;
    bool store_it = true, verbose = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv [i];
        if (strcmp (a, "--propose") == 0)
            continue;
        if ((strcmp (a, "--run") == 0 || strcmp (a, "--step") == 0 || strcmp (a, "-c") == 0
             || strcmp (a, "--config") == 0) && i + 1 < argc) {
            const char *v = argv [++i];
            if (strcmp (a, "--run") == 0)
                run = v;
            else if (strcmp (a, "--step") == 0)
                step = v;
            else
                config_path = v;
        }
        else if (strcmp (a, "--no-store") == 0)
            store_it = false;
        else if (strcmp (a, "-v") == 0 || strcmp (a, "--verbose") == 0)
            verbose = true;
        else if (strcmp (a, "-h") == 0 || strcmp (a, "--help") == 0)
            return s_usage (stdout);
        else {
            fprintf (stderr, "worker-discover: unknown or incomplete option '%s'\n", a);
            return s_usage (stderr);
        }
    }
    lb_log_setup ("worker-discover", LB_LOG_INFO);
    lb_config_t *config = lb_config_load (config_path);
    if (!config)
        return 1;
    lb_log_level_t level;
    if (verbose)
        lb_log_set_level (LB_LOG_DEBUG);
    else
    if (lb_log_level_parse (lb_config_str (config, "log.level"), &level) == 0)
        lb_log_set_level (level);
    wd_store_t *store = NULL;
    if (store_it && !(store = wd_store_new (lb_config_str (config, "postgres.url")))) {
        lb_config_destroy (&config);
        return S_EXIT_TEMPFAIL;
    }
    wd_outcome_t out;
    wd_step_t rc = wd_discover_run (config, store, run, step, NULL, &out);
    int status = 0;
    if (rc == WD_STEP_DONE) {
        printf ("%s\n", out.spec_json);
        fprintf (stderr, "worker-discover: task %s id=%lld origin=%s%s proposals=%d llm_requests=%d "
                 "history=%lld similarity=%.3f\n", out.name, (long long) out.task_id, out.origin,
                 out.replayed ? " (replayed)" : "", out.proposals, out.requests, (long long) out.history,
                 out.similarity);
    }
    else {
        fprintf (stderr, "worker-discover: error: %s: %s\n", out.error_code, out.error);
        status = rc == WD_STEP_RETRY ? S_EXIT_TEMPFAIL : 1;
    }
    wd_outcome_release (&out);
    wd_store_destroy (&store);
    lb_config_destroy (&config);
    return status;
}

int
main (int argc, char **argv)
{
    curl_global_init (CURL_GLOBAL_DEFAULT);
    int rc;
    bool propose = false;
    for (int i = 1; i < argc; i++)
        if (strcmp (argv [i], "--propose") == 0)
            propose = true;
    if (propose)
        rc = s_propose (argc, argv);
    else {
        wk_spec_t spec = {
            .service = "discover", .handler = s_handle,
            .summary = "proposes a novel, feasible prediction task (LLM or built-in catalog)"
        };
        rc = wk_runtime_main (&spec, argc, argv);
    }
    curl_global_cleanup ();
    return rc;
}
