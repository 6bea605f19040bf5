/*  lb_config.h - configuration: one INI file, environment overrides, flags.

    Every setting Predictors knows is declared once, in lb_confkeys.c, with its
    type, default, help text and environment name. A value comes from, in
    rising precedence: the default, the configuration file, the environment
    (PREDICTORS_<SECTION>_<KEY>, and the conventional names REDIS_URL,
    DATABASE_URL, PREDICTORS_BROKER, ANTHROPIC_API_KEY), the command line.

    Every value is checked when it is set. Errors name where the value came
    from: "predictors.conf:12: broker.liveness: 'x' is not an integer", or
    "environment PREDICTORS_BROKER_LIVENESS: ...". An unknown key in the file
    is an error, with its line.

    Types: string; int (64-bit, with bounds); real; bool (true/false, yes/no,
    on/off, 1/0); seconds ("250ms", "2.5s", "10m", "4h", "7d"; bare number =
    seconds); bytes ("512", "64KiB", "200MB", "1GB"; K/M/G/T are powers of 1024).
*/
#ifndef LB_CONFIG_H_INCLUDED
#define LB_CONFIG_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef enum {
    LB_CFG_STRING,
    LB_CFG_INT,
    LB_CFG_REAL,
    LB_CFG_BOOL,
    LB_CFG_SECONDS,
    LB_CFG_BYTES
} lb_cfg_type_t;

//  Flag: the value is a secret; printing shows "(set)" instead.
#define LB_CFG_SECRET 1u

//  One declared setting.
typedef struct {
    const char *name;       //  "section.key"
    lb_cfg_type_t type;
    const char *value;      //  default, as text (NULL: unset)
    const char *env;        //  conventional environment name besides PREDICTORS_*, or NULL
    double min, max;        //  bounds for numbers; min == max means unbounded
    unsigned flags;
    const char *help;
} lb_cfg_key_t;

//  The table of every setting (lb_confkeys.c). Returns it and its length.
const lb_cfg_key_t *lb_confkeys (size_t *count);

typedef struct _lb_config_t lb_config_t;

//  Returns a configuration holding the defaults of keys (the table is
//  borrowed and must outlive the object), or of lb_confkeys() when keys is
//  NULL. Defaults are checked too: a bad default is our bug (assert).
lb_config_t *lb_config_new (const lb_cfg_key_t *keys, size_t count);

//  Destroys the configuration. Accepts NULL; sets *self_p to NULL.
void lb_config_destroy (lb_config_t **self_p);

//  Reads an INI file. Returns 0, or -1 after logging every bad line
//  (values from good lines are kept; the caller should still refuse to run).
int lb_config_load_file (lb_config_t *self, const char *path);

//  Applies environment overrides from envp (NULL: this process's
//  environment). Returns 0, or -1 after logging each bad value.
int lb_config_load_env (lb_config_t *self, char **envp);

//  Sets one value from origin (for messages, e.g. "--bind"). Returns 0, or -1
//  after logging why (unknown name, bad value).
int lb_config_set (lb_config_t *self, const char *name, const char *value, const char *origin);

//  The standard sequence for a program: defaults, then the file (path if not
//  NULL, else $PREDICTORS_CONFIG if set; a named file must exist), then the
//  environment. Returns the configuration, or NULL after logging errors.
lb_config_t *lb_config_load (const char *path);

//  Typed getters. Asking for an undeclared name or the wrong type is our bug
//  (assert). Strings are borrowed until the value changes; an unset string
//  is NULL.
const char *lb_config_str (lb_config_t *self, const char *name);
int64_t lb_config_int (lb_config_t *self, const char *name);
double lb_config_real (lb_config_t *self, const char *name);
bool lb_config_bool (lb_config_t *self, const char *name);
double lb_config_seconds (lb_config_t *self, const char *name);
int64_t lb_config_bytes (lb_config_t *self, const char *name);

//  Where the current value came from ("default", "file:line",
//  "environment NAME", or the origin given to lb_config_set). Borrowed.
const char *lb_config_origin (lb_config_t *self, const char *name);

//  Writes every setting as INI (secrets masked), with its origin as a
//  comment, under sections in table order.
void lb_config_print (lb_config_t *self, FILE *out);

//  Parsers shared with command-line handling. Each returns 0 or -1 (and
//  leaves *out unchanged) when text is not a complete valid value.
int lb_config_parse_int (const char *text, int64_t *out);
int lb_config_parse_real (const char *text, double *out);
int lb_config_parse_bool (const char *text, bool *out);
int lb_config_parse_seconds (const char *text, double *out);
int lb_config_parse_bytes (const char *text, int64_t *out);

//  Selftest.
void lb_config_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
