/*  mn_http.c - routing finished libmicrohttpd requests to one handler. */
#include "mn_http.h"
#include "lb_log.h"
#include "lb_mem.h"

#include <arpa/inet.h>
#include <assert.h>
#include <curl/curl.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

struct _mn_http_t {
    struct MHD_Daemon *daemon;
    mn_http_handler_fn *handler;
    void *arg;
    int port;
};

//  Per-request state while the body arrives.
typedef struct {
    char *body;
    size_t size;
    bool too_big;
} s_req_t;

void
mn_http_text (mn_http_reply_t *reply, int status, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    char *text = lb_xvasprintf (fmt, args);
    va_end (args);
    free (reply->body);
    reply->status = status;
    reply->content_type = "text/plain; charset=utf-8";
    reply->body = lb_xasprintf ("%s\n", text);
    reply->size = strlen (reply->body);
    free (text);
}

static enum MHD_Result
s_send (struct MHD_Connection *conn, mn_http_reply_t *reply)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer (reply->size, reply->body? reply->body: (void *) "",
                                                                 reply->body? MHD_RESPMEM_MUST_FREE
                                                                            : MHD_RESPMEM_PERSISTENT);
    reply->body = NULL;
    if (!resp)
        return MHD_NO;
    MHD_add_response_header (resp, "Content-Type", reply->content_type? reply->content_type: "text/plain");
    MHD_add_response_header (resp, "Cache-Control", reply->cache? reply->cache: "no-store");
    MHD_add_response_header (resp, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header (resp, "Content-Security-Policy",
                             "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'");
    enum MHD_Result rc = MHD_queue_response (conn, (unsigned) reply->status, resp);
    MHD_destroy_response (resp);
    return rc;
}

static enum MHD_Result
s_access (void *cls, struct MHD_Connection *conn, const char *url, const char *method, const char *version,
          const char *upload_data, size_t *upload_data_size, void **con_cls)
{
    (void) version;
    mn_http_t *self = cls;
    s_req_t *req = *con_cls;
    if (!req) {
        *con_cls = lb_xcalloc (1, sizeof (s_req_t));
        return MHD_YES;
    }
    if (*upload_data_size) {
        if (req->size + *upload_data_size > MN_HTTP_MAX_BODY)
            req->too_big = true;
        else {
            req->body = lb_xrealloc (req->body, req->size + *upload_data_size + 1);
            memcpy (req->body + req->size, upload_data, *upload_data_size);
            req->size += *upload_data_size;
            req->body [req->size] = 0;
        }
        *upload_data_size = 0;
        return MHD_YES;
    }
    char peer [64] = "?";
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info (conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
    if (ci && ci->client_addr && ci->client_addr->sa_family == AF_INET)
        inet_ntop (AF_INET, &((struct sockaddr_in *) ci->client_addr)->sin_addr, peer, sizeof peer);
    mn_http_reply_t reply = { .status = 500 };
    if (req->too_big) {
        lb_log_warn ("http: request body over %d bytes refused peer=%s path=%.100s", MN_HTTP_MAX_BODY, peer, url);
        mn_http_text (&reply, 413, "request body larger than %d bytes", MN_HTTP_MAX_BODY);
        return s_send (conn, &reply);
    }
    const char *auth = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "Authorization");
    const char *token = NULL;
    if (auth && strncasecmp (auth, "Bearer ", 7) == 0)
        token = auth + 7;
    mn_http_request_t r = { .method = method, .path = url, .token = token,
                            .body = req->body? req->body: "", .body_size = req->size, .peer = peer };
    self->handler (self->arg, &r, &reply);
    assert (reply.status >= 100 && reply.status < 600);
    if (!strcmp (method, "HEAD")) {
        free (reply.body);
        reply.body = NULL;
        reply.size = 0;
    }
    lb_log_debug ("http: %s %.200s -> %d peer=%s", method, url, reply.status, peer);
    return s_send (conn, &reply);
}

static void
s_completed (void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode why)
{
    (void) cls; (void) conn; (void) why;
    s_req_t *req = *con_cls;
    if (req) {
        free (req->body);
        free (req);
    }
    *con_cls = NULL;
}

//  URL unescaping: MHD's own, except that a URL carrying an escaped NUL
//  ("%00") stays escaped, so "/app.js%00.html" is not cut to "/app.js" and
//  answers 404 like any other unknown path.
static size_t
s_unescape (void *cls, struct MHD_Connection *conn, char *uri)
{
    (void) cls; (void) conn;
    if (strstr (uri, "%00"))
        return strlen (uri);
    return MHD_http_unescape (uri);
}

static void
s_mhd_log (void *cls, const char *fmt, va_list ap)
{
    (void) cls;
    char *text = lb_xvasprintf (fmt, ap);
    size_t n = strlen (text);
    while (n > 0 && (text [n - 1] == '\n' || text [n - 1] == '\r'))
        text [--n] = 0;
    lb_log_warn ("http: %s", text);
    free (text);
}

mn_http_t *
mn_http_new (const char *address, int port, mn_http_handler_fn *handler, void *arg)
{
    assert (address && handler);
    struct sockaddr_in sa = { .sin_family = AF_INET, .sin_port = htons ((uint16_t) port) };
    if (inet_pton (AF_INET, address, &sa.sin_addr) != 1) {
        lb_log_error ("monitor.bind: '%s' is not an IPv4 address", address);
        return NULL;
    }
    mn_http_t *self = lb_xcalloc (1, sizeof *self);
    self->handler = handler;
    self->arg = arg;
    self->daemon = MHD_start_daemon (MHD_USE_EPOLL | MHD_USE_ERROR_LOG, (uint16_t) port, NULL, NULL,
                                     s_access, self,
                                     MHD_OPTION_EXTERNAL_LOGGER, s_mhd_log, NULL,
                                     MHD_OPTION_SOCK_ADDR, (struct sockaddr *) &sa,
                                     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t) MN_HTTP_MEMORY,
                                     MHD_OPTION_CONNECTION_LIMIT, (unsigned) 64,
                                     MHD_OPTION_CONNECTION_TIMEOUT, (unsigned) 10,
                                     MHD_OPTION_NOTIFY_COMPLETED, s_completed, NULL,
                                     MHD_OPTION_UNESCAPE_CALLBACK, s_unescape, NULL,
                                     MHD_OPTION_END);
    if (!self->daemon) {
        lb_log_error ("cannot listen on http://%s:%d (port in use?)", address, port);
        free (self);
        return NULL;
    }
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_BIND_PORT);
    self->port = info? info->port: port;
    return self;
}

void
mn_http_destroy (mn_http_t **self_p)
{
    assert (self_p);
    mn_http_t *self = *self_p;
    if (!self)
        return;
    MHD_stop_daemon (self->daemon);
    free (self);
    *self_p = NULL;
}

int
mn_http_fd (mn_http_t *self)
{
    const union MHD_DaemonInfo *info = MHD_get_daemon_info (self->daemon, MHD_DAEMON_INFO_EPOLL_FD);
    assert (info);
    return info->epoll_fd;
}

int64_t
mn_http_timeout_ms (mn_http_t *self)
{
    MHD_UNSIGNED_LONG_LONG ms;
    if (MHD_get_timeout (self->daemon, &ms) != MHD_YES)
        return -1;
    return (int64_t) ms;
}

void
mn_http_run (mn_http_t *self)
{
    MHD_run (self->daemon);
}

int
mn_http_port (mn_http_t *self)
{
    return self->port;
}

//  -------------------------------------------------------------------------
//  Selftest: a real server and libcurl's multi interface in one thread.

static void
s_test_handler (void *arg, const mn_http_request_t *req, mn_http_reply_t *reply)
{
    (void) arg;
    if (!strcmp (req->path, "/hello"))
        mn_http_text (reply, 200, "hello %s token=%s body=%zu", req->method, req->token? req->token: "-",
                      req->body_size);
    else
        mn_http_text (reply, 404, "no such page: %s", req->path);
}

typedef struct {
    char data [512];
    size_t size;
} s_sink_t;

static size_t
s_sink (char *ptr, size_t size, size_t nmemb, void *userdata)
{
    s_sink_t *sink = userdata;
    size_t n = size * nmemb;
    size_t room = sizeof sink->data - 1 - sink->size;
    memcpy (sink->data + sink->size, ptr, n < room? n: room);
    sink->size += n < room? n: room;
    sink->data [sink->size] = 0;
    return n;
}

static long
s_fetch (mn_http_t *server, const char *path, struct curl_slist *headers, const char *post, s_sink_t *sink)
{
    char url [128];
    snprintf (url, sizeof url, "http://127.0.0.1:%d%s", mn_http_port (server), path);
    CURL *easy = curl_easy_init ();
    curl_easy_setopt (easy, CURLOPT_URL, url);
    curl_easy_setopt (easy, CURLOPT_WRITEFUNCTION, s_sink);
    curl_easy_setopt (easy, CURLOPT_WRITEDATA, sink);
    curl_easy_setopt (easy, CURLOPT_HTTPHEADER, headers);
    curl_easy_setopt (easy, CURLOPT_TIMEOUT, 10L);
    if (post)
        curl_easy_setopt (easy, CURLOPT_POSTFIELDS, post);
    CURLM *multi = curl_multi_init ();
    curl_multi_add_handle (multi, easy);
    int running = 1;
    while (running) {
        curl_multi_perform (multi, &running);
        mn_http_run (server);
        curl_multi_poll (multi, NULL, 0, 5, NULL);
    }
    long code = 0;
    curl_easy_getinfo (easy, CURLINFO_RESPONSE_CODE, &code);
    curl_multi_remove_handle (multi, easy);
    curl_easy_cleanup (easy);
    curl_multi_cleanup (multi);
    return code;
}

void
mn_http_test (bool verbose)
{
    (void) verbose;
    assert (mn_http_new ("not-an-address", 0, s_test_handler, NULL) == NULL);
    mn_http_t *server = mn_http_new ("127.0.0.1", 0, s_test_handler, NULL);
    assert (server && mn_http_port (server) > 0 && mn_http_fd (server) >= 0);
    s_sink_t sink = { .size = 0 };
    struct curl_slist *headers = curl_slist_append (NULL, "Authorization: Bearer s3cret");
    assert (s_fetch (server, "/hello", headers, NULL, &sink) == 200);
    assert (strstr (sink.data, "hello GET token=s3cret body=0"));
    sink.size = 0;
    assert (s_fetch (server, "/hello", NULL, "abc", &sink) == 200);
    assert (strstr (sink.data, "hello POST token=- body=3"));
    sink.size = 0;
    assert (s_fetch (server, "/../../etc/passwd", NULL, NULL, &sink) == 404);
    sink.size = 0;
    assert (s_fetch (server, "/hello%00.html", NULL, NULL, &sink) == 404);
    sink.size = 0;
    assert (s_fetch (server, "/hell%6f", NULL, NULL, &sink) == 200);
    //  A header larger than the connection's memory: refused, server alive.
    char *big = lb_xmalloc (MN_HTTP_MEMORY + 100);
    memcpy (big, "X-Big: ", 7);
    memset (big + 7, 'a', MN_HTTP_MEMORY + 80);
    big [MN_HTTP_MEMORY + 87] = 0;
    struct curl_slist *bigh = curl_slist_append (NULL, big);
    sink.size = 0;
    long code = s_fetch (server, "/hello", bigh, NULL, &sink);
    assert (code == 431 || code == 413 || code == 414);
    curl_slist_free_all (bigh);
    free (big);
    //  A body over the limit: 413.
    char *body = lb_xmalloc (MN_HTTP_MAX_BODY + 10);
    memset (body, 'b', MN_HTTP_MAX_BODY + 9);
    body [MN_HTTP_MAX_BODY + 9] = 0;
    sink.size = 0;
    assert (s_fetch (server, "/hello", NULL, body, &sink) == 413);
    free (body);
    sink.size = 0;
    assert (s_fetch (server, "/hello", headers, NULL, &sink) == 200);
    curl_slist_free_all (headers);
    mn_http_destroy (&server);
    mn_http_destroy (&server);
}
