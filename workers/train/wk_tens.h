/*  wk_tens.h - the `ensemble` family: a weighted average of other models'
    predicted probabilities, with weights fitted on the VALIDATION split
    (never the training split, where every member looks better than it is),
    constrained to the simplex (w >= 0, sum w = 1), minimising log loss
    (mean squared error for regression). The loss is convex in w; the fit
    is projected gradient descent with backtracking, deterministic.
*/
#ifndef WK_TENS_H_INCLUDED
#define WK_TENS_H_INCLUDED

#include <jansson.h>
#include <stddef.h>

#include "lb_model.h"
#include "wk_tdata.h"

//  Fits weights w[k] on the simplex for predictions P (n x k, row-major:
//  member j's prediction for row i at P[i*k+j]) against labels y[n].
//  Returns the iterations used; *loss is the final loss.
int wk_tens_fit (lb_model_task_t task, const float *P, const float *y, size_t n, size_t k,
                 int max_iter, double tol, double *w, double *loss);

//  Builds an ensemble of the k models in members (taken: every pointer is
//  NULL afterwards) using data's validation split. Members must have data's
//  task and features. On WK_T_OK *model_p is the ensemble with metrics
//  (val_logloss of the ensemble and of each member, weights); otherwise err.
wk_tresult_t wk_tens_train (lb_model_t **members, size_t k, const wk_tdata_t *data,
                            const json_t *params, const wk_tctx_t *ctx,
                            lb_model_t **model_p, char *err, size_t err_size);

//  Selftest.
void wk_tens_test (bool verbose);

#endif
