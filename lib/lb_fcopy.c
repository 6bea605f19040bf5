/*  lb_fcopy.c - verified files: checksum checks and atomic, verified copies. */
#include "lb_fcopy.h"
#include "lb_artifact.h"
#include "lb_mem.h"
#include "lb_selftest.h"

#include <assert.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

int
lb_fcopy_verify (const char *path, const char *hex, char *why, size_t size)
{
    struct stat st;
    if (stat (path, &st) == -1) {
        snprintf (why, size, "%s: %s", path, strerror (errno));
        return -1;
    }
    char actual [65];
    if (lb_artifact_sha256_file (path, actual)) {
        snprintf (why, size, "%s: cannot be read", path);
        return -1;
    }
    if (strcmp (actual, hex) != 0) {
        snprintf (why, size, "%s: SHA-256 %.16s... does not match the expected %.16s... "
                  "(truncated or corrupt, %lld bytes)", path, actual, hex, (long long) st.st_size);
        return -1;
    }
    return 0;
}

static int
s_mkdirs (const char *path)
{
    char *copy = lb_xstrdup (path);
    for (char *p = copy + 1; *p; p++)
        if (*p == '/') {
            *p = 0;
            if (mkdir (copy, 0755) == -1 && errno != EEXIST) {
                free (copy);
                return -1;
            }
            *p = '/';
        }
    int rc = mkdir (copy, 0755) == -1 && errno != EEXIST ? -1 : 0;
    free (copy);
    return rc;
}

int
lb_fcopy_verified (const char *src, const char *dst, const char *hex, char *why, size_t size)
{
    char *dir = lb_xstrdup (dst);
    *strrchr (dir, '/') = 0;
    char *tmp = lb_xasprintf ("%s.tmp.%d", dst, (int) getpid ());
    int in = -1, out = -1, rc = -1;
    if (s_mkdirs (dir)) {
        snprintf (why, size, "cannot create %s: %s", dir, strerror (errno));
        goto done;
    }
    in = open (src, O_RDONLY | O_CLOEXEC);
    out = open (tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (in == -1 || out == -1) {
        snprintf (why, size, "cannot copy %s to %s: %s", src, tmp, strerror (errno));
        goto done;
    }
    char buf [65536];
    ssize_t got;
    while ((got = read (in, buf, sizeof buf)) > 0) {
        for (ssize_t off = 0; off < got; ) {
            ssize_t put = write (out, buf + off, (size_t) (got - off));
            if (put < 0) {
                snprintf (why, size, "write %s: %s", tmp, strerror (errno));
                goto done;
            }
            off += put;
        }
    }
    if (got < 0 || fsync (out) == -1) {
        snprintf (why, size, "copy to %s: %s", tmp, strerror (errno));
        goto done;
    }
    close (out);
    out = -1;
    if (rename (tmp, dst) == -1) {
        snprintf (why, size, "rename %s: %s", tmp, strerror (errno));
        goto done;
    }
    int dfd = open (dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync (dfd);
        close (dfd);
    }
    rc = lb_fcopy_verify (dst, hex, why, size);
done:
    if (in >= 0)
        close (in);
    if (out >= 0)
        close (out);
    unlink (tmp);
    free (tmp);
    free (dir);
    return rc;
}

//  --------------------------------------------------------------------------

void
lb_fcopy_test (bool verbose)
{
    char *dir = lb_selftest_tmpdir ("lb_fcopy");
    char *src = lb_xasprintf ("%s/model", dir);
    char *dst = lb_xasprintf ("%s/deep/er/copy.model", dir);
    FILE *f = fopen (src, "w");
    assert (f);
    fputs ("a model's bytes", f);
    fclose (f);
    char hex [65], why [512];
    assert (lb_artifact_sha256_file (src, hex) == 0);
    assert (lb_fcopy_verify (src, hex, why, sizeof why) == 0);
    assert (lb_fcopy_verified (src, dst, hex, why, sizeof why) == 0);
    assert (lb_fcopy_verify (dst, hex, why, sizeof why) == 0);
    //  Truncated: refused, and the reason says so.
    assert (truncate (src, 4) == 0);
    assert (lb_fcopy_verify (src, hex, why, sizeof why) == -1 && strstr (why, "truncated or corrupt"));
    //  A copy that does not verify is an error (and leaves no temporary file).
    assert (lb_fcopy_verified (src, dst, hex, why, sizeof why) == -1);
    //  Missing.
    unlink (src);
    assert (lb_fcopy_verify (src, hex, why, sizeof why) == -1 && strstr (why, "No such file"));
    if (verbose)
        printf ("%s\n", why);
    free (src);
    free (dst);
    lb_selftest_rmtree (dir);
    free (dir);
}
