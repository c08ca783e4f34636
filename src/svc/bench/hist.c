/*
 * hist.c - latency histogram with logarithmic buckets (HDR-like).
 *
 * Values below 256 have a bucket each; above, every power of two [2^e,
 * 2^(e+1)) is split into 128 equal sub-buckets, so the relative error of a
 * reported value is below 1/128 whatever its magnitude. Recording is an
 * index computation (one clz) and an increment; merging adds counts, so each
 * worker thread keeps its own histogram and the main thread sums them.
 */
#include <string.h>

#include "svc/bench/bench_int.h"

#define SUB (1u << EP_BENCH_HIST_SUB_BITS)

void ep_bench__hist_clear(ep_bench_hist *h)
{
    memset(h, 0, sizeof(*h));
    h->min = UINT64_MAX;
}

uint32_t ep_bench__hist_index(uint64_t v)
{
    if (v < 2u * SUB)
        return (uint32_t)v;
    unsigned e = 63u - (unsigned)__builtin_clzll(v); /* >= SUB_BITS + 1 */
    unsigned shift = e - EP_BENCH_HIST_SUB_BITS;     /* v >> shift in [SUB, 2 SUB) */
    return (shift << EP_BENCH_HIST_SUB_BITS) + (uint32_t)(v >> shift);
}

uint64_t ep_bench__hist_highest(uint32_t i)
{
    if (i < 2u * SUB)
        return i;
    unsigned shift = (i >> EP_BENCH_HIST_SUB_BITS) - 1u;
    uint64_t sub = i - ((uint64_t)shift << EP_BENCH_HIST_SUB_BITS);
    uint64_t lo = sub << shift;
    return lo + ((UINT64_C(1) << shift) - 1u);
}

void ep_bench__hist_merge(ep_bench_hist *dst, const ep_bench_hist *src)
{
    if (!src->count)
        return;
    for (uint32_t i = 0; i < EP_BENCH_HIST_BUCKETS; i++)
        dst->b[i] += src->b[i];
    dst->count += src->count;
    dst->sum += src->sum;
    if (src->max > dst->max)
        dst->max = src->max;
    if (src->min < dst->min)
        dst->min = src->min;
}

uint64_t ep_bench__hist_quantile(const ep_bench_hist *h, double q)
{
    if (!h->count)
        return 0;
    if (q <= 0.0)
        return h->min;
    if (q >= 1.0)
        return h->max;
    double want = q * (double)h->count;
    uint64_t target = (uint64_t)want;
    if ((double)target < want)
        target++;
    if (target < 1)
        target = 1;
    uint64_t seen = 0;
    for (uint32_t i = 0; i < EP_BENCH_HIST_BUCKETS; i++) {
        seen += h->b[i];
        if (seen >= target) {
            uint64_t v = ep_bench__hist_highest(i);
            return v < h->max ? v : h->max;
        }
    }
    return h->max;
}
