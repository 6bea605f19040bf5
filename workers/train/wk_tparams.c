/*  wk_tparams.c - hyperparameter tables and validation. */
#include "wk_tparams.h"
#include "lb_config.h"
#include "lb_mem.h"

#include <assert.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#define S_BIG 1e9

static const wk_tparam_t s_xgboost [] = {
    { "rounds", WK_TP_INT, "300", 1, 100000, false, NULL, "boosting rounds (upper bound with early stopping)" },
    { "eta", WK_TP_REAL, "0.3", 0, 1, true, NULL, "learning rate" },
    { "max_depth", WK_TP_INT, "6", 1, 64, false, NULL, "tree depth" },
    { "min_child_weight", WK_TP_REAL, "1", 0, S_BIG, false, NULL, "minimum hessian sum in a leaf" },
    { "subsample", WK_TP_REAL, "1", 0, 1, true, NULL, "row fraction per tree" },
    { "colsample_bytree", WK_TP_REAL, "1", 0, 1, true, NULL, "column fraction per tree" },
    { "colsample_bynode", WK_TP_REAL, "1", 0, 1, true, NULL, "column fraction per split" },
    { "lambda", WK_TP_REAL, "1", 0, S_BIG, false, NULL, "L2 regularisation" },
    { "alpha", WK_TP_REAL, "0", 0, S_BIG, false, NULL, "L1 regularisation" },
    { "gamma", WK_TP_REAL, "0", 0, S_BIG, false, NULL, "minimum loss reduction to split" },
    { "max_bin", WK_TP_INT, "256", 2, 65536, false, NULL, "histogram bins per feature" },
    { "scale_pos_weight", WK_TP_REAL, "1", 0, S_BIG, true, NULL, "weight of positive rows" },
    { "early_stopping_rounds", WK_TP_INT, "20", 0, 100000, false, NULL,
      "stop after this many rounds without a better validation metric (0: off)" },
    { "eval_metric", WK_TP_CHOICE, "auto", 0, 0, false, "auto|logloss|auc|error|rmse|mae",
      "validation metric for early stopping (auto: logloss, rmse for regression)" },
};

static const wk_tparam_t s_rf [] = {
    { "trees", WK_TP_INT, "300", 1, 10000, false, NULL, "trees in the forest (one round of parallel trees)" },
    { "max_depth", WK_TP_INT, "20", 1, 64, false, NULL, "tree depth" },
    { "subsample", WK_TP_REAL, "0.8", 0, 1, true, NULL, "row fraction per tree (sampled without replacement)" },
    { "colsample_bynode", WK_TP_REAL, "0.8", 0, 1, true, NULL, "column fraction per split" },
    { "min_child_weight", WK_TP_REAL, "1", 0, S_BIG, false, NULL, "minimum hessian sum in a leaf" },
    { "lambda", WK_TP_REAL, "1", 0, S_BIG, false, NULL, "L2 regularisation of leaf values" },
    { "max_bin", WK_TP_INT, "256", 2, 65536, false, NULL, "histogram bins per feature" },
};

#define S_NET_COMMON(lr, batch, epochs, dropout, patience) \
    { "act", WK_TP_CHOICE, "gelu", 0, 0, false, "gelu|relu", "activation" }, \
    { "dropout", WK_TP_REAL, dropout, 0, 0.99, false, NULL, "dropout probability (training only)" }, \
    { "lr", WK_TP_REAL, lr, 0, 10, true, NULL, "peak AdamW learning rate" }, \
    { "weight_decay", WK_TP_REAL, "0.01", 0, 10, false, NULL, "AdamW decoupled weight decay" }, \
    { "batch", WK_TP_INT, batch, 1, 65536, false, NULL, "batch size" }, \
    { "epochs", WK_TP_INT, epochs, 1, 100000, false, NULL, "passes over the training rows (upper bound)" }, \
    { "warmup_steps", WK_TP_INT, "0", 0, S_BIG, false, NULL, "linear warm-up steps before the cosine decay" }, \
    { "min_lr_frac", WK_TP_REAL, "0", 0, 1, false, NULL, "cosine schedule floor, as a fraction of lr" }, \
    { "early_stopping_epochs", WK_TP_INT, patience, 0, 100000, false, NULL, \
      "stop after this many epochs without a better validation loss (0: off)" }, \
    { "impute", WK_TP_CHOICE, "none", 0, 0, false, "none|mean", \
      "NaN features: none refuses the dataset, mean imputes the training mean" }, \
    { "precision", WK_TP_CHOICE, "fp32", 0, 0, false, "fp32|bf16", \
      "matrix products: fp32, or bf16 operands with fp32 sums (CPU with AVX512-BF16 only)" }

static const wk_tparam_t s_mlp [] = {
    { "hidden", WK_TP_LIST, "256,256", 1, 65536, false, NULL, "hidden layer widths, comma-separated (0 to 8 layers)" },
    { "layernorm", WK_TP_BOOL, "false", 0, 0, false, NULL, "LayerNorm after each hidden layer" },
    { "samples_per_epoch", WK_TP_INT, "0", 0, S_BIG, false, NULL,
      "training samples drawn per epoch (0: every row)" },
    { "val_samples", WK_TP_INT, "0", 0, S_BIG, false, NULL,
      "validation rows scored after each epoch, evenly spaced (0: all; final metrics use all)" },
    S_NET_COMMON ("0.001", "1024", "20", "0", "5"),
};

static const wk_tparam_t s_transformer [] = {
    { "window", WK_TP_INT, "64", 1, 4096, false, NULL, "consecutive rows per sample (oldest first)" },
    { "d_model", WK_TP_INT, "128", 1, 4096, false, NULL, "width" },
    { "heads", WK_TP_INT, "4", 1, 64, false, NULL, "attention heads (must divide d_model)" },
    { "layers", WK_TP_INT, "4", 1, 64, false, NULL, "encoder blocks" },
    { "d_ff", WK_TP_INT, "512", 1, 65536, false, NULL, "feed-forward width" },
    { "pool", WK_TP_CHOICE, "mean", 0, 0, false, "mean|last", "pooling over the window" },
    { "samples_per_epoch", WK_TP_INT, "20000", 0, S_BIG, false, NULL,
      "training windows drawn per epoch (0: every row; all rows x 64 steps is slow on a CPU)" },
    { "val_samples", WK_TP_INT, "5000", 0, S_BIG, false, NULL,
      "validation windows scored after each epoch, evenly spaced (0: all; final metrics use all)" },
    S_NET_COMMON ("0.0003", "32", "10", "0.1", "3"),
};

static const wk_tparam_t s_ensemble [] = {
    { "max_iter", WK_TP_INT, "2000", 1, 1000000, false, NULL, "iterations of the simplex-constrained fit" },
    { "tol", WK_TP_REAL, "1e-10", 0, 1, true, NULL, "stop when the log loss improves less than this" },
};

const wk_tparam_t *
wk_tparams_table (lb_model_family_t family, size_t *count)
{
    switch (family) {
        case LB_MODEL_XGBOOST:     *count = sizeof s_xgboost / sizeof s_xgboost [0]; return s_xgboost;
        case LB_MODEL_RF:          *count = sizeof s_rf / sizeof s_rf [0]; return s_rf;
        case LB_MODEL_MLP:         *count = sizeof s_mlp / sizeof s_mlp [0]; return s_mlp;
        case LB_MODEL_TRANSFORMER: *count = sizeof s_transformer / sizeof s_transformer [0]; return s_transformer;
        case LB_MODEL_ENSEMBLE:    *count = sizeof s_ensemble / sizeof s_ensemble [0]; return s_ensemble;
    }
    assert (false);
    return NULL;
}

int
wk_tparams_list (const char *text, int *out, int max)
{
    if (!text)
        return -1;
    if (*text == 0)
        return 0;
    int n = 0;
    const char *p = text;
    while (true) {
        char *end;
        errno = 0;
        long v = strtol (p, &end, 10);
        if (end == p || errno || v < 1 || v > 65536 || n == max)
            return -1;
        out [n++] = (int) v;
        if (*end == 0)
            return n;
        if (*end != ',')
            return -1;
        p = end + 1;
    }
}

static bool
s_choice_ok (const char *choices, const char *value)
{
    size_t len = strlen (value);
    const char *p = choices;
    while (p && *p) {
        const char *bar = strchr (p, '|');
        size_t n = bar ? (size_t) (bar - p) : strlen (p);
        if (n == len && strncmp (p, value, n) == 0)
            return true;
        p = bar ? bar + 1 : NULL;
    }
    return false;
}

//  Parses one value. Returns a new JSON value, or NULL with err.
static json_t *
s_parse (const wk_tparam_t *t, const char *value, char *err, size_t err_size)
{
    int64_t i;
    double d;
    bool b;
    switch (t->type) {
        case WK_TP_INT:
            if (lb_config_parse_int (value, &i) || (double) i < t->min || (double) i > t->max
            ||  (t->min_open && (double) i == t->min)) {
                snprintf (err, err_size, "hyperparameter %s: '%s' is not an integer in %c%g, %g]",
                          t->name, value, t->min_open ? '(' : '[', t->min, t->max);
                return NULL;
            }
            return json_integer (i);
        case WK_TP_REAL:
            if (lb_config_parse_real (value, &d) || !isfinite (d) || d < t->min || d > t->max
            ||  (t->min_open && d == t->min)) {
                snprintf (err, err_size, "hyperparameter %s: '%s' is not a number in %c%g, %g]",
                          t->name, value, t->min_open ? '(' : '[', t->min, t->max);
                return NULL;
            }
            return json_real (d);
        case WK_TP_BOOL:
            if (lb_config_parse_bool (value, &b)) {
                snprintf (err, err_size, "hyperparameter %s: '%s' is not true or false", t->name, value);
                return NULL;
            }
            return json_boolean (b);
        case WK_TP_CHOICE:
            if (!s_choice_ok (t->choices, value)) {
                snprintf (err, err_size, "hyperparameter %s: '%s' is not one of %s",
                          t->name, value, t->choices);
                return NULL;
            }
            return json_string (value);
        case WK_TP_LIST: {
            int tmp [8];
            if (wk_tparams_list (value, tmp, 8) < 0) {
                snprintf (err, err_size, "hyperparameter %s: '%s' is not a comma-separated list "
                          "of at most 8 integers in [1, 65536]", t->name, value);
                return NULL;
            }
            return json_string (value);
        }
    }
    assert (false);
    return NULL;
}

json_t *
wk_tparams_resolve (lb_model_family_t family, const char *const *names,
                    const char *const *values, size_t count, char *err, size_t err_size)
{
    size_t n;
    const wk_tparam_t *table = wk_tparams_table (family, &n);
    json_t *params = json_object ();
    for (size_t k = 0; k < count; k++) {
        const wk_tparam_t *t = NULL;
        for (size_t i = 0; i < n; i++)
            if (strcmp (table [i].name, names [k]) == 0)
                t = &table [i];
        if (!t) {
            char known [512] = "";
            for (size_t i = 0; i < n; i++) {
                size_t len = strlen (known);
                snprintf (known + len, sizeof known - len, "%s%s", i ? ", " : "", table [i].name);
            }
            snprintf (err, err_size, "hyperparameter %s: unknown for family %s (known: %s)",
                      names [k], lb_model_family_name (family), known);
            json_decref (params);
            return NULL;
        }
        if (json_object_get (params, t->name)) {
            snprintf (err, err_size, "hyperparameter %s: given twice", t->name);
            json_decref (params);
            return NULL;
        }
        json_t *v = s_parse (t, values [k] ? values [k] : "", err, err_size);
        if (!v) {
            json_decref (params);
            return NULL;
        }
        json_object_set_new (params, t->name, v);
    }
    for (size_t i = 0; i < n; i++)
        if (!json_object_get (params, table [i].name)) {
            json_t *v = s_parse (&table [i], table [i].value, err, err_size);
            assert (v);         //  a bad default is our bug
            json_object_set_new (params, table [i].name, v);
        }
    return params;
}

int64_t
wk_tparams_int (const json_t *params, const char *name)
{
    json_t *v = json_object_get (params, name);
    assert (json_is_integer (v));
    return json_integer_value (v);
}

double
wk_tparams_real (const json_t *params, const char *name)
{
    json_t *v = json_object_get (params, name);
    assert (json_is_number (v));
    return json_number_value (v);
}

bool
wk_tparams_bool (const json_t *params, const char *name)
{
    json_t *v = json_object_get (params, name);
    assert (json_is_boolean (v));
    return json_is_true (v);
}

const char *
wk_tparams_str (const json_t *params, const char *name)
{
    json_t *v = json_object_get (params, name);
    assert (json_is_string (v));
    return json_string_value (v);
}

void
wk_tparams_print (FILE *out)
{
    for (int f = LB_MODEL_XGBOOST; f <= LB_MODEL_ENSEMBLE; f++) {
        size_t n;
        const wk_tparam_t *t = wk_tparams_table ((lb_model_family_t) f, &n);
        fprintf (out, "\n### %s\n\n| name | default | allowed | what |\n|---|---|---|---|\n",
                 lb_model_family_name ((lb_model_family_t) f));
        for (size_t i = 0; i < n; i++) {
            char allowed [128];
            if (t [i].type == WK_TP_CHOICE) {
                snprintf (allowed, sizeof allowed, "%s", t [i].choices);
                for (char *c = allowed; *c; c++)
                    if (*c == '|')
                        *c = '/';       //  a bar would end the Markdown cell
            }
            else
            if (t [i].type == WK_TP_BOOL)
                snprintf (allowed, sizeof allowed, "true, false");
            else
            if (t [i].type == WK_TP_LIST)
                snprintf (allowed, sizeof allowed, "0-8 widths in [1, 65536]");
            else
                snprintf (allowed, sizeof allowed, "%s %c%g, %g]",
                          t [i].type == WK_TP_INT ? "integer" : "real",
                          t [i].min_open ? '(' : '[', t [i].min, t [i].max);
            fprintf (out, "| `%s` | %s | %s | %s |\n", t [i].name, t [i].value, allowed, t [i].help);
        }
    }
}

void
wk_tparams_test (bool verbose)
{
    if (verbose)
        printf (" * wk_tparams: ");
    char err [512];
    json_t *p = wk_tparams_resolve (LB_MODEL_XGBOOST, NULL, NULL, 0, err, sizeof err);
    assert (p);
    assert (wk_tparams_int (p, "rounds") == 300);
    assert (wk_tparams_real (p, "eta") == 0.3);
    assert (strcmp (wk_tparams_str (p, "eval_metric"), "auto") == 0);
    json_decref (p);

    const char *names [] = { "max_depth", "eta" };
    const char *good [] = { "4", "0.05" };
    p = wk_tparams_resolve (LB_MODEL_XGBOOST, names, good, 2, err, sizeof err);
    assert (p && wk_tparams_int (p, "max_depth") == 4 && wk_tparams_real (p, "eta") == 0.05);
    json_decref (p);

    const char *bad1 [] = { "4", "0" };             //  eta must be > 0
    assert (!wk_tparams_resolve (LB_MODEL_XGBOOST, names, bad1, 2, err, sizeof err));
    assert (strstr (err, "eta") && strstr (err, "(0, 1]"));
    const char *bad2 [] = { "deep", "0.1" };
    assert (!wk_tparams_resolve (LB_MODEL_XGBOOST, names, bad2, 2, err, sizeof err));
    assert (strstr (err, "max_depth: 'deep'"));
    const char *bad3 [] = { "65", "0.1" };
    assert (!wk_tparams_resolve (LB_MODEL_XGBOOST, names, bad3, 2, err, sizeof err));
    const char *unknown [] = { "max_dpeth" };
    assert (!wk_tparams_resolve (LB_MODEL_RF, unknown, good, 1, err, sizeof err));
    assert (strstr (err, "unknown for family rf") && strstr (err, "max_depth"));
    const char *twice [] = { "trees", "trees" };
    const char *tv [] = { "10", "20" };
    assert (!wk_tparams_resolve (LB_MODEL_RF, twice, tv, 2, err, sizeof err));

    const char *mn [] = { "hidden", "act", "impute", "layernorm" };
    const char *mv [] = { "64,32,16", "relu", "mean", "yes" };
    p = wk_tparams_resolve (LB_MODEL_MLP, mn, mv, 4, err, sizeof err);
    assert (p && wk_tparams_bool (p, "layernorm"));
    int widths [8];
    assert (wk_tparams_list (wk_tparams_str (p, "hidden"), widths, 8) == 3 && widths [2] == 16);
    json_decref (p);
    const char *mbad [] = { "64,,32", "relu", "mean", "yes" };
    assert (!wk_tparams_resolve (LB_MODEL_MLP, mn, mbad, 4, err, sizeof err));
    const char *mbad2 [] = { "64", "tanh", "mean", "yes" };
    assert (!wk_tparams_resolve (LB_MODEL_MLP, mn, mbad2, 4, err, sizeof err));
    assert (strstr (err, "gelu|relu"));
    assert (wk_tparams_list ("", widths, 8) == 0);
    assert (wk_tparams_list ("1,2,3,4,5,6,7,8,9", widths, 8) == -1);

    for (int f = LB_MODEL_XGBOOST; f <= LB_MODEL_ENSEMBLE; f++) {
        p = wk_tparams_resolve ((lb_model_family_t) f, NULL, NULL, 0, err, sizeof err);
        assert (p);             //  every default is valid
        json_decref (p);
    }
    if (verbose)
        printf ("OK\n");
}
