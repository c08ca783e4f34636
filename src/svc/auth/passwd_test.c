/* passwd_test.c - password file: PBKDF2 known answers, parsing (every
 * error message asserted with its location), make/format/parse round
 * trips, atomic rewrites, reload. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "svc/auth/auth_int.h"
#include "svc/auth/passwd.h"

static void hex(const uint8_t *p, size_t n, char *out)
{
    for (size_t i = 0; i < n; i++)
        sprintf(out + 2 * i, "%02x", p[i]);
}

/* PBKDF2-HMAC-SHA512 vectors (as published for RFC 6070's inputs). */
static void test_pbkdf2_sha512_vectors(void **st)
{
    (void)st;
    static const struct {
        const char *p, *s;
        uint32_t c;
        const char *dk;
    } v[] = {
        {"password", "salt", 1,
         "867f70cf1ade02cff3752599a3a53dc4af34c7a669815ae5d513554e1c8cf252c02d470a285a0501bad999bfe"
         "943"
         "c08f050235d7d68b1da55e63f73b60a57fce"},
        {"password", "salt", 2,
         "e1d9c16aa681708a45f5c7c4e215ceb66e011a2e9f0040713f18aefdb866d53cf76cab2868a39b9f7840edce4"
         "fef"
         "5a82be67335c77a6068e04112754f27ccf4e"},
        {"password", "salt", 4096,
         "d197b1b33db0143e018b12f3d1d1479e6cdebdcc97c5c0f87f6902e072f457b5143f30602641b3d55cd335988"
         "cb3"
         "6b84376060ecd532e039b742a239434af2d5"},
        {"passwordPASSWORDpassword", "saltSALTsaltSALTsaltSALTsaltSALTsalt", 4096,
         "8c0511f4c6e597c6ac6315d8f0362e225f3c501495ba23b868c005174dc4ee71115b59f9e60cd9532fa33e0f7"
         "5ae"
         "fe30225c583a186cd82bd4daea9724a3d3b8"},
    };
    for (size_t i = 0; i < sizeof(v) / sizeof(v[0]); i++) {
        uint8_t dk[64];
        char h[129];
        assert_int_equal(ep_auth__pbkdf2(true, v[i].p, strlen(v[i].p), (const uint8_t *)v[i].s,
                                         strlen(v[i].s), v[i].c, dk, 64),
                         EP_EOK);
        hex(dk, 64, h);
        assert_string_equal(h, v[i].dk);
    }
}

static void test_b64(void **st)
{
    (void)st;
    char out[16];
    uint8_t d[8];
    size_t n = 0;
    assert_int_equal(ep_auth__b64_encode((const uint8_t *)"ab", 2, out), 4);
    assert_string_equal(out, "YWI=");
    assert_int_equal(ep_auth__b64_decode("YWI=", 4, d, sizeof(d), &n), EP_EOK);
    assert_int_equal(n, 2);
    assert_memory_equal(d, "ab", 2);
    assert_int_equal(ep_auth__b64_decode("YWJ=", 4, d, sizeof(d), &n),
                     EP_EINVAL); /* non-canonical */
    assert_int_equal(ep_auth__b64_decode("YW=I", 4, d, sizeof(d), &n), EP_EINVAL);
    assert_int_equal(ep_auth__b64_decode("YWI", 3, d, sizeof(d), &n), EP_EINVAL);
    assert_int_equal(ep_auth__b64_decode("YW I", 4, d, sizeof(d), &n), EP_EINVAL);
    assert_int_equal(ep_auth__b64_decode("YWJjZGVmZ2hp", 12, d, 8, &n), EP_ETOOBIG);
    assert_int_equal(ep_auth__b64_decode("", 0, d, sizeof(d), &n), EP_EOK);
    assert_int_equal(n, 0);
}

/* The same vector as above, stored in a file line. */
static const char ALICE[] = "alice:$pbkdf2-sha512$4096$"
                            "c2FsdFNBTFRzYWx0U0FMVHNhbHRTQUxUc2FsdFNBTFRzYWx0$jAUR9Mbll8asYxXY8DYu"
                            "Il88UBSVuiO4aMAFF03E7nERW1n55gzZUy+jPg91rv4wIlxYOhhs2CvU2uqXJKPTuA==";
/* RFC 7677's user/pencil as a SCRAM entry. */
static const char SCRAM_USER[] = "user:$scram-sha-256$4096$W22ZaJ0SNY7soEsUEjb6gQ==$"
                                 "WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=$"
                                 "wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=";

static void test_parse_and_verify(void **st)
{
    (void)st;
    char text[1024];
    snprintf(text, sizeof(text), "# users\n\n%s\r\n%s", ALICE, SCRAM_USER);
    ep_cfg_errs errs = {0};
    ep_passwd *pw = NULL;
    assert_int_equal(ep_passwd_parse("t.pw", text, strlen(text), &pw, &errs), EP_EOK);
    assert_int_equal(errs.nerr, 0);
    assert_int_equal(ep_passwd_count(pw), 2);
    const ep_passwd_entry *e = ep_passwd_lookup(pw, "alice", 5);
    assert_non_null(e);
    assert_int_equal(e->kind, EP_PASSWD_PBKDF2_SHA512);
    assert_int_equal(e->iterations, 4096);
    assert_int_equal(e->salt_len, 36);
    assert_null(ep_passwd_lookup(pw, "alic", 4));
    assert_null(ep_passwd_lookup(pw, "alicee", 6));
    assert_int_equal(ep_passwd_verify(pw, "alice", 5, "passwordPASSWORDpassword", 24), EP_EOK);
    assert_int_equal(ep_passwd_verify(pw, "alice", 5, "passwordPASSWORDpassworD", 24),
                     EP_ESECURITY);
    assert_int_equal(ep_passwd_verify(pw, "alice", 5, "", 0), EP_ESECURITY);
    assert_int_equal(ep_passwd_verify(pw, "user", 4, "pencil", 6), EP_EOK);
    assert_int_equal(ep_passwd_verify(pw, "user", 4, "pencil!", 7), EP_ESECURITY);
    assert_int_equal(ep_passwd_verify(pw, "bob", 3, "x", 1), EP_ENOTFOUND);
    assert_int_equal(ep_passwd_verify(pw, "bob", 3, "x", EP_PASSWD_MAX_PASSWORD + 1), EP_ETOOBIG);
    ep_passwd *pw2 = NULL;
    assert_int_equal(ep_passwd_parse("t.pw", text, strlen(text), &pw2, &errs), EP_EOK);
    assert_true(ep_passwd_generation(pw2) != ep_passwd_generation(pw));
    ep_passwd_unref(pw2);
    ep_passwd_unref(pw);
    ep_cfg_errs_fini(&errs);
}

static void expect_errors(const char *text, const char *const *want, size_t n)
{
    ep_cfg_errs errs = {0};
    ep_passwd *pw = NULL;
    assert_int_equal(ep_passwd_parse("bad.pw", text, strlen(text), &pw, &errs), EP_ECONFIG);
    assert_null(pw);
    for (size_t i = 0; i < errs.count; i++)
        print_message("  %s\n", errs.items[i].text);
    assert_int_equal(errs.nerr, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(errs.items[i].text, want[i]);
    ep_cfg_errs_fini(&errs);
}

static void test_parse_errors(void **st)
{
    (void)st;
    static const char text[] = "nocolon\n"
                               ":$pbkdf2-sha512$1$AAAAAAAAAAA=$AA==\n"
                               "u1:$md5$x\n"
                               "u2:$pbkdf2-sha512$01$AAAAAAAAAAA=$AA==\n"
                               "u3:$pbkdf2-sha512$1000$AAAA$AA==\n"
                               "u4:$pbkdf2-sha512$1000$AAAAAAAAAAA=$AA==\n"
                               "u5:$pbkdf2-sha512$1000$AAAAAAAAAAA*$AA==\n"
                               "u6:$scram-sha-256$4096$AAAAAAAAAAA=$AA==\n"
                               "u7:$pbkdf2-sha512$100000001$AAAAAAAAAAA=$AA==\n"
                               "u\x01:$pbkdf2-sha512$1$AAAAAAAAAAA=$AA==\n";
    static const char *const want[] = {
        "bad.pw:1:1: expected USER:$SCHEME$...",
        "bad.pw:2:1: empty user name",
        "bad.pw:3:4: unknown hash scheme (expected $pbkdf2-sha512$ or $scram-sha-256$)",
        "bad.pw:4:19: iterations: expected an integer from 1 to 100000000",
        "bad.pw:5:24: salt: expected 8 to 64 bytes",
        "bad.pw:6:37: hash: expected 64 bytes",
        "bad.pw:7:24: salt: invalid base64",
        "bad.pw:8:4: expected $scram-sha-256$ITERATIONS$SALT$STOREDKEY$SERVERKEY",
        "bad.pw:9:19: iterations: expected an integer from 1 to 100000000",
        "bad.pw:10:1: user name too long or contains control characters",
    };
    expect_errors(text, want, sizeof(want) / sizeof(want[0]));

    char dup[1024];
    snprintf(dup, sizeof(dup), "%s\n%s\n", ALICE, ALICE);
    static const char *const want_dup[] = {"bad.pw: user 'alice' appears more than once"};
    expect_errors(dup, want_dup, 1);
}

static void test_make_format_roundtrip(void **st)
{
    (void)st;
    ep_passwd_entry e;
    char line[EP_PASSWD_MAX_LINE + 1], text[2 * EP_PASSWD_MAX_LINE];
    assert_int_equal(ep_passwd_entry_make("bob", "s3cret", 6, EP_PASSWD_PBKDF2_SHA512, 1000, &e),
                     EP_EOK);
    assert_int_equal(ep_passwd_entry_format(&e, line, sizeof(line)), EP_EOK);
    assert_true(strncmp(line, "bob:$pbkdf2-sha512$1000$", 24) == 0);
    snprintf(text, sizeof(text), "%s\n", line);
    assert_int_equal(ep_passwd_entry_make("carol", "pw", 2, EP_PASSWD_SCRAM_SHA256, 0, &e), EP_EOK);
    assert_int_equal(e.iterations, EP_PASSWD_SCRAM_DEFAULT_ITERATIONS);
    assert_int_equal(ep_passwd_entry_format(&e, line, sizeof(line)), EP_EOK);
    strcat(text, line);
    char small[20];
    assert_int_equal(ep_passwd_entry_format(&e, small, sizeof(small)), EP_ETOOBIG);
    assert_string_equal(small, "");

    ep_cfg_errs errs = {0};
    ep_passwd *pw = NULL;
    assert_int_equal(ep_passwd_parse("rt", text, strlen(text), &pw, &errs), EP_EOK);
    assert_int_equal(ep_passwd_verify(pw, "bob", 3, "s3cret", 6), EP_EOK);
    assert_int_equal(ep_passwd_verify(pw, "bob", 3, "s3cre", 5), EP_ESECURITY);
    assert_int_equal(ep_passwd_verify(pw, "carol", 5, "pw", 2), EP_EOK);
    assert_int_equal(ep_passwd_verify(pw, "carol", 5, "pW", 2), EP_ESECURITY);
    /* formatting a parsed entry gives the same line back */
    char again[EP_PASSWD_MAX_LINE + 1];
    assert_int_equal(ep_passwd_entry_format(ep_passwd_lookup(pw, "carol", 5), again, sizeof(again)),
                     EP_EOK);
    assert_string_equal(again, line);
    ep_passwd_unref(pw);
    ep_cfg_errs_fini(&errs);

    assert_int_equal(ep_passwd_entry_make("a:b", "x", 1, EP_PASSWD_PBKDF2_SHA512, 1000, &e),
                     EP_EINVAL);
    assert_int_equal(ep_passwd_entry_make("", "x", 1, EP_PASSWD_PBKDF2_SHA512, 1000, &e),
                     EP_EINVAL);
    assert_int_equal(ep_passwd_entry_make("a", "x", 1, EP_PASSWD_PBKDF2_SHA512,
                                          EP_PASSWD_MAX_ITERATIONS + 1, &e),
                     EP_EINVAL);
}

static char dir[64];

static int setup_dir(void **st)
{
    (void)st;
    snprintf(dir, sizeof(dir), "/tmp/ep_passwd_test.XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}

static int teardown_dir(void **st)
{
    (void)st;
    char cmd[128];
    snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static char *slurp(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL)
        return NULL;
    static char buf[16384];
    size_t n = fread(buf, 1, sizeof(buf) - 1, f);
    buf[n] = '\0';
    fclose(f);
    return buf;
}

static void spit(const char *path, const char *text)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void test_file_update(void **st)
{
    (void)st;
    char path[128];
    snprintf(path, sizeof(path), "%s/users.pw", dir);
    ep_cfg_errs errs = {0};
    ep_passwd_entry e;
    assert_int_equal(ep_passwd_file_update(path, "nobody", NULL, &errs), EP_ENOTFOUND);
    assert_int_equal(ep_passwd_entry_make("bob", "one", 3, EP_PASSWD_PBKDF2_SHA512, 1000, &e),
                     EP_EOK);
    assert_int_equal(ep_passwd_file_update(path, "bob", &e, &errs), EP_EOK);
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);

    /* comments and other users survive; bob is replaced in place */
    static char text[17000];
    snprintf(text, sizeof(text), "# head\n%s# mid\n%s", slurp(path), ALICE); /* no final \n */
    spit(path, text);
    chmod(path, 0644);
    assert_int_equal(ep_passwd_entry_make("bob", "two", 3, EP_PASSWD_PBKDF2_SHA512, 1000, &e),
                     EP_EOK);
    assert_int_equal(ep_passwd_file_update(path, "bob", &e, &errs), EP_EOK);
    assert_int_equal(stat(path, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0600);
    char *now = slurp(path);
    assert_true(strncmp(now, "# head\nbob:$pbkdf2-sha512$1000$", 31) == 0);
    assert_non_null(strstr(now, "\n# mid\nalice:"));
    assert_int_equal(now[strlen(now) - 1], '\n');

    ep_passwd *pw = NULL;
    assert_int_equal(ep_passwd_load(path, &pw, &errs), EP_EOK);
    assert_int_equal(ep_passwd_verify(pw, "bob", 3, "two", 3), EP_EOK);
    assert_int_equal(ep_passwd_verify(pw, "bob", 3, "one", 3), EP_ESECURITY);
    ep_passwd_unref(pw);

    assert_int_equal(ep_passwd_file_update(path, "bob", NULL, &errs), EP_EOK);
    assert_int_equal(ep_passwd_file_update(path, "bob", NULL, &errs), EP_ENOTFOUND);
    now = slurp(path);
    assert_null(strstr(now, "bob:"));
    assert_non_null(strstr(now, "# head\n# mid\nalice:"));
    assert_int_equal(errs.nerr, 0);

    /* a broken file is never rewritten */
    spit(path, "garbage\n");
    assert_int_equal(ep_passwd_file_update(path, "bob", &e, &errs), EP_ECONFIG);
    assert_string_equal(slurp(path), "garbage\n");
    ep_cfg_errs_fini(&errs);
}

static void test_reload(void **st)
{
    (void)st;
    char path[128];
    snprintf(path, sizeof(path), "%s/reload.pw", dir);
    spit(path, ALICE);
    ep_cfg_errs errs = {0};
    ep_passwd_file *f = NULL;
    assert_int_equal(ep_passwd_file_open(path, &f, &errs), EP_EOK);
    ep_passwd *a = ep_passwd_file_get(f);
    bool changed = true;
    assert_int_equal(ep_passwd_file_reload(f, false, &changed, &errs), EP_EOK);
    assert_false(changed);

    char text[1024];
    snprintf(text, sizeof(text), "%s\n%s\n", ALICE, SCRAM_USER);
    spit(path, text);
    assert_int_equal(ep_passwd_file_reload(f, false, &changed, &errs), EP_EOK);
    assert_true(changed);
    ep_passwd *b = ep_passwd_file_get(f);
    assert_int_equal(ep_passwd_count(a), 1); /* the old snapshot is intact */
    assert_int_equal(ep_passwd_count(b), 2);

    spit(path, "broken line\n");
    assert_int_equal(ep_passwd_file_reload(f, true, &changed, &errs), EP_ECONFIG);
    assert_false(changed);
    assert_int_equal(errs.nerr, 1);
    assert_string_equal(errs.items[0].text + strlen(path), ":1:1: expected USER:$SCHEME$...");
    ep_passwd *c = ep_passwd_file_get(f);
    assert_ptr_equal(c, b); /* kept */
    ep_passwd_unref(a);
    ep_passwd_unref(b);
    ep_passwd_unref(c);
    ep_passwd_file_free(f);

    ep_cfg_errs_fini(&errs);
    assert_int_equal(ep_passwd_file_open("/nonexistent/x.pw", &f, &errs), EP_EIO);
    assert_string_equal(errs.items[0].text,
                        "/nonexistent/x.pw: cannot read: No such file or directory");
    ep_cfg_errs_fini(&errs);
}

static void test_user_valid(void **st)
{
    (void)st;
    assert_true(ep_passwd_user_valid("a", 1));
    assert_true(ep_passwd_user_valid("müller@site", strlen("müller@site")));
    assert_false(ep_passwd_user_valid("", 0));
    assert_false(ep_passwd_user_valid("a:b", 3));
    assert_false(ep_passwd_user_valid("a\nb", 3));
    char big[EP_PASSWD_MAX_USER + 2];
    memset(big, 'u', sizeof(big));
    assert_true(ep_passwd_user_valid(big, EP_PASSWD_MAX_USER));
    assert_false(ep_passwd_user_valid(big, EP_PASSWD_MAX_USER + 1));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pbkdf2_sha512_vectors),
        cmocka_unit_test(test_b64),
        cmocka_unit_test(test_parse_and_verify),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_make_format_roundtrip),
        cmocka_unit_test(test_file_update),
        cmocka_unit_test(test_reload),
        cmocka_unit_test(test_user_valid),
    };
    return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
