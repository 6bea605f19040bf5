/*  bk_events.c - the broker's event stream.
*/
#include "bk_events.h"

#include "lb_log.h"
#include "lb_mem.h"

#include <assert.h>
#include <msgpack.h>
#include <string.h>

struct _bk_events_t {
    zsock_t *pub;
    char ev [32];
    msgpack_sbuffer body;       //  key/value pairs of the current event
    msgpack_packer pk;
    uint32_t pairs;
    int64_t count;
};

bk_events_t *
bk_events_new (const char *endpoint)
{
    bk_events_t *self = lb_xcalloc (1, sizeof *self);
    if (endpoint && *endpoint) {
        self->pub = zsock_new (ZMQ_PUB);
        assert (self->pub);
        zsock_set_sndhwm (self->pub, 100000);
        zsock_set_linger (self->pub, 0);
        if (zsock_bind (self->pub, "%s", endpoint) < 0) {
            lb_log_error ("events: cannot bind endpoint=%s: %s", endpoint, zmq_strerror (zmq_errno ()));
            zsock_destroy (&self->pub);
            free (self);
            return NULL;
        }
    }
    msgpack_sbuffer_init (&self->body);
    msgpack_packer_init (&self->pk, &self->body, msgpack_sbuffer_write);
    return self;
}

void
bk_events_destroy (bk_events_t **self_p)
{
    assert (self_p);
    bk_events_t *self = *self_p;
    if (!self)
        return;
    zsock_destroy (&self->pub);
    msgpack_sbuffer_destroy (&self->body);
    free (self);
    *self_p = NULL;
}

static void
s_key (bk_events_t *self, const char *key)
{
    size_t len = strlen (key);
    msgpack_pack_str (&self->pk, len);
    msgpack_pack_str_body (&self->pk, key, len);
    self->pairs++;
}

void
bk_events_str (bk_events_t *self, const char *key, const char *value)
{
    assert (self);
    if (!self->pub)
        return;
    s_key (self, key);
    if (!value) {
        msgpack_pack_nil (&self->pk);
        return;
    }
    size_t len = strlen (value);
    msgpack_pack_str (&self->pk, len);
    msgpack_pack_str_body (&self->pk, value, len);
}

void
bk_events_int (bk_events_t *self, const char *key, int64_t value)
{
    assert (self);
    if (!self->pub)
        return;
    s_key (self, key);
    msgpack_pack_int64 (&self->pk, value);
}

void
bk_events_bin (bk_events_t *self, const char *key, const uint8_t *data, size_t size)
{
    assert (self);
    if (!self->pub)
        return;
    s_key (self, key);
    msgpack_pack_bin (&self->pk, size);
    msgpack_pack_bin_body (&self->pk, data, size);
}

void
bk_events_bool (bk_events_t *self, const char *key, bool value)
{
    assert (self);
    if (!self->pub)
        return;
    s_key (self, key);
    if (value)
        msgpack_pack_true (&self->pk);
    else
        msgpack_pack_false (&self->pk);
}

void
bk_events_begin (bk_events_t *self, const char *ev, int64_t t_us, const char *id, const char *service)
{
    assert (self);
    assert (ev && strlen (ev) < sizeof self->ev);
    if (!self->pub)
        return;
    //  The map header goes first as a map 16 whose count send fills in: the
    //  body is then the frame as it is, with no second buffer.
    msgpack_sbuffer_clear (&self->body);
    msgpack_sbuffer_write (&self->body, "\xde\0\0", 3);
    self->pairs = 0;
    snprintf (self->ev, sizeof self->ev, "%s", ev);
    bk_events_int (self, "v", 1);
    bk_events_str (self, "ev", ev);
    bk_events_int (self, "t", t_us);
    if (id)
        bk_events_str (self, "id", id);
    if (service)
        bk_events_str (self, "service", service);
}

int
bk_events_send (bk_events_t *self)
{
    assert (self);
    if (!self->pub)
        return 0;
    assert (self->body.size >= 3 && self->pairs <= 0xffff);
    self->body.data [1] = (char) (self->pairs >> 8);
    self->body.data [2] = (char) (self->pairs & 0xff);
    zmsg_t *msg = zmsg_new ();
    zmsg_addstr (msg, self->ev);
    zmsg_addmem (msg, self->body.data, self->body.size);
    int rc = zmsg_send (&msg, self->pub);
    zmsg_destroy (&msg);
    if (rc == 0)
        self->count++;
    return rc;
}

bool
bk_events_enabled (bk_events_t *self)
{
    assert (self);
    return self->pub != NULL;
}

int64_t
bk_events_count (bk_events_t *self)
{
    assert (self);
    return self->count;
}

void
bk_events_test (bool verbose)
{
    (void) verbose;
    bk_events_t *ev = bk_events_new ("inproc://bk_events_test");
    assert (ev && bk_events_enabled (ev));
    zsock_t *sub = zsock_new_sub ("inproc://bk_events_test", "");
    assert (sub);
    zclock_sleep (50);
    bk_events_begin (ev, "queued", 123, "0123456789abcdef0123456789abcdef", "svc");
    bk_events_int (ev, "priority", 5);
    bk_events_bool (ev, "durable", true);
    bk_events_bin (ev, "body", (const uint8_t *) "xy", 2);
    bk_events_str (ev, "worker", NULL);
    assert (bk_events_send (ev) == 0);
    zsock_set_rcvtimeo (sub, 2000);
    zmsg_t *msg = zmsg_recv (sub);
    assert (msg && zmsg_size (msg) == 2);
    char *topic = zmsg_popstr (msg);
    assert (strcmp (topic, "queued") == 0);
    free (topic);
    zframe_t *body = zmsg_pop (msg);
    msgpack_unpacked u;
    msgpack_unpacked_init (&u);
    size_t off = 0;
    assert (msgpack_unpack_next (&u, (const char *) zframe_data (body), zframe_size (body), &off) == MSGPACK_UNPACK_SUCCESS);
    assert (off == zframe_size (body));
    assert (u.data.type == MSGPACK_OBJECT_MAP && u.data.via.map.size == 9);
    msgpack_unpacked_destroy (&u);
    zframe_destroy (&body);
    zmsg_destroy (&msg);
    assert (bk_events_count (ev) == 1);
    zsock_destroy (&sub);
    bk_events_destroy (&ev);
    //  Events off
    ev = bk_events_new (NULL);
    assert (!bk_events_enabled (ev));
    bk_events_begin (ev, "done", 1, NULL, NULL);
    bk_events_int (ev, "ms", 3);
    assert (bk_events_send (ev) == 0 && bk_events_count (ev) == 0);
    bk_events_destroy (&ev);
}
