/*
 * http.c - the HTTP/1.1 server: connections, routing, responses; see http.h.
 *
 * Connection life: IDLE (keep-alive, waiting for a request) -> HEAD (bytes
 * of a request arrived; the head must be complete within head_timeout of
 * the first byte, however slowly it trickles in: that bounds slowloris) ->
 * BODY (Content-Length bytes within body_timeout) -> the handler runs ->
 * the response is queued -> IDLE again. SUSPENDED is a handler waiting for
 * another thread. An error answer (4xx/5xx from the parser, a timeout) is
 * sent with "Connection: close" and the connection goes to LINGER: the
 * write side is shut down and input is read and dropped for a short while,
 * so that the close does not reset the connection before the client has
 * read the answer.
 *
 * As in the broker (src/svc/broker/conn.c), input goes into the
 * connection's buffer, responses are appended to `out` and flushed by a
 * before-poll hook for all connections at once, a write watcher is armed
 * only when a flush was incomplete, and freeing is deferred to after the
 * current dispatch. Pipelined requests are answered in order; reading stops
 * while more than OUT_HIGH bytes of answers wait to be written, so a client
 * that pipelines without reading cannot grow our memory.
 *
 * The parser is stateless; to keep re-parsing cheap it runs only when a new
 * line ending arrived since the last attempt.
 */
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>

#include "core/clock.h"
#include "svc/api/http.h"

enum {
    READ_CHUNK = 16384,
    OUT_HIGH = 256 * 1024, /* stop processing/reading above this much pending output */
    LINGER_MS = 2000,      /* read-and-drop time after an error answer */
    LINGER_MAX = 1u << 20, /* bytes dropped at most while lingering */
    ACCEPT_BATCH = 64,
};

typedef enum conn_state {
    ST_IDLE,
    ST_HEAD,
    ST_BODY,
    ST_SUSPENDED,
    ST_LINGER,
    ST_CLOSED,
} conn_state;

typedef struct http_route {
    unsigned methods;
    unsigned flags;
    char *path;
    size_t path_len;
    ep_http_handler_fn fn;
    void *ud;
    ep_histogram *latency;
} http_route;

typedef struct http_conn http_conn;

struct ep_http_response {
    http_conn *conn;
    int status;
    ep_buf hdrs; /* "Name: value\r\n" lines */
    ep_buf body;
    const http_route *route;
    uint64_t start_ns;
    bool suspended; /* ep_http_response_suspend called, finish pending */
};

struct http_conn {
    ep_http_server *srv;
    int fd;
    ep_io io;
    ep_timer timer;
    conn_state state;
    ep_buf in;
    ep_buf out;
    size_t scanned;    /* bytes of `in` known to hold no further line ending */
    uint64_t since_ms; /* start of the current state (deadline base) */
    uint64_t write_ms; /* last write progress */
    size_t lingered;   /* bytes dropped in LINGER */
    bool close_after;  /* close once `out` is written */
    bool in_flush;
    bool want_write;
    bool reading; /* READ is armed */
    bool sent_continue;
    bool free_on_finish; /* closed while suspended: free in finish */
    bool in_handler;
    ep_http_request req;
    ep_http_response res;
    http_conn *prev, *next;
    http_conn *flush_next;
};

typedef struct http_listener {
    int fd;
    ep_io io;
    ep_http_server *srv;
} http_listener;

struct ep_http_server {
    ep_loop *loop;
    ep_http_opts o;
    http_listener *ls;
    size_t nls;
    http_route *routes;
    size_t nroutes;
    http_conn *conns;
    atomic_uint nconns; /* read from any thread */
    http_conn *flush_head;
    ep_hook flush_hook;
    char date[40];
    int64_t date_sec;
    /* metrics (NULL when disabled) */
    ep_metric *m_requests;
    ep_gauge *m_open;
    ep_counter *m_accepted, *m_rejected, *m_timeouts, *m_bad;
    ep_histogram *m_latency_none;
};

static void conn_on_io(ep_io *io, unsigned events);
static void conn_on_timer(ep_timer *t);
static void conn_process(http_conn *c);
static void conn_close(http_conn *c);
static void conn_rearm(http_conn *c);

/* ---- small helpers ---- */

static void want_flush(http_conn *c)
{
    if (!c->in_flush && c->state != ST_CLOSED) {
        c->in_flush = true;
        c->flush_next = c->srv->flush_head;
        c->srv->flush_head = c;
    }
}

static void set_events(http_conn *c)
{
    unsigned ev = (c->reading ? EP_IO_READ : 0) | (c->want_write ? EP_IO_WRITE : 0);
    ep_io_modify(&c->io, ev);
}

static const char *http_date(ep_http_server *s)
{
    struct timeval tv;
    gettimeofday(&tv, NULL);
    if (tv.tv_sec != s->date_sec) {
        struct tm tm;
        time_t t = tv.tv_sec;
        gmtime_r(&t, &tm);
        strftime(s->date, sizeof(s->date), "%a, %d %b %Y %H:%M:%S GMT", &tm);
        s->date_sec = tv.tv_sec;
    }
    return s->date;
}

static void count_request(ep_http_server *s, const http_route *r, int status, uint64_t start_ns)
{
    if (s->m_requests == NULL)
        return;
    char code[8];
    snprintf(code, sizeof(code), "%d", status);
    ep_counter *c;
    if (ep_metric_counter(s->m_requests, EP_LABELS(r ? r->path : "none", code), &c) == EP_EOK)
        ep_counter_inc(c);
    ep_histogram *h = r ? r->latency : s->m_latency_none;
    if (h)
        ep_histogram_observe_ns(h, ep_clock_mono_ns() - start_ns);
}

/* ---- responses ---- */

static void res_reset(ep_http_response *res)
{
    res->status = 200;
    res->route = NULL;
    res->suspended = false;
    ep_buf_clear(&res->hdrs);
    ep_buf_clear(&res->body);
}

void ep_http_response_status(ep_http_response *res, int status) { res->status = status; }

static bool token_ok(const char *s)
{
    if (*s == '\0')
        return false;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if (!((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
              strchr("!#$%&'*+-.^_`|~", ch)))
            return false;
    }
    return true;
}

ep_err ep_http_response_header(ep_http_response *res, const char *name, const char *value)
{
    static const char *const owned[] = {"content-length", "transfer-encoding", "connection",
                                        "date"};
    if (!token_ok(name) || strpbrk(value, "\r\n") != NULL)
        return EP_EINVAL;
    for (size_t i = 0; i < sizeof(owned) / sizeof(owned[0]); i++)
        if (strcasecmp(name, owned[i]) == 0)
            return EP_EINVAL;
    size_t nl = strlen(name), vl = strlen(value);
    ep_err err = ep_buf_reserve(&res->hdrs, nl + vl + 4);
    if (err)
        return err;
    ep_buf_append(&res->hdrs, name, nl);
    ep_buf_append(&res->hdrs, ": ", 2);
    ep_buf_append(&res->hdrs, value, vl);
    ep_buf_append(&res->hdrs, "\r\n", 2);
    return EP_EOK;
}

ep_err ep_http_response_body(ep_http_response *res, const void *p, size_t n)
{
    return ep_buf_append(&res->body, p, n);
}

ep_err ep_http_response_printf(ep_http_response *res, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0)
        return EP_EINVAL;
    ep_err err = ep_buf_reserve(&res->body, (size_t)n + 1);
    if (err)
        return err;
    va_start(ap, fmt);
    vsnprintf((char *)ep_buf_tail(&res->body), (size_t)n + 1, fmt, ap);
    va_end(ap);
    res->body.len += (size_t)n;
    return EP_EOK;
}

ep_buf *ep_http_response_buf(ep_http_response *res) { return &res->body; }

ep_err ep_http_respond(ep_http_response *res, int status, const char *content_type,
                       const void *body, size_t n)
{
    ep_http_response_status(res, status);
    ep_err err = content_type ? ep_http_response_header(res, "Content-Type", content_type) : 0;
    return err ? err : ep_http_response_body(res, body, n);
}

/* Serialises the response into c->out. */
static void res_write(http_conn *c, bool head_only)
{
    ep_http_response *res = &c->res;
    ep_http_server *s = c->srv;
    char line[160];
    int st = res->status;
    bool no_body = st == 204 || st == 304 || (st >= 100 && st < 200);
    int n = snprintf(line, sizeof(line), "HTTP/1.1 %d %s\r\nDate: %s\r\n", st,
                     ep_http_status_reason(st), http_date(s));
    ep_err err = ep_buf_append(&c->out, line, (size_t)n);
    if (!no_body) {
        n = snprintf(line, sizeof(line), "Content-Length: %zu\r\n", ep_buf_used(&res->body));
        if (!err)
            err = ep_buf_append(&c->out, line, (size_t)n);
    }
    if (c->close_after) {
        if (!err)
            err = ep_buf_append(&c->out, "Connection: close\r\n", 19);
    } else if (c->req.version == 10) {
        if (!err)
            err = ep_buf_append(&c->out, "Connection: keep-alive\r\n", 24);
    }
    if (!err)
        err = ep_buf_append(&c->out, ep_buf_head(&res->hdrs), ep_buf_used(&res->hdrs));
    if (!err)
        err = ep_buf_append(&c->out, "\r\n", 2);
    if (!err && !head_only && !no_body)
        err = ep_buf_append(&c->out, ep_buf_head(&res->body), ep_buf_used(&res->body));
    if (err) { /* out of memory: drop this connection */
        ep_buf_clear(&c->out);
        c->close_after = true;
    }
    ep_buf_clear(&res->hdrs);
    ep_buf_clear(&res->body);
    ep_buf_shrink(&res->hdrs, 0);
    if (ep_buf_used(&res->body) == 0)
        ep_buf_shrink(&res->body, 64 * 1024);
    want_flush(c);
}

/* Answers an error found before any handler ran, then lingers. */
static void send_error(http_conn *c, int status)
{
    res_reset(&c->res);
    c->res.status = status;
    c->req.version = 11;
    c->close_after = true;
    ep_http_response_header(&c->res, "Content-Type", "text/plain; charset=utf-8");
    ep_http_response_printf(&c->res, "%d %s\n", status, ep_http_status_reason(status));
    res_write(c, false);
    if (c->srv->m_bad && status != 408)
        ep_counter_inc(c->srv->m_bad);
    count_request(c->srv, NULL, status, ep_clock_mono_ns());
}

/* ---- routing ---- */

static bool route_matches(const http_route *r, ep_http_str path)
{
    if (r->flags & EP_HTTP_ROUTE_PREFIX) {
        if (path.n < r->path_len || memcmp(path.p, r->path, r->path_len) != 0)
            return false;
        return path.n == r->path_len || r->path[r->path_len - 1] == '/' ||
               path.p[r->path_len] == '/';
    }
    return path.n == r->path_len && memcmp(path.p, r->path, r->path_len) == 0;
}

/* Finds the route for the request and runs it. Returns false when the
 * handler suspended the response. */
static bool dispatch(http_conn *c)
{
    ep_http_server *s = c->srv;
    ep_http_request *req = &c->req;
    ep_http_response *res = &c->res;
    res_reset(res);
    res->start_ns = ep_clock_mono_ns();
    c->close_after = !req->keep_alive;

    size_t best_len = 0;
    bool any = false;
    unsigned allow = 0;
    const http_route *hit = NULL;
    for (size_t i = 0; i < s->nroutes; i++) {
        const http_route *r = &s->routes[i];
        if (!route_matches(r, req->path))
            continue;
        if (!any || r->path_len > best_len) {
            best_len = r->path_len;
            allow = 0;
            hit = NULL;
            any = true;
        } else if (r->path_len < best_len) {
            continue;
        }
        unsigned m = r->methods | ((r->methods & EP_HTTP_GET) ? EP_HTTP_HEAD : 0);
        allow |= m;
        if (hit == NULL && (m & req->method))
            hit = r;
    }
    if (hit == NULL) {
        if (!any) {
            ep_http_respond(res, 404, "text/plain; charset=utf-8", "404 Not Found\n", 14);
        } else {
            char list[80] = "";
            for (unsigned b = 1; b <= EP_HTTP_OPTIONS; b <<= 1) {
                if (allow & b) {
                    if (list[0])
                        strcat(list, ", ");
                    strcat(list, ep_http_method_name((ep_http_method)b));
                }
            }
            ep_http_response_header(res, "Allow", list);
            ep_http_respond(res, 405, "text/plain; charset=utf-8", "405 Method Not Allowed\n", 23);
        }
        return true;
    }
    res->route = hit;
    c->in_handler = true;
    hit->fn(req, res, hit->ud);
    c->in_handler = false;
    return !res->suspended;
}

/* ---- the request pipeline ---- */

static void begin_idle(http_conn *c)
{
    c->state = ST_IDLE;
    c->since_ms = ep_loop_now(c->srv->loop);
    c->sent_continue = false;
    c->scanned = 0;
}

static void enter_linger(http_conn *c)
{
    c->state = ST_LINGER;
    c->since_ms = ep_loop_now(c->srv->loop);
    shutdown(c->fd, SHUT_WR);
    ep_buf_clear(&c->in);
    c->reading = true;
    set_events(c);
    conn_rearm(c);
}

/* Called after a handler completed (directly or via finish). */
static void complete_exchange(http_conn *c)
{
    ep_http_response *res = &c->res;
    count_request(c->srv, res->route, res->status, res->start_ns);
    res_write(c, c->req.method == EP_HTTP_HEAD);
    ep_buf_consume(&c->in, c->req.head_len + (size_t)c->req.content_length);
    begin_idle(c);
}

static void conn_process(http_conn *c)
{
    ep_http_server *s = c->srv;
    for (;;) {
        if (c->state == ST_CLOSED || c->state == ST_SUSPENDED || c->state == ST_LINGER)
            break;
        if (c->close_after) /* a final answer is queued: ignore further input */
            break;
        if (ep_buf_used(&c->out) > OUT_HIGH)
            break; /* resumed by the flush hook */
        size_t used = ep_buf_used(&c->in);
        if (c->state == ST_IDLE) {
            if (used == 0)
                break;
            c->state = ST_HEAD;
            c->since_ms = ep_loop_now(s->loop);
        }
        const uint8_t *p = ep_buf_head(&c->in);
        if (c->state == ST_HEAD) {
            /* Re-parse only when a line ended since the last attempt, or
             * when the unterminated tail may already break a limit. */
            const uint8_t *lf =
                c->scanned < used ? memchr(p + c->scanned, '\n', used - c->scanned) : NULL;
            size_t limit_probe = s->o.limits.max_head;
            if (lf == NULL && used <= limit_probe && c->scanned > 0) {
                c->scanned = used;
                break;
            }
            int status;
            ep_err err = ep_http_request_parse(p, used, &s->o.limits, &c->req, &status);
            c->scanned = used;
            if (err == EP_ENEEDMORE)
                break;
            if (err) {
                send_error(c, status);
                break;
            }
            c->state = ST_BODY;
            c->since_ms = ep_loop_now(s->loop);
        }
        /* ST_BODY */
        size_t need = c->req.head_len + (size_t)c->req.content_length;
        if (used < need) {
            if (c->req.expect_continue && !c->sent_continue) {
                c->sent_continue = true;
                ep_buf_append(&c->out, "HTTP/1.1 100 Continue\r\n\r\n", 25);
                want_flush(c);
            }
            break;
        }
        /* Pointers from the first parse may be stale after buffer growth:
         * parse the (complete, valid) head again in place. */
        int status;
        if (ep_http_request_parse(p, c->req.head_len, &s->o.limits, &c->req, &status) != EP_EOK) {
            send_error(c, 400); /* cannot happen: same bytes, same result */
            break;
        }
        c->req.body =
            (ep_http_str){(const char *)p + c->req.head_len, (size_t)c->req.content_length};
        if (!dispatch(c)) {
            c->state = ST_SUSPENDED;
            break;
        }
        complete_exchange(c);
    }
    if (c->state == ST_CLOSED)
        return;
    /* Read more only when it can make progress. */
    bool want_read = c->state == ST_LINGER || (c->state != ST_SUSPENDED && !c->close_after &&
                                               ep_buf_used(&c->out) <= OUT_HIGH);
    if (want_read != c->reading) {
        c->reading = want_read;
        set_events(c);
    }
    conn_rearm(c);
}

void ep_http_response_suspend(ep_http_response *res) { res->suspended = true; }

void ep_http_response_finish(ep_http_response *res)
{
    http_conn *c = res->conn;
    res->suspended = false;
    if (c->in_handler)
        return; /* finished before the handler returned: dispatch completes it */
    if (c->free_on_finish) {
        ep_buf_fini(&c->in);
        ep_buf_fini(&c->out);
        ep_buf_fini(&c->res.hdrs);
        ep_buf_fini(&c->res.body);
        free(c);
        return;
    }
    if (c->state != ST_SUSPENDED)
        return;
    complete_exchange(c);
    conn_process(c);
}

static void conn_free_cb(ep_loop *loop, void *arg)
{
    http_conn *c = arg;
    (void)loop;
    ep_buf_fini(&c->in);
    ep_buf_fini(&c->out);
    ep_buf_fini(&c->res.hdrs);
    ep_buf_fini(&c->res.body);
    free(c);
}

static void conn_close(http_conn *c)
{
    ep_http_server *s = c->srv;
    if (c->state == ST_CLOSED)
        return;
    bool suspended = c->state == ST_SUSPENDED;
    c->state = ST_CLOSED;
    ep_io_stop(&c->io);
    ep_timer_stop(&c->timer);
    ep_sock_close(c->fd);
    c->fd = -1;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->in_flush) {
        for (http_conn **pp = &s->flush_head; *pp; pp = &(*pp)->flush_next) {
            if (*pp == c) {
                *pp = c->flush_next;
                break;
            }
        }
        c->in_flush = false;
    }
    atomic_fetch_sub_explicit(&s->nconns, 1, memory_order_relaxed);
    if (s->m_open)
        ep_gauge_dec(s->m_open);
    if (suspended)
        c->free_on_finish = true; /* the handler still holds res */
    else
        ep_loop_defer(s->loop, conn_free_cb, c);
}

/* ---- I/O ---- */

static void conn_read(http_conn *c, bool hup)
{
    for (int round = 0; round < 4; round++) {
        ssize_t n;
        if (c->state == ST_LINGER) {
            uint8_t drop[4096];
            n = ep_sock_read(c->fd, drop, sizeof(drop));
            if (n == EP_EAGAIN)
                return;
            if (n < 0 || (c->lingered += (size_t)n) > LINGER_MAX) {
                conn_close(c);
                return;
            }
            continue;
        }
        if (ep_buf_reserve(&c->in, READ_CHUNK) != EP_EOK) {
            /* Input limit: a head or body over its limit is refused by the
             * parser long before this; pipelined input waits. */
            c->reading = false;
            set_events(c);
            return;
        }
        size_t room = ep_buf_room(&c->in);
        n = ep_sock_read(c->fd, ep_buf_tail(&c->in), room);
        if (n == EP_EAGAIN)
            return;
        if (n < 0) {
            /* Peer closed its side. Anything queued is still flushed to a
             * half-closed peer; on a reset or full hang-up there is no one
             * to answer. */
            if (!hup && (ep_buf_used(&c->out) > 0 || c->state == ST_SUSPENDED)) {
                c->close_after = true;
                c->reading = false;
                set_events(c);
            } else {
                conn_close(c);
            }
            return;
        }
        c->in.len += (size_t)n;
        conn_process(c);
        if (c->state == ST_CLOSED || !c->reading || (size_t)n < room)
            return;
    }
}

static void conn_flush(http_conn *c)
{
    ep_http_server *s = c->srv;
    while (ep_buf_used(&c->out) > 0) {
        struct iovec iov = {ep_buf_head(&c->out), ep_buf_used(&c->out)};
        ssize_t n = ep_sock_writev(c->fd, &iov, 1);
        if (n == EP_EAGAIN)
            break;
        if (n < 0) {
            conn_close(c);
            return;
        }
        ep_buf_consume(&c->out, (size_t)n);
        c->write_ms = ep_loop_now(s->loop);
    }
    bool pending = ep_buf_used(&c->out) > 0;
    if (!pending) {
        ep_buf_shrink(&c->out, 0);
        if (c->close_after && c->state != ST_LINGER && c->state != ST_SUSPENDED) {
            if (ep_buf_used(&c->in) > 0 && c->state != ST_IDLE)
                enter_linger(c); /* unread request bytes: avoid a reset */
            else
                conn_close(c);
            return;
        }
    }
    if (pending != c->want_write) {
        c->want_write = pending;
        if (pending)
            c->write_ms = ep_loop_now(s->loop);
        set_events(c);
    }
    if (!pending && c->state != ST_LINGER)
        conn_process(c); /* resume pipelined input held back by OUT_HIGH */
    else
        conn_rearm(c);
}

static void flush_hook(ep_loop *loop, void *arg)
{
    ep_http_server *s = arg;
    (void)loop;
    while (s->flush_head) {
        http_conn *c = s->flush_head;
        s->flush_head = c->flush_next;
        c->in_flush = false;
        if (c->state != ST_CLOSED)
            conn_flush(c);
    }
}

static void conn_on_io(ep_io *io, unsigned events)
{
    http_conn *c = io->data;
    if (events & EP_IO_WRITE)
        want_flush(c);
    if (events & (EP_IO_READ | EP_IO_HUP))
        conn_read(c, (events & EP_IO_HUP) != 0);
}

/* ---- timeouts ---- */

static uint64_t conn_deadline(const http_conn *c)
{
    const ep_http_opts *o = &c->srv->o;
    uint64_t due = 0;
    if (c->state == ST_LINGER)
        return c->since_ms + LINGER_MS;
    if (!c->close_after) {
        switch (c->state) {
        case ST_IDLE:
            due = c->since_ms + o->idle_timeout_ms;
            break;
        case ST_HEAD:
            due = c->since_ms + o->head_timeout_ms;
            break;
        case ST_BODY:
            due = c->since_ms + o->body_timeout_ms;
            break;
        default:
            break;
        }
    }
    if (c->want_write) {
        uint64_t w = c->write_ms + o->write_timeout_ms;
        if (due == 0 || w < due)
            due = w;
    }
    return due;
}

static void conn_rearm(http_conn *c)
{
    if (c->state == ST_CLOSED)
        return;
    uint64_t due = conn_deadline(c);
    if (due == 0)
        ep_timer_stop(&c->timer);
    else if (!ep_timer_active(&c->timer) || c->timer.due != due)
        ep_timer_start_at(&c->timer, due);
}

static void conn_on_timer(ep_timer *t)
{
    http_conn *c = t->data;
    ep_http_server *s = c->srv;
    uint64_t now = ep_loop_now(s->loop);
    uint64_t due = conn_deadline(c);
    if (due == 0 || now < due) {
        conn_rearm(c);
        return;
    }
    if (!c->want_write && !c->close_after && (c->state == ST_HEAD || c->state == ST_BODY)) {
        /* Too slow: answer 408; the flush hook then lingers and closes. */
        if (s->m_timeouts)
            ep_counter_inc(s->m_timeouts);
        send_error(c, 408);
        conn_rearm(c);
        return;
    }
    conn_close(c); /* idle keep-alive, a client that does not read, or lingering done */
}

/* ---- accepting ---- */

static void reject_busy(int fd)
{
    static const char msg[] = "HTTP/1.1 503 Service Unavailable\r\n"
                              "Content-Type: text/plain; charset=utf-8\r\n"
                              "Content-Length: 24\r\nConnection: close\r\nRetry-After: 1\r\n\r\n"
                              "503 too many connections";
    struct iovec iov = {(void *)msg, sizeof(msg) - 1};
    (void)ep_sock_writev(fd, &iov, 1);
    shutdown(fd, SHUT_WR);
    ep_sock_close(fd);
}

static void on_accept(ep_io *io, unsigned events)
{
    http_listener *l = io->data;
    ep_http_server *s = l->srv;
    (void)events;
    for (int i = 0; i < ACCEPT_BATCH; i++) {
        int fd;
        ep_err err = ep_sock_accept(l->fd, &fd, NULL, 0);
        if (err)
            return; /* EAGAIN, or EMFILE & co: try again on the next wakeup */
        if (atomic_load_explicit(&s->nconns, memory_order_relaxed) >= s->o.max_conns) {
            if (s->m_rejected)
                ep_counter_inc(s->m_rejected);
            reject_busy(fd);
            continue;
        }
        http_conn *c = calloc(1, sizeof(*c));
        if (c == NULL) {
            ep_sock_close(fd);
            continue;
        }
        c->srv = s;
        c->fd = fd;
        c->res.conn = c;
        /* Buffered input: one head and body, plus room for pipelining. */
        ep_buf_init(&c->in, s->o.limits.max_head * 2 + (size_t)s->o.limits.max_body + READ_CHUNK);
        ep_buf_init(&c->out, 0);
        ep_buf_init(&c->res.hdrs, 0);
        ep_buf_init(&c->res.body, 0);
        ep_timer_init(s->loop, &c->timer, conn_on_timer, c);
        c->reading = true;
        if (ep_io_start(s->loop, &c->io, fd, EP_IO_READ, conn_on_io, c) != EP_EOK) {
            ep_sock_close(fd);
            free(c);
            continue;
        }
        c->next = s->conns;
        if (s->conns)
            s->conns->prev = c;
        s->conns = c;
        atomic_fetch_add_explicit(&s->nconns, 1, memory_order_relaxed);
        if (s->m_open) {
            ep_gauge_inc(s->m_open);
            ep_counter_inc(s->m_accepted);
        }
        begin_idle(c);
        conn_rearm(c);
    }
}

/* ---- server ---- */

static ep_err register_metrics(ep_http_server *s)
{
    ep_metrics *m = s->o.metrics;
    ep_metric_desc rd = {.type = EP_METRIC_COUNTER,
                         .name = "edgeplane_http_requests_total",
                         .help = "HTTP requests answered, by route and status code.",
                         .labels = "route,code"};
    ep_err err = ep_metrics_register(m, &rd, &s->m_requests);
    if (!err)
        err = ep_metrics_gauge_simple(m, "edgeplane_http_connections", "Open HTTP connections.",
                                      &s->m_open);
    if (!err)
        err = ep_metrics_counter_simple(m, "edgeplane_http_connections_accepted_total",
                                        "HTTP connections accepted.", &s->m_accepted);
    if (!err)
        err = ep_metrics_counter_simple(
            m, "edgeplane_http_connections_rejected_total",
            "HTTP connections refused with 503 because the connection limit was reached.",
            &s->m_rejected);
    if (!err)
        err = ep_metrics_counter_simple(
            m, "edgeplane_http_timeouts_total",
            "HTTP requests closed because the head or body did not arrive in time.",
            &s->m_timeouts);
    if (!err)
        err =
            ep_metrics_counter_simple(m, "edgeplane_http_bad_requests_total",
                                      "HTTP requests refused by the parser (4xx/5xx).", &s->m_bad);
    return err;
}

static ep_err route_latency(ep_http_server *s, const char *route, ep_histogram **out)
{
    static const double b[] = {0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025,
                               0.005,   0.01,   0.025,   0.05,   0.1,   1};
    ep_metric_desc d = {.type = EP_METRIC_HISTOGRAM,
                        .name = "edgeplane_http_request_duration_seconds",
                        .help = "Time from a complete HTTP request to its queued response.",
                        .labels = "route",
                        .buckets = b,
                        .nbuckets = sizeof(b) / sizeof(b[0])};
    ep_metric *f;
    ep_err err = ep_metrics_register(s->o.metrics, &d, &f);
    return err ? err : ep_metric_histogram(f, EP_LABELS(route), out);
}

ep_err ep_http_server_new(ep_loop *loop, const ep_http_opts *opts, ep_http_server **out)
{
    ep_http_server *s = calloc(1, sizeof(*s));
    if (s == NULL)
        return EP_ENOMEM;
    s->loop = loop;
    if (opts)
        s->o = *opts;
    ep_http_limits *l = &s->o.limits;
    if (!l->max_head)
        l->max_head = 8192;
    if (!l->max_uri)
        l->max_uri = 2048;
    if (!l->max_headers || l->max_headers > EP_HTTP_MAX_HEADERS)
        l->max_headers = l->max_headers ? EP_HTTP_MAX_HEADERS : 64;
    if (!l->max_body)
        l->max_body = 1u << 20;
    if (!s->o.max_conns)
        s->o.max_conns = 256;
    if (!s->o.head_timeout_ms)
        s->o.head_timeout_ms = 10000;
    if (!s->o.body_timeout_ms)
        s->o.body_timeout_ms = 30000;
    if (!s->o.idle_timeout_ms)
        s->o.idle_timeout_ms = 60000;
    if (!s->o.write_timeout_ms)
        s->o.write_timeout_ms = 30000;
    s->date_sec = -1;
    if (s->o.metrics) {
        ep_err err = register_metrics(s);
        if (!err)
            err = route_latency(s, "none", &s->m_latency_none);
        if (err) {
            free(s);
            return err;
        }
    }
    s->flush_hook.fn = flush_hook;
    s->flush_hook.arg = s;
    ep_loop_hook_before_poll(loop, &s->flush_hook);
    *out = s;
    return EP_EOK;
}

ep_err ep_http_server_listen(ep_http_server *s, const ep_hostport *hp, uint16_t *port)
{
    http_listener *v = realloc(s->ls, (s->nls + 1) * sizeof(*v));
    if (v == NULL)
        return EP_ENOMEM;
    s->ls = v;
    /* Listener storage may have moved: re-point the running watchers. */
    for (size_t i = 0; i < s->nls; i++) {
        ep_io_stop(&v[i].io);
        ep_io_start(s->loop, &v[i].io, v[i].fd, EP_IO_READ, on_accept, &v[i]);
    }
    http_listener *l = &v[s->nls];
    memset(l, 0, sizeof(*l));
    ep_err err = ep_sock_listen(hp, 128, 0, &l->fd);
    if (err)
        return err;
    l->srv = s;
    err = ep_io_start(s->loop, &l->io, l->fd, EP_IO_READ, on_accept, l);
    if (err) {
        ep_sock_close(l->fd);
        return err;
    }
    s->nls++;
    if (port)
        *port = ep_sock_local_port(l->fd);
    return EP_EOK;
}

ep_err ep_http_route(ep_http_server *s, unsigned methods, const char *path, unsigned flags,
                     ep_http_handler_fn fn, void *ud)
{
    if (path == NULL || path[0] != '/' || methods == 0 || fn == NULL)
        return EP_EINVAL;
    http_route *v = realloc(s->routes, (s->nroutes + 1) * sizeof(*v));
    if (v == NULL)
        return EP_ENOMEM;
    s->routes = v;
    http_route *r = &v[s->nroutes];
    memset(r, 0, sizeof(*r));
    if ((r->path = strdup(path)) == NULL)
        return EP_ENOMEM;
    r->path_len = strlen(path);
    r->methods = methods;
    r->flags = flags;
    r->fn = fn;
    r->ud = ud;
    if (s->o.metrics && route_latency(s, path, &r->latency) != EP_EOK)
        r->latency = NULL;
    s->nroutes++;
    /* Existing responses point at routes: only add routes before serving
     * or from a handler-free moment (documented as startup). */
    return EP_EOK;
}

unsigned ep_http_server_nconns(const ep_http_server *s)
{
    return atomic_load_explicit(&s->nconns, memory_order_relaxed);
}

void ep_http_server_free(ep_http_server *s)
{
    if (s == NULL)
        return;
    while (s->conns)
        conn_close(s->conns);
    for (size_t i = 0; i < s->nls; i++) {
        ep_io_stop(&s->ls[i].io);
        ep_sock_close(s->ls[i].fd);
    }
    free(s->ls);
    ep_loop_unhook_before_poll(s->loop, &s->flush_hook);
    for (size_t i = 0; i < s->nroutes; i++)
        free(s->routes[i].path);
    free(s->routes);
    free(s);
}
