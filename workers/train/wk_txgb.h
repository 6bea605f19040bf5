/*  wk_txgb.h - the `xgboost` and `rf` families through XGBoost's C API.

    xgboost: gradient-boosted trees, tree_method hist (gpu_hist on a GPU
    when this libxgboost was built with CUDA and a device is present),
    evaluated on the validation split every round, early stopping on the
    validation metric; the stored model is cut to the best round.
    rf: XGBoost's random-forest mode: one round of `trees` parallel trees,
    learning rate 1, row subsampling and per-split column subsampling.

    Checkpoints (xgboost): the booster serialised with its configuration,
    plus the round and the early-stopping state. Without row or column
    subsampling (the defaults) resuming gives the same bytes as an
    uninterrupted run; with subsampling libxgboost 1.7 draws other rows
    after a restore (checked with python3-xgboost too, seed_per_iteration
    or not), so the resumed model is as good but not bit-identical. rf is
    one round: it cannot checkpoint inside it, so after a lost host it
    starts again (docs/train.md).
*/
#ifndef WK_TXGB_H_INCLUDED
#define WK_TXGB_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "lb_model.h"
#include "wk_tdata.h"

//  Trains family (LB_MODEL_XGBOOST or LB_MODEL_RF) on data with resolved
//  hyperparameters (wk_tparams). On WK_T_OK *model_p is the new model with
//  features, params and metrics set. Otherwise err says why.
wk_tresult_t wk_txgb_train (lb_model_family_t family, const wk_tdata_t *data,
                            const json_t *params, const wk_tctx_t *ctx,
                            lb_model_t **model_p, char *err, size_t err_size);

//  Returns true when this libxgboost can train on a GPU (built with CUDA);
//  otherwise false with the reason in why.
bool wk_txgb_gpu_capable (char *why, size_t why_size);

//  Selftest.
void wk_txgb_test (bool verbose);

#endif
