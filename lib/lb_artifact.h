/*  lb_artifact.h - the artifact store: datasets, models, checkpoints and
    reports, content-addressed by SHA-256, referenced by URI.

    An artifact lives at ROOT/sha256/ab/abcdef... (the first two hex digits
    fan the directory out) and is named by the URI file://ROOT/sha256/ab/<hex>,
    where ROOT is an absolute path. Large artifacts never travel through the
    broker's frames: jobs and results carry these URIs. A shared directory
    (NFS, a bind mount) mounted at the same path on every host makes one
    store for many hosts.

    Writes are atomic (temporary file, fsync, rename, fsync of the directory)
    and idempotent (the same bytes give the same URI). Reads verify the hash
    unless told not to.
*/
#ifndef LB_ARTIFACT_H_INCLUDED
#define LB_ARTIFACT_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _lb_artifact_t lb_artifact_t;

//  Returns a store rooted at root (created if missing; made absolute), or
//  NULL after logging why.
lb_artifact_t *lb_artifact_new (const char *root);

//  Destroys the store handle (never the files). Accepts NULL; sets *self_p NULL.
void lb_artifact_destroy (lb_artifact_t **self_p);

//  Returns the absolute root. Borrowed.
const char *lb_artifact_root (lb_artifact_t *self);

//  Returns a new path for a temporary file inside the store (on the same
//  filesystem, so lb_artifact_put_file can rename it). Caller frees; the
//  file is not created.
char *lb_artifact_tmp_path (lb_artifact_t *self);

//  Stores the bytes. Returns 0 and a new URI in *uri (caller frees), or -1
//  after logging why.
int lb_artifact_put (lb_artifact_t *self, const void *data, size_t size, char **uri);

//  Stores the file at path: moved into place when move is true (the path is
//  gone afterwards), else copied. Returns 0 and *uri (caller frees), or -1.
int lb_artifact_put_file (lb_artifact_t *self, const char *path, bool move, char **uri);

//  Returns the local path of uri (caller frees), or NULL after logging why
//  (not a file:// URI of the form above, or the file is missing). With
//  verify, also checks the content against the hash in the name.
char *lb_artifact_path (lb_artifact_t *self, const char *uri, bool verify);

//  Reads the whole artifact, verifying its hash. Returns 0 and a malloc'd
//  buffer (caller frees) with its size, or -1 after logging why.
int lb_artifact_read (lb_artifact_t *self, const char *uri, uint8_t **data, size_t *size);

//  Writes the hex SHA-256 (64 characters and a NUL) of the file at path, or
//  of a buffer. The file version returns 0 or -1 (logged).
int lb_artifact_sha256_file (const char *path, char hex [65]);
void lb_artifact_sha256 (const void *data, size_t size, char hex [65]);

//  Extracts the hex hash from a store URI into hex. Returns 0, or -1 when
//  uri is not one.
int lb_artifact_uri_hash (const char *uri, char hex [65]);

//  Selftest.
void lb_artifact_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
