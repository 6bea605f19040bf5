/*  worker-testkit - a small real worker for the scheduler's scenario tests ONLY.

    It is not part of any pipeline that ships; tests/t_sched_*.sh start it
    with --service sleep|echo|fail. What a job does is chosen by its "mode"
    param, else by the service name:

      sleep  sleeps param ms (default 200) in 20 ms slices, reporting progress;
             stops early with retry/"shutdown" when the runtime says so
      echo   outputs every param back as output "param.NAME" = value
      fail   fails the first param times (default 1) deliveries of this
             (run, step) with retry (code param code, default "testkit_fail"),
             then succeeds; with param permanent=true it fails for good instead

    Every execution appends "RUN STEP SERVICE ATTEMPT STATUS" to
    $TESTKIT_STATE/executions.log (default: artifacts.root/testkit), so a
    test can count how often each step really ran; fail counts deliveries in
    $TESTKIT_STATE/RUN.STEP.count.
*/
#include "lb_config.h"
#include "lb_mem.h"
#include "wk_runtime.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

static char *
s_state_dir (wk_job_t *job)
{
    const char *env = getenv ("TESTKIT_STATE");
    char *dir = env && *env ? lb_xstrdup (env)
              : lb_xasprintf ("%s/testkit", lb_config_str (wk_job_config (job), "artifacts.root"));
    mkdir (dir, 0755);
    return dir;
}

static void
s_record (wk_job_t *job, const char *what)
{
    char *dir = s_state_dir (job);
    char *path = lb_xasprintf ("%s/executions.log", dir);
    char *line = lb_xasprintf ("%s %s %s %d %s\n", wk_job_run (job), wk_job_step (job),
                               wk_job_param (job, "mode") ? wk_job_param (job, "mode") : "-",
                               wk_job_attempt (job), what);
    int fd = open (path, O_WRONLY | O_CREAT | O_APPEND, 0644);
    if (fd >= 0) {
        ssize_t n = write (fd, line, strlen (line));
        (void) n;
        close (fd);
    }
    free (line);
    free (path);
    free (dir);
}

//  Counts this delivery of (run, step); returns the count including it.
static int
s_count (wk_job_t *job)
{
    char *dir = s_state_dir (job);
    char *path = lb_xasprintf ("%s/%s.%s.count", dir, wk_job_run (job), wk_job_step (job));
    int count = 0;
    FILE *file = fopen (path, "r");
    if (file) {
        if (fscanf (file, "%d", &count) != 1)
            count = 0;
        fclose (file);
    }
    count++;
    file = fopen (path, "w");
    if (file) {
        fprintf (file, "%d\n", count);
        fclose (file);
    }
    free (path);
    free (dir);
    return count;
}

static wk_status_t
s_handle (wk_job_t *job, void *arg)
{
    const char *service = arg;
    const char *mode = wk_job_param (job, "mode") ? wk_job_param (job, "mode") : service;
    if (strcmp (mode, "sleep") == 0) {
        int64_t ms = 200;
        if (wk_job_param_int (job, "ms", &ms) < 0)
            return WK_FAIL;
        for (int64_t done = 0; done < ms; done += 20) {
            if (wk_job_stopping (job)) {
                wk_job_error (job, "shutdown", "stopped after %lld of %lld ms", (long long) done, (long long) ms);
                s_record (job, "retry");
                return WK_RETRY;
            }
            wk_job_metric (job, "slept_ms", (double) done);
            wk_job_progress (job, 100.0 * (double) done / (double) ms, "sleep", "%lld of %lld ms",
                             (long long) done, (long long) ms);
            struct timespec ts = { 0, 20 * 1000000 };
            nanosleep (&ts, NULL);
        }
        wk_job_metric (job, "slept_ms", (double) ms);
        s_record (job, "done");
        return WK_DONE;
    }
    if (strcmp (mode, "echo") == 0) {
        for (int i = 0; i < wk_job_param_count (job); i++) {
            char *name = lb_xasprintf ("param.%s", wk_job_param_name (job, i));
            wk_job_output (job, name, wk_job_param (job, wk_job_param_name (job, i)));
            free (name);
        }
        wk_job_metric (job, "params", wk_job_param_count (job));
        s_record (job, "done");
        return WK_DONE;
    }
    if (strcmp (mode, "fail") == 0) {
        int64_t times = 1;
        bool permanent = false;
        if (wk_job_param_int (job, "times", &times) < 0 || wk_job_param_bool (job, "permanent", &permanent) < 0)
            return WK_FAIL;
        const char *code = wk_job_param (job, "code") ? wk_job_param (job, "code") : "testkit_fail";
        int count = s_count (job);
        if (permanent || count <= times) {
            wk_job_error (job, code, "delivery %d of %s/%s fails as asked (times=%lld%s)", count,
                          wk_job_run (job), wk_job_step (job), (long long) times, permanent ? ", permanent" : "");
            s_record (job, permanent ? "fail" : "retry");
            return permanent ? WK_FAIL : WK_RETRY;
        }
        wk_job_metric (job, "deliveries", count);
        s_record (job, "done");
        return WK_DONE;
    }
    wk_job_error (job, "bad_params", "testkit has no mode '%s' (sleep, echo, fail)", mode);
    s_record (job, "fail");
    return WK_FAIL;
}

int
main (int argc, char **argv)
{
    //  The service decides the default mode: find --service/-s before the runtime parses it.
    const char *service = "sleep";
    for (int i = 1; i < argc - 1; i++)
        if (strcmp (argv [i], "--service") == 0 || strcmp (argv [i], "-s") == 0)
            service = argv [i + 1];
    wk_spec_t spec = { .service = "sleep", .handler = s_handle, .arg = (void *) service,
                       .summary = "test worker for scenario tests only: services sleep, echo, fail (see workers/testkit/main.c)" };
    return wk_runtime_main (&spec, argc, argv);
}
