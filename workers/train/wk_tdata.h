/*  wk_tdata.h - what every trainer family shares: the training data as
    in-memory float32 matrices, the context a trainer runs in (threads,
    seed, progress and checkpoint hooks), and the checks and metrics the
    families have in common.

    A trainer takes the train and validation splits (row-major, NaN =
    missing), never the test split: the evaluator scores that.
*/
#ifndef WK_TDATA_H_INCLUDED
#define WK_TDATA_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lb_clock.h"
#include "lb_model.h"

//  What a trainer returns.
typedef enum {
    WK_T_OK = 0,
    WK_T_BAD_INPUT = -1,    //  the data or parameters cannot work: fail for good
    WK_T_FAILED = -2,       //  the library or the machine failed: worth a retry
    WK_T_STOPPED = -3       //  asked to stop; a checkpoint was written when one was due
} wk_tresult_t;

//  The training data (borrowed).
typedef struct {
    lb_model_task_t task;
    size_t cols;
    const char *const *names;       //  cols feature names
    const float *x, *y;             //  train: rows x cols, rows labels
    size_t rows;
    const float *vx, *vy;           //  validation: vrows x cols, vrows labels
    size_t vrows;
    const uint32_t *entity, *ventity;   //  entity per row (train, validation), or NULL
} wk_tdata_t;

//  One progress report.
typedef struct {
    const char *unit;               //  "round" or "epoch"
    int step, steps;                //  done so far, planned
    double train_loss, val_loss;    //  NaN when not measured
    const char *metric_name;        //  "auc" or "rmse"
    double metric;                  //  on validation
    double samples_per_s;
    double eta_s;                   //  NaN when unknown
    double percent;
} wk_tprogress_t;

//  The context a trainer runs in. Hooks may be NULL.
typedef struct {
    int nthread;                    //  >= 1
    uint64_t seed;
    bool gpu;                       //  use the GPU path (only when detected)
    double progress_every_s;        //  report at most this often (and at the end)
    double checkpoint_every_s;      //  0: never
    lb_clock_t clock;
    //  Reports progress.
    void (*progress) (void *arg, const wk_tprogress_t *p);
    //  Stores a checkpoint image; returns 0 or -1 (the trainer logs and goes on).
    int (*checkpoint) (void *arg, const uint8_t *data, size_t size);
    //  Reports a figure about the run that is not part of the model (timings:
    //  the model file must not depend on them).
    void (*metric) (void *arg, const char *name, double value);
    //  Makes a GPU backend for the nets (kn_backend_t *; only worker-train
    //  links CUDA), or NULL with why; NULL hook: CPU only.
    struct kn_backend_s *(*gpu_backend) (char *why, size_t why_size);
    //  True when the trainer should stop (worker shutting down, deadline).
    bool (*stopping) (void *arg);
    void *arg;
    //  A checkpoint body to resume from (wk_tckpt_decode's body), or NULL.
    const uint8_t *resume;
    size_t resume_size;
    //  Data-parallel training of the nets (docs/train.md "Several GPUs"):
    //  a backend already made for this rank (kn_gpu_new_nccl; borrowed, used
    //  instead of gpu_backend and the CPU), and this rank's place in the
    //  group. Every rank trains on its shard (pr_rank_shard) of every global
    //  batch; the group agrees on stopping and on the validation figures
    //  through the backend's all-reduce. NULL / 0 ranks: alone.
    struct kn_backend_s *backend;
    int rank, nranks;
} wk_tctx_t;

//  Checks the labels for the task: binary labels are 0 or 1 and both
//  classes occur in the training rows; regression labels are finite; both
//  splits have rows. Returns 0, or -1 with what and where in err.
int wk_tdata_check (const wk_tdata_t *data, char *err, size_t err_size);

//  Finds the first NaN in x (rows x cols). Returns true and its row and
//  column, or false.
bool wk_tdata_find_nan (const float *x, size_t rows, size_t cols, size_t *row, size_t *col);

//  Fits a standardisation on x (training rows only), ignoring NaN: mean and
//  population standard deviation per column (scale 1 where the deviation is
//  0 or the column is all NaN; mean 0 there).
void wk_tdata_fit_standardisation (const float *x, size_t rows, size_t cols, float *mean,
                                   float *scale);

//  Mean binary log loss of probabilities p against 0/1 labels y, with p
//  clipped to [1e-15, 1 - 1e-15] (as scikit-learn).
double wk_tdata_logloss (const float *p, const float *y, size_t n);

//  ROC AUC of scores p for 0/1 labels y (ties share rank). NaN when one
//  class is absent.
double wk_tdata_auc (const float *p, const float *y, size_t n);

//  Root mean squared error.
double wk_tdata_rmse (const float *p, const float *y, size_t n);

//  Fills x (rows x cols) and y (rows) with a fixed-seed synthetic binary
//  problem (tests and benchmarks; cols >= 4): features N(0,1)-ish, label
//  drawn from a logistic of a nonlinear mix of the first four features.
//  Same seed => same bytes on every machine.
void wk_tdata_synth (uint64_t seed, size_t rows, size_t cols, float *x, float *y);

//  Selftest.
void wk_tdata_test (bool verbose);

#endif
