/*  mn_mmi.c - Majordomo 0.1 client for the broker's mmi.* services (Lazy Pirate). */
#include "mn_mmi.h"
#include "mn_event.h"
#include "lb_log.h"
#include "lb_mem.h"

#include <assert.h>
#include <czmq.h>
#include <msgpack.h>
#include <string.h>

struct _mn_mmi_t {
    char *endpoint;
    zcert_t *cert;              //  our certificate (CURVE) or NULL
    char *server_key;           //  the broker's public key (Z85) or NULL
    int timeout_ms;
    zsock_t *sock;              //  NULL until the next request
};

mn_mmi_t *
mn_mmi_new (const char *endpoint, const char *curve_secret, const char *curve_server, int timeout_ms)
{
    assert (endpoint);
    mn_mmi_t *self = lb_xcalloc (1, sizeof *self);
    self->endpoint = lb_xstrdup (endpoint);
    self->timeout_ms = timeout_ms;
    if (curve_secret && *curve_secret) {
        self->cert = zcert_load (curve_secret);
        zcert_t *server = curve_server && *curve_server? zcert_load (curve_server): NULL;
        if (!self->cert || !server) {
            lb_log_error ("cannot read CURVE certificate %s (monitor.curve_secret=%s monitor.curve_server=%s)",
                          !self->cert? "secret": "of the broker", curve_secret,
                          curve_server? curve_server: "(unset)");
            zcert_destroy (&server);
            mn_mmi_destroy (&self);
            return NULL;
        }
        self->server_key = lb_xstrdup (zcert_public_txt (server));
        zcert_destroy (&server);
    }
    return self;
}

void
mn_mmi_destroy (mn_mmi_t **self_p)
{
    assert (self_p);
    mn_mmi_t *self = *self_p;
    if (!self)
        return;
    zsock_destroy (&self->sock);
    zcert_destroy (&self->cert);
    free (self->server_key);
    free (self->endpoint);
    free (self);
    *self_p = NULL;
}

static int
s_open (mn_mmi_t *self)
{
    if (self->sock)
        return 0;
    self->sock = zsock_new (ZMQ_DEALER);
    if (!self->sock) {
        lb_log_error ("cannot create a DEALER socket");
        return -1;
    }
    zsock_set_linger (self->sock, 0);
    if (self->cert) {
        zcert_apply (self->cert, self->sock);
        zsock_set_curve_serverkey (self->sock, self->server_key);
    }
    if (zsock_connect (self->sock, "%s", self->endpoint)) {
        lb_log_error ("cannot connect to broker endpoint=%s", self->endpoint);
        zsock_destroy (&self->sock);
        return -1;
    }
    return 0;
}

//  Sends [ "", MDPC01, service, arg? ] and waits for the reply. Returns the
//  reply's frames after the service frame (status first; caller destroys),
//  or NULL after logging.
static zmsg_t *
s_request (mn_mmi_t *self, const char *service, const char *arg)
{
    if (s_open (self))
        return NULL;
    zmsg_t *req = zmsg_new ();
    zmsg_addstr (req, "");
    zmsg_addstr (req, "MDPC01");
    zmsg_addstr (req, service);
    if (arg)
        zmsg_addstr (req, arg);
    if (zmsg_send (&req, self->sock)) {
        zmsg_destroy (&req);
        lb_log_warn ("mmi request not sent service=%s", service);
        zsock_destroy (&self->sock);
        return NULL;
    }
    zpoller_t *poller = zpoller_new (self->sock, NULL);
    void *which = zpoller_wait (poller, self->timeout_ms);
    zpoller_destroy (&poller);
    if (!which) {
        lb_log_warn ("broker did not answer %s within %d ms endpoint=%s", service, self->timeout_ms,
                     self->endpoint);
        zsock_destroy (&self->sock);     //  Lazy Pirate: drop the socket, no late replies
        return NULL;
    }
    zmsg_t *reply = zmsg_recv (self->sock);
    if (!reply)
        return NULL;
    //  Expect "", "MDPC01", service, status, ...
    char *empty = zmsg_popstr (reply);
    char *header = zmsg_popstr (reply);
    char *svc = zmsg_popstr (reply);
    bool ok = empty && !*empty && header && streq (header, "MDPC01") && svc && streq (svc, service)
           && zmsg_size (reply) >= 1;
    if (!ok) {
        lb_log_warn ("malformed reply to %s from broker (header=%s service=%s)", service,
                     header? header: "-", svc? svc: "-");
        zmsg_destroy (&reply);
        zsock_destroy (&self->sock);
    }
    zstr_free (&empty);
    zstr_free (&header);
    zstr_free (&svc);
    return reply;
}

//  -------------------------------------------------------------------------
//  msgpack reading helpers

static const msgpack_object *
s_get (const msgpack_object *map, const char *key)
{
    size_t klen = strlen (key);
    for (uint32_t i = 0; i < map->via.map.size; i++) {
        const msgpack_object *k = &map->via.map.ptr [i].key;
        if (k->type == MSGPACK_OBJECT_STR && k->via.str.size == klen && !memcmp (k->via.str.ptr, key, klen))
            return &map->via.map.ptr [i].val;
    }
    return NULL;
}

//  Reads an optional string (nil or absent gives ""). Returns -1 on a wrong type.
static int
s_get_str (const msgpack_object *map, const char *key, char *buf, size_t size)
{
    const msgpack_object *o = s_get (map, key);
    buf [0] = 0;
    if (!o || o->type == MSGPACK_OBJECT_NIL)
        return 0;
    if (o->type != MSGPACK_OBJECT_STR || memchr (o->via.str.ptr, 0, o->via.str.size))
        return -1;
    size_t n = o->via.str.size < size - 1? o->via.str.size: size - 1;
    memcpy (buf, o->via.str.ptr, n);
    buf [n] = 0;
    return 0;
}

static int
s_obj_int (const msgpack_object *o, int64_t *out)
{
    if (o->type == MSGPACK_OBJECT_POSITIVE_INTEGER && o->via.u64 <= INT64_MAX)
        *out = (int64_t) o->via.u64;
    else if (o->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
        *out = o->via.i64;
    else
        return -1;
    return 0;
}

static int
s_get_int (const msgpack_object *map, const char *key, int64_t *out)
{
    const msgpack_object *o = s_get (map, key);
    *out = 0;
    if (!o || o->type == MSGPACK_OBJECT_NIL)
        return 0;
    return s_obj_int (o, out);
}

//  Parses one msgpack value of the wanted type (map or array) and calls fn
//  for each entry: key is the map key (NULL for an array), i its index, n
//  the number of entries; with whole, fn is called once with the value
//  itself. Returns 0, or -1 with err filled (by fn, or here when the body is
//  not the wanted value).
typedef int (s_entry_fn) (void *out, const msgpack_object *key, const msgpack_object *val, uint32_t i,
                          uint32_t n, char *err, size_t err_size);

static int
s_walk (const void *data, size_t size, msgpack_object_type type, s_entry_fn *fn, void *out, bool whole,
        char *err, size_t err_size)
{
    if (!mn_event_plausible (data, size, 8)) {
        snprintf (err, err_size, "not msgpack, or a container larger than the reply");
        return -1;
    }
    msgpack_unpacked msg;
    msgpack_unpacked_init (&msg);
    size_t off = 0;
    int rc = -1;
    if (msgpack_unpack_next (&msg, data, size, &off) != MSGPACK_UNPACK_SUCCESS)
        snprintf (err, err_size, "not msgpack");
    else
    if (off != size)
        snprintf (err, err_size, "%zu trailing bytes", size - off);
    else
    if (msg.data.type != type)
        snprintf (err, err_size, "not a %s", type == MSGPACK_OBJECT_MAP? "map": "array");
    else
    if (whole)
        rc = fn (out, NULL, &msg.data, 0, 1, err, err_size);
    else {
        rc = 0;
        if (type == MSGPACK_OBJECT_MAP) {
            uint32_t n = msg.data.via.map.size;
            for (uint32_t i = 0; i < n && rc == 0; i++)
                rc = fn (out, &msg.data.via.map.ptr [i].key, &msg.data.via.map.ptr [i].val, i, n, err, err_size);
        }
        else {
            uint32_t n = msg.data.via.array.size;
            for (uint32_t i = 0; i < n && rc == 0; i++)
                rc = fn (out, NULL, &msg.data.via.array.ptr [i], i, n, err, err_size);
        }
    }
    msgpack_unpacked_destroy (&msg);
    return rc;
}

//  Copies a map key into buf (1..size-1 bytes). Returns 0 or -1.
static int
s_key (const msgpack_object *key, char *buf, size_t size)
{
    if (!key || key->type != MSGPACK_OBJECT_STR || key->via.str.size == 0 || key->via.str.size >= size
    ||  memchr (key->via.str.ptr, 0, key->via.str.size))
        return -1;
    memcpy (buf, key->via.str.ptr, key->via.str.size);
    buf [key->via.str.size] = 0;
    return 0;
}

static int
s_queue_entry (void *out, const msgpack_object *k, const msgpack_object *v, uint32_t i, uint32_t n,
               char *err, size_t err_size)
{
    mn_snapshot_t *snap = out;
    if (i == 0)
        snap->queues = lb_xcalloc (n, sizeof *snap->queues);
    mn_mmi_queue_t *q = &snap->queues [snap->nqueues];
    if (s_key (k, q->service, sizeof q->service) || v->type != MSGPACK_OBJECT_MAP) {
        snprintf (err, err_size, "queues entry %u: want service name -> map", i);
        return -1;
    }
    if (s_get_int (v, "queued", &q->queued) || s_get_int (v, "delayed", &q->delayed)
    ||  s_get_int (v, "leased", &q->leased) || s_get_int (v, "dead", &q->dead)
    ||  s_get_int (v, "workers", &q->workers) || s_get_int (v, "idle", &q->idle)) {
        snprintf (err, err_size, "queue %s: a count is not an integer", q->service);
        return -1;
    }
    snap->nqueues++;
    return 0;
}

int
mn_mmi_decode_queues (const void *data, size_t size, mn_snapshot_t *snap, char *err, size_t err_size)
{
    return s_walk (data, size, MSGPACK_OBJECT_MAP, s_queue_entry, snap, false, err, err_size);
}

static int
s_worker_entry (void *out, const msgpack_object *k, const msgpack_object *v, uint32_t i, uint32_t n,
                char *err, size_t err_size)
{
    (void) k;
    mn_snapshot_t *snap = out;
    if (i == 0)
        snap->workers = lb_xcalloc (n, sizeof *snap->workers);
    mn_mmi_worker_t *w = &snap->workers [snap->nworkers];
    if (v->type != MSGPACK_OBJECT_MAP
    ||  s_get_str (v, "id", w->id, sizeof w->id) || !*w->id
    ||  s_get_str (v, "service", w->service, sizeof w->service)
    ||  s_get_str (v, "proto", w->proto, sizeof w->proto)
    ||  s_get_str (v, "state", w->state, sizeof w->state)
    ||  s_get_str (v, "job", w->job, sizeof w->job)
    ||  s_get_int (v, "idle_ms", &w->idle_ms)) {
        snprintf (err, err_size, "workers entry %u: want {id, service, proto, state, job, idle_ms}", i);
        return -1;
    }
    snap->nworkers++;
    return 0;
}

int
mn_mmi_decode_workers (const void *data, size_t size, mn_snapshot_t *snap, char *err, size_t err_size)
{
    return s_walk (data, size, MSGPACK_OBJECT_ARRAY, s_worker_entry, snap, false, err, err_size);
}

static int
s_dead_entry (void *out, const msgpack_object *k, const msgpack_object *v, uint32_t i, uint32_t n,
              char *err, size_t err_size)
{
    (void) k;
    mn_snapshot_t *snap = out;
    if (i == 0)
        snap->dead = lb_xcalloc (n, sizeof *snap->dead);
    mn_mmi_dead_t *d = &snap->dead [snap->ndead];
    if (v->type != MSGPACK_OBJECT_MAP
    ||  s_get_str (v, "id", d->id, sizeof d->id) || strlen (d->id) != 32
    ||  s_get_str (v, "service", d->service, sizeof d->service)
    ||  s_get_int (v, "attempts", &d->attempts)
    ||  s_get_str (v, "error", d->error, sizeof d->error)
    ||  s_get_int (v, "dead_us", &d->dead_us)) {
        snprintf (err, err_size, "dead entry %u: want {id, service, attempts, error, dead_us}", i);
        return -1;
    }
    snap->ndead++;
    return 0;
}

int
mn_mmi_decode_dead (const void *data, size_t size, mn_snapshot_t *snap, char *err, size_t err_size)
{
    return s_walk (data, size, MSGPACK_OBJECT_ARRAY, s_dead_entry, snap, false, err, err_size);
}

static int
s_stat_entry (void *out, const msgpack_object *k, const msgpack_object *v, uint32_t i, uint32_t n,
              char *err, size_t err_size)
{
    mn_snapshot_t *snap = out;
    if (i == 0)
        snap->stats = lb_xcalloc (n, sizeof *snap->stats);
    mn_mmi_stat_t *st = &snap->stats [snap->nstats];
    if (s_key (k, st->name, sizeof st->name) || s_obj_int (v, &st->value)) {
        snprintf (err, err_size, "stats entry %u: want name -> integer", i);
        return -1;
    }
    //  Only names fit for a metric name survive.
    if (strspn (st->name, "abcdefghijklmnopqrstuvwxyz0123456789_") == strlen (st->name))
        snap->nstats++;
    return 0;
}

int
mn_mmi_decode_stats (const void *data, size_t size, mn_snapshot_t *snap, char *err, size_t err_size)
{
    return s_walk (data, size, MSGPACK_OBJECT_MAP, s_stat_entry, snap, false, err, err_size);
}

static int
s_job_value (void *out, const msgpack_object *k, const msgpack_object *map, uint32_t i, uint32_t n,
             char *err, size_t err_size)
{
    (void) k; (void) i; (void) n;
    mn_mmi_job_t *job = out;
    if (s_get_str (map, "id", job->id, sizeof job->id)
    ||  s_get_str (map, "service", job->service, sizeof job->service)
    ||  s_get_str (map, "state", job->state, sizeof job->state) || !*job->state
    ||  s_get_int (map, "attempts", &job->attempts)
    ||  s_get_str (map, "worker", job->worker, sizeof job->worker)
    ||  s_get_str (map, "last_error", job->last_error, sizeof job->last_error)
    ||  s_get_int (map, "submitted_us", &job->submitted_us)) {
        snprintf (err, err_size, "job: want {id, service, state, attempts, worker, last_error, submitted_us}");
        return -1;
    }
    return 0;
}

int
mn_mmi_decode_job (const void *data, size_t size, mn_mmi_job_t *job, char *err, size_t err_size)
{
    return s_walk (data, size, MSGPACK_OBJECT_MAP, s_job_value, job, true, err, err_size);
}

void
mn_snapshot_release (mn_snapshot_t *snap)
{
    free (snap->queues);
    free (snap->workers);
    free (snap->dead);
    free (snap->stats);
    memset (snap, 0, sizeof *snap);
}

typedef int (s_decoder_fn) (const void *, size_t, mn_snapshot_t *, char *, size_t);

static int
s_fetch (mn_mmi_t *self, const char *service, s_decoder_fn *decode, mn_snapshot_t *snap)
{
    zmsg_t *reply = s_request (self, service, NULL);
    if (!reply)
        return -1;
    int rc = -1;
    char *status = zmsg_popstr (reply);
    zframe_t *body = zmsg_pop (reply);
    char err [200];
    if (!status || !streq (status, "200") || !body)
        lb_log_warn ("broker answered %s with status=%s", service, status? status: "-");
    else if (decode (zframe_data (body), zframe_size (body), snap, err, sizeof err))
        lb_log_warn ("bad %s reply from broker: %s", service, err);
    else
        rc = 0;
    zstr_free (&status);
    zframe_destroy (&body);
    zmsg_destroy (&reply);
    return rc;
}

int
mn_mmi_snapshot (mn_mmi_t *self, mn_snapshot_t *snap)
{
    assert (self && snap);
    memset (snap, 0, sizeof *snap);
    if (s_fetch (self, "mmi.queues", mn_mmi_decode_queues, snap)
    ||  s_fetch (self, "mmi.workers", mn_mmi_decode_workers, snap)
    ||  s_fetch (self, "mmi.dead", mn_mmi_decode_dead, snap)
    ||  s_fetch (self, "mmi.stats", mn_mmi_decode_stats, snap)) {
        mn_snapshot_release (snap);
        return -1;
    }
    snap->taken_us = zclock_time () * 1000;
    return 0;
}

int
mn_mmi_job (mn_mmi_t *self, const char *id, mn_mmi_job_t *job)
{
    assert (self && id && job);
    memset (job, 0, sizeof *job);
    zmsg_t *reply = s_request (self, "mmi.job", id);
    if (!reply)
        return -1;
    int rc = -1;
    char *status = zmsg_popstr (reply);
    zframe_t *body = zmsg_pop (reply);
    char err [200];
    if (status && streq (status, "404")) {
        snprintf (job->id, sizeof job->id, "%s", id);
        snprintf (job->state, sizeof job->state, "gone");
        rc = 0;
    }
    else if (!status || !streq (status, "200") || !body)
        lb_log_warn ("broker answered mmi.job with status=%s job=%s", status? status: "-", id);
    else if (mn_mmi_decode_job (zframe_data (body), zframe_size (body), job, err, sizeof err))
        lb_log_warn ("bad mmi.job reply job=%s: %s", id, err);
    else
        rc = 0;
    zstr_free (&status);
    zframe_destroy (&body);
    zmsg_destroy (&reply);
    return rc;
}

int
mn_mmi_action (mn_mmi_t *self, const char *action, const char *id)
{
    assert (self && action && id);
    assert (streq (action, "cancel") || streq (action, "requeue"));
    char service [32];
    snprintf (service, sizeof service, "mmi.%s", action);
    zmsg_t *reply = s_request (self, service, id);
    if (!reply)
        return -1;
    char *status = zmsg_popstr (reply);
    int code = status? atoi (status): -1;
    zstr_free (&status);
    zmsg_destroy (&reply);
    return code > 0? code: -1;
}

//  -------------------------------------------------------------------------
//  Selftest: decoders on hand-made bodies; a request to nobody times out.

static void
s_pack_str (msgpack_packer *pk, const char *s)
{
    msgpack_pack_str (pk, strlen (s));
    msgpack_pack_str_body (pk, s, strlen (s));
}

void
mn_mmi_test (bool verbose)
{
    (void) verbose;
    char err [200];
    mn_snapshot_t snap = { 0 };
    msgpack_sbuffer sb;
    msgpack_packer pk;

    //  mmi.queues: {"train": {queued: 3, leased: 1, workers: 2, idle: 1}}
    msgpack_sbuffer_init (&sb);
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    s_pack_str (&pk, "train");
    msgpack_pack_map (&pk, 4);
    s_pack_str (&pk, "queued"); msgpack_pack_int (&pk, 3);
    s_pack_str (&pk, "leased"); msgpack_pack_int (&pk, 1);
    s_pack_str (&pk, "workers"); msgpack_pack_int (&pk, 2);
    s_pack_str (&pk, "idle"); msgpack_pack_int (&pk, 1);
    assert (mn_mmi_decode_queues (sb.data, sb.size, &snap, err, sizeof err) == 0);
    assert (snap.nqueues == 1 && streq (snap.queues [0].service, "train"));
    assert (snap.queues [0].queued == 3 && snap.queues [0].workers == 2 && snap.queues [0].dead == 0);
    assert (mn_mmi_decode_queues (sb.data, sb.size - 1, &snap, err, sizeof err) == -1);
    msgpack_sbuffer_destroy (&sb);
    mn_snapshot_release (&snap);

    //  mmi.workers: [{id, service, proto, state, job: nil, idle_ms}]
    msgpack_sbuffer_init (&sb);
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 1);
    msgpack_pack_map (&pk, 6);
    s_pack_str (&pk, "id"); s_pack_str (&pk, "00aa");
    s_pack_str (&pk, "service"); s_pack_str (&pk, "fetch");
    s_pack_str (&pk, "proto"); s_pack_str (&pk, "MDPW02");
    s_pack_str (&pk, "state"); s_pack_str (&pk, "idle");
    s_pack_str (&pk, "job"); msgpack_pack_nil (&pk);
    s_pack_str (&pk, "idle_ms"); msgpack_pack_int (&pk, 1200);
    assert (mn_mmi_decode_workers (sb.data, sb.size, &snap, err, sizeof err) == 0);
    assert (snap.nworkers == 1 && streq (snap.workers [0].id, "00aa") && snap.workers [0].job [0] == 0);
    assert (snap.workers [0].idle_ms == 1200);
    //  The same body is not a map of queues nor a job.
    mn_mmi_job_t job;
    assert (mn_mmi_decode_queues (sb.data, sb.size, &snap, err, sizeof err) == -1);
    assert (mn_mmi_decode_job (sb.data, sb.size, &job, err, sizeof err) == -1);
    msgpack_sbuffer_destroy (&sb);
    mn_snapshot_release (&snap);

    //  mmi.stats with a name unfit for a metric (dropped) and a bad value (refused).
    msgpack_sbuffer_init (&sb);
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 2);
    s_pack_str (&pk, "bad_frames"); msgpack_pack_int (&pk, 4);
    s_pack_str (&pk, "Bad Name"); msgpack_pack_int (&pk, 1);
    assert (mn_mmi_decode_stats (sb.data, sb.size, &snap, err, sizeof err) == 0);
    assert (snap.nstats == 1 && snap.stats [0].value == 4);
    msgpack_sbuffer_destroy (&sb);
    mn_snapshot_release (&snap);
    msgpack_sbuffer_init (&sb);
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 1);
    s_pack_str (&pk, "x"); s_pack_str (&pk, "y");
    assert (mn_mmi_decode_stats (sb.data, sb.size, &snap, err, sizeof err) == -1);
    msgpack_sbuffer_destroy (&sb);
    mn_snapshot_release (&snap);

    //  mmi.dead: an id that is not 32 characters is refused.
    msgpack_sbuffer_init (&sb);
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_array (&pk, 1);
    msgpack_pack_map (&pk, 2);
    s_pack_str (&pk, "id"); s_pack_str (&pk, "short");
    s_pack_str (&pk, "service"); s_pack_str (&pk, "fetch");
    assert (mn_mmi_decode_dead (sb.data, sb.size, &snap, err, sizeof err) == -1);
    msgpack_sbuffer_destroy (&sb);
    mn_snapshot_release (&snap);

    //  Nobody listening: the request times out and says so.
    mn_mmi_t *mmi = mn_mmi_new ("tcp://127.0.0.1:9", NULL, NULL, 100);
    assert (mmi);
    assert (mn_mmi_snapshot (mmi, &snap) == -1);
    assert (snap.nqueues == 0);
    assert (mn_mmi_action (mmi, "cancel", "0123456789abcdef0123456789abcdef") == -1);
    mn_mmi_destroy (&mmi);
    mn_mmi_destroy (&mmi);
    assert (mn_mmi_new ("tcp://127.0.0.1:9", "/nonexistent/cert_secret", "/nonexistent/cert", 100) == NULL);
}
