/*  lb_http.c - one HTTP request through libcurl's easy interface. */
#include "lb_http.h"
#include "lb_mem.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

typedef struct {
    lb_http_response_t *resp;
    size_t cap;                 //  allocated bytes of resp->body
    size_t max_body;
    bool over;                  //  the body passed max_body
} s_sink_t;

static size_t
s_on_body (char *data, size_t size, size_t nmemb, void *arg)
{
    s_sink_t *sink = arg;
    size_t n = size * nmemb;
    lb_http_response_t *resp = sink->resp;
    if (resp->body_len + n > sink->max_body) {
        sink->over = true;
        return 0;               //  curl stops with CURLE_WRITE_ERROR
    }
    if (resp->body_len + n + 1 > sink->cap) {
        size_t cap = sink->cap ? sink->cap : 4096;
        while (cap < resp->body_len + n + 1)
            cap *= 2;
        resp->body = lb_xrealloc (resp->body, cap);
        sink->cap = cap;
    }
    memcpy (resp->body + resp->body_len, data, n);
    resp->body_len += n;
    resp->body [resp->body_len] = 0;
    return n;
}

static size_t
s_on_header (char *data, size_t size, size_t nmemb, void *arg)
{
    s_sink_t *sink = arg;
    lb_http_response_t *resp = sink->resp;
    size_t n = size * nmemb;
    size_t len = n;
    while (len && (data [len - 1] == '\r' || data [len - 1] == '\n'))
        len--;
    if (len >= 5 && strncmp (data, "HTTP/", 5) == 0) {
        //  A new response (after 100 Continue, say): forget earlier headers.
        for (size_t i = 0; i < resp->header_count; i++)
            free (resp->headers [i]);
        resp->header_count = 0;
        return n;
    }
    const char *colon = memchr (data, ':', len);
    if (!colon || len == 0 || resp->header_count >= 200)
        return n;
    char *line = lb_xstrndup (data, len);
    for (char *p = line; *p && *p != ':'; p++)
        *p = (char) tolower ((unsigned char) *p);
    resp->headers = lb_xrealloc (resp->headers, (resp->header_count + 1) * sizeof (char *));
    resp->headers [resp->header_count++] = line;
    return n;
}

int
lb_http_perform (const lb_http_request_t *req, lb_http_response_t *resp)
{
    assert (req && req->url && resp);
    memset (resp, 0, sizeof *resp);
    resp->body = lb_xstrdup ("");
    s_sink_t sink = {
        .resp = resp, .cap = 1,
        .max_body = req->max_body ? req->max_body : LB_HTTP_MAX_BODY_DEFAULT
    };
    CURL *curl = curl_easy_init ();
    assert (curl);
    struct curl_slist *headers = NULL, *resolve = NULL;
    char errbuf [CURL_ERROR_SIZE] = "";
    const char *method = req->method ? req->method : "GET";

    curl_easy_setopt (curl, CURLOPT_URL, req->url);
    curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt (curl, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    curl_easy_setopt (curl, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt (curl, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT_MS,
                      (long) ((req->connect_timeout > 0 ? req->connect_timeout : 10) * 1000));
    curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, (long) ((req->timeout > 0 ? req->timeout : 60) * 1000));
    curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_on_body);
    curl_easy_setopt (curl, CURLOPT_WRITEDATA, &sink);
    curl_easy_setopt (curl, CURLOPT_HEADERFUNCTION, s_on_header);
    curl_easy_setopt (curl, CURLOPT_HEADERDATA, &sink);
    curl_easy_setopt (curl, CURLOPT_USERAGENT, "predictors/1");
    if (strcmp (method, "HEAD") == 0)
        curl_easy_setopt (curl, CURLOPT_NOBODY, 1L);
    else
    if (strcmp (method, "GET") != 0)
        curl_easy_setopt (curl, CURLOPT_CUSTOMREQUEST, method);
    if (req->body) {
        curl_easy_setopt (curl, CURLOPT_POSTFIELDS, req->body);
        curl_easy_setopt (curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t) req->body_len);
    }
    headers = curl_slist_append (headers, "Expect:");
    for (const char *const *h = req->headers; h && *h; h++)
        headers = curl_slist_append (headers, *h);
    curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);
    if (req->resolve) {
        resolve = curl_slist_append (NULL, req->resolve);
        curl_easy_setopt (curl, CURLOPT_RESOLVE, resolve);
    }
    if (req->range)
        curl_easy_setopt (curl, CURLOPT_RANGE, req->range);

    CURLcode code = curl_easy_perform (curl);
    curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &resp->status);
    curl_easy_getinfo (curl, CURLINFO_TOTAL_TIME, &resp->seconds);
    int rc = 0;
    if (sink.over) {
        resp->error = lb_xasprintf ("response body from %.200s exceeds %zu bytes", req->url,
                                    sink.max_body);
        rc = -1;
    }
    else
    if (code != CURLE_OK) {
        resp->error = lb_xasprintf ("%s %.200s: %s", method, req->url,
                                    *errbuf ? errbuf : curl_easy_strerror (code));
        rc = -1;
    }
    curl_slist_free_all (headers);
    curl_slist_free_all (resolve);
    curl_easy_cleanup (curl);
    return rc;
}

void
lb_http_response_release (lb_http_response_t *resp)
{
    if (!resp)
        return;
    free (resp->body);
    for (size_t i = 0; i < resp->header_count; i++)
        free (resp->headers [i]);
    free (resp->headers);
    free (resp->error);
    memset (resp, 0, sizeof *resp);
}

const char *
lb_http_response_header (const lb_http_response_t *resp, const char *name)
{
    assert (resp && name);
    size_t len = strlen (name);
    for (size_t i = resp->header_count; i-- > 0; ) {
        const char *line = resp->headers [i];
        if (strncasecmp (line, name, len) == 0 && line [len] == ':') {
            const char *value = line + len + 1;
            while (*value == ' ' || *value == '\t')
                value++;
            return value;
        }
    }
    return NULL;
}

//  --------------------------------------------------------------------------
//  Selftest: a forked loopback server with canned answers.

static void
s_serve_one (int conn)
{
    char buf [65536] = "";
    size_t len = 0;
    char *end = NULL;
    while (len < sizeof buf - 1 && !(end = strstr (buf, "\r\n\r\n"))) {
        ssize_t n = read (conn, buf + len, sizeof buf - 1 - len);
        if (n <= 0)
            return;
        len += (size_t) n;
        buf [len] = 0;
    }
    if (!end)
        return;
    size_t head = (size_t) (end + 4 - buf);
    size_t content = 0;
    const char *cl = strcasestr (buf, "\r\ncontent-length:");
    if (cl && cl < end)
        content = (size_t) atol (cl + 17);
    while (len < head + content && len < sizeof buf - 1) {
        ssize_t n = read (conn, buf + len, sizeof buf - 1 - len);
        if (n <= 0)
            break;
        len += (size_t) n;
    }
    buf [len] = 0;
    char method [16] = "", path [256] = "";
    sscanf (buf, "%15s %255s", method, path);
    char *reply = NULL;
    if (strcmp (path, "/ok") == 0)
        reply = lb_xasprintf ("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Test: one\r\n"
                              "x-test: two\r\nContent-Length: 5\r\n\r\n%s",
                              strcmp (method, "HEAD") ? "hello" : "");
    else
    if (strcmp (path, "/echo") == 0) {
        const char *auth = strcasestr (buf, "\r\nx-api-key:") ? "yes" : "no";
        const char *range = strcasestr (buf, "\r\nrange: bytes=0-0") ? "yes" : "no";
        reply = lb_xasprintf ("HTTP/1.1 201 Created\r\nX-Method: %s\r\nX-Had-Key: %s\r\n"
                              "X-Had-Range: %s\r\nContent-Length: %zu\r\n\r\n%s",
                              method, auth, range, len - head, buf + head);
    }
    else
    if (strcmp (path, "/big") == 0) {
        char *big = lb_xmalloc (100001);
        memset (big, 'x', 100000);
        big [100000] = 0;
        reply = lb_xasprintf ("HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n%s", big);
        free (big);
    }
    else
    if (strcmp (path, "/slow") == 0) {
        sleep (5);
        reply = lb_xstrdup ("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
    }
    else
    if (strcmp (path, "/redirect") == 0)
        reply = lb_xstrdup ("HTTP/1.1 302 Found\r\nLocation: http://169.254.169.254/\r\n"
                            "Content-Length: 0\r\n\r\n");
    else
        reply = lb_xstrdup ("HTTP/1.1 404 Not Found\r\nContent-Length: 9\r\n\r\nnot found");
    size_t off = 0, total = strlen (reply);
    while (off < total) {
        ssize_t n = write (conn, reply + off, total - off);
        if (n <= 0)
            break;
        off += (size_t) n;
    }
    free (reply);
}

void
lb_http_test (bool verbose)
{
    (void) verbose;
    int listener = socket (AF_INET, SOCK_STREAM, 0);
    assert (listener >= 0);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
    assert (bind (listener, (struct sockaddr *) &addr, sizeof addr) == 0);
    assert (listen (listener, 16) == 0);
    socklen_t alen = sizeof addr;
    assert (getsockname (listener, (struct sockaddr *) &addr, &alen) == 0);
    int port = ntohs (addr.sin_port);
    pid_t server = fork ();
    assert (server >= 0);
    if (server == 0) {
        for (;;) {
            int conn = accept (listener, NULL, NULL);
            if (conn < 0)
                _exit (0);
            s_serve_one (conn);
            close (conn);
        }
    }
    close (listener);
    char url [128];
    lb_http_response_t resp;

    //  GET with headers, the last of a repeated one wins.
    snprintf (url, sizeof url, "http://127.0.0.1:%d/ok", port);
    lb_http_request_t req = { .url = url };
    assert (lb_http_perform (&req, &resp) == 0);
    assert (resp.status == 200 && resp.body_len == 5 && strcmp (resp.body, "hello") == 0);
    assert (strcmp (lb_http_response_header (&resp, "X-TEST"), "two") == 0);
    assert (strcmp (lb_http_response_header (&resp, "content-type"), "text/plain") == 0);
    assert (lb_http_response_header (&resp, "x-none") == NULL);
    assert (resp.error == NULL);
    lb_http_response_release (&resp);
    lb_http_response_release (&resp);

    //  HEAD: headers, no body.
    req.method = "HEAD";
    assert (lb_http_perform (&req, &resp) == 0);
    assert (resp.status == 200 && resp.body_len == 0);
    assert (strcmp (lb_http_response_header (&resp, "content-length"), "5") == 0);
    lb_http_response_release (&resp);

    //  POST with a body and a secret header, ranged.
    snprintf (url, sizeof url, "http://127.0.0.1:%d/echo", port);
    const char *headers [] = { "x-api-key: sk-secret-value", "content-type: application/json", NULL };
    lb_http_request_t post = { .method = "POST", .url = url, .headers = headers,
                               .body = "{\"a\":1}", .body_len = 7 };
    assert (lb_http_perform (&post, &resp) == 0);
    if (resp.status != 201 || strcmp (resp.body, "{\"a\":1}"))
        fprintf (stderr, "echo: %ld [%s] %s\n", resp.status, resp.body, resp.error ? resp.error : "");
    assert (resp.status == 201 && strcmp (resp.body, "{\"a\":1}") == 0);
    assert (strcmp (lb_http_response_header (&resp, "x-method"), "POST") == 0);
    assert (strcmp (lb_http_response_header (&resp, "x-had-key"), "yes") == 0);
    assert (strcmp (lb_http_response_header (&resp, "x-had-range"), "no") == 0);
    lb_http_response_release (&resp);
    lb_http_request_t ranged = { .url = url, .range = "0-0" };
    assert (lb_http_perform (&ranged, &resp) == 0);
    assert (strcmp (lb_http_response_header (&resp, "x-method"), "GET") == 0);
    assert (strcmp (lb_http_response_header (&resp, "x-had-key"), "no") == 0);
    assert (strcmp (lb_http_response_header (&resp, "x-had-range"), "yes") == 0);
    lb_http_response_release (&resp);

    //  Statuses are results, not failures; redirects are not followed.
    snprintf (url, sizeof url, "http://127.0.0.1:%d/missing", port);
    lb_http_request_t get = { .url = url };
    assert (lb_http_perform (&get, &resp) == 0 && resp.status == 404);
    lb_http_response_release (&resp);
    snprintf (url, sizeof url, "http://127.0.0.1:%d/redirect", port);
    assert (lb_http_perform (&get, &resp) == 0 && resp.status == 302);
    assert (strcmp (lb_http_response_header (&resp, "location"), "http://169.254.169.254/") == 0);
    lb_http_response_release (&resp);

    //  Body cap.
    snprintf (url, sizeof url, "http://127.0.0.1:%d/big", port);
    get.max_body = 1000;
    assert (lb_http_perform (&get, &resp) == -1);
    assert (strstr (resp.error, "exceeds 1000 bytes"));
    lb_http_response_release (&resp);
    get.max_body = 0;
    assert (lb_http_perform (&get, &resp) == 0 && resp.body_len == 100000);
    lb_http_response_release (&resp);

    //  Pinned address: the name does not resolve, the pin makes it reach us.
    snprintf (url, sizeof url, "http://pinned.invalid:%d/ok", port);
    char pin [96];
    snprintf (pin, sizeof pin, "pinned.invalid:%d:127.0.0.1", port);
    lb_http_request_t pinned = { .url = url, .resolve = pin };
    assert (lb_http_perform (&pinned, &resp) == 0 && resp.status == 200);
    lb_http_response_release (&resp);

    //  Whole-call timeout.
    snprintf (url, sizeof url, "http://127.0.0.1:%d/slow", port);
    lb_http_request_t slow = { .url = url, .timeout = 0.3 };
    assert (lb_http_perform (&slow, &resp) == -1);
    if (!resp.error || !strstr (resp.error, "imed out"))
        fprintf (stderr, "slow: %s\n", resp.error ? resp.error : "(none)");
    assert (resp.error && strstr (resp.error, "imed out"));
    assert (resp.status == 0);
    lb_http_response_release (&resp);

    //  Other protocols are refused.
    lb_http_request_t ftp = { .url = "ftp://127.0.0.1/x" };
    assert (lb_http_perform (&ftp, &resp) == -1 && resp.error);
    lb_http_response_release (&resp);

    kill (server, SIGKILL);
    waitpid (server, NULL, 0);

    //  Connection refused (the server is gone).
    snprintf (url, sizeof url, "http://127.0.0.1:%d/ok", port);
    lb_http_request_t gone = { .url = url, .connect_timeout = 2 };
    assert (lb_http_perform (&gone, &resp) == -1 && resp.error && resp.status == 0);
    lb_http_response_release (&resp);
}
