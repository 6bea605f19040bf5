/*  wk_evalstore.c - an evaluation into PostgreSQL and Redis. */
#include "wk_evalstore.h"
#include "lb_clock.h"
#include "lb_log.h"
#include "lb_mem.h"
#include "lb_pg.h"
#include "lb_redis.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  A text parameter for a number: NULL (SQL null) when not finite. Caller frees.
static char *
s_num (double v)
{
    return isfinite (v) ? lb_xasprintf ("%.17g", v) : NULL;
}

static char *
s_count (size_t v)
{
    return lb_xasprintf ("%zu", v);
}

static int
s_policy_row (PGconn *pg, wk_eval_t *eval, const wk_eval_policy_t *p, const char *run,
              const char *task, const char *report_uri)
{
    const wk_eval_settings_t *s = wk_eval_settings (eval);
    char *owned [32];
    int no = 0;
    #define OWN(x) (owned [no++] = (x))
    const char *v [31] = {
        run, task, p->name, p->family, p->role,
        p->version ? OWN (lb_xasprintf ("%d", p->version)) : NULL,
        p->artifact_uri, p->sha256, wk_eval_rows_sha256 (eval),
        OWN (s_count (wk_eval_rows (eval))), OWN (s_num (s->threshold)),
        OWN (s_num (p->m.accuracy)), OWN (s_num (p->m.precision)), OWN (s_num (p->m.recall)),
        OWN (s_num (p->m.f1)), OWN (s_num (p->m.auc)), OWN (s_num (p->m.logloss)),
        OWN (s_num (p->m.fpr)), OWN (s_num (p->m.brier)), OWN (s_num (p->ece)),
        OWN (s_count (p->m.cm.tp)), OWN (s_count (p->m.cm.fp)), OWN (s_count (p->m.cm.tn)),
        OWN (s_count (p->m.cm.fn)), OWN (s_count (p->bt.trades)), OWN (s_num (p->bt.total)),
        OWN (s_num (p->bt.sharpe)), OWN (s_num (p->bt.hit_rate)), OWN (s_num (p->bt.max_drawdown)),
        report_uri, NULL
    };
    #undef OWN
    int rc = lb_pg_exec (pg,
        "insert into evaluations (run, task, policy, family, role, model_version, artifact_uri, "
        "sha256, rows_sha256, n_rows, threshold, accuracy, precision_, recall, f1, roc_auc, "
        "log_loss, fpr, brier, ece, tp, fp, tn, fn, bt_trades, bt_total, bt_sharpe, bt_hit_rate, "
        "bt_max_drawdown, report_uri) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, "
        "$13, $14, $15, $16, $17, $18, $19, $20, $21, $22, $23, $24, $25, $26, $27, $28, $29, $30)",
        30, v);
    for (int i = 0; i < no; i++)
        free (owned [i]);
    return rc;
}

int
wk_evalstore_save_pg (PGconn *pg, wk_eval_t *eval, const char *run, const char *task,
                      const char *report_uri)
{
    assert (pg && eval && run && task);
    if (lb_pg_exec (pg, "begin", 0, NULL))
        return -1;
    const char *key [1] = { run };
    if (lb_pg_exec (pg, "delete from evaluations where run = $1", 1, key)
        || lb_pg_exec (pg, "delete from evaluation_comparisons where run = $1", 1, key))
        goto fail;
    for (size_t i = 0; i < wk_eval_policies (eval); i++)
        if (s_policy_row (pg, eval, wk_eval_policy (eval, i), run, task, report_uri))
            goto fail;
    const wk_eval_settings_t *s = wk_eval_settings (eval);
    for (size_t i = 0; i < wk_eval_comparisons (eval); i++) {
        const wk_eval_cmp_t *c = wk_eval_comparison (eval, i);
        char *owned [12];
        int no = 0;
        #define OWN(x) (owned [no++] = (x))
        const char *v [16] = {
            run, task, c->candidate, c->baseline,
            c->baseline_version ? OWN (lb_xasprintf ("%d", c->baseline_version)) : NULL,
            wk_eval_rows_sha256 (eval), OWN (s_count (wk_eval_rows (eval))),
            OWN (s_num (c->ci.diff)), OWN (s_num (c->ci.lo)), OWN (s_num (c->ci.hi)),
            OWN (s_num (c->ci.level)), OWN (s_count (c->ci.rounds)),
            OWN (lb_xasprintf ("%lld", (long long) s->seed)), OWN (s_count (c->mc.b)),
            OWN (s_count (c->mc.c)), OWN (s_num (c->mc.p_exact))
        };
        #undef OWN
        int rc = lb_pg_exec (pg,
            "insert into evaluation_comparisons (run, task, candidate, baseline, baseline_version, "
            "rows_sha256, n_rows, diff, ci_lo, ci_hi, ci_level, rounds, seed, mcnemar_b, mcnemar_c, "
            "mcnemar_p) values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)",
            16, v);
        for (int k = 0; k < no; k++)
            free (owned [k]);
        if (rc)
            goto fail;
    }
    if (lb_pg_exec (pg, "commit", 0, NULL))
        goto fail;
    return 0;
fail:
    PQclear (PQexec (pg, "rollback"));
    lb_log_error ("evaluation of run=%s task=%s not stored", run, task);
    return -1;
}

int
wk_evalstore_save_redis (redisContext *redis, wk_eval_t *eval, const char *run, const char *task,
                         const char *report_uri)
{
    assert (redis && eval);
    const wk_eval_policy_t *c = wk_eval_candidate (eval);
    assert (c);
    char key [256], t [40];
    snprintf (key, sizeof key, "pred:eval:%s:last", task);
    lb_clock_format_iso (lb_clock_wall_us (), t, sizeof t);
    char num [8][32] = { { 0 } };
    snprintf (num [0], 32, "%zu", wk_eval_rows (eval));
    snprintf (num [1], 32, "%.6f", c->m.accuracy);
    snprintf (num [2], 32, "%.6f", c->m.auc);
    snprintf (num [3], 32, "%.6f", c->bt.sharpe);
    const char *argv [40];
    size_t argl [40];
    int n = 0;
    argv [n++] = "HSET";
    argv [n++] = key;
    #define FIELD(k, v) (argv [n++] = (k), argv [n++] = (v))
    FIELD ("run", run);
    FIELD ("candidate", c->name);
    FIELD ("rows", num [0]);
    FIELD ("accuracy", num [1]);
    FIELD ("roc_auc", num [2]);
    FIELD ("sharpe", num [3]);
    FIELD ("report", report_uri ? report_uri : "");
    FIELD ("updated_at", t);
    char cmpbuf [6][32];
    int nb = 0;
    for (size_t i = 0; i < wk_eval_comparisons (eval); i++) {
        const wk_eval_cmp_t *cmp = wk_eval_comparison (eval, i);
        if (strcmp (cmp->candidate, c->name) != 0)
            continue;
        bool prod = strcmp (cmp->baseline, "production") == 0;
        snprintf (cmpbuf [nb], 32, "%.6f", cmp->ci.diff);
        FIELD (prod ? "vs_production_diff" : "vs_rules_diff", cmpbuf [nb]);
        nb++;
        snprintf (cmpbuf [nb], 32, "%.6f", cmp->ci.lo);
        FIELD (prod ? "vs_production_lo" : "vs_rules_lo", cmpbuf [nb]);
        nb++;
        snprintf (cmpbuf [nb], 32, "%.6f", cmp->ci.hi);
        FIELD (prod ? "vs_production_hi" : "vs_rules_hi", cmpbuf [nb]);
        nb++;
    }
    #undef FIELD
    for (int i = 0; i < n; i++)
        argl [i] = strlen (argv [i]);
    redisReply *r = redisCommandArgv (redis, n, argv, argl);
    if (!r || r->type == REDIS_REPLY_ERROR) {
        lb_log_warn ("dashboard key %s not written: %s", key,
                     r ? r->str : redis->errstr);
        if (r)
            freeReplyObject (r);
        return -1;
    }
    freeReplyObject (r);
    return 0;
}

void
wk_evalstore_test (bool verbose)
{
    //  Formatting only; the stores are exercised by tests/t_deploy_gate.sh.
    char *a = s_num (NAN), *b = s_num (0.25), *c = s_count (7);
    assert (a == NULL && strcmp (b, "0.25") == 0 && strcmp (c, "7") == 0);
    if (verbose)
        printf ("%s %s\n", b, c);
    free (b);
    free (c);
}
