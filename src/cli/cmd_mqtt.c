/*
 * cmd_mqtt.c - what `edgeplane pub` and `edgeplane sub` share (cmd_mqtt.h):
 * the connection, TLS and authentication options, their help text and
 * checks, and the start-up and shutdown of the loop, the client and the
 * signal watcher.
 */
#ifdef HAVE_EP_SVC_MQTTC /* built with the MQTT client module */

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include "cli/cli.h"
#include "cli/cmd_mqtt.h"
#include "core/clock.h"
#include "core/log.h"

void ep_cli_mqtt_init(ep_cli_mqtt *m, const char *cmd)
{
    memset(m, 0, sizeof(*m));
    m->cmd = cmd;
    m->sigfd = -1;
    m->o.host = "127.0.0.1";
    m->o.port = 1883;
    m->o.version = EP_MQTT_V5;
    ep_log_set_level(EP_LOG_WARN);
}

void ep_cli_mqtt_help(FILE *f)
{
    fprintf(f, "connection:\n"
               "  -h, --host HOST          broker host name or address (default 127.0.0.1)\n"
               "  -p, --port PORT          broker port (default 1883)\n"
               "  -i, --id ID              client id (default edgeplane-<command>-<pid>-<random>)\n"
               "  -V, --protocol 3|5       MQTT 3.1.1 or 5 (default 5)\n"
               "  -u, --username USER      user name\n"
               "  -P, --password PASS      password (visible in the process list: prefer\n"
               "                           --password-file)\n"
               "      --password-file FILE read the password from FILE (one trailing newline\n"
               "                           is removed)\n"
               "  -k, --keepalive SECONDS  keep alive interval (default 60; 0 = off)\n"
               "      --no-clean           resume the session of this client id and keep it on\n"
               "                           the broker after exit (needs -i)\n"
               "      --session-expiry S   MQTT 5 session expiry in seconds (default 0, or never\n"
               "                           with --no-clean)\n"
               "      --max-inflight N     QoS 1/2 messages in flight at once (default 64)\n"
               "  -d, --debug              log connection events and packets to stderr\n"
               "      --help               show this help\n"
               "\n"
               "security:\n"
               "      --tls                connect with TLS (default port 8883), verifying the\n"
               "                           broker against the system CA store\n"
               "      --cafile FILE        verify the broker against the CAs in FILE (PEM);\n"
               "                           implies --tls\n"
               "      --cert FILE          client certificate (PEM) for mutual TLS; implies\n"
               "                           --tls\n"
               "      --key FILE           private key of --cert (default: in the --cert file)\n"
               "      --tls-server-name N  name the broker certificate must carry (default:\n"
               "                           the --host value)\n"
               "      --insecure           do not verify the broker's certificate (testing\n"
               "                           only: anyone on the path can read and change the\n"
               "                           traffic); implies --tls\n"
               "      --auth-method M      MQTT 5 enhanced authentication: SCRAM-SHA-256 (needs\n"
               "                           -u and a password; only a proof is sent)\n");
}

int ep_cli_mqtt_parse_uint(const ep_cli_mqtt *m, const char *what, const char *arg,
                           unsigned long min, unsigned long max, unsigned long *out)
{
    char *end;
    errno = 0;
    unsigned long v = strtoul(arg, &end, 10);
    if (arg[0] < '0' || arg[0] > '9' || *end != '\0' || errno != 0 || v < min || v > max) {
        fprintf(stderr, "edgeplane %s: %s '%s': expected a number %lu..%lu\n", m->cmd, what, arg,
                min, max);
        return -1;
    }
    *out = v;
    return 0;
}

int ep_cli_mqtt_security_option(const char *cmd, ep_mqttc_tls_options *t, const char **auth_method,
                                int opt, const char *arg)
{
    switch (opt) {
    case EP_CLI_OPT_TLS:
        t->enable = true;
        return 1;
    case EP_CLI_OPT_CAFILE:
        t->enable = true;
        t->ca_file = arg;
        return 1;
    case EP_CLI_OPT_CERT:
        t->enable = true;
        t->cert_file = arg;
        return 1;
    case EP_CLI_OPT_KEY:
        t->key_file = arg;
        return 1;
    case EP_CLI_OPT_TLS_SERVER_NAME:
        t->server_name = arg;
        return 1;
    case EP_CLI_OPT_INSECURE:
        t->enable = true;
        t->insecure = true;
        return 1;
    case EP_CLI_OPT_AUTH_METHOD:
        if (strcasecmp(arg, EP_MQTTC_AUTH_SCRAM_SHA_256) != 0) {
            fprintf(stderr, "edgeplane %s: --auth-method '%s': only SCRAM-SHA-256 is supported\n",
                    cmd, arg);
            return -1;
        }
        *auth_method = EP_MQTTC_AUTH_SCRAM_SHA_256;
        return 1;
    default:
        return 0;
    }
}

int ep_cli_mqtt_option(ep_cli_mqtt *m, int opt, const char *arg)
{
    unsigned long v;
    switch (opt) {
    case 'h':
        if (arg[0] == '\0') {
            fprintf(stderr, "edgeplane %s: --host: empty host name\n", m->cmd);
            return -1;
        }
        m->o.host = arg;
        return 1;
    case 'p':
        if (ep_cli_mqtt_parse_uint(m, "--port", arg, 1, 65535, &v))
            return -1;
        m->o.port = (uint16_t)v;
        m->port_set = true;
        return 1;
    case 'i':
        m->o.client_id = arg;
        return 1;
    case 'V':
        if (!strcmp(arg, "3") || !strcmp(arg, "4") || !strcmp(arg, "311") ||
            !strcmp(arg, "3.1.1") || !strcmp(arg, "mqttv311")) {
            m->o.version = EP_MQTT_V311;
        } else if (!strcmp(arg, "5") || !strcmp(arg, "mqttv5")) {
            m->o.version = EP_MQTT_V5;
        } else {
            fprintf(stderr, "edgeplane %s: --protocol '%s': expected 3 (MQTT 3.1.1) or 5\n", m->cmd,
                    arg);
            return -1;
        }
        return 1;
    case 'u':
        m->o.username = arg;
        return 1;
    case 'P':
        m->o.password = arg;
        m->o.password_len = strlen(arg);
        return 1;
    case EP_CLI_OPT_PASSWORD_FILE:
        m->o.password_file = arg;
        return 1;
    case 'k':
        if (ep_cli_mqtt_parse_uint(m, "--keepalive", arg, 0, 65535, &v))
            return -1;
        m->o.keepalive = (uint16_t)v;
        m->o.no_keepalive = v == 0;
        return 1;
    case EP_CLI_OPT_NO_CLEAN:
        m->no_clean = true;
        return 1;
    case EP_CLI_OPT_SESSION_EXPIRY:
        if (ep_cli_mqtt_parse_uint(m, "--session-expiry", arg, 0, UINT32_MAX, &v))
            return -1;
        m->o.session_expiry = (uint32_t)v;
        m->have_expiry = true;
        return 1;
    case EP_CLI_OPT_MAX_INFLIGHT:
        if (ep_cli_mqtt_parse_uint(m, "--max-inflight", arg, 1, 65535, &v))
            return -1;
        m->o.inflight_max = (uint16_t)v;
        return 1;
    case 'd':
        ep_log_set_level(EP_LOG_DEBUG);
        return 1;
    default:
        return ep_cli_mqtt_security_option(m->cmd, &m->o.tls, &m->o.auth_method, opt, arg);
    }
}

/* Checks the security options against each other. */
static int tls_finish(ep_cli_mqtt *m)
{
    ep_mqttc_options *o = &m->o;
    ep_mqttc_tls_options *t = &o->tls;
    if ((t->key_file || t->server_name) && !t->enable) {
        fprintf(stderr,
                "edgeplane %s: --key and --tls-server-name need TLS (--tls, --cafile or "
                "--cert)\n",
                m->cmd);
        return -1;
    }
    if (t->key_file && !t->cert_file) {
        fprintf(stderr, "edgeplane %s: --key needs --cert\n", m->cmd);
        return -1;
    }
    if (t->insecure && t->ca_file) {
        fprintf(stderr, "edgeplane %s: --insecure and --cafile contradict each other\n", m->cmd);
        return -1;
    }
    if (o->auth_method &&
        (o->version != EP_MQTT_V5 || !o->username || !(o->password || o->password_file))) {
        fprintf(stderr,
                "edgeplane %s: --auth-method %s needs MQTT 5, -u USER and a password (-P or "
                "--password-file)\n",
                m->cmd, o->auth_method);
        return -1;
    }
    if (t->enable && !m->port_set)
        o->port = 8883;
    if (t->insecure)
        fprintf(stderr,
                "edgeplane %s: warning: --insecure: the broker's certificate is not verified; "
                "anyone on the path can read and change this connection\n",
                m->cmd);
    return 0;
}

int ep_cli_mqtt_finish(ep_cli_mqtt *m)
{
    ep_mqttc_options *o = &m->o;
    if (o->client_id == NULL || o->client_id[0] == '\0') {
        if (m->no_clean) {
            fprintf(stderr,
                    "edgeplane %s: --no-clean needs a client id (-i ID): the session "
                    "belongs to it\n",
                    m->cmd);
            return -1;
        }
        unsigned r = (unsigned)(ep_clock_mono_ns() ^ (uint64_t)getpid() << 20) & 0xFFFFu;
        snprintf(m->id, sizeof(m->id), "edgeplane-%s-%ld-%04x", m->cmd, (long)getpid(), r);
        o->client_id = m->id;
    }
    if (o->version == EP_MQTT_V311 && m->have_expiry) {
        fprintf(stderr, "edgeplane %s: --session-expiry needs MQTT 5 (-V 5)\n", m->cmd);
        return -1;
    }
    if (o->version == EP_MQTT_V311 && (o->password || o->password_file) && !o->username) {
        fprintf(stderr, "edgeplane %s: MQTT 3.1.1 sends a password only with a user name (-u)\n",
                m->cmd);
        return -1;
    }
    if (tls_finish(m))
        return -1;
    o->clean_start = !m->no_clean;
    if (m->no_clean && !m->have_expiry && o->version == EP_MQTT_V5)
        o->session_expiry = UINT32_MAX;
    return 0;
}

void ep_cli_mqtt_describe(const ep_mqttc_disconnect_info *info, char *buf, size_t n)
{
    if (info->detail && info->detail[0]) {
        snprintf(buf, n, "%s: %s", ep_strerror(info->err), info->detail);
    } else if (info->reason) {
        const char *name = ep_mqtt_rc_name((int)info->reason);
        snprintf(buf, n, "%s (0x%02x)%s%.*s", name ? name : "unknown reason",
                 (unsigned)info->reason, info->reason_string.len ? ": " : "",
                 (int)info->reason_string.len, (const char *)info->reason_string.p);
    } else {
        snprintf(buf, n, "%s", ep_strerror(info->err));
    }
}

int ep_cli_mqtt_signals_open(void)
{
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_BLOCK, &set, NULL);
    return signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC);
}

void ep_cli_mqtt_signals_close(int fd)
{
    if (fd >= 0)
        close(fd);
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    sigprocmask(SIG_UNBLOCK, &set, NULL);
}

int ep_cli_mqtt_signal_read(int fd)
{
    struct signalfd_siginfo si;
    if (read(fd, &si, sizeof(si)) != (ssize_t)sizeof(si))
        return 0;
    return (int)si.ssi_signo;
}

int ep_cli_mqtt_start(ep_cli_mqtt *m, ep_io_cb on_signal, void *ud)
{
    m->sigfd = -1;
    if (ep_loop_new(&m->loop, NULL) != EP_EOK) {
        fprintf(stderr, "edgeplane %s: cannot create the event loop\n", m->cmd);
        return EP_EXIT_FAILURE;
    }
    char why[512];
    ep_err err = ep_mqttc_new_why(&m->c, m->loop, &m->o, why, sizeof(why));
    if (err) {
        fprintf(stderr, "edgeplane %s: %s\n", m->cmd, why[0] ? why : ep_strerror(err));
        return EP_EXIT_USAGE;
    }
    m->sigfd = ep_cli_mqtt_signals_open();
    if (m->sigfd >= 0 &&
        ep_io_start(m->loop, &m->sig_io, m->sigfd, EP_IO_READ, on_signal, ud) == EP_EOK)
        m->sig_watched = true;
    return -1;
}

void ep_cli_mqtt_stop(ep_cli_mqtt *m)
{
    if (m->sig_watched)
        ep_io_stop(&m->sig_io);
    m->sig_watched = false;
    if (m->sigfd >= 0)
        ep_cli_mqtt_signals_close(m->sigfd);
    m->sigfd = -1;
    ep_mqttc_free(m->c);
    m->c = NULL;
    ep_loop_free(m->loop);
    m->loop = NULL;
}

#endif /* HAVE_EP_SVC_MQTTC */
