/*  sc_pipeline.c - pipeline definitions from INI files, checked as a DAG. */
#include "sc_pipeline.h"
#include "pr_rank.h"
#include "lb_config.h"
#include "lb_mem.h"
#include "lb_selftest.h"

#include <assert.h>
#include <ctype.h>
#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct _sc_pipeline_t {
    char *name;
    char *description;
    sc_cron_t *schedule;
    char *schedule_text;
    char *timezone;
    double catchup;
    sc_overlap_t overlap;
    pr_kv_t params;
    sc_step_def_t *steps;
    size_t step_count;
};

static void s_err (char *err, size_t size, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));
static void
s_err (char *err, size_t size, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    vsnprintf (err, size, fmt, args);
    va_end (args);
}

static char *
s_trim (char *s)
{
    while (isspace ((unsigned char) *s))
        s++;
    char *end = s + strlen (s);
    while (end > s && isspace ((unsigned char) end [-1]))
        *--end = 0;
    return s;
}

static bool
s_valid_name (const char *s)
{
    if (!*s || strlen (s) > 63)
        return false;
    for (; *s; s++)
        if (!isalnum ((unsigned char) *s) && *s != '_' && *s != '-' && *s != '.')
            return false;
    return true;
}

static sc_step_def_t *
s_step (sc_pipeline_t *self, const char *name)
{
    for (size_t i = 0; i < self->step_count; i++)
        if (strcmp (self->steps [i].name, name) == 0)
            return &self->steps [i];
    return NULL;
}

//  Splits a comma list into *needs. Returns 0 or -1 (empty item).
static int
s_split_needs (sc_step_def_t *step, const char *text)
{
    char *copy = lb_xstrdup (text);
    int rc = 0;
    for (char *item = copy, *next; item; item = next) {
        next = strchr (item, ',');
        if (next)
            *next++ = 0;
        item = s_trim (item);
        if (!*item) {
            rc = -1;
            break;
        }
        step->needs = lb_xrealloc (step->needs, (step->needs_count + 1) * sizeof (char *));
        step->needs [step->needs_count++] = lb_xstrdup (item);
    }
    free (copy);
    return rc;
}

//  One key = value line in section. Returns 0 or -1 with why.
static int
s_set (sc_pipeline_t *self, const char *section, const char *key, const char *value,
       char *why, size_t why_size)
{
    if (strcmp (section, "pipeline") == 0) {
        if (strcmp (key, "description") == 0) {
            free (self->description);
            self->description = lb_xstrdup (value);
        }
        else
        if (strcmp (key, "schedule") == 0) {
            free (self->schedule_text);
            self->schedule_text = *value ? lb_xstrdup (value) : NULL;
        }
        else
        if (strcmp (key, "timezone") == 0) {
            free (self->timezone);
            self->timezone = lb_xstrdup (value);
        }
        else
        if (strcmp (key, "catchup") == 0) {
            if (lb_config_parse_seconds (value, &self->catchup) || self->catchup < 0) {
                s_err (why, why_size, "catchup: '%s' is not a duration (e.g. 30m, 6h)", value);
                return -1;
            }
        }
        else
        if (strcmp (key, "overlap") == 0) {
            if (strcmp (value, "skip") == 0)
                self->overlap = SC_OVERLAP_SKIP;
            else
            if (strcmp (value, "queue") == 0)
                self->overlap = SC_OVERLAP_QUEUE;
            else
            if (strcmp (value, "replace") == 0)
                self->overlap = SC_OVERLAP_REPLACE;
            else {
                s_err (why, why_size, "overlap: '%s' is not skip, queue or replace", value);
                return -1;
            }
        }
        else {
            s_err (why, why_size, "unknown key '%s' in [pipeline] (description, schedule, timezone, catchup, overlap)", key);
            return -1;
        }
        return 0;
    }
    if (strcmp (section, "params") == 0) {
        if (!s_valid_name (key)) {
            s_err (why, why_size, "'%s' is not a valid parameter name", key);
            return -1;
        }
        pr_kv_set_str (&self->params, key, value);
        return 0;
    }
    if (strncmp (section, "step.", 5) == 0) {
        const char *name = section + 5;
        sc_step_def_t *step = s_step (self, name);
        assert (step);          //  created when the section header was read
        if (strcmp (key, "service") == 0) {
            if (!s_valid_name (value)) {
                s_err (why, why_size, "service: '%s' is not a valid service name", value);
                return -1;
            }
            free (step->service);
            step->service = lb_xstrdup (value);
        }
        else
        if (strcmp (key, "needs") == 0) {
            if (s_split_needs (step, value)) {
                s_err (why, why_size, "needs: empty name in '%s'", value);
                return -1;
            }
        }
        else
        if (strcmp (key, "timeout") == 0) {
            if (lb_config_parse_seconds (value, &step->timeout) || step->timeout < 0) {
                s_err (why, why_size, "timeout: '%s' is not a duration (e.g. 90s, 30m, 2h)", value);
                return -1;
            }
        }
        else
        if (strcmp (key, "attempts") == 0) {
            int64_t n;
            if (lb_config_parse_int (value, &n) || n < 1 || n > 100) {
                s_err (why, why_size, "attempts: '%s' is not a number from 1 to 100", value);
                return -1;
            }
            step->attempts = (int) n;
        }
        else
        if (strcmp (key, "gpu") == 0) {
            if (lb_config_parse_bool (value, &step->gpu)) {
                s_err (why, why_size, "gpu: '%s' is not true or false", value);
                return -1;
            }
        }
        else
        if (strcmp (key, "ranks") == 0) {
            int64_t n;
            if (lb_config_parse_int (value, &n) || n < 1 || n > PR_RANK_MAX) {
                s_err (why, why_size, "ranks: '%s' is not a number from 1 to %d", value, PR_RANK_MAX);
                return -1;
            }
            step->ranks = (int) n;
        }
        else
        if (strncmp (key, "param.", 6) == 0 && s_valid_name (key + 6)) {
            //  The group fields are the scheduler's to set (pr_rank.h).
            const char *pname = key + 6;
            if (strcmp (pname, "rank") == 0 || strcmp (pname, "ranks") == 0
            ||  strcmp (pname, "group") == 0 || strcmp (pname, "nccl_id") == 0) {
                s_err (why, why_size, "param.%s: reserved (the scheduler sets it for a step with ranks = N)", pname);
                return -1;
            }
            pr_kv_set_str (&step->params, pname, value);
        }
        else {
            s_err (why, why_size, "unknown key '%s' in [%s] (service, needs, timeout, attempts, gpu, ranks, param.NAME)", key, section);
            return -1;
        }
        return 0;
    }
    assert (false);
    return -1;
}

//  Depth-first search for a cycle; on one, writes its path into why.
static int
s_visit (sc_pipeline_t *self, size_t index, int *color, size_t *stack, size_t depth,
         char *why, size_t why_size)
{
    color [index] = 1;
    stack [depth] = index;
    sc_step_def_t *step = &self->steps [index];
    for (size_t i = 0; i < step->needs_count; i++) {
        size_t next = (size_t) (s_step (self, step->needs [i]) - self->steps);
        if (color [next] == 1) {
            //  The cycle: from next's place on the stack down to here, then next again.
            size_t from = 0;
            while (stack [from] != next)
                from++;
            size_t used = (size_t) snprintf (why, why_size, "steps form a cycle: ");
            for (size_t k = from; k <= depth && used < why_size; k++)
                used += (size_t) snprintf (why + used, why_size - used, "%s -> ", self->steps [stack [k]].name);
            if (used < why_size)
                snprintf (why + used, why_size - used, "%s (each needs the next)", self->steps [next].name);
            return -1;
        }
        if (color [next] == 0 && s_visit (self, next, color, stack, depth + 1, why, why_size))
            return -1;
    }
    color [index] = 2;
    return 0;
}

static int
s_check (sc_pipeline_t *self, const char *path, char *err, size_t err_size)
{
    if (self->step_count == 0) {
        s_err (err, err_size, "%s: no [step.NAME] sections", path);
        return -1;
    }
    char why [512];
    for (size_t i = 0; i < self->step_count; i++) {
        sc_step_def_t *step = &self->steps [i];
        if (!step->service) {
            s_err (err, err_size, "%s: [step.%s] has no service", path, step->name);
            return -1;
        }
        if (step->ranks > 1)
            step->gpu = true;           //  NCCL ranks run on GPU trainers only
        for (size_t k = 0; k < step->needs_count; k++) {
            if (!s_step (self, step->needs [k])) {
                s_err (err, err_size, "%s: step '%s' needs '%s', which is not a step of %s",
                       path, step->name, step->needs [k], self->name);
                return -1;
            }
            if (strcmp (step->needs [k], step->name) == 0) {
                s_err (err, err_size, "%s: step '%s' needs itself", path, step->name);
                return -1;
            }
        }
        for (size_t k = 0; k < step->params.count; k++) {
            char *text = sc_pipeline_expand (step->params.entries [k].s, &self->params, why, sizeof why);
            if (!text) {
                s_err (err, err_size, "%s: [step.%s] param.%s: %s", path, step->name,
                       step->params.entries [k].key, why);
                return -1;
            }
            free (text);
        }
    }
    int *color = lb_xcalloc (self->step_count, sizeof (int));
    size_t *stack = lb_xcalloc (self->step_count + 1, sizeof (size_t));
    int rc = 0;
    for (size_t i = 0; i < self->step_count && rc == 0; i++)
        if (color [i] == 0 && s_visit (self, i, color, stack, 0, why, sizeof why)) {
            s_err (err, err_size, "%s: %s", path, why);
            rc = -1;
        }
    free (color);
    free (stack);
    if (rc == 0 && self->schedule_text) {
        self->schedule = sc_cron_new (self->schedule_text, self->timezone, why, sizeof why);
        if (!self->schedule) {
            s_err (err, err_size, "%s: schedule '%s': %s", path, self->schedule_text, why);
            rc = -1;
        }
    }
    else
    if (rc == 0 && self->timezone) {
        //  A zone without a schedule is harmless, but check it is real.
        sc_cron_t *probe = sc_cron_new ("0 0 * * *", self->timezone, why, sizeof why);
        if (!probe) {
            s_err (err, err_size, "%s: timezone: %s", path, why);
            rc = -1;
        }
        sc_cron_destroy (&probe);
    }
    return rc;
}

sc_pipeline_t *
sc_pipeline_load (const char *path, char *err, size_t err_size)
{
    assert (path && err);
    FILE *file = fopen (path, "r");
    if (!file) {
        s_err (err, err_size, "%s: cannot read the pipeline definition", path);
        return NULL;
    }
    sc_pipeline_t *self = lb_xcalloc (1, sizeof *self);
    const char *base = strrchr (path, '/');
    base = base ? base + 1 : path;
    size_t len = strlen (base);
    if (len > 5 && strcmp (base + len - 5, ".conf") == 0)
        len -= 5;
    self->name = lb_xstrndup (base, len);
    self->description = lb_xstrdup ("");
    self->catchup = 3600;
    self->overlap = SC_OVERLAP_SKIP;

    char line [4096], section [128] = "";
    int lineno = 0, rc = 0;
    while (rc == 0 && fgets (line, sizeof line, file)) {
        lineno++;
        char why [400] = "";
        char *text = s_trim (line);
        if (!*text || *text == '#' || *text == ';')
            continue;
        if (*text == '[') {
            char *close = strchr (text, ']');
            if (!close || close [1]) {
                s_err (err, err_size, "%s:%d: section header needs a closing ']'", path, lineno);
                rc = -1;
                break;
            }
            *close = 0;
            char *name = s_trim (text + 1);
            if (strcmp (name, "pipeline") && strcmp (name, "params") && strncmp (name, "step.", 5)) {
                s_err (err, err_size, "%s:%d: unknown section [%s] ([pipeline], [params], [step.NAME])", path, lineno, name);
                rc = -1;
                break;
            }
            if (strncmp (name, "step.", 5) == 0) {
                if (!s_valid_name (name + 5)) {
                    s_err (err, err_size, "%s:%d: '%s' is not a valid step name", path, lineno, name + 5);
                    rc = -1;
                    break;
                }
                if (s_step (self, name + 5)) {
                    s_err (err, err_size, "%s:%d: step '%s' is defined twice", path, lineno, name + 5);
                    rc = -1;
                    break;
                }
                self->steps = lb_xrealloc (self->steps, (self->step_count + 1) * sizeof *self->steps);
                sc_step_def_t *step = &self->steps [self->step_count++];
                memset (step, 0, sizeof *step);
                step->name = lb_xstrdup (name + 5);
                step->attempts = 3;
                step->ranks = 1;
            }
            snprintf (section, sizeof section, "%s", name);
            continue;
        }
        //  Comments after values: " # ..." only (a '#' inside a value is kept).
        char *hash = strstr (text, " #");
        if (hash)
            *hash = 0;
        char *eq = strchr (text, '=');
        if (!eq) {
            s_err (err, err_size, "%s:%d: expected 'key = value'", path, lineno);
            rc = -1;
            break;
        }
        *eq = 0;
        char *key = s_trim (text), *value = s_trim (eq + 1);
        if (!*section) {
            s_err (err, err_size, "%s:%d: '%s' is outside any section", path, lineno, key);
            rc = -1;
            break;
        }
        if (s_set (self, section, key, value, why, sizeof why)) {
            s_err (err, err_size, "%s:%d: %s", path, lineno, why);
            rc = -1;
        }
    }
    fclose (file);
    if (rc == 0)
        rc = s_check (self, path, err, err_size);
    if (rc) {
        sc_pipeline_destroy (&self);
        return NULL;
    }
    return self;
}

char **
sc_pipeline_names (const char *dir)
{
    DIR *handle = opendir (dir);
    if (!handle)
        return NULL;
    char **names = lb_xcalloc (1, sizeof (char *));
    size_t count = 0;
    struct dirent *entry;
    while ((entry = readdir (handle))) {
        size_t len = strlen (entry->d_name);
        if (len > 5 && strcmp (entry->d_name + len - 5, ".conf") == 0 && entry->d_name [0] != '.') {
            names = lb_xrealloc (names, (count + 2) * sizeof (char *));
            names [count++] = lb_xstrndup (entry->d_name, len - 5);
            names [count] = NULL;
        }
    }
    closedir (handle);
    for (size_t i = 1; i < count; i++)          //  insertion sort: few names
        for (size_t k = i; k > 0 && strcmp (names [k - 1], names [k]) > 0; k--) {
            char *swap = names [k];
            names [k] = names [k - 1];
            names [k - 1] = swap;
        }
    return names;
}

void
sc_pipeline_names_free (char ***names_p)
{
    char **names = *names_p;
    if (!names)
        return;
    for (size_t i = 0; names [i]; i++)
        free (names [i]);
    free (names);
    *names_p = NULL;
}

sc_pipeline_t *
sc_pipeline_find (const char *dir, const char *name, char *err, size_t err_size)
{
    char **names = sc_pipeline_names (dir);
    if (!names) {
        s_err (err, err_size, "cannot read the pipelines directory %s (scheduler.pipelines)", dir);
        return NULL;
    }
    bool known = false;
    char list [1024] = "";
    size_t used = 0;
    for (size_t i = 0; names [i]; i++) {
        if (strcmp (names [i], name) == 0)
            known = true;
        if (used < sizeof list)
            used += (size_t) snprintf (list + used, sizeof list - used, "%s%s", i ? ", " : "", names [i]);
    }
    sc_pipeline_names_free (&names);
    if (!known || !s_valid_name (name)) {
        s_err (err, err_size, "unknown pipeline '%s' (known: %s)", name, *list ? list : "none");
        return NULL;
    }
    char *path = lb_xasprintf ("%s/%s.conf", dir, name);
    sc_pipeline_t *self = sc_pipeline_load (path, err, err_size);
    free (path);
    return self;
}

void
sc_pipeline_destroy (sc_pipeline_t **self_p)
{
    assert (self_p);
    sc_pipeline_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->step_count; i++) {
        sc_step_def_t *step = &self->steps [i];
        free (step->name);
        free (step->service);
        for (size_t k = 0; k < step->needs_count; k++)
            free (step->needs [k]);
        free (step->needs);
        pr_kv_release (&step->params);
    }
    free (self->steps);
    pr_kv_release (&self->params);
    sc_cron_destroy (&self->schedule);
    free (self->schedule_text);
    free (self->timezone);
    free (self->description);
    free (self->name);
    free (self);
    *self_p = NULL;
}

const char *sc_pipeline_name (sc_pipeline_t *self) { return self->name; }
const char *sc_pipeline_description (sc_pipeline_t *self) { return self->description; }
sc_cron_t *sc_pipeline_schedule (sc_pipeline_t *self) { return self->schedule; }
double sc_pipeline_catchup (sc_pipeline_t *self) { return self->catchup; }
sc_overlap_t sc_pipeline_overlap (sc_pipeline_t *self) { return self->overlap; }
size_t sc_pipeline_step_count (sc_pipeline_t *self) { return self->step_count; }
const pr_kv_t *sc_pipeline_params (sc_pipeline_t *self) { return &self->params; }

const sc_step_def_t *
sc_pipeline_step (sc_pipeline_t *self, size_t index)
{
    assert (index < self->step_count);
    return &self->steps [index];
}

const char *
sc_overlap_name (sc_overlap_t overlap)
{
    return overlap == SC_OVERLAP_QUEUE ? "queue" : overlap == SC_OVERLAP_REPLACE ? "replace" : "skip";
}

int
sc_pipeline_run_params (sc_pipeline_t *self, char **given, size_t count, pr_kv_t *out,
                        char *err, size_t err_size)
{
    for (size_t i = 0; i < self->params.count; i++)
        pr_kv_set_str (out, self->params.entries [i].key, self->params.entries [i].s);
    for (size_t i = 0; i < count; i++) {
        const char *eq = strchr (given [i], '=');
        if (!eq || eq == given [i]) {
            s_err (err, err_size, "--param '%s' is not k=v", given [i]);
            return -1;
        }
        char *key = lb_xstrndup (given [i], (size_t) (eq - given [i]));
        if (!pr_kv_find (&self->params, key)) {
            char list [1024] = "";
            size_t used = 0;
            for (size_t k = 0; k < self->params.count && used < sizeof list; k++)
                used += (size_t) snprintf (list + used, sizeof list - used, "%s%s", k ? ", " : "",
                                           self->params.entries [k].key);
            s_err (err, err_size, "unknown --param '%s' (%s takes: %s)", key, self->name,
                   *list ? list : "no parameters");
            free (key);
            return -1;
        }
        pr_kv_set_str (out, key, eq + 1);
        free (key);
    }
    return 0;
}

char *
sc_pipeline_expand (const char *text, const pr_kv_t *params, char *err, size_t err_size)
{
    size_t cap = strlen (text) + 64, used = 0;
    char *out = lb_xmalloc (cap);
    const char *p = text;
    while (*p) {
        const char *piece = NULL;
        size_t piece_len = 0;
        if (p [0] == '$' && p [1] == '{') {
            const char *close = strchr (p + 2, '}');
            if (!close) {
                s_err (err, err_size, "'${' without a closing '}' in '%s'", text);
                free (out);
                return NULL;
            }
            char *name = lb_xstrndup (p + 2, (size_t) (close - p - 2));
            piece = pr_kv_str (params, name);
            if (!piece) {
                s_err (err, err_size, "${%s} is not a parameter of the pipeline ([params])", name);
                free (name);
                free (out);
                return NULL;
            }
            free (name);
            piece_len = strlen (piece);
            p = close + 1;
        }
        else {
            piece = p;
            piece_len = 1;
            p++;
        }
        if (used + piece_len + 1 > cap) {
            cap = (used + piece_len + 1) * 2;
            out = lb_xrealloc (out, cap);
        }
        memcpy (out + used, piece, piece_len);
        used += piece_len;
    }
    out [used] = 0;
    return out;
}

//  --------------------------------------------------------------------------
//  Selftest

static char *
s_write (const char *dir, const char *name, const char *text)
{
    char *path = lb_xasprintf ("%s/%s.conf", dir, name);
    FILE *file = fopen (path, "w");
    assert (file);
    fputs (text, file);
    fclose (file);
    return path;
}

void
sc_pipeline_test (bool verbose)
{
    char *dir = lb_selftest_tmpdir ("sc_pipeline");
    char err [1024];
    char *path = s_write (dir, "fan",
        "# a fan-out / fan-in pipeline\n"
        "[pipeline]\n"
        "description = test fan\n"
        "schedule = */5 * * * *   # every five minutes\n"
        "overlap = queue\n"
        "catchup = 10m\n"
        "[params]\n"
        "ms = 100\n"
        "word = hello\n"
        "[step.a]\n"
        "service = echo\n"
        "param.text = ${word} world\n"
        "[step.b1]\n"
        "service = sleep\n"
        "needs = a\n"
        "param.ms = ${ms}\n"
        "timeout = 1m\n"
        "attempts = 2\n"
        "[step.b2]\n"
        "service = sleep\n"
        "needs = a\n"
        "gpu = yes\n"
        "[step.b3]\n"
        "service = train\n"
        "needs = a\n"
        "ranks = 4\n"
        "[step.c]\n"
        "service = echo\n"
        "needs = b1, b2, b3\n");
    sc_pipeline_t *p = sc_pipeline_load (path, err, sizeof err);
    if (!p)
        printf ("%s\n", err);
    assert (p);
    assert (strcmp (sc_pipeline_name (p), "fan") == 0);
    assert (strcmp (sc_pipeline_description (p), "test fan") == 0);
    assert (sc_pipeline_schedule (p));
    assert (sc_pipeline_overlap (p) == SC_OVERLAP_QUEUE);
    assert (sc_pipeline_catchup (p) == 600);
    assert (sc_pipeline_step_count (p) == 5);
    const sc_step_def_t *c = sc_pipeline_step (p, 4);
    assert (strcmp (c->name, "c") == 0 && c->needs_count == 3);
    assert (c->ranks == 1 && !c->gpu);
    //  ranks > 1: a group of GPU jobs
    assert (sc_pipeline_step (p, 3)->ranks == 4 && sc_pipeline_step (p, 3)->gpu);
    assert (strcmp (c->needs [1], "b2") == 0);
    assert (sc_pipeline_step (p, 1)->timeout == 60 && sc_pipeline_step (p, 1)->attempts == 2);
    assert (sc_pipeline_step (p, 2)->gpu);
    char *given [] = { "ms=5" };
    pr_kv_t params = { 0 };
    assert (sc_pipeline_run_params (p, given, 1, &params, err, sizeof err) == 0);
    assert (strcmp (pr_kv_str (&params, "ms"), "5") == 0);
    char *text = sc_pipeline_expand (pr_kv_str (&sc_pipeline_step (p, 0)->params, "text"), &params, err, sizeof err);
    assert (text && strcmp (text, "hello world") == 0);
    free (text);
    char *bad_given [] = { "nope=1" };
    assert (sc_pipeline_run_params (p, bad_given, 1, &params, err, sizeof err) == -1);
    assert (strcmp (err, "unknown --param 'nope' (fan takes: ms, word)") == 0);
    char *no_eq [] = { "ms" };
    assert (sc_pipeline_run_params (p, no_eq, 1, &params, err, sizeof err) == -1);
    pr_kv_release (&params);
    sc_pipeline_destroy (&p);
    assert (!p);
    free (path);

    //  Found by name; unknown names list the known ones.
    p = sc_pipeline_find (dir, "fan", err, sizeof err);
    assert (p);
    sc_pipeline_destroy (&p);
    assert (!sc_pipeline_find (dir, "nightly", err, sizeof err));
    assert (strcmp (err, "unknown pipeline 'nightly' (known: fan)") == 0);

    //  Bad definitions: each error names the file, the line or the steps.
    static const struct { const char *text, *want; } bad [] = {
        { "[step.a]\nservice = x\nneeds = b\n", "step 'a' needs 'b', which is not a step of bad" },
        { "[step.a]\nservice = x\nneeds = c\n[step.b]\nservice = x\nneeds = a\n[step.c]\nservice = x\nneeds = b\n",
          "steps form a cycle: " },
        { "[step.a]\nservice = x\nneeds = a\n", "step 'a' needs itself" },
        { "[pipeline]\nschedule = 0 25 * * *\n[step.a]\nservice = x\n", "schedule '0 25 * * *': field 2 (hour): 25 is out of range 0-23" },
        { "[pipeline]\noverlap = sometimes\n", "bad.conf:2: overlap: 'sometimes' is not skip, queue or replace" },
        { "[step.a]\nneeds = \n", "bad.conf:2: needs: empty name" },
        { "[step.a]\nservice = x\ncolour = red\n", "bad.conf:3: unknown key 'colour'" },
        { "[step.a]\n", "[step.a] has no service" },
        { "[step.a]\nservice = x\n[step.a]\nservice = y\n", "bad.conf:3: step 'a' is defined twice" },
        { "[stages]\n", "bad.conf:1: unknown section [stages]" },
        { "[step.a]\nservice = x\nparam.n = ${missing}\n", "${missing} is not a parameter" },
        { "[pipeline]\ndescription = nothing\n", "no [step.NAME] sections" },
        { "[pipeline]\ntimezone = Nowhere/City\n[step.a]\nservice = x\n", "timezone: time zone 'Nowhere/City'" },
        { "service = x\n", "bad.conf:1: 'service' is outside any section" },
        { "[step.a]\nservice = x\nranks = 0\n", "bad.conf:3: ranks: '0' is not a number from 1 to 64" },
        { "[step.a]\nservice = x\nranks = 65\n", "ranks: '65' is not a number from 1 to 64" },
        { "[step.a]\nservice = x\nranks = four\n", "ranks: 'four'" },
        { "[step.a]\nservice = x\nparam.rank = 1\n", "bad.conf:3: param.rank: reserved" },
        { "[step.a]\nservice = x\nparam.nccl_id = 00\n", "param.nccl_id: reserved" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        path = s_write (dir, "bad", bad [i].text);
        p = sc_pipeline_load (path, err, sizeof err);
        if (verbose || p || !strstr (err, bad [i].want))
            printf ("  bad %zu: %s\n", i, err), fflush (stdout);
        assert (!p && strstr (err, bad [i].want));
        free (path);
    }
    //  The cycle's path is spelled out.
    path = s_write (dir, "bad", "[step.a]\nservice = x\nneeds = b\n[step.b]\nservice = x\nneeds = a\n");
    assert (!sc_pipeline_load (path, err, sizeof err));
    assert (strstr (err, "steps form a cycle: a -> b -> a (each needs the next)"));
    free (path);
    char **names = sc_pipeline_names (dir);
    assert (names && strcmp (names [0], "bad") == 0 && strcmp (names [1], "fan") == 0 && !names [2]);
    sc_pipeline_names_free (&names);
    assert (!sc_pipeline_names ("/nonexistent/dir"));
    lb_selftest_rmtree (dir);
    free (dir);
}
