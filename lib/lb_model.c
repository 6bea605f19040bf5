/*  lb_model.c - the model artifact (see lb_model.h for the format).

    The file image is a pure function of the model's content: no timestamps,
    JSON keys sorted, blobs in the order they were set. Two trainings that
    produce the same weights produce the same bytes (and so the same
    content address in the artifact store); when a model was trained goes
    into the job's result and the registry, not into the file.
*/
#include "lb_model.h"
#include "lb_dataset.h"
#include "lb_log.h"
#include "lb_mem.h"
#include "lb_selftest.h"
#include "kn_gemm.h"
#include "kn_model.h"

#include <assert.h>
#include <cblas.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <math.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xgboost/c_api.h>

typedef struct {
    char *name;
    uint8_t *data;
    size_t size;
} s_blob_t;

struct _lb_model_t {
    lb_model_family_t family;
    lb_model_task_t task;
    char **features;
    size_t nfeatures;
    float *mean;                //  NULL: no standardisation
    float *scale;
    json_t *params;             //  object
    json_t *metrics;            //  object of numbers
    json_t *info;               //  object of strings
    s_blob_t *blobs;
    size_t nblobs;
    lb_model_t **members;
    double *weights;
    size_t nmembers;
    BoosterHandle booster;      //  xgboost / rf: loaded from the blob on first use
    kn_backend_t *backend;      //  mlp / transformer: built on first use
    kn_model_t *net;
    int net_threads;
};

#define S_HEAD      24          //  magic + version + reserved + header size
#define S_XGB_BLOB  "xgboost.ubj"
#define S_MAX_FEATURES 100000
#define S_MAX_MEMBERS  64
#define S_MAX_DEPTH    4        //  ensembles of ensembles, at most this deep

static const char *s_family_names [] = {
    NULL, "xgboost", "rf", "mlp", "transformer", "ensemble"
};
static const char *s_task_names [] = { NULL, "binary", "regression" };

static void
s_err (char *err, size_t err_size, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));
static void
s_err (char *err, size_t err_size, const char *fmt, ...)
{
    char buf [512];
    va_list args;
    va_start (args, fmt);
    vsnprintf (buf, sizeof buf, fmt, args);
    va_end (args);
    if (err && err_size)
        snprintf (err, err_size, "%s", buf);
}

const char *
lb_model_family_name (lb_model_family_t family)
{
    assert (family >= LB_MODEL_XGBOOST && family <= LB_MODEL_ENSEMBLE);
    return s_family_names [family];
}

int
lb_model_family_parse (const char *name, lb_model_family_t *family)
{
    for (int i = LB_MODEL_XGBOOST; name && i <= LB_MODEL_ENSEMBLE; i++)
        if (strcmp (name, s_family_names [i]) == 0) {
            *family = (lb_model_family_t) i;
            return 0;
        }
    return -1;
}

const char *
lb_model_task_name (lb_model_task_t task)
{
    assert (task == LB_MODEL_BINARY || task == LB_MODEL_REGRESSION);
    return s_task_names [task];
}

int
lb_model_task_parse (const char *name, lb_model_task_t *task)
{
    for (int i = LB_MODEL_BINARY; name && i <= LB_MODEL_REGRESSION; i++)
        if (strcmp (name, s_task_names [i]) == 0) {
            *task = (lb_model_task_t) i;
            return 0;
        }
    return -1;
}

lb_model_t *
lb_model_new (lb_model_family_t family, lb_model_task_t task)
{
    assert (family >= LB_MODEL_XGBOOST && family <= LB_MODEL_ENSEMBLE);
    assert (task == LB_MODEL_BINARY || task == LB_MODEL_REGRESSION);
    lb_model_t *self = lb_xcalloc (1, sizeof *self);
    self->family = family;
    self->task = task;
    self->params = json_object ();
    self->metrics = json_object ();
    self->info = json_object ();
    assert (self->params && self->metrics && self->info);

    int major, minor, patch;
    XGBoostVersion (&major, &minor, &patch);
    char version [64];
    snprintf (version, sizeof version, "%d.%d.%d", major, minor, patch);
    lb_model_set_info (self, "lib.xgboost", version);
    lb_model_set_info (self, "lib.openblas", openblas_get_config ());
    lb_model_set_info (self, "lib.jansson", JANSSON_VERSION);
    lb_model_set_info (self, "lib.compiler", "gcc " __VERSION__);
    return self;
}

void
lb_model_destroy (lb_model_t **self_p)
{
    assert (self_p);
    lb_model_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->nfeatures; i++)
        free (self->features [i]);
    free (self->features);
    free (self->mean);
    free (self->scale);
    json_decref (self->params);
    json_decref (self->metrics);
    json_decref (self->info);
    for (size_t i = 0; i < self->nblobs; i++) {
        free (self->blobs [i].name);
        free (self->blobs [i].data);
    }
    free (self->blobs);
    for (size_t i = 0; i < self->nmembers; i++)
        lb_model_destroy (&self->members [i]);
    free (self->members);
    free (self->weights);
    if (self->booster)
        XGBoosterFree (self->booster);
    kn_model_destroy (&self->net);
    kn_backend_destroy (&self->backend);
    free (self);
    *self_p = NULL;
}

lb_model_family_t
lb_model_family (const lb_model_t *self)
{
    assert (self);
    return self->family;
}

lb_model_task_t
lb_model_task (const lb_model_t *self)
{
    assert (self);
    return self->task;
}

void
lb_model_set_features (lb_model_t *self, const char *const *names, size_t count)
{
    assert (self);
    assert (names || count == 0);
    for (size_t i = 0; i < self->nfeatures; i++)
        free (self->features [i]);
    free (self->features);
    free (self->mean);
    free (self->scale);
    self->mean = self->scale = NULL;
    self->features = lb_xcalloc (count ? count : 1, sizeof (char *));
    for (size_t i = 0; i < count; i++) {
        assert (names [i]);
        self->features [i] = lb_xstrdup (names [i]);
    }
    self->nfeatures = count;
}

size_t
lb_model_feature_count (const lb_model_t *self)
{
    assert (self);
    return self->nfeatures;
}

const char *
lb_model_feature_name (const lb_model_t *self, size_t i)
{
    assert (self);
    assert (i < self->nfeatures);
    return self->features [i];
}

void
lb_model_set_standardisation (lb_model_t *self, const float *mean, const float *scale)
{
    assert (self);
    assert (mean && scale);
    free (self->mean);
    free (self->scale);
    size_t n = self->nfeatures ? self->nfeatures : 1;
    self->mean = lb_xmalloc (n * sizeof (float));
    self->scale = lb_xmalloc (n * sizeof (float));
    for (size_t i = 0; i < self->nfeatures; i++) {
        assert (isfinite (mean [i]));
        assert (isfinite (scale [i]) && scale [i] > 0);
        self->mean [i] = mean [i];
        self->scale [i] = scale [i];
    }
}

bool
lb_model_standardisation (const lb_model_t *self, const float **mean, const float **scale)
{
    assert (self);
    if (!self->mean)
        return false;
    if (mean)
        *mean = self->mean;
    if (scale)
        *scale = self->scale;
    return true;
}

int
lb_model_set_params (lb_model_t *self, const char *json)
{
    assert (self);
    assert (json);
    json_error_t error;
    json_t *value = json_loads (json, JSON_REJECT_DUPLICATES, &error);
    if (!value || !json_is_object (value)) {
        lb_log_error ("model params: not a JSON object: %s", value ? "other type" : error.text);
        json_decref (value);
        return -1;
    }
    json_decref (self->params);
    self->params = value;
    return 0;
}

char *
lb_model_params (const lb_model_t *self)
{
    assert (self);
    char *text = json_dumps (self->params, JSON_COMPACT | JSON_SORT_KEYS);
    assert (text);
    char *copy = lb_xstrdup (text);
    free (text);
    return copy;
}

int
lb_model_param_real (const lb_model_t *self, const char *name, double *value)
{
    assert (self && name && value);
    json_t *v = json_object_get (self->params, name);
    if (!json_is_number (v))
        return -1;
    *value = json_number_value (v);
    return 0;
}

int
lb_model_param_str (const lb_model_t *self, const char *name, const char **value)
{
    assert (self && name && value);
    json_t *v = json_object_get (self->params, name);
    if (!json_is_string (v))
        return -1;
    *value = json_string_value (v);
    return 0;
}

void
lb_model_set_metric (lb_model_t *self, const char *name, double value)
{
    assert (self && name);
    if (!isfinite (value)) {
        lb_log_warn ("model metric %s is not finite; not recorded", name);
        json_object_del (self->metrics, name);
        return;
    }
    json_object_set_new (self->metrics, name, json_real (value));
}

int
lb_model_metric (const lb_model_t *self, const char *name, double *value)
{
    assert (self && name && value);
    json_t *v = json_object_get (self->metrics, name);
    if (!json_is_number (v))
        return -1;
    *value = json_number_value (v);
    return 0;
}

char *
lb_model_metrics_json (const lb_model_t *self)
{
    assert (self);
    char *text = json_dumps (self->metrics, JSON_COMPACT | JSON_SORT_KEYS);
    assert (text);
    char *copy = lb_xstrdup (text);
    free (text);
    return copy;
}

void
lb_model_set_info (lb_model_t *self, const char *key, const char *value)
{
    assert (self && key && value);
    json_object_set_new (self->info, key, json_string (value));
}

const char *
lb_model_info (const lb_model_t *self, const char *key)
{
    assert (self && key);
    return json_string_value (json_object_get (self->info, key));
}

void
lb_model_set_blob (lb_model_t *self, const char *name, const void *data, size_t size)
{
    assert (self && name);
    assert (data || size == 0);
    s_blob_t *blob = NULL;
    for (size_t i = 0; i < self->nblobs; i++)
        if (strcmp (self->blobs [i].name, name) == 0)
            blob = &self->blobs [i];
    if (!blob) {
        self->blobs = lb_xrealloc (self->blobs, (self->nblobs + 1) * sizeof *self->blobs);
        blob = &self->blobs [self->nblobs++];
        blob->name = lb_xstrdup (name);
    }
    else
        free (blob->data);
    blob->data = lb_xmalloc (size ? size : 1);
    if (size)
        memcpy (blob->data, data, size);
    blob->size = size;
    if (strcmp (name, S_XGB_BLOB) == 0 && self->booster) {
        XGBoosterFree (self->booster);
        self->booster = NULL;
    }
    if (strcmp (name, "weights") == 0)
        kn_model_destroy (&self->net);
}

const void *
lb_model_blob (const lb_model_t *self, const char *name, size_t *size)
{
    assert (self && name);
    for (size_t i = 0; i < self->nblobs; i++)
        if (strcmp (self->blobs [i].name, name) == 0) {
            if (size)
                *size = self->blobs [i].size;
            return self->blobs [i].data;
        }
    return NULL;
}

void
lb_model_add_member (lb_model_t *self, lb_model_t **member_p, double weight)
{
    assert (self && member_p && *member_p);
    assert (self->family == LB_MODEL_ENSEMBLE);
    lb_model_t *member = *member_p;
    assert (member->task == self->task);
    assert (member->nfeatures == self->nfeatures);
    for (size_t i = 0; i < self->nfeatures; i++)
        assert (strcmp (member->features [i], self->features [i]) == 0);
    assert (isfinite (weight) && weight >= 0);
    self->members = lb_xrealloc (self->members, (self->nmembers + 1) * sizeof *self->members);
    self->weights = lb_xrealloc (self->weights, (self->nmembers + 1) * sizeof *self->weights);
    self->members [self->nmembers] = member;
    self->weights [self->nmembers] = weight;
    self->nmembers++;
    *member_p = NULL;
}

size_t
lb_model_member_count (const lb_model_t *self)
{
    assert (self);
    return self->nmembers;
}

lb_model_t *
lb_model_member (const lb_model_t *self, size_t i, double *weight)
{
    assert (self);
    assert (i < self->nmembers);
    if (weight)
        *weight = self->weights [i];
    return self->members [i];
}

// ---------------------------------------------------------------- writing

static void
s_put_u32 (uint8_t *p, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        p [i] = (uint8_t) (v >> (8 * i));
}

static void
s_put_u64 (uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++)
        p [i] = (uint8_t) (v >> (8 * i));
}

static uint32_t
s_get_u32 (const uint8_t *p)
{
    uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v |= (uint32_t) p [i] << (8 * i);
    return v;
}

static uint64_t
s_get_u64 (const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 0; i < 8; i++)
        v |= (uint64_t) p [i] << (8 * i);
    return v;
}

static void
s_hex (const uint8_t *digest, char *hex)
{
    for (int i = 0; i < 32; i++)
        snprintf (hex + 2 * i, 3, "%02x", digest [i]);
}

static void
s_sha256_hex (const void *data, size_t size, char hex [65])
{
    uint8_t digest [32];
    crypto_hash_sha256 (digest, data, size);
    s_hex (digest, hex);
}

//  Checks what a family needs before writing. Returns 0 or -1 (logged).
static int
s_check_complete (const lb_model_t *self)
{
    if (self->family == LB_MODEL_XGBOOST || self->family == LB_MODEL_RF) {
        if (!lb_model_blob (self, S_XGB_BLOB, NULL)) {
            lb_log_error ("model %s: no %s blob", lb_model_family_name (self->family), S_XGB_BLOB);
            return -1;
        }
    }
    else
    if (self->family == LB_MODEL_MLP || self->family == LB_MODEL_TRANSFORMER) {
        if (!lb_model_blob (self, "weights", NULL) || !self->mean) {
            lb_log_error ("model %s: needs weights and a standardisation",
                          lb_model_family_name (self->family));
            return -1;
        }
    }
    else
    if (self->nmembers == 0) {
        lb_log_error ("model ensemble: no members");
        return -1;
    }
    return 0;
}

int
lb_model_to_buffer (const lb_model_t *self, uint8_t **data, size_t *size)
{
    assert (self && data && size);
    if (s_check_complete (self))
        return -1;

    //  Members become blobs member.N, each a complete model image.
    size_t nall = self->nblobs + self->nmembers;
    const uint8_t **bdata = lb_xcalloc (nall + 1, sizeof *bdata);
    size_t *bsize = lb_xcalloc (nall + 1, sizeof *bsize);
    char **bname = lb_xcalloc (nall + 1, sizeof *bname);
    uint8_t **owned = lb_xcalloc (self->nmembers + 1, sizeof *owned);
    json_t *header = NULL;
    char *text = NULL;
    int rc = -1;

    for (size_t i = 0; i < self->nblobs; i++) {
        bdata [i] = self->blobs [i].data;
        bsize [i] = self->blobs [i].size;
        bname [i] = lb_xstrdup (self->blobs [i].name);
    }
    for (size_t m = 0; m < self->nmembers; m++) {
        size_t k = self->nblobs + m;
        if (lb_model_to_buffer (self->members [m], &owned [m], &bsize [k]))
            goto out;
        bdata [k] = owned [m];
        bname [k] = lb_xasprintf ("member.%zu", m);
    }

    header = json_object ();
    json_object_set_new (header, "format", json_integer (LB_MODEL_FORMAT_VERSION));
    json_object_set_new (header, "family", json_string (lb_model_family_name (self->family)));
    json_object_set_new (header, "task", json_string (lb_model_task_name (self->task)));
    json_t *features = json_array ();
    for (size_t i = 0; i < self->nfeatures; i++)
        json_array_append_new (features, json_string (self->features [i]));
    json_object_set_new (header, "features", features);
    if (self->mean) {
        json_t *mean = json_array (), *scale = json_array ();
        for (size_t i = 0; i < self->nfeatures; i++) {
            json_array_append_new (mean, json_real (self->mean [i]));
            json_array_append_new (scale, json_real (self->scale [i]));
        }
        json_t *std = json_object ();
        json_object_set_new (std, "mean", mean);
        json_object_set_new (std, "scale", scale);
        json_object_set_new (header, "standardisation", std);
    }
    else
        json_object_set_new (header, "standardisation", json_null ());
    json_object_set (header, "params", self->params);
    json_object_set (header, "metrics", self->metrics);
    json_object_set (header, "info", self->info);
    json_t *members = json_array ();
    for (size_t m = 0; m < self->nmembers; m++) {
        json_t *member = json_object ();
        json_object_set_new (member, "weight", json_real (self->weights [m]));
        json_object_set_new (member, "family",
                             json_string (lb_model_family_name (self->members [m]->family)));
        json_array_append_new (members, member);
    }
    json_object_set_new (header, "members", members);
    json_t *blobs = json_array ();
    for (size_t i = 0; i < nall; i++) {
        char hex [65];
        s_sha256_hex (bdata [i], bsize [i], hex);
        json_t *blob = json_object ();
        json_object_set_new (blob, "name", json_string (bname [i]));
        json_object_set_new (blob, "size", json_integer ((json_int_t) bsize [i]));
        json_object_set_new (blob, "sha256", json_string (hex));
        json_array_append_new (blobs, blob);
    }
    json_object_set_new (header, "blobs", blobs);

    text = json_dumps (header, JSON_INDENT (1) | JSON_SORT_KEYS | JSON_REAL_PRECISION (17));
    assert (text);
    size_t hsize = strlen (text);
    size_t total = S_HEAD + hsize + 32;
    for (size_t i = 0; i < nall; i++)
        total += bsize [i];
    if (total > LB_MODEL_MAX_SIZE) {
        lb_log_error ("model: %zu bytes is more than the %zu allowed", total, LB_MODEL_MAX_SIZE);
        goto out;
    }
    uint8_t *buf = lb_xmalloc (total);
    memcpy (buf, LB_MODEL_MAGIC, 8);
    s_put_u32 (buf + 8, LB_MODEL_FORMAT_VERSION);
    s_put_u32 (buf + 12, 0);
    s_put_u64 (buf + 16, hsize);
    memcpy (buf + S_HEAD, text, hsize);
    size_t at = S_HEAD + hsize;
    for (size_t i = 0; i < nall; i++) {
        if (bsize [i])
            memcpy (buf + at, bdata [i], bsize [i]);
        at += bsize [i];
    }
    crypto_hash_sha256 (buf + at, buf, at);
    *data = buf;
    *size = total;
    rc = 0;
out:
    for (size_t m = 0; m < self->nmembers; m++)
        free (owned [m]);
    for (size_t i = 0; i < nall; i++)
        free (bname [i]);
    free (owned);
    free (bname);
    free (bsize);
    free (bdata);
    free (text);
    json_decref (header);
    return rc;
}

int
lb_model_save (const lb_model_t *self, const char *path)
{
    assert (self && path);
    uint8_t *data = NULL;
    size_t size = 0;
    if (lb_model_to_buffer (self, &data, &size))
        return -1;
    int rc = -1;
    char *tmp = lb_xasprintf ("%s.tmp.%d", path, (int) getpid ());
    int fd = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        lb_log_error ("model save: cannot create %s: %s", tmp, strerror (errno));
        goto out;
    }
    size_t done = 0;
    while (done < size) {
        ssize_t n = write (fd, data + done, size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            lb_log_error ("model save: write %s: %s", tmp, strerror (errno));
            close (fd);
            unlink (tmp);
            goto out;
        }
        done += (size_t) n;
    }
    if (fsync (fd) || close (fd)) {
        lb_log_error ("model save: fsync/close %s: %s", tmp, strerror (errno));
        unlink (tmp);
        goto out;
    }
    if (rename (tmp, path)) {
        lb_log_error ("model save: rename %s to %s: %s", tmp, path, strerror (errno));
        unlink (tmp);
        goto out;
    }
    rc = 0;
out:
    free (tmp);
    free (data);
    return rc;
}

char *
lb_model_digest (const lb_model_t *self)
{
    uint8_t *data = NULL;
    size_t size = 0;
    if (lb_model_to_buffer (self, &data, &size))
        return NULL;
    char *hex = lb_xmalloc (65);
    s_sha256_hex (data, size, hex);
    free (data);
    return hex;
}

// ---------------------------------------------------------------- reading

//  XGBoost: loads the booster from the blob (once). Returns 0, or -1 with err.
static int
s_booster (lb_model_t *self, char *err, size_t err_size)
{
    if (self->booster)
        return 0;
    size_t size = 0;
    const void *data = lb_model_blob (self, S_XGB_BLOB, &size);
    if (!data) {
        s_err (err, err_size, "no %s blob", S_XGB_BLOB);
        return -1;
    }
    BoosterHandle booster = NULL;
    if (XGBoosterCreate (NULL, 0, &booster)
    ||  XGBoosterLoadModelFromBuffer (booster, data, size)) {
        s_err (err, err_size, "%s: XGBoost cannot load it: %s", S_XGB_BLOB, XGBGetLastError ());
        if (booster)
            XGBoosterFree (booster);
        return -1;
    }
    bst_ulong nfeat = 0;
    if (XGBoosterGetNumFeature (booster, &nfeat) || nfeat != self->nfeatures) {
        s_err (err, err_size, "%s: booster has %llu features, header lists %zu",
               S_XGB_BLOB, (unsigned long long) nfeat, self->nfeatures);
        XGBoosterFree (booster);
        return -1;
    }
    self->booster = booster;
    return 0;
}

static lb_model_t *s_parse (const uint8_t *buf, size_t size, int depth, char *err, size_t err_size);
static int s_net (lb_model_t *self, int nthread, char *err, size_t err_size);

//  Checks the header and fills a new model. Returns it or NULL with err.
static lb_model_t *
s_from_header (json_t *h, const uint8_t *bytes, size_t blobs_size, int depth,
               char *err, size_t err_size)
{
    lb_model_t *self = NULL;
    json_t *v = json_object_get (h, "format");
    if (!json_is_integer (v) || json_integer_value (v) != LB_MODEL_FORMAT_VERSION) {
        s_err (err, err_size, "header: format: not %d", LB_MODEL_FORMAT_VERSION);
        return NULL;
    }
    lb_model_family_t family;
    lb_model_task_t task;
    if (lb_model_family_parse (json_string_value (json_object_get (h, "family")), &family)) {
        s_err (err, err_size, "header: family: missing or unknown");
        return NULL;
    }
    if (lb_model_task_parse (json_string_value (json_object_get (h, "task")), &task)) {
        s_err (err, err_size, "header: task: missing or unknown");
        return NULL;
    }
    json_t *features = json_object_get (h, "features");
    json_t *params = json_object_get (h, "params");
    json_t *metrics = json_object_get (h, "metrics");
    json_t *info = json_object_get (h, "info");
    json_t *members = json_object_get (h, "members");
    json_t *blobs = json_object_get (h, "blobs");
    json_t *std = json_object_get (h, "standardisation");
    if (!json_is_array (features) || json_array_size (features) > S_MAX_FEATURES) {
        s_err (err, err_size, "header: features: not an array of at most %d names", S_MAX_FEATURES);
        return NULL;
    }
    if (!json_is_object (params) || !json_is_object (metrics) || !json_is_object (info)
    ||  !json_is_array (members) || !json_is_array (blobs) || !(json_is_null (std) || json_is_object (std))) {
        s_err (err, err_size, "header: params, metrics, info, members, blobs or standardisation "
               "missing or of the wrong type");
        return NULL;
    }
    self = lb_model_new (family, task);
    size_t nf = json_array_size (features);
    const char **names = lb_xcalloc (nf + 1, sizeof *names);
    for (size_t i = 0; i < nf; i++) {
        names [i] = json_string_value (json_array_get (features, i));
        if (!names [i] || !*names [i]) {
            s_err (err, err_size, "header: features[%zu]: not a non-empty string", i);
            free (names);
            goto fail;
        }
        for (size_t j = 0; j < i; j++)
            if (strcmp (names [i], names [j]) == 0) {
                s_err (err, err_size, "header: features[%zu]: '%s' repeats features[%zu]",
                       i, names [i], j);
                free (names);
                goto fail;
            }
    }
    lb_model_set_features (self, names, nf);
    free (names);

    if (json_is_object (std)) {
        json_t *mean = json_object_get (std, "mean"), *scale = json_object_get (std, "scale");
        if (json_array_size (mean) != nf || json_array_size (scale) != nf) {
            s_err (err, err_size, "header: standardisation: mean and scale need %zu numbers each", nf);
            goto fail;
        }
        float *m = lb_xcalloc (nf + 1, sizeof (float)), *s = lb_xcalloc (nf + 1, sizeof (float));
        for (size_t i = 0; i < nf; i++) {
            json_t *a = json_array_get (mean, i), *b = json_array_get (scale, i);
            double dm = json_number_value (a), ds = json_number_value (b);
            if (!json_is_number (a) || !json_is_number (b) || !isfinite ((float) dm)
            ||  !isfinite ((float) ds) || !((float) ds > 0)) {
                s_err (err, err_size, "header: standardisation[%zu]: mean must be finite, "
                       "scale finite and > 0", i);
                free (m);
                free (s);
                goto fail;
            }
            m [i] = (float) dm;
            s [i] = (float) ds;
        }
        lb_model_set_standardisation (self, m, s);
        free (m);
        free (s);
    }
    json_decref (self->params);
    self->params = json_deep_copy (params);
    const char *key;
    json_t *value;
    json_object_foreach (metrics, key, value) {
        if (!json_is_number (value)) {
            s_err (err, err_size, "header: metrics.%s: not a number", key);
            goto fail;
        }
    }
    json_decref (self->metrics);
    self->metrics = json_deep_copy (metrics);
    json_object_foreach (info, key, value) {
        if (!json_is_string (value)) {
            s_err (err, err_size, "header: info.%s: not a string", key);
            goto fail;
        }
    }
    json_decref (self->info);
    self->info = json_deep_copy (info);

    //  Blobs: names, sizes and checksums; they must fill the space exactly.
    size_t at = 0, nmembers = json_array_size (members);
    if (nmembers > S_MAX_MEMBERS || (nmembers > 0) != (family == LB_MODEL_ENSEMBLE)) {
        s_err (err, err_size, "header: members: %zu members for family %s",
               nmembers, lb_model_family_name (family));
        goto fail;
    }
    for (size_t i = 0; i < json_array_size (blobs); i++) {
        json_t *b = json_array_get (blobs, i);
        const char *name = json_string_value (json_object_get (b, "name"));
        json_t *jsize = json_object_get (b, "size");
        const char *sha = json_string_value (json_object_get (b, "sha256"));
        if (!name || !*name || !json_is_integer (jsize) || json_integer_value (jsize) < 0 || !sha) {
            s_err (err, err_size, "header: blobs[%zu]: needs name, size and sha256", i);
            goto fail;
        }
        if (lb_model_blob (self, name, NULL)) {
            s_err (err, err_size, "header: blobs[%zu]: '%s' appears twice", i, name);
            goto fail;
        }
        uint64_t bsize = (uint64_t) json_integer_value (jsize);
        if (bsize > blobs_size - at) {
            s_err (err, err_size, "blob %s: %llu bytes run past the end of the file",
                   name, (unsigned long long) bsize);
            goto fail;
        }
        char hex [65];
        s_sha256_hex (bytes + at, bsize, hex);
        if (strcmp (hex, sha) != 0) {
            s_err (err, err_size, "blob %s: checksum mismatch (corrupt)", name);
            goto fail;
        }
        if (strncmp (name, "member.", 7) == 0) {
            char *end;
            errno = 0;
            unsigned long m = strtoul (name + 7, &end, 10);
            if (errno || *end || m != self->nmembers || m >= nmembers) {
                s_err (err, err_size, "blob %s: members must be member.0, member.1, ... in order", name);
                goto fail;
            }
            json_t *jw = json_object_get (json_array_get (members, m), "weight");
            double w = json_number_value (jw);
            if (!json_is_number (jw) || !isfinite (w) || w < 0 || w > 1) {
                s_err (err, err_size, "header: members[%lu].weight: not in [0, 1]", m);
                goto fail;
            }
            char sub [384];
            lb_model_t *member = s_parse (bytes + at, bsize, depth + 1, sub, sizeof sub);
            if (!member) {
                s_err (err, err_size, "%s: %s", name, sub);
                goto fail;
            }
            if (member->task != task || member->nfeatures != nf) {
                s_err (err, err_size, "%s: task or feature count differs from the ensemble's", name);
                lb_model_destroy (&member);
                goto fail;
            }
            for (size_t f = 0; f < nf; f++)
                if (strcmp (member->features [f], self->features [f]) != 0) {
                    s_err (err, err_size, "%s: feature %zu is '%s', the ensemble's is '%s'",
                           name, f, member->features [f], self->features [f]);
                    lb_model_destroy (&member);
                    goto fail;
                }
            lb_model_add_member (self, &member, w);
        }
        else
            lb_model_set_blob (self, name, bytes + at, bsize);
        at += bsize;
    }
    if (at != blobs_size) {
        s_err (err, err_size, "blobs: %zu bytes listed, %zu present", at, blobs_size);
        goto fail;
    }
    if (self->nmembers != nmembers) {
        s_err (err, err_size, "members: %zu listed, %zu blobs", nmembers, self->nmembers);
        goto fail;
    }
    if (family == LB_MODEL_ENSEMBLE) {
        double sum = 0;
        for (size_t m = 0; m < self->nmembers; m++)
            sum += self->weights [m];
        if (fabs (sum - 1) > 1e-6) {
            s_err (err, err_size, "members: weights sum to %.9g, not 1", sum);
            goto fail;
        }
    }
    if (family == LB_MODEL_XGBOOST || family == LB_MODEL_RF) {
        if (s_booster (self, err, err_size))
            goto fail;
    }
    if ((family == LB_MODEL_MLP || family == LB_MODEL_TRANSFORMER)
    &&  (!self->mean || !lb_model_blob (self, "weights", NULL))) {
        s_err (err, err_size, "%s: needs a standardisation and a weights blob",
               lb_model_family_name (family));
        goto fail;
    }
    if ((family == LB_MODEL_MLP || family == LB_MODEL_TRANSFORMER) && s_net (self, 1, err, err_size))
        goto fail;
    return self;
fail:
    lb_model_destroy (&self);
    return NULL;
}

static lb_model_t *
s_parse (const uint8_t *buf, size_t size, int depth, char *err, size_t err_size)
{
    if (depth > S_MAX_DEPTH) {
        s_err (err, err_size, "ensembles nested more than %d deep", S_MAX_DEPTH);
        return NULL;
    }
    if (size < S_HEAD + 32) {
        s_err (err, err_size, "%zu bytes: too short for a model", size);
        return NULL;
    }
    if (memcmp (buf, LB_MODEL_MAGIC, 8) != 0) {
        s_err (err, err_size, "offset 0: not a model file (bad magic)");
        return NULL;
    }
    uint32_t version = s_get_u32 (buf + 8);
    if (version != LB_MODEL_FORMAT_VERSION) {
        s_err (err, err_size, "offset 8: format version %u, this build reads %d",
               version, LB_MODEL_FORMAT_VERSION);
        return NULL;
    }
    uint8_t digest [32];
    crypto_hash_sha256 (digest, buf, size - 32);
    if (memcmp (digest, buf + size - 32, 32) != 0) {
        s_err (err, err_size, "checksum mismatch: the file is corrupt or truncated");
        return NULL;
    }
    uint64_t hsize = s_get_u64 (buf + 16);
    if (hsize > size - S_HEAD - 32) {
        s_err (err, err_size, "offset 16: header size %llu runs past the end",
               (unsigned long long) hsize);
        return NULL;
    }
    json_error_t jerr;
    json_t *header = json_loadb ((const char *) buf + S_HEAD, hsize, JSON_REJECT_DUPLICATES, &jerr);
    if (!header || !json_is_object (header)) {
        s_err (err, err_size, "header: not a JSON object (%s at line %d)",
               header ? "other type" : jerr.text, jerr.line);
        json_decref (header);
        return NULL;
    }
    lb_model_t *self = s_from_header (header, buf + S_HEAD + hsize,
                                      size - S_HEAD - hsize - 32, depth, err, err_size);
    json_decref (header);
    return self;
}

lb_model_t *
lb_model_from_buffer (const void *data, size_t size, char *err, size_t err_size)
{
    assert (data || size == 0);
    char why [512] = "";
    lb_model_t *self = s_parse (data, size, 0, why, sizeof why);
    if (!self) {
        lb_log_error ("model: %s", why);
        s_err (err, err_size, "%s", why);
    }
    return self;
}

lb_model_t *
lb_model_load (const char *path, char *err, size_t err_size)
{
    assert (path);
    lb_model_t *self = NULL;
    uint8_t *buf = NULL;
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat (fd, &st)) {
        lb_log_error ("model %s: cannot open: %s", path, strerror (errno));
        s_err (err, err_size, "%s: cannot open: %s", path, strerror (errno));
        goto out;
    }
    if (!S_ISREG (st.st_mode) || (size_t) st.st_size > LB_MODEL_MAX_SIZE) {
        lb_log_error ("model %s: not a regular file of at most %zu bytes", path, LB_MODEL_MAX_SIZE);
        s_err (err, err_size, "%s: not a regular file of at most %zu bytes", path, LB_MODEL_MAX_SIZE);
        goto out;
    }
    size_t size = (size_t) st.st_size, done = 0;
    buf = lb_xmalloc (size ? size : 1);
    while (done < size) {
        ssize_t n = read (fd, buf + done, size - done);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            lb_log_error ("model %s: read: %s", path, n ? strerror (errno) : "short file");
            s_err (err, err_size, "%s: read failed", path);
            goto out;
        }
        done += (size_t) n;
    }
    char why [512] = "";
    self = s_parse (buf, size, 0, why, sizeof why);
    if (!self) {
        lb_log_error ("model %s: %s", path, why);
        s_err (err, err_size, "%s: %s", path, why);
    }
out:
    if (fd >= 0)
        close (fd);
    free (buf);
    return self;
}


// ---------------------------------------------------------------- nets

void
lb_model_prev_rows (const uint32_t *entity, size_t rows, int64_t *prev)
{
    if (!entity) {
        for (size_t i = 0; i < rows; i++)
            prev [i] = (int64_t) i - 1;
        return;
    }
    uint32_t most = 0;
    for (size_t i = 0; i < rows; i++)
        most = entity [i] > most ? entity [i] : most;
    int64_t *last = lb_xmalloc (((size_t) most + 1) * sizeof *last);
    for (size_t e = 0; e <= most; e++)
        last [e] = -1;
    for (size_t i = 0; i < rows; i++) {
        prev [i] = last [entity [i]];
        last [entity [i]] = (int64_t) i;
    }
    free (last);
}

void
lb_model_window (const float *x, size_t cols, const int64_t *prev, size_t i, int window, float *out)
{
    int64_t row = (int64_t) i;
    for (int t = window - 1; t >= 0; t--) {
        memcpy (out + (size_t) t * cols, x + (size_t) row * cols, cols * sizeof (float));
        if (prev [row] >= 0)
            row = prev [row];
    }
}

static int
s_json_int (json_t *obj, const char *key, int lo, int hi, int *out)
{
    json_t *v = json_object_get (obj, key);
    if (!json_is_integer (v) || json_integer_value (v) < lo || json_integer_value (v) > hi)
        return -1;
    *out = (int) json_integer_value (v);
    return 0;
}

//  Reads params.net into a kernel configuration. Returns 0 or -1 with err.
static int
s_net_config (const lb_model_t *self, kn_config_t *cfg, char *err, size_t err_size)
{
    json_t *net = json_object_get (self->params, "net");
    kn_config_defaults (cfg);
    const char *arch = json_string_value (json_object_get (net, "arch"));
    const char *act = json_string_value (json_object_get (net, "act"));
    json_t *dropout = json_object_get (net, "dropout");
    if (!json_is_object (net) || !arch || !act || !json_is_number (dropout)) {
        s_err (err, err_size, "params.net: missing, or without arch, act and dropout");
        return -1;
    }
    cfg->arch = strcmp (arch, "transformer") == 0 ? KN_ARCH_TRANSFORMER : KN_ARCH_MLP;
    cfg->task = self->task == LB_MODEL_BINARY ? KN_TASK_BINARY : KN_TASK_REGRESSION;
    cfg->act = strcmp (act, "relu") == 0 ? KN_ACT_RELU : KN_ACT_GELU;
    cfg->dropout = (float) json_number_value (dropout);
    //  products as trained (absent: fp32); bf16 where this CPU cannot runs in
    //  fp32 (predictions then differ from training's by bf16 rounding)
    json_t *precision = json_object_get (net, "precision");
    if (precision && kn_precision_parse (json_string_value (precision), &cfg->precision)) {
        s_err (err, err_size, "params.net.precision: not \"fp32\" or \"bf16\"");
        return -1;
    }
    if (cfg->precision == KN_PRECISION_BF16 && !kn_gemm_supported ()) {
        lb_log_warn ("model trained with bf16 products; this CPU has no AVX512-BF16: scoring "
                     "with fp32 products");
        cfg->precision = KN_PRECISION_FP32;
    }
    if (s_json_int (net, "n_in", 1, 1 << 20, &cfg->n_in) || s_json_int (net, "n_out", 1, 1, &cfg->n_out)) {
        s_err (err, err_size, "params.net: n_in or n_out missing or out of range");
        return -1;
    }
    if ((size_t) cfg->n_in != self->nfeatures) {
        s_err (err, err_size, "params.net.n_in %d differs from the %zu features", cfg->n_in, self->nfeatures);
        return -1;
    }
    if (cfg->arch == KN_ARCH_MLP) {
        json_t *hidden = json_object_get (net, "hidden");
        if (!json_is_array (hidden) || json_array_size (hidden) > KN_MAX_HIDDEN) {
            s_err (err, err_size, "params.net.hidden: not an array of at most %d widths", KN_MAX_HIDDEN);
            return -1;
        }
        cfg->n_hidden = (int) json_array_size (hidden);
        for (int h = 0; h < cfg->n_hidden; h++) {
            json_t *w = json_array_get (hidden, (size_t) h);
            if (!json_is_integer (w) || json_integer_value (w) < 1 || json_integer_value (w) > 65536) {
                s_err (err, err_size, "params.net.hidden[%d]: not a width in [1, 65536]", h);
                return -1;
            }
            cfg->hidden [h] = (int) json_integer_value (w);
        }
        cfg->layernorm = json_is_true (json_object_get (net, "layernorm"));
    }
    else {
        const char *pool = json_string_value (json_object_get (net, "pool"));
        if (s_json_int (net, "window", 1, 4096, &cfg->window)
        ||  s_json_int (net, "d_model", 1, 4096, &cfg->d_model)
        ||  s_json_int (net, "n_heads", 1, 64, &cfg->n_heads)
        ||  s_json_int (net, "n_layers", 1, 64, &cfg->n_layers)
        ||  s_json_int (net, "d_ff", 1, 65536, &cfg->d_ff) || !pool) {
            s_err (err, err_size, "params.net: window, d_model, n_heads, n_layers, d_ff or pool "
                   "missing or out of range");
            return -1;
        }
        cfg->pool = strcmp (pool, "last") == 0 ? KN_POOL_LAST : KN_POOL_MEAN;
    }
    char why [256];
    if (kn_config_check (cfg, why, sizeof why)) {
        s_err (err, err_size, "params.net: %s", why);
        return -1;
    }
    return 0;
}

//  Builds the net from params.net and the weights (once per thread count).
//  Returns 0, or -1 with err.
static int
s_net (lb_model_t *self, int nthread, char *err, size_t err_size)
{
    if (nthread < 1)
        nthread = 1;
    if (self->net && self->net_threads == nthread)
        return 0;
    kn_model_destroy (&self->net);
    kn_backend_destroy (&self->backend);
    kn_config_t cfg;
    if (s_net_config (self, &cfg, err, err_size))
        return -1;
    size_t size = 0;
    const void *weights = lb_model_blob (self, "weights", &size);
    self->backend = kn_cpu_new (nthread);
    char why [256];
    self->net = kn_model_new (&cfg, 256, 0, self->backend, why, sizeof why);
    if (!self->net) {
        s_err (err, err_size, "net: %s", why);
        kn_backend_destroy (&self->backend);
        return -1;
    }
    size_t n = kn_model_n_params (self->net);
    if (!weights || size != n * sizeof (float)) {
        s_err (err, err_size, "blob weights: %zu bytes, the architecture has %zu parameters (%zu bytes)",
               size, n, n * sizeof (float));
        kn_model_destroy (&self->net);
        kn_backend_destroy (&self->backend);
        return -1;
    }
    float *params = lb_xmalloc (size);
    memcpy (params, weights, size);
    for (size_t i = 0; i < n; i++)
        if (!isfinite (params [i])) {
            s_err (err, err_size, "blob weights: parameter %zu is not finite", i);
            free (params);
            kn_model_destroy (&self->net);
            kn_backend_destroy (&self->backend);
            return -1;
        }
    kn_model_set_params (self->net, params);
    free (params);
    self->net_threads = nthread;
    return 0;
}

//  Standardises rows into out (rows x cols); NaN becomes 0 (the training
//  mean) with imputation, else is an error. Returns 0 or -1 with err.
static int
s_net_inputs (const lb_model_t *self, const float *x, size_t rows, size_t cols, float *out,
              char *err, size_t err_size)
{
    const char *impute = NULL;
    bool fill = lb_model_param_str (self, "impute", &impute) == 0 && strcmp (impute, "mean") == 0;
    for (size_t r = 0; r < rows; r++)
        for (size_t c = 0; c < cols; c++) {
            float v = x [r * cols + c];
            if (isnan (v)) {
                if (!fill) {
                    s_err (err, err_size, "row %zu, feature %s is NaN and this %s model was trained "
                           "without imputation", r, self->features [c], lb_model_family_name (self->family));
                    return -1;
                }
                out [r * cols + c] = 0;
            }
            else
                out [r * cols + c] = (v - self->mean [c]) / self->scale [c];
        }
    return 0;
}

static int
s_predict_net (lb_model_t *self, const float *x, size_t rows, size_t cols, const uint32_t *entity,
               int nthread, float *out, char *err, size_t err_size)
{
    if (s_net (self, nthread, err, err_size))
        return -1;
    float *z = lb_xmalloc ((rows * cols + 1) * sizeof (float));
    int rc = -1;
    if (s_net_inputs (self, x, rows, cols, z, err, err_size))
        goto out;
    if (self->family == LB_MODEL_MLP) {
        if (kn_model_predict (self->net, z, rows, out)) {
            s_err (err, err_size, "net predict: %s", kn_model_error (self->net));
            goto out;
        }
    }
    else {
        int window = kn_model_config (self->net)->window;
        int64_t *prev = lb_xmalloc (rows * sizeof *prev);
        lb_model_prev_rows (entity, rows, prev);
        enum { CHUNK = 512 };
        float *win = lb_xmalloc ((size_t) CHUNK * (size_t) window * cols * sizeof (float));
        for (size_t start = 0; start < rows; start += CHUNK) {
            size_t n = rows - start < CHUNK ? rows - start : CHUNK;
            for (size_t i = 0; i < n; i++)
                lb_model_window (z, cols, prev, start + i, window, win + i * (size_t) window * cols);
            if (kn_model_predict (self->net, win, n, out + start)) {
                s_err (err, err_size, "net predict: %s", kn_model_error (self->net));
                free (win);
                free (prev);
                goto out;
            }
        }
        free (win);
        free (prev);
    }
    rc = 0;
out:
    free (z);
    return rc;
}

// ---------------------------------------------------------------- scoring

static int
s_predict_xgb (lb_model_t *self, const float *x, size_t rows, size_t cols, int nthread,
               float *out, char *err, size_t err_size)
{
    if (s_booster (self, err, err_size))
        return -1;
    char nt [32];
    snprintf (nt, sizeof nt, "%d", nthread > 0 ? nthread : 0);
    if (XGBoosterSetParam (self->booster, "nthread", nt)) {
        s_err (err, err_size, "xgboost: nthread: %s", XGBGetLastError ());
        return -1;
    }
    char array [256];
    snprintf (array, sizeof array,
              "{\"data\": [%llu, true], \"shape\": [%zu, %zu], \"typestr\": \"<f4\", \"version\": 3}",
              (unsigned long long) (uintptr_t) x, rows, cols);
    const char *config = "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, "
                         "\"iteration_end\": 0, \"strict_shape\": false, \"cache_id\": 0, "
                         "\"missing\": NaN}";
    const bst_ulong *shape = NULL;
    bst_ulong dim = 0;
    const float *result = NULL;
    if (XGBoosterPredictFromDense (self->booster, array, config, NULL, &shape, &dim, &result)) {
        s_err (err, err_size, "xgboost predict: %s", XGBGetLastError ());
        return -1;
    }
    bst_ulong n = 1;
    for (bst_ulong d = 0; d < dim; d++)
        n *= shape [d];
    if (n != rows) {
        s_err (err, err_size, "xgboost predict: %llu values for %zu rows", (unsigned long long) n, rows);
        return -1;
    }
    memcpy (out, result, rows * sizeof (float));
    return 0;
}

static int
s_predict (lb_model_t *self, const float *x, size_t rows, size_t cols, const uint32_t *entity,
           int nthread, float *out, char *err, size_t err_size);

int
lb_model_predict (lb_model_t *self, const float *x, size_t rows, size_t cols,
                  int nthread, float *out, char *err, size_t err_size)
{
    return s_predict (self, x, rows, cols, NULL, nthread, out, err, err_size);
}

int
lb_model_predict_entities (lb_model_t *self, const float *x, size_t rows, size_t cols,
                           const uint32_t *entity, int nthread, float *out, char *err,
                           size_t err_size)
{
    return s_predict (self, x, rows, cols, entity, nthread, out, err, err_size);
}

static int
s_predict (lb_model_t *self, const float *x, size_t rows, size_t cols, const uint32_t *entity,
           int nthread, float *out, char *err, size_t err_size)
{
    assert (self);
    assert (out || rows == 0);
    assert (x || rows == 0);
    char why [512] = "";
    int rc = -1;
    if (cols != self->nfeatures) {
        s_err (why, sizeof why, "input has %zu features, model %s expects %zu",
               cols, lb_model_family_name (self->family), self->nfeatures);
        goto out;
    }
    if (rows == 0)
        return 0;
    switch (self->family) {
        case LB_MODEL_XGBOOST:
        case LB_MODEL_RF:
            rc = s_predict_xgb (self, x, rows, cols, nthread, out, why, sizeof why);
            break;
        case LB_MODEL_ENSEMBLE: {
            float *tmp = lb_xmalloc (rows * sizeof (float));
            for (size_t r = 0; r < rows; r++)
                out [r] = 0;
            rc = 0;
            for (size_t m = 0; m < self->nmembers && rc == 0; m++) {
                rc = s_predict (self->members [m], x, rows, cols, entity, nthread, tmp,
                                why, sizeof why);
                for (size_t r = 0; r < rows && rc == 0; r++)
                    out [r] += (float) (self->weights [m] * tmp [r]);
            }
            free (tmp);
            break;
        }
        case LB_MODEL_MLP:
        case LB_MODEL_TRANSFORMER:
            rc = s_predict_net (self, x, rows, cols, entity, nthread, out, why, sizeof why);
            break;
    }
out:
    if (rc) {
        lb_log_error ("model predict: %s", why);
        s_err (err, err_size, "%s", why);
    }
    return rc;
}

int
lb_model_score_dataset (lb_model_t *self, lb_dataset_t *dataset, int split, int nthread,
                        float **out, size_t *rows, char *err, size_t err_size)
{
    assert (self && dataset && out && rows);
    assert (split >= LB_DATASET_TRAIN && split <= LB_DATASET_TEST);
    *out = NULL;
    *rows = 0;
    lb_dataset_task_t task = lb_dataset_task (dataset);
    if ((self->task == LB_MODEL_BINARY) != (task == LB_DATASET_BINARY)
    ||  (self->task == LB_MODEL_REGRESSION) != (task == LB_DATASET_REGRESSION)) {
        lb_log_error ("model score: the dataset's task differs from the model's (%s)",
                      lb_model_task_name (self->task));
        s_err (err, err_size, "the dataset's task differs from the model's (%s)",
               lb_model_task_name (self->task));
        return -1;
    }
    size_t cols = lb_dataset_cols (dataset), begin, end;
    lb_dataset_split (dataset, (lb_dataset_split_t) split, &begin, &end);
    size_t n = end - begin, nf = self->nfeatures;
    const float *x = lb_dataset_x (dataset) + begin * cols;
    //  The model's columns in the dataset; copy only when they differ.
    bool same = cols == nf;
    size_t *map = lb_xcalloc (nf + 1, sizeof *map);
    for (size_t f = 0; f < nf; f++) {
        int c = lb_dataset_column_index (dataset, self->features [f]);
        if (c < 0) {
            lb_log_error ("model score: the dataset has no column '%s'", self->features [f]);
            s_err (err, err_size, "the dataset has no column '%s' (model feature %zu)",
                   self->features [f], f);
            free (map);
            return -1;
        }
        map [f] = (size_t) c;
        same = same && map [f] == f;
    }
    float *copy = NULL;
    if (!same) {
        copy = lb_xmalloc ((n * nf + 1) * sizeof (float));
        for (size_t r = 0; r < n; r++)
            for (size_t f = 0; f < nf; f++)
                copy [r * nf + f] = x [r * cols + map [f]];
        x = copy;
    }
    free (map);
    float *pred = lb_xmalloc ((n + 1) * sizeof (float));
    int rc = s_predict (self, x, n, nf, lb_dataset_entities (dataset) + begin, nthread, pred,
                        err, err_size);
    free (copy);
    if (rc) {
        free (pred);
        return -1;
    }
    *out = pred;
    *rows = n;
    return 0;
}

// ---------------------------------------------------------------- selftest

static bool
s_streq (const char *a, const char *b)
{
    return a && b && strcmp (a, b) == 0;
}

//  A small deterministic binary problem and an XGBoost model trained on it.
static lb_model_t *
s_test_xgb_model (const float *x, const float *y, size_t rows, size_t cols)
{
    DMatrixHandle dtrain;
    assert (XGDMatrixCreateFromMat (x, rows, cols, NAN, &dtrain) == 0);
    assert (XGDMatrixSetFloatInfo (dtrain, "label", y, rows) == 0);
    BoosterHandle booster;
    assert (XGBoosterCreate (&dtrain, 1, &booster) == 0);
    assert (XGBoosterSetParam (booster, "objective", "binary:logistic") == 0);
    assert (XGBoosterSetParam (booster, "tree_method", "hist") == 0);
    assert (XGBoosterSetParam (booster, "max_depth", "3") == 0);
    assert (XGBoosterSetParam (booster, "nthread", "1") == 0);
    for (int i = 0; i < 5; i++)
        assert (XGBoosterUpdateOneIter (booster, i, dtrain) == 0);
    bst_ulong len;
    const char *raw;
    assert (XGBoosterSaveModelToBuffer (booster, "{\"format\": \"ubj\"}", &len, &raw) == 0);
    lb_model_t *model = lb_model_new (LB_MODEL_XGBOOST, LB_MODEL_BINARY);
    lb_model_set_blob (model, S_XGB_BLOB, raw, len);
    XGBoosterFree (booster);
    XGDMatrixFree (dtrain);
    return model;
}

void
lb_model_test (bool verbose)
{
    if (verbose)
        printf (" * lb_model: ");
    assert (sodium_init () >= 0);
    lb_model_family_t family;
    assert (lb_model_family_parse ("rf", &family) == 0 && family == LB_MODEL_RF);
    assert (lb_model_family_parse ("svm", &family) == -1);
    lb_model_task_t task;
    assert (lb_model_task_parse ("regression", &task) == 0 && task == LB_MODEL_REGRESSION);
    assert (lb_model_task_parse ("multiclass", &task) == -1);

    enum { ROWS = 400, COLS = 3 };
    float *x = lb_xmalloc (ROWS * COLS * sizeof (float));
    float *y = lb_xmalloc (ROWS * sizeof (float));
    uint32_t state = 12345;
    for (size_t r = 0; r < ROWS; r++) {
        for (size_t c = 0; c < COLS; c++) {
            state = state * 1664525u + 1013904223u;
            x [r * COLS + c] = (float) (state >> 8) / (float) (1u << 24) - 0.5f;
        }
        y [r] = x [r * COLS] + 0.5f * x [r * COLS + 1] > 0 ? 1.0f : 0.0f;
    }
    x [7 * COLS + 2] = NAN;     //  trees take missing values

    const char *names [] = { "ret_1", "vol_5", "rsi_14" };
    lb_model_t *model = s_test_xgb_model (x, y, ROWS, COLS);
    lb_model_set_features (model, names, COLS);
    assert (lb_model_set_params (model, "{\"max_depth\": 3, \"eta\": 0.3, \"tree_method\": \"hist\"}") == 0);
    assert (lb_model_set_params (model, "[1, 2]") == -1);
    assert (lb_model_set_params (model, "{bad") == -1);
    lb_model_set_metric (model, "val_logloss", 0.25);
    lb_model_set_metric (model, "bad", NAN);
    lb_model_set_info (model, "dataset", "file:///tmp/ds");
    double metric;
    assert (lb_model_metric (model, "val_logloss", &metric) == 0 && metric == 0.25);
    assert (lb_model_metric (model, "bad", &metric) == -1);
    double depth;
    assert (lb_model_param_real (model, "max_depth", &depth) == 0 && depth == 3);
    const char *method;
    assert (lb_model_param_str (model, "tree_method", &method) == 0 && s_streq (method, "hist"));
    assert (lb_model_info (model, "lib.xgboost"));

    float *p1 = lb_xmalloc (ROWS * sizeof (float));
    float *p2 = lb_xmalloc (ROWS * sizeof (float));
    char err [512];
    assert (lb_model_predict (model, x, ROWS, COLS, 1, p1, err, sizeof err) == 0);
    size_t correct = 0;
    for (size_t r = 0; r < ROWS; r++) {
        assert (p1 [r] >= 0 && p1 [r] <= 1);
        correct += (p1 [r] > 0.5f) == (y [r] > 0.5f);
    }
    assert (correct > ROWS * 8 / 10);
    assert (lb_model_predict (model, x, ROWS, COLS - 1, 1, p2, err, sizeof err) == -1);
    assert (strstr (err, "expects 3"));

    //  Round trip through a file: same content, same scores, same bytes.
    char *dir = lb_selftest_tmpdir ("lb_model");
    char *path = lb_xasprintf ("%s/m.model", dir);
    assert (lb_model_save (model, path) == 0);
    lb_model_t *loaded = lb_model_load (path, err, sizeof err);
    assert (loaded);
    assert (lb_model_family (loaded) == LB_MODEL_XGBOOST);
    assert (lb_model_task (loaded) == LB_MODEL_BINARY);
    assert (lb_model_feature_count (loaded) == COLS);
    assert (s_streq (lb_model_feature_name (loaded, 2), "rsi_14"));
    assert (lb_model_metric (loaded, "val_logloss", &metric) == 0 && metric == 0.25);
    assert (s_streq (lb_model_info (loaded, "dataset"), "file:///tmp/ds"));
    assert (!lb_model_standardisation (loaded, NULL, NULL));
    assert (lb_model_predict (loaded, x, ROWS, COLS, 1, p2, err, sizeof err) == 0);
    assert (memcmp (p1, p2, ROWS * sizeof (float)) == 0);
    char *d1 = lb_model_digest (model), *d2 = lb_model_digest (loaded);
    assert (d1 && d2 && s_streq (d1, d2));
    free (d1);
    free (d2);
    char *params = lb_model_params (loaded);
    assert (s_streq (params, "{\"eta\":0.29999999999999999,\"max_depth\":3,\"tree_method\":\"hist\"}")
         || strstr (params, "\"max_depth\":3"));
    free (params);

    //  Corruption anywhere is caught and named.
    uint8_t *image;
    size_t size;
    assert (lb_model_to_buffer (model, &image, &size) == 0);
    assert (lb_model_from_buffer (image, size - 1, err, sizeof err) == NULL);
    assert (strstr (err, "checksum"));
    image [S_HEAD + 5] ^= 1;
    assert (lb_model_from_buffer (image, size, err, sizeof err) == NULL);
    assert (strstr (err, "checksum"));
    image [S_HEAD + 5] ^= 1;
    image [0] = 'X';
    assert (lb_model_from_buffer (image, size, err, sizeof err) == NULL);
    assert (strstr (err, "magic"));
    image [0] = 'P';
    s_put_u32 (image + 8, 99);
    assert (lb_model_from_buffer (image, size, err, sizeof err) == NULL);
    assert (strstr (err, "version 99"));
    free (image);
    assert (lb_model_from_buffer ("short", 5, err, sizeof err) == NULL);
    assert (lb_model_load ("/nonexistent/m.model", err, sizeof err) == NULL);
    assert (strstr (err, "cannot open"));

    //  A tampered blob with a recomputed file checksum: the blob checksum catches it.
    assert (lb_model_to_buffer (model, &image, &size) == 0);
    image [size - 40] ^= 0x55;
    crypto_hash_sha256 (image + size - 32, image, size - 32);
    assert (lb_model_from_buffer (image, size, err, sizeof err) == NULL);
    assert (strstr (err, "blob xgboost.ubj: checksum"));
    free (image);

    //  Damaged headers with a recomputed file checksum: every one is refused
    //  or loads cleanly, never crashes (ASan watches in make test).
    assert (lb_model_to_buffer (model, &image, &size) == 0);
    size_t hsize = (size_t) s_get_u64 (image + 16);
    uint8_t *copy = lb_xmalloc (size);
    uint32_t rnd = 2024;
    int refused = 0;
    for (int i = 0; i < 300; i++) {
        memcpy (copy, image, size);
        for (int k = 0; k < 1 + i % 3; k++) {
            rnd = rnd * 1664525u + 1013904223u;
            copy [S_HEAD + (rnd >> 8) % hsize] = (uint8_t) (rnd >> 24);
        }
        crypto_hash_sha256 (copy + size - 32, copy, size - 32);
        lb_model_t *damaged = lb_model_from_buffer (copy, size, err, sizeof err);
        refused += damaged == NULL;
        lb_model_destroy (&damaged);
    }
    assert (refused > 200);
    free (copy);
    free (image);
    //  Fields of the wrong type are named.
    const char *bad_headers [][2] = {
        { "{\"format\": 1, \"family\": \"rf\", \"task\": \"binary\", \"features\": [1]}", "header" },
        { "{\"format\": 2}", "format" },
        { "{\"format\": 1, \"family\": \"svm\"}", "family" },
        { "[]", "not a JSON object" },
    };
    for (size_t i = 0; i < sizeof bad_headers / sizeof bad_headers [0]; i++) {
        size_t hlen = strlen (bad_headers [i][0]), total = S_HEAD + hlen + 32;
        uint8_t *buf = lb_xmalloc (total);
        memcpy (buf, LB_MODEL_MAGIC, 8);
        s_put_u32 (buf + 8, LB_MODEL_FORMAT_VERSION);
        s_put_u32 (buf + 12, 0);
        s_put_u64 (buf + 16, hlen);
        memcpy (buf + S_HEAD, bad_headers [i][0], hlen);
        crypto_hash_sha256 (buf + S_HEAD + hlen, buf, S_HEAD + hlen);
        assert (lb_model_from_buffer (buf, total, err, sizeof err) == NULL);
        assert (strstr (err, bad_headers [i][1]));
        free (buf);
    }

    //  An incomplete model cannot be written.
    lb_model_t *empty = lb_model_new (LB_MODEL_RF, LB_MODEL_BINARY);
    assert (lb_model_to_buffer (empty, &image, &size) == -1);
    lb_model_destroy (&empty);

    //  An ensemble of two: weights on the simplex, members nested.
    lb_model_t *ens = lb_model_new (LB_MODEL_ENSEMBLE, LB_MODEL_BINARY);
    lb_model_set_features (ens, names, COLS);
    lb_model_t *member = loaded;
    loaded = NULL;
    lb_model_add_member (ens, &member, 0.25);
    assert (member == NULL);
    lb_model_t *rf = s_test_xgb_model (x, y, ROWS, COLS);
    lb_model_set_features (rf, names, COLS);
    lb_model_add_member (ens, &rf, 0.75);
    assert (lb_model_member_count (ens) == 2);
    double w;
    assert (lb_model_member (ens, 1, &w) && w == 0.75);
    float *p3 = lb_xmalloc (ROWS * sizeof (float));
    assert (lb_model_predict (ens, x, ROWS, COLS, 1, p3, err, sizeof err) == 0);
    for (size_t r = 0; r < ROWS; r++)
        assert (fabsf (p3 [r] - p1 [r]) < 1e-6f);
    assert (lb_model_save (ens, path) == 0);
    lb_model_t *ens2 = lb_model_load (path, err, sizeof err);
    assert (ens2 && lb_model_member_count (ens2) == 2);
    assert (lb_model_predict (ens2, x, ROWS, COLS, 1, p2, err, sizeof err) == 0);
    assert (memcmp (p2, p3, ROWS * sizeof (float)) == 0);
    lb_model_destroy (&ens2);

    //  Nets: standardisation round-trips exactly; the scorer applies it and
    //  gives what the kernels give on standardised rows.
    lb_model_t *mlp = lb_model_new (LB_MODEL_MLP, LB_MODEL_BINARY);
    lb_model_set_features (mlp, names, COLS);
    float mean [COLS] = { 0.1f, -1e-7f, 3.14159274f }, scale [COLS] = { 1.0f / 3, 2e10f, 1e-30f };
    lb_model_set_standardisation (mlp, mean, scale);
    assert (lb_model_set_params (mlp, "{\"impute\": \"none\", \"net\": {\"arch\": \"mlp\", "
            "\"n_in\": 3, \"n_out\": 1, \"act\": \"relu\", \"dropout\": 0, \"hidden\": [5], "
            "\"layernorm\": false}}") == 0);
    kn_config_t cfg;
    kn_config_defaults (&cfg);
    cfg.n_in = COLS;
    cfg.act = KN_ACT_RELU;
    cfg.n_hidden = 1;
    cfg.hidden [0] = 5;
    kn_backend_t *be = kn_cpu_new (1);
    kn_model_t *net = kn_model_new (&cfg, 64, 3, be, err, sizeof err);
    assert (net);
    size_t np = kn_model_n_params (net);
    float *weights = lb_xmalloc (np * sizeof (float));
    assert (kn_model_get_params (net, weights) == 0);
    lb_model_set_blob (mlp, "weights", weights, np * sizeof (float));
    assert (lb_model_to_buffer (mlp, &image, &size) == 0);
    lb_model_t *mlp2 = lb_model_from_buffer (image, size, err, sizeof err);
    assert (mlp2);
    const float *m2, *s2;
    assert (lb_model_standardisation (mlp2, &m2, &s2));
    assert (memcmp (m2, mean, sizeof mean) == 0 && memcmp (s2, scale, sizeof scale) == 0);
    float xr [2 * COLS] = { 1, 2, 3, -1, 0, 3.2f }, zr [2 * COLS], want [2], got [2];
    for (size_t i = 0; i < 2 * COLS; i++)
        zr [i] = (xr [i] - mean [i % COLS]) / scale [i % COLS];
    assert (kn_model_predict (net, zr, 2, want) == 0);
    assert (lb_model_predict (mlp2, xr, 2, COLS, 1, got, err, sizeof err) == 0);
    assert (memcmp (want, got, sizeof got) == 0);
    //  A net trained with bf16 products scores with them where the CPU has
    //  them (the kernels' bf16 predictions, to the bit); an unknown precision
    //  is refused.
    for (int bad = 0; bad < 2; bad++) {
        char pj [256];
        snprintf (pj, sizeof pj, "{\"impute\": \"none\", \"net\": {\"arch\": \"mlp\", \"n_in\": 3, "
                  "\"n_out\": 1, \"act\": \"relu\", \"dropout\": 0, \"hidden\": [5], "
                  "\"layernorm\": false, \"precision\": \"%s\"}}", bad ? "fp16" : "bf16");
        assert (lb_model_set_params (mlp, pj) == 0);
        uint8_t *img16;
        size_t size16;
        assert (lb_model_to_buffer (mlp, &img16, &size16) == 0);
        lb_model_t *m16 = lb_model_from_buffer (img16, size16, err, sizeof err);
        free (img16);
        if (bad)
            assert (!m16 && strstr (err, "precision"));
        else {
            kn_config_t c16 = cfg;
            c16.precision = kn_gemm_supported () ? KN_PRECISION_BF16 : KN_PRECISION_FP32;
            kn_backend_t *be16 = kn_cpu_new (1);
            kn_model_t *net16 = kn_model_new (&c16, 64, 3, be16, err, sizeof err);
            assert (net16 && kn_model_set_params (net16, weights) == 0);
            float want16 [2];
            assert (kn_model_predict (net16, zr, 2, want16) == 0);
            assert (lb_model_predict (m16, xr, 2, COLS, 1, got, err, sizeof err) == 0);
            assert (memcmp (want16, got, sizeof got) == 0);
            kn_model_destroy (&net16);
            kn_backend_destroy (&be16);
            lb_model_destroy (&m16);
        }
    }
    assert (lb_model_set_params (mlp, "{\"impute\": \"none\", \"net\": {\"arch\": \"mlp\", "
            "\"n_in\": 3, \"n_out\": 1, \"act\": \"relu\", \"dropout\": 0, \"hidden\": [5], "
            "\"layernorm\": false}}") == 0);
    xr [4] = NAN;                                   //  no imputation: refused
    assert (lb_model_predict (mlp2, xr, 2, COLS, 1, got, err, sizeof err) == -1);
    assert (strstr (err, "vol_5 is NaN"));
    free (image);
    //  Weights that do not fit the architecture are refused at load.
    lb_model_set_blob (mlp, "weights", weights, (np - 1) * sizeof (float));
    assert (lb_model_to_buffer (mlp, &image, &size) == 0);
    assert (!lb_model_from_buffer (image, size, err, sizeof err));
    assert (strstr (err, "blob weights"));
    free (image);
    free (weights);
    kn_model_destroy (&net);
    kn_backend_destroy (&be);
    lb_model_destroy (&mlp2);
    lb_model_destroy (&mlp);

    //  Windows follow each entity; history runs out by repeating the oldest row.
    float seq [5] = { 10, 20, 11, 21, 12 };
    uint32_t ent [5] = { 0, 1, 0, 1, 0 };
    int64_t prev [5];
    lb_model_prev_rows (ent, 5, prev);
    assert (prev [0] == -1 && prev [2] == 0 && prev [4] == 2 && prev [3] == 1);
    float win [3];
    lb_model_window (seq, 1, prev, 4, 3, win);
    assert (win [0] == 10 && win [1] == 11 && win [2] == 12);
    lb_model_window (seq, 1, prev, 3, 3, win);
    assert (win [0] == 20 && win [1] == 20 && win [2] == 21);
    lb_model_prev_rows (NULL, 5, prev);
    lb_model_window (seq, 1, prev, 1, 3, win);
    assert (win [0] == 10 && win [1] == 10 && win [2] == 20);

    //  Scoring a dataset: features found by name, in another order.
    const char *dnames [4] = { "rsi_14", "extra", "ret_1", "vol_5" };
    lb_dataset_t *ds = lb_dataset_new (LB_DATASET_BINARY, 2, "label", 4, dnames, NULL);
    uint32_t entity = lb_dataset_entity (ds, "X");
    for (size_t r = 0; r < ROWS; r++) {
        float row [4] = { x [r * COLS + 2], 7, x [r * COLS], x [r * COLS + 1] };
        assert (lb_dataset_append (ds, 1000 + (int64_t) r, entity, row, y [r], NAN, NAN) == 0);
    }
    size_t begin [3] = { 0, 100, 200 }, end [3] = { 100, 200, ROWS };
    assert (lb_dataset_set_splits (ds, begin, end) == 0);
    float *scores;
    size_t nscores;
    assert (lb_model_score_dataset (model, ds, LB_DATASET_TEST, 1, &scores, &nscores, err, sizeof err) == 0);
    assert (nscores == ROWS - 200);
    assert (memcmp (scores, p1 + 200, nscores * sizeof (float)) == 0);
    free (scores);
    lb_dataset_destroy (&ds);
    const char *other [3] = { "ret_1", "vol_5", "nope" };
    ds = lb_dataset_new (LB_DATASET_BINARY, 2, "label", 3, other, NULL);
    entity = lb_dataset_entity (ds, "X");
    for (size_t r = 0; r < 10; r++)
        assert (lb_dataset_append (ds, 1000 + (int64_t) r, entity, x, 0, NAN, NAN) == 0);
    size_t b2 [3] = { 0, 4, 8 }, e2 [3] = { 4, 8, 10 };
    assert (lb_dataset_set_splits (ds, b2, e2) == 0);
    assert (lb_model_score_dataset (model, ds, LB_DATASET_TEST, 1, &scores, &nscores, err, sizeof err) == -1);
    assert (strstr (err, "no column 'rsi_14'"));
    lb_dataset_destroy (&ds);

    lb_model_destroy (&ens);
    lb_model_destroy (&model);
    lb_selftest_rmtree (dir);
    free (dir);
    free (path);
    free (p1);
    free (p2);
    free (p3);
    free (x);
    free (y);
    if (verbose)
        printf ("OK\n");
}
