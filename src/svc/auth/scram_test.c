/* scram_test.c - SCRAM-SHA-256: the RFC 7677 example byte for byte (server
 * and client side), full client<->server exchanges, wrong password,
 * unknown user, replayed client-final, malformed messages. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "svc/auth/auth_int.h"
#include "svc/auth/scram.h"

static const char RFC_CLIENT_FIRST[] = "n,,n=user,r=rOprNGfwEbeRWgbNEkqO";
static const char RFC_SERVER_NONCE[] = "%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0";
static const char RFC_SERVER_FIRST[] =
    "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096";
static const char RFC_CLIENT_FINAL[] =
    "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
    "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=";
static const char RFC_SERVER_FINAL[] = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";

/* Credentials: "user"/"pencil" with the RFC salt, plus "a,b=c"/"x" made
 * at startup (a name that needs saslname escaping). */
static ep_passwd_entry user_e, odd_e;

static ep_err lookup(void *ud, const char *user, size_t len, ep_scram_cred *out)
{
    (void)ud;
    const ep_passwd_entry *e = NULL;
    if (len == 4 && memcmp(user, "user", 4) == 0)
        e = &user_e;
    else if (len == 5 && memcmp(user, "a,b=c", 5) == 0)
        e = &odd_e;
    if (e == NULL)
        return EP_ENOTFOUND;
    out->iterations = e->iterations;
    memcpy(out->salt, e->salt, e->salt_len);
    out->salt_len = e->salt_len;
    memcpy(out->stored_key, e->stored_key, 32);
    memcpy(out->server_key, e->server_key, 32);
    return EP_EOK;
}

static int setup(void **st)
{
    (void)st;
    static const char text[] = "user:$scram-sha-256$4096$W22ZaJ0SNY7soEsUEjb6gQ==$"
                               "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY="
                               "$wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=\n";
    ep_cfg_errs errs = {0};
    ep_passwd *pw = NULL;
    if (ep_passwd_parse("t", text, strlen(text), &pw, &errs) != EP_EOK)
        return -1;
    user_e = *ep_passwd_lookup(pw, "user", 4);
    ep_passwd_unref(pw);
    user_e.user = "user";
    return ep_passwd_entry_make("a,b=c", "x", 1, EP_PASSWD_SCRAM_SHA256, 4096, &odd_e) == EP_EOK
               ? 0
               : -1;
}

static ep_scram_result step(ep_scram_server *s, void **state, const char *msg, const uint8_t **out,
                            size_t *out_len)
{
    return ep_scram_server_step(s, state, "cid", (const uint8_t *)msg, strlen(msg), out, out_len);
}

static void assert_out(const uint8_t *out, size_t len, const char *want)
{
    char got[EP_SCRAM_MAX_MSG + 1];
    assert_true(len < sizeof(got));
    memcpy(got, out, len);
    got[len] = '\0';
    assert_string_equal(got, want);
}

static void test_rfc7677_server(void **st)
{
    (void)st;
    ep_scram_server *s = NULL;
    assert_int_equal(ep_scram_server_new(&s, lookup, NULL), EP_EOK);
    ep_scram__server_fixed_nonce(s, RFC_SERVER_NONCE);
    void *state = NULL;
    const uint8_t *out;
    size_t n;
    assert_int_equal(step(s, &state, RFC_CLIENT_FIRST, &out, &n), EP_SCRAM_CONTINUE);
    assert_out(out, n, RFC_SERVER_FIRST);
    assert_null(ep_scram_server_username(state));
    assert_int_equal(step(s, &state, RFC_CLIENT_FINAL, &out, &n), EP_SCRAM_SUCCESS);
    assert_out(out, n, RFC_SERVER_FINAL);
    assert_string_equal(ep_scram_server_username(state), "user");
    /* the exchange is over */
    assert_int_equal(step(s, &state, RFC_CLIENT_FINAL, &out, &n), EP_SCRAM_FAIL);
    ep_scram_server_done(s, state);
    ep_scram_server_free(s);
}

static void test_rfc7677_client(void **st)
{
    (void)st;
    ep_scram_client *c = NULL;
    assert_int_equal(ep_scram_client_new(&c, "user", "pencil", 6), EP_EOK);
    ep_scram__client_fixed_nonce(c, "rOprNGfwEbeRWgbNEkqO");
    const uint8_t *out;
    size_t n;
    assert_int_equal(ep_scram_client_first(c, &out, &n), EP_EOK);
    assert_out(out, n, RFC_CLIENT_FIRST);
    assert_int_equal(ep_scram_client_final(c, (const uint8_t *)RFC_SERVER_FIRST,
                                           strlen(RFC_SERVER_FIRST), &out, &n),
                     EP_EOK);
    assert_out(out, n, RFC_CLIENT_FINAL);
    /* a wrong server signature is caught, a right one accepted */
    static const char bad[] = "v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G5=";
    assert_int_equal(ep_scram_client_verify(c, (const uint8_t *)bad, strlen(bad)), EP_EPROTO);
    static const char bad2[] = "v=7rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4=";
    assert_int_equal(ep_scram_client_verify(c, (const uint8_t *)bad2, strlen(bad2)), EP_ESECURITY);
    assert_int_equal(ep_scram_client_verify(c, (const uint8_t *)"e=invalid-proof", 15),
                     EP_ESECURITY);
    assert_int_equal(
        ep_scram_client_verify(c, (const uint8_t *)RFC_SERVER_FINAL, strlen(RFC_SERVER_FINAL)),
        EP_EOK);
    ep_scram_client_free(c);
}

/* Runs a whole exchange; returns the server's final result. */
static ep_scram_result exchange(ep_scram_server *s, const char *user, const char *pass,
                                char *final_out, size_t final_cap)
{
    ep_scram_client *c = NULL;
    assert_int_equal(ep_scram_client_new(&c, user, pass, strlen(pass)), EP_EOK);
    const uint8_t *m, *r;
    size_t mn, rn;
    void *state = NULL;
    assert_int_equal(ep_scram_client_first(c, &m, &mn), EP_EOK);
    assert_int_equal(ep_scram_server_step(s, &state, "id", m, mn, &r, &rn), EP_SCRAM_CONTINUE);
    assert_int_equal(ep_scram_client_final(c, r, rn, &m, &mn), EP_EOK);
    if (final_out != NULL) {
        assert_true(mn < final_cap);
        memcpy(final_out, m, mn);
        final_out[mn] = '\0';
    }
    ep_scram_result res = ep_scram_server_step(s, &state, "id", m, mn, &r, &rn);
    if (res == EP_SCRAM_SUCCESS) {
        assert_int_equal(ep_scram_client_verify(c, r, rn), EP_EOK);
        assert_string_equal(ep_scram_server_username(state), user);
    } else {
        assert_int_equal(rn, 0);
        assert_null(ep_scram_server_username(state));
    }
    ep_scram_server_done(s, state);
    ep_scram_client_free(c);
    return res;
}

static void test_exchange(void **st)
{
    (void)st;
    ep_scram_server *s = NULL;
    assert_int_equal(ep_scram_server_new(&s, lookup, NULL), EP_EOK);
    assert_int_equal(exchange(s, "user", "pencil", NULL, 0), EP_SCRAM_SUCCESS);
    assert_int_equal(exchange(s, "a,b=c", "x", NULL, 0), EP_SCRAM_SUCCESS);
    assert_int_equal(exchange(s, "user", "pencil ", NULL, 0), EP_SCRAM_FAIL);
    assert_int_equal(exchange(s, "user", "", NULL, 0), EP_SCRAM_FAIL);
    /* unknown users get a full-looking exchange that fails at the proof */
    assert_int_equal(exchange(s, "mallory", "pencil", NULL, 0), EP_SCRAM_FAIL);
    ep_scram_server_free(s);
}

static void test_unknown_user_looks_alike(void **st)
{
    (void)st;
    ep_scram_server *s = NULL;
    assert_int_equal(ep_scram_server_new(&s, lookup, NULL), EP_EOK);
    const uint8_t *o1, *o2;
    size_t n1, n2;
    void *a = NULL, *b = NULL;
    assert_int_equal(step(s, &a, "n,,n=ghost,r=abc", &o1, &n1), EP_SCRAM_CONTINUE);
    char first[256];
    memcpy(first, o1, n1);
    first[n1] = '\0';
    assert_int_equal(step(s, &b, "n,,n=ghost,r=abc", &o2, &n2), EP_SCRAM_CONTINUE);
    /* same salt and count each time (only the nonce differs) */
    assert_string_equal(strstr(first, ",s="), strstr((const char *)o2, ",s="));
    assert_non_null(strstr(first, ",i=4096"));
    assert_int_equal(n1, strlen("r=abc") + 24 + strlen(",s=") + 24 + strlen(",i=4096"));
    ep_scram_server_done(s, a);
    ep_scram_server_done(s, b);
    ep_scram_server_free(s);
}

static void test_replayed_final(void **st)
{
    (void)st;
    ep_scram_server *s = NULL;
    assert_int_equal(ep_scram_server_new(&s, lookup, NULL), EP_EOK);
    char captured[EP_SCRAM_MAX_MSG];
    assert_int_equal(exchange(s, "user", "pencil", captured, sizeof(captured)), EP_SCRAM_SUCCESS);
    /* An attacker replays the same client-first (same client nonce) and the
     * captured client-final: the server's fresh nonce makes it fail. */
    const char *cnonce = strstr(captured, ",r=") + 3;
    char cfirst[256];
    snprintf(cfirst, sizeof(cfirst), "n,,n=user,r=%.24s", cnonce);
    void *state = NULL;
    const uint8_t *out;
    size_t n;
    assert_int_equal(step(s, &state, cfirst, &out, &n), EP_SCRAM_CONTINUE);
    assert_int_equal(step(s, &state, captured, &out, &n), EP_SCRAM_FAIL);
    ep_scram_server_done(s, state);
    /* With a fixed server nonce (as if it repeated) the same replay would
     * pass: this is what the random nonce protects. */
    ep_scram__server_fixed_nonce(s, RFC_SERVER_NONCE);
    state = NULL;
    assert_int_equal(step(s, &state, RFC_CLIENT_FIRST, &out, &n), EP_SCRAM_CONTINUE);
    assert_int_equal(step(s, &state, RFC_CLIENT_FINAL, &out, &n), EP_SCRAM_SUCCESS);
    ep_scram_server_done(s, state);
    ep_scram_server_free(s);
}

static void test_malformed(void **st)
{
    (void)st;
    ep_scram_server *s = NULL;
    assert_int_equal(ep_scram_server_new(&s, lookup, NULL), EP_EOK);
    static const char *const bad_first[] = {
        "",
        "n,,",
        "p=tls-unique,,n=user,r=abc", /* channel binding not offered */
        "n,a=other,n=user,r=abc",     /* authzid must be the user */
        "n,,m=ext,n=user,r=abc",      /* mandatory extension */
        "n,,n=user",                  /* no nonce */
        "n,,n=user,r=",               /* empty nonce */
        "n,,n=,r=abc",                /* empty user */
        "n,,n=us=er,r=abc",           /* bad saslname escape */
        "n,,n=user,r=a b",            /* non-printable nonce */
        "n,,r=abc,n=user",            /* order */
        "x,,n=user,r=abc",
        "n,,n=user,r=abc,",
        "n,,n=user,r=abc,1=x",
    };
    const uint8_t *out;
    size_t n;
    for (size_t i = 0; i < sizeof(bad_first) / sizeof(bad_first[0]); i++) {
        void *state = NULL;
        if (step(s, &state, bad_first[i], &out, &n) != EP_SCRAM_FAIL)
            fail_msg("accepted client-first '%s'", bad_first[i]);
        assert_int_equal(n, 0);
        ep_scram_server_done(s, state);
    }
    void *state = NULL;
    assert_int_equal(step(s, &state, "y,a=user,n=user,r=abc,x=ext", &out, &n), EP_SCRAM_CONTINUE);
    ep_scram_server_done(s, state);

    /* NUL bytes and oversize messages */
    state = NULL;
    assert_int_equal(
        ep_scram_server_step(s, &state, "", (const uint8_t *)"n,,n=u\0,r=a", 11, &out, &n),
        EP_SCRAM_FAIL);
    ep_scram_server_done(s, state);
    char big[EP_SCRAM_MAX_MSG + 2];
    memset(big, 'a', sizeof(big));
    memcpy(big, "n,,n=user,r=", 12);
    state = NULL;
    assert_int_equal(
        ep_scram_server_step(s, &state, "", (const uint8_t *)big, sizeof(big), &out, &n),
        EP_SCRAM_FAIL);
    ep_scram_server_done(s, state);

    /* client-final variants, each in a fresh RFC exchange */
    ep_scram__server_fixed_nonce(s, RFC_SERVER_NONCE);
    static const char *const bad_final[] = {
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0", /* no proof */
        "c=eSws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", /* c= for "y,," */
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k1,"
        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", /* nonce */
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVR=", /* proof */
        "c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,"
        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ", /* base64 */
        "r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,c=biws,"
        "p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=", /* order */
    };
    for (size_t i = 0; i < sizeof(bad_final) / sizeof(bad_final[0]); i++) {
        state = NULL;
        assert_int_equal(step(s, &state, RFC_CLIENT_FIRST, &out, &n), EP_SCRAM_CONTINUE);
        if (step(s, &state, bad_final[i], &out, &n) != EP_SCRAM_FAIL)
            fail_msg("accepted client-final '%s'", bad_final[i]);
        /* and no second chance within the same exchange */
        assert_int_equal(step(s, &state, RFC_CLIENT_FINAL, &out, &n), EP_SCRAM_FAIL);
        ep_scram_server_done(s, state);
    }
    ep_scram_server_free(s);
}

static void test_client_refuses(void **st)
{
    (void)st;
    static const char *const bad[] = {
        "r=rOprNGfwEbeRWgbNEkqO,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096",    /* no server part */
        "r=XXprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096", /* not our nonce */
        "r=rOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4095", /* too cheap */
        "r=rOprNGfwEbeRWgbNEkqOabc,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=99999999",
        "r=rOprNGfwEbeRWgbNEkqOabc,s=,i=4096",
        "r=rOprNGfwEbeRWgbNEkqOabc,i=4096,s=W22ZaJ0SNY7soEsUEjb6gQ==",
        "e=other-error",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        ep_scram_client *c = NULL;
        assert_int_equal(ep_scram_client_new(&c, "user", "pencil", 6), EP_EOK);
        ep_scram__client_fixed_nonce(c, "rOprNGfwEbeRWgbNEkqO");
        const uint8_t *out;
        size_t n;
        if (ep_scram_client_final(c, (const uint8_t *)bad[i], strlen(bad[i]), &out, &n) !=
            EP_EPROTO)
            fail_msg("client accepted '%s'", bad[i]);
        assert_int_equal(
            ep_scram_client_verify(c, (const uint8_t *)RFC_SERVER_FINAL, strlen(RFC_SERVER_FINAL)),
            EP_EPROTO); /* out of order */
        ep_scram_client_free(c);
    }
    ep_scram_client *c = NULL;
    assert_int_equal(ep_scram_client_new(&c, "", "x", 1), EP_EINVAL);
}

static void test_passwd_backed(void **st)
{
    (void)st;
    char path[] = "/tmp/ep_scram_test.XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    ep_passwd_entry e;
    char line[EP_PASSWD_MAX_LINE + 2];
    assert_int_equal(ep_passwd_entry_make("dev1", "pw1", 3, EP_PASSWD_SCRAM_SHA256, 0, &e), EP_EOK);
    assert_int_equal(ep_passwd_entry_format(&e, line, sizeof(line) - 1), EP_EOK);
    strcat(line, "\n");
    assert_int_equal(write(fd, line, strlen(line)), (ssize_t)strlen(line));
    assert_int_equal(ep_passwd_entry_make("plain", "pw2", 3, EP_PASSWD_PBKDF2_SHA512, 1000, &e),
                     EP_EOK);
    assert_int_equal(ep_passwd_entry_format(&e, line, sizeof(line) - 1), EP_EOK);
    strcat(line, "\n");
    assert_int_equal(write(fd, line, strlen(line)), (ssize_t)strlen(line));
    close(fd);
    ep_cfg_errs errs = {0};
    ep_passwd_file *pf = NULL;
    assert_int_equal(ep_passwd_file_open(path, &pf, &errs), EP_EOK);
    ep_scram_server *s = NULL;
    assert_int_equal(ep_scram_server_new_passwd(&s, pf), EP_EOK);
    assert_int_equal(exchange(s, "dev1", "pw1", NULL, 0), EP_SCRAM_SUCCESS);
    assert_int_equal(exchange(s, "dev1", "pw2", NULL, 0), EP_SCRAM_FAIL);
    /* a pbkdf2-only user cannot use SCRAM */
    assert_int_equal(exchange(s, "plain", "pw2", NULL, 0), EP_SCRAM_FAIL);
    /* and the SCRAM entry also serves plain password logins */
    ep_passwd *pw = ep_passwd_file_get(pf);
    assert_int_equal(ep_passwd_verify(pw, "dev1", 4, "pw1", 3), EP_EOK);
    ep_passwd_unref(pw);
    ep_scram_server_free(s);
    ep_passwd_file_free(pf);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rfc7677_server), cmocka_unit_test(test_rfc7677_client),
        cmocka_unit_test(test_exchange),       cmocka_unit_test(test_unknown_user_looks_alike),
        cmocka_unit_test(test_replayed_final), cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_client_refuses), cmocka_unit_test(test_passwd_backed),
    };
    return cmocka_run_group_tests(tests, setup, NULL);
}
