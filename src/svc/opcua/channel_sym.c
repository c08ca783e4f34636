/*
 * channel_sym.c - MSG and CLO: the symmetric part of the secure channel
 * (channel_int.h).
 *
 * Sending: a message is encoded once, then cut into chunks no larger than
 * the peer receives; each chunk gets the symmetric security header, a
 * sequence number, padding, the signature and encryption with the current
 * token, directly in the output buffer. Receiving: each chunk is verified
 * and decrypted in the read buffer, its sequence number checked, and its
 * body appended to the reassembly buffer until the final chunk, which is
 * decoded into the channel's arena and delivered (an aborted or oversized
 * message is delivered as a failure with the best-effort request handle).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc/opcua/channel_int.h"

/* Largest body per symmetric chunk for the current security. */
static size_t sym_body_max(const ep_ua_channel *ch)
{
    size_t room = ch->send_chunk - 16 - 8; /* headers, sequence header */
    if (ch->mode == EP_UA_MESSAGE_SECURITY_MODE_SIGN_AND_ENCRYPT) {
        size_t b = ch->policy->sym_block_len;
        room = (ch->send_chunk - 16) / b * b - 8 - ch->policy->sym_sig_len - 1;
    } else if (ch->mode == EP_UA_MESSAGE_SECURITY_MODE_SIGN) {
        room -= ch->policy->sym_sig_len;
    }
    return room;
}

static const token *send_token(const ep_ua_channel *ch)
{
    if (ch->role == EP_UA_CHANNEL_SERVER && !ch->tok_active && ch->tok[1].valid)
        return &ch->tok[1];
    return &ch->tok[0];
}

/* Append one symmetric chunk (MSG or CLO) to out. */
static ep_err put_sym_chunk(ep_ua_channel *ch, uint32_t type, uint8_t chunk, uint32_t request_id,
                            const uint8_t *body, size_t blen)
{
    const token *t = send_token(ch);
    bool sign = ch->mode >= EP_UA_MESSAGE_SECURITY_MODE_SIGN && is_secure(ch);
    bool enc = ch->mode == EP_UA_MESSAGE_SECURITY_MODE_SIGN_AND_ENCRYPT && is_secure(ch);
    size_t sig = sign ? ch->policy->sym_sig_len : 0;
    size_t pad = 0, padfield = 0;
    if (enc) {
        size_t b = ch->policy->sym_block_len;
        pad = (b - ((8 + blen + 1 + sig) % b)) % b;
        padfield = pad + 1;
    }
    size_t size = 16 + 8 + blen + padfield + sig;
    ep_err e = ep_buf_reserve(&ch->out, size);
    if (e != EP_EOK)
        return e;
    uint8_t *p = ep_buf_tail(&ch->out);
    p[0] = (uint8_t)type;
    p[1] = (uint8_t)(type >> 8);
    p[2] = (uint8_t)(type >> 16);
    p[3] = chunk;
    ep_ua__wr32(p + 4, (uint32_t)size);
    ep_ua__wr32(p + 8, ch->channel_id);
    ep_ua__wr32(p + 12, t->id);
    ep_ua__wr32(p + 16, ch->send_seq);
    ep_ua__wr32(p + 20, request_id);
    if (blen)
        memcpy(p + 24, body, blen);
    if (padfield)
        memset(p + 24 + blen, (int)(pad & 0xff), padfield);
    ch->send_seq = ch->send_seq >= 0xfffffbffu ? 1 : ch->send_seq + 1;
    if (sign) {
        e = ep_ua_sym_sign(ch->policy, &t->send, p, size - sig, p + size - sig, sig);
        if (e != EP_EOK)
            return e;
    }
    if (enc) {
        e = ep_ua_sym_encrypt(ch->policy, &t->send, p + 16, p + 16, size - 16);
        if (e != EP_EOK)
            return e;
    }
    ch->out.len += size;
    return EP_EOK;
}

ep_err ep_ua__ch_encode_msg(const ep_ua_type *type, const void *body, ep_buf *b)
{
    return ep_ua_message_encode(body, type, b);
}

ep_err ep_ua__ch_send_typed(ep_ua_channel *ch, uint32_t msgtype, uint32_t request_id,
                            const ep_ua_type *type, const void *body)
{
    ep_buf b;
    ep_buf_init(&b, ch->peer_max_msg ? ch->peer_max_msg : 0);
    ep_err e = ep_ua__ch_encode_msg(type, body, &b);
    if (e != EP_EOK) {
        ep_buf_fini(&b);
        return e;
    }
    size_t len = ep_buf_used(&b);
    size_t max = sym_body_max(ch);
    size_t nchunks = len ? (len + max - 1) / max : 1;
    if (ch->peer_max_chunks && nchunks > ch->peer_max_chunks) {
        ep_buf_fini(&b);
        return EP_ETOOBIG;
    }
    size_t undo = ch->out.len;
    for (size_t off = 0, i = 0; i < nchunks; i++) {
        size_t n = len - off < max ? len - off : max;
        e = put_sym_chunk(ch, msgtype, i + 1 == nchunks ? 'F' : 'C', request_id,
                          ep_buf_head(&b) + off, n);
        if (e != EP_EOK) {
            ch->out.len = undo;
            break;
        }
        off += n;
    }
    ep_buf_fini(&b);
    if (e == EP_ENOMEM)
        ep_ua__ch_do_close(ch, EP_UA_STATUS_BadOutOfMemory);
    return e;
}

ep_err ep_ua_channel_send(ep_ua_channel *ch, uint32_t request_id, const ep_ua_type *type,
                          const void *body)
{
    if (ch == NULL || ch->state != ST_OPEN)
        return EP_ECLOSED;
    ep_err e = ep_ua__ch_send_typed(ch, EP_UA_MSG_MSG, request_id, type, body);
    if (e == EP_ETOOBIG && ep_ratelimit_allow(&ch->rl, ep_loop_now(ch->loop)))
        EP_LOG_INFO(LOGCAT, "channel %u: %s too large for the peer's limits", ch->channel_id,
                    type->name);
    return e;
}

ep_err ep_ua_channel_request(ep_ua_channel *ch, const ep_ua_type *type, const void *body,
                             uint32_t *request_id)
{
    if (ch == NULL || ch->state != ST_OPEN)
        return EP_ECLOSED;
    uint32_t id = ch->next_request_id++;
    if (ch->next_request_id == 0)
        ch->next_request_id = 1;
    ep_err e = ep_ua_channel_send(ch, id, type, body);
    if (e == EP_EOK && request_id)
        *request_id = id;
    return e;
}

bool ep_ua__ch_seq_ok(ep_ua_channel *ch, uint32_t seq)
{
    if (!ch->recv_seq_init) {
        ch->recv_seq_init = true;
        ch->recv_seq = seq;
        return true;
    }
    uint32_t want = ch->recv_seq + 1;
    /* Wrap-around: after 4294966271 the sender restarts below 1024. */
    if (seq == want || (ch->recv_seq > 0xfffffbffu && seq < 1024)) {
        ch->recv_seq = seq;
        return true;
    }
    return false;
}

ep_ua_arena *ep_ua__ch_arena(ep_ua_channel *ch)
{
    if (ch->arena == NULL) {
        ch->arena = malloc(sizeof(*ch->arena));
        if (ch->arena == NULL)
            return NULL;
        ep_ua_arena_init(ch->arena, (size_t)ch->lim.max_message_size * 4 + (1u << 20), NULL);
    }
    return ch->arena;
}

ep_ua_arena *ep_ua_channel_take_arena(ep_ua_channel *ch)
{
    ep_ua_arena *a = ch->arena;
    ch->arena = NULL;
    return a;
}

void ep_ua_channel_arena_free(ep_ua_arena *a)
{
    if (a == NULL)
        return;
    ep_ua_arena_fini(a);
    free(a);
}

/* Best-effort request handle of a body that failed to decode. */
static uint32_t peek_request_handle(const uint8_t *p, size_t n, ep_ua_arena *arena)
{
    size_t pos = 0;
    ep_ua_nodeid id;
    ep_ua_request_header rh;
    ep_ua_arena_mark m = ep_ua_arena_save(arena);
    uint32_t h = 0;
    if (ep_ua_decode(p, n, &pos, EP_UA_T(NodeId), &id, arena, NULL, NULL) == EP_EOK &&
        ep_ua_decode(p, n, &pos, EP_UA_T(RequestHeader), &rh, arena, NULL, NULL) == EP_EOK)
        h = rh.request_handle;
    ep_ua_arena_rewind(arena, m);
    return h;
}

static void deliver(ep_ua_channel *ch, uint32_t request_id, ep_ua_status fail)
{
    ep_ua_arena *arena = ep_ua__ch_arena(ch);
    if (arena == NULL) {
        ep_ua__ch_fail(ch, EP_UA_STATUS_BadOutOfMemory, "out of memory");
        return;
    }
    ep_ua_channel_msg m;
    memset(&m, 0, sizeof(m));
    m.request_id = request_id;
    m.arena = arena;
    m.status = fail;
    if (fail == EP_UA_STATUS_Good) {
        size_t pos = 0;
        const ep_ua_type *type = NULL;
        void *body = NULL;
        ep_ua_status st = EP_UA_STATUS_Good;
        ep_err e = ep_ua_message_decode(ep_buf_head(&ch->msg), ep_buf_used(&ch->msg), &pos, &type,
                                        &body, arena, &ch->lim.decode, &st);
        if (e == EP_EOK) {
            m.type = type;
            m.body = body;
            /* Request and response headers both start the body. */
            if (type->nfields && type->fields[0].type == EP_UA_TYPE_RequestHeader)
                m.request_handle = ((ep_ua_request_header *)body)->request_handle;
            else if (type->nfields && type->fields[0].type == EP_UA_TYPE_ResponseHeader)
                m.request_handle = ((ep_ua_response_header *)body)->request_handle;
        } else {
            m.status = st != EP_UA_STATUS_Good ? st : EP_UA_STATUS_BadDecodingError;
            m.request_handle =
                peek_request_handle(ep_buf_head(&ch->msg), ep_buf_used(&ch->msg), arena);
        }
    }
    ep_buf_clear(&ch->msg);
    ep_buf_shrink(&ch->msg, 65536);
    ch->opts.cbs.on_message(ch, &m, ch->opts.ud);
    if (ch->arena)
        ep_ua_arena_clear(ch->arena);
}

/* A symmetric chunk (MSG/CLO): verify, decrypt, collect, deliver. */
void ep_ua__ch_on_sym(ep_ua_channel *ch, uint32_t type, uint8_t chunk, uint8_t *p, size_t n)
{
    if (ch->state != ST_OPEN) {
        ep_ua__ch_fail(ch, EP_UA_STATUS_BadTcpMessageTypeInvalid,
                       "message before the secure channel was open");
        return;
    }
    if (ep_ua__rd32(p + 8) != ch->channel_id) {
        ep_ua__ch_fail(ch, EP_UA_STATUS_BadTcpSecureChannelUnknown, "wrong channel id");
        return;
    }
    uint32_t tid = ep_ua__rd32(p + 12);
    const token *t = NULL;
    if (ch->tok[0].valid && tid == ch->tok[0].id) {
        t = &ch->tok[0];
        if (ch->role == EP_UA_CHANNEL_SERVER && !ch->tok_active) {
            ch->tok_active = true;
            ep_ua_sym_keys_clear(&ch->tok[1].send);
            ep_ua_sym_keys_clear(&ch->tok[1].recv);
            ch->tok[1].valid = false;
        }
    } else if (ch->tok[1].valid && tid == ch->tok[1].id) {
        t = &ch->tok[1];
    }
    if (t == NULL) {
        ep_ua__ch_fail(ch, EP_UA_STATUS_BadSecureChannelTokenUnknown, "unknown security token");
        return;
    }
    size_t end = n;
    if (is_secure(ch) && ch->mode >= EP_UA_MESSAGE_SECURITY_MODE_SIGN) {
        size_t sig = ch->policy->sym_sig_len;
        if (ch->mode == EP_UA_MESSAGE_SECURITY_MODE_SIGN_AND_ENCRYPT) {
            if ((n - 16) % ch->policy->sym_block_len != 0 ||
                ep_ua_sym_decrypt(ch->policy, &t->recv, p + 16, p + 16, n - 16) != EP_EOK) {
                ep_ua__ch_fail(ch, EP_UA_STATUS_BadSecurityChecksFailed,
                               "could not decrypt a message");
                return;
            }
        }
        if (n < 24 + sig ||
            ep_ua_sym_verify(ch->policy, &t->recv, p, n - sig, p + n - sig, sig) != EP_EOK) {
            ep_ua__ch_fail(ch, EP_UA_STATUS_BadSecurityChecksFailed,
                           "message signature is invalid");
            return;
        }
        end = n - sig;
        if (ch->mode == EP_UA_MESSAGE_SECURITY_MODE_SIGN_AND_ENCRYPT) {
            uint8_t pad = p[end - 1];
            if ((size_t)pad + 1 > end - 24) {
                ep_ua__ch_fail(ch, EP_UA_STATUS_BadSecurityChecksFailed, "bad padding");
                return;
            }
            for (size_t i = end - 1 - pad; i < end; i++)
                if (p[i] != pad) {
                    ep_ua__ch_fail(ch, EP_UA_STATUS_BadSecurityChecksFailed, "bad padding");
                    return;
                }
            end -= (size_t)pad + 1;
        }
    }
    uint32_t seq = ep_ua__rd32(p + 16), rid = ep_ua__rd32(p + 20);
    if (!ep_ua__ch_seq_ok(ch, seq)) {
        ep_ua__ch_fail(ch, EP_UA_STATUS_BadSequenceNumberInvalid, "sequence number out of order");
        return;
    }
    if (type == EP_UA_MSG_CLO) {
        if (ch->role == EP_UA_CHANNEL_SERVER)
            ep_ua__ch_do_close(ch, EP_UA_STATUS_Good);
        return;
    }
    if (ch->msg_active && rid != ch->msg_request_id) {
        ep_ua__ch_fail(ch, EP_UA_STATUS_BadTcpMessageTypeInvalid,
                       "chunks of different messages interleaved");
        return;
    }
    if (!ch->msg_active) {
        ch->msg_active = true;
        ch->msg_discard = false;
        ch->msg_request_id = rid;
        ch->msg_chunks = 0;
        ch->msg_fail = EP_UA_STATUS_Good;
    }
    if (chunk == 'A') {
        /* Abort: drop what was collected. A response abort carries an
         * error status and reason, reported to a client's request. */
        ep_buf_clear(&ch->msg);
        ch->msg_active = false;
        if (ch->role == EP_UA_CHANNEL_CLIENT) {
            ep_ua_status st =
                end - 24 >= 4 ? ep_ua__rd32(p + 24) : EP_UA_STATUS_BadCommunicationError;
            deliver(ch, rid, st ? st : EP_UA_STATUS_BadCommunicationError);
        }
        return;
    }
    ch->msg_chunks++;
    if (!ch->msg_discard) {
        size_t blen = end - 24;
        if (ch->msg_chunks > ch->lim.max_chunk_count ||
            ep_buf_used(&ch->msg) + blen > ch->lim.max_message_size ||
            ep_buf_append(&ch->msg, p + 24, blen) != EP_EOK) {
            ch->msg_discard = true;
            ch->msg_fail = ch->role == EP_UA_CHANNEL_SERVER ? EP_UA_STATUS_BadRequestTooLarge
                                                            : EP_UA_STATUS_BadResponseTooLarge;
            ep_buf_clear(&ch->msg);
            if (ep_ratelimit_allow(&ch->rl, ep_loop_now(ch->loop)))
                EP_LOG_INFO(LOGCAT,
                            "channel %u peer=%s: message above %u bytes or %u "
                            "chunks dropped",
                            ch->channel_id, ch->peer, ch->lim.max_message_size,
                            ch->lim.max_chunk_count);
        }
    }
    if (chunk == 'F') {
        ch->msg_active = false;
        deliver(ch, rid, ch->msg_fail);
    }
}
