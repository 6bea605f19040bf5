/*  pr_rank.c - a training group's job fields (pr_rank.h). */
#include "pr_rank.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  Reads an integer param (a decimal string or an int). 1 when absent, 0 and
//  *out when read, -1 with err when present but not an integer.
static int
s_int (const pr_kv_t *params, const char *key, long long *out, char *err, size_t err_size)
{
    const pr_kv_entry_t *e = pr_kv_find (params, key);
    if (!e)
        return 1;
    if (e->type == PR_KV_INT) {
        *out = e->i;
        return 0;
    }
    if (e->type == PR_KV_STR && e->s && *e->s) {
        char *end = NULL;
        errno = 0;
        long long v = strtoll (e->s, &end, 10);
        if (errno == 0 && end && *end == 0) {
            *out = v;
            return 0;
        }
    }
    snprintf (err, err_size, "%s: '%s' is not an integer", key,
              e->type == PR_KV_STR && e->s ? e->s : "(not text)");
    return -1;
}

int
pr_rank_parse (const pr_kv_t *params, pr_rank_t *out, char *err, size_t err_size)
{
    assert (params && out && err);
    memset (out, 0, sizeof *out);
    out->ranks = 1;
    long long ranks = 1, rank = 0;
    int rc_ranks = s_int (params, "ranks", &ranks, err, err_size);
    if (rc_ranks < 0)
        return -1;
    if (ranks < 1 || ranks > PR_RANK_MAX) {
        snprintf (err, err_size, "ranks: %lld is outside 1..%d", ranks, PR_RANK_MAX);
        return -1;
    }
    int rc_rank = s_int (params, "rank", &rank, err, err_size);
    if (rc_rank < 0)
        return -1;
    if (rc_rank == 1 && ranks > 1) {
        snprintf (err, err_size, "rank: missing (ranks = %lld needs each job's rank 0..%lld)",
                  ranks, ranks - 1);
        return -1;
    }
    if (rank < 0 || rank >= ranks) {
        snprintf (err, err_size, "rank: %lld is outside 0..%lld (ranks = %lld)", rank, ranks - 1,
                  ranks);
        return -1;
    }
    const char *group = pr_kv_str (params, "group");
    if (pr_kv_find (params, "group") && !group) {
        snprintf (err, err_size, "group: not text");
        return -1;
    }
    if (ranks > 1 && (!group || !*group)) {
        snprintf (err, err_size, "group: missing (ranks = %lld: the group's id, rank 0's job id)",
                  ranks);
        return -1;
    }
    if (group && strlen (group) >= sizeof out->group) {
        snprintf (err, err_size, "group: longer than %zu bytes", sizeof out->group - 1);
        return -1;
    }
    const pr_kv_entry_t *id = pr_kv_find (params, "nccl_id");
    if (id && rank == 0) {
        snprintf (err, err_size, "nccl_id: given to rank 0, which makes the group's id itself");
        return -1;
    }
    if (!id && rank > 0) {
        snprintf (err, err_size, "nccl_id: missing (rank %lld of %lld needs rank 0's NCCL id)",
                  rank, ranks);
        return -1;
    }
    if (id) {
        char why [128];
        if (id->type != PR_KV_STR || !id->s) {
            snprintf (err, err_size, "nccl_id: not text");
            return -1;
        }
        if (pr_rank_id_parse (id->s, out->id, why, sizeof why)) {
            snprintf (err, err_size, "nccl_id: %s", why);
            return -1;
        }
        out->has_id = true;
    }
    out->ranks = (int) ranks;
    out->rank = (int) rank;
    snprintf (out->group, sizeof out->group, "%s", group ? group : "");
    return 0;
}

void
pr_rank_id_hex (const uint8_t id [PR_RANK_ID_BYTES], char *hex)
{
    static const char digits [] = "0123456789abcdef";
    for (size_t i = 0; i < PR_RANK_ID_BYTES; i++) {
        hex [2 * i] = digits [id [i] >> 4];
        hex [2 * i + 1] = digits [id [i] & 15];
    }
    hex [2 * PR_RANK_ID_BYTES] = 0;
}

static int
s_nibble (char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int
pr_rank_id_parse (const char *hex, uint8_t id [PR_RANK_ID_BYTES], char *err, size_t err_size)
{
    assert (hex && id);
    size_t len = strlen (hex);
    if (len != 2 * PR_RANK_ID_BYTES) {
        snprintf (err, err_size, "%zu characters, not %d hex digits (a %d-byte NCCL unique id)",
                  len, 2 * PR_RANK_ID_BYTES, PR_RANK_ID_BYTES);
        return -1;
    }
    for (size_t i = 0; i < PR_RANK_ID_BYTES; i++) {
        int hi = s_nibble (hex [2 * i]), lo = s_nibble (hex [2 * i + 1]);
        if (hi < 0 || lo < 0) {
            snprintf (err, err_size, "character %zu is not a hex digit", hi < 0 ? 2 * i + 1 : 2 * i + 2);
            return -1;
        }
        id [i] = (uint8_t) (hi << 4 | lo);
    }
    return 0;
}

void
pr_rank_shard (size_t n, int rank, int ranks, size_t *lo, size_t *hi)
{
    assert (ranks >= 1 && rank >= 0 && rank < ranks && lo && hi);
    *lo = n * (size_t) rank / (size_t) ranks;
    *hi = n * (size_t) (rank + 1) / (size_t) ranks;
}

//  --------------------------------------------------------------------------
//  Selftest

//  Parses params given as "k=v" strings; returns 0/-1 as pr_rank_parse.
static int
s_try (const char *const *kv, pr_rank_t *out, char *err, size_t err_size)
{
    pr_kv_t params = { 0 };
    for (; *kv; kv++) {
        const char *eq = strchr (*kv, '=');
        assert (eq);
        char key [64];
        snprintf (key, sizeof key, "%.*s", (int) (eq - *kv), *kv);
        pr_kv_set_str (&params, key, eq + 1);
    }
    int rc = pr_rank_parse (&params, out, err, err_size);
    pr_kv_release (&params);
    return rc;
}

void
pr_rank_test (bool verbose)
{
    (void) verbose;
    char err [256];
    pr_rank_t r;
    uint8_t id [PR_RANK_ID_BYTES];
    for (size_t i = 0; i < sizeof id; i++)
        id [i] = (uint8_t) (i * 7 + 3);
    char hex [2 * PR_RANK_ID_BYTES + 1];
    pr_rank_id_hex (id, hex);
    assert (strlen (hex) == 256 && strncmp (hex, "030a11", 6) == 0);
    uint8_t back [PR_RANK_ID_BYTES];
    assert (pr_rank_id_parse (hex, back, err, sizeof err) == 0 && memcmp (back, id, sizeof id) == 0);

    //  No fields: a group of one
    const char *none [] = { "family=mlp", NULL };
    assert (s_try (none, &r, err, sizeof err) == 0 && r.ranks == 1 && r.rank == 0 && !r.has_id);

    //  Rank 0 and rank 2 of 3
    const char *r0 [] = { "ranks=3", "rank=0", "group=run/train/1", NULL };
    assert (s_try (r0, &r, err, sizeof err) == 0 && r.ranks == 3 && r.rank == 0 && !r.has_id);
    assert (strcmp (r.group, "run/train/1") == 0);
    char idparam [300];
    snprintf (idparam, sizeof idparam, "nccl_id=%s", hex);
    const char *r2 [] = { "ranks=3", "rank=2", "group=run/train/1", idparam, NULL };
    assert (s_try (r2, &r, err, sizeof err) == 0 && r.rank == 2 && r.has_id);
    assert (memcmp (r.id, id, sizeof id) == 0);

    //  Bad values, each with its reason
    struct { const char *kv [5]; const char *want; } bad [] = {
        { { "ranks=3", "rank=3", "group=g", NULL }, "rank: 3 is outside 0..2" },
        { { "ranks=3", "rank=-1", "group=g", NULL }, "outside 0..2" },
        { { "ranks=2", "group=g", NULL }, "rank: missing" },
        { { "ranks=0", NULL }, "ranks: 0 is outside 1..64" },
        { { "ranks=65", "rank=0", "group=g", NULL }, "outside 1..64" },
        { { "ranks=two", NULL }, "ranks: 'two' is not an integer" },
        { { "ranks=2", "rank=1x", "group=g", NULL }, "rank: '1x' is not an integer" },
        { { "ranks=2", "rank=0", NULL }, "group: missing" },
        { { "ranks=2", "rank=1", "group=g", NULL }, "nccl_id: missing" },
        { { "ranks=2", "rank=1", "group=g", "nccl_id=abcd" }, "4 characters, not 256 hex digits" },
        { { "rank=0", "nccl_id=00", NULL }, "given to rank 0" },
        { { "rank=1", NULL }, "rank: 1 is outside 0..0" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        err [0] = 0;
        int rc = s_try (bad [i].kv, &r, err, sizeof err);
        if (verbose || rc == 0 || !strstr (err, bad [i].want))
            fprintf (stderr, "case %zu: rc %d err '%s' want '%s'\n", i, rc, err, bad [i].want);
        assert (rc == -1 && strstr (err, bad [i].want));
    }
    //  An id of the right length with a non-hex digit
    char badhex [2 * PR_RANK_ID_BYTES + 1];
    memcpy (badhex, hex, sizeof badhex);
    badhex [17] = 'g';
    assert (pr_rank_id_parse (badhex, back, err, sizeof err) == -1 && strstr (err, "character 18"));
    snprintf (idparam, sizeof idparam, "nccl_id=%s", badhex);
    const char *r3 [] = { "ranks=2", "rank=1", "group=g", idparam, NULL };
    assert (s_try (r3, &r, err, sizeof err) == -1 && strstr (err, "nccl_id: character 18"));

    //  Shards cover the batch, contiguous, sizes within one
    for (size_t n = 0; n < 40; n++)
        for (int ranks = 1; ranks <= 5; ranks++) {
            size_t next = 0;
            for (int k = 0; k < ranks; k++) {
                size_t lo, hi;
                pr_rank_shard (n, k, ranks, &lo, &hi);
                assert (lo == next && hi >= lo);
                assert (hi - lo == n / (size_t) ranks || hi - lo == n / (size_t) ranks + 1);
                next = hi;
            }
            assert (next == n);
        }
    size_t lo, hi;
    pr_rank_shard (1024, 1, 4, &lo, &hi);
    assert (lo == 256 && hi == 512);
}
