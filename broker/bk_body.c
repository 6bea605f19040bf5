/*  bk_body.c - result classification and the broker's failure result,
    both through proto/pr_job's strict codec.
*/
#include "bk_body.h"

#include "pr_job.h"

#include <assert.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bk_result_t
bk_body_result (const uint8_t *data, size_t size, char *error, size_t error_size)
{
    assert (error && error_size > 0);
    error [0] = 0;
    if (!pr_job_is_ours (data, size))
        return BK_RESULT_OPAQUE;
    char err [256] = "";
    pr_result_t *result = pr_result_decode (data, size, err, sizeof err);
    if (!result) {
        snprintf (error, error_size, "malformed result: %s", err);
        return BK_RESULT_MALFORMED;
    }
    bk_result_t r = result->status == PR_STATUS_DONE ? BK_RESULT_DONE
                  : result->status == PR_STATUS_RETRY ? BK_RESULT_RETRY : BK_RESULT_FAIL;
    if (r != BK_RESULT_DONE)
        snprintf (error, error_size, "%.64s%s%.400s", result->error_code,
                  *result->error_code && *result->error_message ? ": " : "", result->error_message);
    //  Keep the text printable for logs and events.
    for (char *p = error; *p; p++)
        if ((unsigned char) *p < 0x20)
            *p = ' ';
    pr_result_destroy (&result);
    return r;
}

uint8_t *
bk_body_failure (const char *id, const char *code, const char *message, size_t *size_p)
{
    pr_result_t *result = pr_result_new (id, PR_STATUS_FAIL);
    pr_result_set_error (result, code, message ? message : "");
    uint8_t *out = pr_result_encode (result, size_p);
    pr_result_destroy (&result);
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
    //  Trailing byte, truncation: ours but malformed.
    uint8_t *longer = malloc (size + 1);
    memcpy (longer, fail, size);
    longer [size] = 0xc0;
    assert (bk_body_result (longer, size + 1, err, sizeof err) == BK_RESULT_MALFORMED);
    assert (strstr (err, "malformed result"));
    assert (bk_body_result (fail, size - 3, err, sizeof err) == BK_RESULT_MALFORMED);
    free (longer);
    free (fail);
    //  Plain bytes, and a map that is not ours: opaque.
    assert (bk_body_result ((const uint8_t *) "hello", 5, err, sizeof err) == BK_RESULT_OPAQUE);
    assert (bk_body_result (NULL, 0, err, sizeof err) == BK_RESULT_OPAQUE);
    const uint8_t other [] = { 0x81, 0xa1, 'x', 0x01 };
    assert (bk_body_result (other, sizeof other, err, sizeof err) == BK_RESULT_OPAQUE);
    //  Done and retry through the shared codec.
    pr_result_t *r = pr_result_new ("job", PR_STATUS_DONE);
    uint8_t *done = pr_result_encode (r, &size);
    assert (bk_body_result (done, size, err, sizeof err) == BK_RESULT_DONE && err [0] == 0);
    free (done);
    pr_result_destroy (&r);
    r = pr_result_new ("job", PR_STATUS_RETRY);
    pr_result_set_error (r, "busy", "line one\nline two");
    uint8_t *retry = pr_result_encode (r, &size);
    assert (bk_body_result (retry, size, err, sizeof err) == BK_RESULT_RETRY);
    assert (strcmp (err, "busy: line one line two") == 0);
    free (retry);
    pr_result_destroy (&r);
    //  {v:1, status:"weird", id:"j"}: ours, refused by the decoder.
    const uint8_t weird [] = { 0x83, 0xa1, 'v', 0x01, 0xa2, 'i', 'd', 0xa1, 'j',
                               0xa6, 's', 't', 'a', 't', 'u', 's', 0xa1, 'x' };
    assert (bk_body_result (weird, sizeof weird, err, sizeof err) == BK_RESULT_MALFORMED);
    //  A map that claims 2^32-1 entries in 8 bytes must not make anyone
    //  allocate for them (found by fuzz_job).
    const uint8_t liar [] = { 0xdf, 0xff, 0xff, 0xff, 0xff, 0xa1, 'v', 0x01 };
    assert (bk_body_result (liar, sizeof liar, err, sizeof err) == BK_RESULT_MALFORMED);
    const uint8_t nested [] = { 0x82, 0xa1, 'v', 0x01, 0xa2, 'i', 'd', 0xdd, 0x7f, 0xff, 0xff, 0xff };
    assert (bk_body_result (nested, sizeof nested, err, sizeof err) == BK_RESULT_MALFORMED);
}
