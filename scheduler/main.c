/*  sched - the one command a person types (docs/scheduler.md).

    Exit status: 0 ok (for a run: it succeeded); 1 the run failed or was
    cancelled, or the operation was refused; 2 bad usage or bad input
    (unknown pipeline, parameter or run); 3 PostgreSQL or the broker is
    unavailable; 4 `--wait` gave up on a step that has no worker.
*/
#include "lb_clock.h"
#include "lb_config.h"
#include "lb_log.h"
#include "lb_mem.h"
#include "lb_pg.h"
#include "lb_registry.h"
#include "sc_broker.h"
#include "sc_cron.h"
#include "sc_daemon.h"
#include "sc_live.h"
#include "sc_pipeline.h"
#include "sc_store.h"

#include <czmq.h>
#include <getopt.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

enum { S_OK = 0, S_FAILED = 1, S_USAGE = 2, S_UNAVAILABLE = 3, S_NO_WORKER = 4 };

static volatile int s_stop;         //  the signal flag

static void
s_on_signal (int signum)
{
    (void) signum;
    s_stop = 1;
}

typedef struct {
    lb_config_t *config;
    PGconn *db;
    lb_curve_t *curve;          //  scheduler.curve_* keys, or NULL
    bool json;
} s_ctx_t;

static void s_error (const char *fmt, ...) __attribute__ ((format (printf, 1, 2)));
static void
s_error (const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    fprintf (stderr, "sched: error: ");
    vfprintf (stderr, fmt, args);
    fprintf (stderr, "\n");
    va_end (args);
}

static const char s_usage_text [] =
    "usage: sched [-c FILE] COMMAND [options]\n"
    "\n"
    "  enqueue PIPELINE [--param k=v]... [--wait] [--json]   start a run of PIPELINE\n"
    "  status [RUN] [--json]         a run's steps (default: the latest run)\n"
    "  runs [--json] [--limit N]     recent runs, newest first\n"
    "  pipelines [--json]            pipelines, schedules, next fire times\n"
    "  workers [--json]              services, queues and workers the broker knows\n"
    "  logs RUN                      what happened to a run\n"
    "  pause PIPELINE | resume PIPELINE   stop / restart firing its cron slots\n"
    "  cancel RUN                    cancel a queued or running run\n"
    "  retry RUN                     run a failed run again from its failed steps\n"
    "  dead [--json]                 jobs the broker gave up on\n"
    "  requeue JOB                   put a dead job back in its queue\n"
    "  rollback TASK [--json]        put the task's previous model back in production\n"
    "  daemon [--once]               fire cron slots and drive runs (sched daemon)\n"
    "\n"
    "  -c, --config FILE   configuration file (else $PREDICTORS_CONFIG); environment:\n"
    "                      DATABASE_URL, REDIS_URL, PREDICTORS_BROKER\n"
    "  -h, --help          this text; `sched COMMAND --help` for one command\n"
    "\n"
    "Exit status: 0 ok (a run: succeeded), 1 run failed or cancelled / refused, 2 bad usage\n"
    "or input, 3 PostgreSQL or broker unavailable, 4 --wait gave up on a step with no worker.\n";

//  --------------------------------------------------------------------------
//  Helpers

static int
s_db (s_ctx_t *ctx)
{
    if (ctx->db && PQstatus (ctx->db) == CONNECTION_OK)
        return 0;
    if (ctx->db)
        PQfinish (ctx->db);
    const char *url = lb_config_str (ctx->config, "postgres.url");
    const char *keys [] = { "dbname", "application_name", "connect_timeout", NULL };
    const char *values [] = { url, "sched", "5", NULL };
    ctx->db = PQconnectdbParams (keys, values, 1);
    if (PQstatus (ctx->db) != CONNECTION_OK) {
        char safe [512];
        char *why = lb_xstrdup (PQerrorMessage (ctx->db));
        why [strcspn (why, "\n")] = 0;
        s_error ("PostgreSQL unavailable at %s: %s", lb_pg_safe_url (url, safe, sizeof safe), why);
        free (why);
        PQfinish (ctx->db);
        ctx->db = NULL;
        return -1;
    }
    PQclear (PQexec (ctx->db, "set client_min_messages = warning"));
    PQclear (PQexec (ctx->db, "set timezone = 'UTC'"));
    PGresult *res = PQexec (ctx->db, "select to_regclass('sched_runs') is not null");
    bool ok = PQresultStatus (res) == PGRES_TUPLES_OK && strcmp (PQgetvalue (res, 0, 0), "t") == 0;
    PQclear (res);
    if (!ok) {
        s_error ("the database has no scheduler tables: run deploy/migrate first");
        PQfinish (ctx->db);
        ctx->db = NULL;
        return -1;
    }
    return 0;
}

//  Runs a query returning one JSON text value; returns it parsed or NULL.
static json_t *
s_query_json (s_ctx_t *ctx, const char *sql, int nparams, const char *const *params)
{
    PGresult *res = PQexecParams (ctx->db, sql, nparams, NULL, params, NULL, NULL, 0);
    if (PQresultStatus (res) != PGRES_TUPLES_OK) {
        char *why = lb_xstrdup (PQerrorMessage (ctx->db));
        why [strcspn (why, "\n")] = 0;
        s_error ("PostgreSQL: %s", why);
        free (why);
        PQclear (res);
        return NULL;
    }
    json_t *json = PQntuples (res) == 1 && !PQgetisnull (res, 0, 0)
                 ? json_loads (PQgetvalue (res, 0, 0), 0, NULL) : json_null ();
    PQclear (res);
    return json;
}

static void
s_print_json (json_t *json)
{
    char *text = json_dumps (json, JSON_INDENT (2) | JSON_PRESERVE_ORDER);
    printf ("%s\n", text);
    free (text);
}

static const char *
s_str (json_t *obj, const char *key)
{
    const char *value = json_string_value (json_object_get (obj, key));
    return value ? value : "";
}

//  "2026-11-22T01:30:00.123+00:00" -> "01:30:00" (or "2026-11-22 01:30" when old)
static void
s_short_time (const char *iso, char *buf, size_t size)
{
    if (!iso || strlen (iso) < 19) {
        snprintf (buf, size, "-");
        return;
    }
    snprintf (buf, size, "%.10s %.8s", iso, iso + 11);
}

static void
s_duration (double seconds, char *buf, size_t size)
{
    if (seconds < 0)
        snprintf (buf, size, "-");
    else
    if (seconds < 60)
        snprintf (buf, size, "%.1fs", seconds);
    else
    if (seconds < 3600)
        snprintf (buf, size, "%dm%02ds", (int) seconds / 60, (int) seconds % 60);
    else
        snprintf (buf, size, "%dh%02dm", (int) seconds / 3600, (int) seconds % 3600 / 60);
}

static const char s_run_sql [] =
    "select json_build_object("
    " 'id', r.id, 'pipeline', r.pipeline, 'state', r.state, 'trigger', r.trigger, 'slot', r.slot,"
    " 'params', r.params, 'error', r.error, 'created_at', r.created_at, 'started_at', r.started_at,"
    " 'finished_at', r.finished_at,"
    " 'seconds', extract(epoch from coalesce(r.finished_at, now()) - r.started_at),"
    " 'steps', (select coalesce(json_agg(json_build_object("
    "    'name', s.name, 'service', s.service, 'needs', s.needs, 'state', s.state,"
    "    'submission', s.submission, 'attempt', s.broker_attempt, 'max_attempts', s.attempts,"
    "    'job', s.job_id, 'percent', s.percent, 'stage', s.stage, 'message', s.message,"
    "    'outputs', s.outputs, 'metrics', s.metrics, 'ranks', s.ranks, 'rank_jobs', s.rank_jobs,"
    "    'group_try', s.group_try,"
    "    'error', case when s.error_code is null then null"
    "             else json_build_object('code', s.error_code, 'message', s.error_message) end,"
    "    'submitted_at', s.submitted_at, 'started_at', s.started_at, 'finished_at', s.finished_at,"
    "    'seconds', extract(epoch from coalesce(s.finished_at, now()) - coalesce(s.started_at, s.submitted_at))"
    "   ) order by s.ord), '[]') from sched_steps s where s.run_id = r.id)"
    ") from sched_runs r where r.id = $1";

static json_t *
s_load_run (s_ctx_t *ctx, const char *run_id)
{
    const char *params [] = { run_id };
    return s_query_json (ctx, s_run_sql, 1, params);
}

static void
s_bar (double percent, char *buf, size_t size)
{
    int width = 20, filled = (int) (percent / 100.0 * width + 0.5);
    if (filled > width)
        filled = width;
    size_t used = (size_t) snprintf (buf, size, "[");
    for (int i = 0; i < width && used + 1 < size; i++)
        buf [used++] = i < filled ? '#' : '.';
    snprintf (buf + used, size - used, "] %3.0f%%", percent);
}

//  One line about a step's state: progress, waiting reason, or error.
static void
s_step_note (json_t *step, bool bars, char *buf, size_t size)
{
    const char *state = s_str (step, "state");
    json_t *error = json_object_get (step, "error");
    if (json_is_object (error)) {
        snprintf (buf, size, "%s: %s", s_str (error, "code"), s_str (error, "message"));
        return;
    }
    if (strcmp (state, "waiting") == 0) {
        json_t *needs = json_object_get (step, "needs");
        size_t used = (size_t) snprintf (buf, size, "%s", json_array_size (needs) ? "needs " : "");
        for (size_t i = 0; i < json_array_size (needs) && used < size; i++)
            used += (size_t) snprintf (buf + used, size - used, "%s%s", i ? ", " : "",
                                       json_string_value (json_array_get (needs, i)));
        return;
    }
    if (strcmp (state, "done") == 0) {
        json_t *metrics = json_object_get (step, "metrics");
        size_t used = 0;
        buf [0] = 0;
        const char *key;
        json_t *value;
        json_object_foreach (metrics, key, value) {
            if (used < size)
                used += (size_t) snprintf (buf + used, size - used, "%s%s=%.4g", used ? " " : "", key,
                                           json_number_value (value));
        }
        return;
    }
    char bar [64] = "";
    if (bars && strcmp (state, "running") == 0 && json_is_number (json_object_get (step, "percent")))
        s_bar (json_number_value (json_object_get (step, "percent")), bar, sizeof bar);
    const char *stage = s_str (step, "stage"), *message = s_str (step, "message");
    snprintf (buf, size, "%s%s%s%s%s", bar, *bar ? " " : "", *stage && strcmp (stage, "no-worker") ? stage : "",
              *stage && strcmp (stage, "no-worker") && *message ? ": " : "", message);
}

//  Prints a run as a table. Returns the number of lines written.
static int
s_print_run (json_t *run, bool bars)
{
    int lines = 0;
    char started [32], took [32];
    s_short_time (s_str (run, "started_at"), started, sizeof started);
    s_duration (json_is_number (json_object_get (run, "seconds")) ? json_number_value (json_object_get (run, "seconds")) : -1,
                took, sizeof took);
    printf ("run %s  pipeline %s  %s  (%s, started %s, %s)\n", s_str (run, "id"), s_str (run, "pipeline"),
            s_str (run, "state"), s_str (run, "trigger"), started, took);
    printf ("  %-18s %-10s %-10s %-8s %-8s %s\n", "STEP", "SERVICE", "STATE", "ATTEMPT", "TIME", "PROGRESS / RESULT");
    lines += 2;
    size_t i;
    json_t *step;
    json_array_foreach (json_object_get (run, "steps"), i, step) {
        char note [512], attempt [64] = "", time_text [32] = "";
        const char *state = s_str (step, "state");
        if (json_integer_value (json_object_get (step, "submission")) > 0)
            snprintf (attempt, sizeof attempt, "%lld/%lld",
                      (long long) (json_integer_value (json_object_get (step, "attempt")) ?
                                   json_integer_value (json_object_get (step, "attempt")) : 1),
                      (long long) json_integer_value (json_object_get (step, "max_attempts")));
        json_int_t ranks = json_integer_value (json_object_get (step, "ranks"));
        if (ranks > 1 && json_integer_value (json_object_get (step, "group_try")) > 0)
            //  A training group: its tries, each with every rank once (docs/train.md).
            snprintf (attempt, sizeof attempt, "%lldx%lld/%lld",
                      (long long) ranks, (long long) json_integer_value (json_object_get (step, "group_try")),
                      (long long) json_integer_value (json_object_get (step, "max_attempts")));
        if (strcmp (state, "waiting") && json_is_number (json_object_get (step, "seconds")))
            s_duration (json_number_value (json_object_get (step, "seconds")), time_text, sizeof time_text);
        s_step_note (step, bars, note, sizeof note);
        printf ("  %-18s %-10s %-10s %-8s %-8s %.100s\n", s_str (step, "name"), s_str (step, "service"),
                state, attempt, time_text, note);
        lines++;
    }
    if (*s_str (run, "error")) {
        printf ("error: %s\n", s_str (run, "error"));
        lines++;
    }
    return lines;
}

//  --------------------------------------------------------------------------
//  Commands

typedef int (s_command_fn) (s_ctx_t *ctx, int argc, char **argv);

typedef struct {
    const char *name;
    s_command_fn *fn;
    const char *usage;
} s_command_t;

//  Parses the options every command shares. Returns -1 on help (printed),
//  -2 on a bad option (error printed), else the index of the first operand.
static int
s_options (int argc, char **argv, const char *usage, s_ctx_t *ctx, const struct option *extra,
           int (*on_extra) (int opt, const char *arg, void *user), void *user)
{
    struct option options [16];
    size_t n = 0;
    options [n++] = (struct option) { "help", no_argument, NULL, 'h' };
    options [n++] = (struct option) { "json", no_argument, NULL, 'j' };
    for (size_t i = 0; extra && extra [i].name && n < 15; i++)
        options [n++] = extra [i];
    options [n] = (struct option) { 0, 0, 0, 0 };
    optind = 0;             //  glibc: start afresh (options may follow operands)
    opterr = 0;
    int opt;
    while ((opt = getopt_long (argc, argv, "h", options, NULL)) != -1) {
        if (opt == 'h') {
            printf ("%s", usage);
            return -1;
        }
        if (opt == 'j') {
            ctx->json = true;
            continue;
        }
        if (opt != '?' && on_extra && on_extra (opt, optarg, user) == 0)
            continue;
        if (opt == '?') {
            s_error ("%s: unknown or incomplete option '%s' (see sched %s --help)", argv [0], argv [optind - 1], argv [0]);
            return -2;
        }
        return -2;
    }
    return optind;
}

static int
s_operands (int argc, int first, int want, const char *command)
{
    if (argc - first < want) {
        s_error ("%s: missing operand (see sched %s --help)", command, command);
        return -1;
    }
    if (argc - first > want) {
        s_error ("%s: unexpected operand (see sched %s --help)", command, command);
        return -1;
    }
    return 0;
}

//  Unknown run id: exit 2 with a clear line. Returns 0 when it exists.
static int
s_check_run (s_ctx_t *ctx, const char *run_id)
{
    int found = sc_store_run_exists (ctx->db, run_id);
    if (found == 1)
        return S_OK;
    if (found == 0) {
        s_error ("unknown run '%s' (see sched runs)", run_id);
        return S_USAGE;
    }
    return S_UNAVAILABLE;
}

typedef struct {
    char **params;
    size_t count;
    bool wait;
    double no_worker;
    int limit;
    bool once;
} s_opts_t;

static int
s_on_opt (int opt, const char *arg, void *user)
{
    s_opts_t *opts = user;
    if (opt == 'p') {
        opts->params = lb_xrealloc (opts->params, (opts->count + 1) * sizeof (char *));
        opts->params [opts->count++] = (char *) arg;
        return 0;
    }
    if (opt == 'w') {
        opts->wait = true;
        return 0;
    }
    if (opt == 'n') {
        if (lb_config_parse_seconds (arg, &opts->no_worker) || opts->no_worker < 0) {
            s_error ("--no-worker-timeout: '%s' is not a duration", arg);
            return -1;
        }
        return 0;
    }
    if (opt == 'l') {
        int64_t n;
        if (lb_config_parse_int (arg, &n) || n < 1 || n > 100000) {
            s_error ("--limit: '%s' is not a number from 1 to 100000", arg);
            return -1;
        }
        opts->limit = (int) n;
        return 0;
    }
    if (opt == 'o') {
        opts->once = true;
        return 0;
    }
    return -1;
}

//  The start of every command: options, --help, the number of operands
//  (-1: any). Returns -1 to go on (*first is the first operand), else the
//  exit status.
static int
s_begin (int argc, char **argv, const char *usage, s_ctx_t *ctx, const struct option *extra,
         void *opts, int operands, int *first)
{
    *first = s_options (argc, argv, usage, ctx, extra, extra ? s_on_opt : NULL, opts);
    if (*first == -1)
        return S_OK;
    if (*first < 0 || (operands >= 0 && s_operands (argc, *first, operands, argv [0])))
        return S_USAGE;
    return -1;
}

//  Follows a run until it finishes. Returns the exit status.
static int
s_wait (s_ctx_t *ctx, const char *run_id, double no_worker)
{
    bool tty = isatty (STDOUT_FILENO) && !ctx->json;
    int drawn = 0;
    bool warned_daemon = false, warned_db = false;
    json_t *last = NULL;
    int64_t stuck_since = 0;
    int rc = S_OK;
    while (!s_stop) {
        if (s_db (ctx)) {
            if (!warned_db)
                fprintf (stderr, "sched: PostgreSQL went away; still waiting for run %s\n", run_id);
            warned_db = true;
            zclock_sleep (1000);
            continue;
        }
        warned_db = false;
        json_t *run = s_load_run (ctx, run_id);
        if (!run || !json_is_object (run)) {
            json_decref (run);
            zclock_sleep (500);
            continue;
        }
        const char *state = s_str (run, "state");
        if (!warned_daemon && strcmp (state, "queued") == 0) {
            PGresult *res = PQexec (ctx->db, "select count(*) from sched_daemons where beat_at > now() - interval '15 seconds'");
            if (PQresultStatus (res) == PGRES_TUPLES_OK && atoi (PQgetvalue (res, 0, 0)) == 0) {
                fprintf (stderr, "sched: no sched daemon is running: the run stays queued until one starts (sched daemon)\n");
                warned_daemon = true;
            }
            PQclear (res);
        }
        bool finished = strcmp (state, "queued") && strcmp (state, "running");
        if (tty) {
            if (drawn)
                printf ("\033[%dA\033[J", drawn);
            drawn = s_print_run (run, true);
            fflush (stdout);
        }
        else
        if (!ctx->json) {
            //  Plain lines: one per change of a step's state or waiting reason.
            size_t i;
            json_t *step;
            json_array_foreach (json_object_get (run, "steps"), i, step) {
                json_t *before = last ? json_array_get (json_object_get (last, "steps"), i) : NULL;
                const char *now_state = s_str (step, "state");
                bool changed = !before || strcmp (s_str (before, "state"), now_state)
                            || (strcmp (s_str (step, "stage"), "no-worker") == 0) != (strcmp (s_str (before, "stage"), "no-worker") == 0);
                if (!changed || (!before && strcmp (now_state, "waiting") == 0))
                    continue;
                char note [512] = "", stamp [32];
                s_step_note (step, false, note, sizeof note);
                lb_clock_format_iso (lb_clock_wall_us (), stamp, sizeof stamp);
                printf ("%.8s %-18s %-10s %s\n", stamp + 11, s_str (step, "name"), now_state, note);
            }
            fflush (stdout);
        }
        //  A step waiting for a worker that does not exist.
        const char *missing = NULL;
        size_t i;
        json_t *step;
        json_array_foreach (json_object_get (run, "steps"), i, step)
            if (strcmp (s_str (step, "stage"), "no-worker") == 0)
                missing = s_str (step, "name");
        if (missing && !stuck_since)
            stuck_since = lb_clock_mono_us ();
        if (!missing)
            stuck_since = 0;
        json_decref (last);
        last = run;
        if (finished) {
            if (ctx->json)
                s_print_json (run);
            else
            if (!tty)
                printf ("run %s %s\n", run_id, state);
            if (!ctx->json && *s_str (run, "error"))
                printf ("error: %s\n", s_str (run, "error"));
            rc = strcmp (state, "succeeded") == 0 ? S_OK : S_FAILED;
            break;
        }
        if (missing && no_worker > 0 && lb_clock_mono_us () - stuck_since > no_worker * 1e6) {
            json_array_foreach (json_object_get (run, "steps"), i, step)
                if (strcmp (s_str (step, "stage"), "no-worker") == 0)
                    printf ("run %s is waiting: step %s: %s\n", run_id, s_str (step, "name"), s_str (step, "message"));
            printf ("(the run stays queued in the broker and goes on when the worker starts; sched cancel %s to stop it)\n", run_id);
            rc = S_NO_WORKER;
            break;
        }
        zclock_sleep (tty ? 300 : 500);
    }
    json_decref (last);
    if (s_stop && rc == S_OK)
        rc = S_FAILED;
    return rc;
}

static int
s_cmd_enqueue (s_ctx_t *ctx, int argc, char **argv)
{
    static const struct option extra [] = {
        { "param", required_argument, NULL, 'p' }, { "wait", no_argument, NULL, 'w' },
        { "no-worker-timeout", required_argument, NULL, 'n' }, { 0, 0, 0, 0 } };
    s_opts_t opts = { 0 };
    int first = s_options (argc, argv, 
        "usage: sched enqueue PIPELINE [--param k=v]... [--wait [--no-worker-timeout SECONDS]] [--json]\n"
        "Starts a run of PIPELINE (a file in scheduler.pipelines) and prints its id. --param sets\n"
        "one of the pipeline's [params]. --wait follows the run to its end (progress bars on a\n"
        "terminal, one line per change otherwise) and exits 0 only if it succeeded; with\n"
        "--no-worker-timeout it gives up (exit 4) when a step has waited that long for a service\n"
        "no worker serves.\n", ctx, extra, s_on_opt, &opts);
    int rc = S_USAGE;
    if (first == -1)
        rc = S_OK;
    if (first < 0 || s_operands (argc, first, 1, "enqueue"))
        goto out;
    char err [1024];
    sc_pipeline_t *pipeline = sc_pipeline_find (lb_config_str (ctx->config, "scheduler.pipelines"),
                                                argv [first], err, sizeof err);
    if (!pipeline) {
        s_error ("%s", err);
        goto out;
    }
    pr_kv_t params = { 0 };
    if (sc_pipeline_run_params (pipeline, opts.params, opts.count, &params, err, sizeof err)) {
        s_error ("%s", err);
        pr_kv_release (&params);
        sc_pipeline_destroy (&pipeline);
        goto out;
    }
    rc = S_UNAVAILABLE;
    char *run_id = NULL;
    if (s_db (ctx) == 0) {
        if (sc_store_enqueue (ctx->db, pipeline, &params, "manual", -1, &run_id, err, sizeof err) == 0) {
            sc_live_t *live = sc_live_new (lb_config_str (ctx->config, "redis.url"));
            sc_store_publish (ctx->db, live, run_id, 0);
            sc_live_destroy (&live);
            if (!opts.wait && ctx->json)
                printf ("{\"id\": \"%s\", \"pipeline\": \"%s\", \"state\": \"queued\"}\n", run_id, sc_pipeline_name (pipeline));
            else
                printf ("run %s enqueued (pipeline %s)\n", run_id, sc_pipeline_name (pipeline));
            fflush (stdout);
            rc = opts.wait ? s_wait (ctx, run_id, opts.no_worker) : S_OK;
        }
        else
            s_error ("%s", err);
    }
    free (run_id);
    pr_kv_release (&params);
    sc_pipeline_destroy (&pipeline);
out:
    free (opts.params);
    return rc;
}

static int
s_cmd_status (s_ctx_t *ctx, int argc, char **argv)
{
    int first = s_options (argc, argv,
        "usage: sched status [RUN] [--json]\n"
        "Shows a run and its steps: state, attempt, time, progress, result metrics, errors.\n"
        "Without RUN, the latest run. --json prints the run as one object.\n", ctx, NULL, NULL, NULL);
    if (first == -1)
        return S_OK;
    if (first < 0 || argc - first > 1) {
        if (first >= 0)
            s_error ("status: unexpected operand (see sched status --help)");
        return S_USAGE;
    }
    if (s_db (ctx))
        return S_UNAVAILABLE;
    char *run_id = NULL;
    if (argc - first == 1) {
        int rc = s_check_run (ctx, argv [first]);
        if (rc)
            return rc;
        run_id = lb_xstrdup (argv [first]);
    }
    else {
        PGresult *res = PQexec (ctx->db, "select id from sched_runs order by created_at desc limit 1");
        if (PQresultStatus (res) == PGRES_TUPLES_OK && PQntuples (res) == 1)
            run_id = lb_xstrdup (PQgetvalue (res, 0, 0));
        PQclear (res);
        if (!run_id) {
            if (ctx->json)
                printf ("null\n");
            else
                printf ("no runs yet (sched enqueue PIPELINE)\n");
            return S_OK;
        }
    }
    json_t *run = s_load_run (ctx, run_id);
    free (run_id);
    if (!run)
        return S_UNAVAILABLE;
    if (ctx->json)
        s_print_json (run);
    else {
        s_print_run (run, isatty (STDOUT_FILENO));
        //  Outputs of finished steps, for people looking for artifacts.
        size_t i;
        json_t *step;
        json_array_foreach (json_object_get (run, "steps"), i, step) {
            const char *key;
            json_t *value;
            json_object_foreach (json_object_get (step, "outputs"), key, value)
                printf ("  output %s.%s = %s\n", s_str (step, "name"), key, json_string_value (value));
        }
    }
    json_decref (run);
    return S_OK;
}

static int
s_cmd_runs (s_ctx_t *ctx, int argc, char **argv)
{
    static const struct option extra [] = { { "limit", required_argument, NULL, 'l' }, { 0, 0, 0, 0 } };
    s_opts_t opts = { .limit = 20 };
    int first, begun = s_begin (argc, argv,
        "usage: sched runs [--json] [--limit N]\n"
        "Recent runs, newest first (default 20). --json: an array of {id, pipeline, state, trigger,\n"
        "created_at, started_at, finished_at, error, steps, steps_done}.\n", ctx, extra, &opts, 0, &first);
    if (begun >= 0)
        return begun;
    if (s_db (ctx))
        return S_UNAVAILABLE;
    char limit [16];
    snprintf (limit, sizeof limit, "%d", opts.limit);
    const char *params [] = { limit };
    json_t *runs = s_query_json (ctx,
        "select coalesce(json_agg(x order by x.created_at desc), '[]') from ("
        " select r.id, r.pipeline, r.state, r.trigger, r.created_at, r.started_at, r.finished_at, r.error,"
        "  (select count(*) from sched_steps s where s.run_id = r.id) as steps,"
        "  (select count(*) from sched_steps s where s.run_id = r.id and s.state = 'done') as steps_done"
        " from sched_runs r order by r.created_at desc limit $1::int) x", 1, params);
    if (!runs)
        return S_UNAVAILABLE;
    if (ctx->json)
        s_print_json (runs);
    else {
        printf ("%-34s %-10s %-10s %-7s %-20s %-6s %s\n", "RUN", "PIPELINE", "STATE", "TRIGGER", "CREATED", "STEPS", "ERROR");
        size_t i;
        json_t *run;
        json_array_foreach (runs, i, run) {
            char created [32], steps [32];
            s_short_time (s_str (run, "created_at"), created, sizeof created);
            snprintf (steps, sizeof steps, "%lld/%lld", (long long) json_integer_value (json_object_get (run, "steps_done")),
                      (long long) json_integer_value (json_object_get (run, "steps")));
            printf ("%-34s %-10s %-10s %-7s %-20s %-6s %.60s\n", s_str (run, "id"), s_str (run, "pipeline"),
                    s_str (run, "state"), s_str (run, "trigger"), created, steps, s_str (run, "error"));
        }
    }
    json_decref (runs);
    return S_OK;
}

static int
s_cmd_pipelines (s_ctx_t *ctx, int argc, char **argv)
{
    int first, begun = s_begin (argc, argv,
        "usage: sched pipelines [--json]\n"
        "The pipelines in scheduler.pipelines: steps, schedule, zone, overlap, catch-up, paused,\n"
        "and the next fire times. A definition with an error is shown with the error.\n", ctx, NULL, NULL, 0, &first);
    if (begun >= 0)
        return begun;
    const char *dir = lb_config_str (ctx->config, "scheduler.pipelines");
    char **names = sc_pipeline_names (dir);
    if (!names) {
        s_error ("cannot read the pipelines directory %s (scheduler.pipelines)", dir);
        return S_USAGE;
    }
    bool db = s_db (ctx) == 0;
    json_t *list = json_array ();
    int rc = S_OK;
    for (size_t i = 0; names [i]; i++) {
        json_t *entry = json_object ();
        json_object_set_new (entry, "name", json_string (names [i]));
        char err [1024];
        char *path = lb_xasprintf ("%s/%s.conf", dir, names [i]);
        sc_pipeline_t *pipeline = sc_pipeline_load (path, err, sizeof err);
        free (path);
        if (!pipeline) {
            json_object_set_new (entry, "error", json_string (err));
            rc = S_USAGE;
        }
        else {
            json_object_set_new (entry, "description", json_string (sc_pipeline_description (pipeline)));
            json_object_set_new (entry, "steps", json_integer ((json_int_t) sc_pipeline_step_count (pipeline)));
            sc_cron_t *cron = sc_pipeline_schedule (pipeline);
            json_object_set_new (entry, "schedule", cron ? json_string (sc_cron_expr (cron)) : json_null ());
            json_object_set_new (entry, "timezone", json_string (cron ? sc_cron_zone (cron) : "UTC"));
            json_object_set_new (entry, "overlap", json_string (sc_overlap_name (sc_pipeline_overlap (pipeline))));
            json_object_set_new (entry, "catchup_s", json_real (sc_pipeline_catchup (pipeline)));
            json_t *next = json_array ();
            int64_t t = lb_clock_wall_us () / 1000000;
            for (int k = 0; cron && k < 3 && (t = sc_cron_next (cron, t)) >= 0; k++) {
                char when [32];
                lb_clock_format_iso (t * 1000000, when, sizeof when);
                json_array_append_new (next, json_string (when));
            }
            json_object_set_new (entry, "next", next);
            bool paused = false;
            if (db) {
                const char *params [] = { names [i] };
                PGresult *res = PQexecParams (ctx->db, "select paused from sched_pipelines where name = $1", 1, NULL,
                                              params, NULL, NULL, 0);
                paused = PQresultStatus (res) == PGRES_TUPLES_OK && PQntuples (res) == 1
                      && strcmp (PQgetvalue (res, 0, 0), "t") == 0;
                PQclear (res);
            }
            json_object_set_new (entry, "paused", json_boolean (paused));
            sc_pipeline_destroy (&pipeline);
        }
        json_array_append_new (list, entry);
    }
    sc_pipeline_names_free (&names);
    if (ctx->json)
        s_print_json (list);
    else {
        size_t i;
        json_t *entry;
        json_array_foreach (list, i, entry) {
            if (json_object_get (entry, "error")) {
                printf ("%-12s ERROR %s\n", s_str (entry, "name"), s_str (entry, "error"));
                continue;
            }
            printf ("%-12s %lld steps  schedule %s (%s)  overlap %s  catch-up %.0fs%s\n", s_str (entry, "name"),
                    (long long) json_integer_value (json_object_get (entry, "steps")),
                    json_is_string (json_object_get (entry, "schedule")) ? s_str (entry, "schedule") : "none",
                    s_str (entry, "timezone"), s_str (entry, "overlap"),
                    json_number_value (json_object_get (entry, "catchup_s")),
                    json_is_true (json_object_get (entry, "paused")) ? "  PAUSED" : "");
            size_t k;
            json_t *when;
            json_array_foreach (json_object_get (entry, "next"), k, when)
                printf ("             next %s\n", json_string_value (when));
        }
    }
    json_decref (list);
    return rc;
}

static sc_broker_t *
s_broker (s_ctx_t *ctx)
{
    sc_broker_t *broker = sc_broker_new (lb_config_str (ctx->config, "broker.endpoint"),
                                         lb_config_seconds (ctx->config, "scheduler.broker_timeout"));
    sc_broker_set_curve (broker, ctx->curve);
    return broker;
}

static int
s_cmd_workers (s_ctx_t *ctx, int argc, char **argv)
{
    int first, begun = s_begin (argc, argv,
        "usage: sched workers [--json]\n"
        "Each service the broker knows: queued, delayed, leased and dead jobs, and its workers\n"
        "(busy or idle, which job), and whether it has a GPU (it serves NAME.gpu: only GPU trainers\n"
        "register there). --json: {queues: mmi.queues, workers: mmi.workers + gpu}.\n", ctx, NULL, NULL, 0, &first);
    if (begun >= 0)
        return begun;
    sc_broker_t *broker = s_broker (ctx);
    zframe_t *queues_frame = NULL, *workers_frame = NULL;
    int a = sc_broker_mmi (broker, "mmi.queues", NULL, &queues_frame);
    int b = a == 200 ? sc_broker_mmi (broker, "mmi.workers", NULL, &workers_frame) : a;
    if (a != 200 || b != 200) {
        s_error ("broker at %s: %s", lb_config_str (ctx->config, "broker.endpoint"),
                 a < 0 || b < 0 ? sc_broker_error (broker) : "mmi.queues / mmi.workers refused");
        zframe_destroy (&queues_frame);
        zframe_destroy (&workers_frame);
        sc_broker_destroy (&broker);
        return S_UNAVAILABLE;
    }
    json_t *queues = queues_frame ? sc_broker_json (zframe_data (queues_frame), zframe_size (queues_frame)) : NULL;
    json_t *workers = workers_frame ? sc_broker_json (zframe_data (workers_frame), zframe_size (workers_frame)) : NULL;
    zframe_destroy (&queues_frame);
    zframe_destroy (&workers_frame);
    sc_broker_destroy (&broker);
    //  GPU routing (docs/train.md): a worker with a GPU serves NAME.gpu, and
    //  only such workers ever see jobs that need one.
    size_t wi;
    json_t *wo;
    json_array_foreach (workers, wi, wo) {
        const char *service = s_str (wo, "service");
        size_t len = strlen (service);
        json_object_set_new (wo, "gpu", json_boolean (len > 4 && strcmp (service + len - 4, ".gpu") == 0));
    }
    if (ctx->json) {
        json_t *both = json_pack ("{s:O?, s:O?}", "queues", queues, "workers", workers);
        s_print_json (both);
        json_decref (both);
    }
    else {
        printf ("%-16s %7s %7s %7s %5s %8s %5s\n", "SERVICE", "QUEUED", "DELAYED", "LEASED", "DEAD", "WORKERS", "IDLE");
        const char *name;
        json_t *q;
        json_object_foreach (queues, name, q)
            printf ("%-16s %7lld %7lld %7lld %5lld %8lld %5lld\n", name,
                    (long long) json_integer_value (json_object_get (q, "queued")),
                    (long long) json_integer_value (json_object_get (q, "delayed")),
                    (long long) json_integer_value (json_object_get (q, "leased")),
                    (long long) json_integer_value (json_object_get (q, "dead")),
                    (long long) json_integer_value (json_object_get (q, "workers")),
                    (long long) json_integer_value (json_object_get (q, "idle")));
        printf ("\n%-34s %-16s %-4s %-7s %-5s %s\n", "WORKER", "SERVICE", "GPU", "PROTO", "STATE", "JOB");
        size_t i;
        json_t *w;
        json_array_foreach (workers, i, w)
            printf ("%-34s %-16s %-4s %-7s %-5s %s\n", s_str (w, "id"), s_str (w, "service"),
                    json_is_true (json_object_get (w, "gpu")) ? "yes" : "no", s_str (w, "proto"),
                    s_str (w, "state"), json_is_string (json_object_get (w, "job")) ? s_str (w, "job") : "-");
    }
    json_decref (queues);
    json_decref (workers);
    return S_OK;
}

static int
s_cmd_logs (s_ctx_t *ctx, int argc, char **argv)
{
    int first, begun = s_begin (argc, argv,
        "usage: sched logs RUN [--json]\n"
        "What happened to a run, oldest first: submissions, results, errors, retries.\n", ctx, NULL, NULL, 1, &first);
    if (begun >= 0)
        return begun;
    if (s_db (ctx))
        return S_UNAVAILABLE;
    int rc = s_check_run (ctx, argv [first]);
    if (rc)
        return rc;
    const char *params [] = { argv [first] };
    json_t *lines = s_query_json (ctx,
        "select coalesce(json_agg(json_build_object('at', at, 'step', step, 'level', level, 'message', message) "
        "order by id), '[]') from sched_log where run_id = $1", 1, params);
    if (!lines)
        return S_UNAVAILABLE;
    if (ctx->json)
        s_print_json (lines);
    else {
        size_t i;
        json_t *line;
        json_array_foreach (lines, i, line) {
            char when [32];
            s_short_time (s_str (line, "at"), when, sizeof when);
            printf ("%s %-5s %-18s %s\n", when, s_str (line, "level"),
                    json_is_string (json_object_get (line, "step")) ? s_str (line, "step") : "-", s_str (line, "message"));
        }
    }
    json_decref (lines);
    return S_OK;
}

static int
s_cmd_pause (s_ctx_t *ctx, int argc, char **argv)
{
    bool pause = strcmp (argv [0], "pause") == 0;
    int first, begun = s_begin (argc, argv, pause ?
        "usage: sched pause PIPELINE\nStops firing PIPELINE's cron slots (they are passed over, not caught up\n"
        "later); runs enqueued meanwhile wait queued. Running runs go on.\n" :
        "usage: sched resume PIPELINE\nFires PIPELINE's cron slots again from the next one; queued runs start.\n",
        ctx, NULL, NULL, 1, &first);
    if (begun >= 0)
        return begun;
    char err [1024];
    sc_pipeline_t *pipeline = sc_pipeline_find (lb_config_str (ctx->config, "scheduler.pipelines"), argv [first],
                                                err, sizeof err);
    if (!pipeline) {
        s_error ("%s", err);
        return S_USAGE;
    }
    sc_pipeline_destroy (&pipeline);
    if (s_db (ctx))
        return S_UNAVAILABLE;
    if (sc_store_pause (ctx->db, argv [first], pause))
        return S_UNAVAILABLE;
    printf ("pipeline %s %s\n", argv [first], pause ? "paused" : "resumed");
    return S_OK;
}

static int
s_cmd_cancel_retry (s_ctx_t *ctx, int argc, char **argv)
{
    bool cancel = strcmp (argv [0], "cancel") == 0;
    int first, begun = s_begin (argc, argv, cancel ?
        "usage: sched cancel RUN\nCancels a queued or running run: the daemon cancels its jobs in the broker.\n" :
        "usage: sched retry RUN\nRuns a failed or cancelled run again from its failed and cancelled steps;\n"
        "steps that are done are not run again.\n", ctx, NULL, NULL, 1, &first);
    if (begun >= 0)
        return begun;
    if (s_db (ctx))
        return S_UNAVAILABLE;
    int rc = s_check_run (ctx, argv [first]);
    if (rc)
        return rc;
    //  The dead jobs a retry replaces leave the broker's dead letters.
    json_t *dead = NULL;
    if (!cancel) {
        const char *params [] = { argv [first] };
        dead = s_query_json (ctx, "select coalesce(json_agg(job_id), '[]') from sched_steps "
                                  "where run_id = $1 and state = 'failed' and job_id is not null", 1, params);
    }
    char err [512];
    rc = cancel ? sc_store_cancel (ctx->db, argv [first], err, sizeof err)
                : sc_store_retry (ctx->db, argv [first], err, sizeof err);
    if (rc == 0 && json_array_size (dead) > 0) {
        sc_broker_t *broker = s_broker (ctx);
        size_t i;
        json_t *job;
        json_array_foreach (dead, i, job)
            sc_broker_close (broker, json_string_value (job));
        sc_broker_destroy (&broker);
    }
    json_decref (dead);
    if (rc == 1) {
        s_error ("%s", err);
        return S_FAILED;
    }
    if (rc < 0)
        return S_UNAVAILABLE;
    sc_live_t *live = sc_live_new (lb_config_str (ctx->config, "redis.url"));
    sc_store_publish (ctx->db, live, argv [first], 0);
    sc_live_destroy (&live);
    printf ("run %s %s\n", argv [first], cancel ? "cancelled" : "will run again from its failed steps");
    return S_OK;
}

static int
s_cmd_dead (s_ctx_t *ctx, int argc, char **argv)
{
    int first, begun = s_begin (argc, argv,
        "usage: sched dead [--json]\n"
        "Jobs the broker gave up on (attempts used, or failed for good), newest first, with their\n"
        "last error. sched requeue JOB puts one back.\n", ctx, NULL, NULL, 0, &first);
    if (begun >= 0)
        return begun;
    sc_broker_t *broker = s_broker (ctx);
    zframe_t *frame = NULL;
    int code = sc_broker_mmi (broker, "mmi.dead", NULL, &frame);
    if (code != 200) {
        s_error ("broker at %s: %s", lb_config_str (ctx->config, "broker.endpoint"),
                 code < 0 ? sc_broker_error (broker) : "mmi.dead refused");
        zframe_destroy (&frame);
        sc_broker_destroy (&broker);
        return S_UNAVAILABLE;
    }
    json_t *dead = frame ? sc_broker_json (zframe_data (frame), zframe_size (frame)) : json_array ();
    zframe_destroy (&frame);
    sc_broker_destroy (&broker);
    if (ctx->json)
        s_print_json (dead);
    else {
        printf ("%-34s %-14s %-8s %s\n", "JOB", "SERVICE", "ATTEMPTS", "ERROR");
        size_t i;
        json_t *job;
        json_array_foreach (dead, i, job)
            printf ("%-34s %-14s %-8lld %s\n", s_str (job, "id"), s_str (job, "service"),
                    (long long) json_integer_value (json_object_get (job, "attempts")), s_str (job, "error"));
    }
    json_decref (dead);
    return S_OK;
}

static int
s_cmd_requeue (s_ctx_t *ctx, int argc, char **argv)
{
    int first, begun = s_begin (argc, argv,
        "usage: sched requeue JOB\n"
        "Puts a dead job (sched dead) back in its queue with its attempts reset. If a run's step\n"
        "was waiting on it, the run goes on when the job is done.\n", ctx, NULL, NULL, 1, &first);
    if (begun >= 0)
        return begun;
    sc_broker_t *broker = s_broker (ctx);
    int code = sc_broker_mmi (broker, "mmi.requeue", argv [first], NULL);
    int rc = S_OK;
    if (code == 200) {
        printf ("job %s requeued\n", argv [first]);
        char *run_id = NULL;
        if (s_db (ctx) == 0 && sc_store_requeued (ctx->db, argv [first], &run_id) == 1)
            printf ("run %s waits for it again\n", run_id);
        free (run_id);
    }
    else
    if (code == 404) {
        s_error ("unknown job '%s' (see sched dead)", argv [first]);
        rc = S_USAGE;
    }
    else
    if (code == 409) {
        s_error ("job %s is not dead: only dead jobs can be requeued", argv [first]);
        rc = S_FAILED;
    }
    else {
        s_error ("broker at %s: %s", lb_config_str (ctx->config, "broker.endpoint"),
                 code < 0 ? sc_broker_error (broker) : "mmi.requeue refused");
        rc = S_UNAVAILABLE;
    }
    sc_broker_destroy (&broker);
    return rc;
}

static int
s_cmd_daemon (s_ctx_t *ctx, int argc, char **argv)
{
    static const struct option extra [] = { { "once", no_argument, NULL, 'o' }, { 0, 0, 0, 0 } };
    s_opts_t opts = { 0 };
    int first, begun = s_begin (argc, argv,
        "usage: sched daemon [--once]\n"
        "Fires cron slots and drives every run until SIGTERM/SIGINT (docs/scheduler.md). Any\n"
        "number may run on one database: a slot starts once, a run is driven by one at a time.\n"
        "--once: one tick, then exit.\n", ctx, extra, &opts, 0, &first);
    if (begun >= 0)
        return begun;
    lb_log_set_level (LB_LOG_INFO);
    lb_log_level_t level;
    if (lb_log_level_parse (lb_config_str (ctx->config, "log.level"), &level) == 0)
        lb_log_set_level (level);
    //  Refuse to start with a broken pipeline directory, not with a broken pipeline.
    char **names = sc_pipeline_names (lb_config_str (ctx->config, "scheduler.pipelines"));
    if (!names) {
        s_error ("cannot read the pipelines directory %s (scheduler.pipelines)",
                 lb_config_str (ctx->config, "scheduler.pipelines"));
        return S_USAGE;
    }
    sc_pipeline_names_free (&names);
    sc_daemon_t *daemon = sc_daemon_new (ctx->config);
    int rc = S_OK;
    if (opts.once)
        rc = sc_daemon_tick (daemon) ? S_UNAVAILABLE : S_OK;
    else
        sc_daemon_run (daemon, &s_stop);
    sc_daemon_destroy (&daemon);
    return rc;
}

//  The registry's rollback (lib/lb_registry.h, docs/evaluate.md).
static int
s_cmd_rollback (s_ctx_t *ctx, int argc, char **argv)
{
    int first = s_options (argc, argv,
        "usage: sched rollback TASK [--json]\nPuts TASK's previous model version back in production: the registry's\n"
        "aliases and the Redis serving pointer together, with a decision-log row\n"
        "(docs/evaluate.md). Refused (exit 1) when there is no previous version or its\n"
        "deployed artifact is missing or corrupt.\n", ctx, NULL, NULL, NULL);
    if (first == -1)
        return S_OK;
    if (first < 0 || s_operands (argc, first, 1, argv [0]))
        return S_USAGE;
    lb_registry_settings_t settings = { .metric = "accuracy",
                                        .deploy_dir = lb_config_str (ctx->config, "deploy.dir") };
    lb_registry_t *registry = lb_registry_new (lb_config_str (ctx->config, "postgres.url"),
                                               lb_config_str (ctx->config, "redis.url"), &settings);
    if (!registry)
        return S_UNAVAILABLE;
    lb_registry_outcome_t out;
    int rc = lb_registry_rollback (registry, argv [first], "requested with sched rollback", &out);
    lb_registry_destroy (&registry);
    if (rc)
        return S_UNAVAILABLE;
    bool done = out.decision == LB_REGISTRY_ROLLED_BACK;
    if (ctx->json) {
        json_t *o = json_pack ("{s:s, s:s, s:i, s:i, s:b, s:s}", "task", argv [first],
                               "decision", done ? "rolled_back" : "refused", "version", out.version,
                               "previous_production", out.incumbent, "pointer_pending",
                               out.pointer_pending, "reason", out.reason);
        char *text = json_dumps (o, JSON_COMPACT);
        printf ("%s\n", text);
        free (text);
        json_decref (o);
    }
    else
    if (done)
        printf ("task %s: %s%s\n", argv [first], out.reason, out.pointer_pending
                ? " (Redis unavailable: the serving pointer follows when it is back)" : "");
    else
        s_error ("rollback of task %s refused: %s", argv [first], out.reason);
    return done ? S_OK : S_FAILED;
}

static const s_command_t s_commands [] = {
    { "enqueue", s_cmd_enqueue, NULL }, { "status", s_cmd_status, NULL }, { "runs", s_cmd_runs, NULL },
    { "pipelines", s_cmd_pipelines, NULL }, { "workers", s_cmd_workers, NULL }, { "logs", s_cmd_logs, NULL },
    { "pause", s_cmd_pause, NULL }, { "resume", s_cmd_pause, NULL }, { "cancel", s_cmd_cancel_retry, NULL },
    { "retry", s_cmd_cancel_retry, NULL }, { "dead", s_cmd_dead, NULL }, { "requeue", s_cmd_requeue, NULL },
    { "daemon", s_cmd_daemon, NULL }, { "rollback", s_cmd_rollback, NULL }, { NULL, NULL, NULL } };

int
main (int argc, char **argv)
{
    const char *config_path = NULL;
    int i = 1;
    for (; i < argc && argv [i][0] == '-'; i++) {
        if ((strcmp (argv [i], "-c") == 0 || strcmp (argv [i], "--config") == 0) && i + 1 < argc)
            config_path = argv [++i];
        else
        if (strcmp (argv [i], "-h") == 0 || strcmp (argv [i], "--help") == 0) {
            printf ("%s", s_usage_text);
            return S_OK;
        }
        else {
            s_error ("unknown or incomplete option '%s' (see sched --help)", argv [i]);
            return S_USAGE;
        }
    }
    if (i >= argc) {
        fprintf (stderr, "%s", s_usage_text);
        return S_USAGE;
    }
    const s_command_t *command = NULL;
    for (const s_command_t *c = s_commands; c->name; c++)
        if (strcmp (c->name, argv [i]) == 0)
            command = c;
    if (!command) {
        s_error ("unknown command '%s' (see sched --help)", argv [i]);
        return S_USAGE;
    }
    lb_log_setup ("sched", LB_LOG_WARN);
    zsys_handler_set (NULL);
    struct sigaction action = { 0 };
    action.sa_handler = s_on_signal;
    sigemptyset (&action.sa_mask);
    sigaction (SIGTERM, &action, NULL);
    sigaction (SIGINT, &action, NULL);
    lb_config_t *config = lb_config_load (config_path);
    if (!config)
        return S_USAGE;
    s_ctx_t ctx = { .config = config };
    char err [512];
    if (lb_curve_from_config (config, "scheduler", &ctx.curve, err, sizeof err)) {
        s_error ("%s", err);
        lb_config_destroy (&config);
        return S_USAGE;
    }
    int rc = command->fn (&ctx, argc - i, argv + i);
    if (ctx.db)
        PQfinish (ctx.db);
    lb_curve_destroy (&ctx.curve);
    lb_config_destroy (&config);
    return rc;
}
