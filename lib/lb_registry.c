/*  lb_registry.c - model registry, deploy gate, promotion, rollback (see lb_registry.h). */
#include "lb_registry.h"
#include "lb_artifact.h"
#include "lb_clock.h"
#include "lb_fcopy.h"
#include "lb_log.h"
#include "lb_mem.h"
#include "lb_pg.h"
#include "lb_redis.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct _lb_registry_t {
    PGconn *pg;
    char *redis_url;
    lb_registry_settings_t settings;
    char *metric;
    char *deploy_dir;
};

//  Sets only when Redis holds an older generation, so a late repair never
//  overwrites a newer pointer.
static const char s_pointer_script [] =
    "local g = tonumber(redis.call('HGET', KEYS[1], 'generation') or '0') "
    "if tonumber(ARGV[1]) <= g then return 0 end "
    "redis.call('DEL', KEYS[1]) "
    "redis.call('HSET', KEYS[1], 'generation', ARGV[1], 'version', ARGV[2], 'path', ARGV[3], "
    "'sha256', ARGV[4], 'family', ARGV[5], 'updated_at', ARGV[6]) "
    "return 1";

static void s_reason (lb_registry_outcome_t *out, const char *fmt, ...)
    __attribute__ ((format (printf, 2, 3)));

static void
s_reason (lb_registry_outcome_t *out, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    vsnprintf (out->reason, sizeof out->reason, fmt, args);
    va_end (args);
}

lb_registry_t *
lb_registry_new (const char *pg_url, const char *redis_url, const lb_registry_settings_t *settings)
{
    assert (pg_url && settings && settings->deploy_dir);
    PGconn *pg = lb_pg_connect (pg_url, "registry");
    if (!pg)
        return NULL;
    lb_registry_t *self = lb_xcalloc (1, sizeof *self);
    self->pg = pg;
    self->redis_url = redis_url ? lb_xstrdup (redis_url) : NULL;
    self->settings = *settings;
    self->metric = lb_xstrdup (settings->metric ? settings->metric : "accuracy");
    self->deploy_dir = lb_xstrdup (settings->deploy_dir);
    self->settings.metric = self->metric;
    self->settings.deploy_dir = self->deploy_dir;
    return self;
}

void
lb_registry_destroy (lb_registry_t **self_p)
{
    assert (self_p);
    lb_registry_t *self = *self_p;
    if (!self)
        return;
    PQfinish (self->pg);
    free (self->redis_url);
    free (self->metric);
    free (self->deploy_dir);
    free (self);
    *self_p = NULL;
}

bool
lb_registry_task_ok (const char *name)
{
    size_t len = name ? strlen (name) : 0;
    if (len == 0 || len > 100 || name [0] == '.')
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = name [i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')
              || c == '_' || c == '.' || c == '-'))
            return false;
    }
    return true;
}

//  --------------------------------------------------------------------------
//  The gate

static bool
s_finite_side (const lb_registry_side_t *s)
{
    return isfinite (s->accuracy) && isfinite (s->diff) && isfinite (s->lo) && isfinite (s->hi);
}

void
lb_registry_gate (const lb_registry_settings_t *settings, const lb_registry_candidate_t *cand,
                  int current_production, lb_registry_outcome_t *out)
{
    assert (settings && cand && out);
    memset (out, 0, sizeof *out);
    out->incumbent = current_production;
    out->improvement = NAN;
    if (strcmp (settings->metric ? settings->metric : "accuracy", "accuracy") != 0) {
        out->decision = LB_REGISTRY_REFUSED;
        s_reason (out, "deploy.metric '%s' is not supported: the gate has paired intervals "
                  "for accuracy only", settings->metric);
        return;
    }
    if (!isfinite (cand->accuracy)) {
        out->decision = LB_REGISTRY_REFUSED;
        s_reason (out, "candidate %s: accuracy is not a number", cand->policy);
        return;
    }
    const lb_registry_side_t *base;
    const char *against;
    if (current_production) {
        base = &cand->production;
        against = "production";
        out->needed = settings->margin;
        if (!base->present) {
            out->decision = LB_REGISTRY_REFUSED;
            s_reason (out, "task has production v%d but the candidate was not compared with it",
                      current_production);
            return;
        }
        if (base->version != current_production) {
            out->decision = LB_REGISTRY_REFUSED;
            s_reason (out, "candidate was compared with v%d but production is v%d now: "
                      "evaluate again", base->version, current_production);
            return;
        }
    }
    else {
        base = &cand->rules;
        against = "rules";
        out->needed = settings->first_margin;
        if (!base->present) {
            out->decision = LB_REGISTRY_REFUSED;
            s_reason (out, "first model of the task but no comparison with the rules");
            return;
        }
    }
    if (!s_finite_side (base)) {
        out->decision = LB_REGISTRY_REFUSED;
        s_reason (out, "metrics against %s are not numbers (NaN or infinite): "
                  "accuracy %g, diff %g, interval [%g, %g]", against, base->accuracy,
                  base->diff, base->lo, base->hi);
        return;
    }
    if (strcmp (base->rows_sha256, cand->rows_sha256) != 0
        || strcmp (base->cmp_rows_sha256, cand->rows_sha256) != 0) {
        out->decision = LB_REGISTRY_REFUSED;
        s_reason (out, "candidate and %s were evaluated on different rows "
                  "(fingerprints %.12s vs %.12s)", against, cand->rows_sha256,
                  strcmp (base->rows_sha256, cand->rows_sha256) ? base->rows_sha256
                                                                 : base->cmp_rows_sha256);
        return;
    }
    out->improvement = settings->use_lower_bound ? base->lo : base->diff;
    const char *what = settings->use_lower_bound ? "lower bound" : "point estimate";
    if (out->improvement > out->needed) {
        out->decision = LB_REGISTRY_PROMOTED;
        s_reason (out, "accuracy %.4f vs %s %.4f: %s of the improvement %+.4f > margin %.4f",
                  cand->accuracy, against, base->accuracy, what, out->improvement, out->needed);
    }
    else {
        out->decision = LB_REGISTRY_REJECTED;
        s_reason (out, "accuracy %.4f vs %s %.4f: %s of the improvement %+.4f <= margin %.4f "
                  "(difference %+.4f, interval [%+.4f, %+.4f])", cand->accuracy, against,
                  base->accuracy, what, out->improvement, out->needed, base->diff, base->lo,
                  base->hi);
    }
}

//  --------------------------------------------------------------------------
//  Files

//  The local path of an artifact URI (file:// or an absolute path). Caller frees.
static char *
s_uri_path (const char *uri)
{
    if (strncmp (uri, "file://", 7) == 0)
        return lb_xstrdup (uri + 7);
    if (uri [0] == '/')
        return lb_xstrdup (uri);
    return NULL;
}

//  --------------------------------------------------------------------------
//  PostgreSQL helpers

static char *
s_num (double v)
{
    return isfinite (v) ? lb_xasprintf ("%.17g", v) : NULL;
}

static char *
s_int (int v)
{
    return v ? lb_xasprintf ("%d", v) : NULL;
}

static int
s_log_decision (lb_registry_t *self, const char *task, const char *run, const char *action,
                int cand_version, int incumbent, const char *uri, double old_value,
                double new_value, double diff, double lo, double hi, double margin,
                const char *decision, const char *reason)
{
    char *p [15] = {
        (char *) task, (char *) run, (char *) action, s_int (cand_version), s_int (incumbent),
        (char *) uri, self->metric, s_num (old_value), s_num (new_value), s_num (diff),
        s_num (lo), s_num (hi), s_num (margin), (char *) decision, (char *) reason
    };
    int rc = lb_pg_exec (self->pg,
        "insert into deploy_decisions (task, run, action, candidate_version, incumbent_version, "
        "candidate_uri, metric, old_value, new_value, diff, ci_lo, ci_hi, margin, decision, reason) "
        "values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        15, (const char *const *) p);
    for (int i = 3; i < 13; i++)
        if (i != 5 && i != 6)
            free (p [i]);
    return rc;
}

static void
s_rollback_tx (lb_registry_t *self)
{
    PGresult *r = PQexec (self->pg, "rollback");
    PQclear (r);
}

//  Locks the task's registry row for this transaction (creating it).
static int
s_lock_task (lb_registry_t *self, const char *task)
{
    const char *p [1] = { task };
    if (lb_pg_exec (self->pg, "insert into registered_models (task) values ($1) "
                    "on conflict do nothing", 1, p))
        return -1;
    PGresult *r = lb_pg_query (self->pg, "select task from registered_models where task = $1 "
                               "for update", 1, p);
    if (!r)
        return -1;
    PQclear (r);
    return 0;
}

//  Reads alias of task: version (0 when none), deployed path and sha256
//  copies (caller frees) when asked. Returns 0 or -1.
static int
s_alias (lb_registry_t *self, const char *task, const char *alias, int *version,
         char **path, char **sha)
{
    const char *p [2] = { task, alias };
    PGresult *r = lb_pg_query (self->pg,
        "select v.version, coalesce (v.deployed_path, ''), v.sha256 from model_aliases a "
        "join model_versions v on v.task = a.task and v.version = a.version "
        "where a.task = $1 and a.alias = $2", 2, p);
    if (!r)
        return -1;
    *version = 0;
    if (PQntuples (r) == 1) {
        *version = atoi (PQgetvalue (r, 0, 0));
        if (path)
            *path = lb_xstrdup (PQgetvalue (r, 0, 1));
        if (sha)
            *sha = lb_xstrdup (PQgetvalue (r, 0, 2));
    }
    PQclear (r);
    return 0;
}

//  Moves the serving pointer row (pending) inside the current transaction.
//  Returns the new generation, or -1.
static long long
s_pointer_stage (lb_registry_t *self, const char *task, int version, const char *path,
                 const char *sha, const char *family)
{
    char vbuf [16];
    snprintf (vbuf, sizeof vbuf, "%d", version);
    const char *p [5] = { task, vbuf, path, sha, family };
    PGresult *r = lb_pg_query (self->pg,
        "insert into serving_pointers as s (task, version, deployed_path, sha256, family, "
        "generation, pending) values ($1, $2, $3, $4, $5, 1, true) "
        "on conflict (task) do update set version = $2, deployed_path = $3, sha256 = $4, "
        "family = $5, generation = s.generation + 1, pending = true, updated_at = now() "
        "returning generation", 5, p);
    if (!r)
        return -1;
    long long gen = PQntuples (r) == 1 ? atoll (PQgetvalue (r, 0, 0)) : -1;
    PQclear (r);
    return gen;
}

//  Writes one pointer to Redis and clears its pending mark if it is still
//  the current generation. Returns 0 when Redis has it, -1 when not.
static int
s_pointer_push (lb_registry_t *self, const char *task, long long gen, int version,
                const char *path, const char *sha, const char *family)
{
    if (!self->redis_url)
        return -1;
    redisContext *ctx = lb_redis_connect (self->redis_url, 1.0);
    if (!ctx)
        return -1;
    char key [256], gbuf [32], vbuf [16], tbuf [40];
    snprintf (key, sizeof key, "pred:model:%s:production", task);
    snprintf (gbuf, sizeof gbuf, "%lld", gen);
    snprintf (vbuf, sizeof vbuf, "%d", version);
    lb_clock_format_iso (lb_clock_wall_us (), tbuf, sizeof tbuf);
    redisReply *reply = lb_redis_cmd (ctx, "EVAL %s 1 %s %s %s %s %s %s %s", s_pointer_script,
                                      key, gbuf, vbuf, path, sha, family, tbuf);
    redisFree (ctx);
    if (!reply)
        return -1;
    freeReplyObject (reply);
    char tb [16];
    snprintf (tb, sizeof tb, "%lld", gen);
    const char *p [2] = { task, tb };
    lb_pg_exec (self->pg, "update serving_pointers set pending = false "
                "where task = $1 and generation = $2", 2, p);
    return 0;
}

int
lb_registry_repair (lb_registry_t *self)
{
    assert (self);
    PGresult *r = lb_pg_query (self->pg,
        "select task, generation, version, deployed_path, sha256, family from serving_pointers "
        "where pending order by task", 0, NULL);
    if (!r)
        return -1;
    int still = 0;
    for (int i = 0; i < PQntuples (r); i++) {
        const char *task = PQgetvalue (r, i, 0);
        if (s_pointer_push (self, task, atoll (PQgetvalue (r, i, 1)), atoi (PQgetvalue (r, i, 2)),
                            PQgetvalue (r, i, 3), PQgetvalue (r, i, 4), PQgetvalue (r, i, 5)))
            still++;
        else
            lb_log_info ("serving pointer repaired task=%s version=%s", task, PQgetvalue (r, i, 2));
    }
    PQclear (r);
    return still;
}

int
lb_registry_production (lb_registry_t *self, const char *task, char **path)
{
    int version = 0;
    if (s_alias (self, task, "production", &version, path, NULL))
        return -1;
    return version;
}

//  --------------------------------------------------------------------------
//  Loading the evaluator's rows

static void
s_copy (char *dst, size_t size, const char *src)
{
    snprintf (dst, size, "%s", src ? src : "");
}

static double
s_getnum (PGresult *r, int row, int col)
{
    return PQgetisnull (r, row, col) ? NAN : strtod (PQgetvalue (r, row, col), NULL);
}

static int
s_load_side (lb_registry_t *self, const char *run, const char *candidate, const char *baseline,
             lb_registry_side_t *side)
{
    memset (side, 0, sizeof *side);
    const char *p [3] = { run, candidate, baseline };
    PGresult *r = lb_pg_query (self->pg,
        "select c.baseline_version, c.rows_sha256, c.diff, c.ci_lo, c.ci_hi, "
        "e.rows_sha256, e.accuracy from evaluation_comparisons c "
        "left join evaluations e on e.run = c.run and e.policy = c.baseline "
        "where c.run = $1 and c.candidate = $2 and c.baseline = $3", 3, p);
    if (!r)
        return -1;
    if (PQntuples (r) == 1) {
        side->present = true;
        side->version = PQgetisnull (r, 0, 0) ? 0 : atoi (PQgetvalue (r, 0, 0));
        s_copy (side->cmp_rows_sha256, sizeof side->cmp_rows_sha256, PQgetvalue (r, 0, 1));
        side->diff = s_getnum (r, 0, 2);
        side->lo = s_getnum (r, 0, 3);
        side->hi = s_getnum (r, 0, 4);
        s_copy (side->rows_sha256, sizeof side->rows_sha256, PQgetvalue (r, 0, 5));
        side->accuracy = s_getnum (r, 0, 6);
    }
    PQclear (r);
    return 0;
}

int
lb_registry_load_candidate (lb_registry_t *self, const char *task, const char *run,
                            lb_registry_candidate_t *cand, char *why, size_t size)
{
    assert (self && task && run && cand);
    memset (cand, 0, sizeof *cand);
    const char *p [2] = { run, task };
    PGresult *r = lb_pg_query (self->pg,
        "select policy, family, coalesce (artifact_uri, ''), coalesce (sha256, ''), rows_sha256, "
        "accuracy, json_build_object ('accuracy', accuracy, 'precision', precision_, "
        "'recall', recall, 'f1', f1, 'roc_auc', roc_auc, 'log_loss', log_loss, 'fpr', fpr, "
        "'brier', brier, 'ece', ece, 'sharpe', bt_sharpe, 'n_rows', n_rows)::text "
        "from evaluations where run = $1 and task = $2 and role = 'candidate'", 2, p);
    if (!r) {
        snprintf (why, size, "cannot read the evaluation of run %s", run);
        return -1;
    }
    if (PQntuples (r) != 1) {
        snprintf (why, size, "no evaluated candidate for task %s in run %s", task, run);
        PQclear (r);
        return -1;
    }
    s_copy (cand->task, sizeof cand->task, task);
    s_copy (cand->run, sizeof cand->run, run);
    s_copy (cand->policy, sizeof cand->policy, PQgetvalue (r, 0, 0));
    s_copy (cand->family, sizeof cand->family, PQgetvalue (r, 0, 1));
    s_copy (cand->artifact_uri, sizeof cand->artifact_uri, PQgetvalue (r, 0, 2));
    s_copy (cand->sha256, sizeof cand->sha256, PQgetvalue (r, 0, 3));
    s_copy (cand->rows_sha256, sizeof cand->rows_sha256, PQgetvalue (r, 0, 4));
    cand->accuracy = s_getnum (r, 0, 5);
    s_copy (cand->metrics_json, sizeof cand->metrics_json, PQgetvalue (r, 0, 6));
    PQclear (r);
    if (s_load_side (self, run, cand->policy, "production", &cand->production)
        || s_load_side (self, run, cand->policy, "rules", &cand->rules)) {
        snprintf (why, size, "cannot read the comparisons of run %s", run);
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  Deploy

//  Reads a recorded deploy decision of (task, run) into out. Returns 1 when
//  there is one, 0 when not, -1 on trouble.
static int
s_recorded (lb_registry_t *self, const char *task, const char *run, lb_registry_outcome_t *out)
{
    const char *p [2] = { task, run };
    PGresult *r = lb_pg_query (self->pg,
        "select decision, coalesce (candidate_version, 0), coalesce (incumbent_version, 0), "
        "ci_lo, margin, reason from deploy_decisions where task = $1 and run = $2 "
        "and action = 'deploy'", 2, p);
    if (!r)
        return -1;
    int found = PQntuples (r) == 1;
    if (found) {
        memset (out, 0, sizeof *out);
        const char *d = PQgetvalue (r, 0, 0);
        out->decision = strcmp (d, "promoted") == 0 ? LB_REGISTRY_PROMOTED
                      : strcmp (d, "rejected") == 0 ? LB_REGISTRY_REJECTED : LB_REGISTRY_REFUSED;
        out->version = atoi (PQgetvalue (r, 0, 1));
        out->incumbent = atoi (PQgetvalue (r, 0, 2));
        out->improvement = s_getnum (r, 0, 3);
        out->needed = s_getnum (r, 0, 4);
        out->replay = true;
        s_reason (out, "already decided for run %s: %s", run, PQgetvalue (r, 0, 5));
    }
    PQclear (r);
    return found;
}

//  Records a refusal and commits. Returns 0 or -1.
static int
s_refuse (lb_registry_t *self, const lb_registry_candidate_t *cand, lb_registry_outcome_t *out,
          int incumbent)
{
    out->decision = LB_REGISTRY_REFUSED;
    out->incumbent = incumbent;
    lb_log_error ("deploy refused task=%s run=%s: %s", cand->task, cand->run, out->reason);
    if (s_log_decision (self, cand->task, cand->run, "deploy", 0, incumbent, cand->artifact_uri,
                        NAN, cand->accuracy, NAN, NAN, NAN, NAN, "refused", out->reason)
        || lb_pg_exec (self->pg, "commit", 0, NULL)) {
        s_rollback_tx (self);
        return -1;
    }
    return 0;
}

int
lb_registry_deploy (lb_registry_t *self, const lb_registry_candidate_t *cand,
                    lb_registry_outcome_t *out)
{
    assert (self && cand && out);
    memset (out, 0, sizeof *out);
    if (!lb_registry_task_ok (cand->task)) {
        out->decision = LB_REGISTRY_REFUSED;
        s_reason (out, "task name '%s' is not 1-100 characters of [A-Za-z0-9_.-]", cand->task);
        lb_log_error ("deploy refused: %s", out->reason);
        return 0;
    }
    lb_registry_repair (self);
    char *inc_path = NULL, *inc_sha = NULL, *src = NULL, *dst = NULL;
    int rc = -1;
    if (lb_pg_exec (self->pg, "begin", 0, NULL))
        return -1;
    if (s_lock_task (self, cand->task))
        goto fail;
    int seen = s_recorded (self, cand->task, cand->run, out);
    if (seen < 0)
        goto fail;
    if (seen) {
        lb_log_info ("deploy task=%s run=%s: %s", cand->task, cand->run, out->reason);
        rc = lb_pg_exec (self->pg, "commit", 0, NULL);
        goto done;
    }
    int incumbent = 0;
    if (s_alias (self, cand->task, "production", &incumbent, &inc_path, &inc_sha))
        goto fail;

    //  Bad input first: the artifact, the incumbent's artifact, the numbers.
    char uri_hash [65] = "", why [400];
    bool store_uri = lb_artifact_uri_hash (cand->artifact_uri, uri_hash) == 0;
    src = s_uri_path (cand->artifact_uri);
    if (!src || (!store_uri && !cand->sha256 [0])) {
        s_reason (out, "candidate artifact '%s' is not a file:// URI with a known SHA-256",
                  cand->artifact_uri);
        rc = s_refuse (self, cand, out, incumbent);
        goto done;
    }
    if (store_uri && cand->sha256 [0] && strcmp (uri_hash, cand->sha256) != 0) {
        s_reason (out, "candidate artifact %s: evaluated as SHA-256 %.16s... but the URI names "
                  "%.16s...", cand->artifact_uri, cand->sha256, uri_hash);
        rc = s_refuse (self, cand, out, incumbent);
        goto done;
    }
    const char *hex = store_uri ? uri_hash : cand->sha256;
    if (lb_fcopy_verify (src, hex, why, sizeof why)) {
        s_reason (out, "candidate artifact refused: %s", why);
        rc = s_refuse (self, cand, out, incumbent);
        goto done;
    }
    if (incumbent && (!inc_path [0] || lb_fcopy_verify (inc_path, inc_sha, why, sizeof why))) {
        s_reason (out, "registry row of production v%d points at a missing or corrupt artifact: %s",
                  incumbent, inc_path [0] ? why : "no deployed path");
        rc = s_refuse (self, cand, out, incumbent);
        goto done;
    }
    lb_registry_gate (&self->settings, cand, incumbent, out);
    if (out->decision == LB_REGISTRY_REFUSED) {
        rc = s_refuse (self, cand, out, incumbent);
        goto done;
    }
    const lb_registry_side_t *base = incumbent ? &cand->production : &cand->rules;

    //  Register the version, promoted or rejected alike.
    PGresult *r = lb_pg_query (self->pg, "select coalesce (max (version), 0) + 1 from model_versions "
                               "where task = $1", 1, (const char *const []) { cand->task });
    if (!r)
        goto fail;
    int version = atoi (PQgetvalue (r, 0, 0));
    PQclear (r);
    bool promote = out->decision == LB_REGISTRY_PROMOTED;
    if (promote) {
        dst = lb_xasprintf ("%s/%s/v%d-%.16s.model", self->deploy_dir, cand->task, version, hex);
        if (lb_fcopy_verified (src, dst, hex, why, sizeof why)) {
            lb_log_error ("deploy task=%s run=%s: copy to the deploy directory failed: %s",
                          cand->task, cand->run, why);
            goto fail;          //  disk trouble: retry, nothing recorded
        }
    }
    char vbuf [16];
    snprintf (vbuf, sizeof vbuf, "%d", version);
    const char *vp [9] = { cand->task, vbuf, cand->artifact_uri, hex, cand->run, cand->family,
                           cand->metrics_json [0] ? cand->metrics_json : "{}",
                           promote ? "promoted" : "rejected", dst };
    if (lb_pg_exec (self->pg, "insert into model_versions (task, version, artifact_uri, sha256, "
                    "run, family, metrics, status, deployed_path) "
                    "values ($1, $2, $3, $4, $5, $6, $7::jsonb, $8, $9)", 9, vp))
        goto fail;
    out->version = version;
    long long gen = 0;
    if (promote) {
        char ibuf [16];
        snprintf (ibuf, sizeof ibuf, "%d", incumbent);
        const char *ap [2] = { cand->task, vbuf }, *pp [2] = { cand->task, ibuf };
        if ((incumbent && lb_pg_exec (self->pg,
                "insert into model_aliases (task, alias, version) values ($1, 'previous', $2) "
                "on conflict (task, alias) do update set version = $2, updated_at = now()", 2, pp))
            || lb_pg_exec (self->pg,
                "insert into model_aliases (task, alias, version) values ($1, 'production', $2) "
                "on conflict (task, alias) do update set version = $2, updated_at = now()", 2, ap))
            goto fail;
        gen = s_pointer_stage (self, cand->task, version, dst, hex, cand->family);
        if (gen < 0)
            goto fail;
    }
    if (s_log_decision (self, cand->task, cand->run, "deploy", version, incumbent,
                        cand->artifact_uri, base->accuracy, cand->accuracy, base->diff, base->lo,
                        base->hi, out->needed, promote ? "promoted" : "rejected", out->reason))
        goto fail;
    if (lb_pg_exec (self->pg, "commit", 0, NULL))
        goto fail;
    lb_log_info ("deploy task=%s run=%s version=%d %s: %s", cand->task, cand->run, version,
                 promote ? "promoted" : "rejected", out->reason);
    if (promote && s_pointer_push (self, cand->task, gen, version, dst, hex, cand->family)) {
        out->pointer_pending = true;
        lb_log_warn ("task=%s version=%d promoted; Redis unavailable, serving pointer pending "
                     "until it returns", cand->task, version);
    }
    rc = 0;
    goto done;
fail:
    s_rollback_tx (self);
    if (dst)
        unlink (dst);
    rc = -1;
done:
    free (inc_path);
    free (inc_sha);
    free (src);
    free (dst);
    return rc;
}

int
lb_registry_rollback (lb_registry_t *self, const char *task, const char *why_text,
                      lb_registry_outcome_t *out)
{
    assert (self && task && out);
    memset (out, 0, sizeof *out);
    out->improvement = out->needed = NAN;
    if (!lb_registry_task_ok (task)) {
        out->decision = LB_REGISTRY_REFUSED;
        s_reason (out, "task name '%s' is not 1-100 characters of [A-Za-z0-9_.-]", task);
        return 0;
    }
    lb_registry_repair (self);
    char *prev_path = NULL, *prev_sha = NULL;
    int rc = -1, current = 0, previous = 0;
    if (lb_pg_exec (self->pg, "begin", 0, NULL))
        return -1;
    if (s_lock_task (self, task)
        || s_alias (self, task, "production", &current, NULL, NULL)
        || s_alias (self, task, "previous", &previous, &prev_path, &prev_sha))
        goto fail;
    out->incumbent = current;
    char why [400];
    if (!current || !previous) {
        out->decision = LB_REGISTRY_REFUSED;
        s_reason (out, "task %s: %s", task, !current ? "no model in production"
                  : "no previous version to roll back to");
    }
    else
    if (!prev_path [0] || lb_fcopy_verify (prev_path, prev_sha, why, sizeof why)) {
        out->decision = LB_REGISTRY_REFUSED;
        s_reason (out, "registry row of v%d points at a missing or corrupt artifact: %s",
                  previous, prev_path [0] ? why : "no deployed path");
    }
    if (out->decision == LB_REGISTRY_REFUSED) {
        lb_log_error ("rollback refused: %s", out->reason);
        if (s_log_decision (self, task, NULL, "rollback", previous, current, NULL, NAN, NAN, NAN,
                            NAN, NAN, NAN, "refused", out->reason)
            || lb_pg_exec (self->pg, "commit", 0, NULL))
            goto fail;
        rc = 0;
        goto done;
    }
    char cbuf [16], pbuf [16];
    snprintf (cbuf, sizeof cbuf, "%d", current);
    snprintf (pbuf, sizeof pbuf, "%d", previous);
    const char *p [3] = { task, pbuf, cbuf };
    if (lb_pg_exec (self->pg, "update model_aliases set version = $2, updated_at = now() "
                    "where task = $1 and alias = 'production'", 2, p)
        || lb_pg_exec (self->pg, "delete from model_aliases where task = $1 and alias = 'previous'",
                       1, p)
        || lb_pg_exec (self->pg, "update model_versions set status = 'rolled_back' "
                       "where task = $1 and version = $2", 2, (const char *const []) { task, cbuf }))
        goto fail;
    PGresult *r = lb_pg_query (self->pg, "select family from model_versions where task = $1 "
                               "and version = $2", 2, p);
    if (!r)
        goto fail;
    char *family = lb_xstrdup (PQntuples (r) ? PQgetvalue (r, 0, 0) : "");
    PQclear (r);
    long long gen = s_pointer_stage (self, task, previous, prev_path, prev_sha, family);
    out->decision = LB_REGISTRY_ROLLED_BACK;
    out->version = previous;
    s_reason (out, "rolled back from v%d to v%d%s%s", current, previous,
              why_text ? ": " : "", why_text ? why_text : "");
    if (gen < 0
        || s_log_decision (self, task, NULL, "rollback", previous, current, NULL, NAN, NAN, NAN,
                           NAN, NAN, NAN, "rolled_back", out->reason)
        || lb_pg_exec (self->pg, "commit", 0, NULL)) {
        free (family);
        goto fail;
    }
    lb_log_info ("task=%s %s", task, out->reason);
    if (s_pointer_push (self, task, gen, previous, prev_path, prev_sha, family))
        out->pointer_pending = true;
    free (family);
    rc = 0;
    goto done;
fail:
    s_rollback_tx (self);
    rc = -1;
done:
    free (prev_path);
    free (prev_sha);
    return rc;
}

//  --------------------------------------------------------------------------
//  Selftest: the gate (the database paths run in tests/t_deploy_*.sh).

void
lb_registry_test (bool verbose)
{
    lb_registry_settings_t s = { "accuracy", 0.01, 0, true, "/tmp" };
    lb_registry_candidate_t c;
    memset (&c, 0, sizeof c);
    snprintf (c.task, sizeof c.task, "t");
    snprintf (c.policy, sizeof c.policy, "ensemble");
    memset (c.rows_sha256, 'a', 64);
    c.accuracy = 0.62;
    c.rules = (lb_registry_side_t) { true, 0, "", "", 0.55, 0.07, 0.03, 0.11 };
    memcpy (c.rules.rows_sha256, c.rows_sha256, 65);
    memcpy (c.rules.cmp_rows_sha256, c.rows_sha256, 65);
    c.production = c.rules;
    c.production.version = 3;
    lb_registry_outcome_t o;

    //  First model, beats the rules (lower bound 0.03 > 0).
    lb_registry_gate (&s, &c, 0, &o);
    assert (o.decision == LB_REGISTRY_PROMOTED && o.improvement == 0.03);
    //  Against production: lower bound 0.03 > 0.01.
    lb_registry_gate (&s, &c, 3, &o);
    assert (o.decision == LB_REGISTRY_PROMOTED);
    //  Inside the noise: point +0.02 but lower bound -0.005.
    c.production.diff = 0.02;
    c.production.lo = -0.005;
    lb_registry_gate (&s, &c, 3, &o);
    assert (o.decision == LB_REGISTRY_REJECTED && strstr (o.reason, "lower bound"));
    //  ... promoted when configured to use the point estimate.
    s.use_lower_bound = false;
    lb_registry_gate (&s, &c, 3, &o);
    assert (o.decision == LB_REGISTRY_PROMOTED && o.improvement == 0.02);
    //  Exactly the margin is not enough.
    c.production.diff = 0.01;
    lb_registry_gate (&s, &c, 3, &o);
    assert (o.decision == LB_REGISTRY_REJECTED);
    s.use_lower_bound = true;
    //  Compared with an older production.
    lb_registry_gate (&s, &c, 4, &o);
    assert (o.decision == LB_REGISTRY_REFUSED && strstr (o.reason, "evaluate again"));
    //  Different rows.
    c.production.rows_sha256 [0] = 'b';
    lb_registry_gate (&s, &c, 3, &o);
    assert (o.decision == LB_REGISTRY_REFUSED && strstr (o.reason, "different rows"));
    c.production.rows_sha256 [0] = 'a';
    //  NaN.
    c.production.lo = NAN;
    lb_registry_gate (&s, &c, 3, &o);
    assert (o.decision == LB_REGISTRY_REFUSED && strstr (o.reason, "not numbers"));
    c.accuracy = NAN;
    lb_registry_gate (&s, &c, 0, &o);
    assert (o.decision == LB_REGISTRY_REFUSED);
    //  Production exists but no comparison with it.
    c.accuracy = 0.6;
    c.production.present = false;
    lb_registry_gate (&s, &c, 3, &o);
    assert (o.decision == LB_REGISTRY_REFUSED);
    //  An unsupported metric is refused, not silently read as accuracy.
    s.metric = "f1";
    lb_registry_gate (&s, &c, 0, &o);
    assert (o.decision == LB_REGISTRY_REFUSED);
    if (verbose)
        printf ("%s\n", o.reason);

    assert (lb_registry_task_ok ("spy_reversal-1.h"));
    assert (!lb_registry_task_ok ("../etc") && !lb_registry_task_ok ("") && !lb_registry_task_ok (".x"));
    assert (!lb_registry_task_ok ("a b") && !lb_registry_task_ok (NULL));
}
