/*  bk_broker.h - the broker: one ROUTER for MDP 0.1/0.2 clients and
    workers, the titanic and mmi services, leases, heartbeats, retries,
    dead letters, group commit of the journal (proto/PROTOCOL.md).

    Single-threaded: bk_broker_run loops on the sockets until the stop flag
    is set (czmq's signal handler sets zsys_interrupted on SIGINT/SIGTERM).
*/
#ifndef BK_BROKER_H_INCLUDED
#define BK_BROKER_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

//  Settings (strings borrowed for the broker's lifetime).
typedef struct {
    const char *bind;               //  ROUTER endpoint
    const char *events;             //  PUB endpoint, NULL or "" for none
    const char *journal;            //  journal directory
    double heartbeat;               //  seconds
    int liveness;
    double lease;                   //  default lease timeout, seconds
    const char *service_lease;      //  "name=DURATION,..." or NULL
    int attempts;                   //  default attempt limit
    const char *service_attempts;   //  "name=N,..." or NULL
    double retry_base, retry_max;   //  seconds
    int max_frames;
    int64_t max_message;            //  bytes, all frames together
    int64_t checkpoint_bytes;       //  checkpoint when the journal grows past this
    const char *curve_secret;       //  broker certificate (zcert file), NULL: CURVE off
    const char *curve_allow;        //  directory of allowed public certificates
    bool insecure;                  //  allow non-loopback binds without CURVE
} bk_broker_config_t;

typedef struct _bk_broker_t bk_broker_t;

//  Opens the journal, recovers jobs, binds the sockets. Returns the broker,
//  or NULL after logging why (bad setting, bind failed, journal unusable).
bk_broker_t *bk_broker_new (const bk_broker_config_t *config);

//  Flushes the journal and closes everything. Accepts NULL.
void bk_broker_destroy (bk_broker_t **self_p);

//  Serves until *stop becomes non-zero or the process is interrupted.
//  Returns 0.
int bk_broker_run (bk_broker_t *self, volatile int *stop);

//  Facts for the start line.
int64_t bk_broker_recovered (bk_broker_t *self);
bool bk_broker_curve (bk_broker_t *self);
//  The endpoint actually bound (resolves a "*" port). Borrowed.
const char *bk_broker_endpoint (bk_broker_t *self);

//  Checks a "name=value,..." override list; returns 0, or -1 after logging
//  the first bad item. seconds: values are durations, else integers 1..1000.
int bk_broker_check_overrides (const char *list, bool seconds, const char *what);

//  Returns true when endpoint can only be reached from this host.
bool bk_broker_is_local (const char *endpoint);

//  Selftest: a broker on inproc with an MDP 0.1 worker and client.
void bk_broker_test (bool verbose);

#endif
