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
      rank   plays one rank of a training group (pr_rank.h) without a GPU, to
             test the scheduler's fan-out and gather: rank 0 hands out a
             made-up 128-byte id (wk_job_announce "nccl_id", as worker-train's
             rank 0 hands out ncclGetUniqueId's) and every rank checks in under
             $TESTKIT_STATE/group.GROUP/ (standing in for NCCL's bootstrap);
             ranks 1..N-1 check that the id they were given is rank 0's. Each
             rank waits up to param wait_ms (default 5000) for all N to
             arrive, else fails with retry "nccl_timeout" naming the missing
             ranks; param fail_rank=R makes rank R fail (retry, "rank_died")
             in the first fail_times (default 1) groups of the (run, step).

    Every execution appends "RUN STEP SERVICE ATTEMPT STATUS" to
    $TESTKIT_STATE/executions.log (default: artifacts.root/testkit), so a
    test can count how often each step really ran; fail counts deliveries in
    $TESTKIT_STATE/RUN.STEP.count.
*/
#include "lb_config.h"
#include "lb_mem.h"
#include "wk_runtime.h"
#include "pr_rank.h"

#include <dirent.h>
#include <sodium.h>

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

//  Counts one more `what` of (run, step) in a file; returns the count
//  including it ("count": deliveries).
static int
s_count (wk_job_t *job, const char *what)
{
    char *dir = s_state_dir (job);
    char *path = lb_xasprintf ("%s/%s.%s.%s", dir, wk_job_run (job), wk_job_step (job), what);
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

//  Writes text into path (whole file). 0 or -1.
static int
s_write_file (const char *path, const char *text)
{
    FILE *file = fopen (path, "w");
    if (!file)
        return -1;
    int rc = fputs (text, file) < 0 ? -1 : 0;
    return fclose (file) ? -1 : rc;
}

//  The "rank" mode (see the top of the file).
static wk_status_t
s_rank (wk_job_t *job)
{
    char err [256];
    pr_kv_t params = { 0 };
    for (int i = 0; i < wk_job_param_count (job); i++)
        pr_kv_set_str (&params, wk_job_param_name (job, i), wk_job_param (job, wk_job_param_name (job, i)));
    pr_rank_t rank;
    int prc = pr_rank_parse (&params, &rank, err, sizeof err);
    pr_kv_release (&params);
    if (prc) {
        wk_job_error (job, "bad_params", "%s", err);
        s_record (job, "fail");
        return WK_FAIL;
    }
    int64_t wait_ms = 5000, fail_rank = -1, fail_times = 1;
    if (wk_job_param_int (job, "wait_ms", &wait_ms) < 0 || wk_job_param_int (job, "fail_rank", &fail_rank) < 0
    ||  wk_job_param_int (job, "fail_times", &fail_times) < 0)
        return WK_FAIL;
    char *dir = s_state_dir (job);
    char *group = lb_xstrdup (rank.group);
    for (char *c = group; *c; c++)
        if (*c == '/')
            *c = '_';
    char *gdir = lb_xasprintf ("%s/group.%s", dir, group);
    mkdir (gdir, 0755);
    char hex [2 * PR_RANK_ID_BYTES + 1];
    char *idpath = lb_xasprintf ("%s/id", gdir);
    wk_status_t status = WK_DONE;
    if (rank.rank == 0) {
        uint8_t id [PR_RANK_ID_BYTES];
        randombytes_buf (id, sizeof id);
        pr_rank_id_hex (id, hex);
        s_write_file (idpath, hex);
        wk_job_announce (job, "nccl_id", hex);
        wk_job_progress (job, 1, "group", "rank 0 of %d: waiting for the other ranks", rank.ranks);
    }
    else {
        //  The id in this job must be the one rank 0 made.
        char made [2 * PR_RANK_ID_BYTES + 2] = "";
        FILE *file = fopen (idpath, "r");
        if (file) {
            if (!fgets (made, sizeof made, file))
                made [0] = 0;
            fclose (file);
        }
        pr_rank_id_hex (rank.id, hex);
        if (strcmp (made, hex) != 0) {
            wk_job_error (job, "bad_params", "rank %d: nccl_id is not the one rank 0 of %s made", rank.rank,
                          rank.group);
            status = WK_FAIL;
        }
    }
    char *mine = lb_xasprintf ("%s/rank.%d", gdir, rank.rank);
    if (status == WK_DONE)
        s_write_file (mine, "here\n");
    //  Wait for every rank, as ncclCommInitRank would, with a deadline.
    for (int64_t waited = 0; status == WK_DONE; waited += 20) {
        char missing [256] = "";
        size_t used = 0;
        for (int r = 0; r < rank.ranks; r++) {
            char *path = lb_xasprintf ("%s/rank.%d", gdir, r);
            if (access (path, F_OK) != 0 && used < sizeof missing - 8)
                used += (size_t) snprintf (missing + used, sizeof missing - used, "%s%d", used ? "," : "", r);
            free (path);
        }
        if (used == 0)
            break;
        if (waited >= wait_ms || wk_job_stopping (job)) {
            wk_job_error (job, "nccl_timeout", "rank %d of %d: ranks %s did not arrive within %lld ms", rank.rank,
                          rank.ranks, missing, (long long) wait_ms);
            status = WK_RETRY;
            break;
        }
        wk_job_progress (job, 1, "group", "rank %d of %d: waiting for ranks %s", rank.rank, rank.ranks, missing);
        struct timespec ts = { 0, 20 * 1000000 };
        nanosleep (&ts, NULL);
    }
    if (status == WK_DONE && rank.rank == fail_rank) {
        char what [32];
        snprintf (what, sizeof what, "rank%d.failed", rank.rank);
        if (s_count (job, what) <= fail_times) {
            wk_job_error (job, "rank_died", "rank %d of %s dies as asked", rank.rank, rank.group);
            status = WK_RETRY;
        }
    }
    if (status == WK_DONE && rank.rank == 0) {
        char *uri = lb_xasprintf ("testkit://group/%s", rank.group);
        wk_job_output (job, "model", uri);
        free (uri);
        wk_job_metric (job, "ranks", rank.ranks);
    }
    char *what = lb_xasprintf ("rank%d/%d %s", rank.rank, rank.ranks,
                               status == WK_DONE ? "done" : status == WK_RETRY ? "retry" : "fail");
    s_record (job, what);
    free (what);
    free (mine);
    free (idpath);
    free (gdir);
    free (group);
    free (dir);
    return status;
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
        int count = s_count (job, "count");
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
    if (strcmp (mode, "rank") == 0)
        return s_rank (job);
    wk_job_error (job, "bad_params", "testkit has no mode '%s' (sleep, echo, fail, rank)", mode);
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
                       .summary = "test worker for scenario tests only: services sleep, echo, fail, rank (see workers/testkit/main.c)" };
    return wk_runtime_main (&spec, argc, argv);
}
