/*  lb_download.c - one remote file to disk through libcurl (see lb_download.h). */
#include "lb_download.h"
#include "lb_clock.h"
#include "lb_log.h"
#include "lb_mem.h"
#include "lb_selftest.h"

#include <assert.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <microhttpd.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

void
lb_download_opts_default (lb_download_opts_t *o)
{
    assert (o);
    memset (o, 0, sizeof *o);
    o->connect_timeout = 10;
    o->timeout = 300;
    o->retries = 3;
    o->backoff = 0.5;
    o->max_redirects = 5;
    o->max_bytes = INT64_C (1) << 30;
}

int
lb_download_mkdir_p (const char *dir)
{
    assert (dir);
    char *path = lb_xstrdup (dir);
    int rc = 0;
    for (char *p = path + 1; rc == 0; p++) {
        bool end = *p == 0;
        if (*p == '/' || end) {
            *p = 0;
            if (mkdir (path, 0755) && errno != EEXIST)
                rc = -1;
            if (end)
                break;
            *p = '/';
        }
    }
    free (path);
    return rc;
}

void
lb_download_result_release (lb_download_result_t *r)
{
    assert (r);
    free (r->path);
    memset (r, 0, sizeof *r);
}

//  One transfer's state, shared with libcurl's callbacks.
typedef struct {
    FILE *file;
    int64_t have;               //  bytes in the file before this transfer
    int64_t written;            //  bytes written by this transfer
    int64_t cap;
    bool over, truncate;
    long status;                //  of the last status line seen
    bool ranged;                //  we sent a Range
    char etag [256], last_modified [128];
} s_xfer_t;

static size_t
s_on_header (char *line, size_t size, size_t n, void *arg)
{
    s_xfer_t *x = arg;
    size_t len = size * n;
    if (len > 5 && strncmp (line, "HTTP/", 5) == 0) {
        const char *sp = memchr (line, ' ', len);
        x->status = sp ? strtol (sp + 1, NULL, 10) : 0;
        x->etag [0] = x->last_modified [0] = 0;
        //  A full answer to a ranged request: start the file over.
        x->truncate = x->ranged && x->status == 200;
        return len;
    }
    const char *colon = memchr (line, ':', len);
    if (!colon)
        return len;
    size_t name_len = (size_t) (colon - line);
    const char *v = colon + 1;
    while (v < line + len && (*v == ' ' || *v == '\t'))
        v++;
    size_t vlen = (size_t) (line + len - v);
    while (vlen && (v [vlen - 1] == '\r' || v [vlen - 1] == '\n' || v [vlen - 1] == ' '))
        vlen--;
    if (name_len == 4 && strncasecmp (line, "etag", 4) == 0 && vlen < sizeof x->etag)
        snprintf (x->etag, sizeof x->etag, "%.*s", (int) vlen, v);
    if (name_len == 13 && strncasecmp (line, "last-modified", 13) == 0 && vlen < sizeof x->last_modified)
        snprintf (x->last_modified, sizeof x->last_modified, "%.*s", (int) vlen, v);
    return len;
}

static size_t
s_on_body (char *data, size_t size, size_t n, void *arg)
{
    s_xfer_t *x = arg;
    size_t len = size * n;
    if (x->status != 200 && x->status != 206)
        return len;                     //  redirect and error bodies are not data
    if (x->truncate) {
        if (ftruncate (fileno (x->file), 0) || fseek (x->file, 0, SEEK_SET))
            return 0;
        x->have = 0;
        x->truncate = false;
    }
    if (x->have + x->written + (int64_t) len > x->cap) {
        x->over = true;
        return 0;                       //  aborts the transfer
    }
    if (fwrite (data, 1, len, x->file) != len)
        return 0;
    x->written += (int64_t) len;
    return len;
}

static int
s_sha256_file (const char *path, char hex [65], int64_t *bytes)
{
    FILE *f = fopen (path, "rb");
    if (!f)
        return -1;
    crypto_hash_sha256_state st;
    crypto_hash_sha256_init (&st);
    unsigned char *buf = lb_xmalloc (1 << 20);
    size_t n;
    *bytes = 0;
    while ((n = fread (buf, 1, 1 << 20, f)) > 0) {
        crypto_hash_sha256_update (&st, buf, n);
        *bytes += (int64_t) n;
    }
    free (buf);
    int rc = ferror (f) ? -1 : 0;
    fclose (f);
    unsigned char digest [32];
    crypto_hash_sha256_final (&st, digest);
    for (int i = 0; i < 32; i++)
        snprintf (hex + 2 * i, 3, "%02x", digest [i]);
    return rc;
}

static void
s_read_meta (const char *path, char *etag, size_t esize, char *lm, size_t lsize)
{
    etag [0] = lm [0] = 0;
    FILE *f = fopen (path, "r");
    if (!f)
        return;
    char line [512];
    while (fgets (line, sizeof line, f)) {
        line [strcspn (line, "\n")] = 0;
        size_t len = strlen (line);
        if (strncmp (line, "etag=", 5) == 0 && len - 5 < esize)
            memcpy (etag, line + 5, len - 5 + 1);
        if (strncmp (line, "last_modified=", 14) == 0 && len - 14 < lsize)
            memcpy (lm, line + 14, len - 14 + 1);
    }
    fclose (f);
}

static void
s_write_meta (const char *path, const char *url, const s_xfer_t *x, const char *sha, int64_t bytes)
{
    char *tmp = lb_xasprintf ("%s.tmp", path);
    FILE *f = fopen (tmp, "w");
    if (f) {
        fprintf (f, "url=%s\netag=%s\nlast_modified=%s\nsha256=%s\nbytes=%lld\n", url, x->etag,
                 x->last_modified, sha, (long long) bytes);
        if (fclose (f) == 0)
            rename (tmp, path);
    }
    unlink (tmp);
    free (tmp);
}

static bool
s_retryable_curl (CURLcode rc)
{
    return rc == CURLE_OPERATION_TIMEDOUT || rc == CURLE_COULDNT_CONNECT || rc == CURLE_PARTIAL_FILE
        || rc == CURLE_RECV_ERROR || rc == CURLE_SEND_ERROR || rc == CURLE_GOT_NOTHING
        || rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_SSL_CONNECT_ERROR
        || rc == CURLE_HTTP2 || rc == CURLE_HTTP2_STREAM;
}

int
lb_download (const char *url, const lb_download_opts_t *o, lb_download_result_t *r,
             char **error_p, bool *retryable)
{
    assert (url && o && o->policy && o->cache_dir && r && error_p && retryable);
    memset (r, 0, sizeof *r);
    *error_p = NULL;
    *retryable = false;
    if (lb_download_mkdir_p (o->cache_dir)) {
        *error_p = lb_xasprintf ("cannot create %s: %s", o->cache_dir, strerror (errno));
        *retryable = true;
        return -1;
    }
    unsigned char digest [32];
    crypto_hash_sha256 (digest, (const unsigned char *) url, strlen (url));
    char key [17];
    for (int i = 0; i < 8; i++)
        snprintf (key + 2 * i, 3, "%02x", digest [i]);
    char *data = lb_xasprintf ("%s/%s.data", o->cache_dir, key);
    char *part = lb_xasprintf ("%s/%s.part", o->cache_dir, key);
    char *meta = lb_xasprintf ("%s/%s.meta", o->cache_dir, key);
    char etag [256], lm [128];
    struct stat st;
    bool cached = stat (data, &st) == 0;
    if (cached)
        s_read_meta (meta, etag, sizeof etag, lm, sizeof lm);
    else
        etag [0] = lm [0] = 0;
    char *cur = lb_xstrdup (url);
    int redirects = 0, failures = 0, rc = -1;
    double delay = o->backoff;
    CURL *curl = curl_easy_init ();
    assert (curl);
    for (;;) {
        char *resolve = NULL, *why = NULL;
        if (lb_netpolicy_check_url (o->policy, cur, &resolve, &why)) {
            *error_p = redirects ? lb_xasprintf ("redirect %d to %s refused: %s", redirects, cur, why)
                                 : lb_xasprintf ("%s refused: %s", cur, why);
            free (why);
            break;
        }
        int64_t have = stat (part, &st) == 0 ? (int64_t) st.st_size : 0;
        FILE *file = fopen (part, "ab");
        if (!file) {
            *error_p = lb_xasprintf ("cannot write %s: %s", part, strerror (errno));
            *retryable = true;
            free (resolve);
            break;
        }
        s_xfer_t x = { file, have, 0, o->max_bytes, false, false, 0, have > 0, "", "" };
        struct curl_slist *pin = curl_slist_append (NULL, resolve);
        struct curl_slist *headers = NULL, *connect_to = NULL;
        char range [32];
        curl_easy_reset (curl);
        curl_easy_setopt (curl, CURLOPT_URL, cur);
        curl_easy_setopt (curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt (curl, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt (curl, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt (curl, CURLOPT_RESOLVE, pin);
        curl_easy_setopt (curl, CURLOPT_CONNECTTIMEOUT_MS, (long) (o->connect_timeout * 1000));
        curl_easy_setopt (curl, CURLOPT_TIMEOUT_MS, (long) (o->timeout * 1000));
        curl_easy_setopt (curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);
        curl_easy_setopt (curl, CURLOPT_LOW_SPEED_TIME, 30L);
        curl_easy_setopt (curl, CURLOPT_HEADERFUNCTION, s_on_header);
        curl_easy_setopt (curl, CURLOPT_HEADERDATA, &x);
        curl_easy_setopt (curl, CURLOPT_WRITEFUNCTION, s_on_body);
        curl_easy_setopt (curl, CURLOPT_WRITEDATA, &x);
        curl_easy_setopt (curl, CURLOPT_USERAGENT, "predictors-fetch/1");
        if (o->connect_to) {
            connect_to = curl_slist_append (NULL, o->connect_to);
            curl_easy_setopt (curl, CURLOPT_CONNECT_TO, connect_to);
        }
        if (have > 0) {
            snprintf (range, sizeof range, "%lld-", (long long) have);
            curl_easy_setopt (curl, CURLOPT_RANGE, range);
        }
        else
            curl_easy_setopt (curl, CURLOPT_ACCEPT_ENCODING, "");
        if (cached && have == 0) {
            char h [400];
            if (etag [0]) {
                snprintf (h, sizeof h, "If-None-Match: %s", etag);
                headers = curl_slist_append (headers, h);
            }
            if (lm [0]) {
                snprintf (h, sizeof h, "If-Modified-Since: %s", lm);
                headers = curl_slist_append (headers, h);
            }
            curl_easy_setopt (curl, CURLOPT_HTTPHEADER, headers);
        }
        CURLcode cc = curl_easy_perform (curl);
        r->attempts++;
        long status = 0;
        curl_easy_getinfo (curl, CURLINFO_RESPONSE_CODE, &status);
        char *location = NULL;
        if (cc == CURLE_OK && status >= 300 && status < 400 && status != 304) {
            char *loc = NULL;
            curl_easy_getinfo (curl, CURLINFO_REDIRECT_URL, &loc);
            location = loc ? lb_xstrdup (loc) : NULL;
        }
        bool write_failed = fflush (file) != 0;
        fclose (file);
        curl_slist_free_all (pin);
        curl_slist_free_all (headers);
        curl_slist_free_all (connect_to);
        free (resolve);
        if (x.over) {
            unlink (part);
            *error_p = lb_xasprintf ("%s: the body is over the cap of %lld bytes", cur, (long long) o->max_bytes);
            free (location);
            break;
        }
        if (write_failed) {
            unlink (part);
            *error_p = lb_xasprintf ("cannot write %s", part);
            *retryable = true;
            free (location);
            break;
        }
        if (cc == CURLE_OK && location) {
            free (cur);
            cur = location;
            if (++redirects > o->max_redirects) {
                *error_p = lb_xasprintf ("more than %d redirects (last to %s)", o->max_redirects, cur);
                break;
            }
            continue;
        }
        free (location);
        if (cc == CURLE_OK && status == 304 && cached) {
            unlink (part);
            r->not_modified = true;
            rc = 0;
            break;
        }
        if (cc == CURLE_OK && (status == 200 || status == 206)) {
            if (status == 206)
                r->resumed++;
            if (rename (part, data)) {
                *error_p = lb_xasprintf ("cannot rename %s: %s", part, strerror (errno));
                *retryable = true;
                break;
            }
            char sha [65];
            int64_t bytes;
            if (s_sha256_file (data, sha, &bytes) == 0)
                s_write_meta (meta, url, &x, sha, bytes);
            rc = 0;
            break;
        }
        bool again;
        char *what;
        if (cc != CURLE_OK) {
            again = s_retryable_curl (cc);
            what = lb_xasprintf ("%s: %s", cur, curl_easy_strerror (cc));
        }
        else {
            again = status >= 500 || status == 429 || status == 408 || status == 416;
            what = lb_xasprintf ("%s: HTTP %ld", cur, status);
            if (status == 416)
                unlink (part);
            else
            if (x.written == 0 && have == 0)
                unlink (part);
        }
        if (!again || failures >= o->retries) {
            *error_p = again ? lb_xasprintf ("%s (after %d attempts)", what, failures + 1) : lb_xstrdup (what);
            *retryable = again;
            free (what);
            break;
        }
        lb_log_warn ("download: %s; retrying in %.2fs", what, delay);
        free (what);
        failures++;
        double jitter = 0.75 + 0.5 * (double) (lb_clock_mono_us () % 1000) / 1000.0;
        lb_clock_sleep_us ((int64_t) (delay * jitter * 1e6), NULL);
        delay *= 2;
    }
    curl_easy_cleanup (curl);
    free (cur);
    if (rc)
        unlink (part);          //  a failed download leaves nothing half-written
    if (rc == 0) {
        r->path = lb_xstrdup (data);
        if (s_sha256_file (data, r->sha256, &r->bytes)) {
            *error_p = lb_xasprintf ("cannot read %s", data);
            *retryable = true;
            lb_download_result_release (r);
            rc = -1;
        }
    }
    free (data);
    free (part);
    free (meta);
    return rc;
}

// ---------------------------------------------------------------- selftest

typedef struct {
    int port;
    int flaky;                  //  requests to /flaky so far
    int drops;                  //  requests to /drop so far
} s_server_t;

static const char s_gz [] =
    "\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\x03\xcb\x48\xcd\xc9\xc9\x57\x48\xaf\xca\x2c\xe0\xca\x18"
    "\x65\x8e\x32\xb1\x33\x01\x68\x44\xae\x7c\x26\x02\x00\x00";

static char
s_byte (uint64_t pos)
{
    return (char) ('a' + (pos * 7 + pos / 13) % 26);
}

//  Serves bytes [from, total) of the pattern; with cut, stops with an error at cut.
typedef struct {
    uint64_t from, total, cut;
    int delay_ms;
} s_stream_t;

static ssize_t
s_stream (void *cls, uint64_t pos, char *buf, size_t max)
{
    s_stream_t *s = cls;
    if (s->delay_ms) {
        usleep ((useconds_t) s->delay_ms * 1000);
        s->delay_ms = 0;
    }
    uint64_t at = s->from + pos;
    if (s->cut && at >= s->cut)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (at >= s->total)
        return MHD_CONTENT_READER_END_OF_STREAM;
    size_t n = 0;
    while (n < max && at + n < s->total && (!s->cut || at + n < s->cut)) {
        buf [n] = s_byte (at + n);
        n++;
    }
    return (ssize_t) n;
}

static enum MHD_Result
s_handler (void *cls, struct MHD_Connection *conn, const char *url, const char *method,
           const char *version, const char *upload, size_t *upload_size, void **state)
{
    (void) method; (void) version; (void) upload; (void) upload_size;
    s_server_t *srv = cls;
    if (*state == NULL) {
        *state = srv;                   //  first call: headers only
        return MHD_YES;
    }
    struct MHD_Response *resp = NULL;
    unsigned status = 200;
    if (strcmp (url, "/ok") == 0) {
        const char *inm = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "If-None-Match");
        if (inm && strcmp (inm, "\"v1\"") == 0) {
            resp = MHD_create_response_from_buffer (0, (void *) "", MHD_RESPMEM_PERSISTENT);
            status = 304;
        }
        else {
            s_stream_t *s = lb_xcalloc (1, sizeof *s);
            s->total = 100000;
            resp = MHD_create_response_from_callback (s->total, 4096, s_stream, s, free);
        }
        MHD_add_response_header (resp, "ETag", "\"v1\"");
    }
    else
    if (strcmp (url, "/gz") == 0) {
        resp = MHD_create_response_from_buffer (sizeof s_gz - 1, (void *) s_gz, MHD_RESPMEM_PERSISTENT);
        MHD_add_response_header (resp, "Content-Encoding", "gzip");
    }
    else
    if (strcmp (url, "/flaky") == 0) {
        status = srv->flaky++ == 0 ? 503 : 200;
        resp = MHD_create_response_from_buffer (2, (void *) "ok", MHD_RESPMEM_PERSISTENT);
    }
    else
    if (strcmp (url, "/500") == 0 || strcmp (url, "/404") == 0) {
        status = url [1] == '5' ? 500 : 404;
        resp = MHD_create_response_from_buffer (5, (void *) "error", MHD_RESPMEM_PERSISTENT);
    }
    else
    if (strcmp (url, "/slow") == 0) {
        s_stream_t *s = lb_xcalloc (1, sizeof *s);
        s->total = 10;
        s->delay_ms = 2500;
        resp = MHD_create_response_from_callback (s->total, 4096, s_stream, s, free);
    }
    else
    if (strcmp (url, "/loop") == 0 || strcmp (url, "/private") == 0 || strcmp (url, "/hop") == 0) {
        status = 302;
        resp = MHD_create_response_from_buffer (0, (void *) "", MHD_RESPMEM_PERSISTENT);
        char loc [128];
        if (url [1] == 'l')
            snprintf (loc, sizeof loc, "/loop");
        else
        if (url [1] == 'h')
            snprintf (loc, sizeof loc, "/ok");
        else
            snprintf (loc, sizeof loc, "http://127.0.0.1:%d/ok", srv->port);
        MHD_add_response_header (resp, "Location", loc);
    }
    else
    if (strcmp (url, "/big") == 0) {
        s_stream_t *s = lb_xcalloc (1, sizeof *s);
        s->total = 3 << 20;
        resp = MHD_create_response_from_callback (s->total, 65536, s_stream, s, free);
    }
    else
    if (strcmp (url, "/drop") == 0) {
        //  200000 bytes; the first answer breaks off at 120000, later ones honour Range.
        s_stream_t *s = lb_xcalloc (1, sizeof *s);
        s->total = 200000;
        const char *range = MHD_lookup_connection_value (conn, MHD_HEADER_KIND, "Range");
        unsigned long long from = 0;
        if (range && sscanf (range, "bytes=%llu-", &from) == 1 && from < s->total) {
            s->from = from;
            status = 206;
        }
        if (srv->drops++ == 0)
            s->cut = 120000;
        resp = MHD_create_response_from_callback (s->total - s->from, 4096, s_stream, s, free);
        if (status == 206) {
            char cr [64];
            snprintf (cr, sizeof cr, "bytes %llu-%llu/%llu", from, (unsigned long long) s->total - 1,
                      (unsigned long long) s->total);
            MHD_add_response_header (resp, "Content-Range", cr);
        }
    }
    else {
        status = 404;
        resp = MHD_create_response_from_buffer (0, (void *) "", MHD_RESPMEM_PERSISTENT);
    }
    enum MHD_Result ret = MHD_queue_response (conn, status, resp);
    MHD_destroy_response (resp);
    return ret;
}

//  Every name resolves to a public documentation-free address; CONNECT_TO
//  sends the connection to the loopback server.
static int
s_public_resolver (void *arg, const char *host, const char *service, const struct addrinfo *hints,
                   struct addrinfo **res)
{
    (void) arg;
    struct addrinfo h = *hints;
    h.ai_flags |= AI_NUMERICHOST;
    bool literal = strspn (host, "0123456789.") == strlen (host);
    return getaddrinfo (literal ? host : "93.184.216.34", service, &h, res);
}

void
lb_download_test (bool verbose)
{
    s_server_t srv = { 0, 0, 0 };
    struct MHD_Daemon *d = MHD_start_daemon (MHD_USE_THREAD_PER_CONNECTION | MHD_USE_INTERNAL_POLLING_THREAD,
                                             0, NULL, NULL, s_handler, &srv,
                                             MHD_OPTION_CONNECTION_TIMEOUT, 10u, MHD_OPTION_END);
    assert (d);
    srv.port = MHD_get_daemon_info (d, MHD_DAEMON_INFO_BIND_PORT)->port;
    assert (srv.port > 0);
    char *dir = lb_selftest_tmpdir ("lb_download");
    lb_netpolicy_t *policy = lb_netpolicy_new ();
    lb_netpolicy_set_allow_http (policy, true);
    lb_netpolicy_set_resolver (policy, s_public_resolver, NULL);
    char connect_to [64];
    snprintf (connect_to, sizeof connect_to, "::127.0.0.1:%d", srv.port);
    lb_download_opts_t o;
    lb_download_opts_default (&o);
    o.policy = policy;
    o.cache_dir = dir;
    o.connect_to = connect_to;
    o.backoff = 0.05;
    o.timeout = 5;
    int log_fd = verbose ? -2 : lb_log_setup_fd (-1);
    char url [128], *error = NULL;
    bool retry;
    lb_download_result_t r;
    #define S_URL(path) (snprintf (url, sizeof url, "http://data.test:%d%s", srv.port, path), url)

    //  A plain download, then a conditional one that reuses the file (304).
    assert (lb_download (S_URL ("/ok"), &o, &r, &error, &retry) == 0);
    assert (r.bytes == 100000 && !r.not_modified && strlen (r.sha256) == 64);
    char first_sha [65];
    memcpy (first_sha, r.sha256, 65);
    lb_download_result_release (&r);
    assert (lb_download (S_URL ("/ok"), &o, &r, &error, &retry) == 0);
    assert (r.not_modified && r.bytes == 100000 && strcmp (r.sha256, first_sha) == 0);
    lb_download_result_release (&r);
    //  gzip is decoded.
    assert (lb_download (S_URL ("/gz"), &o, &r, &error, &retry) == 0);
    assert (r.bytes == 550);
    lb_download_result_release (&r);
    //  A redirect within the allowed host is followed.
    assert (lb_download (S_URL ("/hop"), &o, &r, &error, &retry) == 0 && r.attempts == 2);
    lb_download_result_release (&r);
    //  503 then 200: retried.
    assert (lb_download (S_URL ("/flaky"), &o, &r, &error, &retry) == 0 && r.attempts == 2);
    lb_download_result_release (&r);
    //  A dropped transfer resumes with Range; the bytes are the whole file.
    assert (lb_download (S_URL ("/drop"), &o, &r, &error, &retry) == 0);
    assert (r.bytes == 200000 && r.resumed == 1);
    FILE *f = fopen (r.path, "rb");
    assert (f);
    bool same = true;
    for (uint64_t i = 0; i < 200000; i++)
        same &= fgetc (f) == (unsigned char) s_byte (i);
    fclose (f);
    assert (same);
    lb_download_result_release (&r);
    //  Failures: permanent or retryable, each named.
    assert (lb_download (S_URL ("/404"), &o, &r, &error, &retry) == -1 && !retry && strstr (error, "HTTP 404"));
    if (verbose) printf ("  %s\n", error);
    free (error);
    assert (lb_download (S_URL ("/500"), &o, &r, &error, &retry) == -1 && retry && strstr (error, "after 4 attempts"));
    if (verbose) printf ("  %s\n", error);
    free (error);
    assert (lb_download (S_URL ("/loop"), &o, &r, &error, &retry) == -1 && !retry && strstr (error, "redirects"));
    if (verbose) printf ("  %s\n", error);
    free (error);
    assert (lb_download (S_URL ("/private"), &o, &r, &error, &retry) == -1 && !retry);
    assert (strstr (error, "redirect 1 to http://127.0.0.1") && strstr (error, "private"));
    if (verbose) printf ("  %s\n", error);
    free (error);
    o.max_bytes = 1 << 20;
    assert (lb_download (S_URL ("/big"), &o, &r, &error, &retry) == -1 && !retry && strstr (error, "over the cap"));
    if (verbose) printf ("  %s\n", error);
    free (error);
    o.timeout = 1;
    o.retries = 1;
    assert (lb_download (S_URL ("/slow"), &o, &r, &error, &retry) == -1 && retry);
    assert (strstr (error, "imeout") || strstr (error, "timed out"));
    if (verbose) printf ("  %s\n", error);
    free (error);
    //  Policy: https only by default; no credentials.
    lb_netpolicy_set_allow_http (policy, false);
    assert (lb_download (S_URL ("/ok"), &o, &r, &error, &retry) == -1 && strstr (error, "http"));
    free (error);
    #undef S_URL
    //  Nothing half-written is left behind: only .data and .meta files.
    char *cmd = lb_xasprintf ("ls %s | grep -c part", dir);
    FILE *p = popen (cmd, "r");
    int parts = -1;
    assert (p && fscanf (p, "%d", &parts) == 1);
    pclose (p);
    free (cmd);
    assert (parts == 0);
    if (log_fd != -2)
        lb_log_setup_fd (log_fd);
    lb_netpolicy_destroy (&policy);
    MHD_stop_daemon (d);
    lb_selftest_rmtree (dir);
    free (dir);
}
