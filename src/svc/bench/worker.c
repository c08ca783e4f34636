/*
 * worker.c - one generator thread: an edge-triggered epoll loop over its
 * share of the connections.
 *
 * The core ep_loop is level-triggered with millisecond timers; the
 * generator needs nanosecond pacing and wants no syscall that could be
 * avoided, so it runs its own small loop:
 *
 *   epoll_wait (0 ms when some connection still has work)
 *   -> mark readable/writable from the edges, mark paced publishers due
 *   -> service every connection on the ready list once (read one chunk,
 *      write a few batches), keep it on the list while it has work
 *   -> find the earliest next paced message; it bounds the next wait
 *
 * Every connection belongs to exactly one worker for its whole life; the
 * only shared state is the run's phase and the atomics in ep_bench_live.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "svc/bench/bench_int.h"

/* Handshakes in flight across all workers: below a typical listen backlog
 * (mosquitto uses 100), so a burst of SYNs is never dropped and retried a
 * second later. */
#define MAX_OPENING_TOTAL 64u
#define HOUSEKEEP_NS 50000000u
#define IDLE_WAIT_NS 10000000u /* notice phase changes within 10 ms */

uint64_t ep_bench__now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

void ep_bench__worker_mark_ready(ep_bench_worker *w, ep_bench_conn *c)
{
    if (c->in_ready || c->state == EP_BENCH_ST_CLOSED)
        return;
    c->in_ready = 1;
    w->ready[w->nready++] = c;
}

static void open_more(ep_bench_worker *w)
{
    ep_bench_run *r = w->run;
    uint32_t limit = MAX_OPENING_TOTAL / r->nworkers;
    if (limit < 4)
        limit = 4;
    while (w->opening < limit && w->next_open < w->nconns) {
        ep_bench_conn *c = w->conns[w->next_open++];
        ep_err err = ep_bench__conn_open(c);
        if (err) {
            if (!w->err) {
                w->err = err;
                snprintf(w->errmsg, sizeof(w->errmsg), "cannot connect to %.200s:%u: %s", r->o.host,
                         (unsigned)r->o.port, ep_strerror(err));
            }
            c->state = EP_BENCH_ST_CLOSED;
            atomic_fetch_add_explicit(&r->n_failed, 1, memory_order_relaxed);
        }
    }
}

static void start(ep_bench_worker *w)
{
    w->started = 1;
    w->npaced = 0;
    for (uint32_t i = 0; i < w->nconns; i++) {
        ep_bench_conn *c = w->conns[i];
        if (c->role != EP_BENCH_ROLE_PUB || c->state != EP_BENCH_ST_READY)
            continue;
        ep_bench__worker_mark_ready(w, c);
        if (c->interval_ns > 0.0)
            w->paced[w->npaced++] = c; /* index order = schedule order */
    }
    w->pace_cursor = 0;
}

/*
 * Pacing. All publishers share one interval and their first messages are
 * spread evenly over it, so publishers that keep to their schedule become
 * due in a fixed cyclic order: w->paced[] in index order. A cursor walks
 * that cycle: each tick marks the due publishers ready and stops at the
 * first one whose next message is in the future, which is the earliest
 * next deadline. O(messages due) per tick instead of O(publishers).
 *
 * A publisher that fell behind (window or socket full) is woken by its ack
 * or EPOLLOUT edge instead and catches up on its own; when that happens, or
 * when a tick found nobody in the future, pace_rescan recomputes the cursor
 * from scratch.
 */
static void pace_tick(ep_bench_worker *w)
{
    const ep_bench_run *r = w->run;
    uint32_t n = w->npaced, k = w->pace_cursor;
    uint64_t next = UINT64_MAX;
    for (uint32_t step = 0; step < n; step++) {
        ep_bench_conn *c = w->paced[k];
        if (c->state == EP_BENCH_ST_READY) {
            uint64_t due = ep_bench__conn_next_due(c);
            if (due < r->t_end) {
                if (due > w->now) {
                    next = due;
                    break;
                }
                ep_bench__worker_mark_ready(w, c);
            }
        }
        k = k + 1 == n ? 0 : k + 1;
    }
    w->pace_cursor = k;
    w->next_due_ns = next;
}

static void pace_rescan(ep_bench_worker *w)
{
    const ep_bench_run *r = w->run;
    uint64_t next = UINT64_MAX;
    for (uint32_t k = 0; k < w->npaced; k++) {
        const ep_bench_conn *c = w->paced[k];
        if (c->state != EP_BENCH_ST_READY)
            continue;
        uint64_t due = ep_bench__conn_next_due(c);
        if (due > w->now && due < r->t_end && due < next) {
            next = due;
            w->pace_cursor = k;
        }
    }
    w->next_due_ns = next;
}

/* wait_events waits at most timeout_ns. epoll_pwait2 gives nanosecond
 * timeouts, so pacing needs no timerfd (two syscalls per tick saved). */
static int wait_events(ep_bench_worker *w, struct epoll_event *evs, int max, uint64_t timeout_ns)
{
    if (!w->no_pwait2) {
        struct timespec ts = {(time_t)(timeout_ns / 1000000000u), (long)(timeout_ns % 1000000000u)};
        int n = epoll_pwait2(w->epfd, evs, max, &ts, NULL);
        if (n >= 0 || errno != ENOSYS)
            return n;
        w->no_pwait2 = 1;
    }
    return epoll_wait(w->epfd, evs, max, (int)((timeout_ns + 999999u) / 1000000u));
}

static void run_ready(ep_bench_worker *w)
{
    ep_bench_conn **cur = w->ready;
    uint32_t n = w->nready;
    w->ready = w->ready2;
    w->nready = 0;
    w->ready2 = cur;
    for (uint32_t i = 0; i < n; i++) {
        ep_bench_conn *c = cur[i];
        c->in_ready = 0;
        if (ep_bench__conn_service(c))
            ep_bench__worker_mark_ready(w, c);
    }
}

static void housekeeping(ep_bench_worker *w)
{
    const ep_bench_run *r = w->run;
    uint32_t busy = 0;
    uint64_t ka_ns = (uint64_t)r->o.keepalive * 500000000u; /* half the keep alive */
    for (uint32_t i = 0; i < w->nconns; i++) {
        ep_bench_conn *c = w->conns[i];
        if (c->role == EP_BENCH_ROLE_HS) {
            busy += (uint32_t)ep_bench__hs_busy(c);
            continue;
        }
        if (c->state != EP_BENCH_ST_READY)
            continue;
        /* Busy: unsent bytes, unacknowledged messages, or messages still
         * to be generated (a late paced message scheduled before t_end). */
        if (c->role == EP_BENCH_ROLE_PUB &&
            (ep_buf_used(&c->out) || c->inflight || !w->started ||
             (c->interval_ns > 0.0 ? ep_bench__conn_next_due(c) < r->t_end : w->now < r->t_end)))
            busy++;
        if (ka_ns && w->now - c->last_tx_ns > ka_ns) {
            if (ep_bench__wire_pingreq(&c->out, r->o.version) == EP_EOK) {
                c->last_tx_ns = w->now;
                ep_bench__worker_mark_ready(w, c);
            }
        }
    }
    atomic_store_explicit(&w->live.sent, w->sent_all, memory_order_relaxed);
    atomic_store_explicit(&w->live.delivered, w->delivered_all, memory_order_relaxed);
    /* release: whoever sees busy == 0 also sees the final sent count */
    atomic_store_explicit(&w->live.busy, busy, memory_order_release);
}

static void finish(ep_bench_worker *w)
{
    const ep_bench_run *r = w->run;
    for (uint32_t i = 0; i < w->nconns; i++) {
        ep_bench_conn *c = w->conns[i];
        if (c->fd < 0)
            continue;
        if (c->state == EP_BENCH_ST_READY) {
            /* Best effort: a clean DISCONNECT keeps broker logs quiet. */
            ep_buf_clear(&c->out);
            if (ep_bench__wire_disconnect(&c->out, r->o.version) == EP_EOK) {
                if (c->ssl)
                    ep_bench__tls_bye(c, ep_buf_head(&c->out), ep_buf_used(&c->out));
                else
                    (void)!send(c->fd, ep_buf_head(&c->out), ep_buf_used(&c->out), MSG_NOSIGNAL);
            }
        }
        ep_bench__conn_close(c);
    }
}

void *ep_bench__worker_main(void *arg)
{
    ep_bench_worker *w = arg;
    ep_bench_run *r = w->run;
    struct epoll_event evs[256];
    uint64_t next_house = 0;

    /* Timer slack would delay paced messages by up to 50 us. */
    (void)prctl(PR_SET_TIMERSLACK, 1UL, 0UL, 0UL, 0UL);
    for (;;) {
        int ph = atomic_load_explicit(&r->phase, memory_order_acquire);
        if (ph == EP_BENCH_PH_STOP)
            break;
        w->now = ep_bench__now_ns();
        if (ph == EP_BENCH_PH_CONNECT)
            open_more(w);
        int kick = 0;
        if (ph >= EP_BENCH_PH_RUN && !w->started) {
            start(w);
            kick = 1;
        }
        if (r->o.scenario == EP_BENCH_HANDSHAKE)
            ep_bench__hs_tick(w);
        uint64_t timeout = IDLE_WAIT_NS;
        if (w->nready)
            timeout = 0;
        else if (w->hs_next_ns != UINT64_MAX)
            timeout = w->hs_next_ns <= w->now                 ? 0
                      : w->hs_next_ns - w->now < IDLE_WAIT_NS ? w->hs_next_ns - w->now
                                                              : IDLE_WAIT_NS;
        else if (w->npaced && w->next_due_ns != UINT64_MAX)
            timeout = w->next_due_ns <= w->now                 ? 0
                      : w->next_due_ns - w->now < IDLE_WAIT_NS ? w->next_due_ns - w->now
                                                               : IDLE_WAIT_NS;
        /* A sleep of a few tens of microseconds can end hundreds late on a
         * virtual machine; with --spin-us the generator polls instead. */
        if (timeout && w->npaced && timeout <= (uint64_t)r->o.spin_us * 1000u)
            timeout = 0;
        int n = wait_events(w, evs, (int)(sizeof(evs) / sizeof(evs[0])), timeout);
        if (n < 0 && errno != EINTR) {
            if (!w->err) {
                w->err = EP_ERR_FROM_ERRNO();
                snprintf(w->errmsg, sizeof(w->errmsg), "epoll_wait: %s", ep_strerror(w->err));
            }
            atomic_fetch_add_explicit(&r->n_failed, 1, memory_order_relaxed);
            break;
        }
        w->now = ep_bench__now_ns();
        for (int i = 0; i < n; i++) {
            ep_bench_conn *c = evs[i].data.ptr;
            uint32_t ev = evs[i].events;
            if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLERR | EPOLLHUP))
                c->readable = 1;
            if (ev & (EPOLLRDHUP | EPOLLERR | EPOLLHUP))
                c->rdhup = 1;
            if (ev & (EPOLLOUT | EPOLLERR | EPOLLHUP))
                c->writable = 1;
            /* TLS: a read waiting for writability, or the other way round */
            if ((ev & EPOLLOUT) && c->rd_wants_out) {
                c->rd_wants_out = 0;
                c->readable = 1;
            }
            if ((ev & EPOLLIN) && c->wr_wants_in) {
                c->wr_wants_in = 0;
                c->writable = 1;
            }
            ep_bench__worker_mark_ready(w, c);
        }
        int tick = w->npaced && (kick || w->now >= w->next_due_ns);
        if (tick)
            pace_tick(w);
        w->paced_gen = 0;
        run_ready(w);
        if (w->paced_gen && (!tick || w->next_due_ns == UINT64_MAX))
            pace_rescan(w);
        if (w->now >= next_house) {
            housekeeping(w);
            next_house = w->now + HOUSEKEEP_NS;
        }
    }
    housekeeping(w);
    finish(w);
    return NULL;
}
