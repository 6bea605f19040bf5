/*  mn_http.h - the monitor's HTTP server, on libmicrohttpd.

    libmicrohttpd parses HTTP; this module only routes a finished request to
    one handler and sends its reply. It runs in the caller's thread (MHD's
    external epoll mode): the caller polls mn_http_fd and calls mn_http_run,
    so the monitor stays one thread with no shared state.

    Limits, each answered by MHD or here with an HTTP error and a log line,
    never a crash: request line and headers together at most 16 KiB (MHD
    answers 431 or 414 beyond that); a request body at most 64 KiB (413);
    at most 64 connections; 10 s idle timeout per connection.
*/
#ifndef MN_HTTP_H_INCLUDED
#define MN_HTTP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define MN_HTTP_MAX_BODY    (64 * 1024)
#define MN_HTTP_MEMORY      (32 * 1024)     //  per connection: headers and buffers

//  One request, as the handler sees it (all borrowed for the call).
typedef struct {
    const char *method;         //  "GET", "HEAD", "POST", ...
    const char *path;           //  without the query string
    const char *token;          //  the bearer token from Authorization, or NULL
    const char *body;           //  NUL-terminated; "" when none
    size_t body_size;
    const char *peer;           //  client address, for logs
} mn_http_request_t;

//  The handler's reply. body is malloc'd (the server frees it) or NULL.
typedef struct {
    int status;
    const char *content_type;
    char *body;
    size_t size;
    const char *cache;          //  Cache-Control value, or NULL for "no-store"
} mn_http_reply_t;

typedef void (mn_http_handler_fn) (void *arg, const mn_http_request_t *req, mn_http_reply_t *reply);

typedef struct _mn_http_t mn_http_t;

//  Listens on address:port (port 0: any free port). Returns the server, or
//  NULL after logging why (address in use, bad address).
mn_http_t *mn_http_new (const char *address, int port, mn_http_handler_fn *handler, void *arg);

//  Stops listening, closes connections. Accepts NULL; sets *self_p to NULL.
void mn_http_destroy (mn_http_t **self_p);

//  The file descriptor to poll for input (an epoll descriptor).
int mn_http_fd (mn_http_t *self);

//  Milliseconds until mn_http_run must be called even without input (-1: no limit).
int64_t mn_http_timeout_ms (mn_http_t *self);

//  Serves whatever is ready, without blocking.
void mn_http_run (mn_http_t *self);

//  The port it listens on.
int mn_http_port (mn_http_t *self);

//  Helper: fills reply with a status and a text/plain message (formatted).
void mn_http_text (mn_http_reply_t *reply, int status, const char *fmt, ...) __attribute__ ((format (printf, 3, 4)));

//  Selftest.
void mn_http_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
