/*  sc_broker.c - Titanic and MMI over MDP 0.1 client framing, lazy pirate. */
#include "sc_broker.h"
#include "lb_mem.h"

#include <assert.h>
#include <msgpack.h>
#include <stdarg.h>
#include <string.h>

#define S_MDPC "MDPC01"

struct _sc_broker_t {
    char *endpoint;
    int timeout_ms;
    zsock_t *socket;
    lb_curve_t *curve;          //  CURVE client keys, or NULL
    char error [512];
};

static void s_error (sc_broker_t *self, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));
static void
s_error (sc_broker_t *self, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    vsnprintf (self->error, sizeof self->error, fmt, args);
    va_end (args);
}

sc_broker_t *
sc_broker_new (const char *endpoint, double timeout)
{
    assert (endpoint);
    sc_broker_t *self = lb_xcalloc (1, sizeof *self);
    self->endpoint = lb_xstrdup (endpoint);
    self->timeout_ms = (int) (timeout * 1000);
    if (self->timeout_ms < 10)
        self->timeout_ms = 10;
    return self;
}

void
sc_broker_destroy (sc_broker_t **self_p)
{
    assert (self_p);
    sc_broker_t *self = *self_p;
    if (!self)
        return;
    zsock_destroy (&self->socket);
    lb_curve_destroy (&self->curve);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

void
sc_broker_set_curve (sc_broker_t *self, const lb_curve_t *curve)
{
    assert (self);
    lb_curve_destroy (&self->curve);
    if (curve)
        self->curve = lb_curve_dup (curve);
    zsock_destroy (&self->socket);
}

const char *
sc_broker_error (sc_broker_t *self)
{
    return self->error;
}

zmsg_t *
sc_broker_request (sc_broker_t *self, const char *service, zmsg_t **body_p)
{
    assert (self && service);
    zmsg_t *msg = body_p && *body_p ? *body_p : zmsg_new ();
    if (body_p)
        *body_p = NULL;
    if (!self->socket) {
        self->socket = zsock_new (ZMQ_DEALER);
        assert (self->socket);
        zsock_set_linger (self->socket, 0);
        zsock_set_sndtimeo (self->socket, self->timeout_ms);
        if (self->curve)
            lb_curve_apply (self->curve, self->socket);
        if (zsock_connect (self->socket, "%s", self->endpoint)) {
            s_error (self, "cannot connect to the broker at %s", self->endpoint);
            zsock_destroy (&self->socket);
            zmsg_destroy (&msg);
            return NULL;
        }
    }
    zmsg_pushstr (msg, service);
    zmsg_pushstr (msg, S_MDPC);
    zmsg_pushstr (msg, "");
    if (zmsg_send (&msg, self->socket)) {
        zmsg_destroy (&msg);
        zsock_destroy (&self->socket);
        s_error (self, "broker at %s does not take requests (send failed)", self->endpoint);
        return NULL;
    }
    zpoller_t *poller = zpoller_new (self->socket, NULL);
    void *which = zpoller_wait (poller, self->timeout_ms);
    zpoller_destroy (&poller);
    if (!which) {
        zsock_destroy (&self->socket);      //  a late reply must not answer the next request
        s_error (self, "broker at %s did not answer %s within %.1f s%s%s%s", self->endpoint, service,
                 self->timeout_ms / 1000.0,
                 self->curve ? " (with CURVE: is our public key in the broker's curve_allow? key=" : "",
                 self->curve ? lb_curve_public (self->curve) : "", self->curve ? ")" : "");
        return NULL;
    }
    zmsg_t *reply = zmsg_recv (self->socket);
    char *empty = reply ? zmsg_popstr (reply) : NULL;
    char *proto = reply ? zmsg_popstr (reply) : NULL;
    char *name = reply ? zmsg_popstr (reply) : NULL;
    bool ok = reply && empty && !*empty && proto && strcmp (proto, S_MDPC) == 0 && name
           && strcmp (name, service) == 0;
    free (empty);
    free (proto);
    free (name);
    if (!ok) {
        zmsg_destroy (&reply);
        zsock_destroy (&self->socket);
        s_error (self, "broker at %s sent a malformed reply to %s", self->endpoint, service);
        return NULL;
    }
    return reply;
}

//  Pops the status frame; returns its number or -1 (with error).
static int
s_status (sc_broker_t *self, zmsg_t *reply, const char *what)
{
    char *status = zmsg_popstr (reply);
    int code = status && strlen (status) == 3 ? atoi (status) : -1;
    if (code == 500) {
        char *reason = zmsg_popstr (reply);
        s_error (self, "broker refused %s: %s", what, reason ? reason : "(no reason)");
        free (reason);
    }
    else
    if (code < 0)
        s_error (self, "broker sent no status for %s", what);
    free (status);
    return code;
}

int
sc_broker_submit (sc_broker_t *self, const char *service, int attempts,
                  const uint8_t *body, size_t size, char id [33])
{
    return sc_broker_submit_priority (self, service, attempts, 0, body, size, id);
}

int
sc_broker_submit_priority (sc_broker_t *self, const char *service, int attempts, int priority,
                           const uint8_t *body, size_t size, char id [33])
{
    zmsg_t *msg = zmsg_new ();
    if (attempts > 0)
        zmsg_addstrf (msg, "attempts=%d", attempts);
    if (priority)
        zmsg_addstrf (msg, "priority=%d", priority);
    zmsg_addstr (msg, service);
    zmsg_addmem (msg, body, size);
    zmsg_t *reply = sc_broker_request (self, "titanic.request", &msg);
    if (!reply)
        return -1;
    int code = s_status (self, reply, "titanic.request");
    int rc = -1;
    if (code == 200) {
        char *text = zmsg_popstr (reply);
        if (text && strlen (text) == 32) {
            memcpy (id, text, 33);
            rc = 0;
        }
        else
            s_error (self, "titanic.request: the broker's job id is malformed");
        free (text);
    }
    else
    if (code != 500 && code >= 0)
        s_error (self, "titanic.request answered %d", code);
    zmsg_destroy (&reply);
    return rc;
}

int
sc_broker_reply (sc_broker_t *self, const char *id, pr_result_t **result)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, id);
    zmsg_t *reply = sc_broker_request (self, "titanic.reply", &msg);
    if (!reply)
        return -1;
    int code = s_status (self, reply, "titanic.reply");
    int rc = -1;
    if (code == 300)
        rc = 1;
    else
    if (code == 400)
        rc = 2;
    else
    if (code == 200) {
        zframe_t *body = zmsg_pop (reply);
        if (body && zmsg_size (reply) == 0 && pr_job_is_ours (zframe_data (body), zframe_size (body))) {
            char why [256];
            *result = pr_result_decode (zframe_data (body), zframe_size (body), why, sizeof why);
            if (*result)
                rc = 0;
            else
                s_error (self, "job %s: the result does not decode: %s", id, why);
        }
        else {
            //  A stock worker's reply: done, no outputs.
            *result = pr_result_new (id, PR_STATUS_DONE);
            rc = 0;
        }
        zframe_destroy (&body);
    }
    else
    if (code >= 0 && code != 500)
        s_error (self, "titanic.reply answered %d", code);
    zmsg_destroy (&reply);
    return rc;
}

int
sc_broker_close (sc_broker_t *self, const char *id)
{
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, id);
    zmsg_t *reply = sc_broker_request (self, "titanic.close", &msg);
    if (!reply)
        return -1;
    int code = s_status (self, reply, "titanic.close");
    zmsg_destroy (&reply);
    return code == 200 ? 0 : -1;
}

int
sc_broker_mmi (sc_broker_t *self, const char *name, const char *arg, zframe_t **data)
{
    zmsg_t *msg = zmsg_new ();
    if (arg)
        zmsg_addstr (msg, arg);
    zmsg_t *reply = sc_broker_request (self, name, &msg);
    if (!reply)
        return -1;
    int code = s_status (self, reply, name);
    if (data)
        *data = code == 200 ? zmsg_pop (reply) : NULL;
    zmsg_destroy (&reply);
    return code;
}

int
sc_broker_service (sc_broker_t *self, const char *name)
{
    int code = sc_broker_mmi (self, "mmi.service", name, NULL);
    if (code == 200)
        return 1;
    if (code == 404)
        return 0;
    if (code >= 0)
        s_error (self, "mmi.service answered %d", code);
    return -1;
}

static json_t *
s_to_json (const msgpack_object *obj, int depth)
{
    if (depth > 32)
        return json_null ();
    switch (obj->type) {
        case MSGPACK_OBJECT_NIL: return json_null ();
        case MSGPACK_OBJECT_BOOLEAN: return json_boolean (obj->via.boolean);
        case MSGPACK_OBJECT_POSITIVE_INTEGER: return json_integer ((json_int_t) obj->via.u64);
        case MSGPACK_OBJECT_NEGATIVE_INTEGER: return json_integer ((json_int_t) obj->via.i64);
        case MSGPACK_OBJECT_FLOAT32:
        case MSGPACK_OBJECT_FLOAT64: return json_real (obj->via.f64);
        case MSGPACK_OBJECT_STR: return json_stringn_nocheck (obj->via.str.ptr, obj->via.str.size);
        case MSGPACK_OBJECT_BIN: {
            char *hex = lb_xmalloc (obj->via.bin.size * 2 + 1);
            for (uint32_t i = 0; i < obj->via.bin.size; i++)
                snprintf (hex + 2 * i, 3, "%02x", (unsigned char) obj->via.bin.ptr [i]);
            json_t *text = json_string (hex);
            free (hex);
            return text;
        }
        case MSGPACK_OBJECT_ARRAY: {
            json_t *array = json_array ();
            for (uint32_t i = 0; i < obj->via.array.size; i++)
                json_array_append_new (array, s_to_json (&obj->via.array.ptr [i], depth + 1));
            return array;
        }
        case MSGPACK_OBJECT_MAP: {
            json_t *map = json_object ();
            for (uint32_t i = 0; i < obj->via.map.size; i++) {
                const msgpack_object *key = &obj->via.map.ptr [i].key;
                if (key->type != MSGPACK_OBJECT_STR)
                    continue;
                char *name = lb_xstrndup (key->via.str.ptr, key->via.str.size);
                json_object_set_new (map, name, s_to_json (&obj->via.map.ptr [i].val, depth + 1));
                free (name);
            }
            return map;
        }
        default: return json_null ();
    }
}

json_t *
sc_broker_json (const void *data, size_t size)
{
    msgpack_unpacked msg;
    msgpack_unpacked_init (&msg);
    size_t offset = 0;
    json_t *json = NULL;
    if (msgpack_unpack_next (&msg, data, size, &offset) == MSGPACK_UNPACK_SUCCESS && offset == size)
        json = s_to_json (&msg.data, 0);
    msgpack_unpacked_destroy (&msg);
    return json;
}

int
sc_broker_field_bin (const void *data, size_t size, const char *key, uint8_t **out, size_t *out_size)
{
    msgpack_unpacked msg;
    msgpack_unpacked_init (&msg);
    size_t offset = 0;
    int rc = -1;
    if (msgpack_unpack_next (&msg, data, size, &offset) == MSGPACK_UNPACK_SUCCESS
    &&  msg.data.type == MSGPACK_OBJECT_MAP) {
        for (uint32_t i = 0; i < msg.data.via.map.size && rc; i++) {
            const msgpack_object *k = &msg.data.via.map.ptr [i].key;
            const msgpack_object *v = &msg.data.via.map.ptr [i].val;
            if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == strlen (key)
            &&  memcmp (k->via.str.ptr, key, k->via.str.size) == 0
            &&  (v->type == MSGPACK_OBJECT_BIN || v->type == MSGPACK_OBJECT_STR)) {
                *out_size = v->via.bin.size;
                *out = lb_xmalloc (*out_size + 1);
                memcpy (*out, v->via.bin.ptr, *out_size);
                (*out) [*out_size] = 0;
                rc = 0;
            }
        }
    }
    msgpack_unpacked_destroy (&msg);
    return rc;
}

//  --------------------------------------------------------------------------
//  Selftest: a ROUTER plays the broker's side of each exchange.

static void
s_test_answer (zsock_t *router, const char **frames, size_t count)
{
    zmsg_t *request = zmsg_recv (router);
    assert (request);
    zframe_t *identity = zmsg_pop (request);
    char *empty = zmsg_popstr (request);
    char *proto = zmsg_popstr (request);
    char *service = zmsg_popstr (request);
    assert (empty && !*empty && strcmp (proto, S_MDPC) == 0);
    zmsg_t *reply = zmsg_new ();
    zmsg_append (reply, &identity);
    zmsg_addstr (reply, "");
    zmsg_addstr (reply, S_MDPC);
    zmsg_addstr (reply, service);
    for (size_t i = 0; i < count; i++)
        zmsg_addstr (reply, frames [i]);
    zmsg_send (&reply, router);
    free (empty);
    free (proto);
    free (service);
    zmsg_destroy (&request);
}

typedef struct {
    zsock_t *router;
    int script;
} s_test_peer_t;

static void *
s_test_peer (void *arg)
{
    s_test_peer_t *peer = arg;
    const char *accepted [] = { "200", "0123456789abcdef0123456789abcdef" };
    const char *pending [] = { "300" };
    const char *unknown [] = { "400" };
    const char *refused [] = { "500", "titanic.request: service name missing" };
    const char *ok [] = { "200" };
    const char *missing [] = { "404" };
    s_test_answer (peer->router, accepted, 2);
    s_test_answer (peer->router, pending, 1);
    s_test_answer (peer->router, unknown, 1);
    s_test_answer (peer->router, refused, 2);
    s_test_answer (peer->router, ok, 1);
    s_test_answer (peer->router, missing, 1);
    //  A finished job: our result map.
    zmsg_t *request = zmsg_recv (peer->router);
    zframe_t *identity = zmsg_pop (request);
    zmsg_destroy (&request);
    pr_result_t *result = pr_result_new ("r/s/1", PR_STATUS_FAIL);
    pr_result_set_error (result, "dead", "3 attempts: boom");
    size_t size;
    uint8_t *body = pr_result_encode (result, &size);
    pr_result_destroy (&result);
    zmsg_t *reply = zmsg_new ();
    zmsg_append (reply, &identity);
    zmsg_addstr (reply, "");
    zmsg_addstr (reply, S_MDPC);
    zmsg_addstr (reply, "titanic.reply");
    zmsg_addstr (reply, "200");
    zmsg_addmem (reply, body, size);
    free (body);
    zmsg_send (&reply, peer->router);
    //  The last request is never answered (a timeout).
    request = zmsg_recv (peer->router);
    zmsg_destroy (&request);
    return NULL;
}

void
sc_broker_test (bool verbose)
{
    (void) verbose;
    zsock_t *router = zsock_new (ZMQ_ROUTER);
    int port = zsock_bind (router, "tcp://127.0.0.1:*[30000-]");
    assert (port > 0);
    char endpoint [64];
    snprintf (endpoint, sizeof endpoint, "tcp://127.0.0.1:%d", port);
    s_test_peer_t peer = { router, 0 };
    pthread_t thread;
    pthread_create (&thread, NULL, s_test_peer, &peer);

    sc_broker_t *broker = sc_broker_new (endpoint, 2);
    char id [33];
    static const uint8_t body [] = { 0x80 };
    assert (sc_broker_submit (broker, "echo", 3, body, sizeof body, id) == 0);
    assert (strcmp (id, "0123456789abcdef0123456789abcdef") == 0);
    pr_result_t *result = NULL;
    assert (sc_broker_reply (broker, id, &result) == 1);
    assert (sc_broker_reply (broker, id, &result) == 2);
    assert (sc_broker_submit (broker, "echo", 0, body, sizeof body, id) == -1);
    assert (strstr (sc_broker_error (broker), "service name missing"));
    assert (sc_broker_close (broker, id) == 0);
    assert (sc_broker_service (broker, "nothing") == 0);
    assert (sc_broker_reply (broker, id, &result) == 0);
    assert (result && result->status == PR_STATUS_FAIL && strcmp (result->error_code, "dead") == 0);
    pr_result_destroy (&result);
    sc_broker_destroy (&broker);

    broker = sc_broker_new (endpoint, 0.2);
    assert (sc_broker_service (broker, "echo") == -1);
    assert (strstr (sc_broker_error (broker), "did not answer mmi.service"));
    sc_broker_destroy (&broker);
    assert (!broker);

    //  msgpack -> JSON, and a bin field.
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 3);
    msgpack_pack_str_with_body (&pk, "state", 5);
    msgpack_pack_str_with_body (&pk, "leased", 6);
    msgpack_pack_str_with_body (&pk, "attempts", 8);
    msgpack_pack_int (&pk, 2);
    msgpack_pack_str_with_body (&pk, "body", 4);
    msgpack_pack_bin_with_body (&pk, "\x01\x02", 2);
    json_t *json = sc_broker_json (sbuf.data, sbuf.size);
    assert (json && strcmp (json_string_value (json_object_get (json, "state")), "leased") == 0);
    assert (json_integer_value (json_object_get (json, "attempts")) == 2);
    assert (strcmp (json_string_value (json_object_get (json, "body")), "0102") == 0);
    json_decref (json);
    uint8_t *bin;
    size_t bin_size;
    assert (sc_broker_field_bin (sbuf.data, sbuf.size, "body", &bin, &bin_size) == 0);
    assert (bin_size == 2 && bin [0] == 1 && bin [1] == 2);
    free (bin);
    assert (sc_broker_field_bin (sbuf.data, sbuf.size, "none", &bin, &bin_size) == -1);
    assert (!sc_broker_json (sbuf.data, sbuf.size - 1));
    msgpack_sbuffer_destroy (&sbuf);
    pthread_join (thread, NULL);
    zsock_destroy (&router);
}
