/*
 * channel_test.c - client and server channels over loopback on one loop
 * with a fake clock: open with None and with the RSA policies in both
 * modes, a response split into many chunks by small negotiated buffers,
 * token renewal at 75 % of the lifetime (and requests answered across it),
 * CloseSecureChannel, and refusal of a policy the server does not offer.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <ftw.h>
#include <unistd.h>

#include "codec/opcua/gen/statuscodes.h"
#include "svc/opcua/channel.h"

static uint64_t fake_now = 1000000;
static uint64_t fake_ms(void *ud)
{
    (void)ud;
    return fake_now;
}
static const ep_clock fake_clock = {fake_ms, NULL};

typedef struct ctx {
    ep_loop *loop;
    ep_ua_listener *l;
    ep_ua_channel *client, *server;
    int opened, closed, responses;
    ep_ua_status close_status;
    size_t last_results;
    uint32_t last_handle;
} ctx;

static void srv_msg(ep_ua_channel *ch, const ep_ua_channel_msg *m, void *ud)
{
    (void)ud;
    assert_int_equal(m->status, EP_UA_STATUS_Good);
    assert_ptr_equal(m->type, EP_UA_T(ReadRequest));
    const ep_ua_read_request *req = m->body;
    ep_ua_read_response r;
    memset(&r, 0, sizeof(r));
    r.response_header.request_handle = req->request_header.request_handle;
    /* as many results as the request's max_age says (to force chunking) */
    size_t n = (size_t)req->max_age;
    ep_ua_datavalue *dv = calloc(n ? n : 1, sizeof(*dv));
    double *d = calloc(n ? n : 1, sizeof(*d));
    for (size_t i = 0; i < n; i++) {
        d[i] = (double)i;
        dv[i].mask = EP_UA_DATAVALUE_VALUE;
        dv[i].value.type = EP_UA_T(Double);
        dv[i].value.data = &d[i];
    }
    r.results = n ? dv : EP_UA_EMPTY;
    r.results_len = n;
    r.diagnostic_infos = EP_UA_EMPTY;
    assert_int_equal(ep_ua_channel_send(ch, m->request_id, EP_UA_T(ReadResponse), &r), EP_EOK);
    free(dv);
    free(d);
}

static void srv_accept(ep_ua_listener *l, ep_ua_channel *ch, void *ud)
{
    (void)l;
    ((ctx *)ud)->server = ch;
}

static void cli_open(ep_ua_channel *ch, void *ud)
{
    (void)ch;
    ((ctx *)ud)->opened++;
}

static void cli_msg(ep_ua_channel *ch, const ep_ua_channel_msg *m, void *ud)
{
    ctx *c = ud;
    (void)ch;
    assert_int_equal(m->status, EP_UA_STATUS_Good);
    assert_ptr_equal(m->type, EP_UA_T(ReadResponse));
    const ep_ua_read_response *r = m->body;
    c->last_results = r->results_len;
    c->last_handle = m->request_handle;
    for (size_t i = 0; i < r->results_len; i++)
        assert_true(*(double *)r->results[i].value.data == (double)i);
    c->responses++;
}

static void cli_close(ep_ua_channel *ch, ep_ua_status st, void *ud)
{
    ctx *c = ud;
    (void)ch;
    c->closed++;
    c->close_status = st;
    c->client = NULL;
}

static void run_until(ctx *c, int *counter, int want)
{
    for (int i = 0; i < 2000 && *counter < want; i++)
        ep_loop_run_once(c->loop, 5);
    assert_int_equal(*counter, want);
}

static char dirs[2][256];

static int rm_one(const char *p, const struct stat *st, int flag, struct FTW *f)
{
    (void)st;
    (void)flag;
    (void)f;
    return remove(p);
}

static ep_ua_pki *make_pki(int i, const char *name)
{
    snprintf(dirs[i], sizeof(dirs[i]), "/tmp/ep_ua_chtest_%s_XXXXXX", name);
    assert_non_null(mkdtemp(dirs[i]));
    ep_ua_pki_opts o;
    memset(&o, 0, sizeof(o));
    o.app_name = name;
    o.app_uri = i ? "urn:test:server" : "urn:test:client";
    o.auto_accept = true;
    ep_ua_pki *p = NULL;
    assert_int_equal(ep_ua_pki_open(dirs[i], &o, &p, NULL, 0), EP_EOK);
    return p;
}

static void exchange(ctx *c, ep_ua_channel_opts *copts, const char *url, size_t nresults)
{
    assert_int_equal(ep_ua_channel_connect(c->loop, url, copts, &c->client), EP_EOK);
    run_until(c, &c->opened, 1);
    assert_true(ep_ua_channel_is_open(c->client));
    ep_ua_read_request req;
    memset(&req, 0, sizeof(req));
    req.request_header.request_handle = 77;
    req.max_age = (double)nresults;
    req.nodes_to_read = EP_UA_EMPTY;
    uint32_t id;
    assert_int_equal(ep_ua_channel_request(c->client, EP_UA_T(ReadRequest), &req, &id), EP_EOK);
    run_until(c, &c->responses, 1);
    assert_int_equal(c->last_results, nresults);
    assert_int_equal(c->last_handle, 77);
}

static void run_case(const ep_ua_policy *pol, int32_t mode, bool small)
{
    ctx c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(ep_loop_new(&c.loop, &fake_clock), EP_EOK);
    ep_ua_pki *cp = NULL, *sp = NULL;
    if (pol) {
        cp = make_pki(0, "client");
        sp = make_pki(1, "server");
    }
    ep_ua_channel_opts so;
    memset(&so, 0, sizeof(so));
    so.cbs.on_message = srv_msg;
    so.pki = sp;
    so.allowed_policies = 1u << EP_UA_POLICY_NONE | 1u << EP_UA_POLICY_BASIC256SHA256 |
                          1u << EP_UA_POLICY_AES128_SHA256_RSAOAEP |
                          1u << EP_UA_POLICY_AES256_SHA256_RSAPSS;
    so.allowed_modes = 0xe;
    if (small)
        so.limits.send_buffer_size = so.limits.recv_buffer_size = 8192;
    assert_int_equal(
        ep_ua_listener_new(c.loop, "opc.tcp://127.0.0.1:0", &so, 0, srv_accept, &c, &c.l), EP_EOK);
    char url[64];
    snprintf(url, sizeof(url), "opc.tcp://127.0.0.1:%u", ep_ua_listener_port(c.l));
    ep_ua_channel_opts co;
    memset(&co, 0, sizeof(co));
    co.cbs.on_open = cli_open;
    co.cbs.on_message = cli_msg;
    co.cbs.on_close = cli_close;
    co.ud = &c;
    co.pki = cp;
    co.policy = pol;
    co.mode = mode;
    co.limits.token_lifetime_ms = 20000;
    size_t der_len = 0;
    if (pol) {
        co.server_cert = ep_ua_cert_der(ep_ua_pki_own_cert(sp), &der_len);
        co.server_cert_len = der_len;
    }
    exchange(&c, &co, url, small ? 20000 : 3);

    /* token renewal at 75 % of 20 s; requests keep working across it */
    fake_now += 15500;
    for (int i = 0; i < 50; i++)
        ep_loop_run_once(c.loop, 5);
    ep_ua_read_request req;
    memset(&req, 0, sizeof(req));
    req.request_header.request_handle = 78;
    req.max_age = 5;
    req.nodes_to_read = EP_UA_EMPTY;
    assert_int_equal(ep_ua_channel_request(c.client, EP_UA_T(ReadRequest), &req, NULL), EP_EOK);
    run_until(&c, &c.responses, 2);
    assert_int_equal(c.last_handle, 78);
    /* and past the old token's end: still open */
    fake_now += 10000;
    for (int i = 0; i < 50; i++)
        ep_loop_run_once(c.loop, 5);
    assert_int_equal(ep_ua_channel_request(c.client, EP_UA_T(ReadRequest), &req, NULL), EP_EOK);
    run_until(&c, &c.responses, 3);

    ep_ua_channel_close(c.client, EP_UA_STATUS_Good, NULL);
    run_until(&c, &c.closed, 1);
    assert_int_equal(c.close_status, EP_UA_STATUS_Good);
    for (int i = 0; i < 50 && ep_ua_listener_channels(c.l); i++)
        ep_loop_run_once(c.loop, 5);
    assert_int_equal(ep_ua_listener_channels(c.l), 0);
    ep_ua_listener_free(c.l);
    fake_now += 2000; /* end lingering sockets */
    for (int i = 0; i < 20; i++)
        ep_loop_run_once(c.loop, 1);
    ep_loop_free(c.loop);
    ep_ua_pki_free(cp);
    ep_ua_pki_free(sp);
    for (int i = 0; pol && i < 2; i++)
        nftw(dirs[i], rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

static void test_none(void **s)
{
    (void)s;
    run_case(NULL, 0, false);
}

static void test_none_chunked(void **s)
{
    (void)s;
    run_case(NULL, 0, true);
}

static void test_basic256sha256_encrypt_chunked(void **s)
{
    (void)s;
    run_case(ep_ua_policy_get(EP_UA_POLICY_BASIC256SHA256),
             EP_UA_MESSAGE_SECURITY_MODE_SIGN_AND_ENCRYPT, true);
}

static void test_aes128_sign(void **s)
{
    (void)s;
    run_case(ep_ua_policy_get(EP_UA_POLICY_AES128_SHA256_RSAOAEP), EP_UA_MESSAGE_SECURITY_MODE_SIGN,
             false);
}

static void test_aes256_pss_encrypt(void **s)
{
    (void)s;
    run_case(ep_ua_policy_get(EP_UA_POLICY_AES256_SHA256_RSAPSS),
             EP_UA_MESSAGE_SECURITY_MODE_SIGN_AND_ENCRYPT, false);
}

static void test_policy_refused(void **s)
{
    (void)s;
    ctx c;
    memset(&c, 0, sizeof(c));
    assert_int_equal(ep_loop_new(&c.loop, &fake_clock), EP_EOK);
    ep_ua_pki *cp = make_pki(0, "client"), *sp = make_pki(1, "server");
    ep_ua_channel_opts so;
    memset(&so, 0, sizeof(so));
    so.cbs.on_message = srv_msg;
    so.pki = sp; /* allowed_policies 0: None only */
    assert_int_equal(ep_ua_listener_new(c.loop, "opc.tcp://127.0.0.1:0", &so, 0, NULL, NULL, &c.l),
                     EP_EOK);
    char url[64];
    snprintf(url, sizeof(url), "opc.tcp://127.0.0.1:%u", ep_ua_listener_port(c.l));
    ep_ua_channel_opts co;
    memset(&co, 0, sizeof(co));
    co.cbs.on_open = cli_open;
    co.cbs.on_message = cli_msg;
    co.cbs.on_close = cli_close;
    co.ud = &c;
    co.pki = cp;
    co.policy = ep_ua_policy_get(EP_UA_POLICY_BASIC256SHA256);
    size_t len;
    co.server_cert = ep_ua_cert_der(ep_ua_pki_own_cert(sp), &len);
    co.server_cert_len = len;
    assert_int_equal(ep_ua_channel_connect(c.loop, url, &co, &c.client), EP_EOK);
    run_until(&c, &c.closed, 1);
    assert_int_equal(c.opened, 0);
    assert_int_equal(c.close_status, EP_UA_STATUS_BadSecurityPolicyRejected);
    ep_ua_listener_free(c.l);
    fake_now += 2000;
    for (int i = 0; i < 20; i++)
        ep_loop_run_once(c.loop, 1);
    ep_loop_free(c.loop);
    ep_ua_pki_free(cp);
    ep_ua_pki_free(sp);
    for (int i = 0; i < 2; i++)
        nftw(dirs[i], rm_one, 8, FTW_DEPTH | FTW_PHYS);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_none),
        cmocka_unit_test(test_none_chunked),
        cmocka_unit_test(test_basic256sha256_encrypt_chunked),
        cmocka_unit_test(test_aes128_sign),
        cmocka_unit_test(test_aes256_pss_encrypt),
        cmocka_unit_test(test_policy_refused),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
