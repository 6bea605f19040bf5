/*  lb_curve.h - CURVE client keys for the programs that connect to the broker
    (workers through wk_runtime, sched and its daemon through sc_broker).

    A client needs two files written by `broker --keygen`: its own certificate
    with the secret key (NAME_secret, or NAME whose NAME_secret twin exists),
    mode 0600, and the broker's public certificate (the broker's NAME). The
    settings are SECTION.curve_secret and SECTION.curve_server (worker.*,
    scheduler.*, like monitor.*); both unset means plain ZeroMQ, as before.
    Files are checked when loaded, so a wrong path, an unreadable file, a
    secret key other users can read or a file that is not a certificate is a
    one-line error at start, not a silent refusal by the broker later.
*/
#ifndef LB_CURVE_H_INCLUDED
#define LB_CURVE_H_INCLUDED

#include <czmq.h>
#include <stdbool.h>
#include <stddef.h>

#include "lb_config.h"

typedef struct _lb_curve_t lb_curve_t;

//  Loads a client's keys. secret_name and server_name are the settings the
//  paths came from (for the message). Returns NULL and a one-line reason in
//  err when a file is missing, unreadable, a secret key has group or other
//  permissions, or a file is not a CURVE certificate.
lb_curve_t *lb_curve_load (const char *secret_path, const char *server_path,
                           const char *secret_name, const char *server_name,
                           char *err, size_t err_size);

//  Reads SECTION.curve_secret and SECTION.curve_server from config. Returns
//  0 with *curve_p NULL when both are unset, 0 with keys loaded when both are
//  set, -1 with a reason in err otherwise (one set without the other, or a
//  bad file).
int lb_curve_from_config (lb_config_t *config, const char *section, lb_curve_t **curve_p,
                          char *err, size_t err_size);

//  A copy of the keys (caller destroys).
lb_curve_t *lb_curve_dup (const lb_curve_t *self);

//  Destroys the keys. Accepts NULL; sets *self_p to NULL.
void lb_curve_destroy (lb_curve_t **self_p);

//  Makes sock a CURVE client of the broker; call before connect.
void lb_curve_apply (const lb_curve_t *self, zsock_t *sock);

//  Our public key, Z85 (40 characters), for log lines.
const char *lb_curve_public (const lb_curve_t *self);

void lb_curve_test (bool verbose);

#endif
