/*  wk_tprobe.h - test support for the trainer families' selftests: hooks
    that record progress and checkpoints and stop a run on cue, and a call
    that resolves hyperparameters, trains and checks the outcome.
*/
#ifndef WK_TPROBE_H_INCLUDED
#define WK_TPROBE_H_INCLUDED

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "lb_model.h"
#include "wk_tdata.h"

typedef struct {
    uint8_t *ckpt;              //  last checkpoint body (owned)
    size_t ckpt_size;
    int checkpoints;
    int progress;
    int stop_after;             //  stopping() says true after this many calls (0: never)
    int stop_calls;
} wk_tprobe_t;

//  A family's trainer (wk_txgb_train, wk_tnet_train).
typedef wk_tresult_t (wk_tprobe_fn) (lb_model_family_t family, const wk_tdata_t *data,
                                     const json_t *params, const wk_tctx_t *ctx,
                                     lb_model_t **model_p, char *err, size_t err_size);

//  Hooks for wk_tctx_t; arg is the probe.
void wk_tprobe_progress (void *arg, const wk_tprogress_t *p);
int wk_tprobe_checkpoint (void *arg, const uint8_t *data, size_t size);
bool wk_tprobe_stopping (void *arg);

//  Frees what the probe holds.
void wk_tprobe_release (wk_tprobe_t *probe);

//  Resolves the hyperparameters, trains, asserts the result is want, and
//  returns the model (NULL unless WK_T_OK; caller destroys).
lb_model_t *wk_tprobe_train (wk_tprobe_fn *train, lb_model_family_t family, const wk_tdata_t *data,
                             const char *const *names, const char *const *values, size_t count,
                             const wk_tctx_t *ctx, wk_tresult_t want);

//  A test-only all-reduce over threads of one process, so that data-parallel
//  training runs in selftests without a GPU (never used by worker-train):
//  CPU backends (one thread each) whose allreduce_mean averages in rank
//  order over nranks callers, giving up after timeout_ms (every later call
//  then fails at once, as an aborted NCCL communicator). fail_rank's
//  backend cannot be made when fail_after < 0; otherwise its all-reduce
//  fails after fail_after calls (a rank lost mid-training); -1: none.
typedef struct wk_tprobe_net_s wk_tprobe_net_t;
wk_tprobe_net_t *wk_tprobe_net_new (int nranks, int fail_rank, int fail_after, int timeout_ms);
void wk_tprobe_net_destroy (wk_tprobe_net_t **self_p);

//  Rank `rank`'s backend (arg is the net), or NULL with why (fail_rank).
//  kn_backend_destroy frees it.
struct kn_backend_s *wk_tprobe_net_make (void *arg, int rank, char *why, size_t why_size);

//  Selftest.
void wk_tprobe_test (bool verbose);

#endif
