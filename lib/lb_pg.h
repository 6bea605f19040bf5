/*  lb_pg.h - small helpers over libpq: connect with a clear error, run a
    statement or a query and log what failed and where. Use libpq directly
    for anything else (COPY, pipelines, notifications): these only remove
    the repeated error handling.

    Connection strings are libpq's (URI or key=value). Passwords never
    appear in logs: lb_pg_safe_url masks them.
*/
#ifndef LB_PG_H_INCLUDED
#define LB_PG_H_INCLUDED

#include <libpq-fe.h>
#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

//  Connects, with application_name set to program. Returns the connection
//  (caller closes with PQfinish), or NULL after logging one line naming the
//  server (password masked) and libpq's reason.
PGconn *lb_pg_connect (const char *url, const char *program);

//  Runs a statement that returns no rows (params may be NULL when nparams
//  is 0; text format). Returns 0, or -1 after logging the SQL state and
//  message.
int lb_pg_exec (PGconn *conn, const char *sql, int nparams, const char *const *params);

//  Runs a query. Returns the result (caller PQclear()s), or NULL after
//  logging the error. When state is not NULL it receives the SQLSTATE of a
//  failure ("" on success), so callers can tell a unique violation (23505)
//  from a lost connection (08xxx).
PGresult *lb_pg_query_state (PGconn *conn, const char *sql, int nparams, const char *const *params,
                             char state [6]);
PGresult *lb_pg_query (PGconn *conn, const char *sql, int nparams, const char *const *params);


//  True when the connection is usable (resets it once if it is not).
bool lb_pg_ensure (PGconn *conn);

//  Writes url with any password replaced by "***" into buf. Returns buf.
char *lb_pg_safe_url (const char *url, char *buf, size_t size);

//  Selftest (needs DATABASE_URL; skips without it).
void lb_pg_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
