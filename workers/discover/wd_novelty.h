/*  wd_novelty.h - is a proposed task new? Compared with EVERY task ever
    tried, two ways:

    - its fingerprint (proto/pr_task.h: same sources, target and horizon) equals
      a past task's: a duplicate;
    - its hypothesis reads nearly like a past one's: the Jaccard similarity of
      their sets of word 3-shingles (lowercased letters and digits), estimated
      by a 128-value MinHash signature, is at least the threshold
      (discover.similarity): a near-duplicate.

    Signatures are small (512 bytes) and stored with each task, so the check
    against thousands of past tasks costs microseconds per task.
*/
#ifndef WD_NOVELTY_H_INCLUDED
#define WD_NOVELTY_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WD_MINHASH_K   128
#define WD_MINHASH_HEX (WD_MINHASH_K * 8)     //  hex characters of a signature

typedef struct {
    uint32_t v [WD_MINHASH_K];
} wd_minhash_t;

//  Computes the signature of text's word 3-shingles (texts of fewer than
//  three words use their words). Never fails.
void wd_minhash_compute (const char *text, wd_minhash_t *out);

//  Estimated Jaccard similarity in [0, 1].
double wd_minhash_similarity (const wd_minhash_t *a, const wd_minhash_t *b);

//  Writes the signature as WD_MINHASH_HEX hex characters and a NUL into hex.
void wd_minhash_to_hex (const wd_minhash_t *sig, char hex [WD_MINHASH_HEX + 1]);

//  Reads a signature back. Returns 0, or -1 if hex is not one.
int wd_minhash_from_hex (const char *hex, wd_minhash_t *out);

typedef enum {
    WD_NOVEL = 0,
    WD_DUPLICATE,           //  same fingerprint
    WD_NEAR_DUPLICATE       //  hypothesis too similar
} wd_verdict_t;

typedef struct _wd_novelty_t wd_novelty_t;

//  Returns an empty index with the similarity threshold (0 < t <= 1).
wd_novelty_t *wd_novelty_new (double threshold);

//  Destroys the index. Accepts NULL; sets *self_p to NULL.
void wd_novelty_destroy (wd_novelty_t **self_p);

//  Adds a past task (name and fingerprint are copied).
void wd_novelty_add (wd_novelty_t *self, const char *name, const char *fingerprint,
                     const wd_minhash_t *sig);

//  Number of past tasks held.
size_t wd_novelty_size (wd_novelty_t *self);

//  Checks a candidate against every past task. Returns the verdict; when it
//  is not WD_NOVEL and reason_p is not NULL, *reason_p says against which
//  task and why (caller frees). *similarity_p (may be NULL) receives the
//  highest similarity found.
wd_verdict_t wd_novelty_check (wd_novelty_t *self, const char *fingerprint,
                               const wd_minhash_t *sig, double *similarity_p, char **reason_p);

//  Selftest.
void wd_novelty_test (bool verbose);

#endif
