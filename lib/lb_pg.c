/*  lb_pg.c - libpq helpers with error reporting. */
#include "lb_pg.h"
#include "lb_log.h"
#include "lb_mem.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

char *
lb_pg_safe_url (const char *url, char *buf, size_t size)
{
    assert (buf && size);
    snprintf (buf, size, "%s", url ? url : "(default)");
    //  URI form: scheme://user:password@host
    char *scheme = strstr (buf, "://");
    if (scheme) {
        char *at = strchr (scheme + 3, '@');
        char *colon = strchr (scheme + 3, ':');
        if (at && colon && colon < at) {
            size_t tail = strlen (at);
            if ((size_t) (colon + 4 - buf) + tail < size) {
                memmove (colon + 4, at, tail + 1);
                memcpy (colon + 1, "***", 3);
            }
        }
    }
    //  key=value form: password=...
    char *pw = strstr (buf, "password=");
    if (pw) {
        char *end = strchr (pw, ' ');
        size_t tail = end ? strlen (end) : 0;
        char *value = pw + 9;
        if ((size_t) (value + 3 - buf) + tail < size) {
            if (end)
                memmove (value + 3, end, tail + 1);
            else
                value [3] = 0;
            memcpy (value, "***", 3);
        }
    }
    return buf;
}

PGconn *
lb_pg_connect (const char *url, const char *program)
{
    const char *keys [] = { "dbname", "application_name", "connect_timeout", NULL };
    const char *values [] = { url ? url : "", program ? program : "predictors", "10", NULL };
    PGconn *conn = PQconnectdbParams (keys, values, 1);
    if (!conn || PQstatus (conn) != CONNECTION_OK) {
        char safe [512];
        const char *why = conn ? PQerrorMessage (conn) : "out of memory";
        char *line = lb_xstrdup (why);
        line [strcspn (line, "\n")] = 0;
        lb_log_error ("postgres %s: cannot connect: %s", lb_pg_safe_url (url, safe, sizeof safe), line);
        free (line);
        PQfinish (conn);
        return NULL;
    }
    PGresult *res = PQexec (conn, "set client_min_messages = warning");
    PQclear (res);
    return conn;
}

static void
s_log_failure (PGconn *conn, PGresult *res, const char *sql)
{
    const char *state = res ? PQresultErrorField (res, PG_DIAG_SQLSTATE) : NULL;
    const char *why = res ? PQresultErrorMessage (res) : PQerrorMessage (conn);
    char *line = lb_xstrdup (why && *why ? why : "unknown error");
    line [strcspn (line, "\n")] = 0;
    lb_log_error ("postgres: %s (sqlstate=%s) sql=\"%.120s\"", line, state ? state : "none", sql);
    free (line);
}

PGresult *
lb_pg_query_state (PGconn *conn, const char *sql, int nparams, const char *const *params,
                   char state [6])
{
    assert (conn && sql);
    if (state)
        state [0] = 0;
    PGresult *res = PQexecParams (conn, sql, nparams, NULL, params, NULL, NULL, 0);
    ExecStatusType status = res ? PQresultStatus (res) : PGRES_FATAL_ERROR;
    if (status != PGRES_TUPLES_OK && status != PGRES_COMMAND_OK) {
        if (state) {
            const char *code = res ? PQresultErrorField (res, PG_DIAG_SQLSTATE) : NULL;
            snprintf (state, 6, "%s", code ? code : (PQstatus (conn) != CONNECTION_OK ? "08006" : "XX000"));
        }
        s_log_failure (conn, res, sql);
        PQclear (res);
        return NULL;
    }
    return res;
}

PGresult *
lb_pg_query (PGconn *conn, const char *sql, int nparams, const char *const *params)
{
    return lb_pg_query_state (conn, sql, nparams, params, NULL);
}

int
lb_pg_exec (PGconn *conn, const char *sql, int nparams, const char *const *params)
{
    PGresult *res = lb_pg_query (conn, sql, nparams, params);
    if (!res)
        return -1;
    PQclear (res);
    return 0;
}

bool
lb_pg_ensure (PGconn *conn)
{
    assert (conn);
    if (PQstatus (conn) == CONNECTION_OK)
        return true;
    PQreset (conn);
    return PQstatus (conn) == CONNECTION_OK;
}

void
lb_pg_test (bool verbose)
{
    (void) verbose;
    char buf [256];
    assert (strcmp (lb_pg_safe_url ("postgresql://bob:secret@db:5432/x", buf, sizeof buf),
                    "postgresql://bob:***@db:5432/x") == 0);
    assert (strcmp (lb_pg_safe_url ("host=db password=secret user=bob", buf, sizeof buf),
                    "host=db password=*** user=bob") == 0);
    assert (strcmp (lb_pg_safe_url ("host=db password=secret", buf, sizeof buf),
                    "host=db password=***") == 0);
    assert (strcmp (lb_pg_safe_url ("postgresql://bob@db/x", buf, sizeof buf),
                    "postgresql://bob@db/x") == 0);

    const char *url = getenv ("DATABASE_URL");
    if (!url) {
        printf ("lb_pg: DATABASE_URL not set, server part skipped\n");
        return;
    }
    PGconn *conn = lb_pg_connect (url, "lb_pg_test");
    assert (conn);
    assert (lb_pg_exec (conn, "create temporary table t (k text primary key, n int)", 0, NULL) == 0);
    const char *params [] = { "a", "7" };
    assert (lb_pg_exec (conn, "insert into t values ($1, $2)", 2, params) == 0);
    int fd = lb_log_setup_fd (-1);          //  the next failure is expected
    assert (lb_pg_exec (conn, "insert into t values ($1, $2)", 2, params) == -1);
    assert (lb_pg_query (conn, "select nonsense from nowhere", 0, NULL) == NULL);
    lb_log_setup_fd (fd);
    PGresult *res = lb_pg_query (conn, "select n from t where k = $1", 1, params);
    assert (res && PQntuples (res) == 1 && strcmp (PQgetvalue (res, 0, 0), "7") == 0);
    PQclear (res);
    assert (lb_pg_ensure (conn));
    char state [6] = "x";
    fd = lb_log_setup_fd (-1);
    assert (lb_pg_query_state (conn, "insert into t values ($1, $2)", 2, params, state) == NULL);
    lb_log_setup_fd (fd);
    assert (strcmp (state, "23505") == 0);
    res = lb_pg_query_state (conn, "select 1", 0, NULL, state);
    assert (res && state [0] == 0);
    PQclear (res);
    PQfinish (conn);

    fd = lb_log_setup_fd (-1);
    assert (lb_pg_connect ("postgresql://nobody@127.0.0.1:1/none", "lb_pg_test") == NULL);
    lb_log_setup_fd (fd);
}
