/*  pr_rank.h - the fields that make a job one rank of a data-parallel
    training group (docs/train.md "Several GPUs", PROTOCOL.md §5).

    A pipeline step with `ranks = N` (N > 1) is one logical step run as N
    jobs, one per rank. The scheduler adds these job parameters (text, like
    every parameter):

        ranks     N, integer 2..PR_RANK_MAX
        rank      this job's position, integer 0..N-1
        group     the group's id: rank 0's envelope id "RUN/STEP/SUBMISSION"
        nccl_id   ranks 1..N-1 only: rank 0's NCCL unique id, 2 x
                  PR_RANK_ID_BYTES lowercase hex digits

    Rank 0 makes the id (ncclGetUniqueId opens the bootstrap root in the
    calling process, so only rank 0 can), hands it out in its progress
    (progress.outputs.nccl_id, pr_job.h) and waits for the others; the
    scheduler relays it into the bodies of ranks 1..N-1. A job with none of
    these fields is a group of one (ranks 1, rank 0).

    Shards: rank r of N trains on rows [r*n/N, (r+1)*n/N) of every global
    batch of n rows (pr_rank_shard), so every rank sees the same batch
    order and only its slice of it.
*/
#ifndef PR_RANK_H_INCLUDED
#define PR_RANK_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pr_job.h"

#ifdef __cplusplus
extern "C" {
#endif

#define PR_RANK_ID_BYTES    128     //  sizeof (ncclUniqueId)
#define PR_RANK_MAX         64      //  ranks in one group

typedef struct {
    int ranks;                      //  1 when the job is not part of a group
    int rank;
    char group [256];               //  "" when alone
    bool has_id;
    uint8_t id [PR_RANK_ID_BYTES];  //  when has_id
} pr_rank_t;

//  Reads the group fields from a job's params (strings; an int is accepted
//  too). Returns 0 and fills out (a job without any field: ranks 1, rank 0),
//  or -1 with what is wrong in err: ranks outside 1..PR_RANK_MAX or not an
//  integer, rank missing or outside 0..ranks-1, a group id missing for
//  ranks > 1, nccl_id missing for rank > 0, present for rank 0, or not
//  exactly 2 x PR_RANK_ID_BYTES hex digits.
int pr_rank_parse (const pr_kv_t *params, pr_rank_t *out, char *err, size_t err_size);

//  Writes id as 2 x PR_RANK_ID_BYTES lowercase hex digits and a NUL into
//  hex (at least 2 * PR_RANK_ID_BYTES + 1 bytes).
void pr_rank_id_hex (const uint8_t id [PR_RANK_ID_BYTES], char *hex);

//  Parses 2 x PR_RANK_ID_BYTES hex digits (either case) into id. 0 or -1
//  with the reason in err.
int pr_rank_id_parse (const char *hex, uint8_t id [PR_RANK_ID_BYTES], char *err, size_t err_size);

//  Rank `rank` of `ranks`' slice of a batch of n rows: [*lo, *hi). Slices
//  are contiguous, cover the batch, and differ in size by at most one row;
//  a rank's slice is empty when n < ranks.
void pr_rank_shard (size_t n, int rank, int ranks, size_t *lo, size_t *hi);

//  Selftest.
void pr_rank_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
