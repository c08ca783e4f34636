/*
 * track.c - what a subscriber knows about one publisher's stream.
 *
 * Publishers number their messages 0, 1, 2, ... A stream remembers the
 * newest sequence seen and a bitmap of the EP_BENCH_WIN_BITS sequences
 * before it, which is enough to tell, per arrival:
 *   newer than anything seen  -> in order (gaps are filled in later or lost)
 *   older, bit clear          -> out of order (late, but new)
 *   older, bit set            -> duplicate
 * Loss is not decided here: at the end of a run the expected count (what
 * the publisher sent) minus `unique` is what never arrived.
 */
#include <string.h>

#include "svc/bench/bench_int.h"

#define WORD(seq) (((seq) / 64u) % (EP_BENCH_WIN_BITS / 64u))
#define BIT(seq) (UINT64_C(1) << ((seq) % 64u))

void ep_bench__stream_see(ep_bench_stream *s, uint32_t seq)
{
    if (seq >= s->next) {
        uint32_t adv = seq + 1u - s->next; /* sequences entering the window */
        if (adv >= EP_BENCH_WIN_BITS) {
            memset(s->win, 0, sizeof(s->win));
        } else {
            for (uint32_t q = s->next; q != seq; q++)
                s->win[WORD(q)] &= ~BIT(q);
        }
        s->win[WORD(seq)] |= BIT(seq);
        s->next = seq + 1u;
        s->unique++;
        return;
    }
    if (s->next - seq > EP_BENCH_WIN_BITS) {
        /* Too old to know whether we had it: count it as late. */
        s->ooo++;
        s->unique++;
        return;
    }
    if (s->win[WORD(seq)] & BIT(seq)) {
        s->dup++;
        return;
    }
    s->win[WORD(seq)] |= BIT(seq);
    s->ooo++;
    s->unique++;
}
