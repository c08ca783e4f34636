/*
 * topic_test.c - topic name/filter validation, matching table (spec section
 * 4.7 examples included), $-topics, shared subscriptions and level counts.
 */
#include "codec/mqtt/testutil.h"

#include <stdlib.h>

static ep_mqtt_slice cs(const char *s) { return ep_mqtt_slice_make(s, strlen(s)); }

static const struct {
    const char *filter, *topic;
    bool match;
} matches[] = {
    /* 4.7.1.2 multi-level wildcard examples */
    {"sport/tennis/player1/#", "sport/tennis/player1", true},
    {"sport/tennis/player1/#", "sport/tennis/player1/ranking", true},
    {"sport/tennis/player1/#", "sport/tennis/player1/score/wimbledon", true},
    {"sport/#", "sport", true},
    {"#", "sport/tennis", true},
    {"#", "/", true},
    {"#", "a", true},
    /* 4.7.1.3 single-level wildcard examples */
    {"sport/tennis/+", "sport/tennis/player1", true},
    {"sport/tennis/+", "sport/tennis/player2", true},
    {"sport/tennis/+", "sport/tennis/player1/ranking", false},
    {"sport/+", "sport", false},
    {"sport/+", "sport/", true},
    {"+/+", "/finance", true},
    {"/+", "/finance", true},
    {"+", "/finance", false},
    {"+", "a", true},
    {"+/tennis/#", "sport/tennis/player1", true},
    {"+/tennis/#", "sport/tennis", true},
    {"+/tennis/#", "sport/golf", false},
    /* 4.7.2 topics beginning with $ */
    {"#", "$SYS/broker", false},
    {"+/monitor/Clients", "$SYS/monitor/Clients", false},
    {"$SYS/#", "$SYS/monitor/Clients", true},
    {"$SYS/monitor/+", "$SYS/monitor/Clients", true},
    {"$SYS/#", "$SYS", true},
    {"a/$b", "a/$b", true},
    {"a/+", "a/$b", true}, /* only the first level is special */
    /* plain and edge cases */
    {"a/b/c", "a/b/c", true},
    {"a/b/c", "a/b/cd", false},
    {"a/b/cd", "a/b/c", false},
    {"a/b", "a/b/c", false},
    {"a/b/c", "a/b", false},
    {"a/", "a/", true},
    {"a/", "a", false},
    {"a", "a/", false},
    {"a//b", "a//b", true},
    {"a/+/b", "a//b", true},
    {"a/+/+", "a/x/", true},
    {"+/+/+", "a/b", false},
    {"a/#", "a", true},
    {"a/#", "ab", false},
    {"a/#", "a/", true},
    {"/#", "/", true},
    {"/#", "a", false},
    {"A/b", "a/b", false}, /* case-sensitive */
    {"caf\xc3\xa9/+", "caf\xc3\xa9/x", true},
};

/* With EP_MQTT_TOPIC_CORPUS_DIR set, each row becomes a fuzz seed for
 * fuzz_mqtt_topic: [filter length][filter][topic]. */
static void dump_corpus(size_t idx, const char *filter, const char *topic)
{
    const char *dir = getenv("EP_MQTT_TOPIC_CORPUS_DIR");
    if (dir == NULL)
        return;
    char path[512];
    snprintf(path, sizeof(path), "%s/match-%03zu", dir, idx);
    FILE *f = fopen(path, "wb");
    if (f == NULL)
        return;
    size_t fl = strlen(filter), tl = strlen(topic);
    /* byte 0 is taken modulo the input size by the harness */
    uint8_t k = (uint8_t)fl;
    size_t total = 1 + fl + tl;
    while (k % total != fl)
        k = (uint8_t)(k + 1);
    fwrite(&k, 1, 1, f);
    fwrite(filter, 1, fl, f);
    fwrite(topic, 1, tl, f);
    fclose(f);
}

static void test_match_table(void **state)
{
    (void)state;
    int failures = 0;
    for (size_t i = 0; i < sizeof(matches) / sizeof(matches[0]); i++) {
        dump_corpus(i, matches[i].filter, matches[i].topic);
        bool got = ep_mqtt_topic_match(cs(matches[i].filter), cs(matches[i].topic));
        if (got != matches[i].match) {
            fprintf(stderr, "FAIL match(\"%s\", \"%s\") = %d\n", matches[i].filter,
                    matches[i].topic, got);
            failures++;
        }
        assert_true(ep_mqtt_topic_filter_valid(cs(matches[i].filter)));
    }
    assert_int_equal(failures, 0);
}

static void test_filter_valid(void **state)
{
    (void)state;
    const char *ok[] = {"#",      "+",          "/",           "a",
                        "a/b",    "a/+",        "+/+",         "a/#",
                        "+/#",    "/#",         "//",          "a//b",
                        "$SYS/#", "$share/g/a", "$share/g/#",  "$share/group-1/+/x",
                        "$share", "$sharex/a",  "$shared/g/a", "a b/c"};
    const char *bad[] = {"",          "a#",         "#a",         "a/#/b",        "a/b#",
                         "##",        "a+",         "+a",         "a/+b",         "a/b+",
                         "++",        "#/",         "$share/",    "$share//a",    "$share/g",
                         "$share/g/", "$share/+/a", "$share/#/a", "$share/a+b/c", "$share/g/a#"};
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
        if (!ep_mqtt_topic_filter_valid(cs(ok[i])))
            fail_msg("filter \"%s\" should be valid", ok[i]);
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
        if (ep_mqtt_topic_filter_valid(cs(bad[i])))
            fail_msg("filter \"%s\" should be invalid", bad[i]);
    /* UTF-8 and length rules apply to filters too */
    assert_false(ep_mqtt_topic_filter_valid(S("a/\xff")));
    assert_false(ep_mqtt_topic_filter_valid(S("a\x00")));
    char *big = malloc(65536);
    assert_non_null(big);
    memset(big, 'a', 65536);
    assert_true(ep_mqtt_topic_filter_valid(ep_mqtt_slice_make(big, 65535)));
    assert_false(ep_mqtt_topic_filter_valid(ep_mqtt_slice_make(big, 65536)));
    assert_true(ep_mqtt_topic_name_valid(ep_mqtt_slice_make(big, 65535)));
    assert_false(ep_mqtt_topic_name_valid(ep_mqtt_slice_make(big, 65536)));
    free(big);
}

static void test_name_valid(void **state)
{
    (void)state;
    assert_true(ep_mqtt_topic_name_valid(S("a")));
    assert_true(ep_mqtt_topic_name_valid(S("/")));
    assert_true(ep_mqtt_topic_name_valid(S("$SYS/x")));
    assert_true(ep_mqtt_topic_name_valid(S("a b/\xe2\x82\xac")));
    assert_false(ep_mqtt_topic_name_valid(S("")));
    assert_false(ep_mqtt_topic_name_valid(S("a/+")));
    assert_false(ep_mqtt_topic_name_valid(S("#")));
    assert_false(ep_mqtt_topic_name_valid(S("a+b")));
    assert_false(ep_mqtt_topic_name_valid(S("a\x00")));
    assert_false(ep_mqtt_topic_name_valid(S("\xed\xa0\x80")));
}

static void test_share_split(void **state)
{
    (void)state;
    ep_mqtt_slice g, f;
    assert_int_equal(ep_mqtt_topic_share_split(S("$share/grp/a/+/#"), &g, &f), EP_EOK);
    assert_true(ep_mqtt_slice_eq(g, S("grp")));
    assert_true(ep_mqtt_slice_eq(f, S("a/+/#")));
    assert_int_equal(ep_mqtt_topic_share_split(S("$share/g//"), &g, &f), EP_EOK);
    assert_true(ep_mqtt_slice_eq(f, S("/")));
    g.p = NULL;
    assert_int_equal(ep_mqtt_topic_share_split(S("a/b"), &g, &f), EP_ENOTFOUND);
    assert_null(g.p); /* untouched */
    assert_int_equal(ep_mqtt_topic_share_split(S("$shared/g/a"), &g, &f), EP_ENOTFOUND);
    assert_int_equal(ep_mqtt_topic_share_split(S("$share"), &g, &f), EP_ENOTFOUND);
    assert_int_equal(ep_mqtt_topic_share_split(S("$share/"), &g, &f), EP_EPROTO);
    assert_int_equal(ep_mqtt_topic_share_split(S("$share//a"), &g, &f), EP_EPROTO);
    assert_int_equal(ep_mqtt_topic_share_split(S("$share/g"), &g, &f), EP_EPROTO);
    assert_int_equal(ep_mqtt_topic_share_split(S("$share/g/"), &g, &f), EP_EPROTO);
    assert_int_equal(ep_mqtt_topic_share_split(S("$share/g+/a"), &g, &f), EP_EPROTO);
    assert_int_equal(ep_mqtt_topic_share_split(S("$share/#/a"), &g, &f), EP_EPROTO);
    assert_int_equal(ep_mqtt_topic_share_split(S("$share/g/a/#/b"), &g, &f), EP_EPROTO);
    /* the split filter is what gets matched */
    assert_int_equal(ep_mqtt_topic_share_split(S("$share/g/s/+"), &g, &f), EP_EOK);
    assert_true(ep_mqtt_topic_match(f, S("s/x")));
}

static void test_levels(void **state)
{
    (void)state;
    assert_int_equal(ep_mqtt_topic_levels(S("")), 1);
    assert_int_equal(ep_mqtt_topic_levels(S("a")), 1);
    assert_int_equal(ep_mqtt_topic_levels(S("a/b")), 2);
    assert_int_equal(ep_mqtt_topic_levels(S("/")), 2);
    assert_int_equal(ep_mqtt_topic_levels(S("a//b/")), 4);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match_table), cmocka_unit_test(test_filter_valid),
        cmocka_unit_test(test_name_valid),  cmocka_unit_test(test_share_split),
        cmocka_unit_test(test_levels),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
