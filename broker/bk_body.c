/*  bk_body.c - result classification and the broker's failure map.
*/
#include "bk_body.h"

#include "lb_mem.h"

#include <assert.h>
#include <msgpack.h>
#include <stdio.h>
#include <string.h>

static bool
s_key_is (const msgpack_object *key, const char *name)
{
    size_t len = strlen (name);
    return key->type == MSGPACK_OBJECT_STR && key->via.str.size == len
        && memcmp (key->via.str.ptr, name, len) == 0;
}

static const msgpack_object *
s_lookup (const msgpack_object *map, const char *name)
{
    for (uint32_t i = 0; i < map->via.map.size; i++)
        if (s_key_is (&map->via.map.ptr [i].key, name))
            return &map->via.map.ptr [i].val;
    return NULL;
}

static bool
s_str_is (const msgpack_object *o, const char *s)
{
    size_t len = strlen (s);
    return o->type == MSGPACK_OBJECT_STR && o->via.str.size == len && memcmp (o->via.str.ptr, s, len) == 0;
}

bk_result_t
bk_body_result (const uint8_t *data, size_t size, char *error, size_t error_size)
{
    assert (error && error_size > 0);
    error [0] = 0;
    if (size == 0 || ((data [0] & 0xf0) != 0x80 && data [0] != 0xde && data [0] != 0xdf))
        return BK_RESULT_OPAQUE;        //  not a map: skip the decoder
    msgpack_unpacked u;
    msgpack_unpacked_init (&u);
    size_t off = 0;
    bk_result_t result = BK_RESULT_OPAQUE;
    if (msgpack_unpack_next (&u, (const char *) data, size, &off) != MSGPACK_UNPACK_SUCCESS
    ||  off != size || u.data.type != MSGPACK_OBJECT_MAP)
        goto out;
    const msgpack_object *v = s_lookup (&u.data, "v");
    const msgpack_object *status = s_lookup (&u.data, "status");
    if (!v || v->type != MSGPACK_OBJECT_POSITIVE_INTEGER || v->via.u64 != 1
    ||  !status || status->type != MSGPACK_OBJECT_STR)
        goto out;
    if (s_str_is (status, "done"))
        result = BK_RESULT_DONE;
    else
    if (s_str_is (status, "retry"))
        result = BK_RESULT_RETRY;
    else
    if (s_str_is (status, "fail"))
        result = BK_RESULT_FAIL;
    else
        result = BK_RESULT_BAD;
    const msgpack_object *err = s_lookup (&u.data, "error");
    if (err && err->type == MSGPACK_OBJECT_MAP) {
        const msgpack_object *code = s_lookup (err, "code");
        const msgpack_object *msg = s_lookup (err, "message");
        int cl = code && code->type == MSGPACK_OBJECT_STR ? (int) (code->via.str.size > 64 ? 64 : code->via.str.size) : 0;
        int ml = msg && msg->type == MSGPACK_OBJECT_STR ? (int) (msg->via.str.size > 400 ? 400 : msg->via.str.size) : 0;
        snprintf (error, error_size, "%.*s%s%.*s", cl, cl ? code->via.str.ptr : "",
                  cl && ml ? ": " : "", ml, ml ? msg->via.str.ptr : "");
        //  Keep the text printable for logs and events.
        for (char *p = error; *p; p++)
            if ((unsigned char) *p < 0x20)
                *p = ' ';
    }
out:
    msgpack_unpacked_destroy (&u);
    return result;
}

static void
s_pack_str (msgpack_packer *pk, const char *s)
{
    size_t len = strlen (s);
    msgpack_pack_str (pk, len);
    msgpack_pack_str_body (pk, s, len);
}

uint8_t *
bk_body_failure (const char *id, const char *code, const char *message, size_t *size_p)
{
    msgpack_sbuffer sb;
    msgpack_sbuffer_init (&sb);
    msgpack_packer pk;
    msgpack_packer_init (&pk, &sb, msgpack_sbuffer_write);
    msgpack_pack_map (&pk, 6);
    s_pack_str (&pk, "v");
    msgpack_pack_uint8 (&pk, 1);
    s_pack_str (&pk, "id");
    s_pack_str (&pk, id);
    s_pack_str (&pk, "status");
    s_pack_str (&pk, "fail");
    s_pack_str (&pk, "outputs");
    msgpack_pack_map (&pk, 0);
    s_pack_str (&pk, "metrics");
    msgpack_pack_map (&pk, 0);
    s_pack_str (&pk, "error");
    msgpack_pack_map (&pk, 2);
    s_pack_str (&pk, "code");
    s_pack_str (&pk, code);
    s_pack_str (&pk, "message");
    s_pack_str (&pk, message ? message : "");
    uint8_t *out = lb_xmalloc (sb.size);
    memcpy (out, sb.data, sb.size);
    *size_p = sb.size;
    msgpack_sbuffer_destroy (&sb);
    return out;
}

void
bk_body_test (bool verbose)
{
    (void) verbose;
    char err [256];
    size_t size;
    uint8_t *fail = bk_body_failure ("0123456789abcdef0123456789abcdef", "dead", "worker crashed", &size);
    assert (bk_body_result (fail, size, err, sizeof err) == BK_RESULT_FAIL);
    assert (strcmp (err, "dead: worker crashed") == 0);
    //  Trailing byte: not ours.
    uint8_t *longer = lb_xmalloc (size + 1);
    memcpy (longer, fail, size);
    longer [size] = 0xc0;
    assert (bk_body_result (longer, size + 1, err, sizeof err) == BK_RESULT_OPAQUE);
    //  Truncated: not ours.
    assert (bk_body_result (fail, size - 3, err, sizeof err) == BK_RESULT_OPAQUE);
    free (longer);
    free (fail);
    //  Plain bytes
    assert (bk_body_result ((const uint8_t *) "hello", 5, err, sizeof err) == BK_RESULT_OPAQUE);
    assert (bk_body_result (NULL, 0, err, sizeof err) == BK_RESULT_OPAQUE);
    //  {v:1, status:"done"}, {v:1, status:"retry"}, {v:1, status:"weird"}, {v:2, status:"done"}
    const uint8_t done [] = { 0x82, 0xa1, 'v', 0x01, 0xa6, 's', 't', 'a', 't', 'u', 's', 0xa4, 'd', 'o', 'n', 'e' };
    assert (bk_body_result (done, sizeof done, err, sizeof err) == BK_RESULT_DONE && err [0] == 0);
    const uint8_t retry [] = { 0x82, 0xa1, 'v', 0x01, 0xa6, 's', 't', 'a', 't', 'u', 's', 0xa5, 'r', 'e', 't', 'r', 'y' };
    assert (bk_body_result (retry, sizeof retry, err, sizeof err) == BK_RESULT_RETRY);
    const uint8_t weird [] = { 0x82, 0xa1, 'v', 0x01, 0xa6, 's', 't', 'a', 't', 'u', 's', 0xa1, 'x' };
    assert (bk_body_result (weird, sizeof weird, err, sizeof err) == BK_RESULT_BAD);
    const uint8_t v2 [] = { 0x82, 0xa1, 'v', 0x02, 0xa6, 's', 't', 'a', 't', 'u', 's', 0xa4, 'd', 'o', 'n', 'e' };
    assert (bk_body_result (v2, sizeof v2, err, sizeof err) == BK_RESULT_OPAQUE);
}
