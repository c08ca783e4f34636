/*
 * fuzz_auth_rules.c - libFuzzer harness for the authorization rules file.
 *
 * Arbitrary bytes are parsed as a rules file (YAML through core/cfg, then
 * the rule binder). A rule set that loads is compiled for a few principals
 * (with ids and attributes that contain wildcards, to exercise the
 * substitution checks) and asked about some topics. Properties checked:
 * a principal with no rules is always allowed; PUBLISH to a topic that
 * contains a wildcard is never allowed (topic names cannot).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "svc/auth/authz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ep_cfg_errs errs = {0};
    ep_authz_rules *r = NULL;
    if (ep_authz_rules_parse("fuzz.yaml", (const char *)data, size, &r, &errs) == EP_EOK) {
        static const ep_authz_attr attrs[] = {{"building", "b1"}, {"zone", "#"}, {"x", "a/b"}};
        static const ep_authz_principal ps[] = {
            {.client_id = "dev-1", .username = "alice", .attrs = attrs, .n_attrs = 3},
            {.client_id = "#", .username = NULL, .attrs = NULL, .n_attrs = 0},
            {.client_id = "", .username = "+", .attrs = attrs, .n_attrs = 1},
        };
        static const char *const topics[] = {
            "a", "a/b", "sensors/b1/dev-1/telemetry", "#", "+/x", "$SYS/x", "$share/g/a/#", "a//b"};
        for (size_t i = 0; i < sizeof(ps) / sizeof(ps[0]); i++) {
            ep_authz_session *s = NULL;
            if (ep_authz_session_new(r, &ps[i], &s) != EP_EOK)
                continue;
            (void)ep_authz_session_allows(s, EP_AUTHZ_CONNECT, NULL, 0);
            for (size_t t = 0; t < sizeof(topics) / sizeof(topics[0]); t++) {
                size_t len = strlen(topics[t]);
                bool pub = ep_authz_session_allows(s, EP_AUTHZ_PUBLISH, topics[t], len);
                if (pub && strpbrk(topics[t], "+#") != NULL)
                    abort();
                (void)ep_authz_session_allows(s, EP_AUTHZ_SUBSCRIBE, topics[t], len);
            }
            ep_authz_session_free(s);
        }
        ep_authz_rules_unref(r);
    }
    ep_authz_principal p = {.client_id = "c"};
    if (!ep_authz_check(NULL, &p, EP_AUTHZ_PUBLISH, "x"))
        abort();
    ep_cfg_errs_fini(&errs);
    return 0;
}
