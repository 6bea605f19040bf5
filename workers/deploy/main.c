/*  worker-deploy - the deploy step, and the registry from the command line.

    Usage: worker-deploy [runtime options]      serve `deploy` on the broker
           worker-deploy deploy --task TASK --run RUN [--json]
           worker-deploy rollback --task TASK [--reason TEXT] [--json]
           worker-deploy repair
           worker-deploy show --task TASK [--json]
           (each command also takes --config FILE and --set section.key=value)

    The step's job: the run is the job's; the task is param `task`, else
    the one the evaluate step recorded for this run; param `margin`
    overrides deploy.margin. Promoted, rejected and replayed decisions are
    "done"; a refusal fails the step permanently (code "refused"); trouble
    with the database or the disk is retried. Every job starts by writing
    pending serving pointers to Redis (lb_registry_repair), and while it
    serves, a repairer actor does the same every deploy.repair_interval, so a
    pointer left pending while Redis was down reaches it soon after Redis
    is back, not at next week's deploy.

    deploy decides on the candidate the evaluate step recorded for the run
    (lb_registry.h: the gate, the verified copy, the alias swap and the
    Redis pointer together). Exit codes: 0 promoted, rejected, rolled back or
    nothing to do; 3 refused (bad input - a permanent failure, the reason is
    recorded and printed); 1 could not decide (database or disk trouble -
    retry); 2 bad usage.
*/
#include "lb_config.h"
#include "lb_log.h"
#include "lb_mem.h"
#include "lb_pg.h"
#include "lb_registry.h"
#include "wk_runtime.h"

#include <czmq.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *
s_decision_name (lb_registry_decision_t d)
{
    switch (d) {
        case LB_REGISTRY_PROMOTED: return "promoted";
        case LB_REGISTRY_REJECTED: return "rejected";
        case LB_REGISTRY_REFUSED: return "refused";
        case LB_REGISTRY_ROLLED_BACK: return "rolled_back";
    }
    return "unknown";
}

static void
s_json_str (const char *text)
{
    putchar ('"');
    for (const char *c = text; *c; c++) {
        if (*c == '"' || *c == '\\')
            printf ("\\%c", *c);
        else
        if ((unsigned char) *c < 0x20)
            printf ("\\u%04x", *c);
        else
            putchar (*c);
    }
    putchar ('"');
}

static int
s_print_outcome (const lb_registry_outcome_t *o, bool json)
{
    if (json) {
        printf ("{\"decision\": \"%s\", \"version\": %d, \"incumbent\": %d, ",
                s_decision_name (o->decision), o->version, o->incumbent);
        if (isfinite (o->improvement))
            printf ("\"improvement\": %.17g, \"needed\": %.17g, ", o->improvement, o->needed);
        printf ("\"pointer_pending\": %s, \"replay\": %s, \"reason\": ",
                o->pointer_pending ? "true" : "false", o->replay ? "true" : "false");
        s_json_str (o->reason);
        printf ("}\n");
    }
    else {
        printf ("%s", s_decision_name (o->decision));
        if (o->version)
            printf (" v%d", o->version);
        if (o->incumbent)
            printf (" (production was v%d)", o->incumbent);
        printf (": %s%s%s\n", o->reason, o->pointer_pending
                ? " [serving pointer pending: Redis unavailable, repaired when it returns]" : "",
                o->replay ? " [replay: nothing changed]" : "");
    }
    return o->decision == LB_REGISTRY_REFUSED ? 3 : 0;
}

static int
s_show (lb_config_t *config, const char *task, bool json)
{
    PGconn *pg = lb_pg_connect (lb_config_str (config, "postgres.url"), "worker-deploy");
    if (!pg)
        return 1;
    const char *p [1] = { task };
    PGresult *r = lb_pg_query (pg,
        "select json_build_object ('task', $1::text, "
        "'aliases', (select coalesce (json_object_agg (alias, version), '{}') from model_aliases "
        "            where task = $1), "
        "'versions', (select coalesce (json_agg (json_build_object ('version', version, "
        "            'run', run, 'family', family, 'status', status, 'sha256', sha256, "
        "            'artifact_uri', artifact_uri, 'deployed_path', deployed_path, "
        "            'metrics', metrics, 'created_at', created_at) order by version), '[]') "
        "            from model_versions where task = $1), "
        "'pointer', (select row_to_json (s) from serving_pointers s where task = $1), "
        "'decisions', (select coalesce (json_agg (row_to_json (d) order by id), '[]') "
        "            from deploy_decisions d where task = $1))::text", 1, p);
    int rc = 1;
    if (r && PQntuples (r) == 1) {
        if (json)
            printf ("%s\n", PQgetvalue (r, 0, 0));
        else {
            PGresult *q = lb_pg_query (pg,
                "select v.version, v.run, v.family, v.status, coalesce (string_agg (a.alias, ','), '') "
                "from model_versions v left join model_aliases a on a.task = v.task "
                "and a.version = v.version where v.task = $1 group by 1, 2, 3, 4 order by 1", 1, p);
            if (q) {
                printf ("task %s\n%-8s %-12s %-12s %-12s %s\n", task, "version", "run", "family",
                        "status", "aliases");
                for (int i = 0; i < PQntuples (q); i++)
                    printf ("v%-7s %-12s %-12s %-12s %s\n", PQgetvalue (q, i, 0),
                            PQgetvalue (q, i, 1), PQgetvalue (q, i, 2), PQgetvalue (q, i, 3),
                            PQgetvalue (q, i, 4));
                PQclear (q);
            }
            q = lb_pg_query (pg, "select created_at::text, action, decision, reason "
                             "from deploy_decisions where task = $1 order by id", 1, p);
            if (q) {
                printf ("decisions:\n");
                for (int i = 0; i < PQntuples (q); i++)
                    printf ("  %.19s %-8s %-11s %s\n", PQgetvalue (q, i, 0), PQgetvalue (q, i, 1),
                            PQgetvalue (q, i, 2), PQgetvalue (q, i, 3));
                PQclear (q);
            }
        }
        rc = 0;
    }
    PQclear (r);
    PQfinish (pg);
    return rc;
}

//  The settings of [deploy] (strings borrowed from config).
static lb_registry_settings_t
s_settings (lb_config_t *config)
{
    lb_registry_settings_t settings = {
        .metric = lb_config_str (config, "deploy.metric"),
        .margin = lb_config_real (config, "deploy.margin"),
        .first_margin = lb_config_real (config, "deploy.first_margin"),
        .use_lower_bound = lb_config_bool (config, "deploy.use_lower_bound"),
        .deploy_dir = lb_config_str (config, "deploy.dir"),
    };
    return settings;
}

//  The task the evaluate step recorded for run. Returns 0 or -1.
static int
s_task_of_run (lb_config_t *config, const char *run, char *task, size_t size)
{
    PGconn *pg = lb_pg_connect (lb_config_str (config, "postgres.url"), "worker-deploy");
    if (!pg)
        return -1;
    const char *p [1] = { run };
    PGresult *r = lb_pg_query (pg, "select task from evaluations where run = $1 "
                               "and role = 'candidate'", 1, p);
    int rc = -1;
    if (r && PQntuples (r) == 1) {
        snprintf (task, size, "%s", PQgetvalue (r, 0, 0));
        rc = 0;
    }
    else
    if (r)
        rc = -2;
    PQclear (r);
    PQfinish (pg);
    return rc;
}

static wk_status_t
s_handle (wk_job_t *job, void *arg)
{
    (void) arg;
    lb_config_t *config = wk_job_config (job);
    const char *run = wk_job_run (job);
    lb_registry_settings_t settings = s_settings (config);
    double margin;
    int got = wk_job_param_real (job, "margin", &margin);
    if (got < 0)
        return WK_FAIL;         //  the runtime recorded bad_params
    if (got == 0) {
        if (!(margin >= 0 && margin < 1)) {
            wk_job_error (job, "bad_params", "param margin %g is not in [0, 1)", margin);
            return WK_FAIL;
        }
        settings.margin = margin;
    }
    char task [128];
    const char *given = wk_job_param (job, "task");
    if (given)
        snprintf (task, sizeof task, "%s", given);
    else {
        int rc = s_task_of_run (config, run, task, sizeof task);
        if (rc == -1) {
            wk_job_error (job, "postgres", "cannot read the evaluation of run %s", run);
            return WK_RETRY;
        }
        if (rc == -2) {
            wk_job_error (job, "refused", "run %s has no evaluated candidate (did the evaluate "
                          "step run?)", run);
            return WK_FAIL;
        }
    }
    wk_job_progress (job, 10, "registry", "task %s", task);
    lb_registry_t *reg = lb_registry_new (lb_config_str (config, "postgres.url"),
                                          lb_config_str (config, "redis.url"), &settings);
    if (!reg) {
        wk_job_error (job, "postgres", "cannot reach the registry");
        return WK_RETRY;
    }
    wk_status_t status;
    lb_registry_candidate_t cand;
    lb_registry_outcome_t out;
    char why [512];
    if (lb_registry_load_candidate (reg, task, run, &cand, why, sizeof why)) {
        wk_job_error (job, "refused", "%s", why);
        status = WK_FAIL;
    }
    else
    if (lb_registry_deploy (reg, &cand, &out)) {
        wk_job_error (job, "registry", "could not decide for task %s run %s (database or disk); "
                      "nothing recorded", task, run);
        status = WK_RETRY;
    }
    else
    if (out.decision == LB_REGISTRY_REFUSED) {
        wk_job_error (job, "refused", "%s", out.reason);
        status = WK_FAIL;
    }
    else {
        wk_job_metric (job, "promoted", out.decision == LB_REGISTRY_PROMOTED);
        wk_job_metric (job, "version", out.version);
        wk_job_metric (job, "incumbent", out.incumbent);
        if (isfinite (out.improvement))
            wk_job_metric (job, "improvement", out.improvement);
        wk_job_metric (job, "needed", out.needed);
        wk_job_metric (job, "pointer_pending", out.pointer_pending);
        wk_job_progress (job, 100, s_decision_name (out.decision), "%s", out.reason);
        char *path = NULL;
        if (out.decision == LB_REGISTRY_PROMOTED && lb_registry_production (reg, task, &path) > 0) {
            char *uri = lb_xasprintf ("file://%s", path);
            wk_job_output (job, "deployed", uri);
            free (uri);
        }
        free (path);
        status = WK_DONE;
    }
    lb_registry_destroy (&reg);
    return status;
}

//  ------------------------------------------------------------------ repairer

typedef struct {
    char *pg_url, *redis_url, *deploy_dir;
    int interval_ms;
} s_repair_t;

//  Actor: writes pending serving pointers to Redis every interval.
static void
s_repairer (zsock_t *pipe, void *arg)
{
    s_repair_t *r = arg;
    lb_registry_settings_t settings = { .metric = "accuracy", .deploy_dir = r->deploy_dir };
    lb_registry_t *reg = NULL;
    zpoller_t *poller = zpoller_new (pipe, NULL);
    zsock_signal (pipe, 0);
    while (true) {
        zsock_t *which = zpoller_wait (poller, r->interval_ms);
        if (which == pipe) {
            zmsg_t *msg = zmsg_recv (pipe);
            char *command = msg ? zmsg_popstr (msg) : NULL;
            bool term = !command || strcmp (command, "$TERM") == 0;
            free (command);
            zmsg_destroy (&msg);
            if (term)
                break;
            continue;
        }
        if (zpoller_terminated (poller))
            break;
        if (!reg)
            reg = lb_registry_new (r->pg_url, r->redis_url, &settings);
        if (reg && lb_registry_repair (reg) < 0)
            lb_registry_destroy (&reg);     //  reconnect at the next tick
    }
    lb_registry_destroy (&reg);
    zpoller_destroy (&poller);
}

//  The value of a runtime option (-x VALUE, --long VALUE, --long=VALUE).
static const char *
s_option (int argc, char **argv, const char *shortopt, const char *longopt)
{
    size_t len = strlen (longopt);
    for (int i = 1; i < argc; i++) {
        if ((strcmp (argv [i], shortopt) == 0 || strcmp (argv [i], longopt) == 0) && i + 1 < argc)
            return argv [i + 1];
        if (strncmp (argv [i], longopt, len) == 0 && argv [i][len] == '=')
            return argv [i] + len + 1;
    }
    return NULL;
}

//  Serves `deploy` with the repairer beside the runtime.
static int
s_serve (int argc, char **argv)
{
    wk_spec_t spec = { .service = "deploy", .handler = s_handle,
                       .summary = "promotes the evaluated candidate when it beats production "
                                  "by the margin (also: worker-deploy deploy|rollback|repair|show "
                                  "--help)" };
    bool help = false;
    for (int i = 1; i < argc; i++)
        help |= strcmp (argv [i], "-h") == 0 || strcmp (argv [i], "--help") == 0;
    zactor_t *repairer = NULL;
    s_repair_t r = { 0 };
    lb_config_t *config = help ? NULL : lb_config_load (s_option (argc, argv, "-c", "--config"));
    if (config) {
        r.pg_url = lb_xstrdup (lb_config_str (config, "postgres.url"));
        r.redis_url = lb_xstrdup (lb_config_str (config, "redis.url"));
        r.deploy_dir = lb_xstrdup (lb_config_str (config, "deploy.dir"));
        r.interval_ms = (int) (lb_config_seconds (config, "deploy.repair_interval") * 1000);
        if (r.interval_ms < 1)
            r.interval_ms = 1;
        lb_config_destroy (&config);
        repairer = zactor_new (s_repairer, &r);
    }
    int rc = wk_runtime_main (&spec, argc, argv);
    zactor_destroy (&repairer);
    free (r.pg_url);
    free (r.redis_url);
    free (r.deploy_dir);
    return rc;
}

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: worker-deploy deploy --task TASK --run RUN [--json]\n"
        "       worker-deploy rollback --task TASK [--reason TEXT] [--json]\n"
        "       worker-deploy repair\n"
        "       worker-deploy show --task TASK [--json]\n"
        "       worker-deploy [runtime options: -c FILE, -b ENDPOINT, --once, -h]\n"
        "options for all: --config FILE, --set section.key=value\n"
        "exit: 0 done (promoted, rejected, rolled back), 3 refused (bad input, recorded),\n"
        "      1 could not decide (retry), 2 bad usage\n");
}

int
main (int argc, char **argv)
{
    const char *cmd = argc >= 2 ? argv [1] : "";
    if (strcmp (cmd, "deploy") && strcmp (cmd, "rollback") && strcmp (cmd, "repair")
        && strcmp (cmd, "show")) {
        return s_serve (argc, argv);
    }
    lb_log_setup ("worker-deploy", LB_LOG_INFO);
    const char *task = NULL, *run = NULL, *reason = NULL, *config_path = NULL;
    const char *sets [32];
    size_t nsets = 0;
    bool json = false;
    for (int i = 2; i < argc; i++) {
        const char *a = argv [i], *v = i + 1 < argc ? argv [i + 1] : NULL;
        if (strcmp (a, "--json") == 0) { json = true; continue; }
        if (strcmp (a, "--help") == 0) { s_usage (stdout); return 0; }
        if (!v) {
            fprintf (stderr, "worker-deploy: %s needs a value (try --help)\n", a);
            return 2;
        }
        if (strcmp (a, "--task") == 0) task = v;
        else if (strcmp (a, "--run") == 0) run = v;
        else if (strcmp (a, "--reason") == 0) reason = v;
        else if (strcmp (a, "--config") == 0) config_path = v;
        else if (strcmp (a, "--set") == 0 && nsets < 32) sets [nsets++] = v;
        else {
            fprintf (stderr, "worker-deploy: unknown option %s (try --help)\n", a);
            return 2;
        }
        i++;
    }
    bool needs_task = strcmp (cmd, "repair") != 0;
    if ((needs_task && !task) || (strcmp (cmd, "deploy") == 0 && !run)) {
        fprintf (stderr, "worker-deploy %s: --task%s required\n", cmd,
                 strcmp (cmd, "deploy") == 0 ? " and --run are" : " is");
        return 2;
    }
    lb_config_t *config = lb_config_load (config_path);
    if (!config)
        return 2;
    for (size_t i = 0; i < nsets; i++) {
        char *kv = lb_xstrdup (sets [i]);
        char *eq = strchr (kv, '=');
        int bad = !eq || (*eq = 0, lb_config_set (config, kv, eq + 1, "--set") != 0);
        free (kv);
        if (bad) {
            fprintf (stderr, "worker-deploy: bad --set %s\n", sets [i]);
            lb_config_destroy (&config);
            return 2;
        }
    }
    int rc = 1;
    if (strcmp (cmd, "show") == 0) {
        rc = s_show (config, task, json);
        lb_config_destroy (&config);
        return rc;
    }
    lb_registry_settings_t settings = s_settings (config);
    lb_registry_t *reg = lb_registry_new (lb_config_str (config, "postgres.url"),
                                          lb_config_str (config, "redis.url"), &settings);
    if (!reg) {
        lb_config_destroy (&config);
        return 1;
    }
    lb_registry_outcome_t out;
    if (strcmp (cmd, "repair") == 0) {
        int still = lb_registry_repair (reg);
        if (still >= 0)
            printf ("%d serving pointer%s still pending\n", still, still == 1 ? "" : "s");
        rc = still == 0 ? 0 : 1;
    }
    else
    if (strcmp (cmd, "rollback") == 0) {
        if (lb_registry_rollback (reg, task, reason, &out) == 0)
            rc = s_print_outcome (&out, json);
    }
    else {
        lb_registry_candidate_t cand;
        char why [512];
        if (lb_registry_load_candidate (reg, task, run, &cand, why, sizeof why)) {
            lb_log_error ("deploy task=%s run=%s: %s", task, run, why);
            rc = 3;
        }
        else
        if (lb_registry_deploy (reg, &cand, &out) == 0)
            rc = s_print_outcome (&out, json);
    }
    lb_registry_destroy (&reg);
    lb_config_destroy (&config);
    return rc;
}
