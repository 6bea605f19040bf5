/*  lb_fcopy.h - verified files: does a file hold the bytes its SHA-256
    says, and an atomic copy that is verified before anyone may use it.

    The deployer copies a model artifact into the deploy directory with
    these and checks every deployed file it is about to point at.
*/
#ifndef LB_FCOPY_H_INCLUDED
#define LB_FCOPY_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

//  Checks that the file at path has the SHA-256 hex (64 lowercase hex
//  digits). Returns 0, or -1 with a one-line reason in why (missing,
//  unreadable, or "truncated or corrupt" with its size).
int lb_fcopy_verify (const char *path, const char *hex, char *why, size_t size);

//  Copies src to dst (creating dst's directories) through a temporary
//  file beside dst, fsync, rename and fsync of the directory, then verifies
//  dst against hex. Returns 0, or -1 with the reason in why (nothing is left
//  at the temporary path; a dst that fails verification stays for the
//  caller to remove).
int lb_fcopy_verified (const char *src, const char *dst, const char *hex, char *why, size_t size);

//  Selftest.
void lb_fcopy_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
