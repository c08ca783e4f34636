/*
 * wal_format.c - on-disk format of the log: CRC-32C, record and segment
 * headers. Pure functions, no I/O (shared by the writer, recovery, the unit
 * test and the fuzzer).
 *
 * All integers are little-endian. A record is
 *   crc32c u32 | len u32 | seq u64 | type u8 | flags u8 | zero u16 | payload
 * and the CRC covers everything after itself, so a torn write, a zero-filled
 * block or a stale block all fail the check. The length is validated against
 * the configured maximum before anything is allocated or read.
 *
 * CRC-32C is computed slice-by-8 with tables built once (8 KiB); about
 * 1.5-3 GB/s on current CPUs, well above the disk.
 */
#include <pthread.h>
#include <string.h>

#include "core/wal.h"

static uint32_t crc_tab[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
        crc_tab[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
}

uint32_t ep_wal_crc32c(uint32_t crc, const void *p, size_t n)
{
    const uint8_t *b = p;
    pthread_once(&crc_once, crc_init);
    crc = ~crc;
    while (n && ((uintptr_t)b & 7)) {
        crc = crc_tab[0][(crc ^ *b++) & 0xff] ^ (crc >> 8);
        n--;
    }
    while (n >= 8) {
        uint32_t lo = crc ^ ((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                             (uint32_t)b[3] << 24);
        crc = crc_tab[7][lo & 0xff] ^ crc_tab[6][(lo >> 8) & 0xff] ^ crc_tab[5][(lo >> 16) & 0xff] ^
              crc_tab[4][lo >> 24] ^ crc_tab[3][b[4]] ^ crc_tab[2][b[5]] ^ crc_tab[1][b[6]] ^
              crc_tab[0][b[7]];
        b += 8;
        n -= 8;
    }
    while (n--)
        crc = crc_tab[0][(crc ^ *b++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

static void put32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
    p[2] = (uint8_t)(v >> 16);
    p[3] = (uint8_t)(v >> 24);
}

static void put64(uint8_t *p, uint64_t v)
{
    put32(p, (uint32_t)v);
    put32(p + 4, (uint32_t)(v >> 32));
}

static uint32_t get32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t get64(const uint8_t *p)
{
    return (uint64_t)get32(p) | (uint64_t)get32(p + 4) << 32;
}

void ep_wal__rec_seal(uint8_t *rec, size_t size)
{
    put32(rec, ep_wal_crc32c(0, rec + 4, size - 4));
}

size_t ep_wal__rec_encode(uint8_t *dst, const ep_wal__hdr *h, const struct iovec *iov, int iovcnt,
                          bool seal)
{
    size_t off = EP_WAL__REC_HDR;
    for (int i = 0; i < iovcnt; i++) {
        if (iov[i].iov_len) {
            memcpy(dst + off, iov[i].iov_base, iov[i].iov_len);
            off += iov[i].iov_len;
        }
    }
    put32(dst, 0);
    put32(dst + 4, (uint32_t)(off - EP_WAL__REC_HDR));
    put64(dst + 8, h->seq);
    dst[16] = h->type;
    dst[17] = h->flags;
    dst[18] = 0;
    dst[19] = 0;
    if (seal)
        ep_wal__rec_seal(dst, off);
    return off;
}

ep_err ep_wal__rec_decode(const uint8_t *p, size_t avail, uint32_t max_len, ep_wal__hdr *h,
                          size_t *size)
{
    if (avail < EP_WAL__REC_HDR) {
        *size = EP_WAL__REC_HDR;
        return EP_ENEEDMORE;
    }
    uint32_t len = get32(p + 4);
    if (len > max_len || p[18] != 0 || p[19] != 0 || (p[17] & ~(unsigned)EP_WAL__F_META))
        return EP_EMALFORMED;
    size_t need = (size_t)EP_WAL__REC_HDR + len;
    if (avail < need) {
        *size = need;
        return EP_ENEEDMORE;
    }
    if (ep_wal_crc32c(0, p + 4, need - 4) != get32(p))
        return EP_EMALFORMED;
    h->len = len;
    h->seq = get64(p + 8);
    h->type = p[16];
    h->flags = p[17];
    *size = need;
    return EP_EOK;
}

static const uint8_t seg_magic[8] = {'E', 'P', 'W', 'A', 'L', 'S', 'E', 'G'};

void ep_wal__seg_hdr_encode(uint8_t dst[EP_WAL__SEG_HDR], int kind, uint64_t first)
{
    memset(dst, 0, EP_WAL__SEG_HDR);
    memcpy(dst, seg_magic, sizeof(seg_magic));
    dst[8] = (uint8_t)EP_WAL__VERSION;
    dst[9] = (uint8_t)(EP_WAL__VERSION >> 8);
    dst[10] = (uint8_t)kind;
    put32(dst + 12, EP_WAL__SEG_HDR);
    put64(dst + 16, first);
    put32(dst + 28, ep_wal_crc32c(0, dst, 28));
}

ep_err ep_wal__seg_hdr_decode(const uint8_t *p, size_t avail, int *kind, uint64_t *first)
{
    if (avail < EP_WAL__SEG_HDR || memcmp(p, seg_magic, sizeof(seg_magic)) != 0 ||
        ep_wal_crc32c(0, p, 28) != get32(p + 28))
        return EP_EMALFORMED;
    unsigned version = (unsigned)p[8] | (unsigned)p[9] << 8;
    if (version != EP_WAL__VERSION || p[11] != 0 || get32(p + 12) != EP_WAL__SEG_HDR ||
        get32(p + 24) != 0 || (p[10] != EP_WAL__KIND_LOG && p[10] != EP_WAL__KIND_SNAP))
        return EP_EMALFORMED;
    *kind = p[10];
    *first = get64(p + 16);
    return EP_EOK;
}
