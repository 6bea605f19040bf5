/*  lb_selftest.h - runs the table of module selftests (STYLE.md section 8).

    bin/selftest is generated: its main() passes the table of every
    `x_test (bool verbose)` in the tree to lb_selftest_main. Each test runs
    in its own child process, so one failed assert fails that test only,
    with a time limit. One line per test: "ok NAME (12 ms)" or "FAIL NAME: why".

    Usage: selftest [-v] [-t SECONDS] [-l] [NAME...]   (names match by prefix)
*/
#ifndef LB_SELFTEST_H_INCLUDED
#define LB_SELFTEST_H_INCLUDED

#include <stdbool.h>

typedef struct {
    const char *name;
    void (*fn) (bool verbose);
} lb_selftest_t;

//  Runs the tests in tests (ended by a NULL name) as argv asks. Returns the
//  process exit code: 0 when all selected tests passed, 1 otherwise, 2 on
//  bad usage.
int lb_selftest_main (const lb_selftest_t *tests, int argc, char **argv);

//  Returns a new private temporary directory for a test ("/tmp/NAME-XXXXXX"),
//  caller frees the string; lb_selftest_rmtree removes it and everything in
//  it. Both abort on failure: they are for tests only.
char *lb_selftest_tmpdir (const char *name);
void lb_selftest_rmtree (const char *path);

//  Selftest of the harness itself.
void lb_selftest_test (bool verbose);

#endif
