/* fuzz_ws.c - the WebSocket upgrade request parser and frame header
 * parser on arbitrary bytes: never crash, and a parsed frame header always
 * lies within the input and re-encodes to the same length fields. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "codec/ws/ws.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    long head = ep_ws_handshake_find(data, size);
    if (head > 0) {
        ep_ws_handshake h;
        int status;
        const char *why;
        if (ep_ws_handshake_parse((const char *)data, (size_t)head, &h, &status, &why) == EP_EOK) {
            char acc[29];
            if (h.path + h.path_len > (const char *)data + head || strlen(h.key) != 24)
                abort();
            if (ep_ws_accept_key(h.key, acc) != EP_EOK || strlen(acc) != 28)
                abort();
        }
    }
    ep_ws_frame f;
    if (size > 0 && ep_ws_frame_parse(data, size, 1u << 20, data[0] & 1, &f) == EP_EOK) {
        if (f.header_len > size || f.payload_len > (1u << 20))
            abort();
        uint8_t hdr[10];
        size_t hl = ep_ws_frame_header(hdr, f.opcode, f.fin, f.payload_len);
        if (hl + (f.masked ? 4 : 0) != f.header_len)
            abort();
        size_t avail = size - f.header_len;
        size_t n = avail < f.payload_len ? avail : (size_t)f.payload_len;
        uint8_t *copy = malloc(n ? n : 1);
        if (copy == NULL)
            return 0;
        memcpy(copy, data + f.header_len, n);
        ep_ws_unmask(copy, n, f.mask, 0);
        ep_ws_unmask(copy, n, f.mask, 0);
        if (memcmp(copy, data + f.header_len, n) != 0)
            abort();
        free(copy);
    }
    return 0;
}
