/*  broker/main.c - bin/broker: the Majordomo broker with durable jobs.

    bin/broker [--bind EP] [--journal DIR] [--events EP] [--config FILE]
    bin/broker --keygen PATH [--services LIST]
    bin/broker --print-config | --help
*/
#include "bk_broker.h"
#include "lb_config.h"
#include "lb_log.h"

#include <czmq.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

static void
s_usage (FILE *out)
{
    fprintf (out,
        "usage: broker [--bind EP] [--journal DIR] [--events EP] [--config FILE]\n"
        "       broker --keygen PATH [--services LIST]\n"
        "       broker --print-config\n"
        "\n"
        "The Predictors job broker: Majordomo (MDP 0.1 and 0.2) clients and workers on one\n"
        "ROUTER socket, durable titanic.* jobs in an fsync'd journal, mmi.* management,\n"
        "events on a PUB socket. The wire contract is proto/PROTOCOL.md.\n"
        "\n"
        "  --bind EP        endpoint for clients and workers (broker.bind, tcp://127.0.0.1:5555)\n"
        "  --journal DIR    journal directory (broker.journal, var/broker)\n"
        "  --events EP      event PUB endpoint, \"\" for none (broker.events, tcp://127.0.0.1:5556)\n"
        "  --config FILE    configuration file (else $PREDICTORS_CONFIG)\n"
        "  --keygen PATH    write a CURVE key pair: PATH (public) and PATH_secret, mode 0600\n"
        "  --services LIST  with --keygen: services a worker with this key may serve (default *)\n"
        "  --print-config   print every setting with where its value came from\n"
        "\n"
        "Every setting can also come from the file's [broker] section or the environment\n"
        "(PREDICTORS_BROKER_<KEY>). SIGTERM stops it cleanly with the journal synced.\n");
}

static int
s_keygen (const char *path, const char *services)
{
    zcert_t *cert = zcert_new ();
    if (!cert) {
        lb_log_error ("cannot create a key pair");
        return 1;
    }
    zcert_set_meta (cert, "services", "%s", services ? services : "*");
    zcert_set_meta (cert, "created-by", "%s", "broker --keygen");
    mode_t old = umask (077);
    int rc = zcert_save (cert, path);
    umask (old);
    char *secret = zsys_sprintf ("%s_secret", path);
    if (rc == 0 && (chmod (path, 0600) || chmod (secret, 0600)))
        rc = -1;
    if (rc) {
        lb_log_error ("cannot write key pair path=%s: %s", path, strerror (errno));
        zstr_free (&secret);
        zcert_destroy (&cert);
        return 1;
    }
    printf ("public key %s written to %s (secret in %s, both mode 0600)\n",
            zcert_public_txt (cert), path, secret);
    zstr_free (&secret);
    zcert_destroy (&cert);
    return 0;
}

int
main (int argc, char **argv)
{
    lb_log_setup ("broker", LB_LOG_INFO);
    const char *config_path = NULL, *bind = NULL, *journal = NULL, *events = NULL;
    const char *keygen = NULL, *services = NULL;
    bool print = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv [i];
        bool has = i + 1 < argc;
        if (strcmp (a, "--help") == 0 || strcmp (a, "-h") == 0) {
            s_usage (stdout);
            return 0;
        }
        else
        if (strcmp (a, "--print-config") == 0)
            print = true;
        else
        if (has && strcmp (a, "--config") == 0)
            config_path = argv [++i];
        else
        if (has && strcmp (a, "--bind") == 0)
            bind = argv [++i];
        else
        if (has && strcmp (a, "--journal") == 0)
            journal = argv [++i];
        else
        if (has && strcmp (a, "--events") == 0)
            events = argv [++i];
        else
        if (has && strcmp (a, "--keygen") == 0)
            keygen = argv [++i];
        else
        if (has && strcmp (a, "--services") == 0)
            services = argv [++i];
        else {
            fprintf (stderr, "broker: unknown or incomplete argument '%s'\n", a);
            s_usage (stderr);
            return 2;
        }
    }
    if (keygen)
        return s_keygen (keygen, services);

    lb_config_t *config = lb_config_load (config_path);
    if (!config)
        return 2;
    int rc = 0;
    if (bind)
        rc |= lb_config_set (config, "broker.bind", bind, "--bind");
    if (journal)
        rc |= lb_config_set (config, "broker.journal", journal, "--journal");
    if (events)
        rc |= lb_config_set (config, "broker.events", events, "--events");
    lb_log_level_t level;
    if (lb_log_level_parse (lb_config_str (config, "log.level"), &level)) {
        lb_log_error ("log.level: '%s' is not error, warn, info or debug", lb_config_str (config, "log.level"));
        rc = -1;
    }
    if (rc) {
        lb_config_destroy (&config);
        return 2;
    }
    lb_log_set_level (level);
    if (print) {
        lb_config_print (config, stdout);
        lb_config_destroy (&config);
        return 0;
    }

    bk_broker_config_t cfg = {
        .bind = lb_config_str (config, "broker.bind"),
        .events = lb_config_str (config, "broker.events"),
        .journal = lb_config_str (config, "broker.journal"),
        .heartbeat = lb_config_seconds (config, "broker.heartbeat"),
        .liveness = (int) lb_config_int (config, "broker.liveness"),
        .lease = lb_config_seconds (config, "broker.lease"),
        .service_lease = lb_config_str (config, "broker.service_lease"),
        .attempts = (int) lb_config_int (config, "broker.attempts"),
        .service_attempts = lb_config_str (config, "broker.service_attempts"),
        .retry_base = lb_config_seconds (config, "broker.retry_base"),
        .retry_max = lb_config_seconds (config, "broker.retry_max"),
        .max_frames = (int) lb_config_int (config, "broker.max_frames"),
        .max_message = lb_config_bytes (config, "broker.max_message"),
        .checkpoint_bytes = lb_config_bytes (config, "broker.checkpoint"),
        .curve_secret = lb_config_str (config, "broker.curve_secret"),
        .curve_allow = lb_config_str (config, "broker.curve_allow"),
        .insecure = lb_config_bool (config, "broker.insecure"),
    };
    //  czmq's handler turns SIGINT/SIGTERM into zsys_interrupted; a file
    //  size limit must fail a write, not kill the broker.
    zsys_init ();
    zsys_set_logstream (NULL);
    signal (SIGXFSZ, SIG_IGN);
    signal (SIGPIPE, SIG_IGN);
    bk_broker_t *broker = bk_broker_new (&cfg);
    if (!broker) {
        lb_config_destroy (&config);
        return 1;
    }
    lb_log_info ("broker listening bind=%s events=%s journal=%s curve=%s recovered=%lld%s",
                 bk_broker_endpoint (broker), cfg.events && *cfg.events ? cfg.events : "off",
                 cfg.journal, bk_broker_curve (broker) ? "on" : "off",
                 (long long) bk_broker_recovered (broker),
                 bk_broker_curve (broker) ? "" : " (no keys: loopback only)");
    bk_broker_run (broker, NULL);
    bk_broker_destroy (&broker);
    lb_log_info ("broker stopped, journal synced");
    lb_config_destroy (&config);
    return 0;
}
