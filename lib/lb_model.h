/*  lb_model.h - the model artifact: what a trainer writes, what the evaluator
    and the deployer read and score.

    A model is self-describing: its family (xgboost, rf, mlp, transformer,
    ensemble), its task (binary classification or regression), the feature
    names in the order it expects them, the standardisation fitted on the
    training rows only (nets; trees carry none), the hyperparameters it was
    trained with (JSON object), its training metrics, free-form provenance
    (dataset URI, seed, trained_at, library versions, ...), and named binary
    blobs: "xgboost.ubj" (XGBoost's UBJSON model) for xgboost and rf,
    "weights" for the nets. An ensemble holds its member models (complete
    models, nested) and one weight per member on the simplex.

    File format, version 1 (all integers little-endian):

        "PRDMODEL"            8 bytes magic
        u32 version           LB_MODEL_FORMAT_VERSION
        u32 reserved          0
        u64 header_size       bytes of JSON that follow
        header                JSON object (UTF-8): format, family, task,
                              features [names], standardisation {mean [], scale []}
                              or null, params {}, metrics {}, info {}, members
                              [{weight}], blobs [{name, size, sha256}]
        blob bytes            each blob in the order listed, back to back
                              (ensemble members are blobs "member.N", each a
                              complete model file)
        sha256                32 bytes: SHA-256 of everything before it

    Loading checks all of it: magic, version, sizes, the trailing checksum,
    every blob's checksum, the JSON's keys and types, the family's needs (an
    XGBoost blob that XGBoost loads and whose feature count matches, weights
    whose size matches the architecture, members that load and weights that
    sum to one), and says what is wrong and where.

    Scoring: lb_model_predict takes raw (unstandardised) feature rows in the
    model's feature order, NaN meaning missing, and writes one value per row:
    P(label = 1) for binary models, the prediction for regression. The model
    applies its own standardisation.
*/
#ifndef LB_MODEL_H_INCLUDED
#define LB_MODEL_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LB_MODEL_FORMAT_VERSION 1
#define LB_MODEL_MAGIC          "PRDMODEL"
//  Largest model file we accept (an RF of 300 deep trees is ~200 MB).
#define LB_MODEL_MAX_SIZE       ((size_t) 2 << 30)

typedef enum {
    LB_MODEL_XGBOOST = 1,
    LB_MODEL_RF,
    LB_MODEL_MLP,
    LB_MODEL_TRANSFORMER,
    LB_MODEL_ENSEMBLE
} lb_model_family_t;

typedef enum {
    LB_MODEL_BINARY = 1,
    LB_MODEL_REGRESSION
} lb_model_task_t;

typedef struct _lb_model_t lb_model_t;

//  Returns the family's name ("xgboost", "rf", "mlp", "transformer",
//  "ensemble"); static string.
const char *lb_model_family_name (lb_model_family_t family);

//  Parses a family name into *family. Returns 0, or -1 if unknown.
int lb_model_family_parse (const char *name, lb_model_family_t *family);

//  Returns the task's name ("binary", "regression"); static string.
const char *lb_model_task_name (lb_model_task_t task);

//  Parses a task name. Returns 0, or -1 if unknown.
int lb_model_task_parse (const char *name, lb_model_task_t *task);

//  Returns a new, empty model of family and task. Never NULL.
lb_model_t *lb_model_new (lb_model_family_t family, lb_model_task_t task);

//  Destroys the model (and its members). Accepts NULL; sets *self_p to NULL.
void lb_model_destroy (lb_model_t **self_p);

lb_model_family_t lb_model_family (const lb_model_t *self);
lb_model_task_t lb_model_task (const lb_model_t *self);

//  Sets the feature names (copied), replacing any. Clears the standardisation.
void lb_model_set_features (lb_model_t *self, const char *const *names, size_t count);

//  Returns the number of features / the name of feature i (borrowed).
size_t lb_model_feature_count (const lb_model_t *self);
const char *lb_model_feature_name (const lb_model_t *self, size_t i);

//  Sets the standardisation x' = (x - mean[i]) / scale[i], arrays of
//  lb_model_feature_count () values (copied). Every scale must be finite and
//  > 0 (our bug otherwise: assert).
void lb_model_set_standardisation (lb_model_t *self, const float *mean, const float *scale);

//  Returns true and borrowed pointers when the model has a standardisation.
bool lb_model_standardisation (const lb_model_t *self, const float **mean, const float **scale);

//  Sets the hyperparameters as JSON object text (copied). Returns 0, or -1
//  (logged) if json is not a JSON object.
int lb_model_set_params (lb_model_t *self, const char *json);

//  Returns the hyperparameters as compact JSON text; caller frees.
char *lb_model_params (const lb_model_t *self);

//  Reads one hyperparameter as a number / string. Returns 0, or -1 if
//  absent or of another type.
int lb_model_param_real (const lb_model_t *self, const char *name, double *value);
int lb_model_param_str (const lb_model_t *self, const char *name, const char **value);

//  Sets / reads a training metric ("val_logloss", "best_iteration", ...).
//  lb_model_metric returns 0, or -1 if absent.
void lb_model_set_metric (lb_model_t *self, const char *name, double value);
int lb_model_metric (const lb_model_t *self, const char *name, double *value);

//  Returns the metrics as compact JSON text; caller frees.
char *lb_model_metrics_json (const lb_model_t *self);

//  Sets / reads a provenance string ("dataset", "seed", "trained_at",
//  "lib.xgboost", ...). lb_model_info returns NULL if absent (borrowed).
//  lb_model_new already records the library versions under "lib.*".
void lb_model_set_info (lb_model_t *self, const char *key, const char *value);
const char *lb_model_info (const lb_model_t *self, const char *key);

//  Sets a named blob (copied), replacing one of the same name.
void lb_model_set_blob (lb_model_t *self, const char *name, const void *data, size_t size);

//  Returns a borrowed pointer to the blob and its size, or NULL if absent.
const void *lb_model_blob (const lb_model_t *self, const char *name, size_t *size);

//  Ensemble only: adds a member with its weight; takes *member_p (NULL after).
//  Members must share the ensemble's task and features (our bug otherwise).
void lb_model_add_member (lb_model_t *self, lb_model_t **member_p, double weight);

//  Returns the number of members / member i (borrowed) and its weight.
size_t lb_model_member_count (const lb_model_t *self);
lb_model_t *lb_model_member (const lb_model_t *self, size_t i, double *weight);

//  Serialises the model to a new buffer (*data, caller frees). Returns 0, or
//  -1 (logged) if the model is incomplete (e.g. an xgboost model without its
//  blob) or cannot be serialised.
int lb_model_to_buffer (const lb_model_t *self, uint8_t **data, size_t *size);

//  Parses and checks a model file image. Returns the model, or NULL after
//  logging what is wrong; when err is not NULL, the reason is also written
//  there (what and where, e.g. "header: features[3]: not a string").
lb_model_t *lb_model_from_buffer (const void *data, size_t size, char *err, size_t err_size);

//  Writes the model to path atomically (temporary file, fsync, rename).
//  Returns 0, or -1 after logging.
int lb_model_save (const lb_model_t *self, const char *path);

//  Reads and checks the model file at path. Returns the model or NULL
//  (logged; reason in err when not NULL, prefixed with the path).
lb_model_t *lb_model_load (const char *path, char *err, size_t err_size);

//  Returns the SHA-256 of the model's file image as 64 hex characters
//  (caller frees), or NULL if it cannot be serialised.
char *lb_model_digest (const lb_model_t *self);

//  Scores rows x rows of cols raw features (row-major, model feature order;
//  NaN = missing) into out[rows]: P(label = 1) for binary, the prediction
//  for regression. nthread 0 = library default. Returns 0, or -1 (logged;
//  reason in err when not NULL) when cols does not match the model, the
//  input has NaN where the family cannot take it, or the family's scorer
//  fails or is not available in this build.
int lb_model_predict (lb_model_t *self, const float *x, size_t rows, size_t cols,
                      int nthread, float *out, char *err, size_t err_size);

//  Selftest.
void lb_model_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
