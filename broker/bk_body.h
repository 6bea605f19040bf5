/*  bk_body.h - what the broker reads in, and writes as, msgpack bodies
    (PROTOCOL.md section 5, "Results"; shapes in proto/pr_job.h).

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
    BK_RESULT_OPAQUE = 0,       //  not our result map: counts as done
    BK_RESULT_DONE,
    BK_RESULT_RETRY,
    BK_RESULT_FAIL,
    BK_RESULT_BAD               //  our map with an unknown status
} bk_result_t;

//  Classifies a one-frame reply body. When the map carries an error, its
//  "code: message" is written to error (always NUL-terminated; "" when
//  none). Never fails: anything that is not exactly our map is OPAQUE.
bk_result_t bk_body_result (const uint8_t *data, size_t size, char *error, size_t error_size);

//  Returns a new msgpack result map {v:1, id, status:"fail", outputs:{},
//  metrics:{}, error:{code, message}}; caller frees; *size_p gets its size.
uint8_t *bk_body_failure (const char *id, const char *code, const char *message, size_t *size_p);

//  Selftest.
void bk_body_test (bool verbose);

#endif
