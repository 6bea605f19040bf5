/*  wf_fetch.h - the fetch step: a task spec in, a dataset artifact out.

    1. Reads the task spec (an artifact URI from the discover step, or a file)
       and validates it (proto/pr_task.h), then checks every source against
       the [sources] rules (lib/lb_netpolicy.h).
    2. A (run, step) that already has a row in `datasets` whose artifact is
       intact is a replay: the same URI comes back and nothing changes.
    3. Gets each source: pg:TABLE through COPY (pattern_training_data also
       brings its rule_signal and fwd_return columns: the rule-based baseline
       and the backtest's returns); file:// under sources.file_roots;
       debian:PACKAGE:/PATH from fetch.debian_dir (unpacked with apt-get
       download + dpkg -x when missing); http(s) through lib/lb_download.h.
       A declared sha256 must match what was read.
    4. Builds the features, target, baseline and split (wf_build.h) and
       writes the dataset into the artifact store, then records it in
       `datasets` (sources with their SHA-256, rows, columns, split bounds).
*/
#ifndef WF_FETCH_H_INCLUDED
#define WF_FETCH_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "lb_config.h"

typedef enum {
    WF_DONE = 0,
    WF_RETRY = 1,       //  worth another attempt (network, database, disk)
    WF_FAIL = 2         //  bad spec, refused source, bad data: no retry
} wf_status_t;

typedef struct {
    char *dataset_uri;          //  file://.../sha256/ab/<hex>
    char sha256 [65];
    bool replayed;
    size_t rows, cols, train_rows, valid_rows, test_rows;
    double baseline_accuracy;   //  on the test split (binary/multiclass), NaN otherwise
    double seconds;
    char error_code [32];
    char *error;
} wf_outcome_t;

//  Progress callback: percent, stage, message.
typedef void (wf_progress_fn) (void *arg, double percent, const char *stage, const char *message);

//  Runs the step. task_ref is an artifact URI (file://) or a path to a spec
//  file. Without a database (postgres.url empty or unreachable) pg: sources
//  fail and nothing is recorded (use record = false for a dry run).
wf_status_t wf_fetch_run (lb_config_t *config, const char *run, const char *step, const char *task_ref,
                          bool record, wf_progress_fn *progress, void *progress_arg, wf_outcome_t *out);

//  Frees what out holds; harmless twice.
void wf_outcome_release (wf_outcome_t *out);

#endif
