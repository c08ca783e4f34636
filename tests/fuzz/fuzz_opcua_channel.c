/*
 * fuzz_opcua_channel.c - a server channel (src/svc/opcua/channel.h) fed
 * through a socketpair: a fixed Hello and OpenSecureChannel (policy None)
 * open the channel, then the input follows as chunks. The channel id and
 * token id of every MSG/CLO chunk in the input are patched to the real
 * ones so the fuzzer reaches sequence checks, chunk reassembly, limits and
 * message decoding. Each request is answered with a ServiceFault.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "codec/opcua/gen/statuscodes.h"
#include "core/log.h"
#include "core/sock.h"
#include "svc/opcua/channel.h"
#include "svc/opcua/tcp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint8_t prologue[] = {
    /* HEL, 8192/8192 buffers, 64 KiB max message, 8 chunks, "opc.tcp://f" */
    'H', 'E', 'L',  'F', 43,  0,   0,   0,   0,   0,   0,   0,   0,   0x20, 0,
    0,   0,   0x20, 0,   0,   0,   0,   1,   0,   8,   0,   0,   0,   11,   0,
    0,   0,   'o',  'p', 'c', '.', 't', 'c', 'p', ':', '/', '/', 'f',
};

static const char none_uri[] = "http://opcfoundation.org/UA/SecurityPolicy#None";

static size_t opn(uint8_t *b)
{
    size_t n = 0;
    memcpy(b, "OPNF\0\0\0\0\0\0\0\0", 12);
    n = 12;
    ep_ua__wr32(b + n, sizeof(none_uri) - 1);
    memcpy(b + n + 4, none_uri, sizeof(none_uri) - 1);
    n += 4 + sizeof(none_uri) - 1;
    ep_ua__wr32(b + n, 0xffffffffu);
    ep_ua__wr32(b + n + 4, 0xffffffffu);
    ep_ua__wr32(b + n + 8, 1);  /* sequence */
    ep_ua__wr32(b + n + 12, 1); /* request id */
    n += 16;
    static const uint8_t body[] = {1, 0, 0xbe, 1, /* i=446 */
                                   0, 0, 0,    0,    0,    0,    0,    0,    0,    0,    1,    0, 0,
                                   0, 0, 0,    0,    0,    0xff, 0xff, 0xff, 0xff, 0x10, 0x27, 0, 0,
                                   0, 0, 0,    0,    0,    0,    0,    0,    0,    0,    0,    1, 0,
                                   0, 0, 0xff, 0xff, 0xff, 0xff, 0xc0, 0x27, 0x09, 0};
    memcpy(b + n, body, sizeof(body));
    n += sizeof(body);
    ep_ua__wr32(b + 4, (uint32_t)n);
    return n;
}

static int closed;

static void on_close(ep_ua_channel *ch, ep_ua_status st, void *ud)
{
    (void)ch;
    (void)st;
    (void)ud;
    closed = 1;
}

static void on_msg(ep_ua_channel *ch, const ep_ua_channel_msg *m, void *ud)
{
    (void)ud;
    ep_ua_service_fault f;
    memset(&f, 0, sizeof(f));
    f.response_header.request_handle = m->request_handle;
    f.response_header.service_result = m->status ? m->status : EP_UA_STATUS_BadServiceUnsupported;
    ep_ua_channel_send(ch, m->request_id, EP_UA_T(ServiceFault), &f);
}

static void drain(int fd, uint32_t *chan, uint32_t *tok)
{
    uint8_t buf[65536];
    ssize_t n;
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        /* the OPN response: channel id at 8, token id after the response
         * header (fixed layout for an empty response header) */
        if (chan && n > 100 && memcmp(buf, "OPNF", 4) == 0) {
            *chan = ep_ua__rd32(buf + 8);
            size_t p = 12 + 4 + (sizeof(none_uri) - 1) + 8 + 8 + 4 + 8 + 4 + 4 + 1 + 4 + 3 + 4;
            *tok = ep_ua__rd32(buf + p + 4);
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int init;
    if (!init) {
        ep_log_set_level(EP_LOG_OFF);
        init = 1;
    }
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, sv) != 0)
        return 0;
    ep_loop *loop;
    if (ep_loop_new(&loop, NULL) != EP_EOK) {
        close(sv[0]);
        close(sv[1]);
        return 0;
    }
    ep_ua_channel_opts o;
    memset(&o, 0, sizeof(o));
    o.cbs.on_message = on_msg;
    o.cbs.on_close = on_close;
    closed = 0;
    o.limits.recv_buffer_size = 8192;
    o.limits.max_message_size = 65536;
    o.limits.max_chunk_count = 8;
    ep_ua_channel *ch;
    if (ep_ua_channel_accept(loop, sv[0], EP_UA_CHANNEL_SERVER, "fuzz", &o, &ch) == EP_EOK) {
        uint8_t b[512];
        uint32_t chan = 0, tok = 0;
        (void)!write(sv[1], prologue, sizeof(prologue));
        (void)!write(sv[1], b, opn(b));
        for (int i = 0; i < 4; i++)
            ep_loop_run_once(loop, 0);
        drain(sv[1], &chan, &tok);
        uint8_t *copy = malloc(size ? size : 1);
        if (copy) {
            memcpy(copy, data, size);
            for (size_t p = 0; p + 16 <= size;) {
                uint32_t len = ep_ua__rd32(copy + p + 4);
                if ((memcmp(copy + p, "MSG", 3) == 0 || memcmp(copy + p, "CLO", 3) == 0)) {
                    ep_ua__wr32(copy + p + 8, chan);
                    ep_ua__wr32(copy + p + 12, tok);
                }
                if (len < 8)
                    break;
                p += len;
            }
            for (size_t off = 0; off < size;) {
                ssize_t w = write(sv[1], copy + off, size - off);
                if (w <= 0)
                    break;
                off += (size_t)w;
                ep_loop_run_once(loop, 0);
                drain(sv[1], NULL, NULL);
            }
            free(copy);
        }
        for (int i = 0; i < 4; i++) {
            ep_loop_run_once(loop, 0);
            drain(sv[1], NULL, NULL);
        }
        close(sv[1]);
        sv[1] = -1;
        for (int i = 0; i < 4; i++)
            ep_loop_run_once(loop, 0);
        /* the peer is gone: the channel closes, lingers, sees EOF and is
         * released before the loop goes */
        if (!closed)
            ep_ua_channel_close(ch, EP_UA_STATUS_Good, NULL);
        for (int i = 0; i < 8; i++)
            ep_loop_run_once(loop, 0);
    }
    if (sv[1] >= 0)
        close(sv[1]);
    ep_loop_free(loop);
    return 0;
}
