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

//  Selftest.
void wk_tprobe_test (bool verbose);

#endif
