/* authz_test.c - authorization rules: a matrix of principals x actions with
 * every substitution, subscription coverage, wildcard-injection attempts,
 * file errors with locations, and hot reload (old sessions keep their
 * rules; a bad file keeps the current set). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "svc/auth/authz.h"

static const char RULES[] =
    "cache: Enabled\n"
    "rules:\n"
    "  - principals:\n"
    "      attributes:\n"
    "        - {building: b1, role: sensor}\n"
    "        - {building: b2, role: sensor}\n"
    "    brokerResources:\n"
    "      - method: Connect\n"
    "        clientIds: [\"{principal.attributes.building}-*\"]\n"
    "      - method: Publish\n"
    "        topics:\n"
    "          - \"sensors/{principal.attributes.building}/{principal.clientId}/telemetry/#\"\n"
    "      - method: Subscribe\n"
    "        topics: [\"commands/{principal.clientId}/+\"]\n"
    "  - principals:\n"
    "      usernames: [operator]\n"
    "    brokerResources:\n"
    "      - method: Connect\n"
    "      - method: Subscribe\n"
    "        topics: [\"sensors/#\", \"users/{principal.username}/#\"]\n"
    "      - method: Publish\n"
    "        topics: [\"commands/+/set\"]\n"
    "  - principals:\n"
    "      clientIds: [historian]\n"
    "    brokerResources:\n"
    "      - method: Subscribe\n"
    "        topics: [\"sensors/+/+/telemetry/#\"]\n"
    "    stateStoreResources:\n"
    "      - method: ReadWrite\n"
    "        keyType: Pattern\n"
    "        keys: [\"hist:*\"]\n";

static ep_authz_rules *parse_ok(const char *text)
{
    ep_cfg_errs errs = {0};
    ep_authz_rules *r = NULL;
    ep_err err = ep_authz_rules_parse("rules.yaml", text, strlen(text), &r, &errs);
    for (size_t i = 0; i < errs.count; i++)
        print_message("%s\n", errs.items[i].text);
    assert_int_equal(err, EP_EOK);
    ep_cfg_errs_fini(&errs);
    return r;
}

typedef struct row {
    const char *cid, *user, *building, *role;
    ep_authz_action a;
    const char *topic;
    bool want;
} row;

static void test_matrix(void **st)
{
    (void)st;
    ep_authz_rules *r = parse_ok(RULES);
    assert_int_equal(ep_authz_rules_count(r), 3);
    static const row rows[] = {
        /* sensors by attributes */
        {"b1-t1", NULL, "b1", "sensor", EP_AUTHZ_CONNECT, NULL, true},
        {"b2-t1", NULL, "b1", "sensor", EP_AUTHZ_CONNECT, NULL, false},  /* wrong prefix */
        {"b1-t1", NULL, "b1", "gateway", EP_AUTHZ_CONNECT, NULL, false}, /* role mismatch */
        {"b1-t1", NULL, "b3", "sensor", EP_AUTHZ_CONNECT, NULL, false},
        {"b1-", NULL, "b1", "sensor", EP_AUTHZ_CONNECT, NULL, true}, /* '*' matches empty */
        {"b1-t1", NULL, "b1", "sensor", EP_AUTHZ_PUBLISH, "sensors/b1/b1-t1/telemetry", true},
        {"b1-t1", NULL, "b1", "sensor", EP_AUTHZ_PUBLISH, "sensors/b1/b1-t1/telemetry/x/y", true},
        {"b1-t1", NULL, "b1", "sensor", EP_AUTHZ_PUBLISH, "sensors/b1/b1-t2/telemetry", false},
        {"b1-t1", NULL, "b1", "sensor", EP_AUTHZ_PUBLISH, "sensors/b2/b1-t1/telemetry", false},
        {"b2-x", NULL, "b2", "sensor", EP_AUTHZ_PUBLISH, "sensors/b2/b2-x/telemetry", true},
        {"b1-t1", NULL, "b1", "sensor", EP_AUTHZ_SUBSCRIBE, "commands/b1-t1/reboot", true},
        {"b1-t1", NULL, "b1", "sensor", EP_AUTHZ_SUBSCRIBE, "commands/b1-t1/+", true},
        {"b1-t1", NULL, "b1", "sensor", EP_AUTHZ_SUBSCRIBE, "commands/b1-t1/#", false},
        {"b1-t1", NULL, "b1", "sensor", EP_AUTHZ_SUBSCRIBE, "commands/+/reboot", false},
        {"b1-t1", NULL, "b1", "sensor", EP_AUTHZ_SUBSCRIBE, "$share/g/commands/b1-t1/x", true},
        {"b1-t1", NULL, "b1", "sensor", EP_AUTHZ_SUBSCRIBE, "commands/b1-t1", false},
        {"b1-t1", NULL, "b1", "sensor", EP_AUTHZ_PUBLISH, "commands/b1-t1/x", false},
        /* operator by username */
        {"anything", "operator", NULL, NULL, EP_AUTHZ_CONNECT, NULL, true},
        {"anything", "operator", NULL, NULL, EP_AUTHZ_SUBSCRIBE, "sensors/#", true},
        {"anything", "operator", NULL, NULL, EP_AUTHZ_SUBSCRIBE, "sensors/+/x", true},
        {"anything", "operator", NULL, NULL, EP_AUTHZ_SUBSCRIBE, "#", false},
        {"anything", "operator", NULL, NULL, EP_AUTHZ_SUBSCRIBE, "users/operator/inbox", true},
        {"anything", "operator", NULL, NULL, EP_AUTHZ_SUBSCRIBE, "users/other/inbox", false},
        {"anything", "operator", NULL, NULL, EP_AUTHZ_PUBLISH, "commands/b1-t1/set", true},
        {"anything", "operator", NULL, NULL, EP_AUTHZ_PUBLISH, "commands/b1-t1/get", false},
        {"anything", "operator2", NULL, NULL, EP_AUTHZ_CONNECT, NULL, false},
        /* historian by client id: subscribe only, no connect grant */
        {"historian", NULL, NULL, NULL, EP_AUTHZ_CONNECT, NULL, false},
        {"historian", NULL, NULL, NULL, EP_AUTHZ_SUBSCRIBE, "sensors/b1/+/telemetry/#", true},
        {"historian", NULL, NULL, NULL, EP_AUTHZ_SUBSCRIBE, "sensors/b1/t/telemetry", true},
        {"historian", NULL, NULL, NULL, EP_AUTHZ_SUBSCRIBE, "sensors/#", false},
        {"historian", NULL, NULL, NULL, EP_AUTHZ_SUBSCRIBE, "sensors/+/+/+/#", false},
        {"historian", NULL, NULL, NULL, EP_AUTHZ_PUBLISH, "sensors/b1/x/telemetry", false},
        /* nobody */
        {"stranger", NULL, NULL, NULL, EP_AUTHZ_CONNECT, NULL, false},
        {"stranger", NULL, NULL, NULL, EP_AUTHZ_PUBLISH, "a", false},
    };
    for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
        const row *w = &rows[i];
        ep_authz_attr attrs[2] = {{"building", w->building}, {"role", w->role}};
        ep_authz_principal p = {.client_id = w->cid,
                                .username = w->user,
                                .attrs = attrs,
                                .n_attrs = w->building ? 2 : 0};
        bool got = ep_authz_check(r, &p, w->a, w->topic);
        if (got != w->want)
            fail_msg("row %zu: %s/%s action %d topic %s: got %d", i, w->cid,
                     w->user ? w->user : "-", (int)w->a, w->topic ? w->topic : "-", got);
    }
    ep_authz_rules_unref(r);
}

/* Substituted values are literal: a client id or attribute holding
 * wildcards or separators grants nothing instead of widening the filter. */
static void test_injection(void **st)
{
    (void)st;
    ep_authz_rules *r = parse_ok("rules:\n"
                                 "  - principals: {usernames: [u]}\n"
                                 "    brokerResources:\n"
                                 "      - method: Publish\n"
                                 "        topics: [\"dev/{principal.clientId}/out\"]\n"
                                 "      - method: Subscribe\n"
                                 "        topics: [\"in/{principal.attributes.zone}\"]\n"
                                 "      - method: Connect\n"
                                 "        clientIds: [\"{principal.username}*\"]\n");
    static const char *const evil[] = {"#", "+", "a/b", "", "a+", "x#"};
    for (size_t i = 0; i < sizeof(evil) / sizeof(evil[0]); i++) {
        ep_authz_attr a = {"zone", evil[i]};
        ep_authz_principal p = {.client_id = evil[i], .username = "u", .attrs = &a, .n_attrs = 1};
        ep_authz_session *s = NULL;
        assert_int_equal(ep_authz_session_new(r, &p, &s), EP_EOK);
        assert_false(ep_authz_session_allows(s, EP_AUTHZ_PUBLISH, "dev/x/out", 9));
        assert_false(ep_authz_session_allows(s, EP_AUTHZ_PUBLISH, "dev/a/b/out", 11));
        assert_false(ep_authz_session_allows(s, EP_AUTHZ_SUBSCRIBE, "in/#", 4));
        assert_false(ep_authz_session_allows(s, EP_AUTHZ_SUBSCRIBE, "in/x", 4));
        ep_authz_session_free(s);
    }
    ep_authz_principal ok = {.client_id = "c1", .username = "u"};
    assert_true(ep_authz_check(r, &ok, EP_AUTHZ_PUBLISH, "dev/c1/out"));
    assert_false(ep_authz_check(r, &ok, EP_AUTHZ_SUBSCRIBE, "in/x")); /* no attribute */
    /* in a clientIds pattern only the rule's own '*' is a wildcard */
    ep_authz_principal star = {.client_id = "u-1", .username = "u"};
    assert_true(ep_authz_check(r, &star, EP_AUTHZ_CONNECT, NULL));
    ep_authz_rules *r2 = parse_ok("rules:\n"
                                  "  - principals: {usernames: [\"*\"]}\n"
                                  "    brokerResources:\n"
                                  "      - method: Connect\n"
                                  "        clientIds: [\"{principal.username}\"]\n");
    ep_authz_principal lit = {.client_id = "anything", .username = "*"};
    assert_false(ep_authz_check(r2, &lit, EP_AUTHZ_CONNECT, NULL));
    lit.client_id = "*";
    assert_true(ep_authz_check(r2, &lit, EP_AUTHZ_CONNECT, NULL));
    ep_authz_rules_unref(r2);
    ep_authz_rules_unref(r);
}

static void test_defaults_and_dollar(void **st)
{
    (void)st;
    ep_authz_principal p = {.client_id = "c"};
    /* no rules: authorization off */
    assert_true(ep_authz_check(NULL, &p, EP_AUTHZ_CONNECT, NULL));
    assert_true(ep_authz_check(NULL, &p, EP_AUTHZ_PUBLISH, "x"));
    /* empty rule list: deny everything */
    ep_authz_rules *r = parse_ok("rules: []\n");
    assert_false(ep_authz_check(r, &p, EP_AUTHZ_CONNECT, NULL));
    assert_false(ep_authz_check(r, &p, EP_AUTHZ_SUBSCRIBE, "x"));
    ep_authz_rules_unref(r);
    /* '#' grants do not reach $ topics; an explicit $SYS grant does */
    r = parse_ok("rules:\n"
                 "  - principals: {clientIds: [c]}\n"
                 "    brokerResources:\n"
                 "      - {method: Subscribe, topics: [\"#\", \"$SYS/broker/+\"]}\n"
                 "      - {method: Publish, topics: [\"+/x\"]}\n");
    assert_true(ep_authz_check(r, &p, EP_AUTHZ_SUBSCRIBE, "a/b"));
    assert_true(ep_authz_check(r, &p, EP_AUTHZ_SUBSCRIBE, "#"));
    assert_false(ep_authz_check(r, &p, EP_AUTHZ_SUBSCRIBE, "$SYS/#"));
    assert_true(ep_authz_check(r, &p, EP_AUTHZ_SUBSCRIBE, "$SYS/broker/uptime"));
    assert_false(ep_authz_check(r, &p, EP_AUTHZ_PUBLISH, "$x/x"));
    assert_true(ep_authz_check(r, &p, EP_AUTHZ_PUBLISH, "a/x"));
    assert_false(ep_authz_check(r, &p, EP_AUTHZ_SUBSCRIBE, "a/#/b")); /* invalid filter */
    assert_false(ep_authz_check(r, &p, EP_AUTHZ_SUBSCRIBE, ""));
    ep_authz_rules_unref(r);
}

static void expect_errors(const char *text, const char *const *want, size_t n)
{
    ep_cfg_errs errs = {0};
    ep_authz_rules *r = NULL;
    assert_int_equal(ep_authz_rules_parse("rules.yaml", text, strlen(text), &r, &errs), EP_ECONFIG);
    assert_null(r);
    for (size_t i = 0; i < errs.count; i++)
        print_message("  %s\n", errs.items[i].text);
    assert_int_equal(errs.nerr, n);
    for (size_t i = 0; i < n; i++)
        assert_string_equal(errs.items[i].text, want[i]);
    ep_cfg_errs_fini(&errs);
}

static void test_errors(void **st)
{
    (void)st;
    static const char text[] =
        "cache: Sometimes\n"
        "rulez: []\n"
        "rules:\n"
        "  - principals:\n"
        "      clientIds: [a, \"\"]\n"
        "      groups: [x]\n"
        "    brokerResources:\n"
        "      - method: Publish\n"
        "        topics: [\"a/{principal.clientid}\", \"a/#/b\", \"x/{principal.username\"]\n"
        "      - method: Subscribe\n"
        "      - method: Connect\n"
        "        clientIds: [\"a*b\"]\n"
        "        topics: [x]\n"
        "      - method: Conect\n"
        "  - principals: {}\n"
        "    brokerResources: []\n"
        "  - brokerResources: []\n"
        "    stateStoreResources:\n"
        "      - {method: Read, keyType: Glob, keys: [a]}\n";
    static const char *const want[] = {
        "rules.yaml:2:8: rulez: unknown key (expected cache or rules)",
        "rules.yaml:1:8: cache: expected Enabled or Disabled",
        "rules.yaml:6:15: rules[0].principals.groups: unknown key (expected clientIds, usernames "
        "or attributes)",
        "rules.yaml:5:22: rules[0].principals.clientIds[1]: expected a non-empty string",
        "rules.yaml:9:18: rules[0].brokerResources[0].topics[0]: unknown variable "
        "'{principal.clientid}' (expected {principal.clientId}, {principal.username} or "
        "{principal.attributes.NAME})",
        "rules.yaml:9:44: rules[0].brokerResources[0].topics[1]: not a valid MQTT topic filter "
        "(or a $share/ filter)",
        "rules.yaml:9:53: rules[0].brokerResources[0].topics[2]: unclosed '{'",
        "rules.yaml:10:9: rules[0].brokerResources[1]: Subscribe needs at least one topic",
        "rules.yaml:13:17: rules[0].brokerResources[2].topics: topics apply to Publish and "
        "Subscribe, not Connect",
        "rules.yaml:12:21: rules[0].brokerResources[2].clientIds[0]: only a trailing '*' is "
        "supported",
        "rules.yaml:14:17: rules[0].brokerResources[3].method: expected one of "
        "Connect|Publish|Subscribe, got \"Conect\"; did you mean \"Connect\"?",
        "rules.yaml:15:17: rules[1].principals: no principal given: the rule would never apply",
        "rules.yaml:17:5: rules[2]: missing 'principals'",
        "rules.yaml:19:33: rules[2].stateStoreResources[0].keyType: expected one of "
        "Pattern|String|Binary, got \"Glob\"",
    };
    expect_errors(text, want, sizeof(want) / sizeof(want[0]));
}

static char path[64];

static void write_rules(const char *text)
{
    char tmp[80];
    snprintf(tmp, sizeof(tmp), "%s.new", path);
    FILE *f = fopen(tmp, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
    assert_int_equal(rename(tmp, path), 0);
}

static void test_reload(void **st)
{
    (void)st;
    snprintf(path, sizeof(path), "/tmp/ep_authz_test.%ld.yaml", (long)getpid());
    write_rules("rules:\n"
                "  - principals: {clientIds: [c]}\n"
                "    brokerResources: [{method: Publish, topics: [v1/#]}]\n");
    ep_authz *az = NULL;
    assert_int_equal(ep_authz_new(&az), EP_EOK);
    assert_int_equal(ep_authz_generation(az), 0);
    assert_null(ep_authz_get(az));
    ep_cfg_errs errs = {0};
    assert_int_equal(ep_authz_load(az, path, &errs), EP_EOK);
    uint64_t g1 = ep_authz_generation(az);
    assert_true(g1 != 0);

    ep_authz_principal p = {.client_id = "c"};
    ep_authz_rules *r1 = ep_authz_get(az);
    ep_authz_session *s1 = NULL;
    assert_int_equal(ep_authz_session_new(r1, &p, &s1), EP_EOK);
    ep_authz_rules_unref(r1); /* the session holds its own reference */
    assert_int_equal(ep_authz_session_generation(s1), g1);
    assert_true(ep_authz_session_allows(s1, EP_AUTHZ_PUBLISH, "v1/a", 4));

    write_rules("rules:\n"
                "  - principals: {clientIds: [c]}\n"
                "    brokerResources: [{method: Publish, topics: [v2/#]}]\n");
    assert_int_equal(ep_authz_load(az, path, &errs), EP_EOK);
    uint64_t g2 = ep_authz_generation(az);
    assert_true(g2 != g1);
    /* the old session still answers from its rules; the broker sees the
     * generation change and recompiles */
    assert_true(ep_authz_session_allows(s1, EP_AUTHZ_PUBLISH, "v1/a", 4));
    assert_true(ep_authz_session_generation(s1) != ep_authz_generation(az));
    ep_authz_rules *r2 = ep_authz_get(az);
    ep_authz_session *s2 = NULL;
    assert_int_equal(ep_authz_session_new(r2, &p, &s2), EP_EOK);
    ep_authz_rules_unref(r2);
    assert_false(ep_authz_session_allows(s2, EP_AUTHZ_PUBLISH, "v1/a", 4));
    assert_true(ep_authz_session_allows(s2, EP_AUTHZ_PUBLISH, "v2/a", 4));

    /* a bad file keeps the current rules and says where it is wrong */
    write_rules("rules:\n"
                "  - principals: {clientIds: [c]}\n"
                "    brokerResources: [{method: Publish, topics: [\"v3/{x}\"]}]\n");
    assert_int_equal(ep_authz_load(az, path, &errs), EP_ECONFIG);
    assert_int_equal(ep_authz_generation(az), g2);
    assert_int_equal(errs.nerr, 1);
    print_message("%s\n", errs.items[0].text);
    assert_non_null(strstr(errs.items[0].text, ":3:50: rules[0].brokerResources[0].topics[0]: "
                                               "unknown variable '{x}'"));
    ep_cfg_errs_fini(&errs);

    ep_authz_session_free(s1);
    ep_authz_session_free(s2);
    ep_authz_set(az, NULL);
    assert_int_equal(ep_authz_generation(az), 0);
    ep_authz_free(az);
    unlink(path);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matrix),
        cmocka_unit_test(test_injection),
        cmocka_unit_test(test_defaults_and_dollar),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_reload),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
