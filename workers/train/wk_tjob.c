/*  wk_tjob.c - one training job (see wk_tjob.h). */
#include "wk_tjob.h"
#include "wk_tdata.h"
#include "wk_tens.h"
#include "wk_tgroup.h"
#include "wk_tnet.h"
#include "wk_tparams.h"
#include "wk_txgb.h"
#include "lb_artifact.h"
#include "lb_dataset.h"
#include "lb_log.h"
#include "lb_mem.h"
#include "lb_model.h"
#include "lb_selftest.h"
#include "pr_rank.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_CKPT_MAGIC   "PRDCKPT"
#define S_CKPT_VERSION 1
#define S_CKPT_HEAD    56       //  magic 8, version 4, family 4, fingerprint 32, body size 8

//  What one job holds while it runs.
typedef struct {
    const wk_tjob_req_t *req;
    const wk_tjob_io_t *io;
    lb_artifact_t *store;
    lb_model_family_t family;
    uint8_t fingerprint [32];
    char *pointer;              //  ROOT/checkpoints/RUN/STEP.uri, or NULL
    char *ckpt_uri;             //  the checkpoint the pointer names, or NULL
    int64_t started;
} s_job_t;

static const char *
s_param (const wk_tjob_req_t *req, const char *name)
{
    for (size_t i = 0; i < req->nparams; i++)
        if (strcmp (req->names [i], name) == 0)
            return req->values [i];
    return NULL;
}

//  Job keys that are not hyperparameters: ours, and upstream outputs the
//  scheduler adds as "STEP.OUTPUT" (they have a dot).
static bool
s_reserved (const char *name)
{
    return strcmp (name, "family") == 0 || strcmp (name, "model") == 0
        || strcmp (name, "dataset") == 0 || strcmp (name, "seed") == 0
        || strcmp (name, "members") == 0 || strchr (name, '.') != NULL
        || strcmp (name, "rank") == 0 || strcmp (name, "ranks") == 0
        || strcmp (name, "group") == 0 || strcmp (name, "nccl_id") == 0
        || strcmp (name, "gpus") == 0;
}

//  Returns the values of every "STEP.<output>" key, sorted by key, as a new
//  comma-separated list (caller frees), or NULL when there is none.
static char *
s_upstream (const wk_tjob_req_t *req, const char *output, size_t *count)
{
    size_t len = strlen (output);
    const char **keys = lb_xcalloc (req->nparams + 1, sizeof *keys);
    size_t n = 0;
    for (size_t i = 0; i < req->nparams; i++) {
        const char *dot = strrchr (req->names [i], '.');
        if (dot && dot > req->names [i] && strcmp (dot + 1, output) == 0 && strlen (dot + 1) == len)
            keys [n++] = req->names [i];
    }
    for (size_t i = 1; i < n; i++)          //  insertion sort: a handful of keys
        for (size_t j = i; j > 0 && strcmp (keys [j - 1], keys [j]) > 0; j--) {
            const char *t = keys [j];
            keys [j] = keys [j - 1];
            keys [j - 1] = t;
        }
    char *list = NULL;
    for (size_t i = 0; i < n; i++) {
        char *next = lb_xasprintf ("%s%s%s", list ? list : "", list ? "," : "", s_param (req, keys [i]));
        free (list);
        list = next;
    }
    free (keys);
    *count = n;
    return list;
}

int
wk_tjob_threads (lb_config_t *config)
{
    int64_t n = lb_config_int (config, "train.threads");
    if (n > 0)
        return (int) n;
    long online = sysconf (_SC_NPROCESSORS_ONLN);
    return online > 0 ? (int) online : 1;
}

// ---------------------------------------------------------------- reading inputs

//  Reads an artifact by URI, or a file by absolute path. Returns 0 or -1 (err).
static int
s_read (lb_artifact_t *store, const char *where, uint8_t **data, size_t *size,
        char *err, size_t err_size)
{
    if (strncmp (where, "file://", 7) == 0) {
        if (lb_artifact_read (store, where, data, size) == 0)
            return 0;
        snprintf (err, err_size, "%s: cannot read the artifact (missing, or its content does not "
                  "match its hash)", where);
        return -1;
    }
    if (where [0] != '/') {
        snprintf (err, err_size, "'%s' is neither a file:// artifact URI nor an absolute path", where);
        return -1;
    }
    int fd = open (where, O_RDONLY | O_CLOEXEC);
    struct stat st;
    if (fd < 0 || fstat (fd, &st) || !S_ISREG (st.st_mode)) {
        snprintf (err, err_size, "%s: cannot open: %s", where, fd < 0 ? strerror (errno) : "not a file");
        if (fd >= 0)
            close (fd);
        return -1;
    }
    size_t n = (size_t) st.st_size, done = 0;
    uint8_t *buf = lb_xmalloc (n ? n : 1);
    while (done < n) {
        ssize_t r = read (fd, buf + done, n - done);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            snprintf (err, err_size, "%s: read failed", where);
            free (buf);
            close (fd);
            return -1;
        }
        done += (size_t) r;
    }
    close (fd);
    *data = buf;
    *size = n;
    return 0;
}

// ---------------------------------------------------------------- checkpoints

static void
s_fingerprint (s_job_t *job, const char *dataset_hex, const json_t *params, uint64_t seed,
               int nthread, int nranks)
{
    //  A group's shards change the arithmetic: its size is part of the key
    //  (and absent for one rank, so earlier checkpoints still match).
    char *ptext = json_dumps (params, JSON_COMPACT | JSON_SORT_KEYS);
    char ranks [32] = "";
    if (nranks > 1)
        snprintf (ranks, sizeof ranks, "|ranks=%d", nranks);
    char *text = lb_xasprintf ("v1|%s|%s|%s|%llu|%d%s", lb_model_family_name (job->family),
                               dataset_hex, ptext, (unsigned long long) seed, nthread, ranks);
    crypto_hash_sha256 (job->fingerprint, (const uint8_t *) text, strlen (text));
    free (text);
    free (ptext);
}

//  Makes "a/b" path-safe: anything but [A-Za-z0-9._-] becomes '_'.
static char *
s_safe (const char *name)
{
    char *s = lb_xstrdup (name);
    for (char *p = s; *p; p++)
        if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')
        ||    *p == '.' || *p == '-' || *p == '_'))
            *p = '_';
    if (s [0] == '.')
        s [0] = '_';
    return s;
}

static int
s_mkdirs (const char *path)
{
    char *copy = lb_xstrdup (path);
    for (char *p = copy + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir (copy, 0755) && errno != EEXIST) {
                free (copy);
                return -1;
            }
            *p = '/';
        }
    free (copy);
    return 0;
}

//  The checkpoint hook: wraps the body, stores it, moves the pointer.
static int
s_checkpoint_put (void *arg, const uint8_t *body, size_t size)
{
    s_job_t *job = arg;
    size_t total = S_CKPT_HEAD + size + 32;
    uint8_t *image = lb_xmalloc (total);
    memcpy (image, S_CKPT_MAGIC "\0", 8);
    uint32_t version = S_CKPT_VERSION, family = (uint32_t) job->family;
    uint64_t n = size;
    memcpy (image + 8, &version, 4);
    memcpy (image + 12, &family, 4);
    memcpy (image + 16, job->fingerprint, 32);
    memcpy (image + 48, &n, 8);
    memcpy (image + S_CKPT_HEAD, body, size);
    crypto_hash_sha256 (image + S_CKPT_HEAD + size, image, S_CKPT_HEAD + size);
    char *uri = NULL;
    int rc = lb_artifact_put (job->store, image, total, &uri);
    free (image);
    if (rc)
        return -1;
    char *tmp = lb_xasprintf ("%s.tmp.%d", job->pointer, (int) getpid ());
    FILE *f = s_mkdirs (job->pointer) ? NULL : fopen (tmp, "w");
    if (!f || fprintf (f, "%s\n", uri) < 0 || fflush (f) || fsync (fileno (f))) {
        lb_log_warn ("checkpoint pointer %s: %s", tmp, strerror (errno));
        if (f)
            fclose (f);
        unlink (tmp);
        free (tmp);
        free (uri);
        return -1;
    }
    fclose (f);
    if (rename (tmp, job->pointer)) {
        lb_log_warn ("checkpoint pointer %s: rename: %s", job->pointer, strerror (errno));
        unlink (tmp);
        free (tmp);
        free (uri);
        return -1;
    }
    free (tmp);
    //  The previous checkpoint is garbage now.
    if (job->ckpt_uri && strcmp (job->ckpt_uri, uri) != 0) {
        char *old = lb_artifact_path (job->store, job->ckpt_uri, false);
        if (old)
            unlink (old);
        free (old);
    }
    free (job->ckpt_uri);
    job->ckpt_uri = uri;
    lb_log_info ("checkpoint stored uri=%s bytes=%zu", uri, total);
    return 0;
}

//  Loads the checkpoint the pointer names, if any, into *body. Returns 1 when
//  there is one to resume from, 0 when none (or unusable: reported).
static int
s_checkpoint_get (s_job_t *job, uint8_t **image_p, const uint8_t **body, size_t *body_size)
{
    FILE *f = fopen (job->pointer, "r");
    if (!f)
        return 0;
    char line [1024] = "";
    bool got = fgets (line, sizeof line, f) != NULL;
    fclose (f);
    line [strcspn (line, "\n")] = 0;
    if (!got || !*line) {
        lb_log_warn ("checkpoint pointer %s is empty; starting from zero", job->pointer);
        return 0;
    }
    job->ckpt_uri = lb_xstrdup (line);
    uint8_t *image = NULL;
    size_t size = 0;
    const char *why = NULL;
    if (lb_artifact_read (job->store, line, &image, &size))
        why = "cannot be read or does not match its hash";
    else
    if (size < S_CKPT_HEAD + 32 || memcmp (image, S_CKPT_MAGIC "\0", 8) != 0)
        why = "is not a checkpoint";
    else {
        uint8_t digest [32];
        crypto_hash_sha256 (digest, image, size - 32);
        uint32_t version, family;
        uint64_t n;
        memcpy (&version, image + 8, 4);
        memcpy (&family, image + 12, 4);
        memcpy (&n, image + 48, 8);
        if (memcmp (digest, image + size - 32, 32) != 0)
            why = "fails its checksum (corrupt)";
        else
        if (version != S_CKPT_VERSION)
            why = "has another format version";
        else
        if (family != (uint32_t) job->family || memcmp (image + 16, job->fingerprint, 32) != 0)
            why = "belongs to another dataset, family, hyperparameters, seed or thread count";
        else
        if (n != size - S_CKPT_HEAD - 32)
            why = "has a body size that does not fit";
    }
    if (why) {
        lb_log_warn ("checkpoint %s %s; starting from zero", line, why);
        if (job->io->progress) {
            char msg [1200];
            snprintf (msg, sizeof msg, "checkpoint %s %s; starting from zero", line, why);
            job->io->progress (job->io->arg, 0, "resume", msg);
        }
        free (image);
        return 0;
    }
    *image_p = image;
    *body = image + S_CKPT_HEAD;
    *body_size = size - S_CKPT_HEAD - 32;
    return 1;
}

static void
s_checkpoint_clear (s_job_t *job)
{
    if (!job->pointer)
        return;
    unlink (job->pointer);
    if (job->ckpt_uri) {
        char *path = lb_artifact_path (job->store, job->ckpt_uri, false);
        if (path)
            unlink (path);
        free (path);
    }
}

// ---------------------------------------------------------------- hooks

static void
s_progress (void *arg, const wk_tprogress_t *p)
{
    s_job_t *job = arg;
    const wk_tjob_io_t *io = job->io;
    char msg [256], eta [32] = "?";
    if (isfinite (p->eta_s))
        snprintf (eta, sizeof eta, "%.0fs", p->eta_s);
    snprintf (msg, sizeof msg, "%s %d/%d train_loss %.5f val_loss %.5f val_%s %.5f %.0f samples/s ETA %s",
              p->unit, p->step, p->steps, p->train_loss, p->val_loss, p->metric_name, p->metric,
              p->samples_per_s, eta);
    if (io->metric) {
        if (isfinite (p->train_loss))
            io->metric (io->arg, "train_loss", p->train_loss);
        if (isfinite (p->val_loss))
            io->metric (io->arg, "val_loss", p->val_loss);
        if (isfinite (p->samples_per_s))
            io->metric (io->arg, "samples_per_s", p->samples_per_s);
        if (isfinite (p->eta_s))
            io->metric (io->arg, "eta_seconds", p->eta_s);
    }
    if (io->progress)
        io->progress (io->arg, p->percent, "train", msg);
    lb_log_info ("%s", msg);
}

static void
s_metric (void *arg, const char *name, double value)
{
    s_job_t *job = arg;
    if (job->io->metric)
        job->io->metric (job->io->arg, name, value);
}

static bool
s_stopping (void *arg)
{
    s_job_t *job = arg;
    return job->io->stopping && job->io->stopping (job->io->arg);
}

// ---------------------------------------------------------------- the job

static wk_status_t
s_fail (wk_status_t status, char *code, size_t code_size, const char *c)
{
    snprintf (code, code_size, "%s", c);
    return status;
}

wk_status_t
wk_tjob_run (const wk_tjob_req_t *req, const wk_tjob_io_t *io, char **model_uri,
             char *code, size_t code_size, char *err, size_t err_size)
{
    assert (req && io && model_uri && code && err);
    *model_uri = NULL;
    wk_status_t status = WK_FAIL;
    s_job_t job = { .req = req, .io = io };
    lb_clock_t clock = lb_clock_system ();
    job.started = lb_clock_mono (&clock);
    uint8_t *ds_bytes = NULL, *ckpt_image = NULL, *model_bytes = NULL;
    size_t ds_size = 0, model_size = 0;
    lb_dataset_t *ds = NULL;
    json_t *params = NULL;
    const char **hp_names = NULL, **hp_values = NULL, **feat = NULL;
    lb_model_t *model = NULL;
    lb_model_t **members = NULL;
    size_t nmembers = 0;
    char *members_copy = NULL, *upstream_dataset = NULL, *upstream_models = NULL;

    //  Parameters: "family" (or the scheduler's "model"), "dataset" (or the
    //  one upstream "STEP.dataset"), "members" (or every upstream "STEP.model").
    const char *family_name = s_param (req, "family");
    if (!family_name)
        family_name = s_param (req, "model");
    if (!family_name || lb_model_family_parse (family_name, &job.family)) {
        snprintf (err, err_size, "param family: '%s' is not one of xgboost, rf, mlp, transformer, "
                  "ensemble", family_name ? family_name : "(missing)");
        status = s_fail (WK_FAIL, code, code_size, "bad_params");
        goto out;
    }
    const char *dataset = s_param (req, "dataset");
    size_t nup = 0;
    if (!dataset) {
        upstream_dataset = s_upstream (req, "dataset", &nup);
        dataset = nup == 1 ? upstream_dataset : NULL;
    }
    if (!dataset || !*dataset) {
        snprintf (err, err_size, "param dataset: %s (the URI of a dataset artifact, or one upstream "
                  "STEP.dataset output)", nup > 1 ? "several upstream STEP.dataset outputs" : "missing");
        status = s_fail (WK_FAIL, code, code_size, "bad_params");
        goto out;
    }
    uint64_t seed = 0;
    const char *seed_text = s_param (req, "seed");
    if (seed_text) {
        int64_t v;
        if (lb_config_parse_int (seed_text, &v) || v < 0) {
            snprintf (err, err_size, "param seed: '%s' is not an integer >= 0", seed_text);
            status = s_fail (WK_FAIL, code, code_size, "bad_params");
            goto out;
        }
        seed = (uint64_t) v;
    }
    hp_names = lb_xcalloc (req->nparams + 1, sizeof *hp_names);
    hp_values = lb_xcalloc (req->nparams + 1, sizeof *hp_values);
    size_t nhp = 0;
    for (size_t i = 0; i < req->nparams; i++)
        if (!s_reserved (req->names [i])) {
            hp_names [nhp] = req->names [i];
            hp_values [nhp++] = req->values [i];
        }
    params = wk_tparams_resolve (job.family, hp_names, hp_values, nhp, err, err_size);
    if (!params) {
        status = s_fail (WK_FAIL, code, code_size, "bad_params");
        goto out;
    }
    const char *members_list = s_param (req, "members");
    if (!members_list && job.family == LB_MODEL_ENSEMBLE) {
        upstream_models = s_upstream (req, "model", &nup);
        members_list = upstream_models;
    }
    if ((job.family == LB_MODEL_ENSEMBLE) != (members_list != NULL)) {
        snprintf (err, err_size, "param members: %s", job.family == LB_MODEL_ENSEMBLE
                  ? "missing (comma-separated model URIs)" : "only the ensemble family takes members");
        status = s_fail (WK_FAIL, code, code_size, "bad_params");
        goto out;
    }

    //  A training group (pr_rank.h) or several GPUs in this trainer.
    pr_rank_t grp;
    int want_gpus = 1;
    {
        pr_kv_t kv = { 0 };
        for (size_t i = 0; i < req->nparams; i++)
            pr_kv_set_str (&kv, req->names [i], req->values [i]);
        char gerr [256];
        int grc = pr_rank_parse (&kv, &grp, gerr, sizeof gerr);
        pr_kv_release (&kv);
        if (grc) {
            snprintf (err, err_size, "param %s", gerr);
            status = s_fail (WK_FAIL, code, code_size, "bad_params");
            goto out;
        }
    }
    const char *gpus_text = s_param (req, "gpus");
    if (gpus_text) {
        int64_t v;
        if (lb_config_parse_int (gpus_text, &v) || v < 1 || v > PR_RANK_MAX) {
            snprintf (err, err_size, "param gpus: '%s' is not an integer from 1 to %d", gpus_text,
                      PR_RANK_MAX);
            status = s_fail (WK_FAIL, code, code_size, "bad_params");
            goto out;
        }
        want_gpus = (int) v;
    }
    bool parallel = grp.ranks > 1 || want_gpus > 1;
    if (parallel && job.family != LB_MODEL_MLP && job.family != LB_MODEL_TRANSFORMER) {
        snprintf (err, err_size, "param %s: %s trains on one device; data-parallel training over "
                  "NCCL is for mlp and transformer", grp.ranks > 1 ? "ranks" : "gpus", family_name);
        status = s_fail (WK_FAIL, code, code_size, "bad_params");
        goto out;
    }
    if (grp.ranks > 1 && want_gpus > 1) {
        snprintf (err, err_size, "param gpus: %d with ranks = %d: a job is one rank of a group "
                  "across trainers or a group of its own, not both", want_gpus, grp.ranks);
        status = s_fail (WK_FAIL, code, code_size, "bad_params");
        goto out;
    }

    //  GPU: a job that asks for one must have one here.
    int gpus = req->gpus;
    const char *why = req->gpu_why ? req->gpu_why : "no GPU found";
    const char *gpu_mode = lb_config_str (req->config, "train.gpu");
    if (gpus > 0 && strcmp (gpu_mode, "off") == 0) {
        gpus = 0;
        why = "train.gpu = off";
    }
    if ((req->needs_gpu || parallel) && gpus == 0) {
        snprintf (err, err_size, "the job needs %s and this trainer has none (%s); GPU jobs go "
                  "to the service train.gpu", grp.ranks > 1 ? "a GPU (it is rank of an NCCL group)"
                  : want_gpus > 1 ? "several GPUs" : "a GPU", why);
        status = s_fail (WK_FAIL, code, code_size, "no_gpu");
        goto out;
    }
    if (parallel && (!req->nccl_id || !req->nccl_backend)) {
        snprintf (err, err_size, "the job trains over NCCL and this trainer was built without it");
        status = s_fail (WK_FAIL, code, code_size, "no_gpu");
        goto out;
    }
    if (want_gpus > 1 && want_gpus > gpus) {
        //  Another GPU trainer may have enough: worth a retry elsewhere.
        snprintf (err, err_size, "param gpus: %d, and this trainer has %d GPU%s", want_gpus, gpus,
                  gpus == 1 ? "" : "s");
        status = s_fail (WK_RETRY, code, code_size, "too_few_gpus");
        goto out;
    }
    bool use_gpu = gpus > 0;

    //  The dataset.
    job.store = lb_artifact_new (lb_config_str (req->config, "artifacts.root"));
    if (!job.store) {
        snprintf (err, err_size, "artifact store %s cannot be opened",
                  lb_config_str (req->config, "artifacts.root"));
        status = s_fail (WK_RETRY, code, code_size, "store");
        goto out;
    }
    if (s_read (job.store, dataset, &ds_bytes, &ds_size, err, err_size)) {
        status = s_fail (WK_FAIL, code, code_size, "bad_dataset");
        goto out;
    }
    char derr [256] = "";
    ds = lb_dataset_decode (ds_bytes, ds_size, derr, sizeof derr);
    if (!ds) {
        snprintf (err, err_size, "dataset %s: %s", dataset, derr);
        status = s_fail (WK_FAIL, code, code_size, "bad_dataset");
        goto out;
    }
    char ds_hex [65];
    lb_artifact_sha256 (ds_bytes, ds_size, ds_hex);
    free (ds_bytes);
    ds_bytes = NULL;
    lb_model_task_t task;
    switch (lb_dataset_task (ds)) {
        case LB_DATASET_BINARY:     task = LB_MODEL_BINARY; break;
        case LB_DATASET_REGRESSION: task = LB_MODEL_REGRESSION; break;
        default:
            snprintf (err, err_size, "dataset %s: task multiclass is not trained yet "
                      "(binary and regression are)", dataset);
            status = s_fail (WK_FAIL, code, code_size, "unsupported_task");
            goto out;
    }
    size_t cols = lb_dataset_cols (ds), tb, te, vb, ve;
    feat = lb_xcalloc (cols + 1, sizeof *feat);
    for (size_t c = 0; c < cols; c++)
        feat [c] = lb_dataset_column (ds, c);
    lb_dataset_split (ds, LB_DATASET_TRAIN, &tb, &te);
    lb_dataset_split (ds, LB_DATASET_VALID, &vb, &ve);
    const float *x = lb_dataset_x (ds), *y = lb_dataset_y (ds);
    wk_tdata_t data = { .task = task, .cols = cols, .names = feat,
                        .x = x + tb * cols, .y = y + tb, .rows = te - tb,
                        .vx = x + vb * cols, .vy = y + vb, .vrows = ve - vb,
                        .entity = lb_dataset_entities (ds) + tb,
                        .ventity = lb_dataset_entities (ds) + vb };
    char cerr [256];
    if (wk_tdata_check (&data, cerr, sizeof cerr)) {
        snprintf (err, err_size, "dataset %s: %s", dataset, cerr);
        status = s_fail (WK_FAIL, code, code_size, "bad_dataset");
        goto out;
    }

    //  Nets cannot take NaN: refuse unless imputation was asked for.
    bool net = job.family == LB_MODEL_MLP || job.family == LB_MODEL_TRANSFORMER;
    if (net && strcmp (wk_tparams_str (params, "impute"), "none") == 0) {
        size_t r, c;
        const char *split = "train";
        bool found = wk_tdata_find_nan (data.x, data.rows, cols, &r, &c);
        if (!found) {
            split = "validation";
            found = wk_tdata_find_nan (data.vx, data.vrows, cols, &r, &c);
        }
        if (found) {
            snprintf (err, err_size, "dataset %s: %s row %zu, feature %s is NaN: %s cannot take "
                      "missing values (set impute=mean to fill them with the training mean)",
                      dataset, split, r, feat [c], family_name);
            status = s_fail (WK_FAIL, code, code_size, "bad_dataset");
            goto out;
        }
    }

    int nthread = wk_tjob_threads (req->config);
    wk_tctx_t ctx = { .nthread = nthread, .seed = seed, .clock = clock,
                      .progress_every_s = lb_config_seconds (req->config, "train.progress_every"),
                      .checkpoint_every_s = lb_config_seconds (req->config, "train.checkpoint_every"),
                      .progress = s_progress, .metric = s_metric, .stopping = s_stopping,
                      .arg = &job };
    s_fingerprint (&job, ds_hex, params, seed, nthread, grp.ranks > 1 ? grp.ranks : want_gpus);
    if (req->run && req->step && ctx.checkpoint_every_s > 0) {
        char *run = s_safe (req->run), *step = s_safe (req->step);
        job.pointer = lb_xasprintf ("%s/checkpoints/%s/%s.uri", lb_artifact_root (job.store), run, step);
        free (run);
        free (step);
        //  Every rank resumes from the group's checkpoint; rank 0 writes them.
        if (grp.rank == 0)
            ctx.checkpoint = s_checkpoint_put;
        if (s_checkpoint_get (&job, &ckpt_image, &ctx.resume, &ctx.resume_size) == 1 && io->progress)
            io->progress (io->arg, 0, "resume", "resuming from the last checkpoint");
    }

    wk_tresult_t rc = WK_T_BAD_INPUT;
    char terr [512] = "";
    switch (job.family) {
        case LB_MODEL_XGBOOST:
        case LB_MODEL_RF: {
            char xwhy [256];
            ctx.gpu = use_gpu && wk_txgb_gpu_capable (xwhy, sizeof xwhy);
            if (use_gpu && !ctx.gpu)
                lb_log_info ("training %s on the CPU: %s", family_name, xwhy);
            rc = wk_txgb_train (job.family, &data, params, &ctx, &model, terr, sizeof terr);
            break;
        }
        case LB_MODEL_ENSEMBLE: {
            members_copy = lb_xstrdup (members_list);
            char *save = NULL;
            for (char *tok = strtok_r (members_copy, ",", &save); tok; tok = strtok_r (NULL, ",", &save)) {
                uint8_t *bytes = NULL;
                size_t size = 0;
                if (s_read (job.store, tok, &bytes, &size, terr, sizeof terr))
                    break;
                char merr [384];
                lb_model_t *m = lb_model_from_buffer (bytes, size, merr, sizeof merr);
                free (bytes);
                if (!m) {
                    snprintf (terr, sizeof terr, "member %s: %s", tok, merr);
                    break;
                }
                members = lb_xrealloc (members, (nmembers + 1) * sizeof *members);
                members [nmembers++] = m;
            }
            if (*terr)
                break;
            rc = wk_tens_train (members, nmembers, &data, params, &ctx, &model, terr, sizeof terr);
            break;
        }
        case LB_MODEL_MLP:
        case LB_MODEL_TRANSFORMER:
            ctx.gpu = use_gpu && req->gpu_backend;
            ctx.gpu_backend = req->gpu_backend;
            if (parallel)
                rc = wk_tgroup_job (req, io, job.family, &grp, want_gpus, &data, params, &ctx, &model, terr,
                                    sizeof terr);
            else
                rc = wk_tnet_train (job.family, &data, params, &ctx, &model, terr, sizeof terr);
            break;
    }
    if (rc != WK_T_OK) {
        snprintf (err, err_size, "%s: %s", family_name, terr);
        if (rc == WK_T_BAD_INPUT)
            status = s_fail (WK_FAIL, code, code_size, "bad_input");
        else
        if (rc == WK_T_STOPPED)
            status = s_fail (WK_RETRY, code, code_size, "shutdown");
        else
            status = s_fail (WK_RETRY, code, code_size, "train_failed");
        goto out;
    }

    if (grp.rank > 0) {
        //  Rank 0 stores the group's model (the same parameters).
        lb_log_info ("rank %d of %d of group %s done; rank 0 stores the model", grp.rank, grp.ranks,
                     grp.group);
        if (io->metric)
            io->metric (io->arg, "fit_seconds", (double) (lb_clock_mono (&clock) - job.started) / 1e6);
        *model_uri = NULL;
        status = WK_DONE;
        snprintf (code, code_size, "%s", "");
        goto out;
    }
    //  The artifact.
    lb_model_set_info (model, "dataset", dataset);
    lb_model_set_info (model, "dataset_sha256", ds_hex);
    char text [32];
    snprintf (text, sizeof text, "%llu", (unsigned long long) seed);
    lb_model_set_info (model, "seed", text);
    snprintf (text, sizeof text, "%d", nthread);
    lb_model_set_info (model, "threads", text);
    if (lb_model_to_buffer (model, &model_bytes, &model_size)
    ||  lb_artifact_put (job.store, model_bytes, model_size, model_uri)) {
        snprintf (err, err_size, "the model could not be stored in %s", lb_artifact_root (job.store));
        status = s_fail (WK_RETRY, code, code_size, "store");
        goto out;
    }
    if (io->metric) {
        char *mtext = lb_model_metrics_json (model);
        json_t *metrics = json_loads (mtext, 0, NULL);
        const char *key;
        json_t *value;
        json_object_foreach (metrics, key, value)
            io->metric (io->arg, key, json_number_value (value));
        json_decref (metrics);
        free (mtext);
        io->metric (io->arg, "fit_seconds", (double) (lb_clock_mono (&clock) - job.started) / 1e6);
        io->metric (io->arg, "model_bytes", (double) model_size);
    }
    s_checkpoint_clear (&job);
    lb_log_info ("model stored family=%s uri=%s bytes=%zu", family_name, *model_uri, model_size);
    status = WK_DONE;
    snprintf (code, code_size, "%s", "");
out:
    for (size_t i = 0; i < nmembers; i++)
        lb_model_destroy (&members [i]);
    free (members);
    free (members_copy);
    free (upstream_dataset);
    free (upstream_models);
    lb_model_destroy (&model);
    free (model_bytes);
    free (ckpt_image);
    free (feat);
    free (hp_names);
    free (hp_values);
    json_decref (params);
    lb_dataset_destroy (&ds);
    free (ds_bytes);
    free (job.pointer);
    free (job.ckpt_uri);
    lb_artifact_destroy (&job.store);
    return status;
}

lb_dataset_t *
wk_tjob_synth (uint64_t seed, size_t rows, size_t cols, double valid_frac, double test_frac)
{
    assert (cols >= 4 && cols <= 1000);
    float *x = lb_xmalloc (rows * cols * sizeof (float)), *y = lb_xmalloc (rows * sizeof (float));
    wk_tdata_synth (seed, rows, cols, x, y);
    char **names = lb_xcalloc (cols, sizeof *names);
    for (size_t c = 0; c < cols; c++)
        names [c] = lb_xasprintf ("f%02zu", c);
    lb_dataset_t *ds = lb_dataset_new (LB_DATASET_BINARY, 2, "label", cols,
                                       (const char *const *) names, NULL);
    uint32_t entity = lb_dataset_entity (ds, "SYNTH");
    int rc = lb_dataset_set_horizon (ds, 3600, 3600);
    for (size_t r = 0; r < rows && rc == 0; r++)
        rc = lb_dataset_append (ds, 1700000000 + (int64_t) r * 3600, entity, x + r * cols, y [r],
                                NAN, NAN);
    size_t ntest = (size_t) ((double) rows * test_frac), nvalid = (size_t) ((double) rows * valid_frac);
    size_t begin [3] = { 0, rows - ntest - nvalid, rows - ntest };
    size_t end [3] = { rows - ntest - nvalid, rows - ntest, rows };
    if (rc == 0)
        rc = lb_dataset_set_splits (ds, begin, end);
    for (size_t c = 0; c < cols; c++)
        free (names [c]);
    free (names);
    free (x);
    free (y);
    if (rc)
        lb_dataset_destroy (&ds);
    return ds;
}

// ---------------------------------------------------------------- selftest

typedef struct {
    int progress;
    int stop_after;             //  0: never stop
    int stop_calls;
    double val_auc;
} s_io_probe_t;

static void
s_io_progress (void *arg, double percent, const char *stage, const char *message)
{
    s_io_probe_t *probe = arg;
    assert (percent >= 0 && percent <= 100 && stage && message);
    probe->progress++;
}

static void
s_io_metric (void *arg, const char *name, double value)
{
    s_io_probe_t *probe = arg;
    if (strcmp (name, "val_auc") == 0)
        probe->val_auc = value;
}

static bool
s_io_stopping (void *arg)
{
    s_io_probe_t *probe = arg;
    return probe->stop_after && ++probe->stop_calls > probe->stop_after;
}

static wk_status_t
s_run (lb_config_t *config, const char *run, const char *const *names, const char *const *values,
       size_t n, s_io_probe_t *probe, char **uri, char *code)
{
    wk_tjob_req_t req = { .config = config, .run = run, .step = run ? "train_xgboost" : NULL,
                          .nparams = n, .names = names, .values = values };
    wk_tjob_io_t io = { s_io_progress, s_io_metric, s_io_stopping, probe, NULL };
    char err [512] = "";
    free (*uri);
    *uri = NULL;
    wk_status_t status = wk_tjob_run (&req, &io, uri, code, 64, err, sizeof err);
    if (status != WK_DONE)
        lb_log_info ("wk_tjob test: %s: %s", code, err);
    return status;
}

void
wk_tjob_test (bool verbose)
{
    if (verbose)
        printf (" * wk_tjob: ");
    assert (sodium_init () >= 0);
    char *dir = lb_selftest_tmpdir ("wk_tjob");
    lb_config_t *config = lb_config_new (NULL, 0);
    assert (lb_config_set (config, "artifacts.root", dir, "test") == 0);
    assert (lb_config_set (config, "train.threads", "2", "test") == 0);
    //  A stopped xgboost job writes a checkpoint as it stops: no need for more.
    assert (lb_config_set (config, "train.checkpoint_every", "1h", "test") == 0);
    assert (wk_tjob_threads (config) == 2);
    lb_artifact_t *store = lb_artifact_new (dir);
    assert (store);

    //  A dataset with a missing value in it.
    lb_dataset_t *ds = wk_tjob_synth (11, 2000, 6, 0.2, 0.1);
    assert (ds);
    float *xs = (float *) lb_dataset_x (ds);
    xs [10] = NAN;
    uint8_t *bytes;
    size_t size;
    char *ds_uri = NULL;
    assert (lb_dataset_encode (ds, &bytes, &size) == 0);
    assert (lb_artifact_put (store, bytes, size, &ds_uri) == 0);
    free (bytes);
    lb_dataset_destroy (&ds);

    s_io_probe_t probe = { 0 };
    char *uri = NULL, code [64];
    const char *n1 [] = { "family", "dataset", "seed", "rounds", "max_depth" };
    const char *v1 [] = { "xgboost", ds_uri, "5", "40", "3" };
    assert (s_run (config, NULL, n1, v1, 5, &probe, &uri, code) == WK_DONE);
    assert (uri && probe.progress > 0 && probe.val_auc > 0.7);
    char *first = lb_xstrdup (uri);
    uint8_t *mbytes;
    size_t msize;
    assert (lb_artifact_read (store, uri, &mbytes, &msize) == 0);
    lb_model_t *model = lb_model_from_buffer (mbytes, msize, NULL, 0);
    assert (model && lb_model_family (model) == LB_MODEL_XGBOOST);
    assert (strcmp (lb_model_info (model, "dataset"), ds_uri) == 0);
    assert (strcmp (lb_model_feature_name (model, 0), "f00") == 0);
    lb_model_destroy (&model);
    free (mbytes);

    //  Same dataset, seed and threads: the same model, so the same URI.
    assert (s_run (config, NULL, n1, v1, 5, &probe, &uri, code) == WK_DONE);
    assert (strcmp (uri, first) == 0);

    //  Stopped half-way (a checkpoint as it stops), then resumed: the same model.
    probe.stop_after = 20;
    probe.stop_calls = 0;
    assert (s_run (config, "run1", n1, v1, 5, &probe, &uri, code) == WK_RETRY);
    assert (strcmp (code, "shutdown") == 0);
    char *pointer = lb_xasprintf ("%s/checkpoints/run1/train_xgboost.uri", lb_artifact_root (store));
    assert (access (pointer, F_OK) == 0);
    probe.stop_after = 0;
    assert (s_run (config, "run1", n1, v1, 5, &probe, &uri, code) == WK_DONE);
    assert (strcmp (uri, first) == 0);
    assert (access (pointer, F_OK) == -1);          //  cleared after success

    //  A corrupt checkpoint is reported and training starts from zero.
    probe.stop_after = 20;
    probe.stop_calls = 0;
    assert (s_run (config, "run2", n1, v1, 5, &probe, &uri, code) == WK_RETRY);
    char *pointer2 = lb_xasprintf ("%s/checkpoints/run2/train_xgboost.uri", lb_artifact_root (store));
    FILE *f = fopen (pointer2, "r");
    char line [512] = "";
    assert (f && fgets (line, sizeof line, f));
    fclose (f);
    line [strcspn (line, "\n")] = 0;
    char *ckpt_path = lb_artifact_path (store, line, false);
    assert (ckpt_path);
    int fd = open (ckpt_path, O_WRONLY);
    assert (fd >= 0 && pwrite (fd, "garbage", 7, 100) == 7);
    close (fd);
    probe.stop_after = 0;
    assert (s_run (config, "run2", n1, v1, 5, &probe, &uri, code) == WK_DONE);
    assert (strcmp (uri, first) == 0);
    free (ckpt_path);
    free (pointer2);
    free (pointer);

    //  Random forest, then an ensemble of the two.
    const char *n2 [] = { "family", "dataset", "trees", "max_depth" };
    const char *v2 [] = { "rf", ds_uri, "20", "6" };
    assert (s_run (config, NULL, n2, v2, 4, &probe, &uri, code) == WK_DONE);
    char *rf_uri = lb_xstrdup (uri);
    char *members = lb_xasprintf ("%s,%s", first, uri);
    const char *n3 [] = { "family", "dataset", "members" };
    const char *v3 [] = { "ensemble", ds_uri, members };
    assert (s_run (config, NULL, n3, v3, 3, &probe, &uri, code) == WK_DONE);
    assert (lb_artifact_read (store, uri, &mbytes, &msize) == 0);
    model = lb_model_from_buffer (mbytes, msize, NULL, 0);
    assert (model && lb_model_member_count (model) == 2);
    lb_model_destroy (&model);
    free (mbytes);
    free (members);

    //  The scheduler's names: "model" for the family, upstream outputs as
    //  STEP.OUTPUT (other upstream outputs are not hyperparameters).
    const char *n11 [] = { "model", "fetch.dataset", "discover.task", "train_xgboost.model",
                           "train_rf.model" };
    const char *v11 [] = { "ensemble", ds_uri, "file:///elsewhere", first, rf_uri };
    assert (s_run (config, NULL, n11, v11, 5, &probe, &uri, code) == WK_DONE);
    const char *n13 [] = { "model", "fetch.dataset", "max_depth", "seed", "rounds" };
    const char *v13 [] = { "xgboost", ds_uri, "3", "5", "40" };
    assert (s_run (config, NULL, n13, v13, 5, &probe, &uri, code) == WK_DONE);
    assert (strcmp (uri, first) == 0);
    free (rf_uri);

    //  Bad input, each with its code.
    const char *v4 [] = { "svm", ds_uri, "5", "60", "3" };
    assert (s_run (config, NULL, n1, v4, 5, &probe, &uri, code) == WK_FAIL);
    assert (strcmp (code, "bad_params") == 0);
    const char *v5 [] = { "xgboost", ds_uri, "5", "0", "3" };       //  rounds out of range
    assert (s_run (config, NULL, n1, v5, 5, &probe, &uri, code) == WK_FAIL);
    assert (strcmp (code, "bad_params") == 0);
    const char *v6 [] = { "xgboost", ds_uri, "-1", "10", "3" };
    assert (s_run (config, NULL, n1, v6, 5, &probe, &uri, code) == WK_FAIL);
    const char *v7 [] = { "xgboost", "relative/path", "5", "10", "3" };
    assert (s_run (config, NULL, n1, v7, 5, &probe, &uri, code) == WK_FAIL);
    assert (strcmp (code, "bad_dataset") == 0);
    const char *n8 [] = { "family", "dataset", "members" };
    const char *v8 [] = { "xgboost", ds_uri, first };
    assert (s_run (config, NULL, n8, v8, 3, &probe, &uri, code) == WK_FAIL);

    //  One class in the label.
    ds = wk_tjob_synth (12, 500, 5, 0.2, 0.1);
    float *ys = (float *) lb_dataset_y (ds);
    for (size_t r = 0; r < 500; r++)
        ys [r] = 0;
    char *one_uri = NULL;
    assert (lb_dataset_encode (ds, &bytes, &size) == 0);
    assert (lb_artifact_put (store, bytes, size, &one_uri) == 0);
    lb_dataset_destroy (&ds);
    const char *v9 [] = { "xgboost", one_uri, "5", "10", "3" };
    assert (s_run (config, NULL, n1, v9, 5, &probe, &uri, code) == WK_FAIL);
    assert (strcmp (code, "bad_dataset") == 0);

    //  A corrupt dataset: the store's hash check or the format's refuse it.
    char *path = lb_xasprintf ("%s/corrupt.pdset", dir);
    bytes [200] ^= 0x40;
    f = fopen (path, "w");
    assert (f && fwrite (bytes, 1, size, f) == size);
    fclose (f);
    free (bytes);
    const char *v10 [] = { "xgboost", path, "5", "10", "3" };
    assert (s_run (config, NULL, n1, v10, 5, &probe, &uri, code) == WK_FAIL);
    assert (strcmp (code, "bad_dataset") == 0);
    char *one_path = lb_artifact_path (store, one_uri, false);
    fd = open (one_path, O_WRONLY);
    assert (fd >= 0 && pwrite (fd, "x", 1, 300) == 1);
    close (fd);
    assert (s_run (config, NULL, n1, v9, 5, &probe, &uri, code) == WK_FAIL);
    assert (strcmp (code, "bad_dataset") == 0);
    free (one_path);
    free (path);
    free (one_uri);

    //  NaN features: missing for trees (above), refused for nets.
    const char *n14 [] = { "family", "dataset" };
    const char *v14 [] = { "mlp", ds_uri };
    assert (s_run (config, NULL, n14, v14, 2, &probe, &uri, code) == WK_FAIL);
    assert (strcmp (code, "bad_dataset") == 0);
    const char *n15 [] = { "family", "dataset", "impute", "epochs", "hidden", "batch", "lr" };
    const char *v15 [] = { "mlp", ds_uri, "mean", "3", "16", "64", "0.01" };
    assert (s_run (config, NULL, n15, v15, 7, &probe, &uri, code) == WK_DONE);
    assert (probe.val_auc > 0.6);

    //  A GPU job on a host without one.
    {
        wk_tjob_req_t req = { .config = config, .needs_gpu = true, .gpus = 0,
                              .gpu_why = "none in the test", .nparams = 5,
                              .names = n1, .values = v1 };
        wk_tjob_io_t io = { 0 };
        char err [512];
        assert (wk_tjob_run (&req, &io, &uri, code, sizeof code, err, sizeof err) == WK_FAIL);
        assert (strcmp (code, "no_gpu") == 0 && strstr (err, "train.gpu"));
    }

    free (uri);
    free (first);
    free (ds_uri);
    lb_artifact_destroy (&store);
    lb_config_destroy (&config);
    lb_selftest_rmtree (dir);
    free (dir);
    if (verbose)
        printf ("OK\n");
}
