/*  worker-train - trains one model per job (docs/train.md).

    worker-train [runtime options]       serve `train` (or `train.gpu` on a host
                                          with a usable GPU) on the broker
    worker-train fit [options]            train once from the command line
    worker-train synth [options]          write a synthetic dataset file
    worker-train score MODEL DATASET      score a dataset's split with a model
    worker-train params                   the hyperparameter tables (Markdown)
    worker-train gpu                      what GPU this trainer would use
*/
#include "wk_runtime.h"
#include "wk_tdata.h"
#include "wk_tjob.h"
#include "wk_tparams.h"
#include "wk_txgb.h"
#include "lb_artifact.h"
#include "lb_config.h"
#include "lb_dataset.h"
#include "lb_log.h"
#include "lb_mem.h"
#include "lb_model.h"
#include "kn_backend.h"

#include <getopt.h>
#include <jansson.h>
#include <math.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

// ---------------------------------------------------------------- serving

//  A GPU backend for the nets on device 0 (NULL with why where there is none).
static kn_backend_t *
s_gpu_backend (char *why, size_t why_size)
{
#ifdef KN_HAVE_CUDA
    return kn_gpu_new (0, why, why_size);
#else
    snprintf (why, why_size, "built without CUDA");
    return NULL;
#endif
}

//  The usable GPUs of this host (0 with the reason in why). Only this
//  program links the CUDA library, so detection lives here, not in wk_tjob.
static int
s_gpus (char *why, size_t why_size)
{
#ifdef KN_HAVE_CUDA
    return kn_gpu_count (why, why_size);
#else
    snprintf (why, why_size, "built without CUDA (no nvcc when it was compiled)");
    return 0;
#endif
}

static void
s_job_progress (void *arg, double percent, const char *stage, const char *message)
{
    wk_job_progress (arg, percent, stage, "%s", message);
}

static void
s_job_metric (void *arg, const char *name, double value)
{
    wk_job_metric (arg, name, value);
}

static void
s_job_announce (void *arg, const char *name, const char *value)
{
    wk_job_announce (arg, name, value);
}

//  NCCL for data-parallel training (docs/train.md "Several GPUs").
static int
s_nccl_id (void *arg, unsigned char *id, char *why, size_t why_size)
{
    (void) arg;
#ifdef KN_HAVE_CUDA
    return kn_gpu_nccl_id (id, why, why_size);
#else
    (void) id;
    snprintf (why, why_size, "built without CUDA and NCCL");
    return -1;
#endif
}

static kn_backend_t *
s_nccl_backend (void *arg, int device, const unsigned char *id, int nranks, int rank,
                int timeout_ms, char *why, size_t why_size)
{
    (void) arg;
#ifdef KN_HAVE_CUDA
    return kn_gpu_new_nccl (device, id, nranks, rank, timeout_ms, why, why_size);
#else
    (void) device, (void) id, (void) nranks, (void) rank, (void) timeout_ms;
    snprintf (why, why_size, "built without CUDA and NCCL");
    return NULL;
#endif
}

static bool
s_job_stopping (void *arg)
{
    return wk_job_stopping (arg);
}

static wk_status_t
s_handle (wk_job_t *job, void *arg)
{
    (void) arg;
    int n = wk_job_param_count (job);
    const char **names = lb_xcalloc ((size_t) n + 1, sizeof *names);
    const char **values = lb_xcalloc ((size_t) n + 1, sizeof *values);
    for (int i = 0; i < n; i++) {
        names [i] = wk_job_param_name (job, i);
        values [i] = wk_job_param (job, names [i]);
    }
    char why [256] = "";
    int gpus = s_gpus (why, sizeof why);
    wk_tjob_req_t req = { .config = wk_job_config (job), .run = wk_job_run (job),
                          .step = wk_job_step (job), .needs_gpu = wk_job_needs_gpu (job),
                          .gpus = gpus, .gpu_why = why, .gpu_backend = s_gpu_backend,
                          .nccl_id = s_nccl_id, .nccl_backend = s_nccl_backend,
                          .nparams = (size_t) n, .names = names, .values = values };
    wk_tjob_io_t io = { s_job_progress, s_job_metric, s_job_stopping, job, s_job_announce };
    char *uri = NULL, code [64] = "", err [1024] = "";
    wk_status_t status = wk_tjob_run (&req, &io, &uri, code, sizeof code, err, sizeof err);
    if (status == WK_DONE && uri)
        wk_job_output (job, "model", uri);       //  none from ranks 1..N-1 of a group
    else
    if (status != WK_DONE)
        wk_job_error (job, code, "%s", err);
    free (uri);
    free (names);
    free (values);
    return status;
}

//  Finds the value of a runtime option (-x VALUE, --long VALUE, --long=VALUE).
static const char *
s_option (int argc, char **argv, const char *shortopt, const char *longopt)
{
    size_t len = strlen (longopt);
    for (int i = 1; i < argc; i++) {
        if ((strcmp (argv [i], shortopt) == 0 || strcmp (argv [i], longopt) == 0) && i + 1 < argc)
            return argv [i + 1];
        if (strncmp (argv [i], longopt, len) == 0 && argv [i][len] == '=')
            return argv [i] + len + 1;
    }
    return NULL;
}

static int
s_serve (int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp (argv [i], "-h") == 0 || strcmp (argv [i], "--help") == 0) {
            printf ("worker-train: also `worker-train fit|synth|score|params|gpu --help`\n");
            break;
        }
    lb_log_setup ("worker-train", LB_LOG_INFO);
    lb_config_t *config = lb_config_load (s_option (argc, argv, "-c", "--config"));
    if (!config)
        return 1;
    char why [256] = "";
    int gpus = s_gpus (why, sizeof why);
    const char *mode = lb_config_str (config, "train.gpu");
    const char *service = s_option (argc, argv, "-s", "--service");
    int rc = 0;
    if (strcmp (mode, "auto") != 0 && strcmp (mode, "off") != 0 && strcmp (mode, "require") != 0) {
        lb_log_error ("train.gpu: '%s' is not auto, off or require", mode);
        rc = 1;
    }
    else
    if (gpus == 0 && (strcmp (mode, "require") == 0
                  || (service && strlen (service) >= 4 && strcmp (service + strlen (service) - 4, ".gpu") == 0))) {
        lb_log_error ("this host has no usable GPU (%s): it cannot serve %s; CPU training is the "
                      "service 'train'", why, service ? service : "train.gpu (train.gpu = require)");
        rc = 1;
    }
    bool on_gpu = gpus > 0 && strcmp (mode, "off") != 0;
    lb_config_destroy (&config);
    if (rc)
        return rc;
    if (on_gpu)
        lb_log_info ("gpu: %d device(s); serving %s", gpus, service ? service : "train.gpu");
    else
        lb_log_info ("gpu: none (%s); serving %s: CPU training only", gpus ? "train.gpu = off" : why,
                     service ? service : "train");
    wk_spec_t spec = { .service = on_gpu ? "train.gpu" : "train", .handler = s_handle,
                       .summary = "trains one model (xgboost, rf, mlp, transformer, ensemble) per job "
                                  "on a dataset artifact and stores a model artifact" };
    return wk_runtime_main (&spec, argc, argv);
}

// ---------------------------------------------------------------- fit

static void
s_cli_progress (void *arg, double percent, const char *stage, const char *message)
{
    (void) arg;
    fprintf (stderr, "[%5.1f%%] %s: %s\n", percent, stage, message);
}

//  Keeps the last value of each metric (printed at the end with --metrics).
static void
s_cli_metric (void *arg, const char *name, double value)
{
    json_object_set_new ((json_t *) arg, name, json_real (value));
}

static int
s_fit (int argc, char **argv)
{
    static const struct option options [] = {
        { "config", required_argument, NULL, 'c' }, { "family", required_argument, NULL, 'f' },
        { "dataset", required_argument, NULL, 'd' }, { "param", required_argument, NULL, 'p' },
        { "seed", required_argument, NULL, 'S' }, { "threads", required_argument, NULL, 't' },
        { "run", required_argument, NULL, 'r' }, { "step", required_argument, NULL, 's' },
        { "members", required_argument, NULL, 'm' }, { "metrics", no_argument, NULL, 'M' },
        { "help", no_argument, NULL, 'h' }, { 0, 0, 0, 0 } };
    const char *config_path = NULL, *threads = NULL, *run = NULL, *step = NULL;
    size_t n = 0;
    const char **names = lb_xcalloc ((size_t) argc + 4, sizeof *names);
    const char **values = lb_xcalloc ((size_t) argc + 4, sizeof *values);
    bool metrics = false;
    int opt, rc = 2;
    optind = 1;
    while ((opt = getopt_long (argc, argv, "c:f:d:p:S:t:r:s:m:Mh", options, NULL)) != -1) {
        switch (opt) {
            case 'c': config_path = optarg; break;
            case 'f': names [n] = "family"; values [n++] = optarg; break;
            case 'd': names [n] = "dataset"; values [n++] = optarg; break;
            case 'S': names [n] = "seed"; values [n++] = optarg; break;
            case 'm': names [n] = "members"; values [n++] = optarg; break;
            case 't': threads = optarg; break;
            case 'r': run = optarg; break;
            case 's': step = optarg; break;
            case 'M': metrics = true; break;
            case 'p': {
                char *eq = strchr (optarg, '=');
                if (!eq) {
                    fprintf (stderr, "worker-train fit: -p wants NAME=VALUE, got '%s'\n", optarg);
                    goto out;
                }
                *eq = 0;
                names [n] = optarg;
                values [n++] = eq + 1;
                break;
            }
            case 'h':
                printf ("usage: worker-train fit -f FAMILY -d DATASET [-p NAME=VALUE]... [--seed N]\n"
                        "       [--threads N] [--members URI,URI] [--run R --step S] [--metrics] [-c FILE]\n"
                        "Trains one model as a job would and prints its artifact URI (the store is\n"
                        "artifacts.root). --run/--step turn on checkpoints and resume. --metrics\n"
                        "prints the model's metrics on stdout first. Hyperparameters: worker-train params.\n");
                rc = 0;
                goto out;
            default:
                fprintf (stderr, "worker-train fit: bad option (see --help)\n");
                goto out;
        }
    }
    lb_config_t *config = lb_config_load (config_path);
    if (!config || (threads && lb_config_set (config, "train.threads", threads, "--threads"))) {
        lb_config_destroy (&config);
        rc = 1;
        goto out;
    }
    char why [256] = "";
    int gpus = s_gpus (why, sizeof why);
    wk_tjob_req_t req = { .config = config, .run = run, .step = step, .gpus = gpus, .gpu_why = why,
                          .gpu_backend = s_gpu_backend, .nccl_id = s_nccl_id, .nccl_backend = s_nccl_backend,
                          .nparams = n, .names = names, .values = values };
    json_t *collected = json_object ();
    wk_tjob_io_t io = { s_cli_progress, s_cli_metric, NULL, collected, NULL };
    char *uri = NULL, code [64], err [1024];
    wk_status_t status = wk_tjob_run (&req, &io, &uri, code, sizeof code, err, sizeof err);
    if (status == WK_DONE) {
        const char *key;
        json_t *value;
        if (metrics)
            json_object_foreach (collected, key, value)
                printf ("%s %.10g\n", key, json_real_value (value));
        printf ("%s\n", uri ? uri : "(no model: rank 0 of the group stores it)");
        rc = 0;
    }
    else {
        fprintf (stderr, "worker-train fit: %s (%s): %s\n",
                 status == WK_RETRY ? "failed, retryable" : "failed", code, err);
        rc = status == WK_RETRY ? 3 : 1;
    }
    free (uri);
    json_decref (collected);
    lb_config_destroy (&config);
out:
    free (names);
    free (values);
    return rc;
}

// ---------------------------------------------------------------- synth, score

static int
s_synth (int argc, char **argv)
{
    static const struct option options [] = {
        { "rows", required_argument, NULL, 'n' }, { "cols", required_argument, NULL, 'k' },
        { "seed", required_argument, NULL, 'S' }, { "valid", required_argument, NULL, 'v' },
        { "test", required_argument, NULL, 't' }, { "out", required_argument, NULL, 'o' },
        { "help", no_argument, NULL, 'h' }, { 0, 0, 0, 0 } };
    int64_t rows = 200000, cols = 16, seed = 1;
    double valid = 0.2, test = 0;
    const char *out = NULL;
    int opt;
    optind = 1;
    while ((opt = getopt_long (argc, argv, "n:k:S:v:t:o:h", options, NULL)) != -1) {
        int bad = 0;
        switch (opt) {
            case 'n': bad = lb_config_parse_int (optarg, &rows) || rows < 10 || rows > 100000000; break;
            case 'k': bad = lb_config_parse_int (optarg, &cols) || cols < 4 || cols > 1000; break;
            case 'S': bad = lb_config_parse_int (optarg, &seed) || seed < 0; break;
            case 'v': bad = lb_config_parse_real (optarg, &valid) || !(valid > 0 && valid < 1); break;
            case 't': bad = lb_config_parse_real (optarg, &test) || !(test >= 0 && test < 1); break;
            case 'o': out = optarg; break;
            case 'h':
                printf ("usage: worker-train synth [--rows N] [--cols K] [--seed S] [--valid F] [--test F] -o FILE\n"
                        "Writes a fixed-seed synthetic binary dataset, split in time order.\n");
                return 0;
            default: bad = 1;
        }
        if (bad) {
            fprintf (stderr, "worker-train synth: bad option or value (see --help)\n");
            return 2;
        }
    }
    if (!out) {
        fprintf (stderr, "worker-train synth: -o FILE is required\n");
        return 2;
    }
    lb_dataset_t *ds = wk_tjob_synth ((uint64_t) seed, (size_t) rows, (size_t) cols, valid, test);
    char sha [65];
    int rc = ds && lb_dataset_save (ds, out, sha) == 0 ? 0 : 1;
    if (rc == 0)
        printf ("%s sha256=%s\n", out, sha);
    lb_dataset_destroy (&ds);
    return rc;
}

static int
s_score (int argc, char **argv)
{
    if (argc < 3 || argc > 5 || strcmp (argv [1], "--help") == 0) {
        printf ("usage: worker-train score MODEL DATASET [train|valid|test] [OUT.f32]\n"
                "Scores a split (default test) of a dataset file with a model file; prints\n"
                "the metrics; writes the predictions as float32 to OUT.f32 if given.\n");
        return argc >= 2 && strcmp (argv [1], "--help") == 0 ? 0 : 2;
    }
    char err [512];
    lb_model_t *model = lb_model_load (argv [1], err, sizeof err);
    lb_dataset_t *ds = lb_dataset_load (argv [2], err, sizeof err);
    int rc = 1;
    lb_dataset_split_t split = LB_DATASET_TEST;
    if (argc >= 4)
        split = strcmp (argv [3], "train") == 0 ? LB_DATASET_TRAIN
              : strcmp (argv [3], "valid") == 0 ? LB_DATASET_VALID : LB_DATASET_TEST;
    float *pred = NULL;
    size_t n = 0, b, e;
    if (model && ds
    &&  lb_model_score_dataset (model, ds, (int) split, 0, &pred, &n, err, sizeof err) == 0) {
        lb_dataset_split (ds, split, &b, &e);
        const float *y = lb_dataset_y (ds) + b;
        if (lb_model_task (model) == LB_MODEL_BINARY)
            printf ("rows %zu\nlogloss %.10g\nauc %.10g\n", n, wk_tdata_logloss (pred, y, n),
                    wk_tdata_auc (pred, y, n));
        else
            printf ("rows %zu\nrmse %.10g\n", n, wk_tdata_rmse (pred, y, n));
        rc = 0;
        FILE *f = argc == 5 ? fopen (argv [4], "wb") : NULL;
        if (argc == 5 && (!f || fwrite (pred, sizeof (float), n, f) != n)) {
            fprintf (stderr, "worker-train score: cannot write %s\n", argv [4]);
            rc = 1;
        }
        if (f)
            fclose (f);
    }
    free (pred);
    lb_model_destroy (&model);
    lb_dataset_destroy (&ds);
    return rc;
}

int
main (int argc, char **argv)
{
    if (sodium_init () < 0) {
        fprintf (stderr, "worker-train: libsodium failed to initialise\n");
        return 1;
    }
    const char *cmd = argc > 1 ? argv [1] : "";
    if (strcmp (cmd, "fit") == 0 || strcmp (cmd, "synth") == 0 || strcmp (cmd, "score") == 0) {
        lb_log_setup ("worker-train", LB_LOG_INFO);
        return strcmp (cmd, "fit") == 0 ? s_fit (argc - 1, argv + 1)
             : strcmp (cmd, "synth") == 0 ? s_synth (argc - 1, argv + 1)
             : s_score (argc - 1, argv + 1);
    }
    if (strcmp (cmd, "params") == 0) {
        wk_tparams_print (stdout);
        return 0;
    }
    if (strcmp (cmd, "gpu") == 0) {
        char why [256] = "", xwhy [256] = "";
        int gpus = s_gpus (why, sizeof why);
        bool xgb = wk_txgb_gpu_capable (xwhy, sizeof xwhy);
        printf ("gpus %d%s%s%s\nxgboost_gpu %s%s%s\nservice %s\n", gpus, gpus ? "" : " (",
                gpus ? "" : why, gpus ? "" : ")", xgb ? "yes" : "no (", xgb ? "" : xwhy,
                xgb ? "" : ")", gpus ? "train.gpu" : "train");
        char nccl [128];
#ifdef KN_HAVE_CUDA
        if (kn_gpu_nccl_version (nccl, sizeof nccl) == 0) {
            printf ("nccl %s (data-parallel nets: gpus = N, or ranks across trainers)\n", nccl);
            //  What a group's rank 0 does first; needs no GPU.
            unsigned char id [KN_NCCL_ID_BYTES];
            if (kn_gpu_nccl_id (id, nccl, sizeof nccl) == 0)
                printf ("nccl_id ok (ncclGetUniqueId opened a bootstrap root in this process)\n");
            else
                printf ("nccl_id failed (%s)\n", nccl);
        }
        else
            printf ("nccl no (%s)\n", nccl);
#else
        snprintf (nccl, sizeof nccl, "built without CUDA and NCCL");
        printf ("nccl no (%s)\n", nccl);
#endif
        if (!gpus)
            printf ("note: no GPU, so this trainer serves 'train' only and refuses jobs that need one\n");
        return 0;
    }
    return s_serve (argc, argv);
}
