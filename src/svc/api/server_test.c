/* server_test.c - the API server in process, on its own loop thread and a
 * free port, driven by clients that are not ours: curl for keep-alive, HEAD,
 * 404/405, 431, Expect: 100-continue and 411; python3 raw sockets for a
 * slowloris attack while curl keeps getting answers; the strict Prometheus
 * checker (tests/integ/api_promcheck.py) on /metrics; plus raw-socket C
 * clients for pipelining, the connection limit and a suspended handler.
 * Exits 77 (skipped) when curl or python3 is missing. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "core/clock.h"
#include "svc/api/observe.h"

#ifndef EP_SOURCE_DIR
#define EP_SOURCE_DIR "."
#endif

enum { HEAD_TIMEOUT_MS = 1500 };

static ep_metrics *reg;
static ep_api_server *api;
static ep_metrics_check *ready_flag;
static char base[64];
static const char *py = "python3";

/* ---- extra routes, added through opts.setup ---- */

static void h_echo(const ep_http_request *req, ep_http_response *res, void *ud)
{
    (void)ud;
    ep_http_response_header(res, "Content-Type", "application/octet-stream");
    ep_http_response_body(res, req->body.p, req->body.n);
}

static void h_files(const ep_http_request *req, ep_http_response *res, void *ud)
{
    (void)ud;
    ep_http_response_printf(res, "file %.*s\n", (int)req->path.n, req->path.p);
}

/* A handler answered later from another thread, through ep_loop_post. */
typedef struct slow_job {
    ep_http_response *res;
    ep_loop *loop;
} slow_job;

static void slow_finish(ep_loop *loop, void *arg)
{
    slow_job *j = arg;
    (void)loop;
    ep_http_response_printf(j->res, "late answer\n");
    ep_http_response_finish(j->res);
    free(j);
}

static void *slow_thread(void *arg)
{
    slow_job *j = arg;
    usleep(200 * 1000);
    ep_loop_post(j->loop, slow_finish, j);
    return NULL;
}

static void h_slow(const ep_http_request *req, ep_http_response *res, void *ud)
{
    (void)req;
    slow_job *j = malloc(sizeof(*j));
    (void)ud;
    j->res = res;
    j->loop = ep_api_server_loop(api);
    ep_http_response_suspend(res);
    ep_http_response_status(res, 202); /* still suspended */
    pthread_t t;
    pthread_create(&t, NULL, slow_thread, j);
    pthread_detach(t);
}

static void setup_routes(ep_http_server *http, void *ud)
{
    (void)ud;
    ep_http_route(http, EP_HTTP_POST | EP_HTTP_PUT, "/echo", 0, h_echo, NULL);
    ep_http_route(http, EP_HTTP_GET, "/files", EP_HTTP_ROUTE_PREFIX, h_files, NULL);
    ep_http_route(http, EP_HTTP_GET, "/slow", 0, h_slow, NULL);
}

/* ---- helpers ---- */

static int run(const char *cmd, char *out, size_t n)
{
    FILE *f = popen(cmd, "r");
    assert_non_null(f);
    size_t len = 0;
    if (out) {
        size_t r;
        while (len + 1 < n && (r = fread(out + len, 1, n - 1 - len, f)) > 0)
            len += r;
        out[len] = '\0';
    } else {
        char sink[4096];
        while (fread(sink, 1, sizeof(sink), f) > 0)
            ;
    }
    int st = pclose(f);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static int raw_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(ep_api_server_port(api))};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    struct timeval tv = {5, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
}

/* Reads until EOF, timeout, or `until` responses ("HTTP/1.1 " count). */
static size_t raw_read(int fd, char *buf, size_t n, int until)
{
    size_t len = 0;
    for (;;) {
        ssize_t r = recv(fd, buf + len, n - 1 - len, 0);
        if (r <= 0)
            break;
        len += (size_t)r;
        buf[len] = '\0';
        int count = 0;
        for (const char *p = buf; (p = strstr(p, "HTTP/1.1 ")) != NULL; p++)
            count++;
        if (until && count >= until && strstr(buf, "\r\n\r\n") &&
            (strstr(buf, "Content-Length: 0") || buf[len - 1] == '\n'))
            break;
    }
    buf[len] = '\0';
    return len;
}

static int setup_all(void **state)
{
    (void)state;
    char out[64];
    if (run("command -v curl", out, sizeof(out)) != 0) {
        printf("SKIPPED: curl is not installed\n");
        exit(77);
    }
    if (access("/usr/bin/python3", X_OK) == 0)
        py = "/usr/bin/python3";
    else if (run("command -v python3", out, sizeof(out)) != 0) {
        printf("SKIPPED: python3 is not installed\n");
        exit(77);
    }
    assert_int_equal(ep_metrics_new(&reg), EP_EOK);
    /* Some service metrics with awkward label values. */
    ep_metric *m;
    ep_metric_desc d = {.type = EP_METRIC_COUNTER,
                        .name = "edgeplane_broker_messages_total",
                        .help = "Messages by direction and QoS.\nSecond line \\ here.",
                        .labels = "direction,qos"};
    assert_int_equal(ep_metrics_register(reg, &d, &m), EP_EOK);
    ep_counter *c;
    assert_int_equal(ep_metric_counter(m, EP_LABELS("in", "0"), &c), EP_EOK);
    ep_counter_add(c, 42);
    assert_int_equal(ep_metric_counter(m, EP_LABELS("out \"quoted\"\n", "1\\"), &c), EP_EOK);
    ep_histogram *h;
    assert_int_equal(ep_metrics_histogram_simple(reg, "edgeplane_broker_commit_seconds",
                                                 "Persistence commit latency.", NULL, 0, &h),
                     EP_EOK);
    for (int i = 0; i < 100; i++)
        ep_histogram_observe(h, i * 0.001);
    assert_int_equal(ep_metrics_check_add(reg, "broker_listeners", NULL, NULL, &ready_flag),
                     EP_EOK);

    ep_api_opts o = {.metrics = reg, .setup = setup_routes};
    o.http.head_timeout_ms = HEAD_TIMEOUT_MS;
    o.http.max_conns = 64;
    assert_int_equal(ep_api_server_start_thread("127.0.0.1:0", &o, &api), EP_EOK);
    snprintf(base, sizeof(base), "http://127.0.0.1:%u", ep_api_server_port(api));
    return 0;
}

static int teardown_all(void **state)
{
    (void)state;
    ep_api_server_stop(api);
    ep_metrics_free(reg);
    return 0;
}

/* ---- tests ---- */

static void test_keepalive_and_index(void **state)
{
    (void)state;
    char cmd[512], out[8192];
    snprintf(cmd, sizeof(cmd), "curl -sS -v %s/healthz %s/healthz %s/ 2>&1", base, base, base);
    assert_int_equal(run(cmd, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "Re-using existing connection"));
    assert_non_null(strstr(out, "/metrics  Prometheus metrics"));
    assert_null(strstr(out, "Connection: close"));
    assert_non_null(strstr(out, "< Date: "));
    snprintf(cmd, sizeof(cmd), "curl -sS %s/healthz %s/healthz", base, base);
    assert_int_equal(run(cmd, out, sizeof(out)), 0);
    assert_string_equal(out, "ok\nok\n");
}

static void test_head_404_405(void **state)
{
    (void)state;
    char cmd[512], out[4096];
    snprintf(cmd, sizeof(cmd), "curl -sS -I %s/metrics", base);
    assert_int_equal(run(cmd, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "HTTP/1.1 200 OK\r\n"));
    assert_non_null(strstr(out, "Content-Length: "));
    assert_null(strstr(out, "Content-Length: 0\r\n"));
    assert_non_null(strstr(out, "Content-Type: text/plain; version=0.0.4"));
    /* HEAD gets the headers a GET would, and no body. */
    snprintf(cmd, sizeof(cmd),
             "curl -sS -o /dev/null -w '%%{http_code} %%{size_download}' -I %s/healthz", base);
    assert_int_equal(run(cmd, out, sizeof(out)), 0);
    assert_string_equal(out, "200 0");
    snprintf(cmd, sizeof(cmd), "curl -sS -o /dev/null -w '%%{http_code}' %s/nope", base);
    assert_int_equal(run(cmd, out, sizeof(out)), 0);
    assert_string_equal(out, "404");
    snprintf(cmd, sizeof(cmd), "curl -sS -o /dev/null -w '%%{http_code}' %s/healthzz", base);
    assert_int_equal(run(cmd, out, sizeof(out)), 0);
    assert_string_equal(out, "404");
    snprintf(cmd, sizeof(cmd), "curl -sS -i -X DELETE %s/healthz", base);
    assert_int_equal(run(cmd, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "HTTP/1.1 405 Method Not Allowed\r\n"));
    assert_non_null(strstr(out, "Allow: GET, HEAD\r\n"));
    /* Prefix routes: below the prefix yes, a longer sibling no. */
    snprintf(cmd, sizeof(cmd), "curl -sS %s/files/a/b.txt %s/files", base, base);
    assert_int_equal(run(cmd, out, sizeof(out)), 0);
    assert_string_equal(out, "file /files/a/b.txt\nfile /files\n");
    snprintf(cmd, sizeof(cmd), "curl -sS -o /dev/null -w '%%{http_code}' %s/filesx", base);
    assert_int_equal(run(cmd, out, sizeof(out)), 0);
    assert_string_equal(out, "404");
}

static void test_big_headers_431(void **state)
{
    (void)state;
    char *cmd = malloc(20000), out[4096];
    int k = snprintf(cmd, 20000, "curl -sS -i -H 'X-Big: ");
    memset(cmd + k, 'a', 9000);
    snprintf(cmd + k + 9000, 20000 - (size_t)k - 9000, "' %s/healthz", base);
    assert_int_equal(run(cmd, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "HTTP/1.1 431 Request Header Fields Too Large\r\n"));
    assert_non_null(strstr(out, "Connection: close\r\n"));
    /* 70 small headers: over the count limit. */
    k = snprintf(cmd, 20000, "curl -sS -o /dev/null -w '%%{http_code}'");
    for (int i = 0; i < 70; i++)
        k += snprintf(cmd + k, 20000 - (size_t)k, " -H 'X-H%d: v'", i);
    snprintf(cmd + k, 20000 - (size_t)k, " %s/healthz", base);
    assert_int_equal(run(cmd, out, sizeof(out)), 0);
    assert_string_equal(out, "431");
    /* Long URI: 414. */
    k = snprintf(cmd, 20000, "curl -sS -o /dev/null -w '%%{http_code}' '%s/", base);
    memset(cmd + k, 'u', 3000);
    snprintf(cmd + k + 3000, 20000 - (size_t)k - 3000, "'");
    assert_int_equal(run(cmd, out, sizeof(out)), 0);
    assert_string_equal(out, "414");
    free(cmd);
}

static void test_bodies(void **state)
{
    (void)state;
    char cmd[1024], out[8192];
    /* A 3000-byte body with Expect: 100-continue comes back intact. */
    snprintf(cmd, sizeof(cmd),
             "%s -c 'import sys; sys.stdout.write(\"x\" * 2999 + \"!\")' | "
             "curl -sS -H 'Expect: 100-continue' --data-binary @- %s/echo -v 2>&1",
             py, base);
    assert_int_equal(run(cmd, out, sizeof(out)), 0);
    assert_non_null(strstr(out, "HTTP/1.1 100 Continue"));
    assert_non_null(strstr(out, "xxxxxxxx!"));
    /* Chunked request bodies: 411; unknown methods: 501. */
    snprintf(cmd, sizeof(cmd),
             "echo hi | curl -sS -o /dev/null -w '%%{http_code}' -H 'Transfer-Encoding: chunked' "
             "--data-binary @- %s/echo",
             base);
    assert_int_equal(run(cmd, out, sizeof(out)), 0);
    assert_string_equal(out, "411");
    snprintf(cmd, sizeof(cmd), "curl -sS -o /dev/null -w '%%{http_code}' -X BREW %s/echo", base);
    assert_int_equal(run(cmd, out, sizeof(out)), 0);
    assert_string_equal(out, "501");
    /* Over the 1 MiB body limit: 413. */
    snprintf(cmd, sizeof(cmd),
             "head -c 1048577 /dev/zero | curl -sS -o /dev/null -w '%%{http_code}' "
             "--data-binary @- %s/echo",
             base);
    assert_int_equal(run(cmd, out, sizeof(out)), 0);
    assert_string_equal(out, "413");
}

static void test_readiness(void **state)
{
    (void)state;
    char cmd[512], out[4096];
    ep_metrics_check_set(ready_flag, false, "listener 0.0.0.0:1883 \"not\" bound");
    snprintf(
        cmd, sizeof(cmd),
        "curl -sS -w '\\n%%{http_code}' %s/readyz | %s -c 'import json,sys; "
        "body, code = sys.stdin.read().rsplit(\"\\n\", 1); d = json.loads(body); "
        "print(code, d[\"status\"], d[\"failing\"][0][\"check\"], d[\"failing\"][0][\"reason\"])'",
        base, py);
    assert_int_equal(run(cmd, out, sizeof(out)), 0);
    assert_string_equal(out,
                        "503 not ready broker_listeners listener 0.0.0.0:1883 \"not\" bound\n");
    ep_metrics_check_set(ready_flag, true, NULL);
    snprintf(cmd, sizeof(cmd), "curl -sS -w ' %%{http_code}' %s/readyz", base);
    assert_int_equal(run(cmd, out, sizeof(out)), 0);
    assert_string_equal(out, "{\"failing\":[],\"status\":\"ready\",\"checks\":1}\n 200");
}

static void test_prometheus_format(void **state)
{
    (void)state;
    char cmd[1024], out[8192];
    /* Two scrapes, so request metrics of the first are in the second. */
    snprintf(cmd, sizeof(cmd),
             "curl -sS -o /dev/null %s/metrics && curl -sS %s/metrics | %s "
             "%s/tests/integ/api_promcheck.py -",
             base, base, py, EP_SOURCE_DIR);
    int rc = run(cmd, out, sizeof(out));
    printf("%s", out);
    assert_int_equal(rc, 0);
    snprintf(cmd, sizeof(cmd), "curl -sS %s/metrics", base);
    static char text[1 << 16];
    assert_int_equal(run(cmd, text, sizeof(text)), 0);
    assert_non_null(
        strstr(text, "edgeplane_broker_messages_total{direction=\"in\",qos=\"0\"} 42\n"));
    assert_non_null(strstr(text, "edgeplane_http_requests_total{route=\"/metrics\",code=\"200\"}"));
    assert_non_null(strstr(text, "edgeplane_broker_commit_seconds_count 100\n"));
    assert_non_null(strstr(text, "process_resident_memory_bytes "));
    assert_non_null(strstr(text, "edgeplane_build_info{version=\"" EP_VERSION "\"} 1\n"));
    /* The checker rejects what it should (it is not a rubber stamp). */
    snprintf(cmd, sizeof(cmd),
             "printf '# TYPE a histogram\\na_bucket{le=\"1\"} 2\\na_bucket{le=\"+Inf\"} 1\\n"
             "a_count 3\\nb{x=\"\\\\q\"} 1\\n' | %s %s/tests/integ/api_promcheck.py -",
             py, EP_SOURCE_DIR);
    assert_int_equal(run(cmd, out, sizeof(out)), 1);
    assert_non_null(strstr(out, "not cumulative"));
    assert_non_null(strstr(out, "!= +Inf bucket"));
    assert_non_null(strstr(out, "invalid escape"));
}

static void test_slowloris(void **state)
{
    (void)state;
    char cmd[512], out[1024];
    /* 20 slow connections dripping a head byte every 100 ms; meanwhile
     * healthy requests must be answered promptly. */
    snprintf(cmd, sizeof(cmd), "%s %s/tests/integ/api_slowloris.py 127.0.0.1 %u 20 100", py,
             EP_SOURCE_DIR, ep_api_server_port(api));
    FILE *slow = popen(cmd, "r");
    assert_non_null(slow);
    assert_non_null(fgets(out, sizeof(out), slow)); /* "connected" */
    assert_non_null(strstr(out, "connected"));
    uint64_t t0 = ep_clock_mono_ms();
    int ok = 0;
    for (int i = 0; i < 10; i++) {
        snprintf(cmd, sizeof(cmd), "curl -sS -m 2 -o /dev/null -w '%%{http_code}' %s/healthz",
                 base);
        char code[16];
        if (run(cmd, code, sizeof(code)) == 0 && strcmp(code, "200") == 0)
            ok++;
        usleep(50 * 1000);
    }
    uint64_t healthy_ms = ep_clock_mono_ms() - t0;
    assert_int_equal(ok, 10);
    assert_true(ep_http_server_nconns(ep_api_server_http(api)) >= 1);
    assert_non_null(fgets(out, sizeof(out), slow));
    int rc = pclose(slow);
    printf("%s(10 healthy requests meanwhile in %llu ms)\n", out, (unsigned long long)healthy_ms);
    assert_true(WIFEXITED(rc) && WEXITSTATUS(rc) == 0);
    assert_non_null(strstr(out, "closed=20/20"));
    assert_non_null(strstr(out, "statuses=408"));
    double worst = atof(strstr(out, "max_seconds=") + 12);
    assert_true(worst >= HEAD_TIMEOUT_MS / 1000.0 - 0.2);
    assert_true(worst <= HEAD_TIMEOUT_MS / 1000.0 + 1.5);
}

static void test_pipelining_raw(void **state)
{
    (void)state;
    int fd = raw_connect();
    const char req[] = "GET /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
                       "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello"
                       "HEAD /healthz HTTP/1.1\r\nHost: a\r\n\r\n"
                       "GET /nope HTTP/1.1\r\nHost: a\r\n\r\n"
                       "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n";
    /* Byte by byte for the first part, then the rest in one write. */
    for (size_t i = 0; i < 40; i++)
        assert_int_equal(send(fd, req + i, 1, 0), 1);
    assert_int_equal(send(fd, req + 40, sizeof(req) - 1 - 40, 0), (ssize_t)(sizeof(req) - 1 - 40));
    static char buf[16384];
    raw_read(fd, buf, sizeof(buf), 0); /* until the server closes */
    close(fd);
    const char *p1 = strstr(buf, "HTTP/1.1 200 OK");
    assert_non_null(p1);
    const char *p2 = strstr(p1 + 1, "\r\n\r\nhello");
    assert_non_null(p2);
    const char *p3 = strstr(p2, "HTTP/1.1 200 OK");
    assert_non_null(p3);
    const char *p4 = strstr(p3, "HTTP/1.1 404");
    assert_non_null(p4);
    /* The HEAD answer has Content-Length 3 and no body before the 404. */
    assert_non_null(strstr(p3, "Content-Length: 3\r\n"));
    assert_true(strstr(p3, "\r\n\r\nHTTP/1.1 404") != NULL);
    const char *p5 = strstr(p4, "HTTP/1.1 200 OK");
    assert_non_null(p5);
    assert_non_null(strstr(p5, "Connection: close\r\n"));
}

static void test_suspended_handler(void **state)
{
    (void)state;
    char cmd[512], out[1024];
    /* Two requests on one connection: the second waits for the first. */
    snprintf(cmd, sizeof(cmd), "curl -sS -w '%%{http_code}\\n' %s/slow %s/healthz", base, base);
    uint64_t t0 = ep_clock_mono_ms();
    assert_int_equal(run(cmd, out, sizeof(out)), 0);
    assert_string_equal(out, "late answer\n202\nok\n200\n");
    assert_true(ep_clock_mono_ms() - t0 >= 190);
    /* The client leaves while the handler is suspended: no crash, no leak. */
    int fd = raw_connect();
    const char req[] = "GET /slow HTTP/1.1\r\nHost: a\r\n\r\n";
    assert_int_equal(send(fd, req, sizeof(req) - 1, 0), (ssize_t)(sizeof(req) - 1));
    usleep(20 * 1000);
    struct linger lg = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof(lg)); /* reset */
    close(fd);
    usleep(400 * 1000);
    snprintf(cmd, sizeof(cmd), "curl -sS %s/healthz", base);
    assert_int_equal(run(cmd, out, sizeof(out)), 0);
    assert_string_equal(out, "ok\n");
}

static void test_connection_limit(void **state)
{
    (void)state;
    /* A second server with room for 2 connections, on the test's own loop. */
    ep_loop *loop;
    assert_int_equal(ep_loop_new(&loop, NULL), EP_EOK);
    ep_http_opts o = {.max_conns = 2};
    ep_http_server *s;
    assert_int_equal(ep_http_server_new(loop, &o, &s), EP_EOK);
    ep_hostport hp = {.host = "127.0.0.1"};
    uint16_t port;
    assert_int_equal(ep_http_server_listen(s, &hp, &port), EP_EOK);
    int fds[3];
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port)};
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    for (int i = 0; i < 3; i++) {
        fds[i] = socket(AF_INET, SOCK_STREAM, 0);
        assert_int_equal(connect(fds[i], (struct sockaddr *)&a, sizeof(a)), 0);
        for (int k = 0; k < 5; k++)
            ep_loop_run_once(loop, 20);
    }
    assert_int_equal(ep_http_server_nconns(s), 2);
    char buf[512] = "";
    struct timeval tv = {2, 0};
    setsockopt(fds[2], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    ssize_t n = recv(fds[2], buf, sizeof(buf) - 1, 0);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_non_null(strstr(buf, "HTTP/1.1 503 Service Unavailable\r\n"));
    /* Closing one makes room. */
    close(fds[0]);
    for (int k = 0; k < 5; k++)
        ep_loop_run_once(loop, 20);
    assert_int_equal(ep_http_server_nconns(s), 1);
    close(fds[1]);
    close(fds[2]);
    ep_http_server_free(s);
    ep_loop_run_once(loop, 0);
    ep_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_keepalive_and_index), cmocka_unit_test(test_head_404_405),
        cmocka_unit_test(test_big_headers_431),     cmocka_unit_test(test_bodies),
        cmocka_unit_test(test_readiness),           cmocka_unit_test(test_pipelining_raw),
        cmocka_unit_test(test_suspended_handler),   cmocka_unit_test(test_slowloris),
        cmocka_unit_test(test_prometheus_format),   cmocka_unit_test(test_connection_limit),
    };
    return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
