/*  kn_model_int.h - inside the models: the model struct and the helpers that
    kn_model.c (construction, training, state), kn_mlp.c and kn_transformer.c
    (the two networks' forward and backward) share. Only kernels/ includes it;
    everyone else sees kn_model_t as opaque through kn_model.h.
*/
#ifndef KN_MODEL_INT_H_INCLUDED
#define KN_MODEL_INT_H_INCLUDED

#include "kn_model.h"

#ifdef __cplusplus
extern "C" {
#endif

#define KN_MAX_TENSORS (16 * 4 + 8)   //  16 layers x 4 matrices + the rest

//  One transformer layer's parameters (tensor ids) and saved activations.
typedef struct {
    int ln1_g, ln1_b, qkv_w, qkv_b, o_w, o_b, ln2_g, ln2_b, f1_w, f1_b, f2_w, f2_b;
    float *ln1, *mean1, *rstd1, *qkv, *att, *ctx, *hmid, *ln2, *mean2, *rstd2, *f1, *f1a;
} kn_layer_t;

struct kn_model_s {
    kn_config_t cfg;
    kn_backend_t *be;                   //  borrowed
    int max_batch;
    uint64_t seed;
    uint64_t step;
    size_t in_size, label_size;
    int n_tensors;
    kn_tensor_t tensors [KN_MAX_TENSORS];
    size_t n_params, n_decay;           //  decayed tensors come first
    float *params, *grads, *adam_m, *adam_v;
    //  batch input, labels, output
    float *x, *y, *logits, *dlogits, *losses;
    float *host_losses;
    //  MLP (per hidden layer)
    int w [KN_MAX_HIDDEN + 1], b [KN_MAX_HIDDEN + 1], lng [KN_MAX_HIDDEN], lnb [KN_MAX_HIDDEN];
    float *z [KN_MAX_HIDDEN], *lnout [KN_MAX_HIDDEN], *lnmean [KN_MAX_HIDDEN],
          *lnrstd [KN_MAX_HIDDEN], *act [KN_MAX_HIDDEN], *drop [KN_MAX_HIDDEN];
    float *d1, *d2, *d3;                //  scratch gradients, max_batch x widest layer
    //  transformer
    int in_w, in_b, pos, lnf_g, lnf_b, head_w, head_b;
    kn_layer_t *layers;
    float **res;                        //  n_layers + 1 residual streams (N x D)
    float *lnf, *meanf, *rstdf, *pooled;
    float *dh, *dt, *dt2, *dff, *dqkv, *datt, *dpooled;
    //  every buffer allocated on the backend, to free them in one loop
    float **bufs;
    int n_bufs, cap_bufs;
    char error [256];
};

#define P(id) (self->params + self->tensors [id].offset)
#define G(id) (self->grads + self->tensors [id].offset)

//  Parameter / gradient of tensor id (in a function with `self`).
#define KN_P(id) (self->params + self->tensors [id].offset)
#define KN_G(id) (self->grads + self->tensors [id].offset)

//  Returns n zeroed floats on the model's backend, freed with the model; NULL
//  when the backend is out of memory.
float *kn_model_buf (kn_model_t *self, size_t n);

//  Declares a parameter tensor (rows x cols; decay = gets weight decay) and
//  returns its id; kn_model_add_tensori names it prefix + i + suffix.
int kn_model_add_tensor (kn_model_t *self, const char *name, int rows, int cols, bool decay);
int kn_model_add_tensori (kn_model_t *self, int rows, int cols, bool decay, const char *prefix,
                          int i, const char *suffix);

//  Returns the dropout seed of site (one per dropout layer) at the current step.
uint64_t kn_model_dropout_seed (kn_model_t *self, int site);

//  The backend's gemm / gemm_heads in the model's precision (bf16 ->
//  gemm_bf16 / gemm_heads_bf16, which kn_model_new made sure exist).
void kn_model_gemm (kn_model_t *self, bool ta, bool tb, int m, int n, int k, float alpha,
                    const float *a, int lda, const float *b, int ldb, float beta, float *c,
                    int ldc);
void kn_model_gemm_heads (kn_model_t *self, bool ta, bool tb, int m, int n, int k, float alpha,
                          const float *a, int lda, size_t sa, size_t ha, const float *b, int ldb,
                          size_t sb, size_t hb, float beta, float *c, int ldc, size_t sc,
                          size_t hc, int count, int heads);

//  y (rows x out) = res + x (rows x in) W^T + b, with tensors w (out x in)
//  and b; res (rows x out, a residual stream) may be NULL.
void kn_model_linear_fwd (kn_model_t *self, const float *x, int w, int b, const float *res,
                          float *y, int rows);

//  Given dy and the forward input x: dW and db added to (the gradients
//  start zeroed each backward; b < 0 leaves db alone, for a caller that
//  summed it already) and, when dx is not NULL, dx (rows x in, overwritten).
void kn_model_linear_bwd (kn_model_t *self, const float *dy, const float *x, int w, int b,
                          float *dx, int rows);

//  Test helper: the small MLP (4 -> 6 -> 5 -> 1, LayerNorm, dropout 0.2) or
//  transformer (3 inputs, window 4, width 8, 2 heads, 2 layers, d_ff 10,
//  dropout 0.2) the selftests share.
void kn_model_test_config (kn_arch_t arch, kn_config_t *cfg);

//  Test helper: every parameter's gradient of a small model built from cfg
//  against float64 central differences of the loss (asserts).
void kn_model_gradcheck (const char *what, const kn_config_t *cfg, bool verbose);

//  The networks. declare: add the tensors; alloc: the activation buffers
//  for max_batch (0 or -1 out of memory); forward: from self->x into
//  self->logits (train: dropout on); backward: from self->dlogits into
//  self->grads (zeroed by the caller).
void kn_mlp_declare (kn_model_t *self);
int kn_mlp_alloc (kn_model_t *self);
void kn_mlp_forward (kn_model_t *self, int rows, bool train);
void kn_mlp_backward (kn_model_t *self, int rows);
void kn_mlp_test (bool verbose);

void kn_transformer_declare (kn_model_t *self);
int kn_transformer_alloc (kn_model_t *self);
void kn_transformer_forward (kn_model_t *self, int rows, bool train);
void kn_transformer_backward (kn_model_t *self, int rows);
void kn_transformer_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
