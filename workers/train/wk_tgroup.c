/*  wk_tgroup.c - data-parallel ranks as threads of one trainer (wk_tgroup.h). */
#include "wk_tgroup.h"
#include "wk_tnet.h"
#include "wk_tparams.h"
#include "wk_tprobe.h"
#include "wk_tjob.h"
#include "lb_artifact.h"
#include "lb_config.h"
#include "lb_dataset.h"
#include "lb_selftest.h"
#include "kn_backend.h"
#include "lb_log.h"
#include "lb_mem.h"
#include "pr_rank.h"

#include <assert.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

//  One rank's work and outcome.
typedef struct {
    int rank;
    lb_model_family_t family;
    const wk_tdata_t *data;
    const json_t *params;
    wk_tctx_t ctx;                  //  this rank's copy
    const wk_tgroup_t *group;
    lb_model_t *model;
    wk_tresult_t rc;
    bool no_backend;                //  make failed: the cause, not a symptom
    char err [512];
} s_rank_t;

static void
s_run_rank (s_rank_t *r)
{
    char why [256];
    kn_backend_t *be = r->group->make (r->group->arg, r->rank, why, sizeof why);
    if (!be) {
        snprintf (r->err, sizeof r->err, "rank %d of %d: %s", r->rank, r->group->nranks, why);
        r->rc = WK_T_FAILED;
        r->no_backend = true;
        return;
    }
    r->ctx.backend = be;
    r->ctx.rank = r->rank;
    r->ctx.nranks = r->group->nranks;
    char terr [448] = "";
    r->rc = wk_tnet_train (r->family, r->data, r->params, &r->ctx, &r->model, terr, sizeof terr);
    if (r->rc != WK_T_OK)
        snprintf (r->err, sizeof r->err, "rank %d of %d: %s", r->rank, r->group->nranks, terr);
    kn_backend_destroy (&be);
}

static void *
s_rank_thread (void *arg)
{
    s_run_rank (arg);
    return NULL;
}

wk_tresult_t
wk_tgroup_train (lb_model_family_t family, const wk_tdata_t *data, const json_t *params,
                 const wk_tctx_t *ctx, const wk_tgroup_t *group, lb_model_t **model_p, char *err,
                 size_t err_size)
{
    assert (family == LB_MODEL_MLP || family == LB_MODEL_TRANSFORMER);
    assert (data && params && ctx && group && group->make && model_p);
    assert (group->nranks >= 2 && group->nranks <= PR_RANK_MAX);
    *model_p = NULL;
    int n = group->nranks;
    s_rank_t *ranks = lb_xcalloc ((size_t) n, sizeof *ranks);
    pthread_t *threads = lb_xcalloc ((size_t) n, sizeof *threads);
    bool *started = lb_xcalloc ((size_t) n, sizeof *started);
    for (int r = 0; r < n; r++) {
        ranks [r] = (s_rank_t) { .rank = r, .family = family, .data = data, .params = params,
                                 .ctx = *ctx, .group = group };
        if (r > 0) {
            //  Only rank 0 talks to the job; the group agrees on stopping.
            ranks [r].ctx.progress = NULL;
            ranks [r].ctx.checkpoint = NULL;
            ranks [r].ctx.metric = NULL;
            ranks [r].ctx.stopping = NULL;
            ranks [r].ctx.arg = NULL;
        }
    }
    for (int r = 1; r < n; r++) {
        int rc = pthread_create (&threads [r], NULL, s_rank_thread, &ranks [r]);
        if (rc) {
            snprintf (ranks [r].err, sizeof ranks [r].err, "rank %d of %d: no thread: %s", r, n,
                      strerror (rc));
            ranks [r].rc = WK_T_FAILED;
        }
        started [r] = rc == 0;
    }
    //  Without all its threads the group cannot form: rank 0 still runs and
    //  fails at its deadline, like the others, rather than leaving them waiting.
    s_run_rank (&ranks [0]);
    for (int r = 1; r < n; r++)
        if (started [r])
            pthread_join (threads [r], NULL);

    //  The outcome: rank 0's, unless a rank failed. The cause is named: a
    //  rank without a backend first (the others only timed out waiting for
    //  it), then the first real failure, "stopped" only when all stopped.
    wk_tresult_t rc = WK_T_OK;
    int worst = -1, score = 0;
    for (int r = 0; r < n; r++) {
        int s = ranks [r].rc == WK_T_OK ? 0 : ranks [r].no_backend ? 3
              : ranks [r].rc == WK_T_STOPPED ? 1 : 2;
        if (s > score) {
            score = s;
            worst = r;
        }
    }
    if (worst >= 0) {
        rc = ranks [worst].rc;
        snprintf (err, err_size, "%s", ranks [worst].err);
    }
    if (rc == WK_T_OK) {
        //  The ranks must hold the same parameters.
        size_t size0 = 0;
        const float *w0 = lb_model_blob (ranks [0].model, "weights", &size0);
        double diff = 0;
        for (int r = 1; r < n; r++) {
            size_t size = 0;
            const float *w = lb_model_blob (ranks [r].model, "weights", &size);
            if (!w || !w0 || size != size0) {
                diff = INFINITY;
                break;
            }
            for (size_t i = 0; i < size / sizeof (float); i++)
                if (fabs ((double) w [i] - (double) w0 [i]) > diff)
                    diff = fabs ((double) w [i] - (double) w0 [i]);
        }
        if (ctx->metric)
            ctx->metric (ctx->arg, "rank_param_max_diff", diff);
        if (diff != 0)
            lb_log_warn ("the %d ranks ended with different parameters (largest difference %g); "
                         "keeping rank 0's", n, diff);
        *model_p = ranks [0].model;
        ranks [0].model = NULL;
    }
    for (int r = 0; r < n; r++)
        lb_model_destroy (&ranks [r].model);
    free (started);
    free (threads);
    free (ranks);
    return rc;
}

//  The ranks of one trainer: rank r on device r, one id made here.
typedef struct {
    const wk_tjob_req_t *req;
    const unsigned char *id;
    int nranks, timeout_ms;
} s_local_t;

static struct kn_backend_s *
s_local_make (void *arg, int rank, char *why, size_t why_size)
{
    s_local_t *local = arg;
    return local->req->nccl_backend (local->req->nccl_arg, rank, local->id, local->nranks, rank,
                                     local->timeout_ms, why, why_size);
}

wk_tresult_t
wk_tgroup_job (const wk_tjob_req_t *req, const wk_tjob_io_t *io, lb_model_family_t family,
               const pr_rank_t *grp, int gpus, const wk_tdata_t *data, const json_t *params,
               wk_tctx_t *ctx, lb_model_t **model, char *err, size_t err_size)
{
    assert (req && io && grp && data && params && ctx && model);
    assert (req->nccl_id && req->nccl_backend && (grp->ranks > 1) != (gpus > 1));
    int timeout_ms = (int) (lb_config_seconds (req->config, "train.nccl_timeout") * 1000);
    unsigned char id [PR_RANK_ID_BYTES];
    char why [256];
    if (grp->rank == 0) {
        if (req->nccl_id (req->nccl_arg, id, why, sizeof why)) {
            snprintf (err, err_size, "rank 0: making the NCCL id: %s", why);
            return WK_T_FAILED;
        }
    }
    else
        memcpy (id, grp->id, sizeof id);
    if (grp->ranks == 1) {
        s_local_t local = { .req = req, .id = id, .nranks = gpus, .timeout_ms = timeout_ms };
        wk_tgroup_t group = { .nranks = gpus, .make = s_local_make, .arg = &local };
        return wk_tgroup_train (family, data, params, ctx, &group, model, err, err_size);
    }
    if (grp->rank == 0) {
        //  The scheduler reads it from this progress and relays it to the
        //  other ranks' jobs (docs/train.md "Across hosts").
        char hex [2 * PR_RANK_ID_BYTES + 1];
        pr_rank_id_hex (id, hex);
        if (io->announce)
            io->announce (io->arg, "nccl_id", hex);
    }
    if (io->progress) {
        char msg [512];
        snprintf (msg, sizeof msg, "rank %d of %d: waiting up to %d s for the group %s to form",
                  grp->rank, grp->ranks, timeout_ms / 1000, grp->group);
        io->progress (io->arg, 0, "group", msg);
    }
    int device = (int) lb_config_int (req->config, "train.device");
    struct kn_backend_s *be = req->nccl_backend (req->nccl_arg, device, id, grp->ranks, grp->rank,
                                                 timeout_ms, why, sizeof why);
    if (!be) {
        snprintf (err, err_size, "rank %d of %d: NCCL: %s", grp->rank, grp->ranks, why);
        return WK_T_FAILED;
    }
    ctx->backend = be;
    ctx->rank = grp->rank;
    ctx->nranks = grp->ranks;
    char terr [448] = "";
    wk_tresult_t rc = wk_tnet_train (family, data, params, ctx, model, terr, sizeof terr);
    if (rc != WK_T_OK)
        snprintf (err, err_size, "rank %d of %d: %s", grp->rank, grp->ranks, terr);
    ctx->backend = NULL;
    kn_backend_destroy (&be);
    return rc;
}

//  --------------------------------------------------------------------------
//  Selftest: CPU backends joined by wk_tprobe_net's test-only all-reduce
//  (no GPU needed; worker-train never trains this way).

typedef struct {
    double max_diff;
    int progress;
} s_test_probe_t;

static void
s_test_metric (void *arg, const char *name, double value)
{
    if (strcmp (name, "rank_param_max_diff") == 0)
        ((s_test_probe_t *) arg)->max_diff = value;
}

static void
s_test_progress (void *arg, const wk_tprogress_t *p)
{
    (void) p;
    ((s_test_probe_t *) arg)->progress++;
}

//  The group through whole jobs (wk_tjob_run): a test net for "NCCL".
typedef struct {
    wk_tprobe_net_t *net;
    pthread_mutex_t lock;
    unsigned char id [PR_RANK_ID_BYTES];
    char hex [2 * PR_RANK_ID_BYTES + 1];    //  what rank 0 handed out, "" before
    int ids_made;
} s_job_net_t;

static int
s_job_nccl_id (void *arg, unsigned char *id, char *why, size_t why_size)
{
    (void) why, (void) why_size;
    s_job_net_t *jn = arg;
    pthread_mutex_lock (&jn->lock);
    for (size_t i = 0; i < PR_RANK_ID_BYTES; i++)
        jn->id [i] = (unsigned char) (i * 13 + 7 + jn->ids_made);
    memcpy (id, jn->id, PR_RANK_ID_BYTES);
    jn->ids_made++;
    pthread_mutex_unlock (&jn->lock);
    return 0;
}

static struct kn_backend_s *
s_job_nccl_backend (void *arg, int device, const unsigned char *id, int nranks, int rank,
                    int timeout_ms, char *why, size_t why_size)
{
    s_job_net_t *jn = arg;
    assert (device == 0 && nranks == 2 && timeout_ms == 1000);
    pthread_mutex_lock (&jn->lock);
    bool same = memcmp (id, jn->id, PR_RANK_ID_BYTES) == 0;
    pthread_mutex_unlock (&jn->lock);
    if (!same) {
        snprintf (why, why_size, "this id names no group (test)");
        return NULL;
    }
    return wk_tprobe_net_make (jn->net, rank, why, why_size);
}

static void
s_job_announce (void *arg, const char *name, const char *value)
{
    s_job_net_t *jn = arg;
    assert (strcmp (name, "nccl_id") == 0 && strlen (value) == 2 * PR_RANK_ID_BYTES);
    pthread_mutex_lock (&jn->lock);
    snprintf (jn->hex, sizeof jn->hex, "%s", value);
    pthread_mutex_unlock (&jn->lock);
}

typedef struct {
    wk_tjob_req_t req;
    wk_tjob_io_t io;
    const char *names [12], *values [12];
    char *uri;
    char code [64], err [1024];
    wk_status_t status;
} s_job_rank_t;

static void *
s_job_thread (void *arg)
{
    s_job_rank_t *jr = arg;
    jr->status = wk_tjob_run (&jr->req, &jr->io, &jr->uri, jr->code, sizeof jr->code, jr->err,
                              sizeof jr->err);
    return NULL;
}

//  Sets up a job on config with the given extra params (after family,
//  dataset and a small net) on a trainer with gpus GPUs and the test net.
static void
s_job_init (s_job_rank_t *jr, lb_config_t *config, const char *ds_uri, s_job_net_t *jn, int gpus,
            const char *family, const char *const *extra, size_t nextra)
{
    memset (jr, 0, sizeof *jr);
    static const char *base_n [] = { "family", "dataset", "hidden", "epochs", "batch", "lr" };
    const char *base_v [] = { family, ds_uri, "8", "2", "64", "0.01" };
    size_t n = 0, nbase = strcmp (family, "xgboost") == 0 ? 2 : 6;   //  xgboost: no net sizes
    for (; n < nbase; n++) {
        jr->names [n] = base_n [n];
        jr->values [n] = base_v [n];
    }
    assert (n + nextra / 2 <= 12);
    for (size_t i = 0; i + 1 < nextra; i += 2, n++) {
        jr->names [n] = extra [i];
        jr->values [n] = extra [i + 1];
    }
    jr->req = (wk_tjob_req_t) { .config = config, .gpus = gpus, .gpu_why = "none in the test",
                                .nccl_id = jn ? s_job_nccl_id : NULL,
                                .nccl_backend = jn ? s_job_nccl_backend : NULL, .nccl_arg = jn,
                                .nparams = n, .names = jr->names, .values = jr->values };
    jr->io = (wk_tjob_io_t) { .announce = s_job_announce, .arg = jn };
}

//  Runs one job that must fail with code, its message holding want.
static void
s_job_refused (lb_config_t *config, const char *ds_uri, s_job_net_t *jn, int gpus,
               const char *family, const char *const *extra, size_t nextra, wk_status_t status,
               const char *code, const char *want)
{
    s_job_rank_t jr;
    s_job_init (&jr, config, ds_uri, jn, gpus, family, extra, nextra);
    s_job_thread (&jr);
    if (jr.status != status || strcmp (jr.code, code) || !strstr (jr.err, want))
        fprintf (stderr, "got %d %s: %s\nwant %d %s: %s\n", jr.status, jr.code, jr.err, status,
                 code, want);
    assert (jr.status == status && strcmp (jr.code, code) == 0 && strstr (jr.err, want));
    assert (!jr.uri);
}

static void
s_test_jobs (bool verbose)
{
    char *dir = lb_selftest_tmpdir ("wk_tgroup");
    lb_config_t *config = lb_config_new (NULL, 0);
    assert (lb_config_set (config, "artifacts.root", dir, "test") == 0);
    assert (lb_config_set (config, "train.threads", "1", "test") == 0);
    assert (lb_config_set (config, "train.nccl_timeout", "1s", "test") == 0);
    lb_artifact_t *store = lb_artifact_new (dir);
    lb_dataset_t *ds = wk_tjob_synth (4, 1200, 5, 0.2, 0.1);
    uint8_t *bytes;
    size_t size;
    char *ds_uri = NULL;
    assert (lb_dataset_encode (ds, &bytes, &size) == 0 && lb_artifact_put (store, bytes, size, &ds_uri) == 0);
    free (bytes);
    lb_dataset_destroy (&ds);
    s_job_net_t jn = { .net = wk_tprobe_net_new (2, -1, 0, 5000) };
    pthread_mutex_init (&jn.lock, NULL);
    char hex [2 * PR_RANK_ID_BYTES + 1], idp [2 * PR_RANK_ID_BYTES + 1];
    memset (idp, 'a', sizeof idp - 1);
    idp [sizeof idp - 1] = 0;

    //  Bad fields and jobs that reach the wrong trainer, each with its code.
    const char *e1 [] = { "ranks", "3", "rank", "3", "group", "g" };
    s_job_refused (config, ds_uri, &jn, 1, "mlp", e1, 6, WK_FAIL, "bad_params", "param rank: 3 is outside 0..2");
    const char *e2 [] = { "ranks", "2", "rank", "1", "group", "g" };
    s_job_refused (config, ds_uri, &jn, 1, "mlp", e2, 6, WK_FAIL, "bad_params", "param nccl_id: missing");
    const char *e3 [] = { "ranks", "2", "rank", "1", "group", "g", "nccl_id", "abcd" };
    s_job_refused (config, ds_uri, &jn, 1, "mlp", e3, 8, WK_FAIL, "bad_params", "not 256 hex digits");
    const char *e4 [] = { "ranks", "2", "rank", "0" };
    s_job_refused (config, ds_uri, &jn, 1, "mlp", e4, 4, WK_FAIL, "bad_params", "param group: missing");
    const char *e5 [] = { "gpus", "0" };
    s_job_refused (config, ds_uri, &jn, 1, "mlp", e5, 2, WK_FAIL, "bad_params", "param gpus: '0' is not an integer from 1 to 64");
    const char *e6 [] = { "gpus", "2" };
    s_job_refused (config, ds_uri, &jn, 2, "xgboost", e6, 2, WK_FAIL, "bad_params", "NCCL is for mlp and transformer");
    const char *e7 [] = { "gpus", "2", "ranks", "2", "rank", "0", "group", "g" };
    s_job_refused (config, ds_uri, &jn, 2, "mlp", e7, 8, WK_FAIL, "bad_params", "not both");
    //  A CPU-only trainer refuses a rank and a several-GPU job: they go to train.gpu.
    const char *e8 [] = { "ranks", "2", "rank", "0", "group", "g" };
    s_job_refused (config, ds_uri, &jn, 0, "mlp", e8, 6, WK_FAIL, "no_gpu", "GPU jobs go to the service train.gpu");
    s_job_refused (config, ds_uri, &jn, 0, "mlp", e6, 2, WK_FAIL, "no_gpu", "needs several GPUs");
    //  A GPU trainer built without NCCL; one with too few GPUs (another may do).
    s_job_refused (config, ds_uri, NULL, 1, "mlp", e6, 2, WK_FAIL, "no_gpu", "built without it");
    s_job_refused (config, ds_uri, &jn, 1, "mlp", e6, 2, WK_RETRY, "too_few_gpus", "param gpus: 2, and this trainer has 1 GPU");

    //  Two ranks across "trainers": rank 0 hands out its id, rank 1 joins with
    //  it; rank 0 stores the model, rank 1 stores nothing.
    s_job_rank_t r0, r1;
    const char *g0 [] = { "ranks", "2", "rank", "0", "group", "run/train/1" };
    s_job_init (&r0, config, ds_uri, &jn, 1, "mlp", g0, 6);
    pthread_t thread;
    assert (pthread_create (&thread, NULL, s_job_thread, &r0) == 0);
    for (int i = 0; i < 5000; i++) {
        pthread_mutex_lock (&jn.lock);
        snprintf (hex, sizeof hex, "%s", jn.hex);
        pthread_mutex_unlock (&jn.lock);
        if (*hex)
            break;
        struct timespec ts = { 0, 1000000 };
        nanosleep (&ts, NULL);
    }
    assert (*hex);
    const char *g1 [] = { "ranks", "2", "rank", "1", "group", "run/train/1", "nccl_id", hex };
    s_job_init (&r1, config, ds_uri, &jn, 1, "mlp", g1, 8);
    s_job_thread (&r1);
    pthread_join (thread, NULL);
    if (r0.status != WK_DONE || r1.status != WK_DONE)
        fprintf (stderr, "rank 0: %s %s\nrank 1: %s %s\n", r0.code, r0.err, r1.code, r1.err);
    assert (r0.status == WK_DONE && r0.uri && r1.status == WK_DONE && !r1.uri);
    uint8_t *mbytes;
    size_t msize;
    assert (lb_artifact_read (store, r0.uri, &mbytes, &msize) == 0);
    lb_model_t *model = lb_model_from_buffer (mbytes, msize, NULL, 0);
    free (mbytes);
    assert (model && strcmp (lb_model_info (model, "ranks"), "2") == 0);
    if (verbose)
        printf ("rank 0 stored %s ", r0.uri);
    lb_model_destroy (&model);
    free (r0.uri);
    wk_tprobe_net_destroy (&jn.net);

    //  Rank 1 was given an id that is not rank 0's: it cannot join (the test
    //  net refuses it) and fails retryably.
    jn.net = wk_tprobe_net_new (2, -1, 0, 300);
    const char *g2 [] = { "ranks", "2", "rank", "1", "group", "run/train/2", "nccl_id", idp };
    s_job_refused (config, ds_uri, &jn, 1, "mlp", g2, 8, WK_RETRY, "train_failed",
                   "rank 1 of 2: NCCL: this id names no group");
    //  Rank 0 whose peer never arrives: it fails retryably at its deadline.
    s_job_refused (config, ds_uri, &jn, 1, "mlp", g0, 6, WK_RETRY, "train_failed",
                   "rank 0 of 2: epoch 1: agreeing on stopping: all-reduce: no progress within 300 ms");
    wk_tprobe_net_destroy (&jn.net);
    pthread_mutex_destroy (&jn.lock);
    free (ds_uri);
    lb_artifact_destroy (&store);
    lb_config_destroy (&config);
    lb_selftest_rmtree (dir);
    free (dir);
}

void
wk_tgroup_test (bool verbose)
{
    if (verbose)
        printf (" * wk_tgroup: ");
    enum { ROWS = 1200, VROWS = 300, COLS = 5 };
    float *x = lb_xmalloc ((ROWS + VROWS) * COLS * sizeof (float));
    float *y = lb_xmalloc ((ROWS + VROWS) * sizeof (float));
    wk_tdata_synth (7, ROWS + VROWS, COLS, x, y);
    const char *names [COLS] = { "a", "b", "c", "d", "e" };
    wk_tdata_t data = { .task = LB_MODEL_BINARY, .cols = COLS, .names = names, .x = x, .y = y,
                        .rows = ROWS, .vx = x + ROWS * COLS, .vy = y + ROWS, .vrows = VROWS };
    const char *hn [] = { "hidden", "epochs", "batch", "lr", "early_stopping_epochs" };
    const char *hv [] = { "16", "4", "60", "0.01", "2" };
    char err [512];
    json_t *params = wk_tparams_resolve (LB_MODEL_MLP, hn, hv, 5, err, sizeof err);
    assert (params);
    s_test_probe_t probe = { .max_diff = -1 };
    wk_tctx_t ctx = { .nthread = 1, .seed = 3, .clock = lb_clock_system (), .progress_every_s = 0,
                      .progress = s_test_progress, .metric = s_test_metric, .arg = &probe };

    //  One rank alone: the reference.
    lb_model_t *alone = NULL;
    assert (wk_tnet_train (LB_MODEL_MLP, &data, params, &ctx, &alone, err, sizeof err) == WK_T_OK);
    double auc_alone, auc_group;
    assert (lb_model_metric (alone, "val_auc", &auc_alone) == 0);

    //  Three ranks, each on its shard of every batch of 60 (20 rows each):
    //  equal parameters on every rank, rank 0's model, and the same training
    //  as one rank on the whole batch up to rounding (the mean of equal
    //  shards' means is the batch mean).
    wk_tprobe_net_t *net = wk_tprobe_net_new (3, -1, 0, 2000);
    wk_tgroup_t group = { .nranks = 3, .make = wk_tprobe_net_make, .arg = net };
    probe.progress = 0;
    lb_model_t *model = NULL;
    wk_tresult_t rc = wk_tgroup_train (LB_MODEL_MLP, &data, params, &ctx, &group, &model, err, sizeof err);
    if (rc != WK_T_OK)
        fprintf (stderr, "group: %s\n", err);
    assert (rc == WK_T_OK && model);
    assert (probe.max_diff == 0);
    assert (probe.progress > 0);
    const char *info = lb_model_info (model, "ranks");
    assert (info && strcmp (info, "3") == 0);
    assert (lb_model_metric (model, "val_auc", &auc_group) == 0);
    if (verbose)
        printf ("auc alone %.4f, 3 ranks %.4f ", auc_alone, auc_group);
    assert (fabs (auc_group - auc_alone) < 1e-3);
    size_t s1, s2;
    const float *w1 = lb_model_blob (alone, "weights", &s1), *w2 = lb_model_blob (model, "weights", &s2);
    assert (s1 == s2);
    double worst = 0;
    for (size_t i = 0; i < s1 / sizeof (float); i++)
        worst = fmax (worst, fabs ((double) w1 [i] - w2 [i]));
    if (verbose)
        printf ("max |w alone - w group| %.2e ", worst);
    assert (worst < 1e-3);
    lb_model_destroy (&model);
    wk_tprobe_net_destroy (&net);

    //  A rank whose device cannot be made: the group fails (retryable)
    //  within the deadline, naming the rank; nobody waits forever.
    net = wk_tprobe_net_new (3, 2, -1, 300);
    group.arg = net;
    rc = wk_tgroup_train (LB_MODEL_MLP, &data, params, &ctx, &group, &model, err, sizeof err);
    assert (rc == WK_T_FAILED && !model);
    assert (strstr (err, "rank 2 of 3: no device for this rank"));
    wk_tprobe_net_destroy (&net);

    //  A rank lost in the middle of training (its all-reduce fails after 10
    //  calls): every rank fails, the first failure is reported.
    net = wk_tprobe_net_new (2, 1, 10, 300);
    group.arg = net;
    group.nranks = 2;
    rc = wk_tgroup_train (LB_MODEL_MLP, &data, params, &ctx, &group, &model, err, sizeof err);
    assert (rc == WK_T_FAILED && !model);
    assert (strstr (err, "rank 0 of 2: epoch 1") && strstr (err, "all-reduce"));
    wk_tprobe_net_destroy (&net);

    lb_model_destroy (&alone);
    json_decref (params);
    free (x);
    free (y);
    s_test_jobs (verbose);
    if (verbose)
        printf ("OK\n");
}
