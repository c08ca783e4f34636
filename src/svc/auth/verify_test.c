/* verify_test.c - the verification pool and cache: results delivered on the
 * requesting loop, cache hits/misses (TTL with a fake clock, invalidation
 * by reload), a full queue, cancellation, shutdown with queued requests,
 * and a throughput figure (verifications/s at the default cost). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "core/clock.h"
#include "core/loop.h"
#include "svc/auth/verify.h"

typedef struct result {
    int n;
    ep_err last;
    int by_code[32];
} result;

static void on_done(ep_loop *loop, void *arg, ep_err r)
{
    (void)loop;
    result *res = arg;
    res->n++;
    res->last = r;
    res->by_code[-r < 32 ? -r : 31]++;
}

static void wait_for(ep_loop *loop, result *res, int n)
{
    uint64_t deadline = ep_clock_mono_ms() + 60000;
    while (res->n < n && ep_clock_mono_ms() < deadline)
        ep_loop_run_once(loop, 100);
    assert_int_equal(res->n, n);
}

static ep_passwd *make_pw(uint32_t iterations)
{
    char text[4 * EP_PASSWD_MAX_LINE];
    char line[EP_PASSWD_MAX_LINE + 1];
    ep_passwd_entry e;
    text[0] = '\0';
    const char *users[] = {"alice", "bob"};
    for (int i = 0; i < 2; i++) {
        assert_int_equal(ep_passwd_entry_make(users[i], users[i], strlen(users[i]),
                                              EP_PASSWD_PBKDF2_SHA512, iterations, &e),
                         EP_EOK);
        assert_int_equal(ep_passwd_entry_format(&e, line, sizeof(line)), EP_EOK);
        strcat(text, line);
        strcat(text, "\n");
    }
    ep_cfg_errs errs = {0};
    ep_passwd *pw = NULL;
    assert_int_equal(ep_passwd_parse("t", text, strlen(text), &pw, &errs), EP_EOK);
    return pw;
}

static void test_results_and_cache(void **st)
{
    (void)st;
    ep_fakeclock fc;
    ep_fakeclock_init(&fc, 1000);
    ep_loop *loop = NULL;
    assert_int_equal(ep_loop_new(&loop, NULL), EP_EOK);
    ep_auth_verifier *v = NULL;
    ep_auth_verifier_opts o = {.threads = 2, .cache_ttl_ms = 5000, .clock = &fc.clock};
    assert_int_equal(ep_auth_verifier_new(&v, &o), EP_EOK);
    ep_passwd *pw = make_pw(1000);

    result r = {0};
    assert_int_equal(ep_auth_verifier_cached(v, pw, "alice", 5, "alice", 5), EP_ENOTFOUND);
    assert_int_equal(
        ep_auth_verifier_submit(v, pw, "alice", 5, "alice", 5, loop, on_done, &r, NULL), EP_EOK);
    assert_int_equal(
        ep_auth_verifier_submit(v, pw, "alice", 5, "wrong", 5, loop, on_done, &r, NULL), EP_EOK);
    assert_int_equal(ep_auth_verifier_submit(v, pw, "carol", 5, "x", 1, loop, on_done, &r, NULL),
                     EP_EOK);
    wait_for(loop, &r, 3);
    assert_int_equal(r.by_code[0], 1);
    assert_int_equal(r.by_code[-EP_ESECURITY], 1);
    assert_int_equal(r.by_code[-EP_ENOTFOUND], 1);

    assert_int_equal(ep_auth_verifier_cached(v, pw, "alice", 5, "alice", 5), EP_EOK);
    assert_int_equal(ep_auth_verifier_cached(v, pw, "alice", 5, "wrong", 5), EP_ENOTFOUND);
    assert_int_equal(ep_auth_verifier_cached(v, pw, "alic", 4, "ealice", 6), EP_ENOTFOUND);
    assert_int_equal(ep_auth_verifier_cached(v, pw, "bob", 3, "bob", 3), EP_ENOTFOUND);
    /* a reloaded file (new generation) does not inherit cached successes */
    ep_passwd *pw2 = make_pw(1000);
    assert_int_equal(ep_auth_verifier_cached(v, pw2, "alice", 5, "alice", 5), EP_ENOTFOUND);
    ep_passwd_unref(pw2);
    /* TTL */
    ep_fakeclock_advance(&fc, 4999);
    assert_int_equal(ep_auth_verifier_cached(v, pw, "alice", 5, "alice", 5), EP_EOK);
    ep_fakeclock_advance(&fc, 1);
    assert_int_equal(ep_auth_verifier_cached(v, pw, "alice", 5, "alice", 5), EP_ENOTFOUND);

    ep_auth_verifier_stats s;
    ep_auth_verifier_get_stats(v, &s);
    assert_int_equal(s.submitted, 3);
    assert_int_equal(s.ok, 1);
    assert_int_equal(s.failed, 2);
    assert_int_equal(s.cache_hits, 2);
    assert_int_equal(s.pending, 0);

    assert_int_equal(ep_auth_verifier_submit(v, pw, "a", 1, "x", EP_PASSWD_MAX_PASSWORD + 1, loop,
                                             on_done, &r, NULL),
                     EP_ETOOBIG);
    ep_passwd_unref(pw); /* requests hold their own references */
    ep_auth_verifier_free(v);
    ep_loop_free(loop);
}

static void test_full_cancel_shutdown(void **st)
{
    (void)st;
    ep_loop *loop = NULL;
    assert_int_equal(ep_loop_new(&loop, NULL), EP_EOK);
    ep_auth_verifier *v = NULL;
    ep_auth_verifier_opts o = {.threads = 1, .max_pending = 3, .no_cache = true};
    assert_int_equal(ep_auth_verifier_new(&v, &o), EP_EOK);
    ep_passwd *pw = make_pw(EP_PASSWD_DEFAULT_ITERATIONS); /* slow: ~0.1 s each */
    result r = {0};
    uint64_t id[4];
    for (int i = 0; i < 3; i++)
        assert_int_equal(
            ep_auth_verifier_submit(v, pw, "bob", 3, "bob", 3, loop, on_done, &r, &id[i]), EP_EOK);
    assert_int_equal(ep_auth_verifier_submit(v, pw, "bob", 3, "bob", 3, loop, on_done, &r, &id[3]),
                     EP_EFULL);
    /* the last one is still queued behind the first */
    assert_int_equal(ep_auth_verifier_cancel(v, id[2]), EP_EOK);
    assert_int_equal(ep_auth_verifier_cancel(v, id[2]), EP_ENOTFOUND);
    assert_int_equal(ep_auth_verifier_submit(v, pw, "bob", 3, "bob", 3, loop, on_done, &r, &id[3]),
                     EP_EOK);
    /* shutdown: whatever is queued completes with EP_ECLOSED, a running
     * one (if the pool thread picked one up yet) completes normally */
    ep_auth_verifier_free(v);
    wait_for(loop, &r, 3);
    assert_int_equal(r.by_code[0] + r.by_code[-EP_ECLOSED], 3);
    ep_passwd_unref(pw);
    ep_loop_free(loop);
}

static void test_throughput(void **st)
{
    (void)st;
    ep_loop *loop = NULL;
    assert_int_equal(ep_loop_new(&loop, NULL), EP_EOK);
    ep_auth_verifier *v = NULL;
    ep_auth_verifier_opts o = {.max_pending = 64};
    assert_int_equal(ep_auth_verifier_new(&v, &o), EP_EOK);
    ep_passwd *pw = make_pw(EP_PASSWD_DEFAULT_ITERATIONS);
    const int n = 16;
    result r = {0};
    uint64_t t0 = ep_clock_mono_ns();
    for (int i = 0; i < n; i++)
        assert_int_equal(
            ep_auth_verifier_submit(v, pw, "alice", 5, "alice", 5, loop, on_done, &r, NULL),
            EP_EOK);
    wait_for(loop, &r, n);
    double secs = (double)(ep_clock_mono_ns() - t0) / 1e9;
    assert_int_equal(r.by_code[0], n);
    printf("verify: %d pbkdf2-sha512 checks at %u iterations in %.2f s: %.1f verifications/s "
           "(pool of min(CPUs,4) threads)\n",
           n, EP_PASSWD_DEFAULT_ITERATIONS, secs, n / secs);
    const int m = 200000;
    t0 = ep_clock_mono_ns();
    for (int i = 0; i < m; i++)
        assert_int_equal(ep_auth_verifier_cached(v, pw, "alice", 5, "alice", 5), EP_EOK);
    secs = (double)(ep_clock_mono_ns() - t0) / 1e9;
    printf("verify: %d cache hits in %.3f s: %.0f hits/s on one thread\n", m, secs, m / secs);
    ep_passwd_unref(pw);
    ep_auth_verifier_free(v);
    ep_loop_free(loop);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_results_and_cache),
        cmocka_unit_test(test_full_cancel_shutdown),
        cmocka_unit_test(test_throughput),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
