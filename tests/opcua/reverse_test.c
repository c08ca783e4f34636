/*
 * reverse_test.c - ReverseHello (OPC 10000-6 7.1.3) against node-opcua in
 * both directions (ctest integ/opcua_reverse, tests/integ/opcua_reverse.cmake).
 *
 * 1. Our server dials out: an ep_ua_server (in this process) reverse-
 *    connects with ep_ua_server_reverse_connect to node-opcua's
 *    ClientReverseConnect listener (tests/opcua/server_reverse.js), whose
 *    OPCUAClient opens the secure channel on that socket, creates a
 *    session, reads ServerStatus.State and the NamespaceArray and closes.
 * 2. node-opcua's server dials in: a node-opcua OPCUAServer with
 *    reverseConnect (tests/opcua/client_reverse.js) connects to a socket
 *    this program listens on and sends ReverseHello; our client-role
 *    channel (ep_ua_channel_accept, EP_UA_CHANNEL_CLIENT) reads it, opens
 *    the secure channel and asks GetEndpoints, whose answer must name the
 *    node-opcua server.
 *
 * usage: opcua_reverse_test NODE TESTS_OPCUA_DIR  (exit 0 pass, 1 fail,
 * 77 skip when node or node-opcua is missing)
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include "codec/opcua/gen/types.h"
#include "core/clock.h"
#include "core/log.h"
#include "core/sock.h"
#include "svc/opcua/channel.h"
#include "svc/opcua/server.h"

static int failed;

#define CHECK(cond, ...)                                                                           \
    do {                                                                                           \
        if (!(cond)) {                                                                             \
            fprintf(stderr, "FAIL: " __VA_ARGS__);                                                 \
            fprintf(stderr, "\n");                                                                 \
            failed = 1;                                                                            \
        }                                                                                          \
    } while (0)

/* a child whose stdout we read line by line */
typedef struct child {
    pid_t pid;
    int out; /* non-blocking read end */
    char buf[8192];
    size_t len;
} child;

static int child_start(child *c, char *const argv[])
{
    int pfd[2];
    memset(c, 0, sizeof(*c));
    if (pipe(pfd) != 0)
        return -1;
    c->pid = fork();
    if (c->pid < 0)
        return -1;
    if (c->pid == 0) {
        dup2(pfd[1], 1);
        int devnull = open("/dev/null", O_WRONLY);
        if (devnull >= 0)
            dup2(devnull, 2); /* node-opcua's warnings */
        close(pfd[0]);
        close(pfd[1]);
        execv(argv[0], argv);
        _exit(127);
    }
    close(pfd[1]);
    c->out = pfd[0];
    fcntl(c->out, F_SETFL, O_NONBLOCK);
    return 0;
}

/* returns the text after prefix on a complete line, or NULL */
static const char *child_line(child *c, const char *prefix)
{
    ssize_t n;
    while (c->len < sizeof(c->buf) - 1 &&
           (n = read(c->out, c->buf + c->len, sizeof(c->buf) - 1 - c->len)) > 0)
        c->len += (size_t)n;
    c->buf[c->len] = 0;
    for (char *l = c->buf; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
        char *e = strchr(l, '\n');
        if (e && strncmp(l, prefix, strlen(prefix)) == 0) {
            static char val[4096];
            size_t k = (size_t)(e - l) - strlen(prefix);
            if (k >= sizeof(val))
                k = sizeof(val) - 1;
            memcpy(val, l + strlen(prefix), k);
            val[k] = 0;
            return val;
        }
    }
    return NULL;
}

static const char *child_wait_line(child *c, const char *prefix, uint64_t ms)
{
    uint64_t end = ep_clock_mono_ms() + ms;
    const char *v;
    while ((v = child_line(c, prefix)) == NULL && ep_clock_mono_ms() < end) {
        struct pollfd p = {c->out, POLLIN, 0};
        poll(&p, 1, 100);
    }
    return v;
}

static int child_stop(child *c)
{
    int st = 0;
    if (c->pid > 0) {
        if (waitpid(c->pid, &st, WNOHANG) == 0) {
            kill(c->pid, SIGTERM);
            waitpid(c->pid, &st, 0);
        }
        c->pid = 0;
    }
    if (c->out > 0)
        close(c->out);
    c->out = -1;
    return st;
}

/* ------------------------------------------- 1. our server dials out -- */

static void test_server_dials(ep_loop *loop, const char *node, const char *dir)
{
    ep_ua_server_opts so;
    memset(&so, 0, sizeof(so));
    so.url = "opc.tcp://127.0.0.1:0";
    so.app_uri = "urn:edgeplane:test:reverse";
    ep_ua_server *srv = NULL;
    ep_err e = ep_ua_server_new(loop, &so, &srv);
    CHECK(e == EP_EOK, "server: %s", ep_strerror(e));
    if (e != EP_EOK)
        return;
    char script[1024];
    snprintf(script, sizeof(script), "%s/server_reverse.js", dir);
    char *argv[] = {(char *)node, script, (char *)"--server-uri", (char *)so.app_uri, NULL};
    child c;
    CHECK(child_start(&c, argv) == 0, "cannot start %s", script);
    const char *url = child_wait_line(&c, "LISTEN ", 20000);
    CHECK(url != NULL, "server_reverse.js did not listen");
    if (url) {
        char u[256];
        snprintf(u, sizeof(u), "%s", url);
        e = ep_ua_server_reverse_connect(srv, u);
        CHECK(e == EP_EOK, "reverse connect: %s", ep_strerror(e));
        const char *res = NULL;
        int st = 0, exited = 0;
        uint64_t end = ep_clock_mono_ms() + 30000;
        while (!exited && ep_clock_mono_ms() < end) {
            ep_loop_run_once(loop, 20);
            ep_loop_update_time(loop);
            if (res == NULL)
                res = child_line(&c, "RESULT ");
            exited = waitpid(c.pid, &st, WNOHANG) == c.pid;
        }
        if (res == NULL)
            res = child_line(&c, "RESULT ");
        if (exited)
            c.pid = 0;
        fprintf(stderr, "node-opcua client over our reverse connection: %s\n",
                res ? res : "(no result)");
        CHECK(exited && WIFEXITED(st) && WEXITSTATUS(st) == 0,
              "server_reverse.js did not succeed (status %d)", st);
        CHECK(res && strstr(res, "\"state\":0") && strstr(res, "http://opcfoundation.org/UA/"),
              "unexpected result");
    }
    child_stop(&c);
    /* let the channel finish closing */
    uint64_t end = ep_clock_mono_ms() + 1500;
    while (ep_ua_channels_live(EP_UA_CHANNEL_SERVER) && ep_clock_mono_ms() < end) {
        ep_loop_run_once(loop, 20);
        ep_loop_update_time(loop);
    }
    ep_ua_server_free(srv);
}

/* ------------------------------------ 2. node-opcua's server dials in -- */

typedef struct cstate {
    int opened, answered, closed;
    size_t nendpoints;
    char server_uri[256];
    char endpoint_url[256];
    ep_ua_status close_status;
} cstate;

static void c_on_open(ep_ua_channel *ch, void *ud)
{
    cstate *s = ud;
    s->opened = 1;
    const char *eu = ep_ua_channel_endpoint_url(ch);
    snprintf(s->endpoint_url, sizeof(s->endpoint_url), "%s", eu ? eu : "");
    ep_ua_get_endpoints_request req;
    memset(&req, 0, sizeof(req));
    req.request_header.timestamp = ep_ua_datetime_from_unix_ms((int64_t)ep_clock_wall_ms());
    req.request_header.request_handle = 1;
    req.request_header.timeout_hint = 10000;
    if (eu) {
        req.endpoint_url.data = (uint8_t *)(uintptr_t)eu;
        req.endpoint_url.len = strlen(eu);
    }
    uint32_t rid;
    if (ep_ua_channel_request(ch, EP_UA_T(GetEndpointsRequest), &req, &rid) != EP_EOK)
        ep_ua_channel_close(ch, EP_UA_STATUS_BadInternalError, NULL);
}

static void c_on_message(ep_ua_channel *ch, const ep_ua_channel_msg *m, void *ud)
{
    cstate *s = ud;
    if (m->status == EP_UA_STATUS_Good && m->type == EP_UA_T(GetEndpointsResponse)) {
        const ep_ua_get_endpoints_response *r = m->body;
        s->nendpoints = r->endpoints_len;
        if (r->endpoints_len) {
            const ep_ua_string *u = &r->endpoints[0].server.application_uri;
            snprintf(s->server_uri, sizeof(s->server_uri), "%.*s", (int)u->len,
                     u->data ? (const char *)u->data : "");
        }
        s->answered = 1;
    }
    ep_ua_channel_close(ch, EP_UA_STATUS_Good, NULL);
}

static void c_on_close(ep_ua_channel *ch, ep_ua_status st, void *ud)
{
    (void)ch;
    cstate *s = ud;
    s->closed = 1;
    s->close_status = st;
}

static void test_server_dials_in(ep_loop *loop, const char *node, const char *dir)
{
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof(sa);
    if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) != 0 || listen(lfd, 4) != 0 ||
        getsockname(lfd, (struct sockaddr *)&sa, &sl) != 0) {
        CHECK(0, "cannot listen");
        return;
    }
    char url[64];
    snprintf(url, sizeof(url), "opc.tcp://127.0.0.1:%u", ntohs(sa.sin_port));
    char script[1024];
    snprintf(script, sizeof(script), "%s/client_reverse.js", dir);
    char *argv[] = {(char *)node, script, (char *)"--client-url", url, NULL};
    child c;
    CHECK(child_start(&c, argv) == 0, "cannot start %s", script);
    const char *uri = child_wait_line(&c, "READY ", 30000);
    CHECK(uri != NULL, "client_reverse.js did not start");
    char want_uri[256];
    snprintf(want_uri, sizeof(want_uri), "%s", uri ? uri : "");
    struct pollfd p = {lfd, POLLIN, 0};
    int fd = -1;
    char peer[128] = "";
    if (uri && poll(&p, 1, 20000) == 1)
        ep_sock_accept(lfd, &fd, peer, sizeof(peer));
    CHECK(fd >= 0, "node-opcua's server did not dial in");
    cstate s;
    memset(&s, 0, sizeof(s));
    if (fd >= 0) {
        ep_ua_channel_opts o;
        memset(&o, 0, sizeof(o));
        o.cbs.on_open = c_on_open;
        o.cbs.on_message = c_on_message;
        o.cbs.on_close = c_on_close;
        o.ud = &s;
        ep_ua_channel *ch = NULL;
        ep_err e = ep_ua_channel_accept(loop, fd, EP_UA_CHANNEL_CLIENT, peer, &o, &ch);
        CHECK(e == EP_EOK, "accept: %s", ep_strerror(e));
        uint64_t end = ep_clock_mono_ms() + 20000;
        while (e == EP_EOK && !s.closed && ep_clock_mono_ms() < end) {
            ep_loop_run_once(loop, 20);
            ep_loop_update_time(loop);
        }
        fprintf(stderr,
                "our client channel over node-opcua's reverse connection: opened %d, "
                "endpoint URL from ReverseHello \"%s\", %zu endpoints of \"%s\", closed 0x%08x\n",
                s.opened, s.endpoint_url, s.nendpoints, s.server_uri, s.close_status);
        CHECK(s.opened && s.answered && s.closed, "channel did not complete");
        CHECK(s.nendpoints > 0 && strcmp(s.server_uri, want_uri) == 0,
              "GetEndpoints names \"%s\", not \"%s\"", s.server_uri, want_uri);
        CHECK(strncmp(s.endpoint_url, "opc.tcp://", 10) == 0, "no endpoint URL from ReverseHello");
        CHECK(s.close_status == EP_UA_STATUS_Good, "closed with 0x%08x", s.close_status);
    }
    close(lfd);
    uint64_t end = ep_clock_mono_ms() + 1500;
    while (ep_ua_channels_live(EP_UA_CHANNEL_CLIENT) && ep_clock_mono_ms() < end) {
        ep_loop_run_once(loop, 20);
        ep_loop_update_time(loop);
    }
    child_stop(&c);
}

int main(int argc, char **argv)
{
    if (argc < 3 || access(argv[1], X_OK) != 0) {
        fprintf(stderr, "SKIP: node not found (usage: opcua_reverse_test NODE TESTS_OPCUA_DIR)\n");
        return 77;
    }
    char mod[1024];
    snprintf(mod, sizeof(mod), "%s/node_modules/node-opcua", argv[2]);
    if (access(mod, F_OK) != 0) {
        fprintf(stderr, "SKIP: %s missing (tools/install-deps.sh test)\n", mod);
        return 77;
    }
    signal(SIGPIPE, SIG_IGN);
    ep_log_set_level(EP_LOG_WARN);
    ep_loop *loop = NULL;
    if (ep_loop_new(&loop, NULL) != EP_EOK)
        return 1;
    test_server_dials(loop, argv[1], argv[2]);
    test_server_dials_in(loop, argv[1], argv[2]);
    ep_loop_free(loop);
    fprintf(stderr, "%s\n", failed ? "FAILED" : "PASSED");
    return failed;
}
