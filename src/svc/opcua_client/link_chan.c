/*
 * link_chan.c - the client's link over the opc.tcp secure channel of
 * src/svc/opcua (channel.h). A thin adapter: options in, decoded messages
 * and close reasons out. The channel validates the server certificate
 * against the PKI and owns framing, chunking, security and token renewal.
 */
#include <stdlib.h>
#include <string.h>

#include "svc/opcua/channel.h"
#include "svc/opcua_client/client.h"
#include "svc/opcua_client/link.h"

typedef struct chan_link {
    ep_uac_link base;
    ep_loop *loop;
    ep_ua_channel *ch;
    bool opened;
    bool closed_reported;
    bool dying; /* destroyed by the client, waiting for on_close */
} chan_link;

/* channels not yet gone (loop thread counts; read by any thread) */
static unsigned long live_channels;

unsigned long ep_uac_channels_alive(void)
{
    /* links whose channel has not reported on_close yet, plus closed
     * channels still lingering (those hold loop resources until released) */
    unsigned long links = __atomic_load_n(&live_channels, __ATOMIC_RELAXED);
    unsigned long chans = ep_ua_channels_live(EP_UA_CHANNEL_CLIENT);
    return links > chans ? links : chans;
}

static void on_open(ep_ua_channel *ch, void *ud)
{
    chan_link *l = ud;
    (void)ch;
    if (l == NULL || l->dying)
        return;
    l->opened = true;
    if (l->base.ev.opened)
        l->base.ev.opened(l->base.ud, EP_EOK, EP_UA_STATUS_Good, NULL);
}

static void on_message(ep_ua_channel *ch, const ep_ua_channel_msg *m, void *ud)
{
    chan_link *l = ud;
    (void)ch;
    if (l && !l->dying && l->base.ev.message)
        l->base.ev.message(l->base.ud, m->request_id, m->type, m->body, m->status);
}

static ep_err err_from_close(ep_ua_status st)
{
    switch (st & 0xFFFF0000u) {
    case EP_UA_STATUS_Good:
        return EP_ECLOSED;
    case EP_UA_STATUS_BadTimeout:
        return EP_ETIMEDOUT;
    case EP_UA_STATUS_BadSecurityChecksFailed:
    case EP_UA_STATUS_BadCertificateUntrusted:
    case EP_UA_STATUS_BadCertificateInvalid:
    case EP_UA_STATUS_BadCertificateTimeInvalid:
    case EP_UA_STATUS_BadCertificateIssuerTimeInvalid:
    case EP_UA_STATUS_BadCertificateHostNameInvalid:
    case EP_UA_STATUS_BadCertificateUriInvalid:
    case EP_UA_STATUS_BadCertificateUseNotAllowed:
    case EP_UA_STATUS_BadCertificateRevoked:
    case EP_UA_STATUS_BadCertificateRevocationUnknown:
    case EP_UA_STATUS_BadCertificateChainIncomplete:
    case EP_UA_STATUS_BadSecurityPolicyRejected:
    case EP_UA_STATUS_BadSecurityModeRejected:
    case EP_UA_STATUS_BadApplicationSignatureInvalid:
    case EP_UA_STATUS_BadNonceInvalid:
        return EP_ESECURITY;
    case EP_UA_STATUS_BadSequenceNumberInvalid:
    case EP_UA_STATUS_BadTcpMessageTooLarge:
    case EP_UA_STATUS_BadTcpMessageTypeInvalid:
    case EP_UA_STATUS_BadDecodingError:
    case EP_UA_STATUS_BadSecureChannelTokenUnknown:
    case EP_UA_STATUS_BadTcpSecureChannelUnknown:
    case EP_UA_STATUS_BadProtocolVersionUnsupported:
        return EP_EPROTO;
    default:
        return EP_ECLOSED;
    }
}

static void on_close(ep_ua_channel *ch, ep_ua_status st, void *ud)
{
    chan_link *l = ud;
    (void)ch;
    if (l == NULL)
        return;
    l->ch = NULL;
    __atomic_sub_fetch(&live_channels, 1, __ATOMIC_RELAXED);
    if (l->dying) {
        free(l);
        return;
    }
    if (l->closed_reported)
        return;
    l->closed_reported = true;
    ep_err err = err_from_close(st);
    if (!l->opened) {
        if (err == EP_ECLOSED)
            err = EP_ECONNREFUSED;
        if (l->base.ev.opened)
            l->base.ev.opened(l->base.ud, err, st, ep_ua_status_name(st));
    } else if (l->base.ev.closed) {
        l->base.ev.closed(l->base.ud, err, st, ep_ua_status_name(st));
    }
}

static ep_err link_open(ep_uac_link *base, const ep_uac_link_params *p)
{
    chan_link *l = (chan_link *)base;
    ep_ua_channel_opts o;
    memset(&o, 0, sizeof(o));
    o.cbs.on_open = on_open;
    o.cbs.on_message = on_message;
    o.cbs.on_close = on_close;
    o.ud = l;
    o.pki = p->pki;
    o.policy = p->policy;
    o.mode = p->mode;
    o.server_cert = p->server_cert;
    o.server_cert_len = p->server_cert_len;
    o.limits.open_timeout_ms = p->connect_timeout_ms;
    o.limits.token_lifetime_ms = p->lifetime_ms;
    if (p->max_message_size && p->max_message_size <= UINT32_MAX)
        o.limits.max_message_size = (uint32_t)p->max_message_size;
    ep_err err = ep_ua_channel_connect(l->loop, p->url, &o, &l->ch);
    if (err == EP_EOK)
        __atomic_add_fetch(&live_channels, 1, __ATOMIC_RELAXED);
    return err;
}

static ep_err link_send(ep_uac_link *base, const ep_ua_type *type, const void *msg,
                        uint32_t *request_id)
{
    chan_link *l = (chan_link *)base;
    if (l->ch == NULL)
        return EP_ECLOSED;
    return ep_ua_channel_request(l->ch, type, msg, request_id);
}

static void link_close(ep_uac_link *base)
{
    chan_link *l = (chan_link *)base;
    l->closed_reported = true; /* no events after close */
    if (l->ch)
        ep_ua_channel_close(l->ch, EP_UA_STATUS_Good, NULL);
}

static void link_destroy(ep_uac_link *base)
{
    chan_link *l = (chan_link *)base;
    if (l->ch) {
        /* the channel still calls on_close later; l goes then */
        l->closed_reported = true;
        l->dying = true;
        ep_ua_channel_close(l->ch, EP_UA_STATUS_Good, NULL);
        return;
    }
    free(l);
}

static const uint8_t *link_server_cert(ep_uac_link *base, size_t *len)
{
    chan_link *l = (chan_link *)base;
    *len = 0;
    return l->ch ? ep_ua_channel_peer_cert(l->ch, len) : NULL;
}

static const ep_uac_link_ops chan_ops = {
    .open = link_open,
    .send = link_send,
    .close = link_close,
    .destroy = link_destroy,
    .server_cert = link_server_cert,
};

ep_err ep_uac__link_chan_new(ep_loop *loop, void *factory_ud, ep_uac_link **out)
{
    (void)factory_ud;
    chan_link *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return EP_ENOMEM;
    l->base.ops = &chan_ops;
    l->loop = loop;
    *out = &l->base;
    return EP_EOK;
}
