/*  pr_job.c - msgpack codec for the job envelope, result and progress. */
#include "pr_job.h"
#include "lb_mem.h"

#include <assert.h>
#include <math.h>
#include <msgpack.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  --------------------------------------------------------------------------
//  pr_kv

static pr_kv_entry_t *
s_kv_slot (pr_kv_t *kv, const char *key)
{
    assert (kv && key);
    for (size_t i = 0; i < kv->count; i++)
        if (strcmp (kv->entries [i].key, key) == 0) {
            free (kv->entries [i].s);
            kv->entries [i].s = NULL;
            return &kv->entries [i];
        }
    kv->entries = lb_xrealloc (kv->entries, (kv->count + 1) * sizeof *kv->entries);
    pr_kv_entry_t *entry = &kv->entries [kv->count++];
    memset (entry, 0, sizeof *entry);
    entry->key = lb_xstrdup (key);
    return entry;
}

void
pr_kv_set_str (pr_kv_t *kv, const char *key, const char *value)
{
    assert (value);
    pr_kv_entry_t *entry = s_kv_slot (kv, key);
    entry->type = PR_KV_STR;
    entry->s = lb_xstrdup (value);
}

void
pr_kv_set_int (pr_kv_t *kv, const char *key, int64_t value)
{
    pr_kv_entry_t *entry = s_kv_slot (kv, key);
    entry->type = PR_KV_INT;
    entry->i = value;
}

void
pr_kv_set_real (pr_kv_t *kv, const char *key, double value)
{
    pr_kv_entry_t *entry = s_kv_slot (kv, key);
    entry->type = PR_KV_REAL;
    entry->d = value;
}

void
pr_kv_set_bool (pr_kv_t *kv, const char *key, bool value)
{
    pr_kv_entry_t *entry = s_kv_slot (kv, key);
    entry->type = PR_KV_BOOL;
    entry->b = value;
}

const pr_kv_entry_t *
pr_kv_find (const pr_kv_t *kv, const char *key)
{
    assert (kv && key);
    for (size_t i = 0; i < kv->count; i++)
        if (strcmp (kv->entries [i].key, key) == 0)
            return &kv->entries [i];
    return NULL;
}

const char *
pr_kv_str (const pr_kv_t *kv, const char *key)
{
    const pr_kv_entry_t *entry = pr_kv_find (kv, key);
    return entry && entry->type == PR_KV_STR ? entry->s : NULL;
}

int
pr_kv_int (const pr_kv_t *kv, const char *key, int64_t *out)
{
    const pr_kv_entry_t *entry = pr_kv_find (kv, key);
    if (!entry || entry->type != PR_KV_INT)
        return -1;
    *out = entry->i;
    return 0;
}

int
pr_kv_real (const pr_kv_t *kv, const char *key, double *out)
{
    const pr_kv_entry_t *entry = pr_kv_find (kv, key);
    if (!entry || (entry->type != PR_KV_REAL && entry->type != PR_KV_INT))
        return -1;
    *out = entry->type == PR_KV_REAL ? entry->d : (double) entry->i;
    return 0;
}

int
pr_kv_bool (const pr_kv_t *kv, const char *key, bool *out)
{
    const pr_kv_entry_t *entry = pr_kv_find (kv, key);
    if (!entry || entry->type != PR_KV_BOOL)
        return -1;
    *out = entry->b;
    return 0;
}

void
pr_kv_release (pr_kv_t *kv)
{
    assert (kv);
    for (size_t i = 0; i < kv->count; i++) {
        free (kv->entries [i].key);
        free (kv->entries [i].s);
    }
    free (kv->entries);
    kv->entries = NULL;
    kv->count = 0;
}

//  --------------------------------------------------------------------------
//  Encoding helpers

static void
s_pack_cstr (msgpack_packer *pk, const char *text)
{
    size_t len = strlen (text);
    msgpack_pack_str (pk, len);
    msgpack_pack_str_body (pk, text, len);
}

static void
s_pack_kv (msgpack_packer *pk, const pr_kv_t *kv)
{
    msgpack_pack_map (pk, kv->count);
    for (size_t i = 0; i < kv->count; i++) {
        const pr_kv_entry_t *entry = &kv->entries [i];
        s_pack_cstr (pk, entry->key);
        switch (entry->type) {
            case PR_KV_STR: s_pack_cstr (pk, entry->s); break;
            case PR_KV_INT: msgpack_pack_int64 (pk, entry->i); break;
            case PR_KV_REAL: msgpack_pack_double (pk, entry->d); break;
            case PR_KV_BOOL:
                if (entry->b)
                    msgpack_pack_true (pk);
                else
                    msgpack_pack_false (pk);
                break;
        }
    }
}

//  Starts a body of entries map entries (counting "v" and "id", which it
//  writes) in sbuf through pk.
static void
s_begin (msgpack_sbuffer *sbuf, msgpack_packer *pk, size_t entries, const char *id)
{
    msgpack_sbuffer_init (sbuf);
    msgpack_packer_init (pk, sbuf, msgpack_sbuffer_write);
    msgpack_pack_map (pk, entries);
    s_pack_cstr (pk, "v");
    msgpack_pack_int (pk, PR_JOB_VERSION);
    s_pack_cstr (pk, "id");
    s_pack_cstr (pk, id);
}

static uint8_t *
s_finish (msgpack_sbuffer *sbuf, size_t *size)
{
    *size = sbuf->size;
    uint8_t *data = lb_xmalloc (sbuf->size);
    memcpy (data, sbuf->data, sbuf->size);
    msgpack_sbuffer_destroy (sbuf);
    return data;
}

//  --------------------------------------------------------------------------
//  Decoding helpers: each returns 0, or -1 after writing why into err.

typedef struct {
    char *err;
    size_t err_size;
} s_ctx_t;

static int
s_fail (s_ctx_t *ctx, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static int
s_fail (s_ctx_t *ctx, const char *fmt, ...)
{
    if (ctx->err && ctx->err_size) {
        va_list args;
        va_start (args, fmt);
        vsnprintf (ctx->err, ctx->err_size, fmt, args);
        va_end (args);
    }
    return -1;
}

static bool
s_is_key (const msgpack_object *obj, const char *key)
{
    size_t len = strlen (key);
    return obj->type == MSGPACK_OBJECT_STR && obj->via.str.size == len
        && memcmp (obj->via.str.ptr, key, len) == 0;
}

static int
s_get_str (s_ctx_t *ctx, const char *field, const msgpack_object *obj, size_t max, char **out)
{
    if (obj->type != MSGPACK_OBJECT_STR)
        return s_fail (ctx, "'%s' must be a string", field);
    if (obj->via.str.size > max)
        return s_fail (ctx, "'%s' is longer than %zu bytes", field, max);
    if (memchr (obj->via.str.ptr, 0, obj->via.str.size))
        return s_fail (ctx, "'%s' contains a NUL byte", field);
    free (*out);
    *out = lb_xstrndup (obj->via.str.ptr, obj->via.str.size);
    return 0;
}

static int
s_get_int (s_ctx_t *ctx, const char *field, const msgpack_object *obj, int64_t *out)
{
    if (obj->type == MSGPACK_OBJECT_POSITIVE_INTEGER) {
        if (obj->via.u64 > INT64_MAX)
            return s_fail (ctx, "'%s' is too large", field);
        *out = (int64_t) obj->via.u64;
        return 0;
    }
    if (obj->type == MSGPACK_OBJECT_NEGATIVE_INTEGER) {
        *out = obj->via.i64;
        return 0;
    }
    return s_fail (ctx, "'%s' must be an integer", field);
}

static int
s_get_real (s_ctx_t *ctx, const char *field, const msgpack_object *obj, double *out)
{
    int64_t i = 0;
    if (obj->type == MSGPACK_OBJECT_FLOAT64 || obj->type == MSGPACK_OBJECT_FLOAT32)
        *out = obj->via.f64;
    else
    if (s_get_int (ctx, field, obj, &i) == 0)
        *out = (double) i;
    else
        return s_fail (ctx, "'%s' must be a number", field);
    return 0;
}

static int
s_get_bool (s_ctx_t *ctx, const char *field, const msgpack_object *obj, bool *out)
{
    if (obj->type != MSGPACK_OBJECT_BOOLEAN)
        return s_fail (ctx, "'%s' must be a boolean", field);
    *out = obj->via.boolean;
    return 0;
}

//  Which value types a kv map accepts.
#define S_KV_SCALARS 0
#define S_KV_STRINGS 1
#define S_KV_REALS   2

static int
s_get_kv (s_ctx_t *ctx, const char *field, const msgpack_object *obj, int accept, pr_kv_t *kv)
{
    if (obj->type != MSGPACK_OBJECT_MAP)
        return s_fail (ctx, "'%s' must be a map", field);
    if (obj->via.map.size > PR_JOB_MAX_ENTRIES)
        return s_fail (ctx, "'%s' has more than %d entries", field, PR_JOB_MAX_ENTRIES);
    for (uint32_t i = 0; i < obj->via.map.size; i++) {
        const msgpack_object *key = &obj->via.map.ptr [i].key;
        const msgpack_object *val = &obj->via.map.ptr [i].val;
        char *name = NULL;
        if (s_get_str (ctx, field, key, PR_JOB_MAX_KEY, &name))
            return s_fail (ctx, "'%s' has a key that is not a string of at most %d bytes",
                           field, PR_JOB_MAX_KEY);
        if (pr_kv_find (kv, name)) {
            s_fail (ctx, "'%s' repeats the key '%s'", field, name);
            free (name);
            return -1;
        }
        int rc = 0;
        if (val->type == MSGPACK_OBJECT_STR && accept != S_KV_REALS) {
            char *text = NULL;
            rc = s_get_str (ctx, name, val, PR_JOB_MAX_STRING, &text);
            if (rc == 0)
                pr_kv_set_str (kv, name, text);
            free (text);
        }
        else
        if ((val->type == MSGPACK_OBJECT_POSITIVE_INTEGER || val->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
            && accept == S_KV_SCALARS) {
            int64_t n = 0;
            rc = s_get_int (ctx, name, val, &n);
            if (rc == 0)
                pr_kv_set_int (kv, name, n);
        }
        else
        if ((val->type == MSGPACK_OBJECT_FLOAT64 || val->type == MSGPACK_OBJECT_FLOAT32
             || val->type == MSGPACK_OBJECT_POSITIVE_INTEGER || val->type == MSGPACK_OBJECT_NEGATIVE_INTEGER)
            && accept != S_KV_STRINGS) {
            double d;
            rc = s_get_real (ctx, name, val, &d);
            if (rc == 0)
                pr_kv_set_real (kv, name, d);
        }
        else
        if (val->type == MSGPACK_OBJECT_BOOLEAN && accept == S_KV_SCALARS)
            pr_kv_set_bool (kv, name, val->via.boolean);
        else
            rc = s_fail (ctx, "'%s.%s' has a value of the wrong type", field, name);
        free (name);
        if (rc)
            return -1;
    }
    return 0;
}

//  Walks the msgpack bytes without allocating and checks that no container
//  declares more elements than there are bytes left (each element takes at
//  least one). msgpack-c allocates a container's whole array up front, so
//  an 8-byte "map32 of 4 billion entries" would otherwise ask for 64 GB.
//  Returns 0, or -1 (malformed, truncated or lying about its size).
static int
s_bounded (const uint8_t *p, size_t size)
{
    size_t pos = 0, pending = 1;
    while (pending > 0) {
        if (pos >= size)
            return -1;
        uint8_t b = p [pos];
        size_t head = 1, len = 0, count = 0, need = 0;
        if (b <= 0x7f || b >= 0xe0 || b == 0xc0 || b == 0xc2 || b == 0xc3)
            ;
        else
        if (b >= 0x80 && b <= 0x8f)
            count = 2 * (size_t) (b & 0x0f);
        else
        if (b >= 0x90 && b <= 0x9f)
            count = b & 0x0f;
        else
        if (b >= 0xa0 && b <= 0xbf)
            len = b & 0x1f;
        else {
            switch (b) {
                case 0xc4: case 0xd9: need = 1; break;                  //  bin8, str8
                case 0xc5: case 0xda: need = 2; break;                  //  bin16, str16
                case 0xc6: case 0xdb: need = 4; break;                  //  bin32, str32
                case 0xc7: need = 1; len = 1; break;                    //  ext8 (+type)
                case 0xc8: need = 2; len = 1; break;
                case 0xc9: need = 4; len = 1; break;
                case 0xca: len = 4; break;
                case 0xcb: len = 8; break;
                case 0xcc: case 0xd0: len = 1; break;
                case 0xcd: case 0xd1: len = 2; break;
                case 0xce: case 0xd2: len = 4; break;
                case 0xcf: case 0xd3: len = 8; break;
                case 0xd4: len = 2; break;
                case 0xd5: len = 3; break;
                case 0xd6: len = 5; break;
                case 0xd7: len = 9; break;
                case 0xd8: len = 17; break;
                case 0xdc: case 0xdd: case 0xde: case 0xdf:
                    need = b == 0xdc || b == 0xde ? 2 : 4;
                    break;
                default:
                    return -1;                                          //  0xc1
            }
            if (size - pos - 1 < need)
                return -1;
            size_t n = 0;
            for (size_t i = 0; i < need; i++)
                n = n << 8 | p [pos + 1 + i];
            head += need;
            if (b >= 0xdc && b <= 0xdf)
                count = b >= 0xde ? 2 * n : n;
            else
            if (need)
                len += n;
        }
        if (size - pos < head || size - pos - head < len)
            return -1;
        pos += head + len;
        pending--;
        if (pending + count > size - pos)
            return -1;
        pending += count;
    }
    return 0;
}

//  Unpacks data into *msg and checks the common frame: one map, no
//  trailing bytes, "v" first and supported. Returns 0 or -1.
static int
s_open (s_ctx_t *ctx, const void *data, size_t size, msgpack_unpacked *msg)
{
    msgpack_unpacked_init (msg);
    if (!data || size == 0)
        return s_fail (ctx, "empty body");
    if (size > PR_JOB_MAX_BODY)
        return s_fail (ctx, "body of %zu bytes is over the %d byte limit", size, PR_JOB_MAX_BODY);
    if (s_bounded (data, size))
        return s_fail (ctx, "malformed or truncated msgpack");
    size_t offset = 0;
    msgpack_unpack_return rc = msgpack_unpack_next (msg, data, size, &offset);
    if (rc == MSGPACK_UNPACK_CONTINUE)
        return s_fail (ctx, "truncated msgpack");
    if (rc != MSGPACK_UNPACK_SUCCESS)
        return s_fail (ctx, "malformed msgpack");
    if (offset != size)
        return s_fail (ctx, "%zu trailing bytes after the body", size - offset);
    const msgpack_object *root = &msg->data;
    if (root->type != MSGPACK_OBJECT_MAP)
        return s_fail (ctx, "body is not a map");
    if (root->via.map.size == 0 || !s_is_key (&root->via.map.ptr [0].key, "v"))
        return s_fail (ctx, "body does not start with the version key 'v'");
    int64_t version = 0;
    if (s_get_int (ctx, "v", &root->via.map.ptr [0].val, &version))
        return -1;
    if (version != PR_JOB_VERSION)
        return s_fail (ctx, "unsupported version %lld (this build speaks %d)", (long long) version,
                       PR_JOB_VERSION);
    //  No key twice.
    for (uint32_t i = 0; i < root->via.map.size; i++)
        for (uint32_t j = 0; j < i; j++) {
            const msgpack_object *a = &root->via.map.ptr [i].key, *b = &root->via.map.ptr [j].key;
            if (a->type == MSGPACK_OBJECT_STR && b->type == MSGPACK_OBJECT_STR
                && a->via.str.size == b->via.str.size
                && memcmp (a->via.str.ptr, b->via.str.ptr, a->via.str.size) == 0)
                return s_fail (ctx, "key '%.*s' appears twice", (int) a->via.str.size, a->via.str.ptr);
        }
    return 0;
}

static int
s_unknown (s_ctx_t *ctx, const msgpack_object *key)
{
    if (key->type == MSGPACK_OBJECT_STR)
        return s_fail (ctx, "unknown key '%.*s'", (int) (key->via.str.size > 64 ? 64 : key->via.str.size),
                       key->via.str.ptr);
    return s_fail (ctx, "a key is not a string");
}

bool
pr_job_is_ours (const void *data, size_t size)
{
    //  fixmap (0x80..0x8f), map16 (0xde), map32 (0xdf) followed by fixstr "v".
    const uint8_t *bytes = data;
    if (!data || size < 3)
        return false;
    size_t at = 1;
    if (bytes [0] == 0xde)
        at = 3;
    else
    if (bytes [0] == 0xdf)
        at = 5;
    else
    if ((bytes [0] & 0xf0) != 0x80)
        return false;
    return size > at + 1 && bytes [at] == 0xa1 && bytes [at + 1] == 'v';
}

//  --------------------------------------------------------------------------
//  Job

pr_job_t *
pr_job_new (const char *id, const char *run, const char *step, const char *service)
{
    assert (id && run && step && service);
    pr_job_t *self = lb_xcalloc (1, sizeof *self);
    self->id = lb_xstrdup (id);
    self->run = lb_xstrdup (run);
    self->step = lb_xstrdup (step);
    self->service = lb_xstrdup (service);
    self->attempt = 1;
    return self;
}

void
pr_job_destroy (pr_job_t **self_p)
{
    assert (self_p);
    pr_job_t *self = *self_p;
    if (!self)
        return;
    free (self->id);
    free (self->run);
    free (self->step);
    free (self->service);
    pr_kv_release (&self->params);
    free (self);
    *self_p = NULL;
}

uint8_t *
pr_job_encode (const pr_job_t *self, size_t *size)
{
    assert (self && size);
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    s_begin (&sbuf, &pk, 9, self->id);
    s_pack_cstr (&pk, "run");
    s_pack_cstr (&pk, self->run);
    s_pack_cstr (&pk, "step");
    s_pack_cstr (&pk, self->step);
    s_pack_cstr (&pk, "attempt");
    msgpack_pack_uint32 (&pk, self->attempt);
    s_pack_cstr (&pk, "deadline");
    msgpack_pack_int64 (&pk, self->deadline_us);
    s_pack_cstr (&pk, "service");
    s_pack_cstr (&pk, self->service);
    s_pack_cstr (&pk, "needs_gpu");
    if (self->needs_gpu)
        msgpack_pack_true (&pk);
    else
        msgpack_pack_false (&pk);
    s_pack_cstr (&pk, "params");
    s_pack_kv (&pk, &self->params);
    return s_finish (&sbuf, size);
}

pr_job_t *
pr_job_decode (const void *data, size_t size, char *err, size_t err_size)
{
    s_ctx_t ctx = { err, err_size };
    msgpack_unpacked msg;
    pr_job_t *self = lb_xcalloc (1, sizeof *self);
    int rc = s_open (&ctx, data, size, &msg);
    unsigned seen = 0;
    for (uint32_t i = 1; rc == 0 && i < msg.data.via.map.size; i++) {
        const msgpack_object *key = &msg.data.via.map.ptr [i].key;
        const msgpack_object *val = &msg.data.via.map.ptr [i].val;
        int64_t n = 0;
        if (s_is_key (key, "id")) {
            rc = s_get_str (&ctx, "id", val, 256, &self->id);
            seen |= 1;
        }
        else
        if (s_is_key (key, "run")) {
            rc = s_get_str (&ctx, "run", val, 256, &self->run);
            seen |= 2;
        }
        else
        if (s_is_key (key, "step")) {
            rc = s_get_str (&ctx, "step", val, 256, &self->step);
            seen |= 4;
        }
        else
        if (s_is_key (key, "service")) {
            rc = s_get_str (&ctx, "service", val, 256, &self->service);
            seen |= 8;
        }
        else
        if (s_is_key (key, "attempt")) {
            rc = s_get_int (&ctx, "attempt", val, &n);
            if (rc == 0 && (n < 1 || n > 1000000))
                rc = s_fail (&ctx, "'attempt' %lld is out of range", (long long) n);
            self->attempt = (uint32_t) n;
            seen |= 16;
        }
        else
        if (s_is_key (key, "deadline")) {
            rc = s_get_int (&ctx, "deadline", val, &self->deadline_us);
            if (rc == 0 && self->deadline_us < 0)
                rc = s_fail (&ctx, "'deadline' is negative");
        }
        else
        if (s_is_key (key, "needs_gpu"))
            rc = s_get_bool (&ctx, "needs_gpu", val, &self->needs_gpu);
        else
        if (s_is_key (key, "params"))
            rc = s_get_kv (&ctx, "params", val, S_KV_SCALARS, &self->params);
        else
            rc = s_unknown (&ctx, key);
    }
    if (rc == 0 && seen != 31) {
        const char *missing = !(seen & 1) ? "id" : !(seen & 2) ? "run" : !(seen & 4) ? "step"
                            : !(seen & 8) ? "service" : "attempt";
        rc = s_fail (&ctx, "missing key '%s'", missing);
    }
    msgpack_unpacked_destroy (&msg);
    if (rc)
        pr_job_destroy (&self);
    return self;
}

//  --------------------------------------------------------------------------
//  Result

static const char *s_status_names [] = { "done", "retry", "fail" };

const char *
pr_status_name (pr_status_t status)
{
    assert (status <= PR_STATUS_FAIL);
    return s_status_names [status];
}

int
pr_status_parse (const char *name, pr_status_t *status)
{
    for (int i = 0; i < 3; i++)
        if (name && strcmp (name, s_status_names [i]) == 0) {
            *status = (pr_status_t) i;
            return 0;
        }
    return -1;
}

pr_result_t *
pr_result_new (const char *id, pr_status_t status)
{
    assert (id);
    pr_result_t *self = lb_xcalloc (1, sizeof *self);
    self->id = lb_xstrdup (id);
    self->status = status;
    self->error_code = lb_xstrdup ("");
    self->error_message = lb_xstrdup ("");
    return self;
}

void
pr_result_destroy (pr_result_t **self_p)
{
    assert (self_p);
    pr_result_t *self = *self_p;
    if (!self)
        return;
    free (self->id);
    pr_kv_release (&self->outputs);
    pr_kv_release (&self->metrics);
    free (self->error_code);
    free (self->error_message);
    free (self);
    *self_p = NULL;
}

void
pr_result_set_error (pr_result_t *self, const char *code, const char *message)
{
    assert (self && code && message);
    free (self->error_code);
    free (self->error_message);
    self->error_code = lb_xstrdup (code);
    self->error_message = lb_xstrdup (message);
}

uint8_t *
pr_result_encode (const pr_result_t *self, size_t *size)
{
    assert (self && size);
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    s_begin (&sbuf, &pk, 6, self->id);
    s_pack_cstr (&pk, "status");
    s_pack_cstr (&pk, pr_status_name (self->status));
    s_pack_cstr (&pk, "outputs");
    s_pack_kv (&pk, &self->outputs);
    s_pack_cstr (&pk, "metrics");
    s_pack_kv (&pk, &self->metrics);
    s_pack_cstr (&pk, "error");
    msgpack_pack_map (&pk, 2);
    s_pack_cstr (&pk, "code");
    s_pack_cstr (&pk, self->error_code);
    s_pack_cstr (&pk, "message");
    s_pack_cstr (&pk, self->error_message);
    return s_finish (&sbuf, size);
}

pr_result_t *
pr_result_decode (const void *data, size_t size, char *err, size_t err_size)
{
    s_ctx_t ctx = { err, err_size };
    msgpack_unpacked msg;
    pr_result_t *self = lb_xcalloc (1, sizeof *self);
    int rc = s_open (&ctx, data, size, &msg);
    unsigned seen = 0;
    for (uint32_t i = 1; rc == 0 && i < msg.data.via.map.size; i++) {
        const msgpack_object *key = &msg.data.via.map.ptr [i].key;
        const msgpack_object *val = &msg.data.via.map.ptr [i].val;
        if (s_is_key (key, "id")) {
            rc = s_get_str (&ctx, "id", val, 256, &self->id);
            seen |= 1;
        }
        else
        if (s_is_key (key, "status")) {
            char *name = NULL;
            rc = s_get_str (&ctx, "status", val, 16, &name);
            if (rc == 0 && pr_status_parse (name, &self->status))
                rc = s_fail (&ctx, "'status' must be done, retry or fail, not '%s'", name);
            free (name);
            seen |= 2;
        }
        else
        if (s_is_key (key, "outputs"))
            rc = s_get_kv (&ctx, "outputs", val, S_KV_STRINGS, &self->outputs);
        else
        if (s_is_key (key, "metrics"))
            rc = s_get_kv (&ctx, "metrics", val, S_KV_REALS, &self->metrics);
        else
        if (s_is_key (key, "error")) {
            if (val->type != MSGPACK_OBJECT_MAP)
                rc = s_fail (&ctx, "'error' must be a map");
            for (uint32_t j = 0; rc == 0 && j < val->via.map.size; j++) {
                const msgpack_object *ekey = &val->via.map.ptr [j].key;
                const msgpack_object *eval = &val->via.map.ptr [j].val;
                if (s_is_key (ekey, "code"))
                    rc = s_get_str (&ctx, "error.code", eval, 64, &self->error_code);
                else
                if (s_is_key (ekey, "message"))
                    rc = s_get_str (&ctx, "error.message", eval, PR_JOB_MAX_STRING, &self->error_message);
                else
                    rc = s_unknown (&ctx, ekey);
            }
        }
        else
            rc = s_unknown (&ctx, key);
    }
    if (rc == 0 && seen != 3)
        rc = s_fail (&ctx, "missing key '%s'", (seen & 1) ? "status" : "id");
    msgpack_unpacked_destroy (&msg);
    if (rc == 0) {
        if (!self->error_code)
            self->error_code = lb_xstrdup ("");
        if (!self->error_message)
            self->error_message = lb_xstrdup ("");
    }
    else
        pr_result_destroy (&self);
    return self;
}

//  --------------------------------------------------------------------------
//  Progress

pr_progress_t *
pr_progress_new (const char *id, double percent, const char *stage, const char *message)
{
    assert (id && stage && message);
    pr_progress_t *self = lb_xcalloc (1, sizeof *self);
    self->id = lb_xstrdup (id);
    self->percent = percent;
    self->stage = lb_xstrdup (stage);
    self->message = lb_xstrdup (message);
    return self;
}

void
pr_progress_destroy (pr_progress_t **self_p)
{
    assert (self_p);
    pr_progress_t *self = *self_p;
    if (!self)
        return;
    free (self->id);
    free (self->stage);
    free (self->message);
    pr_kv_release (&self->metrics);
    pr_kv_release (&self->outputs);
    free (self);
    *self_p = NULL;
}

uint8_t *
pr_progress_encode (const pr_progress_t *self, size_t *size)
{
    assert (self && size);
    msgpack_sbuffer sbuf;
    msgpack_packer pk;
    //  outputs only when there are some: a version-1 body without them is
    //  what every earlier encoder wrote.
    s_begin (&sbuf, &pk, self->outputs.count ? 7 : 6, self->id);
    s_pack_cstr (&pk, "percent");
    msgpack_pack_double (&pk, self->percent);
    s_pack_cstr (&pk, "stage");
    s_pack_cstr (&pk, self->stage);
    s_pack_cstr (&pk, "message");
    s_pack_cstr (&pk, self->message);
    s_pack_cstr (&pk, "metrics");
    s_pack_kv (&pk, &self->metrics);
    if (self->outputs.count) {
        s_pack_cstr (&pk, "outputs");
        s_pack_kv (&pk, &self->outputs);
    }
    return s_finish (&sbuf, size);
}

pr_progress_t *
pr_progress_decode (const void *data, size_t size, char *err, size_t err_size)
{
    s_ctx_t ctx = { err, err_size };
    msgpack_unpacked msg;
    pr_progress_t *self = lb_xcalloc (1, sizeof *self);
    int rc = s_open (&ctx, data, size, &msg);
    unsigned seen = 0;
    for (uint32_t i = 1; rc == 0 && i < msg.data.via.map.size; i++) {
        const msgpack_object *key = &msg.data.via.map.ptr [i].key;
        const msgpack_object *val = &msg.data.via.map.ptr [i].val;
        if (s_is_key (key, "id")) {
            rc = s_get_str (&ctx, "id", val, 256, &self->id);
            seen |= 1;
        }
        else
        if (s_is_key (key, "percent")) {
            rc = s_get_real (&ctx, "percent", val, &self->percent);
            if (rc == 0 && !(self->percent >= 0 && self->percent <= 100))
                rc = s_fail (&ctx, "'percent' must be within 0..100");
        }
        else
        if (s_is_key (key, "stage"))
            rc = s_get_str (&ctx, "stage", val, 256, &self->stage);
        else
        if (s_is_key (key, "message"))
            rc = s_get_str (&ctx, "message", val, 4096, &self->message);
        else
        if (s_is_key (key, "metrics"))
            rc = s_get_kv (&ctx, "metrics", val, S_KV_REALS, &self->metrics);
        else
        if (s_is_key (key, "outputs"))
            rc = s_get_kv (&ctx, "outputs", val, S_KV_STRINGS, &self->outputs);
        else
            rc = s_unknown (&ctx, key);
    }
    if (rc == 0 && seen != 1)
        rc = s_fail (&ctx, "missing key 'id'");
    msgpack_unpacked_destroy (&msg);
    if (rc == 0) {
        if (!self->stage)
            self->stage = lb_xstrdup ("");
        if (!self->message)
            self->message = lb_xstrdup ("");
    }
    else
        pr_progress_destroy (&self);
    return self;
}

//  --------------------------------------------------------------------------
//  Selftest

//  Packs a hand-made map for the negative cases.
static uint8_t *
s_handmade (size_t *size, int variant)
{
    msgpack_sbuffer sbuf;
    msgpack_sbuffer_init (&sbuf);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sbuf, msgpack_sbuffer_write);
    switch (variant) {
        case 0:     //  not a map
            msgpack_pack_array (&pk, 1);
            msgpack_pack_int (&pk, 1);
            break;
        case 1:     //  no version
            msgpack_pack_map (&pk, 1);
            s_pack_cstr (&pk, "id");
            s_pack_cstr (&pk, "x");
            break;
        case 2:     //  future version
            msgpack_pack_map (&pk, 1);
            s_pack_cstr (&pk, "v");
            msgpack_pack_int (&pk, 99);
            break;
        case 3:     //  wrong type for run
            msgpack_pack_map (&pk, 2);
            s_pack_cstr (&pk, "v");
            msgpack_pack_int (&pk, 1);
            s_pack_cstr (&pk, "run");
            msgpack_pack_int (&pk, 5);
            break;
        case 4:     //  unknown key
            msgpack_pack_map (&pk, 2);
            s_pack_cstr (&pk, "v");
            msgpack_pack_int (&pk, 1);
            s_pack_cstr (&pk, "colour");
            s_pack_cstr (&pk, "blue");
            break;
        case 5:     //  repeated key
            msgpack_pack_map (&pk, 3);
            s_pack_cstr (&pk, "v");
            msgpack_pack_int (&pk, 1);
            s_pack_cstr (&pk, "id");
            s_pack_cstr (&pk, "a");
            s_pack_cstr (&pk, "id");
            s_pack_cstr (&pk, "b");
            break;
        default:    //  missing required keys
            msgpack_pack_map (&pk, 2);
            s_pack_cstr (&pk, "v");
            msgpack_pack_int (&pk, 1);
            s_pack_cstr (&pk, "id");
            s_pack_cstr (&pk, "a");
            break;
    }
    return s_finish (&sbuf, size);
}

void
pr_job_test (bool verbose)
{
    char err [256];

    //  Job round trip
    pr_job_t *job = pr_job_new ("r1/fetch/1", "r1", "fetch", "fetch");
    job->attempt = 2;
    job->deadline_us = INT64_C (1800000000000000);
    job->needs_gpu = true;
    pr_kv_set_str (&job->params, "task", "pattern_success_h4");
    pr_kv_set_int (&job->params, "rows", 160000);
    pr_kv_set_real (&job->params, "lr", 0.001);
    pr_kv_set_bool (&job->params, "resume", false);
    pr_kv_set_int (&job->params, "rows", 200000);          //  replaces
    assert (job->params.count == 4);
    size_t size;
    uint8_t *data = pr_job_encode (job, &size);
    assert (pr_job_is_ours (data, size));
    pr_job_t *copy = pr_job_decode (data, size, err, sizeof err);
    assert (copy);
    assert (strcmp (copy->id, "r1/fetch/1") == 0 && strcmp (copy->run, "r1") == 0);
    assert (strcmp (copy->step, "fetch") == 0 && strcmp (copy->service, "fetch") == 0);
    assert (copy->attempt == 2 && copy->deadline_us == job->deadline_us && copy->needs_gpu);
    int64_t n;
    double d;
    bool b = true;
    assert (strcmp (pr_kv_str (&copy->params, "task"), "pattern_success_h4") == 0);
    assert (pr_kv_int (&copy->params, "rows", &n) == 0 && n == 200000);
    assert (pr_kv_real (&copy->params, "lr", &d) == 0 && d == 0.001);
    assert (pr_kv_real (&copy->params, "rows", &d) == 0 && d == 200000);
    assert (pr_kv_bool (&copy->params, "resume", &b) == 0 && !b);
    assert (pr_kv_int (&copy->params, "task", &n) == -1);
    assert (pr_kv_str (&copy->params, "nope") == NULL);

    //  Every truncation is rejected, never crashes.
    for (size_t cut = 0; cut < size; cut++) {
        pr_job_t *bad = pr_job_decode (data, cut, err, sizeof err);
        assert (!bad);
    }
    //  Trailing bytes
    uint8_t *longer = lb_xmalloc (size + 1);
    memcpy (longer, data, size);
    longer [size] = 0xc0;
    assert (!pr_job_decode (longer, size + 1, err, sizeof err));
    assert (strstr (err, "trailing"));
    free (longer);
    //  Every single-byte corruption either decodes to a valid job or is rejected.
    for (size_t at = 0; at < size; at++) {
        uint8_t *flip = lb_xmalloc (size);
        memcpy (flip, data, size);
        flip [at] ^= 0x5a;
        pr_job_t *maybe = pr_job_decode (flip, size, err, sizeof err);
        pr_job_destroy (&maybe);
        free (flip);
    }
    free (data);
    pr_job_destroy (&copy);
    pr_job_destroy (&job);
    assert (job == NULL);

    //  Hand-made bad bodies
    const char *expect [] = { "not a map", "version key", "unsupported version 99",
                              "'run' must be a string", "unknown key 'colour'", "appears twice",
                              "missing key 'run'" };
    for (int variant = 0; variant < 7; variant++) {
        data = s_handmade (&size, variant);
        assert (!pr_job_decode (data, size, err, sizeof err));
        if (verbose)
            printf ("variant %d: %s\n", variant, err);
        assert (strstr (err, expect [variant]));
        free (data);
    }
    assert (!pr_job_decode (NULL, 0, err, sizeof err) && strstr (err, "empty"));
    assert (!pr_job_decode ("\xc1", 1, err, sizeof err));
    assert (!pr_job_is_ours ("hello", 5));

    //  Result round trip
    pr_result_t *result = pr_result_new ("r1/train/1", PR_STATUS_RETRY);
    pr_kv_set_str (&result->outputs, "model", "file:///var/artifacts/sha256/ab/abcd");
    pr_kv_set_real (&result->metrics, "auc", 0.71);
    pr_result_set_error (result, "E_TIMEOUT", "dataset read timed out");
    data = pr_result_encode (result, &size);
    pr_result_t *rcopy = pr_result_decode (data, size, err, sizeof err);
    assert (rcopy && rcopy->status == PR_STATUS_RETRY);
    assert (strcmp (pr_kv_str (&rcopy->outputs, "model"), "file:///var/artifacts/sha256/ab/abcd") == 0);
    assert (pr_kv_real (&rcopy->metrics, "auc", &d) == 0 && d == 0.71);
    assert (strcmp (rcopy->error_code, "E_TIMEOUT") == 0);
    assert (strcmp (rcopy->error_message, "dataset read timed out") == 0);
    for (size_t cut = 0; cut < size; cut++)
        assert (!pr_result_decode (data, cut, err, sizeof err));
    free (data);
    pr_result_destroy (&rcopy);
    pr_result_destroy (&result);
    pr_status_t status;
    assert (pr_status_parse ("fail", &status) == 0 && status == PR_STATUS_FAIL);
    assert (pr_status_parse ("maybe", &status) == -1);

    //  A job body is not a result.
    job = pr_job_new ("a", "b", "c", "d");
    data = pr_job_encode (job, &size);
    assert (!pr_result_decode (data, size, err, sizeof err));
    free (data);
    pr_job_destroy (&job);

    //  Progress round trip
    pr_progress_t *progress = pr_progress_new ("r1/train/1", 42.5, "epoch 3/10", "val auc 0.70");
    pr_kv_set_real (&progress->metrics, "loss", 0.61);
    data = pr_progress_encode (progress, &size);
    pr_progress_t *pcopy = pr_progress_decode (data, size, err, sizeof err);
    assert (pcopy && pcopy->percent == 42.5 && strcmp (pcopy->stage, "epoch 3/10") == 0);
    assert (pr_kv_real (&pcopy->metrics, "loss", &d) == 0 && d == 0.61);
    assert (pcopy->outputs.count == 0);
    free (data);
    pr_progress_destroy (&pcopy);
    //  outputs travel when set, and only strings
    pr_kv_set_str (&progress->outputs, "nccl_id", "00ff");
    data = pr_progress_encode (progress, &size);
    pcopy = pr_progress_decode (data, size, err, sizeof err);
    assert (pcopy && pcopy->outputs.count == 1);
    assert (strcmp (pr_kv_str (&pcopy->outputs, "nccl_id"), "00ff") == 0);
    free (data);
    pr_progress_destroy (&pcopy);
    pr_kv_set_real (&progress->outputs, "nccl_id", 1.5);
    data = pr_progress_encode (progress, &size);
    assert (!pr_progress_decode (data, size, err, sizeof err) && strstr (err, "outputs"));
    free (data);
    pr_kv_release (&progress->outputs);
    progress->percent = 140;
    data = pr_progress_encode (progress, &size);
    assert (!pr_progress_decode (data, size, err, sizeof err) && strstr (err, "0..100"));
    free (data);
    pr_progress_destroy (&progress);
}
