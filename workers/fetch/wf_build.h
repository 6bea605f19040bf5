/*  wf_build.h - a task's features, target, baseline and time split over a
    frame, into a dataset (lib/lb_dataset.h).

    Rows are grouped by entity (the text column "symbol" when the frame has
    one, else one entity) and every windowed feature and target looks only
    within its entity, in time order. Features follow proto/pr_task.h's
    grammar (lag diff ret logret sma_ratio ema_ratio zscore vol rsi range_pos,
    dow month dayofyear hour, spread); a bare text column becomes category
    codes (sorted values). Targets follow its kinds; rows whose target is
    undefined (the last h rows of an entity, a missing value) are dropped.

    Baseline (what evaluation compares the models against): the table's
    rule_signal column when the frame has one (the Catalyst rule-based
    detector), else persistence: direction = the last h rows' move continues,
    threshold = the current value already clears it, class = the current
    class, value = the current value, return = the last h rows' return,
    volatility = the last h rows' volatility, vol_regime = the current
    volatility above the training median.
    fwd_return: the frame's fwd_return column when it has one, else
    x[t+h]/x[t]-1 of the target column when it is positive, else NaN.

    Split: the Catalyst windows (test = the last test_s, validation the valid_s
    before, training the train_s before that) when catalyst is set and the data
    covers them; otherwise by time quantiles (the last test_fraction of the
    distinct times for test, valid_fraction before it for validation, the rest
    for training). Always with an embargo of max(embargo_s, the longest label
    span) between splits; the label span is how far the target looks ahead
    (h rows), or the frame's label_timestamp column minus the row's time when
    it has one (pattern_training_data: its label is known 5 bars later).
*/
#ifndef WF_BUILD_H_INCLUDED
#define WF_BUILD_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#include "lb_dataset.h"
#include "pr_task.h"
#include "wf_frame.h"

typedef struct {
    bool catalyst;
    int64_t train_s, valid_s, test_s;
    int64_t embargo_s;
    double valid_fraction, test_fraction;
    size_t min_train_rows;
} wf_split_opts_t;

//  Defaults: Catalyst windows 2160 h / 168 h / 168 h, fractions 0.15 / 0.15,
//  embargo 0 (= the label span), at least 30 training rows.
void wf_split_opts_default (wf_split_opts_t *o);

//  Builds the dataset of task over frame (time-ordered by wf_frame_prepare).
//  meta is the JSON stored in the dataset's header. Returns the dataset
//  (caller destroys), or NULL with *error_p: an unknown or text column in a
//  feature, a target with one class, too few rows for the windows.
lb_dataset_t *wf_build_dataset (const pr_task_t *task, const wf_frame_t *frame,
                                const wf_split_opts_t *opts, const char *meta, char **error_p);

//  Selftest.
void wf_build_test (bool verbose);

#endif
