/*  wd_store.c - tasks and discover_attempts in PostgreSQL. */
#include "wd_store.h"
#include "lb_log.h"
#include "lb_mem.h"
#include "lb_pg.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _wd_store_t {
    PGconn *conn;
};

wd_store_t *
wd_store_new (const char *url)
{
    PGconn *conn = lb_pg_connect (url, "worker-discover");
    if (!conn)
        return NULL;
    wd_store_t *self = lb_xcalloc (1, sizeof *self);
    self->conn = conn;
    return self;
}

void
wd_store_destroy (wd_store_t **self_p)
{
    assert (self_p);
    wd_store_t *self = *self_p;
    if (!self)
        return;
    PQfinish (self->conn);
    free (self);
    *self_p = NULL;
}

int64_t
wd_store_load (wd_store_t *self, wd_novelty_t *nov)
{
    assert (self && nov);
    PGresult *res = lb_pg_query (self->conn, "select name, fingerprint, minhash from tasks order by id", 0, NULL);
    if (!res)
        return -1;
    int64_t n = PQntuples (res);
    for (int i = 0; i < n; i++) {
        wd_minhash_t sig;
        if (wd_minhash_from_hex (PQgetvalue (res, i, 2), &sig)) {
            lb_log_error ("tasks: row %d (%s) has a bad minhash", i, PQgetvalue (res, i, 0));
            PQclear (res);
            return -1;
        }
        wd_novelty_add (nov, PQgetvalue (res, i, 0), PQgetvalue (res, i, 1), &sig);
    }
    PQclear (res);
    return n;
}

int
wd_store_find (wd_store_t *self, const char *run, const char *step, char **spec_json, int64_t *id)
{
    assert (self && run && step && spec_json && id);
    const char *params [] = { run, step };
    PGresult *res = lb_pg_query (self->conn, "select id, spec::text from tasks where run_id = $1 and step = $2",
                                 2, params);
    if (!res)
        return -1;
    int rc = 1;
    if (PQntuples (res) == 1) {
        *id = strtoll (PQgetvalue (res, 0, 0), NULL, 10);
        *spec_json = lb_xstrdup (PQgetvalue (res, 0, 1));
        rc = 0;
    }
    PQclear (res);
    return rc;
}

int
wd_store_insert (wd_store_t *self, const pr_task_t *task, const wd_minhash_t *sig, const char *origin,
                 const char *run, const char *step, int64_t *id)
{
    assert (self && task && sig && origin && id);
    char *spec = pr_task_to_json (task);
    char hex [WD_MINHASH_HEX + 1];
    wd_minhash_to_hex (sig, hex);
    const char *params [] = { task->name, task->fingerprint, spec, hex, origin, run, step };
    PGresult *res = lb_pg_query (self->conn,
        "insert into tasks (name, fingerprint, spec, minhash, origin, run_id, step) "
        "values ($1, $2, $3::jsonb, $4, $5, $6, $7) on conflict do nothing returning id",
        7, params);
    free (spec);
    if (!res)
        return -1;
    int rc = 1;
    if (PQntuples (res) == 1) {
        *id = strtoll (PQgetvalue (res, 0, 0), NULL, 10);
        rc = 0;
    }
    PQclear (res);
    return rc;
}

int
wd_store_attempt (wd_store_t *self, const char *run, const char *step, const char *origin,
                  const char *outcome, const char *reason, const char *output)
{
    assert (self && origin && outcome);
    char *cut = NULL;
    if (output && strlen (output) > 65536)
        output = cut = lb_xstrndup (output, 65536);
    const char *params [] = { run, step, origin, outcome, reason, output };
    int rc = lb_pg_exec (self->conn,
        "insert into discover_attempts (run_id, step, origin, outcome, reason, output) "
        "values ($1, $2, $3, $4, $5, $6)", 6, params);
    free (cut);
    return rc;
}

int
wd_store_columns (wd_store_t *self, const char *table, char **columns)
{
    assert (self && table && columns);
    const char *params [] = { table };
    PGresult *res = lb_pg_query (self->conn,
        "select string_agg (column_name::text, ',' order by ordinal_position) from information_schema.columns "
        "where table_schema = 'public' and table_name = $1", 1, params);
    if (!res)
        return -1;
    int rc = 1;
    if (!PQgetisnull (res, 0, 0)) {
        *columns = lb_xstrdup (PQgetvalue (res, 0, 0));
        rc = 0;
    }
    PQclear (res);
    return rc;
}

char *
wd_store_history (wd_store_t *self, size_t max_bytes)
{
    assert (self);
    PGresult *res = lb_pg_query (self->conn,
        "select name, spec->'target'->>'kind', spec->'target'->>'column', spec->'target'->>'horizon', "
        "(select string_agg (s->>'uri' || coalesce (' where ' || (s->'where')::text, ''), ' + ') "
        "   from jsonb_array_elements (spec->'sources') s) "
        "from tasks order by id desc", 0, NULL);
    if (!res)
        return NULL;
    int n = PQntuples (res);
    size_t cap = 1024, len = 0;
    char *text = lb_xmalloc (cap);
    text [0] = 0;
    int shown = 0;
    for (int i = 0; i < n; i++) {
        char *line = lb_xasprintf ("- %s: %s of %s, horizon %s, from %s\n", PQgetvalue (res, i, 0),
                                   PQgetvalue (res, i, 1), PQgetvalue (res, i, 2), PQgetvalue (res, i, 3),
                                   PQgetvalue (res, i, 4));
        size_t ll = strlen (line);
        if (len + ll + 128 > max_bytes) {
            free (line);
            break;
        }
        if (len + ll + 1 > cap) {
            while (len + ll + 1 > cap)
                cap *= 2;
            text = lb_xrealloc (text, cap);
        }
        memcpy (text + len, line, ll + 1);
        len += ll;
        free (line);
        shown++;
    }
    if (shown < n) {
        char *more = lb_xasprintf ("%s- ... and %d older tasks not listed here (novelty is checked against "
                                   "all of them)\n", text, n - shown);
        free (text);
        text = more;
    }
    PQclear (res);
    return text;
}

void
wd_store_test (bool verbose)
{
    (void) verbose;
    const char *url = getenv ("DATABASE_URL");
    if (!url) {
        printf ("wd_store: DATABASE_URL not set, skipped\n");
        return;
    }
    wd_store_t *store = wd_store_new (url);
    assert (store);
    PGresult *res = lb_pg_query (store->conn, "select to_regclass('public.tasks') is not null", 0, NULL);
    assert (res);
    bool migrated = strcmp (PQgetvalue (res, 0, 0), "t") == 0;
    PQclear (res);
    if (!migrated) {
        printf ("wd_store: no tasks table (migrations not applied), skipped\n");
        wd_store_destroy (&store);
        return;
    }
    //  Private copies: temporary tables come first in the search path.
    assert (lb_pg_exec (store->conn, "create temporary table tasks (like public.tasks including all)", 0, NULL) == 0);
    assert (lb_pg_exec (store->conn, "create temporary table discover_attempts "
                        "(like public.discover_attempts including all)", 0, NULL) == 0);
    wd_novelty_t *nov = wd_novelty_new (0.8);
    assert (wd_store_load (store, nov) == 0);

    const char *spec =
        "{\"version\":1,\"name\":\"nile_up\",\"hypothesis\":\"The Nile's flow next year follows this year's.\","
        "\"novelty\":\"first Nile task\",\"task_type\":\"binary\",\"sources\":[{\"uri\":"
        "\"debian:python3-statsmodels:/usr/lib/python3/dist-packages/statsmodels/datasets/nile/nile.csv\","
        "\"format\":\"csv\",\"columns\":[\"year\",\"volume\"],\"size_bytes\":942}],\"target\":{\"column\":"
        "\"volume\",\"kind\":\"direction\",\"horizon\":1},\"features\":[\"lag(volume,1)\"],\"metric\":"
        "\"accuracy\",\"model_families\":[\"xgboost\"]}";
    pr_task_t *task = pr_task_from_json (spec, strlen (spec), NULL);
    assert (task);
    wd_minhash_t sig;
    wd_minhash_compute (task->hypothesis, &sig);
    int64_t id = 0, id2 = 0;
    assert (wd_store_insert (store, task, &sig, "catalog", "run-1", "discover", &id) == 0 && id > 0);
    //  The same fingerprint again, or the same (run, step): not inserted.
    assert (wd_store_insert (store, task, &sig, "catalog", "run-2", "discover", &id2) == 1);
    char *found = NULL;
    assert (wd_store_find (store, "run-1", "discover", &found, &id2) == 0 && id2 == id);
    pr_task_t *back = pr_task_from_json (found, strlen (found), NULL);
    assert (back && strcmp (back->fingerprint, task->fingerprint) == 0);
    pr_task_destroy (&back);
    free (found);
    assert (wd_store_find (store, "run-9", "discover", &found, &id2) == 1);
    assert (wd_store_insert (store, task, &sig, "catalog", NULL, NULL, &id2) == 1);

    wd_novelty_t *nov2 = wd_novelty_new (0.8);
    assert (wd_store_load (store, nov2) == 1);
    assert (wd_novelty_check (nov2, task->fingerprint, &sig, NULL, NULL) == WD_DUPLICATE);
    assert (wd_store_attempt (store, "run-1", "discover", "llm", "invalid", "sources[0].uri: bad", "{}") == 0);
    int fd = lb_log_setup_fd (-1);
    assert (wd_store_attempt (store, "run-1", "discover", "llm", "nonsense", NULL, NULL) == -1);
    lb_log_setup_fd (fd);
    res = lb_pg_query (store->conn, "select count(*) from discover_attempts", 0, NULL);
    assert (res && strcmp (PQgetvalue (res, 0, 0), "1") == 0);
    PQclear (res);
    char *columns = NULL;
    assert (wd_store_columns (store, "discover_attempts", &columns) == 0);
    assert (strcmp (columns, "id,run_id,step,origin,outcome,reason,output,created_at") == 0);
    free (columns);
    assert (wd_store_columns (store, "no_such_table", &columns) == 1);
    char *history = wd_store_history (store, 4096);
    assert (history && strstr (history, "- nile_up: direction of volume, horizon 1, from debian:python3-statsmodels:"));
    free (history);
    history = wd_store_history (store, 100);
    assert (history && strstr (history, "1 older tasks not listed"));
    free (history);
    pr_task_destroy (&task);
    wd_novelty_destroy (&nov);
    wd_novelty_destroy (&nov2);
    wd_store_destroy (&store);
    wd_store_destroy (&store);
}
