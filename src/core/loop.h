/*
 * loop.h - the event loop: one per thread, share-nothing.
 *
 * A loop owns fd watchers (ep_io), timers in a binary heap (ep_timer),
 * before-poll hooks (where connections flush their write queues, so a write
 * watcher is armed only when a flush was incomplete) and deferred calls (run
 * after the current dispatch, for safe destruction).
 *
 * Threads talk to a loop only through ep_loop_post() and ep_mailbox (see
 * mailbox.h); every other function must be called on the loop's own thread,
 * or by a thread that has entered the loop (ep_loop_try_enter). Watchers
 * and timers live in caller storage (libuv style).
 *
 * Iteration: run due timers -> run before-poll hooks -> epoll_wait -> dispatch
 * I/O -> run deferred calls -> repeat.
 *
 * Busy polling (off by default, ep_loop_set_busy_poll): right after an
 * iteration that dispatched I/O, the loop polls without blocking for a few
 * microseconds before it sleeps, so the next packet or cross-thread post of
 * a steady stream is picked up without a wakeup by the kernel.
 */
#ifndef EP_CORE_LOOP_H
#define EP_CORE_LOOP_H

#include <stddef.h>
#include <stdint.h>

#include "core/clock.h"
#include "core/err.h"

typedef struct ep_loop ep_loop;
typedef struct ep_io ep_io;
typedef struct ep_timer ep_timer;
typedef struct ep_hook ep_hook;

enum {
    EP_IO_READ = 1u,
    EP_IO_WRITE = 2u,
    EP_IO_HUP = 4u, /* error or hang-up; always reported */
    /* With EP_IO_READ on an fd watched by several loops (a shared listening
     * socket): wake only one of them per event (EPOLLEXCLUSIVE). Such a
     * watcher cannot be modified, only stopped and started again. */
    EP_IO_EXCLUSIVE = 8u,
};

typedef void (*ep_io_cb)(ep_io *io, unsigned events);
typedef void (*ep_timer_cb)(ep_timer *t);
typedef void (*ep_loop_fn)(ep_loop *loop, void *arg);

struct ep_io {
    int fd;
    unsigned events; /* currently requested EP_IO_READ|EP_IO_WRITE */
    ep_io_cb cb;
    void *data;
    ep_loop *loop;
    int _active;
};

struct ep_timer {
    uint64_t due; /* absolute loop time (ms) */
    ep_timer_cb cb;
    void *data;
    ep_loop *loop;
    uint32_t _heap_idx; /* 0 = not scheduled, else index + 1 */
    uint64_t _seq;      /* FIFO order among equal deadlines */
};

struct ep_hook {
    ep_loop_fn fn;
    void *arg;
    ep_hook *_next;
};

/* ep_loop_new creates a loop reading time from clock (NULL = system
 * monotonic clock; the clock must outlive the loop).
 * Returns EP_EOK, EP_ENOMEM, or EP_ESYS if epoll/eventfd fail. */
ep_err ep_loop_new(ep_loop **out, const ep_clock *clock);
/* ep_loop_free closes the loop; watchers must be stopped first. Pending posts
 * are dropped without running. NULL is accepted. */
void ep_loop_free(ep_loop *loop);
/* ep_loop_run runs until ep_loop_stop. Returns EP_EOK or a fatal epoll error. */
ep_err ep_loop_run(ep_loop *loop);
/* ep_loop_run_once does one iteration, waiting at most timeout_ms (-1 for no
 * limit, 0 to poll). For tests and synchronous helpers. */
ep_err ep_loop_run_once(ep_loop *loop, int timeout_ms);
/* ep_loop_set_busy_poll sets how long (microseconds) the loop keeps polling
 * without blocking after an iteration that dispatched I/O, before it sleeps
 * in the poller; 0 (the default) never spins. Waking a sleeping thread takes
 * the kernel a scheduler round trip (an inter-processor interrupt; on a
 * virtual machine also an exit to the hypervisor), tens of microseconds,
 * which a short spin avoids for the next message of a steady stream. The
 * spin ends at the first event or due timer and only follows activity, so
 * an idle loop still sleeps and costs no CPU. Loop thread (or before the
 * loop runs). Values above 10 000 are capped at 10 000. */
void ep_loop_set_busy_poll(ep_loop *loop, unsigned spin_us);
/* ep_loop_try_enter lets another thread take over a loop whose thread is
 * waiting in the poller, to run work for it without waking that thread (a
 * wakeup costs tens of microseconds; the work itself often less). Returns 1
 * when the caller now owns the loop: it may call the loop's functions and
 * the callbacks of the loop's objects, and must call ep_loop_leave soon (the
 * loop's thread blocks when its wait ends until then). Returns 0 when the
 * loop is busy, not running, or already owned; then nothing was done. Any
 * thread; never blocks, so threads entering each other cannot deadlock. */
int ep_loop_try_enter(ep_loop *loop);
/* ep_loop_leave runs the before-poll hooks (the loop's thread would have
 * run them before waiting again) and releases the loop. It wakes the
 * loop's thread when the work done needs it: a timer now due earlier than
 * its wait ends, or deferred calls (those run on the loop's own thread,
 * after the events it may already have been handed). Entering thread. */
void ep_loop_leave(ep_loop *loop);
/* ep_loop_stop asks the loop to return from ep_loop_run. Any thread. */
void ep_loop_stop(ep_loop *loop);
/* ep_loop_now returns the loop's cached time in ms, refreshed each iteration. */
uint64_t ep_loop_now(const ep_loop *loop);
/* ep_loop_update_time refreshes the cached time from the clock. */
void ep_loop_update_time(ep_loop *loop);

/* ep_loop_post runs fn(loop, arg) on the loop's thread soon. Any thread.
 * Returns EP_EOK or EP_ENOMEM (fn will then not run). */
ep_err ep_loop_post(ep_loop *loop, ep_loop_fn fn, void *arg);
/* ep_loop_defer runs fn after the current dispatch completes (same thread).
 * Used for deferred destruction. Returns EP_EOK or EP_ENOMEM. */
ep_err ep_loop_defer(ep_loop *loop, ep_loop_fn fn, void *arg);
/* ep_loop_hook_before_poll registers a hook called on every iteration just
 * before waiting for I/O. The hook storage belongs to the caller. A hook may
 * unhook itself or any other hook while hooks run (the storage of an
 * unhooked hook may then be freed). */
void ep_loop_hook_before_poll(ep_loop *loop, ep_hook *hook);
void ep_loop_unhook_before_poll(ep_loop *loop, ep_hook *hook);

/* ep_io_start watches fd for events (EP_IO_READ and/or EP_IO_WRITE).
 * Returns EP_EOK or an error from epoll_ctl. */
ep_err ep_io_start(ep_loop *loop, ep_io *io, int fd, unsigned events, ep_io_cb cb, void *data);
/* ep_io_modify changes the watched events; no syscall if unchanged. */
ep_err ep_io_modify(ep_io *io, unsigned events);
/* ep_io_stop stops watching; safe on a stopped or zeroed watcher. Does not
 * close the fd. */
void ep_io_stop(ep_io *io);

/* ep_timer_init prepares a timer; no scheduling. */
void ep_timer_init(ep_loop *loop, ep_timer *t, ep_timer_cb cb, void *data);
/* ep_timer_start (re)schedules t to fire once, delay_ms from now. Returns
 * EP_EOK or EP_ENOMEM when the heap cannot grow. */
ep_err ep_timer_start(ep_timer *t, uint64_t delay_ms);
/* ep_timer_start_at schedules at absolute loop time due_ms. */
ep_err ep_timer_start_at(ep_timer *t, uint64_t due_ms);
/* ep_timer_stop unschedules; safe if not scheduled or zeroed. */
void ep_timer_stop(ep_timer *t);
static inline int ep_timer_active(const ep_timer *t) { return t->_heap_idx != 0; }

#endif
