/*  lb_curve.c - CURVE client keys: load, check, apply (lb_curve.h). */
#include "lb_curve.h"
#include "lb_mem.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct _lb_curve_t {
    zcert_t *cert;                  //  ours, with the secret key
    char server [41];               //  the broker's public key, Z85
};

static void s_err (char *err, size_t size, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));
static void
s_err (char *err, size_t size, const char *fmt, ...)
{
    if (!err || !size)
        return;
    va_list args;
    va_start (args, fmt);
    vsnprintf (err, size, fmt, args);
    va_end (args);
}

//  A readable regular file, else -1 with the reason.
static int
s_readable (const char *path, const char *name, char *err, size_t size)
{
    struct stat st;
    if (stat (path, &st)) {
        s_err (err, size, "%s=%s: %s", name, path, errno == ENOENT ? "no such file" : strerror (errno));
        return -1;
    }
    if (!S_ISREG (st.st_mode)) {
        s_err (err, size, "%s=%s: not a regular file", name, path);
        return -1;
    }
    int fd = open (path, O_RDONLY);
    if (fd < 0) {
        s_err (err, size, "%s=%s: cannot read: %s", name, path, strerror (errno));
        return -1;
    }
    close (fd);
    return 0;
}

//  Whether the file looks like a certificate (ZPL with a curve/public-key),
//  checked before czmq's parser, which logs its own lines on anything else.
static bool
s_looks_like_cert (const char *path)
{
    FILE *f = fopen (path, "rb");
    if (!f)
        return false;
    char buf [65536];
    size_t n = fread (buf, 1, sizeof buf - 1, f);
    bool whole = feof (f);
    fclose (f);
    buf [n] = 0;
    return whole && strlen (buf) == n && strstr (buf, "curve") && strstr (buf, "public-key");
}

static bool
s_zero (const byte *key)
{
    for (int i = 0; i < 32; i++)
        if (key [i])
            return false;
    return true;
}

lb_curve_t *
lb_curve_load (const char *secret_path, const char *server_path,
               const char *secret_name, const char *server_name, char *err, size_t err_size)
{
    assert (secret_path && server_path && secret_name && server_name);
    //  zcert_load (P) reads P_secret when it exists, else P: check that file.
    char *twin = lb_xasprintf ("%s_secret", secret_path);
    const char *holder = access (twin, F_OK) == 0 ? twin : secret_path;
    struct stat st;
    lb_curve_t *self = NULL;
    if (s_readable (holder, secret_name, err, err_size) || s_readable (server_path, server_name, err, err_size))
        goto done;
    if (stat (holder, &st) == 0 && (st.st_mode & 077)) {
        s_err (err, err_size, "%s=%s: mode %03o lets others read this secret key; it must be 0600 (chmod 600 %s)",
               secret_name, holder, (unsigned) (st.st_mode & 0777), holder);
        goto done;
    }
    zcert_t *cert = s_looks_like_cert (holder) ? zcert_load (secret_path) : NULL;
    if (!cert) {
        s_err (err, err_size, "%s=%s: not a CURVE certificate (write one with `broker --keygen`)", secret_name, holder);
        goto done;
    }
    if (s_zero (zcert_secret_key (cert))) {
        s_err (err, err_size, "%s=%s: no secret key in it (give the NAME_secret file `broker --keygen` wrote)",
               secret_name, holder);
        zcert_destroy (&cert);
        goto done;
    }
    zcert_t *server = s_looks_like_cert (server_path) ? zcert_load (server_path) : NULL;
    if (!server || s_zero (zcert_public_key (server))) {
        s_err (err, err_size, "%s=%s: not a CURVE certificate (give the broker's public certificate)",
               server_name, server_path);
        zcert_destroy (&server);
        zcert_destroy (&cert);
        goto done;
    }
    self = lb_xcalloc (1, sizeof *self);
    self->cert = cert;
    snprintf (self->server, sizeof self->server, "%s", zcert_public_txt (server));
    zcert_destroy (&server);
done:
    free (twin);
    return self;
}

int
lb_curve_from_config (lb_config_t *config, const char *section, lb_curve_t **curve_p, char *err, size_t err_size)
{
    assert (config && section && curve_p);
    *curve_p = NULL;
    char secret_name [96], server_name [96];
    snprintf (secret_name, sizeof secret_name, "%s.curve_secret", section);
    snprintf (server_name, sizeof server_name, "%s.curve_server", section);
    const char *secret = lb_config_str (config, secret_name);
    const char *server = lb_config_str (config, server_name);
    bool has_secret = secret && *secret, has_server = server && *server;
    if (!has_secret && !has_server)
        return 0;
    if (!has_secret || !has_server) {
        s_err (err, err_size, "%s is set but %s is not: CURVE needs both", has_secret ? secret_name : server_name,
               has_secret ? server_name : secret_name);
        return -1;
    }
    *curve_p = lb_curve_load (secret, server, secret_name, server_name, err, err_size);
    return *curve_p ? 0 : -1;
}

lb_curve_t *
lb_curve_dup (const lb_curve_t *self)
{
    assert (self);
    lb_curve_t *copy = lb_xcalloc (1, sizeof *copy);
    copy->cert = zcert_dup ((zcert_t *) self->cert);
    assert (copy->cert);
    memcpy (copy->server, self->server, sizeof copy->server);
    return copy;
}

void
lb_curve_destroy (lb_curve_t **self_p)
{
    assert (self_p);
    lb_curve_t *self = *self_p;
    if (!self)
        return;
    zcert_destroy (&self->cert);
    free (self);
    *self_p = NULL;
}

void
lb_curve_apply (const lb_curve_t *self, zsock_t *sock)
{
    assert (self && sock);
    zcert_apply (self->cert, sock);
    zsock_set_curve_serverkey (sock, self->server);
}

const char *
lb_curve_public (const lb_curve_t *self)
{
    assert (self);
    return zcert_public_txt (self->cert);
}

//  --------------------------------------------------------------------------
//  Selftest

static char *
s_write (const char *dir, const char *name, const char *text, mode_t mode)
{
    char *path = lb_xasprintf ("%s/%s", dir, name);
    FILE *f = fopen (path, "w");
    assert (f);
    fputs (text, f);
    fclose (f);
    chmod (path, mode);
    return path;
}

static void
s_expect_error (const char *secret, const char *server, const char *want, bool verbose)
{
    char err [512] = "";
    lb_curve_t *curve = lb_curve_load (secret, server, "worker.curve_secret", "worker.curve_server", err, sizeof err);
    if (verbose || !strstr (err, want))
        fprintf (stderr, "\n  %s (want: %s)\n", err, want);
    assert (!curve);
    assert (strstr (err, want));
}

void
lb_curve_test (bool verbose)
{
    printf (" * lb_curve: ");
    char dir [] = "/tmp/lb_curve_test.XXXXXX";
    assert (mkdtemp (dir));

    //  Certificates as `broker --keygen` writes them.
    zcert_t *client = zcert_new ();
    zcert_t *broker = zcert_new ();
    char *client_path = lb_xasprintf ("%s/client", dir);
    char *broker_path = lb_xasprintf ("%s/broker", dir);
    char *client_secret = lb_xasprintf ("%s_secret", client_path);
    assert (zcert_save (client, client_path) == 0);
    assert (zcert_save_public (broker, broker_path) == 0);
    chmod (client_secret, 0600);

    char err [512] = "";
    //  The base name and the _secret file both work.
    lb_curve_t *curve = lb_curve_load (client_path, broker_path, "a", "b", err, sizeof err);
    assert (curve);
    assert (streq (lb_curve_public (curve), zcert_public_txt (client)));
    assert (streq (curve->server, zcert_public_txt (broker)));
    lb_curve_t *copy = lb_curve_dup (curve);
    lb_curve_destroy (&curve);
    assert (!curve);
    curve = lb_curve_load (client_secret, broker_path, "a", "b", err, sizeof err);
    assert (curve);
    lb_curve_destroy (&curve);

    //  Applied to a socket: a CURVE client with our keys and the server's.
    zsock_t *sock = zsock_new (ZMQ_DEALER);
    lb_curve_apply (copy, sock);
    assert (zsock_mechanism (sock) == ZMQ_CURVE);
    char *key = zsock_curve_serverkey (sock);
    assert (streq (key, zcert_public_txt (broker)));
    zstr_free (&key);
    zsock_destroy (&sock);
    lb_curve_destroy (&copy);

    //  Bad inputs, each with its reason.
    char *missing = lb_xasprintf ("%s/nope", dir);
    s_expect_error (missing, broker_path, "worker.curve_secret=", verbose);
    s_expect_error (missing, broker_path, ": no such file", verbose);
    s_expect_error (client_path, missing, "worker.curve_server=", verbose);
    s_expect_error (client_path, dir, "not a regular file", verbose);
    chmod (client_secret, 0644);
    s_expect_error (client_path, broker_path, "mode 644 lets others read this secret key; it must be 0600", verbose);
    chmod (client_secret, 0600);
    if (geteuid () != 0) {      //  root reads anything
        chmod (broker_path, 0);
        s_expect_error (client_path, broker_path, "cannot read: Permission denied", verbose);
        chmod (broker_path, 0644);
    }
    char *junk = s_write (dir, "junk", "this is not a certificate\n", 0600);
    s_expect_error (junk, broker_path, "not a CURVE certificate", verbose);
    s_expect_error (client_path, junk, "worker.curve_server=", verbose);
    //  A public certificate given as the secret one.
    chmod (broker_path, 0600);
    s_expect_error (broker_path, broker_path, "no secret key in it", verbose);

    //  From the configuration: unset, half set, set.
    lb_config_t *config = lb_config_new (NULL, 0);
    assert (lb_curve_from_config (config, "worker", &curve, err, sizeof err) == 0 && !curve);
    assert (lb_config_set (config, "worker.curve_secret", client_path, "test") == 0);
    assert (lb_curve_from_config (config, "worker", &curve, err, sizeof err) == -1 && !curve);
    assert (streq (err, "worker.curve_secret is set but worker.curve_server is not: CURVE needs both"));
    assert (lb_config_set (config, "worker.curve_server", broker_path, "test") == 0);
    assert (lb_curve_from_config (config, "worker", &curve, err, sizeof err) == 0 && curve);
    lb_curve_destroy (&curve);
    assert (lb_config_set (config, "scheduler.curve_server", broker_path, "test") == 0);
    assert (lb_curve_from_config (config, "scheduler", &curve, err, sizeof err) == -1);
    assert (streq (err, "scheduler.curve_server is set but scheduler.curve_secret is not: CURVE needs both"));
    lb_config_destroy (&config);
    printf ("OK\n");
    zcert_destroy (&client);
    zcert_destroy (&broker);
    free (client_path);
    free (broker_path);
    free (client_secret);
    free (missing);
    free (junk);
    zsys_dir_delete ("%s", dir);
}
