/*  wk_tjob.h - one training job, from parameters to a model artifact.

    Job parameters (all text, as wk_job_param gives them):
        family     xgboost | rf | mlp | transformer | ensemble       (required)
        dataset    URI of the dataset artifact (file://ROOT/sha256/..), or an
                   absolute path to a dataset file                 (required)
        seed       integer >= 0 (default 0)
        members    ensemble only: comma-separated model URIs (or paths)
        anything else: a hyperparameter of the family (wk_tparams), validated.

    The job reads the dataset (checksummed), takes its train and validation
    splits (never the test split), checks the label (0/1 with both classes
    for binary; finite for regression) and the features (NaN: missing for
    trees; refused for nets unless impute=mean), trains, and stores the
    model in the artifact store; the model's URI is the output "model" and
    its metrics are the result's metrics.

    Checkpoints: with a run and a step, a checkpoint is written to the store
    every train.checkpoint_every and its URI kept in
    ROOT/checkpoints/RUN/STEP.uri; a later attempt of the same step (the job
    re-leased after its host was lost) resumes from it. A checkpoint from
    another dataset, family, hyperparameters, seed or thread count is not
    used; a corrupt one is reported and training starts from zero.
*/
#ifndef WK_TJOB_H_INCLUDED
#define WK_TJOB_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#include "lb_config.h"
#include "lb_dataset.h"
#include "wk_runtime.h"

//  How the job talks back (the runtime's wk_job_* in the worker; stderr
//  in the command-line mode). Any hook may be NULL.
typedef struct {
    void (*progress) (void *arg, double percent, const char *stage, const char *message);
    void (*metric) (void *arg, const char *name, double value);
    bool (*stopping) (void *arg);
    void *arg;
    //  Hands out a value while the job runs (wk_job_announce): a training
    //  group's rank 0 hands out its NCCL id this way. May be NULL.
    void (*announce) (void *arg, const char *name, const char *value);
} wk_tjob_io_t;

typedef struct {
    lb_config_t *config;            //  artifacts.root, train.*
    const char *run, *step;         //  checkpoint key; NULL: no checkpoints
    bool needs_gpu;
    int gpus;                       //  usable GPUs on this host (main detects them)
    const char *gpu_why;            //  why there are none, or NULL
    //  Makes a GPU backend for the nets (only worker-train links CUDA).
    struct kn_backend_s *(*gpu_backend) (char *why, size_t why_size);
    //  NCCL (worker-train built with nvcc; NULL elsewhere): makes a group's
    //  unique id (PR_RANK_ID_BYTES, in this process: rank 0 only), and rank
    //  `rank`'s backend on `device`, which blocks until the group formed or
    //  timeout_ms passed (kn_gpu_nccl_id, kn_gpu_new_nccl).
    //  nccl_arg is their first argument.
    int (*nccl_id) (void *arg, unsigned char *id, char *why, size_t why_size);
    struct kn_backend_s *(*nccl_backend) (void *arg, int device, const unsigned char *id, int nranks,
                                          int rank, int timeout_ms, char *why, size_t why_size);
    void *nccl_arg;
    size_t nparams;
    const char *const *names;       //  the job's parameters
    const char *const *values;
} wk_tjob_req_t;

//  Group fields (pr_rank.h: ranks, rank, group, nccl_id) and `gpus` (ranks
//  as threads of this trainer, one device each) make the nets train
//  data-parallel over NCCL (docs/train.md "Several GPUs"); they need a GPU
//  trainer, else "no_gpu". Rank 0 stores the model; ranks 1..N-1 return
//  WK_DONE with *model_uri NULL.
//
//  Runs the job. Returns WK_DONE with *model_uri (caller frees), or WK_FAIL
//  (bad parameters or data: code "bad_params", "bad_dataset", "no_gpu", ...)
//  or WK_RETRY (stopped, store or library failure), with code and a message
//  saying what and where in err.
wk_status_t wk_tjob_run (const wk_tjob_req_t *req, const wk_tjob_io_t *io, char **model_uri,
                         char *code, size_t code_size, char *err, size_t err_size);

//  Returns the thread count train.threads asks for (0 = online cores).
int wk_tjob_threads (lb_config_t *config);

//  Returns a new synthetic binary dataset (wk_tdata_synth rows, hourly
//  timestamps, one entity) split in time order: the last test_frac of the
//  rows test, the valid_frac before them validation, the rest training.
//  For tests and benchmarks; NULL after logging if the split is impossible.
lb_dataset_t *wk_tjob_synth (uint64_t seed, size_t rows, size_t cols, double valid_frac,
                             double test_frac);

//  Selftest.
void wk_tjob_test (bool verbose);

#endif
