/*  lb_netpolicy.c - source URI syntax and the rules on what may be read. */
#include "lb_netpolicy.h"
#include "lb_config.h"
#include "lb_log.h"
#include "lb_mem.h"
#include "lb_selftest.h"

#include <arpa/inet.h>
#include <assert.h>
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <stdarg.h>
#include <sys/stat.h>
#include <unistd.h>

#define S_MAX_URI 2048
#define S_MAX_LIST 32

struct _lb_netpolicy_t {
    bool allow_http;
    bool allow_private;
    char *roots [S_MAX_LIST];       //  real paths, no trailing slash
    size_t root_count;
    char *tables [S_MAX_LIST];
    size_t table_count;
    char *packages [S_MAX_LIST];
    size_t package_count;
    lb_netpolicy_resolver_fn *resolver;
    void *resolver_arg;
};

static int
s_getaddrinfo (void *arg, const char *host, const char *service,
               const struct addrinfo *hints, struct addrinfo **res)
{
    (void) arg;
    return getaddrinfo (host, service, hints, res);
}

static void
s_list_clear (char **list, size_t *count)
{
    for (size_t i = 0; i < *count; i++)
        free (list [i]);
    *count = 0;
}

static void
s_list_set (char **list, size_t *count, const char *comma_list)
{
    s_list_clear (list, count);
    const char *p = comma_list ? comma_list : "";
    while (*p) {
        while (*p == ' ' || *p == ',')
            p++;
        const char *end = p;
        while (*end && *end != ',')
            end++;
        const char *last = end;
        while (last > p && last [-1] == ' ')
            last--;
        if (last > p && *count < S_MAX_LIST)
            list [(*count)++] = lb_xstrndup (p, (size_t) (last - p));
        p = end;
    }
}

static bool
s_list_has (char *const *list, size_t count, const char *name)
{
    for (size_t i = 0; i < count; i++)
        if (strcmp (list [i], name) == 0)
            return true;
    return false;
}

lb_netpolicy_t *
lb_netpolicy_new (void)
{
    lb_netpolicy_t *self = lb_xcalloc (1, sizeof *self);
    s_list_set (self->tables, &self->table_count, "market_bars,pattern_training_data");
    s_list_set (self->packages, &self->package_count,
                "python3-vega-datasets,r-cran-timeseries,python3-statsmodels,python3-sklearn");
    self->resolver = s_getaddrinfo;
    return self;
}

lb_netpolicy_t *
lb_netpolicy_new_config (lb_config_t *cfg)
{
    lb_netpolicy_t *self = lb_netpolicy_new ();
    lb_netpolicy_set_allow_http (self, lb_config_bool (cfg, "sources.allow_http"));
    lb_netpolicy_set_allow_private (self, lb_config_bool (cfg, "sources.allow_private"));
    lb_netpolicy_set_pg_tables (self, lb_config_str (cfg, "sources.pg_tables"));
    lb_netpolicy_set_debian_packages (self, lb_config_str (cfg, "sources.debian_packages"));
    char *roots [S_MAX_LIST];
    size_t count = 0;
    s_list_set (roots, &count, lb_config_str (cfg, "sources.file_roots"));
    int rc = 0;
    for (size_t i = 0; i < count; i++)
        if (lb_netpolicy_add_file_root (self, roots [i])) {
            lb_log_error ("sources.file_roots (%s): '%s' is not an existing directory",
                          lb_config_origin (cfg, "sources.file_roots"), roots [i]);
            rc = -1;
        }
    s_list_clear (roots, &count);
    if (rc)
        lb_netpolicy_destroy (&self);
    return self;
}

void
lb_netpolicy_destroy (lb_netpolicy_t **self_p)
{
    assert (self_p);
    lb_netpolicy_t *self = *self_p;
    if (!self)
        return;
    s_list_clear (self->roots, &self->root_count);
    s_list_clear (self->tables, &self->table_count);
    s_list_clear (self->packages, &self->package_count);
    free (self);
    *self_p = NULL;
}

void
lb_netpolicy_set_allow_http (lb_netpolicy_t *self, bool allow)
{
    assert (self);
    self->allow_http = allow;
}

void
lb_netpolicy_set_allow_private (lb_netpolicy_t *self, bool allow)
{
    assert (self);
    self->allow_private = allow;
}

int
lb_netpolicy_add_file_root (lb_netpolicy_t *self, const char *dir)
{
    assert (self && dir);
    char real [PATH_MAX];
    struct stat st;
    if (!realpath (dir, real) || stat (real, &st) || !S_ISDIR (st.st_mode))
        return -1;
    if (self->root_count == S_MAX_LIST)
        return -1;
    size_t len = strlen (real);
    while (len > 1 && real [len - 1] == '/')
        real [--len] = 0;
    self->roots [self->root_count++] = lb_xstrdup (real);
    return 0;
}

void
lb_netpolicy_set_pg_tables (lb_netpolicy_t *self, const char *comma_list)
{
    assert (self);
    s_list_set (self->tables, &self->table_count, comma_list);
}

void
lb_netpolicy_set_debian_packages (lb_netpolicy_t *self, const char *comma_list)
{
    assert (self);
    s_list_set (self->packages, &self->package_count, comma_list);
}

void
lb_netpolicy_set_resolver (lb_netpolicy_t *self, lb_netpolicy_resolver_fn *fn, void *arg)
{
    assert (self);
    self->resolver = fn ? fn : s_getaddrinfo;
    self->resolver_arg = arg;
}

//  --------------------------------------------------------------------------
//  Syntax

void
lb_source_uri_release (lb_source_uri_t *uri)
{
    if (!uri)
        return;
    free (uri->host);
    free (uri->path);
    free (uri->name);
    memset (uri, 0, sizeof *uri);
}

static int
s_fail (char **error_p, const char *fmt, ...) __attribute__ ((format (printf, 2, 3)));

static int
s_fail (char **error_p, const char *fmt, ...)
{
    va_list args;
    va_start (args, fmt);
    char *text = lb_xvasprintf (fmt, args);
    va_end (args);
    if (error_p)
        *error_p = text;
    else
        free (text);
    return -1;
}

//  An absolute path without "..", ".", empty segments or odd characters.
static int
s_check_abs_path (const char *path, char **error_p)
{
    if (path [0] != '/')
        return s_fail (error_p, "path '%.200s' is not absolute", path);
    for (const char *p = path; *p; p++)
        if (!(isalnum ((unsigned char) *p) || strchr ("/._-+@%~", *p)))
            return s_fail (error_p, "path has a character not allowed (0x%02x) at offset %d",
                           (unsigned char) *p, (int) (p - path));
    for (const char *seg = path + 1; ; ) {
        const char *end = strchr (seg, '/');
        size_t len = end ? (size_t) (end - seg) : strlen (seg);
        if (len == 0)
            return s_fail (error_p, "path '%.200s' has an empty segment", path);
        if ((len == 1 && seg [0] == '.') || (len == 2 && seg [0] == '.' && seg [1] == '.'))
            return s_fail (error_p, "path '%.200s' has a '.' or '..' segment", path);
        if (!end)
            break;
        seg = end + 1;
    }
    return 0;
}

//  Debian package name (policy 5.6.1): [a-z0-9][a-z0-9+.-]+
static bool
s_debian_name_ok (const char *name, size_t len)
{
    if (len < 2 || len > 100 || !(islower ((unsigned char) name [0]) || isdigit ((unsigned char) name [0])))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!(islower ((unsigned char) name [i]) || isdigit ((unsigned char) name [i])
              || name [i] == '+' || name [i] == '.' || name [i] == '-'))
            return false;
    return true;
}

bool
lb_source_name_ok (const char *name)
{
    assert (name);
    size_t len = strlen (name);
    if (len == 0 || len > 63 || !(islower ((unsigned char) name [0]) || name [0] == '_'))
        return false;
    for (size_t i = 0; i < len; i++)
        if (!(islower ((unsigned char) name [i]) || isdigit ((unsigned char) name [i]) || name [i] == '_'))
            return false;
    return true;
}

static int
s_parse_http (const char *uri, lb_source_uri_t *out, char **error_p)
{
    CURLU *u = curl_url ();
    char *scheme = NULL, *host = NULL, *port = NULL, *path = NULL, *query = NULL;
    char *user = NULL, *password = NULL, *fragment = NULL;
    int rc = -1;
    CURLUcode uc = curl_url_set (u, CURLUPART_URL, uri, CURLU_NON_SUPPORT_SCHEME);
    if (uc) {
        s_fail (error_p, "'%.200s' is not a valid URL: %s", uri, curl_url_strerror (uc));
        goto out;
    }
    curl_url_get (u, CURLUPART_SCHEME, &scheme, 0);
    curl_url_get (u, CURLUPART_HOST, &host, 0);
    curl_url_get (u, CURLUPART_PORT, &port, CURLU_DEFAULT_PORT);
    curl_url_get (u, CURLUPART_PATH, &path, 0);
    curl_url_get (u, CURLUPART_QUERY, &query, 0);
    curl_url_get (u, CURLUPART_USER, &user, 0);
    curl_url_get (u, CURLUPART_PASSWORD, &password, 0);
    curl_url_get (u, CURLUPART_FRAGMENT, &fragment, 0);
    if (user || password) {
        s_fail (error_p, "URL '%.200s' carries credentials (user@host), which are not allowed", uri);
        goto out;
    }
    if (!host || !*host) {
        s_fail (error_p, "URL '%.200s' has no host", uri);
        goto out;
    }
    out->kind = strcmp (scheme, "https") == 0 ? LB_SOURCE_HTTPS : LB_SOURCE_HTTP;
    size_t hlen = strlen (host);
    if (host [0] == '[' && hlen > 2 && host [hlen - 1] == ']')
        out->host = lb_xstrndup (host + 1, hlen - 2);
    else
        out->host = lb_xstrdup (host);
    out->port = port ? atoi (port) : (out->kind == LB_SOURCE_HTTPS ? 443 : 80);
    out->path = query ? lb_xasprintf ("%s?%s", path ? path : "/", query)
                      : lb_xstrdup (path ? path : "/");
    rc = 0;
out:
    curl_free (scheme); curl_free (host); curl_free (port); curl_free (path);
    curl_free (query); curl_free (user); curl_free (password); curl_free (fragment);
    curl_url_cleanup (u);
    return rc;
}

int
lb_netpolicy_parse (const char *uri, lb_source_uri_t *out, char **error_p)
{
    assert (uri && out);
    memset (out, 0, sizeof *out);
    size_t len = strlen (uri);
    if (len == 0)
        return s_fail (error_p, "empty URI");
    if (len > S_MAX_URI)
        return s_fail (error_p, "URI is %zu characters long (at most %d)", len, S_MAX_URI);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char) uri [i] <= 0x20 || (unsigned char) uri [i] >= 0x7f)
            return s_fail (error_p, "URI has a space, control or non-ASCII character at offset %zu", i);
    int rc = -1;
    if (strncasecmp (uri, "https://", 8) == 0 || strncasecmp (uri, "http://", 7) == 0) {
        if (strncmp (uri, "https://", 8) && strncmp (uri, "http://", 7))
            return s_fail (error_p, "URI scheme must be lowercase: '%.200s'", uri);
        rc = s_parse_http (uri, out, error_p);
    }
    else
    if (strncmp (uri, "file://", 7) == 0) {
        const char *path = uri + 7;
        if (path [0] != '/')
            return s_fail (error_p, "file URI '%.200s' must be file:///ABSOLUTE/PATH (no host)", uri);
        if (strchr (path, '?') || strchr (path, '#'))
            return s_fail (error_p, "file URI '%.200s' may not have a query or fragment", uri);
        if (s_check_abs_path (path, error_p))
            return -1;
        out->kind = LB_SOURCE_FILE;
        out->path = lb_xstrdup (path);
        rc = 0;
    }
    else
    if (strncmp (uri, "pg:", 3) == 0) {
        if (!lb_source_name_ok (uri + 3))
            return s_fail (error_p, "'%.200s': a pg: source names one table, pg:TABLE with TABLE "
                           "[a-z_][a-z0-9_]*", uri);
        out->kind = LB_SOURCE_PG;
        out->name = lb_xstrdup (uri + 3);
        rc = 0;
    }
    else
    if (strncmp (uri, "debian:", 7) == 0) {
        const char *pkg = uri + 7;
        const char *colon = strchr (pkg, ':');
        if (!colon || !s_debian_name_ok (pkg, (size_t) (colon - pkg)))
            return s_fail (error_p, "'%.200s' is not debian:PACKAGE:/PATH with a valid package name", uri);
        if (s_check_abs_path (colon + 1, error_p))
            return -1;
        out->kind = LB_SOURCE_DEBIAN;
        out->name = lb_xstrndup (pkg, (size_t) (colon - pkg));
        out->path = lb_xstrdup (colon + 1);
        rc = 0;
    }
    else {
        const char *colon = strchr (uri, ':');
        int n = colon ? (int) (colon - uri) : (int) len;
        return s_fail (error_p, "scheme '%.*s' is not allowed (https, http, file, pg, debian)",
                       n > 20 ? 20 : n, uri);
    }
    if (rc)
        lb_source_uri_release (out);
    return rc;
}

//  --------------------------------------------------------------------------
//  Addresses

static bool
s_v4_public (uint32_t a)
{
    static const struct { uint32_t net; int bits; } bad [] = {
        { 0x00000000, 8 }, { 0x0A000000, 8 }, { 0x64400000, 10 }, { 0x7F000000, 8 },
        { 0xA9FE0000, 16 }, { 0xAC100000, 12 }, { 0xC0000000, 24 }, { 0xC0000200, 24 },
        { 0xC0A80000, 16 }, { 0xC6120000, 15 }, { 0xC6336400, 24 }, { 0xCB007100, 24 },
        { 0xE0000000, 4 }, { 0xF0000000, 4 }
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        uint32_t mask = bad [i].bits ? ~0u << (32 - bad [i].bits) : 0;
        if ((a & mask) == bad [i].net)
            return false;
    }
    return true;
}

bool
lb_netpolicy_addr_is_public (const struct sockaddr *sa)
{
    assert (sa);
    if (sa->sa_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *) sa;
        return s_v4_public (ntohl (in->sin_addr.s_addr));
    }
    if (sa->sa_family != AF_INET6)
        return false;
    const uint8_t *b = ((const struct sockaddr_in6 *) sa)->sin6_addr.s6_addr;
    static const uint8_t zero [16] = { 0 };
    //  ::/96 (unspecified, loopback, IPv4-compatible), ::ffff:0:0/96, 64:ff9b::/96
    bool v4embed = memcmp (b, zero, 12) == 0
        || (memcmp (b, zero, 10) == 0 && b [10] == 0xff && b [11] == 0xff)
        || (b [0] == 0 && b [1] == 0x64 && b [2] == 0xff && b [3] == 0x9b && memcmp (b + 4, zero, 8) == 0);
    if (v4embed) {
        uint32_t a = (uint32_t) b [12] << 24 | (uint32_t) b [13] << 16 | (uint32_t) b [14] << 8 | b [15];
        return s_v4_public (a);
    }
    if ((b [0] & 0xfe) == 0xfc)                             //  fc00::/7 unique local
        return false;
    if (b [0] == 0xfe && (b [1] & 0xc0) == 0x80)            //  fe80::/10 link-local
        return false;
    if (b [0] == 0xfe && (b [1] & 0xc0) == 0xc0)            //  fec0::/10 site-local
        return false;
    if (b [0] == 0xff)                                      //  multicast
        return false;
    if (b [0] == 0x20 && b [1] == 0x01 && b [2] == 0x0d && b [3] == 0xb8)  //  documentation
        return false;
    if (b [0] == 0x01 && b [1] == 0x00 && memcmp (b + 2, zero, 6) == 0)    //  100::/64 discard
        return false;
    return true;
}

//  --------------------------------------------------------------------------
//  Policy

int
lb_netpolicy_check_url (lb_netpolicy_t *self, const char *url, char **resolve_p, char **error_p)
{
    assert (self && url);
    lb_source_uri_t uri;
    if (lb_netpolicy_parse (url, &uri, error_p))
        return -1;
    int rc = -1;
    struct addrinfo *res = NULL;
    char *resolve = NULL;
    if (uri.kind != LB_SOURCE_HTTPS && uri.kind != LB_SOURCE_HTTP) {
        s_fail (error_p, "'%.200s' is not an http(s) URL", url);
        goto out;
    }
    if (uri.kind == LB_SOURCE_HTTP && !self->allow_http) {
        s_fail (error_p, "'%.200s': plain http is not allowed (https only; sources.allow_http)", url);
        goto out;
    }
    if (uri.port <= 0 || uri.port > 65535) {
        s_fail (error_p, "'%.200s': bad port", url);
        goto out;
    }
    struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
    char service [8];
    snprintf (service, sizeof service, "%d", uri.port);
    int gai = self->resolver (self->resolver_arg, uri.host, service, &hints, &res);
    if (gai || !res) {
        s_fail (error_p, "host '%.200s' does not resolve: %s", uri.host,
                gai ? gai_strerror (gai) : "no address");
        goto out;
    }
    bool v6host = strchr (uri.host, ':') != NULL;
    resolve = lb_xasprintf ("%s%s%s:%d:", v6host ? "[" : "", uri.host, v6host ? "]" : "", uri.port);
    int added = 0;
    char *seen_list = lb_xstrdup (",");
    for (struct addrinfo *ai = res; ai; ai = ai->ai_next) {
        if (ai->ai_family != AF_INET && ai->ai_family != AF_INET6)
            continue;
        char text [INET6_ADDRSTRLEN] = "";
        const void *addr = ai->ai_family == AF_INET
            ? (const void *) &((struct sockaddr_in *) ai->ai_addr)->sin_addr
            : (const void *) &((struct sockaddr_in6 *) ai->ai_addr)->sin6_addr;
        inet_ntop (ai->ai_family, addr, text, sizeof text);
        if (!self->allow_private && !lb_netpolicy_addr_is_public (ai->ai_addr)) {
            s_fail (error_p, "host '%.200s' resolves to %s, a private, loopback, link-local or "
                    "reserved address (not allowed; sources.allow_private)", uri.host, text);
            free (seen_list);
            goto out;
        }
        //  Skip repeats (one per socket type or protocol).
        char *mark = lb_xasprintf (",%s,", text);
        bool seen = strstr (seen_list, mark) != NULL;
        if (!seen) {
            char *more_seen = lb_xasprintf ("%s%s,", seen_list, text);
            free (seen_list);
            seen_list = more_seen;
        }
        free (mark);
        if (seen)
            continue;
        char *more = ai->ai_family == AF_INET6
            ? lb_xasprintf ("%s%s[%s]", resolve, added ? "," : "", text)
            : lb_xasprintf ("%s%s%s", resolve, added ? "," : "", text);
        free (resolve);
        resolve = more;
        added++;
    }
    free (seen_list);
    if (!added) {
        s_fail (error_p, "host '%.200s' has no IPv4 or IPv6 address", uri.host);
        goto out;
    }
    if (resolve_p) {
        *resolve_p = resolve;
        resolve = NULL;
    }
    rc = 0;
out:
    if (res)
        freeaddrinfo (res);
    free (resolve);
    lb_source_uri_release (&uri);
    return rc;
}

int
lb_netpolicy_check_uri (lb_netpolicy_t *self, const char *uri_text, char **error_p)
{
    assert (self && uri_text);
    lb_source_uri_t uri;
    if (lb_netpolicy_parse (uri_text, &uri, error_p))
        return -1;
    int rc = -1;
    switch (uri.kind) {
        case LB_SOURCE_HTTPS:
        case LB_SOURCE_HTTP:
            rc = lb_netpolicy_check_url (self, uri_text, NULL, error_p);
            break;
        case LB_SOURCE_FILE: {
            if (self->root_count == 0) {
                s_fail (error_p, "'%.200s': file sources are not allowed (no sources.file_roots)", uri_text);
                break;
            }
            //  Resolve symbolic links: the file itself, or else its directory.
            char *real = realpath (uri.path, NULL);
            if (!real) {
                char *dir = lb_xstrdup (uri.path);
                char *slash = strrchr (dir, '/');
                *slash = 0;
                char *rdir = realpath (*dir ? dir : "/", NULL);
                if (!rdir) {
                    s_fail (error_p, "'%.200s': directory does not exist", uri_text);
                    free (dir);
                    break;
                }
                real = lb_xasprintf ("%s/%s", strcmp (rdir, "/") ? rdir : "", slash + 1);
                free (rdir);
                free (dir);
            }
            for (size_t i = 0; i < self->root_count && rc; i++) {
                size_t n = strlen (self->roots [i]);
                if (strncmp (real, self->roots [i], n) == 0 && (real [n] == '/' || n == 1))
                    rc = 0;
            }
            if (rc)
                s_fail (error_p, "'%.200s' (really %.200s) is not under an allowed root "
                        "(sources.file_roots)", uri_text, real);
            free (real);
            break;
        }
        case LB_SOURCE_PG:
            if (s_list_has (self->tables, self->table_count, uri.name))
                rc = 0;
            else
                s_fail (error_p, "'%.200s': table is not one of sources.pg_tables", uri_text);
            break;
        case LB_SOURCE_DEBIAN:
            if (s_list_has (self->packages, self->package_count, uri.name))
                rc = 0;
            else
                s_fail (error_p, "'%.200s': package '%s' is not one of sources.debian_packages",
                        uri_text, uri.name);
            break;
        default:
            assert (false);
    }
    lb_source_uri_release (&uri);
    return rc;
}

//  --------------------------------------------------------------------------
//  Selftest

//  Test resolver: "evil.test" -> 10.1.2.3, "mixed.test" -> 93.184.216.34 and
//  ::1, "v6priv.test" -> fd00::1, "public.test" -> 93.184.216.34; else getaddrinfo.
static int
s_fake_resolver (void *arg, const char *host, const char *service,
                 const struct addrinfo *hints, struct addrinfo **res)
{
    int *calls = arg;
    (*calls)++;
    const char *a = NULL, *b = NULL;
    if (strcmp (host, "evil.test") == 0)
        a = "10.1.2.3";
    else if (strcmp (host, "mixed.test") == 0)
        a = "93.184.216.34", b = "::1";
    else if (strcmp (host, "v6priv.test") == 0)
        a = "fd00::1";
    else if (strcmp (host, "public.test") == 0)
        a = "93.184.216.34";
    else
        return getaddrinfo (host, service, hints, res);
    struct addrinfo h = *hints, *first = NULL;
    h.ai_flags |= AI_NUMERICHOST;
    if (getaddrinfo (a, service, &h, &first))
        return EAI_FAIL;
    if (b) {
        struct addrinfo *second = NULL;
        if (getaddrinfo (b, service, &h, &second) == 0) {
            struct addrinfo *t = first;
            while (t->ai_next)
                t = t->ai_next;
            t->ai_next = second;    //  glibc frees the chain node by node
        }
    }
    *res = first;
    return 0;
}

static bool
s_public (const char *text)
{
    struct sockaddr_storage ss = { 0 };
    if (strchr (text, ':')) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *) &ss;
        in6->sin6_family = AF_INET6;
        assert (inet_pton (AF_INET6, text, &in6->sin6_addr) == 1);
    }
    else {
        struct sockaddr_in *in = (struct sockaddr_in *) &ss;
        in->sin_family = AF_INET;
        assert (inet_pton (AF_INET, text, &in->sin_addr) == 1);
    }
    return lb_netpolicy_addr_is_public ((struct sockaddr *) &ss);
}

static void
s_expect (lb_netpolicy_t *p, const char *uri, const char *want_error, bool verbose)
{
    char *error = NULL;
    int rc = lb_netpolicy_check_uri (p, uri, &error);
    if (verbose)
        printf ("  %-70s -> %s\n", uri, rc ? error : "ok");
    if (want_error) {
        assert (rc == -1);
        assert (error);
        if (!strstr (error, want_error)) {
            fprintf (stderr, "%s: error '%s' lacks '%s'\n", uri, error, want_error);
            assert (false);
        }
    }
    else {
        if (rc)
            fprintf (stderr, "%s: unexpected error '%s'\n", uri, error);
        assert (rc == 0);
    }
    free (error);
}

void
lb_netpolicy_test (bool verbose)
{
    if (verbose)
        printf ("\n");
    //  Address table.
    const char *private [] = {
        "127.0.0.1", "127.255.255.254", "10.0.0.1", "172.16.0.1", "172.31.255.255",
        "192.168.1.1", "169.254.169.254", "100.64.0.1", "0.0.0.0", "224.0.0.1",
        "255.255.255.255", "198.18.0.1", "192.0.2.1", "::1", "::", "fe80::1", "fd12:3456::1",
        "fc00::1", "ff02::1", "::ffff:127.0.0.1", "::ffff:10.0.0.1", "64:ff9b::a00:1",
        "::7f00:1", "2001:db8::1", "fec0::1"
    };
    for (size_t i = 0; i < sizeof private / sizeof private [0]; i++) {
        if (s_public (private [i]))
            fprintf (stderr, "%s taken for public\n", private [i]);
        assert (!s_public (private [i]));
    }
    const char *public [] = {
        "93.184.216.34", "8.8.8.8", "172.32.0.1", "100.128.0.1", "11.0.0.1",
        "2606:2800:220:1::1", "::ffff:8.8.8.8", "64:ff9b::808:808"
    };
    for (size_t i = 0; i < sizeof public / sizeof public [0]; i++)
        assert (s_public (public [i]));

    //  Syntax.
    lb_source_uri_t u;
    char *error = NULL;
    assert (lb_netpolicy_parse ("https://example.com:8443/a/b.csv?x=1", &u, &error) == 0);
    assert (u.kind == LB_SOURCE_HTTPS && strcmp (u.host, "example.com") == 0 && u.port == 8443);
    assert (strcmp (u.path, "/a/b.csv?x=1") == 0);
    lb_source_uri_release (&u);
    lb_source_uri_release (&u);
    assert (lb_netpolicy_parse ("http://[::1]/x", &u, NULL) == 0);
    assert (u.kind == LB_SOURCE_HTTP && strcmp (u.host, "::1") == 0 && u.port == 80);
    lb_source_uri_release (&u);
    assert (lb_netpolicy_parse ("debian:python3-vega-datasets:/usr/lib/x/seattle-weather.csv", &u, NULL) == 0);
    assert (u.kind == LB_SOURCE_DEBIAN && strcmp (u.name, "python3-vega-datasets") == 0);
    assert (strcmp (u.path, "/usr/lib/x/seattle-weather.csv") == 0);
    lb_source_uri_release (&u);
    assert (lb_source_name_ok ("market_bars") && lb_source_name_ok ("_x9") && !lb_source_name_ok ("9x"));
    assert (!lb_source_name_ok ("") && !lb_source_name_ok ("Close") && !lb_source_name_ok ("a-b"));
    assert (lb_netpolicy_parse ("pg:market_bars", &u, NULL) == 0);
    assert (u.kind == LB_SOURCE_PG && strcmp (u.name, "market_bars") == 0);
    lb_source_uri_release (&u);
    const struct { const char *uri, *error; } bad [] = {
        { "ftp://example.com/x", "scheme 'ftp' is not allowed" },
        { "gopher://127.0.0.1:6379/_x", "scheme 'gopher'" },
        { "javascript:alert(1)", "scheme 'javascript'" },
        { "HTTPS://example.com/", "lowercase" },
        { "https://user:pw@example.com/", "credentials" },
        { "https://", "" },
        { "https://exa mple.com/", "space" },
        { "file://host/etc/passwd", "no host" },
        { "file:///etc/../etc/passwd", "'..'" },
        { "file:///etc//passwd", "empty segment" },
        { "file:relative", "scheme" },
        { "pg:market_bars;drop", "pg:TABLE" },
        { "pg:", "pg:TABLE" },
        { "debian:Bad_Name:/x", "package name" },
        { "debian:python3-sklearn:relative", "not absolute" },
        { "", "empty" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad [0]; i++) {
        error = NULL;
        int rc = lb_netpolicy_parse (bad [i].uri, &u, &error);
        if (verbose)
            printf ("  parse %-40s -> %s\n", bad [i].uri, error ? error : "ok");
        if (!(rc == -1 && error && strstr (error, bad [i].error)))
            fprintf (stderr, "parse '%s': got '%s', wanted '%s'\n", bad [i].uri,
                     error ? error : "ok", bad [i].error);
        assert (rc == -1 && error && strstr (error, bad [i].error));
        assert (u.kind == LB_SOURCE_INVALID && !u.host && !u.path);
        free (error);
    }

    //  Policy, with a fake resolver so that no test needs DNS.
    lb_netpolicy_t *p = lb_netpolicy_new ();
    int calls = 0;
    lb_netpolicy_set_resolver (p, s_fake_resolver, &calls);
    s_expect (p, "https://public.test/data.csv", NULL, verbose);
    s_expect (p, "https://evil.test/data.csv", "resolves to 10.1.2.3", verbose);
    s_expect (p, "https://mixed.test/data.csv", "resolves to ::1", verbose);
    s_expect (p, "https://v6priv.test/data.csv", "fd00::1", verbose);
    s_expect (p, "https://127.0.0.1/x", "loopback", verbose);
    s_expect (p, "https://2130706433/x", "127.0.0.1", verbose);        //  decimal form
    s_expect (p, "https://0x7f.1/x", "127.0.0.1", verbose);            //  hex/short form
    s_expect (p, "https://localhost/x", "loopback", verbose);
    s_expect (p, "https://[::1]:8443/x", "::1", verbose);
    s_expect (p, "https://[::ffff:169.254.169.254]/latest/meta-data", "169.254.169.254", verbose);
    s_expect (p, "https://169.254.169.254/latest/meta-data", "169.254.169.254", verbose);
    s_expect (p, "http://public.test/x", "plain http is not allowed", verbose);
    s_expect (p, "file:///etc/passwd", "file sources are not allowed", verbose);
    s_expect (p, "pg:market_bars", NULL, verbose);
    s_expect (p, "pg:pattern_training_data", NULL, verbose);
    s_expect (p, "pg:pg_authid", "not one of sources.pg_tables", verbose);
    s_expect (p, "debian:python3-vega-datasets:/usr/lib/python3/dist-packages/vega_datasets/_data/stocks.csv",
              NULL, verbose);
    s_expect (p, "debian:openssh-server:/etc/ssh/sshd_config", "not one of sources.debian_packages", verbose);
    assert (calls > 0);

    char *resolve = NULL;
    assert (lb_netpolicy_check_url (p, "https://public.test:8443/x", &resolve, NULL) == 0);
    assert (strcmp (resolve, "public.test:8443:93.184.216.34") == 0);
    free (resolve);
    error = NULL;
    assert (lb_netpolicy_check_url (p, "pg:market_bars", NULL, &error) == -1);
    assert (strstr (error, "not an http(s) URL"));
    free (error);

    //  Operator's switches.
    lb_netpolicy_set_allow_http (p, true);
    lb_netpolicy_set_allow_private (p, true);
    s_expect (p, "http://evil.test/x", NULL, verbose);
    resolve = NULL;
    assert (lb_netpolicy_check_url (p, "http://[::1]:8080/x", &resolve, NULL) == 0);
    assert (strcmp (resolve, "[::1]:8080:[::1]") == 0);
    free (resolve);
    lb_netpolicy_set_pg_tables (p, "other");
    s_expect (p, "pg:market_bars", "not one of", verbose);
    lb_netpolicy_set_debian_packages (p, "");
    s_expect (p, "debian:python3-sklearn:/x.csv", "not one of", verbose);

    //  File roots, symbolic links resolved.
    char *dir = lb_selftest_tmpdir ("lb_netpolicy");
    char *root = lb_xasprintf ("%s/root", dir);
    char *outside = lb_xasprintf ("%s/outside", dir);
    assert (mkdir (root, 0700) == 0 && mkdir (outside, 0700) == 0);
    assert (lb_netpolicy_add_file_root (p, outside) == 0);
    lb_netpolicy_destroy (&p);
    p = lb_netpolicy_new ();
    assert (lb_netpolicy_add_file_root (p, "/nonexistent/dir") == -1);
    assert (lb_netpolicy_add_file_root (p, root) == 0);
    char *link = lb_xasprintf ("%s/root/escape.csv", dir);
    char *target = lb_xasprintf ("%s/outside/secret.csv", dir);
    FILE *f = fopen (target, "w");
    assert (f);
    fclose (f);
    assert (symlink (target, link) == 0);
    char *uri = lb_xasprintf ("file://%s/root/data.csv", dir);
    s_expect (p, uri, NULL, verbose);                       //  need not exist yet
    free (uri);
    uri = lb_xasprintf ("file://%s/outside/secret.csv", dir);
    s_expect (p, uri, "is not under an allowed root", verbose);
    free (uri);
    uri = lb_xasprintf ("file://%s/root/escape.csv", dir);
    s_expect (p, uri, "is not under an allowed root", verbose);
    free (uri);
    uri = lb_xasprintf ("file://%s/rootx/data.csv", dir);   //  a prefix is not a root
    s_expect (p, uri, "directory does not exist", verbose);
    free (uri);
    free (link);
    free (target);
    free (root);
    free (outside);
    lb_selftest_rmtree (dir);
    free (dir);
    lb_netpolicy_destroy (&p);
    lb_netpolicy_destroy (&p);
    assert (p == NULL);
}
