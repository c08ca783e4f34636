/*
 * cycle.c - the handshake scenario: each connector repeats
 *
 *   TCP connect -> TLS handshake (with --tls) -> CONNECT -> CONNACK
 *   -> DISCONNECT -> wait until the broker closes -> next cycle
 *
 * and the time from the start of a cycle to its CONNACK is recorded: what a
 * device waits for before it can publish.
 *
 * Closed loop (default): a connector starts its next cycle as soon as the
 * broker closed the previous connection, so the rate is what N concurrent
 * connectors get. Open loop (--rate R): cycle k of connector i is due at
 * t_go + (i + k * N) / R; a connector still busy starts late, and the time
 * is measured from when the cycle was due, so a broker that falls behind
 * shows up as handshake time (no coordinated omission). N must then be
 * large enough to keep R cycles a second in flight.
 *
 * Waiting for the broker to close (instead of closing first) leaves the
 * TIME_WAIT state on the broker's side of each connection, so a long run
 * does not exhaust the generator's ephemeral ports.
 *
 * The CONNECT phase runs one cycle per connector, which proves that the
 * broker is reachable and accepts us; RUN-phase failures count as errors
 * and the connector carries on with its next cycle.
 */
#include <stdio.h>

#include "svc/bench/bench_int.h"

int ep_bench__hs_busy(const ep_bench_conn *c)
{
    return c->state != EP_BENCH_ST_NEW && c->state != EP_BENCH_ST_CLOSED;
}

/* go_idle closes c and makes it ready for its next cycle. */
static void go_idle(ep_bench_conn *c)
{
    ep_bench__conn_close(c);
    c->state = EP_BENCH_ST_NEW;
}

void ep_bench__conn_hs_open(ep_bench_conn *c, uint64_t due_ns)
{
    ep_bench_worker *w = c->w;
    c->cycle_t0 = due_ns;
    c->seq++;
    ep_err err = ep_bench__conn_open(c);
    if (!err)
        return;
    w->hs_errors++;
    if (!w->err) {
        w->err = err;
        snprintf(w->errmsg, sizeof(w->errmsg), "cannot connect to %.200s:%u: %s", w->run->o.host,
                 (unsigned)w->run->o.port, ep_strerror(err));
    }
}

int ep_bench__hs_on_connack(ep_bench_conn *c)
{
    ep_bench_worker *w = c->w;
    ep_bench_run *r = w->run;
    w->opening--;
    if (atomic_load_explicit(&r->phase, memory_order_acquire) == EP_BENCH_PH_CONNECT) {
        atomic_fetch_add_explicit(&r->n_ready, 1, memory_order_release);
    } else {
        uint64_t now = ep_bench__now_ns();
        w->hs_all++;
        if (now >= r->t_start && now < r->t_end) {
            w->hs_win++;
            ep_bench__hist_add(&w->hist, now > c->cycle_t0 ? now - c->cycle_t0 : 0);
        }
    }
    ep_err err = ep_bench__wire_disconnect(&c->out, r->o.version);
    if (err) {
        ep_bench__conn_fail(c, err, "cannot encode DISCONNECT: %s", ep_strerror(err));
        return -1;
    }
    c->state = EP_BENCH_ST_BYE;
    return 0;
}

void ep_bench__hs_on_eof(ep_bench_conn *c) { go_idle(c); }

int ep_bench__hs_fail(ep_bench_conn *c)
{
    ep_bench_worker *w = c->w;
    if (atomic_load_explicit(&w->run->phase, memory_order_relaxed) == EP_BENCH_PH_CONNECT)
        return 0;
    if (c->state < EP_BENCH_ST_READY && w->opening)
        w->opening--;
    w->hs_errors++;
    go_idle(c);
    return 1;
}

void ep_bench__hs_tick(ep_bench_worker *w)
{
    const ep_bench_run *r = w->run;
    uint64_t next = UINT64_MAX;
    w->hs_next_ns = UINT64_MAX;
    if (!w->started || atomic_load_explicit(&r->phase, memory_order_relaxed) != EP_BENCH_PH_RUN)
        return;
    for (uint32_t i = 0; i < w->nconns; i++) {
        ep_bench_conn *c = w->conns[i];
        if (c->role != EP_BENCH_ROLE_HS || c->state != EP_BENCH_ST_NEW)
            continue;
        uint64_t due = c->interval_ns > 0.0 ? ep_bench__conn_next_due(c) : w->now;
        if (due >= r->t_end)
            continue;
        if (due > w->now) {
            if (due < next)
                next = due;
            continue;
        }
        ep_bench__conn_hs_open(c, c->interval_ns > 0.0 ? due : ep_bench__now_ns());
    }
    w->hs_next_ns = next;
}
