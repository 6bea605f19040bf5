/*  wk_tdata.c - shared checks and metrics of the trainer families. */
#include "wk_tdata.h"
#include "lb_mem.h"

#include <assert.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int
wk_tdata_check (const wk_tdata_t *data, char *err, size_t err_size)
{
    assert (data);
    if (data->rows == 0 || data->vrows == 0) {
        snprintf (err, err_size, "the %s split is empty", data->rows == 0 ? "train" : "validation");
        return -1;
    }
    if (data->cols == 0) {
        snprintf (err, err_size, "the dataset has no feature columns");
        return -1;
    }
    const float *ys [2] = { data->y, data->vy };
    size_t ns [2] = { data->rows, data->vrows };
    const char *split [2] = { "train", "validation" };
    for (int s = 0; s < 2; s++) {
        size_t ones = 0;
        for (size_t r = 0; r < ns [s]; r++) {
            float y = ys [s][r];
            if (data->task == LB_MODEL_BINARY) {
                if (y != 0 && y != 1) {
                    snprintf (err, err_size, "%s row %zu: label %g is not 0 or 1", split [s], r, y);
                    return -1;
                }
                ones += y == 1;
            }
            else
            if (!isfinite (y)) {
                snprintf (err, err_size, "%s row %zu: label is not finite", split [s], r);
                return -1;
            }
        }
        if (s == 0 && data->task == LB_MODEL_BINARY && (ones == 0 || ones == ns [s])) {
            snprintf (err, err_size, "the label has one class only in the %zu training rows "
                      "(all %d): nothing to learn", ns [s], ones ? 1 : 0);
            return -1;
        }
    }
    return 0;
}

bool
wk_tdata_find_nan (const float *x, size_t rows, size_t cols, size_t *row, size_t *col)
{
    for (size_t i = 0; i < rows * cols; i++)
        if (isnan (x [i])) {
            if (row)
                *row = i / cols;
            if (col)
                *col = i % cols;
            return true;
        }
    return false;
}

void
wk_tdata_fit_standardisation (const float *x, size_t rows, size_t cols, float *mean, float *scale)
{
    for (size_t c = 0; c < cols; c++) {
        double sum = 0, sq = 0;
        size_t n = 0;
        for (size_t r = 0; r < rows; r++) {
            double v = x [r * cols + c];
            if (isnan (v))
                continue;
            sum += v;
            n++;
        }
        double m = n ? sum / (double) n : 0;
        for (size_t r = 0; r < rows; r++) {
            double v = x [r * cols + c];
            if (!isnan (v))
                sq += (v - m) * (v - m);
        }
        double sd = n ? sqrt (sq / (double) n) : 0;
        mean [c] = (float) m;
        scale [c] = (sd > 0 && isfinite ((float) sd) && (float) sd > 0) ? (float) sd : 1.0f;
    }
}

double
wk_tdata_logloss (const float *p, const float *y, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++) {
        double q = p [i];
        q = q < 1e-15 ? 1e-15 : q > 1 - 1e-15 ? 1 - 1e-15 : q;
        sum -= y [i] > 0.5f ? log (q) : log (1 - q);
    }
    return n ? sum / (double) n : NAN;
}

typedef struct {
    float p;
    float y;
} s_pair_t;

static int
s_pair_cmp (const void *a, const void *b)
{
    float x = ((const s_pair_t *) a)->p, z = ((const s_pair_t *) b)->p;
    return (x > z) - (x < z);
}

double
wk_tdata_auc (const float *p, const float *y, size_t n)
{
    s_pair_t *pairs = lb_xmalloc ((n ? n : 1) * sizeof *pairs);
    size_t pos = 0;
    for (size_t i = 0; i < n; i++) {
        pairs [i].p = p [i];
        pairs [i].y = y [i];
        pos += y [i] > 0.5f;
    }
    size_t neg = n - pos;
    if (pos == 0 || neg == 0) {
        free (pairs);
        return NAN;
    }
    qsort (pairs, n, sizeof *pairs, s_pair_cmp);
    //  Sum of the positives' ranks, ties given their average rank.
    double ranks = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && pairs [j].p == pairs [i].p)
            j++;
        double avg = (double) (i + 1 + j) / 2;
        for (size_t k = i; k < j; k++)
            if (pairs [k].y > 0.5f)
                ranks += avg;
        i = j;
    }
    free (pairs);
    return (ranks - (double) pos * (double) (pos + 1) / 2) / ((double) pos * (double) neg);
}

double
wk_tdata_rmse (const float *p, const float *y, size_t n)
{
    double sum = 0;
    for (size_t i = 0; i < n; i++)
        sum += ((double) p [i] - y [i]) * ((double) p [i] - y [i]);
    return n ? sqrt (sum / (double) n) : NAN;
}

static uint64_t
s_splitmix (uint64_t *state)
{
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

//  Uniform in (0, 1), from 24 random bits (exact in float and double).
static double
s_uniform (uint64_t *state)
{
    return ((double) (s_splitmix (state) >> 40) + 0.5) / (double) (1u << 24);
}

void
wk_tdata_synth (uint64_t seed, size_t rows, size_t cols, float *x, float *y)
{
    assert (cols >= 4);
    uint64_t state = seed;
    for (size_t r = 0; r < rows; r++) {
        float *row = x + r * cols;
        for (size_t c = 0; c < cols; c++) {
            //  Sum of three uniforms, centred: bell-shaped, bounded, no libm.
            double s = s_uniform (&state) + s_uniform (&state) + s_uniform (&state) - 1.5;
            row [c] = (float) (s * 2);
        }
        double z = 1.2 * row [0] - 0.8 * row [1] + 0.9 * row [2] * row [3]
                 + (row [1] > 0.5f ? 0.7 : 0) - 0.2;
        double p = 1 / (1 + exp (-z));
        y [r] = s_uniform (&state) < p ? 1.0f : 0.0f;
    }
}

void
wk_tdata_test (bool verbose)
{
    if (verbose)
        printf (" * wk_tdata: ");
    float y [4] = { 0, 0, 1, 1 };
    float p [4] = { 0.1f, 0.4f, 0.35f, 0.8f };
    assert (fabs (wk_tdata_auc (p, y, 4) - 0.75) < 1e-12);
    float tie [4] = { 0.5f, 0.5f, 0.5f, 0.5f };
    assert (fabs (wk_tdata_auc (tie, y, 4) - 0.5) < 1e-12);
    float ones [4] = { 1, 1, 1, 1 };
    assert (isnan (wk_tdata_auc (p, ones, 4)));
    //  scikit-learn: log_loss([0,0,1,1], [.1,.4,.35,.8]) = 0.47228...
    double ll = wk_tdata_logloss (p, y, 4);
    double want = -(log (0.9) + log (0.6) + log (0.35) + log (0.8)) / 4;
    assert (fabs (ll - want) < 1e-7);
    assert (fabs (wk_tdata_rmse (y, y, 4)) < 1e-12);

    float x [6] = { 1, NAN, 3, 10, 5, 10 };
    size_t row, col;
    assert (wk_tdata_find_nan (x, 3, 2, &row, &col) && row == 0 && col == 1);
    assert (!wk_tdata_find_nan (y, 2, 2, NULL, NULL));
    float mean [2], scale [2];
    wk_tdata_fit_standardisation (x, 3, 2, mean, scale);
    assert (fabsf (mean [0] - 3) < 1e-6f && fabsf (scale [0] - sqrtf (8.0f / 3)) < 1e-5f);
    assert (mean [1] == 10 && scale [1] == 1);      //  constant column: scale 1

    const char *names [2] = { "a", "b" };
    wk_tdata_t data = { .task = LB_MODEL_BINARY, .cols = 2, .names = names,
                        .x = x, .y = y, .rows = 2, .vx = x, .vy = y + 2, .vrows = 2 };
    char err [256];
    assert (wk_tdata_check (&data, err, sizeof err) == -1);     //  train labels all 0
    assert (strstr (err, "one class"));
    data.y = y + 1;
    assert (wk_tdata_check (&data, err, sizeof err) == 0);
    float bad [2] = { 0, 2 };
    data.vy = bad;
    assert (wk_tdata_check (&data, err, sizeof err) == -1 && strstr (err, "validation row 1"));
    data.task = LB_MODEL_REGRESSION;
    assert (wk_tdata_check (&data, err, sizeof err) == 0);
    data.vrows = 0;
    assert (wk_tdata_check (&data, err, sizeof err) == -1 && strstr (err, "empty"));

    float sx [8 * 5], sy [8], sx2 [8 * 5], sy2 [8];
    wk_tdata_synth (7, 8, 5, sx, sy);
    wk_tdata_synth (7, 8, 5, sx2, sy2);
    assert (memcmp (sx, sx2, sizeof sx) == 0 && memcmp (sy, sy2, sizeof sy) == 0);
    wk_tdata_synth (8, 8, 5, sx2, sy2);
    assert (memcmp (sx, sx2, sizeof sx) != 0);
    if (verbose)
        printf ("OK\n");
}
