/*  bk_jobs.c - the broker's jobs: table, queues, state changes, records.
*/
#include "bk_jobs.h"

#include "lb_log.h"
#include "lb_mem.h"
#include "lb_selftest.h"

#include <assert.h>
#include <czmq.h>
#include <sodium.h>
#include <string.h>

//  Journal record types (PROTOCOL.md section 6).
enum {
    R_SUBMIT = 1,
    R_DONE = 2,
    R_RETRY = 3,
    R_DEAD = 4,
    R_CANCEL = 5,
    R_REQUEUE = 6,
    R_CLOSE = 7,
    R_SNAP = 8
};

//  A binary heap of jobs.
typedef struct {
    bk_job_t **items;
    size_t size, cap;
    int kind;                   //  1 queue (priority, seq), 2 delayed (not_before)
} s_heap_t;

typedef struct {
    char *name;
    s_heap_t queue;
    int queued, delayed, leased, dead;
} s_service_t;

struct _bk_jobs_t {
    bk_journal_t *journal;
    lb_clock_t clock;
    bk_jobs_policy_t policy;
    zhashx_t *jobs;             //  id -> bk_job_t
    zhashx_t *services;         //  name -> s_service_t
    s_heap_t delayed;
    uint64_t next_seq;
    //  Job ids: a keyed BLAKE2b of a counter under a random key drawn at
    //  start (as unguessable as random bytes, without a getrandom(2) per job).
    uint8_t id_key [crypto_generichash_KEYBYTES];
    uint64_t id_count;
    int64_t live_bytes;
    bool replaying;
};

//  --------------------------------------------------------------------------
//  Heaps

static bool
s_before (int kind, const bk_job_t *a, const bk_job_t *b)
{
    if (kind == 1) {
        if (a->priority != b->priority)
            return a->priority > b->priority;
        return a->seq < b->seq;
    }
    if (a->not_before_us != b->not_before_us)
        return a->not_before_us < b->not_before_us;
    return a->seq < b->seq;
}

static void
s_heap_set (s_heap_t *h, size_t i, bk_job_t *job)
{
    h->items [i] = job;
    job->heap_pos = i;
}

static void
s_heap_up (s_heap_t *h, size_t i)
{
    bk_job_t *job = h->items [i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!s_before (h->kind, job, h->items [parent]))
            break;
        s_heap_set (h, i, h->items [parent]);
        i = parent;
    }
    s_heap_set (h, i, job);
}

static void
s_heap_down (s_heap_t *h, size_t i)
{
    bk_job_t *job = h->items [i];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, best = i;
        bk_job_t *bj = job;
        if (l < h->size && s_before (h->kind, h->items [l], bj)) {
            best = l;
            bj = h->items [l];
        }
        if (r < h->size && s_before (h->kind, h->items [r], bj))
            best = r;
        if (best == i)
            break;
        s_heap_set (h, i, h->items [best]);
        i = best;
    }
    s_heap_set (h, i, job);
}

static void
s_heap_push (s_heap_t *h, bk_job_t *job)
{
    assert (job->heap == 0);
    if (h->size == h->cap) {
        h->cap = h->cap ? h->cap * 2 : 64;
        h->items = lb_xrealloc (h->items, h->cap * sizeof *h->items);
    }
    job->heap = h->kind;
    h->items [h->size] = job;
    job->heap_pos = h->size++;
    s_heap_up (h, job->heap_pos);
}

static void
s_heap_remove (s_heap_t *h, bk_job_t *job)
{
    assert (job->heap == h->kind);
    size_t i = job->heap_pos;
    assert (i < h->size && h->items [i] == job);
    job->heap = 0;
    h->size--;
    if (i == h->size)
        return;
    s_heap_set (h, i, h->items [h->size]);
    s_heap_down (h, i);
    s_heap_up (h, h->items [i]->heap_pos);
}

//  --------------------------------------------------------------------------
//  Services

static void
s_service_destroy (void **item)
{
    s_service_t *svc = *item;
    free (svc->name);
    free (svc->queue.items);
    free (svc);
    *item = NULL;
}

static s_service_t *
s_service (bk_jobs_t *self, const char *name)
{
    s_service_t *svc = zhashx_lookup (self->services, name);
    if (!svc) {
        svc = lb_xcalloc (1, sizeof *svc);
        svc->name = lb_xstrdup (name);
        svc->queue.kind = 1;
        zhashx_insert (self->services, name, svc);
    }
    return svc;
}

static int *
s_counter (s_service_t *svc, bk_job_state_t state)
{
    switch (state) {
        case BK_JOB_QUEUED:  return &svc->queued;
        case BK_JOB_DELAYED: return &svc->delayed;
        case BK_JOB_LEASED:  return &svc->leased;
        case BK_JOB_DEAD:    return &svc->dead;
        default:             return NULL;
    }
}

//  Moves job to state, keeping heaps and counters right.
static void
s_set_state (bk_jobs_t *self, bk_job_t *job, bk_job_state_t state)
{
    s_service_t *svc = s_service (self, job->service);
    int *c = s_counter (svc, job->state);
    if (c && job->state)
        (*c)--;
    if (job->heap == 1)
        s_heap_remove (&svc->queue, job);
    else
    if (job->heap == 2)
        s_heap_remove (&self->delayed, job);
    if (state == BK_JOB_DELAYED && job->not_before_us <= lb_clock_wall (&self->clock))
        state = BK_JOB_QUEUED;
    job->state = state;
    if (state == BK_JOB_QUEUED)
        s_heap_push (&svc->queue, job);
    else
    if (state == BK_JOB_DELAYED)
        s_heap_push (&self->delayed, job);
    if (state != BK_JOB_LEASED)
        job->owner = NULL;
    c = s_counter (svc, state);
    if (c)
        (*c)++;
}

//  --------------------------------------------------------------------------
//  Record encoding

typedef struct {
    uint8_t *data;
    size_t len, cap;
} s_buf_t;

static void
s_put (s_buf_t *b, const void *data, size_t size)
{
    if (b->len + size > b->cap) {
        b->cap = (b->len + size) * 2 + 256;
        b->data = lb_xrealloc (b->data, b->cap);
    }
    if (size)
        memcpy (b->data + b->len, data, size);
    b->len += size;
}

static void
s_put_u64 (s_buf_t *b, uint64_t v)
{
    uint8_t p [8];
    for (int i = 0; i < 8; i++)
        p [i] = (uint8_t) (v >> (8 * i));
    s_put (b, p, 8);
}

static void
s_put_u32 (s_buf_t *b, uint32_t v)
{
    uint8_t p [4] = { (uint8_t) v, (uint8_t) (v >> 8), (uint8_t) (v >> 16), (uint8_t) (v >> 24) };
    s_put (b, p, 4);
}

static void
s_put_str (s_buf_t *b, const char *s)
{
    size_t len = s ? strlen (s) : 0;
    s_put_u32 (b, (uint32_t) len);
    s_put (b, s, len);
}

static void
s_put_blob (s_buf_t *b, const uint8_t *data, size_t size)
{
    s_put_u32 (b, (uint32_t) size);
    s_put (b, data, size);
}

static void
s_put_id (s_buf_t *b, const char *hex)
{
    uint8_t raw [16];
    size_t n = 0;
    int rc = sodium_hex2bin (raw, sizeof raw, hex, 32, NULL, &n, NULL);
    assert (rc == 0 && n == 16);
    s_put (b, raw, 16);
}

typedef struct {
    const uint8_t *p;
    size_t left;
    bool bad;
} s_rd_t;

static const uint8_t *
s_get (s_rd_t *r, size_t size)
{
    if (r->bad || r->left < size) {
        r->bad = true;
        return NULL;
    }
    const uint8_t *p = r->p;
    r->p += size;
    r->left -= size;
    return p;
}

static uint64_t
s_get_u64 (s_rd_t *r)
{
    const uint8_t *p = s_get (r, 8);
    uint64_t v = 0;
    if (p)
        for (int i = 7; i >= 0; i--)
            v = v << 8 | p [i];
    return v;
}

static uint32_t
s_get_u32 (s_rd_t *r)
{
    const uint8_t *p = s_get (r, 4);
    return p ? (uint32_t) p [0] | (uint32_t) p [1] << 8 | (uint32_t) p [2] << 16 | (uint32_t) p [3] << 24 : 0;
}

//  Returns a new string (caller frees) or NULL when bad. Empty -> "".
static char *
s_get_str (s_rd_t *r)
{
    uint32_t len = s_get_u32 (r);
    const uint8_t *p = s_get (r, len);
    if (!p)
        return NULL;
    if (memchr (p, 0, len)) {
        r->bad = true;
        return NULL;
    }
    return lb_xstrndup ((const char *) p, len);
}

static uint8_t *
s_get_blob (s_rd_t *r, size_t *size_p)
{
    uint32_t len = s_get_u32 (r);
    const uint8_t *p = s_get (r, len);
    if (!p)
        return NULL;
    uint8_t *copy = lb_xmalloc (len ? len : 1);
    memcpy (copy, p, len);
    *size_p = len;
    return copy;
}

static bool
s_get_id (s_rd_t *r, char *hex)
{
    const uint8_t *p = s_get (r, 16);
    if (!p)
        return false;
    sodium_bin2hex (hex, 33, p, 16);
    return true;
}

static void
s_record (bk_jobs_t *self, bk_job_t *job, int type, s_buf_t *b)
{
    if (job->durable && self->journal && !self->replaying)
        bk_journal_append (self->journal, type, b->data, b->len);
    free (b->data);
}

static void
s_record_id (bk_jobs_t *self, bk_job_t *job, int type)
{
    if (!job->durable || !self->journal || self->replaying)
        return;
    s_buf_t b = { 0 };
    s_put_id (&b, job->id);
    s_record (self, job, type, &b);
}

static void
s_encode_snap (bk_job_t *job, s_buf_t *b)
{
    s_put_id (b, job->id);
    uint8_t state = (uint8_t) (job->state == BK_JOB_LEASED ? BK_JOB_QUEUED : job->state);
    s_put (b, &state, 1);
    s_put_u64 (b, (uint64_t) job->submitted_us);
    s_put_u32 (b, (uint32_t) job->priority);
    s_put_u32 (b, (uint32_t) job->max_attempts);
    s_put_u32 (b, (uint32_t) job->attempts);
    s_put_u64 (b, (uint64_t) job->not_before_us);
    s_put_u64 (b, (uint64_t) job->dead_us);
    s_put_str (b, job->service);
    s_put_str (b, job->error);
    s_put_blob (b, job->body, job->body_size);
    s_put_blob (b, job->result, job->result_size);
}

//  --------------------------------------------------------------------------
//  Constructor, destructor

static void
s_job_free (bk_job_t *job)
{
    free (job->service);
    free (job->body);
    free (job->result);
    free (job->error);
    free (job->client);
    free (job->progress);
    free (job);
}

static void
s_job_destroy (void **item)
{
    s_job_free (*item);
    *item = NULL;
}

bk_jobs_t *
bk_jobs_new (bk_journal_t *journal, const lb_clock_t *clock, bk_jobs_policy_t policy)
{
    assert (clock);
    if (sodium_init () < 0)
        return NULL;
    bk_jobs_t *self = lb_xcalloc (1, sizeof *self);
    self->journal = journal;
    self->clock = *clock;
    self->policy = policy;
    randombytes_buf (self->id_key, sizeof self->id_key);
    self->jobs = zhashx_new ();
    zhashx_set_destructor (self->jobs, s_job_destroy);
    self->services = zhashx_new ();
    zhashx_set_destructor (self->services, s_service_destroy);
    self->delayed.kind = 2;
    return self;
}

void
bk_jobs_destroy (bk_jobs_t **self_p)
{
    assert (self_p);
    bk_jobs_t *self = *self_p;
    if (!self)
        return;
    zhashx_destroy (&self->jobs);
    zhashx_destroy (&self->services);
    free (self->delayed.items);
    free (self);
    *self_p = NULL;
}

//  --------------------------------------------------------------------------
//  Methods

static int64_t
s_job_bytes (bk_job_t *job)
{
    return (int64_t) (job->body_size + job->result_size + 128);
}

static bk_job_t *
s_insert (bk_jobs_t *self, const char *id, const char *service)
{
    bk_job_t *job = lb_xcalloc (1, sizeof *job);
    memcpy (job->id, id, 32);
    job->service = lb_xstrdup (service);
    job->seq = self->next_seq++;
    zhashx_insert (self->jobs, job->id, job);
    return job;
}

bk_job_t *
bk_jobs_submit (bk_jobs_t *self, const char *service, int priority, int max_attempts,
                int64_t not_before_us, const uint8_t *body, size_t body_size, bool durable)
{
    assert (self);
    assert (service);
    char id [33];
    do {
        uint8_t raw [16], count [8];
        uint64_t c = self->id_count++;
        for (int i = 0; i < 8; i++)
            count [i] = (uint8_t) (c >> (8 * i));
        crypto_generichash (raw, sizeof raw, count, sizeof count, self->id_key, sizeof self->id_key);
        sodium_bin2hex (id, sizeof id, raw, sizeof raw);
    } while (zhashx_lookup (self->jobs, id));
    bk_job_t *job = s_insert (self, id, service);
    job->durable = durable;
    job->priority = priority;
    job->max_attempts = max_attempts > 0 ? max_attempts : 1;
    job->submitted_us = lb_clock_wall (&self->clock);
    job->not_before_us = not_before_us;
    job->body = lb_xmalloc (body_size ? body_size : 1);
    memcpy (job->body, body, body_size);
    job->body_size = body_size;
    s_set_state (self, job, BK_JOB_DELAYED);
    if (durable) {
        self->live_bytes += s_job_bytes (job);
        s_buf_t b = { 0 };
        s_put_id (&b, job->id);
        s_put_u64 (&b, (uint64_t) job->submitted_us);
        s_put_u32 (&b, (uint32_t) priority);
        s_put_u32 (&b, (uint32_t) job->max_attempts);
        s_put_u64 (&b, (uint64_t) not_before_us);
        s_put_str (&b, service);
        s_put_blob (&b, body, body_size);
        s_record (self, job, R_SUBMIT, &b);
    }
    return job;
}

bk_job_t *
bk_jobs_find (bk_jobs_t *self, const char *id)
{
    assert (self);
    return zhashx_lookup (self->jobs, id);
}

bk_job_t *
bk_jobs_peek (bk_jobs_t *self, const char *service)
{
    assert (self);
    s_service_t *svc = zhashx_lookup (self->services, service);
    if (!svc || svc->queue.size == 0)
        return NULL;
    return svc->queue.items [0];
}

void
bk_jobs_lease (bk_jobs_t *self, bk_job_t *job, void *owner, int64_t lease_until)
{
    assert (self);
    assert (job && job->state == BK_JOB_QUEUED);
    s_set_state (self, job, BK_JOB_LEASED);
    job->owner = owner;
    job->leased_mono = lb_clock_mono (&self->clock);
    job->lease_until = lease_until;
}

static void
s_set_result (bk_jobs_t *self, bk_job_t *job, uint8_t *result, size_t size)
{
    if (job->durable)
        self->live_bytes -= (int64_t) job->result_size;
    free (job->result);
    job->result = result;
    job->result_size = result ? size : 0;
    if (job->durable)
        self->live_bytes += (int64_t) job->result_size;
}

void
bk_jobs_done (bk_jobs_t *self, bk_job_t *job, const uint8_t *result, size_t size)
{
    assert (self);
    assert (job && job->state == BK_JOB_LEASED);
    uint8_t *copy = lb_xmalloc (size ? size : 1);
    memcpy (copy, result, size);
    s_set_result (self, job, copy, size);
    s_set_state (self, job, BK_JOB_DONE);
    if (job->durable && self->journal && !self->replaying) {
        s_buf_t b = { 0 };
        s_put_id (&b, job->id);
        s_put_u32 (&b, (uint32_t) job->attempts);
        s_put_blob (&b, result, size);
        s_record (self, job, R_DONE, &b);
    }
}

bk_job_state_t
bk_jobs_fail (bk_jobs_t *self, bk_job_t *job, const char *error, bool permanent, int64_t *delay_us)
{
    assert (self);
    assert (job && job->state == BK_JOB_LEASED);
    assert (error);
    job->attempts++;
    free (job->error);
    job->error = lb_xstrdup (error);
    int64_t delay = 0;
    if (permanent || job->attempts >= job->max_attempts) {
        job->dead_us = lb_clock_wall (&self->clock);
        s_set_state (self, job, BK_JOB_DEAD);
        s_buf_t b = { 0 };
        s_put_id (&b, job->id);
        s_put_u32 (&b, (uint32_t) job->attempts);
        s_put_u64 (&b, (uint64_t) job->dead_us);
        s_put_str (&b, error);
        s_record (self, job, R_DEAD, &b);
    }
    else {
        double d = self->policy.retry_base;
        for (int i = 1; i < job->attempts && d < self->policy.retry_max; i++)
            d *= 2;
        if (d > self->policy.retry_max)
            d = self->policy.retry_max;
        //  Jitter: a random factor in [0.5, 1.0].
        d *= 0.5 + 0.5 * (double) randombytes_uniform (1000001) / 1e6;
        delay = (int64_t) (d * 1e6);
        job->not_before_us = lb_clock_wall (&self->clock) + delay;
        s_set_state (self, job, BK_JOB_DELAYED);
        s_buf_t b = { 0 };
        s_put_id (&b, job->id);
        s_put_u32 (&b, (uint32_t) job->attempts);
        s_put_u64 (&b, (uint64_t) job->not_before_us);
        s_put_str (&b, error);
        s_record (self, job, R_RETRY, &b);
    }
    if (delay_us)
        *delay_us = delay;
    return job->state;
}

void
bk_jobs_release (bk_jobs_t *self, bk_job_t *job)
{
    assert (self);
    assert (job && job->state == BK_JOB_LEASED);
    s_set_state (self, job, BK_JOB_QUEUED);
}

int
bk_jobs_cancel (bk_jobs_t *self, bk_job_t *job)
{
    assert (self);
    assert (job);
    if (job->state == BK_JOB_DONE || job->state == BK_JOB_DEAD || job->state == BK_JOB_CANCELLED)
        return -1;
    s_set_state (self, job, BK_JOB_CANCELLED);
    s_record_id (self, job, R_CANCEL);
    return 0;
}

int
bk_jobs_requeue (bk_jobs_t *self, bk_job_t *job)
{
    assert (self);
    assert (job);
    if (job->state != BK_JOB_DEAD)
        return -1;
    job->attempts = 0;
    job->not_before_us = 0;
    job->dead_us = 0;
    s_set_state (self, job, BK_JOB_QUEUED);
    s_record_id (self, job, R_REQUEUE);
    return 0;
}

void
bk_jobs_close (bk_jobs_t *self, bk_job_t *job)
{
    assert (self);
    assert (job);
    if (job->state == BK_JOB_QUEUED || job->state == BK_JOB_DELAYED || job->state == BK_JOB_LEASED)
        bk_jobs_cancel (self, job);
    s_record_id (self, job, R_CLOSE);
    s_set_state (self, job, BK_JOB_CANCELLED);
    if (job->durable)
        self->live_bytes -= s_job_bytes (job);
    zhashx_delete (self->jobs, job->id);
}

int
bk_jobs_tick (bk_jobs_t *self)
{
    assert (self);
    int moved = 0;
    int64_t now = lb_clock_wall (&self->clock);
    while (self->delayed.size > 0 && self->delayed.items [0]->not_before_us <= now) {
        s_set_state (self, self->delayed.items [0], BK_JOB_QUEUED);
        moved++;
    }
    return moved;
}

void
bk_jobs_each (bk_jobs_t *self, void (*fn) (void *arg, bk_job_t *job), void *arg)
{
    assert (self);
    for (bk_job_t *job = zhashx_first (self->jobs); job; job = zhashx_next (self->jobs))
        fn (arg, job);
}

size_t
bk_jobs_counts (bk_jobs_t *self, bk_jobs_counts_t *counts, size_t max)
{
    assert (self);
    size_t n = 0;
    for (s_service_t *svc = zhashx_first (self->services); svc && n < max; svc = zhashx_next (self->services)) {
        if (!svc->queued && !svc->delayed && !svc->leased && !svc->dead)
            continue;
        counts [n].service = svc->name;
        counts [n].queued = svc->queued;
        counts [n].delayed = svc->delayed;
        counts [n].leased = svc->leased;
        counts [n].dead = svc->dead;
        n++;
    }
    return n;
}

size_t
bk_jobs_size (bk_jobs_t *self)
{
    assert (self);
    return zhashx_size (self->jobs);
}

int64_t
bk_jobs_live_bytes (bk_jobs_t *self)
{
    assert (self);
    return self->live_bytes;
}

const char *
bk_job_state_name (bk_job_state_t state)
{
    switch (state) {
        case BK_JOB_QUEUED:    return "queued";
        case BK_JOB_DELAYED:   return "delayed";
        case BK_JOB_LEASED:    return "leased";
        case BK_JOB_DONE:      return "done";
        case BK_JOB_DEAD:      return "dead";
        case BK_JOB_CANCELLED: return "cancelled";
    }
    return "unknown";
}

uint8_t *
bk_jobs_pack (const uint8_t *const *data, const size_t *sizes, size_t count, size_t *size_p)
{
    s_buf_t b = { 0 };
    s_put_u32 (&b, (uint32_t) count);
    for (size_t i = 0; i < count; i++)
        s_put_blob (&b, data [i], sizes [i]);
    *size_p = b.len;
    return b.data;
}

int
bk_jobs_unpack (const uint8_t *packed, size_t size,
                void (*fn) (void *arg, const uint8_t *data, size_t size), void *arg)
{
    s_rd_t r = { packed, size, false };
    uint32_t count = s_get_u32 (&r);
    if (r.bad || count > size / 4)
        return -1;
    for (uint32_t i = 0; i < count; i++) {
        uint32_t len = s_get_u32 (&r);
        const uint8_t *p = s_get (&r, len);
        if (!p)
            return -1;
        if (fn)
            fn (arg, p, len);
    }
    return r.left == 0 ? (int) count : -1;
}

//  --------------------------------------------------------------------------
//  Replay and checkpoint

int
bk_jobs_apply_record (bk_jobs_t *self, int type, const uint8_t *data, size_t size)
{
    assert (self);
    s_rd_t r = { data, size, false };
    char id [33];
    if (!s_get_id (&r, id))
        return -1;
    bk_job_t *job = zhashx_lookup (self->jobs, id);
    int rc = 0;
    self->replaying = true;
    switch (type) {
        case R_SUBMIT:
        case R_SNAP: {
            uint8_t state = BK_JOB_QUEUED;
            if (type == R_SNAP) {
                const uint8_t *p = s_get (&r, 1);
                state = p ? *p : 0;
            }
            int64_t submitted = (int64_t) s_get_u64 (&r);
            int priority = (int32_t) s_get_u32 (&r);
            int max_attempts = (int32_t) s_get_u32 (&r);
            int attempts = type == R_SNAP ? (int32_t) s_get_u32 (&r) : 0;
            int64_t not_before = (int64_t) s_get_u64 (&r);
            int64_t dead_us = type == R_SNAP ? (int64_t) s_get_u64 (&r) : 0;
            char *service = s_get_str (&r);
            char *error = type == R_SNAP ? s_get_str (&r) : NULL;
            size_t body_size = 0, result_size = 0;
            uint8_t *body = s_get_blob (&r, &body_size);
            uint8_t *result = type == R_SNAP ? s_get_blob (&r, &result_size) : NULL;
            bool ok = !r.bad && r.left == 0 && service && *service
                   && state >= BK_JOB_QUEUED && state <= BK_JOB_CANCELLED && state != BK_JOB_LEASED
                   && max_attempts >= 1 && max_attempts <= 1000 && attempts >= 0
                   && priority >= -1000 && priority <= 1000
                   && bk_jobs_unpack (body, body_size, NULL, NULL) >= 0
                   && (!result || result_size == 0 || bk_jobs_unpack (result, result_size, NULL, NULL) >= 0);
            if (ok) {
                if (job)
                    bk_jobs_close (self, job);
                job = s_insert (self, id, service);
                job->durable = true;
                job->submitted_us = submitted;
                job->priority = priority;
                job->max_attempts = max_attempts;
                job->attempts = attempts;
                job->not_before_us = not_before;
                job->dead_us = dead_us;
                job->body = body;
                job->body_size = body_size;
                body = NULL;
                if (error && *error) {
                    job->error = error;
                    error = NULL;
                }
                if (result && result_size) {
                    job->result = result;
                    job->result_size = result_size;
                    result = NULL;
                }
                s_set_state (self, job, state == BK_JOB_QUEUED ? BK_JOB_DELAYED : (bk_job_state_t) state);
                self->live_bytes += s_job_bytes (job);
            }
            else
                rc = -1;
            free (service);
            free (error);
            free (body);
            free (result);
            break;
        }
        case R_DONE: {
            uint32_t attempts = s_get_u32 (&r);
            size_t rsize = 0;
            uint8_t *result = s_get_blob (&r, &rsize);
            if (r.bad || r.left || bk_jobs_unpack (result, rsize, NULL, NULL) < 0)
                rc = -1;
            else
            if (job && job->state != BK_JOB_DONE) {
                if (job->state != BK_JOB_QUEUED && job->state != BK_JOB_DELAYED && job->state != BK_JOB_LEASED)
                    s_set_state (self, job, BK_JOB_QUEUED);
                job->attempts = (int) attempts;
                s_set_result (self, job, result, rsize);
                result = NULL;
                s_set_state (self, job, BK_JOB_DONE);
            }
            free (result);
            break;
        }
        case R_RETRY:
        case R_DEAD: {
            uint32_t attempts = s_get_u32 (&r);
            int64_t t = (int64_t) s_get_u64 (&r);
            char *error = s_get_str (&r);
            if (r.bad || r.left)
                rc = -1;
            else
            if (job) {
                job->attempts = (int) attempts;
                free (job->error);
                job->error = error;
                error = NULL;
                if (type == R_RETRY) {
                    job->not_before_us = t;
                    s_set_state (self, job, BK_JOB_DELAYED);
                }
                else {
                    job->dead_us = t;
                    s_set_state (self, job, BK_JOB_DEAD);
                }
            }
            free (error);
            break;
        }
        case R_CANCEL:
        case R_REQUEUE:
        case R_CLOSE:
            if (r.left)
                rc = -1;
            else
            if (job) {
                if (type == R_CANCEL)
                    s_set_state (self, job, BK_JOB_CANCELLED);
                else
                if (type == R_REQUEUE) {
                    job->attempts = 0;
                    job->not_before_us = 0;
                    s_set_state (self, job, BK_JOB_QUEUED);
                }
                else
                    bk_jobs_close (self, job);
            }
            break;
        default:
            rc = -1;
    }
    self->replaying = false;
    return rc;
}

static int
s_replay_fn (void *arg, int type, const uint8_t *data, size_t size)
{
    return bk_jobs_apply_record (arg, type, data, size);
}

int64_t
bk_jobs_recover (bk_jobs_t *self, bk_journal_stats_t *stats)
{
    assert (self);
    assert (self->journal);
    if (bk_journal_replay (self->journal, s_replay_fn, self, stats))
        return -1;
    return (int64_t) zhashx_size (self->jobs);
}

int
bk_jobs_checkpoint (bk_jobs_t *self)
{
    assert (self);
    assert (self->journal);
    if (bk_journal_checkpoint_begin (self->journal))
        return -1;
    uint64_t count = 0;
    s_buf_t b = { 0 };
    for (bk_job_t *job = zhashx_first (self->jobs); job; job = zhashx_next (self->jobs)) {
        if (!job->durable)
            continue;
        b.len = 0;
        s_encode_snap (job, &b);
        bk_journal_append (self->journal, R_SNAP, b.data, b.len);
        count++;
    }
    free (b.data);
    return bk_journal_checkpoint_end (self->journal, count);
}


//  --------------------------------------------------------------------------
//  Selftest

void
bk_jobs_test (bool verbose)
{
    (void) verbose;
    char *dir = lb_selftest_tmpdir ("bk_jobs");
    lb_fakeclock_t fake = { 1000000, 1700000000000000 };
    lb_clock_t clock = lb_clock_fake (&fake);
    bk_jobs_policy_t policy = { 1.0, 60.0 };

    bk_journal_t *journal = bk_journal_new (dir, NULL);
    bk_jobs_t *jobs = bk_jobs_new (journal, &clock, policy);
    assert (bk_jobs_recover (jobs, NULL) == 0);
    assert (bk_jobs_checkpoint (jobs) == 0);

    const uint8_t *frames [] = { (const uint8_t *) "hello", (const uint8_t *) "" };
    size_t sizes [] = { 5, 0 };
    size_t psize;
    uint8_t *packed = bk_jobs_pack (frames, sizes, 2, &psize);
    assert (bk_jobs_unpack (packed, psize, NULL, NULL) == 2);
    assert (bk_jobs_unpack (packed, psize - 1, NULL, NULL) == -1);

    //  Priorities and FIFO
    bk_job_t *a = bk_jobs_submit (jobs, "svc", 0, 3, 0, packed, psize, true);
    bk_job_t *b = bk_jobs_submit (jobs, "svc", 5, 3, 0, packed, psize, true);
    bk_job_t *c = bk_jobs_submit (jobs, "svc", 0, 3, 0, packed, psize, true);
    bk_job_t *d = bk_jobs_submit (jobs, "svc", 0, 3, fake.wall_us + 10000000, packed, psize, true);
    bk_job_t *e = bk_jobs_submit (jobs, "other", 0, 1, 0, packed, psize, false);
    assert (a->state == BK_JOB_QUEUED && d->state == BK_JOB_DELAYED);
    assert (bk_jobs_peek (jobs, "svc") == b);
    int owner;
    bk_jobs_lease (jobs, b, &owner, 100);
    assert (bk_jobs_peek (jobs, "svc") == a);
    bk_jobs_done (jobs, b, packed, psize);
    assert (b->state == BK_JOB_DONE);
    bk_jobs_lease (jobs, a, &owner, 100);
    int64_t delay;
    assert (bk_jobs_fail (jobs, a, "boom", false, &delay) == BK_JOB_DELAYED);
    assert (delay >= 500000 && delay <= 1000000);
    assert (bk_jobs_peek (jobs, "svc") == c);
    bk_jobs_lease (jobs, c, &owner, 100);
    assert (bk_jobs_fail (jobs, c, "bad input", true, NULL) == BK_JOB_DEAD);
    assert (strcmp (c->error, "bad input") == 0);
    assert (bk_jobs_cancel (jobs, c) == -1);
    bk_jobs_lease (jobs, e, &owner, 100);
    bk_jobs_release (jobs, e);
    assert (e->state == BK_JOB_QUEUED);

    bk_jobs_counts_t counts [4];
    size_t n = bk_jobs_counts (jobs, counts, 4);
    assert (n == 2);
    fake.wall_us += 20000000;
    assert (bk_jobs_tick (jobs) == 2);
    assert (a->state == BK_JOB_QUEUED && d->state == BK_JOB_QUEUED);
    bk_jobs_lease (jobs, d, &owner, 100);
    char did [33];
    memcpy (did, d->id, 33);
    char aid [33], bid [33], cid [33];
    memcpy (aid, a->id, 33);
    memcpy (bid, b->id, 33);
    memcpy (cid, c->id, 33);
    assert (bk_journal_flush (journal) == 0);

    //  Replay into a new store: same states, lease turned back to queued,
    //  the direct job gone.
    bk_jobs_destroy (&jobs);
    bk_journal_destroy (&journal);
    journal = bk_journal_new (dir, NULL);
    jobs = bk_jobs_new (journal, &clock, policy);
    assert (bk_jobs_recover (jobs, NULL) == 4);
    assert (bk_jobs_find (jobs, bid)->state == BK_JOB_DONE);
    assert (bk_jobs_find (jobs, bid)->result_size == psize);
    assert (bk_jobs_find (jobs, cid)->state == BK_JOB_DEAD);
    assert (bk_jobs_find (jobs, aid)->state == BK_JOB_QUEUED);
    assert (bk_jobs_find (jobs, aid)->attempts == 1);
    assert (bk_jobs_find (jobs, did)->state == BK_JOB_QUEUED);
    //  Checkpoint, requeue, close, cancel; replay again.
    assert (bk_jobs_checkpoint (jobs) == 0);
    assert (bk_jobs_requeue (jobs, bk_jobs_find (jobs, cid)) == 0);
    bk_jobs_close (jobs, bk_jobs_find (jobs, bid));
    assert (bk_jobs_find (jobs, bid) == NULL);
    assert (bk_jobs_cancel (jobs, bk_jobs_find (jobs, did)) == 0);
    assert (bk_journal_flush (journal) == 0);
    bk_jobs_destroy (&jobs);
    bk_journal_destroy (&journal);
    journal = bk_journal_new (dir, NULL);
    jobs = bk_jobs_new (journal, &clock, policy);
    assert (bk_jobs_recover (jobs, NULL) == 3);
    assert (bk_jobs_find (jobs, cid)->state == BK_JOB_QUEUED);
    assert (bk_jobs_find (jobs, did)->state == BK_JOB_CANCELLED);
    assert (bk_jobs_live_bytes (jobs) > 0);
    //  Garbage records are refused.
    assert (bk_jobs_apply_record (jobs, R_SUBMIT, (const uint8_t *) "short", 5) == -1);
    assert (bk_jobs_apply_record (jobs, 99, packed, psize) == -1);
    free (packed);
    bk_jobs_destroy (&jobs);
    bk_journal_destroy (&journal);
    lb_selftest_rmtree (dir);
    free (dir);
}
