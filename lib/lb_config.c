/*  lb_config.c - typed settings from defaults, an INI file (inih), the
    environment and the command line. */
#include "lb_config.h"
#include "lb_log.h"
#include "lb_mem.h"

#include <assert.h>
#include <ctype.h>
#include <errno.h>
#include <ini.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

typedef struct {
    char *text;             //  current value as given (NULL: unset)
    char *origin;
    union {
        int64_t i;
        double d;
        bool b;
    } v;
} s_value_t;

struct _lb_config_t {
    const lb_cfg_key_t *keys;
    size_t count;
    s_value_t *values;
};

static const char *s_type_names [] = { "string", "integer", "number", "boolean", "duration", "size" };

//  --------------------------------------------------------------------------
//  Value parsers

int
lb_config_parse_int (const char *text, int64_t *out)
{
    if (!text || !*text)
        return -1;
    char *end;
    errno = 0;
    long long n = strtoll (text, &end, 10);
    if (errno || end == text || *end)
        return -1;
    *out = n;
    return 0;
}

int
lb_config_parse_real (const char *text, double *out)
{
    if (!text || !*text)
        return -1;
    char *end;
    errno = 0;
    double d = strtod (text, &end);
    if (errno || end == text || *end || !isfinite (d))
        return -1;
    *out = d;
    return 0;
}

int
lb_config_parse_bool (const char *text, bool *out)
{
    static const char *yes [] = { "true", "yes", "on", "1" };
    static const char *no [] = { "false", "no", "off", "0" };
    if (!text)
        return -1;
    for (int i = 0; i < 4; i++) {
        if (strcasecmp (text, yes [i]) == 0) {
            *out = true;
            return 0;
        }
        if (strcasecmp (text, no [i]) == 0) {
            *out = false;
            return 0;
        }
    }
    return -1;
}

//  Splits "2.5s" into 2.5 and "s". Returns 0 or -1.
static int
s_number_unit (const char *text, double *number, const char **unit)
{
    if (!text || !*text)
        return -1;
    char *end;
    errno = 0;
    double d = strtod (text, &end);
    if (errno || end == text || !isfinite (d) || d < 0)
        return -1;
    while (*end == ' ')
        end++;
    *number = d;
    *unit = end;
    return 0;
}

int
lb_config_parse_seconds (const char *text, double *out)
{
    static const struct { const char *unit; double scale; } units [] = {
        { "", 1 }, { "s", 1 }, { "ms", 1e-3 }, { "us", 1e-6 }, { "m", 60 },
        { "min", 60 }, { "h", 3600 }, { "d", 86400 }
    };
    double number;
    const char *unit;
    if (s_number_unit (text, &number, &unit))
        return -1;
    for (size_t i = 0; i < sizeof units / sizeof units [0]; i++)
        if (strcmp (unit, units [i].unit) == 0) {
            *out = number * units [i].scale;
            return 0;
        }
    return -1;
}

int
lb_config_parse_bytes (const char *text, int64_t *out)
{
    static const struct { const char *unit; double scale; } units [] = {
        { "", 1 }, { "B", 1 },
        { "K", 1024.0 }, { "KB", 1024.0 }, { "KiB", 1024.0 },
        { "M", 1048576.0 }, { "MB", 1048576.0 }, { "MiB", 1048576.0 },
        { "G", 1073741824.0 }, { "GB", 1073741824.0 }, { "GiB", 1073741824.0 },
        { "T", 1099511627776.0 }, { "TB", 1099511627776.0 }, { "TiB", 1099511627776.0 }
    };
    double number;
    const char *unit;
    if (s_number_unit (text, &number, &unit))
        return -1;
    for (size_t i = 0; i < sizeof units / sizeof units [0]; i++)
        if (strcasecmp (unit, units [i].unit) == 0) {
            double bytes = number * units [i].scale;
            if (bytes > 9.0e18 || bytes != floor (bytes))
                return -1;
            *out = (int64_t) bytes;
            return 0;
        }
    return -1;
}

//  --------------------------------------------------------------------------
//  Object

static size_t
s_find (lb_config_t *self, const char *name)
{
    for (size_t i = 0; i < self->count; i++)
        if (strcmp (self->keys [i].name, name) == 0)
            return i;
    return SIZE_MAX;
}

//  Checks and stores text into slot i. Returns 0, or -1 with *why set to a
//  static description.
static int
s_assign (lb_config_t *self, size_t i, const char *text, const char *origin, const char **why)
{
    const lb_cfg_key_t *key = &self->keys [i];
    s_value_t parsed = { 0 };
    int rc = 0;
    double bound = 0;
    switch (key->type) {
        case LB_CFG_STRING:
            break;
        case LB_CFG_INT:
            rc = lb_config_parse_int (text, &parsed.v.i);
            bound = (double) parsed.v.i;
            break;
        case LB_CFG_REAL:
            rc = lb_config_parse_real (text, &parsed.v.d);
            bound = parsed.v.d;
            break;
        case LB_CFG_BOOL:
            rc = lb_config_parse_bool (text, &parsed.v.b);
            break;
        case LB_CFG_SECONDS:
            rc = lb_config_parse_seconds (text, &parsed.v.d);
            bound = parsed.v.d;
            break;
        case LB_CFG_BYTES:
            rc = lb_config_parse_bytes (text, &parsed.v.i);
            bound = (double) parsed.v.i;
            break;
    }
    if (rc) {
        *why = "bad format";
        return -1;
    }
    if (key->type != LB_CFG_STRING && key->type != LB_CFG_BOOL && key->min != key->max
        && (bound < key->min || bound > key->max)) {
        *why = "out of range";
        return -1;
    }
    s_value_t *slot = &self->values [i];
    free (slot->text);
    free (slot->origin);
    parsed.text = lb_xstrdup (text);
    parsed.origin = lb_xstrdup (origin);
    *slot = parsed;
    return 0;
}

//  Logs one bad value, never echoing a secret.
static void
s_complain (const lb_cfg_key_t *key, const char *where, const char *text, const char *why)
{
    char range [96] = "";
    if (strcmp (why, "out of range") == 0)
        snprintf (range, sizeof range, " (allowed %g to %g)", key->min, key->max);
    lb_log_error ("%s: %s: '%s' is not a valid %s: %s%s", where, key->name,
                  (key->flags & LB_CFG_SECRET) ? "(secret)" : text, s_type_names [key->type],
                  why, range);
}

lb_config_t *
lb_config_new (const lb_cfg_key_t *keys, size_t count)
{
    if (!keys)
        keys = lb_confkeys (&count);
    lb_config_t *self = lb_xcalloc (1, sizeof *self);
    self->keys = keys;
    self->count = count;
    self->values = lb_xcalloc (count ? count : 1, sizeof *self->values);
    for (size_t i = 0; i < count; i++) {
        assert (strchr (keys [i].name, '.'));
        if (keys [i].value) {
            const char *why = NULL;
            int rc = s_assign (self, i, keys [i].value, "default", &why);
            assert (rc == 0);
            (void) rc;
        }
    }
    return self;
}

void
lb_config_destroy (lb_config_t **self_p)
{
    assert (self_p);
    lb_config_t *self = *self_p;
    if (!self)
        return;
    for (size_t i = 0; i < self->count; i++) {
        free (self->values [i].text);
        free (self->values [i].origin);
    }
    free (self->values);
    free (self);
    *self_p = NULL;
}

int
lb_config_set (lb_config_t *self, const char *name, const char *value, const char *origin)
{
    assert (self && name && value && origin);
    size_t i = s_find (self, name);
    if (i == SIZE_MAX) {
        lb_log_error ("%s: unknown setting '%s'", origin, name);
        return -1;
    }
    const char *why;
    if (s_assign (self, i, value, origin, &why)) {
        s_complain (&self->keys [i], origin, value, why);
        return -1;
    }
    return 0;
}

//  --------------------------------------------------------------------------
//  The INI file, through inih, with line numbers kept by our reader

typedef struct {
    lb_config_t *config;
    FILE *file;
    const char *path;
    int line;
    int long_line;          //  first line longer than inih takes, or 0
    int errors;
} s_parse_t;

static char *
s_reader (char *str, int num, void *stream)
{
    s_parse_t *parse = stream;
    char *got = fgets (str, num, parse->file);
    if (!got)
        return NULL;
    size_t len = strlen (got);
    if (len && got [len - 1] == '\n')
        parse->line++;
    else
    if (!feof (parse->file)) {
        //  inih would split this line into pieces: refuse it instead.
        if (!parse->long_line)
            parse->long_line = parse->line + 1;
        int c;
        while ((c = fgetc (parse->file)) != EOF && c != '\n')
            ;
        parse->line++;
        got [0] = '\n';
        got [1] = 0;
    }
    else
        parse->line++;
    return got;
}

static int
s_handler (void *user, const char *section, const char *name, const char *value)
{
    s_parse_t *parse = user;
    lb_config_t *self = parse->config;
    char where [512];
    snprintf (where, sizeof where, "%s:%d", parse->path, parse->line);
    char full [256];
    snprintf (full, sizeof full, "%s.%s", section, name);
    if (!*section) {
        lb_log_error ("%s: '%s' is outside any [section]", where, name);
        parse->errors++;
        return 1;
    }
    size_t i = s_find (self, full);
    if (i == SIZE_MAX) {
        lb_log_error ("%s: unknown key '%s' in section [%s]", where, name, section);
        parse->errors++;
        return 1;
    }
    const char *why;
    if (s_assign (self, i, value, where, &why)) {
        s_complain (&self->keys [i], where, value, why);
        parse->errors++;
    }
    return 1;
}

int
lb_config_load_file (lb_config_t *self, const char *path)
{
    assert (self && path);
    s_parse_t parse = { self, fopen (path, "r"), path, 0, 0, 0 };
    if (!parse.file) {
        lb_log_error ("%s: cannot read configuration: %s", path, strerror (errno));
        return -1;
    }
    int rc = ini_parse_stream (s_reader, &parse, s_handler, &parse);
    fclose (parse.file);
    if (parse.long_line) {
        lb_log_error ("%s:%d: line longer than %d characters", path, parse.long_line,
                      INI_MAX_LINE - 1);
        parse.errors++;
    }
    if (rc > 0 && rc != parse.long_line) {
        lb_log_error ("%s:%d: syntax error: expected [section] or key = value", path, rc);
        parse.errors++;
    }
    return parse.errors ? -1 : 0;
}

//  --------------------------------------------------------------------------
//  Environment

//  Writes PREDICTORS_<SECTION>_<KEY> for name into buf.
static void
s_env_name (const char *name, char *buf, size_t size)
{
    int len = snprintf (buf, size, "PREDICTORS_%s", name);
    for (int i = 0; i < len && (size_t) i < size; i++)
        buf [i] = (buf [i] == '.' || buf [i] == '-') ? '_' : (char) toupper ((unsigned char) buf [i]);
}

static const char *
s_lookup (char **envp, const char *name)
{
    size_t len = strlen (name);
    for (char **entry = envp; *entry; entry++)
        if (strncmp (*entry, name, len) == 0 && (*entry) [len] == '=')
            return *entry + len + 1;
    return NULL;
}

int
lb_config_load_env (lb_config_t *self, char **envp)
{
    assert (self);
    if (!envp)
        envp = environ;
    int errors = 0;
    for (size_t i = 0; i < self->count; i++) {
        const lb_cfg_key_t *key = &self->keys [i];
        char name [128];
        s_env_name (key->name, name, sizeof name);
        //  The PREDICTORS_ name wins over the conventional one.
        const char *value = s_lookup (envp, name);
        const char *used = name;
        if (!value && key->env) {
            value = s_lookup (envp, key->env);
            used = key->env;
        }
        if (!value)
            continue;
        char origin [160];
        snprintf (origin, sizeof origin, "environment %s", used);
        const char *why;
        if (s_assign (self, i, value, origin, &why)) {
            s_complain (key, origin, value, why);
            errors++;
        }
    }
    return errors ? -1 : 0;
}

lb_config_t *
lb_config_load (const char *path)
{
    lb_config_t *self = lb_config_new (NULL, 0);
    int rc = 0;
    if (!path)
        path = getenv ("PREDICTORS_CONFIG");
    if (path && *path)
        rc |= lb_config_load_file (self, path);
    rc |= lb_config_load_env (self, NULL);
    if (rc)
        lb_config_destroy (&self);
    return self;
}

//  --------------------------------------------------------------------------
//  Getters

static s_value_t *
s_get (lb_config_t *self, const char *name, lb_cfg_type_t type)
{
    assert (self && name);
    size_t i = s_find (self, name);
    assert (i != SIZE_MAX);
    assert (self->keys [i].type == type);
    return &self->values [i];
}

const char *
lb_config_str (lb_config_t *self, const char *name)
{
    s_value_t *value = s_get (self, name, LB_CFG_STRING);
    return value->text;
}

int64_t
lb_config_int (lb_config_t *self, const char *name)
{
    return s_get (self, name, LB_CFG_INT)->v.i;
}

double
lb_config_real (lb_config_t *self, const char *name)
{
    return s_get (self, name, LB_CFG_REAL)->v.d;
}

bool
lb_config_bool (lb_config_t *self, const char *name)
{
    return s_get (self, name, LB_CFG_BOOL)->v.b;
}

double
lb_config_seconds (lb_config_t *self, const char *name)
{
    return s_get (self, name, LB_CFG_SECONDS)->v.d;
}

int64_t
lb_config_bytes (lb_config_t *self, const char *name)
{
    return s_get (self, name, LB_CFG_BYTES)->v.i;
}

const char *
lb_config_origin (lb_config_t *self, const char *name)
{
    assert (self && name);
    size_t i = s_find (self, name);
    assert (i != SIZE_MAX);
    return self->values [i].origin ? self->values [i].origin : "unset";
}

void
lb_config_print (lb_config_t *self, FILE *out)
{
    assert (self && out);
    const char *section = NULL;
    size_t section_len = 0;
    for (size_t i = 0; i < self->count; i++) {
        const lb_cfg_key_t *key = &self->keys [i];
        const char *dot = strchr (key->name, '.');
        size_t len = (size_t) (dot - key->name);
        if (!section || len != section_len || strncmp (section, key->name, len)) {
            fprintf (out, "%s[%.*s]\n", section ? "\n" : "", (int) len, key->name);
            section = key->name;
            section_len = len;
        }
        s_value_t *value = &self->values [i];
        fprintf (out, "# %s (%s, from %s)\n", key->help, s_type_names [key->type],
                 value->origin ? value->origin : "unset");
        if (!value->text)
            fprintf (out, "# %s =\n", dot + 1);
        else
            fprintf (out, "%s = %s\n", dot + 1, (key->flags & LB_CFG_SECRET) ? "(set)" : value->text);
    }
}

//  --------------------------------------------------------------------------
//  Selftest

#include <stdio.h>

static const lb_cfg_key_t s_test_keys [] = {
    { "net.bind", LB_CFG_STRING, "tcp://127.0.0.1:5555", "TEST_BIND", 0, 0, 0, "where to listen" },
    { "net.liveness", LB_CFG_INT, "3", NULL, 1, 100, 0, "heartbeats missed" },
    { "net.heartbeat", LB_CFG_SECONDS, "2.5s", NULL, 0.001, 3600, 0, "interval" },
    { "net.secure", LB_CFG_BOOL, "false", NULL, 0, 0, 0, "curve" },
    { "disk.cap", LB_CFG_BYTES, "1GB", NULL, 0, 0, 0, "size cap" },
    { "disk.ratio", LB_CFG_REAL, "0.5", NULL, 0, 1, 0, "a ratio" },
    { "llm.key", LB_CFG_STRING, NULL, "TEST_KEY", 0, 0, LB_CFG_SECRET, "api key" },
};

//  Captures the log into a pipe until s_capture_end, which returns what was
//  logged (caller frees).
static void
s_capture_begin (int fds [2])
{
    int rc = pipe (fds);
    assert (rc == 0);
    (void) rc;
}

static char *
s_capture_end (int fds [2], int old_fd)
{
    lb_log_setup_fd (old_fd);
    close (fds [1]);
    char *buf = lb_xcalloc (1, 8192);
    ssize_t got = 0, n;
    while ((n = read (fds [0], buf + got, 8191 - (size_t) got)) > 0)
        got += n;
    close (fds [0]);
    return buf;
}

static char *
s_write_temp (const char *text)
{
    char *path = lb_xstrdup ("/tmp/lb_config_test_XXXXXX");
    int fd = mkstemp (path);
    assert (fd >= 0);
    assert (write (fd, text, strlen (text)) == (ssize_t) strlen (text));
    close (fd);
    return path;
}

void
lb_config_test (bool verbose)
{
    int64_t i;
    double d;
    bool b;
    assert (lb_config_parse_int ("-42", &i) == 0 && i == -42);
    assert (lb_config_parse_int ("4x", &i) == -1 && i == -42);
    assert (lb_config_parse_int ("", &i) == -1);
    assert (lb_config_parse_int ("99999999999999999999", &i) == -1);
    assert (lb_config_parse_real ("0.25", &d) == 0 && d == 0.25);
    assert (lb_config_parse_real ("nan", &d) == -1);
    assert (lb_config_parse_bool ("Yes", &b) == 0 && b);
    assert (lb_config_parse_bool ("off", &b) == 0 && !b);
    assert (lb_config_parse_bool ("maybe", &b) == -1);
    assert (lb_config_parse_seconds ("250ms", &d) == 0 && fabs (d - 0.25) < 1e-12);
    assert (lb_config_parse_seconds ("4h", &d) == 0 && d == 14400);
    assert (lb_config_parse_seconds ("3", &d) == 0 && d == 3);
    assert (lb_config_parse_seconds ("3 weeks", &d) == -1);
    assert (lb_config_parse_seconds ("-1s", &d) == -1);
    assert (lb_config_parse_bytes ("200MB", &i) == 0 && i == 200 * 1048576LL);
    assert (lb_config_parse_bytes ("1.5KiB", &i) == 0 && i == 1536);
    assert (lb_config_parse_bytes ("1.3", &i) == -1);
    assert (lb_config_parse_bytes ("7 parsecs", &i) == -1);

    size_t nkeys = sizeof s_test_keys / sizeof s_test_keys [0];
    lb_config_t *config = lb_config_new (s_test_keys, nkeys);
    assert (strcmp (lb_config_str (config, "net.bind"), "tcp://127.0.0.1:5555") == 0);
    assert (lb_config_int (config, "net.liveness") == 3);
    assert (lb_config_seconds (config, "net.heartbeat") == 2.5);
    assert (lb_config_bytes (config, "disk.cap") == 1073741824LL);
    assert (lb_config_str (config, "llm.key") == NULL);
    assert (strcmp (lb_config_origin (config, "net.bind"), "default") == 0);

    //  A good file
    char *path = s_write_temp ("; comment\n[net]\nbind = tcp://*:6000\nliveness = 5\n\n[disk]\nratio=0.75 ; inline\n");
    assert (lb_config_load_file (config, path) == 0);
    assert (strcmp (lb_config_str (config, "net.bind"), "tcp://*:6000") == 0);
    assert (lb_config_int (config, "net.liveness") == 5);
    assert (lb_config_real (config, "disk.ratio") == 0.75);
    char expect [256];
    snprintf (expect, sizeof expect, "%s:3", path);
    assert (strcmp (lb_config_origin (config, "net.bind"), expect) == 0);
    unlink (path);
    free (path);

    //  A bad file: every bad line reported with its line; good lines kept.
    path = s_write_temp ("[net]\nliveness = many\nsecure = true\nbogus = 1\nheartbeat = 2 fortnights\n"
                         "this line has no equals sign\n[disk]\nratio = 7\n");
    int fds [2];
    s_capture_begin (fds);
    int old_fd = lb_log_setup_fd (fds [1]);
    assert (lb_config_load_file (config, path) == -1);
    char *log = s_capture_end (fds, old_fd);
    if (verbose)
        fputs (log, stderr);
    snprintf (expect, sizeof expect, "%s:2: net.liveness: 'many' is not a valid integer", path);
    assert (strstr (log, expect));
    snprintf (expect, sizeof expect, "%s:4: unknown key 'bogus' in section [net]", path);
    assert (strstr (log, expect));
    snprintf (expect, sizeof expect, "%s:5: net.heartbeat: '2 fortnights' is not a valid duration", path);
    assert (strstr (log, expect));
    snprintf (expect, sizeof expect, "%s:6: syntax error", path);
    assert (strstr (log, expect));
    snprintf (expect, sizeof expect, "%s:8: disk.ratio: '7' is not a valid number: out of range", path);
    assert (strstr (log, expect));
    free (log);
    assert (lb_config_int (config, "net.liveness") == 5);        //  unchanged
    assert (lb_config_bool (config, "net.secure") == true);      //  good line kept
    unlink (path);
    free (path);

    //  A line too long for inih is refused, not split.
    char long_text [400];
    snprintf (long_text, sizeof long_text, "[net]\nbind = %0300d\n", 7);
    path = s_write_temp (long_text);
    s_capture_begin (fds);
    old_fd = lb_log_setup_fd (fds [1]);
    assert (lb_config_load_file (config, path) == -1);
    log = s_capture_end (fds, old_fd);
    snprintf (expect, sizeof expect, "%s:2: line longer than", path);
    assert (strstr (log, expect));
    free (log);
    unlink (path);
    free (path);

    //  A missing file
    s_capture_begin (fds);
    old_fd = lb_log_setup_fd (fds [1]);
    assert (lb_config_load_file (config, "/nonexistent/predictors.conf") == -1);
    log = s_capture_end (fds, old_fd);
    assert (strstr (log, "/nonexistent/predictors.conf: cannot read configuration"));
    free (log);

    //  Environment: PREDICTORS_* and the conventional name; secrets never echoed.
    char *envp [] = { "TEST_BIND=tcp://10.0.0.1:1", "PREDICTORS_NET_LIVENESS=9",
                      "TEST_KEY=sk-secret", "PREDICTORS_DISK_CAP=lots", NULL };
    s_capture_begin (fds);
    old_fd = lb_log_setup_fd (fds [1]);
    assert (lb_config_load_env (config, envp) == -1);
    log = s_capture_end (fds, old_fd);
    assert (strstr (log, "environment PREDICTORS_DISK_CAP: disk.cap: 'lots' is not a valid size"));
    free (log);
    assert (strcmp (lb_config_str (config, "net.bind"), "tcp://10.0.0.1:1") == 0);
    assert (strcmp (lb_config_origin (config, "net.bind"), "environment TEST_BIND") == 0);
    assert (lb_config_int (config, "net.liveness") == 9);
    assert (strcmp (lb_config_str (config, "llm.key"), "sk-secret") == 0);

    //  Command line
    assert (lb_config_set (config, "net.bind", "tcp://127.0.0.1:7", "--bind") == 0);
    assert (strcmp (lb_config_origin (config, "net.bind"), "--bind") == 0);
    s_capture_begin (fds);
    old_fd = lb_log_setup_fd (fds [1]);
    assert (lb_config_set (config, "net.nope", "1", "--nope") == -1);
    assert (lb_config_set (config, "net.liveness", "0", "--liveness") == -1);
    log = s_capture_end (fds, old_fd);
    assert (strstr (log, "--nope: unknown setting 'net.nope'"));
    assert (strstr (log, "out of range (allowed 1 to 100)"));
    free (log);

    //  Printing masks the secret.
    char *text = NULL;
    size_t len = 0;
    FILE *mem = open_memstream (&text, &len);
    lb_config_print (config, mem);
    fclose (mem);
    assert (strstr (text, "[net]\n"));
    assert (strstr (text, "key = (set)"));
    assert (!strstr (text, "sk-secret"));
    free (text);
    lb_config_destroy (&config);
    assert (config == NULL);
    lb_config_destroy (&config);

    //  The real table's defaults all parse.
    config = lb_config_new (NULL, 0);
    lb_config_destroy (&config);
}
