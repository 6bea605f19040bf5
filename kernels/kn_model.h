/*  kn_model.h - our own neural networks: an MLP and a transformer encoder.

    One model = a description (kn_config_t), its parameters, their gradients
    and the AdamW state, all in flat float32 buffers on one backend (CPU or
    GPU, kn_backend.h). The trainer builds the batches, calls
    kn_model_train_step / kn_model_train_epoch, reads predictions with
    kn_model_predict, and serialises the model with kn_model_get_state /
    kn_model_set_state. kernels/ does no I/O: the caller logs the error texts.

    Architectures:
      MLP          x (n_in) -> [Linear -> LayerNorm? -> act -> Dropout] x n_hidden
                   -> Linear -> n_out
      TRANSFORMER  x (window x n_in, row t = time step t, oldest first)
                   -> Linear (n_in -> d_model) + learned positional embedding
                   -> n_layers x pre-LN blocks:
                        h += Dropout (Attn (LN1 (h)))   multi-head self-attention,
                                                        no mask, n_heads heads
                        h += Dropout (W2 act (W1 LN2 (h)))   d_model -> d_ff -> d_model
                   -> LayerNorm -> pool (mean over time, or the last step)
                   -> Linear (d_model -> n_out)
    Loss by task (kn_math.h): binary = BCE with logits (1 output), multiclass
    = softmax cross-entropy (labels are class indices stored as floats),
    regression = mean squared error over rows x n_out. The loss is the mean
    over the batch (as PyTorch's default reduction).

    Parameters: Linear weights are [out][in] row-major (torch.nn.Linear
    layout); kn_model_tensor lists every tensor's name, offset and shape in
    the flat buffer, in a fixed order (weight matrices and the positional
    embedding first: they get weight decay; biases and LayerNorm gains after:
    they do not). Init from the seed alone (host-side generator, so CPU and
    GPU start identical): Linear weights and biases U(-1/sqrt(fan_in),
    +1/sqrt(fan_in)) as torch.nn.Linear, positional embedding N(0, 0.02),
    LayerNorm gamma 1, beta 0.

    Determinism: same config + seed + data on the CPU => bit-identical
    parameters after any number of steps, with any thread count (no atomics,
    fixed reduction orders, products split by output rows/columns only,
    dropout masks hashed from (seed, step, site, index)).
    On the GPU cuBLAS may pick different algorithms run to run; results then
    agree to rounding only.

    Data-parallel training: give the model a backend made by kn_gpu_new_nccl;
    each rank calls train_step with its own shard of every batch.
*/
#ifndef KN_MODEL_H_INCLUDED
#define KN_MODEL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "kn_backend.h"
#include "kn_math.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    KN_ARCH_MLP = 1,
    KN_ARCH_TRANSFORMER = 2
} kn_arch_t;

typedef enum {
    KN_POOL_MEAN = 1,        //  mean over the window's time steps
    KN_POOL_LAST = 2         //  the last (newest) time step
} kn_pool_t;

//  Arithmetic of the matrix products (everything else is float32 always).
typedef enum {
    KN_PRECISION_FP32 = 0,   //  float32 products (OpenBLAS sgemm, cuBLAS): the default
    KN_PRECISION_BF16 = 1    //  operands rounded to bfloat16, sums in float32 (kn_gemm.h);
                             //  CPU backend on a CPU with AVX512-BF16 only
} kn_precision_t;

#define KN_MAX_HIDDEN 8

//  The model description. kn_config_defaults fills sensible values; set
//  arch, task, n_in, n_out (and hidden / transformer sizes) after it.
typedef struct {
    kn_arch_t arch;
    kn_task_t task;
    int n_in;                //  features per row (MLP) or per time step (transformer), >= 1
    int n_out;               //  binary 1; multiclass K >= 2 classes; regression >= 1 targets
    kn_act_t act;            //  hidden activation (MLP layers, transformer feed-forward)
    float dropout;           //  0 <= p < 1, training only
    //  MLP
    int n_hidden;            //  0..KN_MAX_HIDDEN hidden layers
    int hidden [KN_MAX_HIDDEN];
    bool layernorm;          //  LayerNorm after each hidden Linear, before the activation
    //  transformer
    int window;              //  time steps per sample, >= 1
    int d_model;             //  width, a multiple of n_heads
    int n_heads;
    int n_layers;
    int d_ff;                //  feed-forward width
    kn_pool_t pool;
    kn_precision_t precision;    //  products: fp32 (default) or bf16
} kn_config_t;

//  AdamW with linear warm-up then cosine decay to min_lr_frac * lr at
//  total_steps (constant lr when total_steps == 0).
typedef struct {
    float lr;                //  peak learning rate, > 0 (default 1e-3)
    float beta1, beta2;      //  0.9, 0.999
    float eps;               //  1e-8
    float weight_decay;      //  0.01 (decoupled; weight matrices and positional embedding only)
    long warmup_steps;       //  0
    long total_steps;        //  0 = no schedule
    float min_lr_frac;       //  0.0
} kn_optim_t;

//  One parameter tensor inside the flat buffer.
typedef struct {
    char name [48];          //  e.g. "hidden.0.weight", "layers.2.attn.qkv.weight", "head.bias"
    size_t offset;           //  in floats from the start of the buffer
    int rows, cols;          //  shape (a vector has rows = 1)
    bool decay;              //  gets weight decay
} kn_tensor_t;

typedef struct kn_model_s kn_model_t;

//  Fills *cfg with defaults: MLP, binary, n_in 0 (must be set), n_out 1,
//  GELU, dropout 0, hidden {256, 256}, no layernorm; transformer window 64,
//  d_model 128, 4 heads, 4 layers, d_ff 512, mean pooling; precision fp32.
void kn_config_defaults (kn_config_t *cfg);

//  Fills *opt with the defaults above.
void kn_optim_defaults (kn_optim_t *opt);

//  Returns 0 when cfg describes a buildable model, else -1 with what is
//  wrong (field and value) in err. precision bf16 fails here on a CPU
//  without AVX512-BF16 (and kn_model_new refuses it on a backend without
//  bf16 products, such as the GPU's).
int kn_config_check (const kn_config_t *cfg, char *err, size_t err_size);

//  Returns 0 when opt is usable, else -1 with the reason in err.
int kn_optim_check (const kn_optim_t *opt, char *err, size_t err_size);

//  Returns the learning rate of step (counting from 0).
float kn_optim_lr (const kn_optim_t *opt, long step);

//  Returns a new model on backend be (borrowed; it must outlive the model)
//  with parameters initialised from seed and room for batches of up to
//  max_batch samples; or NULL with the reason in err (bad config, or the
//  backend ran out of memory).
kn_model_t *kn_model_new (const kn_config_t *cfg, int max_batch, uint64_t seed,
                          kn_backend_t *be, char *err, size_t err_size);

//  Destroys the model, sets *self_p to NULL; accepts NULL.
void kn_model_destroy (kn_model_t **self_p);

//  Returns the description it was built with. Borrowed.
const kn_config_t *kn_model_config (const kn_model_t *self);

//  Returns the number of float parameters.
size_t kn_model_n_params (const kn_model_t *self);

//  Returns floats per input sample: n_in (MLP) or window * n_in (transformer).
size_t kn_model_in_size (const kn_model_t *self);

//  Returns floats per label row: n_out for regression, else 1.
size_t kn_model_label_size (const kn_model_t *self);

//  Returns the number of optimizer steps taken so far.
uint64_t kn_model_step (const kn_model_t *self);

//  Returns the number of parameter tensors; kn_model_tensor fills *out with
//  tensor i (0 <= i < count) and returns 0, or -1 when i is out of range.
int kn_model_n_tensors (const kn_model_t *self);
int kn_model_tensor (const kn_model_t *self, int i, kn_tensor_t *out);

//  Predictions for n samples (host memory, any n: batched internally):
//  x is n x in_size floats, out receives n x n_out: probabilities (sigmoid
//  for binary, softmax for multiclass) or values (regression). Inference
//  mode (no dropout). 0 or -1 (backend failure; kn_model_error says why).
int kn_model_predict (kn_model_t *self, const float *x, size_t n, float *out);

//  Forward in training mode + loss + backward for one batch (batch <=
//  max_batch; x batch x in_size, y batch x label_size, host memory):
//  leaves the gradients in the model (kn_model_get_grads) and the mean loss
//  in *loss; parameters are not changed. Labels are validated (0/1 for
//  binary, an integer class in [0, n_out) for multiclass, finite for
//  regression; inputs must be finite): -1 with where in kn_model_error.
//  With a data-parallel backend the gradients are averaged over the group.
int kn_model_loss_grad (kn_model_t *self, const float *x, const float *y, int batch,
                        float *loss);

//  kn_model_loss_grad, then one AdamW step with the learning rate of
//  kn_optim_lr (opt, step); increments the step. 0 or -1.
int kn_model_train_step (kn_model_t *self, const kn_optim_t *opt, const float *x,
                         const float *y, int batch, float *loss);

//  One pass over n samples in a shuffled order (Fisher-Yates from
//  shuffle_seed), batches of `batch` (<= max_batch; the last, smaller batch
//  is included). *mean_loss = the sample-weighted mean of the batch losses.
//  0 or -1.
int kn_model_train_epoch (kn_model_t *self, const kn_optim_t *opt, const float *x,
                          const float *y, size_t n, int batch, uint64_t shuffle_seed,
                          double *mean_loss);

//  Mean loss over n samples in inference mode (validation). 0 or -1.
int kn_model_eval_loss (kn_model_t *self, const float *x, const float *y, size_t n,
                        double *mean_loss);

//  Copy the flat buffers to / from host memory (n_params floats each).
//  A checkpoint is params + adam_m + adam_v + step; set_state restores all
//  four into a model built with the same config and seed (dropout masks
//  derive from seed and step), so training continues bit-identically on the
//  CPU. set_state refuses non-finite values or negative adam_v. 0 or -1.
int kn_model_get_params (kn_model_t *self, float *params);
int kn_model_set_params (kn_model_t *self, const float *params);
int kn_model_get_grads (kn_model_t *self, float *grads);
int kn_model_get_state (kn_model_t *self, float *params, float *adam_m, float *adam_v,
                        uint64_t *step);
int kn_model_set_state (kn_model_t *self, const float *params, const float *adam_m,
                        const float *adam_v, uint64_t step);

//  Returns "fp32" or "bf16" (static); kn_precision_parse sets *out from
//  such a name and returns 0, or -1 for any other text.
const char *kn_precision_name (kn_precision_t precision);
int kn_precision_parse (const char *name, kn_precision_t *out);

//  Returns the last error's description ("" when none). Borrowed.
const char *kn_model_error (const kn_model_t *self);

//  Selftest: gradient checks of the whole models, determinism, learning.
void kn_model_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
