/*  wk_tgroup.h - several GPUs in one trainer: the nets trained data-parallel
    by N ranks, one thread and one device each, in this process
    (docs/train.md "Several GPUs").

    Rank 0 runs on the calling thread (it alone reports progress, writes
    checkpoints and metrics through the caller's context, and its model is
    the result); ranks 1..N-1 run on threads of their own with no hooks but
    the caller's stopping flag read by rank 0 and agreed through the group.
    Each rank's backend comes from the caller's `make` hook, called on the
    rank's own thread (a CUDA device is per thread): in worker-train it is
    kn_gpu_new_nccl on device r with one NCCL id made in this process, so
    every rank's communicator init runs concurrently, as NCCL requires.

    The group fails as one: a rank whose backend cannot be made, or whose
    all-reduce fails or passes its deadline, fails its thread; the others
    then fail at their next collective within the backend's timeout (the
    NCCL communicator is aborted, kn_gpu.cu), never waiting forever. After a
    successful run the ranks' parameters are compared (they must agree: the
    gradients were averaged before each identical optimizer step).
*/
#ifndef WK_TGROUP_H_INCLUDED
#define WK_TGROUP_H_INCLUDED

#include <jansson.h>
#include <stddef.h>

#include "lb_model.h"
#include "pr_rank.h"
#include "wk_tdata.h"
#include "wk_tjob.h"

struct kn_backend_s;

typedef struct {
    int nranks;                     //  2..PR_RANK_MAX
    //  Makes rank r's backend, with an all-reduce over the group; blocks
    //  until the group formed or the deadline passed. NULL with why.
    struct kn_backend_s *(*make) (void *arg, int rank, char *why, size_t why_size);
    void *arg;
} wk_tgroup_t;

//  Trains family (mlp or transformer) over the group with ctx as for
//  wk_tnet_train (ctx->backend, rank, nranks are set per rank here).
//  Returns WK_T_OK with rank 0's model in *model_p, or the first failing
//  rank's outcome with "rank R of N: ..." in err.
wk_tresult_t wk_tgroup_train (lb_model_family_t family, const wk_tdata_t *data,
                              const json_t *params, const wk_tctx_t *ctx,
                              const wk_tgroup_t *group, lb_model_t **model_p, char *err,
                              size_t err_size);

//  A job's data-parallel training (wk_tjob_run calls it): `gpus` ranks in
//  this process on devices 0..gpus-1 (grp alone), or this job's rank of a
//  group across trainers on train.device (grp->ranks > 1, gpus 1). Rank 0
//  makes the NCCL id (req->nccl_id) and, in a group across trainers, hands
//  it out (io->announce "nccl_id", hex) before it waits for the others;
//  rank r > 0 joins with grp->id. Communicator init and every collective
//  give up after train.nccl_timeout. Returns as wk_tnet_train, err naming
//  the rank.
wk_tresult_t wk_tgroup_job (const wk_tjob_req_t *req, const wk_tjob_io_t *io,
                            lb_model_family_t family, const pr_rank_t *grp, int gpus,
                            const wk_tdata_t *data, const json_t *params, wk_tctx_t *ctx,
                            lb_model_t **model, char *err, size_t err_size);

//  Selftest (CPU backends joined by a test-only all-reduce: no GPU needed).
void wk_tgroup_test (bool verbose);

#endif
