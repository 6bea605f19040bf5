/*  lb_metrics.h - evaluation math for binary classifiers and trading signals.

    Pure functions over arrays, no I/O: the evaluator, the deployer's gate and
    the tools share them. Every definition follows scikit-learn 1.2 where it
    has one (tests/t_eval_metrics.py compares to 1e-9 on random data):

    - labels y[i] are 0 or 1; scores p[i] are probabilities in [0, 1];
      the predicted class is p[i] >= threshold.
    - precision with no predicted positive, recall with no actual positive,
      F1 when both are 0, FPR with no actual negative: 0 (sklearn's
      zero_division=0 behaviour; the caller can tell from the confusion counts).
    - ROC AUC: the probability that a random positive scores above a random
      negative, ties counting one half (equal to the trapezoidal area under
      the ROC curve, sklearn's roc_auc_score). NaN when one class is absent.
    - log loss: mean of -log(p) for positives and -log(1-p) for negatives,
      p clipped to [eps, 1-eps] with eps = DBL_EPSILON (sklearn's "auto").
    - reliability bins: `bins` equal-width bins over [0, 1]; bin k holds
      k/bins < p <= (k+1)/bins, p == 0 in the first (sklearn's
      calibration_curve(strategy="uniform") bins, edges computed as
      numpy.linspace does; empty bins kept here with count 0).

    Backtest of a signal: on row i the policy takes the trade when
    signal[i] is 1 and the row's forward return is known (finite); its net
    return is fwd_return[i] - cost; rows without a trade return 0. A signal
    on a row whose forward return is unknown (NaN) cannot be traded: it is
    counted in `skipped`, never guessed. Equity is the running sum of net returns (additive, from
    0). Sharpe = mean / sample standard deviation (n-1) of the per-row net
    returns, times sqrt(periods_per_year). Hit rate = share of trades with
    net return > 0. Max drawdown = largest fall of equity from a previous
    peak (the start, 0, counts as a peak).

    The confidence-blended policy (the Catalyst plan's A/B transition):
    confidence = max(p, 1-p), the probability the model gives its own
    predicted class (0.5 = a coin flip, 1 = certain). Above `high` the
    model's probability is used as is; above `low` (and up to `high`) the
    score is ml_weight * p + (1 - ml_weight) * rule; otherwise the rule
    signal (0 or 1) alone.
*/
#ifndef LB_METRICS_H_INCLUDED
#define LB_METRICS_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

//  Counts of a binary confusion matrix.
typedef struct {
    size_t tp, fp, tn, fn;
} lb_confusion_t;

//  Classification metrics at one threshold.
typedef struct {
    size_t n;
    lb_confusion_t cm;
    double accuracy, precision, recall, f1, fpr;
    double auc;         //  NaN when only one class is present
    double logloss;
    double brier;       //  mean squared error of p
} lb_metrics_t;

//  Checks inputs: y all 0/1, p all finite and in [0, 1], n > 0. Returns 0,
//  or -1 and writes a one-line reason ("row 12: score nan is not a
//  probability") into why (size bytes) when why is not NULL.
int lb_metrics_check (const uint8_t *y, const double *p, size_t n, char *why, size_t size);

//  Fills cm from labels and predicted classes (both 0/1).
void lb_metrics_confusion (const uint8_t *y, const uint8_t *pred, size_t n, lb_confusion_t *cm);

//  Computes every metric of p against y at threshold. Returns 0, or -1 when
//  the inputs fail lb_metrics_check (reason in why, which may be NULL).
int lb_metrics_compute (const uint8_t *y, const double *p, size_t n, double threshold,
                        lb_metrics_t *out, char *why, size_t size);

//  ROC AUC alone (ties count one half). Returns NaN when a class is absent.
//  Sorts a copy; O(n log n).
double lb_metrics_auc (const uint8_t *y, const double *p, size_t n);

//  Log loss alone (see above for clipping).
double lb_metrics_logloss (const uint8_t *y, const double *p, size_t n);

//  The ROC curve: one point per distinct score, from (0,0) to (1,1),
//  thresholds falling. Returns the number of points and sets *fpr and *tpr
//  to arrays the caller frees; 0 (and NULLs) when a class is absent.
size_t lb_metrics_roc (const uint8_t *y, const double *p, size_t n, double **fpr, double **tpr);

//  One reliability bin.
typedef struct {
    size_t count;
    double mean_p;      //  mean predicted probability (NaN when empty)
    double frac_pos;    //  fraction of positives (NaN when empty)
} lb_relbin_t;

//  Fills bins[0..nbins) (see above). Returns the expected calibration error:
//  sum over bins of count/n * |frac_pos - mean_p|.
double lb_metrics_reliability (const uint8_t *y, const double *p, size_t n,
                               lb_relbin_t *bins, size_t nbins);

//  Result of a backtest.
typedef struct {
    size_t n;           //  rows
    size_t trades;
    size_t skipped;     //  signals on rows with an unknown forward return
    double total;       //  sum of net returns
    double mean;        //  mean net return per row
    double sharpe;      //  NaN when the returns have no spread
    double hit_rate;    //  NaN when there is no trade
    double max_drawdown;
} lb_backtest_t;

//  Runs the backtest. equity, when not NULL, receives n running totals.
void lb_metrics_backtest (const uint8_t *signal, const double *fwd_return, size_t n,
                          double cost, double periods_per_year,
                          lb_backtest_t *out, double *equity);

//  Blended policy settings.
typedef struct {
    double high;        //  confidence above which the model alone decides (0.8)
    double low;         //  confidence above which the blend is used (0.6)
    double ml_weight;   //  weight of the model's probability in the blend (0.7)
} lb_blend_t;

//  Confidence of a probability: max(p, 1-p).
double lb_metrics_confidence (double p);

//  Writes the blended score of each row into out (n values in [0, 1]).
void lb_metrics_blend (const lb_blend_t *blend, const double *p, const uint8_t *rule,
                       size_t n, double *out);

//  A paired bootstrap confidence interval of mean(a) - mean(b) over the
//  same rows, resampling rows with replacement `rounds` times from a
//  generator seeded with seed (splitmix64; the same seed gives the same
//  interval on every machine). level is e.g. 0.95; the bounds are the
//  (1-level)/2 and (1+level)/2 percentiles with linear interpolation
//  (numpy.percentile's default).
typedef struct {
    double diff;        //  point estimate mean(a) - mean(b)
    double lo, hi;
    double level;
    size_t rounds;
} lb_bootstrap_t;

//  Returns 0, or -1 when n is 0, rounds is 0, or a value is not finite.
int lb_metrics_bootstrap (const double *a, const double *b, size_t n, size_t rounds,
                          double level, uint64_t seed, lb_bootstrap_t *out);

//  The splitmix64 generator the bootstrap uses (exposed for tests and for
//  reference implementations). Advances *state, returns the next value.
uint64_t lb_metrics_splitmix64 (uint64_t *state);

//  McNemar's test of two classifiers' correctness on the same rows.
typedef struct {
    size_t b;           //  rows where A is right and B wrong
    size_t c;           //  rows where A is wrong and B right
    double chi2;        //  (|b-c| - 1)^2 / (b+c), continuity corrected (0 when b+c == 0)
    double p_chi2;      //  its p-value (chi-square, 1 degree of freedom)
    double p_exact;     //  exact two-sided binomial p-value, min(1, 2 P(X <= min(b,c)))
} lb_mcnemar_t;

//  correct_a / correct_b are 0/1 per row.
void lb_metrics_mcnemar (const uint8_t *correct_a, const uint8_t *correct_b, size_t n,
                         lb_mcnemar_t *out);

//  Selftest: hand-computed tables.
void lb_metrics_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
