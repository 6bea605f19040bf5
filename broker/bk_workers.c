/*  bk_workers.c - the broker's workers and services.
*/
#include "bk_workers.h"

#include "lb_config.h"
#include "lb_mem.h"

#include <assert.h>
#include <string.h>

struct _bk_workers_t {
    bk_workers_policy_t policy;
    zhashx_t *workers;          //  key -> bk_worker_t
    zhashx_t *services;         //  name -> bk_service_t
};

static void
s_service_destroy (void **item)
{
    bk_service_t *svc = *item;
    zlistx_destroy (&svc->idle);
    free (svc->name);
    free (svc);
    *item = NULL;
}

static void
s_worker_destroy (void **item)
{
    bk_worker_t *w = *item;
    zframe_destroy (&w->identity);
    free (w->key);
    free (w->service);
    free (w);
    *item = NULL;
}

//  --------------------------------------------------------------------------
//  Constructor, destructor

bk_workers_t *
bk_workers_new (const bk_workers_policy_t *policy)
{
    assert (policy);
    bk_workers_t *self = lb_xcalloc (1, sizeof *self);
    self->policy = *policy;
    self->workers = zhashx_new ();
    zhashx_set_destructor (self->workers, s_worker_destroy);
    self->services = zhashx_new ();
    zhashx_set_destructor (self->services, s_service_destroy);
    return self;
}

void
bk_workers_destroy (bk_workers_t **self_p)
{
    assert (self_p);
    bk_workers_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->workers);
    zhashx_destroy (&self->services);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Services

//  Looks name up in "a=x,b=y"; copies the value into out. Returns 0 if found.
static int
s_override (const char *list, const char *name, char *out, size_t size)
{
    if (!list)
        return -1;
    size_t nlen = strlen (name);
    const char *p = list;
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *end = strchr (p, ',');
        if (!end)
            end = p + strlen (p);
        const char *eq = memchr (p, '=', (size_t) (end - p));
        if (eq && (size_t) (eq - p) == nlen && memcmp (p, name, nlen) == 0) {
            snprintf (out, size, "%.*s", (int) (end - eq - 1), eq + 1);
            return 0;
        }
        p = end;
    }
    return -1;
}

bk_service_t *
bk_workers_service (bk_workers_t *self, const char *name)
{
    assert (self && name);
    bk_service_t *svc = zhashx_lookup (self->services, name);
    if (svc)
        return svc;
    svc = lb_xcalloc (1, sizeof *svc);
    svc->name = lb_xstrdup (name);
    svc->idle = zlistx_new ();
    char value [64];
    double d;
    int64_t n;
    svc->lease_us = (int64_t) (self->policy.lease * 1e6);
    if (s_override (self->policy.service_lease, name, value, sizeof value) == 0
    &&  lb_config_parse_seconds (value, &d) == 0 && d > 0)
        svc->lease_us = (int64_t) (d * 1e6);
    svc->max_attempts = self->policy.attempts;
    if (s_override (self->policy.service_attempts, name, value, sizeof value) == 0
    &&  lb_config_parse_int (value, &n) == 0 && n >= 1 && n <= 1000)
        svc->max_attempts = (int) n;
    zhashx_insert (self->services, name, svc);
    return svc;
}

bk_service_t *
bk_workers_lookup_service (bk_workers_t *self, const char *name)
{
    assert (self && name);
    return zhashx_lookup (self->services, name);
}

bk_service_t *
bk_workers_first_service (bk_workers_t *self)
{
    assert (self);
    return zhashx_first (self->services);
}

bk_service_t *
bk_workers_next_service (bk_workers_t *self)
{
    assert (self);
    return zhashx_next (self->services);
}

//  --------------------------------------------------------------------------
//  Workers

bk_worker_t *
bk_workers_add (bk_workers_t *self, const char *key, zframe_t *identity,
                const char *service, int version, int64_t expiry)
{
    assert (self && key && identity && service);
    assert (!zhashx_lookup (self->workers, key));
    bk_worker_t *w = lb_xcalloc (1, sizeof *w);
    w->key = lb_xstrdup (key);
    w->identity = zframe_dup (identity);
    w->service = lb_xstrdup (service);
    w->version = version;
    w->expiry = expiry;
    zhashx_insert (self->workers, key, w);
    bk_workers_service (self, service)->workers++;
    bk_workers_idle (self, w);
    return w;
}

bk_worker_t *
bk_workers_find (bk_workers_t *self, const char *key)
{
    assert (self && key);
    return zhashx_lookup (self->workers, key);
}

void
bk_workers_remove (bk_workers_t *self, bk_worker_t **worker_p)
{
    assert (self && worker_p && *worker_p);
    bk_worker_t *w = *worker_p;
    bk_service_t *svc = bk_workers_service (self, w->service);
    if (w->idle_handle) {
        zlistx_delete (svc->idle, w->idle_handle);
        w->idle_handle = NULL;
    }
    svc->workers--;
    assert (zhashx_lookup (self->workers, w->key) == w);
    zhashx_delete (self->workers, w->key);     //  frees it
    *worker_p = NULL;
}

void
bk_workers_idle (bk_workers_t *self, bk_worker_t *worker)
{
    assert (self && worker);
    assert (!worker->idle_handle);
    worker->job = NULL;
    worker->hb_busy = false;
    worker->idle_handle = zlistx_add_end (bk_workers_service (self, worker->service)->idle, worker);
}

bk_worker_t *
bk_workers_take_idle (bk_workers_t *self, bk_service_t *service)
{
    assert (self && service);
    bk_worker_t *w = zlistx_first (service->idle);
    if (!w)
        return NULL;
    zlistx_delete (service->idle, w->idle_handle);
    w->idle_handle = NULL;
    return w;
}

bk_worker_t *
bk_workers_first (bk_workers_t *self)
{
    assert (self);
    return zhashx_first (self->workers);
}

bk_worker_t *
bk_workers_next (bk_workers_t *self)
{
    assert (self);
    return zhashx_next (self->workers);
}

size_t
bk_workers_size (bk_workers_t *self)
{
    assert (self);
    return zhashx_size (self->workers);
}

zlistx_t *
bk_workers_expired (bk_workers_t *self, int64_t now)
{
    assert (self);
    zlistx_t *gone = zlistx_new ();
    for (bk_worker_t *w = zhashx_first (self->workers); w; w = zhashx_next (self->workers)) {
        if (w->job && now > w->job->lease_until)
            zlistx_add_end (gone, w);
        else
        if ((!w->job || w->hb_busy) && now > w->expiry)
            zlistx_add_end (gone, w);
    }
    return gone;
}

//  --------------------------------------------------------------------------
//  Selftest

void
bk_workers_test (bool verbose)
{
    (void) verbose;
    bk_workers_policy_t policy = { .lease = 60, .service_lease = "train=2h, quick=1s",
                                   .attempts = 3, .service_attempts = "flaky=5" };
    bk_workers_t *ws = bk_workers_new (&policy);
    assert (ws && bk_workers_size (ws) == 0);
    assert (!bk_workers_lookup_service (ws, "echo"));

    //  Services: defaults and overrides, created once.
    bk_service_t *echo = bk_workers_service (ws, "echo");
    assert (echo && streq (echo->name, "echo") && echo->lease_us == 60000000 && echo->max_attempts == 3);
    assert (bk_workers_service (ws, "echo") == echo && bk_workers_lookup_service (ws, "echo") == echo);
    assert (bk_workers_service (ws, "train")->lease_us == 7200LL * 1000000);
    assert (bk_workers_service (ws, "quick")->lease_us == 1000000);
    assert (bk_workers_service (ws, "flaky")->max_attempts == 5);
    int services = 0;
    for (bk_service_t *s = bk_workers_first_service (ws); s; s = bk_workers_next_service (ws))
        services++;
    assert (services == 4);

    //  Two workers: idle in the order they came.
    zframe_t *id1 = zframe_new ("\x00\x01", 2), *id2 = zframe_new ("\x00\x02", 2);
    bk_worker_t *a = bk_workers_add (ws, "0001", id1, "echo", 1, 1000);
    bk_worker_t *b = bk_workers_add (ws, "0002", id2, "echo", 2, 5000);
    assert (a && b && a != b && bk_workers_size (ws) == 2 && echo->workers == 2);
    assert (zframe_eq (a->identity, id1) && a->identity != id1 && b->version == 2);
    assert (bk_workers_find (ws, "0001") == a && !bk_workers_find (ws, "0003"));
    assert (zlistx_size (echo->idle) == 2);
    assert (bk_workers_take_idle (ws, echo) == a);
    assert (bk_workers_take_idle (ws, echo) == b);
    assert (bk_workers_take_idle (ws, echo) == NULL);
    bk_workers_idle (ws, b);
    bk_workers_idle (ws, a);
    assert (bk_workers_take_idle (ws, echo) == b);      //  longest idle first
    int n = 0;
    for (bk_worker_t *w = bk_workers_first (ws); w; w = bk_workers_next (ws))
        n++;
    assert (n == 2);

    //  Expiry: b holds a job whose lease ends at 3000 and does not heartbeat.
    bk_job_t job = { .lease_until = 3000 };
    b->job = &job;
    zlistx_t *gone = bk_workers_expired (ws, 900);
    assert (zlistx_size (gone) == 0);
    zlistx_destroy (&gone);
    gone = bk_workers_expired (ws, 2000);              //  a silent while idle
    assert (zlistx_size (gone) == 1 && zlistx_first (gone) == a);
    zlistx_destroy (&gone);
    b->expiry = 100;                                    //  silent, but busy without heartbeats
    gone = bk_workers_expired (ws, 2000);
    assert (zlistx_size (gone) == 1 && zlistx_first (gone) == a);
    zlistx_destroy (&gone);
    b->hb_busy = true;                                  //  it heartbeated during the job, then went silent
    gone = bk_workers_expired (ws, 2000);
    assert (zlistx_size (gone) == 2);
    zlistx_destroy (&gone);
    b->hb_busy = false;
    gone = bk_workers_expired (ws, 4000);              //  past its lease
    assert (zlistx_size (gone) == 2);
    zlistx_destroy (&gone);

    //  Remove: off the idle list, the count down.
    bk_workers_remove (ws, &a);
    assert (a == NULL && bk_workers_size (ws) == 1 && echo->workers == 1 && zlistx_size (echo->idle) == 0);
    b->job = NULL;
    bk_workers_remove (ws, &b);
    assert (bk_workers_size (ws) == 0 && echo->workers == 0);

    zframe_destroy (&id1);
    zframe_destroy (&id2);
    bk_workers_destroy (&ws);
    bk_workers_destroy (&ws);
    assert (ws == NULL);
}
