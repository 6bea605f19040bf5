/*  fuzz_body.c - libFuzzer target for what the broker reads in worker
    replies: the result classifier and the packed-frame walker.
*/
#include "bk_body.h"
#include "bk_jobs.h"

#include <assert.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char err [128];
    bk_result_t r = bk_body_result (data, size, err, sizeof err);
    assert (r >= BK_RESULT_OPAQUE && r <= BK_RESULT_MALFORMED);
    assert (strlen (err) < sizeof err);
    (void) bk_jobs_unpack (data, size, NULL, NULL);
    return 0;
}
