/*  mn_event.h - the broker's events as the monitor reads them.

    proto/PROTOCOL.md section 7: two frames, the event name as topic, then a
    msgpack map {v:1, ev, t (wall us), id, service, ...} with per-event keys:

        queued     priority, attempt, durable
        leased     worker, attempt, lease_ms
        progress   worker, body (the PARTIAL body: a pr_job.h progress map)
        done       worker, attempt, ms
        failed     worker, attempt, error
        retried    attempt, delay_ms
        dead       attempt, error
        cancelled  -
        requeued   -
        worker.up   worker, proto       (no id)
        worker.down worker, reason      (no id)

    The decoder is strict about what it knows: the body must be one map with
    v = 1 first, ev one of the names above and equal to the topic, every known
    key of its type and within its size, the keys each event needs present,
    and nothing after the map. A nil value counts as an absent key. The
    worker identity is hex in either case (czmq's zframe_strhex writes
    uppercase); job ids are 32 lowercase hex. It ignores keys it does not know (a newer
    broker may add some; events are one-way, so the monitor cannot ask) but
    counts them in `extra_keys`. It never aborts on input: it returns -1 and
    says what and where in err.
*/
#ifndef MN_EVENT_H_INCLUDED
#define MN_EVENT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MN_EVENT_MAX_BODY   (256 * 1024)    //  a whole event body
#define MN_EVENT_MAX_TEXT   1024            //  error / reason kept (longer is cut, not refused)

typedef enum {
    MN_EV_QUEUED, MN_EV_LEASED, MN_EV_PROGRESS, MN_EV_DONE, MN_EV_FAILED,
    MN_EV_RETRIED, MN_EV_DEAD, MN_EV_CANCELLED, MN_EV_REQUEUED,
    MN_EV_WORKER_UP, MN_EV_WORKER_DOWN,
    MN_EV_COUNT
} mn_ev_t;

//  One decoded event. Strings are inline; absent ones are "". Numbers that
//  an event does not carry are 0 (has_* says which progress fields came).
typedef struct {
    mn_ev_t ev;
    int64_t t_us;
    char id [33];               //  job id, 32 hex; "" for worker events
    char service [128];
    char worker [256];          //  hex of the ROUTER identity
    char proto [8];             //  "MDPW01" / "MDPW02" (worker.up)
    int64_t attempt;
    int64_t priority;
    bool durable;
    int64_t lease_ms;
    int64_t ms;                 //  done: dispatch to reply
    int64_t delay_ms;
    char error [MN_EVENT_MAX_TEXT];     //  failed, dead; worker.down's reason
    //  progress (decoded from body with pr_progress_decode)
    bool has_progress;
    double percent;
    char stage [64];
    char message [256];
    int extra_keys;             //  keys ignored because unknown
} mn_event_t;

//  Decodes one event from its topic frame and body frame. Returns 0 and
//  fills *event, or -1 with the reason in err (the event is then unusable).
int mn_event_decode (const char *topic, size_t topic_size, const void *body, size_t body_size,
                     mn_event_t *event, char *err, size_t err_size);

//  True when data is one msgpack value whose every container declares no
//  more elements than bytes remain (each element needs at least one), with
//  at most `depth` levels of nesting. msgpack-c allocates a container's
//  element array from its declared count before reading the elements, so a
//  5-byte "map of 4 billion entries" would otherwise ask for 128 GB: every
//  msgpack body from outside goes through this first. Trailing bytes after
//  the value are allowed here (the decoders refuse them).
bool mn_event_plausible (const void *data, size_t size, int depth);

//  Returns the event's name ("queued", "worker.up", ...).
const char *mn_event_name (mn_ev_t ev);

//  Parses a name. Returns 0 and sets *ev, or -1 if unknown.
int mn_event_parse_name (const char *name, size_t len, mn_ev_t *ev);

//  Writes the hex worker identity as readable text into buf when its bytes
//  are printable ASCII (our runtime names itself "host:pid[:gpuN]"), else
//  copies the hex. Returns buf.
char *mn_event_worker_name (const char *worker_hex, char *buf, size_t size);

//  Encodes an event map the way the broker does (tests, and tests/ tools).
//  Returns a malloc'd buffer (caller frees) and its size.
uint8_t *mn_event_encode (const mn_event_t *event, size_t *size);

//  Selftest.
void mn_event_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
