/*  kn-tool - checks and benchmarks of the kernels from outside (the kernels
    themselves do no I/O).

    kn-tool parity FILE
        FILE (written by tests/kn_torch.py) holds a model description, its
        parameters, one batch, and what PyTorch computed for it: predictions,
        loss, every gradient, and the parameters after one AdamW step. Runs
        the same on our CPU kernels and compares each tensor with
        max|ours - torch| <= TOL * max|torch| (TOL 1e-5, or --tol). Exit 0 when
        all agree, 1 otherwise, 2 on bad usage or a bad file.

    kn-tool bench-mlp DATA [--threads N] [--epochs E] [--batch B] [--act gelu|relu]
                           [--precision fp32|bf16]
        DATA: "kndata rows=N cols=F\n", N*F float32 features then N float32
        0/1 labels. Time-ordered 80/20 split, standardisation fitted on the
        training rows, MLP F -> 256 -> 256 -> 1, AdamW lr 1e-3. Prints
        training samples/s, validation AUC, and the GFLOP/s of the training
        step next to cblas_sgemm's on 1024^3 with the same threads.

    kn-tool bench-transformer [--threads N] [--steps S] [--precision fp32|bf16]
        Transformer window 64, width 128, 4 heads, 4 layers, d_ff 512, batch
        32, 16 inputs per step, random data. Prints tokens/s.

    kn-tool bench-gemm [--threads N] [--reps R]
        GFLOP/s of the CPU backend's float32 products (OpenBLAS sgemm split
        over our threads) and of its bf16 products (kn_gemm) for the MLP's
        and the transformer's shapes (and 1024^3). Says so and exits 0 where
        the CPU has no AVX512-BF16.
*/
#include <assert.h>
#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "kn_model.h"
#include "lb_mem.h"

typedef struct {
    char name [64];
    size_t count;
    float *data;
} s_record_t;

typedef struct {
    s_record_t *recs;
    int n;
} s_file_t;

static double
s_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_MONOTONIC, &ts);
    return (double) ts.tv_sec + ts.tv_nsec * 1e-9;
}

//  CPU seconds used by the whole process (all threads): unlike wall time it
//  hardly moves when other people's work shares the cores.
static double
s_cpu_now (void)
{
    struct timespec ts;
    clock_gettime (CLOCK_PROCESS_CPUTIME_ID, &ts);
    return (double) ts.tv_sec + ts.tv_nsec * 1e-9;
}

static const s_record_t *
s_find (const s_file_t *f, const char *name)
{
    for (int i = 0; i < f->n; i++)
        if (strcmp (f->recs [i].name, name) == 0)
            return &f->recs [i];
    return NULL;
}

//  Reads the header line into header and every "NAME COUNT\n<floats>" record.
static int
s_read_file (const char *path, char *header, size_t header_size, s_file_t *out)
{
    FILE *file = fopen (path, "rb");
    if (!file) {
        fprintf (stderr, "kn-tool: cannot open %s: %s\n", path, strerror (errno));
        return -1;
    }
    int rc = -1;
    if (!fgets (header, (int) header_size, file) || strncmp (header, "kncheck ", 8) != 0) {
        fprintf (stderr, "kn-tool: %s: first line is not a kncheck header\n", path);
        goto out;
    }
    char line [256];
    while (fgets (line, sizeof line, file)) {
        s_record_t rec;
        memset (&rec, 0, sizeof rec);
        if (sscanf (line, "%63s %zu", rec.name, &rec.count) != 2 || rec.count > ((size_t) 1 << 28)) {
            fprintf (stderr, "kn-tool: %s: record %d: bad record line\n", path, out->n);
            goto out;
        }
        rec.data = (float *) lb_xcalloc (rec.count ? rec.count : 1, sizeof (float));
        if (fread (rec.data, sizeof (float), rec.count, file) != rec.count) {
            fprintf (stderr, "kn-tool: %s: record %s: truncated\n", path, rec.name);
            free (rec.data);
            goto out;
        }
        out->recs = (s_record_t *) lb_xrealloc (out->recs, (size_t) (out->n + 1) * sizeof rec);
        out->recs [out->n++] = rec;
    }
    rc = 0;
out:
    fclose (file);
    return rc;
}

static double
s_header_num (const char *header, const char *key, double dflt)
{
    char pat [64];
    snprintf (pat, sizeof pat, " %s=", key);
    const char *p = strstr (header, pat);
    return p ? atof (p + strlen (pat)) : dflt;
}

static int
s_header_int (const char *header, const char *key, int dflt)
{
    return (int) s_header_num (header, key, dflt);
}

static const char *
s_header_str (const char *header, const char *key, char *buf, size_t size)
{
    char pat [64];
    snprintf (pat, sizeof pat, " %s=", key);
    const char *p = strstr (header, pat);
    buf [0] = 0;
    if (p) {
        p += strlen (pat);
        size_t len = strcspn (p, " \n");
        snprintf (buf, size, "%.*s", (int) (len < size ? len : size - 1), p);
    }
    return buf;
}

//  Returns max|a - b| / max|b| (b the reference), printing one line. With
//  skip, elements where skip [i] is true are left out (and counted).
static double
s_compare (const char *what, const float *ours, const float *ref, size_t n, const bool *skip,
           double tol, int *fails)
{
    double diff = 0, mag = 0;
    size_t skipped = 0;
    for (size_t i = 0; i < n; i++) {
        mag = fmax (mag, fabs ((double) ref [i]));
        if (skip && skip [i])
            skipped++;
        else
            diff = fmax (diff, fabs ((double) ours [i] - ref [i]));
    }
    double rel = mag > 0 ? diff / mag : diff;
    bool ok = rel <= tol;
    printf ("%-4s %-32s n=%-6zu max|diff|=%.3e max|ref|=%.3e rel=%.3e", ok ? "ok" : "FAIL", what,
            n, diff, mag, rel);
    if (skipped)
        printf (" (%zu with |grad| < 1e-6 max|grad| not compared)", skipped);
    printf ("\n");
    if (!ok)
        (*fails)++;
    return rel;
}

static int
s_parity (int argc, char **argv)
{
    if (argc < 1) {
        fprintf (stderr, "usage: kn-tool parity FILE [--tol T]\n");
        return 2;
    }
    double tol = 1e-5;
    if (argc >= 3 && strcmp (argv [1], "--tol") == 0)
        tol = atof (argv [2]);
    char header [1024], buf [64];
    s_file_t f = { 0 };
    if (s_read_file (argv [0], header, sizeof header, &f))
        return 2;
    kn_config_t cfg;
    kn_config_defaults (&cfg);
    cfg.arch = strcmp (s_header_str (header, "arch", buf, sizeof buf), "transformer") == 0
             ? KN_ARCH_TRANSFORMER : KN_ARCH_MLP;
    s_header_str (header, "task", buf, sizeof buf);
    cfg.task = strcmp (buf, "multiclass") == 0 ? KN_TASK_MULTICLASS
             : strcmp (buf, "regression") == 0 ? KN_TASK_REGRESSION : KN_TASK_BINARY;
    cfg.act = strcmp (s_header_str (header, "act", buf, sizeof buf), "relu") == 0 ? KN_ACT_RELU : KN_ACT_GELU;
    cfg.pool = strcmp (s_header_str (header, "pool", buf, sizeof buf), "last") == 0 ? KN_POOL_LAST : KN_POOL_MEAN;
    cfg.n_in = s_header_int (header, "n_in", 0);
    cfg.n_out = s_header_int (header, "n_out", 1);
    cfg.layernorm = s_header_int (header, "layernorm", 0) != 0;
    cfg.window = s_header_int (header, "window", cfg.window);
    cfg.d_model = s_header_int (header, "d_model", cfg.d_model);
    cfg.n_heads = s_header_int (header, "n_heads", cfg.n_heads);
    cfg.n_layers = s_header_int (header, "n_layers", cfg.n_layers);
    cfg.d_ff = s_header_int (header, "d_ff", cfg.d_ff);
    s_header_str (header, "hidden", buf, sizeof buf);
    cfg.n_hidden = 0;
    for (char *p = buf; *p && cfg.n_hidden < KN_MAX_HIDDEN; ) {
        cfg.hidden [cfg.n_hidden++] = (int) strtol (p, &p, 10);
        if (*p == ',')
            p++;
        else
            break;
    }
    int batch = s_header_int (header, "batch", 1);
    kn_optim_t opt;
    kn_optim_defaults (&opt);
    opt.lr = (float) s_header_num (header, "lr", opt.lr);
    opt.weight_decay = (float) s_header_num (header, "wd", opt.weight_decay);
    kn_backend_t *be = kn_cpu_new (s_header_int (header, "threads", 1));
    char err [256];
    int rc = 2, fails = 0;
    kn_model_t *m = kn_model_new (&cfg, batch, 1, be, err, sizeof err);
    size_t np = m ? kn_model_n_params (m) : 0;
    float *p = (float *) lb_xcalloc (np + 1, sizeof (float));
    float *g = (float *) lb_xcalloc (np + 1, sizeof (float));
    float *pred = NULL;
    if (!m) {
        fprintf (stderr, "kn-tool: %s\n", err);
        goto out;
    }
    //  parameters by name
    for (int i = 0; i < kn_model_n_tensors (m); i++) {
        kn_tensor_t t;
        kn_model_tensor (m, i, &t);
        char name [80];
        snprintf (name, sizeof name, "param.%s", t.name);
        const s_record_t *r = s_find (&f, name);
        if (!r || r->count != (size_t) t.rows * t.cols) {
            fprintf (stderr, "kn-tool: %s: %s missing or of the wrong size (want %d x %d)\n",
                     argv [0], name, t.rows, t.cols);
            goto out;
        }
        memcpy (p + t.offset, r->data, r->count * sizeof (float));
    }
    const s_record_t *x = s_find (&f, "x"), *y = s_find (&f, "y"), *loss = s_find (&f, "loss");
    const s_record_t *rp = s_find (&f, "pred");
    if (!x || !y || !loss || !rp || x->count != batch * kn_model_in_size (m)
    ||  y->count != batch * kn_model_label_size (m) || rp->count != (size_t) batch * cfg.n_out) {
        fprintf (stderr, "kn-tool: %s: x, y, loss or pred missing or of the wrong size\n", argv [0]);
        goto out;
    }
    if (kn_model_set_params (m, p))
        goto out;
    pred = (float *) lb_xcalloc (rp->count, sizeof (float));
    float our_loss;
    if (kn_model_predict (m, x->data, (size_t) batch, pred)
    ||  kn_model_loss_grad (m, x->data, y->data, batch, &our_loss) || kn_model_get_grads (m, g)) {
        fprintf (stderr, "kn-tool: %s\n", kn_model_error (m));
        goto out;
    }
    s_compare ("pred", pred, rp->data, rp->count, NULL, tol, &fails);
    s_compare ("loss", &our_loss, loss->data, 1, NULL, tol, &fails);
    //  Adam moves a parameter by about lr whatever its gradient's size, so a
    //  gradient that is zero in exact arithmetic (the attention key bias:
    //  softmax ignores a constant added to a row) and float32 noise here and
    //  in PyTorch steps in a random direction: those elements (|grad| below
    //  1e-6 of the largest gradient) are compared as gradients only.
    double gmax = 0;
    for (int i = 0; i < f.n; i++)
        if (strncmp (f.recs [i].name, "grad.", 5) == 0)
            for (size_t k = 0; k < f.recs [i].count; k++)
                gmax = fmax (gmax, fabs ((double) f.recs [i].data [k]));
    bool *tiny = (bool *) lb_xcalloc (np + 1, sizeof (bool));
    for (int pass = 0; pass < 2; pass++) {
        if (pass == 1) {
            float l2;
            if (kn_model_train_step (m, &opt, x->data, y->data, batch, &l2) || kn_model_get_params (m, p)) {
                fprintf (stderr, "kn-tool: %s\n", kn_model_error (m));
                goto out;
            }
        }
        for (int i = 0; i < kn_model_n_tensors (m); i++) {
            kn_tensor_t t;
            kn_model_tensor (m, i, &t);
            char name [80];
            snprintf (name, sizeof name, "%s.%s", pass ? "new" : "grad", t.name);
            const s_record_t *r = s_find (&f, name);
            if (!r || r->count != (size_t) t.rows * t.cols) {
                fprintf (stderr, "kn-tool: %s: %s missing or of the wrong size\n", argv [0], name);
                goto out;
            }
            if (pass == 0)
                for (size_t k = 0; k < r->count; k++)
                    tiny [t.offset + k] = fabs ((double) r->data [k]) < 1e-6 * gmax;
            s_compare (name, (pass ? p : g) + t.offset, r->data, r->count,
                       pass ? tiny + t.offset : NULL, tol, &fails);
        }
    }
    printf ("%s: %s, %zu parameters, batch %d: %d tensors off by more than %.0e relative\n",
            fails ? "FAIL" : "ok", argv [0], np, batch, fails, tol);
    rc = fails ? 1 : 0;
    free (tiny);
out:
    free (p);
    free (g);
    free (pred);
    kn_model_destroy (&m);
    kn_backend_destroy (&be);
    for (int i = 0; i < f.n; i++)
        free (f.recs [i].data);
    free (f.recs);
    return rc;
}

// ---------------------------------------------------------------- benchmarks

static int
s_opt_int (int argc, char **argv, const char *flag, int dflt)
{
    for (int i = 0; i + 1 < argc; i++)
        if (strcmp (argv [i], flag) == 0)
            return atoi (argv [i + 1]);
    return dflt;
}

static const char *
s_opt_str (int argc, char **argv, const char *flag, const char *dflt)
{
    for (int i = 0; i + 1 < argc; i++)
        if (strcmp (argv [i], flag) == 0)
            return argv [i + 1];
    return dflt;
}

//  cblas_sgemm GFLOP/s on n^3 (best of 3) with OpenBLAS's own threads.
static double
s_sgemm_gflops (int n, int threads)
{
    openblas_set_num_threads (threads);
    float *a = (float *) lb_xcalloc ((size_t) n * n, sizeof (float));
    float *b = (float *) lb_xcalloc ((size_t) n * n, sizeof (float));
    float *c = (float *) lb_xcalloc ((size_t) n * n, sizeof (float));
    for (size_t i = 0; i < (size_t) n * n; i++)
        a [i] = b [i] = (float) (i % 7) * 0.1f;
    double best = 1e9;
    for (int rep = 0; rep < 4; rep++) {
        double t0 = s_now ();
        cblas_sgemm (CblasRowMajor, CblasNoTrans, CblasNoTrans, n, n, n, 1, a, n, b, n, 0, c, n);
        double t = s_now () - t0;
        if (rep > 0 && t < best)
            best = t;
    }
    free (a);
    free (b);
    free (c);
    openblas_set_num_threads (1);       //  as kn_cpu_new leaves it
    return 2.0 * n * n * (double) n / best / 1e9;
}

//  ROC AUC of scores against 0/1 labels (ties averaged).
typedef struct { float s; float y; } s_pair_t;

static int
s_pair_cmp (const void *a, const void *b)
{
    float x = ((const s_pair_t *) a)->s, y = ((const s_pair_t *) b)->s;
    return x < y ? -1 : x > y;
}

static double
s_auc (const float *score, const float *label, size_t n)
{
    s_pair_t *v = (s_pair_t *) lb_xcalloc (n, sizeof *v);
    for (size_t i = 0; i < n; i++)
        v [i].s = score [i], v [i].y = label [i];
    qsort (v, n, sizeof *v, s_pair_cmp);
    double rank_sum = 0, pos = 0;
    for (size_t i = 0; i < n; ) {
        size_t j = i;
        while (j < n && v [j].s == v [i].s)
            j++;
        double avg = (i + 1 + j) / 2.0;
        for (size_t k = i; k < j; k++)
            if (v [k].y > 0.5f)
                rank_sum += avg, pos++;
        i = j;
    }
    free (v);
    double neg = (double) n - pos;
    return pos > 0 && neg > 0 ? (rank_sum - pos * (pos + 1) / 2) / (pos * neg) : 0.5;
}

static int
s_bench_mlp (int argc, char **argv)
{
    if (argc < 1) {
        fprintf (stderr, "usage: kn-tool bench-mlp DATA [--threads N] [--epochs E] [--batch B] [--act gelu|relu]\n");
        return 2;
    }
    int threads = s_opt_int (argc, argv, "--threads", 2);
    int epochs = s_opt_int (argc, argv, "--epochs", 3);
    int batch = s_opt_int (argc, argv, "--batch", 1024);
    const char *act = s_opt_str (argc, argv, "--act", "relu");
    const char *precision = s_opt_str (argc, argv, "--precision", "fp32");
    kn_precision_t prec;
    if (kn_precision_parse (precision, &prec)) {
        fprintf (stderr, "kn-tool: --precision %s: not fp32 or bf16\n", precision);
        return 2;
    }
    FILE *file = fopen (argv [0], "rb");
    size_t rows = 0;
    int cols = 0;
    char line [256];
    if (!file || !fgets (line, sizeof line, file)
    ||  sscanf (line, "kndata rows=%zu cols=%d", &rows, &cols) != 2 || cols < 1 || rows < 10) {
        fprintf (stderr, "kn-tool: %s: not a kndata file\n", argv [0]);
        if (file)
            fclose (file);
        return 2;
    }
    float *x = (float *) lb_xcalloc (rows * cols, sizeof (float));
    float *y = (float *) lb_xcalloc (rows, sizeof (float));
    bool ok = fread (x, sizeof (float), rows * cols, file) == rows * cols
           && fread (y, sizeof (float), rows, file) == rows;
    fclose (file);
    if (!ok) {
        fprintf (stderr, "kn-tool: %s: truncated\n", argv [0]);
        return 2;
    }
    size_t ntrain = rows * 8 / 10, nval = rows - ntrain;
    for (int c = 0; c < cols; c++) {
        double s = 0, ss = 0;
        for (size_t i = 0; i < ntrain; i++)
            s += x [i * cols + c], ss += (double) x [i * cols + c] * x [i * cols + c];
        double mean = s / ntrain, sd = sqrt (fmax (ss / ntrain - mean * mean, 1e-12));
        for (size_t i = 0; i < rows; i++)
            x [i * cols + c] = (float) ((x [i * cols + c] - mean) / sd);
    }
    kn_config_t cfg;
    kn_config_defaults (&cfg);
    cfg.n_in = cols;
    cfg.act = strcmp (act, "gelu") == 0 ? KN_ACT_GELU : KN_ACT_RELU;
    cfg.precision = prec;
    kn_optim_t opt;
    kn_optim_defaults (&opt);
    kn_backend_t *be = kn_cpu_new (threads);
    char err [256];
    kn_model_t *m = kn_model_new (&cfg, batch, 1, be, err, sizeof err);
    if (!m) {
        fprintf (stderr, "kn-tool: %s\n", err);
        kn_backend_destroy (&be);
        free (x);
        free (y);
        return 1;
    }
    double train_s = 0, cpu_s = 0, loss = 0;
    for (int e = 0; e < epochs; e++) {
        double t0 = s_now (), c0 = s_cpu_now ();
        if (kn_model_train_epoch (m, &opt, x, y, ntrain, batch, (uint64_t) e + 1, &loss)) {
            fprintf (stderr, "kn-tool: %s\n", kn_model_error (m));
            return 1;
        }
        train_s += s_now () - t0;
        cpu_s += s_cpu_now () - c0;
    }
    float *pred = (float *) lb_xcalloc (nval, sizeof (float));
    if (kn_model_predict (m, x + ntrain * cols, nval, pred)) {
        fprintf (stderr, "kn-tool: %s\n", kn_model_error (m));
        return 1;
    }
    double auc = s_auc (pred, y + ntrain, nval);
    double sps = (double) ntrain * epochs / train_s;
    double h1 = cfg.hidden [0], h2 = cfg.hidden [1];
    double flop = 2 * (cols * h1 + h1 * h2 + h2) * 2 + 2 * (h1 * h2 + h2);
    double sgemm = s_sgemm_gflops (1024, threads);
    printf ("kernels mlp %d->%d->%d->1 %s %s batch %d threads %d: %.0f samples/s over %d epochs "
            "(%.1f s), %.0f samples per CPU-second, train loss %.4f, val AUC %.4f, step %.1f GFLOP/s "
            "= %.0f%% of sgemm 1024^3 %.1f GFLOP/s\n",
            cols, cfg.hidden [0], cfg.hidden [1], act, precision, batch, threads, sps, epochs, train_s,
            (double) ntrain * epochs / cpu_s, loss, auc, sps * flop / 1e9,
            100 * sps * flop / 1e9 / sgemm, sgemm);
    free (x);
    free (y);
    free (pred);
    kn_model_destroy (&m);
    kn_backend_destroy (&be);
    return 0;
}

static int
s_bench_transformer (int argc, char **argv)
{
    int threads = s_opt_int (argc, argv, "--threads", 2);
    int steps = s_opt_int (argc, argv, "--steps", 10);
    const char *precision = s_opt_str (argc, argv, "--precision", "fp32");
    kn_config_t cfg;
    kn_config_defaults (&cfg);
    cfg.arch = KN_ARCH_TRANSFORMER;
    cfg.n_in = 16;
    if (kn_precision_parse (precision, &cfg.precision)) {
        fprintf (stderr, "kn-tool: --precision %s: not fp32 or bf16\n", precision);
        return 2;
    }
    enum { B = 32 };
    kn_backend_t *be = kn_cpu_new (threads);
    char err [256];
    kn_model_t *m = kn_model_new (&cfg, B, 1, be, err, sizeof err);
    if (!m) {
        fprintf (stderr, "kn-tool: %s\n", err);
        kn_backend_destroy (&be);
        return 1;
    }
    size_t in = kn_model_in_size (m);
    float *x = (float *) lb_xcalloc (B * in, sizeof (float));
    float y [B];
    uint64_t state = 1;
    for (size_t i = 0; i < B * in; i++) {
        state = state * 6364136223846793005ull + 1442695040888963407ull;
        x [i] = (float) ((state >> 40) & 0xFFFF) / 32768.0f - 1.0f;
    }
    for (int i = 0; i < B; i++)
        y [i] = (float) (i % 2);
    kn_optim_t opt;
    kn_optim_defaults (&opt);
    float loss;
    kn_model_train_step (m, &opt, x, y, B, &loss);          //  warm-up
    double t0 = s_now (), c0 = s_cpu_now ();
    for (int s = 0; s < steps; s++)
        if (kn_model_train_step (m, &opt, x, y, B, &loss)) {
            fprintf (stderr, "kn-tool: %s\n", kn_model_error (m));
            return 1;
        }
    double t = s_now () - t0, c = s_cpu_now () - c0;
    printf ("kernels transformer %s window %d width %d heads %d layers %d d_ff %d batch %d threads %d: "
            "%.0f tokens/s (%d steps, %.2f s), %.0f tokens per CPU-second, loss %.4f\n", precision, cfg.window,
            cfg.d_model, cfg.n_heads, cfg.n_layers, cfg.d_ff, B, threads,
            (double) steps * B * cfg.window / t, steps, t, (double) steps * B * cfg.window / c, loss);
    free (x);
    kn_model_destroy (&m);
    kn_backend_destroy (&be);
    return 0;
}

//  Seconds (wall, best of reps after a warm-up) and CPU-seconds (the same
//  rep) of one product through fn.
typedef void (s_gemm_fn) (kn_backend_t *be, bool ta, bool tb, int m, int n, int k, float alpha,
                          const float *a, int lda, const float *b, int ldb, float beta, float *c,
                          int ldc);

static void
s_time_gemm (s_gemm_fn *fn, kn_backend_t *be, bool ta, bool tb, int m, int n, int k,
             const float *a, const float *b, float *c, int reps, double *wall, double *cpu)
{
    int lda = ta ? m : k, ldb = tb ? k : n;
    *wall = 1e9;
    *cpu = 1e9;
    for (int r = 0; r <= reps; r++) {
        double t0 = s_now (), c0 = s_cpu_now ();
        fn (be, ta, tb, m, n, k, 1.0f, a, lda, b, ldb, 0.0f, c, n);
        double t = s_now () - t0, cp = s_cpu_now () - c0;
        if (r > 0 && t < *wall)
            *wall = t, *cpu = cp;
    }
}

static int
s_bench_gemm (int argc, char **argv)
{
    int threads = s_opt_int (argc, argv, "--threads", 2);
    int reps = s_opt_int (argc, argv, "--reps", 20);
    //  the products of one training step: MLP 16->256->256->1 at batch 1024,
    //  transformer width 128, d_ff 512 at 32 x 64 tokens (+ one attention head)
    static const struct { const char *what; bool ta, tb; int m, n, k; } shapes [] = {
        { "square 1024^3", false, false, 1024, 1024, 1024 },
        { "mlp fwd hidden.0 (NT)", false, true, 1024, 256, 16 },
        { "mlp fwd hidden.1 (NT)", false, true, 1024, 256, 256 },
        { "mlp dW hidden.1 (TN)", true, false, 256, 256, 1024 },
        { "mlp dx hidden.1 (NN)", false, false, 1024, 256, 256 },
        { "mlp dW hidden.0 (TN)", true, false, 256, 16, 1024 },
        { "xfmr fwd qkv (NT)", false, true, 2048, 384, 128 },
        { "xfmr fwd ff1 (NT)", false, true, 2048, 512, 128 },
        { "xfmr fwd ff2 (NT)", false, true, 2048, 128, 512 },
        { "xfmr dW ff1 (TN)", true, false, 512, 128, 2048 },
        { "xfmr dx ff1 (NN)", false, false, 2048, 128, 512 },
        { "xfmr attn QK^T 64x64x32 (NT)", false, true, 64, 64, 32 },
        { "xfmr attn PV 64x32x64 (NN)", false, false, 64, 32, 64 },
    };
    kn_backend_t *be = kn_cpu_new (threads);
    if (!be->gemm_bf16) {
        printf ("kernels bench-gemm: this CPU has no AVX512-BF16: bf16 products not measured\n");
        kn_backend_destroy (&be);
        return 0;
    }
    size_t big = (size_t) 1024 * 1024 + 2048 * 512;
    float *a = (float *) lb_xcalloc (big, sizeof (float));
    float *b = (float *) lb_xcalloc (big, sizeof (float));
    float *c = (float *) lb_xcalloc (big, sizeof (float));
    for (size_t i = 0; i < big; i++)
        a [i] = (float) (i % 13) * 0.1f - 0.6f, b [i] = (float) (i % 7) * 0.1f - 0.3f;
    printf ("kernels bench-gemm threads %d (GFLOP/s, best of %d; per CPU-second in brackets)\n",
            threads, reps);
    printf ("  %-30s %16s %16s %16s %7s\n", "shape", "m x n x k", "sgemm (split)", "bf16 (kn_gemm)",
            "ratio");
    for (size_t i = 0; i < sizeof shapes / sizeof shapes [0]; i++) {
        double flop = 2.0 * shapes [i].m * shapes [i].n * (double) shapes [i].k;
        int r = flop > 1e9 ? reps / 4 + 1 : reps;
        double ws, cs, wb, cb;
        s_time_gemm (be->gemm, be, shapes [i].ta, shapes [i].tb, shapes [i].m, shapes [i].n,
                     shapes [i].k, a, b, c, r, &ws, &cs);
        s_time_gemm (be->gemm_bf16, be, shapes [i].ta, shapes [i].tb, shapes [i].m,
                     shapes [i].n, shapes [i].k, a, b, c, r, &wb, &cb);
        char dims [48];
        snprintf (dims, sizeof dims, "%dx%dx%d", shapes [i].m, shapes [i].n, shapes [i].k);
        printf ("  %-30s %16s %6.1f [%6.1f] %6.1f [%6.1f] %6.2fx\n", shapes [i].what, dims,
                flop / ws / 1e9, flop / cs / 1e9, flop / wb / 1e9, flop / cb / 1e9, ws / wb);
    }
    free (a);
    free (b);
    free (c);
    kn_backend_destroy (&be);
    return 0;
}

int
main (int argc, char **argv)
{
    if (argc >= 2 && strcmp (argv [1], "parity") == 0)
        return s_parity (argc - 2, argv + 2);
    if (argc >= 2 && strcmp (argv [1], "bench-mlp") == 0)
        return s_bench_mlp (argc - 2, argv + 2);
    if (argc >= 2 && strcmp (argv [1], "bench-gemm") == 0)
        return s_bench_gemm (argc - 2, argv + 2);
    if (argc >= 2 && strcmp (argv [1], "bench-transformer") == 0)
        return s_bench_transformer (argc - 2, argv + 2);
    fprintf (stderr, "usage: kn-tool parity FILE | bench-mlp DATA [...] | bench-transformer [...] "
             "| bench-gemm [...]\n");
    return 2;
}
