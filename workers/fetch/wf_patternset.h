/*  wf_patternset.h - the pattern dataset: events (wf_bars_events or
    pattern_training_data) into a time-split lb_dataset.

    Columns: the 16 features in kernels/kn_features.h order. Label
    pattern_success (binary). Baseline: the rule's signal. fwd_return: the
    event's forward return. Entities: the symbols.

    Splits (the Catalyst default): test = the last test_s seconds of data,
    validation = the valid_s seconds before it, training = the train_s seconds
    before that; between each pair an embargo of max(embargo_s, the longest
    label span of any event) so that no training label looks into validation
    time and no validation label into test time. The windows end just after
    the last event's time.
*/
#ifndef WF_PATTERNSET_H_INCLUDED
#define WF_PATTERNSET_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "wf_bars.h"
#include "lb_dataset.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int64_t train_s;            //  default 2160 h
    int64_t valid_s;            //  default 168 h
    int64_t test_s;             //  default 168 h
    int64_t embargo_s;          //  at least; default 0 (= the label span)
    int64_t end_ts;             //  windows end here (exclusive); 0: after the last event
    size_t min_train_rows;      //  fewer training rows is an error (default 50)
    const char *meta;           //  JSON for the header, or NULL
} wf_patternset_opts_t;

//  Fills the defaults above.
void wf_patternset_opts_default (wf_patternset_opts_t *opts);

//  Builds the dataset. names holds the symbols events[i].series index.
//  Returns it (caller destroys; splits set), or NULL with *error_p (caller
//  frees): no events, a window with no rows ("too few rows for the
//  windows"), a bad value.
lb_dataset_t *wf_patternset_build (wf_bars_t *names, const wf_bars_event_t *events, size_t count,
                                   const wf_patternset_opts_t *opts, char **error_p);

//  Selftest.
void wf_patternset_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
