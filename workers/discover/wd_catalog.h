/*  wd_catalog.h - the built-in catalog: hundreds of distinct, valid task specs
    over data this machine has, for runs with no API key or no network.

    Data: the market tables the fetch worker fills (pg:market_bars for each
    symbol of discover.symbols, pg:pattern_training_data) and real CSV files
    Debian ships (seattle-weather.csv and stocks.csv in python3-vega-datasets,
    us-employment.csv too, msft.csv in r-cran-timeseries, macrodata, co2,
    sunspots and nile in python3-statsmodels), named as debian: sources
    (lib/lb_netpolicy.h). Each candidate is a data set x target x horizon;
    its feature set, model families and wording rotate so that no two
    candidates' hypotheses are near-duplicates. The order is a permutation
    fixed by discover.seed; a proposal is the first candidate, in that order,
    that is novel against every task ever tried. When every candidate has been
    tried the catalog says so: it never falls back to a fixed task.
*/
#ifndef WD_CATALOG_H_INCLUDED
#define WD_CATALOG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "pr_task.h"
#include "wd_novelty.h"

typedef struct _wd_catalog_t wd_catalog_t;

//  Returns the catalog for the comma-separated market symbols (may be "":
//  no market_bars tasks) in the order given by seed. Never NULL.
wd_catalog_t *wd_catalog_new (const char *symbols, uint64_t seed);

//  Destroys the catalog. Accepts NULL; sets *self_p to NULL.
void wd_catalog_destroy (wd_catalog_t **self_p);

//  Keeps only the candidates whose task type is named in types, a
//  comma-separated list such as "binary,regression" (discover.task_types:
//  the types the rest of the pipeline trains and evaluates). Order kept.
void wd_catalog_keep_types (wd_catalog_t *self, const char *types);

//  Returns true when type's name is in the comma-separated list (NULL: none).
bool wd_catalog_type_listed (const char *types, pr_task_type_t type);

//  Number of candidates.
size_t wd_catalog_size (wd_catalog_t *self);

//  Returns candidate i (0 <= i < size, in catalog order) as a parsed task
//  (caller destroys). A candidate that fails validation is our bug (assert).
pr_task_t *wd_catalog_task (wd_catalog_t *self, size_t i);

//  Returns the first candidate novel against nov (caller destroys), or NULL
//  when none is left, with *reason_p saying so (caller frees). *skipped_p
//  (may be NULL) receives how many candidates were passed over.
pr_task_t *wd_catalog_propose (wd_catalog_t *self, wd_novelty_t *nov, size_t *skipped_p,
                               char **reason_p);

//  Selftest.
void wd_catalog_test (bool verbose);

#endif
