/*  wk_tnet.h - the `mlp` and `transformer` families on our kernels
    (kernels/kn_model.h): AdamW with warm-up and a cosine schedule, early
    stopping on the validation loss (the best epoch's weights are kept),
    standardisation fitted on the training rows only and stored in the
    model, optional mean imputation of NaN features.

    Batches are built here: rows for the MLP, windows of consecutive rows of
    the same entity for the transformer (lb_model_window), in an order
    shuffled from (seed, epoch), so a run is a function of the seed, the
    data and the thread count, and a checkpoint taken at an epoch boundary
    resumes bit-identically.
*/
#ifndef WK_TNET_H_INCLUDED
#define WK_TNET_H_INCLUDED

#include <jansson.h>
#include <stddef.h>

#include "lb_model.h"
#include "wk_tdata.h"

//  Trains family (LB_MODEL_MLP or LB_MODEL_TRANSFORMER) on data with
//  resolved hyperparameters. On WK_T_OK *model_p is the model; otherwise
//  err says why (NaN without impute=mean, a bad architecture: BAD_INPUT).
wk_tresult_t wk_tnet_train (lb_model_family_t family, const wk_tdata_t *data,
                            const json_t *params, const wk_tctx_t *ctx,
                            lb_model_t **model_p, char *err, size_t err_size);

//  Selftest.
void wk_tnet_test (bool verbose);

#endif
