/*
 * loop.c - epoll event loop with a timer heap; see loop.h.
 *
 * Design notes:
 * - Timers sit in a binary min-heap keyed by (due, seq), so add/remove are
 *   O(log n) and the next deadline is O(1); the poll timeout comes from it.
 * - Cross-thread posts go to a mutex-protected vector that is swapped out in
 *   one step and drained on the loop thread; the eventfd is written only on
 *   the empty -> non-empty transition, so a burst of posts costs one wakeup.
 * - Deferred calls run after all I/O of an iteration has been dispatched, so
 *   an object closed inside a callback stays valid until no callback of this
 *   round can reach it.
 * - Busy polling: after an iteration that dispatched I/O, poll_events first
 *   calls epoll_wait with a zero timeout until something arrives or spin_ns
 *   has passed, and only then blocks for what is left of the timeout. Posts
 *   and mailboxes signal through eventfds in the same epoll set, so a spin
 *   sees them too. No spin after an empty wait: an idle loop sleeps.
 */
#include "core/loop.h"

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

typedef struct loop_call {
    ep_loop_fn fn;
    void *arg;
} loop_call;

typedef struct call_vec {
    loop_call *v;
    size_t n, cap;
} call_vec;

struct ep_loop {
    int epfd;
    int wakefd;
    ep_io wake_io;
    const ep_clock *clock;
    uint64_t now;
    atomic_int stop;
    uint64_t spin_ns;        /* busy-poll budget; 0 = off */
    uint64_t spin_resume_ns; /* no spinning before this (contention seen) */
    int active;              /* the last wait returned events */

    ep_timer **heap;
    size_t heap_n, heap_cap;
    uint64_t timer_seq;

    ep_hook *hooks;
    ep_hook *hook_next; /* iteration cursor: unhooking it advances it */

    call_vec deferred;

    /* Held by whoever runs the loop's callbacks: its own thread, except
     * while it waits in the poller, when another thread may take the loop
     * over (ep_loop_try_enter). */
    pthread_mutex_t own_lock;
    int parked;       /* guarded by own_lock: the owner waits in the poller */
    uint64_t park_ms; /* guarded by own_lock: when that wait ends (loop ms) */

    pthread_mutex_t post_lock;
    call_vec posted;   /* guarded by post_lock */
    call_vec draining; /* loop thread only */
};

static ep_err call_vec_push(call_vec *cv, ep_loop_fn fn, void *arg)
{
    if (cv->n == cv->cap) {
        size_t cap = cv->cap ? cv->cap * 2 : 16;
        loop_call *v = realloc(cv->v, cap * sizeof(*v));
        if (v == NULL)
            return EP_ENOMEM;
        cv->v = v;
        cv->cap = cap;
    }
    cv->v[cv->n].fn = fn;
    cv->v[cv->n].arg = arg;
    cv->n++;
    return EP_EOK;
}

/* ---- timer heap ---- */

static int timer_less(const ep_timer *a, const ep_timer *b)
{
    return a->due < b->due || (a->due == b->due && a->_seq < b->_seq);
}

static void heap_set(ep_loop *l, size_t i, ep_timer *t)
{
    l->heap[i] = t;
    t->_heap_idx = (uint32_t)(i + 1);
}

static void heap_up(ep_loop *l, size_t i)
{
    ep_timer *t = l->heap[i];
    while (i > 0) {
        size_t p = (i - 1) / 2;
        if (!timer_less(t, l->heap[p]))
            break;
        heap_set(l, i, l->heap[p]);
        i = p;
    }
    heap_set(l, i, t);
}

static void heap_down(ep_loop *l, size_t i)
{
    ep_timer *t = l->heap[i];
    for (;;) {
        size_t c = 2 * i + 1;
        if (c >= l->heap_n)
            break;
        if (c + 1 < l->heap_n && timer_less(l->heap[c + 1], l->heap[c]))
            c++;
        if (!timer_less(l->heap[c], t))
            break;
        heap_set(l, i, l->heap[c]);
        i = c;
    }
    heap_set(l, i, t);
}

static void heap_remove(ep_loop *l, ep_timer *t)
{
    size_t i = t->_heap_idx - 1;
    t->_heap_idx = 0;
    l->heap_n--;
    if (i == l->heap_n)
        return;
    heap_set(l, i, l->heap[l->heap_n]);
    if (i > 0 && timer_less(l->heap[i], l->heap[(i - 1) / 2]))
        heap_up(l, i);
    else
        heap_down(l, i);
}

void ep_timer_init(ep_loop *loop, ep_timer *t, ep_timer_cb cb, void *data)
{
    memset(t, 0, sizeof(*t));
    t->loop = loop;
    t->cb = cb;
    t->data = data;
}

ep_err ep_timer_start_at(ep_timer *t, uint64_t due_ms)
{
    ep_loop *l = t->loop;
    if (t->_heap_idx)
        heap_remove(l, t);
    if (l->heap_n == l->heap_cap) {
        size_t cap = l->heap_cap ? l->heap_cap * 2 : 64;
        ep_timer **h = realloc(l->heap, cap * sizeof(*h));
        if (h == NULL)
            return EP_ENOMEM;
        l->heap = h;
        l->heap_cap = cap;
    }
    t->due = due_ms;
    t->_seq = l->timer_seq++;
    l->heap[l->heap_n] = t;
    l->heap_n++;
    heap_up(l, l->heap_n - 1);
    return EP_EOK;
}

ep_err ep_timer_start(ep_timer *t, uint64_t delay_ms)
{
    return ep_timer_start_at(t, t->loop->now + delay_ms);
}

void ep_timer_stop(ep_timer *t)
{
    if (t && t->loop && t->_heap_idx)
        heap_remove(t->loop, t);
}

static void run_timers(ep_loop *l)
{
    /* Bound the round so a timer that re-arms at "now" cannot starve I/O. */
    size_t budget = l->heap_n;
    while (l->heap_n > 0 && budget-- > 0) {
        ep_timer *t = l->heap[0];
        if (t->due > l->now)
            break;
        heap_remove(l, t);
        t->cb(t);
    }
}

/* ---- I/O watchers ---- */

static uint32_t to_epoll(unsigned ev)
{
    uint32_t e = 0;
    if (ev & EP_IO_READ)
        e |= EPOLLIN | EPOLLRDHUP;
    if (ev & EP_IO_WRITE)
        e |= EPOLLOUT;
    if (ev & EP_IO_EXCLUSIVE) /* the kernel allows no RDHUP with it */
        e = (e & ~(uint32_t)EPOLLRDHUP) | EPOLLEXCLUSIVE;
    return e;
}

ep_err ep_io_start(ep_loop *loop, ep_io *io, int fd, unsigned events, ep_io_cb cb, void *data)
{
    struct epoll_event ev = {.events = to_epoll(events), .data.ptr = io};
    io->fd = fd;
    io->events = events;
    io->cb = cb;
    io->data = data;
    io->loop = loop;
    if (epoll_ctl(loop->epfd, EPOLL_CTL_ADD, fd, &ev) < 0)
        return EP_ERR_FROM_ERRNO();
    io->_active = 1;
    return EP_EOK;
}

ep_err ep_io_modify(ep_io *io, unsigned events)
{
    if (!io->_active)
        return EP_ESTATE;
    if (io->events == events)
        return EP_EOK;
    struct epoll_event ev = {.events = to_epoll(events), .data.ptr = io};
    if (epoll_ctl(io->loop->epfd, EPOLL_CTL_MOD, io->fd, &ev) < 0)
        return EP_ERR_FROM_ERRNO();
    io->events = events;
    return EP_EOK;
}

void ep_io_stop(ep_io *io)
{
    if (io == NULL || !io->_active)
        return;
    epoll_ctl(io->loop->epfd, EPOLL_CTL_DEL, io->fd, NULL);
    io->_active = 0;
    io->events = 0;
}

/* ---- posts and deferred calls ---- */

static void drain_posts(ep_io *io, unsigned events)
{
    ep_loop *l = io->data;
    uint64_t v;
    (void)events;
    if (read(l->wakefd, &v, sizeof(v)) < 0) {
        /* EAGAIN: another drain already consumed the counter. */
    }
    pthread_mutex_lock(&l->post_lock);
    call_vec tmp = l->posted;
    l->posted = l->draining;
    l->draining = tmp;
    pthread_mutex_unlock(&l->post_lock);
    for (size_t i = 0; i < l->draining.n; i++)
        l->draining.v[i].fn(l, l->draining.v[i].arg);
    l->draining.n = 0;
}

static void wake(ep_loop *l)
{
    uint64_t one = 1;
    if (write(l->wakefd, &one, sizeof(one)) < 0) {
        /* The counter is saturated: the loop is already going to wake. */
    }
}

ep_err ep_loop_post(ep_loop *l, ep_loop_fn fn, void *arg)
{
    pthread_mutex_lock(&l->post_lock);
    int was_empty = l->posted.n == 0;
    ep_err err = call_vec_push(&l->posted, fn, arg);
    pthread_mutex_unlock(&l->post_lock);
    if (err == EP_EOK && was_empty)
        wake(l);
    return err;
}

ep_err ep_loop_defer(ep_loop *l, ep_loop_fn fn, void *arg)
{
    return call_vec_push(&l->deferred, fn, arg);
}

static void run_deferred(ep_loop *l)
{
    /* Deferred calls may defer more; run until the queue is empty. */
    for (size_t i = 0; i < l->deferred.n; i++)
        l->deferred.v[i].fn(l, l->deferred.v[i].arg);
    l->deferred.n = 0;
}

void ep_loop_hook_before_poll(ep_loop *l, ep_hook *hook)
{
    hook->_next = l->hooks;
    l->hooks = hook;
}

void ep_loop_unhook_before_poll(ep_loop *l, ep_hook *hook)
{
    for (ep_hook **pp = &l->hooks; *pp; pp = &(*pp)->_next) {
        if (*pp == hook) {
            *pp = hook->_next;
            /* A hook may unhook another one while hooks run. */
            if (l->hook_next == hook)
                l->hook_next = hook->_next;
            return;
        }
    }
}

/* ---- the loop ---- */

ep_err ep_loop_new(ep_loop **out, const ep_clock *clock)
{
    ep_loop *l = calloc(1, sizeof(*l));
    if (l == NULL)
        return EP_ENOMEM;
    l->epfd = -1;
    l->wakefd = -1;
    l->clock = clock ? clock : ep_clock_system();
    pthread_mutex_init(&l->post_lock, NULL);
    pthread_mutex_init(&l->own_lock, NULL);
    l->epfd = epoll_create1(EPOLL_CLOEXEC);
    l->wakefd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (l->epfd < 0 || l->wakefd < 0)
        goto fail;
    if (ep_io_start(l, &l->wake_io, l->wakefd, EP_IO_READ, drain_posts, l))
        goto fail;
    ep_loop_update_time(l);
    *out = l;
    return EP_EOK;
fail:
    ep_loop_free(l);
    return EP_ESYS;
}

void ep_loop_free(ep_loop *l)
{
    if (l == NULL)
        return;
    ep_io_stop(&l->wake_io);
    if (l->epfd >= 0)
        close(l->epfd);
    if (l->wakefd >= 0)
        close(l->wakefd);
    pthread_mutex_destroy(&l->post_lock);
    pthread_mutex_destroy(&l->own_lock);
    free(l->heap);
    free(l->deferred.v);
    free(l->posted.v);
    free(l->draining.v);
    free(l);
}

uint64_t ep_loop_now(const ep_loop *l) { return l->now; }

void ep_loop_update_time(ep_loop *l) { l->now = l->clock->now_ms(l->clock->ud); }

void ep_loop_stop(ep_loop *l)
{
    atomic_store(&l->stop, 1);
    wake(l);
}

void ep_loop_set_busy_poll(ep_loop *l, unsigned spin_us)
{
    l->spin_ns = (uint64_t)(spin_us > 10000u ? 10000u : spin_us) * 1000u;
}

/* A spin round that took longer than this was preempted: something else
 * wants this CPU, and spinning would only take time from it. */
#define SPIN_PREEMPTED_NS 20000u
/* ... and then the loop sleeps normally for this long before trying again. */
#define SPIN_BACKOFF_NS 100000000u

/* spin polls without blocking for up to limit_ns; returns the events found
 * (or an error), 0 when none came. The spin yields the CPU on every round,
 * so a runnable thread on the same CPU is not held up by it; when a round
 * comes back late, another thread ran, and spinning is suspended. */
static int spin(ep_loop *l, struct epoll_event *evs, int max, uint64_t limit_ns, uint64_t *spent)
{
    uint64_t t0 = ep_clock_mono_ns(), prev = t0, t;
    do {
        int n = epoll_wait(l->epfd, evs, max, 0);
        if (n != 0)
            return n;
        sched_yield();
        t = ep_clock_mono_ns();
        if (t - prev > SPIN_PREEMPTED_NS) {
            l->spin_resume_ns = t + SPIN_BACKOFF_NS;
            break;
        }
        prev = t;
    } while (t - t0 < limit_ns);
    *spent = t - t0;
    return 0;
}

/* poll_events waits like epoll_wait(timeout), spinning first when busy
 * polling is on and the previous wait was not empty. */
static int poll_events(ep_loop *l, struct epoll_event *evs, int max, int timeout)
{
    if (l->spin_ns && l->active && timeout != 0 && ep_clock_mono_ns() >= l->spin_resume_ns) {
        uint64_t limit = l->spin_ns, spent = 0;
        if (timeout > 0 && (uint64_t)timeout * 1000000u < limit)
            limit = (uint64_t)timeout * 1000000u;
        int n = spin(l, evs, max, limit, &spent);
        if (n != 0)
            return n;
        if (timeout > 0) {
            int ms = (int)(spent / 1000000u);
            timeout = timeout > ms ? timeout - ms : 0;
        }
    }
    return epoll_wait(l->epfd, evs, max, timeout);
}

static int poll_timeout(ep_loop *l, int max_ms)
{
    if (l->deferred.n > 0)
        return 0;
    if (l->heap_n == 0)
        return max_ms;
    uint64_t due = l->heap[0]->due;
    int t = due <= l->now ? 0 : (due - l->now > 60000 ? 60000 : (int)(due - l->now));
    return (max_ms >= 0 && max_ms < t) ? max_ms : t;
}

static void run_hooks(ep_loop *l)
{
    for (ep_hook *h = l->hooks; h; h = l->hook_next) {
        l->hook_next = h->_next;
        h->fn(l, h->arg);
    }
    l->hook_next = NULL;
}

int ep_loop_try_enter(ep_loop *l)
{
    if (pthread_mutex_trylock(&l->own_lock) != 0)
        return 0;
    if (!l->parked) {
        pthread_mutex_unlock(&l->own_lock);
        return 0;
    }
    ep_loop_update_time(l);
    return 1;
}

void ep_loop_leave(ep_loop *l)
{
    run_hooks(l);
    /* Deferred calls stay for the owner: the poller may already have
     * returned events for an object they would free. */
    int wake_owner = l->deferred.n > 0 || (l->heap_n > 0 && l->heap[0]->due < l->park_ms);
    pthread_mutex_unlock(&l->own_lock);
    if (wake_owner)
        wake(l);
}

/* wait_io polls for events; other threads may enter the loop meanwhile. */
static int wait_io(ep_loop *l, struct epoll_event *evs, int max, int timeout_ms)
{
    int timeout = poll_timeout(l, timeout_ms);
    l->park_ms = timeout < 0 ? UINT64_MAX : l->now + (uint64_t)timeout;
    l->parked = 1;
    pthread_mutex_unlock(&l->own_lock);
    int n = poll_events(l, evs, max, timeout);
    int saved = errno;
    pthread_mutex_lock(&l->own_lock);
    l->parked = 0;
    errno = saved;
    return n;
}

ep_err ep_loop_run_once(ep_loop *l, int timeout_ms)
{
    struct epoll_event evs[256];
    pthread_mutex_lock(&l->own_lock);
    ep_loop_update_time(l);
    run_timers(l);
    run_hooks(l);
    int n = wait_io(l, evs, 256, timeout_ms);
    if (n < 0) {
        l->active = 0;
        pthread_mutex_unlock(&l->own_lock);
        if (errno == EINTR)
            return EP_EOK;
        return EP_ERR_FROM_ERRNO();
    }
    l->active = n > 0;
    ep_loop_update_time(l);
    for (int i = 0; i < n; i++) {
        ep_io *io = evs[i].data.ptr;
        unsigned e = 0;
        if (evs[i].events & (EPOLLIN | EPOLLRDHUP))
            e |= EP_IO_READ;
        if (evs[i].events & EPOLLOUT)
            e |= EP_IO_WRITE;
        if (evs[i].events & (EPOLLERR | EPOLLHUP))
            e |= EP_IO_HUP | EP_IO_READ;
        /* A watcher stopped by an earlier callback of this round must not
         * run: destruction is deferred, so the pointer is still valid. */
        if (io->_active)
            io->cb(io, e);
    }
    run_deferred(l);
    pthread_mutex_unlock(&l->own_lock);
    return EP_EOK;
}

ep_err ep_loop_run(ep_loop *l)
{
    ep_err err = EP_EOK;
    while (!atomic_load(&l->stop) && err == EP_EOK)
        err = ep_loop_run_once(l, -1);
    atomic_store(&l->stop, 0);
    return err;
}
