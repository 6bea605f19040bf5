/*  bk_body.h - what the broker reads in, and writes as, msgpack bodies
    (PROTOCOL.md section 5, "Results"; the shapes are proto/pr_job.h's).

    The broker never decodes job envelopes. It looks at a worker's final
    reply only to learn the outcome, and writes a result map itself when a
    job ends without one (dead, cancelled).
*/
#ifndef BK_BODY_H_INCLUDED
#define BK_BODY_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    BK_RESULT_OPAQUE = 0,       //  not our result map (a stock worker): done
    BK_RESULT_DONE,
    BK_RESULT_RETRY,
    BK_RESULT_FAIL,
    BK_RESULT_MALFORMED         //  ours (a map whose first key is "v") but it does
                                //  not decode: truncated, trailing bytes, bad types
} bk_result_t;

//  Classifies a one-frame reply body. For RETRY and FAIL, error gets
//  "code: message"; for MALFORMED, the decoder's reason. Always
//  NUL-terminated ("" when nothing to say). Never fails.
bk_result_t bk_body_result (const uint8_t *data, size_t size, char *error, size_t error_size);

//  Returns a new msgpack result (pr_result_t) for job id with status
//  "fail" and error {code, message}; caller frees; *size_p gets its size.
uint8_t *bk_body_failure (const char *id, const char *code, const char *message, size_t *size_p);

//  Selftest.
void bk_body_test (bool verbose);

#endif
