/*  lb_http.h - one HTTP request and its response, through libcurl.

    A small blocking client for the places Predictors speaks HTTP: the LLM
    API (discover), probing and downloading data sources (discover, fetch).
    It never follows redirects (the caller checks each Location against
    lib/lb_netpolicy.h first), speaks only http and https, bounds the connect
    and the whole call, caps the response body, and can pin the connection
    to addresses the caller approved (resolve).

    Request headers may hold secrets (an API key): this module never logs
    them, and its error texts never contain them.

    libcurl's global state: curl_easy_init initialises it on first use; a
    threaded program should call curl_global_init from main first.
*/
#ifndef LB_HTTP_H_INCLUDED
#define LB_HTTP_H_INCLUDED

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define LB_HTTP_MAX_BODY_DEFAULT (16u * 1024 * 1024)

//  What to send. Everything is borrowed for the duration of the call.
typedef struct {
    const char *method;             //  "GET" (NULL), "HEAD", "POST", ...
    const char *url;
    const char *const *headers;     //  NULL-terminated "Name: value" lines, or NULL
    const char *body;               //  request body or NULL
    size_t body_len;
    double connect_timeout;         //  seconds; 0: 10 s
    double timeout;                 //  seconds for the whole call; 0: 60 s
    size_t max_body;                //  response body cap in bytes; 0: LB_HTTP_MAX_BODY_DEFAULT
    const char *resolve;            //  "HOST:PORT:ADDR[,ADDR]" pin (CURLOPT_RESOLVE) or NULL
    const char *range;              //  "0-0" sends Range: bytes=0-0; NULL: none
} lb_http_request_t;

//  What came back. Owned by the struct; release with lb_http_response_release.
typedef struct {
    long status;                    //  HTTP status, 0 if none arrived
    char *body;                     //  NUL-terminated (body_len excludes the NUL); never NULL after perform
    size_t body_len;
    char **headers;                 //  "name: value" with the name lowercased, in order
    size_t header_count;
    char *error;                    //  transport error text, NULL when a response arrived
    double seconds;                 //  total time of the call
} lb_http_response_t;

//  Performs the request. Returns 0 when a complete response arrived, whatever
//  its status; -1 on a transport failure (no connection, timeout, TLS, body
//  over the cap), with resp->error saying which. resp is overwritten: release
//  it before reusing it.
int lb_http_perform (const lb_http_request_t *req, lb_http_response_t *resp);

//  Releases what resp holds and zeroes it; harmless twice.
void lb_http_response_release (lb_http_response_t *resp);

//  Returns the value of the last header called name (case-insensitive), or
//  NULL. Borrowed from resp.
const char *lb_http_response_header (const lb_http_response_t *resp, const char *name);

//  Selftest.
void lb_http_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
