/*  lb_download.h - fetch one remote file to disk through libcurl, safely.

    - Every URL, the first and each redirect target, is checked with
      lib/lb_netpolicy.h (scheme, no credentials, host resolving only to
      permitted addresses) and the connection is pinned to the addresses
      approved (no DNS rebinding). Redirects are followed by hand, at most
      max_redirects of them.
    - Connect and total timeouts; a transfer slower than 1 KiB/s for 30 s
      counts as stalled.
    - Retries with exponential backoff and jitter on 5xx, 429, timeouts and
      dropped connections; a dropped transfer resumes with Range from what
      was received (a server answering 200 to the Range starts over).
    - A hard size cap: the transfer stops at max_bytes and the partial file is
      removed; the disk never fills.
    - gzip/deflate content encoding is decoded (not while resuming).
    - The file lives in cache_dir under the SHA-256 of the URL, with a .meta
      file holding ETag and Last-Modified: the next download of the same URL
      asks If-None-Match / If-Modified-Since and a 304 reuses the file.
    - The SHA-256 of the bytes kept is returned.
    Errors are permanent (4xx, policy, over the cap, too many redirects) or
    retryable (5xx, timeouts, network) after the retries are spent.
*/
#ifndef LB_DOWNLOAD_H_INCLUDED
#define LB_DOWNLOAD_H_INCLUDED

#include <stdbool.h>
#include <stdint.h>

#include "lb_netpolicy.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    lb_netpolicy_t *policy;     //  required (borrowed)
    const char *cache_dir;      //  required; created if missing
    double connect_timeout;     //  seconds (default 10)
    double timeout;             //  seconds for one attempt (default 300)
    int retries;                //  attempts after the first (default 3)
    double backoff;             //  first retry delay in seconds (default 0.5), doubling
    int max_redirects;          //  default 5
    int64_t max_bytes;          //  size cap (default 1 GiB)
    const char *connect_to;     //  test seam: CURLOPT_CONNECT_TO entry ("::HOST:PORT") or NULL
} lb_download_opts_t;

typedef struct {
    char *path;                 //  the cached file (caller frees the string)
    char sha256 [65];
    int64_t bytes;
    bool not_modified;          //  a 304 reused the cached file
    int attempts;               //  requests made, redirects included
    int resumed;                //  transfers continued with Range
} lb_download_result_t;

//  Fills the defaults above (policy and cache_dir NULL).
void lb_download_opts_default (lb_download_opts_t *o);

//  Downloads url. Returns 0 and fills *r (release with
//  lb_download_result_release), or -1 with *error_p (caller frees) and
//  *retryable set.
int lb_download (const char *url, const lb_download_opts_t *o, lb_download_result_t *r,
                 char **error_p, bool *retryable);

//  Creates dir and its missing parents (mkdir -p). Returns 0, or -1 with
//  errno set.
int lb_download_mkdir_p (const char *dir);

//  Frees what r holds; harmless twice.
void lb_download_result_release (lb_download_result_t *r);

//  Selftest (a libmicrohttpd server on loopback).
void lb_download_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
