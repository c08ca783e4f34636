/*
 * request.c - the client's request table.
 *
 * Every service request gets a request handle (RequestHeader, ours) and a
 * request id (sequence header, the channel's). Sent requests sit on the
 * active list until the response with the same request id arrives; the
 * response's handle must match too, or the server is broken and the
 * connection is dropped. Each request has its own heap timer, started at
 * submit time, so a request that waits in the queue times out as well.
 *
 * At most max_outstanding application requests are on the wire; more wait
 * in a FIFO queue (a deep copy of the message) of at most max_queued. The
 * session's own requests (CreateSession, ActivateSession, Publish, ...)
 * bypass the queue: they must not wait behind application traffic that
 * cannot be sent before the session is active.
 */
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "svc/opcua_client/uac_int.h"

const ep_ua_type *ep_uac__response_type(const ep_ua_type *req)
{
    size_t nlen = strlen(req->name);
    if (nlen < 8 || strcmp(req->name + nlen - 7, "Request") != 0)
        return NULL;
    /* the generator emits each *Response right after its *Request */
    const ep_ua_type *next = req + 1;
    if (strncmp(next->name, req->name, nlen - 7) == 0 &&
        strcmp(next->name + nlen - 7, "Response") == 0)
        return next;
    char name[128];
    if (nlen + 2 > sizeof(name))
        return NULL;
    memcpy(name, req->name, nlen - 7);
    strcpy(name + nlen - 7, "Response");
    return ep_ua_type_by_name(name);
}

static void list_add(ep_uac_req **head, ep_uac_req *r)
{
    r->prev = NULL;
    r->next = *head;
    if (*head)
        (*head)->prev = r;
    *head = r;
}

static void list_del(ep_uac_req **head, ep_uac_req *r)
{
    if (r->prev)
        r->prev->next = r->next;
    else if (*head == r)
        *head = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->next = r->prev = NULL;
}

ep_uac_req *ep_uac__req_new(ep_uac *c, ep_uac_req_kind kind, const ep_ua_type *req_type)
{
    ep_uac_req *r = calloc(1, sizeof(*r));
    if (r == NULL)
        return NULL;
    r->client = c;
    r->kind = kind;
    r->req_type = req_type;
    r->resp_type = ep_uac__response_type(req_type);
    r->timeout_ms = c->opts.request_timeout_ms;
    r->needs_session = true;
    return r;
}

void ep_uac__req_free(ep_uac_req *r)
{
    if (r == NULL)
        return;
    ep_timer_stop(&r->timer);
    if (r->queued_msg) {
        ep_ua_clear(r->queued_msg, r->req_type);
        free(r->queued_msg);
    }
    free(r->acks);
    free(r);
}

static void complete(ep_uac *c, ep_uac_req *r, ep_err err, ep_ua_status st, const void *resp)
{
    ep_timer_stop(&r->timer);
    c->in_callback++;
    if (r->kind == EP_UAC_REQ_USER) {
        if (r->cb)
            r->cb(c, err, st, err == EP_EOK ? resp : NULL, r->ud);
    } else if (r->icb) {
        r->icb(c, r, err, st, resp);
    }
    c->in_callback--;
    ep_uac__req_free(r);
}

static void on_timeout(ep_timer *t)
{
    ep_uac_req *r = t->data;
    ep_uac *c = r->client;
    if (r->sent) {
        list_del(&c->active_head, r);
        c->nactive--;
        if (r->kind == EP_UAC_REQ_PUBLISH && c->publish_outstanding)
            c->publish_outstanding--;
    } else {
        if (r->prev)
            r->prev->next = r->next;
        else
            c->queue_head = r->next;
        if (r->next)
            r->next->prev = r->prev;
        else
            c->queue_tail = r->prev;
        c->nqueued--;
    }
    c->stats.timeouts++;
    bool publish = r->kind == EP_UAC_REQ_PUBLISH;
    if (publish)
        ep_uac__ack_requeue(c, r->nacks, r->acks);
    EP_LOG_DEBUG(EP_UAC_LOG, "request %s handle %u timed out", r->req_type->name, r->handle);
    complete(c, r, EP_ETIMEDOUT, EP_UA_STATUS_BadTimeout, NULL);
    if (publish)
        ep_uac__connection_lost(c, EP_ETIMEDOUT, EP_UA_STATUS_BadTimeout,
                                "no Publish response in time");
    else
        ep_uac__req_flush_queue(c);
}

/* send now: shallow copy with our RequestHeader, then the link encodes */
static ep_err send_now(ep_uac *c, ep_uac_req *r, const void *msg)
{
    if (c->link == NULL)
        return EP_ECLOSED;
    _Alignas(max_align_t) uint8_t stack[512];
    void *copy = r->req_type->size <= sizeof(stack) ? stack : malloc(r->req_type->size);
    if (copy == NULL)
        return EP_ENOMEM;
    memcpy(copy, msg, r->req_type->size);
    ep_ua_request_header *h = copy;
    h->authentication_token = c->have_session ? c->auth_token : ep_ua_nodeid_numeric(0, 0);
    h->timestamp = ep_uac__now_dt();
    h->request_handle = r->handle;
    h->timeout_hint = r->timeout_ms;
    ep_err err = c->link->ops->send(c->link, r->req_type, copy, &r->request_id);
    if (copy != stack)
        free(copy);
    if (err != EP_EOK)
        return err;
    r->sent = true;
    list_add(&c->active_head, r);
    c->nactive++;
    c->stats.requests++;
    if (r->kind == EP_UAC_REQ_PUBLISH) {
        c->publish_outstanding++;
        c->stats.publish_sent++;
    }
    return EP_EOK;
}

static bool can_send(const ep_uac *c, const ep_uac_req *r)
{
    if (c->link == NULL || !c->link_open)
        return false;
    return !r->needs_session || c->phase == EP_UAC_PH_READY;
}

ep_err ep_uac__req_submit(ep_uac *c, ep_uac_req *r, const void *msg)
{
    if (++c->next_handle == 0)
        c->next_handle = 1;
    r->handle = c->next_handle;
    ep_timer_init(c->loop, &r->timer, on_timeout, r);
    ep_err err;
    bool direct = r->kind != EP_UAC_REQ_USER;
    if (direct || (can_send(c, r) && c->nqueued == 0 &&
                   c->nactive - c->publish_outstanding < c->opts.max_outstanding)) {
        if (!can_send(c, r) && r->kind != EP_UAC_REQ_USER) {
            err = c->link ? EP_ESTATE : EP_ECLOSED;
            goto fail;
        }
        err = send_now(c, r, msg);
        if (err != EP_EOK)
            goto fail;
    } else {
        if (c->nqueued >= c->opts.max_queued) {
            err = EP_EFULL;
            goto fail;
        }
        r->queued_msg = calloc(1, r->req_type->size);
        if (r->queued_msg == NULL) {
            err = EP_ENOMEM;
            goto fail;
        }
        err = ep_ua_copy(msg, r->queued_msg, r->req_type);
        if (err != EP_EOK)
            goto fail;
        r->prev = c->queue_tail;
        r->next = NULL;
        if (c->queue_tail)
            c->queue_tail->next = r;
        else
            c->queue_head = r;
        c->queue_tail = r;
        c->nqueued++;
    }
    if (r->timeout_ms) {
        err = ep_timer_start(&r->timer, r->timeout_ms);
        if (err != EP_EOK)
            EP_LOG_WARN(EP_UAC_LOG, "request timer: %s", ep_strerror(err));
    }
    return EP_EOK;
fail:
    ep_uac__req_free(r);
    return err;
}

void ep_uac__req_flush_queue(ep_uac *c)
{
    while (c->queue_head && can_send(c, c->queue_head) &&
           c->nactive - c->publish_outstanding < c->opts.max_outstanding) {
        ep_uac_req *r = c->queue_head;
        c->queue_head = r->next;
        if (c->queue_head)
            c->queue_head->prev = NULL;
        else
            c->queue_tail = NULL;
        c->nqueued--;
        r->next = r->prev = NULL;
        void *msg = r->queued_msg;
        r->queued_msg = NULL;
        ep_err err = send_now(c, r, msg);
        ep_ua_clear(msg, r->req_type);
        free(msg);
        if (err != EP_EOK)
            complete(c, r, err, EP_UA_STATUS_BadCommunicationError, NULL);
    }
}

void ep_uac__req_fail_all(ep_uac *c, ep_err err, bool keep_queued)
{
    ep_ua_status st =
        err == EP_ECLOSED ? EP_UA_STATUS_BadConnectionClosed : EP_UA_STATUS_BadCommunicationError;
    while (c->active_head) {
        ep_uac_req *r = c->active_head;
        list_del(&c->active_head, r);
        c->nactive--;
        if (r->kind == EP_UAC_REQ_PUBLISH) {
            if (c->publish_outstanding)
                c->publish_outstanding--;
            ep_uac__ack_requeue(c, r->nacks, r->acks);
        }
        complete(c, r, err, st, NULL);
    }
    if (keep_queued)
        return;
    while (c->queue_head) {
        ep_uac_req *r = c->queue_head;
        c->queue_head = r->next;
        c->nqueued--;
        complete(c, r, err, st, NULL);
    }
    c->queue_tail = NULL;
}

static bool session_lost_status(ep_ua_status st)
{
    switch (st & 0xFFFF0000u) {
    case EP_UA_STATUS_BadSessionIdInvalid:
    case EP_UA_STATUS_BadSessionClosed:
    case EP_UA_STATUS_BadSessionNotActivated:
        return true;
    default:
        return false;
    }
}

void ep_uac__on_message(void *ud, uint32_t request_id, const ep_ua_type *type, const void *body,
                        ep_ua_status st)
{
    ep_uac *c = ud;
    ep_uac_req *r = c->active_head;
    while (r && r->request_id != request_id)
        r = r->next;
    if (r == NULL) {
        EP_LOG_DEBUG(EP_UAC_LOG, "response for unknown request id %u (late or bogus)", request_id);
        return;
    }
    list_del(&c->active_head, r);
    c->nactive--;
    if (r->kind == EP_UAC_REQ_PUBLISH && c->publish_outstanding)
        c->publish_outstanding--;
    c->stats.responses++;
    c->last_rx_ms = ep_loop_now(c->loop);

    ep_err err = EP_EOK;
    const char *why = NULL;
    if (type == NULL || body == NULL) {
        err = EP_EPROTO;
        if (st == EP_UA_STATUS_Good)
            st = EP_UA_STATUS_BadDecodingError;
        why = "response could not be decoded";
    } else {
        const ep_ua_response_header *h = body;
        if (h->request_handle != r->handle) {
            err = EP_EPROTO;
            st = EP_UA_STATUS_BadUnknownResponse;
            why = "response carries another request's handle";
        } else if (type == EP_UA_T(ServiceFault)) {
            err = EP_EPROTO;
            st = h->service_result ? h->service_result : EP_UA_STATUS_BadUnknownResponse;
        } else if (type != r->resp_type) {
            err = EP_EPROTO;
            st = EP_UA_STATUS_BadUnknownResponse;
            why = "response of the wrong type";
        } else {
            st = h->service_result;
        }
    }
    if (why) {
        ep_uac__set_error(c, "%s to %s (%s)", why, r->req_type->name, ep_ua_status_name(st));
        EP_LOG_WARN(EP_UAC_LOG, "%s", c->last_error);
    }
    bool publish = r->kind == EP_UAC_REQ_PUBLISH;
    if (publish && err != EP_EOK)
        ep_uac__ack_requeue(c, r->nacks, r->acks);
    complete(c, r, err, st, err == EP_EOK ? body : NULL);
    if (c->freeing)
        return;
    if (why) {
        /* a server that mixes up responses cannot be trusted further */
        ep_uac__connection_lost(c, EP_EPROTO, st, c->last_error);
        return;
    }
    if (session_lost_status(st) && c->phase == EP_UAC_PH_READY) {
        ep_uac__connection_lost(c, EP_ECLOSED, st, "the server lost the session");
        return;
    }
    ep_uac__req_flush_queue(c);
    if (publish || c->publish_outstanding < c->publish_target)
        ep_uac__publish_pump(c);
}
