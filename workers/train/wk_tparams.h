/*  wk_tparams.h - hyperparameters of each trainer family: the table of
    names, types, defaults and ranges, and their validation.

    A job's hyperparameters arrive as text (wk_job_param). Resolving them
    checks every one against the family's table (unknown name, bad type,
    out of range, not one of the choices: an error naming the parameter,
    the value and what is allowed), fills the defaults, and returns the
    complete set as a JSON object, which is what the model artifact stores.
*/
#ifndef WK_TPARAMS_H_INCLUDED
#define WK_TPARAMS_H_INCLUDED

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "lb_model.h"

typedef enum {
    WK_TP_INT,
    WK_TP_REAL,
    WK_TP_BOOL,
    WK_TP_CHOICE,           //  one of a '|'-separated list
    WK_TP_LIST              //  comma-separated positive integers ("256,256")
} wk_tp_type_t;

typedef struct {
    const char *name;
    wk_tp_type_t type;
    const char *value;      //  default, as text
    double min, max;        //  numbers: bounds, inclusive unless min_open
    bool min_open;          //  min itself is not allowed (e.g. eta in (0, 1])
    const char *choices;    //  WK_TP_CHOICE: "gelu|relu"
    const char *help;
} wk_tparam_t;

//  Returns the family's table and its length (static).
const wk_tparam_t *wk_tparams_table (lb_model_family_t family, size_t *count);

//  Checks count (names[i], values[i]) pairs for family and returns a new
//  JSON object with every parameter of the table (defaults filled, typed:
//  integer, real, boolean, string), caller json_decref's it; or NULL with
//  the reason in err.
json_t *wk_tparams_resolve (lb_model_family_t family, const char *const *names,
                            const char *const *values, size_t count, char *err,
                            size_t err_size);

//  Reads a resolved parameter (present by construction: absent is our bug).
int64_t wk_tparams_int (const json_t *params, const char *name);
double wk_tparams_real (const json_t *params, const char *name);
bool wk_tparams_bool (const json_t *params, const char *name);
const char *wk_tparams_str (const json_t *params, const char *name);

//  Parses a WK_TP_LIST value into at most max integers. Returns how many,
//  or -1 if text is not such a list.
int wk_tparams_list (const char *text, int *out, int max);

//  Writes the table of every family as Markdown (docs/train.md uses it).
void wk_tparams_print (FILE *out);

//  Selftest.
void wk_tparams_test (bool verbose);

#endif
