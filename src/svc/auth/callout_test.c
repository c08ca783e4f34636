/* callout_test.c - custom authentication: the response judge (every status
 * class, bad bodies, reasons, expiry, attributes), RFC 3339 times, the
 * request body, and the pool against a tiny HTTP responder on a thread
 * (allowed, timed out, refused connection, full queue, cancel, https
 * required). Also prints the pool's round trip per callout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include "core/clock.h"
#include "core/loop.h"
#include "svc/auth/callout.h"

#define NOW 1800000000000LL /* 2027-01-15 */

static void judge(long status, const char *body, ep_callout_result *r)
{
    ep_callout_parse_response(status, body, body ? strlen(body) : 0, NOW, r);
}

static const char *attr(const ep_callout_result *r, const char *name)
{
    for (size_t i = 0; r->attrs && i < r->attrs->n; i++)
        if (strcmp(r->attrs->items[i].name, name) == 0)
            return r->attrs->items[i].value;
    return NULL;
}

static void test_allow(void **st)
{
    (void)st;
    ep_callout_result r;
    judge(200, "{\"expiry\":\"2030-01-01T00:00:00Z\",\"attributes\":{\"b\":\"b1\",\"r\":\"s\"}}",
          &r);
    assert_int_equal(r.verdict, EP_CALLOUT_ALLOW);
    assert_true(r.expiry_ms == 1893456000000LL);
    assert_string_equal(attr(&r, "b"), "b1");
    assert_string_equal(attr(&r, "r"), "s");
    ep_callout_result_clear(&r);
    judge(200, "{}", &r);
    assert_int_equal(r.verdict, EP_CALLOUT_ALLOW);
    assert_true(r.expiry_ms == 0 && r.attrs == NULL);
    judge(200, "{\"future\":[1,2],\"attributes\":{}}", &r); /* unknown keys ignored */
    assert_int_equal(r.verdict, EP_CALLOUT_ALLOW);
}

static void test_bad_200(void **st)
{
    (void)st;
    static const char *bodies[] = {
        NULL,
        "",
        "[]",
        "{\"expiry\":\"tomorrow\"}",
        "{\"expiry\":\"2001-01-01T00:00:00Z\"}", /* in the past */
        "{\"attributes\":{\"a\":1}}",
        "{\"attributes\":[\"a\"]}",
        "{\"attributes\":{\"a\":\"x\",\"a\":\"y\"}}", /* duplicate key */
        "{\"attributes\":{\"\":\"x\"}}",
        "{} trailing",
        "{\"attributes\":{\"a\":\"x\\u0000y\"}}",
    };
    for (size_t i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        ep_callout_result r;
        judge(200, bodies[i], &r);
        assert_int_equal(r.verdict, EP_CALLOUT_DENY);
        assert_int_equal(r.reason, 0x87);
        assert_null(r.attrs);
    }
}

static void test_deny_and_unavailable(void **st)
{
    (void)st;
    ep_callout_result r;
    judge(403, "{\"reason\":138,\"message\":\"go away\\n\"}", &r);
    assert_int_equal(r.verdict, EP_CALLOUT_DENY);
    assert_int_equal(r.reason, 138);
    assert_string_equal(r.message, "denied: go away?");
    judge(403, "{\"reason\":0}", &r); /* success is not a refusal */
    assert_int_equal(r.reason, 0x87);
    judge(403, "{\"reason\":256}", &r);
    assert_int_equal(r.reason, 0x87);
    judge(403, "not json", &r);
    assert_int_equal(r.verdict, EP_CALLOUT_DENY);
    judge(422, "{\"supportedVersions\":[\"0.4.0\",\"1.0\"]}", &r);
    assert_int_equal(r.verdict, EP_CALLOUT_DENY);
    assert_non_null(strstr(r.message, "it supports: 0.4.0,1.0"));
    judge(400, "bad request", &r);
    assert_int_equal(r.verdict, EP_CALLOUT_DENY);
    assert_string_equal(r.message, "HTTP 400: bad request");
    judge(405, NULL, &r);
    assert_int_equal(r.verdict, EP_CALLOUT_DENY);
    judge(302, "", &r);
    assert_int_equal(r.verdict, EP_CALLOUT_DENY);
    judge(500, "{}", &r);
    assert_int_equal(r.verdict, EP_CALLOUT_UNAVAILABLE);
    judge(0, NULL, &r);
    assert_int_equal(r.verdict, EP_CALLOUT_UNAVAILABLE);
}

static void test_rfc3339(void **st)
{
    (void)st;
    int64_t t;
    const char *s = "1970-01-01T00:00:00Z";
    assert_int_equal(ep_callout_parse_rfc3339(s, strlen(s), &t), EP_EOK);
    assert_true(t == 0);
    s = "2024-02-29t12:00:00.5+01:30";
    assert_int_equal(ep_callout_parse_rfc3339(s, strlen(s), &t), EP_EOK);
    assert_true(t == 1709202600000LL + 500);
    s = "2024-02-29T12:00:00.123456789-00:00";
    assert_int_equal(ep_callout_parse_rfc3339(s, strlen(s), &t), EP_EOK);
    assert_true(t == 1709208000123LL);
    static const char *bad[] = {
        "2023-02-29T00:00:00Z",     "2024-13-01T00:00:00Z",     "2024-01-01T24:00:00Z",
        "2024-01-01T00:00:00",      "2024-01-01T00:00:00.Z",    "2024-01-01 00:00:00Z",
        "2024-01-01T00:00:00+0100", "2024-01-01T00:00:00Zjunk", "+024-01-01T00:00:00Z"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        assert_int_equal(ep_callout_parse_rfc3339(bad[i], strlen(bad[i]), &t), EP_EINVAL);
}

static void test_request_body(void **st)
{
    (void)st;
    char *body = NULL;
    ep_callout_creds cr = {.username = "al\"ice", .ulen = 6, .password = "\x00\xff", .plen = 2};
    assert_int_equal(ep_callout_request_body(&cr, &body), EP_EOK);
    assert_string_equal(body,
                        "{\"type\":\"connect\",\"username\":\"al\\\"ice\",\"password\":\"AP8=\"}");
    free(body);
    cr = (ep_callout_creds){.certs_pem = "-----BEGIN CERTIFICATE-----\n"};
    assert_int_equal(ep_callout_request_body(&cr, &body), EP_EOK);
    assert_string_equal(body,
                        "{\"type\":\"connect\",\"certs\":\"-----BEGIN CERTIFICATE-----\\n\"}");
    free(body);
    cr = (ep_callout_creds){.username = "\xff", .ulen = 1};
    assert_int_equal(ep_callout_request_body(&cr, &body), EP_EINVAL);
    /* the "auth" form: method and base64 data only, even with a user name */
    cr = (ep_callout_creds){.username = "u",
                            .ulen = 1,
                            .auth_method = "tok",
                            .mlen = 3,
                            .auth_data = "\x00\xff",
                            .dlen = 2};
    assert_int_equal(ep_callout_request_body(&cr, &body), EP_EOK);
    assert_string_equal(body, "{\"type\":\"auth\",\"authenticationMethod\":\"tok\","
                              "\"authenticationData\":\"AP8=\"}");
    free(body);
    cr = (ep_callout_creds){.auth_method = "m", .mlen = 1};
    assert_int_equal(ep_callout_request_body(&cr, &body), EP_EOK);
    assert_string_equal(body, "{\"type\":\"auth\",\"authenticationMethod\":\"m\"}");
    free(body);
    cr = (ep_callout_creds){.auth_method = "\xc0", .mlen = 1};
    assert_int_equal(ep_callout_request_body(&cr, &body), EP_EINVAL);
}

/* ---- the pool against a tiny HTTP responder ---- */

typedef struct responder {
    int lfd;
    uint16_t port;
    const char *reply; /* NULL: read the request and never answer */
    pthread_t th;
} responder;

typedef struct conn_arg {
    int fd;
    const char *reply;
} conn_arg;

/* One connection: answer every request (keep-alive); a short read loop is
 * enough for the small bodies of this test. */
static void *serve_conn(void *arg)
{
    conn_arg *ca = arg;
    char buf[4096];
    ssize_t n;
    while ((n = read(ca->fd, buf, sizeof(buf))) > 0) {
        if (memmem(buf, (size_t)n, "\r\n\r\n", 4) == NULL)
            continue;
        if (ca->reply && write(ca->fd, ca->reply, strlen(ca->reply)) < 0)
            break;
    }
    close(ca->fd);
    free(ca);
    return NULL;
}

static void *serve(void *arg)
{
    responder *rs = arg;
    for (;;) {
        int fd = accept(rs->lfd, NULL, NULL);
        if (fd < 0)
            return NULL;
        conn_arg *ca = malloc(sizeof(*ca));
        pthread_t th;
        *ca = (conn_arg){fd, rs->reply};
        if (pthread_create(&th, NULL, serve_conn, ca) == 0)
            pthread_detach(th);
    }
}

static void responder_start(responder *rs, const char *reply)
{
    memset(rs, 0, sizeof(*rs));
    rs->reply = reply;
    rs->lfd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    assert_int_equal(bind(rs->lfd, (struct sockaddr *)&a, sizeof(a)), 0);
    assert_int_equal(listen(rs->lfd, 16), 0);
    getsockname(rs->lfd, (struct sockaddr *)&a, &len);
    rs->port = ntohs(a.sin_port);
    pthread_create(&rs->th, NULL, serve, rs);
}

static void responder_stop(responder *rs)
{
    shutdown(rs->lfd, SHUT_RDWR);
    close(rs->lfd);
    pthread_join(rs->th, NULL);
}

typedef struct got {
    int n;
    ep_callout_result last;
} got;

static void on_result(ep_loop *loop, void *arg, ep_callout_result *res)
{
    (void)loop;
    got *g = arg;
    g->n++;
    ep_callout_result_clear(&g->last);
    g->last = *res;
    res->attrs = NULL; /* taken */
}

static void wait_for(ep_loop *loop, got *g, int n)
{
    uint64_t deadline = ep_clock_mono_ms() + 20000;
    while (g->n < n && ep_clock_mono_ms() < deadline)
        ep_loop_run_once(loop, 50);
    assert_int_equal(g->n, n);
}

static ep_callout *pool(uint16_t port, uint32_t timeout_ms, unsigned threads, uint32_t max)
{
    char url[64];
    snprintf(url, sizeof(url), "http://127.0.0.1:%u", port);
    ep_callout_opts o = {.endpoint = url,
                         .allow_http = true,
                         .timeout_ms = timeout_ms,
                         .threads = threads,
                         .max_pending = max};
    ep_callout *co = NULL;
    assert_int_equal(ep_callout_new(&co, &o, NULL, 0), EP_EOK);
    return co;
}

#define OK_REPLY                                                                                   \
    "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 34\r\n\r\n"              \
    "{\"attributes\":{\"building\":\"b1\"}}  "

static void test_pool(void **st)
{
    (void)st;
    ep_loop *loop = NULL;
    assert_int_equal(ep_loop_new(&loop, NULL), EP_EOK);
    responder rs;
    responder_start(&rs, OK_REPLY);
    ep_callout *co = pool(rs.port, 5000, 2, 64);
    ep_histogram *h = NULL;
    assert_int_equal(ep_metrics_histogram_simple(ep_metrics_default(), "test_callout_seconds",
                                                 "callout latency", NULL, 0, &h),
                     EP_EOK);
    ep_callout_set_histogram(co, h);
    got g = {0};
    ep_callout_creds cr = {.username = "alice", .ulen = 5, .password = "pw", .plen = 2};
    enum { N = 200 };
    uint64_t t0 = ep_clock_mono_ms();
    for (int i = 0; i < N; i++) {
        assert_int_equal(ep_callout_submit(co, &cr, loop, on_result, &g, NULL), EP_EOK);
        wait_for(loop, &g, i + 1);
        if (g.last.verdict != EP_CALLOUT_ALLOW)
            fail_msg("callout %d: %s", i, g.last.message);
    }
    uint64_t dt = ep_clock_mono_ms() - t0;
    printf("callout round trip (plain http, keep-alive, sequential): %.3f ms\n", (double)dt / N);
    assert_string_equal(g.last.attrs->items[0].value, "b1");
    ep_callout_stats s;
    ep_callout_get_stats(co, &s);
    assert_true(s.allowed == N && s.pending == 0 && s.submitted == N && s.timeouts == 0);
    assert_int_equal(ep_histogram_count(h), N);
    assert_true(ep_histogram_sum(h) > 0.0);
    ep_callout_result_clear(&g.last);
    ep_callout_free(co);
    responder_stop(&rs);
    ep_loop_free(loop);
}

static void test_timeout_full_cancel(void **st)
{
    (void)st;
    ep_loop *loop = NULL;
    assert_int_equal(ep_loop_new(&loop, NULL), EP_EOK);
    responder rs;
    responder_start(&rs, NULL); /* never answers */
    ep_callout *co = pool(rs.port, 300, 1, 3);
    got g = {0};
    ep_callout_creds cr = {.username = "u", .ulen = 1};
    uint64_t ids[3];
    for (int i = 0; i < 3; i++)
        assert_int_equal(ep_callout_submit(co, &cr, loop, on_result, &g, &ids[i]), EP_EOK);
    assert_int_equal(ep_callout_submit(co, &cr, loop, on_result, &g, NULL), EP_EFULL);
    assert_int_equal(ep_callout_cancel(co, ids[2]), EP_EOK); /* still queued */
    assert_int_equal(ep_callout_cancel(co, ids[2]), EP_ENOTFOUND);
    uint64_t t0 = ep_clock_mono_ms();
    wait_for(loop, &g, 2);
    uint64_t dt = ep_clock_mono_ms() - t0;
    assert_int_equal(g.last.verdict, EP_CALLOUT_UNAVAILABLE);
    /* the second one waited in the queue past its deadline: not sent */
    assert_true(dt >= 250 && dt < 2000);
    ep_callout_stats s;
    ep_callout_get_stats(co, &s);
    assert_true(s.timeouts == 2 && s.unavailable == 2 && s.rejected_full == 1 && s.cancelled == 1 &&
                s.pending == 0);
    ep_callout_free(co);
    responder_stop(&rs);

    /* nobody listening: unavailable at once */
    co = pool(rs.port, 2000, 1, 4);
    assert_int_equal(ep_callout_submit(co, &cr, loop, on_result, &g, NULL), EP_EOK);
    wait_for(loop, &g, 3);
    assert_int_equal(g.last.verdict, EP_CALLOUT_UNAVAILABLE);
    ep_callout_free(co);
    ep_loop_free(loop);
}

static void test_options(void **st)
{
    (void)st;
    ep_callout *co = NULL;
    char why[160];
    ep_callout_opts o = {.endpoint = "http://127.0.0.1:1"};
    assert_int_equal(ep_callout_new(&co, &o, why, sizeof(why)), EP_EINVAL);
    assert_non_null(strstr(why, "https"));
    o.endpoint = "ftp://x";
    assert_int_equal(ep_callout_new(&co, &o, why, sizeof(why)), EP_EINVAL);
    const char *hdr[] = {"X-Bad\r\nInjected: 1"};
    o = (ep_callout_opts){.endpoint = "https://x", .headers = hdr, .n_headers = 1};
    assert_int_equal(ep_callout_new(&co, &o, why, sizeof(why)), EP_EINVAL);
    o = (ep_callout_opts){.endpoint = "https://x", .client_cert = "c.pem"};
    assert_int_equal(ep_callout_new(&co, &o, why, sizeof(why)), EP_EINVAL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_allow),
        cmocka_unit_test(test_bad_200),
        cmocka_unit_test(test_deny_and_unavailable),
        cmocka_unit_test(test_rfc3339),
        cmocka_unit_test(test_request_body),
        cmocka_unit_test(test_pool),
        cmocka_unit_test(test_timeout_full_cancel),
        cmocka_unit_test(test_options),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
