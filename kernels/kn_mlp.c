/*  kn_mlp.c - the MLP: [Linear -> LayerNorm? -> act -> Dropout] x n_hidden -> Linear,
    forward and backward on the model's backend (kn_model_int.h).
*/
#include "kn_model_int.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lb_mem.h"

void
kn_mlp_declare (kn_model_t *self)
{
    const kn_config_t *cfg = &self->cfg;
    int prev = cfg->n_in;
    for (int l = 0; l <= cfg->n_hidden; l++) {
        int width = l < cfg->n_hidden ? cfg->hidden [l] : cfg->n_out;
        self->w [l] = l < cfg->n_hidden ? kn_model_add_tensori (self, width, prev, true, "hidden.", l, ".weight")
                                        : kn_model_add_tensor (self, "out.weight", width, prev, true);
        prev = width;
    }
    for (int l = 0; l <= cfg->n_hidden; l++) {
        int width = l < cfg->n_hidden ? cfg->hidden [l] : cfg->n_out;
        self->b [l] = l < cfg->n_hidden ? kn_model_add_tensori (self, 1, width, false, "hidden.", l, ".bias")
                                        : kn_model_add_tensor (self, "out.bias", 1, width, false);
        if (l < cfg->n_hidden && cfg->layernorm) {
            self->lng [l] = kn_model_add_tensori (self, 1, width, false, "hidden.", l, ".ln.weight");
            self->lnb [l] = kn_model_add_tensori (self, 1, width, false, "hidden.", l, ".ln.bias");
        }
    }
}

int
kn_mlp_alloc (kn_model_t *self)
{
    const kn_config_t *cfg = &self->cfg;
    size_t bsz = (size_t) self->max_batch;
    int widest = cfg->n_in > cfg->n_out ? cfg->n_in : cfg->n_out;
    for (int l = 0; l < cfg->n_hidden; l++) {
        size_t n = bsz * cfg->hidden [l];
        if (cfg->hidden [l] > widest)
            widest = cfg->hidden [l];
        if (!(self->z [l] = kn_model_buf (self, n)) || !(self->act [l] = kn_model_buf (self, n)))
            return -1;
        if (cfg->layernorm
        && (!(self->lnout [l] = kn_model_buf (self, n)) || !(self->lnmean [l] = kn_model_buf (self, bsz))
        ||  !(self->lnrstd [l] = kn_model_buf (self, bsz))))
            return -1;
        if (cfg->dropout > 0 && !(self->drop [l] = kn_model_buf (self, n)))
            return -1;
    }
    size_t n = bsz * widest;
    if (!(self->d1 = kn_model_buf (self, n)) || !(self->d2 = kn_model_buf (self, n)) || !(self->d3 = kn_model_buf (self, n)))
        return -1;
    return 0;
}

void
kn_mlp_forward (kn_model_t *self, int rows, bool train)
{
    kn_backend_t *be = self->be;
    const kn_config_t *cfg = &self->cfg;
    const float *in = self->x;
    for (int l = 0; l < cfg->n_hidden; l++) {
        size_t n = (size_t) rows * cfg->hidden [l];
        kn_model_linear_fwd (self, in, self->w [l], self->b [l], NULL, self->z [l], rows);
        const float *pre = self->z [l];
        if (cfg->layernorm) {
            be->layernorm_fwd (be, self->z [l], KN_P (self->lng [l]), KN_P (self->lnb [l]), self->lnout [l],
                               self->lnmean [l], self->lnrstd [l], rows, cfg->hidden [l]);
            pre = self->lnout [l];
        }
        be->act_fwd (be, cfg->act, pre, self->act [l], n);
        in = self->act [l];
        if (train && cfg->dropout > 0) {
            be->dropout (be, self->act [l], self->drop [l], n, cfg->dropout, kn_model_dropout_seed (self, l));
            in = self->drop [l];
        }
    }
    kn_model_linear_fwd (self, in, self->w [cfg->n_hidden], self->b [cfg->n_hidden], NULL, self->logits,
                         rows);
}

//  Backward from self->dlogits; leaves the gradients in self->grads.
void
kn_mlp_backward (kn_model_t *self, int rows)
{
    kn_backend_t *be = self->be;
    const kn_config_t *cfg = &self->cfg;
    int nh = cfg->n_hidden;
    //  three scratch buffers rotate: dy (read), dx (written), spare (layer norm's output)
    const float *dy = self->dlogits;
    float *dx = self->d1, *spare = self->d2;
    bool db_done = false;               //  the activation's backward summed db already
    for (int l = nh; l >= 0; l--) {
        const float *in = l == 0 ? self->x
                        : cfg->dropout > 0 ? self->drop [l - 1] : self->act [l - 1];
        kn_model_linear_bwd (self, dy, in, self->w [l], db_done ? -1 : self->b [l],
                             l > 0 ? dx : NULL, rows);
        if (l == 0)
            break;
        //  dx = d(output of hidden layer k); back through dropout, activation, layer norm
        int k = l - 1;
        size_t n = (size_t) rows * cfg->hidden [k];
        if (cfg->dropout > 0)
            be->dropout (be, dx, dx, n, cfg->dropout, kn_model_dropout_seed (self, k));
        float *result = dx;
        if (cfg->layernorm) {
            be->act_bwd (be, cfg->act, self->lnout [k], dx, dx, n);
            be->layernorm_bwd (be, dx, self->z [k], KN_P (self->lng [k]), self->lnmean [k],
                               self->lnrstd [k], spare, KN_G (self->lng [k]), KN_G (self->lnb [k]),
                               rows, cfg->hidden [k], false);
            result = spare;
            spare = dx;
            db_done = false;
        }
        else {
            //  d(z_k) and, in the same pass, layer k's bias gradient
            be->act_bwd_colsum (be, cfg->act, self->z [k], false, dx, dx, rows, cfg->hidden [k],
                                KN_G (self->b [k]));
            db_done = true;
        }
        //  result is d(z_k), next iteration's dy; the two others are free
        float *others [3] = { self->d1, self->d2, self->d3 };
        int j = 0;
        for (int o = 0; o < 3; o++)
            if (others [o] != result)
                others [j++] = others [o];
        dy = result;
        dx = others [0];
        spare = others [1];
    }
}


// ---------------------------------------------------------------- selftest

void
kn_mlp_test (bool verbose)
{
    if (verbose)
        printf ("\n");
    kn_config_t mlp;
    kn_model_test_config (KN_ARCH_MLP, &mlp);
    //  whole-model gradient checks (dropout on: masks depend on the step only)
    kn_model_gradcheck ("mlp binary ln gelu", &mlp, verbose);
    kn_config_t c = mlp;
    c.task = KN_TASK_MULTICLASS;
    c.n_out = 3;
    c.layernorm = false;
    c.n_hidden = 1;
    kn_model_gradcheck ("mlp multiclass", &c, verbose);
    c = mlp;
    c.task = KN_TASK_REGRESSION;
    c.n_out = 2;
    c.n_hidden = 0;
    kn_model_gradcheck ("linear regression", &c, verbose);
}
