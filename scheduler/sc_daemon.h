/*  sc_daemon.h - `sched daemon`: fires cron slots and drives every run.

    Each tick (scheduler.tick) the daemon
    - records that it is alive (sched_daemons);
    - for each pipeline with a schedule, under a PostgreSQL advisory lock and
      the pipeline's row lock, fires the latest slot due since the last one
      considered, at most once, if it is within the pipeline's catch-up
      deadline, applying the overlap policy (skip / queue / replace); a
      paused pipeline's slots are passed over;
    - drives each active run under its row lock (FOR UPDATE SKIP LOCKED, so
      two daemons never drive one run at once): asks the broker for the
      results of submitted steps (titanic.reply), submits steps whose
      dependencies are done (titanic.request), fails steps past their
      timeout, and finishes the run;
    - reads the broker's progress and lease events into the step rows;
    - mirrors what changed into Redis.
    All state is in PostgreSQL, so a daemon killed at any moment carries on
    where it stood when started again. PostgreSQL or the broker being away
    makes a tick do nothing (logged once per outage), never exits.
*/
#ifndef SC_DAEMON_H_INCLUDED
#define SC_DAEMON_H_INCLUDED

#include <stdbool.h>

#include "lb_config.h"

typedef struct _sc_daemon_t sc_daemon_t;

//  Returns a daemon with configuration config (borrowed). Connects lazily.
sc_daemon_t *sc_daemon_new (lb_config_t *config);

//  Destroys the daemon. Accepts NULL; sets *self_p to NULL.
void sc_daemon_destroy (sc_daemon_t **self_p);

//  One tick (see above). Returns 0, or -1 when PostgreSQL was unreachable.
int sc_daemon_tick (sc_daemon_t *self);

//  Ticks until *stop becomes non-zero. Returns 0.
int sc_daemon_run (sc_daemon_t *self, volatile const int *stop);

//  Selftest (needs DATABASE_URL; skips without it).
void sc_daemon_test (bool verbose);

#endif
