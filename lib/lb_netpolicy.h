/*  lb_netpolicy.h - which data sources Predictors may read: URL scheme and
    host rules (no SSRF into the operator's network), local file roots, and
    the named local sources.

    Task specs come from an LLM, so every source URI in them is untrusted.
    The discover worker checks each source when it accepts a task; the fetch
    worker checks again before it reads, and checks every redirect target
    (Location) with lb_netpolicy_check_url before following it.

    Source URI kinds (the one definition; proto/pr_task.h and docs/discover.md
    refer here):

      https://HOST[:PORT]/PATH[?QUERY]   a remote file. HOST must resolve only
                                 to public addresses (see below) unless
                                 sources.allow_private. No user:password@.
      http://...                 the same, only when sources.allow_http.
      file:///ABS/PATH           a local file; the path, with symbolic links
                                 resolved where it exists, must lie under one
                                 of sources.file_roots (none by default, so
                                 file:// is refused until an operator names a
                                 root). No "..", no "//", no query or host.
      pg:TABLE                   a PostgreSQL table the fetch worker fills
                                 and reads with COPY; TABLE must be one of
                                 sources.pg_tables (default market_bars,
                                 pattern_training_data).
      debian:PACKAGE:/ABS/PATH   a data file shipped in a Debian package; the
                                 fetch worker runs `apt-get download PACKAGE`
                                 and `dpkg -x` into var/debian/PACKAGE/ and
                                 reads var/debian/PACKAGE/ABS/PATH. PACKAGE
                                 must be one of sources.debian_packages.
                                 Example: debian:python3-vega-datasets:/usr/
                                 lib/python3/dist-packages/vega_datasets/
                                 _data/seattle-weather.csv

    Addresses refused unless allow_private (IPv4): 0/8, 10/8, 100.64/10,
    127/8, 169.254/16, 172.16/12, 192.0.0/24, 192.0.2/24, 192.168/16,
    198.18/15, 198.51.100/24, 203.0.113/24, 224/4 and 240/4 (incl.
    255.255.255.255); (IPv6) ::, ::1, fc00::/7, fe80::/10, fec0::/10, ff00::/8,
    2001:db8::/32, 100::/64, and IPv4-mapped (::ffff:a.b.c.d), IPv4-compatible
    and NAT64 (64:ff9b::/96) forms judged by their IPv4 address. A name is
    refused if ANY of its addresses is refused. To defeat DNS rebinding, the
    check returns the addresses it approved as a CURLOPT_RESOLVE entry; the
    caller pins the connection to them (lb_http_request_t.resolve).
*/
#ifndef LB_NETPOLICY_H_INCLUDED
#define LB_NETPOLICY_H_INCLUDED

#include <netdb.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/socket.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct _lb_config_t lb_config_t;
typedef struct _lb_netpolicy_t lb_netpolicy_t;

//  What kind of source a URI names.
typedef enum {
    LB_SOURCE_INVALID = 0,
    LB_SOURCE_HTTPS,
    LB_SOURCE_HTTP,
    LB_SOURCE_FILE,
    LB_SOURCE_PG,
    LB_SOURCE_DEBIAN
} lb_source_kind_t;

//  A URI split into its parts (see lb_netpolicy_parse). Strings are owned by
//  the struct; release with lb_source_uri_release.
typedef struct {
    lb_source_kind_t kind;
    char *host;         //  http(s): host name or literal address (no brackets)
    int port;           //  http(s): port (443/80 when not given)
    char *path;         //  http(s): path and query; file/debian: absolute path
    char *name;         //  pg: table; debian: package
} lb_source_uri_t;

//  Resolver seam for tests: same contract as getaddrinfo.
typedef int (lb_netpolicy_resolver_fn) (void *arg, const char *host, const char *service,
                                        const struct addrinfo *hints, struct addrinfo **res);

//  Returns a policy with the safe defaults: https only, public addresses
//  only, no file roots, pg tables market_bars and pattern_training_data,
//  Debian packages python3-vega-datasets, r-cran-timeseries,
//  python3-statsmodels, python3-sklearn. Never NULL.
lb_netpolicy_t *lb_netpolicy_new (void);

//  Returns a policy built from the [sources] settings of cfg, or NULL after
//  logging a bad value (e.g. a file root that does not exist).
lb_netpolicy_t *lb_netpolicy_new_config (lb_config_t *cfg);

//  Destroys the policy. Accepts NULL; sets *self_p to NULL.
void lb_netpolicy_destroy (lb_netpolicy_t **self_p);

//  Settings. add_file_root returns 0, or -1 if dir does not resolve to an
//  existing directory; the others cannot fail. set_lists replace the list
//  with a comma-separated one ("" empties it).
void lb_netpolicy_set_allow_http (lb_netpolicy_t *self, bool allow);
void lb_netpolicy_set_allow_private (lb_netpolicy_t *self, bool allow);
int lb_netpolicy_add_file_root (lb_netpolicy_t *self, const char *dir);
void lb_netpolicy_set_pg_tables (lb_netpolicy_t *self, const char *comma_list);
void lb_netpolicy_set_debian_packages (lb_netpolicy_t *self, const char *comma_list);
void lb_netpolicy_set_resolver (lb_netpolicy_t *self, lb_netpolicy_resolver_fn *fn, void *arg);

//  Splits uri into *out, checking syntax only (no policy, no DNS). Returns
//  0, or -1 with *error_p set to a message the caller frees (what is wrong
//  and where). *out is zeroed on failure.
int lb_netpolicy_parse (const char *uri, lb_source_uri_t *out, char **error_p);

//  Releases the strings of a parsed URI and zeroes it; harmless twice.
void lb_source_uri_release (lb_source_uri_t *uri);

//  Checks an http(s) URL against the policy: scheme, no credentials, host
//  resolves only to permitted addresses. Returns 0 and, if resolve_p is not
//  NULL, sets *resolve_p to "HOST:PORT:ADDR[,ADDR...]" (for CURLOPT_RESOLVE;
//  caller frees). Returns -1 with *error_p set (caller frees) otherwise.
//  Fetch calls this on every redirect target too.
int lb_netpolicy_check_url (lb_netpolicy_t *self, const char *url, char **resolve_p,
                            char **error_p);

//  Checks any source URI of the kinds above against the policy (http(s) as
//  check_url, file under a root, pg table and Debian package allowed).
//  Returns 0, or -1 with *error_p set (caller frees).
int lb_netpolicy_check_uri (lb_netpolicy_t *self, const char *uri, char **error_p);

//  Returns true if name is a plain identifier as tables and columns are
//  named in task specs: [a-z_][a-z0-9_]*, 1 to 63 characters.
bool lb_source_name_ok (const char *name);

//  Returns true if sa (AF_INET or AF_INET6) is a public unicast address
//  by the table above.
bool lb_netpolicy_addr_is_public (const struct sockaddr *sa);

//  Selftest.
void lb_netpolicy_test (bool verbose);

#ifdef __cplusplus
}
#endif

#endif
