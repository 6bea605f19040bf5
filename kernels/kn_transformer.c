/*  kn_transformer.c - the transformer encoder over windows: input projection +
    learned positions, pre-LN blocks of multi-head self-attention and
    feed-forward, final LayerNorm, pooling, head (kn_model.h has the picture);
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
kn_transformer_declare (kn_model_t *self)
{
    const kn_config_t *cfg = &self->cfg;
    int d = cfg->d_model, f = cfg->d_ff;
    self->layers = (kn_layer_t *) lb_xcalloc ((size_t) cfg->n_layers, sizeof (kn_layer_t));
    self->in_w = kn_model_add_tensor (self, "in.weight", d, cfg->n_in, true);
    self->pos = kn_model_add_tensor (self, "pos", cfg->window, d, true);
    for (int i = 0; i < cfg->n_layers; i++) {
        kn_layer_t *ly = &self->layers [i];
        ly->qkv_w = kn_model_add_tensori (self, 3 * d, d, true, "layers.", i, ".attn.qkv.weight");
        ly->o_w = kn_model_add_tensori (self, d, d, true, "layers.", i, ".attn.out.weight");
        ly->f1_w = kn_model_add_tensori (self, f, d, true, "layers.", i, ".ff.1.weight");
        ly->f2_w = kn_model_add_tensori (self, d, f, true, "layers.", i, ".ff.2.weight");
    }
    self->head_w = kn_model_add_tensor (self, "head.weight", cfg->n_out, d, true);
    self->in_b = kn_model_add_tensor (self, "in.bias", 1, d, false);
    for (int i = 0; i < cfg->n_layers; i++) {
        kn_layer_t *ly = &self->layers [i];
        ly->ln1_g = kn_model_add_tensori (self, 1, d, false, "layers.", i, ".ln1.weight");
        ly->ln1_b = kn_model_add_tensori (self, 1, d, false, "layers.", i, ".ln1.bias");
        ly->qkv_b = kn_model_add_tensori (self, 1, 3 * d, false, "layers.", i, ".attn.qkv.bias");
        ly->o_b = kn_model_add_tensori (self, 1, d, false, "layers.", i, ".attn.out.bias");
        ly->ln2_g = kn_model_add_tensori (self, 1, d, false, "layers.", i, ".ln2.weight");
        ly->ln2_b = kn_model_add_tensori (self, 1, d, false, "layers.", i, ".ln2.bias");
        ly->f1_b = kn_model_add_tensori (self, 1, f, false, "layers.", i, ".ff.1.bias");
        ly->f2_b = kn_model_add_tensori (self, 1, d, false, "layers.", i, ".ff.2.bias");
    }
    self->lnf_g = kn_model_add_tensor (self, "ln_f.weight", 1, d, false);
    self->lnf_b = kn_model_add_tensor (self, "ln_f.bias", 1, d, false);
    self->head_b = kn_model_add_tensor (self, "head.bias", 1, cfg->n_out, false);
}

int
kn_transformer_alloc (kn_model_t *self)
{
    const kn_config_t *cfg = &self->cfg;
    size_t bsz = (size_t) self->max_batch, t = (size_t) cfg->window;
    size_t n = bsz * t, d = (size_t) cfg->d_model, f = (size_t) cfg->d_ff;
    size_t att = bsz * cfg->n_heads * t * t;
    self->res = (float **) lb_xcalloc ((size_t) cfg->n_layers + 1, sizeof (float *));
    for (int i = 0; i <= cfg->n_layers; i++)
        if (!(self->res [i] = kn_model_buf (self, n * d)))
            return -1;
    for (int i = 0; i < cfg->n_layers; i++) {
        kn_layer_t *ly = &self->layers [i];
        if (!(ly->ln1 = kn_model_buf (self, n * d)) || !(ly->mean1 = kn_model_buf (self, n))
        ||  !(ly->rstd1 = kn_model_buf (self, n)) || !(ly->qkv = kn_model_buf (self, n * 3 * d))
        ||  !(ly->att = kn_model_buf (self, att)) || !(ly->ctx = kn_model_buf (self, n * d))
        ||  !(ly->hmid = kn_model_buf (self, n * d)) || !(ly->ln2 = kn_model_buf (self, n * d))
        ||  !(ly->mean2 = kn_model_buf (self, n)) || !(ly->rstd2 = kn_model_buf (self, n))
        ||  !(ly->f1 = kn_model_buf (self, n * f)) || !(ly->f1a = kn_model_buf (self, n * f)))
            return -1;
    }
    if (!(self->lnf = kn_model_buf (self, n * d)) || !(self->meanf = kn_model_buf (self, n))
    ||  !(self->rstdf = kn_model_buf (self, n)) || !(self->pooled = kn_model_buf (self, bsz * d))
    ||  !(self->dh = kn_model_buf (self, n * d)) || !(self->dt = kn_model_buf (self, n * d))
    ||  !(self->dt2 = kn_model_buf (self, n * d)) || !(self->dff = kn_model_buf (self, n * f))
    ||  !(self->dqkv = kn_model_buf (self, n * 3 * d)) || !(self->datt = kn_model_buf (self, att))
    ||  !(self->dpooled = kn_model_buf (self, bsz * d)))
        return -1;
    return 0;
}

void
kn_transformer_forward (kn_model_t *self, int bsz, bool train)
{
    kn_backend_t *be = self->be;
    const kn_config_t *cfg = &self->cfg;
    int t = cfg->window, d = cfg->d_model, h = cfg->n_heads, dh = d / h, f = cfg->d_ff;
    int n = bsz * t;
    size_t nd = (size_t) n * d;
    float scale = 1.0f / sqrtf ((float) dh);
    kn_model_linear_fwd (self, self->x, self->in_w, self->in_b, NULL, self->res [0], n);
    be->broadcast_add (be, self->res [0], KN_P (self->pos), bsz, (size_t) t * d);
    for (int i = 0; i < cfg->n_layers; i++) {
        kn_layer_t *ly = &self->layers [i];
        const float *hin = self->res [i];
        be->layernorm_fwd (be, hin, KN_P (ly->ln1_g), KN_P (ly->ln1_b), ly->ln1, ly->mean1, ly->rstd1, n, d);
        kn_model_linear_fwd (self, ly->ln1, ly->qkv_w, ly->qkv_b, NULL, ly->qkv, n);
        size_t st = (size_t) t * 3 * d, sa = (size_t) h * t * t;
        //  per (sample, head): scores = Q K^T, P = softmax (scale * scores), ctx = P V;
        //  head k's Q, K, V are columns k dh.. of qkv, its P the k-th t x t block
        size_t tt = (size_t) t * t;
        kn_model_gemm_heads (self, false, true, t, t, dh, 1.0f, ly->qkv, 3 * d, st, dh, ly->qkv + d, 3 * d,
                        st, dh, 0.0f, ly->att, t, sa, tt, bsz, h);
        be->softmax_fwd (be, ly->att, ly->att, bsz * h * t, t, scale);
        kn_model_gemm_heads (self, false, false, t, dh, t, 1.0f, ly->att, t, sa, tt, ly->qkv + 2 * d, 3 * d,
                        st, dh, 0.0f, ly->ctx, d, (size_t) t * d, dh, bsz, h);
        //  hmid = hin + drop (ctx Wo^T + bo); without dropout the product adds
        //  straight onto hin + bo
        bool drop = train && cfg->dropout > 0;
        kn_model_linear_fwd (self, ly->ctx, ly->o_w, ly->o_b, drop ? NULL : hin, ly->hmid, n);
        if (drop) {
            be->dropout (be, ly->hmid, ly->hmid, nd, cfg->dropout, kn_model_dropout_seed (self, 2 * i));
            be->axpy (be, 1.0f, hin, ly->hmid, nd);
        }
        be->layernorm_fwd (be, ly->hmid, KN_P (ly->ln2_g), KN_P (ly->ln2_b), ly->ln2, ly->mean2, ly->rstd2, n, d);
        kn_model_linear_fwd (self, ly->ln2, ly->f1_w, ly->f1_b, NULL, ly->f1, n);
        if (train)          //  f1 keeps act'(f1) for the backward instead of f1
            be->act_fwd_grad (be, cfg->act, ly->f1, ly->f1a, ly->f1, (size_t) n * f);
        else
            be->act_fwd (be, cfg->act, ly->f1, ly->f1a, (size_t) n * f);
        float *hout = self->res [i + 1];
        kn_model_linear_fwd (self, ly->f1a, ly->f2_w, ly->f2_b, drop ? NULL : ly->hmid, hout, n);
        if (drop) {
            be->dropout (be, hout, hout, nd, cfg->dropout, kn_model_dropout_seed (self, 2 * i + 1));
            be->axpy (be, 1.0f, ly->hmid, hout, nd);
        }
    }
    be->layernorm_fwd (be, self->res [cfg->n_layers], KN_P (self->lnf_g), KN_P (self->lnf_b), self->lnf,
                       self->meanf, self->rstdf, n, d);
    if (cfg->pool == KN_POOL_MEAN)
        be->meanpool_fwd (be, self->lnf, self->pooled, bsz, t, d);
    else
        be->copy_rows (be, self->lnf + (size_t) (t - 1) * d, t * d, self->pooled, d, bsz, d);
    kn_model_linear_fwd (self, self->pooled, self->head_w, self->head_b, NULL, self->logits, bsz);
}

void
kn_transformer_backward (kn_model_t *self, int bsz)
{
    kn_backend_t *be = self->be;
    const kn_config_t *cfg = &self->cfg;
    int t = cfg->window, d = cfg->d_model, h = cfg->n_heads, dh = d / h, f = cfg->d_ff;
    int n = bsz * t;
    size_t nd = (size_t) n * d;
    float scale = 1.0f / sqrtf ((float) dh);
    kn_model_linear_bwd (self, self->dlogits, self->pooled, self->head_w, self->head_b, self->dpooled, bsz);
    if (cfg->pool == KN_POOL_MEAN)
        be->meanpool_bwd (be, self->dpooled, self->dt, bsz, t, d);
    else {
        be->zero (be, self->dt, nd);
        be->copy_rows (be, self->dpooled, d, self->dt + (size_t) (t - 1) * d, t * d, bsz, d);
    }
    be->layernorm_bwd (be, self->dt, self->res [cfg->n_layers], KN_P (self->lnf_g), self->meanf,
                       self->rstdf, self->dh, KN_G (self->lnf_g), KN_G (self->lnf_b), n, d, false);
    for (int i = cfg->n_layers - 1; i >= 0; i--) {
        kn_layer_t *ly = &self->layers [i];
        //  hout = hmid + drop (W2 act (W1 LN2 (hmid)));  dh = d(hout)
        const float *dbr = self->dh;
        if (cfg->dropout > 0) {
            be->dropout (be, self->dh, self->dt, nd, cfg->dropout, kn_model_dropout_seed (self, 2 * i + 1));
            dbr = self->dt;
        }
        kn_model_linear_bwd (self, dbr, ly->f1a, ly->f2_w, ly->f2_b, self->dff, n);
        //  the activation's backward sums the f1 bias gradient in the same pass
        be->act_bwd_colsum (be, cfg->act, ly->f1, true, self->dff, self->dff, n, f, KN_G (ly->f1_b));
        kn_model_linear_bwd (self, self->dff, ly->ln2, ly->f1_w, -1, self->dt, n);
        //  dh += d(hmid) through LN2, in place
        be->layernorm_bwd (be, self->dt, ly->hmid, KN_P (ly->ln2_g), ly->mean2, ly->rstd2, self->dh,
                           KN_G (ly->ln2_g), KN_G (ly->ln2_b), n, d, true);
        //  hmid = hin + drop (Wo attn (LN1 (hin)));  dh = d(hmid)
        dbr = self->dh;
        if (cfg->dropout > 0) {
            be->dropout (be, self->dh, self->dt, nd, cfg->dropout, kn_model_dropout_seed (self, 2 * i));
            dbr = self->dt;
        }
        kn_model_linear_bwd (self, dbr, ly->ctx, ly->o_w, ly->o_b, self->dt2, n);
        //  dt2 = d(ctx)
        size_t st = (size_t) t * 3 * d, sa = (size_t) h * t * t, sc = (size_t) t * d;
        size_t tt = (size_t) t * t;
        //  per (sample, head): dP = dctx V^T;  dV = P^T dctx
        kn_model_gemm_heads (self, false, true, t, t, dh, 1.0f, self->dt2, d, sc, dh, ly->qkv + 2 * d, 3 * d,
                        st, dh, 0.0f, self->datt, t, sa, tt, bsz, h);
        kn_model_gemm_heads (self, true, false, t, dh, t, 1.0f, ly->att, t, sa, tt, self->dt2, d, sc, dh,
                        0.0f, self->dqkv + 2 * d, 3 * d, st, dh, bsz, h);
        be->softmax_bwd (be, ly->att, self->datt, self->datt, bsz * h * t, t, scale);
        //  dQ = dS K;  dK = dS^T Q
        kn_model_gemm_heads (self, false, false, t, dh, t, 1.0f, self->datt, t, sa, tt, ly->qkv + d, 3 * d,
                        st, dh, 0.0f, self->dqkv, 3 * d, st, dh, bsz, h);
        kn_model_gemm_heads (self, true, false, t, dh, t, 1.0f, self->datt, t, sa, tt, ly->qkv, 3 * d, st,
                        dh, 0.0f, self->dqkv + d, 3 * d, st, dh, bsz, h);
        kn_model_linear_bwd (self, self->dqkv, ly->ln1, ly->qkv_w, ly->qkv_b, self->dt, n);
        be->layernorm_bwd (be, self->dt, self->res [i], KN_P (ly->ln1_g), ly->mean1, ly->rstd1,
                           self->dh, KN_G (ly->ln1_g), KN_G (ly->ln1_b), n, d, true);
    }
    //  dh = d(res [0]) = d(x W^T + b + pos)
    be->colsum (be, self->dh, KN_G (self->pos), bsz, t * d, t * d, 0.0f);
    kn_model_linear_bwd (self, self->dh, self->x, self->in_w, self->in_b, NULL, n);
}


// ---------------------------------------------------------------- selftest

void
kn_transformer_test (bool verbose)
{
    if (verbose)
        printf ("\n");
    char err [256];
    kn_config_t tf;
    kn_model_test_config (KN_ARCH_TRANSFORMER, &tf);
    kn_model_gradcheck ("transformer binary mean", &tf, verbose);
    kn_config_t c = tf;
    c.task = KN_TASK_MULTICLASS;
    c.n_out = 3;
    c.pool = KN_POOL_LAST;
    c.n_layers = 1;
    kn_model_gradcheck ("transformer multiclass last", &c, verbose);
    c = tf;
    c.task = KN_TASK_REGRESSION;
    c.n_out = 2;
    c.dropout = 0;
    c.n_layers = 1;
    kn_model_gradcheck ("transformer regression", &c, verbose);
    kn_backend_t *be;
    //  multiclass predictions sum to 1
    {
        be = kn_cpu_new (1);
        kn_config_t mc = tf;
        mc.task = KN_TASK_MULTICLASS;
        mc.n_out = 4;
        kn_model_t *m = kn_model_new (&mc, 2, 3, be, err, sizeof err);
        float x [5 * 12], pr [5 * 4];
        for (int i = 0; i < 60; i++)
            x [i] = (float) ((i * 37) % 19) / 9.5f - 1.0f;
        assert (kn_model_predict (m, x, 5, pr) == 0);
        for (int i = 0; i < 5; i++)
            assert (fabsf (pr [i * 4] + pr [i * 4 + 1] + pr [i * 4 + 2] + pr [i * 4 + 3] - 1) < 1e-5f);
        kn_model_destroy (&m);
        kn_backend_destroy (&be);
    }
}
