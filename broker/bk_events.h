/*  bk_events.h - the broker's event stream on a PUB socket (PROTOCOL.md
    section 7): frame 1 the event name (the topic), frame 2 a msgpack map
    {v:1, ev, t, ...}. Best effort: never blocks the broker.

    Usage: bk_events_begin, then bk_events_str/int/bin/bool for each extra
    key, then bk_events_send. The map is sent with a map 16 header (valid
    msgpack for any count).
*/
#ifndef BK_EVENTS_H_INCLUDED
#define BK_EVENTS_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct _bk_events_t bk_events_t;

//  Binds a PUB socket at endpoint (NULL or "": events off). Returns the
//  object, or NULL after logging why the bind failed.
bk_events_t *bk_events_new (const char *endpoint);

//  Closes the socket. Accepts NULL.
void bk_events_destroy (bk_events_t **self_p);

//  Starts event ev at wall time t_us; id and service may be NULL.
void bk_events_begin (bk_events_t *self, const char *ev, int64_t t_us, const char *id, const char *service);

//  Adds a key (key and string borrowed until send).
void bk_events_str (bk_events_t *self, const char *key, const char *value);
void bk_events_int (bk_events_t *self, const char *key, int64_t value);
void bk_events_bin (bk_events_t *self, const char *key, const uint8_t *data, size_t size);
void bk_events_bool (bk_events_t *self, const char *key, bool value);

//  Publishes the event. Returns 0, or -1 if it could not be sent (dropped).
int bk_events_send (bk_events_t *self);

//  Returns true when events are on (an endpoint was given). With events off
//  every call above does nothing, so callers may skip building an event.
bool bk_events_enabled (bk_events_t *self);

//  Returns the number of events published.
int64_t bk_events_count (bk_events_t *self);

//  Selftest.
void bk_events_test (bool verbose);

#endif
