/*  lb_artifact.c - content-addressed artifact store on a directory. */
#include "lb_artifact.h"
#include "lb_log.h"
#include "lb_mem.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

struct _lb_artifact_t {
    char *root;
    unsigned tmp_counter;
};

static int
s_mkdir_p (const char *path)
{
    char *copy = lb_xstrdup (path);
    int rc = 0;
    for (char *p = copy + 1; ; p++) {
        if (*p == '/' || *p == 0) {
            char saved = *p;
            *p = 0;
            if (mkdir (copy, 0755) == -1 && errno != EEXIST) {
                rc = -1;
                break;
            }
            *p = saved;
            if (!saved)
                break;
        }
    }
    free (copy);
    return rc;
}

lb_artifact_t *
lb_artifact_new (const char *root)
{
    assert (root);
    if (sodium_init () < 0) {
        lb_log_error ("libsodium failed to initialise");
        return NULL;
    }
    char *absolute = root [0] == '/' ? lb_xstrdup (root) : NULL;
    if (!absolute) {
        char cwd [PATH_MAX];
        if (!getcwd (cwd, sizeof cwd)) {
            lb_log_error ("artifact store: cannot read the working directory: %s", strerror (errno));
            return NULL;
        }
        absolute = lb_xasprintf ("%s/%s", cwd, root);
    }
    char *tmp = lb_xasprintf ("%s/tmp", absolute);
    char *objects = lb_xasprintf ("%s/sha256", absolute);
    int rc = s_mkdir_p (tmp) || s_mkdir_p (objects);
    if (rc)
        lb_log_error ("artifact store root=%s: cannot create: %s", absolute, strerror (errno));
    free (tmp);
    free (objects);
    if (rc) {
        free (absolute);
        return NULL;
    }
    lb_artifact_t *self = lb_xcalloc (1, sizeof *self);
    self->root = absolute;
    return self;
}

void
lb_artifact_destroy (lb_artifact_t **self_p)
{
    assert (self_p);
    lb_artifact_t *self = *self_p;
    if (!self)
        return;
    free (self->root);
    free (self);
    *self_p = NULL;
}

const char *
lb_artifact_root (lb_artifact_t *self)
{
    assert (self);
    return self->root;
}

char *
lb_artifact_tmp_path (lb_artifact_t *self)
{
    assert (self);
    unsigned char noise [8];
    randombytes_buf (noise, sizeof noise);
    char hex [17];
    sodium_bin2hex (hex, sizeof hex, noise, sizeof noise);
    return lb_xasprintf ("%s/tmp/%d-%u-%s", self->root, (int) getpid (), self->tmp_counter++, hex);
}

static void
s_hex (const unsigned char digest [crypto_hash_sha256_BYTES], char hex [65])
{
    sodium_bin2hex (hex, 65, digest, crypto_hash_sha256_BYTES);
}

void
lb_artifact_sha256 (const void *data, size_t size, char hex [65])
{
    unsigned char digest [crypto_hash_sha256_BYTES];
    crypto_hash_sha256 (digest, data, size);
    s_hex (digest, hex);
}

int
lb_artifact_sha256_file (const char *path, char hex [65])
{
    int fd = open (path, O_RDONLY | O_CLOEXEC);
    if (fd == -1) {
        lb_log_error ("artifact %s: cannot open: %s", path, strerror (errno));
        return -1;
    }
    crypto_hash_sha256_state state;
    crypto_hash_sha256_init (&state);
    size_t chunk = 1 << 20;
    unsigned char *buf = lb_xmalloc (chunk);
    ssize_t got;
    while ((got = read (fd, buf, chunk)) > 0)
        crypto_hash_sha256_update (&state, buf, (unsigned long long) got);
    int saved = errno;
    free (buf);
    close (fd);
    if (got < 0) {
        lb_log_error ("artifact %s: read failed: %s", path, strerror (saved));
        return -1;
    }
    unsigned char digest [crypto_hash_sha256_BYTES];
    crypto_hash_sha256_final (&state, digest);
    s_hex (digest, hex);
    return 0;
}

static char *
s_object_path (lb_artifact_t *self, const char *hex)
{
    return lb_xasprintf ("%s/sha256/%.2s/%s", self->root, hex, hex);
}

static int
s_fsync_dir (const char *path)
{
    char *dir = lb_xstrdup (path);
    char *slash = strrchr (dir, '/');
    if (slash)
        *slash = 0;
    int fd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int rc = fd >= 0 ? fsync (fd) : -1;
    if (fd >= 0)
        close (fd);
    free (dir);
    return rc;
}

//  Moves tmp (already fsync'd) to the object path of hex. Returns 0 or -1.
static int
s_commit (lb_artifact_t *self, const char *tmp, const char *hex, char **uri)
{
    char *path = s_object_path (self, hex);
    char *dir = lb_xasprintf ("%s/sha256/%.2s", self->root, hex);
    int rc = 0;
    if (mkdir (dir, 0755) == -1 && errno != EEXIST) {
        lb_log_error ("artifact store: cannot create %s: %s", dir, strerror (errno));
        rc = -1;
    }
    else
    if (access (path, F_OK) == 0)
        unlink (tmp);       //  same bytes already stored
    else
    if (rename (tmp, path) == -1 || s_fsync_dir (path) == -1) {
        lb_log_error ("artifact store: cannot move %s into place: %s", tmp, strerror (errno));
        rc = -1;
    }
    if (rc == 0)
        *uri = lb_xasprintf ("file://%s", path);
    free (dir);
    free (path);
    return rc;
}

static int
s_write_all (int fd, const void *data, size_t size)
{
    const uint8_t *at = data;
    while (size) {
        ssize_t put = write (fd, at, size);
        if (put < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        at += put;
        size -= (size_t) put;
    }
    return 0;
}

int
lb_artifact_put (lb_artifact_t *self, const void *data, size_t size, char **uri)
{
    assert (self && (data || size == 0) && uri);
    char hex [65];
    lb_artifact_sha256 (data, size, hex);
    char *tmp = lb_artifact_tmp_path (self);
    int fd = open (tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    int rc = -1;
    if (fd == -1)
        lb_log_error ("artifact store: cannot create %s: %s", tmp, strerror (errno));
    else
    if (s_write_all (fd, data, size) || fsync (fd)) {
        lb_log_error ("artifact store: cannot write %s: %s", tmp, strerror (errno));
        close (fd);
        unlink (tmp);
    }
    else {
        close (fd);
        rc = s_commit (self, tmp, hex, uri);
        if (rc)
            unlink (tmp);
    }
    free (tmp);
    return rc;
}

int
lb_artifact_put_file (lb_artifact_t *self, const char *path, bool move, char **uri)
{
    assert (self && path && uri);
    char hex [65];
    if (lb_artifact_sha256_file (path, hex))
        return -1;
    if (move) {
        //  It must be durable before it is named.
        int fd = open (path, O_RDONLY | O_CLOEXEC);
        if (fd == -1 || fsync (fd) == -1) {
            lb_log_error ("artifact %s: cannot sync: %s", path, strerror (errno));
            if (fd >= 0)
                close (fd);
            return -1;
        }
        close (fd);
        return s_commit (self, path, hex, uri);
    }
    //  Copy: read it into a temporary file in the store, then commit.
    int in = open (path, O_RDONLY | O_CLOEXEC);
    if (in == -1) {
        lb_log_error ("artifact %s: cannot open: %s", path, strerror (errno));
        return -1;
    }
    char *tmp = lb_artifact_tmp_path (self);
    int out = open (tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
    int rc = out >= 0 ? 0 : -1;
    size_t chunk = 1 << 20;
    uint8_t *buf = lb_xmalloc (chunk);
    ssize_t got;
    while (rc == 0 && (got = read (in, buf, chunk)) != 0) {
        if (got < 0)
            rc = -1;
        else
            rc = s_write_all (out, buf, (size_t) got);
    }
    if (rc == 0)
        rc = fsync (out);
    if (rc)
        lb_log_error ("artifact %s: cannot copy into the store: %s", path, strerror (errno));
    free (buf);
    close (in);
    if (out >= 0)
        close (out);
    if (rc == 0)
        rc = s_commit (self, tmp, hex, uri);
    if (rc)
        unlink (tmp);
    free (tmp);
    return rc;
}

int
lb_artifact_uri_hash (const char *uri, char hex [65])
{
    if (!uri || strncmp (uri, "file://", 7) != 0)
        return -1;
    const char *mark = strstr (uri, "/sha256/");
    if (!mark)
        return -1;
    const char *name = strrchr (uri, '/') + 1;
    if (strlen (name) != 64 || name != mark + 8 + 3 || strncmp (mark + 8, name, 2) != 0)
        return -1;
    for (int i = 0; i < 64; i++)
        if (!strchr ("0123456789abcdef", name [i]))
            return -1;
    memcpy (hex, name, 65);
    return 0;
}

char *
lb_artifact_path (lb_artifact_t *self, const char *uri, bool verify)
{
    assert (self);
    char hex [65];
    if (lb_artifact_uri_hash (uri, hex)) {
        lb_log_error ("artifact uri=%s: not a store URI (file://ROOT/sha256/xx/<64 hex>)", uri ? uri : "(null)");
        return NULL;
    }
    char *path = lb_xstrdup (uri + 7);
    if (access (path, R_OK) == -1) {
        lb_log_error ("artifact uri=%s: cannot read: %s", uri, strerror (errno));
        free (path);
        return NULL;
    }
    if (verify) {
        char actual [65];
        if (lb_artifact_sha256_file (path, actual) || strcmp (actual, hex) != 0) {
            lb_log_error ("artifact uri=%s: content does not match its SHA-256 (corrupt)", uri);
            free (path);
            return NULL;
        }
    }
    return path;
}

int
lb_artifact_read (lb_artifact_t *self, const char *uri, uint8_t **data, size_t *size)
{
    assert (self && data && size);
    char *path = lb_artifact_path (self, uri, false);
    if (!path)
        return -1;
    FILE *file = fopen (path, "rb");
    free (path);
    if (!file) {
        lb_log_error ("artifact uri=%s: cannot open: %s", uri, strerror (errno));
        return -1;
    }
    struct stat st;
    if (fstat (fileno (file), &st) == -1) {
        fclose (file);
        return -1;
    }
    uint8_t *buf = lb_xmalloc ((size_t) st.st_size);
    size_t got = fread (buf, 1, (size_t) st.st_size, file);
    fclose (file);
    char hex [65], actual [65];
    lb_artifact_uri_hash (uri, hex);
    lb_artifact_sha256 (buf, got, actual);
    if (got != (size_t) st.st_size || strcmp (hex, actual) != 0) {
        lb_log_error ("artifact uri=%s: content does not match its SHA-256 (corrupt or truncated)", uri);
        free (buf);
        return -1;
    }
    *data = buf;
    *size = got;
    return 0;
}

//  --------------------------------------------------------------------------
//  Selftest

#include "lb_selftest.h"

void
lb_artifact_test (bool verbose)
{
    (void) verbose;
    char hex [65];
    lb_artifact_sha256 ("abc", 3, hex);
    assert (strcmp (hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad") == 0);

    char *dir = lb_selftest_tmpdir ("lb_artifact");
    char *root = lb_xasprintf ("%s/store", dir);
    lb_artifact_t *store = lb_artifact_new (root);
    assert (store);
    assert (strcmp (lb_artifact_root (store), root) == 0);

    char *uri = NULL, *uri2 = NULL;
    assert (lb_artifact_put (store, "hello", 5, &uri) == 0);
    assert (strstr (uri, "file:///tmp/") == uri);
    assert (lb_artifact_uri_hash (uri, hex) == 0);
    uint8_t *data;
    size_t size;
    assert (lb_artifact_read (store, uri, &data, &size) == 0);
    assert (size == 5 && memcmp (data, "hello", 5) == 0);
    free (data);
    //  Same bytes, same URI.
    assert (lb_artifact_put (store, "hello", 5, &uri2) == 0);
    assert (strcmp (uri, uri2) == 0);
    free (uri2);

    //  From a file, copied then moved.
    char *file = lb_artifact_tmp_path (store);
    FILE *f = fopen (file, "w");
    fputs ("dataset bytes", f);
    fclose (f);
    assert (lb_artifact_put_file (store, file, false, &uri2) == 0);
    assert (access (file, F_OK) == 0);
    free (uri2);
    assert (lb_artifact_put_file (store, file, true, &uri2) == 0);
    assert (access (file, F_OK) == -1);
    char *path = lb_artifact_path (store, uri2, true);
    assert (path);
    char fhex [65];
    assert (lb_artifact_sha256_file (path, fhex) == 0 && lb_artifact_uri_hash (uri2, hex) == 0);
    assert (strcmp (fhex, hex) == 0);

    //  Corruption is detected.
    f = fopen (path, "r+");
    fputs ("X", f);
    fclose (f);
    int old_fd = lb_log_setup_fd (open ("/dev/null", O_WRONLY));
    assert (lb_artifact_path (store, uri2, true) == NULL);
    assert (lb_artifact_read (store, uri2, &data, &size) == -1);
    //  Bad URIs.
    assert (lb_artifact_path (store, "http://x/y", false) == NULL);
    assert (lb_artifact_path (store, "file:///etc/passwd", false) == NULL);
    assert (lb_artifact_path (store, NULL, false) == NULL);
    close (lb_log_setup_fd (old_fd));
    free (path);
    free (uri2);
    free (file);
    free (uri);
    lb_artifact_destroy (&store);
    assert (!store);
    lb_selftest_rmtree (dir);
    free (root);
    free (dir);
}
