/*  sc_broker.h - the scheduler's client of the broker: Titanic (durable
    submission), MMI management, over MDP 0.1 client framing (PROTOCOL.md §2, §4).

    One request at a time, each with a timeout; on a timeout the socket is
    thrown away and a fresh one made, so a late reply never answers the wrong
    request (the "lazy pirate" pattern). Every call that fails logs nothing:
    it returns -1 and leaves a one-line reason in sc_broker_error.
*/
#ifndef SC_BROKER_H_INCLUDED
#define SC_BROKER_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lb_curve.h"
#include "pr_job.h"

typedef struct _sc_broker_t sc_broker_t;

//  Returns a client of the broker at endpoint; timeout bounds each request.
sc_broker_t *sc_broker_new (const char *endpoint, double timeout);

//  Makes the client a CURVE client of the broker with a copy of curve (NULL:
//  plain again), from the next connection on. Call before the first request.
void sc_broker_set_curve (sc_broker_t *self, const lb_curve_t *curve);

//  Destroys the client. Accepts NULL; sets *self_p to NULL.
void sc_broker_destroy (sc_broker_t **self_p);

//  The reason of the last failure (borrowed).
const char *sc_broker_error (sc_broker_t *self);

//  Sends body frames to service and returns the reply frames after the
//  service name (caller destroys), or NULL (timeout, bad reply) with error.
zmsg_t *sc_broker_request (sc_broker_t *self, const char *service, zmsg_t **body_p);

//  titanic.request with option attempts=N (0: the broker's default) for
//  service. Returns 0 and writes the job id (33 bytes), or -1.
int sc_broker_submit (sc_broker_t *self, const char *service, int attempts,
                      const uint8_t *body, size_t size, char id [33]);

//  The same with option priority=N (-1000..1000; 0: none): higher is served
//  first in its service's queue.
int sc_broker_submit_priority (sc_broker_t *self, const char *service, int attempts, int priority,
                               const uint8_t *body, size_t size, char id [33]);

//  titanic.reply. Returns 0 with *result (caller destroys) when finished, 1
//  while pending (300), 2 when the broker does not know the id (400), -1 on
//  an error. A finished reply that is not our result map (a stock worker's
//  bytes) comes back as a done result with no outputs.
int sc_broker_reply (sc_broker_t *self, const char *id, pr_result_t **result);

//  titanic.close (cancels a job not finished). Returns 0 or -1.
int sc_broker_close (sc_broker_t *self, const char *id);

//  mmi.service: 1 when a worker is registered for name, 0 when none, -1 error.
int sc_broker_service (sc_broker_t *self, const char *name);

//  An mmi.* call whose one argument is arg (NULL: none). Returns the status
//  code ("200" -> 200 ...) and, for 200 with data, *data (a msgpack frame,
//  caller destroys; may be NULL). Returns -1 on a transport error.
int sc_broker_mmi (sc_broker_t *self, const char *name, const char *arg, zframe_t **data);

//  Selftest (framing against a ROUTER in the test).
void sc_broker_test (bool verbose);

#endif

#include <jansson.h>

//  Converts a msgpack body (an mmi reply, an event) to JSON: maps with
//  string keys become objects, arrays arrays, bin becomes a hex string, nil
//  null. Returns it (caller json_decref()s), or NULL if data is not one
//  complete msgpack value.
json_t *sc_broker_json (const void *data, size_t size);

//  Copies the bin or str value of key in a msgpack map into a new buffer
//  (*out, caller frees; *out_size). Returns 0, or -1 when absent.
int sc_broker_field_bin (const void *data, size_t size, const char *key, uint8_t **out, size_t *out_size);
