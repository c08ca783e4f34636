/*
 * fuzz_auth_passwd.c - libFuzzer harness for the password file parser.
 *
 * Besides memory safety, one property: every entry of a file that parses
 * formats back to a line that parses to the same entry (the format is
 * canonical: strict base64, no leading zeros).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "svc/auth/passwd.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    ep_cfg_errs errs = {0};
    ep_passwd *pw = NULL;
    if (ep_passwd_parse("fuzz.pw", (const char *)data, size, &pw, &errs) == EP_EOK) {
        for (size_t i = 0; i < ep_passwd_count(pw); i++) {
            const ep_passwd_entry *e = ep_passwd_at(pw, i);
            char line[EP_PASSWD_MAX_LINE + 1];
            if (ep_passwd_entry_format(e, line, sizeof(line)) != EP_EOK)
                abort();
            ep_cfg_errs errs2 = {0};
            ep_passwd *one = NULL;
            if (ep_passwd_parse("again", line, strlen(line), &one, &errs2) != EP_EOK)
                abort();
            const ep_passwd_entry *f = ep_passwd_at(one, 0);
            if (f->user_len != e->user_len || memcmp(f->user, e->user, e->user_len) != 0 ||
                f->kind != e->kind || f->iterations != e->iterations ||
                f->salt_len != e->salt_len || memcmp(f->salt, e->salt, e->salt_len) != 0 ||
                memcmp(f->hash, e->hash, sizeof(e->hash)) != 0 ||
                memcmp(f->stored_key, e->stored_key, 32) != 0 ||
                memcmp(f->server_key, e->server_key, 32) != 0)
                abort();
            if (ep_passwd_lookup(pw, e->user, e->user_len) != e)
                abort();
            ep_passwd_unref(one);
            ep_cfg_errs_fini(&errs2);
        }
        ep_passwd_unref(pw);
    }
    ep_cfg_errs_fini(&errs);
    return 0;
}
