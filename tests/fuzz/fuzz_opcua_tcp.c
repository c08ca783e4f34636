/*
 * fuzz_opcua_tcp.c - the opc.tcp framing decoders (src/svc/opcua/tcp.h):
 * message header, Hello, Acknowledge, Error, ReverseHello. A message that
 * decodes must re-encode to the same bytes.
 */
#include <stdlib.h>
#include <string.h>

#include "svc/opcua/tcp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ep_ua__hdr h;
    if (ep_ua__hdr_parse(data, size, &h) != EP_EOK || h.size > size)
        return 0;
    ep_buf b;
    ep_buf_init(&b, 0);
    ep_ua__hello hel;
    ep_ua__error er;
    ep_ua__rhello rh;
    ep_err e = EP_EINVAL;
    if (ep_ua__hello_decode(data, h.size, &hel) == EP_EOK)
        e = ep_ua__hello_encode(&b, &hel);
    else if (ep_ua__ack_decode(data, h.size, &hel) == EP_EOK)
        e = ep_ua__ack_encode(&b, &hel);
    else if (ep_ua__error_decode(data, h.size, &er) == EP_EOK)
        e = ep_ua__error_encode(&b, &er);
    else if (ep_ua__rhello_decode(data, h.size, &rh) == EP_EOK)
        e = ep_ua__rhello_encode(&b, &rh);
    if (e == EP_EOK && (ep_buf_used(&b) != h.size || memcmp(ep_buf_head(&b), data, h.size) != 0))
        abort();
    ep_buf_fini(&b);
    return 0;
}
