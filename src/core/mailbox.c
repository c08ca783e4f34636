/* mailbox.c - see mailbox.h. Double-buffered: the consumer swaps the full
 * vector for its empty one under the lock and processes without it.
 *
 * Only the push that finds the mailbox empty signals (eventfd) or, when
 * direct, drains in the consumer loop's place: items pushed before that
 * drain swaps the vector are drained with it, items pushed after it find
 * the mailbox empty again and signal themselves. */
#include "core/mailbox.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

typedef struct item_vec {
    uint8_t *v;
    size_t n, cap;
} item_vec;

struct ep_mailbox {
    ep_loop *loop;
    ep_io io;
    int efd;
    size_t item_size, max_items;
    ep_mailbox_fn fn;
    void *ud;
    size_t direct_max; /* direct drain for pushes up to this size; 0 = off */
    pthread_mutex_t lock;
    item_vec in;  /* guarded by lock */
    item_vec out; /* consumer only */
};

static void on_wake(ep_io *io, unsigned events)
{
    ep_mailbox *mb = io->data;
    uint64_t v;
    (void)events;
    if (read(mb->efd, &v, sizeof(v)) < 0) {
        /* EAGAIN: nothing new since the last drain. */
    }
    ep_mailbox_drain(mb);
}

ep_err ep_mailbox_new(ep_mailbox **out, ep_loop *loop, size_t item_size, size_t max_items,
                      ep_mailbox_fn fn, void *ud)
{
    ep_mailbox *mb = calloc(1, sizeof(*mb));
    if (mb == NULL)
        return EP_ENOMEM;
    mb->loop = loop;
    mb->item_size = item_size;
    mb->max_items = max_items;
    mb->fn = fn;
    mb->ud = ud;
    pthread_mutex_init(&mb->lock, NULL);
    mb->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (mb->efd < 0 || ep_io_start(loop, &mb->io, mb->efd, EP_IO_READ, on_wake, mb)) {
        ep_mailbox_free(mb);
        return EP_ESYS;
    }
    *out = mb;
    return EP_EOK;
}

void ep_mailbox_free(ep_mailbox *mb)
{
    if (mb == NULL)
        return;
    ep_io_stop(&mb->io);
    if (mb->efd >= 0)
        close(mb->efd);
    pthread_mutex_destroy(&mb->lock);
    free(mb->in.v);
    free(mb->out.v);
    free(mb);
}

ep_err ep_mailbox_push_many(ep_mailbox *mb, const void *items, size_t n)
{
    ep_err err = EP_EOK;
    int was_empty;
    pthread_mutex_lock(&mb->lock);
    was_empty = mb->in.n == 0;
    if (mb->max_items && mb->in.n + n > mb->max_items) {
        err = EP_EFULL;
        goto out;
    }
    if (mb->in.n + n > mb->in.cap) {
        size_t cap = mb->in.cap ? mb->in.cap : 64;
        while (cap < mb->in.n + n)
            cap *= 2;
        uint8_t *v = realloc(mb->in.v, cap * mb->item_size);
        if (v == NULL) {
            err = EP_ENOMEM;
            goto out;
        }
        mb->in.v = v;
        mb->in.cap = cap;
    }
    memcpy(mb->in.v + mb->in.n * mb->item_size, items, n * mb->item_size);
    mb->in.n += n;
out:
    pthread_mutex_unlock(&mb->lock);
    if (err == EP_EOK && was_empty && n > 0) {
        if (n <= mb->direct_max && ep_loop_try_enter(mb->loop)) {
            ep_mailbox_drain(mb);
            ep_loop_leave(mb->loop);
            return EP_EOK;
        }
        uint64_t one = 1;
        if (write(mb->efd, &one, sizeof(one)) < 0) {
            /* Counter saturated: a wakeup is already pending. */
        }
    }
    return err;
}

void ep_mailbox_set_direct(ep_mailbox *mb, size_t max_items) { mb->direct_max = max_items; }

ep_err ep_mailbox_push(ep_mailbox *mb, const void *item)
{
    return ep_mailbox_push_many(mb, item, 1);
}

void ep_mailbox_drain(ep_mailbox *mb)
{
    pthread_mutex_lock(&mb->lock);
    item_vec tmp = mb->in;
    mb->in = mb->out;
    mb->out = tmp;
    pthread_mutex_unlock(&mb->lock);
    if (mb->out.n)
        mb->fn(mb, mb->out.v, mb->out.n, mb->ud);
    mb->out.n = 0;
}
