/*
 * link.h - what the client needs from a secure channel (internal).
 *
 * The client never touches sockets or chunks: it talks to a "link", a
 * secure channel in the client role, through this small vtable. The real
 * link (link_chan.c) wraps the opc.tcp secure channel of src/svc/opcua; unit
 * tests plug in a fake link that hands typed requests to the test and feeds
 * typed responses back, so the session, publish and reconnect state
 * machines are tested without a network (open62541 testing-plugins style).
 *
 * A link is single-use: open once, then closed (by either side) and
 * destroyed. The client creates a new one for each reconnection.
 */
#ifndef EP_SVC_OPCUA_CLIENT_LINK_H
#define EP_SVC_OPCUA_CLIENT_LINK_H

#include <stddef.h>
#include <stdint.h>

#include "codec/opcua/gen/types.h"
#include "codec/opcua_crypto/pki.h"
#include "codec/opcua_crypto/policy.h"
#include "core/err.h"
#include "core/loop.h"

typedef struct ep_uac_link ep_uac_link;

/* Events from the link to its owner. All run on the loop thread. */
typedef struct ep_uac_link_events {
    /* the channel is open (err EP_EOK) or could not be opened */
    void (*opened)(void *ud, ep_err err, ep_ua_status st, const char *why);
    /* a complete service response, decoded: body is a value of *type
     * (borrowed for the call). type NULL with st bad: the response could
     * not be decoded (st says why). */
    void (*message)(void *ud, uint32_t request_id, const ep_ua_type *type, const void *body,
                    ep_ua_status st);
    /* the channel is gone (after opened; or instead of it on failure) */
    void (*closed)(void *ud, ep_err err, ep_ua_status st, const char *why);
} ep_uac_link_events;

typedef struct ep_uac_link_params {
    const char *url;
    const ep_ua_policy *policy;
    int32_t mode;
    ep_ua_pki *pki;             /* may be NULL with policy None */
    const uint8_t *server_cert; /* expected server certificate (from
                                   GetEndpoints), may be NULL */
    size_t server_cert_len;
    uint32_t connect_timeout_ms;
    uint32_t lifetime_ms; /* requested token lifetime */
    size_t max_message_size;
} ep_uac_link_params;

typedef struct ep_uac_link_ops {
    /* start opening; events follow. Errors returned here mean no event. */
    ep_err (*open)(ep_uac_link *l, const ep_uac_link_params *p);
    /* encode and send one request; *request_id receives the channel's
     * request id. The message is borrowed. */
    ep_err (*send)(ep_uac_link *l, const ep_ua_type *type, const void *msg, uint32_t *request_id);
    /* close gracefully (CloseSecureChannel); no events after this call */
    void (*close)(ep_uac_link *l);
    /* free; called after close or after a closed event */
    void (*destroy)(ep_uac_link *l);
    /* server certificate (DER) received on the channel, or NULL */
    const uint8_t *(*server_cert)(ep_uac_link *l, size_t *len);
} ep_uac_link_ops;

struct ep_uac_link {
    const ep_uac_link_ops *ops;
    ep_uac_link_events ev;
    void *ud;
};

/* Factory used by the client to create a link; tests replace it with
 * ep_uac__set_link_factory before connecting. */
typedef ep_err (*ep_uac_link_factory)(ep_loop *loop, void *factory_ud, ep_uac_link **out);

/* ep_uac__link_chan_new creates the real secure-channel link. */
ep_err ep_uac__link_chan_new(ep_loop *loop, void *factory_ud, ep_uac_link **out);

#endif
