/*
 * mailbox.h - batched multi-producer, single-consumer queue into a loop.
 *
 * Producers on any thread push fixed-size items; the consumer loop drains
 * them in batches on its own thread through one callback. Items are copied
 * in by value (put refcounted pointers in them to pass messages). A producer
 * wakes the consumer only when the mailbox goes from empty to non-empty, so
 * a burst of N items costs one eventfd write and one wakeup.
 *
 * Direct delivery (ep_mailbox_set_direct): when the consumer loop is asleep
 * in its poller, the producer enters it and runs the drain callback itself,
 * so a message crosses threads without a wakeup.
 *
 * Capacity is bounded: ep_mailbox_push returns EP_EFULL beyond `max_items`
 * and the producer decides (drop, retry, or account it).
 */
#ifndef EP_CORE_MAILBOX_H
#define EP_CORE_MAILBOX_H

#include <stddef.h>

#include "core/err.h"
#include "core/loop.h"

typedef struct ep_mailbox ep_mailbox;

/* Drain callback: items[0..n) of item_size bytes each, on the consumer loop.
 * The array is only valid during the call. */
typedef void (*ep_mailbox_fn)(ep_mailbox *mb, void *items, size_t n, void *ud);

/* ep_mailbox_new creates a mailbox drained on `loop`.
 * Returns EP_EOK, EP_ENOMEM or EP_ESYS. */
ep_err ep_mailbox_new(ep_mailbox **out, ep_loop *loop, size_t item_size, size_t max_items,
                      ep_mailbox_fn fn, void *ud);
/* ep_mailbox_free: call on the consumer thread once producers have stopped.
 * Undrained items are discarded (the caller drains first if they own refs). */
void ep_mailbox_free(ep_mailbox *mb);
/* ep_mailbox_push copies one item in. Any thread.
 * Returns EP_EOK, EP_EFULL (max_items reached) or EP_ENOMEM. */
ep_err ep_mailbox_push(ep_mailbox *mb, const void *item);
/* ep_mailbox_push_many copies n items in one lock acquisition; all or none.
 * Same errors as ep_mailbox_push. */
ep_err ep_mailbox_push_many(ep_mailbox *mb, const void *items, size_t n);
/* ep_mailbox_set_direct: a push of at most max_items items that finds the
 * mailbox empty and the consumer loop waiting in its poller runs the drain
 * callback at once on the pushing thread, inside ep_loop_try_enter and
 * ep_loop_leave of the consumer loop; otherwise (busy consumer, or a bigger
 * batch, whose work is better done in parallel by the consumer's own
 * thread) the push wakes the consumer as usual. 0 (the default) turns this
 * off. The callback must then only rely on owning the consumer loop, not on
 * running on its thread. Call before producers start. */
void ep_mailbox_set_direct(ep_mailbox *mb, size_t max_items);
/* ep_mailbox_drain runs the callback for everything queued now. Consumer
 * thread; used at shutdown. */
void ep_mailbox_drain(ep_mailbox *mb);

#endif
