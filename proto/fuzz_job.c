/*  fuzz_job.c - libFuzzer target for the msgpack body decoders in pr_job
    (job envelope, result, progress): each must refuse or accept without
    crashing, and what it accepts must encode and decode again the same.
*/
#include "pr_job.h"

#include <assert.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput (const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput (const uint8_t *data, size_t size)
{
    char err [256];
    (void) pr_job_is_ours (data, size);
    pr_job_t *job = pr_job_decode (data, size, err, sizeof err);
    if (job) {
        size_t n;
        uint8_t *again = pr_job_encode (job, &n);
        pr_job_t *job2 = pr_job_decode (again, n, err, sizeof err);
        assert (job2);
        assert (strcmp (job->id, job2->id) == 0 && job->attempt == job2->attempt);
        pr_job_destroy (&job2);
        free (again);
        pr_job_destroy (&job);
    }
    pr_result_t *result = pr_result_decode (data, size, err, sizeof err);
    if (result) {
        size_t n;
        uint8_t *again = pr_result_encode (result, &n);
        pr_result_t *result2 = pr_result_decode (again, n, err, sizeof err);
        assert (result2 && result2->status == result->status);
        pr_result_destroy (&result2);
        free (again);
        pr_result_destroy (&result);
    }
    pr_progress_t *progress = pr_progress_decode (data, size, err, sizeof err);
    pr_progress_destroy (&progress);
    return 0;
}
