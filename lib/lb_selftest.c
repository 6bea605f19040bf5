/*  lb_selftest.c - forked, time-limited module selftests. */
#include "lb_selftest.h"
#include "lb_clock.h"
#include "lb_mem.h"

#include <assert.h>
#include <errno.h>
#include <ftw.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

static bool
s_selected (const char *name, int argc, char **argv, int first)
{
    if (first >= argc)
        return true;
    for (int i = first; i < argc; i++)
        if (strncmp (name, argv [i], strlen (argv [i])) == 0)
            return true;
    return false;
}

//  Runs one test in a child. Returns 0 if it passed.
static int
s_run_one (const lb_selftest_t *test, bool verbose, int limit, char *why, size_t why_size)
{
    fflush (stdout);
    fflush (stderr);
    pid_t pid = fork ();
    assert (pid >= 0);
    if (pid == 0) {
        alarm ((unsigned) limit);
        test->fn (verbose);
        fflush (stdout);
        _exit (0);
    }
    int status;
    while (waitpid (pid, &status, 0) < 0)
        assert (errno == EINTR);
    if (WIFEXITED (status) && WEXITSTATUS (status) == 0)
        return 0;
    if (WIFSIGNALED (status) && WTERMSIG (status) == SIGALRM)
        snprintf (why, why_size, "no result after %d s", limit);
    else
    if (WIFSIGNALED (status))
        snprintf (why, why_size, "killed by signal %d (%s)", WTERMSIG (status),
                  strsignal (WTERMSIG (status)));
    else
        snprintf (why, why_size, "exit status %d", WEXITSTATUS (status));
    return -1;
}

int
lb_selftest_main (const lb_selftest_t *tests, int argc, char **argv)
{
    bool verbose = false, list = false;
    int limit = 300, opt;
    while ((opt = getopt (argc, argv, "vlt:h")) != -1) {
        switch (opt) {
            case 'v': verbose = true; break;
            case 'l': list = true; break;
            case 't': limit = atoi (optarg); break;
            default:
                fprintf (stderr, "usage: selftest [-v] [-l] [-t SECONDS] [NAME...]\n");
                return opt == 'h' ? 0 : 2;
        }
    }
    if (limit <= 0)
        limit = 300;
    int passed = 0, failed = 0;
    for (const lb_selftest_t *test = tests; test->name; test++) {
        if (!s_selected (test->name, argc, argv, optind))
            continue;
        if (list) {
            printf ("%s\n", test->name);
            continue;
        }
        char why [160] = "";
        int64_t start = lb_clock_mono_us ();
        if (s_run_one (test, verbose, limit, why, sizeof why) == 0) {
            printf ("ok %s (%lld ms)\n", test->name, (long long) (lb_clock_mono_us () - start) / 1000);
            passed++;
        }
        else {
            printf ("FAIL %s: %s\n", test->name, why);
            failed++;
        }
        fflush (stdout);
    }
    if (!list)
        printf ("selftest: %d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}

char *
lb_selftest_tmpdir (const char *name)
{
    char *path = lb_xasprintf ("/tmp/%s-XXXXXX", name);
    if (!mkdtemp (path)) {
        perror ("mkdtemp");
        abort ();
    }
    return path;
}

static int
s_remove (const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void) st;
    (void) flag;
    (void) ftw;
    return remove (path);
}

void
lb_selftest_rmtree (const char *path)
{
    assert (path && strncmp (path, "/tmp/", 5) == 0);
    nftw (path, s_remove, 16, FTW_DEPTH | FTW_PHYS);
}

static void
s_pass (bool verbose)
{
    (void) verbose;
}

static void
s_fail (bool verbose)
{
    (void) verbose;
    _exit (3);
}

void
lb_selftest_test (bool verbose)
{
    (void) verbose;
    lb_selftest_t test = { "pass", s_pass };
    char why [160] = "";
    assert (s_run_one (&test, false, 10, why, sizeof why) == 0);
    test.fn = s_fail;
    assert (s_run_one (&test, false, 10, why, sizeof why) == -1);
    assert (strcmp (why, "exit status 3") == 0);
    char *argv [] = { "selftest", "lb_", NULL };
    assert (s_selected ("lb_log", 2, argv, 1));
    assert (!s_selected ("bk_queue", 2, argv, 1));
    assert (s_selected ("bk_queue", 1, argv, 1));

    char *dir = lb_selftest_tmpdir ("lb_selftest");
    char *file = lb_xasprintf ("%s/sub", dir);
    FILE *f = fopen (file, "w");
    assert (f);
    fclose (f);
    lb_selftest_rmtree (dir);
    assert (access (dir, F_OK) == -1);
    free (file);
    free (dir);
}
