/*  mn_event.c - strict decoder (and encoder, for tests) of the broker's events. */
#include "mn_event.h"
#include "lb_log.h"
#include "lb_mem.h"
#include "pr_job.h"

#include <assert.h>
#include <ctype.h>
#include <msgpack.h>
#include <stdio.h>
#include <string.h>

static const char *s_names [MN_EV_COUNT] = {
    "queued", "leased", "progress", "done", "failed", "retried", "dead",
    "cancelled", "requeued", "worker.up", "worker.down"
};

//  Keys each event must carry besides v, ev, t (bit per key below).
enum { K_ID = 1, K_SERVICE = 2, K_WORKER = 4, K_ATTEMPT = 8, K_PROTO = 16, K_BODY = 32,
       K_ERROR = 64, K_REASON = 128, K_MS = 256, K_DELAY = 512, K_LEASE = 1024, K_PRIO = 2048 };

static const unsigned s_needs [MN_EV_COUNT] = {
    [MN_EV_QUEUED]      = K_ID | K_SERVICE | K_ATTEMPT,
    [MN_EV_LEASED]      = K_ID | K_SERVICE | K_WORKER | K_ATTEMPT,
    [MN_EV_PROGRESS]    = K_ID | K_SERVICE | K_WORKER | K_BODY,
    [MN_EV_DONE]        = K_ID | K_SERVICE | K_WORKER | K_ATTEMPT,
    [MN_EV_FAILED]      = K_ID | K_SERVICE | K_WORKER | K_ATTEMPT | K_ERROR,
    [MN_EV_RETRIED]     = K_ID | K_SERVICE | K_ATTEMPT,
    [MN_EV_DEAD]        = K_ID | K_SERVICE | K_ATTEMPT | K_ERROR,
    [MN_EV_CANCELLED]   = K_ID | K_SERVICE,
    [MN_EV_REQUEUED]    = K_ID | K_SERVICE,
    [MN_EV_WORKER_UP]   = K_SERVICE | K_WORKER,
    [MN_EV_WORKER_DOWN] = K_SERVICE | K_WORKER,
};

const char *
mn_event_name (mn_ev_t ev)
{
    assert (ev < MN_EV_COUNT);
    return s_names [ev];
}

int
mn_event_parse_name (const char *name, size_t len, mn_ev_t *ev)
{
    for (int i = 0; i < MN_EV_COUNT; i++)
        if (strlen (s_names [i]) == len && memcmp (s_names [i], name, len) == 0) {
            *ev = (mn_ev_t) i;
            return 0;
        }
    return -1;
}

static bool
s_key_is (const msgpack_object *key, const char *name)
{
    return key->via.str.size == strlen (name) && memcmp (key->via.str.ptr, name, key->via.str.size) == 0;
}

//  Copies a msgpack string into buf; -1 if longer than max (when strict) or
//  containing a NUL. With strict false the text is cut to fit.
static int
s_str (const msgpack_object *o, char *buf, size_t size, bool strict)
{
    if (o->type != MSGPACK_OBJECT_STR)
        return -1;
    size_t n = o->via.str.size;
    if (memchr (o->via.str.ptr, 0, n))
        return -1;
    if (n >= size) {
        if (strict)
            return -1;
        n = size - 1;
    }
    memcpy (buf, o->via.str.ptr, n);
    buf [n] = 0;
    return 0;
}

static int
s_int (const msgpack_object *o, int64_t *out)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (o->via.u64 > INT64_MAX)
            return -1;
        *out = (int64_t) o->via.u64;
        return 0;
    }
    if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = o->via.i64;
        return 0;
    }
    return -1;
}

//  True when s is len hex digits (lowercase only unless upper_ok).
static bool
s_is_hex (const char *s, size_t len, bool upper_ok)
{
    if (strlen (s) != len)
        return false;
    for (size_t i = 0; i < len; i++)
        if (!isxdigit ((unsigned char) s [i]) || (!upper_ok && isupper ((unsigned char) s [i])))
            return false;
    return true;
}

//  Decodes the map's entries into event; returns the bit set of keys seen or
//  -1 with err filled.
static long
s_decode_map (const msgpack_object *map, mn_event_t *event, char *err, size_t err_size)
{
    unsigned seen = 0;
    bool has_v = false, has_ev = false, has_t = false;
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *key = &map->via.map.ptr [i].key;
        const msgpack_object *val = &map->via.map.ptr [i].val;
        if (key->type != MSGPACK_OBJECT_STR) {
            snprintf (err, err_size, "entry %u: key is not a string", i);
            return -1;
        }
        const char *bad = NULL;
        if (val->type == MSGPACK_OBJECT_NIL && i > 0)
            continue;                   //  nil is as good as absent
        if (i == 0 && !s_key_is (key, "v")) {
            snprintf (err, err_size, "first key is not \"v\"");
            return -1;
        }
        if (s_key_is (key, "v")) {
            int64_t v;
            if (s_int (val, &v) || v != 1)
                bad = "v (must be 1)";
            has_v = true;
        }
        else if (s_key_is (key, "ev")) {
            if (val->type != MSGPACK_OBJECT_STR
            ||  mn_event_parse_name (val->via.str.ptr, val->via.str.size, &event->ev))
                bad = "ev (unknown event name)";
            has_ev = true;
        }
        else if (s_key_is (key, "t")) {
            if (s_int (val, &event->t_us) || event->t_us < 0)
                bad = "t (must be a non-negative integer)";
            has_t = true;
        }
        else if (s_key_is (key, "id")) {
            if (s_str (val, event->id, sizeof event->id, true) || !s_is_hex (event->id, 32, false))
                bad = "id (must be 32 lowercase hex characters)";
            seen |= K_ID;
        }
        else if (s_key_is (key, "service")) {
            if (s_str (val, event->service, sizeof event->service, true) || !*event->service)
                bad = "service (must be a string of 1-127 bytes)";
            seen |= K_SERVICE;
        }
        else if (s_key_is (key, "worker")) {
            if (s_str (val, event->worker, sizeof event->worker, true) || !*event->worker
            ||  !s_is_hex (event->worker, strlen (event->worker), true))
                bad = "worker (must be hex, 1-255 characters)";
            seen |= K_WORKER;
        }
        else if (s_key_is (key, "proto")) {
            if (s_str (val, event->proto, sizeof event->proto, true)
            ||  (strcmp (event->proto, "MDPW01") && strcmp (event->proto, "MDPW02")))
                bad = "proto (must be MDPW01 or MDPW02)";
            seen |= K_PROTO;
        }
        else if (s_key_is (key, "attempt")) {
            if (s_int (val, &event->attempt) || event->attempt < 0 || event->attempt > 1000000)
                bad = "attempt (must be an integer 0..1000000)";
            seen |= K_ATTEMPT;
        }
        else if (s_key_is (key, "priority")) {
            if (s_int (val, &event->priority) || event->priority < -1000 || event->priority > 1000)
                bad = "priority (must be an integer -1000..1000)";
            seen |= K_PRIO;
        }
        else if (s_key_is (key, "durable")) {
            if (val->type != MSGPACK_OBJECT_BOOLEAN)
                bad = "durable (must be a boolean)";
            else
                event->durable = val->via.boolean;
        }
        else if (s_key_is (key, "lease_ms") || s_key_is (key, "ms") || s_key_is (key, "delay_ms")) {
            int64_t n;
            if (s_int (val, &n) || n < 0)
                bad = "a duration in ms (must be a non-negative integer)";
            else if (s_key_is (key, "ms")) {
                event->ms = n;
                seen |= K_MS;
            }
            else if (s_key_is (key, "delay_ms")) {
                event->delay_ms = n;
                seen |= K_DELAY;
            }
            else {
                event->lease_ms = n;
                seen |= K_LEASE;
            }
        }
        else if (s_key_is (key, "error") || s_key_is (key, "reason")) {
            //  Free text from workers: kept, cut to MN_EVENT_MAX_TEXT.
            if (s_str (val, event->error, sizeof event->error, false))
                bad = "error/reason (must be a string without NUL)";
            seen |= s_key_is (key, "error")? K_ERROR: K_REASON;
        }
        else if (s_key_is (key, "body")) {
            if (val->type != MSGPACK_OBJECT_BIN && val->type != MSGPACK_OBJECT_STR)
                bad = "body (must be binary)";
            else {
                const char *ptr = val->type == MSGPACK_OBJECT_BIN? val->via.bin.ptr: val->via.str.ptr;
                size_t len = val->type == MSGPACK_OBJECT_BIN? val->via.bin.size: val->via.str.size;
                char perr [160];
                //  pr_progress_decode hands its input to msgpack-c as is: check first.
                pr_progress_t *progress = mn_event_plausible (ptr, len, 8)
                                        ? pr_progress_decode (ptr, len, perr, sizeof perr): NULL;
                //  A stock 0.2 worker's PARTIAL is not ours: the event still
                //  counts (the job is alive), without a percentage.
                if (progress) {
                    event->has_progress = true;
                    event->percent = progress->percent;
                    snprintf (event->stage, sizeof event->stage, "%s", progress->stage? progress->stage: "");
                    snprintf (event->message, sizeof event->message, "%s", progress->message? progress->message: "");
                    pr_progress_destroy (&progress);
                }
            }
            seen |= K_BODY;
        }
        else
            event->extra_keys++;
        if (bad) {
            snprintf (err, err_size, "key %s", bad);
            return -1;
        }
    }
    if (!has_v || !has_ev || !has_t) {
        snprintf (err, err_size, "missing key %s", !has_v? "v": !has_ev? "ev": "t");
        return -1;
    }
    if (event->ev == MN_EV_WORKER_DOWN && (seen & K_ERROR) && !(seen & K_REASON))
        seen |= K_REASON;
    return (long) seen;
}

static uint64_t
s_be (const uint8_t *p, int n)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v = (v << 8) | p [i];
    return v;
}

bool
mn_event_plausible (const void *data, size_t size, int depth)
{
    const uint8_t *p = data;
    size_t pos = 0;
    //  Items still to read at each open nesting level.
    uint64_t pending [64];
    int level = 0;
    if (depth < 1 || depth > 63)
        depth = 63;
    pending [0] = 1;
    while (level >= 0) {
        if (pending [level] == 0) {
            level--;
            continue;
        }
        if (pos >= size)
            return false;
        pending [level]--;
        uint8_t b = p [pos++];
        uint64_t skip = 0, children = 0;
        int lenbytes = 0;
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
            ;
        else if (b >= 0x80 && b <= 0x8f)
            children = 2 * (uint64_t) (b & 0x0f);
        else if (b >= 0x90 && b <= 0x9f)
            children = b & 0x0f;
        else if (b >= 0xa0 && b <= 0xbf)
            skip = b & 0x1f;
        else switch (b) {
            case 0xc4: case 0xd9: lenbytes = 1; break;          //  bin8, str8
            case 0xc5: case 0xda: lenbytes = 2; break;
            case 0xc6: case 0xdb: lenbytes = 4; break;
            case 0xc7: lenbytes = 1; skip = 1; break;           //  ext8: + type byte
            case 0xc8: lenbytes = 2; skip = 1; break;
            case 0xc9: lenbytes = 4; skip = 1; break;
            case 0xca: skip = 4; break;
            case 0xcb: skip = 8; break;
            case 0xcc: case 0xd0: skip = 1; break;
            case 0xcd: case 0xd1: skip = 2; break;
            case 0xce: case 0xd2: skip = 4; break;
            case 0xcf: case 0xd3: skip = 8; break;
            case 0xd4: skip = 2; break;                         //  fixext 1..16: type + data
            case 0xd5: skip = 3; break;
            case 0xd6: skip = 5; break;
            case 0xd7: skip = 9; break;
            case 0xd8: skip = 17; break;
            case 0xdc: case 0xdd: case 0xde: case 0xdf: {
                int n = (b == 0xdc || b == 0xde)? 2: 4;
                if (size - pos < (size_t) n)
                    return false;
                children = s_be (p + pos, n) * (b >= 0xde? 2: 1);
                pos += (size_t) n;
                break;
            }
            default:
                return false;                                   //  0xc1: never used
        }
        if (lenbytes) {
            if (size - pos < (size_t) lenbytes)
                return false;
            skip += s_be (p + pos, lenbytes);
            pos += (size_t) lenbytes;
        }
        if (skip > size - pos)
            return false;
        pos += (size_t) skip;
        if (children) {
            if (children > size - pos || level + 1 >= depth)
                return false;
            pending [++level] = children;
        }
    }
    return true;
}

int
mn_event_decode (const char *topic, size_t topic_size, const void *body, size_t body_size,
                 mn_event_t *event, char *err, size_t err_size)
{
    assert (event);
    memset (event, 0, sizeof *event);
    if (body_size == 0 || body_size > MN_EVENT_MAX_BODY) {
        snprintf (err, err_size, "body size %zu outside 1..%d", body_size, MN_EVENT_MAX_BODY);
        return -1;
    }
    if (!mn_event_plausible (body, body_size, 8)) {
        snprintf (err, err_size, "body is not msgpack (truncated, or a container larger than the body)");
        return -1;
    }
    msgpack_unpacked msg;
    msgpack_unpacked_init (&msg);
    size_t offset = 0;
    int rc = -1;
    msgpack_unpack_return ur = msgpack_unpack_next (&msg, body, body_size, &offset);
    if (ur != MSGPACK_UNPACK_SUCCESS) {
        snprintf (err, err_size, "body is not msgpack (%s)",
                  ur == MSGPACK_UNPACK_CONTINUE? "truncated": "parse error");
        goto out;
    }
    if (offset != body_size) {
        snprintf (err, err_size, "%zu trailing bytes after the map", body_size - offset);
        goto out;
    }
    if (msg.data.type != MSGPACK_OBJECT_MAP || msg.data.via.map.size == 0) {
        snprintf (err, err_size, "body is not a non-empty map");
        goto out;
    }
    long seen = s_decode_map (&msg.data, event, err, err_size);
    if (seen < 0)
        goto out;
    mn_ev_t topic_ev;
    if (mn_event_parse_name (topic, topic_size, &topic_ev) || topic_ev != event->ev) {
        snprintf (err, err_size, "topic '%.*s' does not match ev '%s'",
                  (int) (topic_size > 40? 40: topic_size), topic, mn_event_name (event->ev));
        goto out;
    }
    unsigned need = s_needs [event->ev];
    unsigned missing = need & ~(unsigned) seen;
    if (missing) {
        static const char *names [] = { "id", "service", "worker", "attempt", "proto", "body",
                                        "error", "reason", "ms", "delay_ms", "lease_ms", "priority" };
        int bit = __builtin_ctz (missing);
        snprintf (err, err_size, "%s event without key %s", mn_event_name (event->ev), names [bit]);
        goto out;
    }
    rc = 0;
out:
    msgpack_unpacked_destroy (&msg);
    return rc;
}

char *
mn_event_worker_name (const char *worker_hex, char *buf, size_t size)
{
    assert (size > 0);
    size_t len = strlen (worker_hex);
    bool printable = len % 2 == 0 && len / 2 < size && len > 0;
    for (size_t i = 0; printable && i < len; i += 2) {
        unsigned c;
        if (sscanf (worker_hex + i, "%2x", &c) != 1 || c < 0x20 || c > 0x7e)
            printable = false;
        else
            buf [i / 2] = (char) c;
    }
    if (printable)
        buf [len / 2] = 0;
    else
        snprintf (buf, size, "%s", worker_hex);
    return buf;
}

static void
s_pack_str (msgpack_packer *pk, const char *s)
{
    size_t n = strlen (s);
    msgpack_pack_str (pk, n);
    msgpack_pack_str_body (pk, s, n);
}

uint8_t *
mn_event_encode (const mn_event_t *event, size_t *size)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    unsigned need = s_needs [event->ev];
    int n = 3 + __builtin_popcount (need);
    if (event->ev == MN_EV_QUEUED)
        n += 2;                         //  priority, durable
    if (event->ev == MN_EV_LEASED || event->ev == MN_EV_DONE || event->ev == MN_EV_RETRIED)
        n += 1;                         //  lease_ms, ms, delay_ms
    if (event->ev == MN_EV_WORKER_UP || event->ev == MN_EV_WORKER_DOWN)
        n += 1;                         //  proto, reason
    msgpack_pack_map (&pk, n);
    s_pack_str (&pk, "v");      msgpack_pack_int (&pk, 1);
    s_pack_str (&pk, "ev");     s_pack_str (&pk, mn_event_name (event->ev));
    s_pack_str (&pk, "t");      msgpack_pack_int64 (&pk, event->t_us);
    if (need & K_ID)      { s_pack_str (&pk, "id"); s_pack_str (&pk, event->id); }
    if (need & K_SERVICE) { s_pack_str (&pk, "service"); s_pack_str (&pk, event->service); }
    if (need & K_WORKER)  { s_pack_str (&pk, "worker"); s_pack_str (&pk, event->worker); }
    if (need & K_ATTEMPT) { s_pack_str (&pk, "attempt"); msgpack_pack_int64 (&pk, event->attempt); }
    if (need & K_ERROR)   { s_pack_str (&pk, "error"); s_pack_str (&pk, event->error); }
    if (need & K_BODY) {
        pr_progress_t *p = pr_progress_new (event->id, event->percent, event->stage, event->message);
        size_t psize;
        uint8_t *pbody = pr_progress_encode (p, &psize);
        s_pack_str (&pk, "body");
        msgpack_pack_bin (&pk, psize);
        msgpack_pack_bin_body (&pk, pbody, psize);
        free (pbody);
        pr_progress_destroy (&p);
    }
    if (event->ev == MN_EV_QUEUED) {
        s_pack_str (&pk, "priority"); msgpack_pack_int64 (&pk, event->priority);
        s_pack_str (&pk, "durable");
        if (event->durable) msgpack_pack_true (&pk); else msgpack_pack_false (&pk);
    }
    if (event->ev == MN_EV_LEASED) { s_pack_str (&pk, "lease_ms"); msgpack_pack_int64 (&pk, event->lease_ms); }
    if (event->ev == MN_EV_DONE)   { s_pack_str (&pk, "ms"); msgpack_pack_int64 (&pk, event->ms); }
    if (event->ev == MN_EV_RETRIED){ s_pack_str (&pk, "delay_ms"); msgpack_pack_int64 (&pk, event->delay_ms); }
    if (event->ev == MN_EV_WORKER_UP)   { s_pack_str (&pk, "proto"); s_pack_str (&pk, event->proto); }
    if (event->ev == MN_EV_WORKER_DOWN) { s_pack_str (&pk, "reason"); s_pack_str (&pk, event->error); }
    uint8_t *out = lb_xmalloc (sbuf.size);
    memcpy (out, sbuf.data, sbuf.size);
    *size = sbuf.size;
    msgpack_sbuffer_destroy (&sbuf);
    return out;
}

void
mn_event_test (bool verbose)
{
    (void) verbose;
    char err [200];
    mn_event_t in, out;
    //  Round trip of every event kind.
    for (int i = 0; i < MN_EV_COUNT; i++) {
        memset (&in, 0, sizeof in);
        in.ev = (mn_ev_t) i;
        in.t_us = 1795000000000000;
        snprintf (in.id, sizeof in.id, "%s", "0123456789abcdef0123456789abcdef");
        snprintf (in.service, sizeof in.service, "train");
        snprintf (in.worker, sizeof in.worker, "686f73743a3432");     //  "host:42"
        snprintf (in.proto, sizeof in.proto, "MDPW02");
        snprintf (in.error, sizeof in.error, "lease expired");
        in.attempt = 2;
        in.ms = 1500;
        in.percent = 40;
        snprintf (in.stage, sizeof in.stage, "epoch");
        size_t size;
        uint8_t *body = mn_event_encode (&in, &size);
        const char *topic = mn_event_name (in.ev);
        int rc = mn_event_decode (topic, strlen (topic), body, size, &out, err, sizeof err);
        if (rc)
            fprintf (stderr, "mn_event_test: %s: %s\n", topic, err);
        assert (rc == 0);
        assert (out.ev == in.ev && out.t_us == in.t_us);
        assert (strcmp (out.service, "train") == 0);
        if (in.ev == MN_EV_PROGRESS) {
            assert (out.has_progress && out.percent == 40);
            assert (strcmp (out.stage, "epoch") == 0);
        }
        if (in.ev == MN_EV_DONE)
            assert (out.ms == 1500 && out.attempt == 2);
        //  Trailing byte, truncation, topic mismatch: each refused.
        uint8_t *longer = lb_xmalloc (size + 1);
        memcpy (longer, body, size);
        longer [size] = 0xc0;
        assert (mn_event_decode (topic, strlen (topic), longer, size + 1, &out, err, sizeof err) == -1);
        assert (strstr (err, "trailing"));
        assert (mn_event_decode (topic, strlen (topic), body, size - 1, &out, err, sizeof err) == -1);
        assert (mn_event_decode ("bogus", 5, body, size, &out, err, sizeof err) == -1);
        free (longer);
        free (body);
    }
    //  Hand-made bad maps.
    struct { const char *hex; const char *why; } bad [] = {
        { "93010203", "not a non-empty map" },                              //  array
        { "81a17602", "v (must be 1)" },                                    //  {v:2}
        { "81a27665a6717565756564", "first key" },                          //  {ev:queued}
        { "83a17601a2657606a17400", "unknown event" },                      //  ev: 6
        { "83a17601a26576a6717565756564a17400", "without key id" },         //  queued, no id
        { "84a17601a26576a6717565756564a17400a26964a3616263", "id (must" },  //  id "abc"
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        uint8_t buf [128];
        size_t n = strlen (bad [i].hex) / 2;
        for (size_t j = 0; j < n; j++) {
            unsigned c;
            sscanf (bad [i].hex + 2 * j, "%2x", &c);
            buf [j] = (uint8_t) c;
        }
        int rc = mn_event_decode ("queued", 6, buf, n, &out, err, sizeof err);
        if (rc == 0 || !strstr (err, bad [i].why))
            fprintf (stderr, "mn_event_test: case %zu: rc=%d err=%s\n", i, rc, err);
        assert (rc == -1 && strstr (err, bad [i].why));
    }
    assert (mn_event_decode ("queued", 6, "", 0, &out, err, sizeof err) == -1);
    //  A progress event whose body claims a map of 4 billion entries (found by
    //  fuzz_event.c): the event stands, the body is ignored, nothing allocated.
    {
        const char ev [] = "\x87\xa1v\x01\xa2" "ev\xa8progress\xa1t\x01\xa2id\xd9\x20"
                           "0123456789abcdef0123456789abcdef\xa7service\xa1s\xa6worker\xa2" "AB"
                           "\xa4" "body\xc4\x05\xdf\xff\xff\xff\xff";
        assert (mn_event_decode ("progress", 8, ev, sizeof ev - 1, &out, err, sizeof err) == 0);
        assert (out.ev == MN_EV_PROGRESS && !out.has_progress);
    }
    //  Containers that claim more elements than the bytes that follow.
    assert (mn_event_decode ("queued", 6, "\xdf\xff\xff\xff\xff", 5, &out, err, sizeof err) == -1);
    assert (!mn_event_plausible ("\xdd\x00\x10\x00\x00\x01", 6, 8));
    assert (!mn_event_plausible ("\xdb\x00\x00\x00\x09" "abc", 8, 8));
    assert (!mn_event_plausible ("\x91\x91\x91\x01", 4, 2));         //  too deep
    assert (mn_event_plausible ("\x91\x91\x91\x01", 4, 8));
    assert (mn_event_plausible ("\x82\xa1v\x01\xa1t\xcb\x00\x00\x00\x00\x00\x00\x00\x00", 15, 8));
    assert (!mn_event_plausible ("\xc1", 1, 8));
    //  Worker names.
    char name [64];
    assert (strcmp (mn_event_worker_name ("686f73743a3432", name, sizeof name), "host:42") == 0);
    assert (strcmp (mn_event_worker_name ("00ff10", name, sizeof name), "00ff10") == 0);
    mn_ev_t ev;
    assert (mn_event_parse_name ("worker.down", 11, &ev) == 0 && ev == MN_EV_WORKER_DOWN);
    assert (mn_event_parse_name ("worker", 6, &ev) == -1);
}
