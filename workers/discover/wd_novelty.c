/*  wd_novelty.c - fingerprints and MinHash over word 3-shingles. */
#include "wd_novelty.h"
#include "lb_mem.h"

#include <assert.h>
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    char *name;
    char fingerprint [65];
    wd_minhash_t sig;
} s_entry_t;

struct _wd_novelty_t {
    double threshold;
    s_entry_t *entries;
    size_t count, cap;
};

static uint64_t
s_mix (uint64_t x)
{
    //  splitmix64's finaliser
    x += 0x9e3779b97f4a7c15ull;
    x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
    x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
    return x ^ (x >> 31);
}

static uint64_t
s_fnv (const char *data, size_t len, uint64_t h)
{
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char) data [i];
        h *= 0x100000001b3ull;
    }
    return h;
}

static void
s_fold (wd_minhash_t *out, uint64_t shingle)
{
    for (int k = 0; k < WD_MINHASH_K; k++) {
        uint32_t h = (uint32_t) (s_mix (shingle ^ ((uint64_t) (k + 1) * 0x632be59bd9b4e019ull)) >> 32);
        if (h < out->v [k])
            out->v [k] = h;
    }
}

void
wd_minhash_compute (const char *text, wd_minhash_t *out)
{
    assert (text && out);
    for (int k = 0; k < WD_MINHASH_K; k++)
        out->v [k] = UINT32_MAX;
    //  Tokens: runs of letters and digits, lowercased; their hashes.
    size_t cap = 64, n = 0;
    uint64_t *tokens = lb_xmalloc (cap * sizeof *tokens);
    const char *p = text;
    while (*p) {
        while (*p && !isalnum ((unsigned char) *p))
            p++;
        if (!*p)
            break;
        char word [64];
        size_t len = 0;
        while (*p && isalnum ((unsigned char) *p)) {
            if (len < sizeof word)
                word [len++] = (char) tolower ((unsigned char) *p);
            p++;
        }
        if (n == cap) {
            cap *= 2;
            tokens = lb_xrealloc (tokens, cap * sizeof *tokens);
        }
        tokens [n++] = s_fnv (word, len, 0xcbf29ce484222325ull);
    }
    if (n < 3)
        for (size_t i = 0; i < n; i++)
            s_fold (out, tokens [i]);
    else
        for (size_t i = 0; i + 2 < n; i++)
            s_fold (out, s_mix (tokens [i]) ^ s_mix (tokens [i + 1] * 3) ^ s_mix (tokens [i + 2] * 7));
    free (tokens);
}

double
wd_minhash_similarity (const wd_minhash_t *a, const wd_minhash_t *b)
{
    assert (a && b);
    int same = 0;
    for (int k = 0; k < WD_MINHASH_K; k++)
        same += a->v [k] == b->v [k];
    return (double) same / WD_MINHASH_K;
}

void
wd_minhash_to_hex (const wd_minhash_t *sig, char hex [WD_MINHASH_HEX + 1])
{
    for (int k = 0; k < WD_MINHASH_K; k++)
        snprintf (hex + 8 * k, 9, "%08x", sig->v [k]);
}

int
wd_minhash_from_hex (const char *hex, wd_minhash_t *out)
{
    assert (hex && out);
    if (strlen (hex) != WD_MINHASH_HEX)
        return -1;
    for (int k = 0; k < WD_MINHASH_K; k++) {
        uint32_t v = 0;
        for (int i = 0; i < 8; i++) {
            char c = hex [8 * k + i];
            int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
            if (d < 0)
                return -1;
            v = v << 4 | (uint32_t) d;
        }
        out->v [k] = v;
    }
    return 0;
}

wd_novelty_t *
wd_novelty_new (double threshold)
{
    assert (threshold > 0 && threshold <= 1);
    wd_novelty_t *self = lb_xcalloc (1, sizeof *self);
    self->threshold = threshold;
    return self;
}

void
wd_novelty_destroy (wd_novelty_t **self_p)
{
    assert (self_p);
    wd_novelty_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++)
        free (self->entries [i].name);
    free (self->entries);
    free (self);
    *self_p = NULL;
}

void
wd_novelty_add (wd_novelty_t *self, const char *name, const char *fingerprint, const wd_minhash_t *sig)
{
    assert (self && name && fingerprint && sig);
    if (self->count == self->cap) {
        self->cap = self->cap ? 2 * self->cap : 64;
        self->entries = lb_xrealloc (self->entries, self->cap * sizeof *self->entries);
    }
    s_entry_t *e = &self->entries [self->count++];
    e->name = lb_xstrdup (name);
    snprintf (e->fingerprint, sizeof e->fingerprint, "%s", fingerprint);
    e->sig = *sig;
}

size_t
wd_novelty_size (wd_novelty_t *self)
{
    assert (self);
    return self->count;
}

wd_verdict_t
wd_novelty_check (wd_novelty_t *self, const char *fingerprint, const wd_minhash_t *sig,
                  double *similarity_p, char **reason_p)
{
    assert (self && fingerprint && sig);
    double best = 0;
    size_t best_i = 0;
    for (size_t i = 0; i < self->count; i++) {
        s_entry_t *e = &self->entries [i];
        if (strcmp (e->fingerprint, fingerprint) == 0) {
            if (similarity_p)
                *similarity_p = wd_minhash_similarity (&e->sig, sig);
            if (reason_p)
                *reason_p = lb_xasprintf ("duplicate: same sources, target and horizon as past task '%s' "
                                          "(fingerprint %.12s)", e->name, fingerprint);
            return WD_DUPLICATE;
        }
        double s = wd_minhash_similarity (&e->sig, sig);
        if (s > best) {
            best = s;
            best_i = i;
        }
    }
    if (similarity_p)
        *similarity_p = best;
    if (self->count && best >= self->threshold) {
        if (reason_p)
            *reason_p = lb_xasprintf ("near-duplicate: the hypothesis is %.2f similar to past task '%s' "
                                      "(threshold %.2f)", best, self->entries [best_i].name, self->threshold);
        return WD_NEAR_DUPLICATE;
    }
    return WD_NOVEL;
}

void
wd_novelty_test (bool verbose)
{
    const char *a = "Whether the Seattle sky rains tomorrow follows from today's temperature spread, "
                    "the wind and the season, because fronts arriving from the Pacific cool the air first.";
    //  The same idea, lightly reworded: a near-duplicate.
    const char *a2 = "Whether the Seattle sky rains tomorrow follows from today's temperature spread, "
                     "the wind and the season, because fronts arriving from the Pacific cool the air quickly.";
    //  Something else.
    const char *b = "Hourly trading volume spikes in small technology stocks precede a widening of the "
                    "next day's price range, as news flow and options activity lead realised volatility.";
    wd_minhash_t sa, sa2, sb, sa_again;
    wd_minhash_compute (a, &sa);
    wd_minhash_compute (a2, &sa2);
    wd_minhash_compute (b, &sb);
    wd_minhash_compute (a, &sa_again);
    assert (wd_minhash_similarity (&sa, &sa_again) == 1.0);
    double near = wd_minhash_similarity (&sa, &sa2);
    double far = wd_minhash_similarity (&sa, &sb);
    if (verbose)
        printf ("\n  near %.3f far %.3f\n", near, far);
    if (!(near >= 0.8 && far < 0.1))
        fprintf (stderr, "near %.3f far %.3f\n", near, far);
    assert (near >= 0.8 && far < 0.1);
    //  Case and punctuation do not matter.
    wd_minhash_t upper;
    wd_minhash_compute ("WHETHER the Seattle sky -- rains tomorrow!", &upper);
    wd_minhash_t lower;
    wd_minhash_compute ("whether the seattle sky rains tomorrow", &lower);
    assert (wd_minhash_similarity (&upper, &lower) == 1.0);
    //  Short and empty texts work.
    wd_minhash_t s1, s0;
    wd_minhash_compute ("rain", &s1);
    wd_minhash_compute ("", &s0);
    assert (wd_minhash_similarity (&s1, &s1) == 1.0);

    char hex [WD_MINHASH_HEX + 1];
    wd_minhash_to_hex (&sa, hex);
    assert (strlen (hex) == WD_MINHASH_HEX);
    wd_minhash_t back;
    assert (wd_minhash_from_hex (hex, &back) == 0 && memcmp (&back, &sa, sizeof sa) == 0);
    assert (wd_minhash_from_hex ("abc", &back) == -1);
    hex [5] = 'g';
    assert (wd_minhash_from_hex (hex, &back) == -1);

    wd_novelty_t *nov = wd_novelty_new (0.8);
    assert (wd_novelty_check (nov, "f1", &sa, NULL, NULL) == WD_NOVEL);   //  nothing tried yet
    wd_novelty_add (nov, "seattle_rain", "f1", &sa);
    //  Many unrelated past tasks first: the check scans them all.
    for (int i = 0; i < 500; i++) {
        char text [128], fp [32], name [32];
        snprintf (text, sizeof text, "task number %d predicts series %d from lagged values of %d", i, i * 7, i * 13);
        snprintf (fp, sizeof fp, "fp%d", i);
        snprintf (name, sizeof name, "filler_%d", i);
        wd_minhash_t s;
        wd_minhash_compute (text, &s);
        wd_novelty_add (nov, name, fp, &s);
    }
    wd_novelty_add (nov, "volume_range", "f2", &sb);
    assert (wd_novelty_size (nov) == 502);
    char *reason = NULL;
    double sim = 0;
    //  Exact duplicate: the fingerprint, however different the words.
    assert (wd_novelty_check (nov, "f2", &sa, &sim, &reason) == WD_DUPLICATE);
    assert (strstr (reason, "volume_range") && strstr (reason, "duplicate"));
    free (reason);
    //  Near-duplicate: a new fingerprint, nearly the same words.
    assert (wd_novelty_check (nov, "f3", &sa2, &sim, &reason) == WD_NEAR_DUPLICATE);
    assert (strstr (reason, "seattle_rain") && sim >= 0.8);
    if (verbose)
        printf ("  %s\n", reason);
    free (reason);
    //  Genuinely new.
    wd_minhash_t sc;
    wd_minhash_compute ("Monthly US manufacturing employment turns before the business cycle: its "
                        "direction over the next quarter follows construction and durable goods jobs.", &sc);
    reason = NULL;
    assert (wd_novelty_check (nov, "f4", &sc, &sim, &reason) == WD_NOVEL && reason == NULL);
    assert (sim < 0.8);
    wd_novelty_destroy (&nov);
    wd_novelty_destroy (&nov);
}
