/*
 * client.c - lifecycle and connection state machine of the MQTT client.
 *
 *   IDLE --connect()--> WAIT_RETRY --timer--> CONNECTING --handshake-->
 *   WAIT_CONNACK --CONNACK ok--> CONNECTED --disconnect()--> CLOSING --> IDLE
 *
 * Any failure on the way (refused, timeout, lost connection, protocol error)
 * goes through ep_mqttc__conn_lost(), which releases the transport, keeps
 * the session state (unacknowledged publications stay in flight for the
 * resend), and either schedules the next attempt on conn_timer with
 * exponential backoff (WAIT_RETRY) or stops (IDLE: the application asked,
 * reconnecting is off, or the server refused us for good).
 *
 * One timer per purpose: conn_timer (retry delay, connect timeout, close
 * timeout; its meaning follows the state), ka_timer (PINGREQ and PINGRESP
 * deadline) and kick_timer (a zero-delay timer that runs work an API call or
 * the before-poll hook may not run itself, such as completions).
 *
 * Keepalive: a PINGREQ goes out when nothing was sent for the keepalive
 * interval, and also when nothing was received for that long (so a client
 * that only publishes QoS 0 still notices a dead server). The PINGRESP must
 * come within min(keepalive, 30 s), or the connection is dropped.
 */
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/clock.h"
#include "svc/mqttc/mqttc_int.h"

static void conn_timer_cb(ep_timer *t);
static void ka_timer_cb(ep_timer *t);
static void kick_cb(ep_timer *t);

/* ---- helpers ---------------------------------------------------------- */

static char *dup_str(const char *s)
{
    if (s == NULL)
        return NULL;
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    if (d)
        memcpy(d, s, n + 1);
    return d;
}

static char *dup_slice(ep_mqtt_slice s)
{
    char *d = malloc((size_t)s.len + 1);
    if (d) {
        if (s.len)
            memcpy(d, s.p, s.len);
        d[s.len] = '\0';
    }
    return d;
}

static void *dup_mem(const void *p, size_t n)
{
    void *d = malloc(n ? n : 1);
    if (d && n)
        memcpy(d, p, n);
    return d;
}

static const ep_mqtt_slice no_slice;

/* ---- callback nesting ------------------------------------------------- */

static void destroy(ep_mqttc *c);

void ep_mqttc__enter(ep_mqttc *c) { c->depth++; }

void ep_mqttc__leave(ep_mqttc *c)
{
    if (c->depth == 1)
        ep_mqttc__drain_done(c);
    if (--c->depth == 0 && c->free_pending)
        destroy(c);
}

void ep_mqttc__kick(ep_mqttc *c)
{
    if (!c->freeing && !ep_timer_active(&c->kick_timer))
        ep_timer_start(&c->kick_timer, 0);
}

/* ---- creation --------------------------------------------------------- */

static ep_err validate(const ep_mqttc_options *o, uint8_t version)
{
    if (version != EP_MQTT_V311 && version != EP_MQTT_V5)
        return EP_EINVAL;
    if (o->will_qos > 2)
        return EP_EINVAL;
    if (o->will_topic &&
        !ep_mqtt_topic_name_valid(ep_mqtt_slice_make(o->will_topic, strlen(o->will_topic))))
        return EP_EINVAL;
    if (o->will_payload_len > 0xFFFF || (o->password_len && o->password == NULL))
        return EP_EINVAL;
    if (o->password_len > 0xFFFF)
        return EP_EINVAL;
    bool has_pw = o->password != NULL || o->password_file != NULL;
    if (version == EP_MQTT_V311 && has_pw && o->username == NULL)
        return EP_EINVAL;
    bool empty_id = o->client_id == NULL || o->client_id[0] == '\0';
    if (version == EP_MQTT_V311 && empty_id && !o->clean_start)
        return EP_EINVAL;
    if (o->client_id && strlen(o->client_id) > 0xFFFF)
        return EP_EINVAL;
    if (o->username && strlen(o->username) > 0xFFFF)
        return EP_EINVAL;
    if (o->host && (o->host[0] == '\0' || strlen(o->host) > 255))
        return EP_EINVAL;
    uint32_t rmin = o->reconnect_min_ms ? o->reconnect_min_ms : MQC_DEF_RECONNECT_MIN;
    uint32_t rmax = o->reconnect_max_ms ? o->reconnect_max_ms : MQC_DEF_RECONNECT_MAX;
    if (rmin > rmax)
        return EP_EINVAL;
    if (o->maximum_packet_size && o->maximum_packet_size < 16u)
        return EP_EINVAL;
    if (o->auth_method &&
        (strcmp(o->auth_method, EP_MQTTC_AUTH_SCRAM_SHA_256) != 0 || version != EP_MQTT_V5 ||
         o->username == NULL || o->username[0] == '\0' || !has_pw))
        return EP_EINVAL;
    const ep_mqttc_tls_options *t = &o->tls;
    if (t->enable && o->transport)
        return EP_EINVAL;
    if (t->enable && ((t->key_file && !t->cert_file) ||
                      (t->min_version != 0 && t->min_version != 12 && t->min_version != 13)))
        return EP_EINVAL;
    return EP_EOK;
}

static uint32_t pow2_at_least(uint32_t n)
{
    uint32_t p = 64;
    while (p < n && p < (1u << 16))
        p <<= 1;
    return p;
}

ep_err ep_mqttc_new(ep_mqttc **out, ep_loop *loop, const ep_mqttc_options *o)
{
    return ep_mqttc_new_why(out, loop, o, NULL, 0);
}

ep_err ep_mqttc_new_why(ep_mqttc **out, ep_loop *loop, const ep_mqttc_options *o, char *why,
                        size_t why_len)
{
    if (why && why_len)
        why[0] = '\0';
    if (out == NULL || loop == NULL || o == NULL)
        return EP_EINVAL;
    uint8_t version = o->version ? o->version : EP_MQTT_V5;
    ep_err err = validate(o, version);
    if (err) {
        if (why && why_len)
            snprintf(why, why_len, "invalid client options");
        return err;
    }
    ep_mqttc *c = calloc(1, sizeof(*c));
    if (c == NULL)
        return EP_ENOMEM;
    c->loop = loop;
    c->fd = -1;
    c->version = version;
    c->host = dup_str(o->host ? o->host : MQC_DEF_HOST);
    c->port = o->port ? o->port : (uint16_t)MQC_DEF_PORT;
    c->client_id = dup_str(o->client_id ? o->client_id : "");
    c->clean_start = o->clean_start;
    c->session_expiry = o->session_expiry;
    c->keepalive = o->no_keepalive ? 0 : o->keepalive ? o->keepalive : (uint16_t)MQC_DEF_KEEPALIVE;
    c->username = dup_str(o->username);
    if (o->password) {
        c->password = dup_mem(o->password, o->password_len);
        c->password_len = o->password_len;
        c->has_password = true;
        if (c->password == NULL)
            goto nomem;
    }
    c->password_file = dup_str(o->password_file);
    if (o->will_topic) {
        c->will_topic = dup_str(o->will_topic);
        c->will_payload = dup_mem(o->will_payload, o->will_payload_len);
        c->will_payload_len = o->will_payload_len;
        c->will_qos = o->will_qos;
        c->will_retain = o->will_retain;
        if (c->will_topic == NULL || c->will_payload == NULL)
            goto nomem;
        if (o->will_props && version == EP_MQTT_V5) {
            if (ep_mqttc__props_dup(&c->will_props, &c->will_props_block, o->will_props))
                goto nomem;
            if (ep_mqtt_props_size(&c->will_props) == SIZE_MAX) {
                err = EP_EINVAL;
                goto fail;
            }
        }
    }
    c->receive_max = o->receive_maximum ? o->receive_maximum : 65535u;
    c->max_packet = o->maximum_packet_size ? o->maximum_packet_size : MQC_DEF_MAX_PACKET;
    c->alias_in_max = o->topic_alias_maximum;
    c->reconnect_min = o->reconnect_min_ms ? o->reconnect_min_ms : MQC_DEF_RECONNECT_MIN;
    c->reconnect_max = o->reconnect_max_ms ? o->reconnect_max_ms : MQC_DEF_RECONNECT_MAX;
    c->jitter = !o->reconnect_no_jitter;
    c->auto_reconnect = !o->no_reconnect;
    c->connect_timeout = o->connect_timeout_ms ? o->connect_timeout_ms : MQC_DEF_CONNECT_TIMEOUT;
    c->queue_max_msgs = o->queue_max_messages ? o->queue_max_messages : MQC_DEF_QUEUE_MSGS;
    c->queue_max_bytes = o->queue_max_bytes ? o->queue_max_bytes : MQC_DEF_QUEUE_BYTES;
    c->policy = o->queue_policy;
    c->inflight_max = o->inflight_max ? o->inflight_max : (uint16_t)MQC_DEF_INFLIGHT;
    c->manual_ack = o->manual_ack;
    c->tops = o->transport ? o->transport : &ep_mqttc_transport_tcp;
    c->tctx = o->transport_ctx;
    c->scram = o->auth_method != NULL;
    if (o->tls.enable) {
        err = ep_mqttc__tls_new(&c->tls, &o->tls, c->host ? c->host : MQC_DEF_HOST, why, why_len);
        if (err) {
            /* info: the caller reports the failure (with why) */
            EP_LOG_INFO(MQC_LOG, "TLS settings: %s", why && why_len ? why : ep_strerror(err));
            goto fail;
        }
        c->tops = &ep_mqttc__transport_tls;
        c->tctx = c->tls;
    }
    c->on_connect = o->on_connect;
    c->on_disconnect = o->on_disconnect;
    c->on_message = o->on_message;
    c->ud = o->userdata;
    if (c->host == NULL || c->client_id == NULL || (o->username && c->username == NULL) ||
        (o->password_file && c->password_file == NULL))
        goto nomem;

    ep_mqttc__ids_init(&c->ids);
    uint32_t hsize = pow2_at_least(2u * c->inflight_max);
    c->htab = calloc(hsize, sizeof(mq_op *));
    if (c->htab == NULL)
        goto nomem;
    c->hmask = hsize - 1;
    if (c->alias_in_max) {
        c->alias_in = calloc(c->alias_in_max, sizeof(*c->alias_in));
        c->alias_in_len = calloc(c->alias_in_max, sizeof(*c->alias_in_len));
        if (c->alias_in == NULL || c->alias_in_len == NULL)
            goto nomem;
    }
    c->alias_lru_head = c->alias_lru_tail = -1;
    ep_buf_init(&c->in, (size_t)c->max_packet + MQC_READ_CHUNK);
    ep_buf_init(&c->out, 0);
    ep_timer_init(loop, &c->conn_timer, conn_timer_cb, c);
    ep_timer_init(loop, &c->ka_timer, ka_timer_cb, c);
    ep_timer_init(loop, &c->kick_timer, kick_cb, c);
    c->hook.fn = ep_mqttc__flush_hook;
    c->hook.arg = c;
    ep_loop_hook_before_poll(loop, &c->hook);
    c->rnd = ep_clock_mono_ns() ^ ((uint64_t)(uintptr_t)c << 17) ^ UINT64_C(0x9E3779B97F4A7C15);
    if (c->rnd == 0)
        c->rnd = 1;
    c->srv_receive_max = 65535;
    c->srv_max_qos = 2;
    c->srv_retain = true;
    if (o->spool_dir) {
        err = ep_mqttc__spool_open(c, o->spool_dir, o->spool_max_bytes);
        if (err) {
            EP_LOG_INFO(MQC_LOG, "spool %s: %s", o->spool_dir, ep_strerror(err));
            if (why && why_len)
                snprintf(why, why_len, "spool directory %s: %s", o->spool_dir, ep_strerror(err));
            goto fail;
        }
    }
    *out = c;
    return EP_EOK;
nomem:
    err = EP_ENOMEM;
fail:
    destroy(c);
    return err;
}

/* ---- teardown --------------------------------------------------------- */

/* Releases the transport and per-connection state; no callbacks. */
static void teardown(ep_mqttc *c)
{
    if (c->tconn) {
        ep_io_stop(&c->io);
        c->tops->close(c->tconn);
        c->tconn = NULL;
    }
    c->fd = -1;
    c->want_write = false;
    c->io_err = EP_EOK;
    ep_buf_clear(&c->in);
    ep_buf_clear(&c->out);
    ep_timer_stop(&c->ka_timer);
    ep_timer_stop(&c->conn_timer);
    ep_mqttc__auth_end(c);
    c->ping_out = false;
    c->gen++;
}

static void destroy(ep_mqttc *c)
{
    teardown(c);
    /* what was not done stays in the spool for the next start */
    ep_mqttc__spool_close(c);
    ep_timer_stop(&c->kick_timer);
    if (c->hook.fn)
        ep_loop_unhook_before_poll(c->loop, &c->hook);
    ep_mqttc__alias_out_reset(c);
    free(c->alias_out);
    free(c->alias_htab);
    ep_mqttc__alias_in_reset(c);
    free(c->alias_in);
    free(c->alias_in_len);
    free(c->in_st);
    free(c->htab);
    ep_buf_fini(&c->in);
    ep_buf_fini(&c->out);
    free(c->host);
    free(c->client_id);
    free(c->username);
    free(c->password);
    free(c->password_file);
    free(c->will_topic);
    free(c->will_payload);
    free(c->will_props_block);
    ep_mqttc__tls_free(c->tls);
    free(c);
}

void ep_mqttc_free(ep_mqttc *c)
{
    if (c == NULL || c->freeing)
        return;
    c->freeing = true;
    teardown(c);
    c->state = MQ_IDLE;
    ep_timer_stop(&c->kick_timer);
    ep_mqttc__fail_all(c, EP_ECLOSED);
    c->depth++;
    ep_mqttc__drain_done(c);
    c->depth--;
    if (c->depth > 0)
        c->free_pending = true;
    else
        destroy(c);
}

/* ---- connecting ------------------------------------------------------- */

static bool fatal_connack(ep_mqtt_rc rc)
{
    switch (rc) {
    case EP_MQTT_RC_UNSUPPORTED_PROTOCOL_VERSION:
    case EP_MQTT_RC_CLIENT_IDENTIFIER_NOT_VALID:
    case EP_MQTT_RC_BAD_USER_NAME_OR_PASSWORD:
    case EP_MQTT_RC_NOT_AUTHORIZED:
    case EP_MQTT_RC_BANNED:
    case EP_MQTT_RC_BAD_AUTHENTICATION_METHOD:
        return true;
    default:
        return false;
    }
}

void ep_mqttc__set_detail(ep_mqttc *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->detail, sizeof(c->detail), fmt, ap);
    va_end(ap);
}

/* Reads the password file into c->password. */
ep_err ep_mqttc__read_password_file(ep_mqttc *c)
{
    int fd = open(c->password_file, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return EP_ERR_FROM_ERRNO();
    uint8_t buf[65536 + 2];
    size_t n = 0;
    for (;;) {
        ssize_t r = read(fd, buf + n, sizeof(buf) - n);
        if (r < 0) {
            ep_err err = EP_ERR_FROM_ERRNO();
            close(fd);
            return err;
        }
        if (r == 0)
            break;
        n += (size_t)r;
        if (n == sizeof(buf)) {
            close(fd);
            return EP_ETOOBIG;
        }
    }
    close(fd);
    if (n && buf[n - 1] == '\n') {
        n--;
        if (n && buf[n - 1] == '\r')
            n--;
    }
    if (n > 0xFFFF)
        return EP_ETOOBIG;
    uint8_t *pw = dup_mem(buf, n);
    if (pw == NULL)
        return EP_ENOMEM;
    free(c->password);
    c->password = pw;
    c->password_len = n;
    c->has_password = true;
    return EP_EOK;
}

static void attempt_start(ep_mqttc *c)
{
    c->state = MQ_CONNECTING;
    c->detail[0] = '\0';
    if (c->password_file) {
        ep_err err = ep_mqttc__read_password_file(c);
        if (err) {
            ep_mqttc__set_detail(c, "cannot read password file %s: %s", c->password_file,
                                 ep_strerror(err));
            ep_mqttc__conn_lost(c, EP_ECONFIG, 0, no_slice, no_slice);
            return;
        }
    }
    void *conn = NULL;
    int fd = -1;
    ep_err err = c->tops->open(c->tctx, c->host, c->port, &conn, &fd);
    if (err != EP_EOK && err != EP_EAGAIN) {
        ep_mqttc__conn_lost(c, err, 0, no_slice, no_slice);
        return;
    }
    c->tconn = conn;
    c->fd = fd;
    /* Connected or not, the handshake step runs once the fd is writable. */
    err = ep_io_start(c->loop, &c->io, fd, EP_IO_WRITE, ep_mqttc__on_io, c);
    if (err) {
        ep_mqttc__conn_lost(c, err, 0, no_slice, no_slice);
        return;
    }
    ep_timer_start(&c->conn_timer, c->connect_timeout);
    EP_LOG_DEBUG(MQC_LOG, "%s: connecting to %s:%u over %s", c->client_id, c->host, c->port,
                 c->tops->name ? c->tops->name : "?");
}

ep_err ep_mqttc__send_connect(ep_mqttc *c)
{
    ep_mqtt_packet p;
    memset(&p, 0, sizeof(p));
    p.type = EP_MQTT_CONNECT;
    ep_mqtt_connect *cn = &p.connect;
    cn->protocol_version = c->version;
    /* v5 resumes the session on every reconnect; in 3.1.1 the flag also
     * decides whether a session is kept at all, so it never changes. */
    cn->clean_start = (c->version == EP_MQTT_V5 && c->ever_connected) ? false : c->clean_start;
    cn->keep_alive = c->keepalive;
    cn->client_id = ep_mqtt_slice_make(c->client_id, strlen(c->client_id));
    if (c->version == EP_MQTT_V5) {
        ep_mqtt_props *pr = &cn->props;
        if (c->session_expiry) {
            EP_MQTT_PROPS_SET(pr, EP_MQTT_PROP_SESSION_EXPIRY_INTERVAL);
            pr->session_expiry_interval = c->session_expiry;
        }
        if (c->receive_max != 65535u) {
            EP_MQTT_PROPS_SET(pr, EP_MQTT_PROP_RECEIVE_MAXIMUM);
            pr->receive_maximum = c->receive_max;
        }
        EP_MQTT_PROPS_SET(pr, EP_MQTT_PROP_MAXIMUM_PACKET_SIZE);
        pr->maximum_packet_size = c->max_packet;
        if (c->alias_in_max) {
            EP_MQTT_PROPS_SET(pr, EP_MQTT_PROP_TOPIC_ALIAS_MAXIMUM);
            pr->topic_alias_maximum = c->alias_in_max;
        }
        if (c->scram) {
            ep_err err = ep_mqttc__auth_connect(c, pr);
            if (err)
                return err;
        }
    }
    if (c->will_topic) {
        cn->has_will = true;
        cn->will.topic = ep_mqtt_slice_make(c->will_topic, strlen(c->will_topic));
        cn->will.payload = ep_mqtt_slice_make(c->will_payload, c->will_payload_len);
        cn->will.qos = c->will_qos;
        cn->will.retain = c->will_retain;
        if (c->version == EP_MQTT_V5)
            cn->will.props = c->will_props;
    }
    if (c->username) {
        cn->has_username = true;
        cn->username = ep_mqtt_slice_make(c->username, strlen(c->username));
    }
    if (c->has_password && !c->scram) { /* SCRAM sends a proof instead */
        cn->has_password = true;
        cn->password = ep_mqtt_slice_make(c->password, c->password_len);
    }
    return ep_mqttc__send(c, &p);
}

ep_err ep_mqttc_connect(ep_mqttc *c)
{
    if (c == NULL)
        return EP_EINVAL;
    if (c->freeing)
        return EP_ESTATE;
    if (c->state == MQ_IDLE) {
        c->attempt = 0;
        c->state = MQ_WAIT_RETRY;
    } else if (c->state != MQ_WAIT_RETRY) {
        return EP_ESTATE;
    }
    return ep_timer_start(&c->conn_timer, 0);
}

/* ---- connection established ------------------------------------------- */

static void ka_schedule(ep_mqttc *c)
{
    if (c->ka_ms == 0 || c->state != MQ_CONNECTED)
        return;
    uint64_t next;
    if (c->ping_out) {
        next = c->ping_deadline;
    } else {
        uint64_t tx = c->last_tx + c->ka_ms, rx = c->last_rx + c->ka_ms;
        next = tx < rx ? tx : rx;
    }
    ep_timer_start_at(&c->ka_timer, next);
}

void ep_mqttc__on_connack(ep_mqttc *c, const ep_mqtt_connack *ca)
{
    if (c->state != MQ_WAIT_CONNACK) {
        ep_mqttc__protocol_error(c, EP_EPROTO, EP_MQTT_RC_PROTOCOL_ERROR, "second CONNACK");
        return;
    }
    if (ca->rc != EP_MQTT_RC_SUCCESS) {
        const char *name = ep_mqtt_rc_name((int)ca->rc);
        c->fatal = fatal_connack(ca->rc);
        EP_LOG_WARN(MQC_LOG, "%s: %s:%u refused the connection: %s (0x%02x)%s%.*s", c->client_id,
                    c->host, c->port, name ? name : "unknown reason", (unsigned)ca->rc,
                    ca->props.reason_string.len ? ": " : "", (int)ca->props.reason_string.len,
                    (const char *)ca->props.reason_string.p);
        ep_mqttc__conn_lost(c, EP_EPERM, ca->rc, ca->props.reason_string,
                            ca->props.server_reference);
        return;
    }
    if (c->scram && !ep_mqttc__auth_connack(c, ca))
        return;
    const ep_mqtt_props *pr = &ca->props;
    bool sp = ca->session_present;
    c->srv_receive_max = 65535;
    c->srv_max_packet = 0;
    c->srv_alias_max = 0;
    c->srv_max_qos = 2;
    c->srv_retain = true;
    uint16_t ka = c->keepalive;
    if (c->version == EP_MQTT_V5) {
        if (EP_MQTT_PROPS_HAS(pr, EP_MQTT_PROP_RECEIVE_MAXIMUM) && pr->receive_maximum)
            c->srv_receive_max = pr->receive_maximum;
        if (EP_MQTT_PROPS_HAS(pr, EP_MQTT_PROP_MAXIMUM_PACKET_SIZE))
            c->srv_max_packet = pr->maximum_packet_size;
        if (EP_MQTT_PROPS_HAS(pr, EP_MQTT_PROP_TOPIC_ALIAS_MAXIMUM))
            c->srv_alias_max = pr->topic_alias_maximum;
        if (EP_MQTT_PROPS_HAS(pr, EP_MQTT_PROP_MAXIMUM_QOS))
            c->srv_max_qos = pr->maximum_qos;
        if (EP_MQTT_PROPS_HAS(pr, EP_MQTT_PROP_RETAIN_AVAILABLE))
            c->srv_retain = pr->retain_available != 0;
        if (EP_MQTT_PROPS_HAS(pr, EP_MQTT_PROP_SERVER_KEEP_ALIVE))
            ka = pr->server_keep_alive;
        if (EP_MQTT_PROPS_HAS(pr, EP_MQTT_PROP_SESSION_EXPIRY_INTERVAL))
            c->session_expiry = pr->session_expiry_interval;
        if (EP_MQTT_PROPS_HAS(pr, EP_MQTT_PROP_ASSIGNED_CLIENT_IDENTIFIER)) {
            char *id = dup_slice(pr->assigned_client_identifier);
            if (id) {
                free(c->client_id);
                c->client_id = id;
            }
        }
    }
    uint64_t now = ep_loop_now(c->loop);
    c->state = MQ_CONNECTED;
    c->established = true;
    c->ever_connected = true;
    c->connected_at = now;
    c->last_rx = now;
    c->ka_ms = (uint32_t)ka * 1000u;
    c->ping_out = false;
    c->st.connects++;
    ep_timer_stop(&c->conn_timer);
    EP_LOG_INFO(MQC_LOG, "%s: connected to %s:%u (MQTT %s, session %s)", c->client_id, c->host,
                c->port, c->version == EP_MQTT_V5 ? "5" : "3.1.1", sp ? "resumed" : "new");

    uint32_t gen = c->gen;
    ep_mqttc__alias_out_reset(c);
    ep_mqttc__in_new_conn(c, sp);
    if (sp)
        ep_mqttc__session_resume(c);
    else
        ep_mqttc__session_reset(c);
    ep_mqttc__ctl_send_queued(c);
    ka_schedule(c);
    if (c->on_connect)
        c->on_connect(c, sp, pr, c->ud);
    if (gen != c->gen || c->state != MQ_CONNECTED)
        return;
    ep_mqttc__pump(c);
}

void ep_mqttc__on_pingresp(ep_mqttc *c)
{
    c->ping_out = false;
    ka_schedule(c);
}

/* ---- losing the connection -------------------------------------------- */

void ep_mqttc__conn_lost(ep_mqttc *c, ep_err err, ep_mqtt_rc reason, ep_mqtt_slice reason_string,
                         ep_mqtt_slice server_ref)
{
    bool established = c->established;
    bool user = c->state == MQ_CLOSING || err == EP_EOK;
    uint64_t now = ep_loop_now(c->loop);
    teardown(c);
    ep_mqttc__ctl_conn_lost(c);
    if (established)
        c->st.disconnects++;
    else if (!user)
        c->st.connect_failures++;

    ep_mqttc_disconnect_info info;
    memset(&info, 0, sizeof(info));
    info.err = err;
    info.reason = reason;
    info.reason_string = reason_string;
    info.server_reference = server_ref;
    info.was_connected = established;
    info.detail = c->detail;

    bool retry = c->auto_reconnect && !user && !c->fatal && !c->freeing;
    if (established && now - c->connected_at >= MQC_STABLE_MS)
        c->attempt = 0;
    c->established = false;
    c->fatal = false;
    if (retry) {
        uint32_t delay = ep_mqttc__backoff(c->reconnect_min, c->reconnect_max, c->attempt,
                                           c->jitter, ep_mqttc__rand(&c->rnd));
        if (c->attempt < 64)
            c->attempt++;
        c->state = MQ_WAIT_RETRY;
        ep_timer_start(&c->conn_timer, delay);
        info.will_reconnect = true;
        info.reconnect_in_ms = delay;
    } else {
        c->state = MQ_IDLE;
    }

    if (user) {
        EP_LOG_DEBUG(MQC_LOG, "%s: disconnected from %s:%u", c->client_id, c->host, c->port);
    } else if (retry) {
        EP_LOG(established ? EP_LOG_WARN : EP_LOG_INFO, MQC_LOG,
               "%s: %s %s:%u: %s%s%s; reconnecting in %u ms", c->client_id,
               established ? "connection lost to" : "cannot connect to", c->host, c->port,
               ep_strerror(err), c->detail[0] ? ": " : "", c->detail, info.reconnect_in_ms);
    } else {
        EP_LOG_WARN(MQC_LOG, "%s: %s %s:%u: %s%s%s; not reconnecting", c->client_id,
                    established ? "connection lost to" : "cannot connect to", c->host, c->port,
                    ep_strerror(err), c->detail[0] ? ": " : "", c->detail);
    }
    if (c->on_disconnect && !c->freeing)
        c->on_disconnect(c, &info, c->ud);
}

void ep_mqttc__protocol_error(ep_mqttc *c, ep_err err, ep_mqtt_rc rc, const char *what)
{
    EP_LOG_WARN(MQC_LOG, "%s: protocol error from %s:%u: %s (%s); closing", c->client_id, c->host,
                c->port, what, ep_strerror(err));
    if (c->version == EP_MQTT_V5 && c->tconn &&
        (c->state == MQ_WAIT_CONNACK || c->state == MQ_CONNECTED || c->state == MQ_CLOSING)) {
        ep_mqtt_packet p;
        memset(&p, 0, sizeof(p));
        p.type = EP_MQTT_DISCONNECT;
        p.disconnect.rc = rc;
        if (ep_mqttc__send(c, &p) == EP_EOK)
            ep_mqttc__flush_now(c);
    }
    ep_mqttc__conn_lost(c, err, rc, no_slice, no_slice);
}

void ep_mqttc__on_disconnect_pkt(ep_mqttc *c, const ep_mqtt_disconnect *d)
{
    const char *name = ep_mqtt_rc_name((int)d->rc);
    const ep_mqtt_props *pr = &d->props;
    if (c->state == MQ_CLOSING) {
        ep_mqttc__conn_lost(c, EP_EOK, d->rc, pr->reason_string, pr->server_reference);
        return;
    }
    EP_LOG_WARN(MQC_LOG, "%s: server %s:%u disconnected us: %s (0x%02x)%s%.*s%s%.*s", c->client_id,
                c->host, c->port, name ? name : "unknown reason", (unsigned)d->rc,
                pr->reason_string.len ? ": " : "", (int)pr->reason_string.len,
                (const char *)pr->reason_string.p,
                pr->server_reference.len ? "; server reference: " : "",
                (int)pr->server_reference.len, (const char *)pr->server_reference.p);
    /* Reconnecting after a takeover would only take the session back from
     * the other instance, which would then do the same. */
    if (d->rc == EP_MQTT_RC_SESSION_TAKEN_OVER)
        c->fatal = true;
    ep_mqttc__conn_lost(c, EP_ECLOSED, d->rc, pr->reason_string, pr->server_reference);
}

ep_err ep_mqttc_disconnect(ep_mqttc *c, ep_mqtt_rc reason, unsigned flags)
{
    if (c == NULL)
        return EP_EINVAL;
    if (c->freeing)
        return EP_ESTATE;
    switch (c->state) {
    case MQ_IDLE:
    case MQ_CLOSING:
        return EP_ESTATE;
    case MQ_WAIT_RETRY:
    case MQ_CONNECTING:
        /* Nothing sent yet: drop the attempt or the pending retry; the
         * kick timer reports it, so on_disconnect always follows. */
        teardown(c);
        c->state = MQ_CLOSING;
        ep_mqttc__kick(c);
        return EP_EOK;
    case MQ_WAIT_CONNACK:
    case MQ_CONNECTED: {
        ep_mqtt_packet p;
        memset(&p, 0, sizeof(p));
        p.type = EP_MQTT_DISCONNECT;
        if (c->version == EP_MQTT_V5) {
            p.disconnect.rc = reason;
            if ((flags & EP_MQTTC_END_SESSION) && c->session_expiry) {
                EP_MQTT_PROPS_SET(&p.disconnect.props, EP_MQTT_PROP_SESSION_EXPIRY_INTERVAL);
                p.disconnect.props.session_expiry_interval = 0;
            }
        }
        ep_err err = ep_mqttc__send(c, &p);
        if (err)
            return err;
        c->state = MQ_CLOSING;
        ep_timer_stop(&c->ka_timer);
        /* The server closes after DISCONNECT; waiting for that (rather than
         * closing first) keeps a reset from destroying the DISCONNECT,
         * which would make the server publish the Will. */
        ep_timer_start(&c->conn_timer, MQC_CLOSE_TIMEOUT);
        return EP_EOK;
    }
    }
    return EP_ESTATE;
}

/* ---- timers ----------------------------------------------------------- */

static void conn_timer_cb(ep_timer *t)
{
    ep_mqttc *c = t->data;
    ep_mqttc__enter(c);
    switch (c->state) {
    case MQ_WAIT_RETRY:
        attempt_start(c);
        break;
    case MQ_CONNECTING:
    case MQ_WAIT_CONNACK:
        ep_mqttc__conn_lost(c, EP_ETIMEDOUT, 0, no_slice, no_slice);
        break;
    case MQ_CLOSING:
        ep_mqttc__conn_lost(c, EP_EOK, 0, no_slice, no_slice);
        break;
    default:
        break;
    }
    ep_mqttc__leave(c);
}

static void ka_timer_cb(ep_timer *t)
{
    ep_mqttc *c = t->data;
    if (c->state != MQ_CONNECTED || c->ka_ms == 0)
        return;
    ep_mqttc__enter(c);
    uint64_t now = ep_loop_now(c->loop);
    if (c->ping_out) {
        if (now >= c->ping_deadline) {
            EP_LOG_WARN(MQC_LOG, "%s: no PINGRESP from %s:%u in time", c->client_id, c->host,
                        c->port);
            ep_mqttc__conn_lost(c, EP_ETIMEDOUT, EP_MQTT_RC_KEEP_ALIVE_TIMEOUT, no_slice, no_slice);
            ep_mqttc__leave(c);
            return;
        }
    } else if (now >= c->last_tx + c->ka_ms || now >= c->last_rx + c->ka_ms) {
        ep_mqtt_packet p;
        memset(&p, 0, sizeof(p));
        p.type = EP_MQTT_PINGREQ;
        if (ep_mqttc__send(c, &p) == EP_EOK) {
            uint32_t to = c->ka_ms < 30000u ? c->ka_ms : 30000u;
            c->ping_out = true;
            c->ping_deadline = now + to;
        }
    }
    ka_schedule(c);
    ep_mqttc__leave(c);
}

static void kick_cb(ep_timer *t)
{
    ep_mqttc *c = t->data;
    ep_mqttc__enter(c);
    if (c->io_err && c->tconn) {
        ep_err err = c->io_err;
        c->io_err = EP_EOK;
        ep_mqttc__conn_lost(c, c->state == MQ_CLOSING ? EP_EOK : err, 0, no_slice, no_slice);
    } else if (c->state == MQ_CLOSING && c->tconn == NULL) {
        ep_mqttc__conn_lost(c, EP_EOK, 0, no_slice, no_slice);
    } else if (c->state == MQ_CONNECTED) {
        ep_mqttc__pump(c);
    }
    ep_mqttc__leave(c);
}

/* ---- inspection ------------------------------------------------------- */

void ep_mqttc_stats_get(const ep_mqttc *c, ep_mqttc_stats *out)
{
    *out = c->st;
    out->queued = c->queue.n;
    out->queued_bytes = c->queued_bytes;
    out->inflight = c->inflight.n;
    uint32_t w = c->inflight_max;
    if (c->srv_receive_max < w)
        w = c->srv_receive_max;
    out->inflight_window = w;
}

bool ep_mqttc_is_connected(const ep_mqttc *c) { return c->state == MQ_CONNECTED; }

const char *ep_mqttc_client_id(const ep_mqttc *c) { return c->client_id; }
